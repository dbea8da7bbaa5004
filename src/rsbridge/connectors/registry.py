"""Finding connectors by name: built-in ones and third-party packages alike.

A package adds a connector by declaring an entry point in the group
``rsbridge.connectors`` whose value is the connector class, e.g. in its
``pyproject.toml``::

    [project.entry-points."rsbridge.connectors"]
    mysystem = "mypackage.connector:MySystemConnector"

rsbridge's own connectors are declared the same way in its ``pyproject.toml``;
:data:`BUILTIN` lists them as well so that a source checkout that was not installed
still finds them.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from rsbridge.connectors.base import Connector
from rsbridge.errors import ConfigurationError

ENTRY_POINT_GROUP = "rsbridge.connectors"

BUILTIN: dict[str, str] = {
    "jsonl": "rsbridge.connectors.jsonl:JsonlConnector",
    "webhook": "rsbridge.connectors.webhook:WebhookConnector",
    "servicenow": "rsbridge.connectors.servicenow:ServiceNowConnector",
}


def _load(target: str) -> type[Connector]:
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigurationError(f"{target} is not a Connector class")
    return cls


def available() -> dict[str, str]:
    """Every connector name with where its class lives (entry points win over built-ins)."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def connector_class(name: str) -> type[Connector]:
    """The connector class registered as ``name``; ConfigurationError if there is none."""
    targets = available()
    if name not in targets:
        known = ", ".join(sorted(targets))
        raise ConfigurationError(f"unknown connector {name!r} (available: {known})")
    cls = _load(targets[name])
    if cls.name != name:
        raise ConfigurationError(
            f"connector {targets[name]} declares name {cls.name!r}, not {name!r}"
        )
    return cls
