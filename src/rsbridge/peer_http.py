"""The HTTP clients rsbridge makes for its peers: one factory, :func:`http_client`.

Every client is an :class:`httpx.AsyncClient` (a :class:`~rsbridge.deadline.DeadlineClient`
when the whole call has a deadline). With the fast paths on (:mod:`rsbridge.fastpaths`) its
transport is :class:`LeanTransport`: :class:`~rsbridge.http_pool.ConnectionPool`
(httpcore's connections without its pool's bookkeeping; httpcore's proxy pool for a proxy)
over :class:`~rsbridge.http_backend.AsyncioBackend` instead of anyio. Turned off, httpx
makes its own default transport, as before issue 15.

The TLS settings mean the same on both: ``verify`` is ``True``, ``False``, or an
:class:`ssl.SSLContext` (:func:`rsbridge.tls.tls_verification` makes one for a private CA),
turned into a context by :func:`httpx.create_ssl_context`, as httpx does.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import AsyncIterator
from typing import Any, overload

import httpcore
import httpx

from rsbridge import fastpaths
from rsbridge.deadline import DeadlineClient
from rsbridge.http_backend import AsyncioBackend
from rsbridge.http_pool import ConnectionPool

LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
"""httpx's default pool limits, kept for the lean transport."""

# From httpcore's exceptions to httpx's, the most specific match wins (as httpx maps them).
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def _mapped(exc: Exception) -> Exception:
    """httpx's error for httpcore's ``exc`` (``exc`` itself when it is not httpcore's)."""
    for theirs, ours in _ERRORS:
        if isinstance(exc, theirs):
            return ours(str(exc))
    return exc


class LeanTransport(httpx.AsyncBaseTransport):
    """An httpx transport over :class:`ConnectionPool` on :class:`AsyncioBackend`.

    What :class:`httpx.AsyncHTTPTransport` does (HTTP/1.1, a pool with httpx's limits, an
    ``http(s)://`` proxy with ``CONNECT`` tunnels for https), built from public API so
    that the pool can be given its network backend: httpx's own transport has no
    parameter for it.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        proxy: str | httpx.Proxy | None = None,
        limits: httpx.Limits = LIMITS,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify)
        backend = AsyncioBackend()
        pool_limits: dict[str, Any] = {
            "max_connections": limits.max_connections,
            "max_keepalive_connections": limits.max_keepalive_connections,
            "keepalive_expiry": limits.keepalive_expiry,
        }
        self._pool: ConnectionPool | httpcore.AsyncHTTPProxy
        if proxy is None:
            self._pool = ConnectionPool(
                ssl_context=ssl_context, network_backend=backend, **pool_limits
            )
            return
        proxy = httpx.Proxy(proxy) if isinstance(proxy, str) else proxy
        if proxy.url.scheme not in ("http", "https"):
            raise ValueError(f"a proxy must be http:// or https://, not {proxy.url.scheme}://")
        self._pool = httpcore.AsyncHTTPProxy(
            proxy_url=httpcore.URL(
                scheme=proxy.url.raw_scheme,
                host=proxy.url.raw_host,
                port=proxy.url.port,
                target=proxy.url.raw_path,
            ),
            proxy_auth=proxy.raw_auth,
            proxy_headers=proxy.headers.raw,
            proxy_ssl_context=proxy.ssl_context,
            ssl_context=ssl_context,
            network_backend=backend,
            **pool_limits,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the pool; the answer's body streams from the connection."""
        assert isinstance(request.stream, httpx.AsyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        try:
            answer = await self._pool.handle_async_request(core)
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is exc:
                raise
            raise mapped from exc  # the chain keeps the cause (a certificate's reason)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        """Close every pooled connection."""
        await self._pool.aclose()


class _Body(httpx.AsyncByteStream):
    """An answer's body from httpcore, its errors mapped to httpx's."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except Exception as exc:
            mapped = _mapped(exc)
            if mapped is exc:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        if hasattr(self._inner, "aclose"):
            await self._inner.aclose()


def lean_transport_applies(proxy: str | None) -> bool:
    """Whether :func:`http_client` uses :class:`LeanTransport`: with the fast paths on,
    unless the environment names proxies (``HTTPS_PROXY``, ``NO_PROXY`` ...) and no
    ``proxy`` setting overrides them. httpx reads those itself, with its own rules; a
    client given a transport would ignore them, so it keeps httpx's transport then."""
    if not fastpaths.enabled():
        return False
    return bool(proxy) or not urllib.request.getproxies()


@overload
def http_client(
    *,
    deadline: float,
    verify: ssl.SSLContext | bool = True,
    proxy: str | None = None,
    timeout: float = 30.0,
) -> DeadlineClient: ...


@overload
def http_client(
    *,
    deadline: None = None,
    verify: ssl.SSLContext | bool = True,
    proxy: str | None = None,
    timeout: float = 30.0,
) -> httpx.AsyncClient: ...


def http_client(
    *,
    deadline: float | None = None,
    verify: ssl.SSLContext | bool = True,
    proxy: str | None = None,
    timeout: float = 30.0,
) -> httpx.AsyncClient:
    """An HTTP client for a peer (the appliance, a ticketing system, a webhook receiver).

    ``deadline`` bounds each whole call (a :class:`DeadlineClient`), ``timeout`` each
    step (connecting, each read and write); ``verify`` and ``proxy`` as httpx takes them.
    """
    options: dict[str, Any] = {"timeout": timeout}
    if lean_transport_applies(proxy):
        options["transport"] = LeanTransport(verify=verify, proxy=proxy or None)
    else:
        options.update(verify=verify, proxy=proxy or None)
    plain, bounded = (
        (PeerClient, PeerDeadlineClient)
        if fastpaths.enabled()
        else (httpx.AsyncClient, DeadlineClient)
    )
    if deadline is None:
        return plain(**options)
    return bounded(deadline=deadline, **options)


class PeerCookies(httpx.Cookies):
    """A client's cookies, which look at a response only when it sets one.

    httpx hands every response to :mod:`http.cookiejar`, wrapped in :mod:`urllib`'s request
    and response objects, even when it has no ``Set-Cookie`` header and the jar can find
    nothing in it: 3 to 7% of the engine's CPU per webhook delivery in a backlog (issue 15).
    What the jar keeps is the same (tests/test_peer_http.py).
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep the cookies ``response`` sets, as :class:`httpx.Cookies` does."""
        headers = response.headers
        if "set-cookie" in headers or "set-cookie2" in headers:
            super().extract_cookies(response)


class PeerClient(httpx.AsyncClient):
    """:class:`httpx.AsyncClient` whose cookies are :class:`PeerCookies` (a fast path)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cookies = kwargs.get("cookies")

    @property
    def cookies(self) -> httpx.Cookies:
        """The cookies the client keeps and sends (httpx reads and fills them here)."""
        return self._peer_cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:  # what httpx.Cookies takes
        self._peer_cookies: httpx.Cookies = PeerCookies(cookies)


class PeerDeadlineClient(PeerClient, DeadlineClient):
    """:class:`~rsbridge.deadline.DeadlineClient` with :class:`PeerCookies`."""
