"""The ``rsbridge`` command line."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="rsbridge: BeyondTrust Remote Support to ticketing integration engine.",
    no_args_is_help=True,
)


@app.command()
def version() -> None:
    """Print the rsbridge version."""
    from rsbridge import __version__

    typer.echo(__version__)
