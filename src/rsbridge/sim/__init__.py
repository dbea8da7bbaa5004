"""Simulated peers: real HTTP servers that behave like the appliance and ticketing systems."""
