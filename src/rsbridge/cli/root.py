"""The ``rsbridge`` command line (Typer): the root app. Reference: docs/cli.md.

Each command module of this package registers its commands here; connectors add theirs
through their plugin (:mod:`rsbridge.cli.plugins`), so adding a connector edits nothing here.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rsbridge import __version__
from rsbridge.cli import actions, admin, demo, engine, events, rehearse, report, sim, status, store
from rsbridge.cli.plugins import RootGroup

app = typer.Typer(
    cls=RootGroup,
    help="rsbridge: BeyondTrust Remote Support to ticketing integration engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """rsbridge: BeyondTrust Remote Support to ticketing integration engine."""


app.add_typer(report.report_app, name="report")
app.add_typer(sim.sim_app, name="sim", help="Run simulated peers (the appliance, ...).")
engine.register(app)
events.register(app)
status.register(app)
app.add_typer(actions.actions_app, name="actions")
rehearse.register(app)
app.add_typer(store.store_app, name="store")
app.add_typer(admin.admin_app, name="admin")


@app.command()
def version() -> None:
    """Print the rsbridge version."""
    typer.echo(__version__)


demo.register(app)
