"""The ServiceNow connector: sessions into structured records and journal entries.

What a session import writes (one read that tells whether the session is there already,
one Batch API call for a usual session, one call that marks it complete):

* a row of the session table related to the task (the ticket), the configuration item,
  the call and the interaction it belongs to, with the primary representative's
  sys_user when ``auto_associate_user`` is on;
* rows of the child tables: representatives, customers, teams, events (filtered by the
  integration's ``import_events``), custom attributes, recordings;
* journal entries on the task (``work_notes`` or ``comments``): the chat transcript,
  the session notes and a session-end notice, each switchable;
* optionally the rendered report as an attachment.

Idempotency: every row has a sys_id derived from the session (see ``records``). The
session row is inserted first with ``import_state = importing`` and set to ``complete``
by a call of its own once everything else succeeded (the Batch API serves every
sub-request even after one failed); a complete row means "nothing to do", an
incomplete one makes the next attempt insert only the rows that are missing and skip
the journal entries that are present. Journal entries end with a line naming the
session and part (notes: a reference to their key), looked for in the task's journal
stream read with display values, since ``sys_journal_field`` is often hidden by ACLs.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import httpx

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import (
    Association,
    CheckResult,
    ConfigurationItem,
    Connector,
    ConnectorSettings,
    CustomLink,
    NoteDelivery,
    SessionDelivery,
    Setting,
    SurveyDelivery,
    Ticket,
    TicketContext,
    WriteResult,
)
from rsbridge.connectors.servicenow.client import (
    BatchRequest,
    BatchResult,
    Credentials,
    Record,
    ServiceNowClient,
)
from rsbridge.connectors.servicenow.records import (
    Row,
    child_rows,
    journal_safe,
    session_values,
    stable_id,
    survey_rows,
    to_record,
)
from rsbridge.connectors.servicenow.schema import Schema
from rsbridge.deadline import DeadlineClient
from rsbridge.errors import (
    ConfigurationError,
    ConnectorAuthError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)
from rsbridge.tls import tls_verification

log = logging.getLogger(__name__)
_SYS_ID = re.compile(r"[0-9a-f]{32}")
# Association sources that name one kind of record (the vendor's related lists).
_SOURCE_TABLES = {"custom:snow_call_id": "new_call", "custom:snow_interaction_id": "interaction"}
_NUMBER = re.compile(r"([A-Za-z]+)(\d+)")

RECORD_TYPES = ("new_call", "incident", "change_request", "sc_request", "problem", "interaction")
"""The record types auto-create can make (seed: "Auto Create Record Type")."""

CALLER_FIELDS = {
    "incident": "caller_id",
    "new_call": "caller",
    "sc_request": "requested_for",
    "interaction": "opened_for",
    "change_request": "requested_by",
}
"""The field of each record type that names the customer (others: ``opened_by``)."""

DEFAULT_CLOSED_STATES = (
    "incident=6",
    "incident=7",
    "incident=8",
    "problem=106",
    "problem=107",
    "change_request=3",
    "change_request=4",
    "sc_request=3",
    "sc_request=4",
    "sc_request=7",
    "sc_req_item=3",
    "sc_req_item=4",
    "sc_req_item=7",
    "sc_task=3",
    "sc_task=4",
    "sc_task=7",
    "new_call=3",
    "new_call=4",
    "new_call=7",
    "task=3",
    "task=4",
    "task=7",
    "interaction=closed_complete",
    "interaction=closed_abandoned",
)
"""Resolved, closed and cancelled states of each record type: each table has its own values
(a catalog task's 3 is Closed Complete, an incident's 3 is On Hold; interactions use words)."""

SESSION_VALUE_SOURCES = (
    "lsid",
    "external_key",
    "public_site",
    "customer_name",
    "customer_username",
    "customer_email",
    "customer_company",
    "customer_details",
    "issue",
    "rep_username",
    "rep_name",
    "start_time",
)
"""Session values a dynamic field mapping can use, besides ``custom:<code_name>``."""


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "instance_url",
        "url",
        "Base URL of the instance, e.g. https://acme.service-now.com.",
        required=True,
    ),
    Setting(
        "auth",
        "str",
        "How to log in.",
        default="basic",
        choices=("basic", "oauth_password", "oauth_client_credentials"),
    ),
    Setting("username", "str", "Integration user (basic and oauth_password)."),
    Setting("password", "str", "Its password.", secret=True),
    Setting("client_id", "str", "OAuth client id (Application Registry)."),
    Setting("client_secret", "str", "OAuth client secret.", secret=True),
    # An http:// proxy is the usual kind: calls to the instance tunnel through it with TLS.
    Setting(
        "proxy",
        "url",
        "HTTP(S) proxy for calls to the instance (the MID-server role).",
        plain_http_ok=True,
    ),
    Setting("verify_tls", "bool", "Verify the instance's TLS certificate.", default=True),
    Setting(
        "ca_file",
        "path",
        "A PEM file of the CA certificates to trust instead of the public ones (private CA).",
    ),
    Setting(
        "timeout_seconds",
        "float",
        "Longest time one call may take, from the request to the last byte of the answer.",
        default=30.0,
    ),
    Setting("batch_size", "int", "Sub-requests per Batch API call.", default=100),
    Setting(
        "tables",
        "list",
        "Table renames, `<table>=<name>` (tables: session, rep, customer, "
        "team, event, attribute, recording, survey).",
        default=[],
    ),
    Setting("fields", "list", "Column renames, `<table>.<column>=<name>`.", default=[]),
    Setting("write_session_records", "bool", "Write the session and its child rows.", default=True),
    Setting(
        "journal_field",
        "str",
        "Journal field of the task that gets the entries.",
        default="work_notes",
        choices=("work_notes", "comments"),
    ),
    Setting("log_chat_transcript", "bool", "Journal entry with the chat transcript.", default=True),
    Setting("log_session_notes", "bool", "Journal entry with the session notes.", default=True),
    Setting("log_session_end", "bool", "Journal entry noting the session's end.", default=True),
    Setting("log_surveys", "bool", "Journal entry with each exit survey.", default=False),
    Setting("attach_report", "bool", "Attach the rendered report to the task.", default=False),
    Setting(
        "attachment_format",
        "str",
        "Format of the attached report.",
        default="html",
        choices=("html", "txt"),
    ),
    Setting(
        "number_prefixes",
        "list",
        "Record-number prefixes an external key may use, `<prefix>=<table>`.",
        default=["INC=incident", "CHG=change_request", "REQ=sc_request", "PRB=problem"],
    ),
    Setting(
        "auto_associate_user",
        "bool",
        "Relate the primary rep to the sys_user whose "
        "`user_match_field` is the rep's appliance username.",
        default=True,
    ),
    Setting(
        "user_match_field",
        "str",
        "sys_user field holding the appliance username.",
        default="user_name",
    ),
    Setting(
        "closed_states",
        "list",
        "Task states in which no session key is generated: `<table>=<state>` for one record "
        "type, or a bare state for every type. An inactive task (`active` false) and a task "
        "whose state cannot be read count as closed too.",
        default=list(DEFAULT_CLOSED_STATES),
    ),
    Setting(
        "create_table",
        "str",
        "Record type auto-create makes.",
        default="incident",
        choices=RECORD_TYPES,
    ),
    Setting("create_dynamic_fields", "list", "Auto-create: `<field>=<session value>`.", default=[]),
    Setting(
        "create_lookup_fields",
        "list",
        "Auto-create: `<field>=<table>.<column>=<static value>` (a reference found by lookup).",
        default=[],
    ),
    Setting(
        "create_dynamic_lookup_fields",
        "list",
        "Auto-create: `<field>=<table>.<column>=<session value>`; a fallback value after a "
        "pipe character is looked up when the session's value finds nothing (else the field "
        "stays empty).",
        default=[],
    ),
    Setting(
        "survey_state_rules",
        "list",
        "Move the task to a state when a survey answer matches: "
        "`<kind>:<question>=<answer> -> <state>` (kind: customer or rep).",
        default=[],
    ),
)


@dataclass(frozen=True, slots=True)
class _Lookup:
    field: str
    table: str
    column: str
    value: str
    fallback: str | None = None
    """Dynamic lookups: the static value looked up when the session's finds nothing."""


@dataclass(frozen=True, slots=True)
class _StateRule:
    kind: str
    question: str
    answer: str
    state: str


@dataclass(frozen=True, slots=True)
class _Options:
    journal_field: str
    prefixes: Mapping[str, str]
    dynamic: Mapping[str, str]
    lookups: tuple[_Lookup, ...]
    dynamic_lookups: tuple[_Lookup, ...]
    state_rules: tuple[_StateRule, ...]


def _pairs(items: Sequence[str], setting: str, shape: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        left, sep, right = (p.strip() for p in item.partition("="))
        if not sep or not left or not right:
            raise ConfigurationError(f"servicenow {setting}: {item!r} is not {shape}")
        pairs.append((left, right))
    return pairs


def _source_ok(source: str) -> bool:
    return source in SESSION_VALUE_SOURCES or (
        source.startswith("custom:") and len(source) > len("custom:")
    )


def _lookups(items: Sequence[str], setting: str, *, dynamic: bool) -> tuple[_Lookup, ...]:
    found = []
    for field_name, rest in _pairs(items, setting, "<field>=<table>.<column>=<value>"):
        target, sep, value = (p.strip() for p in rest.partition("="))
        table, dot, column = target.partition(".")
        if not sep or not dot or not table or not column or not value:
            raise ConfigurationError(
                f"servicenow {setting}: {field_name}={rest!r} is not "
                "<field>=<table>.<column>=<value>"
            )
        fallback = None
        if dynamic:
            value, bar, rest = (p.strip() for p in value.partition("|"))
            if bar and not rest:
                raise ConfigurationError(
                    f"servicenow {setting}: {field_name}={rest!r} has an empty fallback "
                    "(<field>=<table>.<column>=<session value>|<fallback value>)"
                )
            fallback = rest or None
            if not _source_ok(value):
                raise ConfigurationError(
                    f"servicenow {setting}: {value!r} is not a session value "
                    f"({', '.join(SESSION_VALUE_SOURCES)} or custom:<code_name>)"
                )
        found.append(_Lookup(field_name, table, column, value, fallback))
    return tuple(found)


def _state_rules(items: Sequence[str]) -> tuple[_StateRule, ...]:
    rules = []
    shape = re.compile(r"(customer|rep):(.+?)=(.*?)\s*->\s*(\S+)")
    for item in items:
        match = shape.fullmatch(item.strip())
        if match is None:
            raise ConfigurationError(
                f"servicenow survey_state_rules: {item!r} is not "
                "<customer|rep>:<question>=<answer> -> <state>"
            )
        kind, question, answer, state = match.groups()
        rules.append(_StateRule(kind, question.strip(), answer.strip(), state))
    return tuple(rules)


def _options(config: ConnectorSettings) -> _Options:
    c: Any = config
    prefixes = {
        p.upper(): t for p, t in _pairs(c.number_prefixes, "number_prefixes", "<prefix>=<table>")
    }
    dynamic = dict(
        _pairs(c.create_dynamic_fields, "create_dynamic_fields", "<field>=<session value>")
    )
    for source in dynamic.values():
        if not _source_ok(source):
            raise ConfigurationError(
                f"servicenow create_dynamic_fields: {source!r} is not a session value "
                f"({', '.join(SESSION_VALUE_SOURCES)} or custom:<code_name>)"
            )
    return _Options(
        journal_field=c.journal_field,
        prefixes=prefixes,
        dynamic=dynamic,
        lookups=_lookups(c.create_lookup_fields, "create_lookup_fields", dynamic=False),
        dynamic_lookups=_lookups(
            c.create_dynamic_lookup_fields, "create_dynamic_lookup_fields", dynamic=True
        ),
        state_rules=_state_rules(c.survey_state_rules),
    )


def session_value(session: SupportSession, source: str) -> str:
    """The value of a dynamic-mapping ``source`` for ``session`` (``""`` when unset)."""
    if source.startswith("custom:"):
        return session.custom(source.removeprefix("custom:")) or ""
    primary = next((c for c in session.customers if c.primary), None) or next(
        iter(session.customers), None
    )
    info = primary.info if primary else {}
    rep = next((r for r in session.representatives if r.primary), None) or next(
        iter(session.representatives), None
    )
    values: dict[str, str | None] = {
        "lsid": session.lsid,
        "external_key": session.external_key,
        "public_site": session.public_site.name if session.public_site else None,
        "customer_name": info.get("name")
        or (session.primary_customer.name if session.primary_customer else None),
        "customer_username": session.custom("customer_username")
        or (primary.username if primary else None),
        "customer_email": session.custom("customer_email") or info.get("email"),
        "customer_company": info.get("company"),
        "customer_details": info.get("details"),
        "issue": info.get("issue"),
        "rep_username": rep.username if rep else None,
        "rep_name": (rep.display_name or rep.public_display_name) if rep else None,
        "start_time": session.start_time.strftime("%Y-%m-%d %H:%M:%S")
        if session.start_time
        else None,
    }
    return values.get(source) or ""


class ServiceNowConnector(Connector):
    """Writes sessions into a ServiceNow instance; serves the actions' ticket lookups."""

    name = "servicenow"
    title = "ServiceNow"
    settings: ClassVar[Sequence[Setting]] = SETTINGS
    default_ticket_from: ClassVar[tuple[str, ...]] = (
        "custom:snow_task_id",
        "custom:snow_call_id",
        "custom:snow_interaction_id",
        "external_key",
        "rep_survey:task_number",
    )

    def __init__(self, config: ConnectorSettings, *, http: httpx.AsyncClient | None = None):
        c: Any = config
        own = http is None
        if not c.timeout_seconds > 0:
            raise ConfigurationError("servicenow: timeout_seconds must be more than 0")
        if http is None:
            verify = tls_verification(
                verify=bool(c.verify_tls), ca_file=c.ca_file, where="servicenow settings"
            )
            # The whole call is bounded, not only each read: an instance (or a proxy) that
            # trickles its answer would otherwise hold the job for as long as it likes.
            http = DeadlineClient(
                deadline=c.timeout_seconds,
                proxy=c.proxy or None,
                verify=verify,
                timeout=c.timeout_seconds,
            )
        super().__init__(config, http=http)
        self._own_http = own
        self.schema = Schema.build(c.tables, c.fields)
        self.options = _options(config)
        mode: Literal["basic", "oauth_password", "oauth_client_credentials"] = c.auth
        needs = {
            "basic": ("username", "password"),
            "oauth_password": ("username", "password", "client_id", "client_secret"),
            "oauth_client_credentials": ("client_id", "client_secret"),
        }[mode]
        missing = [n for n in needs if getattr(c, n) in (None, "")]
        if missing:
            raise ConfigurationError(
                f"servicenow: auth = {mode!r} needs the settings {', '.join(missing)}"
            )
        self.base_url = str(c.instance_url).rstrip("/")
        self.client = ServiceNowClient(
            self.base_url,
            Credentials(mode, c.username, c.password, c.client_id, c.client_secret),
            self.http,
            timeout=c.timeout_seconds,
        )
        self._c = c
        # One import of a session at a time in this process: concurrent ones would each
        # find the session missing and write its journal entries again. (Across processes
        # the engine's job leases keep one worker per session.)
        self._session_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )

    # --- tickets ----------------------------------------------------------------

    def _ticket(self, record: Record, table: str) -> Ticket:
        kind = str(record.get("sys_class_name") or table)
        sys_id = str(record["sys_id"])
        return Ticket(
            id=sys_id,
            number=str(record.get("number") or "") or None,
            url=f"{self.base_url}/nav_to.do?uri={kind}.do?sys_id={sys_id}",
            kind=kind,
        )

    async def find_ticket(self, reference: str, *, source: str = "external_key") -> Ticket:
        """A task (incident, change, request, problem, call, interaction...) by sys_id
        or by record number with a configured prefix.

        ``custom:snow_call_id`` must name a call and ``custom:snow_interaction_id`` an
        interaction (the vendor's related lists): a reference to another kind of record
        from those attributes is refused, as a customer could have typed it.
        """
        ref = reference.strip()
        fields = ("sys_id", "number", "sys_class_name")
        wanted = _SOURCE_TABLES.get(source, "task")
        if _SYS_ID.fullmatch(ref):
            record = await self.client.get(wanted, ref, fields=fields)
            if record is None:
                raise TicketNotFoundError(f"ServiceNow has no {wanted} with sys_id {ref}")
            return self._ticket(record, wanted)
        match = _NUMBER.fullmatch(ref)
        table = self.options.prefixes.get(match.group(1).upper()) if match else None
        if table is None:
            known = ", ".join(self.options.prefixes)
            raise TicketNotFoundError(
                f"{ref!r} is neither a sys_id nor a record number with a known prefix "
                f"({known}; add more with the number_prefixes setting)"
            )
        if wanted != "task" and table != wanted:
            raise TicketNotFoundError(f"{source} must name a {wanted}, not a {table} ({ref!r})")
        found = await self.client.query(table, f"number={ref.upper()}", fields=fields, limit=1)
        if not found:
            raise TicketNotFoundError(f"ServiceNow has no {table} numbered {ref.upper()}")
        return self._ticket(found[0], table)

    async def _ticket_table(self, ticket: Ticket) -> str:
        if ticket.kind:
            return ticket.kind
        record = await self.client.get("task", ticket.id, fields=("sys_class_name",))
        return str(record.get("sys_class_name") or "task") if record else "task"

    async def create_ticket(
        self, session: SupportSession, fields: Mapping[str, str], *, key: str
    ) -> Ticket:
        """Create the configured record type with the field mappings; once per ``key``
        (the record's sys_id is derived from it)."""
        table = str(self._c.create_table)
        sys_id = stable_id(key, "ticket")
        existing = await self.client.get(
            table, sys_id, fields=("sys_id", "number", "sys_class_name")
        )
        if existing is not None:
            return self._ticket(existing, table)
        values: dict[str, str] = {
            "short_description": _default_description(session),
            "correlation_id": f"rs-{session.lsid}",
        }
        values.update(fields)
        for field_name, source in self.options.dynamic.items():
            value = session_value(session, source)
            if value:
                # The field may be a journal field (work_notes, comments).
                values[field_name] = journal_safe(value)
        for lookup in self.options.lookups:
            values[lookup.field] = await self._lookup(lookup, lookup.value)
        for lookup in self.options.dynamic_lookups:
            found = await self._dynamic_lookup(lookup, session)
            if found is not None:
                values[lookup.field] = found
        record = await self.client.insert(table, {"sys_id": sys_id, **values})
        return self._ticket(record, table)

    async def _find(self, lookup: _Lookup, value: str) -> str | None:
        found = await self.client.query(
            lookup.table, f"{lookup.column}={_q(value)}", fields=("sys_id",), limit=1
        )
        return str(found[0]["sys_id"]) if found else None

    async def _lookup(self, lookup: _Lookup, value: str, *, what: str = "") -> str:
        """A configured value's record: not finding it is the configuration's mistake."""
        found = await self._find(lookup, value)
        if found is None:
            raise ConnectorPermanentError(
                f"ServiceNow auto-create: no {lookup.table} record has {lookup.column} = "
                f"{value!r} ({what}mapping for {lookup.field})"
            )
        return found

    async def _dynamic_lookup(self, lookup: _Lookup, session: SupportSession) -> str | None:
        """The record a session value names; else the fallback's; else None (field empty).

        The session value comes from the customer (an address typed on a portal): one
        that names nothing must not stop the ticket, nor the import that needs it.
        Failures of the instance itself stay retryable (the client raises them).
        """
        value = session_value(session, lookup.value)
        found = await self._find(lookup, value) if value else None
        if found is not None:
            return found
        if value:
            log.warning(
                "session %s: auto-create: the session's %s matches no %s.%s (mapping for %s); %s",
                session.lsid,
                lookup.value,
                lookup.table,
                lookup.column,
                lookup.field,
                "using the fallback" if lookup.fallback is not None else "field left empty",
            )
        if lookup.fallback is None:
            return None
        return await self._lookup(lookup, lookup.fallback, what="fallback of the ")

    def live_session_attributes(self, ticket: Ticket) -> dict[str, str]:
        """``snow_task_id`` (``snow_call_id``, ``snow_interaction_id``) = the sys_id."""
        code = {"new_call": "snow_call_id", "interaction": "snow_interaction_id"}.get(
            ticket.kind or "", "snow_task_id"
        )
        return {code: ticket.id}

    # --- session import -----------------------------------------------------------

    def session_sys_id(self, appliance_id: str, integration: str, lsid: str) -> str:
        """The sys_id of a session's row (stable: the same session, the same row)."""
        return stable_id(appliance_id, integration, lsid, "session")

    def _lock(self, session_id: str) -> asyncio.Lock:
        lock = self._session_locks.get(session_id)
        if lock is None:
            lock = asyncio.Lock()
            self._session_locks[session_id] = lock
        return lock

    async def write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery
    ) -> WriteResult:
        """Upsert the session records and journal entries (see the module docstring)."""
        session_id = self.session_sys_id(
            delivery.appliance_id, delivery.integration, delivery.session.lsid
        )
        async with self._lock(session_id):
            return await self._write_session_report(ticket, delivery, session_id)

    async def _write_session_report(
        self, ticket: Ticket | None, delivery: SessionDelivery, session_id: str
    ) -> WriteResult:
        session = delivery.session
        table = self.schema.table("session")
        detail = {"session_table": table}
        state_col = self.schema.col("session", "import_state")
        existing = None
        if self._c.write_session_records:
            existing = await self.client.get(table, session_id, fields=("sys_id", state_col))
            if existing is not None and existing.get(state_col) == "complete":
                return WriteResult(session_id, {**detail, "already": "complete"})
        recovering = existing is not None
        ticket_table = await self._ticket_table(ticket) if ticket is not None else None

        requests: list[BatchRequest] = []
        if self._c.write_session_records:
            rep_users = await self._rep_users(session)
            rows = list(child_rows(session, delivery.key, session_id, rep_users))
            if recovering:
                rows = await self._missing(rows)
            else:
                values = {
                    **session_values(session, delivery.appliance_id),
                    **await self._references(delivery.association, ticket, ticket_table),
                    "import_state": "importing",
                }
                rep = next((r for r in session.representatives if r.primary), None)
                user = rep_users.get(rep.username or "") if rep else None
                if user:
                    values["primary_rep_user"] = user
                requests.append(self._insert(Row("session", session_id, values)))
            requests += [self._insert(row) for row in rows]
        if ticket is not None and ticket_table is not None:
            journal = self._journal_field(delivery.association)
            notes = self._journal_entries(delivery)
            # Without a session row to say how far an import got, the journal itself says
            # which entries are there (after a crash, or a lost answer).
            if notes and (recovering or not self._c.write_session_records):
                stream, _ = await self._journal_and_state(ticket_table, ticket.id, journal)
                notes = [n for n in notes if _footer(n) not in stream]
            requests += [self._journal(ticket_table, ticket.id, text, journal) for text in notes]
        await self._run_batches(requests, what=f"import session {session.lsid}")
        if self._c.attach_report:
            target = (ticket_table, ticket.id) if ticket and ticket_table else (table, session_id)
            await self._attach_report(target, delivery)
        if self._c.write_session_records:
            # Only once everything above succeeded: the Batch API serves every sub-request
            # even after one failed, so "complete" cannot ride in the same batch.
            await self.client.update(table, session_id, {state_col: "complete"})
        return WriteResult(session_id, detail)

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

    async def _record_id(self, table: str, value: str, by: str) -> str | None:
        """The sys_id of the ``table`` record whose sys_id or ``by`` is ``value``."""
        column = "sys_id" if _SYS_ID.fullmatch(value) else by
        found = await self.client.query(table, f"{column}={_q(value)}", fields=("sys_id",), limit=1)
        return str(found[0]["sys_id"]) if found else None

    async def _rep_users(self, session: SupportSession) -> dict[str, str]:
        """Rep usernames to sys_user sys_ids (auto-associate user), in one query."""
        names = sorted({r.username for r in session.representatives if r.username})
        if not self._c.auto_associate_user or not names:
            return {}
        field_name = str(self._c.user_match_field)
        found = await self.client.query(
            "sys_user", f"{field_name}IN{','.join(names)}", fields=("sys_id", field_name)
        )
        return {str(r[field_name]): str(r["sys_id"]) for r in found if r.get(field_name)}

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

    def _journal_entries(self, delivery: SessionDelivery) -> list[str]:
        session = delivery.session
        parts = delivery.report.parts
        footer = f"\n\n(Remote Support session {session.lsid}: {{}})"
        entries = []
        if self._c.log_chat_transcript and "chat" in parts and parts["chat"].text.strip():
            entries.append(parts["chat"].text.strip() + footer.format("chat transcript"))
        if self._c.log_session_notes and "notes" in parts and parts["notes"].text.strip():
            entries.append(parts["notes"].text.strip() + footer.format("session notes"))
        if self._c.log_session_end:
            entries.append(_end_notice(session) + footer.format("session end"))
        # Before any comparison with the journal stream: what is there is the safe text.
        return [journal_safe(entry) for entry in entries]

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

    async def _attach_report(self, target: tuple[str, str], delivery: SessionDelivery) -> None:
        table, sys_id = target
        fmt = str(self._c.attachment_format)
        name = f"remote-support-session-{delivery.session.lsid}.{fmt}"
        existing = await self.client.query_attachments(table, sys_id, name)
        if existing:
            return
        report = delivery.report.full
        body = report.html if fmt == "html" else report.text
        content_type = "text/html" if fmt == "html" else "text/plain"
        await self.client.attach(
            table, sys_id, name, f"{content_type}; charset=utf-8", body.encode()
        )

    # --- surveys and notes --------------------------------------------------------

    async def write_survey(self, ticket: Ticket | None, delivery: SurveyDelivery) -> WriteResult:
        """Survey answer rows on the session (a minimal session row when the session
        itself was not imported), a journal entry and the state rules."""
        session_id = self.session_sys_id(
            delivery.appliance_id, delivery.integration, delivery.session.lsid
        )
        async with self._lock(session_id):
            return await self._write_survey(ticket, delivery, session_id)

    async def _write_survey(
        self, ticket: Ticket | None, delivery: SurveyDelivery, session_id: str
    ) -> WriteResult:
        session = delivery.session
        index = _survey_index(delivery.key)
        rows = survey_rows(delivery.key, session_id, delivery.kind, index, delivery.survey)
        requests: list[BatchRequest] = []
        ticket_table = await self._ticket_table(ticket) if ticket is not None else None
        if self._c.write_session_records:
            missing = await self._missing(rows) if rows else []
            if missing:
                table = self.schema.table("session")
                if await self.client.get(table, session_id, fields=("sys_id",)) is None:
                    refs = await self._references(delivery.association, ticket, ticket_table)
                    values = {
                        **session_values(session, delivery.appliance_id),
                        **refs,
                        "import_state": "survey_only",
                    }
                    requests.append(self._insert(Row("session", session_id, values)))
                requests += [self._insert(row) for row in missing]
        if ticket is not None and ticket_table is not None:
            # Each effect is checked on its own: a batch cut short may have written the
            # answers but not the note or the state (or the other way round).
            text = ""
            if self._c.log_surveys and delivery.rendered.text.strip():
                text = journal_safe(
                    delivery.rendered.text.strip()
                    + f"\n\n(Remote Support session {session.lsid}: {delivery.kind} survey {index})"
                )
            # A state change only through a reference a customer cannot have chosen.
            state = self._survey_state(delivery) if delivery.association.trusted else None
            if text or state is not None:
                journal = self._journal_field(delivery.association)
                stream, current = await self._journal_and_state(ticket_table, ticket.id, journal)
                if text and _footer(text) not in stream:
                    requests.append(self._journal(ticket_table, ticket.id, text, journal))
                if state is not None and current != state:
                    requests.append(
                        BatchRequest(
                            "state",
                            "PATCH",
                            f"/api/now/table/{ticket_table}/{ticket.id}",
                            {"state": state},
                        )
                    )
        if requests:
            await self._run_batches(
                requests, what=f"import {delivery.kind} survey of {session.lsid}"
            )
        detail = {"answers": str(len(rows))}
        if not requests:
            detail["already"] = "complete"
        return WriteResult(session_id, detail)

    def _survey_state(self, delivery: SurveyDelivery) -> str | None:
        for rule in self.options.state_rules:
            answer = delivery.survey.answer(rule.question)
            if (
                rule.kind == delivery.kind
                and answer is not None
                and (answer.strip().casefold() == rule.answer.casefold())
            ):
                return rule.state
        return None

    async def write_note(self, ticket: Ticket, note: NoteDelivery) -> WriteResult:
        """A journal entry, once per ``note.key`` (its last line carries a reference)."""
        marker = f"rsbridge ref {stable_id(note.key)[:16]}"
        table = await self._ticket_table(ticket)
        stream, _ = await self._journal_and_state(table, ticket.id)
        if marker in stream:
            return WriteResult(marker, {"already": "written"})
        await self.client.update(
            table,
            ticket.id,
            {self.options.journal_field: f"{journal_safe(note.text)}\n\n({marker})"},
        )
        return WriteResult(marker)

    # --- check and actions ----------------------------------------------------------

    async def check(self) -> CheckResult:
        """Log in, read a task and the session table (tables imported, roles granted)."""
        await self.client.query("task", "", fields=("sys_id",), limit=1)
        if self._c.write_session_records:
            try:
                await self.client.query(
                    self.schema.table("session"), "", fields=("sys_id",), limit=1
                )
            except ConnectorPermanentError as exc:
                raise ConnectorPermanentError(
                    f"{exc.message}. Import the table definition (`rsbridge servicenow "
                    "tables`) and grant the integration user access"
                ) from None
        who = self._c.username or self._c.client_id or "?"
        return CheckResult(f"instance {self.client.host}, user {who}")

    async def ticket_context(self, reference: str) -> TicketContext:
        """The task with its state, assignee, group, caller and CI (for actions)."""
        ticket = await self.find_ticket(reference)
        table = ticket.kind or "task"
        record = await self.client.get(table, ticket.id) or {}
        state = str(record.get("state") or "") or None
        closed_states = {str(s) for s in self._c.closed_states}
        # Fail closed: a state the integration user cannot read (a field ACL, a record
        # hidden in its own table) must not let a key be made for a closed task.
        closed = (
            state is None
            or state in closed_states
            or f"{table}={state}" in closed_states
            or str(record.get("active") or "") == "false"
        )
        assigned_rep = None
        if record.get("assigned_to"):
            user = await self.client.get("sys_user", str(record["assigned_to"]))
            if user:
                assigned_rep = str(user.get(self._c.user_match_field) or "") or None
        assigned_team = None
        if record.get("assignment_group"):
            group = await self.client.get(
                "sys_user_group", str(record["assignment_group"]), fields=("name",)
            )
            assigned_team = str(group.get("name") or "") or None if group else None
        caller_name = caller_email = None
        caller_id = record.get(CALLER_FIELDS.get(table, "opened_by")) or record.get("opened_by")
        if caller_id:
            caller = await self.client.get("sys_user", str(caller_id), fields=("name", "email"))
            if caller:
                caller_name = str(caller.get("name") or "") or None
                caller_email = str(caller.get("email") or "") or None
        ci = None
        if record.get("cmdb_ci"):
            ci = await self._configuration_item(str(record["cmdb_ci"]))
        attributes = {
            **self.live_session_attributes(ticket),
            "external_key": ticket.number or ticket.id,
        }
        if ci is not None:
            attributes["snow_cmdb_ci_id"] = ci.id
        return TicketContext(
            ticket=ticket,
            state=state,
            closed=closed,
            assigned_rep=assigned_rep,
            assigned_team=assigned_team,
            caller_name=caller_name,
            caller_email=caller_email,
            configuration_item=ci,
            session_attributes=attributes,
        )

    async def rep_username(self, user: str) -> str | None:
        """The appliance username (``user_match_field``) of a ServiceNow user given by
        user_name or sys_id."""
        field_name = str(self._c.user_match_field)
        query = f"sys_id={user}" if _SYS_ID.fullmatch(user) else f"user_name={_q(user)}"
        found = await self.client.query("sys_user", query, fields=(field_name,), limit=1)
        if not found:
            return None
        return str(found[0].get(field_name) or "") or None

    async def _configuration_item(self, sys_id: str) -> ConfigurationItem | None:
        record = await self.client.get(
            "cmdb_ci", sys_id, fields=("sys_id", "name", "fqdn", "ip_address")
        )
        if record is None:
            return None
        host = str(record.get("fqdn") or record.get("ip_address") or "") or None
        return ConfigurationItem(str(record["sys_id"]), str(record.get("name") or ""), host)

    async def find_configuration_item(self, reference: str) -> ConfigurationItem:
        """A CI by sys_id or name."""
        ref = reference.strip()
        sys_id = await self._record_id("cmdb_ci", ref, "name") if ref else None
        ci = await self._configuration_item(sys_id) if sys_id else None
        if ci is None:
            raise TicketNotFoundError(f"ServiceNow has no configuration item {ref!r}")
        return ci

    def custom_links(self, actions_url: str | None) -> list[CustomLink]:
        """The rep-console links of the enterprise guide, for this instance."""
        base = self.base_url
        return [
            CustomLink(
                "ServiceNow task",
                f"{base}/nav_to.do?uri=task.do?sys_id=%SESSION.CUSTOM.SNOW_TASK_ID%",
            ),
            CustomLink(
                "ServiceNow task (Agent Workspace)",
                f"{base}/now/workspace/agent/record/task/%SESSION.CUSTOM.SNOW_TASK_ID%",
            ),
            CustomLink(
                "ServiceNow interaction",
                f"{base}/nav_to.do?uri=interaction.do?sys_id=%SESSION.CUSTOM.SNOW_INTERACTION_ID%",
            ),
            CustomLink(
                "ServiceNow interaction (Agent Workspace)",
                f"{base}/now/workspace/agent/record/interaction/"
                "%SESSION.CUSTOM.SNOW_INTERACTION_ID%",
            ),
        ]


def _q(value: str) -> str:
    """A value safe inside an encoded query: ``^`` would start a new condition."""
    return value.replace("^", "")


def _footer(note: str) -> str:
    """The last line of a journal entry we wrote: it names the session and the part."""
    return note.rsplit("\n", 1)[-1]


def _survey_index(key: str) -> int:
    tail = key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _default_description(session: SupportSession) -> str:
    who = session_value(session, "customer_name") or "a customer"
    issue = session_value(session, "issue")
    return f"Remote support session with {who}" + (f": {issue}" if issue else "")


def _end_notice(session: SupportSession) -> str:
    rep = session.primary_rep.name if session.primary_rep else "(no representative)"
    customer = session.primary_customer.name if session.primary_customer else "(no customer)"
    start = session.start_time.strftime("%Y-%m-%d %H:%M:%S UTC") if session.start_time else "?"
    end = session.end_time.strftime("%Y-%m-%d %H:%M:%S UTC") if session.end_time else "?"
    return (
        f"Remote Support session ended.\nRepresentative: {rep}\nCustomer: {customer}\n"
        f"Started: {start}\nEnded: {end}"
    )


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
