"""Replay: queue a session's recorded events again for one integration, by the rules of
``rsbridge events replay`` (the ledger keeps what is already on the ticket from being
written twice: a replay completes what is missing)."""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.engine.fixing import replay_session
from rsbridge.web.admin.notices import notice_of, with_notice
from rsbridge.web.admin.site import AdminSite, Viewer

MAX_LSID = 200
"""Longest lsid accepted (the appliance's are 32 to 40 characters)."""


def replay_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/replay`` (the form) and ``POST /admin/replay``."""
    config = site.config

    def form_page(
        request: Request, viewer: Viewer, fields: Mapping[str, str], problem: str | None = None
    ) -> Response:
        return site.render(
            request,
            "replay.html",
            viewer,
            status_code=400 if problem else 200,
            notice=notice_of(request),
            problem=problem,
            appliances=[a.id for a in config.appliances],
            integrations=[i.name for i in config.active_integrations()],
            chosen={k: fields.get(k, "") for k in ("appliance_id", "lsid", "integration")},
        )

    @site.page()
    async def replay_form(request: Request, viewer: Viewer) -> Response:
        return form_page(request, viewer, request.query_params)

    @site.page(role="operator")
    async def replay(request: Request, viewer: Viewer) -> Response:
        fields = viewer.form
        appliance_id = fields.get("appliance_id", "").strip()
        lsid = fields.get("lsid", "").strip()
        name = fields.get("integration", "").strip()
        integration = config.integration(name)
        problem = None
        if config.appliance(appliance_id) is None:
            problem = "Choose an appliance of the configuration."
        elif not lsid or len(lsid) > MAX_LSID:
            problem = "Give the session's lsid."
        elif integration is None or integration.disabled:
            problem = "Choose an enabled integration."
        elif integration.appliance != appliance_id:
            problem = "That integration takes its sessions from another appliance."
        if problem is not None:
            return form_page(request, viewer, fields, problem)
        created = await replay_session(config, site.engine.store, appliance_id, lsid, name)
        await site.audit(
            viewer,
            "replay session",
            f"{appliance_id}/{lsid} into {name}",
            f"{len(created)} job(s) queued",
        )
        back = {"appliance_id": appliance_id, "lsid": lsid, "integration": name}
        if not created:
            return site.redirect(with_notice("/admin/replay", "nothing-to-replay", query=back))
        return site.redirect(with_notice("/admin/replay", "replayed", len(created), back))

    return [
        Route("/replay", replay_form, methods=["GET"]),
        Route("/replay", replay, methods=["POST"]),
    ]
