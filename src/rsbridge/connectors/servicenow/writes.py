"""How the session import and the surveys write: in batches, once each.

:class:`WritesMixin` holds what both jobs share: the session row's stable sys_id and
per-session lock, the references a session row may carry, which rows are already there,
the task's journal stream (the footer line of each entry we wrote says it is there), and
the Batch API calls with their sub-request failures turned into the connector's errors.
Why each step is done this way: :mod:`rsbridge.connectors.servicenow.session_import`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence

from rsbridge.connectors.base import Association, Ticket
from rsbridge.connectors.servicenow.client import BatchRequest, BatchResult
from rsbridge.connectors.servicenow.records import Row, stable_id, to_record
from rsbridge.connectors.servicenow.tickets import TicketsMixin
from rsbridge.errors import (
    ConnectorAuthError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)


class WritesMixin(TicketsMixin):
    """Session rows, journal entries and Batch API calls, shared by imports and surveys."""

    # Set by ServiceNowConnector.__init__.
    _session_locks: weakref.WeakValueDictionary[str, asyncio.Lock]

    def session_sys_id(self, appliance_id: str, integration: str, lsid: str) -> str:
        """The sys_id of a session's row (stable: the same session, the same row)."""
        return stable_id(appliance_id, integration, lsid, "session")

    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._session_locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._session_locks[session_id] = lock
        return lock

    async def _references(
        self, association: Association, ticket: Ticket | None, ticket_table: str | None
    ) -> dict[str, str]:
        """The session row's task, call, interaction and CI references.

        Only the references the engine accepted count (a customer's unsigned value must
        not relate the session to someone else's record), and each must name a record
        of its table: a sys_id is looked up too, never stored unchecked.
        """
        refs: dict[str, str] = {}
        if ticket is not None:
            slot = {"new_call": "call", "interaction": "interaction"}.get(
                ticket_table or "", "task"
            )
            refs[slot] = ticket.id
        for code, slot, table in (
            ("snow_call_id", "call", "new_call"),
            ("snow_interaction_id", "interaction", "interaction"),
            ("snow_task_id", "task", "task"),
        ):
            value = association.custom(code) or ""
            if value and slot not in refs:
                found = await self._record_id(table, value, "number")
                if found:
                    refs[slot] = found
        ci = association.custom("snow_cmdb_ci_id") or ""
        if ci:
            found = await self._record_id("cmdb_ci", ci, "name")
            if found:
                refs["configuration_item"] = found
        return refs

    async def _missing(self, rows: list[Row]) -> list[Row]:
        """The rows not in the instance yet (after an interrupted import)."""
        missing: list[Row] = []
        by_table: dict[str, list[Row]] = {}
        for row in rows:
            by_table.setdefault(row.table, []).append(row)
        for logical, group in by_table.items():
            ids = ",".join(r.sys_id for r in group)
            found = await self.client.query(
                self.schema.table(logical), f"sys_idIN{ids}", fields=("sys_id",)
            )
            present = {str(r["sys_id"]) for r in found}
            missing += [r for r in group if r.sys_id not in present]
        return missing

    def _journal_field(self, association: Association) -> str:
        """``journal_field``, except on a ticket an untrusted reference chose: there a
        session's text goes to work notes, never customer-visible comments."""
        return self.options.journal_field if association.trusted else "work_notes"

    async def _journal_and_state(
        self, table: str, sys_id: str, field_name: str | None = None
    ) -> tuple[str, str]:
        """The task's journal stream (as its form shows it) and its state value.

        Read through the task itself with display values: ``sys_journal_field`` has
        row-level ACLs that often hide it from integration users (reference §1.3).
        """
        field_name = field_name or self.options.journal_field
        record = await self.client.get(
            table, sys_id, fields=(field_name, "state"), display_value="all"
        )
        if record is None:
            raise TicketNotFoundError(f"ServiceNow has no {table} with sys_id {sys_id}")
        journal, state = record.get(field_name), record.get("state")
        stream = journal.get("display_value") if isinstance(journal, dict) else journal
        value = state.get("value") if isinstance(state, dict) else state
        return str(stream or ""), str(value or "")

    def _insert(self, row: Row) -> BatchRequest:
        return BatchRequest(
            f"{row.table}-{row.sys_id}",
            "POST",
            f"/api/now/table/{self.schema.table(row.table)}",
            to_record(self.schema, row),
        )

    def _journal(self, table: str, sys_id: str, text: str, field_name: str) -> BatchRequest:
        return BatchRequest(
            f"journal-{stable_id(text)[:12]}",
            "PATCH",
            f"/api/now/table/{table}/{sys_id}",
            {field_name: text},
        )

    async def _run_batches(self, requests: list[BatchRequest], *, what: str) -> None:
        size = max(1, int(self._c.batch_size))
        for start in range(0, len(requests), size):
            chunk = requests[start : start + size]
            results = await self.client.batch(chunk, what=what)
            _raise_for_batch(results, self.client.host, what)


MARKER_LSID_CHARS = 12
"""How much of the session id a journal entry's marker keeps: 48 bits tell apart the
sessions of one task, and the session row keeps the whole id."""


def journal_marker(lsid: str, part: str) -> str:
    """The last line of a journal entry we write: the session (its id's first 12
    characters) and the part, e.g. ``(RS session 1a2b3c4d5e6f: chat)``. Looked for in the
    task's journal stream, it makes each entry once-only."""
    return f"(RS session {lsid[:MARKER_LSID_CHARS]}: {part})"


def legacy_marker(lsid: str, part: str) -> str:
    """The marker entries carried before the short one (whole id, long part names), so
    that an import interrupted before an upgrade does not write them again."""
    long_part = _LEGACY_PARTS.get(part, part)
    return f"(Remote Support session {lsid}: {long_part})"


_LEGACY_PARTS = {"chat": "chat transcript", "notes": "session notes", "end": "session end"}


def written(stream: str, lsid: str, part: str) -> bool:
    """Whether the journal ``stream`` already holds the entry of ``part`` of session
    ``lsid`` (by its marker, or by the long marker of earlier versions)."""
    return journal_marker(lsid, part) in stream or legacy_marker(lsid, part) in stream


def _raise_for_batch(results: Sequence[BatchResult], host: str, what: str) -> None:
    for result in results:
        if 200 <= result.status < 300:
            continue
        message = "error"
        if isinstance(result.body, dict) and isinstance(result.body.get("error"), dict):
            error = result.body["error"]
            message = str(error.get("message") or "error")
            if error.get("detail"):
                message += f": {error['detail']}"
        where = f"ServiceNow {host}: {what}: sub-request {result.id} answered {result.status}"
        if result.status == 401:
            raise ConnectorAuthError(f"{where} ({message})")
        if result.status == 429 or result.status >= 500:
            raise ConnectorRetryableError(f"{where} ({message})")
        hint = (
            "; give the integration user the roles for this table" if result.status == 403 else ""
        )
        raise ConnectorPermanentError(f"{where} ({message}){hint}")
