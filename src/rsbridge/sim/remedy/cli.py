"""``rsbridge sim remedy``: serve a simulated AR System server in the foreground.

A standalone Typer app; the Remedy connector's plugin mounts its ``serve`` command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rsbridge.sim.options import TlsCert, TlsKey, tls_pair

app = typer.Typer(help="Simulated BMC Remedy / Helix ITSM AR System server.", no_args_is_help=True)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (AR's Jetty default is 8008).")] = 8008,
    seed: Annotated[
        bool,
        typer.Option(
            "--seed/--no-seed",
            help="Load demo incidents, work logs and more "
            "(--no-seed: the ITSM forms and the integration user only).",
        ),
    ] = True,
    definition: Annotated[
        list[Path] | None,
        typer.Option(
            "--definition",
            help="An AR definition file (.def) whose forms are defined at start, e.g. the "
            "session forms `rsbridge remedy forms` writes; repeatable.",
        ),
    ] = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Serve a simulated AR System server (JWT login, the entry API, the ITSM forms)."""
    import uvicorn

    from rsbridge.sim.remedy.definition_file import load_definition
    from rsbridge.sim.remedy.forms import FormDefinitionError
    from rsbridge.sim.remedy.seed import INTEGRATION, seed_demo, seed_forms
    from rsbridge.sim.remedy.server import create_app
    from rsbridge.sim.remedy.state import SimRemedyState
    from rsbridge.sim.serve import server_options

    tls = tls_pair(tls_cert, tls_key)
    state = SimRemedyState()
    if seed:
        seed_demo(state)
    else:
        seed_forms(state)
    for path in definition or []:
        try:
            forms = load_definition(state, path)
        except (OSError, UnicodeDecodeError, FormDefinitionError, ValueError) as exc:
            typer.echo(f"error: {path}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"Loaded {path}: {', '.join(f.name for f in forms) or 'no forms'}")
    typer.echo(f"Simulated AR System server: {'https' if tls else 'http'}://{host}:{port}")
    typer.echo(f"Integration user:           {INTEGRATION[0]} / {INTEGRATION[1]}")
    uvicorn.run(create_app(state), host=host, port=port, **server_options(tls))
