"""Form definitions: the per-form field lists of the simulated AR System server.

AR identifies a field by its numeric id; names are per form. Interface forms reuse the
ids of the base form they read and write (``First_Name`` on ``HPD:IncidentInterface_Create``
and ``First Name`` on ``HPD:Help Desk`` are both field 1000000019), so here a form names
the ``store`` whose entries it shows and every value is kept by field id. A form that is
its own store is a regular form; other forms are views (interface or join forms).

Forms are defined in code (:func:`form`) or, later, loaded from the definition file the
Remedy connector ships (:func:`load_forms` takes parsed dictionaries of the same shape).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

FieldType = Literal["char", "integer", "datetime", "selection", "attachment"]
FIELD_TYPES: tuple[str, ...] = ("char", "integer", "datetime", "selection", "attachment")

# Core fields every AR form has (AR System "core fields": ids 1-8).
ENTRY_ID = 1
SUBMITTER = 2
CREATE_DATE = 3
ASSIGNED_TO = 4
LAST_MODIFIED_BY = 5
MODIFIED_DATE = 6
STATUS = 7
SHORT_DESCRIPTION = 8


@dataclass(frozen=True)
class FieldDef:
    """One field: AR id, name on this form, type, required, and selection ``options``.

    ``options`` maps each display string to its stored enumeration code; the REST API
    answers display strings and accepts either (itsm-apis.md 3.3).
    """

    id: int
    name: str
    type: FieldType = "char"
    required: bool = False
    options: Mapping[str, int] = field(default_factory=dict)
    # Set by the server (core fields, generated numbers): never required of a client.
    system: bool = False
    # Stored on create when the client leaves the field out (stored form, e.g. a code).
    default: Any = None

    def display(self, code: int) -> str | None:
        """The display string of a selection code."""
        for name, value in self.options.items():
            if value == code:
                return name
        return None


@dataclass
class FormDef:
    """A form: name, fields, the store it reads and writes, and generated numbers.

    ``number_field``/``number_prefix`` give each new entry a number such as
    ``INC000000000430`` (prefix plus 12 digits); on a store form with a prefix the entry id
    is that number too. ``join`` views answer ids as ``"<id>|<id>"``, as
    ``HPD:IncidentInterface``'s ``Request ID`` does (itsm-apis.md 3.3).
    """

    name: str
    fields: list[FieldDef]
    store: str = ""
    number_field: int | None = None
    number_prefix: str = ""
    join: bool = False
    unique: tuple[int, ...] = ()
    """Field ids of a unique index: a save that repeats their values fails with ARERR 382."""
    by_name: dict[str, FieldDef] = field(init=False, repr=False)
    by_id: dict[int, FieldDef] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.store = self.store or self.name
        self.by_name = {f.name: f for f in self.fields}
        self.by_id = {f.id: f for f in self.fields}

    def lookup(self, name: str) -> FieldDef | None:
        """A field by name, or by its id written as digits (AR accepts both in ``q``)."""
        found = self.by_name.get(name)
        if found is None and name.isdigit():
            found = self.by_id.get(int(name))
        return found


def core_fields(
    entry_id_name: str = "Request ID",
    status: Mapping[str, int] | None = None,
    create_date_name: str = "Create Date",
) -> list[FieldDef]:
    """The core fields of a form; ``status`` gives the Status selection (default New..Closed).

    Field 3 is "Submit Date" on the ITSM forms (recorded ``list_worklogs.json``) and
    "Create Date" on ``HPD:IncidentInterface_Create`` (BMC's create example).
    """
    status = status or {"New": 0, "Assigned": 1, "Closed": 2}
    return [
        FieldDef(ENTRY_ID, entry_id_name, system=True),
        FieldDef(SUBMITTER, "Submitter", system=True),
        FieldDef(CREATE_DATE, create_date_name, "datetime", system=True),
        FieldDef(ASSIGNED_TO, "Assigned To"),
        FieldDef(LAST_MODIFIED_BY, "Last Modified By", system=True),
        FieldDef(MODIFIED_DATE, "Last Modified Date", "datetime", system=True),
        FieldDef(STATUS, "Status", "selection", options=status, default=min(status.values())),
        FieldDef(SHORT_DESCRIPTION, "Short Description"),
    ]


class FormDefinitionError(ValueError):
    """A form definition that cannot be loaded (message says which form and field)."""


def load_forms(definitions: Iterable[Mapping[str, Any]]) -> list[FormDef]:
    """Forms from parsed definitions (the hook for the connector's definition file).

    Each definition: ``{"name": ..., "fields": [{"id", "name", "type", "required",
    "options": {display: code}, "system", "default"}], "store", "number_field",
    "number_prefix", "join", "unique": [field names of a unique index]}`` (``system``,
    ``default`` and ``unique`` optional; other keys ignored);
    the core fields are added unless the definition gives field 1 itself.
    """
    forms: list[FormDef] = []
    for definition in definitions:
        name = str(definition.get("name") or "")
        if not name:
            raise FormDefinitionError("a form definition has no name")
        fields: list[FieldDef] = []
        for raw in definition.get("fields", []):
            kind = str(raw.get("type", "char"))
            if kind not in FIELD_TYPES:
                raise FormDefinitionError(f"{name}: field {raw.get('name')!r}: type {kind!r}")
            try:
                fields.append(
                    FieldDef(
                        int(raw["id"]),
                        str(raw["name"]),
                        kind,  # type: ignore[arg-type]  # checked against FIELD_TYPES
                        bool(raw.get("required", False)),
                        {str(k): int(v) for k, v in dict(raw.get("options") or {}).items()},
                        bool(raw.get("system", False)),
                        raw.get("default"),
                    )
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise FormDefinitionError(f"{name}: bad field {raw!r}: {exc}") from None
        if ENTRY_ID not in {f.id for f in fields}:
            taken = {f.id for f in fields} | {f.name for f in fields}
            fields = [
                f for f in core_fields() if f.id not in taken and f.name not in taken
            ] + fields
        number = definition.get("number_field")
        by_name = {f.name: f.id for f in fields}
        unique = []
        for name_ in definition.get("unique") or ():
            if str(name_) not in by_name:
                raise FormDefinitionError(f"{name}: unique index on unknown field {name_!r}")
            unique.append(by_name[str(name_)])
        forms.append(
            FormDef(
                name,
                fields,
                store=str(definition.get("store") or ""),
                number_field=int(number) if number is not None else None,
                number_prefix=str(definition.get("number_prefix") or ""),
                join=bool(definition.get("join", False)),
                unique=tuple(unique),
            )
        )
    return forms
