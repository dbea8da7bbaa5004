"""Several engine nodes on one PostgreSQL database: one polls each appliance, with failover."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import psycopg
import pytest

from rsbridge.appliance.events import END
from rsbridge.appliance.ratelimit import SlidingWindowLimiter
from rsbridge.config import Config
from rsbridge.engine.budget import HoldsTokenSlots, SharedLimiter, budget_account
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import backend_of
from rsbridge.engine.store.postgresql_schema import advisory_key
from rsbridge.errors import ConfigurationError

from .conftest import SimAppliance, engine_config


def polling_config(tmp_path: Path, sim: SimAppliance, url: str) -> Config:
    config = engine_config(
        tmp_path,
        sim,
        engine={"store": url, "prune_interval_seconds": 0},
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
    # Faster than the 5 s the configuration allows, so that the test sees many rounds.
    (integration,) = config.integrations
    fast = integration.model_copy(update={"polling_interval_seconds": 0.1})
    return config.model_copy(update={"integrations": [fast]})


def calls(engine: Engine) -> int:
    return sum(client.requests_sent for client in engine.appliances.values())


async def wait_for(condition: object, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_one_node_polls_an_appliance_and_another_takes_over(
    tmp_path: Path, sim: SimAppliance, postgres_url: str
) -> None:
    config = polling_config(tmp_path, sim, postgres_url)
    first, second = Engine(config), Engine(config)
    await first.open()
    await second.open()
    try:
        first.start()
        second.start()
        assert await wait_for(lambda: calls(first) + calls(second) >= 10)
        await asyncio.sleep(0.5)
        counts = sorted([calls(first), calls(second)])
        assert counts[0] == 0 and counts[1] >= 10, counts  # many polls, all by one node
        leader, follower = (first, second) if calls(first) else (second, first)
        await leader.aclose()  # its connection goes, and the lead with it
        assert await wait_for(lambda: calls(follower) >= 5)
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_shared_store_shares_the_appliance_budget(
    tmp_path: Path, sim: SimAppliance, postgres_url: str
) -> None:
    async with Engine(polling_config(tmp_path, sim, postgres_url)) as engine:
        limiter = engine.appliances["default"].limiter
        assert isinstance(limiter, SharedLimiter)
        # Its waits count in this node's metrics, as the local limiter's do: one second's
        # budget (20) and one call more.
        for _ in range(21):
            limiter.settle(await limiter.acquire())
        sample = engine.metrics.registry.get_sample_value
        labels = {"appliance": "default"}
        assert (sample("rsbridge_rate_limit_waits_total", labels) or 0) >= 1
        assert (sample("rsbridge_rate_limit_wait_seconds_total", labels) or 0) > 0
    async with Engine(engine_config(tmp_path, sim)) as alone:  # SQLite: this node's own
        assert isinstance(alone.appliances["default"].limiter, SlidingWindowLimiter)


async def test_nodes_hold_one_token_each_and_reauthenticate_once_after_a_401(
    tmp_path: Path, sim: SimAppliance, postgres_url: str
) -> None:
    """The token split (docs/postgresql.md): each node caches one token of the API
    account and reuses it; counted by the simulated appliance."""
    config = engine_config(tmp_path, sim, engine={"store": postgres_url})
    nodes = [Engine(config) for _ in range(3)]
    for node in nodes:
        await node.open()
    try:
        clients = [node.appliances["default"] for node in nodes]
        for _ in range(4):
            await asyncio.gather(*(client.get_api_info() for client in clients))
        assert sim.state.tokens_issued == 3
        assert sim.state.live_tokens(sim.client_id) == 3
        # The appliance ends the tokens (expiry, an administrator): each node gets one
        # 401, asks for one new token, and goes on.
        assert sim.state.revoke_tokens(sim.client_id) == 3
        for _ in range(3):
            await asyncio.gather(*(client.get_api_info() for client in clients))
        assert sim.state.tokens_issued == 6
    finally:
        for node in nodes:
            await node.aclose()


async def test_a_process_beyond_the_accounts_token_limit_is_refused(
    tmp_path: Path, sim: SimAppliance, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rsbridge.engine.runtime.MAX_LIVE_TOKENS", 2)  # 30 in life
    config = engine_config(tmp_path, sim, engine={"store": postgres_url})
    first, second, third = Engine(config), Engine(config), Engine(config)
    await first.open()
    await second.open()
    try:
        with pytest.raises(ConfigurationError, match="at most 2 live tokens"):
            await third.open()
        await first.aclose()  # its slot is free again
        await third.open()
        await third.aclose()
    finally:
        await first.aclose()
        await second.aclose()


def slot_holders(url: str, config: Config, slots: int) -> dict[int, int]:
    """Which server process (pid) holds each token slot of the configuration's account."""
    appliance = config.appliances[0]
    account = budget_account(appliance.host, appliance.client_id)
    holders = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for number in range(slots):
            key = advisory_key(f"slot:tokens:{account}:{number}")
            row = conn.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid = %s AND objid = %s AND objsubid = 1",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
            ).fetchone()
            if row is not None:
                holders[number] = int(row[0])
    return holders


def terminate(url: str, pid: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_a_node_whose_slot_connection_drops_takes_a_slot_again(
    tmp_path: Path, sim: SimAppliance, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rsbridge.engine.runtime.MAX_LIVE_TOKENS", 2)  # 30 in life
    config = engine_config(tmp_path, sim, engine={"store": postgres_url})
    first, second, third = Engine(config), Engine(config), Engine(config)
    await first.open()
    await second.open()
    try:
        first.token_slot_check_seconds = 0.05
        first.start()
        before = slot_holders(postgres_url, config, 2)
        assert sorted(before) == [0, 1]
        # An operator (or a failover) ends the connection that holds the first's slot.
        terminate(postgres_url, before[0])
        assert await wait_for(
            lambda: (
                (now := slot_holders(postgres_url, config, 2)).get(0) not in (None, before[0])
                and now.get(1) == before[1]
            )
        )
        # Still two processes, two slots: a third is refused.
        with pytest.raises(ConfigurationError, match="at most 2 live tokens"):
            await third.open()
    finally:
        await first.aclose()
        await second.aclose()
        await third.aclose()


async def test_a_slot_taken_by_another_process_meanwhile_is_not_taken_twice(
    tmp_path: Path, sim: SimAppliance, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("rsbridge.engine.runtime.MAX_LIVE_TOKENS", 1)
    config = engine_config(tmp_path, sim, engine={"store": postgres_url})
    first, second = Engine(config), Engine(config)
    await first.open()
    try:
        (holder,) = slot_holders(postgres_url, config, 1).values()
        terminate(postgres_url, holder)
        # The server frees the lock when that process has gone, a moment later.
        assert await wait_for(lambda: not slot_holders(postgres_url, config, 1))
        await second.open()  # took the slot the first lost
        backend = backend_of(first.store)
        assert isinstance(backend, HoldsTokenSlots)
        assert list((await backend.keep_token_slots()).values()) == [None]
        assert len(slot_holders(postgres_url, config, 1)) == 1
        await second.aclose()  # free again: the first's next check takes it
        assert await wait_for(lambda: not slot_holders(postgres_url, config, 1))
        assert list((await backend.keep_token_slots()).values()) == [0]
    finally:
        await first.aclose()
        await second.aclose()
