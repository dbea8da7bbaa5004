"""The ServiceNow tables that hold imported sessions, and their importable definition.

A session becomes one row of the *session* table and rows of seven child tables that
reference it (representatives, customers, teams, events, custom attributes, recordings,
survey answers), the related lists an administrator adds to task, CI, call and
interaction forms. Table and column names have defaults (``u_rs_*``: the ``u_`` prefix is
what ServiceNow gives tables created in the global scope) and can be renamed per
integration with the ``tables`` and ``fields`` settings.

:func:`unload_xml` writes the definition as the ``<unload>`` document that System
Definition > Tables accepts through "Import XML" (``sys_db_object`` and
``sys_dictionary`` records), so an administrator creates every table and column in one
step; ``rsbridge servicenow tables`` prints it for the configured names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from rsbridge.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Column:
    """A column: its logical name (used in code), default name, type and label."""

    logical: str
    name: str
    type: str = "string"
    """The sys_dictionary ``internal_type``: string, integer, boolean, glide_date_time,
    reference, url."""
    label: str = ""
    max_length: int = 255
    reference: str | None = None
    """For references: the logical name of a table of ours, or a ServiceNow table."""


@dataclass(frozen=True, slots=True)
class Table:
    """A table: its logical name, default name, label and columns."""

    logical: str
    name: str
    label: str
    columns: tuple[Column, ...]


def _c(
    logical: str,
    type_: str = "string",
    label: str = "",
    *,
    max_length: int = 255,
    reference: str | None = None,
) -> Column:
    return Column(logical, f"u_{logical}", type_, label, max_length, reference)


_SESSION_REF = _c("session", "reference", "Session", reference="session")

DEFAULT_TABLES: tuple[Table, ...] = (
    Table(
        "session",
        "u_rs_session",
        "Remote Support Session",
        (
            _c("lsid", label="Session ID", max_length=64),
            _c("appliance", label="Appliance", max_length=100),
            _c("import_state", label="Import State", max_length=40),
            _c("session_type", label="Session Type", max_length=40),
            _c("task", "reference", "Task", reference="task"),
            _c("configuration_item", "reference", "Configuration Item", reference="cmdb_ci"),
            _c("call", "reference", "Call", reference="new_call"),
            _c("interaction", "reference", "Interaction", reference="interaction"),
            _c("start_time", "glide_date_time", "Start Time"),
            _c("end_time", "glide_date_time", "End Time"),
            _c("duration", "integer", "Duration (seconds)"),
            _c("external_key", label="External Key", max_length=1024),
            _c("public_site", label="Public Site"),
            _c("jumpoint", label="Jumpoint"),
            _c("jump_group", label="Jump Group"),
            _c("primary_rep", label="Primary Rep"),
            _c("primary_rep_user", "reference", "Primary Rep User", reference="sys_user"),
            _c("primary_customer", label="Primary Customer"),
            _c("file_transfers", "integer", "File Transfers"),
            _c("chat_url", "url", "Chat Transcript URL", max_length=1024),
            _c("recording_url", "url", "Recording URL", max_length=1024),
        ),
    ),
    Table(
        "rep",
        "u_rs_session_rep",
        "Remote Support Session Rep",
        (
            _SESSION_REF,
            _c("username", label="Username"),
            _c("display_name", label="Display Name"),
            _c("private_display_name", label="Private Display Name"),
            _c("rep_id", label="Rep ID", max_length=40),
            _c("user", "reference", "User", reference="sys_user"),
            _c("public_ip", label="Public IP", max_length=64),
            _c("private_ip", label="Private IP", max_length=64),
            _c("hostname", label="Hostname"),
            _c("os", label="Operating System"),
            _c("primary", "boolean", "Primary"),
            _c("owner", "boolean", "Session Owner"),
            _c("invited", "boolean", "Invited"),
            _c("seconds_involved", "integer", "Seconds Involved"),
        ),
    ),
    Table(
        "customer",
        "u_rs_session_customer",
        "Remote Support Session Customer",
        (
            _SESSION_REF,
            _c("name", label="Name"),
            _c("username", label="Username"),
            _c("company", label="Company"),
            _c("details", label="Details", max_length=4000),
            _c("public_ip", label="Public IP", max_length=64),
            _c("private_ip", label="Private IP", max_length=64),
            _c("hostname", label="Hostname"),
            _c("os", label="Operating System"),
            _c("primary", "boolean", "Primary"),
        ),
    ),
    Table(
        "team",
        "u_rs_session_team",
        "Remote Support Session Team",
        (_SESSION_REF, _c("name", label="Name"), _c("team_id", label="Team ID", max_length=40)),
    ),
    Table(
        "event",
        "u_rs_session_event",
        "Remote Support Session Event",
        (
            _SESSION_REF,
            _c("sequence", "integer", "Sequence"),
            _c("time", "glide_date_time", "Time"),
            _c("event_type", label="Event Type", max_length=100),
            _c("performed_by", label="Performed By"),
            _c("destination", label="Destination"),
            _c("body", label="Body", max_length=4000),
            _c("filename", label="File Name", max_length=1024),
            _c("filesize", "integer", "File Size"),
            _c("data", label="Data", max_length=4000),
        ),
    ),
    Table(
        "attribute",
        "u_rs_session_attribute",
        "Remote Support Session Custom Attribute",
        (
            _SESSION_REF,
            _c("code_name", label="Code Name", max_length=100),
            _c("display_name", label="Display Name"),
            _c("value", label="Value", max_length=1024),
        ),
    ),
    Table(
        "recording",
        "u_rs_session_recording",
        "Remote Support Session Recording",
        (
            _SESSION_REF,
            _c("kind", label="Kind", max_length=40),
            _c("instance", "integer", "Instance"),
            _c("view_url", "url", "View URL", max_length=1024),
            _c("download_url", "url", "Download URL", max_length=1024),
        ),
    ),
    Table(
        "survey",
        "u_rs_session_survey",
        "Remote Support Session Survey Answer",
        (
            _SESSION_REF,
            _c("kind", label="Survey", max_length=40),
            _c("survey", "integer", "Survey Number"),
            _c("question", label="Question"),
            _c("answer", label="Answer", max_length=4000),
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Schema:
    """The table and column names one integration uses: defaults with its overrides."""

    tables: Mapping[str, str] = field(default_factory=dict)
    """Logical table name to ServiceNow table name."""
    columns: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(logical table, logical column) to ServiceNow column name."""

    @classmethod
    def build(cls, tables: Iterable[str] = (), fields: Iterable[str] = ()) -> Schema:
        """The schema with ``tables`` (``logical=name``) and ``fields``
        (``table.column=name``) overrides applied; bad overrides raise ConfigurationError."""
        names = {t.logical: t.name for t in DEFAULT_TABLES}
        columns = {(t.logical, c.logical): c.name for t in DEFAULT_TABLES for c in t.columns}
        for item in tables:
            logical, sep, name = (part.strip() for part in item.partition("="))
            if not sep or logical not in names or not _valid_name(name):
                raise ConfigurationError(
                    f"tables: {item!r} is not <table>=<name> with <table> one of "
                    f"{', '.join(names)} and a ServiceNow table name"
                )
            names[logical] = name
        for item in fields:
            target, sep, name = (part.strip() for part in item.partition("="))
            table, dot, column = target.partition(".")
            if not sep or not dot or (table, column) not in columns or not _valid_name(name):
                raise ConfigurationError(
                    f"fields: {item!r} is not <table>.<column>=<name> naming a known column "
                    "(see docs/servicenow.md for the list)"
                )
            columns[(table, column)] = name
        return cls(names, columns)

    def table(self, logical: str) -> str:
        """The ServiceNow name of table ``logical``."""
        return self.tables[logical]

    def col(self, table: str, column: str) -> str:
        """The ServiceNow name of column ``column`` of table ``table``."""
        return self.columns[(table, column)]

    def row(self, table: str, values: Mapping[str, str]) -> dict[str, str]:
        """A record of ``table`` with logical column names turned into ServiceNow ones."""
        return {self.col(table, k): v for k, v in values.items()}


def _valid_name(name: str) -> bool:
    return bool(name) and name.replace("_", "").isalnum() and name.isascii() and name[0].isalpha()


def unload_xml(schema: Schema, *, now: datetime | None = None) -> str:
    """The ``<unload>`` XML defining every table and column of ``schema``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S")
    root = etree.Element("unload", unload_date=stamp)
    for table in DEFAULT_TABLES:
        name = schema.table(table.logical)
        obj = etree.SubElement(root, "sys_db_object", action="INSERT_OR_UPDATE")
        _text(obj, "name", name)
        _text(obj, "label", table.label)
        _text(obj, "super_class", "")
        _text(obj, "is_extendable", "false")
        collection = etree.SubElement(root, "sys_dictionary", action="INSERT_OR_UPDATE")
        _text(collection, "name", name)
        _text(collection, "element", "")
        _text(collection, "internal_type", "collection")
        _text(collection, "column_label", table.label)
        for column in table.columns:
            entry = etree.SubElement(root, "sys_dictionary", action="INSERT_OR_UPDATE")
            _text(entry, "name", name)
            _text(entry, "element", schema.col(table.logical, column.logical))
            _text(entry, "internal_type", column.type)
            _text(entry, "column_label", column.label)
            _text(entry, "max_length", str(column.max_length))
            if column.reference is not None:
                target = schema.tables.get(column.reference, column.reference)
                _text(entry, "reference", target)
    body: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return body.decode()


def _text(parent: etree._Element, tag: str, text: str) -> None:
    etree.SubElement(parent, tag).text = text
