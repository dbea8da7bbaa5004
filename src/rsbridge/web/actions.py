"""HTTP routes of the actions API (``/actions/...``); reference: docs/actions.md.

Every route answers JSON and needs ``Authorization: Bearer <token>`` with one of
``actions.tokens``, except that ``GET /actions/auto-create`` also accepts the per-link
``token`` of the auto-create custom link (it opens nothing else). Tokens are compared in
constant time, as digests, and never logged or echoed. The work is done by
:class:`~rsbridge.actions.service.ActionService`; failures are answered as
:func:`~rsbridge.actions.problems.describe` says.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from rsbridge.actions.models import JumpRequest, SessionKeyRequest, SupportNowRequest
from rsbridge.actions.problems import ActionError, Problem, describe
from rsbridge.actions.service import ActionService
from rsbridge.config import Config
from rsbridge.errors import RsbridgeError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted; action requests are a few hundred bytes."""

_M = TypeVar("_M", bound=BaseModel)
_NO_STORE = {"Cache-Control": "no-store"}


def _answer(problem: Problem) -> JSONResponse:
    headers = dict(_NO_STORE)
    if problem.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="rsbridge actions"'
    if problem.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(problem.retry_after)))
    return JSONResponse(problem.to_json(), status_code=problem.status, headers=headers)


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def bearer_ok(tokens: Sequence[SecretStr], header: str | None) -> bool:
    """Whether an ``Authorization`` header carries one of ``tokens`` (constant time).

    Every token is compared, as a SHA-256 digest, so the time taken says nothing about
    which token matched or how long they are.
    """
    scheme, _, sent = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not sent.strip():
        return False
    sent_digest = _digest(sent.strip())
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(sent_digest, _digest(token.get_secret_value()))
    return matched


_UNAUTHORIZED = Problem(401, "unauthorized", "missing or wrong bearer token")


def refuse_unauthorized() -> JSONResponse:
    """The answer to a missing or wrong bearer token: 401 with ``WWW-Authenticate``."""
    return _answer(_UNAUTHORIZED)


def _invalid(exc: ValidationError) -> Problem:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}"
        for err in exc.errors(include_input=False)
    )
    return Problem(422, "invalid_request", problems)


async def _json_body(request: Request, model: type[_M]) -> _M:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ActionError("request body too large", status=413, code="too_large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ActionError("request body too large", status=413, code="too_large")
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ActionError("the body is not JSON", status=400, code="invalid_json") from None
    if not isinstance(data, dict):
        raise ActionError("the body must be a JSON object", status=400, code="invalid_json")
    return model.model_validate(data)


def _integration(request: Request) -> str:
    name = request.query_params.get("integration")
    if not name:
        raise ActionError("give ?integration=<name>", status=422, code="invalid_request")
    return name


def action_routes(config: Config, service: Callable[[], ActionService | None]) -> list[BaseRoute]:
    """The ``/actions/...`` routes; ``service`` returns the engine's service once it is open."""
    tokens = config.actions.tokens

    def route(
        handler: Callable[[Request, ActionService], Awaitable[Response]],
        *,
        link_token: bool = False,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            actions = service()
            if actions is None:
                return _answer(Problem(503, "starting", "the engine is not ready yet"))
            authorized = bearer_ok(tokens, request.headers.get("authorization"))
            if not authorized and link_token:
                sent = request.query_params.get("token")
                name = request.query_params.get("integration") or ""
                authorized = sent is not None and actions.check_link_token(name, sent)
            if not authorized:
                log.warning(
                    "actions: %s %s refused: missing or wrong token (from %s)",
                    request.method,
                    request.url.path,
                    request.client.host if request.client else "?",
                )
                return _answer(_UNAUTHORIZED)
            try:
                return await handler(request, actions)
            except ValidationError as exc:
                return _answer(_invalid(exc))
            except RsbridgeError as exc:
                problem = describe(exc)
                log.warning(
                    "actions: %s %s answered %d %s: %s",
                    request.method,
                    request.url.path,
                    problem.status,
                    problem.code,
                    problem.message,
                )
                return _answer(problem)

        return endpoint

    def ok(body: dict[str, Any]) -> JSONResponse:
        return JSONResponse(body, headers=_NO_STORE)

    async def session_key(request: Request, actions: ActionService) -> Response:
        return ok(
            (await actions.session_key(await _json_body(request, SessionKeyRequest))).to_json()
        )

    async def jump(request: Request, actions: ActionService) -> Response:
        return ok((await actions.jump(await _json_body(request, JumpRequest))).to_json())

    async def issues(request: Request, actions: ActionService) -> Response:
        return ok((await actions.issues(_integration(request))).to_json())

    async def support_now(request: Request, actions: ActionService) -> Response:
        body = await _json_body(request, SupportNowRequest)
        return ok((await actions.support_now(body)).to_json())

    async def links(request: Request, actions: ActionService) -> Response:
        return ok(actions.links(_integration(request)).to_json())

    async def auto_create(request: Request, actions: ActionService) -> Response:
        lsid = request.query_params.get("lsid")
        if not lsid:
            raise ActionError("give ?lsid=<session id>", status=422, code="invalid_request")
        result = await actions.auto_create(
            _integration(request), lsid, request.query_params.get("username")
        )
        if result.ticket.url and request.query_params.get("format") != "json":
            return RedirectResponse(result.ticket.url, status_code=303, headers=_NO_STORE)
        return ok(result.to_json())

    return [
        Route("/actions/session-key", route(session_key), methods=["POST"]),
        Route("/actions/jump", route(jump), methods=["POST"]),
        Route("/actions/issues", route(issues), methods=["GET"]),
        Route("/actions/support-now", route(support_now), methods=["POST"]),
        Route("/actions/links", route(links), methods=["GET"]),
        Route("/actions/auto-create", route(auto_create, link_token=True), methods=["GET"]),
    ]
