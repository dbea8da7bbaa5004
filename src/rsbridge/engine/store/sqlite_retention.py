"""Retention in the SQLite store: which rows :meth:`SQLiteStore.prune` removes, and how.

Each step runs as one operation of the store's writer (one transaction, shared with the
intake's writes of the same group), so a step is kept small: at most ``limit`` events
with their jobs and attempts, and the ledger entries of at most ``limit`` sessions. Old
rows are found through ``events_by_received`` and ``ledger_by_created`` (migration
0002), never by reading a whole table.

Freed pages stay in the file and are reused by new rows: the file stops growing at the
size the retention settings allow rather than shrinking. ``auto_vacuum = INCREMENTAL``
would hand pages back to the file system, but it cannot be turned on for an existing
database without a full ``VACUUM`` (which rewrites the file under an exclusive lock,
stopping the intake), and it costs every write some bookkeeping. docs/configuration.md
(Retention) says how to ``VACUUM`` by hand, with the engine stopped, after a one-off
clean-up.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Final

from rsbridge.engine.store.base import PruneCounts, RetentionPolicy

__all__ = ["count_prunable", "prune_step"]

# An event is finished when no job of it is queued or running; it finished at the
# latest of its reception and its jobs' last change. Its cut-off: dead_before when a
# job of it is a dead letter (NULL keeps it: a comparison with NULL is never true),
# finished_before otherwise. Oldest first, walking events_by_received from the oldest.
_PRUNABLE_EVENTS: Final = """
SELECT e.id FROM events AS e INDEXED BY events_by_received
WHERE e.received_at < :horizon
  AND NOT EXISTS (SELECT 1 FROM jobs AS j
                  WHERE j.event_id = e.id AND j.status IN ('queued', 'running'))
  AND MAX(e.received_at, COALESCE((SELECT MAX(j.updated_at) FROM jobs AS j
                                   WHERE j.event_id = e.id), e.received_at))
      < CASE WHEN EXISTS (SELECT 1 FROM jobs AS j
                          WHERE j.event_id = e.id AND j.status = 'dead')
             THEN :dead_before ELSE :finished_before END
ORDER BY e.received_at
LIMIT :limit"""

# Sessions whose ledger entries were all recorded before ledger_before and of which no
# event is stored (``{leaving}`` leaves out events about to go, for counting).
_PRUNABLE_SESSIONS: Final = """
SELECT DISTINCT l.appliance_id, l.lsid FROM ledger AS l INDEXED BY ledger_by_created
WHERE l.created_at < :ledger_before
  AND NOT EXISTS (SELECT 1 FROM ledger AS n
                  WHERE n.appliance_id = l.appliance_id AND n.lsid = l.lsid
                    AND n.created_at >= :ledger_before)
  AND NOT EXISTS (SELECT 1 FROM events AS e
                  WHERE e.lsid = l.lsid AND e.appliance_id = l.appliance_id{leaving})
LIMIT :limit"""

_DELETE_ATTEMPTS: Final = (
    "DELETE FROM attempts WHERE job_id IN (SELECT id FROM jobs WHERE event_id = ?)"
)
_DELETE_JOBS: Final = "DELETE FROM jobs WHERE event_id = ?"
_DELETE_EVENT: Final = "DELETE FROM events WHERE id = ?"
_DELETE_SESSION_LEDGER: Final = "DELETE FROM ledger WHERE appliance_id = ? AND lsid = ?"

_COUNT_FOR_EVENTS: Final = """
WITH gone (id) AS ({events})
SELECT (SELECT COUNT(*) FROM gone),
       (SELECT COUNT(*) FROM jobs WHERE event_id IN gone),
       (SELECT COUNT(*) FROM attempts
        WHERE job_id IN (SELECT id FROM jobs WHERE event_id IN gone))"""
_COUNT_LEDGER: Final = """
WITH gone (id) AS ({events}), sessions (appliance_id, lsid) AS ({sessions})
SELECT COUNT(*) FROM ledger AS l
WHERE (l.appliance_id, l.lsid) IN sessions"""


def _params(policy: RetentionPolicy, limit: int) -> dict[str, Any]:
    cutoffs = [c for c in (policy.finished_before, policy.dead_before) if c is not None]
    return {
        "horizon": max(cutoffs),
        "finished_before": policy.finished_before,
        "dead_before": policy.dead_before,
        "ledger_before": policy.ledger_before,
        "limit": limit,
    }


def prune_step(conn: sqlite3.Connection, policy: RetentionPolicy, limit: int) -> PruneCounts:
    """Remove up to ``limit`` events (jobs, attempts) and ``limit`` sessions' ledger entries.

    Runs inside the writer's transaction: the selection and the deletions see one state.
    """
    params = _params(policy, max(limit, 0))
    ids = [(row[0],) for row in conn.execute(_PRUNABLE_EVENTS, params).fetchall()]
    attempts = conn.executemany(_DELETE_ATTEMPTS, ids).rowcount if ids else 0
    jobs = conn.executemany(_DELETE_JOBS, ids).rowcount if ids else 0
    events = conn.executemany(_DELETE_EVENT, ids).rowcount if ids else 0
    ledger = 0
    if policy.ledger_before is not None:
        # After the events: a session whose last event went just now qualifies.
        sql = _PRUNABLE_SESSIONS.format(leaving="")
        sessions = conn.execute(sql, params).fetchall()
        if sessions:
            ledger = conn.executemany(_DELETE_SESSION_LEDGER, sessions).rowcount
    return PruneCounts(events, jobs, attempts, ledger)


def count_prunable(conn: sqlite3.Connection, policy: RetentionPolicy) -> PruneCounts:
    """What :func:`prune_step` would remove, repeated until nothing is left; a read."""
    params = _params(policy, -1)  # LIMIT -1: no limit
    events = _PRUNABLE_EVENTS
    events_count, jobs, attempts = conn.execute(
        _COUNT_FOR_EVENTS.format(events=events), params
    ).fetchone()
    ledger = 0
    if policy.ledger_before is not None:
        sessions = _PRUNABLE_SESSIONS.format(leaving=" AND e.id NOT IN gone")
        sql = _COUNT_LEDGER.format(events=events, sessions=sessions)
        ledger = conn.execute(sql, params).fetchone()[0]
    return PruneCounts(events_count, jobs, attempts, ledger)
