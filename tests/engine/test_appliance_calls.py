"""Appliance call economy, counted by the simulated appliance (``state.calls``): listing
windows sized by what they return, no report fetch for a job whose effects are done, and
one report fetch for a session's end and its surveys."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rsbridge.appliance.events import CUSTOMER_SURVEY, END, REP_SURVEY
from rsbridge.appliance.report_model import SupportSession
from rsbridge.engine.intake import job_specs
from rsbridge.engine.poller import Poller
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import EventFilter, IncomingEvent
from rsbridge.sim.appliance.scenarios import SessionGenerator

from .conftest import Hook, SimAppliance, drained, engine_config

LISTING = "SupportSessionListing"
REPORT = "SupportSession"


def _ended(session: SupportSession, ago: float) -> SupportSession:
    """``session`` moved in time so that it ended ``ago`` seconds ago."""
    assert session.start_time is not None and session.end_time is not None
    shift = datetime.now(UTC) - timedelta(seconds=ago) - session.end_time
    return dataclasses.replace(
        session, start_time=session.start_time + shift, end_time=session.end_time + shift
    )


def _polling(tmp_path: Path, sim: SimAppliance, lookback_days: float) -> Engine:
    config = engine_config(
        tmp_path,
        sim,
        engine={"poll_lookback_hours": lookback_days * 24},
        integrations=[
            {
                "name": "audit",
                "connector": "jsonl",
                "outbound_events": [],
                "polling_events": [END],
                "association": {"on_unmatched": "create"},
                "settings": {"path": str(tmp_path / "deliveries.jsonl"), "fsync": False},
            }
        ],
    )
    return Engine(config)


async def _queued_lsids(engine: Engine) -> set[str]:
    return {e.lsid or "" for e in await engine.store.list_events(EventFilter(limit=1000))}


async def test_a_long_first_poll_lists_a_handful_of_windows(
    tmp_path: Path, sim: SimAppliance
) -> None:
    day = 86400.0
    oldest, newest, outside = SessionGenerator(21).sessions(3)
    oldest = _ended(oldest, 400 * day - 3600)  # an hour inside the look-back
    newest = _ended(newest, 30)
    outside = _ended(outside, 400 * day + 3600)
    for session in (oldest, newest, outside):
        sim.state.add_report(session)
    async with _polling(tmp_path, sim, 400) as engine:
        [poller] = engine.pollers
        result = await poller.poll()
        found = await _queued_lsids(engine)
    assert found == {oldest.lsid, newest.lsid}
    # A day, then windows growing 8 times each: 1 + 8 + 64 + the rest (was 400 calls).
    assert sim.state.calls[LISTING] == result.appliance_calls <= 5
    assert result.sessions == 2


async def test_a_full_listing_is_split_and_loses_no_session(
    tmp_path: Path, sim: SimAppliance
) -> None:
    # 13 sessions in one day, an appliance that answers at most 4 per listing.
    sessions = [_ended(s, 3600 + i * 97) for i, s in enumerate(SessionGenerator(22).sessions(13))]
    for session in sessions:
        sim.state.add_report(session)
    with sim.state.lock:
        sim.state.report_faults.listing_limit = 4
    async with _polling(tmp_path, sim, 2) as engine:
        [integration] = engine.config.integrations
        poller = Poller(
            engine.config,
            engine.store,
            engine.appliances["default"],
            integration,
            listing_full=4,
        )
        result = await poller.poll()
        found = await _queued_lsids(engine)
    assert found == {s.lsid for s in sessions}
    assert result.sessions == 13
    # Splitting costs calls, but a bounded number of them.
    assert sim.state.calls[LISTING] < 40


# --- report fetches: kept reports and the ledger -------------------------------------------


def _hook_integration(name: str, url: str, events: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "connector": "webhook",
        "outbound_events": events,
        "association": {"on_unmatched": "create"},
        "settings": {"url": url, "max_attempts": 1, "timeout": 2},
    }


def _with_surveys(sim: SimAppliance, count: int, seed: int) -> list[SupportSession]:
    found = [
        _ended(s, 60)
        for s in SessionGenerator(seed).sessions(40)
        if s.customer_surveys and s.rep_surveys
    ][:count]
    assert len(found) == count
    for session in found:
        sim.state.add_report(session)
    return found


async def _record(engine: Engine, session: SupportSession, events: Sequence[str]) -> list[int]:
    """Record ``events`` of ``session`` as the intake would (outbound); their event ids."""
    ids = []
    for event in events:
        result = await engine.store.record_event(
            IncomingEvent("default", event, "outbound", f"{event}/{session.lsid}", session.lsid),
            job_specs(engine.config, "default", event, polled=False),
        )
        ids.append(result.event_id)
    return ids


async def _replay_all(engine: Engine) -> None:
    for event in await engine.store.list_events(EventFilter(limit=1000)):
        await engine.store.replay_event(
            event.id, job_specs(engine.config, "default", event.event_type, polled=False)
        )


def _effects(hook: Hook) -> Counter[str]:
    """Session reports and surveys received, by idempotency key."""
    return Counter(
        r.headers.get("idempotency-key", "")
        for r in hook.state.received
        if r.kind in ("session_report", "survey")
    )


EVENTS = (END, CUSTOMER_SURVEY, REP_SURVEY)


async def test_surveys_queued_with_their_session_end_cost_no_second_fetch(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    config = engine_config(
        tmp_path, sim, integrations=[_hook_integration("hook", hook.url, list(EVENTS))]
    )
    sessions = _with_surveys(sim, 2, seed=31)
    async with Engine(config) as engine:
        for session in sessions:
            await _record(engine, session, EVENTS)
        assert engine.worker is not None
        outcomes = await engine.worker.run_until_idle()
        assert [o.outcome for o in outcomes] == ["done"] * 6
        # The end jobs' fetch held everything the survey jobs after them needed.
        assert sim.state.calls[REPORT] == engine.worker.appliance_calls == 1
        assert engine.worker.reports_reused == 4
    delivered = _effects(hook)
    assert len(delivered) == 2 + sum(len(s.customer_surveys) + len(s.rep_surveys) for s in sessions)
    assert set(delivered.values()) == {1}


async def test_surveys_arriving_just_after_their_session_end_cost_no_second_fetch(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    # The appliance sends a session's end and its surveys together; they arrive a moment
    # apart. The end's job is claimed as soon as its event is in, but its fetch waits
    # report_gather_seconds before it asks: asked after the surveys arrived, its report
    # serves their jobs (asked before, each survey job would fetch again).
    config = engine_config(
        tmp_path,
        sim,
        integrations=[_hook_integration("hook", hook.url, list(EVENTS))],
        engine={"report_gather_seconds": 1.0},
    )
    [session] = _with_surveys(sim, 1, seed=31)
    async with Engine(config) as engine:
        engine.start()
        await _record(engine, session, [END])
        deadline = asyncio.get_running_loop().time() + 10
        while not (await engine.store.counts()).get("running"):
            assert asyncio.get_running_loop().time() < deadline, "the end job was not claimed"
            await asyncio.sleep(0.005)
        await _record(engine, session, [CUSTOMER_SURVEY, REP_SURVEY])
        await drained(engine)
        assert engine.worker is not None
        assert sim.state.calls[REPORT] == engine.worker.appliance_calls == 1
        assert engine.worker.reports_reused == 2
    delivered = _effects(hook)
    assert len(delivered) == 1 + len(session.customer_surveys) + len(session.rep_surveys)


async def test_a_replay_whose_effects_are_done_calls_no_appliance(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    config = engine_config(
        tmp_path, sim, integrations=[_hook_integration("hook", hook.url, list(EVENTS))]
    )
    sessions = _with_surveys(sim, 2, seed=32)
    async with Engine(config) as engine:
        for session in sessions:
            await _record(engine, session, EVENTS)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
    before, delivered = sim.state.calls[REPORT], _effects(hook)
    # Another engine on the same store (nothing kept in memory): replay every event.
    async with Engine(config) as engine:
        await _replay_all(engine)
        assert engine.worker is not None
        outcomes = await engine.worker.run_until_idle()
        assert len(outcomes) == 6
        assert all(o.outcome == "done" and o.note == "already delivered" for o in outcomes)
        assert engine.worker.appliance_calls == 0
    assert sim.state.calls[REPORT] == before
    assert _effects(hook) == delivered


async def test_a_replay_fetches_for_the_integration_whose_effects_are_not_done(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    first = _hook_integration("first", hook.url, list(EVENTS))
    config = engine_config(tmp_path, sim, integrations=[first])
    [session] = _with_surveys(sim, 1, seed=33)
    async with Engine(config) as engine:
        await _record(engine, session, EVENTS)
        assert engine.worker is not None
        await engine.worker.run_until_idle()
    before = sim.state.calls[REPORT]
    # A second integration is added; the replay is done for the first only.
    second = _hook_integration("second", hook.url, list(EVENTS))
    config = engine_config(tmp_path, sim, integrations=[first, second])
    async with Engine(config) as engine:
        await _replay_all(engine)
        assert engine.worker is not None
        outcomes = await engine.worker.run_until_idle()
        assert all(o.outcome == "done" for o in outcomes)
    assert sim.state.calls[REPORT] == before + 1
    surveys = len(session.customer_surveys) + len(session.rep_surveys)
    keys = _effects(hook)
    assert sum("/second/" in k for k in keys) == 1 + surveys
    assert set(keys.values()) == {1}


async def test_a_survey_that_came_first_makes_its_session_end_need_no_call(
    tmp_path: Path, sim: SimAppliance, hook: Hook
) -> None:
    config = engine_config(
        tmp_path, sim, integrations=[_hook_integration("hook", hook.url, list(EVENTS))]
    )
    [session] = _with_surveys(sim, 1, seed=34)
    async with Engine(config) as engine:
        assert engine.worker is not None
        # The customer survey comes alone: it imports the session along.
        [survey_event] = await _record(engine, session, [CUSTOMER_SURVEY])
        await engine.worker.run_until_idle()
        assert sim.state.calls[REPORT] == 1
        # The end event and the rep survey come late; the end is done already, the rep
        # survey is not (it was never written): one call, for it.
        await _record(engine, session, [END])
        [end_outcome] = await engine.worker.run_until_idle()
        assert end_outcome.note == "already delivered"
        assert sim.state.calls[REPORT] == 1
        await _record(engine, session, [REP_SURVEY])
        await engine.worker.run_until_idle()
        assert sim.state.calls[REPORT] == 2
        # A replay of the first survey: everything it would write is there.
        await engine.store.replay_event(
            survey_event, job_specs(config, "default", CUSTOMER_SURVEY, polled=False)
        )
        [replayed] = await engine.worker.run_until_idle()
        assert replayed.note == "already delivered"
        assert sim.state.calls[REPORT] == 2
    surveys = len(session.customer_surveys) + len(session.rep_surveys)
    assert len(_effects(hook)) == 1 + surveys
