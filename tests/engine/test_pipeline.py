"""The whole pipeline over real HTTP: simulated appliance -> outbound events -> intake
-> store -> workers -> connectors, and polling."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.engine.intake import job_specs
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import JobFilter, JobStatus
from rsbridge.sim.appliance.emitter import (
    CUSTOMER_SURVEY,
    END,
)
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving

from .conftest import SimAppliance, drained, emit, engine_config

ROOT = Path(__file__).resolve().parents[2]


def _recent(session: SupportSession, ended_ago: float = 60.0) -> SupportSession:
    """The session moved in time so that it ended ``ended_ago`` seconds ago."""
    assert session.start_time is not None and session.end_time is not None
    shift = datetime.now(UTC) - timedelta(seconds=ended_ago) - session.end_time
    return dataclasses.replace(
        session, start_time=session.start_time + shift, end_time=session.end_time + shift
    )


def _deliveries(path: Path) -> Counter[str]:
    return Counter(d["key"] for d in read_deliveries(path) if d["kind"] != "ticket")


async def test_every_session_and_survey_is_delivered_once(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = engine_config(tmp_path, sim)
    sessions = [_recent(s) for s in SessionGenerator(11).sessions(12)]
    for session in sessions:
        sim.state.add_report(session)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        # Every event twice: the appliance re-sends what it did not see acknowledged.
        await emit(url, sessions, twice=True)
        counts = await drained(engine)
    assert counts.get("dead", 0) == 0
    delivered = _deliveries(tmp_path / "deliveries.jsonl")
    assert all(n == 1 for n in delivered.values()), delivered
    reports = [k for k in delivered if k.endswith("/session_report")]
    assert len(reports) == len(sessions)
    surveys = sum(len(s.customer_surveys) + len(s.rep_surveys) for s in sessions)
    assert len(delivered) - len(reports) == surveys


async def test_a_replay_and_a_restart_add_no_second_effect(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = engine_config(tmp_path, sim)
    sessions = [_recent(s) for s in SessionGenerator(5).sessions(3)]
    for session in sessions:
        sim.state.add_report(session)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, sessions)
        await drained(engine)
    before = _deliveries(tmp_path / "deliveries.jsonl")
    # A new engine on the same store: replay every event.
    async with Engine(config) as engine:
        jobs = await engine.store.list_jobs(JobFilter(limit=1000))
        for event_id in {j.event_id for j in jobs}:
            event = await engine.store.get_event(event_id)
            assert event is not None
            await engine.store.replay_event(
                event_id, job_specs(config, "default", event.event_type, polled=False)
            )
        assert engine.worker is not None
        outcomes = await engine.worker.run_until_idle()
        assert outcomes and all(o.outcome == "done" for o in outcomes)
    assert _deliveries(tmp_path / "deliveries.jsonl") == before


async def _until_waited(engine: Engine, lsid: str, limit: float = 60.0) -> None:
    """Return once a job of ``lsid`` has recorded a ``wait`` attempt."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for job in await engine.store.list_jobs(JobFilter(lsid=lsid)):
            if any(a.outcome == "wait" for a in await engine.store.attempts(job.id)):
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no job of {lsid} waited for its report")


async def test_an_end_event_waits_for_the_report_to_be_complete(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = engine_config(tmp_path, sim)
    session = _recent(SessionGenerator(2).session(), ended_ago=1)
    # Not ready until the engine has seen it unready: no race with a busy machine's clock.
    sim.state.add_report(session, report_delay=3600)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, [session])
        await _until_waited(engine, session.lsid)
        sim.state.add_report(session)
        await drained(engine)
        [end_job] = [
            j
            for j in await engine.store.list_jobs(JobFilter(lsid=session.lsid))
            if j.event_type == END
        ]
        attempts = await engine.store.attempts(end_job.id)
    # It waited (not failed) while the report had no end time, then completed.
    assert [a.outcome for a in attempts][-1] == "done"
    assert "wait" in [a.outcome for a in attempts]
    assert end_job.attempts == 0
    delivered = _deliveries(tmp_path / "deliveries.jsonl")
    assert f"default/{session.lsid}/{END}/audit/session_report" in delivered


async def test_polling_queues_ended_sessions_from_the_watermark(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": "audit",
                "connector": "jsonl",
                "outbound_events": [],
                "polling_events": [END],
                "association": {"on_unmatched": "create"},
                "settings": {"path": str(tmp_path / "deliveries.jsonl"), "fsync": False},
            }
        ],
    )
    old = _recent(SessionGenerator(1).session(), ended_ago=3 * 86400)
    fresh = [_recent(s, ended_ago=600 + i) for i, s in enumerate(SessionGenerator(4).sessions(5))]
    for session in [old, *fresh]:
        sim.state.add_report(session)
    async with Engine(config) as engine:
        [poller] = engine.pollers
        first = await poller.poll()
        assert (first.sessions, first.queued) == (5, 5)  # 24 h lookback: the old one is out
        second = await poller.poll()
        assert second.queued == 0  # seen already
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        # appliance calls: 2 listings + 1 batched report fetch for 5 sessions
        assert engine.worker.appliance_calls == 1
    delivered = _deliveries(tmp_path / "deliveries.jsonl")
    assert sorted(k.split("/")[1] for k in delivered) == sorted(s.lsid for s in fresh)


@pytest.mark.parametrize("unmatched", ["skip", "create", "import"])
async def test_sessions_without_a_ticket_are_skipped_get_one_or_import_alone(
    tmp_path: Path, sim: SimAppliance, unmatched: str
) -> None:
    config = engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": "audit",
                "connector": "jsonl",
                "association": {"ticket_from": ["custom:no_such_field"], "on_unmatched": unmatched},
                "settings": {"path": str(tmp_path / "deliveries.jsonl"), "fsync": False},
            }
        ],
    )
    session = _recent(SessionGenerator(8).session())
    sim.state.add_report(session)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, [session])
        await drained(engine)
        jobs = await engine.store.list_jobs(JobFilter(limit=10))
    assert all(j.status is JobStatus.DONE for j in jobs)
    records = read_deliveries(tmp_path / "deliveries.jsonl")
    kinds = Counter(d["kind"] for d in records)
    if unmatched == "skip":
        assert kinds == Counter()
        assert all("matches no ticket" in (j.last_error or "") for j in jobs)
    elif unmatched == "create":
        assert kinds["ticket"] == 1 and kinds["session_report"] == 1
    else:
        # Imported without a ticket: the report (and its surveys) all the same.
        assert kinds["ticket"] == 0 and kinds["session_report"] == 1
        assert all(r["ticket"] is None for r in records)


async def test_a_late_customer_survey_is_picked_up_by_a_later_poll(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": "audit",
                "connector": "jsonl",
                "outbound_events": [],
                "polling_events": [END, CUSTOMER_SURVEY],
                "association": {"on_unmatched": "create"},
                "settings": {"path": str(tmp_path / "deliveries.jsonl"), "fsync": False},
            }
        ],
    )
    full = _recent(next(s for s in SessionGenerator(6).sessions(30) if s.customer_surveys))
    sim.state.add_report(dataclasses.replace(full, customer_surveys=[]))
    async with Engine(config) as engine:
        assert engine.worker is not None
        [poller] = engine.pollers
        first = await poller.poll()
        assert (first.queued, first.surveys) == (1, 0)
        await engine.worker.run_until_idle()
        # The customer submits the survey after the poll that imported the session.
        sim.state.add_report(full)
        second = await poller.poll()
        assert second.surveys == 1
        await engine.worker.run_until_idle()
        assert (await poller.poll()).queued == 0
    kinds = Counter(d["kind"] for d in read_deliveries(tmp_path / "deliveries.jsonl"))
    assert kinds["session_report"] == 1
    assert kinds["survey"] == len(full.customer_surveys)


async def test_the_example_archive_keeps_every_session_and_survey(
    tmp_path: Path, sim: SimAppliance
) -> None:
    # examples/rsbridge.toml says its jsonl "archive" keeps every session report and
    # survey: also those of sessions that name no ticket (no external key).
    example = tomllib.loads((ROOT / "examples" / "rsbridge.toml").read_text(encoding="utf-8"))
    [archive] = [i for i in example["integrations"] if i["name"] == "archive"]
    archive["settings"] = {**archive["settings"], "path": str(tmp_path / "archive.jsonl")}
    config = engine_config(tmp_path, sim, integrations=[archive])
    with_surveys = (s for s in SessionGenerator(12).sessions(40) if s.customer_surveys)
    session = _recent(dataclasses.replace(next(with_surveys), external_key=None))
    sim.state.add_report(session)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, [session])
        await drained(engine)
    records = read_deliveries(tmp_path / "archive.jsonl")
    kinds = Counter(r["kind"] for r in records)
    assert kinds["session_report"] == 1
    assert kinds["survey"] == len(session.customer_surveys) + len(session.rep_surveys)
    assert all(r["ticket"] is None and r["lsid"] == session.lsid for r in records)
