"""The overview: the health table and the charts of what happened, from sessions delivered
through the real pipeline."""

from __future__ import annotations

import re
from pathlib import Path

from tests.admin.views_helpers import charts_of, delivered, desc_of, table_rows
from tests.engine.conftest import SimAppliance, emit, ended_sessions

SVG = "{http://www.w3.org/2000/svg}"


async def test_the_overview_charts_what_the_engine_did(tmp_path: Path, sim: SimAppliance) -> None:
    async with delivered(tmp_path, sim) as run, run.console.signed_in("vic") as browser:
        page = await browser.get("/admin/?range=1h")
        assert page.status_code == 200
        html = page.text
        assert "<h1>Overview</h1>" in html
        # The health table: one row per appliance and integration, dead letters linked.
        rows = {r[1]: r for r in table_rows(html) if len(r) == 8}
        assert set(rows) == {"audit", "broken"}
        assert rows["audit"][7] == "0" and rows["broken"][7] == "3"
        assert '<a href="/admin/dead?integration=broken">3</a>' in html
        assert "No such file or directory" in rows["broken"][3]  # the last error

        charts = charts_of(html)
        delivered_chart = charts["Sessions delivered per 5 minutes"]
        failed_chart = charts["Failed attempts per 5 minutes"]
        latency = charts["End-to-end latency (event received to delivered)"]
        oldest = charts["Oldest queued job, by appliance and integration"]
        # Three sessions delivered by audit; broken's three jobs each failed once, for good.
        assert desc_of(delivered_chart).startswith("delivered: 3 in all")
        assert desc_of(failed_chart).startswith("failures: 3 in all")
        bars = [r for r in delivered_chart.iter(f"{SVG}rect") if "bar" in r.get("class", "")]
        assert len(bars) == 12  # 5-minute buckets over the last hour
        assert sum(float(b.get("height", "0")) > 0 for b in bars) in (1, 2)
        # Latency has a median and a p95 point where sessions were delivered.
        dots = list(latency.iter(f"{SVG}circle"))
        assert dots and {d.get("class") for d in dots} == {"dot s-a", "dot s-b"}
        assert re.search(r"median at most \d+ (ms|s)", desc_of(latency))
        assert desc_of(oldest) == "Nothing queued."


async def test_the_range_picks_the_buckets(tmp_path: Path, sim: SimAppliance) -> None:
    async with delivered(tmp_path, sim) as run, run.console.signed_in("vic") as browser:
        default = await browser.get("/admin/")
        week = await browser.get("/admin/?range=7d")
        odd = await browser.get("/admin/?range=%3Cscript%3E")
    day = charts_of(default.text)["Sessions delivered per hour"]
    assert len([r for r in day.iter(f"{SVG}rect") if "bar" in r.get("class", "")]) == 24
    assert 'href="/admin/?range=24h" aria-current="true"' in default.text
    assert "Sessions delivered per 6 hours" in charts_of(week.text)
    # An unknown range is the default one, and is not reflected.
    assert "Sessions delivered per hour" in charts_of(odd.text)
    assert "<script>" not in odd.text


async def test_the_oldest_queued_job_is_charted_per_integration(
    tmp_path: Path, sim: SimAppliance
) -> None:
    # A session the appliance has no report of waits (for its end time) in the queue.
    missing = ended_sessions(["INC0010009"], 1, seed=77, integration="audit", surveys=False)
    async with delivered(tmp_path, sim, []) as run, run.console.signed_in("vic") as browser:
        await emit(run.console.url, missing)
        page = await browser.get("/admin/")
    oldest = charts_of(page.text)["Oldest queued job, by appliance and integration"]
    names = [t.text for t in oldest.iter(f"{SVG}text")]
    assert "default/audit" in names and "default/broken" in names
    assert "default/audit:" in desc_of(oldest)
