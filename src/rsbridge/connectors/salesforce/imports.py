"""Writing a session, a survey or a note into Salesforce in as few calls as an org allows.

Orgs have a daily API allowance, so an import is two calls after the Case was found:

1. one composite call of queries: is the session already there (and complete), which
   Salesforce users the representatives are, the Case's status;
2. one composite call with ``allOrNone``: the session record upserted by its import key,
   its children upserted in sObject Collections of up to 200 (naming the session by its
   import key), the comments on the Case. Salesforce applies it whole or not at all, so
   the session is marked complete in the same call and a replay finds it complete.

A session too large for one call (more than 25 subrequests) goes in several; its comments
ride with the first one, which creates the session record, so a replay that finds the
session (complete or not) writes the records again (upserts: no duplicates) and no comment.
Without session records (``write_session_records = false``) the Case's comments are read
instead, and a comment whose footer is there already is not written again.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import Association, SessionDelivery, SurveyDelivery, Ticket
from rsbridge.connectors.salesforce.client import (
    LIMIT_RETRY_SECONDS,
    SalesforceClient,
    SalesforceError,
    SubRequest,
    soql_quote,
)
from rsbridge.connectors.salesforce.records import (
    KEY_FIELD,
    SfRecord,
    child_records,
    import_key,
    session_record,
    survey_records,
    to_sobject,
)
from rsbridge.connectors.salesforce.schema import Schema
from rsbridge.connectors.salesforce.settings import Options
from rsbridge.errors import ConnectorPermanentError, ConnectorQuotaError, ConnectorRetryableError

MAX_SUBREQUESTS = 25
COLLECTION_SIZE = 200
COMMENT_BYTES = 4000  # CaseComment.CommentBody
FEED_CHARS = 10_000  # FeedItem.Body
COMPLETE = "complete"
_ROLLED_BACK = frozenset({"PROCESSING_HALTED", "ALL_OR_NONE_OPERATION_ROLLED_BACK"})
_PASSING = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"})


def session_key(appliance_id: str, integration: str, lsid: str) -> str:
    """The import key of a session's record: the same for its import and its surveys."""
    return import_key(appliance_id, integration, lsid, "session")


class Importer:
    """Writes sessions, surveys and notes of one integration (see the module docstring)."""

    def __init__(self, client: SalesforceClient, schema: Schema, options: Options) -> None:
        self.client = client
        self.schema = schema
        self.options = options
        # One write per session at a time in this process: concurrent ones would each find
        # the session missing and add its comments again. (Across processes the engine's
        # job leases keep one worker per session.)
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

    async def write_session(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> dict[str, str]:
        """Upsert the session and its children, add the comments; once only."""
        key = session_key(delivery.appliance_id, delivery.integration, delivery.session.lsid)
        async with self._lock(key):
            return await self._write_session(key, ticket, delivery)

    async def _write_session(
        self, key: str, ticket: Ticket | None, delivery: SessionDelivery
    ) -> dict[str, str]:
        session = delivery.session
        what = f"import session {session.lsid}"
        entries = _entries(self.options, delivery) if ticket is not None else []
        names = sorted({r.username for r in session.representatives if r.username})
        queries = {"session": self._session_query(key)}
        if names and self.options.records:
            queries["users"] = self._users_query(names)
        if entries and not self.options.records:
            queries["comments"] = self._comments_query(ticket)
        found = await self._look(queries, what=what)
        existing = found["session"]
        s = self.schema
        if existing and existing[0].get(s.field("session", "import_state")) == COMPLETE:
            return {"already": COMPLETE}
        if existing or "comments" in found:
            # The comments rode with the call that created the session record (or, without
            # records, are found on the Case): only those not there yet are written.
            entries = [e for e in entries if _footer(e) not in _bodies(found.get("comments"))]
            if existing:
                entries = []
        comments = self._comments(ticket, delivery.association, entries) if ticket else []
        if not self.options.records:
            for group in _chunks(comments, MAX_SUBREQUESTS):
                await self._apply(group, what=what)
            return {"comments": str(len(comments))}
        users = _rep_users(found.get("users", []), names, self.options.user_field)
        record = session_record(
            session,
            key,
            delivery.appliance_id,
            case_id=ticket.id if ticket is not None else None,
            rep_user=_primary_user(session, users),
            recording_base_url=self.options.recording_base_url,
        )
        children = self._collections(key, list(child_records(session, key, users)))
        first = [self._session_upsert(record, COMPLETE), *comments]
        groups = _chunks([*first, *children], MAX_SUBREQUESTS)
        if len(groups) > 1:
            # Several calls: the session is complete only once the last one succeeded.
            groups[0][0] = self._session_upsert(record, "importing")
            groups.append([self._session_upsert(record, COMPLETE)])
        for group in groups:
            await self._apply(group, what=what)
        return {"records": str(1 + sum(len(c.body["records"]) for c in children if c.body))}

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> dict[str, str]:
        """The survey's answers (and a minimal session record if the session was not
        imported), a comment, and the Case status its rules name; once only."""
        session = delivery.session
        index = _survey_index(delivery.key)
        what = f"import {delivery.kind} survey of {session.lsid}"
        key = session_key(delivery.appliance_id, delivery.integration, session.lsid)
        answers = survey_records(import_key(delivery.key), delivery.kind, index, delivery.survey)
        text = delivery.rendered.text.strip()
        footer = f"(Remote Support session {session.lsid}: {delivery.kind} survey {index})"
        entries = [f"{text}\n\n{footer}"] if ticket and self.options.surveys and text else []
        status = self._transition(delivery) if ticket is not None else None
        queries: dict[str, str] = {}
        if self.options.records and answers:
            queries["answer"] = self._key_query("survey", answers[0].key)
            queries["session"] = self._session_query(key)
        elif entries:
            queries["comments"] = self._comments_query(ticket)
        if status is not None and ticket is not None:
            queries["case"] = f"SELECT Status FROM Case WHERE Id = {soql_quote(ticket.id)}"
        if not queries:
            return {"answers": "0"}
        found = await self._look(queries, what=what)
        requests: list[SubRequest] = []
        written = bool(found.get("answer"))
        if self.options.records and answers and not written:
            if not found.get("session"):
                record = session_record(
                    session,
                    key,
                    delivery.appliance_id,
                    case_id=ticket.id if ticket is not None else None,
                    rep_user=None,
                    recording_base_url=self.options.recording_base_url,
                )
                requests.append(self._session_upsert(record, "survey_only"))
            requests += self._collections(key, answers)
        if entries and not written:
            entries = [e for e in entries if _footer(e) not in _bodies(found.get("comments"))]
            requests += self._comments(ticket, delivery.association, entries) if ticket else []
        case_rows = found.get("case") or []
        current = str(case_rows[0].get("Status") or "") if case_rows else None
        # Once: a replay of the survey (its answers are there) leaves a reopened Case be.
        moves = status is not None and current is not None and current != status
        if moves and ticket is not None and not written:
            path = f"/sobjects/Case/{ticket.id}"
            requests.append(SubRequest("status", "PATCH", path, {"Status": status}))
        for group in _chunks(requests, MAX_SUBREQUESTS):
            await self._apply(group, what=what)
        return {"answers": str(len(answers)), **({"already": COMPLETE} if written else {})}

    async def write_note(self, ticket: Ticket, text: str, marker: str) -> bool:
        """A comment ending with ``marker``, unless the Case has one already; whether
        it was written now."""
        what = f"note on Case {ticket.number or ticket.id}"
        found = await self._look({"comments": self._comments_query(ticket)}, what=what)
        if any(marker in body for body in _bodies(found["comments"])):
            return False
        entry = f"{text}\n\n({marker})"
        await self._apply(self._comments(ticket, Association(trusted=True), [entry]), what=what)
        return True

    def _transition(self, delivery: SurveyDelivery) -> str | None:
        if not delivery.association.trusted:
            return None  # a Case a customer-set reference chose is never moved
        for rule in self.options.rules:
            answer = delivery.survey.answer(rule.question)
            if (
                rule.kind == delivery.kind
                and answer is not None
                and answer.strip().casefold() == rule.answer.casefold()
            ):
                return rule.status
        return None

    # --- queries -------------------------------------------------------------------------

    def _session_query(self, key: str) -> str:
        s = self.schema
        return (
            f"SELECT Id, {s.field('session', 'import_state')} FROM {s.object('session')} "
            f"WHERE {s.field('session', KEY_FIELD)} = {soql_quote(key)}"
        )

    def _key_query(self, obj: str, key: str) -> str:
        s = self.schema
        return f"SELECT Id FROM {s.object(obj)} WHERE {s.field(obj, KEY_FIELD)} = {soql_quote(key)}"

    def _users_query(self, names: Sequence[str]) -> str:
        field = self.options.user_field
        listed = ", ".join(soql_quote(n) for n in names)
        local = "".join(f" OR Username LIKE {soql_quote(_like(n) + '@%')}" for n in names)
        return (
            f"SELECT Id, Username, {field} FROM User "
            f"WHERE {field} IN ({listed}) OR Username IN ({listed}){local}"
        )

    def _comments_query(self, ticket: Ticket | None) -> str:
        assert ticket is not None
        if self.options.comments == "feed_item":
            return f"SELECT Body FROM FeedItem WHERE ParentId = {soql_quote(ticket.id)}"
        return f"SELECT CommentBody FROM CaseComment WHERE ParentId = {soql_quote(ticket.id)}"

    async def _look(self, queries: Mapping[str, str], *, what: str) -> dict[str, list[Any]]:
        """The records each query selects, all in one composite call."""
        results = await self.client.composite(
            [
                SubRequest(ref, "GET", f"/query?q={quote(soql, safe='')}")
                for ref, soql in queries.items()
            ],
            all_or_none=False,
            what=what,
        )
        found: dict[str, list[Any]] = {}
        for result in results:
            if not 200 <= result.status < 300:
                self._raise(
                    what, [f"{result.reference_id}: " + _said(result.errors)], result.errors
                )
            body = result.body
            records = body.get("records") if isinstance(body, dict) else None
            found[result.reference_id] = records if isinstance(records, list) else []
        return found

    # --- writes --------------------------------------------------------------------------

    def _session_upsert(self, record: SfRecord, state: str) -> SubRequest:
        s = self.schema
        values = to_sobject(s, record, session_key=None)
        del values[s.field("session", KEY_FIELD)]  # it is in the URL
        values[s.field("session", "import_state")] = state
        path = f"/sobjects/{s.object('session')}/{s.field('session', KEY_FIELD)}/{record.key}"
        return SubRequest("session", "PATCH", path, values)

    def _collections(self, parent_key: str, children: Sequence[SfRecord]) -> list[SubRequest]:
        """Upserts of ``children`` by their import key, 200 a subrequest."""
        s = self.schema
        by_object: dict[str, list[SfRecord]] = {}
        for child in children:
            by_object.setdefault(child.obj, []).append(child)
        requests = []
        for obj, records in by_object.items():
            path = f"/composite/sobjects/{s.object(obj)}/{s.field(obj, KEY_FIELD)}"
            for n, part in enumerate(_chunks(records, COLLECTION_SIZE)):
                rows = [
                    {
                        "attributes": {"type": s.object(obj)},
                        **to_sobject(s, r, session_key=parent_key),
                    }
                    for r in part
                ]
                requests.append(
                    SubRequest(f"{obj}{n}", "PATCH", path, {"allOrNone": True, "records": rows})
                )
        return requests

    def _comments(
        self, ticket: Ticket | None, association: Association, entries: Iterable[str]
    ) -> list[SubRequest]:
        """Case comments (or Chatter posts) for ``entries``, split to the size limits."""
        if ticket is None or self.options.comments == "none":
            return []
        # Never customer-visible on a Case a customer-set reference chose.
        public = self.options.public and association.trusted
        records: list[dict[str, Any]] = []
        for entry in entries:
            if self.options.comments == "feed_item":
                records += [
                    {
                        "attributes": {"type": "FeedItem"},
                        "ParentId": ticket.id,
                        "Body": part,
                        "Type": "TextPost",
                        "Visibility": "AllUsers" if public else "InternalUsers",
                    }
                    for part in split_text(entry, FEED_CHARS, measure=len)
                ]
            else:
                records += [
                    {
                        "attributes": {"type": "CaseComment"},
                        "ParentId": ticket.id,
                        "CommentBody": part,
                        "IsPublished": public,
                    }
                    for part in split_text(entry, COMMENT_BYTES)
                ]
        return [
            SubRequest(
                f"comments{n}", "POST", "/composite/sobjects", {"allOrNone": True, "records": part}
            )
            for n, part in enumerate(_chunks(records, COLLECTION_SIZE))
        ]

    async def _apply(self, group: Sequence[SubRequest], *, what: str) -> None:
        """One all-or-none composite call; a failed part fails the whole, saying why."""
        if not group:
            return
        results = await self.client.composite(group, all_or_none=True, what=what)
        problems: list[str] = []
        errors: list[SalesforceError] = []
        for result in results:
            found = list(result.errors)
            if isinstance(result.body, list):  # a collection: one result per record
                found += [e for item in result.body for e in _collection_errors(item)]
            if not found and 200 <= result.status < 300:
                continue
            if {e.code for e in found} <= _ROLLED_BACK and found:
                continue  # rolled back because another part failed: that one says why
            problems.append(f"{result.reference_id}: {_said(found) or f'HTTP {result.status}'}")
            errors += found
        if problems:
            self._raise(what, problems, errors)

    def _raise(self, what: str, problems: list[str], errors: Sequence[SalesforceError]) -> None:
        message = f"{self.client.where}: {what}: " + " | ".join(problems)
        codes = {e.code for e in errors}
        if "REQUEST_LIMIT_EXCEEDED" in codes:
            raise ConnectorQuotaError(message, retry_after=LIMIT_RETRY_SECONDS)
        if codes & _PASSING:
            raise ConnectorRetryableError(message)
        raise ConnectorPermanentError(message)


def _entries(options: Options, delivery: SessionDelivery) -> list[str]:
    """The chat transcript, notes and session-end notice, each with its footer."""
    session = delivery.session
    parts = delivery.report.parts
    footer = f"\n\n(Remote Support session {session.lsid}: {{}})"
    entries = []
    if options.chat and "chat" in parts and parts["chat"].text.strip():
        entries.append(parts["chat"].text.strip() + footer.format("chat transcript"))
    if options.notes and "notes" in parts and parts["notes"].text.strip():
        entries.append(parts["notes"].text.strip() + footer.format("session notes"))
    if options.end:
        reps = ", ".join(r.display_name or r.username or "?" for r in session.representatives)
        ended = session.end_time.isoformat(timespec="seconds") if session.end_time else "?"
        entries.append(
            f"Remote Support session ended {ended} (representatives: {reps or 'none'})"
            + footer.format("session end")
        )
    return entries


def split_text(text: str, limit: int, *, measure: Callable[[str], int] | None = None) -> list[str]:
    """``text`` in parts of at most ``limit`` (UTF-8 bytes, or ``measure``), cut at a line
    end where one is near, numbered "(part i of n)" when there are several; nothing lost."""
    size: Callable[[str], int] = measure or _utf8_bytes
    if size(text) <= limit:
        return [text]
    room = limit - len(" (part 9999 of 9999)")
    parts: list[str] = []
    rest = text
    while rest:
        cut = min(len(rest), room)
        while cut > 1 and size(rest[:cut]) > room:
            cut -= max(1, (size(rest[:cut]) - room) // 4)
        if cut < len(rest):
            newline = rest.rfind("\n", 0, cut)
            if newline > cut // 2:
                cut = newline + 1
        parts.append(rest[:cut])
        rest = rest[cut:]
    return [f"{p} (part {i} of {len(parts)})" for i, p in enumerate(parts, 1)]


def _utf8_bytes(text: str) -> int:
    return len(text.encode())


def _footer(entry: str) -> str:
    return entry.rsplit("\n\n", 1)[-1]


def _bodies(records: list[Any] | None) -> list[str]:
    return [
        str(r.get("CommentBody") or r.get("Body") or "")
        for r in records or ()
        if isinstance(r, dict)
    ]


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _like(value: str) -> str:
    # LIKE wildcards in a username are matched literally.
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _said(errors: Sequence[SalesforceError]) -> str:
    return "; ".join(str(e) for e in errors)


def _rep_users(rows: list[Any], names: Sequence[str], field: str) -> dict[str, str]:
    """Rep usernames to User ids: the BeyondTrust Username field first, then the
    Salesforce username, then its part before ``@``."""
    out: dict[str, str] = {}
    users = [r for r in rows if isinstance(r, dict) and r.get("Id")]
    keys: list[dict[str, str]] = [
        {str(r.get(field) or "").casefold(): str(r["Id"]) for r in users},
        {str(r.get("Username") or "").casefold(): str(r["Id"]) for r in users},
        {str(r.get("Username") or "").split("@")[0].casefold(): str(r["Id"]) for r in users},
    ]
    for name in names:
        folded = name.casefold()
        found = next((by[folded] for by in keys if folded in by), None)
        if found is not None:
            out[name] = found
    return out


def _primary_user(session: SupportSession, users: Mapping[str, str]) -> str | None:
    rep = next((r for r in session.representatives if r.primary), None)
    return users.get(rep.username or "") if rep else None


def _collection_errors(item: Any) -> list[SalesforceError]:
    if not isinstance(item, dict) or item.get("success") is not False:
        return []
    found = []
    for error in item.get("errors") or []:
        if isinstance(error, dict):
            fields = error.get("fields")
            found.append(
                SalesforceError(
                    str(error.get("statusCode") or error.get("errorCode") or "UNKNOWN_ERROR"),
                    str(error.get("message") or "").strip(),
                    tuple(str(f) for f in fields) if isinstance(fields, list) else (),
                )
            )
    return found


def _survey_index(key: str) -> int:
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
