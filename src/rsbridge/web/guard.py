"""The listener's defences against clients that hold connections open (slowloris).

uvicorn bounds the idle time between keep-alive requests (``timeout_keep_alive``) but
not the time a client takes to send a request: a connection that sends its request
head (or its body) a byte at a time, or nothing at all, is held for as long as the
client likes, and a thousand of them exhaust the process's file descriptors before any
authentication. Its ``limit_concurrency`` does not help: it answers 503 to *complete*
requests over the limit, and still holds every slow connection.

:func:`guarded_protocol` gives uvicorn an HTTP protocol (its h11 one, extended) that
enforces :class:`ConnectionLimits`:

* **request head timeout**: the head (request line and headers) must be complete
  within ``header_timeout`` seconds of the connection opening, or of the first byte of
  the next request on a kept-alive connection; else ``408`` and the connection closes;
* **request body timeout**: the body must be complete within ``body_timeout`` seconds
  of the head; else the connection closes (the application sees a disconnect);
* **connection cap**: at most ``max_connections`` connections at once. At the cap, a
  new connection takes the place of the oldest one that is not in the middle of a
  request (still waiting for its head, or idle between keep-alive requests), which is
  closed: slow connections cannot crowd out a client that sends its request at once.
  When every connection is inside a request, the new one is answered ``503`` with
  ``Retry-After`` and closed.

Closed connections are logged (a warning at most once a minute, with counts; each one
at debug level). The h11 protocol is used whatever else is installed (httptools):
these limits rely on h11's connection states.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from rsbridge.config import EngineConfig

log = logging.getLogger(__name__)

__all__ = ["ConnectionLimits", "guarded_protocol"]

_TIMED_OUT = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 26\r\n\r\n"
    b"request not sent in time\r\n"
)
_FULL = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 26\r\n\r\n"
    b"too many open connections\n"
)
_REPORT_EVERY = 60.0  # seconds between warnings about closed connections


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many connections it may hold."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 256

    @classmethod
    def of(cls, engine: EngineConfig) -> ConnectionLimits:
        """The limits ``[engine]`` sets."""
        return cls(
            header_timeout=engine.header_timeout_seconds,
            body_timeout=engine.body_timeout_seconds,
            max_connections=engine.max_connections,
        )


class _Tally:
    """Counts closed connections by reason; warns at most once per ``_REPORT_EVERY``."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.next_report = 0.0

    def note(self, reason: str, peer: object) -> None:
        log.debug("connection from %s closed: %s", peer, reason)
        self.counts[reason] += 1
        now = time.monotonic()
        if now >= self.next_report:
            summary = ", ".join(f"{n} x {what}" for what, n in sorted(self.counts.items()))
            log.warning("connections closed by the listener's limits: %s", summary)
            self.counts.clear()
            self.next_report = now + _REPORT_EVERY


class _Guarded(H11Protocol):
    """uvicorn's h11 protocol with the timeouts and the cap of :class:`ConnectionLimits`.

    Subclassed per server by :func:`guarded_protocol`, which sets the class variables:
    the connections and their order are shared by every connection of one server.
    """

    limits: ClassVar[ConnectionLimits]
    live: ClassVar[set[_Guarded]]
    waiting: ClassVar[dict[_Guarded, None]]  # not inside a request; oldest first
    tally: ClassVar[_Tally]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._phase: str | None = None  # "head" or "body" while a timer runs
        self._refused = False

    # --- the connection's life ----------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Accept within the cap (closing the oldest waiting connection if need be)."""
        if len(self.live) >= self.limits.max_connections:
            victim = next(iter(self.waiting), None)
            if victim is None:
                self._refused = True
                self.tally.note("over the connection cap", _peer(transport))
                transport.write(_FULL)
                transport.close()
                return
            victim._evict()
        super().connection_made(transport)
        self.live.add(self)
        self._arm("head")
        self._follow()

    def data_received(self, data: bytes) -> None:
        """Feed h11, timing the next request from its first byte."""
        if self._refused:
            return
        if self._phase is None and self.conn.their_state is h11.IDLE:
            self._arm("head")
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        """After a response: a pipelined request may already be under way."""
        super().on_response_complete()
        if not self._refused:
            self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection; no timer outlives it."""
        self._disarm()
        self._forget()
        if not self._refused:
            super().connection_lost(exc)

    # --- timers -------------------------------------------------------------------

    def _follow(self) -> None:
        """Keep the timer and the waiting list in step with h11's view of the client."""
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._phase == "body":
                self._disarm()
            if self._phase is None and self.conn.trailing_data[0]:
                self._arm("head")  # a pipelined request's head is partly here
            self.waiting.setdefault(self, None)
            return
        self.waiting.pop(self, None)
        if state is h11.SEND_BODY:
            if self._phase != "body":
                self._arm("body")
        else:
            self._disarm()

    def _arm(self, phase: str) -> None:
        self._disarm()
        delay = self.limits.header_timeout if phase == "head" else self.limits.body_timeout
        self._phase = phase
        self._timer = self.loop.call_later(delay, self._timed_out)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._phase = None, None

    def _timed_out(self) -> None:
        phase = self._phase
        self._timer, self._phase = None, None
        if self.transport is None or self.transport.is_closing():
            return
        if phase == "head":
            limit = self.limits.header_timeout
            self.transport.write(_TIMED_OUT)  # no response is under way: h11 is IDLE
        else:
            limit = self.limits.body_timeout
        self.tally.note(f"request {phase} not complete within {limit:g} s", self.client)
        self._forget()
        self.transport.close()

    def _evict(self) -> None:
        """Close this waiting connection to make room for a new one."""
        self._disarm()
        self._forget()
        self.tally.note("made room at the connection cap", self.client)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _forget(self) -> None:
        self.live.discard(self)
        self.waiting.pop(self, None)


def _peer(transport: asyncio.BaseTransport) -> object:
    return transport.get_extra_info("peername")


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """An HTTP protocol class for ``uvicorn.Config(http=...)`` enforcing ``limits``.

    Call it once per server: the class keeps that server's connections.
    """
    namespace = {"limits": limits, "live": set(), "waiting": {}, "tally": _Tally()}
    return type("GuardedH11Protocol", (_Guarded,), namespace)
