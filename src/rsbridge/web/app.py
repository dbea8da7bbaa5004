"""The ASGI application: outbound-event intake routes and a health endpoint.

Routes:

* ``POST /ERSPost?appliance=<id>``: the vendor middleware's path, so that an appliance's
  existing outbound-event recipient keeps working (no ``appliance`` means ``default``);
* ``POST /events/<appliance id>``: the same, on a path of our own;
* ``GET /health``: ``200`` with counts when the store answers, ``503`` otherwise.
* ``/actions/...``: the actions API (:mod:`rsbridge.web.actions`), when ``[actions]`` is
  enabled; the engine passes its routes as ``extra_routes``.

Both intake routes accept the token as ``?outbound_event_token=...`` (the vendor's form)
or as a form variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Lifespan

from rsbridge.engine.intake import TOKEN_VARIABLE, Intake
from rsbridge.engine.store.base import Store


class _TooLargeError(Exception):
    pass


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
    health_extra: Callable[[], Mapping[str, Any]] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The engine's ASGI app over ``intake`` and ``store`` (plus ``extra_routes``)."""
    limit = intake.config.engine.max_event_bytes

    async def receive(request: Request, appliance_id: str) -> Response:
        try:
            body = await _read_body(request, limit)
        except _TooLargeError:
            return PlainTextResponse(f"event body over the {limit}-byte limit", status_code=413)
        peer = request.client.host if request.client else None
        result = await intake.receive(
            appliance_id,
            body,
            peer=peer,
            forwarded_for=request.headers.get("x-forwarded-for"),
            query_token=request.query_params.get(TOKEN_VARIABLE),
        )
        return PlainTextResponse(result.message, status_code=result.status)

    async def ers_post(request: Request) -> Response:
        return await receive(request, request.query_params.get("appliance") or "default")

    async def own_path(request: Request) -> Response:
        return await receive(request, request.path_params["appliance_id"])

    async def health(request: Request) -> Response:
        try:
            counts = await store.counts()
        except Exception as exc:
            return JSONResponse({"status": "error", "error": type(exc).__name__}, status_code=503)
        body: dict[str, Any] = {"status": "ok", "jobs": counts}
        if health_extra is not None:
            body.update(health_extra())
        return JSONResponse(body)

    return Starlette(
        routes=[
            Route("/ERSPost", ers_post, methods=["POST"]),
            Route("/events/{appliance_id}", own_path, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
            *extra_routes,
        ],
        lifespan=lifespan,
    )
