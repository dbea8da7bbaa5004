"""What an Agiloft administrator creates for rsbridge, written out from the table model.

Agiloft has no import format for table and field definitions that a KB accepts from
outside (tables and fields are made in Setup > Tables), so the artefact is a checklist
(``agiloft-setup.md``: each table, field, type and the action buttons, with the names this
configuration uses) and the same model as JSON (``agiloft-tables.json``), which the
simulated KB merges in tests, the demo and ``rsbridge sim agiloft --tables``.
"""

from __future__ import annotations

import json
from pathlib import Path

from rsbridge.connectors.agiloft.tables import SESSIONS, TABLES, Names, rsbridge_definitions
from rsbridge.errors import ConfigurationError

DEFAULT_ACTIONS_URL = "https://rsbridge.example.com"
SETUP_FILE = "agiloft-setup.md"
TABLES_FILE = "agiloft-tables.json"


def setup_files(names: Names, *, actions_url: str, integration: str) -> dict[str, str]:
    """The files by name: the checklist and the table definitions."""
    lines = [
        "# Agiloft set-up for rsbridge",
        "",
        f"Integration `{integration}`; rsbridge at {actions_url}. Names are case-sensitive.",
        "",
    ]
    for table in TABLES:
        name = names.table(table.logical)
        added = [c for c in table.columns if c.added or table.added]
        if not added:
            continue
        verb = "Create the table" if table.added else "Add to the table"
        lines += [f"## {verb} `{name}` ({table.label})", ""]
        lines += ["| field (column) | label | type | notes |", "| --- | --- | --- | --- |"]
        for col in added:
            kind: str = col.type
            if col.link is not None:
                kind = f"link to {names.table(col.link[0])}.{col.link[1]}"
            notes = col.help + (" Required." if col.required else "")
            column = names.column(table.logical, col.logical)
            lines.append(f"| `{column}` | {col.label} | {kind} | {notes.strip()} |")
        lines.append("")
    case = names.table("case")
    lines += [
        f"## Action buttons on `{case}`",
        "",
        "- **Generate BeyondTrust Session Key and URL**: a button whose action posts to "
        f'`{actions_url}/actions/session-key` with `{{"integration": "{integration}", '
        '"ticket": "$id", "user": "$global.my_login", "assignment": "<mode>"}` and the '
        "bearer token of an `[[actions.clients]]` entry; rsbridge writes the key and URL "
        "into the case's key and URL fields. Modes: `technician`, `assigned_user`, "
        "`assigned_team`, `general`, `queue` (the representative-or-team field).",
        "- **Launch BeyondTrust Session for Jump Client**: posts to "
        f'`{actions_url}/actions/jump` with `{{"integration": "{integration}", '
        '"ticket": "$id", "output": "url"}` (desktop representative console) or '
        '`"console": "web"` (web representative console) and opens the answered URL.',
        f"- **View Details**: the related table of `{names.table(SESSIONS.logical)}` on the "
        "case layout (records whose Support Case is this case), with a View Details link.",
        "",
    ]
    definitions = rsbridge_definitions(names)
    return {
        SETUP_FILE: "\n".join(lines),
        TABLES_FILE: json.dumps(definitions, indent=2) + "\n",
    }


def write_setup(out: Path, files: dict[str, str], *, force: bool = False) -> list[Path]:
    """Write ``files`` under ``out``; an existing file is kept unless ``force``."""
    out.mkdir(parents=True, exist_ok=True)
    targets = [out / name for name in files]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ConfigurationError(
            f"{', '.join(str(p) for p in existing)} exists; use --force to replace"
        )
    for path in targets:
        path.write_text(files[path.name], encoding="utf-8")
    return targets
