"""``rsbridge sim``: run the simulated peers in the foreground.

The simulated appliance is built in; each connector's simulator joins as ``rsbridge sim
<name>`` through its plugin (e.g. ``sim/servicenow/cli.py``).
"""

from __future__ import annotations

import random
from typing import Annotated

import typer

from rsbridge.cli.plugins import SimGroup
from rsbridge.sim.options import TlsCert, TlsKey, tls_pair

sim_app = typer.Typer(
    cls=SimGroup,
    help="Run simulated peers (appliance, ticketing systems).",
    no_args_is_help=True,
)


@sim_app.command()
def appliance(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8443,
    seed: Annotated[int, typer.Option(help="Seed for ids, secrets and generated data.")] = 0,
    sessions: Annotated[int, typer.Option(help="Finished sessions to pre-load.")] = 0,
    recipient: Annotated[
        list[str] | None,
        typer.Option(help="Send outbound events of rehearsed sessions to this URL (repeatable)."),
    ] = None,
    send_custom_fields: Annotated[
        bool, typer.Option(help="Outbound events carry the session's custom attributes.")
    ] = False,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Serve a simulated Remote Support appliance (OAuth, Command and Reporting APIs)."""
    import uvicorn

    from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient
    from rsbridge.sim.appliance.rehearsal import Rehearsal
    from rsbridge.sim.appliance.server import create_app
    from rsbridge.sim.appliance.state import SimApplianceState
    from rsbridge.sim.serve import server_options

    tls = tls_pair(tls_cert, tls_key)
    state = SimApplianceState.default(seed=seed, sessions=sessions)
    # The seed fixes the appliance's identity and credentials (a configuration keeps working
    # across restarts); keys and live sessions get fresh ids, as a real appliance's would.
    state.live_rng = random.SystemRandom()
    account = state.accounts[0]
    typer.echo(f"Simulated appliance: {'https' if tls else 'http'}://{host}:{port}")
    typer.echo(f"API client id:       {account.client_id}")
    typer.echo(f"API client secret:   {account.client_secret}")
    # Events are retried every 5 s for an hour: a rehearsal wants to see a fix land soon.
    emitter = OutboundEventEmitter([Recipient(url, retry_interval=5) for url in recipient or []])
    rehearsal = Rehearsal(state, emitter, send_custom_fields=send_custom_fields)
    # The same URL is the rehearsal page in a browser.
    typer.echo(f"Control API, page:   {'https' if tls else 'http'}://{host}:{port}/sim/")
    app = create_app(state, rehearsal=rehearsal)
    uvicorn.run(app, host=host, port=port, **server_options(tls))
