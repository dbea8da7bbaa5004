"""The console's queries (:meth:`Store.activity`, :meth:`Store.search_sessions`), shared by
the SQL backends and mirrored by the memory store.

``activity`` aggregates in the database: done jobs are counted per time bucket and
latency bin (a histogram, since SQLite has no percentile function), failed attempts per
bucket; at most ``buckets x bins`` rows come back, whatever the number of jobs. The
percentiles are then read off the histogram (:func:`percentile`): each bin spans a factor
of sqrt(2), and a bin's value is its geometric middle.

``search_sessions`` pages over jobs newest first and keeps one job per session and
integration (its newest, of the state searched for); the state of the row is the rank of
its most active job (:data:`STATE_RANK`). Every condition is an indexed lookup (migration
0003): the session's jobs by ``(lsid, id)``, jobs by integration, by status, by their
event's arrival, ledger entries by ticket id and by ticket number. Only one of these indexes
(jobs by integration) is written by the intake.

SQL is written once with ``:name`` parameters; :func:`for_postgresql` turns them into
psycopg's ``%(name)s``. The few spots where the dialects differ are chosen by ``dialect``.
"""

# The statements are assembled from this module's constants only; every value is a bound
# parameter.
# ruff: noqa: S608

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal

from rsbridge.engine.store.base import (
    ActivityBucket,
    Job,
    JobStatus,
    LedgerEntry,
    SessionFilter,
    SessionRow,
    SessionState,
)

__all__ = [
    "LATENCY_BOUNDS",
    "MAX_BUCKETS",
    "STATE_RANK",
    "activity_sql",
    "bucket_count",
    "buckets_from_counts",
    "for_postgresql",
    "job_rank",
    "latency_bin",
    "latency_bin_sql",
    "percentile",
    "search_params",
    "search_sql",
    "session_row",
]

Dialect = Literal["sqlite", "postgresql"]

MAX_BUCKETS: Final = 1000
"""Most buckets one :meth:`Store.activity` call may ask for."""

_RATIO: Final = math.sqrt(2)
LATENCY_BOUNDS: Final[tuple[float, ...]] = tuple(0.005 * _RATIO**k for k in range(50))
"""Upper bounds (seconds) of the latency bins: 5 ms to about 46 hours, sqrt(2) apart; a
last bin holds everything longer."""

STATE_RANK: Final[dict[SessionState, int]] = {
    "skipped": 0,
    "done": 1,
    "dead": 2,
    "waiting": 3,
    "queued": 4,
    "running": 5,
}
"""A job's weight in its session's state: the highest of the session's jobs wins."""
_RANK_STATE: Final = {rank: state for state, rank in STATE_RANK.items()}

# The job status a row of each state is found by (its newest job of that status).
_DRIVING_STATUS: Final[dict[SessionState, str]] = {
    "queued": "queued",
    "waiting": "queued",
    "running": "running",
    "dead": "dead",
    "done": "done",
    "skipped": "done",
}

SKIPPED_PREFIX: Final = "skipped:"
"""How the worker marks a done job that skipped its session (see ``worker._attempt``)."""


# --- activity -----------------------------------------------------------------------


def bucket_count(since: float, until: float, step: float) -> int:
    """How many buckets of ``step`` cover ``[since, until)``; ValueError past the limit."""
    if not step > 0 or not until > since:
        raise ValueError("activity needs a positive step and until after since")
    count = math.ceil((until - since) / step)
    if count > MAX_BUCKETS:
        raise ValueError(f"at most {MAX_BUCKETS} buckets, not {count}")
    return count


def latency_bin(seconds: float) -> int:
    """The histogram bin of a latency (the same as the SQL ``CASE`` of :func:`latency_bin_sql`)."""
    for index, bound in enumerate(LATENCY_BOUNDS):
        if seconds < bound:
            return index
    return len(LATENCY_BOUNDS)


def _bin_value(index: int) -> float:
    """The value a bin stands for: the geometric middle of its bounds."""
    if index == 0:
        return LATENCY_BOUNDS[0] / _RATIO
    if index >= len(LATENCY_BOUNDS):
        return LATENCY_BOUNDS[-1]
    return math.sqrt(LATENCY_BOUNDS[index - 1] * LATENCY_BOUNDS[index])


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """The ``fraction`` quantile (0.5: the median) of a latency histogram, or None if empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    wanted = max(1, math.ceil(fraction * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= wanted:
            return _bin_value(index)
    return _bin_value(max(histogram))  # pragma: no cover - the loop always returns


def buckets_from_counts(
    since: float,
    step: float,
    count: int,
    done: Iterable[tuple[int, int, int]],
    failed: Iterable[tuple[int, int]],
) -> list[ActivityBucket]:
    """Buckets from ``(bucket, latency bin, jobs)`` and ``(bucket, attempts)`` rows."""
    histograms: list[dict[int, int]] = [{} for _ in range(count)]
    failures = [0] * count
    for bucket, index, jobs in done:
        if 0 <= bucket < count:
            histograms[bucket][int(index)] = histograms[bucket].get(int(index), 0) + int(jobs)
    for bucket, attempts in failed:
        if 0 <= bucket < count:
            failures[bucket] += int(attempts)
    return [
        ActivityBucket(
            start=since + i * step,
            delivered=sum(histograms[i].values()),
            failures=failures[i],
            latency_p50=percentile(histograms[i], 0.5),
            latency_p95=percentile(histograms[i], 0.95),
        )
        for i in range(count)
    ]


def latency_bin_sql(expression: str, low: int = 0, high: int = len(LATENCY_BOUNDS)) -> str:
    """The bin of ``expression`` among bins ``low..high`` as a balanced tree of ``CASE``
    (six comparisons per row instead of up to fifty: the chart reads every done job of its
    period)."""
    if low == high:
        return str(low)
    middle = (low + high) // 2  # bins low..middle lie below LATENCY_BOUNDS[middle]
    below = latency_bin_sql(expression, low, middle)
    above = latency_bin_sql(expression, middle + 1, high)
    return f"CASE WHEN {expression} < {LATENCY_BOUNDS[middle]!r} THEN {below} ELSE {above} END"


def _done_jobs(dialect: Dialect) -> str:
    # Without statistics SQLite prefers jobs_by_status, which holds every done job ever.
    return "jobs INDEXED BY jobs_done_by_time" if dialect == "sqlite" else "jobs"


def _bucket(column: str, dialect: Dialect) -> str:
    # Non-negative by the WHERE clause: SQLite's CAST truncates, PostgreSQL's rounds.
    if dialect == "sqlite":
        return f"CAST(({column} - :since) / :step AS INTEGER)"
    return f"CAST(floor(({column} - :since) / :step) AS integer)"


def activity_sql(dialect: Dialect) -> tuple[str, str]:
    """The two aggregates of :meth:`Store.activity`: done jobs per bucket and latency bin,
    failed attempts per bucket (``:since``, ``:until``, ``:step``)."""
    done = f"""
SELECT {_bucket("updated_at", dialect)} AS bucket,
       {latency_bin_sql("(updated_at - created_at)")} AS bin, COUNT(*)
FROM {_done_jobs(dialect)}
WHERE status = 'done' AND updated_at >= :since AND updated_at < :until
  AND (last_error IS NULL OR substr(last_error, 1, 8) <> '{SKIPPED_PREFIX}')
GROUP BY 1, 2"""
    failed = f"""
SELECT {_bucket("finished_at", dialect)} AS bucket, COUNT(*)
FROM attempts
WHERE outcome IN ('retry', 'dead') AND finished_at >= :since AND finished_at < :until
GROUP BY 1"""
    return done, failed


# --- sessions -----------------------------------------------------------------------

_SAME_SESSION: Final = (
    "{a}.appliance_id = j.appliance_id AND {a}.lsid = j.lsid AND {a}.integration = j.integration"
)


def _session_jobs(alias: str, dialect: Dialect) -> str:
    # SQLite plans without statistics (the store never runs ANALYZE) and could take the
    # integration's index for these lookups: name the session's index.
    hint = " INDEXED BY jobs_by_session" if dialect == "sqlite" else ""
    return f"jobs AS {alias}{hint} WHERE {_SAME_SESSION.format(a=alias)}"


def _rank(dialect: Dialect) -> str:
    return f"""(SELECT MAX(CASE WHEN g.status = 'running' THEN 5
                    WHEN g.status = 'queued' AND g.run_after <= :now THEN 4
                    WHEN g.status = 'queued' THEN 3
                    WHEN g.status = 'dead' THEN 2
                    WHEN substr(COALESCE(g.last_error, ''), 1, 8) = '{SKIPPED_PREFIX}' THEN 0
                    ELSE 1 END)
        FROM {_session_jobs("g", dialect)})"""


def _number(dialect: Dialect, alias: str) -> str:
    if dialect == "sqlite":
        return f"json_extract({alias}.detail, '$.number')"
    return f"({alias}.detail ->> 'number')"


def search_sql(selection: SessionFilter, dialect: Dialect) -> str:
    """The statement of :meth:`Store.search_sessions` for ``selection`` (only the
    conditions it sets; parameters from :func:`search_params`)."""
    terms = ["j.lsid IS NOT NULL"]
    newer = f"{_session_jobs('n', dialect)} AND n.id > j.id"
    if selection.state is not None:
        terms.append("j.status = :status")
        newer += " AND n.status = j.status"
        terms.append(f"{_rank(dialect)} = :rank")
    if selection.integration is not None:
        terms.append("j.integration = :integration")
    if selection.lsid is not None:
        terms.append("j.lsid = :lsid")
    if selection.ticket is not None:
        # Driven by the ledger's indexes: the lsids that landed on the ticket, then the
        # exact session and integration.
        terms.append(
            "j.lsid IN (SELECT lsid FROM ledger WHERE ticket_id = :ticket UNION "
            f"SELECT lsid FROM ledger AS t WHERE {_number(dialect, 't')} = :ticket)"
        )
        terms.append(
            f"EXISTS (SELECT 1 FROM ledger AS m WHERE {_SAME_SESSION.format(a='m')} "
            f"AND (m.ticket_id = :ticket OR {_number(dialect, 'm')} = :ticket))"
        )
    if selection.since is not None or selection.until is not None:
        # By the event's arrival, through the events' time index and jobs_by_event (no
        # index of its own on jobs: the intake writes every job).
        window = " AND ".join(
            t
            for t, v in (
                ("received_at >= :since", selection.since),
                ("received_at < :until", selection.until),
            )
            if v is not None
        )
        terms.append(f"j.event_id IN (SELECT id FROM events WHERE {window})")
    if selection.before is not None:
        terms.append("j.id < :before")
    terms.append(f"NOT EXISTS (SELECT 1 FROM {newer})")
    # The first ticket the session landed on, and the first number the ledger holds for it.
    ticket = (
        "(SELECT {col} FROM ledger AS l WHERE l.appliance_id = j.appliance_id "
        "AND l.lsid = j.lsid AND l.integration = j.integration AND l.ticket_id <> '' {extra}"
        "ORDER BY l.created_at, l.event, l.effect LIMIT 1)"
    )
    number = _number(dialect, "l")
    error = (
        f"(SELECT e.last_error FROM {_session_jobs('e', dialect)} "
        "AND e.status <> 'done' AND e.last_error IS NOT NULL ORDER BY e.id DESC LIMIT 1)"
    )
    return f"""
SELECT j.id, j.appliance_id, j.lsid, j.integration, j.created_at, {_rank(dialect)}, {error},
       {ticket.format(col="l.ticket_id", extra="")},
       {ticket.format(col=number, extra=f"AND {number} IS NOT NULL ")}
FROM jobs AS j
WHERE {" AND ".join(terms)}
ORDER BY j.id DESC
LIMIT :limit"""


def search_params(selection: SessionFilter, now: float) -> dict[str, Any]:
    """The parameters of :func:`search_sql`."""
    state = selection.state
    return {
        "now": now,
        "status": None if state is None else _DRIVING_STATUS[state],
        "rank": None if state is None else STATE_RANK[state],
        "integration": selection.integration,
        "lsid": selection.lsid,
        "ticket": selection.ticket,
        "since": selection.since,
        "until": selection.until,
        "before": selection.before,
        "limit": max(0, selection.limit),
    }


def session_row(row: Sequence[Any]) -> SessionRow:
    """A :class:`SessionRow` from a row of :func:`search_sql`."""
    return SessionRow(
        key=int(row[0]),
        appliance_id=row[1],
        lsid=row[2],
        integration=row[3],
        at=float(row[4]),
        state=_RANK_STATE[int(row[5])],
        last_error=row[6],
        ticket_id=row[7],
        ticket_number=None if row[8] is None else str(row[8]),
    )


_PARAM: Final = re.compile(r"(?<!:):([a-z_]+)")


def for_postgresql(statement: str) -> str:
    """``statement`` with psycopg's ``%(name)s`` parameters for ``:name``."""
    return _PARAM.sub(r"%(\1)s", statement)


# --- the memory store's mirror ------------------------------------------------------


def job_rank(job: Job, now: float) -> int:
    """A job's weight in its session's state (:data:`STATE_RANK`), as the SQL computes it."""
    if job.status is JobStatus.RUNNING:
        return STATE_RANK["running"]
    if job.status is JobStatus.QUEUED:
        return STATE_RANK["queued" if job.run_after <= now else "waiting"]
    if job.status is JobStatus.DEAD:
        return STATE_RANK["dead"]
    skipped = (job.last_error or "").startswith(SKIPPED_PREFIX)
    return STATE_RANK["skipped" if skipped else "done"]


def driving_status(state: SessionState) -> JobStatus:
    """The status of the job a row of ``state`` is found by."""
    return JobStatus(_DRIVING_STATUS[state])


def rank_state(rank: int) -> SessionState:
    """The state a rank stands for."""
    return _RANK_STATE[rank]


def activity_of(
    jobs: Iterable[Job], failed_at: Iterable[float], since: float, until: float, step: float
) -> list[ActivityBucket]:
    """:meth:`Store.activity` over jobs and the finish times of failed attempts, in memory
    (the memory store's answer, binned as the SQL bins)."""
    count = bucket_count(since, until, step)
    done: dict[tuple[int, int], int] = {}
    for job in jobs:
        skipped = (job.last_error or "").startswith(SKIPPED_PREFIX)
        if job.status is JobStatus.DONE and not skipped and since <= job.updated_at < until:
            key = (
                int((job.updated_at - since) // step),
                latency_bin(job.updated_at - job.created_at),
            )
            done[key] = done.get(key, 0) + 1
    failed: dict[int, int] = {}
    for at in failed_at:
        if since <= at < until:
            bucket = int((at - since) // step)
            failed[bucket] = failed.get(bucket, 0) + 1
    return buckets_from_counts(
        since, step, count, ((b, k, n) for (b, k), n in done.items()), failed.items()
    )


def search_in(
    jobs: Sequence[Job],
    ledger: Iterable[LedgerEntry],
    received: Mapping[int, float],
    selection: SessionFilter,
    now: float,
) -> list[SessionRow]:
    """:meth:`Store.search_sessions` over every job and ledger entry, in memory
    (``received``: each event's arrival time, by event id)."""
    sessions: dict[tuple[str, str, str], list[Job]] = {}
    for job in jobs:
        if job.lsid is not None:
            sessions.setdefault((job.appliance_id, job.lsid, job.integration), []).append(job)
    tickets: dict[tuple[str, str, str], list[LedgerEntry]] = {}
    for entry in ledger:
        k = entry.key
        tickets.setdefault((k.appliance_id, k.lsid, k.integration), []).append(entry)
    state = selection.state
    rows: list[SessionRow] = []
    for key, group in sessions.items():
        rank = max(job_rank(j, now) for j in group)
        if state is not None:
            if rank != STATE_RANK[state]:
                continue
            group = [j for j in group if j.status is driving_status(state)]
            if not group:
                continue
        newest = max(group, key=lambda j: j.id)
        entries = tickets.get(key, [])
        if selection.ticket is not None and not any(
            e.ticket_id == selection.ticket or e.detail.get("number") == selection.ticket
            for e in entries
        ):
            continue
        if not _selected(newest, received.get(newest.event_id, newest.created_at), selection):
            continue
        errors = [
            j for j in sessions[key] if j.status is not JobStatus.DONE and j.last_error is not None
        ]
        landed = sorted(
            (e for e in entries if e.ticket_id),
            key=lambda e: (e.created_at, e.key.event, e.key.effect),
        )
        numbered = [e.detail["number"] for e in landed if e.detail.get("number")]
        rows.append(
            SessionRow(
                key=newest.id,
                appliance_id=key[0],
                lsid=key[1],
                integration=key[2],
                state=rank_state(rank),
                at=newest.created_at,
                last_error=max(errors, key=lambda j: j.id).last_error if errors else None,
                ticket_id=landed[0].ticket_id if landed else None,
                ticket_number=numbered[0] if numbered else None,
            )
        )
    rows.sort(key=lambda r: r.key, reverse=True)
    return rows[: max(0, selection.limit)]


def _selected(job: Job, received: float, selection: SessionFilter) -> bool:
    return (
        (selection.integration is None or job.integration == selection.integration)
        and (selection.lsid is None or job.lsid == selection.lsid)
        and (selection.since is None or received >= selection.since)
        and (selection.until is None or received < selection.until)
        and (selection.before is None or job.id < selection.before)
    )
