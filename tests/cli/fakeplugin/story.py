"""``rsbridge demo --target fake``: the fake package's story."""

from typing import Any

from rich.console import Console

from rsbridge.errors import ConfigurationError

told: list[dict[str, Any]] = []


def run_demo(*, sessions: int, seed: int, console: Console) -> None:
    """Record the call and print a line; 13 sessions is refused like a real story would."""
    if sessions == 13:
        raise ConfigurationError("the fake story refuses 13 sessions")
    told.append({"sessions": sessions, "seed": seed})
    console.print(f"fake story: {sessions} sessions, seed {seed}")
