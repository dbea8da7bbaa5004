"""The data behind the simulated Salesforce org and the operations the REST API performs.

One :class:`SimSalesforceState` holds the object definitions, the records, the users'
credentials, connected apps and sessions, the daily API allowance, validation rules, row
locks, fault switches and the request log, all guarded by ``state.lock`` (re-entrant: the
server thread and a test thread may both use it). Names of objects and fields are
case-insensitive; ids are kept in their 18-character form and accepted in either form.

Business rules reproduced because integrations notice them: ``CaseNumber`` auto-numbers
(``00001001``...), ``Name`` of contacts and users from first and last name, ``IsClosed`` /
``ClosedDate`` when a case reaches ``Closed``, ``OwnerId`` defaulting to the caller, audit
fields, and a ``ContentDocument`` (plus a ``ContentDocumentLink`` to
``FirstPublishLocationId``) for every new ``ContentVersion``.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rsbridge.sim.salesforce import rules, soql
from rsbridge.sim.salesforce.errors import SalesforceError, invalid_field, not_found
from rsbridge.sim.salesforce.ids import make_id, to18
from rsbridge.sim.salesforce.schema import FieldDef, ObjectDef, standard_objects
from rsbridge.sim.salesforce.values import coerce, format_datetime

Record = dict[str, Any]
#: The default API version of answers and URLs (simple-salesforce's default).
DEFAULT_VERSION = "59.0"
#: Versions ``GET /services/data/`` lists, oldest first.
VERSIONS = tuple(f"{v}.0" for v in range(31, 63))
_RELEASES = ("Winter", "Spring", "Summer")


def release_label(version: str) -> str:
    """``Winter '24`` for ``59.0`` (three releases a year; v20.0 was Winter '11)."""
    number = int(float(version)) - 20
    return f"{_RELEASES[number % 3]} '{11 + (number + 0) // 3:02d}"


@dataclass
class Credential:
    """How a user signs in: password and security token (appended to the password)."""

    username: str
    password: str = field(repr=False)
    security_token: str = field(repr=False)


@dataclass
class ConnectedApp:
    """An OAuth client. ``run_as``: user id of client-credentials tokens (``None``: refused).
    ``certificate``: PEM of the JWT bearer flow's signing key (public part)."""

    client_id: str
    client_secret: str = field(repr=False)
    run_as: str | None = None
    certificate: str | None = None


@dataclass
class Session:
    """An issued access token."""

    token: str = field(repr=False)
    user_id: str
    client_id: str | None
    issued_at: float
    last_used: float = 0.0


@dataclass
class Fault:
    """A queued failure answer (see :meth:`SimSalesforceState.fail_next`)."""

    status: int
    error_code: str
    message: str


@dataclass
class ValidationRule:
    """A validation rule: when ``condition(record)`` is true the write is refused with
    ``FIELD_CUSTOM_VALIDATION_EXCEPTION`` and ``message`` (on ``field`` if given)."""

    object_name: str
    message: str
    condition: Callable[[Record], bool]
    field: str | None = None


@dataclass
class Savepoint:
    """Where a transaction stood (see :meth:`SimSalesforceState.snapshot`)."""

    mark: int
    counters: dict[str, int]
    auto_numbers: dict[str, int]
    started: bool


@dataclass
class LoggedRequest:
    """One answered request: method, path, query, the user id (``None`` if none) and
    status; a composite call lists its sub-requests."""

    method: str
    path: str
    query: str
    user_id: str | None
    status: int
    sub_requests: list[LoggedRequest] = field(default_factory=list)


class SimSalesforceState:
    """Everything the simulated org knows. See the module docstring.

    ``seed`` drives generated tokens; ``clock`` (UNIX seconds) stamps records.
    ``my_domain`` names the org's My Domain (``<my_domain>.my.salesforce.com``), the
    instance URL a login through a ``*.salesforce.com`` host answers with;
    ``instance_url`` fixes that URL for every login instead.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        my_domain: str = "rsbridge-dev",
        instance_url: str | None = None,
    ) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.random = random.Random(seed)
        self.my_domain = my_domain
        self.instance_url = instance_url.rstrip("/") if instance_url else None
        self.org_id = make_id("00D", 1 + seed)
        self.objects: dict[str, ObjectDef] = {}
        self.records: dict[str, dict[str, Record]] = {}
        self.blobs: dict[str, bytes] = {}
        self.credentials: dict[str, Credential] = {}
        self.apps: dict[str, ConnectedApp] = {}
        self.sessions: dict[str, Session] = {}
        #: The username-password OAuth flow is allowed ("Allow OAuth Username-Password
        #: Flows"); orgs created since Summer '23 have it off (then: ``invalid_grant``).
        self.password_flow_enabled = True
        #: Seconds without a call after which a session ends (the org's "Timeout Value",
        #: 2 hours by default); ``None``: never.
        self.session_timeout: float | None = 7200.0
        #: Daily API request allowance (``Sforce-Limit-Info: api-usage=N/M``).
        self.daily_api_limit = 15000
        self.api_requests = 0
        #: Records per query batch (``Sforce-Query-Options: batchSize`` may lower it).
        self.query_batch_size = 2000
        #: Record ids another transaction holds (writes get ``UNABLE_TO_LOCK_ROW``).
        self.locked: set[str] = set()
        self.validation_rules: list[ValidationRule] = []
        self.faults: deque[Fault] = deque()
        #: Every request answers 503 ``SERVER_UNAVAILABLE`` (maintenance, outage).
        self.down = False
        #: Seconds added before every answer.
        self.latency = 0.0
        self.requests: list[LoggedRequest] = []
        self.cursors: dict[str, list[Record]] = {}
        self._counters: dict[str, int] = {}
        self._undo: list[Callable[[], None]] | None = None
        self._indexes: dict[tuple[str, str], dict[Any, set[str]]] = {}
        #: Last auto-number handed out per object.
        self.auto_numbers: dict[str, int] = {}
        for definition in standard_objects():
            self.define_object(definition)

    # --- schema ----------------------------------------------------------------------

    def define_object(self, definition: ObjectDef) -> None:
        """Add (or replace) an object type; its records are kept when it is replaced."""
        with self.lock:
            self.objects[definition.name.lower()] = definition
            self.records.setdefault(definition.name, {})
            for key in [k for k in self._indexes if k[0] == definition.name]:
                del self._indexes[key]

    def object(self, name: str) -> ObjectDef | None:
        """The object called ``name`` in any case."""
        return self.objects.get(name.lower())

    def require_object(self, name: str) -> ObjectDef:
        """The object ``name``, or 404 ``NOT_FOUND`` as the sObject resources answer."""
        definition = self.object(name)
        if definition is None:
            raise not_found()
        return definition

    def object_of_id(self, record_id: str) -> ObjectDef | None:
        """The object whose key prefix starts ``record_id``."""
        prefix = record_id[:3]
        return next((o for o in self.objects.values() if o.key_prefix == prefix), None)

    def children(self, target: ObjectDef) -> list[dict[str, Any]]:
        """``childRelationships`` of describe: reference fields pointing at ``target``."""
        out = []
        for obj in self.objects.values():
            for definition in obj.fields.values():
                if target.name in definition.reference_to and definition.name not in (
                    "CreatedById",
                    "LastModifiedById",
                ):
                    out.append(
                        {
                            "childSObject": obj.name,
                            "field": definition.name,
                            "relationshipName": definition.child_relationship,
                            "cascadeDelete": False,
                        }
                    )
        return out

    # --- ids, time, tokens --------------------------------------------------------------

    def new_id(self, definition: ObjectDef) -> str:
        """The next 18-character id of ``definition``."""
        with self.lock:
            number = self._counters.get(definition.key_prefix, 0) + 1
            self._counters[definition.key_prefix] = number
            return make_id(definition.key_prefix, 0x2A00 + number)

    def new_locator(self) -> str:
        """A query locator id (key prefix ``01g``) for ``nextRecordsUrl``."""
        with self.lock:
            number = self._counters.get("01g", 0) + 1
            self._counters["01g"] = number
            return make_id("01g", number)

    def now(self) -> str:
        """The clock as an API date-time."""
        return format_datetime(self.clock())

    def new_token(self) -> str:
        """An access token in the platform's shape: ``<org id 15>!<opaque>``."""
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._"
        opaque = "AQ" + "".join(self.random.choice(alphabet) for _ in range(94))
        return f"{self.org_id[:15]}!{opaque}"

    # --- users, apps, sessions ------------------------------------------------------------

    def add_user(
        self,
        username: str,
        password: str,
        *,
        last_name: str,
        first_name: str = "",
        email: str | None = None,
        security_token: str | None = None,
        active: bool = True,
    ) -> str:
        """Create a user who can sign in; returns the user id."""
        with self.lock:
            alias = (first_name[:1] + last_name)[:8].lower() or "user"
            record = self.create(
                "User",
                {
                    "Username": username,
                    "FirstName": first_name or None,
                    "LastName": last_name,
                    "Email": email or username,
                    "Alias": alias,
                    "IsActive": active,
                },
                user_id=None,
            )
            token = security_token if security_token is not None else secrets.token_hex(12)
            self.credentials[record["Id"]] = Credential(username, password, token)
            return str(record["Id"])

    def user_by_name(self, username: str) -> Record | None:
        """The active user record with ``username`` (case-insensitive)."""
        wanted = username.lower()
        for record in self.records["User"].values():
            if str(record.get("Username", "")).lower() == wanted and record.get("IsActive"):
                return record
        return None

    def check_password(self, username: str, password: str) -> str | None:
        """The user id when ``password`` is the password followed by the security token."""
        with self.lock:
            user = self.user_by_name(username)
            if user is None:
                return None
            credential = self.credentials.get(user["Id"])
            if credential is None:
                return None
            expected = credential.password + credential.security_token
            return str(user["Id"]) if secrets.compare_digest(password, expected) else None

    def add_app(
        self,
        client_id: str,
        client_secret: str,
        *,
        run_as: str | None = None,
        certificate: str | None = None,
    ) -> ConnectedApp:
        """Register a connected app (``run_as``: a user id for client credentials)."""
        with self.lock:
            app = ConnectedApp(client_id, client_secret, run_as, certificate)
            self.apps[client_id] = app
            return app

    def open_session(self, user_id: str, client_id: str | None) -> Session:
        """Issue an access token for ``user_id``."""
        with self.lock:
            now = self.clock()
            session = Session(self.new_token(), user_id, client_id, now, now)
            self.sessions[session.token] = session
            return session

    def session(self, token: str) -> Session | None:
        """The live session of ``token`` whose user is still active (its use counts as
        activity: sessions end after ``session_timeout`` seconds without any)."""
        with self.lock:
            session = self.sessions.get(token)
            if session is None:
                return None
            now = self.clock()
            if self.session_timeout is not None and now - session.last_used > self.session_timeout:
                del self.sessions[token]
                return None
            user = self.records["User"].get(session.user_id)
            if user is None or not user.get("IsActive"):
                return None
            session.last_used = now
            return session

    def expire_sessions(self) -> None:
        """End every session (clients then get 401 ``INVALID_SESSION_ID``)."""
        with self.lock:
            self.sessions.clear()

    # --- limits and faults --------------------------------------------------------------

    def count_api_request(self) -> bool:
        """Count one API request against the daily allowance; ``False`` when it is used up
        (a refused request is not counted)."""
        with self.lock:
            if self.api_requests >= self.daily_api_limit:
                return False
            self.api_requests += 1
            return True

    def limit_info(self) -> str:
        """The ``Sforce-Limit-Info`` header value."""
        return f"api-usage={self.api_requests}/{self.daily_api_limit}"

    def fail_next(
        self,
        count: int,
        status: int = 503,
        error_code: str = "SERVER_UNAVAILABLE",
        message: str = "Server temporarily unavailable",
    ) -> None:
        """Answer the next ``count`` API requests with this error array."""
        with self.lock:
            self.faults.extend(Fault(status, error_code, message) for _ in range(count))

    def count_requests(self, method: str | None = None, path_contains: str = "") -> int:
        """How many logged requests match (composite sub-requests not included)."""
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and path_contains in r.path
            )

    # --- records ---------------------------------------------------------------------

    def snapshot(self) -> Savepoint:
        """Start (or nest into) a transaction that :meth:`restore` can undo (``allOrNone``).

        Writes record how to undo themselves while a transaction is open, so a rollback
        costs what the transaction wrote, not the size of the org. End it with
        :meth:`restore` or :meth:`release`.
        """
        with self.lock:
            started = self._undo is None
            if started:
                self._undo = []
            assert self._undo is not None
            return Savepoint(
                len(self._undo), dict(self._counters), dict(self.auto_numbers), started
            )

    def restore(self, savepoint: Savepoint) -> None:
        """Undo every write since ``savepoint`` (and end the transaction it started)."""
        with self.lock:
            undo = self._undo or []
            while len(undo) > savepoint.mark:
                undo.pop()()
            self._counters = dict(savepoint.counters)
            self.auto_numbers = dict(savepoint.auto_numbers)
            self._indexes.clear()  # rebuilt on the next lookup
            self.release(savepoint)

    def release(self, savepoint: Savepoint) -> None:
        """Keep the writes since ``savepoint``; ends the transaction it started."""
        with self.lock:
            if savepoint.started:
                self._undo = None

    def _journal(self, undo: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(undo)

    def _index(self, name: str, column: FieldDef) -> dict[Any, set[str]]:
        key = (name, column.name)
        index = self._indexes.get(key)
        if index is None:
            index = {}
            for record in self.records[name].values():
                value = soql.comparable(record.get(column.name), column.type)
                index.setdefault(value, set()).add(record["Id"])
            self._indexes[key] = index
        return index

    def reindex(self, name: str, before: Record | None, after: Record | None) -> None:
        """Keep the equality indexes of ``name`` in step with one record's change."""
        for (object_name, field_name), index in self._indexes.items():
            if object_name != name:
                continue
            kind = self.objects[name.lower()].fields[field_name.lower()].type
            for record, add in ((before, False), (after, True)):
                if record is None:
                    continue
                value = soql.comparable(record.get(field_name), kind)
                ids = index.setdefault(value, set())
                if add:
                    ids.add(record["Id"])
                else:
                    ids.discard(record["Id"])

    def get(self, object_name: str, record_id: str) -> Record | None:
        """The live record ``record_id`` of ``object_name`` (no copy), or ``None``."""
        definition = self.object(object_name)
        normal = to18(record_id)
        if definition is None or normal is None:
            return None
        record = self.records[definition.name].get(normal)
        return None if record is None or record["IsDeleted"] else record

    def find_by_id(self, record_id: str) -> Record | None:
        """The live record with ``record_id`` whatever its object."""
        definition = self.object_of_id(record_id)
        return self.get(definition.name, record_id) if definition else None

    def all_records(self, object_name: str, *, deleted: bool = False) -> list[Record]:
        """The records of ``object_name`` in creation order (with deleted ones if asked)."""
        definition = self.require_object(object_name)
        return [r for r in self.records[definition.name].values() if deleted or not r["IsDeleted"]]

    def find_by(self, object_name: str, field_name: str, value: Any) -> list[Record]:
        """Live records whose ``field_name`` equals ``value`` (text case-insensitively)."""
        definition = self.require_object(object_name)
        column = definition.field(field_name)
        if column is None:
            raise invalid_field(
                f"No such column '{field_name}' on sobject of type {definition.name}"
            )
        with self.lock:
            # An index per (object, field), built on first use: integrations look records
            # up by external id in objects that grow to thousands of rows.
            ids = self._index(definition.name, column).get(
                soql.comparable(value, column.type), set()
            )
            store = self.records[definition.name]
            found = [store[i] for i in ids if i in store and not store[i]["IsDeleted"]]
            return sorted(found, key=lambda r: str(r["Id"]))  # ids grow with creation order

    def create(self, object_name: str, values: dict[str, Any], *, user_id: str | None) -> Record:
        """Insert a record as ``user_id``; refuses like the API (see :class:`SalesforceError`)."""
        with self.lock:
            definition = self.require_object(object_name)
            if any(k.lower() == "id" for k in values):
                raise invalid_field("The Id field should not be specified in the sobject data.")
            assigned = self._assign(definition, values, creating=True)
            record: Record = {f.name: None for f in definition.fields.values()}
            for column in definition.fields.values():
                if column.default is not None:
                    record[column.name] = column.default
            record.update(assigned)
            record_id = self.new_id(definition)
            stamp = self.now()
            record |= {
                "Id": record_id,
                "IsDeleted": False,
                "CreatedDate": stamp,
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
                "CreatedById": user_id,
                "LastModifiedById": user_id,
            }
            if "OwnerId" in record and record["OwnerId"] is None:
                record["OwnerId"] = user_id
            missing = [
                f.name for f in definition.fields.values() if f.required and record[f.name] is None
            ]
            if missing:
                raise SalesforceError(
                    400,
                    "REQUIRED_FIELD_MISSING",
                    f"Required fields are missing: [{', '.join(missing)}]",
                    missing,
                )
            rules.apply(self, definition, record, stamp, creating=True)
            self._check(definition, record)
            if definition.name == "ContentVersion":
                rules.content_document(self, record, user_id)
            self.records[definition.name][record_id] = record
            self.reindex(definition.name, None, record)
            self._journal(lambda: self._unstore(definition.name, record_id))
            return record

    def update(
        self, object_name: str, record_id: str, values: dict[str, Any], *, user_id: str | None
    ) -> Record:
        """Change fields of a live record."""
        with self.lock:
            definition = self.require_object(object_name)
            record = self.get(definition.name, record_id)
            if record is None:
                raise not_found()
            values = {k: v for k, v in values.items() if k.lower() != "id"}
            self._lock_check(record["Id"])
            assigned = self._assign(definition, values, creating=False)
            changed = {**record, **assigned}
            for name, value in assigned.items():
                column = definition.fields[name.lower()]
                if column.required and value is None:
                    raise SalesforceError(
                        400,
                        "REQUIRED_FIELD_MISSING",
                        f"Required fields are missing: [{column.name}]",
                        [column.name],
                    )
            stamp = self.now()
            changed |= {
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
                "LastModifiedById": user_id,
            }
            rules.apply(self, definition, changed, stamp, creating=False)
            self._check(definition, changed, exclude=record["Id"])
            before = dict(record)
            record.update(changed)
            self.reindex(definition.name, before, record)
            self._journal(lambda: self._put_back(definition.name, record, before))
            return record

    def delete(self, object_name: str, record_id: str) -> None:
        """Move a record to the recycle bin (``queryAll`` still sees it)."""
        with self.lock:
            definition = self.require_object(object_name)
            normal = to18(record_id)
            record = self.records[definition.name].get(normal or "")
            if record is None:
                raise not_found()
            if record["IsDeleted"]:
                raise SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted")
            self._lock_check(record["Id"])
            record["IsDeleted"] = True
            self._journal(lambda: record.__setitem__("IsDeleted", False))

    def _unstore(self, name: str, record_id: str) -> None:
        record = self.records[name].pop(record_id, None)
        self.blobs.pop(record_id, None)
        if record is not None:
            self.reindex(name, record, None)

    def _put_back(self, name: str, record: Record, before: Record) -> None:
        current = dict(record)
        record.clear()
        record.update(before)
        self.reindex(name, current, record)

    def _lock_check(self, record_id: str) -> None:
        if record_id in self.locked:
            raise SalesforceError(
                400,
                "UNABLE_TO_LOCK_ROW",
                f"unable to obtain exclusive access to this record or 1 records: {record_id}",
            )

    def _assign(
        self, definition: ObjectDef, values: dict[str, Any], *, creating: bool
    ) -> dict[str, Any]:
        assigned: dict[str, Any] = {}
        for name, raw in values.items():
            if name == "attributes":
                continue
            column = definition.field(name)
            if column is None and isinstance(raw, dict):
                # A parent named by its external id: "Account__r": {"Ext_Id__c": "X"}
                # (REST API guide, "Create records using an external ID relationship").
                column = definition.relationship(name)
                if column is not None:
                    raw = self._by_external_id(column, raw)
            if column is None:
                raise invalid_field(f"No such column '{name}' on sobject of type {definition.name}")
            if not (column.createable if creating else column.updateable):
                raise SalesforceError(
                    400,
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {column.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [column.name],
                )
            value = coerce(column, raw)
            if column.type == "reference" and value is not None:
                self._check_reference(column, value)
            if column.type == "base64" and isinstance(value, bytes):
                assigned["__blob__"] = value
                continue
            assigned[column.name] = value
        return assigned

    def _by_external_id(self, column: FieldDef, ref: dict[str, Any]) -> str:
        """The id of the parent record ``ref`` names by one external id field."""
        pairs = [(k, v) for k, v in ref.items() if k != "attributes"]
        for target_name in column.reference_to:
            target = self.object(target_name)
            if target is None or len(pairs) != 1:
                continue
            field_name, value = pairs[0]
            key = target.field(field_name)
            if key is None or not (key.external_id or key.name == "Id"):
                raise invalid_field(f"{field_name} is not an external id field of {target.name}")
            found = self.find_by(target.name, key.name, value)
            if not found:
                raise SalesforceError(
                    400,
                    "INVALID_FIELD",
                    f"Foreign key external ID: {value} not found for field {key.name} in "
                    f"entity {target.name}",
                    [column.name],
                )
            return str(found[0]["Id"])
        raise invalid_field(f"Cannot resolve the reference {column.relationship_name}")

    def _check_reference(self, column: FieldDef, value: str) -> None:
        target = self.object_of_id(value)
        if target is None or target.name not in column.reference_to:
            raise SalesforceError(
                400,
                "FIELD_INTEGRITY_EXCEPTION",
                f"{column.label}: id value of incorrect type: {value}",
                [column.name],
            )
        if self.get(target.name, value) is None:
            raise SalesforceError(
                400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [column.name]
            )

    def _check(self, definition: ObjectDef, record: Record, exclude: str | None = None) -> None:
        for rule in self.validation_rules:
            if rule.object_name.lower() == definition.name.lower() and rule.condition(record):
                raise SalesforceError(
                    400,
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    rule.message,
                    [rule.field] if rule.field else [],
                )
        for column in definition.fields.values():
            value = record.get(column.name)
            if not column.unique or value is None:
                continue
            for other in self.find_by(definition.name, column.name, value):
                if other["Id"] not in (exclude, record.get("Id")):
                    raise SalesforceError(
                        400,
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {column.name} duplicates value on record "
                        f"with id: {other['Id']}",
                        [column.name],
                    )
