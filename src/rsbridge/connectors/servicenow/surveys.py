"""Exit surveys and notes: answer rows, survey journal entries and state rules; the
actions' work notes.

The answers hang on the session's row; when the session itself was not imported, a
minimal session row (``import_state = survey_only``) carries them. Each effect is checked
on its own before it is written, so a replay writes nothing twice.
"""

from __future__ import annotations

from rsbridge.connectors.base import NoteDelivery, SurveyDelivery, Ticket, WriteResult
from rsbridge.connectors.servicenow.client import BatchRequest
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
        requests: list[BatchRequest] = []
        ticket_table = await self._ticket_table(ticket) if ticket is not None else None
        if self._c.write_session_records:
            missing = await self._missing(rows) if rows else []
            if missing:
                table = self.schema.table("session")
                if await self.client.get(table, session_id, fields=("sys_id",)) is None:
                    refs = await self._references(delivery.association, ticket, ticket_table)
                    values = {
                        **session_values(session, delivery.appliance_id),
                        **refs,
                        "import_state": "survey_only",
                    }
                    requests.append(self._insert(Row("session", session_id, values)))
                requests += [self._insert(row) for row in missing]
        if ticket is not None and ticket_table is not None:
            # Each effect is checked on its own: a batch cut short may have written the
            # answers but not the note or the state (or the other way round).
            text = ""
            part = f"{delivery.kind} survey {index}"
            if self._c.log_surveys and delivery.rendered.text.strip():
                text = journal_safe(
                    f"{delivery.rendered.text.strip()}\n\n{journal_marker(session.lsid, part)}"
                )
            # A state change only through a reference a customer cannot have chosen.
            state = self._survey_state(delivery) if delivery.association.trusted else None
            if text or state is not None:
                journal = self._journal_field(delivery.association)
                stream, current = await self._journal_and_state(ticket_table, ticket.id, journal)
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
