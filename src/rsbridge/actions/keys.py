"""Session keys for a ticket: through the Command API with one of five assignment modes,
or as the rep console's dialog (console URL, BRCS file); logged as a work note and
e-mailed, each once per ``request_id``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime

from rsbridge.actions.base import ActionBase, Parts, invalid, log, split_attributes, ticket_label
from rsbridge.actions.mail import check_address
from rsbridge.actions.models import EffectOutcome, SessionKeyRequest, SessionKeyResult
from rsbridge.actions.problems import ActionError, describe
from rsbridge.appliance import scripting
from rsbridge.appliance.command import Queue, SessionKey
from rsbridge.connectors.base import Ticket, TicketContext
from rsbridge.engine.render import Renderer
from rsbridge.engine.store.base import LedgerEntry, LedgerKey
from rsbridge.errors import ApplianceCommandError, ConnectorError, RsbridgeError

DEFAULT_MAIL_SUBJECT = "Remote Support Invitation"
"""Subject of the key e-mail when the appliance gives none."""


class SessionKeyActions(ActionBase):
    """``session_key``."""

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
                raise invalid(
                    "with session_key_source = rep_console the key is made in the "
                    "representative console's dialog, which e-mails it; rsbridge cannot"
                )
            return await self._console_key(parts, context)
        email_to: str | None = None
        if want_email:
            if self.mailer is None and not parts.connector.sends_mail():
                raise ActionError(
                    "e-mailing the key needs an [smtp] section in the configuration (or, "
                    'with ServiceNow, key_mail = "instance")',
                    status=422,
                    code="smtp_not_configured",
                )
            email_to = request.email_to or context.caller_email
            if not email_to:
                raise invalid(
                    f"ticket {ticket_label(context.ticket)} has no caller e-mail address; "
                    "give email_to"
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
        # Written on a repeated request too (an earlier attempt may have failed there);
        # writing the same key again changes nothing.
        fields = await self._record_key(parts, ticket, key)
        email = await self._email(parts, request, key, email_to, context) if email_to else None
        log.info(
            "%s: session key for %s in %s%s",
            parts.integration.name,
            ticket_label(ticket),
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
            ticket_fields=fields,
        )

    async def _record_key(
        self, parts: Parts, ticket: Ticket, key: SessionKey
    ) -> EffectOutcome | None:
        """The key written into the ticket's own fields, where the connector keeps it
        there; a failure is reported in the answer, not raised (the key exists)."""
        try:
            written = await parts.connector.record_session_key(
                ticket, key.short_key, key.key_url, key.expires
            )
        except ConnectorError as exc:
            log.warning(
                "%s: writing the key into %s failed: %s",
                parts.integration.name,
                ticket_label(ticket),
                exc,
            )
            return EffectOutcome(False, describe(exc).message)
        return EffectOutcome(True, ticket.id) if written else None

    async def _console_key(self, parts: Parts, context: TicketContext) -> SessionKeyResult:
        """The rep console's Generate Session Key dialog, pre-filled with the attributes."""
        external_key, custom = split_attributes(context)
        command = scripting.GenerateSessionKey(
            public_portal_hostname=parts.integration.actions.public_portal_hostname,
            external_key=external_key,
            custom_fields=custom,
        )
        url = scripting.console_url(parts.appliance_config.host, command)
        brcs = await self._brcs(parts, command, f"session-key-{ticket_label(context.ticket)}")
        return SessionKeyResult(
            source="rep_console", ticket=context.ticket, console_url=url, brcs=brcs
        )

    async def _key(
        self, parts: Parts, context: TicketContext, request: SessionKeyRequest
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
        external_key, custom = split_attributes(context)
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
        self, parts: Parts, context: TicketContext, request: SessionKeyRequest
    ) -> tuple[str, str]:
        """``(queue_id, label)`` for the request's assignment mode."""
        settings = parts.integration.actions
        mode = request.assignment or settings.assignment
        ticket = ticket_label(context.ticket)
        if mode == "general":
            return Queue.GENERAL, "the general queue"
        if mode == "technician":
            if not request.user:
                raise invalid("assignment technician needs user (the caller's user name)")
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
                raise invalid(
                    f"ticket {ticket} is not assigned to a user mapped to a BeyondTrust "
                    "representative; assign it, or choose another assignment"
                )
            rep = context.assigned_rep
            return Queue.rep_username(rep), f"representative {rep} (assigned to the ticket)"
        if mode == "assigned_team":
            if not context.assigned_team:
                raise invalid(
                    f"ticket {ticket} has no assignment group; set one, or choose another "
                    "assignment"
                )
            return await self._team_queue(parts, context.assigned_team, "assigned to the ticket")
        spec = request.queue or context.queue or settings.queue
        if spec is None:
            raise invalid(
                'assignment queue needs queue = "rep:<username>" or "team:<team name>" '
                "(in the request or in the integration's actions.queue)"
            )
        kind, sep, name = spec.partition(":")
        kind = kind.strip().casefold()
        if sep and kind == "rep":
            return Queue.rep_username(name.strip()), f"representative {name.strip()}"
        if sep and kind == "team":
            return await self._team_queue(parts, name.strip(), "named")
        # A bare name (Agiloft's field holds "a known representative or team"): the
        # appliance's team of that name if there is one, else the representative.
        teams = await parts.appliance.get_support_teams(members=False)
        bare = spec.strip()
        if any(
            bare.casefold() in (t.name.casefold(), (t.code_name or "").casefold()) for t in teams
        ):
            return await self._team_queue(parts, bare, "named")
        return Queue.rep_username(bare), f"representative {bare}"

    async def _team_queue(self, parts: Parts, name: str, why: str) -> tuple[str, str]:
        teams = await parts.appliance.get_support_teams(members=False)
        folded = name.casefold()
        team = next((t for t in teams if t.name == name), None) or next(
            (t for t in teams if folded in (t.name.casefold(), (t.code_name or "").casefold())),
            None,
        )
        if team is None:
            known = ", ".join(sorted(t.name for t in teams)) or "none"
            raise invalid(
                f"the appliance has no support team named {name!r} ({why}); its teams: {known}"
            )
        return Queue.team(team.id), f"team {team.name}"

    async def _email(
        self,
        parts: Parts,
        request: SessionKeyRequest,
        key: SessionKey,
        to: str,
        context: TicketContext,
    ) -> EffectOutcome:
        """E-mail the key, once per request_id, with the subject and text of the
        ``session_key_mail`` templates (by default the appliance's own): through the
        ticketing system when its connector sends mail (ServiceNow's ``key_mail =
        "instance"``; the ref is then its e-mail record), else through SMTP."""
        ledger_key = (
            self._ledger_key(parts, request.request_id, f"email:{to}")
            if request.request_id
            else None
        )
        known = await self.store.ledger_get(ledger_key) if ledger_key is not None else None
        if known is not None:
            return EffectOutcome(True, known.ref or to)
        ref = to
        try:
            subject, body = self._key_mail(parts, key, context)
            subject, body = subject or DEFAULT_MAIL_SUBJECT, body or key.key_url
            if parts.connector.sends_mail():
                marker = None
                if ledger_key is not None:
                    marker = hashlib.sha256(str(ledger_key).encode()).hexdigest()[:32]
                    sent = await self._sent_before(parts, ledger_key, context.ticket, marker)
                    if sent is not None:
                        await self.store.ledger_put(LedgerEntry(ledger_key, "", sent, self.clock()))
                        return EffectOutcome(True, sent)
                ref = await parts.connector.send_mail(
                    context.ticket, to, subject, body, marker=marker
                )
            else:
                assert self.mailer is not None  # checked before the key was made
                await self.mailer.send(to, subject, body)
        except RsbridgeError as exc:
            log.warning("%s: e-mailing session key failed: %s", parts.integration.name, exc)
            return EffectOutcome(False, describe(exc).message)
        if ledger_key is not None:
            await self.store.ledger_put(LedgerEntry(ledger_key, "", ref, self.clock()))
        return EffectOutcome(True, ref)

    async def _sent_before(
        self, parts: Parts, ledger_key: LedgerKey, ticket: Ticket, marker: str
    ) -> str | None:
        """The e-mail an earlier attempt of this request sent, if the system holds one.

        An attempt whose answer was lost (a timeout after the system sent the e-mail)
        leaves no ledger entry; it left a note that it was about to send, and then the
        system is asked for the e-mail by its marker before a second one goes out. Only
        then: a first attempt costs no extra call.
        """
        tried = dataclasses.replace(ledger_key, effect=f"{ledger_key.effect}:tried")
        if await self.store.ledger_get(tried) is None:
            await self.store.ledger_put(LedgerEntry(tried, "", "", self.clock()))
            return None
        return await parts.connector.find_mail(ticket, marker)

    def _key_mail(self, parts: Parts, key: SessionKey, context: TicketContext) -> tuple[str, str]:
        """The key e-mail's subject and body, rendered with the integration's templates."""
        name = parts.integration.name
        renderer = self._mail_renderers.get(name)
        if renderer is None:
            renderer = Renderer(parts.integration.templates)
            self._mail_renderers[name] = renderer
        return renderer.render_key_mail(
            {
                "short_key": key.short_key,
                "key_url": key.key_url,
                "expires": key.expires,
                "queue": f"{key.queue}:{key.queue_id}" if key.queue_id else key.queue,
                "ticket": context.ticket,
                "caller_name": context.caller_name or "",
                "integration": name,
                "appliance_subject": key.mail_subject or "",
                "appliance_body": key.mail_body or "",
            }
        )


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
