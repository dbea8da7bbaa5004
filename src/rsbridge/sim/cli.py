"""``rsbridge sim``: run the simulated peers in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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


def _serve(app: Any, host: str, port: int, cert: Path | None, key: Path | None) -> None:
    """Run ``app`` with uvicorn in the foreground, over TLS when a certificate is given."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        server_header=False,
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
    )


def _scheme(cert: Path | None, key: Path | None) -> str:
    """``https`` or ``http``; exits with a clear error when only half of the pair is given."""
    if (cert is None) != (key is None):
        typer.echo("error: --tls-cert and --tls-key go together", err=True)
        raise typer.Exit(2)
    return "https" if cert else "http"


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
    from rsbridge.sim.appliance.server import create_app
    from rsbridge.sim.appliance.state import SimApplianceState

    scheme = _scheme(tls_cert, tls_key)
    state = SimApplianceState.default(seed=seed, sessions=sessions)
    account = state.accounts[0]
    typer.echo(
        f"Simulated appliance: {scheme}://{host}:{port}",
    )
    typer.echo(f"API client id:       {account.client_id}")
    typer.echo(f"API client secret:   {account.client_secret}")
    _serve(create_app(state), host, port, tls_cert, tls_key)


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
    from rsbridge.sim.servicenow import SimServiceNowState, create_app, seed_demo
    from rsbridge.sim.servicenow.seed import seed_accounts
    from rsbridge.sim.servicenow.unload import UnloadError

    scheme = _scheme(tls_cert, tls_key)
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
    typer.echo(f"Simulated ServiceNow: {scheme}://{host}:{port}")
    typer.echo(f"Admin:               {demo.admin[0]} / {demo.admin[1]}")
    typer.echo(f"Integration user:    {demo.integration[0]} / {demo.integration[1]}")
    typer.echo(f"Read-only user:      {demo.viewer[0]} / {demo.viewer[1]}")
    typer.echo(f"OAuth client:        {demo.oauth_client[0]} / {demo.oauth_client[1]}")
    _serve(create_app(state), host, port, tls_cert, tls_key)
