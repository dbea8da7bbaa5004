"""Session import: a session into structured records and journal entries.

What a session import writes (one read round that tells whether the session is there
already, usually sent along with the ticket lookup (see ``reads``); one Batch API call for
a usual session; one call that marks it complete):

* a row of the session table related to the task (the ticket), the configuration item,
  the call and the interaction it belongs to, with the primary representative's
  sys_user when ``auto_associate_user`` is on;
* rows of the child tables: representatives, customers, teams, events (filtered by the
  integration's ``import_events``), custom attributes, recordings;
* journal entries on the task (``work_notes`` or ``comments``): the chat transcript,
  the session notes and a session-end notice, each switchable;
* optionally the rendered report as an attachment.

Idempotency: every row has a sys_id derived from the session (see ``records``). The
session row is inserted first with ``import_state = importing`` and set to ``complete``
by a call of its own once everything else succeeded (the Batch API serves every
sub-request even after one failed); a complete row means "nothing to do", an
incomplete one makes the next attempt insert only the rows that are missing and skip
the journal entries that are present. Journal entries end with a short marker line,
``(RS session <first 12 characters of the lsid>: <part>)`` (notes of the actions: a
reference to their key), looked for in the task's journal stream read with display values,
since ``sys_journal_field`` is often hidden by ACLs. A part the session does not have (no
chat message, no session note) gets no entry.
"""

from __future__ import annotations

from rsbridge.appliance.report_model import EventType, SupportSession
from rsbridge.connectors.base import SessionDelivery, Ticket, WriteResult
from rsbridge.connectors.servicenow.client import BatchRequest
from rsbridge.connectors.servicenow.reads import ticket_slot
from rsbridge.connectors.servicenow.records import (
    Row,
    child_rows,
    journal_safe,
    session_values,
)
from rsbridge.connectors.servicenow.writes import WritesMixin, journal_marker, written


class SessionImportMixin(WritesMixin):
    """``write_session_report``: records, journal entries and the attached report."""

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        """Upsert the session records and journal entries (see the module docstring)."""
        session_id = self.session_sys_id(
            delivery.appliance_id, delivery.integration, delivery.session.lsid
        )
        async with self._lock(session_id):
            return await self._write_session_report(ticket, delivery, session_id)

    async def _write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery, session_id: str
    ) -> WriteResult:
        session = delivery.session
        table = self.schema.table("session")
        detail = {"session_table": table}
        state_col = self.schema.col("session", "import_state")
        records = bool(self._c.write_session_records)
        association = delivery.association
        # One read round: the session row, the reps' users, the references' records (and
        # the ticket's table when the ticket does not say it).
        row_read = self._session_row_read(session_id) if records else None
        user_reads = self._users_reads(session) if records else []
        filled = ticket_slot(ticket.kind) if ticket is not None and ticket.kind else None
        ref_reads = [r for _, _, r in self._reference_reads(association, filled)] if records else []
        answers = await self._read_round(
            [row_read, *user_reads, *ref_reads, self._kind_read(ticket)],
            session=session,
            ticket=ticket,
            session_read=row_read,
            what=f"read for session {session.lsid}",
        )
        existing = answers.get(row_read) if row_read is not None else None
        if existing is not None and existing.get(state_col) == "complete":
            return WriteResult(session_id, {**detail, "already": "complete"})
        recovering = existing is not None
        ticket_table = self._ticket_table_from(ticket, answers) if ticket is not None else None
        users = self._users_from(user_reads, answers)
        rows = list(child_rows(session, delivery.key, session_id, users)) if records else []
        journal = self._journal_field(association)
        entries = self._journal_entries(delivery) if ticket_table is not None else []

        # Without a complete session row, the rows and the journal themselves say what is
        # there (after a crash, or a lost answer): a second read round.
        again = self._missing_reads(rows) if recovering else []
        stream_read = None
        if ticket is not None and ticket_table is not None and (recovering or not records):
            stream_read = self._journal_read(ticket_table, ticket.id, journal) if entries else None
            again += [stream_read] if stream_read is not None else []
        later = await self.client.read(again, what=f"read for session {session.lsid}")

        requests: list[BatchRequest] = []
        if records:
            if recovering:
                rows = self._missing_from(rows, later)
            else:
                values = {
                    **session_values(session, delivery.appliance_id),
                    **self._references_from(association, ticket, ticket_table, answers),
                    "import_state": "importing",
                }
                rep = next((r for r in session.representatives if r.primary), None)
                user = users.get(rep.username or "") if rep else None
                if user:
                    values["primary_rep_user"] = user
                requests.append(self._insert(Row("session", session_id, values)))
            requests += [self._insert(row) for row in rows]
        if ticket is not None and ticket_table is not None:
            if stream_read is not None:
                stream, _ = self._journal_from(stream_read, later[stream_read])
                entries = [(p, t) for p, t in entries if not written(stream, session.lsid, p)]
            requests += [
                self._journal(ticket_table, ticket.id, text, journal) for _, text in entries
            ]
        await self._run_batches(requests, what=f"import session {session.lsid}")
        if self._c.attach_report:
            target = (ticket_table, ticket.id) if ticket and ticket_table else (table, session_id)
            await self._attach_report(target, delivery)
        if records:
            # Only once everything above succeeded: the Batch API serves every sub-request
            # even after one failed, so "complete" cannot ride in the same batch.
            await self.client.update(table, session_id, {state_col: "complete"})
        return WriteResult(session_id, detail)

    def report_templates(self) -> frozenset[str]:
        """The journal entries read the chat and notes parts' text; the attachment, the
        whole report in its format. Nothing else is rendered."""
        needs = {"chat.txt", "notes.txt"}
        if self._c.attach_report:
            needs.add("report.html" if str(self._c.attachment_format) == "html" else "report.txt")
        return frozenset(needs)

    def _journal_entries(self, delivery: SessionDelivery) -> list[tuple[str, str]]:
        """The journal entries of a session as (part, text); a part the session does not
        have gets none: no chat message, no transcript (its other events alone are not a
        chat), no note, no notes entry, whatever the templates render."""
        session = delivery.session  # only the integration's import_events
        parts = delivery.report.parts
        kinds = {e.event_type for e in session.events}
        entries = []
        for part, wanted, event in (
            ("chat", self._c.log_chat_transcript, EventType.CHAT_MESSAGE),
            ("notes", self._c.log_session_notes, EventType.SESSION_NOTE_ADDED),
        ):
            text = parts[part].text.strip() if wanted and part in parts else ""
            if text and event in kinds:
                entries.append((part, text))
        if self._c.log_session_end:
            entries.append(("end", _end_notice(session)))
        # Before any comparison with the journal stream: what is there is the safe text.
        return [
            (part, journal_safe(f"{text}\n\n{journal_marker(session.lsid, part)}"))
            for part, text in entries
        ]

    async def _attach_report(self, target: tuple[str, str], delivery: SessionDelivery) -> None:
        table, sys_id = target
        fmt = str(self._c.attachment_format)
        name = f"remote-support-session-{delivery.session.lsid}.{fmt}"
        existing = await self.client.query_attachments(table, sys_id, name)
        if existing:
            return
        report = delivery.report.full
        body = report.html if fmt == "html" else report.text
        content_type = "text/html" if fmt == "html" else "text/plain"
        await self.client.attach(
            table, sys_id, name, f"{content_type}; charset=utf-8", body.encode()
        )


def _end_notice(session: SupportSession) -> str:
    rep = session.primary_rep.name if session.primary_rep else "(no representative)"
    customer = session.primary_customer.name if session.primary_customer else "(no customer)"
    start = session.start_time.strftime("%Y-%m-%d %H:%M:%S UTC") if session.start_time else "?"
    end = session.end_time.strftime("%Y-%m-%d %H:%M:%S UTC") if session.end_time else "?"
    return (
        f"Remote Support session ended.\nRepresentative: {rep}\nCustomer: {customer}\n"
        f"Started: {start}\nEnded: {end}"
    )
