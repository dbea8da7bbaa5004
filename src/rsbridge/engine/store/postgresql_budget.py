"""The shared appliance budget in the PostgreSQL store (see :mod:`rsbridge.engine.budget`).

One transaction per admission, serialised per account by a transaction-scoped advisory
lock: it counts the account's calls in each window, and either records the new call or
says how long to wait. Rows older than the longest window are deleted as it goes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from psycopg import AsyncCursor

__all__ = ["pause", "settle", "take"]

_LOCK: Final = "SELECT pg_advisory_xact_lock(%s)"
_PURGE: Final = "DELETE FROM budget_calls WHERE account = %s AND at <= %s"
# Per window: the calls in it, and the oldest of them (what must age out first).
_WINDOW: Final = """
SELECT COUNT(*), MIN(at) FROM budget_calls WHERE account = %s AND at > %s"""
# The limit-th newest call in the window: once it ages out, there is room again.
_NTH_NEWEST: Final = """
SELECT at FROM budget_calls WHERE account = %s AND at > %s
ORDER BY at DESC OFFSET %s LIMIT 1"""
_PAUSED: Final = "SELECT until FROM budget_pauses WHERE account = %s"
_INSERT: Final = "INSERT INTO budget_calls (account, at) VALUES (%s, %s) RETURNING id"
_SETTLE: Final = "UPDATE budget_calls SET at = GREATEST(at, %s) WHERE id = %s"
_PAUSE: Final = """
INSERT INTO budget_pauses (account, until) VALUES (%s, %s)
ON CONFLICT (account) DO UPDATE SET until = GREATEST(budget_pauses.until, excluded.until)"""


async def take(
    cur: AsyncCursor[tuple[Any, ...]],
    lock_key: int,
    account: str,
    windows: Sequence[tuple[float, int]],
    now: float,
) -> tuple[int | None, float]:
    """Admit one call of ``account`` at ``now`` if every ``(seconds, limit)`` window has
    room: ``(call id, 0)``; else ``(None, seconds to wait)``. Inside a transaction."""
    await cur.execute(_LOCK, (lock_key,))
    longest = max(span for span, _ in windows)
    await cur.execute(_PURGE, (account, now - longest))
    wait = 0.0
    await cur.execute(_PAUSED, (account,))
    row = await cur.fetchone()
    if row is not None:
        wait = max(wait, float(row[0]) - now)
    for span, limit in windows:
        await cur.execute(_WINDOW, (account, now - span))
        counted = await cur.fetchone()
        assert counted is not None
        if counted[0] >= limit:
            await cur.execute(_NTH_NEWEST, (account, now - span, limit - 1))
            nth = await cur.fetchone()
            oldest = float(nth[0]) if nth is not None else float(counted[1])
            wait = max(wait, oldest + span - now)
    if wait > 0:
        return None, wait
    await cur.execute(_INSERT, (account, now))
    inserted = await cur.fetchone()
    assert inserted is not None
    return int(inserted[0]), 0.0


async def settle(cur: AsyncCursor[tuple[Any, ...]], call_id: int, at: float) -> None:
    """Count call ``call_id`` from ``at`` (when its answer came) if that is later."""
    await cur.execute(_SETTLE, (at, call_id))


async def pause(cur: AsyncCursor[tuple[Any, ...]], account: str, until: float) -> None:
    """Hold every node's calls of ``account`` until ``until`` (the appliance said 429)."""
    await cur.execute(_PAUSE, (account, until))
