"""Every command and option of the CLI is documented in docs/cli.md (a connector's own
commands may be documented in its docs/NAME.md instead)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main

from rsbridge.cli import app
from rsbridge.cli.plugins import LazyCommand
from rsbridge.connectors.registry import available

DOCS = Path(__file__).resolve().parents[1] / "docs"
CLI_DOC = (DOCS / "cli.md").read_text()


def _doc_for(path: str, doc: str) -> str:
    """Where ``path`` may be documented: docs/cli.md, or for a connector's own commands
    (``rsbridge NAME ...``, ``rsbridge sim NAME``) also that connector's docs/NAME.md."""
    words = path.split()
    for name in available():
        own = DOCS / f"{name}.md"
        if (words[1:2] == [name] or words[1:3] == ["sim", name]) and own.exists():
            return doc + own.read_text()
    return doc


def _leaf_commands(command: Any, path: str) -> list[tuple[str, Any]]:
    # Duck-typed: typer ships its own copy of click, so isinstance checks against the
    # click package would silently match nothing.
    if isinstance(command, LazyCommand):
        command = command.load()  # a plugin's command: documented like the built-in ones
    if getattr(command, "commands", None) is None:
        return [(path, command)]
    ctx = command.context_class(command, info_name=path.rsplit(" ", 1)[-1])
    found: list[tuple[str, Any]] = []
    for name in command.list_commands(ctx):
        found += _leaf_commands(command.get_command(ctx, name), f"{path} {name}")
    return found


def undocumented(doc: str) -> list[str]:
    """Commands and options of the CLI that ``doc`` does not mention."""
    missing = []
    commands = _leaf_commands(typer.main.get_command(app), "rsbridge")
    assert len(commands) >= 4  # version, demo, report parse, sim appliance
    for path, command in commands:
        where = _doc_for(path, doc)
        if f"`{path}" not in where:
            missing.append(path)
        for param in command.params:
            flags = [o for o in getattr(param, "opts", []) if o.startswith("--")]
            if flags and flags[0] != "--help" and f"`{max(flags, key=len)}" not in where:
                missing.append(f"{path} {max(flags, key=len)}")
    return missing


def test_every_command_and_option_is_documented() -> None:
    assert undocumented(CLI_DOC) == []


def test_the_check_notices_a_missing_option() -> None:
    assert undocumented(CLI_DOC.replace("`--max-session-mb", "`--x")) == [
        "rsbridge report parse --max-session-mb"
    ]
