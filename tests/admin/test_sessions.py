"""The sessions page: search by lsid, ticket, integration, state and time, paged, over
sessions delivered through the real pipeline."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rsbridge.web.admin import sessions as sessions_module
from tests.admin.views_helpers import TICKETS, delivered, table_rows
from tests.engine.conftest import SimAppliance

_OLDER = re.compile(r'<a href="([^"]+)" rel="next">Older sessions</a>')


def _rows(page: str) -> list[tuple[str, str, str]]:
    """(lsid, integration, state) of each result row."""
    return [(r[0], r[2], r[3]) for r in table_rows(page) if len(r) == 7]


async def _search(browser: httpx.AsyncClient, **fields: str) -> list[tuple[str, str, str]]:
    page = await browser.get("/admin/sessions", params=fields)
    assert page.status_code == 200
    assert "<h1>Sessions</h1>" in page.text
    return _rows(page.text)


async def test_each_filter_finds_what_it_names(tmp_path: Path, sim: SimAppliance) -> None:
    async with delivered(tmp_path, sim) as run, run.console.signed_in("vic") as browser:
        lsids = [s.lsid for s in run.sessions]
        everything = await _search(browser)
        # One row per session and integration, newest first: audit delivered, broken dead.
        assert sorted(everything) == sorted(
            [(lsid, "audit", "done") for lsid in lsids]
            + [(lsid, "broken", "dead") for lsid in lsids]
        )
        assert [r[0] for r in everything[:2]] == [lsids[-1]] * 2

        assert sorted(await _search(browser, integration="broken")) == sorted(
            (lsid, "broken", "dead") for lsid in lsids
        )
        assert {r[1] for r in await _search(browser, state="done")} == {"audit"}
        assert {r[1] for r in await _search(browser, state="dead")} == {"broken"}
        assert await _search(browser, state="queued") == []
        assert await _search(browser, state="skipped") == []
        assert sorted(await _search(browser, lsid=lsids[1])) == [
            (lsids[1], "audit", "done"),
            (lsids[1], "broken", "dead"),
        ]
        # The ticket each session was keyed to (its external key), from the ledger.
        by_ticket = await _search(browser, ticket=TICKETS[2])
        assert by_ticket and {r[0] for r in by_ticket} == {lsids[2]}
        assert await _search(browser, ticket="INC9999999") == []
        hour_ago = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        in_an_hour = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
        assert len(await _search(browser, since=hour_ago, until=in_an_hour)) == 6
        assert await _search(browser, since=in_an_hour) == []
        assert await _search(browser, until=hour_ago) == []
        combined = await _search(browser, integration="audit", state="done", since=hour_ago)
        assert sorted(combined) == sorted((lsid, "audit", "done") for lsid in lsids)


async def test_rows_show_ticket_and_error_and_link_to_the_session(
    tmp_path: Path, sim: SimAppliance
) -> None:
    async with delivered(tmp_path, sim) as run, run.console.signed_in("vic") as browser:
        page = await browser.get("/admin/sessions", params={"lsid": run.sessions[0].lsid})
    lsid = run.sessions[0].lsid
    cells = {r[2]: r for r in table_rows(page.text) if len(r) == 7}
    assert cells["audit"][5] == TICKETS[0] and cells["audit"][6] == ""
    assert "No such file or directory" in cells["broken"][6]
    assert f'<a href="/admin/sessions/default/{lsid}">{lsid}</a>' in page.text
    assert '<a href="/admin/dead?integration=broken">dead</a>' in page.text


async def _all_pages(browser: httpx.AsyncClient, url: str) -> list[list[tuple[str, str, str]]]:
    """Each page's rows, following the "Older sessions" links to the end."""
    pages = []
    next_url: str | None = url
    while next_url is not None:
        page = await browser.get(next_url)
        pages.append(_rows(page.text))
        older = _OLDER.search(page.text)
        next_url = older.group(1).replace("&amp;", "&") if older else None
        assert len(pages) < 10
    return pages


async def test_results_are_paged_by_key(
    tmp_path: Path, sim: SimAppliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sessions_module, "PAGE_SIZE", 2)
    async with delivered(tmp_path, sim) as run, run.console.signed_in("vic") as browser:
        audit = await _all_pages(browser, "/admin/sessions?integration=audit")
        everything = await _all_pages(browser, "/admin/sessions")
        whole = await browser.get("/admin/sessions")
    lsids = [s.lsid for s in run.sessions]
    # The filter is kept from page to page; newest first throughout.
    assert audit == [
        [(lsids[2], "audit", "done"), (lsids[1], "audit", "done")],
        [(lsids[0], "audit", "done")],
    ]
    assert [len(rows) for rows in everything] == [2, 2, 2]
    flat = [row for rows in everything for row in rows]
    assert len(set(flat)) == 6  # every row once, none twice
    assert 'href="/admin/sessions?before=' in whole.text


async def test_bad_input_is_refused_with_a_fixed_message(tmp_path: Path, sim: SimAppliance) -> None:
    async with delivered(tmp_path, sim, []) as run, run.console.signed_in("vic") as browser:
        page = await browser.get(
            "/admin/sessions", params={"state": "<b>x</b>", "since": "yesterday<script>"}
        )
    assert page.status_code == 200
    assert "State: choose one of the listed states." in page.text
    assert "From: not a date and time" in page.text
    assert "<script>" not in page.text and "<b>x</b>" not in page.text
