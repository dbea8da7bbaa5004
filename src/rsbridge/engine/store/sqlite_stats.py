"""Counting queries of the SQLite store: :meth:`SQLiteStore.job_stats` and
:meth:`SQLiteStore.last_failures` (metrics scrapes and ``rsbridge status``).

One aggregate per call. ``job_stats`` reads every job row (the table's size follows the
retention settings); ``last_failures`` reads the failed attempts only, through SQLite's
rule that a bare column next to ``MAX()`` comes from the row holding the maximum.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from rsbridge.engine.store.base import JobStats, LastFailure

__all__ = ["job_stats", "last_failures"]

_JOB_STATS: Final = """
SELECT appliance_id, integration,
       SUM(status = 'queued' AND run_after <= :now),
       SUM(status = 'queued' AND run_after > :now),
       SUM(status = 'running'),
       SUM(status = 'done'),
       SUM(status = 'dead'),
       MIN(CASE WHEN status IN ('queued', 'running') THEN created_at END),
       MAX(CASE WHEN status = 'done' THEN updated_at END)
FROM jobs
GROUP BY appliance_id, integration
ORDER BY appliance_id, integration"""

_LAST_FAILURES: Final = """
SELECT j.appliance_id, j.integration, MAX(a.finished_at), a.error
FROM attempts AS a JOIN jobs AS j ON j.id = a.job_id
WHERE a.outcome IN ('retry', 'dead')
GROUP BY j.appliance_id, j.integration
ORDER BY j.appliance_id, j.integration"""


def job_stats(conn: sqlite3.Connection, now: float) -> list[JobStats]:
    """Jobs counted per appliance and integration."""
    return [
        JobStats(
            appliance_id=row[0],
            integration=row[1],
            queued=row[2],
            waiting=row[3],
            running=row[4],
            done=row[5],
            dead=row[6],
            oldest_unfinished_at=row[7],
            last_done_at=row[8],
        )
        for row in conn.execute(_JOB_STATS, {"now": now})
    ]


def last_failures(conn: sqlite3.Connection) -> list[LastFailure]:
    """The newest RETRY or DEAD attempt per appliance and integration."""
    return [LastFailure(*row) for row in conn.execute(_LAST_FAILURES)]
