"""Retention in the PostgreSQL store: which rows :meth:`PostgreSQLStore.prune` removes.

The same rules as the SQLite store (:mod:`rsbridge.engine.store.sqlite_retention`), made
safe against other nodes writing meanwhile: the events chosen are locked (``FOR UPDATE
SKIP LOCKED``, so that a replay cannot queue a job for one, and two pruning nodes do not
wait for each other), then checked again in a new snapshot, and jobs are only deleted
when finished. A job re-queued concurrently (``retry_job``) makes the step fail on the
event's foreign key and roll back whole; the next step leaves that event alone.
"""

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncCursor

from rsbridge.engine.store.base import PruneCounts, RetentionPolicy

__all__ = ["count_prunable", "prune_step"]

# Finished (no job queued or running) before its cut-off: dead_before when a job of it is
# a dead letter (NULL keeps it), finished_before otherwise. Oldest first.
_PRUNABLE_EVENTS: Final = """
SELECT e.id FROM events AS e
WHERE e.received_at < %(horizon)s
  AND NOT EXISTS (SELECT 1 FROM jobs AS j
                  WHERE j.event_id = e.id AND j.status IN ('queued', 'running'))
  AND GREATEST(e.received_at, (SELECT MAX(j.updated_at) FROM jobs AS j
                               WHERE j.event_id = e.id))
      < CASE WHEN EXISTS (SELECT 1 FROM jobs AS j
                          WHERE j.event_id = e.id AND j.status = 'dead')
             THEN %(dead_before)s::double precision
             ELSE %(finished_before)s::double precision END
ORDER BY e.received_at
LIMIT %(limit)s"""
_LOCK_EVENTS: Final = (
    "SELECT id FROM events WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE SKIP LOCKED"
)
_STILL_FINISHED: Final = """
SELECT e.id FROM events AS e
WHERE e.id = ANY(%(ids)s)
  AND NOT EXISTS (SELECT 1 FROM jobs AS j
                  WHERE j.event_id = e.id AND j.status IN ('queued', 'running'))"""

_PRUNABLE_SESSIONS: Final = """
SELECT DISTINCT l.appliance_id, l.lsid FROM ledger AS l
WHERE l.created_at < %(ledger_before)s
  AND NOT EXISTS (SELECT 1 FROM ledger AS n
                  WHERE n.appliance_id = l.appliance_id AND n.lsid = l.lsid
                    AND n.created_at >= %(ledger_before)s)
  AND NOT EXISTS (SELECT 1 FROM events AS e
                  WHERE e.lsid = l.lsid AND e.appliance_id = l.appliance_id{leaving})
LIMIT %(limit)s"""

_DELETE_ATTEMPTS: Final = """
DELETE FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE event_id = ANY(%(ids)s))"""
_DELETE_JOBS: Final = (
    "DELETE FROM jobs WHERE event_id = ANY(%(ids)s) AND status IN ('done', 'dead')"
)
_DELETE_EVENTS: Final = "DELETE FROM events WHERE id = ANY(%(ids)s)"
_DELETE_SESSION_LEDGER: Final = "DELETE FROM ledger WHERE appliance_id = %s AND lsid = %s"

_COUNT_FOR_EVENTS: Final = """
WITH gone (id) AS ({events})
SELECT (SELECT COUNT(*) FROM gone),
       (SELECT COUNT(*) FROM jobs WHERE event_id IN (SELECT id FROM gone)),
       (SELECT COUNT(*) FROM attempts
        WHERE job_id IN (SELECT id FROM jobs WHERE event_id IN (SELECT id FROM gone)))"""
_COUNT_LEDGER: Final = """
WITH gone (id) AS ({events}), sessions (appliance_id, lsid) AS ({sessions})
SELECT COUNT(*) FROM ledger AS l
WHERE (l.appliance_id, l.lsid) IN (SELECT appliance_id, lsid FROM sessions)"""


def _params(policy: RetentionPolicy, limit: int | None) -> dict[str, Any]:
    cutoffs = [c for c in (policy.finished_before, policy.dead_before) if c is not None]
    return {
        "horizon": max(cutoffs),
        "finished_before": policy.finished_before,
        "dead_before": policy.dead_before,
        "ledger_before": policy.ledger_before,
        "limit": limit,  # LIMIT NULL: no limit
    }


async def prune_step(
    cur: AsyncCursor[tuple[Any, ...]], policy: RetentionPolicy, limit: int
) -> PruneCounts:
    """Remove up to ``limit`` events (jobs, attempts) and ``limit`` sessions' ledger entries.

    Runs inside the caller's transaction.
    """
    params = _params(policy, max(limit, 0))
    await cur.execute(_PRUNABLE_EVENTS, params)
    ids = [row[0] for row in await cur.fetchall()]
    events = jobs = attempts = 0
    if ids:
        await cur.execute(_LOCK_EVENTS, {"ids": ids})
        locked = [row[0] for row in await cur.fetchall()]
        await cur.execute(_STILL_FINISHED, {"ids": locked})
        gone = {"ids": [row[0] for row in await cur.fetchall()]}
        await cur.execute(_DELETE_ATTEMPTS, gone)
        attempts = cur.rowcount
        await cur.execute(_DELETE_JOBS, gone)
        jobs = cur.rowcount
        await cur.execute(_DELETE_EVENTS, gone)
        events = cur.rowcount
    ledger = 0
    if policy.ledger_before is not None:
        # After the events: a session whose last event went just now qualifies.
        await cur.execute(_PRUNABLE_SESSIONS.format(leaving=""), params)
        for appliance_id, lsid in await cur.fetchall():
            await cur.execute(_DELETE_SESSION_LEDGER, (appliance_id, lsid))
            ledger += cur.rowcount
    return PruneCounts(events, jobs, attempts, ledger)


async def count_prunable(cur: AsyncCursor[tuple[Any, ...]], policy: RetentionPolicy) -> PruneCounts:
    """What :func:`prune_step` would remove, repeated until nothing is left; a read."""
    params = _params(policy, None)
    await cur.execute(_COUNT_FOR_EVENTS.format(events=_PRUNABLE_EVENTS), params)
    row = await cur.fetchone()
    assert row is not None
    events, jobs, attempts = row
    ledger = 0
    if policy.ledger_before is not None:
        sessions = _PRUNABLE_SESSIONS.format(leaving=" AND e.id NOT IN (SELECT id FROM gone)")
        await cur.execute(_COUNT_LEDGER.format(events=_PRUNABLE_EVENTS, sessions=sessions), params)
        counted = await cur.fetchone()
        assert counted is not None
        ledger = counted[0]
    return PruneCounts(events, jobs, attempts, ledger)
