"""Salesforce: the session objects, the org-side metadata package and (next) the connector."""
