"""``rsbridge agiloft``: set-up helpers for an Agiloft KB (docs/agiloft.md).

A standalone Typer app; the command line mounts it as ``rsbridge agiloft``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rsbridge.config import load_config
from rsbridge.connectors.agiloft.setup import DEFAULT_ACTIONS_URL, setup_files, write_setup
from rsbridge.connectors.agiloft.tables import Names
from rsbridge.console import fail
from rsbridge.errors import ConfigurationError, RsbridgeError

agiloft_app = typer.Typer(help="Agiloft set-up helpers.", no_args_is_help=True)


@agiloft_app.callback()
def _group() -> None:
    """Agiloft set-up helpers."""


@agiloft_app.command()
def setup(
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the files here.")] = Path(),
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="Use the table and field names of this configuration."),
    ] = None,
    integration: Annotated[
        str | None,
        typer.Option(help="The Agiloft integration (default: the only one, or 'agiloft')."),
    ] = None,
    actions_url: Annotated[
        str | None, typer.Option(help="rsbridge's public URL (default: [actions] public_url).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace existing files.")] = False,
) -> None:
    """Write the Agiloft set-up checklist (tables, fields, action buttons) and the table
    definitions as JSON."""
    try:
        names, public_url, name = Names.build(), None, integration or "agiloft"
        if config is not None:
            loaded = load_config(config)
            chosen = [i for i in loaded.integrations if i.connector == "agiloft"]
            if integration is not None:
                chosen = [i for i in chosen if i.name == integration]
            if len(chosen) != 1:
                raise ConfigurationError("name one Agiloft integration with --integration")
            settings: Any = chosen[0].connector_settings()
            names = Names.build(settings.tables or (), settings.fields or ())
            public_url, name = loaded.actions.public_url, chosen[0].name
        files = setup_files(
            names, actions_url=actions_url or public_url or DEFAULT_ACTIONS_URL, integration=name
        )
        written = write_setup(out, files, force=force)
    except RsbridgeError as exc:
        raise fail(exc.message) from None
    except OSError as exc:
        raise fail(f"{exc.filename or out}: {exc.strerror}") from None
    for path in written:
        typer.echo(f"wrote {path}")
    typer.echo("next: follow agiloft-setup.md in Setup > Tables, then run `rsbridge check`")
