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
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from rsbridge.actions import link
from rsbridge.actions.link import CONFIRM_SECONDS
from rsbridge.actions.mail import Mailer, check_address
from rsbridge.actions.models import (
    AutoCreateOffer,
    AutoCreateResult,
    Brcs,
    EffectOutcome,
    IssueInfo,
    IssuesResult,
    JumpRequest,
    JumpResult,
    LinksResult,
    SessionKeyRequest,
    SessionKeyResult,
    SupportNowRequest,
    SupportNowResult,
)
from rsbridge.actions.problems import ActionError, describe, not_found
from rsbridge.appliance import scripting
from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.command import Queue, SessionKey
from rsbridge.appliance.custom_fields import EXTERNAL_KEY
from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import ApplianceConfig, Config, IntegrationConfig
from rsbridge.connectors.base import (
    ConfigurationItem,
    Connector,
    CustomLink,
    NoteDelivery,
    Ticket,
    TicketContext,
)
from rsbridge.engine.autocreate import create_for_live_session, live_session
from rsbridge.engine.signing import signer_for
from rsbridge.engine.store.base import LedgerEntry, LedgerKey, Store
from rsbridge.errors import (
    ApplianceCommandError,
    ApplianceError,
    ClientScriptError,
    ConnectorError,
    RsbridgeError,
    SessionNotReadyError,
)

log = logging.getLogger(__name__)

AUTO_CREATE_LINK_NAME = "rsbridge: create ticket"
"""Name of rsbridge's own auto-create custom link in :meth:`ActionService.links`."""

DEFAULT_MAIL_SUBJECT = "Remote Support Invitation"
"""Subject of the key e-mail when the appliance gives none."""

_LEDGER_EVENT = "action"
_LSID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_FILE_SLUG = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class _Parts:
    """What an action on one integration works with."""

    integration: IntegrationConfig
    connector: Connector
    appliance: ApplianceClient
    appliance_config: ApplianceConfig


def _invalid(message: str) -> ActionError:
    return ActionError(message, status=422, code="invalid_request")


def _attributes(context: TicketContext | None) -> tuple[str | None, dict[str, str]]:
    """The ticket's session attributes split into external key and custom fields."""
    if context is None:
        return None, {}
    custom = dict(context.session_attributes)
    return custom.pop(EXTERNAL_KEY, None), custom


def _label(ticket: Ticket) -> str:
    return ticket.number or ticket.id


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


class ActionService:
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
        self._site_names: dict[str, str] = {}

    # --- lookups ------------------------------------------------------------------

    def _parts(self, name: str) -> _Parts:
        integration = self.config.integration(name)
        connector = self.connectors.get(name)
        if integration is None or integration.disabled or connector is None:
            raise not_found(name, sorted(self.connectors))
        appliance = self.appliances.get(integration.appliance)
        appliance_config = self.config.appliance(integration.appliance)
        if appliance is None or appliance_config is None:
            raise not_found(name, sorted(self.connectors))
        return _Parts(integration, connector, appliance, appliance_config)

    async def _context(self, parts: _Parts, reference: str, *, purpose: str) -> TicketContext:
        context = await parts.connector.ticket_context(reference)
        if context.closed and context.state is None:
            raise ActionError(
                f"the state of ticket {_label(context.ticket)} cannot be read, so it counts as "
                f"closed: {purpose} is refused; let the integration user read the ticket's "
                "state",
                status=409,
                code="ticket_closed",
            )
        if context.closed:
            state = f" (state {context.state})" if context.state else ""
            raise ActionError(
                f"ticket {_label(context.ticket)} is closed{state}: {purpose} is refused for "
                "closed tickets; reopen it or use an open one",
                status=409,
                code="ticket_closed",
            )
        if self._signer is not None:
            # Every key, Jump and start URL stamps these on the session: signed, they
            # let the association tell them from values a customer typed in a URL.
            attributes = self._signer.signed(parts.appliance_config.id, context.session_attributes)
            context = replace(context, session_attributes=attributes)
        return context

    async def _site_name(self, parts: _Parts) -> str:
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

    async def _brcs(
        self, parts: _Parts, command: scripting.ClientScriptCommand, label: str
    ) -> Brcs:
        extension = scripting.brcs_extension(await self._site_name(parts))
        slug = _FILE_SLUG.sub("_", label).strip("_")[:60] or "rsbridge"
        return Brcs(scripting.brcs_file([command]), extension, f"{slug}.{extension}")

    def _ledger_key(self, parts: _Parts, request_id: str, effect: str) -> LedgerKey:
        return LedgerKey(
            parts.appliance_config.id,
            f"request:{request_id}",
            _LEDGER_EVENT,
            parts.integration.name,
            effect,
        )

    async def _note(
        self, parts: _Parts, ticket: Ticket, key: str, text: str, html: str | None = None
    ) -> EffectOutcome:
        """Write a work note; a failure is reported in the answer, not raised."""
        try:
            result = await parts.connector.write_note(ticket, NoteDelivery(key, text, html))
        except ConnectorError as exc:
            log.warning(
                "%s: work note on %s failed: %s", parts.integration.name, _label(ticket), exc
            )
            return EffectOutcome(False, describe(exc).message)
        return EffectOutcome(True, result.ref)

    # --- session keys -------------------------------------------------------------

    async def session_key(self, request: SessionKeyRequest) -> SessionKeyResult:
        """Generate a session key for ``request.ticket`` (see the module docstring)."""
        parts = self._parts(request.integration)
        settings = parts.integration.actions
        context = await self._context(parts, request.ticket, purpose="generating a session key")
        source = settings.session_key_source
        want_email = (
            request.email
            if request.email is not None
            else (request.email_to is not None or settings.email_key)
        )
        if source == "rep_console":
            if want_email:
                raise _invalid(
                    "with session_key_source = rep_console the key is made in the "
                    "representative console's dialog, which e-mails it; rsbridge cannot"
                )
            return await self._console_key(parts, context)
        email_to: str | None = None
        if want_email:
            if self.mailer is None:
                raise ActionError(
                    "e-mailing the key needs an [smtp] section in the configuration",
                    status=422,
                    code="smtp_not_configured",
                )
            email_to = request.email_to or context.caller_email
            if not email_to:
                raise _invalid(
                    f"ticket {_label(context.ticket)} has no caller e-mail address; give email_to"
                )
            check_address(email_to)

        key, queue_label, repeated = await self._key(parts, context, request)
        ticket = context.ticket
        note = None
        if request.note if request.note is not None else settings.log_session_key:
            note_id = request.request_id or key.short_key
            by = f" by {request.user}" if request.user else ""
            text = (
                f"BeyondTrust Remote Support session key {key.short_key} generated{by} for "
                f"{queue_label}. The customer starts the session at {key.key_url} "
                f"(valid until {_utc(key.expires)})."
            )
            note = await self._note(
                parts,
                ticket,
                f"rsbridge:{parts.integration.name}:session_key:{ticket.id}:{note_id}",
                text,
            )
        email = await self._email(parts, request, key, email_to) if email_to else None
        log.info(
            "%s: session key for %s in %s%s",
            parts.integration.name,
            _label(ticket),
            queue_label,
            " (repeated request)" if repeated else "",
        )
        return SessionKeyResult(
            source=source,
            ticket=ticket,
            short_key=key.short_key,
            key_url=key.key_url,
            expires=key.expires,
            queue=f"{key.queue}:{key.queue_id}" if key.queue_id else key.queue,
            queue_available=key.queue_available,
            mail_subject=key.mail_subject,
            mail_body=key.mail_body,
            console_url=(
                f"https://{parts.appliance_config.host}/console"
                if source == "web_console"
                else None
            ),
            note=note,
            email=email,
            email_to=email_to,
            repeated=repeated,
        )

    async def _console_key(self, parts: _Parts, context: TicketContext) -> SessionKeyResult:
        """The rep console's Generate Session Key dialog, pre-filled with the attributes."""
        external_key, custom = _attributes(context)
        command = scripting.GenerateSessionKey(
            public_portal_hostname=parts.integration.actions.public_portal_hostname,
            external_key=external_key,
            custom_fields=custom,
        )
        url = scripting.console_url(parts.appliance_config.host, command)
        brcs = await self._brcs(parts, command, f"session-key-{_label(context.ticket)}")
        return SessionKeyResult(
            source="rep_console", ticket=context.ticket, console_url=url, brcs=brcs
        )

    async def _key(
        self, parts: _Parts, context: TicketContext, request: SessionKeyRequest
    ) -> tuple[SessionKey, str, bool]:
        """The key: made now, or the one an earlier request with this request_id made."""
        ledger_key = (
            self._ledger_key(parts, request.request_id, "session_key")
            if request.request_id
            else None
        )
        if ledger_key is not None:
            known = await self.store.ledger_get(ledger_key)
            if known is not None:
                return self._recorded_key(known, context.ticket), known.detail["queue_label"], True
        queue_id, queue_label = await self._queue(parts, context, request)
        external_key, custom = _attributes(context)
        settings = parts.integration.actions
        try:
            key = await parts.appliance.generate_session_key(
                queue_id=queue_id,
                ttl=settings.key_ttl_seconds,
                url_hostname=settings.public_portal_hostname,
                external_key=external_key,
                custom_attributes=custom,
            )
        except ApplianceCommandError as exc:
            problem = describe(exc)
            raise ActionError(
                f"{problem.message} [queue: {queue_label}]",
                status=problem.status,
                code=problem.code,
            ) from exc
        if ledger_key is None:
            return key, queue_label, False
        detail = {
            "ticket": context.ticket.id,
            "queue_label": queue_label,
            "short_key": key.short_key,
            "key_url": key.key_url,
            "expires": str(int(key.expires.timestamp())),
            "queue": key.queue,
            "queue_id": key.queue_id or "",
            "queue_available": "1" if key.queue_available else "0",
            "mail_subject": key.mail_subject or "",
            "mail_body": key.mail_body or "",
        }
        entry = await self.store.ledger_put(
            LedgerEntry(ledger_key, context.ticket.id, key.short_key, self.clock(), detail)
        )
        # Two concurrent requests with one id: both made a key, the first recorded wins.
        repeated = entry.ref != key.short_key
        return self._recorded_key(entry, context.ticket), entry.detail["queue_label"], repeated

    @staticmethod
    def _recorded_key(entry: LedgerEntry, ticket: Ticket) -> SessionKey:
        detail = entry.detail
        if detail.get("ticket") != ticket.id:
            raise ActionError(
                "request_id was already used for another ticket; use a new one per request",
                status=409,
                code="request_id_reused",
            )
        return SessionKey(
            type="support",
            expires=datetime.fromtimestamp(int(detail["expires"]), UTC),
            queue=detail["queue"],
            queue_available=detail["queue_available"] == "1",
            short_key=detail["short_key"],
            key_url=detail["key_url"],
            queue_id=detail["queue_id"] or None,
            mail_subject=detail["mail_subject"] or None,
            mail_body=detail["mail_body"] or None,
        )

    async def _queue(
        self, parts: _Parts, context: TicketContext, request: SessionKeyRequest
    ) -> tuple[str, str]:
        """``(queue_id, label)`` for the request's assignment mode."""
        settings = parts.integration.actions
        mode = request.assignment or settings.assignment
        ticket = _label(context.ticket)
        if mode == "general":
            return Queue.GENERAL, "the general queue"
        if mode == "technician":
            if not request.user:
                raise _invalid("assignment technician needs user (the caller's user name)")
            username = await parts.connector.rep_username(request.user)
            if not username:
                raise ActionError(
                    "Error validating parameter 'queue_id': The representative could not be "
                    f"found: the user {request.user!r} is not mapped to a BeyondTrust "
                    "representative. Use the same usernames in both systems (e.g. one LDAP "
                    "store) or set the user's BeyondTrust username in the ticketing system",
                    status=422,
                    code="representative_not_found",
                )
            return Queue.rep_username(username), f"representative {username}"
        if mode == "assigned_user":
            if not context.assigned_rep:
                raise _invalid(
                    f"ticket {ticket} is not assigned to a user mapped to a BeyondTrust "
                    "representative; assign it, or choose another assignment"
                )
            rep = context.assigned_rep
            return Queue.rep_username(rep), f"representative {rep} (assigned to the ticket)"
        if mode == "assigned_team":
            if not context.assigned_team:
                raise _invalid(
                    f"ticket {ticket} has no assignment group; set one, or choose another "
                    "assignment"
                )
            return await self._team_queue(parts, context.assigned_team, "assigned to the ticket")
        spec = request.queue or settings.queue
        if spec is None:
            raise _invalid(
                'assignment queue needs queue = "rep:<username>" or "team:<team name>" '
                "(in the request or in the integration's actions.queue)"
            )
        kind, _, name = spec.partition(":")
        if kind == "rep":
            return Queue.rep_username(name), f"representative {name}"
        return await self._team_queue(parts, name, "named")

    async def _team_queue(self, parts: _Parts, name: str, why: str) -> tuple[str, str]:
        teams = await parts.appliance.get_support_teams(members=False)
        folded = name.casefold()
        team = next((t for t in teams if t.name == name), None) or next(
            (t for t in teams if folded in (t.name.casefold(), (t.code_name or "").casefold())),
            None,
        )
        if team is None:
            known = ", ".join(sorted(t.name for t in teams)) or "none"
            raise _invalid(
                f"the appliance has no support team named {name!r} ({why}); its teams: {known}"
            )
        return Queue.team(team.id), f"team {team.name}"

    async def _email(
        self, parts: _Parts, request: SessionKeyRequest, key: SessionKey, to: str
    ) -> EffectOutcome:
        """E-mail the key with the appliance's own subject and text, once per request_id."""
        assert self.mailer is not None
        ledger_key = (
            self._ledger_key(parts, request.request_id, f"email:{to}")
            if request.request_id
            else None
        )
        if ledger_key is not None and await self.store.ledger_get(ledger_key) is not None:
            return EffectOutcome(True, to)
        try:
            await self.mailer.send(
                to, key.mail_subject or DEFAULT_MAIL_SUBJECT, key.mail_body or key.key_url
            )
        except RsbridgeError as exc:
            log.warning("%s: e-mailing session key failed: %s", parts.integration.name, exc)
            return EffectOutcome(False, describe(exc).message)
        if ledger_key is not None:
            await self.store.ledger_put(LedgerEntry(ledger_key, "", to, self.clock()))
        return EffectOutcome(True, to)

    # --- Jump ---------------------------------------------------------------------

    async def jump(self, request: JumpRequest) -> JumpResult:
        """A console URL or BRCS file that Jumps to a configuration item."""
        parts = self._parts(request.integration)
        settings = parts.integration.actions
        if request.ticket is None and request.ci is None:
            raise _invalid("give ticket (Jump to its configuration item) or ci, or both")
        context = (
            await self._context(parts, request.ticket, purpose="a Jump from the ticket")
            if request.ticket is not None
            else None
        )
        ci: ConfigurationItem | None
        if request.ci is not None:
            ci = await parts.connector.find_configuration_item(request.ci)
        else:
            assert context is not None
            ci = context.configuration_item
            if ci is None:
                raise _invalid(
                    f"ticket {_label(context.ticket)} has no configuration item; set one, "
                    "or give ci"
                )
        console = request.console or settings.jump_console
        output = request.output or settings.jump_output
        if output == "brcs" and console == "web":
            raise _invalid("BRCS files run in the desktop representative console; use url")
        command = self._jump_command(request, ci, settings.jumpoint, context)
        url = None
        brcs = None
        if output == "url":
            url = scripting.console_url(parts.appliance_config.host, command, console=console)
        else:
            brcs = await self._brcs(parts, command, f"jump-{ci.name}")
        log.info("%s: %s Jump to %s", parts.integration.name, request.kind, ci.name)
        return JumpResult(
            kind=request.kind,
            console=console,
            configuration_item=ci,
            ticket=context.ticket if context else None,
            url=url,
            brcs=brcs,
        )

    @staticmethod
    def _jump_command(
        request: JumpRequest,
        ci: ConfigurationItem,
        default_jumpoint: str | None,
        context: TicketContext | None,
    ) -> scripting.ClientScriptCommand:
        external_key, custom = _attributes(context)
        target = ci.host or ci.name
        jumpoint = request.jumpoint or default_jumpoint
        kind = request.kind
        if kind == "jump_item":
            return scripting.StartJumpItemSession(
                search_string=ci.name,
                method=request.method,
                external_key=external_key,
                custom_fields=custom,
            )
        if kind == "push_local":
            return scripting.PushAndStartLocal(
                hostname=target, external_key=external_key, custom_fields=custom
            )
        if kind == "push_remote":
            return scripting.PushAndStartRemote(
                target=target, jumpoint=jumpoint, external_key=external_key, custom_fields=custom
            )
        if kind == "rdp":
            return scripting.StartRdpSession(
                target=target,
                jumpoint=jumpoint,
                username=request.username,
                external_key=external_key,
                custom_fields=custom,
            )
        if kind == "vnc":
            return scripting.StartVncSession(
                target=target,
                jumpoint=jumpoint,
                port=request.port,
                external_key=external_key,
                custom_fields=custom,
            )
        if kind == "shell":
            protocol = scripting.ShellProtocol(request.protocol) if request.protocol else None
            return scripting.StartShellJumpSession(
                target=target,
                jumpoint=jumpoint,
                username=request.username,
                protocol=protocol,
                port=request.port,
                external_key=external_key,
                custom_fields=custom,
            )
        if jumpoint is None:
            raise _invalid("a vPro session needs a jumpoint (in the request or actions.jumpoint)")
        return scripting.StartVproSession(
            target=target, jumpoint=jumpoint, external_key=external_key, custom_fields=custom
        )

    # --- self service -------------------------------------------------------------

    async def issues(self, integration: str) -> IssuesResult:
        """The issues offered to self-service users, loaded from the appliance.

        All the appliance's issues, or those of ``self_service_issues`` (in that order)
        when it is set. The vendor's "Load Issues": appliance errors come out as
        "Something went wrong while attempting to load issues: ..." with the reason.
        """
        parts = self._parts(integration)
        try:
            teams = await parts.appliance.get_support_teams(members=False)
        except ApplianceError as exc:
            problem = describe(exc)
            raise ActionError(
                f"Something went wrong while attempting to load issues: {problem.message}",
                status=problem.status,
                code=problem.code,
            ) from exc
        found: dict[str, IssueInfo] = {}
        for team in teams:
            for issue in team.issues:
                found.setdefault(
                    issue.code_name,
                    IssueInfo(issue.code_name, issue.description, issue.id, team.name, team.id),
                )
        wanted = parts.integration.actions.self_service_issues
        if not wanted:
            offered = list(found.values())
        else:
            offered = [found[code] for code in wanted if code in found]
        missing = [code for code in wanted if code not in found]
        return IssuesResult(parts.integration.name, offered, len(found), missing)

    async def support_now(self, request: SupportNowRequest) -> SupportNowResult:
        """A start URL for a self-service user's session on their ticket."""
        parts = self._parts(request.integration)
        settings = parts.integration.actions
        if not settings.self_service_enabled:
            raise ActionError(
                f"self-service is not enabled for integration {parts.integration.name} "
                "(actions.self_service_enabled)",
                status=403,
                code="self_service_disabled",
            )
        context = await self._context(parts, request.ticket, purpose="getting support")
        offered = (await self.issues(request.integration)).issues
        if not offered:
            raise ActionError(
                "no issues to offer: the appliance has none of the configured "
                "self_service_issues (or no issues at all)",
                status=409,
                code="no_issues",
            )
        codes = ", ".join(i.code_name for i in offered)
        if request.issue is None:
            if len(offered) > 1:
                raise _invalid(f"choose an issue: {codes}")
            issue = offered[0]
        else:
            chosen = next((i for i in offered if i.code_name == request.issue), None)
            if chosen is None:
                raise _invalid(f"issue {request.issue!r} is not offered; choose one of: {codes}")
            issue = chosen
        start_type = request.start_type or settings.session_start_type
        external_key, custom = _attributes(context)
        name = request.customer_name or context.caller_name
        url = scripting.start_session_url(
            settings.public_portal_hostname or parts.appliance_config.host,
            scripting.IssueQueue(code_name=issue.code_name),
            click_to_chat=start_type == "chat",
            customer_name=name[:100] if name else None,
            customer_details=request.details,
            external_key=external_key,
            custom_fields=custom,
        )
        note = None
        if request.note if request.note is not None else settings.log_customer_initiated:
            ticket = context.ticket
            what = "chat" if start_type == "chat" else "session"
            text = (
                f"Customer-initiated BeyondTrust Remote Support {what} requested"
                f"{f' by {name}' if name else ''} for issue "
                f"{issue.description or issue.code_name} (team {issue.team})."
            )
            note_id = request.request_id or uuid.uuid4().hex
            note = await self._note(
                parts,
                ticket,
                f"rsbridge:{parts.integration.name}:support_now:{ticket.id}:{note_id}",
                text,
            )
        log.info(
            "%s: get support now on %s (%s, issue %s)",
            parts.integration.name,
            _label(context.ticket),
            start_type,
            issue.code_name,
        )
        return SupportNowResult(context.ticket, url, start_type, issue, note)

    # --- custom links and auto-create -----------------------------------------------

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

    async def _link_session(self, parts: _Parts, lsid: str) -> SupportSession:
        """The live session ``lsid``: in progress and started recently enough, or refused.

        The auto-create link is a fixed URL on the appliance, so its token cannot name a
        session; what it opens is bounded here, by what the appliance says of the session.
        """
        if not _LSID.match(lsid):
            raise _invalid(f"{lsid[:70]!r} is not a session id (lsid)")
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
            raise _invalid(exc.message) from exc
        log.info(
            "%s: auto-create link for session %s%s: ticket %s",
            parts.integration.name,
            lsid,
            f" (representative {username[:100]!r})" if username else "",
            _label(ticket),
        )
        return AutoCreateResult(parts.integration.name, lsid, ticket)
