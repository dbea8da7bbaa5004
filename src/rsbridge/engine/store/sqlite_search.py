"""The console's queries on the SQLite store (SQL in :mod:`.console_sql`)."""

from __future__ import annotations

import sqlite3

from rsbridge.engine.store.base import ActivityBucket, SessionFilter, SessionRow
from rsbridge.engine.store.console_sql import (
    activity_sql,
    bucket_count,
    buckets_from_counts,
    search_params,
    search_sql,
    session_row,
)

__all__ = ["activity", "search_sessions"]

_DONE_SQL, _FAILED_SQL = activity_sql("sqlite")


def activity(
    conn: sqlite3.Connection, since: float, until: float, step: float
) -> list[ActivityBucket]:
    """Deliveries, failures and latency per bucket (see ``Store.activity``)."""
    count = bucket_count(since, until, step)
    params = {"since": since, "until": until, "step": step}
    done = conn.execute(_DONE_SQL, params).fetchall()
    failed = conn.execute(_FAILED_SQL, params).fetchall()
    return buckets_from_counts(since, step, count, done, failed)


def search_sessions(
    conn: sqlite3.Connection, selection: SessionFilter, now: float
) -> list[SessionRow]:
    """One page of sessions per integration (see ``Store.search_sessions``)."""
    rows = conn.execute(search_sql(selection, "sqlite"), search_params(selection, now))
    return [session_row(row) for row in rows.fetchall()]
