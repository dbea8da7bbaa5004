"""The overview page: per appliance and integration, health at a glance, and charts of
what happened (deliveries, failures, end-to-end latency, the oldest queued job).

The health table reads :meth:`Store.job_stats` and :meth:`Store.last_failures`, the same
figures the metrics and ``rsbridge status`` show; the charts read one
:meth:`Store.activity` aggregate. Nothing is counted here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from rsbridge.engine.store.base import ActivityBucket, JobStats
from rsbridge.web.admin.charts import Series, bar_chart, hbar_chart, line_chart
from rsbridge.web.admin.site import AdminSite, Viewer

__all__ = ["RANGES", "Range", "overview_routes"]


@dataclass(frozen=True, slots=True)
class Range:
    """A period the charts cover: ``buckets`` bars of ``step`` seconds up to now."""

    key: str
    label: str
    step: int
    buckets: int
    time_format: str


RANGES: dict[str, Range] = {
    r.key: r
    for r in (
        Range("1h", "Last hour", 300, 12, "%H:%M"),
        Range("24h", "Last 24 hours", 3600, 24, "%H:%M"),
        Range("7d", "Last 7 days", 6 * 3600, 28, "%d %b"),
    )
}
DEFAULT_RANGE = "24h"


def overview_routes(site: AdminSite) -> list[BaseRoute]:
    """``GET /admin/`` (``?range=1h|24h|7d``)."""

    @site.page()
    async def overview(request: Request, viewer: Viewer) -> Response:
        store = site.engine.store
        now = time.time()
        chosen = RANGES.get(request.query_params.get("range", ""), RANGES[DEFAULT_RANGE])
        stats = await store.job_stats(now=now)
        failures = {(f.appliance_id, f.integration): f for f in await store.last_failures()}
        rows = [
            {"stats": s, "failure": failures.get((s.appliance_id, s.integration))} for s in stats
        ]
        # Buckets end on a multiple of the step (whole hours, five minutes): the last one
        # is the current, unfinished interval.
        until = math.ceil(now / chosen.step) * chosen.step
        since = until - chosen.step * chosen.buckets
        buckets = await store.activity(since, until, chosen.step)
        return site.render(
            request,
            "overview.html",
            viewer,
            rows=rows,
            at=now,
            ranges=RANGES.values(),
            chosen=chosen,
            charts=_charts(buckets, stats, chosen, now),
        )

    return [Route("/", overview, methods=["GET"])]


def _charts(
    buckets: list[ActivityBucket], stats: list[JobStats], chosen: Range, now: float
) -> list[tuple[str, Markup]]:
    """Each chart with its title (shown above it; the SVG repeats it for screen readers)."""
    labels = [
        datetime.fromtimestamp(b.start, UTC).strftime(chosen.time_format) + " UTC"
        if i in (0, len(buckets) - 1)
        else datetime.fromtimestamp(b.start, UTC).strftime(chosen.time_format)
        for i, b in enumerate(buckets)
    ]
    per = {300: "5 minutes", 3600: "hour", 6 * 3600: "6 hours"}[chosen.step]
    oldest = [
        (f"{s.appliance_id}/{s.integration}", now - s.oldest_unfinished_at)
        for s in stats
        if s.oldest_unfinished_at is not None
    ]
    titles = (
        f"Sessions delivered per {per}",
        f"Failed attempts per {per}",
        "End-to-end latency (event received to delivered)",
        "Oldest queued job, by appliance and integration",
    )
    charts = (
        bar_chart(titles[0], labels, Series("delivered", [b.delivered for b in buckets], "a")),
        bar_chart(titles[1], labels, Series("failures", [b.failures for b in buckets], "bad")),
        line_chart(
            titles[2],
            labels,
            [
                Series("median", [b.latency_p50 for b in buckets], "a"),
                Series("p95", [b.latency_p95 for b in buckets], "b"),
            ],
            unit="s",
        ),
        hbar_chart(titles[3], oldest, unit="s"),
    )
    return list(zip(titles, charts, strict=True))
