"""Rendering in other processes (``[engine] render_processes``): the same output as
rendering in-process, template errors intact, nothing lost when a child dies, no child
left after the engine stops."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from pydantic import ValidationError

from rsbridge import fastpaths
from rsbridge.appliance.report_model import ExitSurvey, SupportSession
from rsbridge.config import EngineConfig
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.engine import render_pool
from rsbridge.engine.render import Renderer
from rsbridge.engine.render_pool import MAX_BROKEN_IN_A_ROW, RendererSpec, RenderPool
from rsbridge.engine.runtime import Engine
from rsbridge.errors import TemplateError
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving
from tests import strategies

from .conftest import SimAppliance, drained, emit, engine_config
from .test_pipeline import _recent
from .test_render_fast import HOSTILE, _generated, _hostile

SPEC = RendererSpec()
IMPORTS = RendererSpec(import_events=("chat message", "SESSION_NOTE_ADDED"))
SHARED = RenderPool({"all": SPEC}, {"all": SPEC.build()}, 1)
"""For the hypothesis test: one child for every example (closed at the module's end)."""


@pytest.fixture(scope="module", autouse=True)
def _close_shared() -> Iterator[None]:
    yield
    asyncio.run(SHARED.aclose())


@pytest.fixture
async def pool() -> AsyncIterator[RenderPool]:
    specs = {"all": SPEC, "some": IMPORTS}
    pool = RenderPool(specs, {name: spec.build() for name, spec in specs.items()}, 1)
    try:
        yield pool
    finally:
        await pool.aclose()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead and not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


async def _same(pool: RenderPool, name: str, session: SupportSession) -> None:
    here = pool._renderers[name]  # the in-process renderer of the same settings
    for templates in (None, frozenset({"chat.txt", "report.html"})):
        assert await pool.render(name, session, templates) == here.render(session, templates)
    for kind in ("customer", "rep"):
        surveys = [*getattr(session, f"{kind}_surveys"), ExitSurvey()]
        for survey in surveys:
            ours = await pool.render_survey(name, session, kind, survey)
            assert ours == here.render_survey(session, kind, survey)


async def test_generated_sessions_render_the_same_in_a_child(pool: RenderPool) -> None:
    for session in _generated(5):
        await _same(pool, "all", session)
        await _same(pool, "some", session)
    assert pool.pids() and pool.in_process == 0


async def test_hostile_sessions_render_the_same_in_a_child(pool: RenderPool) -> None:
    for value in HOSTILE:
        for number, session in enumerate(_generated(2)):
            await _same(pool, "all", _hostile(session, value, number))
    # Lone surrogates travel too (pickle keeps them).
    await _same(pool, "all", _hostile(_generated(1)[0], "\ud800 half", 1))
    assert pool.in_process == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(session=strategies.session)
def test_any_session_renders_the_same_in_a_child(session: SupportSession) -> None:
    asyncio.run(_same(SHARED, "all", session))


async def test_a_template_error_arrives_whole(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("ok\n{{ session.no_such_field }}\n")
    spec = RendererSpec(override_dir=tmp_path)
    here = spec.build()
    pool = RenderPool({"x": spec}, {"x": here}, 1)
    session = _generated(1)[0]
    try:
        with pytest.raises(TemplateError) as expected:
            here.render(session)
        with pytest.raises(TemplateError) as got:
            await pool.render("x", session, None)
        assert type(got.value) is type(expected.value)
        assert got.value.message == expected.value.message
        assert (got.value.template, got.value.line) == ("notes.txt", 2)
        assert got.value.retryable is False and pool.in_process == 0
        # Not a report template: the same ValueError as in-process.
        with pytest.raises(ValueError, match=r"not report templates: chat\.md"):
            await pool.render("x", session, {"chat.md"})
    finally:
        await pool.aclose()


async def test_a_child_outlives_sigterm_and_sigint(pool: RenderPool) -> None:
    session = _generated(1)[0]
    await pool.render("all", session, None)
    [pid] = pool.pids()
    # systemd and a terminal signal the whole group; the engine ends its children itself.
    os.kill(pid, signal.SIGTERM)
    os.kill(pid, signal.SIGINT)
    await _same(pool, "all", session)
    assert pool.pids() == [pid] and pool.in_process == 0


async def test_a_killed_child_loses_no_job(pool: RenderPool) -> None:
    sessions = _generated(4)
    here = pool._renderers["all"]
    await _same(pool, "all", sessions[0])
    [pid] = pool.pids()
    # Killed between jobs, then while jobs are in flight: every job is rendered.
    os.kill(pid, signal.SIGKILL)
    assert await pool.render("all", sessions[1], None) == here.render(sessions[1])
    [second] = pool.pids()
    assert second != pid
    jobs = [asyncio.ensure_future(pool.render("all", s, None)) for s in sessions]
    await asyncio.sleep(0)
    os.kill(second, signal.SIGKILL)
    assert await asyncio.gather(*jobs) == [here.render(s) for s in sessions]
    assert not _alive(pid) and not pool.disabled


async def test_a_pool_that_keeps_breaking_falls_back_to_this_thread(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    missing.mkdir()
    spec = RendererSpec(override_dir=missing)
    here = spec.build()
    missing.rmdir()  # every child's renderer now fails to build: each pool breaks
    pool = RenderPool({"x": spec}, {"x": here}, 1)
    session = _generated(1)[0]
    try:
        assert await pool.render("x", session, None) == here.render(session)
        assert pool.in_process == 1 and not pool.disabled  # two pools broke
        assert await pool.render("x", session, None) == here.render(session)
        assert pool.disabled and pool.in_process == 2
        pool.start()  # starts nothing now
        assert pool.pids() == []
        survey = await pool.render_survey("x", session, "rep", ExitSurvey())
        assert survey == here.render_survey(session, "rep", ExitSurvey())
    finally:
        await pool.aclose()
    assert MAX_BROKEN_IN_A_ROW == 3


async def test_close_ends_the_children_and_a_later_job_starts_them_again(
    pool: RenderPool,
) -> None:
    pool.start()
    session = _generated(1)[0]
    await pool.render("all", session, None)
    [pid] = pool.pids()
    await pool.aclose()
    assert not _alive(pid) and pool.pids() == []
    assert await pool.render("all", session, None) == SPEC.build().render(session)
    assert pool.pids() not in ([], [pid])


async def test_close_kills_a_child_that_does_not_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(render_pool, "_CLOSE_GRACE_SECONDS", 0.2)
    # A template that renders for hours: the child is still busy when the engine stops.
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    (tmp_path / "chat.txt").write_text(loop)
    spec = RendererSpec(override_dir=tmp_path)
    pool = RenderPool({"x": spec}, {"x": spec.build()}, 1)
    pool.start()
    job = asyncio.ensure_future(pool.render("x", _generated(1)[0], {"chat.txt"}))
    [pid] = pool.pids()  # started at once
    await asyncio.sleep(0.3)
    job.cancel()  # the engine's workers are done (or cancelled) before the pool closes
    await pool.aclose()
    assert not _alive(pid) and pool.pids() == []
    assert job.cancelled()
    assert "still busy at shutdown; killed" in caplog.text


ORPHAN = """
import asyncio, os, signal
from rsbridge.engine.render_pool import RendererSpec, RenderPool
from rsbridge.sim.appliance.scenarios import SessionGenerator

async def main() -> None:
    spec = RendererSpec()
    pool = RenderPool({"a": spec}, {"a": spec.build()}, 2)
    pool.start()
    await pool.render("a", next(iter(SessionGenerator(seed=5).sessions(1))), None)
    print(*pool.pids(), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

if __name__ == "__main__":
    asyncio.run(main())
"""


async def test_children_exit_when_their_engine_dies(tmp_path: Path) -> None:
    script = tmp_path / "engine.py"
    script.write_text(ORPHAN)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE
    )
    line = await process.stdout.readline() if process.stdout else b""
    assert await process.wait() == -signal.SIGKILL
    pids = [int(pid) for pid in line.split()]
    assert len(pids) == 2
    for _ in range(200):
        if not any(_alive(pid) for pid in pids):
            break
        await asyncio.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _rendered(path: Path) -> list[tuple[str, Any, Any]]:
    return sorted(
        (d["key"], d.get("parts") or d.get("text"), d.get("html"))
        for d in read_deliveries(path)
        if d["kind"] != "ticket"
    )


async def _run(tmp_path: Path, sim: SimAppliance, sessions: list[SupportSession], n: int) -> Any:
    config = engine_config(tmp_path, sim, engine={"render_processes": n})
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url:
        engine.start()
        await emit(url, sessions)
        await drained(engine)
        pool = engine.render_pool
        assert (pool is not None) == (n > 0)
        pids = pool.pids() if pool is not None else []
        assert len(pids) == n
        await engine.stop()
        # Stopped: no rendering process is left.
        assert not any(_alive(pid) for pid in pids)
        assert pool is None or pool.pids() == []
    return _rendered(tmp_path / "deliveries.jsonl")


async def test_the_engine_delivers_the_same_with_a_render_process(
    tmp_path: Path, sim: SimAppliance
) -> None:
    sessions = [_recent(s) for s in SessionGenerator(11).sessions(6)]
    assert any(s.customer_surveys or s.rep_surveys for s in sessions)
    for session in sessions:
        sim.state.add_report(session)
    (tmp_path / "here").mkdir()
    (tmp_path / "pool").mkdir()
    here = await _run(tmp_path / "here", sim, sessions, 0)
    assert len(here) > len(sessions)  # the reports and surveys
    assert await _run(tmp_path / "pool", sim, sessions, 1) == here


async def test_no_pool_with_the_fast_paths_off(tmp_path: Path) -> None:
    config = engine_config(tmp_path, None, engine={"render_processes": 2})
    with fastpaths.turned_off():
        engine = Engine(config)
        engine.build()
    assert engine.render_pool is None
    assert isinstance(engine.renderers["audit"], Renderer)
    assert not engine.renderers["audit"].fast_paths
    fast = Engine(config)
    fast.build()
    assert fast.render_pool is not None and fast.render_pool.processes == 2


def test_render_processes_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EngineConfig().render_process_count() == 0
    assert EngineConfig.model_validate({"render_processes": 3}).render_process_count() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert EngineConfig(render_processes="auto").render_process_count() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(64)))
    assert EngineConfig(render_processes="auto", workers=4).render_process_count() == 4
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert EngineConfig(render_processes="auto").render_process_count() == 0
    for wrong in (-1, 65, "many"):
        with pytest.raises(ValidationError):
            EngineConfig.model_validate({"render_processes": wrong})
