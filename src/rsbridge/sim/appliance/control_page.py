"""The rehearsal page: the control API (:mod:`.control`) as HTML forms, for a browser.

``GET /sim/`` answers this page to a browser (``Accept: text/html``) and JSON to API
clients. Its forms post urlencoded fields to the control API's own routes, which answer a
form with a 303 back to the page (or the page with the error, 400) instead of JSON.

Everything typed into the forms ends up in sessions, reports and events: it is shown
autoescaped, never as markup.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rsbridge.sim.appliance.rehearsal import Rehearsal, RehearsalError

FORM_TYPE = "application/x-www-form-urlencoded"

_templates = Environment(
    loader=PackageLoader("rsbridge.sim.appliance", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

_DONE = {
    "key": "Session key generated.",
    "start": "Session started.",
    "join": "The representative joined.",
    "chat": "Chat line added.",
    "note": "Note added.",
    "end": "Session ended: its end event is on its way to the recipients.",
}
"""The fixed notice per step (the page never shows text taken from its own URL)."""

_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


def wants_html(request: Request) -> bool:
    """Whether the caller is a browser asking for a page rather than an API client."""
    return "text/html" in request.headers.get("accept", "")


def is_form(request: Request) -> bool:
    """Whether the request carries an HTML form (urlencoded) instead of JSON."""
    return request.headers.get("content-type", "").split(";")[0].strip() == FORM_TYPE


def same_origin(request: Request) -> bool:
    """Whether a form post comes from this simulator's own page.

    The simulator has no sign-in; this keeps another web site open in the same browser
    from driving it with a cross-site form.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser, or one that sends no Origin: same as the JSON API
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


async def form_fields(request: Request) -> dict[str, str]:
    """A form's fields (the last value of each), with blank ones left out."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    return {k: v for k, v in parse_qsl(raw, keep_blank_values=True) if v.strip()}


def page(
    rehearsal: Rehearsal,
    request: Request,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The rehearsal page: forms for every step and the live and ended sessions."""
    query = request.query_params
    done = _DONE.get(query.get("done", ""))
    # Only keys the appliance knows are shown back (never free text from the URL).
    key = query.get("key", "")
    known_key = key if key in rehearsal.state.session_keys else ""
    sessions = rehearsal.sessions()
    body = _templates.get_template("control.html").render(
        appliance_id=rehearsal.state.appliance_id,
        live=[s for s in sessions if not s["ended"]],
        ended=[s for s in sessions if s["ended"]],
        reps=[r for r in rehearsal.state.reps if r.logged_in],
        key=known_key,
        done=None if error else done,
        error=error,
        recipients=recipients(rehearsal),
    )
    return HTMLResponse(body, status_code=status_code, headers=_HEADERS)


def after_form(step: str, result: dict[str, Any]) -> Response:
    """The 303 back to the page after a step played from a form."""
    query: dict[str, str] = {"done": step}
    if step == "key":
        query["key"] = str(result["key"])
    return RedirectResponse(f"/sim/?{urlencode(query)}", status_code=303)


def refused(rehearsal: Rehearsal, request: Request, exc: RehearsalError) -> Response:
    """The page again, with why the step could not be played."""
    return page(rehearsal, request, error=str(exc), status_code=400)


def recipients(rehearsal: Rehearsal) -> list[dict[str, object]]:
    """The outbound-event counters of each recipient of ``rehearsal``'s events."""
    emitter = rehearsal.emitter
    return [
        # Without the query: an intake URL may carry its token there.
        {"url": r.url.split("?", 1)[0], "sent": r.sent, "queued": r.queued, "dropped": r.dropped}
        for r in ([] if emitter is None else emitter.recipients)
    ]


__all__ = [
    "after_form",
    "form_fields",
    "is_form",
    "page",
    "recipients",
    "refused",
    "same_origin",
    "wants_html",
]
