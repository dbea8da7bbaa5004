"""``rsbridge sim``: run the simulated peers in the foreground."""

from __future__ import annotations

from typing import Annotated

import typer

sim_app = typer.Typer(
    help="Run simulated peers (appliance, ticketing systems).", no_args_is_help=True
)


@sim_app.command()
def appliance(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (plain HTTP).")] = 8443,
    seed: Annotated[int, typer.Option(help="Seed for ids, secrets and generated data.")] = 0,
    sessions: Annotated[int, typer.Option(help="Finished sessions to pre-load.")] = 0,
) -> None:
    """Serve a simulated Remote Support appliance (OAuth, Command and Reporting APIs)."""
    import uvicorn

    from rsbridge.sim.appliance.server import create_app
    from rsbridge.sim.appliance.state import SimApplianceState

    state = SimApplianceState.default(seed=seed, sessions=sessions)
    account = state.accounts[0]
    typer.echo(f"Simulated appliance: http://{host}:{port}")
    typer.echo(f"API client id:       {account.client_id}")
    typer.echo(f"API client secret:   {account.client_secret}")
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning", server_header=False)
