"""Ticketing connectors: the contract (base), the registry, and built-in connectors."""
