"""Tests of the simulated ServiceNow instance (rsbridge.sim.servicenow)."""
