"""The tables and fields rsbridge needs in an Agiloft KB, as one model.

The seed (the vendor's "BeyondTrust Extension") adds a BeyondTrust Session Details table
and asks for a few fields on the support table without naming their columns, except
``bomgar_jump_client_search_criteria``. rsbridge names them here, every name overridable
(``tables`` and ``fields`` settings). The model feeds the connector (what it writes),
``rsbridge check`` (what must exist), ``rsbridge agiloft setup`` (the checklist an
administrator follows) and the simulated KB in tests (:func:`table_definitions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rsbridge.errors import ConfigurationError

FieldType = Literal["text", "integer", "datetime", "choice", "link", "file"]


@dataclass(frozen=True)
class Column:
    """One column rsbridge reads or writes: logical name, default column name, type."""

    logical: str
    column: str
    type: FieldType = "text"
    label: str = ""
    link: tuple[str, str] | None = None
    """For links: (logical table, linked column)."""
    required: bool = False
    added: bool = True
    """Added by the administrator for rsbridge (False: a standard column rsbridge reads)."""
    help: str = ""


@dataclass(frozen=True)
class Table:
    """A table: logical name, default table name, label, the columns rsbridge uses."""

    logical: str
    name: str
    label: str
    columns: tuple[Column, ...]
    added: bool = False
    """The whole table is added for rsbridge (the session details table)."""


CASE = Table(
    "case",
    "case",
    "Support Case",
    (
        Column("summary", "summary", label="Summary", added=False, required=True),
        Column("status", "status", "choice", "Status", added=False),
        Column("customer_name", "customer_name", label="Customer Name", added=False),
        Column("customer_email", "customer_email", label="Customer Email", added=False),
        Column("assigned_person", "assigned_person", "link", "Assigned Person",
               link=("people", "full_name"), added=False),
        Column("assigned_team", "assigned_team", "link", "Assigned Team",
               link=("teams", "name"), added=False),
        Column("notes", "additional_notes", label="Additional Notes", added=False,
               help="rsbridge appends its notes (session keys generated, ...)."),
        Column("session_key", "bomgar_session_key", label="BeyondTrust Session Key"),
        Column("session_url", "bomgar_session_url", label="BeyondTrust Session URL"),
        Column("representative", "bomgar_representative",
               label="BeyondTrust Representative or Team",
               help="Assignment mode 5: `rep:<username>`, `team:<team name>`, or a bare "
                    "name (the appliance's team of that name, else the representative)."),
        Column("jump_criteria", "bomgar_jump_client_search_criteria",
               label="Bomgar_jump_client_search_criteria",
               help="The Jump Client search string (the seed's field)."),
        Column("import_key", "bomgar_import_key", label="rsbridge Import Key",
               help="Set on cases rsbridge creates, so a repeated creation finds the case."),
    ),
)  # fmt: skip

PEOPLE = Table(
    "people",
    "contacts.employees",
    "Employees",
    (
        Column("login", "_login", label="Login", added=False),
        Column("full_name", "full_name", label="Full Name", added=False),
        Column("username", "bomgar_username", label="BeyondTrust Username",
               help="The representative's BeyondTrust username when it differs from the "
                    "login (the seed's User Setup Requirements)."),
    ),
)  # fmt: skip

TEAMS = Table("teams", "teams", "Teams", (Column("name", "name", label="Team Name", added=False),))

SESSIONS = Table(
    "sessions",
    "bomgar_session_details",
    "BeyondTrust Session Details",
    (
        Column("session_id", "session_id", label="Session ID", required=True,
               help="The LSID; the once-only key (EWUpsert $match)."),
        Column("support_case", "support_case", "link", "Support Case", link=("case", "id")),
        Column("appliance", "appliance", label="Appliance"),
        Column("external_key", "external_key", label="External Key"),
        Column("start_time", "start_time", "datetime", "Start Time"),
        Column("end_time", "end_time", "datetime", "End Time"),
        Column("duration", "duration", label="Duration", help="HH:MM:SS."),
        Column("technician", "technician", "link", "Technician", link=("people", "_login")),
        Column("primary_representative", "primary_representative",
               label="Primary Representative"),
        Column("customer_name", "customer_name", label="Customer Name"),
        Column("customer_hostname", "customer_hostname", label="Customer Host Name"),
        Column("public_site", "public_site", label="Public Site"),
        Column("chat_transcript", "chat_transcript", label="Chat Transcript"),
        Column("session_report", "session_report", label="Session Report",
               help="The rendered HTML report."),
        Column("customer_survey", "customer_survey", label="Customer Survey"),
        Column("rep_survey", "rep_survey", label="Representative Survey"),
        Column("session_files", "session_files", "file", "Session Files",
               help="The report as a file (attach_report)."),
    ),
    added=True,
)  # fmt: skip

TABLES: tuple[Table, ...] = (CASE, PEOPLE, TEAMS, SESSIONS)


@dataclass(frozen=True)
class Names:
    """The table and column names of one KB: the defaults, renamed by settings."""

    tables: Mapping[str, str]
    columns: Mapping[tuple[str, str], str]

    @classmethod
    def build(cls, tables: Sequence[str] = (), fields: Sequence[str] = ()) -> Names:
        """Names with ``tables`` (``<table>=<name>``) and ``fields``
        (``<table>.<column>=<name>``) renames; ConfigurationError names a bad item."""
        table_names = {t.logical: t.name for t in TABLES}
        column_names = {(t.logical, c.logical): c.column for t in TABLES for c in t.columns}
        for item in tables:
            key, sep, value = item.partition("=")
            if not sep or key.strip() not in table_names or not _name_ok(value):
                raise ConfigurationError(
                    f"agiloft tables: {item!r} is not <table>=<name> with table one of "
                    f"{', '.join(table_names)}"
                )
            table_names[key.strip()] = value.strip()
        for item in fields:
            key, sep, value = item.partition("=")
            table, _, column = key.strip().partition(".")
            if not sep or (table, column) not in column_names or not _name_ok(value):
                raise ConfigurationError(
                    f"agiloft fields: {item!r} is not <table>.<column>=<name> for a column "
                    "rsbridge uses (docs/agiloft.md lists them)"
                )
            column_names[(table, column)] = value.strip()
        return cls(table_names, column_names)

    def table(self, logical: str) -> str:
        """A table's name in the KB."""
        return self.tables[logical]

    def column(self, table: str, logical: str) -> str:
        """A column's name in the KB."""
        return self.columns[(table, logical)]


def _name_ok(value: str) -> bool:
    value = value.strip()
    return bool(value) and all(ch.isalnum() or ch in "._" for ch in value)


def _definition(table: Table, col: Column, names: Names) -> dict[str, Any]:
    field: dict[str, Any] = {
        "name": names.column(table.logical, col.logical),
        "label": col.label,
        "type": col.type,
        "required": col.required,
    }
    if col.link is not None:
        linked_table, linked_column = col.link
        field["link_table"] = names.table(linked_table)
        field["link_field"] = linked_column
    return field


def rsbridge_definitions(names: Names) -> list[dict[str, Any]]:
    """What rsbridge adds to a KB, as table definitions: the session details table whole,
    and the columns added to the support case and employee tables. Loaded with the
    simulated KB's ``merge_tables`` (a table that exists gets the fields it lacks), as an
    administrator adds them; ``rsbridge agiloft setup`` writes the same as JSON."""
    out: list[dict[str, Any]] = []
    for table in TABLES:
        columns = [c for c in table.columns if c.added or table.added]
        if columns:
            out.append(
                {
                    "name": names.table(table.logical),
                    "label": table.label,
                    "fields": [_definition(table, c, names) for c in columns],
                }
            )
    return out
