"""ServiceNow: the connector, its REST client and its session tables.

:data:`plugin` is what the ``rsbridge.connectors`` entry point names: the connector, the
``rsbridge servicenow`` commands, ``rsbridge sim servicenow`` and the demo story. The
connector class is imported on first use so that reading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsbridge.connectors.plugin import ConnectorPlugin, Hook

if TYPE_CHECKING:
    from rsbridge.connectors.servicenow.connector import ServiceNowConnector

plugin = ConnectorPlugin(
    connector="rsbridge.connectors.servicenow.connector:ServiceNowConnector",
    commands=Hook(
        "rsbridge.connectors.servicenow.commands:servicenow_app", "ServiceNow set-up helpers."
    ),
    simulator=Hook(
        "rsbridge.sim.servicenow.cli:servicenow",
        "Serve a simulated ServiceNow instance (OAuth, Table, Attachment and Batch APIs).",
    ),
    demo=Hook(
        "rsbridge.connectors.servicenow.demo:run_demo",
        "Keys from incidents, auto-create on join, every event twice, once-only delivery.",
    ),
)


def __getattr__(name: str) -> object:
    # Lazy: importing the connector pulls in httpx and pydantic models.
    if name == "ServiceNowConnector":
        from rsbridge.connectors.servicenow.connector import ServiceNowConnector

        return ServiceNowConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ServiceNowConnector", "plugin"]
