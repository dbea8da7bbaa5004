"""A simulated webhook receiver: the peer of the ``webhook`` connector.

It accepts JSON POSTs on any path and behaves like a well-made receiver should:

* **De-duplication by ``Idempotency-Key``**: the first request with a key is stored
  and answered ``201 {"id": "rx-1"}``; a repeat is not stored again and gets the same
  id with ``200`` and ``"duplicate": true`` (counted in
  :attr:`WebhookReceiverState.repeats`). Requests without the header are all stored.
* **Bearer authentication** when the state has a ``secret``: a missing or different
  ``Authorization: Bearer`` header is answered ``401``.
* ``{"kind": "check"}`` is answered ``200 {"ok": true}`` without being stored, and so
  is a GET on any path (for a ``check_url``).
* A record whose ``ticket.id`` is in :attr:`WebhookReceiverState.unknown_tickets` is
  answered ``404``.

Fault injection, for tests and demonstrations of the retry logic:
:meth:`WebhookReceiverState.fail_next` answers the next requests with a given status
(and ``Retry-After``), :meth:`WebhookReceiverState.slow_next` and
:attr:`WebhookReceiverState.delay` hold answers back so that the client times out. A
request held back this way is still processed afterwards, like on a real server that
does not notice the client left: the connector's retry must then be de-duplicated.

::

    state = WebhookReceiverState(secret="s3cret")
    with serve_in_thread(create_app(state)) as base_url:
        ...  # configure the webhook connector with url=f"{base_url}/hook"
    assert state.effects(key) == 1

The state is shared between the server thread and the caller, so every access goes
through its lock.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["Fault", "ReceivedDelivery", "WebhookReceiverState", "create_app"]


@dataclass(frozen=True, slots=True)
class ReceivedDelivery:
    """One stored request: the id the receiver gave it, its key, body and headers."""

    id: str
    key: str | None
    body: dict[str, Any]
    headers: dict[str, str]
    """Request headers with lower-case names."""
    path: str
    received_at: float = field(default_factory=time.time)

    @property
    def kind(self) -> str | None:
        """The record's ``kind`` (``session_report``, ``survey``, ``note``, ``ticket``)."""
        kind = self.body.get("kind")
        return kind if isinstance(kind, str) else None


@dataclass(frozen=True, slots=True)
class Fault:
    """A queued failure answer: ``status``, an optional ``Retry-After`` and body."""

    status: int
    retry_after: float | None = None
    body: str | None = None


class WebhookReceiverState:
    """What the simulated receiver holds, and the faults queued for it.

    Args:
        secret: if set, requests must carry ``Authorization: Bearer <secret>``.
        delay: seconds every request is held before it is answered (0: none).
    """

    def __init__(self, *, secret: str | None = None, delay: float = 0.0) -> None:
        self.secret = secret
        self.delay = delay
        self.received: list[ReceivedDelivery] = []
        """Stored requests, in arrival order (one per idempotency key)."""
        self.repeats: dict[str, int] = {}
        """By idempotency key: how many repeats were answered from the store."""
        self.requests = 0
        """Every request that reached the receiver, faults and checks included."""
        self.checks = 0
        """``{"kind": "check"}`` POSTs and GETs answered."""
        self.unknown_tickets: set[str] = set()
        """Ticket ids answered with 404."""
        self._faults: deque[Fault] = deque()
        self._slow: deque[float] = deque()
        self._by_key: dict[str, ReceivedDelivery] = {}
        self._lock = threading.Lock()

    # --- fault injection ---------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        *,
        body: str | None = None,
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``Retry-After``).

        ``retry_after`` is sent as given (``1`` or ``0.2``; fractions are not standard
        HTTP but let tests stay fast). The default body is a small JSON error.
        """
        with self._lock:
            self._faults.extend([Fault(status, retry_after, body)] * count)

    def slow_next(self, seconds: float, count: int = 1) -> None:
        """Hold the next ``count`` requests back ``seconds`` each (instead of ``delay``)."""
        with self._lock:
            self._slow.extend([seconds] * count)

    def clear_faults(self) -> None:
        """Forget queued failures and slow answers (``delay`` stays as set)."""
        with self._lock:
            self._faults.clear()
            self._slow.clear()

    # --- reading -----------------------------------------------------------------------

    def effects(self, key: str) -> int:
        """How many stored requests carry idempotency key ``key`` (0 or 1)."""
        with self._lock:
            return sum(1 for r in self.received if r.key == key)

    def get(self, key: str) -> ReceivedDelivery | None:
        """The stored request with idempotency key ``key``, if any."""
        with self._lock:
            return self._by_key.get(key)

    def of_kind(self, kind: str) -> list[ReceivedDelivery]:
        """Stored requests whose record ``kind`` is ``kind``, in arrival order."""
        with self._lock:
            return [r for r in self.received if r.kind == kind]

    # --- what the server calls ---------------------------------------------------------

    def _begin(self) -> float:
        with self._lock:
            self.requests += 1
            return self._slow.popleft() if self._slow else self.delay

    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _store(
        self, key: str | None, body: dict[str, Any], headers: dict[str, str], path: str
    ) -> tuple[ReceivedDelivery, bool]:
        """Store a request unless its key is known; returns the stored one and a repeat flag."""
        with self._lock:
            if key is not None and key in self._by_key:
                self.repeats[key] = self.repeats.get(key, 0) + 1
                return self._by_key[key], True
            delivery = ReceivedDelivery(f"rx-{len(self.received) + 1}", key, body, headers, path)
            self.received.append(delivery)
            if key is not None:
                self._by_key[key] = delivery
            return delivery, False

    def _authorized(self, header: str | None) -> bool:
        if not self.secret:
            return True
        expected = f"Bearer {self.secret}".encode()
        return hmac.compare_digest((header or "").encode(), expected)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def create_app(state: WebhookReceiverState) -> Starlette:
    """The receiver's ASGI app: POST (and GET, for checks) on any path."""

    async def receive(request: Request) -> Response:
        # The body is read before any delay: the request has fully arrived and is processed
        # even if the client gives up waiting for the answer.
        raw = await request.body()
        delay = state._begin()
        if delay > 0:
            await asyncio.sleep(delay)
        fault = state._take_fault()
        if fault is not None:
            headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            if fault.body is not None:
                return Response(fault.body, fault.status, headers, media_type="text/plain")
            return _error(fault.status, f"injected failure {fault.status}", headers)
        if not state._authorized(request.headers.get("authorization")):
            return _error(401, "unauthorized", {"WWW-Authenticate": "Bearer"})
        if request.method == "GET":
            with state._lock:
                state.checks += 1
            return JSONResponse({"ok": True})

        try:
            body = json.loads(raw)
        except ValueError:
            return _error(400, "the body is not JSON")
        if not isinstance(body, dict):
            return _error(400, "the body is not a JSON object")
        if body.get("kind") == "check":
            with state._lock:
                state.checks += 1
            return JSONResponse({"ok": True})
        ticket = body.get("ticket")
        if isinstance(ticket, dict) and ticket.get("id") in state.unknown_tickets:
            return _error(404, f"no ticket {ticket.get('id')}")

        key = request.headers.get("idempotency-key") or None
        headers = {name.lower(): value for name, value in request.headers.items()}
        delivery, repeated = state._store(key, body, headers, request.url.path)
        answer: dict[str, Any] = {"id": delivery.id, "duplicate": repeated}
        if delivery.kind == "ticket":
            answer["number"] = "WH" + delivery.id.removeprefix("rx-").zfill(7)
        return JSONResponse(answer, status_code=200 if repeated else 201)

    return Starlette(routes=[Route("/{path:path}", receive, methods=["GET", "POST"])])
