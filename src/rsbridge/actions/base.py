"""What every action works with: the integration's parts, the ticket's context, BRCS files,
ledger keys and work notes.

:class:`ActionBase` is the ground floor of :class:`~rsbridge.actions.service.ActionService`:
each action (``keys``, ``jump``, ``self_service``, ``custom_links``) is a mixin over it,
and ``service`` combines them and sets the state declared here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from rsbridge.actions.mail import Mailer
from rsbridge.actions.models import Brcs, EffectOutcome
from rsbridge.actions.problems import ActionError, describe, not_found
from rsbridge.appliance import scripting
from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.custom_fields import EXTERNAL_KEY
from rsbridge.config import ApplianceConfig, Config, IntegrationConfig
from rsbridge.connectors.base import Connector, NoteDelivery, Ticket, TicketContext
from rsbridge.engine.render import Renderer
from rsbridge.engine.signing import Signer
from rsbridge.engine.store.base import LedgerKey, Store
from rsbridge.errors import ConnectorError

# One logger for every action, under the name it had before the actions were split into
# modules (log filters and readers may know it).
log = logging.getLogger("rsbridge.actions.service")

_LEDGER_EVENT = "action"
_FILE_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Parts:
    """What an action on one integration works with."""

    integration: IntegrationConfig
    connector: Connector
    appliance: ApplianceClient
    appliance_config: ApplianceConfig


def invalid(message: str) -> ActionError:
    """The refusal of a request that cannot be carried out as given (422)."""
    return ActionError(message, status=422, code="invalid_request")


def split_attributes(context: TicketContext | None) -> tuple[str | None, dict[str, str]]:
    """The ticket's session attributes split into external key and custom fields."""
    if context is None:
        return None, {}
    custom = dict(context.session_attributes)
    return custom.pop(EXTERNAL_KEY, None), custom


def ticket_label(ticket: Ticket) -> str:
    """How messages name a ticket: its number, else its id."""
    return ticket.number or ticket.id


class ActionBase:
    """The lookups every action starts with; the state ``ActionService`` sets up."""

    # Set by ActionService.__init__.
    config: Config
    store: Store
    appliances: Mapping[str, ApplianceClient]
    connectors: Mapping[str, Connector]
    mailer: Mailer | None
    clock: Callable[[], float]
    _signer: Signer | None
    _site_names: dict[str, str]
    _mail_renderers: dict[str, Renderer]

    def _parts(self, name: str) -> Parts:
        integration = self.config.integration(name)
        connector = self.connectors.get(name)
        if integration is None or integration.disabled or connector is None:
            raise not_found(name, sorted(self.connectors))
        appliance = self.appliances.get(integration.appliance)
        appliance_config = self.config.appliance(integration.appliance)
        if appliance is None or appliance_config is None:
            raise not_found(name, sorted(self.connectors))
        return Parts(integration, connector, appliance, appliance_config)

    async def _context(self, parts: Parts, reference: str, *, purpose: str) -> TicketContext:
        context = await parts.connector.ticket_context(reference)
        if context.closed and context.state is None:
            raise ActionError(
                f"the state of ticket {ticket_label(context.ticket)} cannot be read, so it "
                f"counts as closed: {purpose} is refused; let the integration user read the "
                "ticket's state",
                status=409,
                code="ticket_closed",
            )
        if context.closed:
            state = f" (state {context.state})" if context.state else ""
            raise ActionError(
                f"ticket {ticket_label(context.ticket)} is closed{state}: {purpose} is refused for "
                "closed tickets; reopen it or use an open one",
                status=409,
                code="ticket_closed",
            )
        if self._signer is not None:
            # Every key, Jump and start URL stamps these on the session: signed, they
            # let the association tell them from values a customer typed in a URL.
            attributes = self._signer.signed(
                parts.appliance_config.id,
                parts.integration.name,
                context.session_attributes,
                now=datetime.fromtimestamp(self.clock(), UTC),
            )
            context = replace(context, session_attributes=attributes)
        return context

    async def _site_name(self, parts: Parts) -> str:
        """The company site name for the BRCS extension: configured, or the appliance's."""
        if parts.integration.actions.company_site_name:
            return parts.integration.actions.company_site_name
        appliance_id = parts.appliance_config.id
        if appliance_id not in self._site_names:
            info = await parts.appliance.get_api_info()
            if not info.company_name:
                raise ActionError(
                    "the appliance did not say its company site name; set "
                    "actions.company_site_name for BRCS files",
                    status=422,
                    code="invalid_request",
                )
            self._site_names[appliance_id] = info.company_name
        return self._site_names[appliance_id]

    async def _brcs(self, parts: Parts, command: scripting.ClientScriptCommand, label: str) -> Brcs:
        extension = scripting.brcs_extension(await self._site_name(parts))
        slug = _FILE_SLUG.sub("_", label).strip("_")[:60] or "rsbridge"
        return Brcs(scripting.brcs_file([command]), extension, f"{slug}.{extension}")

    def _ledger_key(self, parts: Parts, request_id: str, effect: str) -> LedgerKey:
        return LedgerKey(
            parts.appliance_config.id,
            f"request:{request_id}",
            _LEDGER_EVENT,
            parts.integration.name,
            effect,
        )

    async def _note(
        self, parts: Parts, ticket: Ticket, key: str, text: str, html: str | None = None
    ) -> EffectOutcome:
        """Write a work note; a failure is reported in the answer, not raised."""
        try:
            result = await parts.connector.write_note(ticket, NoteDelivery(key, text, html))
        except ConnectorError as exc:
            log.warning(
                "%s: work note on %s failed: %s", parts.integration.name, ticket_label(ticket), exc
            )
            return EffectOutcome(False, describe(exc).message)
        return EffectOutcome(True, result.ref)
