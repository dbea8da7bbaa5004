"""The whole pipeline into the simulated Salesforce org: appliance events in, records out.

Real HTTP everywhere: the simulated appliance sends outbound events to the engine's
intake; workers fetch reports from it and write into the simulated org, which has the
objects and fields of the package rsbridge generates loaded from its source files.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.report_model import ExitSurvey, SupportSession, SurveyAnswer
from rsbridge.connectors.salesforce.demo import (
    API_CALL_BUDGET,
    api_calls,
    prepared_org,
    session_comments,
    session_records,
)
from rsbridge.engine.store.base import AttemptOutcome, Job, JobStatus
from rsbridge.engine.worker import Services, Worker
from rsbridge.sim.salesforce import DemoSeed, SimSalesforceState, ValidationRule, create_app
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

INTEGRATION = "salesforce"
TOKEN_PATH = "/services/oauth2/token"


@dataclasses.dataclass
class Org:
    state: SimSalesforceState
    demo: DemoSeed
    url: str


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    state, demo = prepared_org(13, tmp_path)
    with serve_in_thread(create_app(state)) as url:
        yield Org(state, demo, url)


def _config(
    tmp_path: Path,
    sim: SimAppliance,
    org: Org,
    settings_extra: dict[str, Any] | None = None,
    **extra: Any,
) -> Any:
    key, secret = org.demo.app
    engine = extra.pop("engine", None)
    return engine_config(
        tmp_path,
        sim,
        engine=engine,
        integrations=[
            {
                "name": INTEGRATION,
                "connector": "salesforce",
                "retry_limit": 50,
                "settings": {
                    "login_url": org.url,
                    "client_id": key,
                    "client_secret": secret,
                    **(settings_extra or {}),
                },
                **extra,
            }
        ],
    )


def _sessions(
    org: Org, count: int, seed: int, *, surveys: bool = True, signed: bool = True
) -> list[SupportSession]:
    """Ended sessions keyed to the open Cases (see ``ended_sessions``)."""
    cases = [org.demo.ids["case_printer"], org.demo.ids["case_vpn"]]
    return ended_sessions(cases, count, seed, INTEGRATION, surveys=surveys, signed=signed)


def _assert_landed_once(
    org: Org, sessions: list[SupportSession], *, public: frozenset[str] = frozenset()
) -> None:
    """One session record per session on its Case, one session-end comment; comments
    private but those of the sessions in ``public`` (lsids), which are all published."""
    records = org.state.all_records("RS_Session__c")
    assert sorted(r["LSID__c"] for r in records) == sorted(s.lsid for s in sessions)
    for session in sessions:
        (record,) = session_records(org.state, session.lsid)
        assert record["Case__c"] == session.external_key
        assert record["Import_State__c"] == "complete"
        comments = session_comments(org.state, record["Case__c"], session.lsid)
        ends = [c for c in comments if f"{session.lsid}: session end)" in c["CommentBody"]]
        assert len(ends) == 1, [c["CommentBody"][:80] for c in comments]
        published = [c["IsPublished"] for c in comments]
        assert all(published) if session.lsid in public else not any(published)


async def test_sessions_land_once_on_their_cases_with_duplicate_events(
    tmp_path: Path, sim: SimAppliance, org: Org
) -> None:
    sessions = _sessions(org, 4, seed=31)
    for session in sessions:
        sim.state.add_report(session)
    async with running(_config(tmp_path, sim, org)) as (engine, url):
        recipient = await emit(url, sessions, twice=True)
        await drained(engine)
        jobs = await all_jobs(engine)
    assert recipient.dropped == 0
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    _assert_landed_once(org, sessions)
    answers = sum(
        len(s.answers)
        for session in sessions
        for s in (*session.customer_surveys, *session.rep_surveys)
    )
    assert len(org.state.all_records("RS_Session_Survey__c")) == answers


async def test_a_session_import_takes_at_most_three_api_calls_with_the_lookup(
    tmp_path: Path, sim: SimAppliance, org: Org
) -> None:
    sessions = _sessions(org, 6, seed=32, surveys=False)
    for session in sessions:
        sim.state.add_report(session)
    async with running(_config(tmp_path, sim, org)) as (engine, url):
        await emit(url, sessions, twice=True)
        await drained(engine)
    _assert_landed_once(org, sessions)
    # Logins do not spend the daily API allowance; everything else does.
    assert org.state.count_requests("POST", TOKEN_PATH) == 1
    calls = api_calls(org.state)
    assert calls <= API_CALL_BUDGET * len(sessions), f"{calls} calls for {len(sessions)} sessions"


async def test_an_org_down_for_a_while_loses_nothing_and_never_blocks_the_appliance(
    tmp_path: Path, sim: SimAppliance, org: Org
) -> None:
    sessions = _sessions(org, 4, seed=33)
    for session in sessions:
        sim.state.add_report(session)
    org.state.down = True
    async with running(_config(tmp_path, sim, org)) as (engine, url):
        recipient = await emit(url, sessions)
        # Every event was acknowledged while the org was down: nothing queued behind.
        assert recipient.dropped == 0 and recipient.queued == 0
        failed = await tried_jobs(engine)
        assert failed, "the workers tried while the org was down"
        assert all(j.status is not JobStatus.DEAD for j in failed)
        assert "503" in (failed[0].last_error or ""), failed[0].last_error
        assert org.state.all_records("RS_Session__c") == []
        org.state.down = False
        await drained(engine, limit=60)
        jobs = await all_jobs(engine)
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    _assert_landed_once(org, sessions)


async def test_the_daily_allowance_spent_is_retried_after_it_resets_never_a_dead_letter(
    tmp_path: Path, sim: SimAppliance, org: Org
) -> None:
    (session,) = _sessions(org, 1, seed=34, surveys=False)
    sim.state.add_report(session)
    config = _config(tmp_path, sim, org)
    # The org's allowance is spent: Salesforce answers API calls (not logins) with 403,
    # not 429, and REQUEST_LIMIT_EXCEEDED until its rolling 24 hours free some up;
    # retrying within seconds would only spend more refused calls.
    org.state.daily_api_limit = org.state.api_requests
    async with running(config) as (engine, url):
        began = time.time()
        await emit(url, [session])
        deadline = time.monotonic() + 10
        end: Job | None = None
        tried: list[Any] = []
        while not tried and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            end = next((j for j in await all_jobs(engine) if j.event_type.endswith("_end")), None)
            tried = await engine.store.attempts(end.id) if end is not None else []
        end = await engine.store.get_job(end.id) if end is not None else None
        assert end is not None
        # Waiting for at least 15 minutes, although the engine's backoff is capped at
        # 0.2 s here: the peer's hint wins. Not a dead letter, and no retry used up.
        assert [a.outcome for a in tried] == [AttemptOutcome.WAIT]
        assert (end.status, end.attempts) == (JobStatus.QUEUED, 0)
        assert end.run_after >= began + 900
        assert "REQUEST_LIMIT_EXCEEDED" in (end.last_error or "")
        await engine.stop()
        # The allowance frees up; a worker whose clock is past the wait imports the session.
        org.state.daily_api_limit += 100
        later = Worker(
            config,
            engine.store,
            Services(engine.appliances, engine.connectors, engine.renderers),
            clock=lambda: time.time() + 3600,
        )
        await later.run_until_idle(max_wait=10)
        done = await engine.store.get_job(end.id)
        attempts = await engine.store.attempts(end.id)
    assert done is not None and done.status is JobStatus.DONE, done
    assert [a.outcome for a in attempts] == [AttemptOutcome.WAIT, AttemptOutcome.DONE]
    _assert_landed_once(org, [session])


async def test_past_the_quota_wait_a_spent_allowance_counts_as_a_retry(
    tmp_path: Path, sim: SimAppliance, org: Org
) -> None:
    # engine.quota_wait_hours bounds the free waiting; after it, retry_limit applies.
    (session,) = _sessions(org, 1, seed=35, surveys=False)
    sim.state.add_report(session)
    config = _config(tmp_path, sim, org, retry_limit=0, engine={"quota_wait_hours": 0})
    org.state.daily_api_limit = org.state.api_requests
    async with running(config) as (engine, url):
        await emit(url, [session])
        await drained(engine)
        jobs = await all_jobs(engine)
    (end,) = [j for j in jobs if j.event_type.endswith("_end")]
    assert end.status is JobStatus.DEAD
    assert "REQUEST_LIMIT_EXCEEDED" in (end.last_error or "")


async def test_an_expired_salesforce_session_logs_in_again_once(
    tmp_path: Path, sim: SimAppliance, org: Org
) -> None:
    first, second = _sessions(org, 2, seed=35, surveys=False)
    for session in (first, second):
        sim.state.add_report(session)
    async with running(_config(tmp_path, sim, org)) as (engine, url):
        await emit(url, [first])
        await drained(engine)
        assert org.state.count_requests("POST", TOKEN_PATH) == 1
        org.state.expire_sessions()
        await emit(url, [second])
        await drained(engine)
        jobs = await all_jobs(engine)
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    assert all(j.attempts <= 1 for j in jobs), "the 401 was handled inside the call"
    assert org.state.count_requests("POST", TOKEN_PATH) == 2
    assert sum(r.status == 401 for r in org.state.requests) == 1
    _assert_landed_once(org, [first, second])


async def test_a_validation_rule_is_a_dead_letter_that_names_it(
    tmp_path: Path, sim: SimAppliance, org: Org
) -> None:
    (session,) = _sessions(org, 1, seed=36, surveys=False)
    sim.state.add_report(session)
    org.state.validation_rules.append(
        ValidationRule("RS_Session__c", "Imports are frozen during the audit", lambda r: True)
    )
    async with running(_config(tmp_path, sim, org)) as (engine, url):
        await emit(url, [session])
        counts = await drained(engine)
        jobs = await all_jobs(engine)
    (end,) = [j for j in jobs if j.event_type.endswith("_end")]
    assert end.status is JobStatus.DEAD and counts.get("dead") == 1
    assert end.attempts == 1, "permanent: not retried"
    error = end.last_error or ""
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in error
    assert "Imports are frozen during the audit" in error
    # All or none: no comment was left behind on the Case.
    assert session_comments(org.state, session.external_key or "", session.lsid) == []
    assert org.state.all_records("RS_Session__c") == []


async def test_survey_rules_move_only_a_case_a_trusted_reference_chose(
    tmp_path: Path, sim: SimAppliance, org: Org
) -> None:
    # A signed key's session and a customer's own start URL naming another Case, under
    # trust = "any" (the unsigned one is accepted, untrusted): both rate 5.
    five = [ExitSurvey(answers=[SurveyAnswer("rating", "5")])]
    (trusted,) = _sessions(org, 1, seed=37)
    (forged,) = _sessions(org, 2, seed=38, signed=False)[1:]
    trusted = dataclasses.replace(trusted, customer_surveys=five, rep_surveys=[])
    forged = dataclasses.replace(forged, customer_surveys=five, rep_surveys=[])
    assert trusted.external_key == org.demo.ids["case_printer"]
    assert forged.external_key == org.demo.ids["case_vpn"]
    for session in (trusted, forged):
        sim.state.add_report(session)
    config = _config(
        tmp_path,
        sim,
        org,
        association={"trust": "any"},
        settings_extra={
            "survey_state_rules": ["customer:rating=5 -> Closed"],
            "public_comments": True,
        },
    )
    async with running(config) as (engine, url):
        await emit(url, [trusted, forged], twice=True)
        await drained(engine)
        jobs = await all_jobs(engine)
    assert all(j.status is JobStatus.DONE for j in jobs), [j.last_error for j in jobs]
    # Each session: the lookup and two; each survey: a query call and a write call.
    assert api_calls(org.state) <= 2 * API_CALL_BUDGET + 2 * 2
    # Customer-visible comments only where a trusted reference chose the Case.
    _assert_landed_once(org, [trusted, forged], public=frozenset({trusted.lsid}))
    status = {n: org.state.get("Case", org.demo.ids[n]) for n in ("case_printer", "case_vpn")}
    assert status["case_printer"] is not None and status["case_printer"]["Status"] == "Closed"
    assert status["case_vpn"] is not None and status["case_vpn"]["Status"] == "Working"
