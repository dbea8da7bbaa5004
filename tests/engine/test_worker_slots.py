"""What a worker slot is held for: a job's calls to its peers. A session end's report is
rendered before its job takes a slot (where a child process renders it), and a job's
finish is committed after it gives the slot back. With one slot, another job's work
shows up while a job holds the slot only when that is so."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection
from pathlib import Path
from typing import Any

from rsbridge.appliance.report_model import SupportSession
from rsbridge.connectors.base import RenderedReport, SessionDelivery, Ticket, WriteResult
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import Finish, Finished, JobFilter, JobStatus
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.sim.appliance.scenarios import SessionGenerator

from .conftest import Hook, SimAppliance, record_ends, webhook_config
from .test_pipeline import _recent

WAIT_SECONDS = 10.0
"""How long a held step waits for the other job's work to show up (it shows up at once
when the slot is not held for it; the wait runs out only when the test fails)."""


async def _until(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` came true within :data:`WAIT_SECONDS`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT_SECONDS
    while not condition():
        if loop.time() > end:
            return False
        await asyncio.sleep(0.01)
    return True


async def _engine(
    tmp_path: Path, sim: SimAppliance, hook: Hook, store: MemoryStore, *, render_processes: int
) -> tuple[Engine, list[SupportSession]]:
    config = webhook_config(
        tmp_path, sim, hook.url, engine={"workers": 1, "render_processes": render_processes}
    )
    engine = Engine(config, store=store)
    await engine.open()
    sessions = [_recent(s) for s in SessionGenerator(8).sessions(3)]
    await record_ends(store, config, sim, sessions)
    return engine, sessions


async def _all_done(engine: Engine, store: MemoryStore, hook: Hook, count: int) -> None:
    assert engine.worker is not None
    await engine.worker.run_until_idle()
    jobs = await store.list_jobs(JobFilter())
    assert [job.status for job in jobs] == [JobStatus.DONE] * count
    assert len(hook.state.of_kind("session_report")) == count


async def test_a_session_end_is_rendered_in_its_child_before_the_job_takes_a_slot(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    store = MemoryStore()
    engine, sessions = await _engine(tmp_path, sim, hook, store, render_processes=1)
    try:
        pool, connector = engine.render_pool, engine.connectors["hook"]
        assert pool is not None
        rendering: list[str] = []
        overlapped: list[bool] = []
        carried: list[bool] = []  # the session's JSON came with its rendering
        render, write = pool.render, connector.write_session_report

        async def counted_render(
            integration: str,
            session: SupportSession,
            templates: Collection[str] | None,
            *,
            session_json: bool = False,
        ) -> RenderedReport:
            rendering.append(session.lsid)
            return await render(integration, session, templates, session_json=session_json)

        async def held_write(ticket: Ticket | None, delivery: SessionDelivery) -> WriteResult:
            # The one slot is held here: another session's rendering starts meanwhile
            # only when it is rendered ahead of its slot.
            mine = delivery.session.lsid
            carried.append(delivery.report.session_json is not None)
            overlapped.append(await _until(lambda: any(lsid != mine for lsid in rendering)))
            return await write(ticket, delivery)

        pool.render = counted_render  # type: ignore[method-assign]
        connector.write_session_report = held_write  # type: ignore[method-assign]
        await _all_done(engine, store, hook, len(sessions))
        assert overlapped == [True] * len(sessions)
        assert carried == [True] * len(sessions)
        # Each report rendered once, in the child: none again in the slot.
        assert sorted(rendering) == sorted(s.lsid for s in sessions)
        assert pool.in_process == 0
    finally:
        await engine.aclose()


async def test_without_render_processes_a_report_is_rendered_in_its_slot(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    # Rendering in the event loop's thread takes the same CPU before the slot or in it:
    # it stays where the ticket is known (a session the integration skips costs none).
    store = MemoryStore()
    engine, sessions = await _engine(tmp_path, sim, hook, store, render_processes=0)
    try:
        assert engine.render_pool is None and engine.worker is not None
        renderer = engine.renderers["hook"]
        in_slot: list[bool] = []
        render = renderer.render
        busy = engine.worker._slots  # the one slot, held or not

        def watched(
            session: SupportSession,
            templates: Collection[str] | None = None,
            *,
            session_json: bool = False,
        ) -> RenderedReport:
            in_slot.append(busy.locked())
            return render(session, templates, session_json=session_json)

        renderer.render = watched  # type: ignore[method-assign]
        await _all_done(engine, store, hook, len(sessions))
        assert in_slot == [True] * len(sessions)
    finally:
        await engine.aclose()


class _HeldFinishStore(MemoryStore):
    """A store whose first finish waits for another job's delivery to start."""

    def __init__(self, hook: Hook) -> None:
        super().__init__()
        self.hook = hook
        self.overlapped: bool | None = None

    async def finish(self, job_id: int, owner: str, finish: Finish, **kw: Any) -> Finished:
        if self.overlapped is None:
            self.overlapped = False
            self.overlapped = await _until(
                lambda: len(self.hook.state.of_kind("session_report")) > 1
            )
        return await super().finish(job_id, owner, finish, **kw)


async def test_a_job_gives_its_slot_back_before_its_finish_is_committed(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    store = _HeldFinishStore(hook)
    engine, sessions = await _engine(tmp_path, sim, hook, store, render_processes=0)
    try:
        await _all_done(engine, store, hook, len(sessions))
        # While the first job's finish was being committed, the next job delivered.
        assert store.overlapped is True
    finally:
        await engine.aclose()


async def test_a_job_waits_for_its_rendering_without_holding_a_slot(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    store = MemoryStore()
    engine, sessions = await _engine(tmp_path, sim, hook, store, render_processes=1)
    try:
        pool = engine.render_pool
        assert pool is not None
        first: list[str] = []
        overlapped: list[bool] = []
        render = pool.render

        async def slow_first(
            integration: str,
            session: SupportSession,
            templates: Collection[str] | None,
            *,
            session_json: bool = False,
        ) -> RenderedReport:
            if not first:
                # The first rendering asked for (its job is the first to want the slot)
                # is held until another session's report is delivered: with the one slot
                # held by its job meanwhile, none would be.
                first.append(session.lsid)
                overlapped.append(
                    await _until(
                        lambda: any(
                            r.body.get("lsid") != session.lsid
                            for r in hook.state.of_kind("session_report")
                        )
                    )
                )
            return await render(integration, session, templates, session_json=session_json)

        pool.render = slow_first  # type: ignore[method-assign]
        await _all_done(engine, store, hook, len(sessions))
        assert overlapped == [True]
    finally:
        await engine.aclose()


async def test_a_job_starts_when_its_session_is_read_not_when_the_whole_answer_is(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    store = MemoryStore()
    engine, sessions = await _engine(tmp_path, sim, hook, store, render_processes=0)
    try:
        client = engine.appliances["default"]
        held: list[bool] = []
        support_sessions = client.support_sessions

        async def paused(*args: Any, **kwargs: Any) -> AsyncIterator[SupportSession]:
            async for session in support_sessions(*args, **kwargs):
                yield session
                if not held:
                    # The rest of the answer waits until the first session's report is
                    # delivered: its job must not wait for the whole answer.
                    held.append(
                        await _until(lambda: len(hook.state.of_kind("session_report")) == 1)
                    )

        client.support_sessions = paused  # type: ignore[method-assign]
        await _all_done(engine, store, hook, len(sessions))
        assert held == [True]
        assert engine.worker is not None
        assert engine.worker.appliance_calls == 1  # one fetch for the three sessions
    finally:
        await engine.aclose()


async def test_claims_the_worker_held_back_resume_when_they_could_take_jobs(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    # One slot and one job per claim: the appliance gets no more claims while a job
    # waits for its report, and none are made at two runnable jobs. A report arriving,
    # and a job ending, let the next claim in at once, not at the idle poll (a minute).
    config = webhook_config(tmp_path, sim, hook.url, engine={"workers": 1, "report_batch_size": 1})
    store = MemoryStore()
    engine = Engine(config, store=store)
    await engine.open()
    stop = asyncio.Event()
    try:
        sessions = [_recent(s) for s in SessionGenerator(9).sessions(6)]
        await record_ends(store, config, sim, sessions)
        assert engine.worker is not None
        running = asyncio.create_task(engine.worker.run(stop, poll_interval=60.0))
        delivered = await _until(lambda: len(hook.state.of_kind("session_report")) == len(sessions))
        stop.set()
        await running
        assert delivered
    finally:
        await engine.aclose()
