"""``rsbridge remedy``: set-up helpers for a BMC Remedy / Helix ITSM server (docs/remedy-forms.md).

A standalone Typer app; the Remedy plugin mounts it as ``rsbridge remedy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rsbridge.connectors.remedy.definition import (
    DEF_FILE,
    PANEL_FILE,
    definition_files,
    write_files,
)
from rsbridge.console import fail
from rsbridge.errors import RsbridgeError

remedy_app = typer.Typer(help="BMC Remedy / Helix ITSM set-up helpers.", no_args_is_help=True)


@remedy_app.callback()
def _group() -> None:
    """BMC Remedy / Helix ITSM set-up helpers."""


@remedy_app.command()
def forms(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Write the files into this directory.")
    ] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite files of the same names.")
    ] = False,
) -> None:
    """Write the definition file that creates rsbridge's session forms (import it in
    Developer Studio) and the field list of the incident's BeyondTrust Sessions panel."""
    try:
        written = write_files(out, definition_files(), force=force)
    except RsbridgeError as exc:
        raise fail(exc.message) from None
    except OSError as exc:
        raise fail(f"{exc.filename or out}: {exc.strerror}") from None
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo("next steps (docs/remedy-forms.md):")
    typer.echo(
        f"  1. Developer Studio: File > Import > Object Definitions, choose {out / DEF_FILE}, "
        "import all four forms."
    )
    typer.echo(
        f"  2. Add the BeyondTrust Sessions panel to HPD:Help Desk as {out / PANEL_FILE} says."
    )
    typer.echo("  3. Run `rsbridge check`: it verifies the forms and every field rsbridge writes.")
