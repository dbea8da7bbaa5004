"""The engine's HTTP face: intake routes and the health endpoint."""
