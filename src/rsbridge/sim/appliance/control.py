"""The simulated appliance's control API: rehearse live sessions over HTTP, under ``/sim/``.

JSON in, JSON out; every route takes a POST with a JSON object (``{}`` when there is
nothing to say) and answers ``200`` with what happened, ``400`` with ``{"error": ...}``
for a step that cannot be played (unknown key or session, a representative who is not
there, an empty chat line ...). ``rsbridge rehearse`` is its command line.

======================================  =============================================
``POST /sim/keys``                      ``{"queue", "external_key", "custom"}`` -> ``{"key"}``
``POST /sim/sessions``                  ``{"key", "customer", "details"}`` -> ``{"lsid"}``
``POST /sim/sessions/{lsid}/join``      ``{"rep": "jsmith"}``
``POST /sim/sessions/{lsid}/chat``      ``{"text", "from": "customer" | "rep"}``
``POST /sim/sessions/{lsid}/note``      ``{"text"}``
``POST /sim/sessions/{lsid}/file``      ``{"name", "size", "direction": "upload" | "download"}``
``POST /sim/sessions/{lsid}/attributes``  ``{"values": {"external_key": ..., ...}}``
``POST /sim/sessions/{lsid}/survey``    ``{"kind": "customer" | "rep", "answers": {...}}``
``POST /sim/sessions/{lsid}/end``       ``{}``
``GET /sim/sessions/{lsid}``            what the session holds so far
``GET /sim/``                           every rehearsed session, live ones first
``GET /sim/outbound``                   the outbound-event counters per recipient
======================================  =============================================

A browser asking ``GET /sim/`` gets the rehearsal page instead (:mod:`.control_page`),
whose forms post urlencoded fields to the same routes and are answered with a 303 back to
the page.

Like the rest of the simulator it has no authentication: keep it on loopback.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from rsbridge.sim.appliance import control_page
from rsbridge.sim.appliance.rehearsal import Rehearsal, RehearsalError

MAX_BODY = 1_000_000
"""Largest control request body (bytes)."""


def _str(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise RehearsalError(f"{name!r} must be a string")
    return value


def _map(body: dict[str, Any], name: str) -> dict[str, str]:
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise RehearsalError(f"{name!r} must be an object of strings")
    return value


def _size(body: dict[str, Any]) -> int:
    value = body.get("size", 0)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RehearsalError("'size' must be a whole number of bytes")
    return value


STEPS = ("join", "chat", "note", "file", "attributes", "survey", "end")
"""The steps ``POST /sim/sessions/{lsid}/{step}`` plays."""


def _play(r: Rehearsal, step: str, lsid: str, b: dict[str, Any]) -> dict[str, Any]:
    if step == "join":
        r.join(lsid, _str(b, "rep"))
    elif step == "chat":
        r.chat(lsid, _str(b, "text"), sender=_str(b, "from", "customer"))
    elif step == "note":
        r.note(lsid, _str(b, "text"))
    elif step == "file":
        r.file(lsid, _str(b, "name"), _size(b), direction=_str(b, "direction", "upload"))
    elif step == "attributes":
        r.attributes(lsid, _map(b, "values"))
    elif step == "survey":
        r.survey(lsid, _str(b, "kind"), _map(b, "answers"))
    elif step == "end":
        return {"end_time": r.end(lsid).end_time}
    else:
        raise RehearsalError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
    return {}


async def _body(request: Request) -> dict[str, Any]:
    # Only JSON, declared as such: a page on another site can POST text/plain (or a form)
    # here without asking, but not application/json (that needs the browser's preflight,
    # which the control API does not answer).
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise RehearsalError("send the request body as JSON (Content-Type: application/json)")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise RehearsalError(f"the request body is larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise RehearsalError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise RehearsalError("the request body must be a JSON object")
    return body


def _answer(step: Callable[[], dict[str, Any]]) -> JSONResponse:
    try:
        result = step()
    except RehearsalError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"ok": True, **{k: _plain(v) for k, v in result.items()}})


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def control_routes(rehearsal: Rehearsal) -> list[Route]:
    """The ``/sim/`` routes that drive ``rehearsal``."""

    def endpoint(
        handler: Callable[[Request, dict[str, Any]], dict[str, Any]],
        form_step: Callable[[Request], str] | None = None,
    ) -> Callable[[Request], Awaitable[Response]]:
        # form_step names the step for the page's notice; routes without one take no forms.
        async def run(request: Request) -> Response:
            if form_step is not None and control_page.is_form(request):
                return await from_form(request, handler, form_step(request))
            try:
                body = await _body(request) if request.method == "POST" else {}
            except RehearsalError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return _answer(lambda: handler(request, body))

        return run

    async def from_form(
        request: Request,
        handler: Callable[[Request, dict[str, Any]], dict[str, Any]],
        step: str,
    ) -> Response:
        # A step posted by the rehearsal page's forms: every field is a string.
        if not control_page.same_origin(request):
            return PlainTextResponse("cross-site form refused", status_code=403)
        if int(request.headers.get("content-length") or 0) > MAX_BODY:
            return PlainTextResponse("form too large", status_code=413)
        body = await control_page.form_fields(request)
        try:
            result = handler(request, body)
        except RehearsalError as exc:
            return control_page.refused(rehearsal, request, exc)
        return control_page.after_form(step, result)

    async def index(request: Request) -> Response:
        if control_page.wants_html(request):
            return control_page.page(rehearsal, request)
        sessions = [{k: _plain(v) for k, v in s.items()} for s in rehearsal.sessions()]
        return JSONResponse({"sessions": sessions})

    def new_key(_: Request, body: dict[str, Any]) -> dict[str, Any]:
        external = body.get("external_key")
        if external is not None and not isinstance(external, str):
            raise RehearsalError("'external_key' must be a string")
        key = rehearsal.new_key(
            queue=_str(body, "queue", "general"), external_key=external, custom=_map(body, "custom")
        )
        return {"key": key}

    def start(_: Request, body: dict[str, Any]) -> dict[str, Any]:
        lsid = rehearsal.start(
            _str(body, "key"),
            customer=_str(body, "customer", "Customer"),
            details=_map(body, "details"),
        )
        return {"lsid": lsid}

    def step(request: Request, body: dict[str, Any]) -> dict[str, Any]:
        return _play(rehearsal, request.path_params["step"], request.path_params["lsid"], body)

    def show(request: Request, _: dict[str, Any]) -> dict[str, Any]:
        return rehearsal.status(request.path_params["lsid"])

    def outbound(_: Request, __: dict[str, Any]) -> dict[str, Any]:
        return {"recipients": control_page.recipients(rehearsal)}

    return [
        Route("/sim/", index, methods=["GET"]),
        Route("/sim/keys", endpoint(new_key, lambda _: "key"), methods=["POST"]),
        Route("/sim/sessions", endpoint(start, lambda _: "start"), methods=["POST"]),
        Route("/sim/sessions/{lsid}", endpoint(show), methods=["GET"]),
        Route(
            "/sim/sessions/{lsid}/{step}",
            endpoint(step, lambda r: str(r.path_params["step"])),
            methods=["POST"],
        ),
        Route("/sim/outbound", endpoint(outbound), methods=["GET"]),
    ]
