"""``rsbridge fake ...``: the fake package's own commands."""

from typing import Annotated

import typer

fake_app = typer.Typer(help="Fake set-up helpers.", no_args_is_help=True)


@fake_app.command()
def greet(name: Annotated[str, typer.Option(help="Whom to greet.")] = "world") -> None:
    """Print a greeting (proves the command ran with its option)."""
    typer.echo(f"hello {name} from the fake plugin")
