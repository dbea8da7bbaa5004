"""Workers against failing peers: retries with backoff, dead letters, ordering, waiting,
graceful shutdown, template errors. Real HTTP to the simulated appliance and webhook."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.events import CUSTOMER_SURVEY, END, MEMBER_ADDED, REP_SURVEY
from rsbridge.appliance.report_model import ExitSurvey, SupportSession, SurveyAnswer
from rsbridge.backoff import backoff
from rsbridge.config import Config
from rsbridge.engine.intake import job_specs
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import (
    AttemptOutcome,
    IncomingEvent,
    JobFilter,
    JobStatus,
)
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.errors import StoreUnavailableError
from rsbridge.sim.appliance.scenarios import SessionGenerator

from .conftest import Hook, SimAppliance, webhook_config


def _config(tmp_path: Path, sim: SimAppliance | None, url: str, **integration: Any) -> Config:
    settings = {"max_attempts": 1, "timeout": 0.5, **integration.pop("settings", {})}
    return webhook_config(tmp_path, sim, url, settings=settings, **integration)


def _session(sim: SimAppliance, seed: int = 1) -> SupportSession:
    session = next(
        s for s in SessionGenerator(seed).sessions(20) if s.customer_surveys and s.rep_surveys
    )
    sim.state.add_report(session)
    return session


async def _record(engine: Engine, config: Config, session: SupportSession, event: str) -> int:
    result = await engine.store.record_event(
        IncomingEvent("default", event, "outbound", f"{event}/{session.lsid}", lsid=session.lsid),
        job_specs(config, "default", event, polled=False),
    )
    return result.event_id


async def _engine(config: Config) -> Engine:
    engine = Engine(config, store=MemoryStore())
    await engine.open()
    return engine


async def _attempts(engine: Engine) -> list[AttemptOutcome]:
    [job] = await engine.store.list_jobs(JobFilter())
    return [a.outcome for a in await engine.store.attempts(job.id)]


async def test_429_then_success_is_retried_and_delivered_once(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    config = _config(tmp_path, sim, hook.url)
    session = _session(sim)
    hook.state.fail_next(429, 2, retry_after=0.05)
    engine = await _engine(config)
    try:
        await _record(engine, config, session, END)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        assert await _attempts(engine) == ["retry", "retry", "done"]
        [job] = await engine.store.list_jobs(JobFilter())
        assert job.status is JobStatus.DONE and job.attempts == 2
    finally:
        await engine.aclose()
    assert len(hook.state.of_kind("session_report")) == 1


@pytest.mark.parametrize("fault", ["500", "timeout"])
async def test_retries_stop_at_the_limit_and_the_job_is_a_dead_letter(
    tmp_path: Path, sim: SimAppliance, hook: Hook, fault: str
) -> None:
    config = _config(tmp_path, sim, hook.url, retry_limit=2)
    session = _session(sim)
    if fault == "500":
        hook.state.fail_next(500, 100)
    else:
        hook.state.slow_next(2.0, 100)
    engine = await _engine(config)
    try:
        await _record(engine, config, session, END)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        assert await _attempts(engine) == ["retry", "retry", "dead"]
        [job] = await engine.store.list_jobs(JobFilter())
        assert job.status is JobStatus.DEAD and job.last_error
        # The dead letter is not lost: once the peer is back, a retry delivers it.
        hook.state.clear_faults()
        assert await engine.store.retry_job(job.id)
        await engine.worker.run_until_idle()
        assert (await engine.store.get_job(job.id)).status is JobStatus.DONE  # type: ignore[union-attr]
    finally:
        await engine.aclose()
    assert len(hook.state.of_kind("session_report")) == 1


async def test_a_permanent_error_is_not_retried(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    config = _config(tmp_path, sim, hook.url)
    session = _session(sim)
    hook.state.fail_next(400, 5)
    engine = await _engine(config)
    try:
        await _record(engine, config, session, END)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        assert await _attempts(engine) == ["dead"]
        [attempt] = await engine.store.attempts((await engine.store.list_jobs(JobFilter()))[0].id)
        assert "400" in (attempt.error or "")
    finally:
        await engine.aclose()


async def test_event_types_not_configured_for_retry_go_to_dead_letters(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    config = _config(tmp_path, sim, hook.url, retry_outbound_events=[CUSTOMER_SURVEY])
    session = _session(sim)
    hook.state.fail_next(503, 5)
    engine = await _engine(config)
    try:
        await _record(engine, config, session, END)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        assert await _attempts(engine) == ["dead"]
    finally:
        await engine.aclose()


async def test_an_unreachable_appliance_is_retried(tmp_path: Path, hook: Hook) -> None:
    config = _config(tmp_path, None, hook.url, retry_limit=1)  # appliance on a closed port
    engine = await _engine(config)
    try:
        await engine.store.record_event(
            IncomingEvent("default", END, "outbound", "k", lsid="abc"),
            job_specs(config, "default", END, polled=False),
        )
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        outcomes = await _attempts(engine)
        assert outcomes == ["retry", "dead"]
    finally:
        await engine.aclose()


async def test_a_survey_that_arrives_first_is_applied_after_its_session(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    config = _config(tmp_path, sim, hook.url)
    session = _session(sim)
    engine = await _engine(config)
    try:
        await _record(engine, config, session, CUSTOMER_SURVEY)
        await _record(engine, config, session, END)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
    finally:
        await engine.aclose()
    kinds = [d.kind for d in hook.state.received if d.kind != "ticket"]
    assert kinds == ["session_report"] + ["survey"] * len(session.customer_surveys)


def _kinds(hook: Hook) -> list[str | None]:
    return [d.kind for d in hook.state.received if d.kind != "ticket"]


async def test_a_survey_whose_session_end_never_came_imports_the_session(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    # The appliance dropped the session-end event (its retry duration ran out): only the
    # survey arrives. The report holds the whole session, so nothing may wait for the end.
    config = _config(tmp_path, sim, hook.url)
    session = _session(sim)
    engine = await _engine(config)
    try:
        await _record(engine, config, session, CUSTOMER_SURVEY)
        assert engine.worker is not None
        outcomes = await engine.worker.run_until_idle(max_wait=5)
        assert [o.outcome for o in outcomes] == ["done"]
        surveys = ["survey"] * len(session.customer_surveys)
        assert _kinds(hook) == ["session_report", *surveys]
        # The import is recorded as the session end's: a late end event adds nothing.
        await _record(engine, config, session, END)
        outcomes = await engine.worker.run_until_idle(max_wait=5)
        assert [(o.outcome, o.note) for o in outcomes] == [("done", "already delivered")]
    finally:
        await engine.aclose()
    assert _kinds(hook) == ["session_report", *surveys]


async def test_a_survey_after_a_dead_session_end_imports_the_session(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    config = _config(tmp_path, sim, hook.url)
    session = _session(sim)
    hook.state.fail_next(400)  # the end job's first call is refused for good
    engine = await _engine(config)
    try:
        await _record(engine, config, session, END)
        await _record(engine, config, session, CUSTOMER_SURVEY)
        assert engine.worker is not None
        await engine.worker.run_until_idle(max_wait=5)
        jobs = {j.event_type: j for j in await engine.store.list_jobs(JobFilter())}
        assert jobs[END].status is JobStatus.DEAD
        assert jobs[CUSTOMER_SURVEY].status is JobStatus.DONE
    finally:
        await engine.aclose()
    assert _kinds(hook) == ["session_report"] + ["survey"] * len(session.customer_surveys)


async def test_a_rep_survey_that_names_the_ticket_brings_the_skipped_session_along(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    # Associated by the rep's exit-survey answer: at the session end the rep has not
    # answered yet, so the end finds no ticket and is skipped. The survey names it.
    association = {"ticket_from": ["rep_survey:task_number"], "on_unmatched": "skip"}
    config = _config(tmp_path, sim, hook.url, association=association)
    answered = _session(sim)
    sim.state.add_report(dataclasses.replace(answered, rep_surveys=[]))
    engine = await _engine(config)
    try:
        await _record(engine, config, answered, END)
        assert engine.worker is not None
        [skipped] = await engine.worker.run_until_idle(max_wait=5)
        assert (skipped.note or "").startswith("skipped: ")
        survey = ExitSurvey(7, [SurveyAnswer("task_number", "INC0042")])
        sim.state.add_report(dataclasses.replace(answered, rep_surveys=[survey]))
        await _record(engine, config, answered, REP_SURVEY)
        await engine.worker.run_until_idle(max_wait=5)
    finally:
        await engine.aclose()
    received = [d for d in hook.state.received if d.kind != "ticket"]
    assert [d.kind for d in received] == ["session_report", "survey"]
    assert {d.body["ticket"]["id"] for d in received} == {"INC0042"}


async def test_a_session_end_after_a_failed_join_still_imports(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    # The join job (auto-create) ranks before the end; when it fails for good the end is
    # handed out all the same and finds (here: creates) the ticket itself.
    association = {"create_on_join": True, "on_unmatched": "create", "ticket_from": []}
    config = _config(tmp_path, sim, hook.url, association=association)
    session = _session(sim)
    hook.state.fail_next(400)  # the join's ticket creation
    engine = await _engine(config)
    try:
        await _record(engine, config, session, MEMBER_ADDED)
        await _record(engine, config, session, END)
        assert engine.worker is not None
        await engine.worker.run_until_idle(max_wait=5)
        jobs = {j.event_type: j for j in await engine.store.list_jobs(JobFilter())}
        assert jobs[MEMBER_ADDED].status is JobStatus.DEAD
        assert jobs[END].status is JobStatus.DONE
    finally:
        await engine.aclose()
    assert _kinds(hook) == ["session_report"]


async def test_a_template_error_parks_the_job_with_file_and_line(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    templates = tmp_path / "tpl"
    templates.mkdir()
    (templates / "chat.txt").write_text("ok\n{{ session.no_such_thing.deeper }}\n")
    config = _config(tmp_path, sim, hook.url, templates=str(templates))
    session = _session(sim)
    engine = await _engine(config)
    try:
        await _record(engine, config, session, END)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        [job] = await engine.store.list_jobs(JobFilter())
        assert job.status is JobStatus.DEAD
        assert "chat.txt" in (job.last_error or "") and "line 2" in (job.last_error or "")
    finally:
        await engine.aclose()
    assert hook.state.of_kind("session_report") == []


async def test_graceful_shutdown_releases_what_it_cannot_finish(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    config = _config(tmp_path, sim, hook.url, settings={"timeout": 10.0}).model_copy()
    config = config.model_copy(
        update={"engine": config.engine.model_copy(update={"shutdown_grace_seconds": 0.2})}
    )
    session = _session(sim)
    hook.state.slow_next(3.0, 1)
    engine = await _engine(config)
    try:
        await _record(engine, config, session, END)
        engine.start()
        for _ in range(100):
            if hook.state.requests:
                break
            await asyncio.sleep(0.05)
        await engine.stop()
        [job] = await engine.store.list_jobs(JobFilter())
        assert job.status is JobStatus.QUEUED and job.attempts == 0
        assert await _attempts(engine) == ["released"]
    finally:
        await engine.aclose()


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff(n, base=1.0, cap=30.0, rng=rng) for n in range(8)]
    for n, delay in enumerate(delays):
        step = min(30.0, 2.0**n)
        assert step / 2 <= delay <= step
    assert backoff(0, base=1.0, cap=30.0, rng=rng, at_least=12.0) == 12.0


@pytest.mark.parametrize("mode", ["run", "run_until_idle"])
async def test_leases_of_held_jobs_are_extended_while_they_run(
    tmp_path: Path, sim: SimAppliance, hook: Hook, mode: str
) -> None:
    config = _config(tmp_path, sim, hook.url, settings={"timeout": 10.0})
    config = config.model_copy(
        update={"engine": config.engine.model_copy(update={"lease_seconds": 0.3})}
    )
    session = _session(sim)
    hook.state.slow_next(1.2, 1)
    engine = await _engine(config)
    try:
        await _record(engine, config, session, END)
        assert engine.worker is not None
        stop = asyncio.Event()
        running: asyncio.Task[Any] = asyncio.create_task(
            engine.worker.run(stop, poll_interval=0.05)
            if mode == "run"
            else engine.worker.run_until_idle()
        )
        # Well past the 0.3 s lease, another worker must still find nothing to claim.
        await asyncio.sleep(0.8)
        assert await engine.store.claim("intruder", limit=10, lease=5) == []
        for _ in range(100):
            if hook.state.of_kind("session_report"):
                break
            await asyncio.sleep(0.05)
        stop.set()
        await running
        [job] = await engine.store.list_jobs(JobFilter())
        assert job.status is JobStatus.DONE
        assert await _attempts(engine) == ["done"]
    finally:
        await engine.aclose()


class _FlakyStore(MemoryStore):
    """A store whose claims fail ``failures`` times (a database restart), then work."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def claim(self, *args: Any, **kwargs: Any) -> Any:
        if self.failures > 0:
            self.failures -= 1
            raise StoreUnavailableError("the store database is unreachable (test)")
        return await super().claim(*args, **kwargs)


async def test_the_worker_outlives_a_store_outage(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    """A worker whose claims fail keeps trying; it does not end and leave the node taking
    events that nobody processes."""
    config = _config(tmp_path, sim, hook.url)
    session = _session(sim)
    store = _FlakyStore(failures=3)
    engine = Engine(config, store=store)
    await engine.open()
    try:
        await _record(engine, config, session, END)
        assert engine.worker is not None
        stop = asyncio.Event()
        running = asyncio.create_task(engine.worker.run(stop, poll_interval=0.05))
        for _ in range(200):
            if hook.state.of_kind("session_report"):
                break
            await asyncio.sleep(0.05)
        assert store.failures == 0 and not running.done()
        stop.set()
        await running
        assert len(hook.state.of_kind("session_report")) == 1
    finally:
        await engine.aclose()
