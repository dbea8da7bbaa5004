"""The ASGI application: outbound-event intake routes, health and status endpoints.

Routes:

* ``POST /ERSPost?appliance=<id>``: the vendor middleware's path, so that an appliance's
  existing outbound-event recipient keeps working (no ``appliance`` means ``default``);
* ``POST /events/<appliance id>``: the same, on a path of our own;
* ``GET /health``: public liveness, ``200 {"status": "ok"}`` when the store answers and
  every background task runs, ``503 {"status": "unavailable"}`` otherwise; nothing more,
  for anyone may ask (a load balancer, a container runtime);
* ``GET /status``: the same verdict with the details (job counts, background tasks, the
  store's error), for a bearer of one of ``[actions] tokens`` (the actions API need not
  be enabled); ``401`` otherwise;
* ``/actions/...``: the actions API (:mod:`rsbridge.web.actions`), when ``[actions]`` is
  enabled; the engine passes its routes as ``extra_routes``.

Both intake routes accept the token as ``?outbound_event_token=...`` (the vendor's form)
or as a form variable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan

from rsbridge.engine.intake import TOKEN_VARIABLE, Intake
from rsbridge.engine.store.base import Store
from rsbridge.web.actions import bearer_ok, refuse_unauthorized

log = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store"}
_PROBE = "rsbridge.health"
"""Watermark name read by the liveness probe: one indexed row, whether it exists or not
(counting jobs would scan tables, on a route anyone may call)."""


class _TooLargeError(Exception):
    pass


async def _client_gone(request: Request, exc: Exception) -> Response:
    # The client closed (or the listener cut off a body that did not come in time):
    # nobody hears the answer, and it is no error of ours.
    log.debug(
        "%s %s: the client went away before its request was read", request.method, request.url.path
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


def create_app(
    intake: Intake,
    store: Store,
    *,
    lifespan: Lifespan[Starlette] | None = None,
    background: Callable[[], Mapping[str, bool]] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The engine's ASGI app over ``intake`` and ``store`` (plus ``extra_routes``).

    ``background`` names the engine's background tasks, each with whether it still runs.
    """
    limit = intake.config.engine.max_event_bytes
    status_tokens = intake.config.actions.tokens

    async def receive(request: Request, appliance_id: str) -> Response:
        peer = request.client.host if request.client else None
        sender = {
            "peer": peer,
            "forwarded_for": request.headers.get("x-forwarded-for"),
            "query_token": request.query_params.get(TOKEN_VARIABLE),
        }
        # Refused before the body is read: an unknown sender holds no connection open.
        refused = intake.screen(appliance_id, **sender)
        if refused is not None:
            return PlainTextResponse(refused.message, status_code=refused.status)
        try:
            body = await _read_body(request, limit)
        except _TooLargeError:
            return PlainTextResponse(f"event body over the {limit}-byte limit", status_code=413)
        result = await intake.receive(appliance_id, body, **sender, screened=True)
        return PlainTextResponse(result.message, status_code=result.status)

    async def ers_post(request: Request) -> Response:
        return await receive(request, request.query_params.get("appliance") or "default")

    async def own_path(request: Request) -> Response:
        return await receive(request, request.path_params["appliance_id"])

    def tasks() -> dict[str, bool]:
        return dict(background()) if background is not None else {}

    async def health(request: Request) -> Response:
        try:
            await store.get_watermark(_PROBE)
        except Exception:
            live = False
        else:
            live = all(tasks().values())
        return JSONResponse(
            {"status": "ok" if live else "unavailable"},
            status_code=200 if live else 503,
            headers=_NO_STORE,
        )

    async def status(request: Request) -> Response:
        if not bearer_ok(status_tokens, request.headers.get("authorization")):
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

    return Starlette(
        routes=[
            Route("/ERSPost", ers_post, methods=["POST"]),
            Route("/events/{appliance_id}", own_path, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            Route("/status", status, methods=["GET"]),
            *extra_routes,
        ],
        lifespan=lifespan,
        exception_handlers={ClientDisconnect: _client_gone},
    )
