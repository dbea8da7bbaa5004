"""A simulated Remote Support appliance (OAuth, Command, Reporting APIs, outbound events)."""
