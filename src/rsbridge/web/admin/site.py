"""The console's frame: who is signed in, what they may do, how a page is answered.

Every page handler is wrapped by :meth:`AdminSite.page`, which

* refuses a caller that reached the console over plain HTTP from another machine (unless
  ``[admin] allow_insecure_remote``): passwords and cookies must not cross a network in
  clear text;
* sends a caller without a valid sign-in to the sign-in page;
* refuses a ``viewer`` on an ``operator`` page (403);
* checks the CSRF token of every POST before the handler runs, so no handler can forget;

and :meth:`AdminSite.render` answers a Jinja2 template (autoescaped) with headers that keep
the page out of caches and frames and forbid inline scripts.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rsbridge.actions.service import ActionService
from rsbridge.appliance.client import ApplianceClient
from rsbridge.config import AdminRole, Config
from rsbridge.connectors.base import Connector
from rsbridge.engine.intake import client_address
from rsbridge.engine.render import Renderer
from rsbridge.engine.store.base import Store
from rsbridge.web.admin.audit import AuditLog
from rsbridge.web.admin.auth import SESSION_COOKIE, SignIn, SignIns

MAX_FORM_BYTES = 256 * 1024
"""Largest form body accepted; the console's forms are a few fields."""

_ROLE_RANK: dict[AdminRole, int] = {"viewer": 0, "operator": 1}
_FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class ConsoleEngine(Protocol):
    """What the console reads and drives of the running engine."""

    @property
    def config(self) -> Config:
        """The loaded configuration."""

    @property
    def store(self) -> Store:
        """The engine's store."""

    @property
    def actions(self) -> ActionService | None:
        """The actions service, once the engine is open."""

    @property
    def connectors(self) -> Mapping[str, Connector]:
        """The connector of each active integration, by name."""

    @property
    def appliances(self) -> Mapping[str, ApplianceClient]:
        """The client of each configured appliance, by id."""

    @property
    def renderers(self) -> Mapping[str, Renderer]:
        """The report renderer of each active integration, by name."""

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Have ``callback`` awaited when the engine stops (before its clients close)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person a page is answered for."""

    name: str
    role: AdminRole
    csrf: str
    """This sign-in's CSRF token: every form carries it back."""
    form: Mapping[str, str] = field(default_factory=dict)
    """A POST's form fields (the last value of each), CSRF already checked."""
    form_lists: Mapping[str, list[str]] = field(default_factory=dict)
    """A POST's form fields with every value, in order."""
    remote: str = ""
    """Where the browser is (behind a trusted proxy: the forwarded client), for the audit log."""

    @property
    def operator(self) -> bool:
        """Whether this person may change things (retry, replay, pull, check)."""
        return self.role == "operator"


Handler = Callable[[Request, Viewer], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class AdminSite:
    """The console of one engine: its templates, sign-ins and audit log."""

    def __init__(self, engine: ConsoleEngine, *, sign_ins: SignIns | None = None) -> None:
        self.engine = engine
        self.config = engine.config
        self.sign_ins = sign_ins or SignIns(self.config.admin, engine.store)
        self.audit_log = AuditLog(engine.store)
        self.templates = Environment(
            loader=PackageLoader("rsbridge.web.admin", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals["quote"] = quote
        self.templates.globals["utc"] = utc_text

    # --- transport --------------------------------------------------------------

    def secure(self, request: Request) -> bool:
        """Whether ``request`` may see the console: straight from this host, over HTTPS
        through a trusted proxy, or anywhere when ``allow_insecure_remote`` is set."""
        if self.config.admin.allow_insecure_remote:
            return True
        peer = _peer(request)
        if peer is None:
            return False
        proxies = self.config.engine.trusted_proxies
        if any(peer.version == n.version and peer in n for n in proxies):
            return request.headers.get("x-forwarded-proto", "").lower() == "https"
        return peer.is_loopback and not any(h in request.headers for h in _FORWARDING_HEADERS)

    def https(self, request: Request) -> bool:
        """Whether the browser talks HTTPS to us (cookies are then ``Secure``)."""
        peer = _peer(request)
        proxies = self.config.engine.trusted_proxies
        via_proxy = peer is not None and any(
            peer.version == n.version and peer in n for n in proxies
        )
        if via_proxy:
            return request.headers.get("x-forwarded-proto", "").lower() == "https"
        return request.url.scheme == "https"

    def remote(self, request: Request) -> str:
        """Where ``request`` comes from, for the audit log: the peer, or behind a trusted
        proxy the client it forwards for (``X-Forwarded-For``, checked hop by hop)."""
        peer = request.client.host if request.client else None
        forwarded = request.headers.get("x-forwarded-for")
        address = client_address(peer, forwarded, self.config.engine.trusted_proxies)
        return "?" if address is None else str(address)

    # --- answering ----------------------------------------------------------------

    def render(
        self,
        request: Request,
        template: str,
        viewer: Viewer | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """``template`` rendered for ``viewer``, with the console's security headers."""
        body = self.templates.get_template(template).render(
            viewer=viewer,
            csrf=viewer.csrf if viewer is not None else "",
            links=self.config.admin.links,
            path=request.url.path,
            now=time.time(),
            **context,
        )
        return HTMLResponse(body, status_code=status_code, headers=_SECURITY_HEADERS)

    def refuse(
        self, request: Request, viewer: Viewer | None, status: int, message: str
    ) -> Response:
        """An error page with ``status`` and ``message`` (plain text in the page)."""
        return self.render(request, "error.html", viewer, status_code=status, message=message)

    def redirect(self, to: str) -> Response:
        """A 303 to ``to`` (a path of the console): a POST's answer, so reload is harmless."""
        return RedirectResponse(to, status_code=303, headers=_SECURITY_HEADERS)

    async def audit(self, viewer: Viewer, action: str, target: str = "", detail: str = "") -> None:
        """Write an operator action to the audit log (who, what, on what, when)."""
        await self.audit_log.write(viewer.name, action, target, detail, remote=viewer.remote)

    def page(self, role: AdminRole = "viewer") -> Callable[[Handler], Endpoint]:
        """Wrap a page handler: transport, sign-in, role and (on POST) CSRF checks."""

        def wrap(handler: Handler) -> Endpoint:
            async def endpoint(request: Request) -> Response:
                if not self.secure(request):
                    return self.refuse(
                        request,
                        None,
                        403,
                        "The console answers other machines only over HTTPS (through a "
                        "trusted TLS proxy).",
                    )
                sign_in = await self.sign_ins.find(request.cookies.get(SESSION_COOKIE))
                if sign_in is None:
                    if request.method != "GET":
                        return self.refuse(request, None, 401, "Your sign-in has ended.")
                    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return self.redirect(f"/admin/sign-in?next={quote(back, safe='')}")
                viewer = _viewer(sign_in, self.config, self.remote(request))
                if viewer is None:  # the user was removed from the configuration
                    await self.sign_ins.end(request.cookies.get(SESSION_COOKIE))
                    return self.redirect("/admin/sign-in")
                if request.method == "POST":
                    fields = await read_form(request)
                    if fields is None:
                        return self.refuse(request, viewer, 413, "The form is too large.")
                    token = fields.get("csrf_token", [""])[-1]
                    if not hmac.compare_digest(token.encode(), viewer.csrf.encode()):
                        return self.refuse(
                            request,
                            viewer,
                            403,
                            "The form's security token is missing or out of date: reload the "
                            "page and try again.",
                        )
                    viewer = Viewer(
                        viewer.name,
                        viewer.role,
                        viewer.csrf,
                        {k: v[-1] for k, v in fields.items()},
                        fields,
                        viewer.remote,
                    )
                if _ROLE_RANK[viewer.role] < _ROLE_RANK[role]:
                    return self.refuse(
                        request,
                        viewer,
                        403,
                        f"This needs the {role} role; you are a {viewer.role}.",
                    )
                return await handler(request, viewer)

            return endpoint

        return wrap


def utc_text(at: float | None) -> str:
    """A UNIX time as the console shows it: ``2026-12-02 09:30:05`` (UTC); "" for None.
    Never raises: a time no calendar holds is shown as such."""
    if at is None:
        return ""
    try:
        return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return "(out of range)"


_ID = re.compile(r"[0-9]{1,18}")


def parse_id(text: str | None) -> int | None:
    """A positive record id from a query or form value, or None for anything else
    (``²`` passes ``str.isdigit``; a 4,300-digit number makes ``int`` raise; an id past
    64 bits overflows the store)."""
    if text is None or not _ID.fullmatch(text):
        return None
    value = int(text)
    return value if value > 0 else None


def _peer(request: Request) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if request.client is None:
        return None
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return None
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        return peer.ipv4_mapped
    return peer


def _viewer(sign_in: SignIn, config: Config, remote: str) -> Viewer | None:
    # The role is read from the configuration on every request: a user removed or
    # demoted there loses access at once, not when the sign-in ends.
    user = config.admin.user(sign_in.user)
    if user is None:
        return None
    return Viewer(user.name, user.role, sign_in.csrf, remote=remote)


async def read_form(request: Request) -> dict[str, list[str]] | None:
    """The urlencoded form fields, or None past :data:`MAX_FORM_BYTES`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
    fields: dict[str, list[str]] = {}
    text = b"".join(chunks).decode("utf-8", errors="replace")
    for key, value in parse_qsl(text, keep_blank_values=True):
        fields.setdefault(key, []).append(value)
    return fields
