"""Rendering in child processes (``[engine] render_processes``), with real children: the
same output as in-process, template errors intact, every request answered whatever a child
does (killed, stopped, garbage, hang-up), no child left behind."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rsbridge.appliance.report_model import ExitSurvey, SupportSession
from rsbridge.config import EngineConfig
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.engine import render_pool
from rsbridge.engine.render_pool import MAX_BROKEN_IN_A_ROW, RendererSpec, RenderPool
from rsbridge.engine.runtime import Engine
from rsbridge.errors import TemplateError
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving

from . import render_pool_children
from .conftest import SimAppliance, drained, emit, engine_config
from .test_pipeline import _recent
from .test_render_fast import HOSTILE, _generated, _hostile

SPEC = RendererSpec()
IMPORTS = RendererSpec(import_events=("chat message", "SESSION_NOTE_ADDED"))
GONE_SECONDS = 20.0
"""How long a killed or ended child gets to disappear (generous: only against hangs)."""


def _pool(specs: dict[str, RendererSpec], processes: int = 1, **kwargs: Any) -> RenderPool:
    return RenderPool(specs, {n: s.build() for n, s in specs.items()}, processes, **kwargs)


@pytest.fixture
async def pool() -> AsyncIterator[RenderPool]:
    pool = _pool({"all": SPEC, "some": IMPORTS}, deadline=5.0)
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


def _reaped(pid: int) -> bool:
    """Whether ``pid`` is gone: not ours to wait for any more, and not in /proc."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not Path(f"/proc/{pid}").exists()
    return False


async def _eventually(check: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + GONE_SECONDS
    while not check():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.02)


async def _same(pool: RenderPool, name: str, session: SupportSession) -> None:
    here = pool._renderers[name]  # the in-process renderer of the same settings
    for templates in (None, frozenset({"chat.txt", "report.html"})):
        assert await pool.render(name, session, templates) == here.render(session, templates)
    # The session's JSON written with the rendering: the same bytes as here.
    written = await pool.render(name, session, None, session_json=True)
    assert written == here.render(session, None, session_json=True)
    for kind in ("customer", "rep"):
        for survey in [*getattr(session, f"{kind}_surveys"), ExitSurvey()]:
            ours = await pool.render_survey(name, session, kind, survey)
            assert ours == here.render_survey(session, kind, survey)


async def test_sessions_render_the_same_in_a_child(pool: RenderPool) -> None:
    for session in _generated(3):
        await _same(pool, "all", session)
        await _same(pool, "some", session)
    for number, value in enumerate([*HOSTILE, "\ud800 half"]):  # lone surrogates travel too
        await _same(pool, "all", _hostile(_generated(1)[0], value, number))
    assert len(pool.pids()) == 1 and pool.in_process == 0 and pool.broken == 0


async def test_an_override_directory_renders_the_same_in_a_child(tmp_path: Path) -> None:
    (tmp_path / "chat.txt").write_text("{% for e in events %}[{{ e.body }}]{% endfor %}\n")
    (tmp_path / "notes.html").write_text("<i>{{ session.lsid }}</i> {{ '<b>' }}")
    pool = _pool({"x": RendererSpec(override_dir=tmp_path)})
    try:
        session = _generated(1)[0]
        await _same(pool, "x", session)
        report = await pool.render("x", session, None)
        assert report.parts["notes"].html.endswith("&lt;b&gt;")
        assert pool.in_process == 0
    finally:
        await pool.aclose()


async def test_a_template_error_arrives_whole(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("ok\n{{ session.no_such_field }}\n")
    (tmp_path / "rep_survey.txt").write_text("{% if %}")
    spec = RendererSpec(override_dir=tmp_path)
    pool = _pool({"x": spec})
    here = pool._renderers["x"]
    session = _generated(1)[0]
    try:
        with pytest.raises(TemplateError) as expected:
            here.render(session)
        with pytest.raises(TemplateError) as got:
            await pool.render("x", session, None)
        assert type(got.value) is TemplateError
        assert str(got.value) == got.value.message == expected.value.message
        assert (got.value.template, got.value.line) == ("notes.txt", 2)
        assert got.value.retryable is False
        with pytest.raises(TemplateError) as survey:
            await pool.render_survey("x", session, "rep", ExitSurvey())
        assert (survey.value.template, survey.value.line) == ("rep_survey.txt", 1)
        # Not a report template: the same ValueError as in-process.
        with pytest.raises(ValueError, match=r"not report templates: chat\.md"):
            await pool.render("x", session, {"chat.md"})
        # The child answered each time: nothing was broken, nothing rendered here.
        assert pool.in_process == 0 and pool.broken == 0 and len(pool.pids()) == 1
    finally:
        await pool.aclose()


async def test_a_child_killed_mid_request_loses_nothing(pool: RenderPool) -> None:
    sessions = _generated(2)
    here = pool._renderers["all"]
    pool.start()
    await _same(pool, "all", sessions[0])
    [pid] = pool.pids()
    # Stopped first, so that it holds the request unanswered when it is killed.
    os.kill(pid, signal.SIGSTOP)
    job = asyncio.ensure_future(pool.render("all", sessions[1], None))
    await _eventually(lambda: not pool._idle)  # the request went to the child
    await asyncio.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    assert await job == here.render(sessions[1])
    [second] = pool.pids()
    assert second != pid and pool.broken == 1 and pool.in_process == 0
    await _eventually(lambda: _reaped(pid))
    await _same(pool, "all", sessions[1])
    assert pool.pids() == [second]


async def test_a_child_holds_two_requests_at_once() -> None:
    # This child answers only once it has read two requests: a pool that waited for each
    # answer before sending the next request would meet the deadline instead.
    pool = _pool({"all": SPEC}, deadline=5.0)
    pool._target = render_pool_children.answers_two_at_once
    sessions = _generated(4)
    here = pool._renderers["all"]
    try:
        answers = await asyncio.gather(*(pool.render("all", s, None) for s in sessions))
        assert answers == [here.render(s) for s in sessions]
        assert pool.broken == 0 and pool.in_process == 0 and len(pool.pids()) == 1
    finally:
        await pool.aclose()


async def test_answers_in_the_socket_together_are_taken_in_one_turn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The request whose turn it is takes the answers behind its own too: waiting for the
    # event loop to give each its turn left the child blocked on sending them.
    pool = _pool({"all": SPEC}, deadline=10.0)
    pool._target = render_pool_children.answers_three_together
    sessions = _generated(3)[:3]
    here = pool._renderers["all"]
    waits: list[int] = []
    receive = render_pool._Child.receive

    async def counted(child: render_pool._Child) -> tuple[Any, ...]:
        waits.append(child.pid)
        return await receive(child)

    monkeypatch.setattr(render_pool._Child, "receive", counted)
    try:
        answers = await asyncio.gather(*(pool.render("all", s, None) for s in sessions))
        assert answers == [here.render(s) for s in sessions]
        assert pool.broken == 0 and pool.in_process == 0
        assert len(waits) == 2  # the ready frame, then one turn for the three answers
    finally:
        await pool.aclose()


async def test_the_deadline_of_a_queued_request_starts_with_its_turn() -> None:
    # 1 s a request, a deadline of 2.5 s: the third request sent waits 3 s in all, but
    # only 1 s once the answers before it are read. The child is not broken. (Margins
    # for a loaded machine: 1.5 s a request; its templates are compiled by the first.)
    pool = _pool({"all": SPEC}, deadline=2.5)
    pool._target = render_pool_children.answers_slowly
    sessions = _generated(2)[:3]
    here = pool._renderers["all"]
    try:
        assert await pool.render("all", sessions[0], None) == here.render(sessions[0])
        answers = await asyncio.gather(*(pool.render("all", s, None) for s in sessions))
        assert answers == [here.render(s) for s in sessions]
        assert pool.broken == 0 and pool.in_process == 0
    finally:
        await pool.aclose()


async def test_a_child_killed_with_two_requests_counts_once_and_loses_neither(
    pool: RenderPool,
) -> None:
    sessions = _generated(2)[:3]
    here = pool._renderers["all"]
    await _same(pool, "all", sessions[0])
    [pid] = pool.pids()
    os.kill(pid, signal.SIGSTOP)
    jobs = [asyncio.ensure_future(pool.render("all", s, None)) for s in sessions[1:]]
    await _eventually(lambda: any(c.users == 2 for c in pool._busy))
    await asyncio.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    assert await asyncio.gather(*jobs) == [here.render(s) for s in sessions[1:]]
    assert pool.broken == 1 and pool.in_process == 0 and not pool.disabled
    [second] = pool.pids()
    assert second != pid
    await _eventually(lambda: _reaped(pid))


@pytest.mark.parametrize("size", [0, 8 * 1024 * 1024])
async def test_a_stopped_child_meets_the_deadline(size: int) -> None:
    # The 8 MB request must still fit the deadline on its retry (a new child rendering and
    # pickling 8 MB): 1 s did not on a loaded CI machine.
    pool = _pool({"all": SPEC}, deadline=4.0 if size else 1.0)
    session = _generated(1)[0]
    if size:  # more than the socket holds: the send itself waits for the stopped child
        session = dataclasses.replace(session, external_key="k" * size)
    here = pool._renderers["all"]
    try:
        await pool.render("all", session, None)
        [pid] = pool.pids()
        os.kill(pid, signal.SIGSTOP)
        assert await pool.render("all", session, None) == here.render(session)
        assert pool.broken == 1 and pool.in_process == 0
        [second] = pool.pids()
        assert second != pid
        await _eventually(lambda: _reaped(pid))
    finally:
        await pool.aclose()


@pytest.mark.parametrize(
    "misbehaving", ["not_a_pickle", "too_large", "not_an_answer", "wrong_request", "hangs_up"]
)
async def test_a_child_answering_garbage_is_replaced(misbehaving: str) -> None:
    pool = _pool({"all": SPEC}, deadline=5.0)
    pool._target = getattr(render_pool_children, misbehaving)
    session = _generated(1)[0]
    here = pool._renderers["all"]
    try:
        # Both children answer garbage: the request is rendered here.
        assert await pool.render("all", session, None) == here.render(session)
        assert pool.broken == 2 and pool.in_process == 1 and pool.pids() == []
        # A well-behaved child next: answered there, and the count of broken ones resets.
        pool._target = render_pool._child_main
        await _same(pool, "all", session)
        assert pool.in_process == 1 and not pool.disabled and len(pool.pids()) == 1
    finally:
        await pool.aclose()


async def test_children_that_keep_breaking_leave_rendering_in_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "gone"
    missing.mkdir()
    pool = _pool({"x": RendererSpec(override_dir=missing)})
    missing.rmdir()  # every child's renderer now fails to build: each child is broken
    here = pool._renderers["x"]
    session = _generated(1)[0]
    try:
        with caplog.at_level(logging.WARNING, logger=render_pool.__name__):
            assert await pool.render("x", session, None) == here.render(session)
            assert pool.broken == 2 and pool.in_process == 1 and not pool.disabled
            assert await pool.render("x", session, None) == here.render(session)
            assert pool.broken == MAX_BROKEN_IN_A_ROW == 3 and pool.disabled
            survey = await pool.render_survey("x", session, "rep", ExitSurvey())
            assert survey == here.render_survey(session, "rep", ExitSurvey())
            pool.start()  # starts nothing now
            assert pool.pids() == [] and pool.broken == 3 and pool.in_process == 3
        assert caplog.text.count("rendering in-process from now on") == 1
        assert str(missing) not in caplog.text  # logs name pids and reasons only
    finally:
        await pool.aclose()


async def test_children_ignore_sigint_and_sigterm(pool: RenderPool) -> None:
    session = _generated(1)[0]
    await pool.render("all", session, None)
    [pid] = pool.pids()
    # A terminal and systemd signal the whole group; the engine ends its children itself.
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    await _same(pool, "all", session)
    assert pool.pids() == [pid] and pool.broken == 0


async def test_a_cancelled_request_retires_its_child(pool: RenderPool) -> None:
    session = _generated(1)[0]
    await pool.render("all", session, None)
    [pid] = pool.pids()
    os.kill(pid, signal.SIGSTOP)
    job = asyncio.ensure_future(pool.render("all", session, None))
    await _eventually(lambda: not pool._idle)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    # Its answer would have gone to the next request: that child is gone, not broken.
    await _eventually(lambda: _reaped(pid))
    assert pool.broken == 0
    await _same(pool, "all", session)
    assert pool.pids() not in ([], [pid])


async def test_close_ends_every_child_and_a_later_request_starts_them_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(render_pool, "CLOSE_GRACE_SECONDS", 0.5)
    pool = _pool({"all": SPEC}, processes=2)
    session = _generated(1)[0]
    pool.start()
    pids = pool.pids()
    assert len(pids) == 2
    await asyncio.gather(*(pool.render("all", session, None) for _ in range(4)))
    os.kill(pids[1], signal.SIGSTOP)  # one that cannot exit by itself: killed after the grace
    await pool.aclose()
    assert pool.pids() == [] and all(_reaped(pid) for pid in pids)
    assert await pool.render("all", session, None) == SPEC.build().render(session)
    [again] = pool.pids()
    assert again not in pids
    await pool.aclose()
    assert _reaped(again)


async def test_close_kills_a_child_that_does_not_finish(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(render_pool, "CLOSE_GRACE_SECONDS", 0.2)
    pool = _pool({"all": SPEC})
    pool.start()
    [pid] = pool.pids()
    os.kill(pid, signal.SIGSTOP)
    await pool.aclose()
    assert _reaped(pid) and "still busy at close; killed" in caplog.text


async def test_close_answers_the_requests_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_pool, "CLOSE_GRACE_SECONDS", 0.5)
    pool = _pool({"all": SPEC}, processes=2)
    here = pool._renderers["all"]
    sessions = _generated(3)
    pool.start()
    await asyncio.gather(*(pool.render("all", s, None) for s in sessions[:2]))
    stopped, answering = pool.pids()
    os.kill(stopped, signal.SIGSTOP)
    jobs = [asyncio.ensure_future(pool.render("all", s, None)) for s in sessions]
    await _eventually(lambda: any(c.pid == stopped for c in pool._busy))
    closing = asyncio.ensure_future(pool.aclose())
    late = asyncio.ensure_future(pool.render("all", sessions[0], None))  # while closing
    await closing
    # Every request answered: by a child, or here once its child was killed at close.
    assert await asyncio.gather(*jobs, late) == [here.render(s) for s in [*sessions, sessions[0]]]
    assert pool.pids() == [] and _reaped(stopped) and _reaped(answering)
    assert pool.broken == 0 and pool.in_process >= 1


ORPHAN = """
import asyncio, os, signal
from rsbridge.engine.render_pool import RendererSpec, RenderPool
from rsbridge.sim.appliance.scenarios import SessionGenerator

async def main() -> None:
    spec = RendererSpec()
    pool = RenderPool({"a": spec}, {"a": spec.build()}, 2)
    pool.start()
    session = next(iter(SessionGenerator(seed=5).sessions(1)))
    await asyncio.gather(pool.render("a", session, None), pool.render("a", session, None))
    print(*pool.pids(), flush=True)
    if os.environ["HOW"] == "killed":
        os.kill(os.getpid(), signal.SIGKILL)
    # else the interpreter exits with its children running: they are killed

if __name__ == "__main__":
    asyncio.run(main())
"""


@pytest.mark.parametrize("how", ["killed", "exits"])
async def test_children_exit_when_their_engine_dies_or_exits(tmp_path: Path, how: str) -> None:
    script = tmp_path / "engine.py"
    script.write_text(ORPHAN)
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE, env={**os.environ, "HOW": how}
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    expected = -signal.SIGKILL if how == "killed" else 0
    assert await asyncio.wait_for(process.wait(), 60) == expected
    pids = [int(pid) for pid in line.split()]
    assert len(pids) == 2
    # Orphans: init reaps them once they exit by themselves (end-of-file on the socket).
    await _eventually(lambda: not any(_alive(pid) for pid in pids))


def test_render_processes_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert EngineConfig().render_processes == 0
    assert EngineConfig().render_process_count() == 0
    assert EngineConfig.model_validate({"render_processes": 64}).render_process_count() == 64
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert EngineConfig(render_processes="auto").render_process_count() == 3
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    assert EngineConfig(render_processes="auto").render_process_count() == 0
    for wrong in (-1, 65, "x", "4", True, 1.5):
        with pytest.raises(ValidationError, match="render_processes must be a whole number"):
            EngineConfig.model_validate({"render_processes": wrong})


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
        assert pool is None or (pool.in_process == 0 and pool.broken == 0)
        await engine.stop()
        assert pool is None or pool.pids() == []
        assert all(_reaped(pid) for pid in pids)  # stopped: no child left
    return _rendered(tmp_path / "deliveries.jsonl")


async def test_the_engine_delivers_the_same_with_a_render_process(
    tmp_path: Path, sim: SimAppliance
) -> None:
    sessions = [_recent(s) for s in SessionGenerator(11).sessions(4)]
    assert any(s.customer_surveys or s.rep_surveys for s in sessions)
    for session in sessions:
        sim.state.add_report(session)
    (tmp_path / "here").mkdir()
    (tmp_path / "pool").mkdir()
    here = await _run(tmp_path / "here", sim, sessions, 0)
    assert len(here) > len(sessions)  # the reports and surveys
    assert await _run(tmp_path / "pool", sim, sessions, 1) == here
