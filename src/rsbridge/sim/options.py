"""Command-line options every ``rsbridge sim <name>`` command shares (Typer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

TlsCert = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert",
        help="PEM certificate: serve HTTPS instead of plain HTTP (needs --tls-key).",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
TlsKey = Annotated[
    Path | None,
    typer.Option(
        "--tls-key",
        help="PEM private key of --tls-cert.",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]


def tls_pair(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with; exits clearly when only one is given."""
    if (cert is None) != (key is None):
        typer.echo("error: --tls-cert and --tls-key go together", err=True)
        raise typer.Exit(2)
    return (cert, key) if cert and key else None
