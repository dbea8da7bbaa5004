"""Waking idle workers when a job may have become claimable, instead of polling.

A store that can tell when jobs are queued or freed implements
:class:`~rsbridge.engine.store.base.WakesWorkers`: the SQLite and memory stores signal it
in-process after each such commit, the PostgreSQL store on every node through
LISTEN/NOTIFY. Workers still poll (slowly) for jobs whose backoff ends, and for writes
by other processes on one SQLite file.
"""

from __future__ import annotations

import asyncio

__all__ = ["Wakeup"]


class Wakeup:
    """A sticky signal: :meth:`notify` wakes every waiter, or the next one to wait.

    Sticky so that a job queued between a worker's empty claim and its wait is not
    missed: the wait then returns at once (a spurious wake-up costs one claim).
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def notify(self) -> None:
        """Wake the waiters (call on the event loop's thread)."""
        self._event.set()

    async def wait(self, within: float) -> bool:
        """Wait for :meth:`notify`, at most ``within`` seconds; True if notified."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # A store reopened under another event loop (asyncio.run again): an Event
            # is bound to the loop it was first awaited in.
            self._loop, self._event = loop, asyncio.Event()
        try:
            await asyncio.wait_for(self._event.wait(), within)
        except TimeoutError:
            return False
        self._event.clear()
        return True
