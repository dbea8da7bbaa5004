"""A report fetch builds the sessions of one answer one by one, and lets the event loop
run between two: the other jobs' answers from their peers are not held up for a whole
chunk of sessions (tens of milliseconds in a backlog)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rsbridge.engine.appliances import make_appliance_client
from rsbridge.engine.reports import FetchResult, ReportFetch
from rsbridge.sim.appliance.scenarios import SessionGenerator

from .conftest import SimAppliance, engine_config


class _Stamped(dict[str, FetchResult]):
    """``found``, noting the event loop's pass in which each report arrived."""

    def __init__(self, passes: list[int]) -> None:
        super().__init__()
        self.passes = passes
        self.arrived: list[int] = []

    def __setitem__(self, lsid: str, report: FetchResult) -> None:
        self.arrived.append(self.passes[0])
        super().__setitem__(lsid, report)


async def test_the_loop_runs_between_two_sessions_of_one_answer(
    tmp_path: Path, sim: SimAppliance
) -> None:
    sessions = list(SessionGenerator(4).sessions(40))
    for session in sessions:
        sim.state.add_report(session)
    client = make_appliance_client(engine_config(tmp_path, sim).appliances[0])
    passes = [0]

    async def count_passes() -> None:
        while True:
            passes[0] += 1
            await asyncio.sleep(0)

    counter = asyncio.create_task(count_passes())
    found = _Stamped(passes)
    try:
        await ReportFetch(client, "default", [s.lsid for s in sessions], found).run()
    finally:
        counter.cancel()
        await client.aclose()
    assert client.requests_sent >= 1
    assert sorted(found) == sorted(s.lsid for s in sessions)
    # Every session arrived in a pass of the loop of its own: other tasks ran between.
    assert len(set(found.arrived)) == len(sessions)
