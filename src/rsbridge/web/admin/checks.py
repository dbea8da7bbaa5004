"""Checks: run ``rsbridge check`` for one integration (its appliance and its ticketing
system) and show each verdict as ok, warn or fail with its text."""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.engine.check import CheckVerdict, run_checks
from rsbridge.errors import RsbridgeError
from rsbridge.web.admin.notices import notice_of, utc, with_notice
from rsbridge.web.admin.site import AdminSite, Viewer


@dataclass(frozen=True, slots=True)
class ShownVerdict:
    """A verdict as the console shows it: ``level`` is ok, warn or fail."""

    target: str
    level: str
    summary: str
    lines: tuple[str, ...]


def shown(verdict: CheckVerdict) -> ShownVerdict:
    """``verdict`` for a page: fail when it failed, warn when it passed with warnings."""
    level = "fail" if not verdict.ok else "warn" if verdict.warnings else "ok"
    lines = tuple(f"warning: {w}" for w in verdict.warnings) + verdict.details
    return ShownVerdict(verdict.target, level, verdict.summary, lines)


@dataclass(frozen=True, slots=True)
class CheckRun:
    """The last check of an integration: when, by whom, what it found."""

    at: float
    by: str
    verdicts: tuple[ShownVerdict, ...]


def checks_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/checks`` and ``POST /admin/checks`` (field ``integration``)."""
    site.templates.globals["utc"] = utc
    config = site.config
    last: dict[str, CheckRun] = {}

    @site.page()
    async def checks_page(request: Request, viewer: Viewer) -> Response:
        return site.render(
            request,
            "checks.html",
            viewer,
            notice=notice_of(request),
            integrations=[(i.name, i.disabled, last.get(i.name)) for i in config.integrations],
        )

    @site.page(role="operator")
    async def run_check(request: Request, viewer: Viewer) -> Response:
        name = viewer.form.get("integration", "")
        if config.integration(name) is None:
            return site.refuse(request, viewer, 400, "Choose an integration of the configuration.")
        try:
            verdicts = await run_checks(config, only=name)
        except RsbridgeError as exc:  # nothing to check by that name: refused above
            return site.refuse(request, viewer, 400, exc.message)
        run = CheckRun(time.time(), viewer.name, tuple(shown(v) for v in verdicts))
        last[name] = run
        levels = ", ".join(f"{v.target}: {v.level}" for v in run.verdicts)
        await site.audit(viewer, "run check", name, levels)
        failed = sum(v.level == "fail" for v in run.verdicts)
        code = "check-failed" if failed else "checked"
        return site.redirect(with_notice("/admin/checks", code, failed, {"integration": name}))

    return [
        Route("/checks", checks_page, methods=["GET"]),
        Route("/checks", run_check, methods=["POST"]),
    ]
