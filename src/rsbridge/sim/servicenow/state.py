"""The data behind the simulated ServiceNow instance and the operations the APIs perform.

One :class:`SimServiceNowState` holds the tables (definitions and records), users and
roles, table ACLs, OAuth clients and tokens, attachments, rate-limit rules, fault
injection switches and the request log. Everything is guarded by ``state.lock`` (a
re-entrant lock): the server thread and a test thread may both use it.

Records are stored per *hierarchy*: an incident lives in the ``task`` store with
``sys_class_name = incident``, which is why it can be read through ``/table/task`` as
on a real instance. Values are always strings (``""`` for empty), dates are
``YYYY-MM-DD HH:MM:SS`` UTC. Operations the Table API would refuse raise
:class:`SimServiceNowError` carrying the HTTP status and the error envelope's texts.

Business rules reproduced because integrations notice them: task numbers
(``INC0010001``: prefix plus a 7-digit counter per table), ``opened_at``/``opened_by``
defaults, the incident priority matrix (impact x urgency), ``active``/``closed_at``
when a task reaches a closed state, ``resolved_at`` on incidents, ``sys_user.name``
from first and last name, and journal writes (work notes, comments) appended to
``sys_journal_field`` instead of being stored on the record.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import math
import random
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rsbridge.sim.servicenow import query as encoded_query
from rsbridge.sim.servicenow.tables import (
    DEFAULT_READ_ROLES,
    DEFAULT_WRITE_ROLES,
    NUMERIC_TYPES,
    OOTB_ACLS,
    TRUNCATED_TYPES,
    Column,
    TableDef,
    col,
    default_label,
    ootb_tables,
    system_columns,
)

SYS_ID = re.compile(r"[0-9a-f]{32}")
#: Out-of-box metadata records (sys_db_object, sys_dictionary) carry this creation time.
INSTALL_TIME = 1_704_067_200.0  # 2024-01-01 00:00:00 UTC
NO_RECORD = ("No Record found", "Record doesn't exist or ACL restricts the record retrieval")
#: Roles that lose every write right (ServiceNow's read-only role).
READ_ONLY_ROLE = "snc_read_only"
_SYSTEM_FIELDS = frozenset(
    {
        "sys_id",
        "sys_created_on",
        "sys_created_by",
        "sys_updated_on",
        "sys_updated_by",
        "sys_mod_count",
        "sys_tags",
        "sys_class_name",
    }
)
# Task states after which a task is no longer active, per table (children inherit).
_CLOSED_STATES = {
    "task": frozenset({"3", "4", "7"}),
    "incident": frozenset({"7", "8"}),
    "change_request": frozenset({"3", "4"}),
    "problem": frozenset({"107"}),
    "interaction": frozenset({"closed_complete", "closed_abandoned"}),
}
# Incident priority lookup: (impact, urgency) -> priority.
_PRIORITY = {
    ("1", "1"): "1",
    ("1", "2"): "2",
    ("2", "1"): "2",
    ("1", "3"): "3",
    ("2", "2"): "3",
    ("3", "1"): "3",
    ("2", "3"): "4",
    ("3", "2"): "4",
    ("3", "3"): "5",
}
_META_TABLES = ("sys_db_object", "sys_number", "sys_dictionary", "sys_choice")


def format_time(moment: float) -> str:
    """UNIX seconds as ServiceNow writes dates: ``2020-04-06 13:04:44`` (UTC)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d %H:%M:%S")


class SimServiceNowError(Exception):
    """A request the instance refuses: HTTP ``status`` and the error envelope's texts."""

    def __init__(self, status: int, message: str, detail: str | None = "") -> None:
        super().__init__(f"{status} {message}: {detail}")
        self.status = status
        self.message = message
        self.detail = detail

    def envelope(self) -> dict[str, Any]:
        """``{"error": {"message", "detail"}, "status": "failure"}``."""
        return {"error": {"message": self.message, "detail": self.detail}, "status": "failure"}


def invalid_table(name: str) -> SimServiceNowError:
    """The Table API's answer for a table that does not exist (``detail`` is null)."""
    return SimServiceNowError(400, f"Invalid table {name}", None)


def no_record() -> SimServiceNowError:
    """404 ``No Record found``."""
    return SimServiceNowError(404, *NO_RECORD)


@dataclass
class SimUser:
    """An account that can sign in: ``sys_user`` record plus password and roles."""

    user_name: str
    password: str = field(repr=False)
    roles: frozenset[str]
    sys_id: str

    def has_role(self, role: str) -> bool:
        """True when the user holds ``role`` (``admin`` holds every role)."""
        return role in self.roles or "admin" in self.roles


@dataclass
class OAuthClient:
    """An OAuth application registry entry. ``user`` is the account that
    ``client_credentials`` tokens act as (``None``: that grant is refused)."""

    client_id: str
    client_secret: str = field(repr=False)
    user: str | None = None


@dataclass
class Token:
    """An issued access or refresh token."""

    value: str = field(repr=False)
    user_name: str
    client_id: str
    expires_at: float
    scope: str = "useraccount"


@dataclass
class TableAcl:
    """Roles that may read / write a table; an empty set means any signed-in user.

    ServiceNow's table ACLs are per operation (create, read, write, delete): ``None``
    for create or delete means the write roles apply."""

    read_roles: frozenset[str]
    write_roles: frozenset[str]
    create_roles: frozenset[str] | None = None
    delete_roles: frozenset[str] | None = None


@dataclass
class RateLimitRule:
    """A ``sys_rate_limit_rules`` entry: ``limit`` requests per clock hour, per user.

    ``user`` (a user_name) or ``role`` select whom it applies to; neither means all
    users. A user rule beats role rules, which beat rules for all users; among role
    rules the lowest limit wins (as the platform documents).
    """

    sys_id: str
    name: str
    limit: int
    user: str | None = None
    role: str | None = None
    counts: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass
class Fault:
    """A queued failure answer (see :meth:`SimServiceNowState.fail_next`)."""

    status: int
    retry_after: int | None = None
    after_processing: bool = False
    """The request is carried out, then its answer replaced: a lost answer (a proxy that
    timed out after the instance did the work)."""
    path: str | None = None
    """Only a request whose path starts with this meets the fault (others pass)."""

    def meets(self, path: str) -> bool:
        """Whether a request for ``path`` meets this fault."""
        return self.path is None or path.startswith(self.path)


@dataclass
class LoggedRequest:
    """One request the server answered. ``user`` is the authenticated user_name (``None``
    when authentication failed or was not needed). A batch call has one entry, with
    its sub-requests in ``sub_requests``."""

    method: str
    path: str
    query: str
    user: str | None
    status: int
    sub_requests: list[LoggedRequest] = field(default_factory=list)


@dataclass
class ImportSummary:
    """What :meth:`SimServiceNowState.import_unload_xml` did."""

    tables: list[str] = field(default_factory=list)
    columns: int = 0
    records: int = 0
    deleted: int = 0
    skipped: list[str] = field(default_factory=list)
    """Element names of records whose table does not exist (not imported)."""


Record = dict[str, str]


class SimServiceNowState:
    """Everything the simulated instance knows. See the module docstring.

    ``seed`` drives every generated sys_id and token, so two states built the same
    way hold the same ids. ``clock`` (UNIX seconds) stamps records and expires tokens.
    ``instance_url`` fixes the base of reference links and ``download_link``s; by
    default they use the scheme and host of each request.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        instance_url: str | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.random = random.Random(seed)
        self.instance_url = instance_url.rstrip("/") if instance_url else None
        self.tables: dict[str, TableDef] = {}
        self.acls: dict[str, TableAcl] = {}
        self.users: dict[str, SimUser] = {}
        self.oauth_clients: dict[str, OAuthClient] = {}
        self.access_tokens: dict[str, Token] = {}
        self.refresh_tokens: dict[str, Token] = {}
        #: Lifetime of access tokens in seconds (the instance answers ``expires_in``).
        self.access_token_ttl = 1799
        #: Lifetime of refresh tokens (the platform default: 100 days).
        self.refresh_token_ttl = 8_640_000
        self.rate_limit_rules: list[RateLimitRule] = []
        #: Every answered request, oldest first.
        self.requests: list[LoggedRequest] = []
        #: Seconds added before every answer (``asyncio.sleep``; the benchmark uses 0.02).
        self.latency = 0.0
        #: Every request answers 503 with an HTML page (instance unreachable / upgrading).
        self.down = False
        #: Every request answers 200 with the hibernation HTML page (a sleeping PDI).
        self.hibernating = False
        #: Stricter query property: a condition on an unknown field matches nothing
        #: instead of being dropped (``glide.invalid_query.returns_no_rows``).
        self.invalid_query_returns_no_rows = False
        #: Non-admin users see no ``sys_journal_field`` rows (row-level ACLs some
        #: instances have); the display-value route still shows the journal.
        self.journal_rows_admin_only = False
        #: ``com.glide.attachment.max_size`` in bytes.
        self.max_attachment_bytes = 1024 * 1024 * 1024
        self.faults: deque[Fault] = deque()
        self._stores: dict[str, dict[str, Record]] = {}
        self._attachment_data: dict[str, bytes] = {}
        self._journal_index: dict[str, list[str]] = {}
        # Equality indexes, built on the first ``field=value`` query of a (store, field):
        # lower-cased value -> sys_ids. Integrations look records up by number,
        # correlation_id or a session id in tables that grow to thousands of rows.
        self._indexes: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._positions: dict[str, int] = {}
        self._counters: dict[str, int] = {}
        self._digits: dict[str, int] = {}
        self._table_ids: dict[str, str] = {}
        self._columns_cache: dict[str, dict[str, Column]] = {}
        self._family_cache: dict[str, frozenset[str]] = {}
        for table in ootb_tables():
            self._register(table)
        for name, (read, write) in OOTB_ACLS.items():
            self.acls[name] = TableAcl(read, write)
        for name in list(self.tables):
            self._write_metadata(name, INSTALL_TIME)

    # --- ids and time ---------------------------------------------------------------

    def new_sys_id(self) -> str:
        """A fresh sys_id: 32 lowercase hex digits from the seeded generator."""
        with self.lock:
            return f"{self.random.getrandbits(128):032x}"

    def _token_value(self) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        return "".join(self.random.choice(alphabet) for _ in range(86))

    def now_text(self, now: float | None = None) -> str:
        """``now`` (default: the clock) as a ServiceNow date-time."""
        return format_time(self.clock() if now is None else now)

    # --- tables -------------------------------------------------------------------

    def define_table(
        self,
        name: str,
        columns: Iterable[Column | Mapping[str, Any]] = (),
        *,
        label: str | None = None,
        extends: str | None = None,
        number_prefix: str | None = None,
        read_roles: Iterable[str] | None = None,
        write_roles: Iterable[str] | None = None,
    ) -> TableDef:
        """Create a table (or add columns to an existing one) and its metadata records.

        ``columns`` are :class:`Column` objects or mappings with the keys ``name``,
        ``internal_type``, ``reference``, ``max_length``, ``label``, ``default``,
        ``choices``, ``display``. A table that extends nothing gets the system columns
        (``sys_id``, ``sys_created_on`` ...). Without ``read_roles``/``write_roles``
        the table uses its nearest ancestor's ACL, else ``itil`` for both (admin
        always passes). Raises ``ValueError`` if ``extends`` is not a table.
        """
        cols = [_column(c) for c in columns]
        with self.lock:
            if extends is not None and extends not in self.tables:
                raise ValueError(f"cannot extend {extends!r}: no such table")
            table = self.tables.get(name)
            if table is None:
                table = TableDef(name, label or default_label(name), extends, number_prefix)
                if extends is None:
                    table.columns = {c.name: c for c in system_columns()}
                self._register(table)
            else:
                table.label = label or table.label
                table.extends = extends if extends is not None else table.extends
                table.number_prefix = number_prefix or table.number_prefix
            for c in cols:
                table.columns[c.name] = c
            self._schema_changed()
            if read_roles is not None or write_roles is not None:
                self.set_table_acl(name, read_roles or (), write_roles or ())
            self._write_metadata(name, self.clock(), only=[c.name for c in cols])
            return table

    def set_table_acl(
        self,
        table: str,
        read_roles: Iterable[str],
        write_roles: Iterable[str],
        *,
        create_roles: Iterable[str] | None = None,
        delete_roles: Iterable[str] | None = None,
    ) -> None:
        """Which roles may read and write ``table`` (and its children without their own
        ACL). Empty means any authenticated user; ``admin`` is always allowed.
        ``create_roles`` / ``delete_roles`` (default: the write roles) set the create and
        delete operations apart, as the platform's per-operation ACLs do."""
        with self.lock:
            self.acls[table] = TableAcl(
                frozenset(read_roles),
                frozenset(write_roles),
                None if create_roles is None else frozenset(create_roles),
                None if delete_roles is None else frozenset(delete_roles),
            )

    def columns(self, table: str) -> dict[str, Column]:
        """All columns of ``table``: inherited ones overridden by the table's own."""
        with self.lock:
            cached = self._columns_cache.get(table)
            if cached is not None:
                return cached
            chain = self._ancestry(table)
            merged: dict[str, Column] = {}
            for name in reversed(chain):
                merged.update(self.tables[name].columns)
            self._columns_cache[table] = merged
            return merged

    def has_table(self, table: str) -> bool:
        """True when ``table`` is defined."""
        return table in self.tables

    def is_a(self, table: str, ancestor: str) -> bool:
        """True when ``table`` is ``ancestor`` or extends it."""
        return ancestor in self._ancestry(table)

    def table_acl(self, table: str) -> TableAcl:
        """The ACL that applies to ``table`` (own, nearest ancestor's, or the default)."""
        with self.lock:
            for name in self._ancestry(table):
                if name in self.acls:
                    return self.acls[name]
            return TableAcl(DEFAULT_READ_ROLES, DEFAULT_WRITE_ROLES)

    def can_read(self, user: SimUser, table: str) -> bool:
        """Table-level read check."""
        roles = self.table_acl(table).read_roles
        return not roles or any(user.has_role(r) for r in roles)

    def can_write(self, user: SimUser, table: str, operation: str = "write") -> bool:
        """Table-level write check (``snc_read_only`` users never write); ``operation``
        ``create`` or ``delete`` uses that operation's roles when the ACL has them."""
        if READ_ONLY_ROLE in user.roles and "admin" not in user.roles:
            return False
        acl = self.table_acl(table)
        roles = {"create": acl.create_roles, "delete": acl.delete_roles}.get(operation)
        if roles is None:
            roles = acl.write_roles
        return not roles or any(user.has_role(r) for r in roles)

    def display_column(self, table: str) -> str | None:
        """The column whose value is a record's display value."""
        cols = self.columns(table)
        for c in cols.values():
            if c.display:
                return c.name
        for candidate in ("name", "u_name", "number", "u_number"):
            if candidate in cols:
                return candidate
        return "sys_created_on" if "sys_created_on" in cols else None

    def _register(self, table: TableDef) -> None:
        self.tables[table.name] = table
        self._stores.setdefault(self._root(table.name), {})
        self._schema_changed()

    def _schema_changed(self) -> None:
        self._columns_cache.clear()
        self._family_cache.clear()

    def _ancestry(self, table: str) -> list[str]:
        """``[table, parent, grandparent, ...]``; ``[]`` for an unknown table."""
        chain: list[str] = []
        current: str | None = table
        while current is not None and current in self.tables and current not in chain:
            chain.append(current)
            current = self.tables[current].extends
        return chain

    def _root(self, table: str) -> str:
        chain = self._ancestry(table)
        return chain[-1] if chain else table

    def _family(self, table: str) -> frozenset[str]:
        """``table`` and every table that extends it."""
        cached = self._family_cache.get(table)
        if cached is None:
            cached = frozenset(t for t in self.tables if table in self._ancestry(t))
            self._family_cache[table] = cached
        return cached

    def _write_metadata(
        self, table: str, now: float, only: list[str] | None = None, *, collection: bool = True
    ) -> None:
        """sys_db_object / sys_dictionary records describing ``table`` (direct writes: the
        schema hooks that imports trigger must not run again)."""
        tdef = self.tables[table]
        stamp = format_time(now)
        parent_id = self._table_ids.get(tdef.extends or "", "")
        object_id = self._table_ids.get(table)
        if object_id is None:
            object_id = self.new_sys_id()
            self._table_ids[table] = object_id
            self._put(
                "sys_db_object",
                self._blank("sys_db_object", object_id, stamp, "system")
                | {
                    "name": table,
                    "label": tdef.label,
                    "super_class": parent_id,
                    "is_extendable": "true",
                },
            )
            if collection:
                self._dictionary_row(table, col("", "collection", label=tdef.label), stamp)
        else:
            record = self._stores["sys_db_object"][object_id]
            record.update(label=tdef.label, super_class=parent_id)
        for name in tdef.columns if only is None else only:
            self._dictionary_row(table, tdef.columns[name], stamp)

    def _dictionary_row(self, table: str, column: Column, stamp: str) -> None:
        values = {
            "name": table,
            "element": column.name,
            "column_label": column.label,
            "internal_type": column.internal_type,
            "max_length": str(column.max_length),
            "reference": column.reference or "",
            "default_value": column.default,
            "display": "true" if column.display else "false",
        }
        store = self._stores["sys_dictionary"]
        existing = next(
            (r for r in store.values() if r["name"] == table and r["element"] == column.name),
            None,
        )
        if existing is not None:
            existing.update(values)
            return
        sys_id = self.new_sys_id()
        self._put("sys_dictionary", self._blank("sys_dictionary", sys_id, stamp, "system") | values)

    # --- records --------------------------------------------------------------------

    def _blank(self, table: str, sys_id: str, stamp: str, user: str) -> Record:
        """A new record of ``table`` with defaults and system fields filled in."""
        record = {c.name: c.default for c in self.columns(table).values() if not c.is_journal}
        record.update(
            sys_id=sys_id,
            sys_created_on=stamp,
            sys_created_by=user,
            sys_tags="",
            sys_class_name=table,
        )
        if "sys_updated_on" in record:
            record.update(sys_updated_on=stamp, sys_updated_by=user, sys_mod_count="0")
        return record

    def _put(self, table: str, record: Record) -> None:
        root = self._root(table)
        self._stores[root][record["sys_id"]] = record
        self._positions[record["sys_id"]] = len(self._positions)
        self._reindex(root, record, None)
        if root == "sys_journal_field":
            self._journal_index.setdefault(record.get("element_id", ""), []).append(
                record["sys_id"]
            )

    def _reindex(self, root: str, record: Record | None, before: Mapping[str, str] | None) -> None:
        """Keep the equality indexes of ``root`` in step with a write."""
        for (index_root, name), index in self._indexes.items():
            if index_root != root:
                continue
            old = before.get(name, "").lower() if before is not None else None
            new = record.get(name, "").lower() if record is not None else None
            if old == new:
                continue
            sys_id = (record or before or {}).get("sys_id", "")
            if old is not None:
                index.get(old, set()).discard(sys_id)
            if new is not None:
                index.setdefault(new, set()).add(sys_id)

    def _indexed(self, table: str, name: str, value: str) -> list[Record]:
        """Records of ``table``'s store whose ``name`` equals ``value`` ignoring case,
        in insertion order (a superset for the query to filter)."""
        root = self._root(table)
        key = (root, name)
        index = self._indexes.get(key)
        if index is None:
            index = {}
            for record in self._stores[root].values():
                index.setdefault(record.get(name, "").lower(), set()).add(record["sys_id"])
            self._indexes[key] = index
        store = self._stores[root]
        ids = sorted(index.get(value.lower(), ()), key=self._positions.__getitem__)
        return [store[i] for i in ids if i in store]

    def find(self, table: str, sys_id: str) -> Record | None:
        """The stored record ``sys_id`` if its class is ``table`` or a child (no copy)."""
        with self.lock:
            if table not in self.tables:
                return None
            record = self._stores[self._root(table)].get(sys_id)
            if record is None or record["sys_class_name"] not in self._family(table):
                return None
            return record

    def records(self, table: str) -> list[Record]:
        """Every stored record of ``table`` and its children, in insertion order (no copies)."""
        with self.lock:
            if table not in self.tables:
                return []
            family = self._family(table)
            store = self._stores[self._root(table)]
            return [r for r in store.values() if r["sys_class_name"] in family]

    def get(self, table: str, sys_id: str) -> Record | None:
        """A copy of record ``sys_id`` of ``table`` (or a child), or ``None``."""
        with self.lock:
            record = self.find(table, sys_id)
            return dict(record) if record is not None else None

    def query(self, table: str, encoded: str = "") -> list[Record]:
        """Copies of the records of ``table`` matching an encoded query, sorted by its
        ORDERBY terms. Raises :class:`SimServiceNowError` for an unknown table."""
        with self.lock:
            return [dict(r) for r in self.select(table, encoded)]

    def select(self, table: str, encoded: str = "") -> list[Record]:
        """Like :meth:`query` without copying (for the server, under the lock)."""
        with self.lock:
            if table not in self.tables:
                raise invalid_table(table)
            resolver = Resolver(self, table)
            parsed = encoded_query.parse(encoded, lambda p: resolver.column(p) is not None)
            if parsed.invalid and self.invalid_query_returns_no_rows:
                return []
            matches = parsed.predicate(resolver)
            lookup = encoded_query.equality_lookup(parsed, resolver)
            if lookup is not None and self._root(table) not in _META_TABLES:
                family = self._family(table)
                candidates = [
                    r for r in self._indexed(table, *lookup) if r["sys_class_name"] in family
                ]
            else:
                candidates = self.records(table)
            found = [r for r in candidates if matches(r)]
            parsed.sort(found, resolver)
            return found

    def insert(
        self,
        table: str,
        values: Mapping[str, Any],
        *,
        user: str = "system",
        sys_id: str | None = None,
        now: float | None = None,
        input_display_value: bool = False,
    ) -> Record:
        """Insert a record as ``user`` would through the Table API; returns a copy.

        A ``sys_id`` argument, or a 32-hex ``sys_id`` in ``values``, is honoured.
        Unknown fields and system fields in ``values`` are ignored; journal fields are
        appended to ``sys_journal_field``. Raises :class:`SimServiceNowError`: 400 for
        an unknown table, 403 ``Operation Failed`` / ``Error during insert of <table>
        (<display value>)`` when the sys_id exists already.
        """
        with self.lock:
            return dict(self._insert(table, values, user, sys_id, now, input_display_value, False))

    def update(
        self,
        table: str,
        sys_id: str,
        values: Mapping[str, Any],
        *,
        user: str = "system",
        now: float | None = None,
        input_display_value: bool = False,
    ) -> Record:
        """Update a record like PATCH/PUT (partial); returns a copy. 404 if absent."""
        with self.lock:
            record = self.find(table, sys_id)
            if table not in self.tables:
                raise invalid_table(table)
            if record is None:
                raise no_record()
            return dict(self._update(record, values, user, now, input_display_value, False))

    def delete(self, table: str, sys_id: str) -> None:
        """Delete a record (and its attachments). 404 if absent."""
        with self.lock:
            if table not in self.tables:
                raise invalid_table(table)
            record = self.find(table, sys_id)
            if record is None:
                raise no_record()
            self._delete(record)

    def journal(self, element_id: str, element: str | None = None) -> list[Record]:
        """Journal entries of a record, newest first (copies), optionally one element."""
        with self.lock:
            return [dict(e) for e in self._journal_entries(element_id, element)]

    def _journal_entries(self, element_id: str, element: str | None = None) -> list[Record]:
        store = self._stores["sys_journal_field"]
        entries = [
            store[i] for i in reversed(self._journal_index.get(element_id, ())) if i in store
        ]
        if element is not None:
            entries = [e for e in entries if e["element"] == element]
        # stable sort on the reversed insertion order: same second -> newest write first
        entries.sort(key=lambda e: e["sys_created_on"], reverse=True)
        return entries

    def _insert(
        self,
        table: str,
        values: Mapping[str, Any],
        user: str,
        sys_id: str | None,
        now: float | None,
        input_display: bool,
        keep_system_fields: bool,
    ) -> Record:
        if table not in self.tables:
            raise invalid_table(table)
        moment = self.clock() if now is None else now
        stamp = format_time(moment)
        given_id = sys_id or _text(values.get("sys_id", ""))
        new_id = given_id if SYS_ID.fullmatch(given_id) else self.new_sys_id()
        record = self._blank(table, new_id, stamp, user)
        cols = self.columns(table)
        if keep_system_fields:
            for name in ("sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by"):
                if name in record and _text(values.get(name, "")):
                    record[name] = _text(values[name])
            if "sys_mod_count" in record and _text(values.get("sys_mod_count", "")).isdigit():
                record["sys_mod_count"] = _text(values["sys_mod_count"])
        if "opened_at" in cols:
            record["opened_at"] = stamp
        if "opened_by" in cols:
            record["opened_by"] = self._user_sys_id(user)
        changed, notes = self._assign(table, record, values, input_display)
        self._business_rules(table, record, changed | {"impact", "urgency"}, values, user, stamp)
        number_owner = self._number_owner(table)
        if number_owner is not None and not record.get("number"):
            record["number"] = self._peek_number(number_owner)
        if new_id in self._stores[self._root(table)]:
            raise SimServiceNowError(
                403,
                "Operation Failed",
                f"Error during insert of {table} ({self._display_of_record(table, record)})",
            )
        if number_owner is not None and record["number"] == self._peek_number(number_owner):
            self._counters[number_owner] = self._counters.get(number_owner, 10001) + 1
        self._put(table, record)
        self._journal(record, notes, user, stamp)
        if table in _META_TABLES:
            self._apply_schema_record(table, record)
        return record

    def _update(
        self,
        record: Record,
        values: Mapping[str, Any],
        user: str,
        now: float | None,
        input_display: bool,
        keep_system_fields: bool,
    ) -> Record:
        table = record["sys_class_name"]
        stamp = self.now_text(now)
        before = dict(record)
        changed, notes = self._assign(table, record, values, input_display)
        if not changed and not notes:
            return record
        self._business_rules(table, record, changed, values, user, stamp)
        if "sys_updated_on" in record:
            record["sys_updated_on"] = stamp
            record["sys_updated_by"] = user
            record["sys_mod_count"] = str(int(before.get("sys_mod_count") or 0) + 1)
        if keep_system_fields:
            for name in ("sys_updated_on", "sys_updated_by", "sys_mod_count"):
                if name in record and _text(values.get(name, "")):
                    record[name] = _text(values[name])
        self._reindex(self._root(table), record, before)
        self._journal(record, notes, user, stamp)
        if table in _META_TABLES:
            self._apply_schema_record(table, record)
        return record

    def _delete(self, record: Record) -> None:
        table = record["sys_class_name"]
        root = self._root(table)
        del self._stores[root][record["sys_id"]]
        self._reindex(root, None, record)
        if root == "sys_attachment":
            self._attachment_data.pop(record["sys_id"], None)
        elif root == "sys_journal_field":
            ids = self._journal_index.get(record.get("element_id", ""), [])
            if record["sys_id"] in ids:
                ids.remove(record["sys_id"])
        # Attachments go with their record, as the platform's cascade rule does.
        for attachment in self.records("sys_attachment"):
            if attachment["table_sys_id"] == record["sys_id"]:
                self._delete(attachment)

    def _assign(
        self, table: str, record: Record, values: Mapping[str, Any], input_display: bool
    ) -> tuple[set[str], list[tuple[str, str]]]:
        """Write ``values`` into ``record``: the changed columns and journal entries."""
        cols = self.columns(table)
        changed: set[str] = set()
        notes: list[tuple[str, str]] = []
        for name, raw in values.items():
            column = cols.get(name)
            if column is None or name in _SYSTEM_FIELDS:
                continue
            if column.is_journal:
                text = _text(raw)
                if text and column.internal_type != "journal_list":
                    notes.append((name, text))
                continue
            value = self._coerce(column, raw, input_display)
            if record.get(name, "") != value:
                record[name] = value
                changed.add(name)
        return changed, notes

    def _coerce(self, column: Column, raw: Any, input_display: bool) -> str:
        """A written value as the column stores it."""
        text = _text(raw)
        kind = column.internal_type
        if input_display and column.choices:
            for value, label in column.choices:
                if label.lower() == text.lower():
                    return value
        if kind == "boolean":
            return "true" if text.strip().lower() in ("true", "1", "yes") else "false"
        if kind in NUMERIC_TYPES and text.strip():
            try:
                number = float(text.replace(",", ""))
            except ValueError:
                return text
            if kind in ("integer", "longint") and number.is_integer():
                return str(int(number))
            return text.strip()
        if kind == "glide_date_time" and "T" in text:
            return text.replace("T", " ").removesuffix("Z")[:19]
        if column.is_reference:
            return self._resolve_reference(column, text, input_display)
        if kind in TRUNCATED_TYPES and column.max_length > 0:
            return text[: column.max_length]
        return text

    def _resolve_reference(self, column: Column, text: str, input_display: bool) -> str:
        """A sys_id is stored as given (even if the target does not exist yet); any other
        text is looked up as the target's display value, as the platform does."""
        text = text.strip()
        target = column.reference or ""
        if not text or (SYS_ID.fullmatch(text) and not input_display):
            return text
        if SYS_ID.fullmatch(text) and self.find(target, text) is not None:
            return text
        display = self.display_column(target) if target in self.tables else None
        if display is None:
            return text
        matches = [r for r in self.records(target) if r.get(display, "").lower() == text.lower()]
        return matches[0]["sys_id"] if len(matches) == 1 else text

    def _business_rules(
        self,
        table: str,
        record: Record,
        changed: set[str],
        values: Mapping[str, Any],
        user: str,
        stamp: str,
    ) -> None:
        user_id = self._user_sys_id(user)
        if self.is_a(table, "incident"):
            if "incident_state" in changed and "state" not in changed:
                record["state"] = record["incident_state"]
                changed.add("state")
            if "state" in changed:
                record["incident_state"] = record["state"]
            if changed & {"impact", "urgency"} and "priority" not in values:
                key = (record.get("impact", "3"), record.get("urgency", "3"))
                record["priority"] = _PRIORITY.get(key, record.get("priority", "5"))
            if "state" in changed and record["state"] == "6":
                record["resolved_at"] = record.get("resolved_at") or stamp
                record["resolved_by"] = record.get("resolved_by") or user_id
        if self.is_a(table, "task") and "state" in changed:
            closed = next(
                (_CLOSED_STATES[t] for t in self._ancestry(table) if t in _CLOSED_STATES),
                frozenset(),
            )
            if record["state"] in closed:
                record["active"] = "false"
                record["closed_at"] = record.get("closed_at") or stamp
                record["closed_by"] = record.get("closed_by") or user_id
            else:
                record["active"] = "true"
        if (
            self.is_a(table, "sys_user")
            and changed & {"first_name", "last_name"}
            and "name" not in values
        ):
            first, last = record.get("first_name", ""), record.get("last_name", "")
            record["name"] = f"{first} {last}".strip()

    def _journal(self, record: Record, notes: list[tuple[str, str]], user: str, stamp: str) -> None:
        for element, text in notes:
            entry = self._blank("sys_journal_field", self.new_sys_id(), stamp, user)
            entry.update(
                name=record["sys_class_name"],
                element_id=record["sys_id"],
                element=element,
                value=text,
            )
            self._put("sys_journal_field", entry)

    def _number_owner(self, table: str) -> str | None:
        if "number" not in self.columns(table):
            return None
        return next((t for t in self._ancestry(table) if self.tables[t].number_prefix), None)

    def _peek_number(self, owner: str) -> str:
        prefix = self.tables[owner].number_prefix or ""
        digits = self._digits.get(owner, 7)
        return f"{prefix}{self._counters.get(owner, 10001):0{digits}d}"

    def _user_sys_id(self, user_name: str) -> str:
        user = self.users.get(user_name)
        return user.sys_id if user is not None else ""

    # --- display values -----------------------------------------------------------

    def display_of(self, table: str, record: Mapping[str, str] | None, column: Column) -> str:
        """The display value of ``column`` on ``record`` (``""`` for no record)."""
        if record is None:
            return ""
        value = record.get(column.name, "")
        kind = column.internal_type
        if column.is_journal:
            return self._journal_text(table, record, column)
        if value == "":
            return ""
        if column.is_reference:
            target = self.find(column.reference or "", value)
            return self._display_of_record(column.reference or "", target) if target else ""
        if column.choices:
            return next((label for v, label in column.choices if v == value), value)
        if kind == "sys_class_name":
            tdef = self.tables.get(value)
            return tdef.label if tdef else value
        if kind in ("integer", "longint"):
            try:
                return f"{int(value):,}"
            except ValueError:
                return value
        return value

    def _display_of_record(self, table: str, record: Mapping[str, str]) -> str:
        name = self.display_column(table)
        if name is None:
            return ""
        column = self.columns(table)[name]
        if column.is_reference or column.choices:
            return self.display_of(table, record, column)
        return record.get(name, "")

    def _journal_text(self, table: str, record: Mapping[str, str], column: Column) -> str:
        """The journal stream a display value shows: newest first, one block per entry."""
        element = None if column.internal_type == "journal_list" else column.name
        entries = self._journal_entries(record["sys_id"], element)
        if element is None:
            journal_names = {
                c.name
                for c in self.columns(record["sys_class_name"]).values()
                if c.internal_type in ("journal", "journal_input")
            }
            entries = [e for e in entries if e["element"] in journal_names]
        cols = self.columns(record["sys_class_name"])
        blocks = []
        for entry in entries:
            label = cols[entry["element"]].label if entry["element"] in cols else entry["element"]
            author = self._user_name_display(entry["sys_created_by"])
            blocks.append(f"{entry['sys_created_on']} - {author} ({label})\n{entry['value']}\n\n")
        return "".join(blocks)

    def _user_name_display(self, user_name: str) -> str:
        user = self.users.get(user_name)
        record = self._stores["sys_user"].get(user.sys_id) if user else None
        if record is None:
            record = next(
                (r for r in self._stores["sys_user"].values() if r["user_name"] == user_name), None
            )
        return (record.get("name") if record else None) or user_name

    # --- paths (dot-walking) ------------------------------------------------------

    def path_column(self, table: str, path: str) -> tuple[str, Column] | None:
        """The table and column a field path ends at (``caller_id.email`` ->
        ``("sys_user", email)``), or ``None`` when a part is unknown or not a reference."""
        parts = path.split(".")
        current = table
        for part in parts[:-1]:
            column = self.columns(current).get(part)
            if column is None or not column.is_reference or column.reference not in self.tables:
                return None
            current = column.reference or ""
        column = self.columns(current).get(parts[-1]) if current in self.tables else None
        return (current, column) if column is not None else None

    def path_record(
        self, table: str, record: Mapping[str, str], path: str
    ) -> Mapping[str, str] | None:
        """The record a field path's last part is read from (``None`` through an empty
        or dangling reference)."""
        current: Mapping[str, str] | None = record
        current_table = table
        for part in path.split(".")[:-1]:
            if current is None:
                return None
            column = self.columns(current_table)[part]
            current_table = column.reference or ""
            current = self.find(current_table, current.get(part, ""))
        return current

    # --- users, OAuth, limits, faults ---------------------------------------------

    def add_user(
        self,
        user_name: str,
        password: str,
        roles: Iterable[str] = (),
        *,
        now: float | None = None,
        **fields: Any,
    ) -> SimUser:
        """Create (or replace) a user who can sign in, and its ``sys_user`` record.

        ``fields`` are sys_user columns (``first_name``, ``last_name``, ``email``,
        ``title`` ...); ``name`` defaults to first and last name. ``now`` stamps the
        record (default: the clock).
        """
        with self.lock:
            existing = self.users.get(user_name)
            values = {"user_name": user_name, **fields}
            if existing is not None and self.find("sys_user", existing.sys_id) is not None:
                self.update("sys_user", existing.sys_id, values, user="system", now=now)
                sys_id = existing.sys_id
            else:
                sys_id = self.insert("sys_user", values, user="system", now=now)["sys_id"]
            user = SimUser(user_name, password, frozenset(roles), sys_id)
            self.users[user_name] = user
            return user

    def authenticate(self, user_name: str, password: str) -> SimUser | None:
        """The user if the password matches and the account is active and not locked."""
        with self.lock:
            user = self.users.get(user_name)
            if user is None or user.password != password:
                return None
            return user if self.user_active(user) else None

    def user_active(self, user: SimUser) -> bool:
        """False once the sys_user record is deleted, inactive or locked out."""
        record = self.find("sys_user", user.sys_id)
        return (
            record is not None
            and record.get("active") == "true"
            and record.get("locked_out") != "true"
        )

    def add_oauth_client(
        self, client_id: str, client_secret: str, *, user: str | None = None
    ) -> OAuthClient:
        """Register an OAuth client (Application Registry). ``user`` enables the
        ``client_credentials`` grant, whose tokens act as that user."""
        with self.lock:
            client = OAuthClient(client_id, client_secret, user)
            self.oauth_clients[client_id] = client
            return client

    def issue_tokens(
        self, user_name: str, client_id: str, *, refresh: bool
    ) -> tuple[Token, Token | None]:
        """A new access token (and refresh token if ``refresh``) for ``user_name``."""
        with self.lock:
            now = self.clock()
            access = Token(self._token_value(), user_name, client_id, now + self.access_token_ttl)
            self.access_tokens[access.value] = access
            refresh_token = None
            if refresh:
                refresh_token = Token(
                    self._token_value(), user_name, client_id, now + self.refresh_token_ttl
                )
                self.refresh_tokens[refresh_token.value] = refresh_token
            return access, refresh_token

    def expire_tokens(self, *, refresh: bool = False) -> None:
        """Make every access token (and refresh token if ``refresh``) expired now."""
        with self.lock:
            past = self.clock() - 1
            for token in self.access_tokens.values():
                token.expires_at = past
            if refresh:
                for token in self.refresh_tokens.values():
                    token.expires_at = past

    def add_rate_limit(
        self,
        requests_per_hour: int,
        *,
        user: str | None = None,
        role: str | None = None,
        name: str | None = None,
    ) -> RateLimitRule:
        """Add a rate-limit rule (per user per clock hour); see :class:`RateLimitRule`."""
        with self.lock:
            rule = RateLimitRule(
                self.new_sys_id(),
                name or f"Limit {user or role or 'all users'}",
                requests_per_hour,
                user,
                role,
            )
            self.rate_limit_rules.append(rule)
            return rule

    def rate_limit_rule(self, user: SimUser) -> RateLimitRule | None:
        """The rule that applies to ``user``, by the platform's priority order."""
        with self.lock:
            rules = self.rate_limit_rules
            own = [r for r in rules if r.user == user.user_name]
            if own:
                return min(own, key=lambda r: r.limit)
            by_role = [r for r in rules if r.user is None and r.role and r.role in user.roles]
            if by_role:
                return min(by_role, key=lambda r: r.limit)
            everyone = [r for r in rules if r.user is None and r.role is None]
            return min(everyone, key=lambda r: r.limit) if everyone else None

    def reset_rate_limits(self) -> None:
        """Clear every rule's counts (the platform's "Reset rate limit" action)."""
        with self.lock:
            for rule in self.rate_limit_rules:
                rule.counts.clear()

    def count_request(self, user: SimUser) -> tuple[RateLimitRule, int, bool] | None:
        """Count a request against the user's rule: ``(rule, reset time, allowed)``;
        a refused request is not counted. ``None`` when no rule applies."""
        with self.lock:
            rule = self.rate_limit_rule(user)
            if rule is None:
                return None
            now = self.clock()
            window = int(now // 3600)
            key = (user.user_name, window)
            used = rule.counts.get(key, 0)
            reset = (window + 1) * 3600
            if used >= rule.limit:
                return rule, reset, False
            rule.counts[key] = used + 1
            return rule, reset, True

    def fail_next(
        self,
        count: int,
        status: int = 503,
        retry_after: int | None = None,
        *,
        after_processing: bool = False,
        path: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests (for ``path`` and below, if given) with
        ``status`` (and ``Retry-After``); with ``after_processing``, API requests are
        carried out first (their answer is lost)."""
        with self.lock:
            self.faults.extend(
                Fault(status, retry_after, after_processing, path) for _ in range(count)
            )

    def count_requests(self, method: str | None = None, path_prefix: str = "") -> int:
        """How many logged requests match (batch sub-requests not included)."""
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and r.path.startswith(path_prefix)
            )

    # --- attachments ----------------------------------------------------------------

    def add_attachment(
        self,
        table: str,
        table_sys_id: str,
        file_name: str,
        content: bytes,
        content_type: str,
        *,
        user: str = "system",
    ) -> Record:
        """Store an attachment on a record; returns a copy of its sys_attachment row.
        Raises 400 for an unknown table, 404 when the record does not exist."""
        with self.lock:
            if table not in self.tables:
                raise invalid_table(table)
            if self.find(table, table_sys_id) is None:
                raise no_record()
            values = {
                "file_name": file_name,
                "table_name": table,
                "table_sys_id": table_sys_id,
                "content_type": content_type,
                "size_bytes": str(len(content)),
                "size_compressed": str(len(gzip.compress(content, mtime=0))),
                "compressed": "true",
                "hash": hashlib.sha256(content).hexdigest(),
                "state": "available",
                "chunk_size_bytes": "700000",
            }
            record = self._insert("sys_attachment", values, user, None, None, False, False)
            self._attachment_data[record["sys_id"]] = content
            return dict(record)

    def attachment_content(self, sys_id: str) -> bytes | None:
        """The bytes of attachment ``sys_id``."""
        with self.lock:
            return self._attachment_data.get(sys_id)

    # --- schema records (imports and Table API writes to sys_db_object ...) ----------

    def import_unload_xml(self, text: str | bytes) -> ImportSummary:
        """Import an ``<unload>`` document as an administrator's "Import XML" does.

        ``sys_db_object`` records define tables, ``sys_number`` records set number
        prefixes, ``sys_dictionary`` records define columns (the element-less
        "collection" row is accepted), ``sys_choice`` records add choices; records of
        any other table are inserted, or updated when their sys_id exists
        (``action="INSERT_OR_UPDATE"``), or deleted (``action="DELETE"``). An update set
        (``sys_update_xml`` records) is committed: its payloads' records are imported the
        same way and its ACLs applied (:mod:`~rsbridge.sim.servicenow.update_set`). System
        fields (``sys_created_on`` ...) are kept from the document. Records of unknown
        tables are skipped and listed. Raises
        :class:`~rsbridge.sim.servicenow.unload.UnloadError` for malformed XML or a DTD.
        """
        from rsbridge.sim.servicenow import update_set
        from rsbridge.sim.servicenow.unload import parse_unload

        rows = parse_unload(text)
        committed = update_set.is_update_set(rows)
        if committed:  # loaded, previewed and committed in one step
            rows = update_set.commit_rows(rows)
            update_set.define_update_set_tables(self)
        summary = ImportSummary()
        order = {name: i for i, name in enumerate(_META_TABLES)}
        rows.sort(key=lambda row: order.get(row.table, len(order)))  # stable
        with self.lock:
            for row in rows:
                if row.table not in self.tables:
                    summary.skipped.append(row.table)
                    continue
                if row.action == "DELETE":
                    record = self.find(row.table, row.values.get("sys_id", ""))
                    if record is not None:
                        self._delete(record)
                        summary.deleted += 1
                    continue
                before = set(self.tables)
                self._upsert(row.table, row.values, row.attributes)
                summary.tables += [t for t in self.tables if t not in before]
                if row.table == "sys_dictionary" and row.values.get("element"):
                    summary.columns += 1
                summary.records += 1
            if committed:
                update_set.apply_acls(self)
        return summary

    def _upsert(
        self, table: str, values: dict[str, str], attributes: Mapping[str, Mapping[str, str]]
    ) -> Record:
        values = dict(values)
        if table == "sys_db_object":
            values["super_class"] = self._table_name_of(
                values.get("super_class", ""), attributes.get("super_class", {})
            )
        if table == "sys_dictionary":
            values["reference"] = self._table_name_of(
                values.get("reference", ""), attributes.get("reference", {})
            )
        existing = self.find(table, values.get("sys_id", ""))
        if existing is None and table == "sys_db_object":
            existing = self.find(table, self._table_ids.get(values.get("name", ""), ""))
        if existing is None and table == "sys_dictionary":
            key = (values.get("name", ""), values.get("element", ""))
            existing = next(
                (r for r in self.records(table) if (r["name"], r["element"]) == key), None
            )
        if existing is not None:
            return self._update(existing, values, "system", None, False, True)
        return self._insert(
            table, values, values.get("sys_created_by") or "system", None, None, False, True
        )

    def _table_name_of(self, value: str, attributes: Mapping[str, str]) -> str:
        """A table named by sys_db_object sys_id, by name, or by label (display_value)."""
        if not value:
            return ""
        if value in self.tables:
            return value
        for name, sys_id in self._table_ids.items():
            if sys_id == value:
                return name
        label = attributes.get("display_value", "")
        for name, tdef in self.tables.items():
            if label and tdef.label == label:
                return name
        return value

    def _apply_schema_record(self, table: str, record: Record) -> None:
        """Apply a stored metadata record to the schema (see :meth:`import_unload_xml`)."""
        if table == "sys_db_object":
            self._apply_db_object(record)
        elif table == "sys_dictionary":
            self._apply_dictionary(record)
        elif table == "sys_number":
            owner = record.get("category", "")
            if owner in self.tables and record.get("prefix"):
                self.tables[owner].number_prefix = record["prefix"]
                if record.get("number", "").isdigit():
                    self._counters[owner] = int(record["number"])
                if record.get("maximum_digits", "").isdigit():
                    self._digits[owner] = int(record["maximum_digits"])
        elif table == "sys_choice":
            self._apply_choice(record)

    def _apply_db_object(self, record: Record) -> None:
        name = record.get("name", "")
        if not name:
            return
        parent_value = record.get("super_class", "")
        parent = self._table_name_of(parent_value, {}) if parent_value else ""
        if parent and parent not in self.tables:
            parent = ""
        if parent:
            record["super_class"] = self._table_ids.get(parent, parent_value)
        tdef = self.tables.get(name)
        if tdef is None:
            tdef = TableDef(name, record.get("label") or default_label(name), parent or None)
            if not parent:
                tdef.columns = {c.name: c for c in system_columns()}
            self._register(tdef)
        else:
            tdef.label = record.get("label") or tdef.label
            if parent and parent != name:
                tdef.extends = parent
                self._schema_changed()
        old = self._table_ids.get(name)
        self._table_ids[name] = record["sys_id"]
        if old is not None and old != record["sys_id"]:
            self._stores["sys_db_object"].pop(old, None)

    def _apply_dictionary(self, record: Record) -> None:
        table, element = record.get("name", ""), record.get("element", "")
        if not table:
            return
        if table not in self.tables:
            label = record.get("column_label") if not element else None
            tdef = TableDef(table, label or default_label(table))
            tdef.columns = {c.name: c for c in system_columns()}
            self._register(tdef)
            self._write_metadata(table, self.clock(), only=[], collection=bool(element))
        if not element:
            if record.get("column_label"):
                self.tables[table].label = record["column_label"]
            return
        reference = record.get("reference") or None
        kind = record.get("internal_type") or "string"
        max_length = int(record["max_length"]) if record.get("max_length", "").isdigit() else None
        previous = self.tables[table].columns.get(element)
        column = col(
            element,
            kind,
            ref=reference if kind == "reference" else None,
            max_length=max_length,
            label=record.get("column_label", ""),
            default=record.get("default_value", ""),
            choices=previous.choices if previous else (),
            display=record.get("display") == "true",
        )
        self.tables[table].columns[element] = column
        self._schema_changed()

    def _apply_choice(self, record: Record) -> None:
        table, element = record.get("name", ""), record.get("element", "")
        column = self.tables[table].columns.get(element) if table in self.tables else None
        if column is None:
            inherited = self.columns(table).get(element) if table in self.tables else None
            if inherited is None:
                return
            column = inherited
        rows = [
            r
            for r in self._stores["sys_choice"].values()
            if r["name"] == table and r["element"] == element and r.get("inactive") != "true"
        ]
        rows.sort(
            key=lambda r: int(r["sequence"]) if r.get("sequence", "").lstrip("-").isdigit() else 0
        )
        choices = tuple((r["value"], r.get("label") or r["value"]) for r in rows)
        self.tables[table].columns[element] = dataclasses.replace(column, choices=choices)
        self._schema_changed()


class Resolver:
    """Field access for encoded-query evaluation on one table (see :mod:`.query`)."""

    def __init__(self, state: SimServiceNowState, table: str) -> None:
        self.state = state
        self.table = table
        self._columns: dict[str, Column | None] = {}

    def column(self, path: str) -> Column | None:
        """The column ``path`` ends at."""
        if path not in self._columns:
            found = self.state.path_column(self.table, path)
            self._columns[path] = found[1] if found else None
        return self._columns[path]

    def _end(
        self, record: Mapping[str, str], path: str
    ) -> tuple[str, Mapping[str, str] | None, Column]:
        found = self.state.path_column(self.table, path)
        assert found is not None  # parse() only keeps conditions on known paths
        return found[0], self.state.path_record(self.table, record, path), found[1]

    def value(self, record: Mapping[str, str], path: str) -> str:
        """The stored value (journal columns: every entry's text, so LIKE searches them)."""
        if "." not in path:  # the common case, kept cheap: queries scan whole tables
            column = self.column(path)
            if column is not None and not column.is_journal:
                return record.get(path, "")
        _, target, column = self._end(record, path)
        if target is None:
            return ""
        if column.is_journal:
            return "\n".join(e["value"] for e in self.state._journal_entries(target["sys_id"]))
        return target.get(column.name, "")

    def display(self, record: Mapping[str, str], path: str) -> str:
        """The display value."""
        table, target, column = self._end(record, path)
        return self.state.display_of(table, target, column)

    def is_instance(self, record: Mapping[str, str], table: str) -> bool:
        """``INSTANCEOF``: the record's class extends ``table``."""
        return table in self.state.tables and self.state.is_a(record["sys_class_name"], table)


def _text(raw: Any) -> str:
    """A JSON value as the string ServiceNow stores (``true`` -> ``"true"``, null -> ``""``)."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float):
        return str(raw) if not (isinstance(raw, float) and math.isnan(raw)) else ""
    if isinstance(raw, Mapping):
        # clients echo display-value objects back: {"value": ..., "display_value": ...}
        return _text(raw.get("value", raw.get("display_value", "")))
    if isinstance(raw, list):
        return ",".join(_text(item) for item in raw)
    return str(raw)


def _column(spec: Column | Mapping[str, Any]) -> Column:
    if isinstance(spec, Column):
        return spec
    choices = spec.get("choices") or ()
    if isinstance(choices, Mapping):
        choices = tuple(choices.items())
    return col(
        str(spec["name"]),
        str(spec.get("internal_type", "string")),
        ref=spec.get("reference"),
        max_length=spec.get("max_length"),
        label=str(spec.get("label", "")),
        default=str(spec.get("default", "")),
        choices=tuple((str(v), str(lbl)) for v, lbl in choices),
        display=bool(spec.get("display", False)),
    )
