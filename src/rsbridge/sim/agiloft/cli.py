"""``rsbridge sim agiloft``: serve a simulated Agiloft knowledge base in the foreground.

A standalone Typer app; the Agiloft connector's plugin mounts its command as
``rsbridge sim agiloft``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rsbridge.sim.options import TlsCert, TlsKey, tls_pair

app = typer.Typer(help="Simulated Agiloft knowledge base (EW REST).", no_args_is_help=True)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8090,
    kb: Annotated[str, typer.Option("--kb", help="Knowledge base name (case-sensitive).")] = "Demo",
    seed: Annotated[
        bool,
        typer.Option(
            "--seed/--no-seed",
            help="Load demo users, teams and support cases "
            "(--no-seed: the tables and the integration user only).",
        ),
    ] = True,
    ws_delay: Annotated[
        float,
        typer.Option(
            "--ws-delay",
            help="Seconds to pause after every call, as Agiloft's WSDelay (about 1 s on a "
            "real KB).",
            min=0.0,
        ),
    ] = 0.0,
    tables: Annotated[
        list[Path] | None,
        typer.Option(
            "--tables",
            help="A JSON file of table definitions merged at start (a table that exists gets "
            "the fields it lacks), e.g. agiloft-tables.json of `rsbridge agiloft setup`; "
            "repeatable.",
        ),
    ] = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Serve a simulated Agiloft knowledge base (the EW REST interface).

    EWLogin, EWCreate ... EWRetrieve and the tables the BeyondTrust Extension touches.
    """
    import json

    import uvicorn

    from rsbridge.sim.agiloft.seed import INTEGRATION, seed_demo, seed_tables
    from rsbridge.sim.agiloft.server import create_app
    from rsbridge.sim.agiloft.state import SimAgiloftState
    from rsbridge.sim.agiloft.tables import TableDefinitionError
    from rsbridge.sim.serve import server_options

    tls = tls_pair(tls_cert, tls_key)
    state = SimAgiloftState(kb=kb, ws_delay=ws_delay)
    if seed:
        seed_demo(state)
    else:
        seed_tables(state)
    for path in tables or []:
        try:
            definitions = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(definitions, list):
                raise ValueError("the file holds no list of table definitions")
            names = state.merge_tables(definitions)
        except (OSError, UnicodeDecodeError, ValueError, TableDefinitionError) as exc:
            typer.echo(f"error: {path}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"Merged {path}: {', '.join(names)}")
    typer.echo(f"Simulated Agiloft KB: {'https' if tls else 'http'}://{host}:{port}/ewws/")
    typer.echo(f"Knowledge base:       {kb}")
    typer.echo(f"Integration user:     {INTEGRATION[0]} / {INTEGRATION[1]}")
    uvicorn.run(create_app(state), host=host, port=port, **server_options(tls))
