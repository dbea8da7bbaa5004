"""engine/fixing.py: what ``events retry --dead`` / ``events replay`` and the console's
dead-letter and replay pages share, on a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rsbridge.config import Config
from rsbridge.engine import fixing
from rsbridge.engine.fixing import parse_since, replay_session, retry_dead
from rsbridge.engine.store.base import (
    AttemptOutcome,
    Finish,
    JobFilter,
    JobSpec,
    JobStatus,
    Store,
)
from rsbridge.engine.store.sqlite import SQLiteStore
from tests.engine.conftest import engine_config
from tests.engine.store_contract import SURVEY, T0, event


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = SQLiteStore(tmp_path / "fixing.db")
    await opened.open()
    yield opened
    await opened.close()


async def die(store: Store, key: str, integration: str, at: float) -> int:
    """A job of ``integration`` that died at ``at``."""
    [job] = (await store.record_event(event(key), [JobSpec(integration)], now=at)).job_ids
    assert await store.claim("w", limit=1, lease=30, now=at)
    dead = Finish(AttemptOutcome.DEAD, error="down")
    assert await store.finish(job, "w", dead, started_at=at, now=at)
    return job


async def test_retry_dead_pages_through_every_match_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fixing, "RETRY_PAGE", 2)
    old = [await die(store, f"old{i}", "sn", T0) for i in range(2)]
    new = [await die(store, f"new{i}", "sn", T0 + 100) for i in range(3)]
    other = await die(store, "other", "audit", T0 + 100)

    assert await retry_dead(store, "sn", T0 + 50) == 3
    queued = await store.list_jobs(JobFilter(status=JobStatus.QUEUED, limit=50))
    assert sorted(j.id for j in queued) == new
    assert await retry_dead(store, None, None) == 3
    queued = await store.list_jobs(JobFilter(status=JobStatus.QUEUED, limit=50))
    assert sorted(j.id for j in queued) == sorted([*old, *new, other])
    assert await retry_dead(store, None, None) == 0


async def test_replay_session_queues_its_events_for_one_integration(
    store: Store, tmp_path: Path
) -> None:
    config: Config = engine_config(
        tmp_path,
        None,
        integrations=[
            {"name": "sn", "connector": "jsonl", "settings": {"path": str(tmp_path / "a")}},
            {
                "name": "other",
                "connector": "jsonl",
                "outbound_events": ["support_conference_end"],
                "settings": {"path": str(tmp_path / "b")},
            },
        ],
    )
    end = await store.record_event(event("e", appliance_id="default"), [], now=T0)
    survey = await store.record_event(
        event("s", appliance_id="default", event_type=SURVEY), [], now=T0
    )
    await store.record_event(event("x", appliance_id="default", lsid="L2"), [], now=T0)

    created = await replay_session(config, store, "default", "L1", "sn")
    jobs = [await store.get_job(j) for j in created]
    assert [(j.event_id, j.integration) for j in jobs if j] == [
        (end.event_id, "sn"),
        (survey.event_id, "sn"),
    ]
    # "other" does not take surveys: only the session end is replayed for it.
    [only] = await replay_session(config, store, "default", "L1", "other")
    job = await store.get_job(only)
    assert job is not None and job.event_id == end.event_id
    assert await replay_session(config, store, "elsewhere", "L1", "sn") == []


def test_parse_since_reads_dates_times_and_spans() -> None:
    assert parse_since("3d", now=T0) == T0 - 3 * 86400
    assert parse_since("90m", now=T0) == T0 - 90 * 60
    assert parse_since("2023-11-14") == 1_699_920_000.0
    assert parse_since("2023-11-14T01:00:00+01:00") == 1_699_920_000.0
    with pytest.raises(ValueError, match="use a date"):
        parse_since("yesterday")
