"""Table definitions of the simulated Agiloft knowledge base, and the records they hold.

Agiloft names a table by its *logical* name (``case``, ``contacts.employees``) and a field by
its column name (``summary``, ``_login``); both are case-sensitive (itsm-apis.md 4.3). Every
table and field here comes from a definition, so a KB customised with other names is one
:func:`load_tables` call away: the Agiloft connector generates the BeyondTrust Session Details
table's definition and loads it the same way.

Field types (``FieldType``):

- ``text``: short text, long text, HTML; any string.
- ``integer``: digits, optional sign.
- ``datetime``: written as ``2025-01-15 10:00:00``, ``2025-01-15`` or ``Jan 15 2025 10:00:00``;
  read back in the last form (the documented EWRead example: ``Dec 27 2017 04:40:24``), UTC.
- ``choice``: one of ``choices``, written and read as its display text; line ids (1, 2, ...)
  for ``EWSelect`` and ``EWGetChoiceLineId``.
- ``multichoice``: several of ``choices``, the key repeated on write.
- ``link``: a linked field: the value of ``link_field`` in a record of ``link_table``, written
  as ``:value`` (query by example); ``multi`` links hold several.
- ``file``: attached files (multipart, ``EWAttach``); read back as the file names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FieldType = Literal["text", "integer", "datetime", "choice", "multichoice", "link", "file"]
FIELD_TYPES: tuple[str, ...] = (
    "text",
    "integer",
    "datetime",
    "choice",
    "multichoice",
    "link",
    "file",
)
# Columns every table has, set by the server (writes to them are ignored).
SYSTEM_COLUMNS = ("id", "date_created", "date_updated")


@dataclass(frozen=True)
class FieldDef:
    """One field: column name, label, type, whether a record must have a value, choices,
    the linked table and field of a ``link``, and a default stored on create."""

    name: str
    type: FieldType = "text"
    label: str = ""
    required: bool = False
    choices: tuple[str, ...] = ()
    link_table: str = ""
    link_field: str = ""
    multi: bool = False
    default: str | None = None
    system: bool = False

    @property
    def many(self) -> bool:
        """Whether the field holds several values (multi-choice, multi-link, files)."""
        return self.type in ("multichoice", "file") or (self.type == "link" and self.multi)

    def line_id(self, text: str) -> int | None:
        """The choice line id (1-based) of a display text."""
        try:
            return self.choices.index(text) + 1
        except ValueError:
            return None


@dataclass
class TableDef:
    """A table: logical name, label and fields (the system columns come first)."""

    name: str
    fields: list[FieldDef]
    label: str = ""
    by_name: dict[str, FieldDef] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        own = [f for f in self.fields if f.name not in SYSTEM_COLUMNS]
        self.fields = [*system_fields(), *own]
        self.label = self.label or self.name
        self.by_name = {f.name: f for f in self.fields}

    def lookup(self, name: str) -> FieldDef | None:
        """A field by column name, or by its label (EWSearch accepts quoted labels)."""
        found = self.by_name.get(name)
        if found is None:
            found = next((f for f in self.fields if f.label and f.label == name), None)
        return found


def system_fields() -> list[FieldDef]:
    """``id``, ``date_created``, ``date_updated``: on every table, set by the server."""
    return [
        FieldDef("id", "integer", "ID", system=True),
        FieldDef("date_created", "datetime", "Date Created", system=True),
        FieldDef("date_updated", "datetime", "Date Updated", system=True),
    ]


@dataclass
class Attachment:
    """One attached file: name, content type, bytes."""

    name: str
    content_type: str
    data: bytes


@dataclass
class Record:
    """A stored record: values by column (a string, or a list for multi-valued fields),
    the linked records' ids by link column, and files by file column."""

    id: int
    values: dict[str, Any] = field(default_factory=dict)
    links: dict[str, list[int]] = field(default_factory=dict)
    files: dict[str, list[Attachment]] = field(default_factory=dict)

    def texts(self, column: str) -> list[str]:
        """The values of a column as a list of strings (empty when the field is empty)."""
        if column == "id":
            return [str(self.id)]
        if column in self.files:
            return [f.name for f in self.files[column]]
        value = self.values.get(column)
        if value is None or value == "":
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]


class TableDefinitionError(ValueError):
    """A table definition that cannot be loaded (the message names the table and field)."""


def load_tables(definitions: Iterable[Mapping[str, Any]]) -> list[TableDef]:
    """Tables from parsed definitions (the hook for definitions the connector generates).

    Each definition: ``{"name": "case", "label": "Support Case", "fields": [{"name",
    "type", "label", "required", "choices": [...], "link_table", "link_field", "multi",
    "default"}]}``; ``type`` defaults to ``text``; the system columns are added.
    """
    tables: list[TableDef] = []
    for definition in definitions:
        name = str(definition.get("name") or "")
        if not name:
            raise TableDefinitionError("a table definition has no name")
        fields = [_field(name, raw) for raw in definition.get("fields", [])]
        seen: set[str] = set()
        for fdef in fields:
            if fdef.name in seen:
                raise TableDefinitionError(f"{name}: field {fdef.name!r} is defined twice")
            seen.add(fdef.name)
        tables.append(TableDef(name, fields, str(definition.get("label") or "")))
    return tables


def _field(table: str, raw: Mapping[str, Any]) -> FieldDef:
    if not isinstance(raw, Mapping) or not raw.get("name"):
        raise TableDefinitionError(f"{table}: a field has no name: {raw!r}")
    name = str(raw["name"])
    kind = str(raw.get("type", "text"))
    if kind not in FIELD_TYPES:
        raise TableDefinitionError(f"{table}.{name}: type {kind!r} is not one of {FIELD_TYPES}")
    choices = tuple(str(c) for c in raw.get("choices") or ())
    if kind in ("choice", "multichoice") and not choices:
        raise TableDefinitionError(f"{table}.{name}: a {kind} field needs choices")
    link_table = str(raw.get("link_table") or "")
    link_field = str(raw.get("link_field") or "")
    if kind == "link" and not (link_table and link_field):
        raise TableDefinitionError(f"{table}.{name}: a link field needs link_table and link_field")
    default = raw.get("default")
    if default is not None and kind in ("choice", "multichoice") and str(default) not in choices:
        raise TableDefinitionError(f"{table}.{name}: default {default!r} is not a choice")
    return FieldDef(
        name,
        kind,  # type: ignore[arg-type]  # checked against FIELD_TYPES
        str(raw.get("label") or ""),
        bool(raw.get("required", False)),
        choices,
        link_table,
        link_field,
        bool(raw.get("multi", False)),
        None if default is None else str(default),
    )
