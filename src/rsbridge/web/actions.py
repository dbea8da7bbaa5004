"""HTTP routes of the actions API (``/actions/...``); reference: docs/actions.md.

Every route answers JSON and needs ``Authorization: Bearer <token>``: one of
``actions.tokens`` (every route and integration) or the token of one of
``actions.clients``, which opens the routes and integrations that client lists and, when
it names a ``user``, acts as that technician only. The auto-create custom link works
without a header, in two steps: ``GET /actions/auto-create`` with the link's per-integration
``token`` answers a page (no effect) whose button POSTs a confirmation bound to the session,
the representative and ten minutes; ``POST /actions/auto-create`` with it makes the ticket.
Tokens are compared in constant time, as digests, and never logged or echoed. The work
is done by :class:`~rsbridge.actions.service.ActionService`; failures are answered as
:func:`~rsbridge.actions.problems.describe` says.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from rsbridge.actions.models import (
    AutoCreateOffer,
    AutoCreateRequest,
    JumpRequest,
    PullRequest,
    SessionKeyRequest,
    SupportNowRequest,
)
from rsbridge.actions.problems import ActionError, Problem, describe
from rsbridge.actions.service import ActionService
from rsbridge.config import ActionsConfig, Config
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


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from, and what its token opens (None: everything)."""

    name: str
    integrations: frozenset[str] | None = None
    routes: frozenset[str] | None = None
    user: str | None = None

    def integration(self, name: str) -> str:
        """``name``, if this caller may act on that integration (else 403)."""
        if self.integrations is not None and name not in self.integrations:
            raise ActionError(
                f"this token does not open integration {name[:100]!r}",
                status=403,
                code="forbidden",
            )
        return name

    def as_user(self, user: str | None) -> str | None:
        """The technician a request acts as: the bound user, or the caller's word."""
        if self.user is None:
            return user
        if user is not None and user.casefold() != self.user.casefold():
            raise ActionError(
                f"this token acts as user {self.user!r} only, not {user[:100]!r}",
                status=403,
                code="user_mismatch",
            )
        return self.user


@dataclass(frozen=True, slots=True)
class _Credential:
    digest: bytes
    caller: Caller


def _credentials(settings: ActionsConfig) -> list[_Credential]:
    found = [
        _Credential(_digest(token.get_secret_value()), Caller(f"token {index}"))
        for index, token in enumerate(settings.tokens)
    ]
    found += [
        _Credential(
            _digest(client.token.get_secret_value()),
            Caller(
                client.name,
                frozenset(client.integrations),
                frozenset(client.routes),
                client.user,
            ),
        )
        for client in settings.clients
    ]
    return found


def _bearer(credentials: Sequence[_Credential], header: str | None) -> Caller | None:
    """The caller whose token an ``Authorization`` header carries (constant time).

    Every token is compared, as a SHA-256 digest, so the time taken says nothing about
    which token matched or how long they are.
    """
    scheme, _, sent = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not sent.strip():
        return None
    sent_digest = _digest(sent.strip())
    matched: Caller | None = None
    for credential in credentials:
        if hmac.compare_digest(sent_digest, credential.digest):
            matched = credential.caller
    return matched


def bearer_opens(settings: ActionsConfig, header: str | None, route: str) -> bool:
    """Whether an ``Authorization`` header carries one of the unscoped ``[actions] tokens``
    or the token of a client whose ``routes`` name ``route`` (``metrics``, ``status``):
    a monitoring system's token need open nothing else. Compared in constant time."""
    caller = _bearer(_credentials(settings), header)
    return caller is not None and (caller.routes is None or route in caller.routes)


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


async def _json_body(request: Request, model: type[_M], caller: Caller) -> _M:
    """The request's JSON body as ``model``, on an integration ``caller`` may act on."""
    body = await _read_json(request, model)
    caller.integration(str(getattr(body, "integration", "")))
    return body


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ActionError("request body too large", status=413, code="too_large")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ActionError("request body too large", status=413, code="too_large")
    return body


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return kind == "application/x-www-form-urlencoded"


async def _auto_create_body(request: Request) -> AutoCreateRequest:
    """The auto-create POST: the page's form or a script's JSON (read once, then kept)."""
    known = getattr(request.state, "auto_create", None)
    if isinstance(known, AutoCreateRequest):
        return known
    if _is_form(request):
        try:
            text = (await _read_body(request)).decode()
        except UnicodeDecodeError:
            raise ActionError("the form is not UTF-8", status=400, code="invalid_json") from None
        fields = dict(parse_qsl(text, keep_blank_values=False))
        body = AutoCreateRequest.model_validate(fields)
    else:
        body = await _read_json(request, AutoCreateRequest)
    request.state.auto_create = body
    return body


async def _read_json(request: Request, model: type[_M]) -> _M:
    body = await _read_body(request)
    try:
        data = json.loads(body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ActionError("the body is not JSON", status=400, code="invalid_json") from None
    if not isinstance(data, dict):
        raise ActionError("the body must be a JSON object", status=400, code="invalid_json")
    return model.model_validate(data)


def _integration(request: Request, caller: Caller) -> str:
    name = request.query_params.get("integration")
    if not name:
        raise ActionError("give ?integration=<name>", status=422, code="invalid_request")
    return caller.integration(name)


_Handler = Callable[[Request, ActionService, Caller], Awaitable[Response]]

_PAGE_HEADERS = {
    **_NO_STORE,
    # The page's URL holds the link token: no Referer to the ticket it leads to.
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


def _link_caller(integration: str, route: str) -> Caller:
    return Caller("auto-create link", frozenset({integration}), frozenset({route}))


async def _link_auth(request: Request, actions: ActionService, route: str) -> Caller | None:
    """The auto-create link's caller: its token on the GET, its confirmation on the POST."""
    if request.method == "GET":
        sent = request.query_params.get("token")
        integration = request.query_params.get("integration") or ""
        if sent is not None and actions.check_link_token(integration, sent):
            return _link_caller(integration, route)
        return None
    try:
        body = await _auto_create_body(request)
    except (ValidationError, ActionError):
        return None  # unauthenticated: no details about the body
    if (
        body.confirm is not None
        and body.expires is not None
        and actions.check_confirm_token(
            body.integration, body.lsid, body.username, body.expires, body.confirm
        )
    ):
        return _link_caller(body.integration, route)
    return None


def _offer_page(offer: AutoCreateOffer) -> str:
    """The auto-create link's page: what will happen, and the button that does it."""
    e = html.escape
    started = offer.started.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if offer.started else "?"
    rep = f", representative {e(offer.username)}" if offer.username else ""
    fields = {
        "integration": offer.integration,
        "lsid": offer.lsid,
        "username": offer.username or "",
        "expires": str(offer.expires),
        "confirm": offer.confirm or "",
    }
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{e(value)}">'
        for name, value in fields.items()
        if value
    )
    # A relative action: right behind a proxy that adds a path prefix too.
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer"><title>Create a ticket</title></head>'
        "<body><h1>Create a ticket for this session?</h1>"
        f"<p>Session {e(offer.lsid)} (started {e(started)}), integration "
        f"{e(offer.integration)}{rep}. If the session already has a ticket, you are taken "
        "to it; nothing is created twice.</p>"
        f'<form method="post" action="auto-create">{hidden}'
        '<button type="submit">Create ticket</button></form>'
        "<p>This page works for ten minutes.</p></body></html>"
    )


def action_routes(config: Config, service: Callable[[], ActionService | None]) -> list[BaseRoute]:
    """The ``/actions/...`` routes; ``service`` returns the engine's service once it is open."""
    credentials = _credentials(config.actions)

    def route(
        name: str, handler: _Handler, *, link: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            actions = service()
            if actions is None:
                return _answer(Problem(503, "starting", "the engine is not ready yet"))
            caller = _bearer(credentials, request.headers.get("authorization"))
            try:
                if caller is None and link:
                    caller = await _link_auth(request, actions, name)
                if caller is None:
                    log.warning(
                        "actions: %s %s refused: missing or wrong token (from %s)",
                        request.method,
                        request.url.path,
                        request.client.host if request.client else "?",
                    )
                    return _answer(_UNAUTHORIZED)
                if caller.routes is not None and name not in caller.routes:
                    raise ActionError(
                        f"this token does not open {request.method} {request.url.path}",
                        status=403,
                        code="forbidden",
                    )
                return await handler(request, actions, caller)
            except ValidationError as exc:
                return _answer(_invalid(exc))
            except RsbridgeError as exc:
                problem = describe(exc)
                log.warning(
                    "actions: %s %s by %s answered %d %s: %s",
                    request.method,
                    request.url.path,
                    caller.name if caller else "(unauthenticated)",
                    problem.status,
                    problem.code,
                    problem.message,
                )
                return _answer(problem)

        return endpoint

    def ok(body: dict[str, Any]) -> JSONResponse:
        return JSONResponse(body, headers=_NO_STORE)

    async def session_key(request: Request, actions: ActionService, caller: Caller) -> Response:
        body = await _json_body(request, SessionKeyRequest, caller)
        body = body.model_copy(update={"user": caller.as_user(body.user)})
        return ok((await actions.session_key(body)).to_json())

    async def jump(request: Request, actions: ActionService, caller: Caller) -> Response:
        body = await _json_body(request, JumpRequest, caller)
        return ok((await actions.jump(body)).to_json())

    async def issues(request: Request, actions: ActionService, caller: Caller) -> Response:
        return ok((await actions.issues(_integration(request, caller))).to_json())

    async def support_now(request: Request, actions: ActionService, caller: Caller) -> Response:
        body = await _json_body(request, SupportNowRequest, caller)
        return ok((await actions.support_now(body)).to_json())

    async def pull(request: Request, actions: ActionService, caller: Caller) -> Response:
        body = await _json_body(request, PullRequest, caller)
        return ok((await actions.pull_now(body.integration)).to_json())

    async def links(request: Request, actions: ActionService, caller: Caller) -> Response:
        return ok(actions.links(_integration(request, caller)).to_json())

    async def auto_create_offer(
        request: Request, actions: ActionService, caller: Caller
    ) -> Response:
        lsid = request.query_params.get("lsid")
        if not lsid:
            raise ActionError("give ?lsid=<session id>", status=422, code="invalid_request")
        username = request.query_params.get("username") or None
        offer = await actions.auto_create_offer(
            _integration(request, caller), lsid, username[:200] if username else None
        )
        if request.query_params.get("format") == "json":
            return ok(offer.to_json())
        if offer.confirm is None:
            raise ActionError(
                "the auto-create page needs actions.link_secret (its button is signed with "
                "it); or POST /actions/auto-create with a bearer token",
                status=422,
                code="invalid_request",
            )
        return HTMLResponse(_offer_page(offer), headers=_PAGE_HEADERS)

    async def auto_create(request: Request, actions: ActionService, caller: Caller) -> Response:
        body = await _auto_create_body(request)
        result = await actions.auto_create(
            caller.integration(body.integration), body.lsid, caller.as_user(body.username)
        )
        if result.ticket.url and _is_form(request):
            return RedirectResponse(result.ticket.url, status_code=303, headers=_PAGE_HEADERS)
        return ok(result.to_json())

    return [
        Route("/actions/session-key", route("session_key", session_key), methods=["POST"]),
        Route("/actions/jump", route("jump", jump), methods=["POST"]),
        Route("/actions/issues", route("issues", issues), methods=["GET"]),
        Route("/actions/support-now", route("support_now", support_now), methods=["POST"]),
        Route("/actions/links", route("links", links), methods=["GET"]),
        Route("/actions/pull", route("pull", pull), methods=["POST"]),
        Route(
            "/actions/auto-create",
            route("auto_create", auto_create_offer, link=True),
            methods=["GET"],
        ),
        Route(
            "/actions/auto-create", route("auto_create", auto_create, link=True), methods=["POST"]
        ),
    ]
