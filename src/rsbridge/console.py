"""How every command prints an error."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` to stderr and return the exit (status 1) to raise.

    Messages quote what users and peers wrote: escaped, or "[...]" would be taken for
    Rich markup (dropped, or a MarkupError for "[/...]"). Not wrapped: paths stay whole.
    """
    Console(stderr=True).print(
        f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True
    )
    return typer.Exit(code=1)
