"""The appliance's request budget shared by every node on one store.

The appliance allows 20 requests/s and 15,000/h per API account, whatever number of
nodes call it. On a store several nodes share (PostgreSQL), :class:`SharedLimiter`
replaces each appliance client's own limiter: every call is admitted by the store, which
counts the account's calls of all nodes in both windows (see
:mod:`rsbridge.engine.store.postgresql_budget`), and a 429 pauses all of them.

Times are wall-clock (``time.time``), as they are compared between machines: the nodes'
clocks must agree (NTP), as they must for leases.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from rsbridge.appliance.ratelimit import DEFAULT_RATE_LIMITS, RateLimits, Slot

__all__ = ["HoldsTokenSlots", "SharedLimiter", "SharesBudgets", "budget_account"]

log = logging.getLogger(__name__)


@runtime_checkable
class SharesBudgets(Protocol):
    """A store that keeps request budgets for every node (PostgreSQLStore)."""

    async def take_budget(
        self, account: str, windows: Sequence[tuple[float, int]], now: float
    ) -> tuple[int | None, float]:
        """Admit a call (its id, 0) or say how long to wait (None, seconds)."""

    async def settle_budget(self, call_id: int, at: float) -> None:
        """Count a call from ``at`` on."""

    async def pause_budget(self, account: str, until: float) -> None:
        """Hold the account's calls until ``until``."""


@runtime_checkable
class HoldsTokenSlots(Protocol):
    """A store that counts the processes using an API account (PostgreSQLStore)."""

    async def take_token_slot(self, account: str, slots: int) -> int | None:
        """Hold one of ``slots`` slots of ``account`` while this process lives: its
        number, or None when all are held."""

    async def keep_token_slots(self) -> dict[str, int | None]:
        """Take the slots taken before again if the store lost them (its connection
        dropped): the slot held now per account, None when all are held by others."""


def budget_account(host: str, client_id: str) -> str:
    """The budget's key for an API account: the appliance and the client id, hashed
    (the store needs no readable identifier)."""
    return hashlib.sha256(f"{host.lower()}\0{client_id}".encode()).hexdigest()[:32]


@dataclass(slots=True)
class SharedSlot(Slot):
    """A call admitted by the store, with its row there."""

    call_id: int = 0


class SharedLimiter:
    """A :class:`~rsbridge.appliance.ratelimit.Limiter` whose windows live in the store."""

    def __init__(
        self,
        store: SharesBudgets,
        account: str,
        limits: RateLimits = DEFAULT_RATE_LIMITS,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_wait: Callable[[float], None] | None = None,
    ) -> None:
        self._store = store
        self.on_wait = on_wait
        """Told each wait before it is slept (the rate-limit metrics), as the local
        limiter's."""
        self._account = account
        self._windows = ((1.0, limits.per_second), (3600.0, limits.per_hour))
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()  # this node's callers in turn (FIFO)
        self._blocked_until = 0.0  # the last wait the store gave, or a 429 here
        self._writes: set[asyncio.Task[None]] = set()

    def delay(self) -> float:
        """Seconds until a call could go, as far as this node knows (the last refusal)."""
        return max(0.0, self._blocked_until - self._clock())

    async def acquire(self) -> Slot:
        """Wait until the store admits a call for the account, then return its slot."""
        async with self._lock:
            while True:
                now = self._clock()
                call_id, wait = await self._store.take_budget(self._account, self._windows, now)
                if call_id is not None:
                    return SharedSlot(now, call_id)
                self._blocked_until = now + wait
                wait = max(wait, 0.001)
                if self.on_wait is not None:
                    self.on_wait(wait)
                await self._sleep(wait)

    def settle(self, slot: Slot) -> None:
        """Count the call from its answer on, in the store (written in the background)."""
        slot.at = max(slot.at, self._clock())
        if isinstance(slot, SharedSlot):
            self._spawn(self._store.settle_budget(slot.call_id, slot.at))

    def pause(self, seconds: float) -> None:
        """Hold this node's and every other node's calls for ``seconds`` (a 429)."""
        until = self._clock() + seconds
        self._blocked_until = max(self._blocked_until, until)
        self._spawn(self._store.pause_budget(self._account, until))

    def _spawn(self, write: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await write
            except Exception as exc:
                # The call stays counted from when it was sent (settle) or only this
                # node pauses (429): logged, not raised into the appliance call.
                log.warning("could not update the shared appliance budget: %s", exc)

        task = asyncio.ensure_future(run())
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
