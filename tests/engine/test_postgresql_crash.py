"""Three ``rsbridge serve`` nodes on one PostgreSQL database, outbound events spread over
them, random nodes killed with SIGKILL and restarted while sessions flow: every session
and survey reaches the ticketing side exactly once, nothing is lost, and the nodes together
never send the appliance more than its request budget allows (checked from the simulated
appliance's side) nor hold more tokens than processes were started.

``RSBRIDGE_CRASH_SESSIONS`` sets the number of sessions (300 by default; ``.ci/run`` runs
the issue's 1,000)."""

from __future__ import annotations

import asyncio
import bisect
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from rsbridge.appliance.ratelimit import DEFAULT_RATE_LIMITS
from rsbridge.engine.store.postgresql import PostgreSQLStore

from .conftest import Hook, SimAppliance, serve_config, sessions_in_the_sim, spread_events
from .test_crash import ServeProcess, _free_port

SESSIONS = int(os.environ.get("RSBRIDGE_CRASH_SESSIONS", "300"))
NODES = 3
KILLS = max(4, SESSIONS // 100)


def node_config(folder: Path, sim: SimAppliance, hook: Hook, store_url: str) -> Path:
    folder.mkdir()
    return serve_config(
        folder / "rsbridge.toml",
        sim,
        store=store_url,
        secret_env="NODES_TEST_SECRET",
        integration=f'connector = "webhook"\nsettings = {{ url = "{hook.url}", timeout = 5.0 }}',
        # Two reports per fetch (100 by default): the nodes together want more than the
        # appliance's 20 requests a second, so that the shared budget holds them back.
        engine_extra="report_batch_size = 2",
    )


def busiest_window(times: list[float], span: float) -> int:
    """The most requests that arrived within any ``span`` seconds."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + span) - i for i, t in enumerate(ordered)), default=0
    )


@pytest.mark.slow
async def test_sigkill_of_nodes_loses_and_duplicates_nothing(
    tmp_path: Path, sim: SimAppliance, hook: Hook, postgres_url: str
) -> None:
    rng = random.Random(20261202)
    sessions = sessions_in_the_sim(sim, 43, SESSIONS)
    env = {**os.environ, "NODES_TEST_SECRET": sim.client_secret}
    nodes = [
        ServeProcess(node_config(tmp_path / f"node{n}", sim, hook, postgres_url), _free_port(), env)
        for n in range(NODES)
    ]
    await asyncio.gather(*(node.start() for node in nodes))
    started = NODES
    spread = spread_events(
        [node.port for node in nodes], sessions, sim.state.appliance_id, rng, retry_duration=600
    )
    recipients, emitters, per_session = spread.recipients, spread.emitters, spread.expected
    store = PostgreSQLStore(postgres_url)
    await store.open()
    try:
        sending = asyncio.ensure_future(asyncio.gather(*(e.run_until_idle() for e in emitters)))
        kills = 0
        while kills < KILLS:
            await asyncio.sleep(rng.uniform(0.3, 1.5))
            if kills >= 4 and sending.done():
                break  # the events are in; at least four kills happened while they came
            victim = rng.choice(nodes)
            victim.kill()
            await victim.start()
            kills += 1
            started += 1
        await asyncio.wait_for(sending, 600)
        assert [r.dropped for r in recipients] == [0] * NODES
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            counts = await store.counts()
            if counts["queued"] + counts["running"] == 0:
                break
            await asyncio.sleep(0.2)
        assert counts["queued"] + counts["running"] + counts["dead"] == 0, counts
    finally:
        await store.close()
        for node in nodes:
            node.terminate()
        for emitter in emitters:
            await emitter.aclose()
    stored = [r for r in hook.state.received if r.body.get("kind") != "ticket"]
    by_key = Counter(r.key for r in stored)
    assert max(by_key.values()) == 1  # one stored effect per idempotency key
    delivered = Counter(str(r.body.get("lsid")) for r in stored)
    assert set(delivered) == set(per_session)
    assert delivered == per_session  # every session report and survey, none lost
    # The appliance's side: the nodes together stayed within the account's budget.
    times = list(sim.state.request_times)
    per_second = busiest_window(times, 1.0)
    assert per_second <= DEFAULT_RATE_LIMITS.per_second, per_second
    assert busiest_window(times, 3600.0) <= DEFAULT_RATE_LIMITS.per_hour
    # The nodes fetched reports (two a call): the windows above counted real traffic. How
    # close they came to 20 a second depends on the machine (8 on a loaded 2-core one).
    assert len(times) >= SESSIONS // 2
    # One token a process at most (each caches and reuses its own): 30 per account.
    assert sim.state.tokens_issued <= started
