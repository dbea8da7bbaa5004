"""The overview page: per appliance and integration, health at a glance."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.web.admin.site import AdminSite, Viewer


def overview_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/``."""

    @site.page()
    async def overview(request: Request, viewer: Viewer) -> Response:
        store = site.engine.store
        stats = await store.job_stats()
        failures = {(f.appliance_id, f.integration): f for f in await store.last_failures()}
        rows = [
            {"stats": s, "failure": failures.get((s.appliance_id, s.integration))} for s in stats
        ]
        return site.render(request, "overview.html", viewer, rows=rows, at=time.time())

    return [Route("/", overview, methods=["GET"])]
