"""The Salesforce connector: sessions as records related to Cases, through the REST API."""
