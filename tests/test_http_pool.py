"""The lean transport's connection pool (rsbridge.http_pool) against real loopback servers:
its limits, reuse, expiry, and what it does when requests fail or are cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpcore
import httpx
import pytest

from rsbridge.http_backend import AsyncioBackend
from rsbridge.http_pool import ConnectionPool
from rsbridge.peer_http import LeanTransport

from .test_peer_http import Reader, Server, Writer, _answer, _read_request, keep_alive, serving


@dataclass
class Gate:
    """Holds each request until released; counts connections serving one at once."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    seen: int = 0
    busy: int = 0
    most_busy: int = 0

    async def until(self, count: int) -> None:
        """Wait until ``count`` requests have reached the server."""
        async with self.arrived:
            await self.arrived.wait_for(lambda: self.seen >= count)

    async def handler(self, server: Server, reader: Reader, writer: Writer) -> None:
        while (request := await _read_request(reader)) is not None:
            server.requests.append(request[0])
            async with self.arrived:
                self.seen += 1
                self.arrived.notify_all()
            self.busy += 1
            self.most_busy = max(self.most_busy, self.busy)
            await self.release.wait()
            self.busy -= 1
            writer.write(_answer(b"ok"))
            await writer.drain()


@asynccontextmanager
async def client(
    max_connections: int | None = 10,
    max_keepalive: int | None = 10,
    expiry: float | None = 5.0,
    pool_timeout: float | None = 5.0,
) -> AsyncIterator[tuple[httpx.AsyncClient, ConnectionPool]]:
    """An httpx client on the lean transport with these limits, and its pool."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_keepalive,
        keepalive_expiry=expiry,
    )
    transport = LeanTransport(limits=limits)
    pool = transport._pool
    assert isinstance(pool, ConnectionPool)
    timeout = httpx.Timeout(5.0, pool=pool_timeout)
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as http:
        yield http, pool


async def test_concurrent_requests_stay_within_max_connections() -> None:
    gate = Gate()
    async with serving(gate.handler) as server, client(max_connections=2) as (http, pool):
        requests = [asyncio.create_task(http.get(server.url)) for _ in range(5)]
        await gate.until(2)
        await asyncio.sleep(0.05)  # the other three wait for a connection, not the server
        assert len(server.requests) == 2
        assert pool.connections == 2
        gate.release.set()
        answers = await asyncio.gather(*requests)
    assert [a.text for a in answers] == ["ok"] * 5
    assert gate.most_busy == 2
    assert server.connections == 2  # the waiting requests reused the two connections


async def test_a_request_that_finds_no_connection_in_time_is_a_pool_timeout() -> None:
    gate = Gate()
    async with (
        serving(gate.handler) as server,
        client(max_connections=1, pool_timeout=0.1) as (http, pool),
    ):
        first = asyncio.create_task(http.get(server.url))
        await gate.until(1)
        with pytest.raises(httpx.PoolTimeout):
            await http.get(server.url)
        gate.release.set()
        assert (await first).text == "ok"
        assert (await http.get(server.url)).text == "ok"  # the slot is free again
        assert pool.connections == 1


async def test_idle_connections_beyond_the_keepalive_limit_are_closed() -> None:
    gate = Gate()
    async with serving(gate.handler) as server, client(max_keepalive=1) as (http, pool):
        requests = [asyncio.create_task(http.get(server.url)) for _ in range(3)]
        await gate.until(3)
        assert pool.connections == 3
        gate.release.set()
        await asyncio.gather(*requests)
        assert (pool.connections, pool.idle_connections) == (1, 1)
        await http.get(server.url)
    assert server.connections == 3  # the last request reused the one kept


async def test_an_expired_idle_connection_is_replaced() -> None:
    async with serving(keep_alive) as server, client(expiry=1.0) as (http, pool):
        await http.get(server.url)
        await http.get(server.url)
        assert server.connections == 1
        await asyncio.sleep(1.2)
        assert (await http.get(server.url)).text == "0"
        assert pool.connections == 1  # the expired one was closed, not kept beside
    assert server.connections == 2


async def test_a_cancelled_request_gives_its_connection_back() -> None:
    gate = Gate()
    async with serving(gate.handler) as server, client(max_connections=1) as (http, pool):
        stuck = asyncio.create_task(http.get(server.url))
        await gate.until(1)
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        assert pool.connections == 0  # cut mid-answer: closed, not reused
        gate.release.set()
        assert (await http.get(server.url)).text == "ok"


async def test_a_body_closed_unread_closes_its_connection() -> None:
    async with serving(keep_alive) as server, client() as (http, pool):
        async with http.stream("POST", server.url, content=b"12345") as response:
            assert response.status_code == 200  # the body is never read
        assert (pool.connections, pool.idle_connections) == (0, 0)
        assert (await http.get(server.url)).text == "0"
    assert server.connections == 2


async def test_a_full_pool_closes_an_idle_connection_to_another_origin() -> None:
    async with (
        serving(keep_alive) as first,
        serving(keep_alive) as second,
        client(max_connections=1, pool_timeout=0.5) as (http, pool),
    ):
        await http.get(first.url)
        assert pool.idle_connections == 1
        assert (await http.get(second.url)).text == "0"
        assert (pool.connections, pool.idle_connections) == (1, 1)
        await http.get(first.url)
    assert (first.connections, second.connections) == (2, 1)


async def test_a_failed_connect_frees_its_slot() -> None:
    async with client(max_connections=1) as (http, pool):
        with pytest.raises(httpx.ConnectError):
            await http.get("http://127.0.0.1:9/")  # discard: nothing listens
        assert pool.connections == 0
        async with serving(keep_alive) as server:
            assert (await http.get(server.url)).text == "0"


async def test_closing_the_pool_closes_every_connection() -> None:
    async with serving(keep_alive) as server, client() as (http, pool):
        await asyncio.gather(*(http.get(server.url) for _ in range(3)))
        assert pool.connections == 3
        await pool.aclose()
        assert pool.connections == 0
        with pytest.raises(RuntimeError, match="closed"):
            await http.get(server.url)


async def test_an_url_without_http_scheme_is_refused() -> None:
    pool = ConnectionPool(
        ssl_context=None,
        network_backend=AsyncioBackend(),
        max_connections=1,
        max_keepalive_connections=1,
        keepalive_expiry=5.0,
    )
    async with pool:
        for url in ("ftp://127.0.0.1/x", "//127.0.0.1/x"):
            with pytest.raises(httpcore.UnsupportedProtocol):
                await pool.handle_async_request(httpcore.Request("GET", url))


async def test_connections_take_asyncio_locks_where_httpcore_keeps_them() -> None:
    """httpcore's locks (anyio's) cost a trip through the event loop per acquire; the pool
    swaps them. If a new httpcore keeps them elsewhere, this fails instead of the swap
    silently doing nothing."""
    async with serving(keep_alive) as server, client() as (http, pool):
        answers = [await http.get(server.url) for _ in range(3)]
        (connection,) = [c for stack in pool._idle.values() for c in stack]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert server.connections == 1
    assert isinstance(connection._request_lock, asyncio.Lock)
    inner = connection._connection
    assert isinstance(inner, httpcore.AsyncHTTP11Connection)
    assert isinstance(inner._state_lock, asyncio.Lock)
