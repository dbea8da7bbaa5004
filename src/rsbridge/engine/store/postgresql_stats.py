"""Counting queries of the PostgreSQL store: :meth:`PostgreSQLStore.job_stats` and
:meth:`PostgreSQLStore.last_failures` (metrics scrapes and ``rsbridge status``).

The same figures as the SQLite store's (``sqlite_stats``): one aggregate over the jobs per
call, and for the last failures PostgreSQL's ``DISTINCT ON`` where SQLite relies on its
bare-column rule next to ``MAX()``.
"""

from __future__ import annotations

from typing import Any, Final

from rsbridge.engine.store.base import JobStats, LastFailure

__all__ = ["JOB_STATS", "LAST_FAILURES", "job_stats_from_rows", "last_failures_from_rows"]

JOB_STATS: Final = """
SELECT appliance_id, integration,
       COUNT(*) FILTER (WHERE status = 'queued' AND run_after <= %(now)s),
       COUNT(*) FILTER (WHERE status = 'queued' AND run_after > %(now)s),
       COUNT(*) FILTER (WHERE status = 'running'),
       COUNT(*) FILTER (WHERE status = 'done'),
       COUNT(*) FILTER (WHERE status = 'dead'),
       MIN(created_at) FILTER (WHERE status IN ('queued', 'running')),
       MAX(updated_at) FILTER (WHERE status = 'done')
FROM jobs
GROUP BY appliance_id, integration
ORDER BY appliance_id, integration"""

LAST_FAILURES: Final = """
SELECT DISTINCT ON (j.appliance_id, j.integration)
       j.appliance_id, j.integration, a.finished_at, a.error
FROM attempts AS a JOIN jobs AS j ON j.id = a.job_id
WHERE a.outcome IN ('retry', 'dead')
ORDER BY j.appliance_id, j.integration, a.finished_at DESC"""


def job_stats_from_rows(rows: list[tuple[Any, ...]]) -> list[JobStats]:
    """:data:`JOB_STATS` rows as :class:`JobStats`."""
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
        for row in rows
    ]


def last_failures_from_rows(rows: list[tuple[Any, ...]]) -> list[LastFailure]:
    """:data:`LAST_FAILURES` rows as :class:`LastFailure`."""
    return [LastFailure(*row) for row in rows]
