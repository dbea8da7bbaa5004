"""``/admin/pull``: pull now, and a backfill of a period with its progress page."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from rsbridge.engine.store.base import EventFilter, JobFilter
from tests.admin.conftest import Console, console_config, csrf_of, serving_console
from tests.admin.operate_helpers import (
    audited,
    delivered,
    ended,
    fixing_config,
    jsonl_integration,
    until,
    watch_audit,
)
from tests.engine.conftest import SimAppliance, drained

DAY = 86400.0


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


async def finished(browser: httpx.AsyncClient, location: str) -> str:
    """The progress page at ``location`` once the run has ended (it refreshes itself
    until then: followed as a browser would)."""
    page = ""

    async def ended_run() -> bool:
        nonlocal page
        answer = await browser.get(location)
        assert answer.status_code == 200
        page = answer.text
        return 'http-equiv="refresh"' not in page

    await until(ended_run)
    return page


def figure(page: str, name: str) -> int:
    found = re.search(rf'<dd id="{name}">(\d+)</dd>', page)
    assert found, page
    return int(found.group(1))


async def pulled_lsids(console: Console) -> set[str]:
    events = await console.engine.store.list_events(EventFilter(limit=1000))
    return {e.lsid for e in events if e.source == "pull" and e.lsid}


async def test_a_backfill_queues_exactly_the_sessions_of_its_period_once(
    tmp_path: Path, sim: SimAppliance, caplog: pytest.LogCaptureFixture
) -> None:
    watch_audit(caplog)
    out = tmp_path / "out.jsonl"
    config = fixing_config(tmp_path, sim, [jsonl_integration("audit", out)])
    now = time.time()
    since, end = now - 10 * DAY, now - 5 * DAY
    # Sessions inside the period and on both sides of it.
    for ago, count in ((12 * DAY, 2), (9 * DAY, 3), (6 * DAY, 2), (3 * DAY, 2)):
        for session in ended(int(ago), count, ago, "audit", step=600):
            sim.state.add_report(session)
    inside = {
        s.lsid
        for s in sim.state.report_sessions()
        if s.end_time is not None and since <= s.end_time.timestamp() < end
    }
    assert len(inside) >= 5
    async with serving_console(config) as console, console.signed_in("olga") as olga:
        page = await olga.get("/admin/pull")
        assert "<h1>Pull and backfill</h1>" in page.text
        assert '<button type="submit">Backfill</button>' in page.text
        form = {
            "csrf_token": csrf_of(page.text),
            "do": "backfill",
            "integration": "audit",
            "since": iso(since),
            "until": iso(end),
        }
        answer = await olga.post("/admin/pull", data=form)
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert re.fullmatch(r"/admin/pull/[0-9a-f]{16}", location)
        done = await finished(olga, location)
        assert "<h1>Backfill audit</h1>" in done
        total = round(end - since)
        assert f'<progress id="backfill-progress" value="{total}" max="{total}">' in done
        assert figure(done, "found") == figure(done, "queued") == len(inside)
        assert await pulled_lsids(console) == inside
        await drained(console.engine)
        assert delivered(out) == dict.fromkeys(inside, 1)

        # The same period again: found again, queued and imported never twice.
        again = await olga.post("/admin/pull", data=form)
        second = await finished(olga, again.headers["location"])
        assert (figure(second, "found"), figure(second, "queued")) == (len(inside), 0)
        await drained(console.engine)
        assert delivered(out) == dict.fromkeys(inside, 1)
        for lsid in inside:
            ledger = await console.engine.store.ledger_for_session("default", lsid)
            effects = [e.key.effect for e in ledger if e.key.integration == "audit"]
            assert effects and len(effects) == len(set(effects))
        lines = [a for a in (await audited(console)) if "olga backfill audit" in a]
        assert len(lines) == 2 and location.rsplit("/", 1)[1] in lines[0]

        # The list shows the runs; a run this process does not know is a 404.
        listed = await olga.get("/admin/pull")
        assert listed.text.count('">done</a>') == 2
        assert (await olga.get("/admin/pull/0123456789abcdef")).status_code == 404


async def test_one_backfill_at_a_time_per_integration(tmp_path: Path, sim: SimAppliance) -> None:
    config = fixing_config(tmp_path, sim, [jsonl_integration("audit", tmp_path / "o.jsonl")])
    async with serving_console(config) as console, console.signed_in("olga") as olga:
        page = await olga.get("/admin/pull")
        form = {
            "csrf_token": csrf_of(page.text),
            "do": "backfill",
            "integration": "audit",
            "since": "3d",
        }
        # The simulated appliance holds its answers while its state is locked: the first
        # run waits for the listing, and a second one is sent to the first one's page.
        with sim.state.lock:
            first = await olga.post("/admin/pull", data=form)
            second = await olga.post("/admin/pull", data=form)
            assert second.headers["location"] == (
                first.headers["location"] + "?notice=already-running"
            )
            waiting = await olga.get(second.headers["location"])
            assert "A backfill for this integration runs already" in waiting.text
            assert '<meta http-equiv="refresh" content="2">' in waiting.text
            assert (
                'href="' + first.headers["location"] + '">running</a>'
                in (await olga.get("/admin/pull")).text
            )
        await finished(olga, first.headers["location"])
        third = await olga.post("/admin/pull", data=form)
        assert third.headers["location"] != first.headers["location"]
        await finished(olga, third.headers["location"])
        del console


async def test_pull_now_queues_what_ended_since_the_last_pull(
    tmp_path: Path, sim: SimAppliance, caplog: pytest.LogCaptureFixture
) -> None:
    watch_audit(caplog)
    out = tmp_path / "out.jsonl"
    config = fixing_config(tmp_path, sim, [jsonl_integration("audit", out)])
    async with serving_console(config) as console, console.signed_in("olga") as olga:
        page = await olga.get("/admin/pull")
        token = csrf_of(page.text)
        first = await olga.post(
            "/admin/pull", data={"csrf_token": token, "do": "pull", "integration": "audit"}
        )
        assert first.status_code == 303
        assert first.headers["location"].startswith("/admin/pull?notice=pulled&count=")
        fresh = ended(77, 3, 300, "audit")
        for session in fresh:
            sim.state.add_report(session)
        answer = await olga.post(
            "/admin/pull", data={"csrf_token": token, "do": "pull", "integration": "audit"}
        )
        assert answer.headers["location"] == "/admin/pull?notice=pulled&count=3"
        shown = await olga.get(answer.headers["location"])
        assert "Pull now queued 3 new session(s)." in shown.text
        await drained(console.engine)
        for session in fresh:
            assert delivered(out)[session.lsid] == 1
        assert any(
            "olga pull now audit 3 sessions listed, 3 queued" in a for a in (await audited(console))
        )
        jobs = await console.engine.store.list_jobs(JobFilter(limit=500))
        assert {s.lsid for s in fresh} <= {j.lsid for j in jobs}


async def test_a_viewer_sees_pull_but_cannot_pull_or_backfill(
    tmp_path: Path, sim: SimAppliance
) -> None:
    config = fixing_config(tmp_path, sim, [jsonl_integration("audit", tmp_path / "o.jsonl")])
    async with serving_console(config) as console, console.signed_in("vic") as vic:
        page = await vic.get("/admin/pull")
        assert page.status_code == 200
        assert "Pull now</button>" not in page.text and "Backfill</button>" not in page.text
        token = csrf_of(page.text)
        for do in ("pull", "backfill"):
            answer = await vic.post(
                "/admin/pull",
                data={"csrf_token": token, "do": do, "integration": "audit", "since": "1d"},
            )
            assert answer.status_code == 403
        assert await pulled_lsids(console) == set()


async def test_the_engine_awaits_the_consoles_stop_callbacks_before_closing(
    tmp_path: Path, sim: SimAppliance
) -> None:
    # The console's backfills are cancelled through this before the appliance clients and
    # the store they use close.
    seen: list[bool] = []
    async with serving_console(console_config(tmp_path, sim)) as console:
        engine = console.engine

        async def callback() -> None:
            seen.append(engine.store is not None and engine.running)

        engine.on_stop(callback)
    assert seen == [True]
