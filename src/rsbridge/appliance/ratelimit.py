"""Client-side rate limiting for one appliance API account.

The appliance allows 20 requests per second and 15,000 per hour per API account.
Sliding windows (a deque of recent request times per window) keep us under both
exactly; a token bucket would allow up to twice the hourly budget inside one rolling
hour. A 429 from the appliance pauses every caller until its ``Retry-After``.

The appliance counts a request when it arrives, which is some time after we send it
and by a varying amount (a burst of requests is handled one after the other). So a
call's place in the window is moved to when its response arrived
(:meth:`SlidingWindowLimiter.settle`): the appliance has certainly counted it by then,
and a later call admitted one window after that cannot land in the same window there.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class Slot:
    """One admitted call; ``at`` is when it counts for the windows."""

    at: float


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Request budget of one API account (the appliance's documented defaults)."""

    per_second: int = 20
    per_hour: int = 15_000


DEFAULT_RATE_LIMITS = RateLimits()


class Limiter(Protocol):
    """What the appliance client needs of a limiter (this process's, or one shared by
    every node through the store: :class:`rsbridge.engine.budget.SharedLimiter`)."""

    on_wait: Callable[[float], None] | None
    """Told each wait before it is slept (the rate-limit metrics)."""

    def delay(self) -> float:
        """Seconds until the next call would be admitted, as far as known now."""

    async def acquire(self) -> Slot:
        """Wait until a call is allowed, then record it."""

    def settle(self, slot: Slot) -> None:
        """The call of ``slot`` got its answer (or failed): count it from now on."""

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (the appliance answered 429)."""


class SlidingWindowLimiter:
    """Admits at most ``limit`` calls in any ``window`` seconds, for every window given.

    ``on_wait`` is told each wait before it is slept (metrics).
    """

    def __init__(
        self,
        limits: RateLimits = DEFAULT_RATE_LIMITS,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._windows = [
            (1.0, limits.per_second, deque[Slot]()),
            (3600.0, limits.per_hour, deque[Slot]()),
        ]
        self._clock = clock
        self._sleep = sleep
        self.on_wait = on_wait
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def delay(self) -> float:
        """Seconds until the next call would be admitted (0 when it can go now)."""
        now = self._clock()
        wait = max(0.0, self._paused_until - now)
        for span, limit, stamps in self._windows:
            # Settled slots may be later than the ones behind them: waiting for the
            # first in line is then longer than needed, never too short.
            while stamps and stamps[0].at <= now - span:
                stamps.popleft()
            if len(stamps) >= limit:
                wait = max(wait, stamps[0].at + span - now)
        return wait

    async def acquire(self) -> Slot:
        """Wait until a call is allowed under every window, then record it."""
        async with self._lock:  # FIFO among waiters, and no double-booking of a slot
            while (wait := self.delay()) > 0:
                if self.on_wait is not None:
                    self.on_wait(wait)
                await self._sleep(wait)
            slot = Slot(self._clock())
            for _span, _limit, stamps in self._windows:
                stamps.append(slot)
            return slot

    def settle(self, slot: Slot) -> None:
        """The call of ``slot`` got its answer (or failed): count it from now on."""
        slot.at = max(slot.at, self._clock())

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` (the appliance answered 429)."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
