"""The engine: intake, durable store, workers, pollers, rendering."""
