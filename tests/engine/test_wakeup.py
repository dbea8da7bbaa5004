"""Idle workers are woken when a job is queued (SQLite in-process, PostgreSQL through
LISTEN/NOTIFY), so that an event's latency does not include the idle poll."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import JobSpec
from rsbridge.engine.store.sqlite import SQLiteStore
from rsbridge.web.app import create_app as create_intake_app
from rsbridge.web.serve import serving

from .conftest import SimAppliance, emit, ended_sessions, engine_config
from .store_contract import T0, event

IDLE_POLL = 60.0
"""Far longer than any test here may take: only a wake-up gets the work done in time."""


async def test_sqlite_wakes_a_waiter_when_a_job_is_queued(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.db")
    await store.open()
    try:
        assert not await store.wait_for_jobs(0.05)
        waiter = asyncio.create_task(store.wait_for_jobs(IDLE_POLL))
        await asyncio.sleep(0.05)
        await store.record_event(event("k1"), [JobSpec("sn")], now=T0)
        await asyncio.wait_for(waiter, 5)
        assert waiter.result()
        # Sticky: a job queued before the wait is not missed either.
        await store.record_event(event("k2"), [JobSpec("sn")], now=T0)
        assert await asyncio.wait_for(store.wait_for_jobs(IDLE_POLL), 5)
    finally:
        await store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_session_is_delivered_without_waiting_for_the_idle_poll(
    tmp_path: Path, sim: SimAppliance, backend: str, request: pytest.FixtureRequest
) -> None:
    engine_settings: dict[str, Any] = {}
    if backend == "postgresql":
        engine_settings["store"] = request.getfixturevalue("postgres_url")
    config = engine_config(tmp_path, sim, engine=engine_settings)
    (session,) = ended_sessions(["INC0010001"], 1, seed=5, integration="audit")
    sim.state.add_report(session)
    expected = 1 + len(session.customer_surveys) + len(session.rep_surveys)
    deliveries = tmp_path / "deliveries.jsonl"
    stop = asyncio.Event()
    async with (
        Engine(config) as engine,
        serving(create_intake_app(engine.intake, engine.store)) as url,
    ):
        assert engine.worker is not None
        worker = asyncio.create_task(engine.worker.run(stop, poll_interval=IDLE_POLL))
        try:
            await asyncio.sleep(0.3)  # the worker found nothing and is idle now
            started = time.monotonic()
            await emit(url, [session])
            done: list[dict[str, Any]] = []
            while time.monotonic() - started < 20:
                found = read_deliveries(deliveries) if deliveries.exists() else []
                done = [d for d in found if d["kind"] != "ticket"]
                if len(done) >= expected:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"not delivered within 20 s: {done}")
        finally:
            stop.set()
            await worker
