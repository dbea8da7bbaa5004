"""Finding connectors by name: built-in ones and third-party packages alike.

A package adds a connector by declaring an entry point in the group
``rsbridge.connectors`` whose value is the connector class, e.g. in its
``pyproject.toml``::

    [project.entry-points."rsbridge.connectors"]
    mysystem = "mypackage.connector:MySystemConnector"

or a :class:`~rsbridge.connectors.plugin.ConnectorPlugin` naming the class and what the
package adds to the command line (its own commands, a simulator, a demo story)::

    mysystem = "mypackage:plugin"

rsbridge's own connectors are declared the same way in its ``pyproject.toml``;
:data:`BUILTIN` finds them as well so that a source checkout that was not installed
still does.
"""

from __future__ import annotations

import importlib
import pkgutil
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

import rsbridge.connectors
from rsbridge.connectors.plugin import ConnectorPlugin, Hook
from rsbridge.errors import ConfigurationError

if TYPE_CHECKING:
    from rsbridge.connectors.base import Connector

ENTRY_POINT_GROUP = "rsbridge.connectors"


def _builtin() -> dict[str, str]:
    # Found without importing anything: every connector package (a sub-package of this one,
    # e.g. servicenow/) declares its plugin in its __init__, so adding one edits nothing here.
    found = {
        "jsonl": "rsbridge.connectors.jsonl:JsonlConnector",
        "webhook": "rsbridge.connectors.webhook:WebhookConnector",
    }
    for module in pkgutil.iter_modules(rsbridge.connectors.__path__):
        if module.ispkg:
            found[module.name] = f"rsbridge.connectors.{module.name}:plugin"
    return found


BUILTIN: dict[str, str] = _builtin()
"""rsbridge's own connectors: the jsonl and webhook modules and each connector package."""


def _import(target: str) -> object:
    """The object ``"module:attribute"`` names; a failure to import is a clear error."""
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # a broken third-party package: say which, do not crash
        raise ConfigurationError(f"{target} failed to load: {type(exc).__name__}: {exc}") from exc


def _connector(target: str) -> type[Connector]:
    from rsbridge.connectors.base import Connector  # imported when needed: --help stays fast

    cls = _import(target)
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigurationError(f"{target} is not a Connector class")
    return cls


def available() -> dict[str, str]:
    """Every connector name with where its class lives (entry points win over built-ins)."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found[ep.name] = ep.value
    return found


def plugin(name: str) -> ConnectorPlugin:
    """The declaration of connector ``name``; a bare class entry point has no hooks.

    Raises ConfigurationError for an unknown name or an entry point that does not load.
    """
    targets = available()
    if name not in targets:
        known = ", ".join(sorted(targets))
        raise ConfigurationError(f"unknown connector {name!r} (available: {known})")
    target = targets[name]
    found = _import(target)
    if isinstance(found, ConnectorPlugin):
        return found
    _connector(target)  # the same check as connector_class: a class, and a Connector
    return ConnectorPlugin(connector=target)


def plugins() -> dict[str, ConnectorPlugin | ConfigurationError]:
    """Every registered connector's declaration, or the error that stops it loading.

    The command line lists what it can and reports the broken ones only when used, so
    one broken third-party package does not take ``rsbridge`` down with it.
    """
    found: dict[str, ConnectorPlugin | ConfigurationError] = {}
    for name in sorted(available()):
        try:
            found[name] = plugin(name)
        except ConfigurationError as exc:
            found[name] = exc
    return found


def load_hook(hook: Hook) -> object:
    """The object a :class:`Hook` names, imported now."""
    return _import(hook.target)


def connector_class(name: str) -> type[Connector]:
    """The connector class registered as ``name``; ConfigurationError if there is none."""
    declared = plugin(name)
    cls = _connector(declared.connector)
    if cls.name != name:
        raise ConfigurationError(
            f"connector {declared.connector} declares name {cls.name!r}, not {name!r}"
        )
    return cls
