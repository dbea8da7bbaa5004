"""Appliance call economy, counted by the simulated appliance (``state.calls``): listing
windows sized by what they return, no report fetch for a job whose effects are done, and
one report fetch for a session's end and its surveys."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rsbridge.appliance.events import END
from rsbridge.appliance.report_model import SupportSession
from rsbridge.engine.poller import Poller
from rsbridge.engine.runtime import Engine
from rsbridge.sim.appliance.scenarios import SessionGenerator

from .conftest import SimAppliance, engine_config

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
    from rsbridge.engine.store.base import EventFilter

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
