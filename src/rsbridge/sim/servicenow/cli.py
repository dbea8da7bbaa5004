"""``rsbridge sim servicenow``: serve the simulated instance in the foreground.

Contributed to ``rsbridge sim`` by the ServiceNow connector's plugin
(:data:`rsbridge.connectors.servicenow.plugin`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rsbridge.sim.options import TlsCert, TlsKey, tls_pair


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
            help=(
                "Unload XML file or update set to import at start (tables, columns, records);"
                " repeatable."
            ),
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

    tls = tls_pair(tls_cert, tls_key)
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
