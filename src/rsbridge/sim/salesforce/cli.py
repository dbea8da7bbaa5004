"""``rsbridge sim salesforce``: serve a simulated Salesforce org in the foreground.

A standalone Typer app; the ``sim`` command group mounts it (``app.add_typer`` or the
connector registry's CLI contributions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Simulated Salesforce org.", no_args_is_help=True)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8380,
    seed: Annotated[
        bool,
        typer.Option(
            "--seed/--no-seed",
            help="Load the demo accounts, contacts and cases (--no-seed: users and app only).",
        ),
    ] = True,
    package: Annotated[
        list[Path] | None,
        typer.Option(
            "--package",
            help="Salesforce source-format directory (objects/*/...-meta.xml) whose custom "
            "objects and fields to define; repeatable.",
            exists=True,
            file_okay=False,
            readable=True,
        ),
    ] = None,
    my_domain: Annotated[
        str,
        typer.Option(
            help="My Domain name: logins via *.salesforce.com hosts answer "
            "https://<name>.my.salesforce.com as instance_url."
        ),
    ] = "rsbridge-dev",
    daily_limit: Annotated[
        int, typer.Option(help="Daily API request allowance (Sforce-Limit-Info).", min=1)
    ] = 15000,
    block_password_flow: Annotated[
        bool,
        typer.Option(
            "--block-password-flow",
            help="Refuse the OAuth username-password flow (invalid_grant), as new orgs do.",
        ),
    ] = False,
    tls_cert: Annotated[
        Path | None,
        typer.Option(help="PEM certificate: serve HTTPS (needs --tls-key).", dir_okay=False),
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="PEM private key of --tls-cert.", dir_okay=False)
    ] = None,
) -> None:
    """Serve a simulated Salesforce org (OAuth, SOAP login, REST, SOQL, composite)."""
    import uvicorn

    from rsbridge.sim.salesforce.package import PackageError, load_package
    from rsbridge.sim.salesforce.seed import seed_accounts, seed_demo
    from rsbridge.sim.salesforce.server import create_app
    from rsbridge.sim.salesforce.state import SimSalesforceState
    from rsbridge.sim.serve import server_options

    if (tls_cert is None) != (tls_key is None):
        typer.echo("error: --tls-cert and --tls-key go together", err=True)
        raise typer.Exit(2)
    tls = (tls_cert, tls_key) if tls_cert and tls_key else None
    state = SimSalesforceState(my_domain=my_domain)
    state.daily_api_limit = daily_limit
    state.password_flow_enabled = not block_password_flow
    demo = seed_demo(state) if seed else seed_accounts(state)
    for directory in package or []:
        try:
            names = load_package(state, directory)
        except PackageError as exc:
            typer.echo(f"error: {directory}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"Loaded {directory}: {', '.join(names) or 'no objects'}")
    typer.echo(f"Simulated Salesforce: {'https' if tls else 'http'}://{host}:{port}")
    typer.echo(f"Integration user:     {demo.integration[0]} / {demo.integration[1]}")
    typer.echo(f"Security token:       {demo.integration[2]}")
    typer.echo(f"Admin:                {demo.admin[0]} / {demo.admin[1]} ({demo.admin[2]})")
    typer.echo(f"Connected app:        {demo.app[0]} / {demo.app[1]}")
    uvicorn.run(create_app(state), host=host, port=port, **server_options(tls))
