"""The console's queries on SQLite read through indexes (EXPLAIN QUERY PLAN), so that a
page of sessions or a chart costs the same on a store with a million events."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pytest

from rsbridge.engine.store.base import SessionFilter
from rsbridge.engine.store.console_sql import (
    LATENCY_BOUNDS,
    activity_sql,
    latency_bin,
    latency_bin_sql,
    search_params,
    search_sql,
)
from rsbridge.engine.store.sqlite import SQLiteStore


@pytest.fixture
async def conn(tmp_path: Path) -> sqlite3.Connection:
    store = SQLiteStore(tmp_path / "plans.db")
    await store.open()
    await store.close()
    return sqlite3.connect(tmp_path / "plans.db")


def _plan(conn: sqlite3.Connection, sql: str, params: Mapping[str, object]) -> list[str]:
    return [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


FILTERS = {
    "integration": (SessionFilter(integration="sn"), "SEARCH j USING INDEX jobs_by_integration"),
    "state": (SessionFilter(state="dead"), "SEARCH j USING INDEX jobs_by_status"),
    "lsid": (SessionFilter(lsid="L1"), "SEARCH j USING INDEX jobs_by_session"),
    "ticket": (SessionFilter(ticket="INC0010001"), "SEARCH t USING INDEX ledger_by_number"),
    # By the event's arrival: the events' time index, then each event's jobs.
    "time": (SessionFilter(since=1.0, until=2.0), "SEARCH j USING INDEX jobs_by_event"),
    "paged": (
        SessionFilter(integration="sn", before=500),
        "SEARCH j USING INDEX jobs_by_integration (integration=? AND id<?)",
    ),
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_each_session_filter_is_an_index_search(conn: sqlite3.Connection, name: str) -> None:
    selection, driving = FILTERS[name]
    plan = _plan(conn, search_sql(selection, "sqlite"), search_params(selection, 0.0))
    assert any(step.startswith(driving) for step in plan), plan
    assert not [step for step in plan if step.startswith("SCAN")], plan
    if name == "time":
        assert any("INDEX events_by_received (received_at>? AND received_at<?)" in s for s in plan)
    # Every per-row lookup (state, newest job, last error, ticket) is a search too.
    lookups = [s for s in plan if s.startswith("SEARCH") and not s.startswith("SEARCH j ")]
    assert lookups and all("USING" in s for s in lookups), plan


def test_the_unfiltered_search_walks_the_newest_jobs_only(conn: sqlite3.Connection) -> None:
    plan = _plan(conn, search_sql(SessionFilter(), "sqlite"), search_params(SessionFilter(), 0.0))
    # The table in id order, newest first, stopped by LIMIT: no sort of the whole table.
    assert plan[0] == "SCAN j"
    assert not [s for s in plan if s.startswith("SCAN") and s != "SCAN j"], plan
    top_level_sorts = [i for i, s in enumerate(plan) if s == "USE TEMP B-TREE FOR ORDER BY"]
    assert all(plan[i - 1].startswith("SEARCH l ") for i in top_level_sorts), plan


def test_the_activity_aggregates_read_the_time_indexes(conn: sqlite3.Connection) -> None:
    done, failed = activity_sql("sqlite")
    params = {"since": 0.0, "until": 1.0, "step": 1.0}
    assert "SEARCH jobs USING INDEX jobs_done_by_time" in _plan(conn, done, params)[0]
    assert "SEARCH attempts USING INDEX attempts_failed_by_time" in _plan(conn, failed, params)[0]


def test_the_sql_latency_bins_are_the_memory_stores(conn: sqlite3.Connection) -> None:
    # Both sides of every bound, and a spread: the SQL CASE tree and latency_bin agree, so
    # every backend draws the same chart from the same jobs.
    values = [0.0, 1e-4, 1e7, *LATENCY_BOUNDS, *(b * 0.999 for b in LATENCY_BOUNDS)]
    values += [0.003 * 1.07**k for k in range(300)]
    statement = f"SELECT {latency_bin_sql(':d')}"
    for value in values:
        (index,) = conn.execute(statement, {"d": value}).fetchone()
        assert index == latency_bin(value), value
