"""The peers' HTTP clients (rsbridge.peer_http) and their asyncio network backend
(rsbridge.http_backend), against real servers on loopback: plain and TLS, a proxy's
tunnel, servers that close connections or never answer."""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
import resource
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeAlias

import httpcore
import httpx
import pytest

from rsbridge import fastpaths, peer_http
from rsbridge.appliance.client import ApplianceClient
from rsbridge.connectors.base import CheckResult
from rsbridge.connectors.transport import PeerTransport, peer_client
from rsbridge.connectors.webhook import WebhookConnector
from rsbridge.deadline import DeadlineClient
from rsbridge.errors import ConnectorPermanentError, ConnectorRetryableError, exception_chain
from rsbridge.http_backend import AsyncioStream
from rsbridge.peer_http import LeanTransport, http_client, lean_transport_applies
from rsbridge.tls import certificate_problem, tls_verification

from .conftest import free_port
from .stub_connectors import CheckOnlyConnector

Certificate = tuple[Path, Path]


@dataclass
class Server:
    """What a test server saw: connections accepted, request heads received."""

    url: str
    connections: int = 0
    requests: list[bytes] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a handler has closed its connection (``one_then_close``)."""


Reader: TypeAlias = asyncio.StreamReader
Writer: TypeAlias = asyncio.StreamWriter
Handler = Callable[[Server, Reader, Writer], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One request's head and body (Content-Length), or None at the end of the stream."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


def _answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


async def keep_alive(server: Server, reader: Reader, writer: Writer) -> None:
    """Answers every request on the connection with the size of its body."""
    while (request := await _read_request(reader)) is not None:
        server.requests.append(request[0])
        writer.write(_answer(b"%d" % len(request[1])))
        await writer.drain()


async def one_then_close(server: Server, reader: Reader, writer: Writer) -> None:
    """Answers one request as if the connection stayed open, then closes it."""
    request = await _read_request(reader)
    if request is not None:
        server.requests.append(request[0])
        writer.write(_answer(b"once"))
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    server.closed.set()


async def silent(server: Server, reader: Reader, writer: Writer) -> None:
    """Reads the request and never answers."""
    await _read_request(reader)
    await asyncio.sleep(3600)


@asynccontextmanager
async def serving(handler: Handler, tls: Certificate | None = None) -> AsyncIterator[Server]:
    """``handler`` on a loopback port of this event loop (https with ``tls``)."""
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    server = Server(url="")

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        try:
            await handler(server, reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    try:
        yield server
    finally:
        listener.close()


@asynccontextmanager
async def connect_proxy(
    tls: Certificate | None = None,
) -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP proxy that serves ``CONNECT`` tunnels only (over TLS with ``tls``); yields
    its URL and the ``CONNECT`` lines it received."""
    seen: list[bytes] = []

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while chunk := await source.read(65536):
                sink.write(chunk)
                await sink.drain()
        except OSError:
            pass
        finally:
            sink.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line = head.split(b"\r\n", 1)[0]
        seen.append(line)
        host, _, port = line.split()[1].decode().rpartition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    listener = await asyncio.start_server(accept, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}", seen
    finally:
        listener.close()


def stream_of(response: httpx.Response) -> object:
    """The network stream httpcore used for ``response`` (its documented extension)."""
    return response.extensions["network_stream"]


# --- the lean path is the default, httpx's own when the fast paths are off ------------


async def test_the_fast_path_uses_the_asyncio_backend() -> None:
    async with serving(keep_alive) as server, http_client(timeout=5) as http:
        response = await http.get(server.url)
    assert response.text == "0"
    assert isinstance(stream_of(response), AsyncioStream)


async def test_turned_off_the_client_is_httpx_default() -> None:
    with fastpaths.turned_off():
        client = http_client(timeout=5)
    async with serving(keep_alive) as server, client as http:
        response = await http.get(server.url)
    assert response.text == "0"
    stream = stream_of(response)
    assert not isinstance(stream, AsyncioStream)
    assert type(stream).__module__.startswith("httpcore._backends.anyio")


async def cookie_once(server: Server, reader: Reader, writer: Writer) -> None:
    """Sets a cookie in its first answer only; answers with the Cookie header it got."""
    while (request := await _read_request(reader)) is not None:
        server.requests.append(request[0])
        sent = [
            line.partition(b":")[2].strip()
            for line in request[0].split(b"\r\n")
            if line.lower().startswith(b"cookie:")
        ]
        extra = b"Set-Cookie: node=n7; Path=/\r\n" if len(server.requests) == 1 else b""
        body = b",".join(sent) or b"-"
        writer.write(
            b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (extra, len(body), body)
        )
        await writer.drain()


@pytest.mark.parametrize("deadline", [None, 30.0])
async def test_cookies_are_kept_and_only_answers_that_set_one_reach_the_jar(
    deadline: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer's session cookie (a load balancer's node, say) goes back as httpx sends it;
    answers without Set-Cookie skip http.cookiejar, which could find nothing in them."""
    looked_at: list[str] = []
    extract = http.cookiejar.CookieJar.extract_cookies

    def spy(jar: http.cookiejar.CookieJar, response: Any, request: Any) -> None:
        looked_at.append(request.get_full_url())
        extract(jar, response, request)

    monkeypatch.setattr(http.cookiejar.CookieJar, "extract_cookies", spy)
    async with serving(cookie_once) as server, http_client(timeout=5, deadline=deadline) as client:
        answers = [(await client.get(f"{server.url}/{n}")).text for n in range(3)]
        with fastpaths.turned_off():
            plain = http_client(timeout=5, deadline=deadline)
        async with plain:
            await plain.get(f"{server.url}/plain")
    assert answers == ["-", "node=n7", "node=n7"]
    assert client.cookies["node"] == "n7"
    # Turned off, httpx's own cookies look at every answer, as before.
    assert looked_at == [f"{server.url}/0", f"{server.url}/plain"]


async def test_proxies_named_by_the_environment_keep_httpx_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert not lean_transport_applies(None)
    assert lean_transport_applies("http://proxy.corp:3128")  # the setting wins, as in httpx


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[LeanTransport]:
    """Every :class:`LeanTransport` :func:`http_client` makes from now on."""
    made: list[LeanTransport] = []

    class Recording(LeanTransport):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            made.append(self)

    monkeypatch.setattr(peer_http, "LeanTransport", Recording)
    return made


class _Plain(CheckOnlyConnector):
    """A connector that keeps the default client (a third party's, say)."""

    name = "plain"
    title = "Plain"

    async def check(self) -> CheckResult:
        return CheckResult("ok")


async def test_every_peer_client_comes_from_the_factory(made: list[LeanTransport]) -> None:
    """The appliance client, a connector's default client, a ticketing connector's
    (``peer_client``) and the webhook connector's own: all on the lean transport."""
    appliance = ApplianceClient("127.0.0.1:9", "id", "secret")
    default = _Plain(_Plain.validate_settings({}))
    webhook = WebhookConnector(
        WebhookConnector.validate_settings({"url": "https://hooks.example/in"})
    )
    settings = SimpleNamespace(timeout_seconds=5.0, proxy="", verify_tls=True, ca_file=None)
    ticketing = peer_client(settings, connector="test")
    assert isinstance(ticketing, DeadlineClient) and ticketing.deadline == 5.0
    assert len(made) == 4
    for closing in (appliance, default, webhook, ticketing):
        await closing.aclose()


# --- connections: reuse, a server that closes, errors ---------------------------------


async def test_a_keep_alive_connection_is_reused() -> None:
    body = b"x" * 300_000  # more than the socket buffers take at once
    async with serving(keep_alive) as server, http_client(timeout=5) as http:
        answers = [await http.post(server.url, content=body) for _ in range(3)]
        answers.append(await http.get(server.url))
    assert [a.text for a in answers] == ["300000", "300000", "300000", "0"]
    assert server.connections == 1
    extra = stream_of(answers[0])
    assert isinstance(extra, AsyncioStream)
    assert extra.get_extra_info("server_addr")[0] == "127.0.0.1"
    assert extra.get_extra_info("client_addr")[0] == "127.0.0.1"
    assert extra.get_extra_info("ssl_object") is None
    assert extra.get_extra_info("something else") is None


async def test_a_connection_past_descriptor_1023_is_checked_too() -> None:
    """The idle check works on any descriptor (``select`` refuses those past 1023)."""
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 1200:
        pytest.skip("needs a descriptor limit over 1200")
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        async with serving(keep_alive) as server, http_client(timeout=5) as http:
            answers = [await http.get(server.url) for _ in range(2)]
            sock = stream_of(answers[0]).get_extra_info("socket")  # type: ignore[attr-defined]
            fd = sock.fileno()
    finally:
        for fd in spare:
            os.close(fd)
    assert [a.text for a in answers] == ["0", "0"]
    assert server.connections == 1
    assert fd > 1023


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    async with serving(one_then_close) as server, http_client(timeout=5) as http:
        first = await http.get(server.url)
        await server.closed.wait()  # closed on the server's side, not yet seen by the pool
        server.closed.clear()
        second = await http.get(server.url)
    assert first.text == second.text == "once"
    assert server.connections == 2


async def test_an_answer_that_never_comes_is_a_read_timeout() -> None:
    async with serving(silent) as server, http_client(timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout) as caught:
            await http.get(server.url)
    assert isinstance(caught.value.__cause__, httpcore.ReadTimeout)


async def test_a_refused_connection_is_a_connect_error_with_its_cause() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    async with http_client(timeout=5) as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(url)
    assert any(isinstance(e, ConnectionRefusedError) for e in exception_chain(caught.value))


async def test_connector_errors_classify_as_with_httpx_transport() -> None:
    refused = f"http://127.0.0.1:{free_port()}/"
    async with serving(silent) as server, http_client(timeout=0.2) as http:
        peer = PeerTransport("Peer", server.url, http, timeout=0.2)
        with pytest.raises(ConnectorRetryableError, match=r"no answer within 0\.2 s"):
            await peer.send("GET", server.url)
        with pytest.raises(ConnectorRetryableError, match=r"could not be reached.*ConnectError"):
            await peer.send("GET", refused)


# --- TLS --------------------------------------------------------------------------------


async def test_tls_with_a_private_ca(certificate: Certificate) -> None:
    verify = tls_verification(verify=True, ca_file=certificate[0], where="test")
    async with (
        serving(keep_alive, tls=certificate) as server,
        http_client(verify=verify, timeout=5) as http,
    ):
        answers = [await http.post(server.url, content=b"abc") for _ in range(2)]
    assert [a.text for a in answers] == ["3", "3"]
    assert server.connections == 1
    ssl_object = stream_of(answers[0]).get_extra_info("ssl_object")  # type: ignore[attr-defined]
    assert isinstance(ssl_object, ssl.SSLObject)
    assert ssl_object.server_hostname == "127.0.0.1"


async def test_a_certificate_that_does_not_verify_is_permanent(certificate: Certificate) -> None:
    async with serving(keep_alive, tls=certificate) as server, http_client(timeout=5) as http:
        with pytest.raises(httpx.ConnectError) as caught:
            await http.get(server.url)
        problem = certificate_problem(caught.value)
        assert problem is not None and "self-signed certificate" in problem
        peer = PeerTransport("Peer", server.url, http, timeout=5)
        with pytest.raises(ConnectorPermanentError, match="self-signed certificate"):
            await peer.send("GET", server.url)


async def test_verification_off_accepts_any_certificate(certificate: Certificate) -> None:
    async with (
        serving(keep_alive, tls=certificate) as server,
        http_client(verify=False, timeout=5) as http,
    ):
        assert (await http.get(server.url)).text == "0"


# --- a proxy -------------------------------------------------------------------------


async def test_https_through_a_proxy_tunnel(certificate: Certificate) -> None:
    verify = tls_verification(verify=True, ca_file=certificate[0], where="test")
    async with (
        serving(keep_alive, tls=certificate) as server,
        connect_proxy() as (proxy, seen),
        http_client(verify=verify, proxy=proxy, timeout=5) as http,
    ):
        answers = [await http.post(f"{server.url}/x", content=b"hello") for _ in range(2)]
    assert [a.text for a in answers] == ["5", "5"]
    host = server.url.removeprefix("https://").encode()
    assert seen == [b"CONNECT " + host + b" HTTP/1.1"]  # one tunnel, reused
    assert server.requests[0].startswith(b"POST /x HTTP/1.1")
    assert isinstance(stream_of(answers[0]), AsyncioStream)


async def test_https_through_a_tls_proxy(certificate: Certificate) -> None:
    """TLS inside the proxy's TLS (an ``https://`` proxy): asyncio's start_tls on a TLS
    transport."""
    verify = tls_verification(verify=True, ca_file=certificate[0], where="test")
    assert isinstance(verify, ssl.SSLContext)
    async with (
        serving(keep_alive, tls=certificate) as server,
        connect_proxy(tls=certificate) as (proxy, seen),
    ):
        transport = LeanTransport(verify=verify, proxy=httpx.Proxy(proxy, ssl_context=verify))
        async with httpx.AsyncClient(transport=transport, timeout=5) as http:
            answer = await http.post(server.url, content=b"hi")
    assert answer.text == "2"
    assert len(seen) == 1


async def test_a_proxy_that_refuses_is_a_proxy_error(certificate: Certificate) -> None:
    async def refuse(server: Server, reader: Reader, writer: Writer) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async with (
        serving(refuse) as proxy,
        http_client(proxy=proxy.url, timeout=5) as http,
    ):
        with pytest.raises(httpx.ProxyError):
            await http.get("https://127.0.0.1:9/")


def test_a_socks_proxy_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        LeanTransport(proxy="socks5://127.0.0.1:1080")
