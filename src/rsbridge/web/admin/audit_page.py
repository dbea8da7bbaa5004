"""The audit log page: who did what in the console, newest first, a page at a time."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.web.admin.site import AdminSite, Viewer, parse_id

PAGE_SIZE = 50
_MAX_ID = 2**63 - 1  # the largest id either store gives


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def audit_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/audit`` (``?before=<id>`` pages back, ``?actor=<name>`` narrows)."""

    @site.page()
    async def audit(request: Request, viewer: Viewer) -> Response:
        raw = request.query_params.get("before", "")
        before: int | None = None
        if raw:
            before = parse_id(raw)
            if before is None or before > _MAX_ID:
                return site.refuse(request, viewer, 400, "There is no such page of the audit log.")
        actor = request.query_params.get("actor") or None
        # One more than shown: whether an older page exists, without counting the log.
        entries = await site.audit_log.newest(PAGE_SIZE + 1, before=before, actor=actor)
        shown = entries[:PAGE_SIZE]
        return site.render(
            request,
            "audit.html",
            viewer,
            entries=[(entry, _iso(entry.at)) for entry in shown],
            older=shown[-1].id if len(entries) > PAGE_SIZE else None,
            paged=before is not None,
            actor=actor,
        )

    return [Route("/audit", audit, methods=["GET"])]
