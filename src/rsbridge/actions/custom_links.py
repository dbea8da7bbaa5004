"""Rep-console custom links, rsbridge's auto-create link among them, and that link's two
steps: an offer for a live, young session with a short-lived confirmation; then the
session's ticket, created if needed. The tokens and session checks: :mod:`rsbridge.actions.link`.
"""

from __future__ import annotations

import re

from rsbridge.actions import link
from rsbridge.actions.base import ActionBase, Parts, invalid, log, ticket_label
from rsbridge.actions.link import CONFIRM_SECONDS
from rsbridge.actions.models import AutoCreateOffer, AutoCreateResult, LinksResult
from rsbridge.actions.problems import ActionError
from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import CustomLink
from rsbridge.engine.autocreate import create_for_live_session, live_session
from rsbridge.errors import ClientScriptError, SessionNotReadyError

AUTO_CREATE_LINK_NAME = "rsbridge: create ticket"
"""Name of rsbridge's own auto-create custom link in
:meth:`~rsbridge.actions.service.ActionService.links`."""

_LSID = re.compile(r"^[A-Za-z0-9-]{1,64}$")


class LinkActions(ActionBase):
    """``links``, the link and confirmation tokens, ``auto_create_offer`` and ``auto_create``."""

    def link_token(self, integration: str) -> str | None:
        """The token of the auto-create link for ``integration``; None without link_secret.

        It opens the auto-create page of that one integration and nothing else.
        """
        return link.link_token(self.config.actions.link_secret, integration)

    def check_link_token(self, integration: str, token: str) -> bool:
        """Whether ``token`` is the auto-create link token of ``integration`` (constant time)."""
        expected = self.link_token(integration)
        return expected is not None and link.same(token, expected)

    def confirm_token(
        self, integration: str, lsid: str, username: str | None, expires: int
    ) -> str | None:
        """The confirmation of one auto-create, bound to the integration, the session, the
        representative and an expiry; None without ``link_secret``."""
        secret = self.config.actions.link_secret
        return link.confirm_token(secret, integration, lsid, username, expires)

    def check_confirm_token(
        self, integration: str, lsid: str, username: str | None, expires: str, token: str
    ) -> bool:
        """Whether ``token`` confirms this auto-create and has not expired (constant time)."""
        if not expires.isdigit() or int(expires) < self.clock():
            return False
        expected = self.confirm_token(integration, lsid, username, int(expires))
        return expected is not None and link.same(token, expected)

    def links(self, integration: str) -> LinksResult:
        """The integration's rep-console custom links, then rsbridge's auto-create link."""
        parts = self._parts(integration)
        public = self.config.actions.public_url
        links = list(parts.connector.custom_links(f"{public}/actions" if public else None))
        token = self.link_token(parts.integration.name)
        if public and token:
            links.append(
                CustomLink(
                    AUTO_CREATE_LINK_NAME,
                    f"{public}/actions/auto-create?integration={parts.integration.name}"
                    f"&lsid=%SESSION.LSID%&username=%REP.USERNAME%&token={token}",
                )
            )
        return LinksResult(parts.integration.name, links)

    async def _link_session(self, parts: Parts, lsid: str) -> SupportSession:
        """The live session ``lsid``: in progress and started recently enough, or refused.

        The auto-create link is a fixed URL on the appliance, so its token cannot name a
        session; what it opens is bounded here, by what the appliance says of the session.
        """
        if not _LSID.match(lsid):
            raise invalid(f"{lsid[:70]!r} is not a session id (lsid)")
        try:
            session = await live_session(parts.appliance, lsid)
        except SessionNotReadyError:
            raise ActionError(
                f"the appliance has no session {lsid}; open the link from a session in progress",
                status=404,
                code="session_not_found",
            ) from None
        link.check_live(session, self.clock(), self.config.actions.auto_create_max_session_hours)
        return session

    async def auto_create_offer(
        self, integration: str, lsid: str, username: str | None = None
    ) -> AutoCreateOffer:
        """What the auto-create link's page offers: the live session and its confirmation.

        Nothing is created: the link is a GET, which browsers, mail scanners and chat
        previews open on their own.
        """
        parts = self._parts(integration)
        session = await self._link_session(parts, lsid)
        expires = int(self.clock()) + CONFIRM_SECONDS
        name = parts.integration.name
        return AutoCreateOffer(
            name,
            lsid,
            username,
            session.start_time,
            expires,
            self.confirm_token(name, lsid, username, expires),
        )

    async def auto_create(
        self, integration: str, lsid: str, username: str | None = None
    ) -> AutoCreateResult:
        """The ticket of live session ``lsid``: remembered, associated or created, written back.

        Refused for a session that has ended or started more than
        ``actions.auto_create_max_session_hours`` ago.
        """
        parts = self._parts(integration)
        session = await self._link_session(parts, lsid)
        try:
            ticket = await create_for_live_session(
                store=self.store,
                integration=parts.integration,
                connector=parts.connector,
                appliance=parts.appliance,
                lsid=lsid,
                appliance_id=parts.appliance_config.id,
                signer=self._signer,
                now=self.clock(),
                session=session,
            )
        except ClientScriptError as exc:
            raise invalid(exc.message) from exc
        log.info(
            "%s: auto-create link for session %s%s: ticket %s",
            parts.integration.name,
            lsid,
            f" (representative {username[:100]!r})" if username else "",
            ticket_label(ticket),
        )
        return AutoCreateResult(parts.integration.name, lsid, ticket)
