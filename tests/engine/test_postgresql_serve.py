"""Two ``rsbridge serve`` processes on one PostgreSQL database, outbound events spread
over both as a load balancer would: every session and survey is delivered exactly once."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from pathlib import Path

from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.engine.store.postgresql import PostgreSQLStore

from .conftest import SimAppliance, serve_config, sessions_in_the_sim, spread_events
from .test_crash import ServeProcess, _free_port

SESSIONS = 150


def node_config(folder: Path, sim: SimAppliance, store_url: str) -> Path:
    """A node's configuration: the shared store, its own jsonl file (one writer per file).

    A long lease: nothing is killed here, and a lease that expired while its node was
    only slow (a loaded machine) would let both nodes write the effect, each to its own
    file (the crash test, with a connector that upserts, covers that case).
    """
    folder.mkdir()
    return serve_config(
        folder / "rsbridge.toml",
        sim,
        store=store_url,
        secret_env="NODES_TEST_SECRET",
        integration='connector = "jsonl"\nsettings = { path = "deliveries.jsonl", fsync = false }',
        lease_seconds=60,
    )


async def test_two_serve_nodes_deliver_every_session_once(
    tmp_path: Path, sim: SimAppliance, postgres_url: str
) -> None:
    rng = random.Random(16)
    sessions = sessions_in_the_sim(sim, 41, SESSIONS)
    env = {**os.environ, "NODES_TEST_SECRET": sim.client_secret}
    nodes = [
        ServeProcess(node_config(tmp_path / f"node{n}", sim, postgres_url), _free_port(), env)
        for n in (1, 2)
    ]
    await asyncio.gather(*(node.start() for node in nodes))
    # A session's events may go to either node.
    spread = spread_events(
        [node.port for node in nodes], sessions, sim.state.appliance_id, rng, retry_duration=120
    )
    recipients, emitters, expected = spread.recipients, spread.emitters, spread.expected
    store = PostgreSQLStore(postgres_url)
    await store.open()
    try:
        await asyncio.wait_for(asyncio.gather(*(e.run_until_idle() for e in emitters)), 180)
        assert [r.dropped for r in recipients] == [0, 0]
        deadline = time.monotonic() + 120
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
    by_node = [
        [
            d
            for d in read_deliveries(tmp_path / f"node{n}" / "deliveries.jsonl")
            if d["kind"] != "ticket"
        ]
        for n in (1, 2)
    ]
    assert all(by_node), [len(d) for d in by_node]  # both nodes did part of the work
    by_key = Counter(d["key"] for deliveries in by_node for d in deliveries)
    assert max(by_key.values()) == 1, [k for k, n in by_key.items() if n > 1][:5]
    assert Counter(key.split("/")[1] for key in by_key) == expected
