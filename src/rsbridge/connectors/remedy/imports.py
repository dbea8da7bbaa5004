"""Writing a session, a survey or a note into Remedy: once only, in few AR calls.

The AR REST API has no batch call, so economy comes from what is not asked:

* a session: one search for its ``RSB:Session`` entry; when there is none (the usual
  case) nothing else is searched: the entry is created ("Importing"), then its children
  (participants, and the events a hundred to an entry), then one work info entry with
  the chat, notes and session end (and the report attached in the same multipart call),
  and last the session entry is marked "Complete" with the work info ids. About seven
  calls for a session with one representative and one customer.
* a replay finds the entry: "Complete" ends it; "Importing" (an earlier attempt stopped
  half-way) lists the children and the ticket's rsbridge work info entries and writes
  only what is missing. Every work info entry carries a marker in its summary
  (``rsb-<hex>``) by which it is found before it is written.
* without the session forms (``storage = "work_info"``) the marker search is the
  once-only check.

A survey: its ``RSB:Session Survey`` entry is written last and is the proof of import;
before it, the ticket's work info entry (found by marker first). A note: a work info
entry, found by marker first.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import Association, SessionDelivery, SurveyDelivery, Ticket
from rsbridge.connectors.remedy.client import Attachment, RemedyClient, equals, field_ref
from rsbridge.connectors.remedy.forms import EVENTS, PARTICIPANT, ROW_KEY, SESSION, SESSION_KEY
from rsbridge.connectors.remedy.records import (
    child_rows,
    row_key,
    session_key,
    session_row,
    survey_row,
)
from rsbridge.connectors.remedy.settings import Options
from rsbridge.connectors.text import safe_filename, split_text
from rsbridge.errors import ConnectorPermanentError

COMPLETE = "Complete"
IMPORTING = "Importing"
SUMMARY_CHARS = 100  # HPD:WorkLog "Description" (the work info summary)
DETAIL_CHARS = 30_000
"""Characters per work info entry's Detailed Description; longer text goes in several
entries, numbered (nothing is cut)."""
REPORT_FIELD = "z2AF Work Log01"
NO_WORK_LOG = "a service request has no work info form rsbridge writes"
PRIVATE = Association()
"""Notes and representatives' surveys: internal, never public."""


@dataclass(frozen=True, slots=True)
class WorkLogForm:
    """Where a kind of ticket keeps its work info, and the field naming the ticket."""

    form: str
    parent: str
    id_field: str = "Work Log ID"  # field 1 (recorded list_worklogs.json)


WORK_LOGS = {
    "incident": WorkLogForm("HPD:WorkLog", "Incident Number"),
    "change": WorkLogForm("CHG:WorkLog", "Infrastructure Change ID"),
}
"""Service requests have no work info form the REST API writes simply; their sessions
go to the session forms only."""


@dataclass(frozen=True, slots=True)
class WorkInfo:
    """One work info entry to write: its marker (in the summary), summary and text."""

    marker: str
    summary: str
    text: str
    files: tuple[Attachment, ...] = ()


class Importer:
    """Writes sessions, surveys and notes of one integration (see the module docstring)."""

    def __init__(self, client: RemedyClient, options: Options) -> None:
        self.client = client
        self.options = options
        self.created_work_info = 0
        """Work info entries this importer created (tests, benchmarks)."""
        # One import of a session at a time in this process (the engine already orders a
        # session's jobs; this guards a survey racing its session's replay).
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    # --- sessions ---------------------------------------------------------------------

    async def write_session(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> dict[str, str]:
        """The session's entries and work info, once only."""
        key = session_key(delivery.appliance_id, delivery.integration, delivery.session.lsid)
        async with self._lock(key):
            return await self._write_session(key, ticket, delivery)

    async def _write_session(
        self, key: str, ticket: Ticket | None, delivery: SessionDelivery
    ) -> dict[str, str]:
        session = delivery.session
        what = f"import session {session.lsid}"
        options = self.options
        work = self._work_info(ticket, delivery) if options.work_info else []
        log = WORK_LOGS.get(ticket.kind or "") if ticket is not None else None
        trust = delivery.association
        skipped = {"skipped": f"work info: {NO_WORK_LOG}"} if work and log is None else {}
        if not options.sessions:
            ids = await self._write_work_info(
                ticket, log, work, known=None, what=what, association=trust
            )
            return {"work_info": str(len(ids)), **skipped}
        found = await self.client.search(
            SESSION.name,
            equals(SESSION_KEY, key),
            ("Request ID", "Import State", "Work Log IDs"),
            limit=2,
            what=what,
        )
        if found and found[0].get("Import State") == COMPLETE:
            return {"already": COMPLETE}
        header = session_row(
            session,
            key,
            appliance_id=delivery.appliance_id,
            integration=delivery.integration,
            ticket_number=ticket.number or ticket.id if ticket is not None else None,
            ticket_form=ticket.kind if ticket is not None else None,
            details=delivery.report.full.text,
            association=delivery.association.source,
            state=IMPORTING,
        )
        rows = list(child_rows(session, key, header.values.get("Ticket Number")))
        if found:
            entry_id = str(found[0].get("Request ID") or "")
            written = await self._written_rows(key, what=what)
            rows = [r for r in rows if r.key not in written]
            # Work info an earlier attempt wrote is found by its marker.
            known: set[str] | None = None
        else:
            entry_id = await self.client.create(SESSION.name, header.values, what=what)
            known = set()  # the session entry is new: no work info of it can exist yet
        if not entry_id:
            raise ConnectorPermanentError(
                f"{self.client.where}: {what}: {SESSION.name} gave the entry no id; it must be "
                "a regular form (import it with `rsbridge remedy forms`)"
            )
        for row in rows:
            await self.client.create(row.form.name, row.values, what=what)
        ids = await self._write_work_info(
            ticket, log, work, known=known, what=what, association=trust
        )
        done: dict[str, Any] = {"Import State": COMPLETE}
        if ids:
            done["Work Log IDs"] = ", ".join(ids)[:255]
        await self.client.update(SESSION.name, entry_id, done, what=what)
        return {"entries": str(1 + len(rows)), "work_info": str(len(ids)), **skipped}

    async def _written_rows(self, key: str, *, what: str) -> set[str]:
        """Row keys of the children an earlier attempt wrote."""
        written: set[str] = set()
        for form in (PARTICIPANT, EVENTS):
            for values in await self.client.search(
                form.name, equals(SESSION_KEY, key), (ROW_KEY,), what=what
            ):
                written.add(str(values.get(ROW_KEY) or ""))
        return written

    def _work_info(self, ticket: Ticket | None, delivery: SessionDelivery) -> list[WorkInfo]:
        """The session's work info: chat, notes and end notice in one entry (split when
        longer than an entry holds), the report attached to the first."""
        if ticket is None:
            return []
        options = self.options
        session = delivery.session
        parts = delivery.report.parts
        sections: list[str] = []
        if options.chat and "chat" in parts and parts["chat"].text.strip():
            sections.append(parts["chat"].text.strip())
        if options.notes and "notes" in parts and parts["notes"].text.strip():
            sections.append(parts["notes"].text.strip())
        if options.end:
            sections.append(_end_notice(session))
        if not sections:
            return []
        files: tuple[Attachment, ...] = ()
        if options.attach is not None:
            fmt = options.attach
            body = delivery.report.full.html if fmt == "html" else delivery.report.full.text
            files = (
                Attachment(
                    REPORT_FIELD,
                    f"session-{safe_filename(session.lsid)}.{fmt}",
                    body.encode(),
                    "text/html; charset=utf-8" if fmt == "html" else "text/plain; charset=utf-8",
                ),
            )
        return _entries(
            row_key(delivery.key, "work-info"),
            f"BeyondTrust session {session.lsid}",
            "\n\n".join(sections),
            files,
        )

    # --- surveys and notes --------------------------------------------------------------

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> dict[str, str]:
        """The survey's entry and work info, once only."""
        key = session_key(delivery.appliance_id, delivery.integration, delivery.session.lsid)
        async with self._lock(key):
            return await self._write_survey(key, ticket, delivery)

    async def _write_survey(
        self, key: str, ticket: Ticket | None, delivery: SurveyDelivery
    ) -> dict[str, str]:
        session = delivery.session
        what = f"import {delivery.kind} survey of {session.lsid}"
        options = self.options
        row = survey_row(
            key,
            delivery.key,
            lsid=session.lsid,
            kind=delivery.kind,
            survey=delivery.survey,
            submitted=session.end_time,
            ticket_number=(ticket.number or ticket.id) if ticket is not None else None,
        )
        if options.sessions:
            found = await self.client.search(
                row.form.name, equals(ROW_KEY, row.key), (ROW_KEY,), limit=1, what=what
            )
            if found:
                return {"already": COMPLETE}
        text = delivery.rendered.text.strip()
        work: list[WorkInfo] = []
        if ticket is not None and options.work_info and options.surveys and text:
            label = "customer" if delivery.kind == "customer" else "representative"
            work = _entries(
                row_key(delivery.key, "work-info"),
                f"BeyondTrust {label} survey {session.lsid}",
                text,
                (),
            )
        log = WORK_LOGS.get(ticket.kind or "") if ticket is not None else None
        # A representative's survey is internal; a customer's may be public.
        association = delivery.association if delivery.kind == "customer" else PRIVATE
        ids = await self._write_work_info(
            ticket, log, work, known=None, what=what, association=association
        )
        if options.sessions:
            await self.client.create(row.form.name, row.values, what=what)
        skipped = {"skipped": f"work info: {NO_WORK_LOG}"} if work and log is None else {}
        return {"work_info": str(len(ids)), **skipped}

    async def write_note(self, ticket: Ticket, key: str, text: str) -> dict[str, str]:
        """An internal work info entry, unless the ticket has it already."""
        log = WORK_LOGS.get(ticket.kind or "")
        if log is None:
            return {"skipped": NO_WORK_LOG}
        work = _entries(row_key(key, "note"), "rsbridge note", text, ())
        before = self.created_work_info
        await self._write_work_info(
            ticket, log, work, known=None, what="add a note", association=PRIVATE
        )
        return {} if self.created_work_info > before else {"already": "written"}

    # --- work info --------------------------------------------------------------------

    async def _write_work_info(
        self,
        ticket: Ticket | None,
        log: WorkLogForm | None,
        work: Sequence[WorkInfo],
        *,
        known: set[str] | None,
        what: str,
        association: Association | None = None,
    ) -> list[str]:
        """Create the entries whose marker the ticket lacks; ``known``: markers known to
        exist (None: search the ticket's work info first). The ids of all of them (found or
        made), in order."""
        if ticket is None or log is None or not work:
            return []
        number = ticket.number or ticket.id
        existing: dict[str, str] = {}
        if known is None:
            stem = work[0].marker.rsplit("-", 1)[0]
            found = await self.client.search(
                log.form,
                f'{equals(log.parent, number)} AND {field_ref("Description")} LIKE "%{stem}%"',
                (log.id_field, "Description"),
                what=what,
            )
            known = set()
            for entry in found:
                for marker in _markers(str(entry.get("Description") or "")):
                    known.add(marker)
                    existing[marker] = str(entry.get(log.id_field) or "")
        public = self.options.public and (association or PRIVATE).trusted
        ids: list[str] = []
        for item in work:
            if item.marker in known:
                if existing.get(item.marker):
                    ids.append(existing[item.marker])
                continue
            values: dict[str, Any] = {
                log.parent: number,
                "Work Log Type": self.options.work_type,
                "Description": item.summary,
                "Detailed Description": item.text,
                "View Access": "Public" if public else "Internal",
                "Secure Work Log": "Yes" if self.options.locked else "No",
            }
            if self.options.source:
                values["Communication Source"] = self.options.source
            for file in item.files:
                values[file.field] = file.filename
            ids.append(await self.client.create(log.form, values, files=item.files, what=what))
            self.created_work_info += 1
        return ids


def _entries(marker: str, title: str, text: str, files: tuple[Attachment, ...]) -> list[WorkInfo]:
    """``text`` as work info entries of at most :data:`DETAIL_CHARS`, each summary
    ending with its marker ``rsb-<hex>-<n>``; ``files`` on the first."""
    stem = f"rsb-{marker[:20]}"
    parts = split_text(text, DETAIL_CHARS, measure=len)
    out = []
    for i, part in enumerate(parts):
        tag = f"{stem}-{i}"
        count = f" ({i + 1}/{len(parts)})" if len(parts) > 1 else ""
        room = SUMMARY_CHARS - len(tag) - len(count) - 1
        summary = f"{title[:room]}{count} {tag}"
        out.append(WorkInfo(tag, summary, part, files if i == 0 else ()))
    return out


def _markers(summary: str) -> Iterable[str]:
    return [word for word in summary.split() if word.startswith("rsb-")]


def _end_notice(session: SupportSession) -> str:
    reps = ", ".join(r.display_name or r.username or "?" for r in session.representatives)
    ended = session.end_time.isoformat(timespec="seconds") if session.end_time else "?"
    return (
        f"Remote Support session {session.lsid} ended {ended} (representatives: {reps or 'none'})"
    )
