"""``GET /admin/audit``: who did what, newest first, a page at a time."""

from __future__ import annotations

import re
from pathlib import Path

from tests.admin.conftest import console_config, serving_console, sign_in
from tests.engine.conftest import SimAppliance

_ROW = re.compile(r'<tr id="entry-(\d+)">(.*?)</tr>', re.S)
_OLDER = re.compile(r'<a href="(/admin/audit\?[^"]*)" rel="next">Older entries</a>')


def rows(page: str) -> list[tuple[int, str]]:
    """The audit entries of a page: (id, row html), in page order."""
    return [(int(m.group(1)), m.group(2)) for m in _ROW.finditer(page)]


async def test_viewer_and_operator_read_who_did_what_from_where(
    tmp_path: Path, sim: SimAppliance
) -> None:
    async with serving_console(console_config(tmp_path, sim)) as console:
        async with console.browser() as browser:
            assert (await sign_in(browser, "vic", "wrong")).status_code == 401
        for name in ("vic", "olga"):
            async with console.signed_in(name) as browser:
                page = await browser.get("/admin/audit")
                assert page.status_code == 200
                assert "<h1>Audit log</h1>" in page.text
                assert page.headers["cache-control"] == "no-store"
                newest = rows(page.text)[0][1]
                assert f">{name}</a>" in newest and "<td>sign-in</td>" in newest
                assert "<td>127.0.0.1</td>" in newest and " UTC</time>" in newest
        ids = [i for i, _ in rows(page.text)]
        assert ids == sorted(ids, reverse=True) and len(ids) == 3
        assert "<td>sign-in failed</td>" in rows(page.text)[-1][1]


async def test_the_log_pages_back_with_before(tmp_path: Path, sim: SimAppliance) -> None:
    async with serving_console(console_config(tmp_path, sim)) as console:
        store = console.engine.store
        for n in range(60):
            await store.write_audit("olga", "retry", target=f"job {n}")
        async with console.signed_in("vic") as browser:
            first = await browser.get("/admin/audit")
            shown = rows(first.text)
            assert len(shown) == 50
            assert "<td>sign-in</td>" in shown[0][1]  # vic's own sign-in came last
            assert "<td>job 59</td>" in shown[1][1]
            link = _OLDER.search(first.text)
            assert link is not None
            assert link.group(1) == f"/admin/audit?before={shown[-1][0]}"
            second = await browser.get(link.group(1))
            rest = rows(second.text)
            assert [i for i, _ in rest] == sorted((i for i, _ in rest), reverse=True)
            assert rest[0][0] < shown[-1][0]
            assert len(shown) + len(rest) == 61
            assert "<td>job 0</td>" in rest[-1][1]
            assert _OLDER.search(second.text) is None
            assert "Newest entries" in second.text


async def test_one_actors_entries_and_a_bad_page(tmp_path: Path, sim: SimAppliance) -> None:
    async with serving_console(console_config(tmp_path, sim)) as console:
        for _ in range(3):
            await console.engine.store.write_audit(
                "mallory", "sign-in failed", remote="203.0.113.5"
            )
        async with console.signed_in("olga") as browser:
            page = await browser.get("/admin/audit", params={"actor": "mallory"})
            assert len(rows(page.text)) == 3
            assert all("203.0.113.5" in row for _, row in rows(page.text))
            for bad in ("x", "-1", "0", "9" * 30):
                refused = await browser.get("/admin/audit", params={"before": bad})
                assert refused.status_code == 400


async def test_attacker_supplied_names_are_shown_as_text(tmp_path: Path, sim: SimAppliance) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    async with serving_console(console_config(tmp_path, sim)) as console:
        async with console.browser() as browser:
            assert (await sign_in(browser, hostile, "guess")).status_code == 401
        async with console.signed_in("vic") as browser:
            page = await browser.get("/admin/audit")
            assert hostile not in page.text
            assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page.text
            # The per-actor link quotes the name too.
            assert "actor=%3Cimg%20src%3Dx%20onerror%3D%22alert%281%29%22%3E" in page.text


async def test_strangers_are_sent_to_sign_in(tmp_path: Path, sim: SimAppliance) -> None:
    async with (
        serving_console(console_config(tmp_path, sim)) as console,
        console.browser() as browser,
    ):
        answer = await browser.get("/admin/audit")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/admin/sign-in")
