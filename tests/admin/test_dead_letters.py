"""``/admin/dead``: dead letters, filtered and paged; retry one, or all that match."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rsbridge.engine.store.base import JobFilter, JobStatus
from rsbridge.web.admin import dead
from tests.admin.conftest import Console, csrf_of, serving_console
from tests.admin.operate_helpers import (
    audited,
    delivered,
    ended,
    fixing_config,
    jsonl_integration,
    until,
    watch_audit,
)
from tests.engine.conftest import SimAppliance, drained, emit


async def dead_jobs(console: Console, integration: str | None = None) -> list[int]:
    jobs = await console.engine.store.list_jobs(
        JobFilter(status=JobStatus.DEAD, integration=integration, limit=500)
    )
    return [j.id for j in jobs]


async def with_dead_letters(console: Console, sim: SimAppliance, count: int) -> list[str]:
    """``count`` sessions whose end events die for both integrations; their lsids."""
    sessions = ended(41, count, 120, "audit")
    for session in sessions:
        sim.state.add_report(session)
    await emit(console.url, sessions)

    async def all_dead() -> bool:
        return len(await dead_jobs(console)) == 2 * count

    await until(all_dead)
    return [s.lsid for s in sessions]


def two_broken(tmp_path: Path) -> list[dict[str, object]]:
    return [
        jsonl_integration("audit", tmp_path / "a" / "out.jsonl"),
        jsonl_integration("other", tmp_path / "b" / "out.jsonl"),
    ]


async def test_dead_letters_are_listed_and_one_retried_lands_once(
    tmp_path: Path, sim: SimAppliance, caplog: pytest.LogCaptureFixture
) -> None:
    watch_audit(caplog)
    config = fixing_config(tmp_path, sim, two_broken(tmp_path))
    async with serving_console(config) as console, console.signed_in("olga") as olga:
        lsids = await with_dead_letters(console, sim, 2)
        page = await olga.get("/admin/dead")
        assert page.status_code == 200
        assert "<h1>Dead letters</h1>" in page.text
        for lsid in lsids:
            assert page.text.count(f">{lsid}</a>") == 2  # one row per integration
        assert page.text.count('<button type="submit">Retry</button>') == 4
        assert '<button type="submit">Retry all matching</button>' in page.text
        assert "no such file or directory" in page.text.lower()

        only_other = await olga.get("/admin/dead", params={"integration": "other"})
        assert only_other.text.count('<button type="submit">Retry</button>') == 2
        assert "<td>audit</td>" not in only_other.text

        # Mended, one dead letter of "audit" retried from its row: it lands, once.
        (tmp_path / "a").mkdir()
        [job, _] = await dead_jobs(console, "audit")
        answer = await olga.post(
            "/admin/dead/retry", data={"csrf_token": csrf_of(page.text), "job_id": str(job)}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == "/admin/dead?notice=retried"
        shown = await olga.get(answer.headers["location"])
        assert "The dead letter was queued again." in shown.text
        await drained(console.engine)
        stored = await console.engine.store.get_job(job)
        assert stored is not None and stored.status is JobStatus.DONE
        assert sum(delivered(tmp_path / "a" / "out.jsonl").values()) == 1
        assert len(await dead_jobs(console)) == 3

        # Retried again: it is not dead any more; nothing is queued.
        again = await olga.post(
            "/admin/dead/retry", data={"csrf_token": csrf_of(page.text), "job_id": str(job)}
        )
        assert again.headers["location"] == "/admin/dead?notice=not-dead"
        assert any(
            f"audit: olga retry dead letter job {job} (audit" in a for a in (await audited(console))
        )
        assert any(f"job {job}" in a and "not dead" in a for a in (await audited(console)))


async def test_retry_all_matching_queues_what_the_filter_selects(
    tmp_path: Path, sim: SimAppliance, caplog: pytest.LogCaptureFixture
) -> None:
    watch_audit(caplog)
    config = fixing_config(tmp_path, sim, two_broken(tmp_path))
    async with serving_console(config) as console, console.signed_in("olga") as olga:
        lsids = await with_dead_letters(console, sim, 3)
        page = await olga.get("/admin/dead", params={"integration": "other", "since": "1h"})
        token = csrf_of(page.text)
        # Nothing died since now.
        none = await olga.post(
            "/admin/dead/retry-all",
            data={"csrf_token": token, "integration": "other", "since": "0m"},
        )
        assert "notice=retried-all&count=0" in none.headers["location"]
        assert len(await dead_jobs(console)) == 6

        (tmp_path / "b").mkdir()
        answer = await olga.post(
            "/admin/dead/retry-all",
            data={"csrf_token": token, "integration": "other", "since": "1h"},
        )
        assert answer.status_code == 303
        location = answer.headers["location"]
        assert location == "/admin/dead?integration=other&since=1h&notice=retried-all&count=3"
        shown = await olga.get(location)
        assert "Queued again: 3 dead letter(s) matching the filter." in shown.text
        await drained(console.engine)
        assert delivered(tmp_path / "b" / "out.jsonl") == dict.fromkeys(lsids, 1)
        assert await dead_jobs(console, "other") == []
        assert len(await dead_jobs(console, "audit")) == 3
        lines = await audited(console)
        assert any(
            "olga retry all dead letters other" in a and "3 queued again" in a for a in lines
        )
        assert any("0 queued again" in a for a in lines)

        # A filter that cannot be read is refused, and nothing is queued.
        bad = await olga.post(
            "/admin/dead/retry-all", data={"csrf_token": token, "since": "last tuesday"}
        )
        assert bad.status_code == 400
        assert len(await dead_jobs(console, "audit")) == 3


async def test_a_viewer_sees_dead_letters_but_cannot_retry(
    tmp_path: Path, sim: SimAppliance, caplog: pytest.LogCaptureFixture
) -> None:
    watch_audit(caplog)
    config = fixing_config(tmp_path, sim, two_broken(tmp_path))
    async with serving_console(config) as console, console.signed_in("vic") as vic:
        await with_dead_letters(console, sim, 1)
        page = await vic.get("/admin/dead")
        assert page.status_code == 200
        assert "Retry" not in page.text.replace("Dead letters", "")
        token = csrf_of(page.text)
        [job, _] = await dead_jobs(console)
        one = await vic.post("/admin/dead/retry", data={"csrf_token": token, "job_id": str(job)})
        every = await vic.post("/admin/dead/retry-all", data={"csrf_token": token})
        assert one.status_code == every.status_code == 403
        assert len(await dead_jobs(console)) == 2
        assert [a for a in (await audited(console)) if "retry" in a] == []


async def test_dead_letters_are_paged_newest_first(
    tmp_path: Path, sim: SimAppliance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dead, "PAGE_SIZE", 2)
    config = fixing_config(tmp_path, sim, two_broken(tmp_path))
    async with serving_console(config) as console, console.signed_in("vic") as vic:
        await with_dead_letters(console, sim, 2)
        ids = await dead_jobs(console)  # newest first
        seen: list[int] = []
        page = await vic.get("/admin/dead")
        for _ in range(3):
            seen += [int(i) for i in re.findall(r"<tr>\s*<td>(\d+)</td>", page.text)]
            if "Older dead letters" not in page.text:
                break
            link = page.text.split('<p><a href="')[-1].split('"')[0].replace("&amp;", "&")
            page = await vic.get(link)
        assert seen == ids
        bad = await vic.get("/admin/dead", params={"integration": "nope"})
        assert bad.status_code == 400
        assert "There is no integration of that name" in bad.text
