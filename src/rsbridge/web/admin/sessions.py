"""The sessions page: search sessions by lsid, ticket, integration, state and time, one
row per session and integration, newest first, paged by key (``?before=``).

The search is :meth:`Store.search_sessions` (indexed, bounded by the page size); this
module only reads the form and draws the table. The session page itself is in
:mod:`~rsbridge.web.admin.session_page`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.engine.store.base import SESSION_STATES, SessionFilter, SessionState
from rsbridge.web.admin.site import AdminSite, Viewer, parse_id

__all__ = ["PAGE_SIZE", "parse_time", "sessions_routes"]

PAGE_SIZE = 50
FIELDS = ("lsid", "ticket", "integration", "state", "since", "until")
_MAX_FIELD = 200  # longer than any lsid, ticket number or integration name


def parse_time(text: str) -> float | None:
    """A form's time (``2026-12-02T09:30``, a date, or ISO 8601 with an offset; UTC when
    it has none) as UNIX seconds; None for an empty field. ValueError when unreadable."""
    text = text.strip()
    if not text:
        return None
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def sessions_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/sessions``."""

    @site.page()
    async def sessions(request: Request, viewer: Viewer) -> Response:
        query = request.query_params
        form = {name: query.get(name, "").strip()[:_MAX_FIELD] for name in FIELDS}
        problems: list[str] = []
        state: SessionState | None = None
        if form["state"]:
            if form["state"] in SESSION_STATES:
                state = form["state"]
            else:
                problems.append("State: choose one of the listed states.")
        times: dict[str, float | None] = {}
        for name, label in (("since", "From"), ("until", "To")):
            try:
                times[name] = parse_time(form[name])
            except ValueError:
                times[name] = None
                problems.append(f"{label}: not a date and time (e.g. 2026-12-02T09:30).")
        before = query.get("before", "")
        selection = SessionFilter(
            lsid=form["lsid"] or None,
            ticket=form["ticket"] or None,
            integration=form["integration"] or None,
            state=state,
            since=times["since"],
            until=times["until"],
            before=parse_id(before),
            limit=PAGE_SIZE + 1,  # one more tells whether there is a next page
        )
        rows = [] if problems else await site.engine.store.search_sessions(selection)
        older = None
        if len(rows) > PAGE_SIZE:
            rows = rows[:PAGE_SIZE]
            kept = {k: v for k, v in form.items() if v}
            older = "/admin/sessions?" + urlencode({**kept, "before": rows[-1].key})
        return site.render(
            request,
            "sessions.html",
            viewer,
            form=form,
            problems=problems,
            rows=rows,
            older=older,
            paged=selection.before is not None,
            states=SESSION_STATES,
            integrations=[i.name for i in site.config.integrations],
        )

    return [Route("/sessions", sessions, methods=["GET"])]
