"""Every command and option of the CLI is documented in docs/cli.md."""

from __future__ import annotations

from pathlib import Path

import click
import typer.main

from rsbridge.cli import app

CLI_DOC = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()


def _commands(group: click.Command, prefix: str) -> list[tuple[str, click.Command]]:
    found = [(prefix, group)]
    if isinstance(group, click.Group):
        for name, sub in group.commands.items():
            found += _commands(sub, f"{prefix} {name}")
    return found


def test_every_command_and_option_is_documented() -> None:
    missing = []
    for path, command in _commands(typer.main.get_command(app), "rsbridge"):
        if isinstance(command, click.Group):
            continue
        if f"`{path}" not in CLI_DOC:
            missing.append(path)
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in ("help",):
                flag = max(param.opts, key=len)
                if f"`{flag}" not in CLI_DOC:
                    missing.append(f"{path} {flag}")
    assert missing == []
