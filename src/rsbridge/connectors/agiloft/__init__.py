"""Agiloft: the connector, its EW REST client and the tables and fields it needs.

:data:`plugin` is what the ``rsbridge.connectors`` entry point names: the connector, the
``rsbridge agiloft`` commands, ``rsbridge sim agiloft`` and the demo story. The connector
class is imported on first use so that reading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsbridge.connectors.plugin import ConnectorPlugin, Hook

if TYPE_CHECKING:
    from rsbridge.connectors.agiloft.connector import AgiloftConnector

plugin = ConnectorPlugin(
    connector="rsbridge.connectors.agiloft.connector:AgiloftConnector",
    commands=Hook(
        "rsbridge.connectors.agiloft.commands:agiloft_app",
        "Agiloft set-up helpers.",
    ),
    simulator=Hook(
        "rsbridge.sim.agiloft.cli:serve",
        "Serve a simulated Agiloft knowledge base (the EW REST interface).",
    ),
    demo=Hook(
        "rsbridge.connectors.agiloft.demo:run_demo",
        "Keys from support cases, every event twice, one session record per session.",
    ),
)


def __getattr__(name: str) -> object:
    # Lazy: importing the connector pulls in httpx and pydantic models.
    if name == "AgiloftConnector":
        from rsbridge.connectors.agiloft.connector import AgiloftConnector

        return AgiloftConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AgiloftConnector", "plugin"]
