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
import base64
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import Association, SessionDelivery, SurveyDelivery, Ticket
from rsbridge.connectors.salesforce.client import (
    LIMIT_RETRY_SECONDS,
    SalesforceClient,
    SalesforceError,
    SubRequest,
    error_array,
    soql_like_prefix,
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
from rsbridge.connectors.text import split_text
from rsbridge.errors import ConnectorPermanentError, ConnectorQuotaError, ConnectorRetryableError

MAX_SUBREQUESTS = 25
MAX_HEAVY = 5
"""Of a composite call's subrequests, at most this many sObject Collections or queries."""
SINGLES = 4
"""Up to this many records of one object go as one subrequest each (cheaper in Collections)."""
COLLECTION_SIZE = 200
COMMENT_BYTES = 4000  # CaseComment.CommentBody
FEED_CHARS = 10_000  # FeedItem.Body
COMPLETE = "complete"
IMPORTING = "importing"
SURVEY_ONLY = "survey_only"
PRIVATE = Association()
"""Notes and representatives' surveys: internal, never customer-visible."""
_ROLLED_BACK = frozenset({"PROCESSING_HALTED", "ALL_OR_NONE_OPERATION_ROLLED_BACK"})
# DUPLICATE_VALUE: another process inserted the same import key first; the retry finds it.
_PASSING = frozenset(
    {"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE", "DUPLICATE_VALUE"}
)


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
        queries: dict[str, str] = {}
        if self.options.records:
            queries["session"] = self._session_query(key)
            if names:
                queries["users"] = self._users_query(names)
        elif entries:
            queries["comments"] = self._comments_query(ticket)
        if not queries:
            return {"comments": "0"}
        found = await self._look(queries, what=what)
        if not self.options.records:
            # Without records the Case's comments say what is there already.
            bodies = _bodies(found.get("comments"))
            entries = [e for e in entries if not any(_footer(e) in b for b in bodies)]
            comments = self._comments(ticket, delivery.association, entries)
            for group in _pack(comments):
                await self._apply(group, what=what)
            return {"comments": str(len(comments))}
        s = self.schema
        existing = found["session"]
        state = str(existing[0].get(s.field("session", "import_state")) or "") if existing else None
        if state == COMPLETE:
            return {"already": COMPLETE}
        if state == IMPORTING:
            entries = []  # they rode with the call that began the import
        users = _rep_users(found.get("users", []), names, self.options.user_field)
        record = session_record(
            session,
            key,
            delivery.appliance_id,
            case_id=ticket.id if ticket is not None else None,
            rep_user=_primary_user(session, users),
            recording_base_url=self.options.recording_base_url,
        )
        comments = self._comments(ticket, delivery.association, entries)
        if state != IMPORTING and self.options.attach and ticket is not None:
            # The report rides with the comments: once, with the call that begins the import.
            comments.append(self._report_file(ticket, delivery, self.options.attach))
        kids = list(child_records(session, key, users))
        children = self._records(key, kids, create=False)
        # A new session record is inserted, not upserted: its unique import key lets one
        # writer only carry the comments (another process's import of the same session
        # fails with DUPLICATE_VALUE, is rolled back whole and retried).
        new = not existing
        groups = _pack([self._session_write(record, COMPLETE, create=new), *comments, *children])
        if len(groups) > 1:
            # Several calls: the session is complete only once the last one succeeded.
            groups[0][0] = self._session_write(record, IMPORTING, create=new)
            groups.append([self._session_write(record, COMPLETE, create=False)])
        for group in groups:
            await self._apply(group, what=what)
        return {"records": str(1 + len(kids)), "comments": str(len(comments))}

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> dict[str, str]:
        """The survey's answers (and a minimal session record if the session was not
        imported), a comment, and the Case status its rules name; once only."""
        key = session_key(delivery.appliance_id, delivery.integration, delivery.session.lsid)
        async with self._lock(key):
            return await self._write_survey(key, ticket, delivery)

    async def _write_survey(
        self, key: str, ticket: Ticket | None, delivery: SurveyDelivery
    ) -> dict[str, str]:
        session = delivery.session
        index = _survey_index(delivery.key)
        what = f"import {delivery.kind} survey of {session.lsid}"
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
            # Without answer records the survey's comment, found on the Case, says
            # whether it was imported.
            queries["comments"] = self._comments_query(ticket)
        if status is not None and ticket is not None:
            queries["case"] = f"SELECT Status FROM Case WHERE Id = {soql_quote(ticket.id)}"
        if not queries:
            return {"answers": "0"}
        found = await self._look(queries, what=what)
        if "answer" in queries:
            written = bool(found.get("answer"))
        else:
            written = any(footer in b for b in _bodies(found.get("comments")))
        if written:
            return {"answers": str(len(answers)), "already": COMPLETE}
        requests: list[SubRequest] = []
        if self.options.records and answers:
            if not found.get("session"):
                record = session_record(
                    session,
                    key,
                    delivery.appliance_id,
                    case_id=ticket.id if ticket is not None else None,
                    rep_user=None,
                    recording_base_url=self.options.recording_base_url,
                )
                requests.append(self._session_write(record, SURVEY_ONLY, create=False))
            # Inserted: the first answer's unique key makes the survey once-only across
            # processes too (a concurrent duplicate is rolled back and retried).
            requests += self._records(key, answers, create=True)
        # A representative's survey is internal; a customer's may be public (trusted Case).
        association = delivery.association if delivery.kind == "customer" else PRIVATE
        requests += self._comments(ticket, association, entries)
        case_rows = found.get("case") or []
        current = str(case_rows[0].get("Status") or "") if case_rows else None
        if status is not None and ticket is not None and current not in (None, status):
            path = f"/sobjects/Case/{ticket.id}"
            requests.append(SubRequest("status", "PATCH", path, {"Status": status}))
        for group in _pack(requests):
            await self._apply(group, what=what)
        return {"answers": str(len(answers))}

    async def write_note(self, ticket: Ticket, text: str, marker: str) -> bool:
        """A private comment ending with ``marker``, unless the Case has one already;
        whether it was written now."""
        what = f"note on Case {ticket.number or ticket.id}"
        async with self._lock(f"note {marker}"):
            found = await self._look({"comments": self._comments_query(ticket)}, what=what)
            if any(marker in body for body in _bodies(found["comments"])):
                return False
            entry = f"{text}\n\n({marker})"
            for group in _pack(self._comments(ticket, PRIVATE, [entry])):
                await self._apply(group, what=what)
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
        local = "".join(f" OR Username LIKE {soql_like_prefix(n + '@')}" for n in names)
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

    def _session_write(self, record: SfRecord, state: str, *, create: bool) -> SubRequest:
        """The session record: inserted (``create``, with its import key) or upserted."""
        s = self.schema
        values = to_sobject(s, record, session_key=None)
        values[s.field("session", "import_state")] = state
        if create:
            return SubRequest("session", "POST", f"/sobjects/{s.object('session')}", values)
        del values[s.field("session", KEY_FIELD)]  # it is in the URL
        path = f"/sobjects/{s.object('session')}/{s.field('session', KEY_FIELD)}/{record.key}"
        return SubRequest("session", "PATCH", path, values)

    def _records(
        self, parent_key: str, children: Sequence[SfRecord], *, create: bool
    ) -> list[SubRequest]:
        """Writes of ``children`` (naming their session by its import key): one subrequest
        a record for a few records of an object, sObject Collections of 200 for more (a
        composite call holds at most 5 Collections); upserts by import key, or inserts."""
        s = self.schema
        by_object: dict[str, list[SfRecord]] = {}
        for child in children:
            by_object.setdefault(child.obj, []).append(child)
        requests: list[SubRequest] = []
        for obj, records in by_object.items():
            api, key_field = s.object(obj), s.field(obj, KEY_FIELD)
            rows = [to_sobject(s, r, session_key=parent_key) for r in records]
            if len(rows) <= SINGLES:
                for n, (record, row) in enumerate(zip(records, rows, strict=True)):
                    if create:
                        requests.append(SubRequest(f"{obj}{n}", "POST", f"/sobjects/{api}", row))
                    else:
                        del row[key_field]  # it is in the URL
                        path = f"/sobjects/{api}/{key_field}/{record.key}"
                        requests.append(SubRequest(f"{obj}{n}", "PATCH", path, row))
                continue
            path = "/composite/sobjects" if create else f"/composite/sobjects/{api}/{key_field}"
            for n, part in enumerate(_chunks(rows, COLLECTION_SIZE)):
                body = {
                    "allOrNone": True,
                    "records": [{"attributes": {"type": api}, **r} for r in part],
                }
                requests.append(SubRequest(f"{obj}s{n}", "POST" if create else "PATCH", path, body))
        return requests

    @staticmethod
    def _report_file(ticket: Ticket, delivery: SessionDelivery, fmt: str) -> SubRequest:
        """The rendered report as a file on the Case (ContentVersion, base64 JSON)."""
        report = delivery.report.full
        body = report.html if fmt == "html" else report.text
        name = f"remote-support-session-{delivery.session.lsid}.{fmt}"
        values = {
            "Title": name,
            "PathOnClient": name,
            "VersionData": base64.b64encode(body.encode()).decode(),
            "FirstPublishLocationId": ticket.id,
        }
        return SubRequest("report", "POST", "/sobjects/ContentVersion", values)

    def _comments(
        self, ticket: Ticket | None, association: Association, entries: Iterable[str]
    ) -> list[SubRequest]:
        """Case comments (or Chatter posts) for ``entries``, split to the size limits."""
        if ticket is None or self.options.comments == "none":
            return []
        # Never customer-visible on a Case a customer-set reference chose.
        public = self.options.public and association.trusted
        api = "FeedItem" if self.options.comments == "feed_item" else "CaseComment"
        rows: list[dict[str, Any]] = []
        for entry in entries:
            if api == "FeedItem":
                rows += [
                    {
                        "ParentId": ticket.id,
                        "Body": part,
                        "Type": "TextPost",
                        "Visibility": "AllUsers" if public else "InternalUsers",
                    }
                    for part in split_text(entry, FEED_CHARS, measure=len)
                ]
            else:
                rows += [
                    {"ParentId": ticket.id, "CommentBody": part, "IsPublished": public}
                    for part in split_text(entry, COMMENT_BYTES)
                ]
        if len(rows) <= SINGLES:
            return [
                SubRequest(f"comment{n}", "POST", f"/sobjects/{api}", row)
                for n, row in enumerate(rows)
            ]
        return [
            SubRequest(
                f"comments{n}",
                "POST",
                "/composite/sobjects",
                {"allOrNone": True, "records": [{"attributes": {"type": api}, **r} for r in part]},
            )
            for n, part in enumerate(_chunks(rows, COLLECTION_SIZE))
        ]

    async def _apply(self, group: Sequence[SubRequest], *, what: str) -> None:
        """One all-or-none composite call; a failed part fails the whole, saying why."""
        if not group:
            return
        results = await self.client.composite(group, all_or_none=True, what=what)
        problems: list[str] = []
        errors: list[SalesforceError] = []
        server_error = False
        rolled_back = False
        for result in results:
            found = list(result.errors)
            if isinstance(result.body, list):  # a collection: one result per record
                found += [e for item in result.body for e in _collection_errors(item)]
            if not found and 200 <= result.status < 300:
                continue
            if found and {e.code for e in found} <= _ROLLED_BACK:
                rolled_back = True  # because another part failed: that one says why
                continue
            server_error = server_error or result.status >= 500
            problems.append(f"{result.reference_id}: {_said(found) or f'HTTP {result.status}'}")
            errors += found
        if rolled_back and not problems:
            # Everything was undone and nothing says why: nothing was written; try again.
            raise ConnectorRetryableError(f"{self.client.where}: {what}: rolled back, no reason")
        if problems:
            self._raise(what, problems, errors, server_error=server_error)

    def _raise(
        self,
        what: str,
        problems: list[str],
        errors: Sequence[SalesforceError],
        *,
        server_error: bool = False,
    ) -> None:
        message = f"{self.client.where}: {what}: " + " | ".join(problems)
        codes = {e.code for e in errors}
        if "REQUEST_LIMIT_EXCEEDED" in codes:
            raise ConnectorQuotaError(message, retry_after=LIMIT_RETRY_SECONDS)
        if codes & _PASSING or server_error:
            raise ConnectorRetryableError(message)
        raise ConnectorPermanentError(message)


def _pack(requests: Sequence[SubRequest]) -> list[list[SubRequest]]:
    """``requests`` in order, in composite calls of at most 25 subrequests of which at
    most 5 are sObject Collections (the documented limits of one composite call)."""
    groups: list[list[SubRequest]] = []
    heavy = 0
    for request in requests:
        is_heavy = request.url.startswith("/composite/sobjects") or request.url.startswith("/query")
        if not groups or len(groups[-1]) >= MAX_SUBREQUESTS or (is_heavy and heavy >= MAX_HEAVY):
            groups.append([])
            heavy = 0
        groups[-1].append(request)
        heavy += is_heavy
    return groups


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
    """The errors of one sObject Collections result (none when it succeeded)."""
    if not isinstance(item, dict) or item.get("success") is not False:
        return []
    return error_array(item.get("errors"))


def _survey_index(key: str) -> int:
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
