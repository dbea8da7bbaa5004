"""``rsbridge admin``: helpers for the web console's ``[admin]`` configuration.
Reference: docs/cli.md.

Registered on the main app by :mod:`rsbridge.cli.root`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rsbridge.console import fail

admin_app = typer.Typer(
    help="The web console: password hashes for its users.", no_args_is_help=True
)

MAX_PASSWORD = 1024
"""Longest password accepted: Argon2 takes any length, a pasted file is a mistake."""


@admin_app.command("hash-password")
def hash_password(
    stdin: Annotated[
        bool,
        typer.Option(
            "--stdin",
            help="Read the password from the first line of standard input (for scripts) "
            "instead of prompting twice.",
        ),
    ] = False,
) -> None:
    """Print the Argon2id hash of a password, for a console user's password_hash.

    Prompts twice without echoing; the password itself is never printed or stored.
    """
    from rsbridge.web.admin.auth import hash_password as argon2id

    if stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    if not password:
        raise fail("the password is empty")
    if len(password) > MAX_PASSWORD:
        raise fail(f"the password is longer than {MAX_PASSWORD} characters")
    typer.echo(argon2id(password))
