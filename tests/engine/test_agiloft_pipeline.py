"""The whole pipeline into the simulated Agiloft KB: appliance events in, records out."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.agiloft.demo import prepared_kb, session_records
from rsbridge.engine.store.base import JobStatus
from rsbridge.sim.agiloft import DemoSeed, SimAgiloftState, create_app
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

INTEGRATION = "agiloft"


@dataclasses.dataclass
class KB:
    state: SimAgiloftState
    demo: DemoSeed
    url: str


@pytest.fixture
def kb() -> Iterator[KB]:
    state, demo = prepared_kb()
    with serve_in_thread(create_app(state)) as url:
        yield KB(state, demo, url)


def _config(tmp_path: Path, sim: SimAppliance, kb: KB, **settings: Any) -> Any:
    login, password = kb.demo.integration
    return engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": INTEGRATION,
                "connector": "agiloft",
                "retry_limit": 50,
                "settings": {"kb_url": kb.url, "kb": kb.demo.kb, "login": login,
                             "password": password, **settings},
            }
        ],
    )  # fmt: skip


def _sessions(kb: KB, count: int, seed: int, *, surveys: bool = True) -> list[SupportSession]:
    """Ended sessions keyed to the open cases (see ``ended_sessions``)."""
    cases = [str(kb.demo.ids["printer"]), str(kb.demo.ids["vpn"])]
    return ended_sessions(cases, count, seed, INTEGRATION, surveys=surveys)


def _assert_landed_once(kb: KB, sessions: list[SupportSession]) -> None:
    for session in sessions:
        (record,) = session_records(kb.state, session.lsid)
        assert str(record["case"]) == session.external_key
        assert str(record.get("customer_survey") or "").count("[rsbridge survey") == len(
            session.customer_surveys
        )
    with kb.state.lock:
        assert len(kb.state.records["bomgar_session_details"]) == len(sessions)


async def test_sessions_land_once_with_duplicate_events_in_few_calls(
    tmp_path: Path, sim: SimAppliance, kb: KB
) -> None:
    sessions = _sessions(kb, 4, seed=51, surveys=False)
    for session in sessions:
        sim.state.add_report(session)
    async with running(_config(tmp_path, sim, kb)) as (engine, url):
        await emit(url, sessions, twice=True)
        await drained(engine)
        jobs = await all_jobs(engine)
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    _assert_landed_once(kb, sessions)
    upserts = [r for r in kb.state.requests if r.operation == "EWUpsert"]
    assert len(upserts) == len(sessions), "one EWUpsert per session: the replays cost none"


async def test_a_kb_down_for_a_while_loses_nothing(
    tmp_path: Path, sim: SimAppliance, kb: KB
) -> None:
    sessions = _sessions(kb, 3, seed=52)
    for session in sessions:
        sim.state.add_report(session)
    kb.state.down = True
    async with running(_config(tmp_path, sim, kb)) as (engine, url):
        recipient = await emit(url, sessions)
        assert recipient.dropped == 0 and recipient.queued == 0
        failed = await tried_jobs(engine)
        assert failed and all(j.status is not JobStatus.DEAD for j in failed)
        kb.state.down = False
        await drained(engine, limit=60)
        jobs = await all_jobs(engine)
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    _assert_landed_once(kb, sessions)


async def test_an_expired_token_is_replaced_inside_the_call(
    tmp_path: Path, sim: SimAppliance, kb: KB
) -> None:
    first, second = _sessions(kb, 2, seed=53, surveys=False)
    for session in (first, second):
        sim.state.add_report(session)
    async with running(_config(tmp_path, sim, kb)) as (engine, url):
        await emit(url, [first])
        await drained(engine)
        kb.state.clock = lambda: time.time() + 3600  # every token has expired at the KB
        await emit(url, [second])
        await drained(engine)
        jobs = await all_jobs(engine)
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    assert all(j.attempts <= 1 for j in jobs), "the expired token was handled inside the call"
    assert any(r.status != 200 for r in kb.state.requests), "the KB refused the old token"
    _assert_landed_once(kb, [first, second])


async def test_a_missing_column_is_a_dead_letter_that_names_it(
    tmp_path: Path, sim: SimAppliance, kb: KB
) -> None:
    (session,) = _sessions(kb, 1, seed=54, surveys=False)
    sim.state.add_report(session)
    config = _config(tmp_path, sim, kb, fields=["sessions.chat_transcript=chat_text"])
    async with running(config) as (engine, url):
        await emit(url, [session])
        counts = await drained(engine)
        jobs = await all_jobs(engine)
    (end,) = [j for j in jobs if j.event_type.endswith("_end")]
    assert end.status is JobStatus.DEAD and counts.get("dead") == 1 and end.attempts == 1
    assert "No column chat_text in table bomgar_session_details" in (end.last_error or "")


async def test_the_vendor_recipient_url_with_kb_is_accepted(
    tmp_path: Path, sim: SimAppliance, kb: KB
) -> None:
    # The extension's recipient URL carries ?KB=<name>; rsbridge's names the appliance
    # entry, which binds the integration (one entry per KB): the KB parameter is accepted.
    (session,) = _sessions(kb, 1, seed=55, surveys=False)
    sim.state.add_report(session)
    async with running(_config(tmp_path, sim, kb)) as (engine, url):
        await emit(url, [session], query=f"KB={kb.demo.kb}")
        await drained(engine)
        jobs = await all_jobs(engine)
    assert jobs and all(j.status is JobStatus.DONE for j in jobs)
    _assert_landed_once(kb, [session])
