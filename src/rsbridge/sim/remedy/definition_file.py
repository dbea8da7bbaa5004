"""Read an AR System definition file (``.def``): the forms an administrator imports.

The simulated server loads rsbridge's session forms from the very file users import
(``rsbridge remedy forms`` writes it), not from the Python model behind it, so tests
exercise what is installed. :func:`parse_definition` turns the ``begin schema ... end``
blocks of a file into the dictionaries :func:`~rsbridge.sim.remedy.forms.load_forms`
takes, plus what the simulator does not use but a test may check (lengths, indexes,
the views a field is in). Other objects (active links, filters, menus...) are skipped.

The format, as AR System exports it (ARSperl's test files are real exports):
``key : value`` lines; ``vui {`` / ``field {`` blocks closed by ``}``; multi-valued keys
repeat (``enum-value``, ``permission``, ``index``, ``display-instance``); a value ending
in ``&`` continues on the next line of the same key; ``#`` lines are comments.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rsbridge.sim.remedy.forms import FormDef, FormDefinitionError, load_forms
from rsbridge.sim.remedy.state import SimRemedyState

# ar.h AR_DATA_TYPE_* to the simulator's field types; other data types (trim, control,
# table, column, page...) hold no data and are left out.
DATATYPES = {2: "integer", 4: "char", 6: "selection", 7: "datetime", 11: "attachment"}
# ar.h AR_FIELD_OPTION_*.
OPTION_REQUIRED, OPTION_SYSTEM, OPTION_DISPLAY = 1, 3, 4
REGULAR_FORM = 1
"""``schema-type`` of a regular form (AR_SCHEMA_REGULAR)."""

Block = list[tuple[str, str]]
_OPENER = re.compile(r"[a-z][a-z-]*\s*\{")


def _pairs(text: str) -> Iterator[tuple[int, str, str]]:
    """``(line number, key, value)`` for each logical line; ``&`` continuations joined."""
    pending: tuple[int, str, str] | None = None
    # Lines end at "\n" only (CRLF too): text values such as a change diary carry bare
    # "\r" and control characters, which str.splitlines would take for line ends.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r")
        stripped = line.strip()
        if pending is None and (not stripped or stripped.startswith("#")):
            continue
        if pending is not None:
            key, _, value = line.partition(":")
            if key.strip() != pending[1]:
                raise FormDefinitionError(f"line {number}: continuation of {pending[1]!r} expected")
            pending = (pending[0], pending[1], pending[2] + value.removeprefix(" "))
        elif (
            stripped in ("}", "end") or stripped.startswith("begin ") or _OPENER.fullmatch(stripped)
        ):
            yield number, stripped, ""
            continue
        else:
            key, sep, value = line.partition(":")
            if not sep:
                raise FormDefinitionError(f"line {number}: {stripped[:60]!r} is not 'key : value'")
            pending = (number, key.strip(), value.removeprefix(" "))
        if pending[2].endswith("&"):
            pending = (pending[0], pending[1], pending[2][:-1])
            continue
        yield pending
        pending = None
    if pending is not None:
        raise FormDefinitionError(f"line {pending[0]}: {pending[1]!r} continues past the end")


def _objects(text: str) -> Iterator[tuple[str, Block, list[tuple[str, Block]]]]:
    """``(object type, its own lines, its sub-blocks)`` for each ``begin ... end``."""
    kind: str | None = None
    own: Block = []
    subs: list[tuple[str, Block]] = []
    sub: tuple[str, Block] | None = None
    for number, key, value in _pairs(text):
        if key.startswith("begin "):
            if kind is not None:
                raise FormDefinitionError(f"line {number}: {key!r} inside another object")
            kind, own, subs = key.removeprefix("begin ").strip(), [], []
        elif kind is None:
            if key != "char-set":
                raise FormDefinitionError(f"line {number}: {key!r} outside 'begin ... end'")
        elif key == "end":
            if sub is not None:
                raise FormDefinitionError(f"line {number}: 'end' inside a '{sub[0]}' block")
            yield kind, own, subs
            kind = None
        elif key.endswith("{"):
            sub = (key.removesuffix("{").strip(), [])
        elif key == "}":
            if sub is None:
                raise FormDefinitionError(f"line {number}: '}}' without a block")
            subs.append(sub)
            sub = None
        else:
            (sub[1] if sub is not None else own).append((key, value))
    if kind is not None:
        raise FormDefinitionError(f"'begin {kind}' has no 'end'")


def _one(block: Block, key: str, where: str) -> str:
    for name, value in block:
        if name == key:
            return value
    raise FormDefinitionError(f"{where}: no {key!r}")


def _all(block: Block, key: str) -> list[str]:
    return [value for name, value in block if name == key]


def _int(value: str, where: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise FormDefinitionError(f"{where}: {value!r} is not a number") from None


def _field(block: Block, form: str) -> dict[str, Any] | None:
    """A data field as :func:`load_forms` takes it, or ``None`` for layout fields."""
    fid = _int(_one(block, "id", form), form)
    name = _one(block, "name", f"{form} field {fid}")
    where = f"{form}.{name}"
    kind = DATATYPES.get(_int(_one(block, "datatype", where), where))
    option = _int(_one(block, "option", where), where)
    if kind is None or option == OPTION_DISPLAY:
        return None
    values = _all(block, "enum-value")
    defaults = _all(block, "default")
    default: Any = None
    if defaults and not defaults[0].startswith("$"):  # "$-1$" etc.: keywords ($USER$)
        default = _int(defaults[0], where) if kind in ("selection", "integer") else defaults[0]
    lengths = _all(block, "maxlength")
    return {
        "id": fid,
        "name": name,
        "type": kind,
        "required": option == OPTION_REQUIRED,
        "system": option == OPTION_SYSTEM,
        "options": {value: code for code, value in enumerate(values)},
        "default": default,
        "length": _int(lengths[0], where) if kind == "char" and lengths else None,
        "help": next(iter(_all(block, "help-text")), ""),
        "views": [
            _int(shown.split("\\", 1)[0], where) for shown in _all(block, "display-instance")
        ],
    }


def _index(value: str, where: str) -> dict[str, Any]:
    """``count\\id id ...\\unique`` (ar.h ARIndexStruct)."""
    parts = value.split("\\")
    if len(parts) != 3:
        raise FormDefinitionError(f"{where}: index {value!r} is not 'count\\ids\\unique'")
    ids = [_int(p, where) for p in parts[1].split()]
    if len(ids) != _int(parts[0], where):
        raise FormDefinitionError(f"{where}: index {value!r} names {len(ids)} fields")
    return {"fields": ids, "unique": parts[2] == "1"}


def parse_definition(text: str) -> list[dict[str, Any]]:
    """The regular forms of a definition file, in file order (other forms are skipped)."""
    forms: list[dict[str, Any]] = []
    for kind, own, subs in _objects(text):
        if kind != "schema":
            continue
        name = _one(own, "name", "a schema")
        if _int(_one(own, "schema-type", name), name) != REGULAR_FORM:
            continue  # join, view and display-only forms store nothing of their own
        views = {
            _int(_one(block, "id", name), name): _one(block, "name", name)
            for sub, block in subs
            if sub == "vui"
        }
        fields = [f for sub, block in subs if sub == "field" and (f := _field(block, name))]
        indexes = [_index(v, name) for v in _all(own, "index")]
        known = {f["id"] for f in fields}
        for index in indexes:
            if not set(index["fields"]) <= known:
                raise FormDefinitionError(f"{name}: index on unknown fields {index['fields']}")
        unique: list[int] = next((i["fields"] for i in indexes if i["unique"]), [])
        by_id = {f["id"]: f["name"] for f in fields}
        forms.append(
            {
                "name": name,
                "fields": fields,
                "indexes": indexes,
                # load_forms keeps one unique index a form: the first, by field names.
                "unique": [by_id[i] for i in unique],
                "views": views,
                "default_view": next(iter(_all(own, "default-vui")), ""),
            }
        )
    return forms


def read_definition(path: Path) -> list[dict[str, Any]]:
    """:func:`parse_definition` of a file (UTF-8, as the file's ``char-set`` line says)."""
    # Decoded as is: read_text's newline translation would turn a bare "\r" into a line end.
    return parse_definition(path.read_bytes().decode("utf-8"))


def load_definition(state: SimRemedyState, path: Path) -> list[FormDef]:
    """Define the forms of a definition file on a simulated server; answers them."""
    forms = load_forms(read_definition(path))
    state.define_forms(forms)
    return forms
