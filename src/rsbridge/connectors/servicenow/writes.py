"""How the session import and the surveys write: in batches, once each.

:class:`WritesMixin` holds what both jobs share: the session row's stable sys_id and
per-session lock, the journal field and the marker line of each entry we write (it says
the entry is there), the rows and entries as Batch API sub-requests, and the Batch API
calls with their sub-request failures turned into the connector's errors. What the jobs
read first: :mod:`rsbridge.connectors.servicenow.reads`.
Why each step is done this way: :mod:`rsbridge.connectors.servicenow.session_import`.
"""

from __future__ import annotations

import asyncio
import weakref

from rsbridge.connectors.base import Association
from rsbridge.connectors.servicenow.client import BatchRequest, raise_for_results
from rsbridge.connectors.servicenow.reads import ReadsMixin
from rsbridge.connectors.servicenow.records import Row, stable_id, to_record


class WritesMixin(ReadsMixin):
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

    def _journal_field(self, association: Association) -> str:
        """``journal_field``, except on a ticket an untrusted reference chose: there a
        session's text goes to work notes, never customer-visible comments."""
        return self.options.journal_field if association.trusted else "work_notes"

    async def _journal_and_state(
        self, table: str, sys_id: str, field_name: str | None = None
    ) -> tuple[str, str]:
        """The task's journal stream and state, in a call of their own."""
        read = self._journal_read(table, sys_id, field_name or self.options.journal_field)
        answers = await self.client.read([read], what=f"read {table}")
        return self._journal_from(read, answers[read])

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
            raise_for_results(results, self.client.host, what)


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
