"""``rsbridge salesforce``: set-up helpers for a Salesforce org (docs/salesforce.md).

A standalone Typer app; the command line mounts it as ``rsbridge salesforce``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from rsbridge.config import Config, load_config
from rsbridge.connectors.salesforce.credentials import (
    EXTERNAL_CREDENTIAL,
    PORTAL_PRINCIPAL,
    PRINCIPAL,
    TOKEN_PARAMETER,
)
from rsbridge.connectors.salesforce.package import (
    DEFAULT_ACTIONS_URL,
    DEFAULT_INTEGRATION,
    package_files,
    write_package,
)
from rsbridge.connectors.salesforce.schema import Schema
from rsbridge.console import fail
from rsbridge.errors import ConfigurationError, RsbridgeError

salesforce_app = typer.Typer(help="Salesforce set-up helpers.", no_args_is_help=True)

CONNECTOR = "salesforce"


@salesforce_app.callback()
def _group() -> None:
    """Salesforce set-up helpers."""


def _from_config(config_path: Path, integration: str | None) -> tuple[Schema, str | None, str]:
    """The integration's schema (its ``objects`` and ``fields`` renames), rsbridge's
    public URL (``[actions] public_url``) and the integration's name."""
    config: Config = load_config(config_path)
    candidates = [i for i in config.integrations if i.connector == CONNECTOR]
    if integration is not None:
        candidates = [i for i in candidates if i.name == integration]
    if len(candidates) != 1:
        names = ", ".join(i.name for i in config.integrations if i.connector == CONNECTOR)
        raise ConfigurationError(
            f"name one Salesforce integration with --integration (found: {names or 'none'})"
        )
    chosen = candidates[0]
    settings: Any = chosen.connector_settings()  # validated, as the engine sees them
    renames = {}
    for key in ("objects", "fields"):
        value = getattr(settings, key, None) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigurationError(f"integration {chosen.name}: {key} must be a list of text")
        renames[key] = value
    schema = Schema.build(renames["objects"], renames["fields"])
    return schema, config.actions.public_url, chosen.name


@salesforce_app.command()
def package(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Write the project into this directory.")
    ],
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Use the object and field names of this configuration."
        ),
    ] = None,
    integration: Annotated[
        str | None,
        typer.Option(
            help="The Salesforce integration whose names to use, and that the Case buttons "
            "name (default: the only one, or 'salesforce' without --config)."
        ),
    ] = None,
    actions_url: Annotated[
        str | None,
        typer.Option(help="rsbridge's public URL (default: [actions] public_url)."),
    ] = None,
    case_layout: Annotated[
        Path | None,
        typer.Option(
            help="A Case page layout retrieved from the org: the package includes it "
            "with the Remote Support Sessions related list and the Classic Case buttons added."
        ),
    ] = None,
) -> None:
    """Write the Salesforce metadata (objects, fields, permission sets, Case buttons, the
    portal component, the Named Credential) as a project that `sf project deploy start
    --source-dir force-app` deploys."""
    try:
        if config is not None:
            schema, public_url, name = _from_config(config, integration)
        else:
            schema, public_url, name = Schema.build(), None, integration or DEFAULT_INTEGRATION
        url = actions_url or public_url
        layout = None
        if case_layout is not None:
            layout = (case_layout.name, case_layout.read_bytes())
        files = package_files(
            schema,
            actions_url=url or DEFAULT_ACTIONS_URL,
            integration=name,
            case_layout=layout,
        )
        written = write_package(out, files)
    except RsbridgeError as exc:
        raise fail(exc.message) from None
    except OSError as exc:
        raise fail(f"{exc.filename or out}: {exc.strerror}") from None
    typer.echo(f"wrote {len(written)} files to {out}")
    if url is None:
        typer.echo(
            f"note: the Named Credential and remote site name {DEFAULT_ACTIONS_URL}; set "
            "[actions] public_url "
            "or --actions-url to rsbridge's address"
        )
    typer.echo(f"deploy: sf project deploy start --source-dir {out / 'force-app'}")
    typer.echo(
        f"then: Setup > Named Credentials > External Credentials > {EXTERNAL_CREDENTIAL} > "
        f"Principals: give {PRINCIPAL} (and {PORTAL_PRINCIPAL}, for a portal) the "
        f"authentication parameter {TOKEN_PARAMETER} = its rsbridge client's token"
    )
