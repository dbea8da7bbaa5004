"""BMC Remedy / Helix ITSM: the connector, its AR REST client and the session forms.

:data:`plugin` is what the ``rsbridge.connectors`` entry point names: the connector, the
``rsbridge remedy`` commands, ``rsbridge sim remedy`` and the demo story. The connector
class is imported on first use so that reading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsbridge.connectors.plugin import ConnectorPlugin, Hook

if TYPE_CHECKING:
    from rsbridge.connectors.remedy.connector import RemedyConnector

plugin = ConnectorPlugin(
    connector="rsbridge.connectors.remedy.connector:RemedyConnector",
    commands=Hook(
        "rsbridge.connectors.remedy.commands:remedy_app",
        "BMC Remedy / Helix ITSM set-up helpers.",
    ),
    simulator=Hook(
        "rsbridge.sim.remedy.cli:serve",
        "Serve a simulated AR System server (JWT login, the entry API, the ITSM forms).",
    ),
    demo=Hook(
        "rsbridge.connectors.remedy.demo:run_demo",
        "Keys from incidents, every event twice, once-only session entries and work info.",
    ),
)


def __getattr__(name: str) -> object:
    # Lazy: importing the connector pulls in httpx and pydantic models.
    if name == "RemedyConnector":
        from rsbridge.connectors.remedy.connector import RemedyConnector

        return RemedyConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["RemedyConnector", "plugin"]
