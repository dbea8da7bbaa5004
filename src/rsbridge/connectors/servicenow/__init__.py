"""ServiceNow: the connector, its REST client and its session tables."""

from rsbridge.connectors.servicenow.connector import ServiceNowConnector

__all__ = ["ServiceNowConnector"]
