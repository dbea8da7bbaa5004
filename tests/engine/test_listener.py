"""The listener's limits (rsbridge.web.guard) against slow clients, on real sockets.

Many connections on loopback that send their request slowly or not at all: they are
closed once the limit passes, while a client that sends its request at once is served
all along. Bounds on time are generous and only prove that nothing hangs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from rsbridge.engine.intake import Intake
from rsbridge.engine.store.base import EventFilter
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.web.app import create_app
from rsbridge.web.guard import ConnectionLimits
from rsbridge.web.serve import serving

from .conftest import engine_config

FORM = urlencode(
    {
        "event": "support_conference_end",
        "version": "3",
        "lsid": "5f1e0c5b7a2a4c8e9d0f1a2b3c4d5e6f",
        "external_key": "INC0010001",
    }
)
HEAD = b"POST /ERSPost?appliance=default HTTP/1.1\r\nHost: rsbridge\r\n"
BOUND = 15.0  # seconds: far beyond every limit used here; reaching it means a hang

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Listener:
    def __init__(self, url: str, store: MemoryStore) -> None:
        self.url, self.store = url, store
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80

    async def connect(self, first: bytes = b"") -> Streams:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        if first:
            writer.write(first)
            await writer.drain()
        return reader, writer

    async def good_request(self) -> httpx.Response:
        """An event sent at once, on a connection of its own."""
        async with httpx.AsyncClient(timeout=BOUND) as http:
            return await http.post(
                f"{self.url}/ERSPost?appliance=default",
                content=FORM,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )


@asynccontextmanager
async def listening(tmp_path: Path, limits: ConnectionLimits) -> AsyncIterator[Listener]:
    store = MemoryStore()
    await store.open()
    config = engine_config(tmp_path, None)
    async with serving(create_app(Intake(config, store), store), limits=limits) as url:
        yield Listener(url, store)


async def answers(connections: list[Streams]) -> list[bytes]:
    """Everything the server sends on each connection until it closes it (all within
    ``BOUND`` together)."""
    try:
        return await asyncio.wait_for(
            asyncio.gather(*(reader.read() for reader, _ in connections)), BOUND
        )
    finally:
        for _, writer in connections:
            writer.close()


async def test_slow_request_heads_are_closed_and_a_prompt_client_gets_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rsbridge.web.guard")
    limits = ConnectionLimits(header_timeout=0.5, body_timeout=0.5, max_connections=1000)
    async with listening(tmp_path, limits) as listener:
        silent = [await listener.connect() for _ in range(100)]
        partial = [await listener.connect(HEAD) for _ in range(100)]
        reader, writer = await listener.connect(HEAD)

        async def trickle() -> int:
            # One header line every 50 ms: 200 lines take 10 s, far past the limit.
            for sent in range(200):
                if reader.at_eof() or writer.is_closing():
                    return sent
                try:
                    writer.write(f"X-Slow-{sent}: 1\r\n".encode())
                    await writer.drain()
                except ConnectionError:
                    return sent
                await asyncio.sleep(0.05)
            return 200

        trickling = asyncio.create_task(trickle())
        good = await listener.good_request()
        assert (good.status_code, good.text) == (200, "OK")

        got = await answers(silent + partial)
        assert all(a.startswith(b"HTTP/1.1 408 ") for a in got), {a[:40] for a in got}
        # Closed long before its last line: it kept writing, so the 408 may be lost to
        # the reset that data sent after the close provokes.
        assert await asyncio.wait_for(trickling, BOUND) < 200
        writer.close()
        assert len(await listener.store.list_events(EventFilter())) == 1
    assert "request head not complete within 0.5 s" in caplog.text


async def test_a_slow_body_is_cut_off_without_an_error_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    limits = ConnectionLimits(header_timeout=5, body_timeout=0.5, max_connections=1000)
    async with listening(tmp_path, limits) as listener:
        # uvicorn's loggers do not propagate (and serving() has just configured them).
        uvicorn_errors = logging.getLogger("uvicorn.error")
        uvicorn_errors.addHandler(caplog.handler)
        try:
            head = HEAD + b"Content-Type: application/x-www-form-urlencoded\r\n"
            slow = [
                await listener.connect(head + b"Content-Length: 500\r\n\r\nevent=support_c")
                for _ in range(50)
            ]
            good = await listener.good_request()
            assert good.status_code == 200
            # Closed, the requests never completed.
            assert await answers(slow) == [b""] * len(slow)
            assert len(await listener.store.list_events(EventFilter())) == 1
        finally:
            uvicorn_errors.removeHandler(caplog.handler)
    assert "request body not complete within 0.5 s" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


async def test_at_the_cap_a_new_connection_replaces_the_oldest_idle_one(tmp_path: Path) -> None:
    # Long timeouts: a connection closed here was closed to make room, not for its time.
    limits = ConnectionLimits(header_timeout=60, body_timeout=60, max_connections=20)
    async with listening(tmp_path, limits) as listener:
        idle = [await listener.connect() for _ in range(20)]
        good = await listener.good_request()
        assert good.status_code == 200
        assert await answers(idle[:1]) == [b""]  # the oldest, closed at once
        still_open = idle[1][0]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(still_open.read(1), 0.3)
        for _, writer in idle[1:]:
            writer.close()


async def test_when_every_connection_is_inside_a_request_a_new_one_gets_503(
    tmp_path: Path,
) -> None:
    limits = ConnectionLimits(header_timeout=60, body_timeout=60, max_connections=5)
    async with listening(tmp_path, limits) as listener:
        head = HEAD + b"Content-Length: 100\r\n\r\nevent="
        busy = [await listener.connect(head) for _ in range(5)]
        [refused] = await answers([await listener.connect()])
        assert refused.startswith(b"HTTP/1.1 503 ")
        assert b"Retry-After: 1\r\n" in refused
        for _, writer in busy:  # the clients give up: their places are free again
            writer.close()
        for _ in range(int(BOUND / 0.05)):
            try:
                good = await listener.good_request()
            except httpx.TransportError:
                good = None
            if good is not None and good.status_code == 200:
                break
            await asyncio.sleep(0.05)
        assert good is not None and good.status_code == 200
