"""Exit surveys and notes: answer rows, survey journal entries and state rules; the
actions' work notes.

The answers hang on the session's row; when the session itself was not imported, a
minimal session row (``import_state = survey_only``) carries them. Each effect is checked
on its own before it is written, so a replay writes nothing twice. A survey costs one read
round and one write round.
"""

from __future__ import annotations

from rsbridge.connectors.base import NoteDelivery, SurveyDelivery, Ticket, WriteResult
from rsbridge.connectors.servicenow.client import BatchRequest
from rsbridge.connectors.servicenow.reads import ticket_slot
from rsbridge.connectors.servicenow.records import (
    Row,
    journal_safe,
    session_values,
    stable_id,
    survey_rows,
)
from rsbridge.connectors.servicenow.writes import WritesMixin, journal_marker, written


class SurveysMixin(WritesMixin):
    """``write_survey`` and ``write_note``."""

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        """Survey answer rows on the session (a minimal session row when the session
        itself was not imported), a journal entry and the state rules."""
        session_id = self.session_sys_id(
            delivery.appliance_id, delivery.integration, delivery.session.lsid
        )
        async with self._lock(session_id):
            return await self._write_survey(ticket, delivery, session_id)

    async def _write_survey(
        self, ticket: Ticket | None, delivery: SurveyDelivery, session_id: str
    ) -> WriteResult:
        session = delivery.session
        index = _survey_index(delivery.key)
        rows = survey_rows(delivery.key, session_id, delivery.kind, index, delivery.survey)
        records = bool(self._c.write_session_records and rows)
        association = delivery.association
        text = ""
        part = f"{delivery.kind} survey {index}"
        if self._c.log_surveys and delivery.rendered.text.strip():
            text = journal_safe(
                f"{delivery.rendered.text.strip()}\n\n{journal_marker(session.lsid, part)}"
            )
        # A state change only through a reference a customer cannot have chosen.
        state = self._survey_state(delivery) if association.trusted else None
        journal = self._journal_field(association)
        # One read round: which answers are there, the session row (and the records its
        # references name, should it be missing), the task's journal and state. Each
        # effect is checked on its own: a batch cut short may have written the answers
        # but not the note or the state (or the other way round).
        row_read = self._session_row_read(session_id) if records else None
        filled = ticket_slot(ticket.kind) if ticket is not None and ticket.kind else None
        ref_reads = [r for _, _, r in self._reference_reads(association, filled)] if records else []
        stream_read = None
        if ticket is not None and ticket.kind and (text or state is not None):
            stream_read = self._journal_read(ticket.kind, ticket.id, journal)
        answers = await self._read_round(
            [
                *(self._missing_reads(rows) if records else []),
                row_read,
                *ref_reads,
                self._kind_read(ticket),
                stream_read,
            ],
            session=session,
            ticket=ticket,
            session_read=row_read,
            what=f"read for the {delivery.kind} survey of {session.lsid}",
        )
        ticket_table = self._ticket_table_from(ticket, answers) if ticket is not None else None
        if stream_read is None and ticket and ticket_table and (text or state is not None):
            # Only when the ticket did not say its table.
            stream_read = self._journal_read(ticket_table, ticket.id, journal)
            answers.update(await self.client.read([stream_read], what=f"read {ticket_table}"))

        requests: list[BatchRequest] = []
        missing = self._missing_from(rows, answers) if records else []
        if missing:
            if row_read is not None and answers.get(row_read) is None:
                values = {
                    **session_values(session, delivery.appliance_id),
                    **self._references_from(association, ticket, ticket_table, answers),
                    "import_state": "survey_only",
                }
                requests.append(self._insert(Row("session", session_id, values)))
            requests += [self._insert(row) for row in missing]
        if ticket is not None and ticket_table is not None and stream_read is not None:
            stream, current = self._journal_from(stream_read, answers[stream_read])
            if text and not written(stream, session.lsid, part):
                requests.append(self._journal(ticket_table, ticket.id, text, journal))
            if state is not None and current != state:
                requests.append(
                    BatchRequest(
                        "state",
                        "PATCH",
                        f"/api/now/table/{ticket_table}/{ticket.id}",
                        {"state": state},
                    )
                )
        if requests:
            await self._run_batches(
                requests, what=f"import {delivery.kind} survey of {session.lsid}"
            )
        detail = {"answers": str(len(rows))}
        if not requests:
            detail["already"] = "complete"
        return WriteResult(session_id, detail)

    def _survey_state(self, delivery: SurveyDelivery) -> str | None:
        for rule in self.options.state_rules:
            answer = delivery.survey.answer(rule.question)
            if (
                rule.kind == delivery.kind
                and answer is not None
                and (answer.strip().casefold() == rule.answer.casefold())
            ):
                return rule.state
        return None

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        """A journal entry, once per ``note.key`` (its last line carries a reference)."""
        marker = f"rsbridge ref {stable_id(note.key)[:16]}"
        table = await self._ticket_table(ticket)
        stream, _ = await self._journal_and_state(table, ticket.id)
        if marker in stream:
            return WriteResult(marker, {"already": "written"})
        await self.client.update(
            table,
            ticket.id,
            {self.options.journal_field: f"{journal_safe(note.text)}\n\n({marker})"},
        )
        return WriteResult(marker)


def _survey_index(key: str) -> int:
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
