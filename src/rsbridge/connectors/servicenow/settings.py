"""The ServiceNow connector's settings: their declaration and what they parse into.

:data:`SETTINGS` declares every setting (validation, docs and the admin form come from
it); :func:`parse_options` turns the list-valued ones (number prefixes, auto-create field
mappings, survey state rules) into :class:`Options`, raising ConfigurationError for a
malformed entry when the connector is built. :func:`session_value` reads the session
values a dynamic mapping can name (:data:`SESSION_VALUE_SOURCES`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import ConnectorSettings, Setting
from rsbridge.errors import ConfigurationError

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
        default=[
            "INC=incident",
            "CHG=change_request",
            "REQ=sc_request",
            "PRB=problem",
            "RITM=sc_req_item",
            "SCTASK=sc_task",
            "CALL=new_call",
            "IMS=interaction",
        ],
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
    Setting(
        "key_mail",
        "str",
        "How the actions e-mail a session key: through the `[smtp]` server (`smtp`) or "
        "through the instance's Email API (`instance`), which logs it with the task.",
        default="smtp",
        choices=("smtp", "instance"),
    ),
)


@dataclass(frozen=True, slots=True)
class Lookup:
    """An auto-create lookup mapping: ``field`` gets the sys_id of the ``table`` record
    whose ``column`` is ``value`` (static) or the session's ``value`` (dynamic)."""

    field: str
    table: str
    column: str
    value: str
    fallback: str | None = None
    """Dynamic lookups: the static value looked up when the session's finds nothing."""


@dataclass(frozen=True, slots=True)
class StateRule:
    """A survey state rule: a ``kind`` survey answering ``question`` with ``answer``
    moves the task to ``state``."""

    kind: str
    question: str
    answer: str
    state: str


@dataclass(frozen=True, slots=True)
class Options:
    """The parsed list-valued settings (see :func:`parse_options`)."""

    journal_field: str
    prefixes: Mapping[str, str]
    dynamic: Mapping[str, str]
    lookups: tuple[Lookup, ...]
    dynamic_lookups: tuple[Lookup, ...]
    state_rules: tuple[StateRule, ...]


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


def _lookups(items: Sequence[str], setting: str, *, dynamic: bool) -> tuple[Lookup, ...]:
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
        found.append(Lookup(field_name, table, column, value, fallback))
    return tuple(found)


def _state_rules(items: Sequence[str]) -> tuple[StateRule, ...]:
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
        rules.append(StateRule(kind, question.strip(), answer.strip(), state))
    return tuple(rules)


def parse_options(config: ConnectorSettings) -> Options:
    """The list-valued settings of ``config`` parsed; ConfigurationError names a bad entry."""
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
    return Options(
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
