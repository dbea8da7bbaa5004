"""The whole pipeline into the simulated AR System server: appliance events in, entries out.

Real HTTP everywhere: the simulated appliance sends outbound events to the engine's
intake; workers fetch reports from it and write into the simulated AR server, which has
rsbridge's session forms loaded as an administrator imports them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.remedy.demo import entries, prepared_server, work_info
from rsbridge.engine.store.base import JobStatus
from rsbridge.sim.remedy import DemoSeed, SimRemedyState, create_app
from rsbridge.sim.serve import serve_in_thread

from .conftest import (
    SimAppliance,
    all_jobs,
    drained,
    emit,
    ended_sessions,
    engine_config,
    running,
    tried_jobs,
)

INTEGRATION = "remedy"


@dataclasses.dataclass
class Server:
    state: SimRemedyState
    demo: DemoSeed
    url: str


@pytest.fixture
def ar() -> Iterator[Server]:
    state, demo = prepared_server()
    with serve_in_thread(create_app(state)) as url:
        yield Server(state, demo, url)


def _config(tmp_path: Path, sim: SimAppliance, ar: Server, **settings: Any) -> Any:
    user, password = ar.demo.integration
    return engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": INTEGRATION,
                "connector": "remedy",
                "retry_limit": 50,
                "settings": {"server_url": ar.url, "username": user, "password": password,
                             **settings},
            }
        ],
    )  # fmt: skip


def _sessions(ar: Server, count: int, seed: int, *, surveys: bool = True) -> list[SupportSession]:
    """Ended sessions keyed to the open incidents (see ``ended_sessions``)."""
    incidents = [ar.demo.ids["printer"], ar.demo.ids["vpn"]]
    return ended_sessions(incidents, count, seed, INTEGRATION, surveys=surveys)


def _assert_landed_once(ar: Server, sessions: list[SupportSession]) -> None:
    headers = entries(ar.state, "RSB:Session", "Import State", 1)
    assert sorted(h["Session ID"] for h in headers) == sorted(s.lsid for s in sessions)
    for session in sessions:
        (header,) = entries(ar.state, "RSB:Session", "Session ID", session.lsid)
        assert header["Ticket Number"] == session.external_key
        surveys = len(session.customer_surveys) + len(session.rep_surveys)
        logs = work_info(ar.state, header["Ticket Number"], session.lsid)
        assert len(logs) == 1 + surveys, [w["Description"] for w in logs]


async def test_sessions_land_once_with_duplicate_events(
    tmp_path: Path, sim: SimAppliance, ar: Server
) -> None:
    sessions = _sessions(ar, 4, seed=41)
    for session in sessions:
        sim.state.add_report(session)
    async with running(_config(tmp_path, sim, ar)) as (engine, url):
        recipient = await emit(url, sessions, twice=True)
        await drained(engine)
        jobs = await all_jobs(engine)
    assert recipient.dropped == 0
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    _assert_landed_once(ar, sessions)


async def test_a_server_down_for_a_while_loses_nothing(
    tmp_path: Path, sim: SimAppliance, ar: Server
) -> None:
    sessions = _sessions(ar, 3, seed=42)
    for session in sessions:
        sim.state.add_report(session)
    ar.state.down = True
    async with running(_config(tmp_path, sim, ar)) as (engine, url):
        recipient = await emit(url, sessions)
        assert recipient.dropped == 0 and recipient.queued == 0
        failed = await tried_jobs(engine)
        assert failed and all(j.status is not JobStatus.DEAD for j in failed)
        assert "503" in (failed[0].last_error or ""), failed[0].last_error
        assert entries(ar.state, "RSB:Session", "Session ID", sessions[0].lsid) == []
        ar.state.down = False
        await drained(engine, limit=60)
        jobs = await all_jobs(engine)
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    _assert_landed_once(ar, sessions)


async def test_an_expired_token_logs_in_again_once(
    tmp_path: Path, sim: SimAppliance, ar: Server
) -> None:
    first, second = _sessions(ar, 2, seed=43, surveys=False)
    for session in (first, second):
        sim.state.add_report(session)
    async with running(_config(tmp_path, sim, ar)) as (engine, url):
        await emit(url, [first])
        await drained(engine)
        with ar.state.lock:
            ar.state.tokens.clear()  # every token expired at the server
        await emit(url, [second])
        await drained(engine)
        jobs = await all_jobs(engine)
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    assert all(j.attempts <= 1 for j in jobs), "the 401 was handled inside the call"
    logins = [r for r in ar.state.requests if r.path == "/api/jwt/login"]
    assert len(logins) == 2
    assert sum(r.status == 401 for r in ar.state.requests) == 1
    _assert_landed_once(ar, [first, second])


async def test_a_missing_field_is_a_dead_letter_that_names_it(
    tmp_path: Path, sim: SimAppliance, ar: Server
) -> None:
    (session,) = _sessions(ar, 1, seed=44, surveys=False)
    sim.state.add_report(session)
    form = ar.state.forms["RSB:Session"]
    ar.state.forms["RSB:Session"] = dataclasses.replace(
        form, fields=[f for f in form.fields if f.name != "File Count"]
    )
    async with running(_config(tmp_path, sim, ar)) as (engine, url):
        await emit(url, [session])
        counts = await drained(engine)
        jobs = await all_jobs(engine)
    (end,) = [j for j in jobs if j.event_type.endswith("_end")]
    assert end.status is JobStatus.DEAD and counts.get("dead") == 1
    assert end.attempts == 1, "permanent: not retried"
    assert "ARERR 314" in (end.last_error or "") and "File Count" in (end.last_error or "")


async def test_html_from_a_proxy_is_retried_and_the_session_lands(
    tmp_path: Path, sim: SimAppliance, ar: Server
) -> None:
    (session,) = _sessions(ar, 1, seed=45, surveys=False)
    sim.state.add_report(session)
    ar.state.html_next(2, status=502)
    async with running(_config(tmp_path, sim, ar)) as (engine, url):
        await emit(url, [session])
        await drained(engine, limit=60)
        jobs = await all_jobs(engine)
        attempts = [a for j in jobs for a in await engine.store.attempts(j.id)]
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    assert any("HTML page" in (a.error or "") for a in attempts)
    _assert_landed_once(ar, [session])
