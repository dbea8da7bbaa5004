"""``rsbridge sim``: run the simulated peers in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

sim_app = typer.Typer(
    help="Run simulated peers (appliance, ticketing systems).", no_args_is_help=True
)

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


def _tls_pair(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with; exits clearly when only one is given."""
    if (cert is None) != (key is None):
        typer.echo("error: --tls-cert and --tls-key go together", err=True)
        raise typer.Exit(2)
    return (cert, key) if cert and key else None


@sim_app.command()
def appliance(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8443,
    seed: Annotated[int, typer.Option(help="Seed for ids, secrets and generated data.")] = 0,
    sessions: Annotated[int, typer.Option(help="Finished sessions to pre-load.")] = 0,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Serve a simulated Remote Support appliance (OAuth, Command and Reporting APIs)."""
    import uvicorn

    from rsbridge.sim.appliance.server import create_app
    from rsbridge.sim.appliance.state import SimApplianceState
    from rsbridge.sim.serve import server_options

    tls = _tls_pair(tls_cert, tls_key)
    state = SimApplianceState.default(seed=seed, sessions=sessions)
    account = state.accounts[0]
    typer.echo(f"Simulated appliance: {'https' if tls else 'http'}://{host}:{port}")
    typer.echo(f"API client id:       {account.client_id}")
    typer.echo(f"API client secret:   {account.client_secret}")
    uvicorn.run(create_app(state), host=host, port=port, **server_options(tls))


@sim_app.command()
def servicenow(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8280,
    seed: Annotated[
        bool,
        typer.Option(
            "--seed/--no-seed",
            help="Load the demo users, groups, CIs and tickets (--no-seed: the accounts only).",
        ),
    ] = True,
    imports: Annotated[
        list[Path] | None,
        typer.Option(
            "--import",
            help="Unload XML file to import at start (tables, columns, records); repeatable.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Serve a simulated ServiceNow instance (OAuth, Table, Attachment and Batch APIs)."""
    import uvicorn

    from rsbridge.sim.serve import server_options
    from rsbridge.sim.servicenow import SimServiceNowState, create_app, seed_demo
    from rsbridge.sim.servicenow.seed import seed_accounts
    from rsbridge.sim.servicenow.unload import UnloadError

    tls = _tls_pair(tls_cert, tls_key)
    state = SimServiceNowState()
    demo = seed_demo(state) if seed else seed_accounts(state)
    for path in imports or []:
        try:
            summary = state.import_unload_xml(path.read_bytes())
        except UnloadError as exc:
            typer.echo(f"error: {path}: {exc}", err=True)
            raise typer.Exit(1) from None
        skipped = f", skipped {', '.join(sorted(set(summary.skipped)))}" if summary.skipped else ""
        typer.echo(
            f"Imported {path.name}: {len(summary.tables)} tables, {summary.columns} columns, "
            f"{summary.records} records{skipped}"
        )
    typer.echo(f"Simulated ServiceNow: {'https' if tls else 'http'}://{host}:{port}")
    typer.echo(f"Admin:               {demo.admin[0]} / {demo.admin[1]}")
    typer.echo(f"Integration user:    {demo.integration[0]} / {demo.integration[1]}")
    typer.echo(f"Read-only user:      {demo.viewer[0]} / {demo.viewer[1]}")
    typer.echo(f"OAuth client:        {demo.oauth_client[0]} / {demo.oauth_client[1]}")
    uvicorn.run(create_app(state), host=host, port=port, **server_options(tls))
