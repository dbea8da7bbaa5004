"""Read rounds: what a session import or a survey must know, read in one call.

A session end needs the ticket, the session's row (is it there, how far did an import
get), the representatives' ``sys_user`` records and the records the session's accepted
references name; a survey needs its answer rows, the session row and the task's journal
and state. Each job names its reads at once (:class:`~.client.Read`) and the client
answers them with one Batch API call (the Batch API serves GETs as it serves writes).

The ticket is looked up by the engine before the import starts. For a session that has
ended, :meth:`ReadsMixin.find_session_ticket` sends the import's reads in the same call as
the lookup and keeps their answers for the write that follows: a session end costs one
read round, one write round and the call that marks it complete.

The answers are kept for one use, for the ticket found, at most :data:`PREFETCH_SECONDS`,
and only within the attempt that read them: they live in a context variable, and the
engine runs each attempt in an asyncio task of its own, so a later attempt (after a
failure between the lookup and the writes, perhaps on another node meanwhile) never sees
them and reads again. An import that finds its ticket in the ledger (no lookup) reads for
itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import Association, Ticket
from rsbridge.connectors.servicenow.client import Read, Record
from rsbridge.connectors.servicenow.records import Row
from rsbridge.connectors.servicenow.tickets import SYS_ID, TicketsMixin, query_value
from rsbridge.errors import TicketNotFoundError

PREFETCH_SECONDS = 10.0
"""How long the answers read along with a ticket lookup stay usable by the import."""
PREFETCH_KEPT = 256
"""At most this many sessions' answers are kept (the oldest are dropped)."""

# The session references a session row may carry: (custom attribute, slot, table, column
# of a value that is not a sys_id).
_REFERENCES = (
    ("snow_call_id", "call", "new_call", "number"),
    ("snow_interaction_id", "interaction", "interaction", "number"),
    ("snow_task_id", "task", "task", "number"),
    ("snow_cmdb_ci_id", "configuration_item", "cmdb_ci", "name"),
)


@dataclass(frozen=True, slots=True)
class _Prefetch:
    """Answers read along with a ticket lookup, for the import that follows."""

    at: float
    ticket_id: str
    session_rows: list[Record]
    """The session table's rows of the session (any appliance or integration)."""
    answers: Mapping[Read, Any]


def ticket_slot(ticket_table: str | None) -> str:
    """The session row's reference a ticket of ``ticket_table`` fills."""
    return {"new_call": "call", "interaction": "interaction"}.get(ticket_table or "", "task")


# Per asyncio task (one engine attempt): (connector, lsid) -> answers. Always replaced,
# never mutated in place, so that a task's additions stay its own.
_KEPT: ContextVar[dict[tuple[int, str], _Prefetch]] = ContextVar("servicenow_prefetch")


def _kept() -> dict[tuple[int, str], _Prefetch]:
    return dict(_KEPT.get({}))


class ReadsMixin(TicketsMixin):
    """Read rounds and the answers read along with a ticket lookup."""

    def _take_prefetch(self, lsid: str) -> _Prefetch | None:
        """The answers kept for ``lsid`` in this attempt, removed (one use)."""
        kept = _kept()
        found = kept.pop((id(self), lsid), None)
        _KEPT.set(kept)
        return found

    def _keep_prefetch(self, lsid: str, prefetch: _Prefetch) -> None:
        kept = _kept()
        kept[(id(self), lsid)] = prefetch
        while len(kept) > PREFETCH_KEPT:
            del kept[next(iter(kept))]
        _KEPT.set(kept)

    async def find_session_ticket(
        self,
        reference: str,
        *,
        source: str,
        session: SupportSession,
        references: Mapping[str, str],
    ) -> Ticket:
        """:meth:`find_ticket`, with the reads of the session's import in the same call
        (for a session that has ended and an integration that writes session records)."""
        if not self._c.write_session_records or session.end_time is None:
            return await self.find_ticket(reference, source=source)
        find = self._find_read(reference, source)
        rows = self._session_rows_read(session.lsid)
        association = Association(references=references)
        reads = [find, rows, *self._users_reads(session)]
        # The reference the lookup follows names the ticket itself: no second lookup.
        reads += [
            read
            for code, _, read in self._reference_reads(association, None)
            if source != f"custom:{code}"
        ]
        # An older answer goes first, whatever becomes of this read.
        self._take_prefetch(session.lsid)
        answers = await self.client.read(reads, what=f"find the ticket of session {session.lsid}")
        ticket = self._found(find, answers[find], reference, source)
        self._keep_prefetch(
            session.lsid,
            _Prefetch(
                time.monotonic(),
                ticket.id,
                list(answers[rows] or []),
                {r: a for r, a in answers.items() if r not in (find, rows)},
            ),
        )
        return ticket

    async def _read_round(
        self,
        reads: Iterable[Read | None],
        *,
        session: SupportSession,
        ticket: Ticket | None,
        session_read: Read | None,
        what: str,
    ) -> dict[Read, Any]:
        """Answers to ``reads`` (None entries skipped): those read along with the ticket
        lookup, if still good, and the rest in one call."""
        wanted = [r for r in reads if r is not None]
        kept = self._take_prefetch(session.lsid)
        usable = (
            kept is not None
            and ticket is not None
            and kept.ticket_id == ticket.id
            and time.monotonic() - kept.at <= PREFETCH_SECONDS
        )
        answers: dict[Read, Any] = {}
        rest: list[Read] = []
        for read in wanted:
            if usable and kept is not None and read in kept.answers:
                answers[read] = kept.answers[read]
            elif usable and kept is not None and read == session_read:
                answers[read] = next(
                    (r for r in kept.session_rows if r.get("sys_id") == read.sys_id), None
                )
            else:
                rest.append(read)
        answers.update(await self.client.read(rest, what=what))
        return answers

    # --- the reads ------------------------------------------------------------------

    def _session_row_read(self, session_id: str) -> Read:
        state = self.schema.col("session", "import_state")
        return Read(self.schema.table("session"), session_id, fields=("sys_id", state))

    def _session_rows_read(self, lsid: str) -> Read:
        lsid_col = self.schema.col("session", "lsid")
        state = self.schema.col("session", "import_state")
        return Read(
            self.schema.table("session"),
            query=f"{lsid_col}={query_value(lsid)}",
            fields=("sys_id", state),
        )

    def _users_reads(self, session: SupportSession) -> list[Read]:
        """The reps' ``sys_user`` records (auto-associate user), in one query."""
        names = sorted({r.username for r in session.representatives if r.username})
        if not self._c.auto_associate_user or not names:
            return []
        field_name = str(self._c.user_match_field)
        return [
            Read(
                "sys_user",
                query=f"{field_name}IN{query_value(','.join(names))}",
                fields=("sys_id", field_name),
            )
        ]

    def _users_from(self, reads: Sequence[Read], answers: Mapping[Read, Any]) -> dict[str, str]:
        """Rep usernames to sys_user sys_ids."""
        field_name = str(self._c.user_match_field)
        found = [r for read in reads for r in answers.get(read) or []]
        return {str(r[field_name]): str(r["sys_id"]) for r in found if r.get(field_name)}

    def _reference_reads(
        self, association: Association, filled: str | None
    ) -> list[tuple[str, str, Read]]:
        """``(attribute, slot, read)`` for each accepted reference a session row may
        follow to a record, but the slot the ticket fills. Only the references the engine
        accepted count (a customer's unsigned value must not relate the session to
        someone else's record), and each must name a record of its table: a sys_id is
        looked up too, never stored unchecked."""
        found = []
        for code, slot, table, by in _REFERENCES:
            value = association.custom(code) or ""
            if value and slot != filled:
                column = "sys_id" if SYS_ID.fullmatch(value) else by
                query = f"{column}={query_value(value)}"
                found.append((code, slot, Read(table, query=query, fields=("sys_id",), limit=1)))
        return found

    def _references_from(
        self,
        association: Association,
        ticket: Ticket | None,
        ticket_table: str | None,
        answers: Mapping[Read, Any],
    ) -> dict[str, str]:
        """The session row's task, call, interaction and CI references."""
        refs: dict[str, str] = {}
        filled = ticket_slot(ticket_table) if ticket is not None else None
        if ticket is not None and filled is not None:
            refs[filled] = ticket.id
        for _, slot, read in self._reference_reads(association, filled):
            records = answers.get(read) or []
            if records and slot not in refs:
                refs[slot] = str(records[0]["sys_id"])
        return refs

    def _kind_read(self, ticket: Ticket | None) -> Read | None:
        """The ticket's table, when the ticket does not say it."""
        if ticket is None or ticket.kind:
            return None
        return Read("task", ticket.id, fields=("sys_class_name",))

    def _ticket_table_from(self, ticket: Ticket, answers: Mapping[Read, Any]) -> str:
        if ticket.kind:
            return ticket.kind
        record = answers.get(Read("task", ticket.id, fields=("sys_class_name",)))
        return str(record.get("sys_class_name") or "task") if record else "task"

    def _journal_read(self, table: str, sys_id: str, field_name: str) -> Read:
        """The task's journal stream (as its form shows it) and its state value.

        Read through the task itself with display values: ``sys_journal_field`` has
        row-level ACLs that often hide it from integration users (reference §1.3).
        """
        return Read(table, sys_id, fields=(field_name, "state"), display_value="all")

    def _journal_from(self, read: Read, record: Record | None) -> tuple[str, str]:
        if record is None:
            raise TicketNotFoundError(f"ServiceNow has no {read.table} with sys_id {read.sys_id}")
        field_name = read.fields[0]
        journal, state = record.get(field_name), record.get("state")
        stream = journal.get("display_value") if isinstance(journal, dict) else journal
        value = state.get("value") if isinstance(state, dict) else state
        return str(stream or ""), str(value or "")

    def _missing_reads(self, rows: Sequence[Row]) -> list[Read]:
        """Which of ``rows`` are in the instance already (after an interrupted import):
        one query per table."""
        by_table: dict[str, list[str]] = {}
        for row in rows:
            by_table.setdefault(row.table, []).append(row.sys_id)
        return [
            Read(self.schema.table(t), query=f"sys_idIN{','.join(ids)}", fields=("sys_id",))
            for t, ids in by_table.items()
        ]

    def _missing_from(self, rows: Sequence[Row], answers: Mapping[Read, Any]) -> list[Row]:
        present = {
            str(r["sys_id"]) for read in self._missing_reads(rows) for r in answers[read] or []
        }
        return [r for r in rows if r.sys_id not in present]
