"""What an AR administrator imports for rsbridge: the session forms as a definition file.

:func:`definition_text` writes, from :data:`~rsbridge.connectors.remedy.forms.SESSION_FORMS`,
an AR System definition file (``.def``) that Developer Studio imports with File > Import >
Object Definitions: one regular form per session form, with AR's core fields, every field
of the model (id, name, type, length, selection values, required), a unique index on the
form's key field and a default view that lists the fields. :func:`panel_text` writes the
field list of the BeyondTrust Sessions panel on the incident form, which the administrator
adds to the ``HPD:Help Desk`` overlay by hand (docs/remedy-forms.md says why).

The format follows real exported files (the ``.def`` files in ARSperl's test suite,
exported by AR System 5 and 7) and the codes of AR's C API header ``ar.h``;
docs/remedy-forms.md lists what was checked against them and what is inferred. The
simulated AR server reads the same file (:mod:`rsbridge.sim.remedy.definition_file`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from rsbridge.connectors.remedy.forms import (
    LONG,
    PANEL_COLUMNS,
    SESSION,
    SESSION_FORMS,
    FormField,
    SessionForm,
)
from rsbridge.errors import ConfigurationError

DEF_FILE = "rsbridge-session-forms.def"
PANEL_FILE = "rsbridge-incident-panel.md"

OWNER = "rsbridge"
EXPORT_VERSION = 10
"""The ``export-version`` of AR System 7 exports (Developer Studio 8.1 and later import
files from 7.0.01 on)."""
VIEW_ID = 536870912
"""A new form's first view id, as in every exported form we have seen."""
VIEW_NAME = "Default Admin View"

# ar.h: AR_DATA_TYPE_* of the field types the model uses.
DATATYPE = {"integer": 2, "char": 4, "selection": 6, "datetime": 7}
# ar.h: AR_FIELD_OPTION_* and AR_FIELD_*_AT_CREATE.
REQUIRED, OPTIONAL, SYSTEM = 1, 2, 3
OPEN_AT_CREATE, PROTECTED_AT_CREATE = 1, 2
# Permission lines: ``group\level``. Group 0 is Public, 3 the entry's Submitter (an
# implicit group); for fields 1 is View and 2 Change, for forms 1 is Visible.
PUBLIC_VIEW = "0\\1"
SUBMITTER_CHANGE = "3\\2"
USER_KEYWORD = "$-1$"
"""A default of ``$USER$`` (keyword 1, AR_KEYWORD_USER), as exports write it."""
INTEGER_RANGE = ("-2147483647", "2147483647")

# Layout of the default view, in AR's fixed-point units (1/100 pixel, ar.h
# AR_FIXED_POINT_PRECISION): one field a row.
_LEFT, _RIGHT, _TOP, _ROW, _HEIGHT, _LONG_HEIGHT = 1000, 60000, 2500, 2500, 2100, 6300


def _line(key: str, value: object) -> str:
    """One ``key : value`` line, the colon in column 18 as exports align it."""
    if len(key) <= 15:
        return f"   {key:<15}: {value}"
    return f"{key + ' ':>18}: {value}"


def _sub_line(key: str, value: object) -> str:
    """A line that belongs to the line above (``arch-time`` under ``archive``), indented."""
    return f"      {key:<12}: {value}"


def _check_text(where: str, text: str) -> str:
    """Names, labels and help go on one line between backslashes: refuse what would not."""
    if "\\" in text or "\n" in text or "\r" in text:
        raise ConfigurationError(f"{where}: {text!r} has a backslash or a line break")
    return text


def _char_prop(text: str) -> str:
    """A character display property value: length, then the text."""
    return f"4\\{len(text.encode('utf-8'))}\\{text}"


def _display_instance(label: str, row: int, tall: bool) -> str:
    """The field's place in the default view: label, bounding box, visible."""
    top = _TOP + row * _ROW
    bottom = top + (_LONG_HEIGHT if tall else _HEIGHT)
    box = f"41\\2\\{_LEFT}\\{top}\\{_RIGHT}\\{bottom}"
    return f"{VIEW_ID}\\3\\20\\{_char_prop(label)}\\3\\{box}\\4\\6\\1\\"


def _core_fields(stamp: int) -> list[list[str]]:
    """AR's core fields of a new regular form, as Developer Studio creates them.

    Short Description (8) is made optional: rsbridge never writes it, and the
    session's own fields say what an entry is.
    """

    def core(
        fid: int, name: str, datatype: int, create_mode: int, option: int, *extra: str
    ) -> list[str]:
        return [
            _line("id", fid),
            _line("name", name),
            _line("datatype", datatype),
            _line("fieldtype", 1),
            _line("create-mode", create_mode),
            _line("option", option),
            _line("timestamp", stamp),
            _line("owner", OWNER),
            _line("last-changed", OWNER),
            *extra,
            _line("permission", PUBLIC_VIEW),
        ]

    def char(length: int) -> tuple[str, ...]:
        return (
            _line("maxlength", length),
            _line("menu-style", 2),
            _line("qbe-match-op", 1),
            _line("fulltext-optns", 0),
        )

    statuses = ("New", "Assigned", "Fixed", "Rejected", "Closed")
    return [
        core(1, "Request ID", 4, PROTECTED_AT_CREATE, SYSTEM, *char(15)),
        core(
            2, "Submitter", 4, OPEN_AT_CREATE, REQUIRED, *char(254), _line("default", USER_KEYWORD)
        ),
        core(3, "Create Date", 7, PROTECTED_AT_CREATE, SYSTEM),
        core(4, "Assigned To", 4, PROTECTED_AT_CREATE, OPTIONAL, *char(254)),
        core(5, "Last Modified By", 4, PROTECTED_AT_CREATE, SYSTEM, *char(254)),
        core(6, "Modified Date", 7, PROTECTED_AT_CREATE, SYSTEM),
        core(
            7,
            "Status",
            6,
            PROTECTED_AT_CREATE,
            REQUIRED,
            *(_line("enum-value", s) for s in statuses),
            _line("default", 0),
        ),
        core(8, "Short Description", 4, OPEN_AT_CREATE, OPTIONAL, *char(254)),
        core(15, "Status History", 4, PROTECTED_AT_CREATE, SYSTEM),
    ]


def _selection_values(form: SessionForm, f: FormField) -> list[str]:
    """``enum-value`` lines: AR numbers a plain selection list 0, 1, 2... in order."""
    codes = list(f.options.values())
    if not codes or codes != list(range(len(codes))):
        raise ConfigurationError(
            f"{form.name}: selection field {f.name!r} must have codes 0, 1, 2... in display "
            f"order (has {dict(f.options)})"
        )
    return [_line("enum-value", _check_text(f"{form.name}.{f.name}", n)) for n in f.options]


def _field_lines(form: SessionForm, f: FormField, row: int, stamp: int) -> list[str]:
    where = f"{form.name}.{f.name}"
    datatype = DATATYPE.get(f.type)
    if datatype is None:
        raise ConfigurationError(f"{where}: type {f.type!r} has no AR data type here")
    lines = [
        _line("id", f.id),
        _line("name", _check_text(where, f.name)),
        _line("datatype", datatype),
        _line("fieldtype", 1),
        _line("create-mode", OPEN_AT_CREATE),
        _line("option", REQUIRED if f.required else OPTIONAL),
        _line("timestamp", stamp),
        _line("owner", OWNER),
        _line("last-changed", OWNER),
    ]
    if f.type == "char":
        if f.length < 0:
            raise ConfigurationError(f"{where}: length {f.length} is negative")
        lines += [
            _line("maxlength", f.length),
            _line("menu-style", 1),
            _line("qbe-match-op", 1),
            _line("fulltext-optns", 0),
        ]
    elif f.type == "integer":
        lines += [_line("range-low", INTEGER_RANGE[0]), _line("range-high", INTEGER_RANGE[1])]
    elif f.type == "selection":
        lines += _selection_values(form, f)
    lines += [_line("permission", PUBLIC_VIEW), _line("permission", SUBMITTER_CHANGE)]
    if f.help:
        lines.append(_line("help-text", _check_text(where, f.help)))
    tall = f.type == "char" and f.length == LONG
    lines.append(_line("display-instance", _display_instance(f.name, row, tall)))
    return lines


def _schema(form: SessionForm, stamp: int) -> list[str]:
    """One ``begin schema ... end`` block."""
    ids = [f.id for f in form.fields]
    if len(set(ids)) != len(ids) or min(ids) < 536870913:
        raise ConfigurationError(
            f"{form.name}: field ids must be unique and 536870913 or more (AR's range for "
            "fields of your own)"
        )
    key = form.field(form.key)  # KeyError names the form when the key is not a field
    core = _core_fields(stamp)
    out = [
        "begin schema",
        _line("name", _check_text(form.name, form.name)),
        _line("core-version", 2),
        _line("upgrade-version", 0),
        _line("num-fields", len(core) + len(form.fields)),
        _line("timestamp", stamp),
        _line("owner", OWNER),
        _line("last-changed", OWNER),
        _line("default-vui", VIEW_NAME),
        _line("num-vuis", 1),
        _line("export-version", EXPORT_VERSION),
        _line("schema-type", 1),
        _line("next-field-id", max(ids) + 1),
        _line("permission", PUBLIC_VIEW),
        _line("index", f"1\\{key.id}\\1"),
        # No archiving, no auditing: written out as exports write a form without them.
        _line("archive", "0\\0\\0"),
        _sub_line("arch-time", "0\\0\\0\\0"),
        _sub_line("arch-from", ""),
        _line("audit", "0\\0\\0\\"),
        "vui  {",
        _line("id", VIEW_ID),
        _line("name", VIEW_NAME),
        _line("label", VIEW_NAME),
        _line("timestamp", stamp),
        _line("vui-locale", ""),
        _line("vui-type", 1),
        _line("owner", OWNER),
        _line("last-changed", OWNER),
        _line("display-prop", f"1\\20\\{_char_prop(VIEW_NAME)}\\"),
        "}",
    ]
    for block in core:
        out += ["field {", *block, "}"]
    for row, f in enumerate(form.fields):
        out += ["field {", *_field_lines(form, f, row, stamp), "}"]
    out.append("end")
    return out


def definition_text(
    forms: Iterable[SessionForm] = SESSION_FORMS, *, timestamp: int | None = None
) -> str:
    """The ``.def`` file that creates ``forms`` (``timestamp``: epoch seconds, default now)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    forms = tuple(forms)
    names = [form.name for form in forms]
    if len(set(names)) != len(names):
        raise ConfigurationError(f"form names repeat: {names}")
    out = [
        "char-set: UTF-8",
        "#",
        f"#  File exported {time.strftime('%a %b %d %H:%M:%S %Y', time.gmtime(stamp))}",
        "#  rsbridge session forms: import with Developer Studio, File > Import >",
        "#  Object Definitions (docs/remedy-forms.md).",
    ]
    out += [f"#    {form.name}: {form.help}" for form in forms]
    out.append("#")
    for form in forms:
        out += _schema(form, stamp)
    return "\n".join(out) + "\n"


def panel_text(
    form: SessionForm = SESSION, columns: Iterable[tuple[str, str]] = PANEL_COLUMNS
) -> str:
    """The BeyondTrust Sessions panel of the incident form, as steps with every property."""
    rows = []
    for order, (name, vendor) in enumerate(columns, start=1):
        f = form.field(name)
        rows.append(f"| {order} | {name} | {f.id} | {f.name} | {f.type} | {vendor} |")
    session_id = form.field("Session ID").id
    ticket = form.field("Ticket Number")
    start = form.field("Start Time")
    lines = [
        "# The BeyondTrust Sessions panel on the incident form",
        "",
        "Written by `rsbridge remedy forms` from rsbridge's session-form model; add it in",
        f"Developer Studio after importing `{DEF_FILE}` (docs/remedy-forms.md, step 2).",
        "",
        "1. Open `HPD:Help Desk` in Best Practice Customization mode and create its view",
        "   overlay if it has none (Forms > Create View Overlay).",
        "2. Add a panel to the view's panel holder: label `BeyondTrust Sessions`,",
        "   name `RSB_Pnl_Sessions`. Permissions: the group that may see sessions",
        '   (the vendor used a group named "BeyondTrust Users").',
        f"3. Put a table field on the panel: name `RSB_Tbl_Sessions`, source form `{form.name}`",
        "   (server `@`, the current one), qualification",
        "",
        "   ```",
        f"   '{ticket.name}' = $Incident Number$",
        "   ```",
        "",
        f"   (`{ticket.name}` is field {ticket.id} of `{form.name}`; `$Incident Number$` is the",
        "   incident's field 1000000161). Refresh: on entry change. Sort: "
        f"`{start.name}` ({start.id}), descending.",
        "4. Add one column for each row below, in this order:",
        "",
        f"| Order | Column label | `{form.name}` field id | Data field | Type "
        "| Vendor column it replaces |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"5. Optional: drill-down on the table (a double-click opens the `{form.name}` entry,",
        "   whose `Details` field holds the session report; the vendor showed it in",
        "   `COL_Char_Support_Session_Details`).",
        "6. Save the form and flush the Mid-Tier cache.",
        "",
        "Already have the vendor's panel (800000001) on the overlay? Keep it and repoint it:",
        f"set table field 800000002's source form to `{form.name}`, its qualification as in",
        "step 3, and each column's data field to the id above (the column named in the last",
        f"column of the table). Session rows are keyed by `{form.key}`; `Session ID`",
        f"({session_id}) is the appliance's LSID.",
        "",
    ]
    return "\n".join(lines)


def definition_files(
    forms: Iterable[SessionForm] = SESSION_FORMS, *, timestamp: int | None = None
) -> dict[str, str]:
    """The files ``rsbridge remedy forms`` writes: name to text."""
    forms = tuple(forms)
    session = next((f for f in forms if f.logical == "session"), SESSION)
    return {
        DEF_FILE: definition_text(forms, timestamp=timestamp),
        PANEL_FILE: panel_text(session),
    }


def write_files(out: Path, files: Mapping[str, str], *, force: bool = False) -> list[Path]:
    """Write ``files`` into ``out`` (created if needed); existing files only with ``force``."""
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"{out} exists and is not a directory")
    targets = [out / name for name in sorted(files)]
    present = [str(path) for path in targets if path.exists()]
    if present and not force:
        raise ConfigurationError(f"{', '.join(present)} already exist; use --force to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    for path in targets:
        path.write_text(files[path.name], encoding="utf-8")
    return targets
