"""The technician and customer actions, independent of any ticketing system.

:class:`ActionService` does what a ServiceNow UI action, a portal widget or a script asks
through the HTTP API (:mod:`rsbridge.web.actions`) or the CLI
(:mod:`rsbridge.actions_cli`):

* :meth:`~ActionService.session_key` -- a session key for a ticket, through the Command
  API (with one of five assignment modes) or as a console URL / BRCS file, stamped with
  the ticket's session attributes; optionally logged as a work note and e-mailed;
* :meth:`~ActionService.jump` -- a console URL or BRCS file that Jumps to a ticket's
  configuration item (search-string Jump, push and start, RDP, VNC, shell, vPro);
* :meth:`~ActionService.issues` -- the self-service issues, loaded from the appliance
  (the vendor's "Load Issues", also the connectivity test);
* :meth:`~ActionService.support_now` -- a click-to-chat or full-session start URL for a
  self-service user, already associated with the ticket;
* :meth:`~ActionService.links` -- rep-console custom links, rsbridge's auto-create link
  included;
* :meth:`~ActionService.pull_now` -- the sessions that ended since the last pull (the
  first: the last 24 hours) listed on the appliance and queued for import (the vendor's
  "Pull Support Sessions" module);
* :meth:`~ActionService.auto_create_offer` and :meth:`~ActionService.auto_create` -- the
  auto-create link's two steps: check that the session is live and young enough and offer a
  short-lived confirmation; then the session's ticket, created if needed.

Everything the ticketing system knows comes from the integration's connector
(:class:`~rsbridge.connectors.base.TicketContext` and friends); everything the appliance
does goes through its real APIs. Refusals raise
:class:`~rsbridge.actions.problems.ActionError`; other failures keep their own
exception class, and :func:`~rsbridge.actions.problems.describe` turns any of them into
the answer.

Side effects are once-only per ``request_id``: a request repeated with the same id gets
the key made the first time (recorded in the store's ledger), writes its work note under
the same idempotency key (connectors upsert by it), and sends no second e-mail.

Each action lives in a module of its own, as a mixin :class:`ActionService` combines:
:mod:`~rsbridge.actions.keys`, :mod:`~rsbridge.actions.jump`,
:mod:`~rsbridge.actions.self_service`, :mod:`~rsbridge.actions.custom_links` and
:mod:`~rsbridge.actions.pull`, over
:mod:`~rsbridge.actions.base` (the lookups they all start with).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from rsbridge.actions.custom_links import AUTO_CREATE_LINK_NAME, LinkActions
from rsbridge.actions.jump import JumpActions
from rsbridge.actions.keys import DEFAULT_MAIL_SUBJECT, SessionKeyActions
from rsbridge.actions.mail import Mailer
from rsbridge.actions.pull import PullActions
from rsbridge.actions.self_service import SelfServiceActions
from rsbridge.appliance.client import ApplianceClient
from rsbridge.config import Config
from rsbridge.connectors.base import Connector
from rsbridge.engine.signing import signer_for
from rsbridge.engine.store.base import Store

# The constants stay importable from here, where they were first defined.
__all__ = ["AUTO_CREATE_LINK_NAME", "DEFAULT_MAIL_SUBJECT", "ActionService"]


class ActionService(SessionKeyActions, JumpActions, SelfServiceActions, LinkActions, PullActions):
    """Technician and customer actions over the engine's appliances and connectors.

    ``appliances`` maps appliance ids, ``connectors`` integration names, as the
    :class:`~rsbridge.engine.runtime.Engine` holds them. ``mailer`` is needed only for
    e-mailing keys. ``clock`` returns UNIX seconds (tests pass a fake one).
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        appliances: Mapping[str, ApplianceClient],
        connectors: Mapping[str, Connector],
        *,
        mailer: Mailer | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.appliances = appliances
        self.connectors = connectors
        self.mailer = mailer
        self.clock = clock
        self._signer = signer_for(config.signing)
        self._site_names = {}
        self._mail_renderers = {}
