"""The sign-in and sign-out pages."""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.web.admin.auth import (
    SESSION_COOKIE,
    SIGN_IN_CSRF_COOKIE,
    password_matches,
)
from rsbridge.web.admin.site import AdminSite, Viewer, read_form, utc_text

log = logging.getLogger(__name__)

_COOKIE_PATH = "/admin"
PASSWORD_CHECKS = 2
"""Password hashes checked at once; more sign-in attempts wait their turn."""


def _safe_next(target: str | None) -> str:
    # Only a path inside the console: "next" must not send a signed-in browser elsewhere.
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin/"


def _worth_auditing(refused: int) -> bool:
    # A locked name is refused without hashing, so attempts on it cost an attacker
    # nothing: audit the 1st, 2nd, 4th, 8th... refusal of each lock-out (each entry says
    # which), so that a flood shows without filling the log.
    return refused & (refused - 1) == 0


def _utc(at: float) -> str:
    return f"{utc_text(at)} UTC"


def sign_in_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET|POST /admin/sign-in`` and ``POST /admin/sign-out``."""
    checking = asyncio.Semaphore(PASSWORD_CHECKS)

    def form(request: Request, status: int = 200, message: str = "") -> Response:
        token = secrets.token_urlsafe(32)
        response = site.render(
            request,
            "sign_in.html",
            None,
            status_code=status,
            message=message,
            form_csrf=token,
            next=_safe_next(request.query_params.get("next")),
        )
        response.set_cookie(
            SIGN_IN_CSRF_COOKIE,
            token,
            path=_COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=site.https(request),
        )
        return response

    async def show(request: Request) -> Response:
        if not site.secure(request):
            return site.refuse(
                request, None, 403, "The console answers other machines only over HTTPS."
            )
        return form(request)

    async def submit(request: Request) -> Response:
        if not site.secure(request):
            return site.refuse(
                request, None, 403, "The console answers other machines only over HTTPS."
            )
        fields = await read_form(request)
        if fields is None:
            return site.refuse(request, None, 413, "The form is too large.")
        given = fields.get("csrf_token", [""])[-1]
        expected = request.cookies.get(SIGN_IN_CSRF_COOKIE, "")
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            return form(
                request, 403, "The form's security token is missing or out of date: try again."
            )
        name = fields.get("username", [""])[-1].strip()
        password = fields.get("password", [""])[-1]
        remote = site.remote(request)

        async def locked() -> Response | None:
            """The refusal if ``name`` is locked now (the refusal is counted)."""
            lockout = await site.sign_ins.lockout(name)
            if lockout is None:
                return None
            if _worth_auditing(lockout.refused):
                await site.audit_log.write(
                    name,
                    "sign-in refused (locked)",
                    detail=f"refused attempt {lockout.refused} of this lock-out",
                    remote=remote,
                )
            minutes = max(1, round((lockout.until - time.time()) / 60))
            return form(
                request,
                429,
                f"Too many failed sign-ins: this account is locked for {minutes} more minute(s).",
            )

        refused = await locked()
        if refused is not None:
            return refused
        user = site.config.admin.user(name)
        stored = user.password_hash.get_secret_value() if user is not None else None
        # Argon2id takes ~0.1 s of CPU and 64 MiB: off the event loop (the intake's acks
        # must not wait for it), and a few at a time (a flood of attempts cannot take
        # every core and all the memory).
        async with checking:
            # Asked again once a slot is free: attempts sent together all passed the first
            # look while the name was open, and their failures may have locked it since.
            refused = await locked()
            if refused is not None:
                return refused
            matches = await asyncio.to_thread(password_matches, stored, password)
        if user is not None and matches:
            # A right password does not lift a lock that failures sent alongside it set.
            refused = await locked()
            if refused is not None:
                return refused
        if user is None or not matches:
            now_locked = await site.sign_ins.failed(name)
            detail = "" if user is not None else "unknown user name"
            if now_locked is not None:
                detail = f"{detail}; " if detail else ""
                detail += f"the name is locked until {_utc(now_locked.until)}"
            await site.audit_log.write(name, "sign-in failed", detail=detail, remote=remote)
            log.warning("console: failed sign-in for %r from %s", name, remote)
            return form(request, 401, "Wrong user name or password.")
        token, sign_in = await site.sign_ins.start(user.name)
        await site.audit_log.write(user.name, "sign-in", remote=remote)
        response = site.redirect(_safe_next(fields.get("next", [""])[-1]))
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(sign_in.expires_at - sign_in.started_at),
            path=_COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=site.https(request),
        )
        response.delete_cookie(SIGN_IN_CSRF_COOKIE, path=_COOKIE_PATH)
        return response

    @site.page()
    async def sign_out(request: Request, viewer: Viewer) -> Response:
        await site.sign_ins.end(request.cookies.get(SESSION_COOKIE))
        await site.audit(viewer, "sign-out")
        response = site.redirect("/admin/sign-in")
        response.delete_cookie(SESSION_COOKIE, path=_COOKIE_PATH)
        return response

    return [
        Route("/sign-in", show, methods=["GET"]),
        Route("/sign-in", submit, methods=["POST"]),
        Route("/sign-out", sign_out, methods=["POST"]),
    ]
