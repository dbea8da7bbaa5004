"""The data of one simulated Agiloft knowledge base: users, tokens, tables, records, faults.

Writes take the wire form: a mapping of column name to the list of values the request gave
(a key repeated for a multi-value field), plus files by file column. Every method raises
:class:`~rsbridge.sim.agiloft.errors.AgiloftError` as the REST interface refuses.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rsbridge.sim.agiloft import errors
from rsbridge.sim.agiloft.errors import AgiloftError
from rsbridge.sim.agiloft.query import parse_search, parse_where
from rsbridge.sim.agiloft.tables import Attachment, Record, TableDef, load_tables
from rsbridge.sim.agiloft.tokens import MAX_TOKEN_MINUTES, Grant, TokenBook
from rsbridge.sim.agiloft.values import coerce, link_value, render_datetime, same

Values = Mapping[str, Sequence[str]]
Files = Mapping[str, Sequence[Attachment]]
# deleteRule values simulated (documented names); REPLACE_WITH_ANOTHER is not.
UNLINK_RULES = (
    "APPLY_UNLINK",
    "DELETE_WHERE_POSSIBLE_OTHERWISE_UNLINK",
    "UNLINK_WHERE_POSSIBLE_OTHERWISE_DELETE",
)


@dataclass
class SimUser:
    """A KB user: login, password, and whether a group of theirs is under "Groups allowed
    for REST" (otherwise every call is refused 403)."""

    login: str
    password: str
    rest_allowed: bool = True


@dataclass
class Fault:
    """A queued failure (see :meth:`SimAgiloftState.fail_next`)."""

    status: int
    message: str
    html: bool = False


@dataclass
class LoggedRequest:
    """One call the server answered: method, operation (``EWCreate``...), table, user,
    HTTP status, and the KB named."""

    method: str
    operation: str
    table: str | None
    user: str | None
    status: int
    kb: str | None = None


@dataclass
class SimAgiloftState:
    """Everything the simulated KB knows; all access under ``lock``.

    ``kb`` is the knowledge base's (case-sensitive) name. ``clock`` (epoch seconds) drives
    token expiry and the date fields. Fault knobs: ``down`` (503), ``latency`` (seconds
    before each answer), ``ws_delay`` (seconds after each call, Agiloft's ``WSDelay``: about
    1 s on a real KB, 0 here by default), :meth:`fail_next` and :meth:`html_next`.
    """

    kb: str = "Demo"
    clock: Callable[[], float] = time.time
    lock: threading.RLock = field(default_factory=threading.RLock)
    users: dict[str, SimUser] = field(default_factory=dict)
    tokens: TokenBook = field(default_factory=TokenBook)
    tables: dict[str, TableDef] = field(default_factory=dict)
    records: dict[str, dict[int, Record]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    faults: deque[Fault] = field(default_factory=deque)
    down: bool = False
    latency: float = 0.0
    ws_delay: float = 0.0
    requests: list[LoggedRequest] = field(default_factory=list)
    oauth_clients: dict[str, tuple[str, str]] = field(default_factory=dict)
    """OAuth2 clients: client id to (secret, the service user's login)."""

    # -- definitions -------------------------------------------------------------------
    def define_table(self, table: TableDef) -> None:
        """Add a table, or replace its definition (records stay; values of columns the new
        definition lacks are no longer shown)."""
        with self.lock:
            self.tables[table.name] = table
            self.records.setdefault(table.name, {})

    def load_tables(self, definitions: Iterable[Mapping[str, Any]]) -> list[str]:
        """Define tables from parsed definitions (see :func:`tables.load_tables`); answers
        their names."""
        tables = load_tables(definitions)
        for table in tables:
            self.define_table(table)
        return [t.name for t in tables]

    def merge_tables(self, definitions: Iterable[Mapping[str, Any]]) -> list[str]:
        """Add what ``definitions`` hold, as an administrator adds it: a table that exists
        gets the fields it lacks (its own stay as they are), a new table is defined.
        Answers the tables' names."""
        tables = load_tables(definitions)
        with self.lock:
            for table in tables:
                current = self.tables.get(table.name)
                if current is None:
                    self.define_table(table)
                    continue
                added = [f for f in table.fields if f.name not in current.by_name]
                self.define_table(TableDef(current.name, [*current.fields, *added], current.label))
        return [t.name for t in tables]

    def add_user(self, login: str, password: str, *, rest_allowed: bool = True) -> SimUser:
        """A user that may call the REST interface (or be refused 403 without
        ``rest_allowed``)."""
        with self.lock:
            user = SimUser(login, password, rest_allowed)
            self.users[login] = user
            return user

    @property
    def token_minutes(self) -> int:
        """Access-token life in minutes (the KB variable ``token_expires_in``)."""
        return self.tokens.minutes

    @token_minutes.setter
    def token_minutes(self, minutes: int) -> None:
        if not 1 <= minutes <= MAX_TOKEN_MINUTES:
            raise ValueError(f"token_expires_in is 1 to {MAX_TOKEN_MINUTES} minutes")
        self.tokens.minutes = minutes

    def fail_next(self, count: int, status: int = 500, message: str = "Internal error") -> None:
        """The next ``count`` calls fail with this message, in the call's answer style (HTTP
        ``status`` only with ``err_code_resp=1``, as real errors)."""
        with self.lock:
            self.faults.extend(Fault(status, message) for _ in range(count))

    def html_next(self, count: int, status: int = 502) -> None:
        """The next ``count`` calls answer an HTML page with ``status``, as a proxy would."""
        with self.lock:
            self.faults.extend(Fault(status, "", html=True) for _ in range(count))

    # -- authentication ----------------------------------------------------------------
    def check_kb(self, kb: str) -> None:
        """400 "Cannot find specified knowledgebase: <KB>" unless ``kb`` is this KB's
        exact name."""
        if kb != self.kb:
            raise errors.no_kb(kb)

    def check_password(self, login: str, password: str) -> SimUser:
        """The user, or 403 "Authentication failed." / the REST-group 403."""
        with self.lock:
            user = self.users.get(login)
            if user is None or not secrets.compare_digest(user.password, password):
                raise AgiloftError(403, errors.AUTHENTICATION_FAILED)
            if not user.rest_allowed:
                raise errors.no_rest(login)
            return user

    def login(self, login: str, password: str) -> dict[str, Any]:
        """EWLogin with credentials: the documented answer object."""
        with self.lock:
            self.check_password(login, password)
            token, grant = self.tokens.issue(login, self.kb, self.clock())
            return self._grant_answer(token, grant)

    def add_oauth_client(self, client_id: str, secret: str, login: str) -> None:
        """An OAuth2 client bound to the service user ``login`` (itsm-apis.md 4.2.3)."""
        with self.lock:
            self.oauth_clients[client_id] = (secret, login)

    def client_credentials(self, client_id: str, secret: str) -> dict[str, Any] | None:
        """``/ewws/otoken`` with the client credentials grant: an RFC 6749 token answer
        for the client's service user, or None when the client or secret is wrong."""
        with self.lock:
            known = self.oauth_clients.get(client_id)
            if known is None or not secrets.compare_digest(known[0], secret):
                return None
            user = self.users.get(known[1])
            if user is None or not user.rest_allowed:
                raise errors.no_rest(known[1])
            token, grant = self.tokens.issue(known[1], self.kb, self.clock())
            return {
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": int(grant.expires - self.clock()),
            }

    def refresh(self, token: str, refresh_token: str) -> dict[str, Any]:
        """EWLogin with ``refresh_token`` and the access token in ``Authorization``."""
        with self.lock:
            new, grant = self.tokens.renew(token, refresh_token, self.clock())
            user = self.users.get(grant.login)
            if user is None or not user.rest_allowed:
                self.tokens.end(new)
                raise errors.no_rest(grant.login)
            return self._grant_answer(new, grant)

    def _grant_answer(self, token: str, grant: Grant) -> dict[str, Any]:
        return {
            "access_token": token,
            "refresh_token": grant.refresh,
            "expiration_time_unit": "minute",
            "expires_in": self.tokens.minutes,
            # The help's examples show the scheme with a trailing space (SPEC.md).
            "authentication_scheme": "Bearer ",
        }

    def logout(self, token: str) -> None:
        """EWLogout: end the token's session."""
        with self.lock:
            self.tokens.end(token)

    def authenticate(self, token: str) -> Grant:
        """The grant of a live access token (see :meth:`TokenBook.check`); the REST-group
        403 when the user lost it since."""
        with self.lock:
            grant = self.tokens.check(token, self.clock())
            user = self.users.get(grant.login)
            if user is None or not user.rest_allowed:
                raise errors.no_rest(grant.login)
            return grant

    # -- records -----------------------------------------------------------------------
    def table(self, name: str) -> TableDef:
        """A table by logical name (case-sensitive); 400 "Table <x> has not been found"."""
        found = self.tables.get(name)
        if found is None:
            raise errors.no_table(name)
        return found

    def record(self, table: str, record_id: int | str) -> Record:
        """A record by id; 400 "no data found for id range(s) <id>"."""
        self.table(table)
        try:
            key = int(str(record_id).strip())
        except ValueError:
            raise errors.bad(f"Wrong value for 'id' parameter: {record_id!r}") from None
        found = self.records[table].get(key)
        if found is None:
            raise errors.not_found(record_id)
        return found

    def find(self, table: str, column: str, value: str) -> list[Record]:
        """Records whose column equals ``value`` (case-insensitive, as the KB compares)."""
        self.table(table)
        return [
            r
            for r in self.records[table].values()
            if any(same(text, value) for text in r.texts(column))
        ]

    def _apply(
        self,
        tdef: TableDef,
        record: Record,
        values: Values,
        files: Files,
        overwrite: Iterable[str],
    ) -> None:
        """Coerce every write first, then change the record (all or nothing)."""
        changes: dict[str, tuple[Any, list[int] | None]] = {}
        for name, raw in values.items():
            fdef = tdef.by_name.get(name)
            if fdef is None:
                raise errors.no_column(name, tdef.name)
            if fdef.system:
                continue  # the server sets ids and dates
            changes[name] = coerce(tdef.name, fdef, raw, self.find)
        for name in {*files, *overwrite}:
            fdef = tdef.by_name.get(name)
            if fdef is None:
                raise errors.no_column(name, tdef.name)
            if fdef.type != "file":
                raise errors.wrong_value(name, "it is not a file field")
        for name, (value, ids) in changes.items():
            record.values[name] = value
            if ids is not None:
                record.links[name] = ids
        for name in overwrite:
            record.files[name] = []
        for name, attached in files.items():
            record.files.setdefault(name, []).extend(attached)
        for name in [n for n, held in record.files.items() if not held]:
            del record.files[name]
        record.values["date_updated"] = render_datetime(self.clock())

    def _required(self, tdef: TableDef, record: Record) -> None:
        for fdef in tdef.fields:
            if fdef.required and not record.texts(fdef.name):
                label = fdef.label or fdef.name
                raise errors.bad(f"Field '{label}' ({fdef.name}) of table {tdef.name} is required")

    def create(
        self, table: str, values: Values, files: Files | None = None, *, user: str = ""
    ) -> int:
        """Store a new record (choice and link values checked, defaults applied); its id."""
        with self.lock:
            tdef = self.table(table)
            record = Record(self.counters.get(table, 0) + 1)
            now = render_datetime(self.clock())
            record.values.update({"date_created": now, "date_updated": now})
            defaults = {
                f.name: [f.default] for f in tdef.fields if f.default and f.name not in values
            }
            self._apply(tdef, record, {**defaults, **values}, files or {}, ())
            self._required(tdef, record)
            self.counters[table] = record.id
            self.records[table][record.id] = record
            return record.id

    def update(
        self,
        table: str,
        record_id: int | str,
        values: Values,
        files: Files | None = None,
        overwrite: Iterable[str] = (),
    ) -> Record:
        """Change a record (all or nothing); linked fields that show it follow."""
        with self.lock:
            tdef = self.table(table)
            current = self.record(table, record_id)
            draft = Record(
                current.id,
                dict(current.values),
                {k: list(v) for k, v in current.links.items()},
                {k: list(v) for k, v in current.files.items()},
            )
            self._apply(tdef, draft, values, files or {}, overwrite)
            self._required(tdef, draft)
            self.records[table][current.id] = draft
            if self._shown_elsewhere(table, {*values, *(files or {})}):
                self._relink(table, draft)
            return draft

    def _shown_elsewhere(self, table: str, columns: set[str]) -> bool:
        """Whether a link field of any table shows one of these columns of ``table`` (only
        then do linking records need a refresh; keeps session upserts cheap)."""
        return any(
            f.type == "link" and f.link_table == table and f.link_field in columns
            for t in self.tables.values()
            for f in t.fields
        )

    def _dependants(self, table: str, record_id: int) -> list[tuple[str, str, Record]]:
        """(table, link column, record) of every record linked to this one."""
        out: list[tuple[str, str, Record]] = []
        for tdef in self.tables.values():
            for fdef in tdef.fields:
                if fdef.type != "link" or fdef.link_table != table:
                    continue
                for record in self.records[tdef.name].values():
                    if record_id in record.links.get(fdef.name, []):
                        out.append((tdef.name, fdef.name, record))
        return out

    def _show(self, owner: str, column: str, record: Record) -> None:
        """Set a link column's value from the linked records (Agiloft copies the linked
        field's value into the linking record)."""
        fdef = self.tables[owner].by_name[column]
        shown: list[str] = []
        for linked in record.links.get(column, []):
            source = self.records[fdef.link_table].get(linked)
            if source is not None:
                shown.extend(source.texts(fdef.link_field)[:1])
        record.values[column] = shown if fdef.multi else (shown[0] if shown else None)

    def _relink(self, table: str, target: Record) -> None:
        """Refresh the linked fields that show ``target`` after it changed."""
        for owner, column, record in self._dependants(table, target.id):
            self._show(owner, column, record)

    def delete(self, table: str, record_id: int | str, rule: str = "ERROR_IF_DEPENDANTS") -> None:
        """Remove a record. ``ERROR_IF_DEPENDANTS`` (409 when records link to it), the
        unlink rules, or ``APPLY_DELETE_WHERE_POSSIBLE`` (the linked records go too)."""
        with self.lock:
            record = self.record(table, record_id)
            found = self._dependants(table, record.id)
            if rule == "ERROR_IF_DEPENDANTS":
                if found:
                    raise errors.dependants(len(found))
            elif rule == "APPLY_DELETE_WHERE_POSSIBLE":
                for owner, _column, other in found:
                    self.records[owner].pop(other.id, None)
            elif rule not in UNLINK_RULES:
                raise errors.bad(f"Wrong value for 'deleteRule' parameter: {rule}")
            del self.records[table][record.id]
            for owner, column, other in found:
                other.links[column] = [i for i in other.links[column] if i != record.id]
                self._show(owner, column, other)

    def upsert(
        self,
        table: str,
        match: Sequence[str],
        values: Values,
        files: Files | None = None,
        overwrite: Sequence[str] = (),
    ) -> tuple[int, bool]:
        """EWUpsert: ``(id, created)``; 409 when several records match every ``$match``
        field's value. ``overwrite``: file fields whose files replace the record's (as
        ``<field>$overwrite`` does on any write)."""
        with self.lock:
            tdef = self.table(table)
            if not match:
                raise errors.no_value("$match")
            candidates = list(self.records[table].values())
            for column in match:
                if tdef.by_name.get(column) is None:
                    raise errors.no_column(column, table)
                wanted = [v for v in values.get(column, []) if v != ""]
                if not wanted:
                    raise errors.bad(f"No value for the $match field {column}")
                value = wanted[-1]
                if tdef.by_name[column].type == "link":
                    value = link_value(value)
                candidates = [r for r in candidates if any(same(t, value) for t in r.texts(column))]
            if len(candidates) > 1:
                raise AgiloftError(
                    409,
                    f"{len(candidates)} records of table {table} match "
                    + ", ".join(f"{c}" for c in match),
                )
            if candidates:
                return self.update(table, candidates[0].id, values, files, overwrite).id, False
            return self.create(table, values, files), True

    def select(self, table: str, where: str) -> list[int]:
        """EWSelect: the ids a SQL ``where`` clause selects (with its ``LIMIT``)."""
        with self.lock:
            selection = parse_where(self.table(table), where)
            ids = [r.id for r in self.records[table].values() if selection.predicate(r)]
            end = None if selection.count is None else selection.offset + selection.count
            return ids[selection.offset : end]

    def search(
        self,
        table: str,
        query: str,
        fields: Sequence[str] = (),
        page: int = 0,
        limit: int = 0,
    ) -> list[dict[str, Any]]:
        """EWSearch: the rows (``fields``, all when empty) of the records matching
        ``query``, by id; ``limit`` 0 means every record on page 0."""
        with self.lock:
            tdef = self.table(table)
            for name in fields:
                if tdef.lookup(name) is None:
                    raise errors.no_column(name, table)
            predicate = parse_search(tdef, query)
            found = [r for r in self.records[table].values() if predicate(r)]
            if limit > 0:
                found = found[page * limit : (page + 1) * limit]
            elif page > 0:
                found = []
            return [self.view(table, r, fields) for r in found]

    def view(self, table: str, record: Record, fields: Sequence[str] = ()) -> dict[str, Any]:
        """A record's fields by column: ``id`` and integers as numbers, multi-valued fields
        as lists, files as their names, empty fields ``None``."""
        tdef = self.table(table)
        chosen = [tdef.lookup(n) for n in fields] if fields else tdef.fields
        out: dict[str, Any] = {}
        for fdef in chosen:
            if fdef is None:
                continue
            texts = record.texts(fdef.name)
            if fdef.many:
                out[fdef.name] = texts
            elif not texts:
                out[fdef.name] = None
            elif fdef.name == "id" or fdef.type == "integer":
                out[fdef.name] = int(texts[0])
            else:
                out[fdef.name] = texts[0]
        return out

    # -- files -------------------------------------------------------------------------
    def _file_field(self, table: str, column: str) -> None:
        fdef = self.table(table).by_name.get(column)
        if fdef is None:
            raise errors.no_column(column, table)
        if fdef.type != "file":
            raise errors.wrong_value(column, "it is not a file field")

    def attach(
        self, table: str, record_id: int | str, column: str, files: Sequence[Attachment],
        overwrite: bool = False,
    ) -> int:  # fmt: skip
        """EWAttach: add (or with ``overwrite`` replace) files; the number now attached."""
        with self.lock:
            self._file_field(table, column)
            record = self.update(
                table, record_id, {}, {column: files}, [column] if overwrite else []
            )
            return len(record.files.get(column, []))

    def attachment(
        self, table: str, record_id: int | str, column: str, position: int
    ) -> Attachment:
        """EWRetrieve: the file at ``position`` (from 0)."""
        with self.lock:
            self._file_field(table, column)
            held = self.record(table, record_id).files.get(column, [])
            if not 0 <= position < len(held):
                raise errors.bad(f"No file at position {position} in field {column}")
            return held[position]

    def attach_info(self, table: str, record_id: int | str, column: str) -> list[dict[str, Any]]:
        """EWAttachInfo: ``[{"fileName", "size", "filePosition"}]`` (documented shape)."""
        with self.lock:
            self._file_field(table, column)
            held = self.record(table, record_id).files.get(column, [])
            return [
                {"fileName": f.name, "size": len(f.data), "filePosition": i}
                for i, f in enumerate(held)
            ]

    def remove_attachment(
        self, table: str, record_id: int | str, column: str, position: int
    ) -> int:
        """EWRemoveAttachment: drop the file at ``position``; the number left."""
        with self.lock:
            self.attachment(table, record_id, column, position)
            record = self.record(table, record_id)
            del record.files[column][position]
            left = len(record.files[column])
            if not left:
                del record.files[column]
            return left

    def choice_line_id(self, table: str, column: str, value: str) -> int:
        """EWGetChoiceLineId: the line id of a choice's text (400 when it has none)."""
        with self.lock:
            fdef = self.table(table).by_name.get(column)
            if fdef is None:
                raise errors.no_column(column, table)
            line = fdef.line_id(value)
            if line is None:
                raise errors.bad(f"No choice line found for value {column}")
            return line
