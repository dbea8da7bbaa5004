"""Dead letters: see them, filtered and paged, and queue them again (one, or every one
matching the filter after an outage)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.engine.fixing import parse_since, retry_dead
from rsbridge.engine.store.base import JobFilter, JobStatus
from rsbridge.web.admin.notices import notice_of, utc, with_notice
from rsbridge.web.admin.site import AdminSite, Viewer, parse_id

PAGE_SIZE = 50
"""Dead letters per page."""


class _Filter:
    """The page's filter fields, read and checked: ``problem`` says what is wrong."""

    def __init__(self, site: AdminSite, fields: dict[str, str]) -> None:
        self.integration = fields.get("integration", "").strip()
        self.since_text = fields.get("since", "").strip()
        self.since: float | None = None
        self.problem: str | None = None
        known = {i.name for i in site.config.integrations}
        if self.integration and self.integration not in known:
            self.problem = "There is no integration of that name in the configuration."
        elif self.since_text:
            try:
                self.since = parse_since(self.since_text)
            except ValueError:
                self.problem = (
                    "Since: use a date (2026-11-20), an ISO date-time, or a span ago "
                    "(30m, 12h, 3d)."
                )

    def query(self) -> dict[str, str]:
        return {"integration": self.integration, "since": self.since_text}


def dead_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/dead``, ``POST /admin/dead/retry`` and ``POST /admin/dead/retry-all``."""
    site.templates.globals["utc"] = utc

    @site.page()
    async def dead(request: Request, viewer: Viewer) -> Response:
        chosen = _Filter(site, dict(request.query_params))
        before_text = request.query_params.get("before", "")
        before = parse_id(before_text)
        jobs = []
        if chosen.problem is None:
            jobs = await site.engine.store.list_jobs(
                JobFilter(
                    status=JobStatus.DEAD,
                    integration=chosen.integration or None,
                    updated_since=chosen.since,
                    before_id=before,
                    limit=PAGE_SIZE + 1,
                )
            )
        more = len(jobs) > PAGE_SIZE
        jobs = jobs[:PAGE_SIZE]
        return site.render(
            request,
            "dead.html",
            viewer,
            status_code=400 if chosen.problem else 200,
            notice=notice_of(request),
            problem=chosen.problem,
            filter=chosen,
            integrations=[i.name for i in site.config.integrations],
            jobs=jobs,
            next_before=jobs[-1].id if more else None,
        )

    @site.page(role="operator")
    async def retry(request: Request, viewer: Viewer) -> Response:
        chosen = _Filter(site, dict(viewer.form))
        text = viewer.form.get("job_id", "")
        job_id = parse_id(text)
        if job_id is None:
            return site.refuse(request, viewer, 400, "Choose a dead letter to retry.")
        job = await site.engine.store.get_job(job_id)
        requeued = await site.engine.store.retry_job(job_id)
        target = f"job {job_id}" + (f" ({job.integration}, lsid {job.lsid})" if job else "")
        await site.audit(viewer, "retry dead letter", target, "queued" if requeued else "not dead")
        code = "retried" if requeued else "not-dead"
        return site.redirect(with_notice("/admin/dead", code, query=chosen.query()))

    @site.page(role="operator")
    async def retry_all(request: Request, viewer: Viewer) -> Response:
        chosen = _Filter(site, dict(viewer.form))
        if chosen.problem is not None:
            return site.refuse(request, viewer, 400, chosen.problem)
        count = await retry_dead(site.engine.store, chosen.integration or None, chosen.since)
        await site.audit(
            viewer,
            "retry all dead letters",
            chosen.integration or "every integration",
            f"died since {utc(chosen.since)}; {count} queued again",
        )
        return site.redirect(with_notice("/admin/dead", "retried-all", count, chosen.query()))

    return [
        Route("/dead", dead, methods=["GET"]),
        Route("/dead/retry", retry, methods=["POST"]),
        Route("/dead/retry-all", retry_all, methods=["POST"]),
    ]
