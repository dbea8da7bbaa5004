"""``rsbridge sim fake``: the fake package's simulator command."""

from typing import Annotated

import typer


def serve(port: Annotated[int, typer.Option(help="TCP port.")] = 9999) -> None:
    """Serve a simulated fake system."""
    typer.echo(f"fake simulator on port {port}")
