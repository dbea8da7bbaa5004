"""An httpcore network backend on plain asyncio streams (a fast path of issue 15).

httpcore's default backend on asyncio goes through anyio: every read and write enters a
cancel scope (which looks up ``asyncio.current_task`` and more), and every
``get_extra_info`` builds the socket's attribute table (a ``getpeername`` call). For the
engine's peers, many small requests over few keep-alive connections, that was a fifth of
the event loop's time in a webhook backlog. This backend does the same work on asyncio's
own streams: :func:`asyncio.open_connection`, :meth:`asyncio.StreamWriter.start_tls`,
:func:`asyncio.timeout`.

Errors are httpcore's, as its own backends raise them, with the original exception as the
cause (``raise ... from``): httpx maps them to its own types, and
:func:`rsbridge.tls.certificate_problem` walks the chain to an
:class:`ssl.SSLCertVerificationError`.
"""

# httpcore's interface takes the timeouts as parameters (ASYNC109 would have them outside).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import functools
import itertools
import select
import socket
import ssl
from asyncio import staggered
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)
"""What httpcore passes as ``socket_options`` (the arguments of ``setsockopt``)."""


HAPPY_EYEBALLS_DELAY = 0.25
"""Seconds before the next address of a host is tried alongside (RFC 8305), anyio's
default: a host whose first address does not answer (IPv6 without a route, say) still
connects within the timeout, not after it."""


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection (plain or TLS) as httpcore reads and writes it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to ``max_bytes``; ``b""`` at the end of the stream."""
        try:
            async with asyncio.timeout(timeout):
                return await self._reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:  # ssl.SSLError is an OSError too
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send all of ``buffer``, waiting while the socket's buffers are full."""
        if not buffer:
            return
        try:
            self._writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self._writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except (OSError, RuntimeError) as exc:
            # RuntimeError: asyncio refuses to write to a transport that is closing.
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        """Close the connection without waiting (as httpcore's backends do: no TLS goodbye
        to wait for on a connection that is being dropped)."""
        self._writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Upgrade this connection to TLS (``https://``, or through a proxy's tunnel)."""
        try:
            async with asyncio.timeout(timeout):
                await self._writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError as exc:
            self._writer.close()
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except (OSError, EOFError) as exc:
            # ssl.SSLCertVerificationError among them: kept as the cause, with OpenSSL's reason.
            self._writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        """The keys httpcore asks for: ``is_readable`` (checked before a pooled
        connection is reused), ``ssl_object``, ``client_addr``, ``server_addr``, ``socket``."""
        if info == "is_readable":
            return self._is_readable()
        if info == "ssl_object":
            return self._writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self._writer.get_extra_info("sockname")
        if info == "server_addr":
            return self._writer.get_extra_info("peername")
        if info == "socket":
            return self._writer.get_extra_info("socket")
        return None

    def _is_readable(self) -> bool:
        """Whether the peer sent something (or closed) on an idle connection: then it
        cannot be reused. asyncio reads as data comes, so what it already read counts:
        the end of the stream, a transport that is closing; else the socket is asked."""
        if self._reader.at_eof() or self._writer.is_closing():
            return True
        sock = self._writer.get_extra_info("socket")
        fd = -1 if sock is None else sock.fileno()
        if fd < 0:
            return True
        # poll, not select: select refuses descriptors past 1023 (FD_SETSIZE), which a
        # busy engine (store, listener, peers) can reach.
        poll = select.poll()
        poll.register(fd, select.POLLIN)
        return bool(poll.poll(0))


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens :class:`AsyncioStream` connections for an httpcore pool or proxy."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to ``host``:``port`` within ``timeout`` seconds, its addresses raced as
        anyio does (TCP_NODELAY is asyncio's default for TCP, as with httpcore's backends)."""
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                if isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop):
                    reader, writer = await asyncio.open_connection(
                        host, port, local_addr=local, happy_eyeballs_delay=HAPPY_EYEBALLS_DELAY
                    )
                else:  # uvloop takes no happy_eyeballs_delay: it would try one at a time
                    sock = await connect_first(host, port, local, HAPPY_EYEBALLS_DELAY)
                    reader, writer = await asyncio.open_connection(sock=sock)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:  # refused, unreachable, a name that does not resolve
            raise httpcore.ConnectError(str(exc)) from exc
        _apply(writer, socket_options)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to a Unix socket (httpx's ``uds=``), within ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_unix_connection(path)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        _apply(writer, socket_options)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        """httpcore sleeps between connection retries (``retries=``)."""
        await asyncio.sleep(seconds)


async def connect_first(
    host: str, port: int, local: tuple[str, int] | None, delay: float
) -> socket.socket:
    """A connected non-blocking socket to ``host``:``port``: its addresses raced as RFC 8305
    says and asyncio's own loop does with ``happy_eyeballs_delay`` (families alternating,
    the next address tried ``delay`` s after the previous one started, the first to connect
    wins, the others closed). For event loops that lack that parameter (uvloop)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return await race_addresses(_interleaved(infos), local, delay)


AddrInfo = tuple[int, int, int, str, Any]
"""One entry of :func:`socket.getaddrinfo`: family, type, protocol, name, address."""


async def race_addresses(
    infos: list[AddrInfo], local: tuple[str, int] | None, delay: float
) -> socket.socket:
    """Connect to the first of ``infos`` that answers, starting one every ``delay`` s."""
    loop = asyncio.get_running_loop()
    opened: list[socket.socket] = []

    async def attempt(info: AddrInfo) -> socket.socket:
        family, kind, proto, _, address = info
        sock = socket.socket(family, kind, proto)
        opened.append(sock)
        sock.setblocking(False)
        if local is not None:
            sock.bind(local)
        await loop.sock_connect(sock, address)
        return sock

    winner: object = None
    try:
        winner, _, errors = await staggered.staggered_race(
            [functools.partial(attempt, info) for info in infos], delay
        )
    finally:
        # The losers, and every socket if the race itself was cancelled (a timeout).
        for sock in opened:
            if sock is not winner:
                sock.close()
    if winner is None:
        failures = [e for e in errors if e is not None]
        if len(failures) == 1:  # as asyncio's loop: the one failure as it was
            raise failures[0]
        reasons = "; ".join(str(e) for e in failures) or "no address"
        # The first failure as the cause: certificate_problem and the error classes walk it.
        raise OSError(f"could not connect to any address: {reasons}") from (
            failures[0] if failures else None
        )
    assert isinstance(winner, socket.socket)
    return winner


def _interleaved(infos: Sequence[AddrInfo]) -> list[AddrInfo]:
    """``infos`` with the address families taking turns, each in its own order."""
    families: dict[int, list[AddrInfo]] = {}
    for info in infos:
        families.setdefault(info[0], []).append(info)
    rounds = itertools.zip_longest(*families.values())
    return [info for row in rounds for info in row if info is not None]


def _apply(writer: asyncio.StreamWriter, options: Iterable[SocketOption] | None) -> None:
    sock: socket.socket | None = writer.get_extra_info("socket")
    if sock is None:
        return
    for option in options or ():
        sock.setsockopt(*option)
