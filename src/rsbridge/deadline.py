"""An overall deadline for every HTTP call to a peer (the appliance, a ticketing system).

httpx's timeouts bound each phase of a call: connecting, and each read or write. A peer
that sends one byte every 20 seconds never trips a 30-second read timeout, so one call
can last for hours and hold whatever waits for it. :class:`DeadlineClient` bounds the
whole call instead, from sending the request to the last byte of the answer, a body
streamed with ``send(..., stream=True)`` included. Past the deadline the call raises
:class:`CallDeadlineExceeded`, an :class:`httpx.TimeoutException`, so code that already
turns httpx timeouts into retryable errors handles it unchanged.

    async with DeadlineClient(deadline=60.0, timeout=30.0) as http:
        response = await http.get(url)        # at most 60 s, body included
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

DEFAULT_CALL_DEADLINE_SECONDS = 120.0
"""The deadline of a connector's default HTTP client (see ``connectors.base.Connector``)."""


class CallDeadlineExceeded(httpx.ReadTimeout):
    """A call took longer than its overall deadline (the peer was too slow, or trickled)."""

    def __init__(self, seconds: float, request: httpx.Request) -> None:
        super().__init__(
            f"no complete answer within the call deadline of {seconds:g} s", request=request
        )
        self.seconds = seconds


class DeadlineClient(httpx.AsyncClient):
    """An :class:`httpx.AsyncClient` whose every call ends within ``deadline`` seconds.

    Every way of calling goes through :meth:`send` (``get``, ``post``, ``request``,
    ``stream``), so every call is bounded. Redirects followed and authentication
    round trips count against the same deadline. Other arguments are httpx's own.
    """

    def __init__(self, *, deadline: float, **kwargs: Any) -> None:
        if deadline <= 0:
            raise ValueError("deadline must be positive")
        super().__init__(**kwargs)
        self.deadline = deadline
        self.failure_hooks: list[Callable[[httpx.Request, Exception], None]] = []
        """Called with the request and the error when a call gets no answer (metrics)."""

    async def send(
        self, request: httpx.Request, *, stream: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """Send ``request``; the answer (streamed or read) is bounded by the deadline."""
        try:
            return await self._send(request, stream=stream, **kwargs)
        except httpx.TransportError as exc:
            for hook in self.failure_hooks:
                hook(request, exc)
            raise

    async def _send(self, request: httpx.Request, *, stream: bool, **kwargs: Any) -> httpx.Response:
        when = asyncio.get_running_loop().time() + self.deadline
        try:
            async with asyncio.timeout_at(when):
                response = await super().send(request, stream=True, **kwargs)
        except TimeoutError:
            raise CallDeadlineExceeded(self.deadline, request) from None
        # An AsyncClient's responses always stream asynchronously.
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _DeadlineStream(response.stream, when, self.deadline, request)
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response


class _DeadlineStream(httpx.AsyncByteStream):
    """A response body whose every chunk must arrive before the call's deadline.

    The timeout is entered around each read only, never across a ``yield``: the caller's
    own work between chunks runs outside it, and a cancellation can only ever land in
    the read it was meant for.
    """

    def __init__(
        self, inner: httpx.AsyncByteStream, when: float, seconds: float, request: httpx.Request
    ) -> None:
        self._inner = inner
        self._when = when
        self._seconds = seconds
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunks = aiter(self._inner)
        while True:
            try:
                async with asyncio.timeout_at(self._when):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise CallDeadlineExceeded(self._seconds, self._request) from None
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()
