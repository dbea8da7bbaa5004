"""`rsbridge demo` tells the whole story: keys from incidents, auto-create, once-only, and
every session in the Salesforce column too."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from rsbridge.connectors.servicenow.demo import (
    CLOSED_INCIDENT,
    FORGED_TARGET,
    run_demo,
    run_demo_async,
)
from rsbridge.connectors.servicenow.writes import journal_marker
from rsbridge.engine.runtime import Engine
from rsbridge.web.serve import serving
from tests.engine.conftest import engine_config


def test_the_demo_delivers_every_session_once_where_it_belongs() -> None:
    out = io.StringIO()
    result = run_demo(sessions=6, seed=7, console=Console(file=out, width=200))
    assert result.dead == 0
    assert CLOSED_INCIDENT in out.getvalue() and "closed" in result.refused
    snow, ids = result.snow, result.snow_ids
    created = 0
    for item in result.sessions:
        lsid = item.session.lsid
        (row,) = snow.query("u_rs_session", f"u_lsid={lsid}")
        if item.ticket is not None:
            assert row["u_task"] == ids[item.ticket]
        else:
            created += 1
            (incident,) = snow.query("incident", f"correlation_id=rs-{lsid}")
            assert row["u_task"] == incident["sys_id"]
        ends = [e for e in snow.journal(row["u_task"]) if journal_marker(lsid, "end") in e["value"]]
        assert len(ends) == 1, "every event was sent twice; one session-end note"
        answers = sum(
            len(s.answers) for s in (*item.session.customer_surveys, *item.session.rep_surveys)
        )
        assert len(snow.query("u_rs_session_survey", f"u_session={row['sys_id']}")) == answers
    assert created == 2
    # The file and the webhook keep every session once (without a ticket of their own).
    everyone = [i.session.lsid for i in result.sessions]
    if result.forged is not None:
        everyone.append(result.forged.lsid)
    reports = [d for d in result.jsonl if d["kind"] == "session_report"]
    assert sorted(d["lsid"] for d in reports) == sorted(everyone)
    assert sorted(d["lsid"] for d in result.webhook if d["kind"] == "session_report") == sorted(
        everyone
    )
    # The customer who named someone else's incident in a start URL did not reach it: the
    # session got an incident of its own as the representative joined.
    assert result.forged is not None
    forged = result.forged.lsid
    (row,) = snow.query("u_rs_session", f"u_lsid={forged}")
    (own,) = snow.query("incident", f"correlation_id=rs-{forged}")
    assert row["u_task"] == own["sys_id"] != ids[FORGED_TARGET]
    assert not any(forged in e["value"] for e in snow.journal(ids[FORGED_TARGET]))
    assert f"snow_task_id={FORGED_TARGET} (unsigned): refused" in out.getvalue()
    # The Salesforce column: a simulated org beside ServiceNow imports every session once,
    # without a Case (none of them names one).
    (side,) = result.sides
    assert side.title == "Salesforce (import all)" and "(import" in out.getvalue()
    for lsid in everyone:
        assert side.imported(lsid) == 1, lsid
        assert side.cell(lsid).startswith("1 record (no Case)")


async def test_the_demo_runs_one_worker_and_leaves_none_behind() -> None:
    # Every task the demo creates on this loop is recorded (a real task factory, not a
    # mock): the engine's workers and pollers must run once and be finished at exit.
    loop = asyncio.get_running_loop()
    made: list[asyncio.Task[Any]] = []
    previous = loop.get_task_factory()

    def record(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, **kwargs)
        made.append(task)
        return task

    loop.set_task_factory(record)
    try:
        result = await run_demo_async(
            sessions=3, seed=5, console=Console(file=io.StringIO(), width=200)
        )
    finally:
        loop.set_task_factory(previous)
    assert result.dead == 0
    engine_tasks = [t for t in made if t.get_name() == "worker"]
    assert len(engine_tasks) == 1, "the engine's worker was started more than once"
    assert all(t.done() for t in engine_tasks), "a worker was left running after the demo"
    failed = [t for t in engine_tasks if not t.cancelled() and t.exception() is not None]
    assert failed == []


async def test_an_open_engine_served_by_its_app_runs_one_worker(tmp_path: Path) -> None:
    # The demo's shape: the caller opens the engine, the app's lifespan serves it.
    def workers() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "worker" and not t.done()]

    async with Engine(engine_config(tmp_path, None)) as engine:
        async with serving(engine.asgi_app()) as url:
            engine.start()
            engine.start()
            assert len(workers()) == 1
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{url}/health")).status_code == 200
        assert workers() == [], "the lifespan stops the workers it started"
        # The engine is still the caller's: open until its block ends.
        assert (await engine.store.counts()).get("queued", 0) == 0
