"""The engine's event loop (rsbridge.eventloop, ``[engine] event_loop``) and the peers'
connections on uvloop (rsbridge.http_backend races a host's addresses itself there)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpcore
import httpx
import pytest

from rsbridge import eventloop, fastpaths, http_backend
from rsbridge.config import EngineConfig
from rsbridge.errors import ConfigurationError, exception_chain
from rsbridge.eventloop import EventLoopChoice
from rsbridge.peer_http import http_client

uvloop = pytest.importorskip("uvloop")

LOOPS: list[EventLoopChoice] = ["asyncio", "uvloop"]


async def _running_loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__.partition(".")[0]


def test_auto_runs_on_uvloop_where_it_is_installed() -> None:
    assert eventloop.loop_name("auto") == "uvloop"
    assert eventloop.run(_running_loop_module()) == "uvloop"


def test_asyncio_is_chosen_by_the_setting_or_with_the_fast_paths_off() -> None:
    assert eventloop.run(_running_loop_module(), "asyncio") == "asyncio"
    with fastpaths.turned_off():
        assert eventloop.loop_name("auto") == "asyncio"
        assert eventloop.run(_running_loop_module()) == "asyncio"


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(eventloop, "uvloop_installed", lambda: False)
    assert eventloop.loop_name("auto") == "asyncio"
    with pytest.raises(ConfigurationError, match="uvloop is not installed"):
        eventloop.loop_name("uvloop")
    monkeypatch.setattr("rsbridge.config.uvloop_installed", lambda: False)
    with pytest.raises(ValueError, match="uvloop is not installed here"):
        EngineConfig(event_loop="uvloop")


def test_the_setting_takes_only_the_three_choices() -> None:
    assert EngineConfig().event_loop == "auto"
    assert EngineConfig(event_loop="uvloop").event_loop == "uvloop"
    with pytest.raises(ValueError, match="event_loop"):
        EngineConfig(event_loop="trio")


# --- connecting on either loop --------------------------------------------------------


@contextmanager
def _listeners() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A listener that accepts, and one whose queue is full: a connection to it is never
    answered (the kernel drops the handshake), like an address without a route."""
    live = socket.create_server(("127.0.0.1", 0))
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # it connects in the background
            filler.connect(stalled.getsockname())
        fillers.append(filler)
    try:
        yield live, stalled
    finally:
        for sock in (live, stalled, *fillers):
            sock.close()


def _info(address: tuple[str, int]) -> http_backend.AddrInfo:
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)


@pytest.mark.parametrize("loop", LOOPS)
def test_an_address_that_never_answers_does_not_hold_up_the_next(loop: EventLoopChoice) -> None:
    with _listeners() as (live, stalled):

        async def race() -> tuple[str, int]:
            # Without the race, the first address would take the whole 10 s.
            async with asyncio.timeout(10):
                sock = await http_backend.race_addresses(
                    [_info(stalled.getsockname()), _info(live.getsockname())], None, 0.05
                )
            with sock:
                peer: tuple[str, int] = sock.getpeername()
                assert sock.getblocking() is False
                return peer

        assert eventloop.run(race(), loop) == live.getsockname()


@pytest.mark.parametrize("loop", LOOPS)
def test_when_no_address_connects_every_reason_is_given(loop: EventLoopChoice) -> None:
    refused = []
    for _ in range(2):  # ports that were free a moment ago: nothing listens there now
        with socket.create_server(("127.0.0.1", 0)) as sock:
            refused.append(_info(sock.getsockname()))

    async def race() -> None:
        await http_backend.race_addresses(refused, None, 0.05)

    with pytest.raises(OSError, match="could not connect to any address: ") as failed:
        eventloop.run(race(), loop)
    for info in refused:
        assert f"{info[4][1]})" in str(failed.value)
    assert isinstance(failed.value.__cause__, ConnectionRefusedError)


def test_addresses_take_turns_by_family() -> None:
    v4 = [_info(("127.0.0.1", n)) for n in (1, 2, 3)]
    v6 = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", n, 0, 0)) for n in (4, 5)]
    order = http_backend._interleaved([*v6, *v4])
    assert [info[4][1] for info in order] == [4, 1, 5, 2, 3]


def test_a_peer_request_on_uvloop_goes_through_the_lean_transport() -> None:
    """A request, a keep-alive reuse and a refused connection, on uvloop (whose
    connections the backend opens itself)."""
    with socket.create_server(("127.0.0.1", 0)) as gone:  # nothing listens there after
        port = gone.getsockname()[1]

    connections = 0

    async def go() -> tuple[list[int], list[BaseException]]:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                while await reader.readuntil(b"\r\n\r\n"):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        url = f"http://localhost:{server.sockets[0].getsockname()[1]}/"
        async with server, http_client(timeout=5) as client:
            statuses = [(await client.get(url)).status_code for _ in range(2)]
            with pytest.raises(httpx.ConnectError) as refused:
                await client.get(f"http://127.0.0.1:{port}/")
        return statuses, exception_chain(refused.value)

    statuses, chain = eventloop.run(go(), "uvloop")
    assert statuses == [200, 200]
    assert connections == 1  # the second request reused the first one's connection
    # As on asyncio's loop: httpx's error, httpcore's, then the refusal itself.
    assert [type(e) for e in chain[:2]] == [httpx.ConnectError, httpcore.ConnectError]
    assert any(isinstance(e, ConnectionRefusedError) for e in chain)
