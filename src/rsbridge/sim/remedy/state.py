"""The data of one simulated AR System server: users, JWTs, forms, entries, faults."""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rsbridge.sim.remedy import errors
from rsbridge.sim.remedy.errors import ARError
from rsbridge.sim.remedy.forms import (
    CREATE_DATE,
    ENTRY_ID,
    LAST_MODIFIED_BY,
    MODIFIED_DATE,
    SUBMITTER,
    FormDef,
)
from rsbridge.sim.remedy.qualification import Predicate
from rsbridge.sim.remedy.values import coerce

# A token is valid about an hour by default (itsm-apis.md 3.1).
TOKEN_LIFETIME = 3600.0


@dataclass
class Filter:
    """Workflow on a form: when ``condition`` holds for the values about to be saved, the
    save fails 400 with ``number``/``text``, as an AR filter's error message does."""

    form: str
    condition: Predicate
    number: int
    text: str


@dataclass
class Fault:
    """A queued failure answer (see :meth:`SimRemedyState.fail_next`)."""

    status: int
    number: int
    text: str
    html: bool = False


@dataclass
class LoggedRequest:
    """One request the server answered: method, path, query, user, status."""

    method: str
    path: str
    query: str
    user: str | None
    status: int


@dataclass
class Entry:
    """A stored entry: values by field id, attachment bytes by field id."""

    values: dict[int, Any]
    files: dict[int, bytes] = field(default_factory=dict)


class SimRemedyState:
    """Everything the simulated server knows; all access under ``lock``.

    ``clock`` (epoch seconds) drives token expiry and the core date fields, so tests can
    move time. Fault knobs: ``down`` (every request 503, ARERR 90), ``latency`` (seconds
    before each answer), :meth:`fail_next` (queued error or HTML proxy pages).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.users: dict[str, str] = {}
        self.tokens: dict[str, tuple[str, float]] = {}
        self.token_lifetime = TOKEN_LIFETIME
        self.forms: dict[str, FormDef] = {}
        self.stores: dict[str, dict[str, Entry]] = {}
        self.counters: dict[str, int] = {}
        self.filters: list[Filter] = []
        self.faults: deque[Fault] = deque()
        self.down = False
        self.latency = 0.0
        self.requests: list[LoggedRequest] = []

    # -- definitions -------------------------------------------------------------------
    def define_forms(self, forms: Iterable[FormDef]) -> None:
        """Add (or replace) forms; a view's store must be defined first or in the same call."""
        forms = list(forms)
        with self.lock:
            known = {*self.forms, *(f.name for f in forms)}
            for form in forms:
                if form.store not in known:
                    raise ValueError(f"{form.name}: store form {form.store!r} is not defined")
            for form in forms:
                self.forms[form.name] = form
                self.stores.setdefault(form.store, {})

    def add_user(self, username: str, password: str) -> None:
        """A user that may log in."""
        with self.lock:
            self.users[username] = password

    def add_filter(self, rule: Filter) -> None:
        """Workflow that refuses some saves (see :class:`Filter`)."""
        with self.lock:
            self.filters.append(rule)

    def fail_next(
        self, count: int, status: int = 500, number: int = 8760, text: str = "Internal error"
    ) -> None:
        """The next ``count`` requests answer an AR error array with this status and message."""
        with self.lock:
            self.faults.extend(Fault(status, number, text) for _ in range(count))

    def html_next(self, count: int, status: int = 502) -> None:
        """The next ``count`` requests answer an HTML page, as a proxy in front of AR would."""
        with self.lock:
            self.faults.extend(Fault(status, 0, "", html=True) for _ in range(count))

    # -- sessions ----------------------------------------------------------------------
    def login(self, username: str, password: str) -> str | None:
        """A new JWT, or ``None`` when the user or password is wrong."""
        with self.lock:
            known = self.users.get(username)
            if known is None or not secrets.compare_digest(known, password):
                return None
            token = "eyJ" + secrets.token_urlsafe(36)
            self.tokens[token] = (username, self.clock() + self.token_lifetime)
            return token

    def authenticate(self, token: str) -> str | None:
        """The user of a live token; expired tokens are forgotten."""
        with self.lock:
            found = self.tokens.get(token)
            if found is None:
                return None
            if self.clock() >= found[1]:
                del self.tokens[token]
                return None
            return found[0]

    def logout(self, token: str) -> bool:
        """Release a token; ``False`` when it was not live."""
        with self.lock:
            return self.tokens.pop(token, None) is not None

    # -- entries -----------------------------------------------------------------------
    def form(self, name: str) -> FormDef:
        """A form by name; ARERR 303 when unknown."""
        found = self.forms.get(name)
        if found is None:
            raise errors.no_such_form(name)
        return found

    def _values(self, form: FormDef, raw: Mapping[str, Any]) -> dict[int, Any]:
        out: dict[int, Any] = {}
        for name, value in raw.items():
            fdef = form.by_name.get(name)
            if fdef is None:
                raise errors.no_such_field(form.name, name)
            if fdef.system:
                continue  # AR ignores writes to server-set core fields
            out[fdef.id] = coerce(form, fdef, value)
        return out

    def _check(self, form: FormDef, values: Mapping[int, Any]) -> None:
        for fdef in form.fields:
            if fdef.required and not fdef.system and values.get(fdef.id) is None:
                raise errors.required_field(form.name, fdef.name)
        for rule in self.filters:
            if rule.form in (form.name, form.store) and rule.condition(values):
                raise ARError(400, rule.number, rule.text, form.name)
        store = self.forms[form.store]
        if store.unique and all(values.get(i) is not None for i in store.unique):
            key = [values.get(i) for i in store.unique]
            for entry in self.stores[store.name].values():
                same_entry = entry.values.get(ENTRY_ID) == values.get(ENTRY_ID)
                if not same_entry and [entry.values.get(i) for i in store.unique] == key:
                    names = ", ".join(store.by_id[i].name for i in store.unique)
                    raise errors.duplicate_key(store.name, names)

    def next_id(self, form: FormDef) -> str:
        """The next entry id: ``<prefix><12 digits>`` or AR's 15-digit id."""
        store = self.forms[form.store]
        prefix = store.number_prefix
        self.counters[store.name] = self.counters.get(store.name, 0) + 1
        count = self.counters[store.name]
        return f"{prefix}{count:012d}" if prefix else f"{count:015d}"

    def create(
        self,
        form_name: str,
        raw: Mapping[str, Any],
        user: str,
        files: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> str:
        """Store a new entry; answers its id (the store's id, see :meth:`public_id`)."""
        with self.lock:
            form = self.form(form_name)
            defaults = {f.id: f.default for f in form.fields if f.default is not None}
            values = {**defaults, **self._values(form, raw)}
            for name, (filename, data) in (files or {}).items():
                fdef = form.by_name.get(name)
                if fdef is None or fdef.type != "attachment":
                    raise errors.no_such_field(form.name, name)
                values[fdef.id] = {
                    "name": (values.get(fdef.id) or {}).get("name") or filename,
                    "sizeBytes": len(data),
                }
            now = int(self.clock())
            entry_id = self.next_id(form)
            values.update(
                {
                    ENTRY_ID: entry_id,
                    SUBMITTER: user,
                    CREATE_DATE: now,
                    LAST_MODIFIED_BY: user,
                    MODIFIED_DATE: now,
                }
            )
            store = self.forms[form.store]
            if store.number_field is not None:
                values[store.number_field] = entry_id
            self._check(form, values)
            entry = Entry(values)
            for name, (_filename, data) in (files or {}).items():
                entry.files[form.by_name[name].id] = data
            self.stores[form.store][entry_id] = entry
            return entry_id

    def entry(self, form: FormDef, public_id: str) -> Entry:
        """The entry behind an id as the form shows it (``X|X`` on joins); ARERR 302."""
        entry_id = public_id.split("|", 1)[0] if form.join else public_id
        found = self.stores[form.store].get(entry_id)
        if found is None:
            raise errors.not_found(public_id)
        return found

    def update(self, form_name: str, public_id: str, raw: Mapping[str, Any], user: str) -> None:
        """Change fields of an entry (all-or-nothing)."""
        with self.lock:
            form = self.form(form_name)
            entry = self.entry(form, public_id)
            values = {**entry.values, **self._values(form, raw)}
            values.update({LAST_MODIFIED_BY: user, MODIFIED_DATE: int(self.clock())})
            self._check(form, values)
            entry.values = values

    def delete(self, form_name: str, public_id: str) -> None:
        """Remove an entry."""
        with self.lock:
            form = self.form(form_name)
            entry = self.entry(form, public_id)
            del self.stores[form.store][entry.values[ENTRY_ID]]

    def search(self, form: FormDef, predicate: Predicate) -> list[Entry]:
        """Entries of the form's store that match, in creation order."""
        with self.lock:
            return [e for e in self.stores[form.store].values() if predicate(e.values)]

    @staticmethod
    def public_id(form: FormDef, entry: Entry) -> str:
        """The id a form answers for an entry (``X|X`` on join views)."""
        entry_id = str(entry.values[ENTRY_ID])
        return f"{entry_id}|{entry_id}" if form.join else entry_id
