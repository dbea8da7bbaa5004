"""The appliance's request budget shared by the nodes on one PostgreSQL store: two nodes
calling one API account together never exceed its limits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.ratelimit import RateLimits
from rsbridge.engine.budget import SharedLimiter, budget_account
from rsbridge.engine.store.postgresql import PostgreSQLStore
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread

PER_SECOND = 4
CALLS_PER_NODE = 10


@pytest.fixture
def strict_sim() -> Iterator[tuple[str, str, str]]:
    """A simulated appliance that answers 429 past PER_SECOND requests/s: (host, id, secret)."""
    state = SimApplianceState.default(seed=3)
    account = state.accounts[0]
    with serve_in_thread(create_app(state, rate_per_second=PER_SECOND, rate_per_hour=10**6)) as url:
        yield url.removeprefix("http://"), account.client_id, account.client_secret


async def two_nodes_call(
    sim: tuple[str, str, str], shared: list[PostgreSQLStore] | None
) -> tuple[int, int]:
    """Two clients (nodes) of one API account call at once: (answers, 429s seen)."""
    host, client_id, secret = sim
    throttled = 0

    async def count(response: httpx.Response) -> None:
        nonlocal throttled
        throttled += response.status_code == 429

    limits = RateLimits(per_second=PER_SECOND, per_hour=10**6)
    clients = [
        ApplianceClient(
            host,
            client_id,
            secret,
            scheme="http",
            rate_limits=limits,
            http=httpx.AsyncClient(event_hooks={"response": [count]}, timeout=30),
        )
        for _ in range(2)
    ]
    if shared is not None:
        for client, store in zip(clients, shared, strict=True):
            client.limiter = SharedLimiter(store, budget_account(host, client_id), limits)
    try:
        answers = await asyncio.gather(
            *(client.get_api_info() for client in clients for _ in range(CALLS_PER_NODE))
        )
    finally:
        for client in clients:
            await client._http.aclose()
    return len(answers), throttled


async def test_nodes_sharing_the_budget_never_exceed_it(
    strict_sim: tuple[str, str, str], postgres_url: str
) -> None:
    stores = [PostgreSQLStore(postgres_url) for _ in range(2)]
    for store in stores:
        await store.open()
    try:
        answers, throttled = await two_nodes_call(strict_sim, stores)
    finally:
        for store in stores:
            await store.close()
    assert answers == 2 * CALLS_PER_NODE
    assert throttled == 0


async def test_without_sharing_two_nodes_exceed_it(strict_sim: tuple[str, str, str]) -> None:
    # The control: each node within the limit on its own, together over it.
    answers, throttled = await two_nodes_call(strict_sim, None)
    assert answers == 2 * CALLS_PER_NODE
    assert throttled > 0
