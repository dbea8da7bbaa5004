"""Every command and option of the CLI is documented in docs/cli.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer.main

from rsbridge.cli import app

CLI_DOC = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()


def _leaf_commands(command: Any, path: str) -> list[tuple[str, Any]]:
    # Duck-typed: typer ships its own copy of click, so isinstance checks against the
    # click package would silently match nothing.
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return [(path, command)]
    found: list[tuple[str, Any]] = []
    for name, sub in subcommands.items():
        found += _leaf_commands(sub, f"{path} {name}")
    return found


def undocumented(doc: str) -> list[str]:
    """Commands and options of the CLI that ``doc`` does not mention."""
    missing = []
    commands = _leaf_commands(typer.main.get_command(app), "rsbridge")
    assert len(commands) >= 4  # version, demo, report parse, sim appliance
    for path, command in commands:
        if f"`{path}" not in doc:
            missing.append(path)
        for param in command.params:
            flags = [o for o in getattr(param, "opts", []) if o.startswith("--")]
            if flags and flags[0] != "--help" and f"`{max(flags, key=len)}" not in doc:
                missing.append(f"{path} {max(flags, key=len)}")
    return missing


def test_every_command_and_option_is_documented() -> None:
    assert undocumented(CLI_DOC) == []


def test_the_check_notices_a_missing_option() -> None:
    assert undocumented(CLI_DOC.replace("`--max-session-mb", "`--x")) == [
        "rsbridge report parse --max-session-mb"
    ]
