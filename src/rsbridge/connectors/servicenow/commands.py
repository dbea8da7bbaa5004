"""``rsbridge servicenow``: helpers for setting up a ServiceNow instance."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rsbridge.config import Config, load_config
from rsbridge.connectors.servicenow.schema import Schema, unload_xml
from rsbridge.console import fail
from rsbridge.errors import RsbridgeError

servicenow_app = typer.Typer(help="ServiceNow set-up helpers.", no_args_is_help=True)


def _schema(config_path: Path | None, integration: str | None) -> Schema:
    if config_path is None:
        return Schema.build()
    config: Config = load_config(config_path)
    candidates = [i for i in config.integrations if i.connector == "servicenow"]
    if integration is not None:
        candidates = [i for i in candidates if i.name == integration]
    if len(candidates) != 1:
        names = ", ".join(i.name for i in config.integrations if i.connector == "servicenow")
        raise typer.BadParameter(
            f"name one ServiceNow integration with --integration (found: {names or 'none'})"
        )
    settings: Any = candidates[0].connector_settings()  # validated, as the engine sees them
    return Schema.build(settings.tables, settings.fields)


@servicenow_app.command()
def tables(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Use the table and column names of this configuration."
        ),
    ] = None,
    integration: Annotated[
        str | None, typer.Option(help="The ServiceNow integration whose names to use.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Print the session tables as XML to import into an instance (System Definition)."""
    try:
        xml = unload_xml(_schema(config, integration))
    except RsbridgeError as exc:
        raise fail(exc.message) from None
    if output is None:
        typer.echo(xml, nl=False)
    else:
        output.write_text(xml, encoding="utf-8")
        typer.echo(f"wrote {output}")
