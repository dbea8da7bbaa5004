"""The whole pipeline into the simulated ServiceNow: appliance events in, records out.

Real HTTP everywhere: the simulated appliance sends outbound events to the engine's
intake; workers fetch reports from it and write into the simulated instance.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.report_model import CustomAttribute, SupportSession
from rsbridge.connectors.servicenow.writes import journal_marker
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import JobFilter, JobStatus
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving
from tests.conftest import sign_session
from tests.servicenow_helpers import Snow, running_instance

from .conftest import SimAppliance, drained, emit, engine_config


@pytest.fixture
def snow() -> Iterator[Snow]:
    with running_instance(11) as running:
        yield running


def _config(tmp_path: Path, sim: SimAppliance, snow: Snow, **extra: Any) -> Any:
    user, password = snow.demo.integration
    association = extra.pop("association", {})
    settings = extra.pop("settings", {})
    return engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": "servicenow",
                "connector": "servicenow",
                "retry_limit": 50,
                "association": association,
                "settings": {
                    "instance_url": snow.url,
                    "username": user,
                    "password": password,
                    **settings,
                },
                **extra,
            }
        ],
    )


def _sessions(snow: Snow, count: int, seed: int = 21) -> list[SupportSession]:
    """Ended sessions, each with an incident's number as external key."""
    numbers = sorted(n for n in snow.demo.ids if n.startswith("INC"))
    generator = SessionGenerator(seed)
    made = []
    for i in range(count):
        number = numbers[i % len(numbers)]
        session = generator.session_from_key(number, {})
        assert session.start_time is not None and session.end_time is not None
        shift = datetime.now(UTC) - timedelta(seconds=60) - session.end_time
        moved = dataclasses.replace(
            session, start_time=session.start_time + shift, end_time=session.end_time + shift
        )
        made.append(sign_session(moved))  # the key was made by rsbridge: signed
    return made


async def test_sessions_land_once_on_their_incidents_with_duplicate_events(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    sessions = _sessions(snow, 4)
    for session in sessions:
        sim.state.add_report(session)
    config = _config(tmp_path, sim, snow)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        recipient = await emit(url, sessions, twice=True)
        await drained(engine)
        jobs = await engine.store.list_jobs(JobFilter(limit=100))
    assert recipient.dropped == 0
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    session_rows = snow.state.query("u_rs_session")
    assert sorted(r["u_lsid"] for r in session_rows) == sorted(s.lsid for s in sessions)
    for session in sessions:
        (row,) = [r for r in session_rows if r["u_lsid"] == session.lsid]
        assert row["u_task"] == snow.demo.ids[session.external_key or ""]
        ends = [
            e
            for e in snow.state.journal(row["u_task"], "work_notes")
            if journal_marker(session.lsid, "end") in e["value"]
        ]
        assert len(ends) == 1
    surveys = sum(len(s.customer_surveys) + len(s.rep_surveys) for s in sessions)
    if surveys:
        assert snow.state.query("u_rs_session_survey")


async def test_a_session_end_costs_three_calls_and_a_survey_two(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    sessions = _sessions(snow, 3, seed=26)
    for session in sessions:
        sim.state.add_report(session)
    surveys = sum(len(s.customer_surveys) + len(s.rep_surveys) for s in sessions)
    assert surveys, "the seed gives sessions with surveys"
    config = _config(tmp_path, sim, snow)
    mark = len(snow.state.requests)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, sessions)
        await drained(engine)
        jobs = await engine.store.list_jobs(JobFilter(limit=100))
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    assert len(snow.state.query("u_rs_session_survey")) == sum(
        len(v.answers) for s in sessions for v in (*s.customer_surveys, *s.rep_surveys)
    )
    calls = [r for r in snow.state.requests[mark:] if r.path.startswith("/api/")]
    assert len(calls) <= 3 * len(sessions) + 2 * surveys, [(c.method, c.path) for c in calls]


async def test_an_instance_down_for_a_while_loses_nothing_and_never_blocks_the_appliance(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    sessions = _sessions(snow, 5, seed=22)
    for session in sessions:
        sim.state.add_report(session)
    config = _config(tmp_path, sim, snow)
    snow.state.down = True
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        recipient = await emit(url, sessions)
        # Every event was acknowledged while the instance was down: nothing queued behind.
        assert recipient.dropped == 0 and recipient.queued == 0
        # The workers tried, failed and re-queued with backoff.
        deadline = time.monotonic() + 10
        failed: list[str] = []
        while not failed and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            jobs = await engine.store.list_jobs(JobFilter(limit=100))
            failed = [j.last_error or "" for j in jobs if j.attempts > 0]
        assert failed and "503" in failed[0]
        assert snow.state.query("u_rs_session") == []
        snow.state.down = False
        await drained(engine, limit=60)
        jobs = await engine.store.list_jobs(JobFilter(limit=100))
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    assert len(snow.state.query("u_rs_session")) == len(sessions)


async def test_429_with_retry_after_is_waited_for(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    sessions = _sessions(snow, 1, seed=23)
    sim.state.add_report(sessions[0])
    config = _config(tmp_path, sim, snow)
    snow.state.fail_next(2, status=429, retry_after=1)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, sessions)
        await drained(engine)
        jobs = await engine.store.list_jobs(JobFilter(limit=10))
        end = next(j for j in jobs if j.event_type.endswith("_end"))
        attempts = await engine.store.attempts(end.id)
    assert end.status is JobStatus.DONE
    retries = [a for a in attempts if a.outcome.value == "retry"]
    assert retries and "rate limited" in (retries[0].error or "")
    assert len(snow.state.query("u_rs_session")) == 1


async def test_sessions_without_a_task_are_imported_alone_when_configured(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    session = _sessions(snow, 1, seed=24)[0]
    session = dataclasses.replace(session, external_key=None, custom_attributes=[])
    sim.state.add_report(session)
    config = _config(tmp_path, sim, snow, association={"on_unmatched": "import"})
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, [session])
        await drained(engine)
    (row,) = snow.state.query("u_rs_session")
    assert row["u_task"] == ""


async def test_events_to_import_filter_the_event_rows(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    session = _sessions(snow, 1, seed=25)[0]
    sim.state.add_report(session)
    config = _config(tmp_path, sim, snow, import_events=["Chat Message"])
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, [session])
        await drained(engine)
    types = {r["u_event_type"] for r in snow.state.query("u_rs_session_event")}
    chats = [e for e in session.events if e.event_type == "Chat Message"]
    assert types <= {"Chat Message"}
    assert len(snow.state.query("u_rs_session_event")) == len(chats)


async def test_auto_create_on_join_writes_the_incident_back_to_the_session(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    config = _config(tmp_path, sim, snow, association={"create_on_join": True})
    snow.state.fail_next(1, status=503)  # the instance hiccups as the rep joins: retried
    key = sim.state.generate_session_key(queue_id="general")
    lsid = sim.state.start_session(key.short_key)
    form = {"event": "support_conference_member_added", "version": "1", "lsid": lsid}
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        import httpx

        async with httpx.AsyncClient() as client:
            for who in ("representative",):  # one join: its retry must create the ticket
                answer = await client.post(
                    f"{url}/ERSPost?appliance=default",
                    data={**form, "type": who, "timestamp": str(int(time.time()))},
                )
                assert answer.status_code == 200
        await drained(engine)
        created = snow.state.query("incident", f"correlation_id=rs-{lsid}")
        assert len(created) == 1
        assert sim.state.active_sessions[lsid].custom["snow_task_id"] == created[0]["sys_id"]
        report = sim.state.complete_session(lsid)
        await emit(url, [report])
        await drained(engine)
    (row,) = snow.state.query("u_rs_session")
    assert row["u_task"] == created[0]["sys_id"]
    assert len(snow.state.query("incident", f"correlation_id=rs-{lsid}")) == 1


async def test_an_unknown_customer_address_does_not_stop_the_import(
    tmp_path: Path, sim: SimAppliance, snow: Snow
) -> None:
    # A dynamic lookup on what the customer typed finds no user: the ticket is created
    # without a caller and the session lands on it, instead of a dead letter.
    session = _sessions(snow, 1, seed=26)[0]
    session = dataclasses.replace(
        session,
        external_key=None,
        custom_attributes=[CustomAttribute("customer_email", "E-mail", "typo@example.invalid")],
    )
    sim.state.add_report(session)
    config = _config(
        tmp_path,
        sim,
        snow,
        association={"on_unmatched": "create"},
        settings={"create_dynamic_lookup_fields": ["caller_id=sys_user.email=customer_email"]},
    )
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, [session])
        counts = await drained(engine)
    assert counts.get("dead", 0) == 0
    (incident,) = snow.state.query("incident", f"correlation_id=rs-{session.lsid}")
    assert incident["caller_id"] == ""
    (row,) = snow.state.query("u_rs_session")
    assert row["u_task"] == incident["sys_id"]
