"""``rsbridge servicenow``: helpers for setting up a ServiceNow instance."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from rsbridge.config import Config, load_config
from rsbridge.connectors.servicenow.schema import Schema, unload_xml
from rsbridge.connectors.servicenow.update_set import update_set_xml
from rsbridge.console import fail
from rsbridge.errors import RsbridgeError

servicenow_app = typer.Typer(help="ServiceNow set-up helpers.", no_args_is_help=True)


def _integration(
    config_path: Path | None, integration: str | None
) -> tuple[Config | None, str, Schema]:
    """The configuration, the ServiceNow integration's name and its schema (without a
    configuration: the defaults, for an integration named ``servicenow``)."""
    if config_path is None:
        return None, integration or "servicenow", Schema.build()
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
    return config, candidates[0].name, Schema.build(settings.tables, settings.fields)


def _schema(config_path: Path | None, integration: str | None) -> Schema:
    return _integration(config_path, integration)[2]


def _write(text: str, output: Path | None) -> None:
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


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
    _write(xml, output)


@servicenow_app.command("update-set")
def update_set(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Use the table names and [actions] public_url of this file."
        ),
    ] = None,
    integration: Annotated[
        str | None, typer.Option(help="The ServiceNow integration to set the instance up for.")
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(help="rsbridge's URL as the instance reaches it (default: public_url)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Print one update set (tables, roles, ACLs, properties, REST message, UI actions,
    portal widget, menu, related lists) to import with "Import Update Set from XML"."""
    try:
        loaded, name, schema = _integration(config, integration)
        base = url or (loaded.actions.public_url if loaded is not None else None)
        if not base:
            raise typer.BadParameter(
                "rsbridge's URL is unknown: give --url or set [actions] public_url"
            )
        if not re.fullmatch(r"https?://[^/?#\s]+(/[^?#\s]*)?", base):
            raise typer.BadParameter(f"--url {base!r} is not an http:// or https:// URL")
        xml = update_set_xml(schema, url=base, integration=name)
    except RsbridgeError as exc:
        raise fail(exc.message) from None
    _write(xml, output)
