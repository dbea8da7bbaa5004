"""Retry delays: exponential, capped, with jitter; shared by workers and connectors."""

from __future__ import annotations

import random


def backoff(
    failures: int,
    *,
    base: float,
    cap: float,
    rng: random.Random | None = None,
    at_least: float | None = None,
) -> float:
    """Delay before retry number ``failures + 1``: exponential, capped, with jitter.

    The jitter (uniform between half and all of the exponential step) spreads the retries
    of many calls that failed together, e.g. during a peer's outage. ``at_least`` is a
    peer's own hint (``Retry-After``), which always wins over a shorter delay.
    """
    step = min(cap, base * (2.0**failures))
    delay = (rng or random).uniform(step / 2, step)
    return max(delay, at_least or 0.0)
