"""Pull and backfill: "Pull now" per integration (as the actions API's pull), and a
backfill of a past period run in the background with a progress page that refreshes
itself until the run ends (``<meta http-equiv="refresh">``: no script)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.engine.backfill import BackfillRunningError, Backfills
from rsbridge.engine.fixing import parse_since
from rsbridge.engine.poller import watermark_name
from rsbridge.errors import RsbridgeError
from rsbridge.web.admin.notices import notice_of, utc, with_notice
from rsbridge.web.admin.site import AdminSite, Viewer

REFRESH_SECONDS = 2
"""How often a running backfill's page reloads itself."""
_RUN_ID = re.compile(r"[0-9a-f]{16}")
_WHEN_HELP = "use a date (2026-11-20), an ISO date-time, or a span ago (30m, 12h, 3d)"


def pull_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET/POST /admin/pull`` and ``GET /admin/pull/{run_id}``."""
    site.templates.globals["utc"] = utc
    engine = site.engine
    config = site.config
    runs = Backfills(config, engine.store, engine.appliances)
    # A run still going at shutdown is cancelled before the appliance clients and the
    # store it uses close (what it queued stays queued; a new backfill finds the rest).
    engine.on_stop(runs.aclose)

    async def pull_page(
        request: Request,
        viewer: Viewer,
        fields: Mapping[str, str],
        problem: str | None = None,
        status_code: int = 200,
    ) -> Response:
        rows = []
        for integration in config.active_integrations():
            rows.append(
                {
                    "name": integration.name,
                    "appliance": integration.appliance,
                    "polling": integration.polling,
                    "watermark": await engine.store.get_watermark(watermark_name(integration.name)),
                    "running": runs.running(integration.name),
                }
            )
        return site.render(
            request,
            "pull.html",
            viewer,
            status_code=status_code,
            notice=notice_of(request),
            problem=problem,
            rows=rows,
            recent=runs.recent(),
            chosen={k: fields.get(k, "") for k in ("integration", "since", "until")},
        )

    @site.page()
    async def pull_get(request: Request, viewer: Viewer) -> Response:
        return await pull_page(request, viewer, request.query_params)

    @site.page(role="operator")
    async def pull_post(request: Request, viewer: Viewer) -> Response:
        fields = viewer.form
        name = fields.get("integration", "")
        integration = config.integration(name)
        if integration is None or integration.disabled or name not in engine.connectors:
            return await pull_page(request, viewer, fields, "Choose an enabled integration.", 400)
        if fields.get("do") == "backfill":
            return await backfill(request, viewer, fields)
        actions = engine.actions
        if actions is None:
            return await pull_page(request, viewer, fields, "The engine is not running.", 503)
        try:
            result = await actions.pull_now(name)
        except RsbridgeError as exc:
            await site.audit(viewer, "pull now", name, f"failed: {exc.message}")
            return await pull_page(request, viewer, fields, f"Pull now failed: {exc.message}", 502)
        await site.audit(
            viewer,
            "pull now",
            name,
            f"{result.sessions_listed} sessions listed, {result.sessions_queued} queued",
        )
        return site.redirect(with_notice("/admin/pull", "pulled", result.sessions_queued))

    async def backfill(request: Request, viewer: Viewer, fields: Mapping[str, str]) -> Response:
        name = fields["integration"]
        integration = config.integration(name)
        assert integration is not None
        try:
            since = parse_since(fields.get("since", ""))
        except ValueError:
            return await pull_page(request, viewer, fields, f"Since: {_WHEN_HELP}.", 400)
        until_text = fields.get("until", "").strip()
        try:
            until = parse_since(until_text) if until_text else float("inf")
        except ValueError:
            return await pull_page(request, viewer, fields, f"Until: {_WHEN_HELP}.", 400)
        try:
            run = runs.start(integration, since, until, by=viewer.name)
        except BackfillRunningError as exc:
            return site.redirect(with_notice(f"/admin/pull/{exc.run.id}", "already-running"))
        except RsbridgeError as exc:
            return await pull_page(request, viewer, fields, exc.message, 400)
        await site.audit(
            viewer, "backfill", name, f"{utc(run.since)} to {utc(run.until)} (run {run.id})"
        )
        return site.redirect(f"/admin/pull/{run.id}")

    @site.page()
    async def progress(request: Request, viewer: Viewer) -> Response:
        run_id = str(request.path_params["run_id"])
        run = runs.get(run_id) if _RUN_ID.fullmatch(run_id) else None
        if run is None:
            return site.refuse(
                request, viewer, 404, "No such backfill (this engine process does not know it)."
            )
        return site.render(
            request,
            "backfill.html",
            viewer,
            notice=notice_of(request),
            run=run,
            refresh=None if run.done else REFRESH_SECONDS,
        )

    return [
        Route("/pull", pull_get, methods=["GET"]),
        Route("/pull", pull_post, methods=["POST"]),
        Route("/pull/{run_id}", progress, methods=["GET"]),
    ]
