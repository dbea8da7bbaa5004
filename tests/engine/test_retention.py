"""Retention: the settings, pruning that loses nothing still needed, and pruning in serve."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import EngineConfig, parse_config
from rsbridge.engine.retention import DAY, prune, retention_policy
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import (
    AttemptOutcome,
    Finish,
    IncomingEvent,
    JobSpec,
    LedgerEntry,
    LedgerKey,
    PruneCounts,
    RetentionPolicy,
)
from rsbridge.engine.store.sqlite import SQLiteStore
from rsbridge.errors import ConfigurationError
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.webhook import WebhookReceiverState
from rsbridge.sim.webhook import create_app as create_receiver
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving

from .conftest import SimAppliance, drained, emit, engine_config

NOW = 1_800_000_000.0


# --- the settings ----------------------------------------------------------------------


def test_the_defaults_keep_dead_letters_and_the_ledger() -> None:
    engine = EngineConfig()
    assert (engine.retention_days, engine.prune_interval_seconds) == (30.0, 3600.0)
    # The console's audit log is kept a year.
    assert retention_policy(engine, now=NOW) == RetentionPolicy(
        NOW - 30 * DAY, console_before=NOW, audit_before=NOW - 365 * DAY
    )


def test_the_policy_follows_the_settings_and_the_options() -> None:
    engine = EngineConfig(
        retention_days=7,
        dead_letter_retention_days=90,
        ledger_retention_days=400,
        audit_retention_days=30,
    )
    assert retention_policy(engine, now=NOW) == RetentionPolicy(
        NOW - 7 * DAY, NOW - 90 * DAY, NOW - 400 * DAY, NOW, NOW - 30 * DAY
    )
    # rsbridge events prune --older-than / --dead-older-than; the ledger stays as set.
    assert retention_policy(engine, now=NOW, older_than=3600, dead_older_than=60) == (
        RetentionPolicy(NOW - 3600, NOW - 60, NOW - 400 * DAY, NOW, NOW - 30 * DAY)
    )


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ({"retention_days": 0}, "engine.retention_days"),
        (
            {"retention_days": 30, "dead_letter_retention_days": 10},
            "dead_letter_retention_days must be at least retention_days",
        ),
        ({"ledger_retention_days": 29}, "engine.ledger_retention_days"),
        (
            {"retention_days": 60, "ledger_retention_days": 45},
            "ledger_retention_days must be at least retention_days",
        ),
        (
            {"dead_letter_retention_days": 120, "ledger_retention_days": 90},
            "and dead_letter_retention_days",
        ),
        ({"prune_interval_seconds": -1}, "engine.prune_interval_seconds"),
    ],
)
def test_a_ledger_or_dead_letter_retention_shorter_than_the_events_is_refused(
    engine: dict[str, float], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_config({"engine": engine})


# --- what pruning never loses ------------------------------------------------------------


def _recent(session: SupportSession) -> SupportSession:
    assert session.start_time is not None and session.end_time is not None
    shift = datetime.now(UTC) - timedelta(seconds=60) - session.end_time
    return dataclasses.replace(
        session, start_time=session.start_time + shift, end_time=session.end_time + shift
    )


@pytest.fixture
def receiver() -> Iterator[tuple[WebhookReceiverState, str]]:
    state = WebhookReceiverState()
    with serve_in_thread(create_receiver(state)) as url:
        yield state, f"{url}/hook"


async def test_an_event_resent_after_pruning_makes_no_second_effect(
    tmp_path: Path, sim: SimAppliance, receiver: tuple[WebhookReceiverState, str]
) -> None:
    state, url = receiver
    config = engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": "hook",
                "connector": "webhook",
                "association": {"on_unmatched": "create"},
                "settings": {"url": url, "max_attempts": 1},
            }
        ],
        engine={"prune_interval_seconds": 0},
    )
    sessions = [_recent(s) for s in SessionGenerator(4).sessions(20) if s.customer_surveys][:3]
    for session in sessions:
        sim.state.add_report(session)
    async with Engine(config) as engine, serving(create_app(engine.intake, engine.store)) as url_:
        engine.start()
        await emit(url_, sessions)
        await drained(engine)
        delivered = state.requests
        assert delivered >= 2 * len(sessions)  # a ticket and a report each, and surveys
        # Everything finished: prune it all (the ledger is kept, as by default).
        pruned = await prune(engine.store, RetentionPolicy(finished_before=2e9))
        assert pruned.events > 0 and pruned.ledger == 0
        assert (await engine.store.counts())["events"] == 0
        # The appliance sends the same events again (its retry after a lost 200).
        await emit(url_, sessions)
        counts = await drained(engine)
        assert counts["done"] > 0 and counts.get("dead", 0) == 0
    # The ledger knew every effect: not one more request reached the ticketing system.
    assert state.requests == delivered
    assert all(n == 0 for n in state.repeats.values())


async def test_the_ledger_of_a_session_outlives_its_stored_events(tmp_path: Path) -> None:
    # Even with a ledger retention that has passed, a session's effects stay while an
    # event of it can still be replayed or retried.
    store = SQLiteStore(tmp_path / "s.db")
    await store.open()
    try:
        dead = await store.record_event(
            IncomingEvent("a1", "support_conference_end", "outbound", "d", lsid="L1"),
            [JobSpec("sn")],
            now=NOW,
        )
        await store.claim("w", limit=1, lease=30, now=NOW)
        assert await store.finish(
            dead.job_ids[0], "w", Finish(AttemptOutcome.DEAD, error="x"), started_at=NOW, now=NOW
        )
        key = LedgerKey("a1", "L1", "ticket", "sn", "ticket")
        await store.ledger_put(LedgerEntry(key, "INC1", "INC1", NOW))
        policy = RetentionPolicy(NOW + 10 * DAY, None, NOW + 10 * DAY)  # dead letters kept
        assert await prune(store, policy) == PruneCounts()
        assert await store.ledger_get(key) is not None
        # Once the dead letter goes (its own age), its session's ledger can go with it.
        policy = RetentionPolicy(NOW + 10 * DAY, NOW + 10 * DAY, NOW + 10 * DAY)
        assert await prune(store, policy) == PruneCounts(1, 1, 1, 1)
    finally:
        await store.close()


# --- the SQLite store: small steps, the intake between them ---------------------------------


async def test_pruning_lets_intake_writes_through_between_steps(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db", synchronous="normal")
    await store.open()
    try:
        total = 3000
        for start in range(0, total, 500):
            await asyncio.gather(
                *(
                    store.record_event(
                        IncomingEvent("a1", "x", "outbound", f"k{n}", lsid=f"L{n}"), [], now=NOW
                    )
                    for n in range(start, start + 500)
                )
            )
        groups = store.writer_stats.groups
        task = asyncio.create_task(prune(store, RetentionPolicy(NOW + 1), batch=20))
        for _ in range(100_000):  # until the first step is committed
            if (await store.counts())["events"] < total:
                break
            await asyncio.sleep(0)
        # Pruning has begun: a new event is committed before pruning ends, not after.
        recorded = await store.record_event(
            IncomingEvent("a1", "x", "outbound", "new", lsid="LN"), [], now=NOW + 5
        )
        assert not task.done()
        pruned = await task
        assert pruned == PruneCounts(events=total)
        # One transaction per step of 20 (and a last, empty one).
        assert store.writer_stats.groups - groups >= total // 20
        assert await store.get_event(recorded.event_id) is not None
    finally:
        await store.close()


# --- serve ---------------------------------------------------------------------------------


async def _old_and_new(store: SQLiteStore, now: float) -> tuple[list[int], list[int]]:
    """Two events finished 40 days ago and two received now; their ids."""
    old: list[int] = []
    new: list[int] = []
    for n in range(2):
        for found, at in ((old, now - 40 * DAY), (new, now)):
            result = await store.record_event(
                IncomingEvent("default", "other", "outbound", f"{at}/{n}", lsid=f"L{at}{n}"),
                [],
                now=at,
            )
            found.append(result.event_id)
    return old, new


async def test_serve_prunes_in_the_background(tmp_path: Path) -> None:
    config = engine_config(tmp_path, None, engine={"prune_interval_seconds": 0.05})
    store = SQLiteStore(Path(config.engine.store))
    async with Engine(config, store=store) as engine:
        old, new = await _old_and_new(store, datetime.now(UTC).timestamp())
        engine.start()
        assert engine.background_tasks()["pruner"]
        for _ in range(400):  # at most ~20 s: does not hang
            if all([await store.get_event(e) is None for e in old]):
                break
            await asyncio.sleep(0.05)
        assert [await store.get_event(e) is None for e in old] == [True, True]
        assert [await store.get_event(e) is not None for e in new] == [True, True]


async def test_prune_interval_zero_turns_background_pruning_off(tmp_path: Path) -> None:
    config = engine_config(tmp_path, None, engine={"prune_interval_seconds": 0})
    async with Engine(config) as engine:
        engine.start()
        assert "pruner" not in engine.background_tasks()
        assert engine.background_tasks()["worker"]
