"""The ASGI application: outbound-event intake routes, health and status endpoints.

Routes:

* ``POST /ERSPost?appliance=<id>``: the vendor middleware's path, so that an appliance's
  existing outbound-event recipient keeps working (no ``appliance`` means ``default``);
* ``POST /events/<appliance id>``: the same, on a path of our own;
* ``GET /health``: public liveness, ``200 {"status": "ok"}`` while the process answers
  and every background task runs, ``503 {"status": "unavailable"}`` otherwise (restart
  it); the store is not asked, so a database outage does not restart every node;
* ``GET /ready``: public readiness, ``200 {"status": "ready"}`` when the store answers and
  the listener serves (started, not shutting down), ``503`` otherwise (send no traffic);
* ``GET /metrics``: the Prometheus text format (:mod:`rsbridge.metrics`), for a bearer of
  one of ``[actions] tokens``, or without a token from a loopback address that is no
  proxy (not in ``trusted_proxies``, no forwarding header); ``401`` otherwise;
* ``GET /status``: the same verdict with the details (job counts, background tasks, the
  store's error), for a bearer of one of ``[actions] tokens`` (the actions API need not
  be enabled); ``401`` otherwise;
* ``/actions/...``: the actions API (:mod:`rsbridge.web.actions`), when ``[actions]`` is
  enabled; the engine passes its routes as ``extra_routes``.

Both intake routes accept the token as ``?outbound_event_token=...`` (the vendor's form)
or as a form variable.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan

from rsbridge.config import Config
from rsbridge.engine.intake import TOKEN_VARIABLE, Intake, IntakeResult
from rsbridge.engine.store.base import Store
from rsbridge.log_setup import bind_log_fields
from rsbridge.metrics import CONTENT_TYPE, Metrics, RefusalReason
from rsbridge.web.actions import bearer_opens, refuse_unauthorized

log = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store"}
_PROBE = "rsbridge.health"
"""Watermark name read by the liveness probe: one indexed row, whether it exists or not
(counting jobs would scan tables, on a route anyone may call)."""


class _TooLargeError(Exception):
    pass


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client closed (or the listener cut off a body that did not come in time):
    # nobody hears the answer, and it is no error of ours: one line, no traceback.
    log.warning(
        "%s %s: the client went away before its request was read (from %s)",
        request.method,
        request.url.path,
        request.client.host if request.client else "?",
    )
    return Response(status_code=400)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refusing early (by Content-Length or while streaming) past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


_REFUSALS: dict[int, RefusalReason] = {
    401: "unauthorized",
    413: "too_large",
    503: "store_unavailable",
}
_FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def local_caller(config: Config, request: Request) -> bool:
    """Whether ``request`` comes straight from this host: a loopback peer that is no
    trusted proxy and sends no forwarding header (a local reverse proxy passes on
    requests from anywhere)."""
    if request.client is None or any(h in request.headers for h in _FORWARDING_HEADERS):
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped  # a dual-stack listener: ::ffff:127.0.0.1 is 127.0.0.1
    proxies = config.engine.trusted_proxies
    return peer.is_loopback and not any(peer.version == n.version and peer in n for n in proxies)


def create_app(
    intake: Intake,
    store: Store,
    *,
    lifespan: Lifespan[Starlette] | None = None,
    background: Callable[[], Mapping[str, bool]] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    metrics: Metrics | None = None,
) -> Starlette:
    """The engine's ASGI app over ``intake`` and ``store`` (plus ``extra_routes``).

    ``background`` names the engine's background tasks, each with whether it still runs.
    ``metrics`` counts refused deliveries and serves ``GET /metrics`` (without it the
    route answers 404). Without a ``lifespan`` the app counts as serving at once.
    """
    config = intake.config
    limit = config.engine.max_event_bytes
    serving = [lifespan is None]

    def refused(result: IntakeResult) -> Response:
        reason = _REFUSALS.get(result.status)
        if metrics is not None and reason is not None:
            metrics.refusal(reason)
        return PlainTextResponse(result.message, status_code=result.status)

    async def receive(request: Request, appliance_id: str) -> Response:
        if config.appliance(appliance_id) is not None:  # an unknown id is no field
            bind_log_fields(appliance=appliance_id)
        peer = request.client.host if request.client else None
        sender = {
            "peer": peer,
            "forwarded_for": request.headers.get("x-forwarded-for"),
            "query_token": request.query_params.get(TOKEN_VARIABLE),
        }
        # Refused before the body is read: an unknown sender holds no connection open.
        screened = intake.screen(appliance_id, **sender)
        if screened is not None:
            return refused(screened)
        try:
            body = await _read_body(request, limit)
        except _TooLargeError:
            return refused(IntakeResult(413, f"event body over the {limit}-byte limit"))
        result = await intake.receive(appliance_id, body, **sender, screened=True)
        if result.status != 200:
            return refused(result)
        return PlainTextResponse(result.message, status_code=result.status)

    async def ers_post(request: Request) -> Response:
        return await receive(request, request.query_params.get("appliance") or "default")

    async def own_path(request: Request) -> Response:
        return await receive(request, request.path_params["appliance_id"])

    def tasks() -> dict[str, bool]:
        return dict(background()) if background is not None else {}

    async def health(request: Request) -> Response:
        live = all(tasks().values())
        return JSONResponse(
            {"status": "ok" if live else "unavailable"},
            status_code=200 if live else 503,
            headers=_NO_STORE,
        )

    async def ready(request: Request) -> Response:
        try:
            await store.get_watermark(_PROBE)
        except Exception:
            up = False
        else:
            up = serving[0]
        return JSONResponse(
            {"status": "ready" if up else "unavailable"},
            status_code=200 if up else 503,
            headers=_NO_STORE,
        )

    async def metrics_route(request: Request) -> Response:
        if metrics is None:
            return PlainTextResponse("not found", status_code=404)
        if not (
            bearer_opens(config.actions, request.headers.get("authorization"), "metrics")
            or local_caller(config, request)
        ):
            log.warning(
                "metrics: refused: missing or wrong bearer token (from %s)",
                request.client.host if request.client else "?",
            )
            return refuse_unauthorized()
        body = await metrics.exposition(store)
        return Response(body, media_type=CONTENT_TYPE, headers=_NO_STORE)

    async def status(request: Request) -> Response:
        if not bearer_opens(config.actions, request.headers.get("authorization"), "status"):
            log.warning(
                "status: refused: missing or wrong bearer token (from %s)",
                request.client.host if request.client else "?",
            )
            return refuse_unauthorized()
        running = tasks()
        try:
            counts = await store.counts()
        except Exception as exc:
            body = {"status": "error", "error": type(exc).__name__, "tasks": running}
            return JSONResponse(body, status_code=503, headers=_NO_STORE)
        live = all(running.values())
        return JSONResponse(
            {"status": "ok" if live else "error", "jobs": counts, "tasks": running},
            status_code=200 if live else 503,
            headers=_NO_STORE,
        )

    @contextlib.asynccontextmanager
    async def serving_lifespan(app: Starlette) -> AsyncIterator[None]:
        assert lifespan is not None
        async with lifespan(app):
            serving[0] = True
            try:
                yield
            finally:
                # Shutting down: a load balancer stops sending before the engine stops.
                serving[0] = False

    return Starlette(
        routes=[
            Route("/ERSPost", ers_post, methods=["POST"]),
            Route("/events/{appliance_id}", own_path, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/ready", ready, methods=["GET"]),
            Route("/metrics", metrics_route, methods=["GET"]),
            Route("/status", status, methods=["GET"]),
            *extra_routes,
        ],
        lifespan=serving_lifespan if lifespan is not None else None,
        exception_handlers={ClientDisconnect: _client_gone},
    )
