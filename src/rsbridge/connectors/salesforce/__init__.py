"""Salesforce: the connector, its REST client, the session objects and the org-side package.

:data:`plugin` is what the ``rsbridge.connectors`` entry point names: the connector, the
``rsbridge salesforce`` commands, ``rsbridge sim salesforce`` and the demo story. The
connector class is imported on first use so that reading the plugin stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rsbridge.connectors.plugin import ConnectorPlugin, Hook

if TYPE_CHECKING:
    from rsbridge.connectors.salesforce.connector import SalesforceConnector

plugin = ConnectorPlugin(
    connector="rsbridge.connectors.salesforce.connector:SalesforceConnector",
    commands=Hook(
        "rsbridge.connectors.salesforce.commands:salesforce_app",
        "Salesforce set-up helpers.",
    ),
    simulator=Hook(
        "rsbridge.sim.salesforce.cli:serve",
        "Serve a simulated Salesforce org (OAuth, SOAP login, REST, SOQL, composite).",
    ),
    demo=Hook(
        "rsbridge.connectors.salesforce.demo:run_demo",
        "Keys from Cases, auto-create on join, every event twice, once-only records and comments.",
    ),
)


def __getattr__(name: str) -> object:
    # Lazy: importing the connector pulls in httpx and pydantic models.
    if name == "SalesforceConnector":
        from rsbridge.connectors.salesforce.connector import SalesforceConnector

        return SalesforceConnector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SalesforceConnector", "plugin"]
