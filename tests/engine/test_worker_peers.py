"""Workers against slow, broken and overly generous appliances: one must not stall or
poison the others. Real HTTP to simulated appliances (with report faults) and a webhook."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.events import END
from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config, parse_config
from rsbridge.engine.intake import job_specs
from rsbridge.engine.poller import watermark_name
from rsbridge.engine.runtime import YOUNG_GENERATION_THRESHOLD, Engine, tune_garbage_collector
from rsbridge.engine.store.base import IncomingEvent, Job, JobFilter, JobStatus
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.sim.appliance.faults import Damage
from rsbridge.sim.appliance.scenarios import SessionGenerator

from .conftest import Hook, SimAppliance, serve_sim

# A report trickled at one byte per 50 ms takes minutes: far past every bound below.
TRICKLE = 0.05
# Generous bounds that prove "did not wait for the slow appliance" on a noisy machine.
BOUND = 15.0


@pytest.fixture
def slow() -> Iterator[SimAppliance]:
    with serve_sim(seed=5) as running:
        running.state.report_faults.trickle_seconds = TRICKLE
        yield running


def _config(
    tmp_path: Path,
    hook: Hook,
    appliances: dict[str, SimAppliance],
    *,
    deadlines: dict[str, float] | None = None,
    engine: dict[str, Any] | None = None,
    retry_limit: int = 3,
    **integration: Any,
) -> Config:
    """One webhook integration per appliance, named after it; call deadlines 60 s unless
    ``deadlines`` says otherwise."""
    return parse_config(
        {
            "engine": {
                "store": str(tmp_path / "engine.db"),
                "backoff_base_seconds": 0.05,
                "backoff_max_seconds": 0.2,
                **(engine or {}),
            },
            "appliances": [
                {
                    "id": name,
                    "host": sim.host,
                    "client_id": sim.client_id,
                    "client_secret": sim.client_secret,
                    "use_plain_http": True,
                    "call_deadline_seconds": (deadlines or {}).get(name, 60.0),
                }
                for name, sim in appliances.items()
            ],
            "integrations": [
                {
                    "name": name,
                    "appliance": name,
                    "connector": "webhook",
                    "association": {"on_unmatched": "create"},
                    "retry_limit": retry_limit,
                    "settings": {"url": hook.url, "max_attempts": 1, "timeout": 5.0},
                    **integration,
                }
                for name in appliances
            ],
        }
    )


def _sessions(sim: SimAppliance, count: int, seed: int) -> list[SupportSession]:
    sessions = list(SessionGenerator(seed).sessions(count))
    for session in sessions:
        sim.state.add_report(session)
    return sessions


async def _end(engine: Engine, appliance: str, session: SupportSession) -> None:
    await engine.store.record_event(
        IncomingEvent(appliance, END, "outbound", f"{appliance}/{session.lsid}", lsid=session.lsid),
        job_specs(engine.config, appliance, END, polled=False),
    )


async def _engine(config: Config) -> Engine:
    engine = Engine(config, store=MemoryStore())
    await engine.open()
    return engine


def _reported(hook: Hook, integration: str) -> list[str]:
    return [
        str(d.body["lsid"])
        for d in hook.state.of_kind("session_report")
        if d.body.get("integration") == integration
    ]


async def _jobs_of(engine: Engine, integration: str) -> list[Job]:
    return await engine.store.list_jobs(JobFilter(integration=integration, limit=500))


async def _until(check: Any, what: str) -> None:
    for _ in range(int(BOUND / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not within {BOUND} s")


async def test_a_trickling_appliance_does_not_hold_the_others(
    tmp_path: Path, hook: Hook, slow: SimAppliance, sim: SimAppliance
) -> None:
    config = _config(tmp_path, hook, {"slow": slow, "healthy": sim})
    late = _sessions(slow, 1, seed=1)
    healthy = _sessions(sim, 2, seed=2)
    engine = await _engine(config)
    try:
        await _end(engine, "slow", late[0])  # claimed first, in the same batch
        await _end(engine, "healthy", healthy[0])
        engine.start()

        async def delivered() -> bool:
            return len(_reported(hook, "healthy")) == 1

        await _until(delivered, "the healthy appliance's session")
        # Claims go on while the slow fetch runs: a session that ends now is delivered too.
        await _end(engine, "healthy", healthy[1])

        async def both() -> bool:
            return len(_reported(hook, "healthy")) == 2

        await _until(both, "a later session of the healthy appliance")
        [job] = await _jobs_of(engine, "slow")
        assert job.status is JobStatus.RUNNING  # still waiting for its report
    finally:
        await engine.aclose()
    assert _reported(hook, "slow") == []


async def test_a_backlog_of_a_trickling_appliance_does_not_hold_the_others(
    tmp_path: Path, hook: Hook, slow: SimAppliance, sim: SimAppliance
) -> None:
    # Three batches of the slow appliance are queued before one healthy session: the
    # worker must not stop claiming once the slow appliance has a batch waiting.
    config = _config(
        tmp_path, hook, {"slow": slow, "healthy": sim}, engine={"report_batch_size": 5}
    )
    backlog = _sessions(slow, 15, seed=3)
    [healthy] = _sessions(sim, 1, seed=4)
    engine = await _engine(config)
    try:
        for session in backlog:
            await _end(engine, "slow", session)
        await _end(engine, "healthy", healthy)
        engine.start()

        async def delivered() -> bool:
            return _reported(hook, "healthy") == [healthy.lsid]

        await _until(delivered, "the healthy appliance's session behind the backlog")
        waiting = [j for j in await _jobs_of(engine, "slow") if j.status is JobStatus.RUNNING]
        assert len(waiting) == 5, "the slow appliance holds one batch, no more"
    finally:
        await engine.aclose()


async def test_shutdown_does_not_wait_for_a_trickling_fetch(
    tmp_path: Path, hook: Hook, slow: SimAppliance
) -> None:
    config = _config(tmp_path, hook, {"slow": slow}, engine={"shutdown_grace_seconds": 0.5})
    [session] = _sessions(slow, 1, seed=1)
    engine = await _engine(config)
    try:
        await _end(engine, "slow", session)
        engine.start()

        async def claimed() -> bool:
            return [j.status for j in await _jobs_of(engine, "slow")] == [JobStatus.RUNNING]

        await _until(claimed, "the claim")
        await asyncio.sleep(0.3)  # the fetch is under way, a byte at a time
        async with asyncio.timeout(BOUND):  # the report would take minutes
            await engine.stop()
        [job] = await _jobs_of(engine, "slow")
        # Released unharmed: no attempt used up, ready for the next start.
        assert (job.status, job.attempts) == (JobStatus.QUEUED, 0)
        assert [a.outcome for a in await engine.store.attempts(job.id)] == ["released"]
    finally:
        await engine.aclose()


async def test_shutdown_does_not_wait_for_a_poll_of_a_trickling_appliance(
    tmp_path: Path, hook: Hook, slow: SimAppliance
) -> None:
    config = _config(
        tmp_path,
        hook,
        {"slow": slow},
        engine={"shutdown_grace_seconds": 0.5},
        polling_events=[END],
    )
    slow.state.report_faults.trickle_seconds = 1.0  # even an empty listing takes minutes
    engine = await _engine(config)
    try:
        engine.start()
        await asyncio.sleep(0.5)  # the first poll is under way, its listing a byte at a time
        tasks = engine.background_tasks()
        assert tasks["worker"] and tasks["poller-slow"]
        async with asyncio.timeout(BOUND):  # the listing would take minutes
            await engine.stop()
        # That poll never counted: the next start polls the same window again.
        assert await engine.store.get_watermark(watermark_name("slow")) is None
    finally:
        await engine.aclose()


async def test_a_fetch_past_its_deadline_fails_only_its_own_jobs(
    tmp_path: Path, hook: Hook, slow: SimAppliance, sim: SimAppliance
) -> None:
    appliances = {"slow": slow, "healthy": sim}
    config = _config(tmp_path, hook, appliances, deadlines={"slow": 0.5}, retry_limit=1)
    late = _sessions(slow, 1, seed=1)
    healthy = _sessions(sim, 1, seed=2)
    engine = await _engine(config)
    try:
        await _end(engine, "slow", late[0])
        await _end(engine, "healthy", healthy[0])
        assert engine.worker is not None
        async with asyncio.timeout(BOUND):
            await engine.worker.run_until_idle()
        [job] = await _jobs_of(engine, "slow")
        attempts = await engine.store.attempts(job.id)
        assert [a.outcome for a in attempts] == ["retry", "dead"]  # retryable, then spent
        assert all("call deadline of 0.5 s" in (a.error or "") for a in attempts)
        [other] = await _jobs_of(engine, "healthy")
        assert other.status is JobStatus.DONE
    finally:
        await engine.aclose()
    assert _reported(hook, "healthy") == [healthy[0].lsid]


async def test_a_session_with_an_unreadable_value_fails_alone(
    tmp_path: Path, hook: Hook, sim: SimAppliance
) -> None:
    config = _config(tmp_path, hook, {"default": sim})
    sessions = _sessions(sim, 11, seed=4)
    broken = sessions[0]  # ten healthy sessions come after it in the same answer
    sim.state.report_faults.damaged[broken.lsid] = "value"
    engine = await _engine(config)
    try:
        for session in sessions:
            await _end(engine, "default", session)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        assert engine.worker.appliance_calls == 1  # one answer, read past the damage
        jobs = {j.lsid: j for j in await _jobs_of(engine, "default")}
        dead = jobs[broken.lsid]
        assert [a.outcome for a in await engine.store.attempts(dead.id)] == ["dead"]  # at once
        assert broken.lsid in (dead.last_error or "") and "12abc" in (dead.last_error or "")
        assert all(j.status is JobStatus.DONE for j in jobs.values() if j is not dead)
    finally:
        await engine.aclose()
    assert sorted(_reported(hook, "default")) == sorted(s.lsid for s in sessions[1:])


@pytest.mark.parametrize("how", ["markup", "elements"])
async def test_damage_the_parser_cannot_read_past_fails_only_its_session(
    tmp_path: Path, hook: Hook, sim: SimAppliance, how: Damage
) -> None:
    config = _config(tmp_path, hook, {"default": sim}, retry_limit=1)
    sessions = _sessions(sim, 6, seed=4)
    broken = sessions[2]
    sim.state.report_faults.damaged[broken.lsid] = how
    engine = await _engine(config)
    try:
        for session in sessions:
            await _end(engine, "default", session)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        jobs = {j.lsid: j for j in await _jobs_of(engine, "default")}
        dead = jobs.pop(broken.lsid)
        assert dead.status is JobStatus.DEAD
        expected = "malformed report XML" if how == "markup" else "250000 elements"
        assert expected in (dead.last_error or "")
        assert all(j.status is JobStatus.DONE for j in jobs.values())
    finally:
        await engine.aclose()
    assert sorted(_reported(hook, "default")) == sorted(s.lsid for s in sessions if s is not broken)


async def test_sessions_nobody_asked_for_are_ignored_and_counted(
    tmp_path: Path, hook: Hook, sim: SimAppliance
) -> None:
    config = _config(tmp_path, hook, {"default": sim})
    sessions = _sessions(sim, 40, seed=6)
    sim.state.report_faults.unrequested = True  # every answer holds every session
    wanted = sessions[17]
    engine = await _engine(config)
    try:
        await _end(engine, "default", wanted)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
        extra = len(sim.state.report_sessions()) - 1
        assert engine.worker.unrequested_sessions == extra > 0
        [job] = await _jobs_of(engine, "default")
        assert job.status is JobStatus.DONE
    finally:
        await engine.aclose()
    assert _reported(hook, "default") == [wanted.lsid]


async def test_the_next_batch_is_fetched_while_every_slot_is_busy(
    tmp_path: Path, hook: Hook, sim: SimAppliance
) -> None:
    # Two slots, batches of three: with three jobs runnable and both slots delivering,
    # the worker claims and fetches the next batch already, so that its reports are there
    # when a slot frees (a backlog's workers do not wait for each batch's fetch).
    config = _config(
        tmp_path, hook, {"healthy": sim}, engine={"workers": 2, "report_batch_size": 3}
    )
    sessions = _sessions(sim, 6, seed=6)
    hook.state.delay = 2.0  # every delivery holds its slot
    engine = await _engine(config)
    try:
        for session in sessions:
            await _end(engine, "healthy", session)
        engine.start()

        async def second_fetch() -> bool:
            return sim.state.calls["SupportSession"] >= 2

        await _until(second_fetch, "the second batch's fetch")
        assert hook.state.of_kind("session_report") == [], "fetched before a slot freed"
        hook.state.delay = 0.0

        async def all_delivered() -> bool:
            return len(_reported(hook, "healthy")) == 6

        await _until(all_delivered, "every session")
    finally:
        await engine.aclose()
    assert sim.state.calls["SupportSession"] == 2


async def test_starting_the_engine_freezes_what_exists(
    tmp_path: Path, hook: Hook, sim: SimAppliance
) -> None:
    # The collector's full passes stop the event loop: what the engine built before it
    # starts lives as long as the process and is left out of them (gc.freeze).
    tune_garbage_collector.cache_clear()
    gc.unfreeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(700, *thresholds[1:])
    engine = await _engine(_config(tmp_path, hook, {"healthy": sim}))
    try:
        assert gc.get_freeze_count() == 0
        built = engine.worker
        engine.start()
        assert gc.get_freeze_count() > 0 and gc.is_tracked(built)
        assert not any(o is built for o in gc.get_objects())  # frozen: out of every pass
        assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, *thresholds[1:])
        frozen = gc.get_freeze_count()
        await engine.stop()
        engine.start()  # once per process: nothing more is frozen
        assert gc.get_freeze_count() <= frozen  # (frozen objects freed since count down)
    finally:
        await engine.aclose()
        gc.unfreeze()
        gc.set_threshold(*thresholds)


async def test_a_young_threshold_chosen_by_the_embedding_program_is_kept(
    tmp_path: Path, hook: Hook, sim: SimAppliance
) -> None:
    tune_garbage_collector.cache_clear()
    thresholds = gc.get_threshold()
    gc.set_threshold(5000, *thresholds[1:])
    engine = await _engine(_config(tmp_path, hook, {"healthy": sim}))
    try:
        engine.start()
        assert gc.get_threshold()[0] == 5000
    finally:
        await engine.aclose()
        gc.unfreeze()
        gc.set_threshold(*thresholds)
