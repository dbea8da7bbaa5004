"""The lean transport's connection pool: httpcore's HTTP/1.1 connections, reused per origin.

Why not :class:`httpcore.AsyncConnectionPool`: it re-plans the whole pool on every request
and on every response closed, walking every connection, and for each idle one it counts
all of them again; with 16 requests at once to one receiver (the engine's workers) that
bookkeeping cost about 40% of the HTTP client's CPU per request (``docs/benchmarks.md``,
fifth round). Overriding its private planning method would break on any httpcore release.
This pool is built on httpcore's public connection class instead and does constant work
per request: idle connections wait in a stack per origin, the most recently used first
(the least likely to have expired), and only the one about to be reused is checked.

Its rules are httpcore's: at most ``max_connections`` connections (waiting up to the
request's ``pool`` timeout for one, else :class:`httpcore.PoolTimeout`), at most
``max_keepalive_connections`` kept idle, an idle connection reused only if it has not
expired (``keepalive_expiry``) and its server has not closed it; at the limit, an idle
connection to another origin is closed to make room. HTTP/1.1 only, as the lean
transport; proxies keep httpcore's :class:`httpcore.AsyncHTTPProxy`.

The pool's connections take asyncio's locks instead of httpcore's (:func:`_asyncio_locks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpcore

_SCHEMES = (b"http", b"https", b"ws", b"wss")

_Key = tuple[bytes, bytes, int]
"""An origin as a dictionary key (httpcore's ``Origin`` is not hashable)."""


def _key(origin: httpcore.Origin) -> _Key:
    return (origin.scheme, origin.host, origin.port)


class ConnectionPool:
    """HTTP/1.1 connections to any origin, opened on demand and kept alive for reuse."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None,
        network_backend: httpcore.AsyncNetworkBackend,
        max_connections: int | None,
        max_keepalive_connections: int | None,
        keepalive_expiry: float | None,
    ) -> None:
        self._ssl_context = ssl_context
        self._backend = network_backend
        self._max = max_connections
        self._max_idle = max_keepalive_connections
        self._expiry = keepalive_expiry
        self._idle: dict[_Key, list[httpcore.AsyncHTTPConnection]] = {}
        self._idle_count = 0
        self._open: set[httpcore.AsyncHTTPConnection] = set()
        """Every connection the pool made and has not closed: idle, in use or connecting."""
        self._freed = asyncio.Event()
        """Set (and replaced) whenever a connection is returned or closed: waiters retry."""
        self._closed = False

    @property
    def connections(self) -> int:
        """How many connections are open (idle, in use or connecting)."""
        return len(self._open)

    @property
    def idle_connections(self) -> int:
        """How many open connections wait idle for reuse."""
        return self._idle_count

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send ``request`` on an idle connection to its origin, or a new one; the answer's
        body streams from the connection, which returns to the pool when it is closed."""
        scheme = request.url.scheme
        if scheme == b"":
            raise httpcore.UnsupportedProtocol(
                "Request URL is missing an 'http://' or 'https://' protocol."
            )
        if scheme not in _SCHEMES:
            raise httpcore.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{scheme.decode()}://'."
            )
        origin = request.url.origin
        timeouts = request.extensions.get("timeout", {})
        pool_timeout = timeouts.get("pool")
        deadline = None if pool_timeout is None else time.monotonic() + pool_timeout
        while True:
            connection = await self._acquire(origin, deadline)
            try:
                answer = await connection.handle_async_request(request)
            except httpcore.ConnectionNotAvailable:
                # Closed between the check and the request: take another one.
                await self._release(connection, origin)
                continue
            except BaseException:
                await self._release(connection, origin)
                raise
            return httpcore.Response(
                status=answer.status,
                headers=answer.headers,
                content=_PooledBody(
                    answer.stream, functools.partial(self._release, connection, origin)
                ),
                extensions=answer.extensions,
            )

    async def aclose(self) -> None:
        """Close every connection, those in use included (their requests fail)."""
        self._closed = True
        connections, self._open = self._open, set()
        self._idle.clear()
        self._idle_count = 0
        for connection in connections:
            await _close(connection)
        self._wake()

    async def __aenter__(self) -> ConnectionPool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- internals -------------------------------------------------------------------

    async def _acquire(
        self, origin: httpcore.Origin, deadline: float | None
    ) -> httpcore.AsyncHTTPConnection:
        """A connection to ``origin`` that this request alone uses until it is released."""
        while True:
            if self._closed:
                raise RuntimeError("the connection pool is closed")
            stack = self._idle.get(_key(origin))
            while stack:
                connection = stack.pop()
                self._idle_count -= 1
                if connection.is_available() and not connection.has_expired():
                    return connection
                self._open.discard(connection)
                await _close(connection)
            if self._max is None or len(self._open) < self._max:
                return self._new(origin)
            if self._idle_count:
                # Full, but with idle connections to other origins: one makes room.
                await self._drop_oldest_idle()
                return self._new(origin)
            freed = self._freed
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpcore.PoolTimeout("no connection became free in time")
            try:
                async with asyncio.timeout(remaining):
                    await freed.wait()
            except TimeoutError as exc:
                raise httpcore.PoolTimeout("no connection became free in time") from exc

    def _new(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        connection = httpcore.AsyncHTTPConnection(
            origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._expiry,
            http1=True,
            http2=False,
            network_backend=self._backend,
        )
        _asyncio_locks(connection)
        self._open.add(connection)
        return connection

    async def _drop_oldest_idle(self) -> None:
        """Close an idle connection (to another origin: the caller's had none): the least
        recently used one of the first origin that has any."""
        for key, stack in self._idle.items():
            if stack:
                connection = stack.pop(0)
                self._idle_count -= 1
                if not stack:
                    del self._idle[key]
                self._open.discard(connection)
                await _close(connection)
                return

    async def _release(
        self, connection: httpcore.AsyncHTTPConnection, origin: httpcore.Origin
    ) -> None:
        """Take ``connection`` back after its request: kept idle if it can serve another
        one and there is room, else closed. Waiters are woken either way."""
        if connection not in self._open:
            return  # the pool closed it already (aclose)
        reusable = (
            not self._closed
            and not connection.is_closed()
            and connection.is_idle()
            and (self._max_idle is None or self._idle_count < self._max_idle)
        )
        if reusable:
            _asyncio_locks(connection)  # its HTTP/1.1 half exists after the first request
            self._idle.setdefault(_key(origin), []).append(connection)
            self._idle_count += 1
        else:
            self._open.discard(connection)
        self._wake()
        if not reusable:
            await _close(connection)

    def _wake(self) -> None:
        freed, self._freed = self._freed, asyncio.Event()
        freed.set()


_LOCKS = (("_request_lock",), ("_connection", "_state_lock"))
"""Where httpcore 1.0 keeps a connection's locks: its own (held while it connects) and its
HTTP/1.1 half's (held while a request takes or gives back the connection)."""


def _asyncio_locks(connection: httpcore.AsyncHTTPConnection) -> None:
    """Give ``connection`` asyncio's locks in place of httpcore's, while none is held.

    httpcore's lock on asyncio is anyio's, whose every acquire passes through the event
    loop once more (a shielded ``sleep(0)``) even when nobody else holds it; a request
    took three of them. This pool hands a connection to one request at a time, so the
    locks are never contended, and asyncio's is taken at once: 0.06 ms less CPU per
    webhook call (``benchmarks/peer_http.py``). A lock httpcore no longer keeps where
    :data:`_LOCKS` says is left as it is (tests/test_http_pool.py notices).
    """
    for *path, name in _LOCKS:
        owner: object = connection
        for step in path:
            owner = getattr(owner, step, None)
        lock = getattr(owner, name, None)
        if lock is not None and not isinstance(lock, asyncio.Lock):
            setattr(owner, name, asyncio.Lock())


async def _close(connection: httpcore.AsyncHTTPConnection) -> None:
    # Closing drops the socket without waiting for the peer; an error then changes
    # nothing for the pool, which has already forgotten the connection.
    with contextlib.suppress(Exception):
        await connection.aclose()


class _PooledBody:
    """An answer's body: returns its connection to the pool when it is closed."""

    def __init__(self, inner: object, release: Callable[[], Awaitable[None]]) -> None:
        self._inner = inner
        self._release = release
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:  # type: ignore[attr-defined]
                yield chunk
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the body (httpcore then keeps its connection for reuse or closes it) and
        give the connection back."""
        if self._closed:
            return
        self._closed = True
        try:
            aclose = getattr(self._inner, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            await self._release()
