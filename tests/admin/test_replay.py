"""``/admin/replay``: a session's events queued again for one integration."""

from __future__ import annotations

from pathlib import Path

import pytest

from rsbridge.engine.store.base import JobFilter, JobStatus
from tests.admin.conftest import csrf_of, serving_console
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


async def test_replay_completes_what_is_missing_and_writes_nothing_twice(
    tmp_path: Path, sim: SimAppliance, caplog: pytest.LogCaptureFixture
) -> None:
    watch_audit(caplog)
    done, late = tmp_path / "done" / "out.jsonl", tmp_path / "late" / "out.jsonl"
    done.parent.mkdir()
    config = fixing_config(
        tmp_path, sim, [jsonl_integration("audit", done), jsonl_integration("other", late)]
    )
    async with serving_console(config) as console, console.signed_in("olga") as olga:
        [session, bystander] = ended(51, 2, 120, "audit")
        for s in (session, bystander):
            sim.state.add_report(s)
        await emit(console.url, [session, bystander])
        store = console.engine.store

        async def settled() -> bool:
            jobs = await store.list_jobs(JobFilter(limit=50))
            return len(jobs) == 4 and all(
                j.status in (JobStatus.DONE, JobStatus.DEAD) for j in jobs
            )

        await until(settled)
        assert delivered(done) == {session.lsid: 1, bystander.lsid: 1}
        before = done.read_bytes()

        page = await olga.get(
            "/admin/replay",
            params={"appliance_id": "default", "lsid": session.lsid, "integration": "other"},
        )
        assert "<h1>Replay</h1>" in page.text
        assert f'value="{session.lsid}"' in page.text
        assert '<button type="submit">Replay</button>' in page.text
        token = csrf_of(page.text)

        # "other" could not write; mended, the session is replayed into it.
        late.parent.mkdir()
        answer = await olga.post(
            "/admin/replay",
            data={
                "csrf_token": token,
                "appliance_id": "default",
                "lsid": session.lsid,
                "integration": "other",
            },
        )
        assert answer.status_code == 303
        assert "notice=replayed&count=1" in answer.headers["location"]
        shown = await olga.get(answer.headers["location"])
        assert "Replay queued: 1 job(s)." in shown.text
        await drained(console.engine)
        assert delivered(late) == {session.lsid: 1}  # only the session replayed

        # Into "audit", which has it already: the job runs, the file stays as it was.
        again = await olga.post(
            "/admin/replay",
            data={
                "csrf_token": token,
                "appliance_id": "default",
                "lsid": session.lsid,
                "integration": "audit",
            },
        )
        assert "notice=replayed&count=1" in again.headers["location"]
        await drained(console.engine)
        assert done.read_bytes() == before
        replays = await store.list_jobs(JobFilter(lsid=session.lsid, integration="audit"))
        assert [j.status for j in replays] == [JobStatus.DONE, JobStatus.DONE]

        # A session the store has never seen: nothing to replay.
        unknown = await olga.post(
            "/admin/replay",
            data={
                "csrf_token": token,
                "appliance_id": "default",
                "lsid": "no-such-lsid",
                "integration": "audit",
            },
        )
        assert "notice=nothing-to-replay" in unknown.headers["location"]
        lines = await audited(console)
        assert any(
            f"olga replay session default/{session.lsid} into other 1 job(s) queued" in a
            for a in lines
        )
        assert any("no-such-lsid into audit 0 job(s) queued" in a for a in lines)

        # Mistakes are answered on the form, and nothing is queued.
        count = len(await store.list_jobs(JobFilter(limit=50)))
        for wrong in ({"integration": "nope"}, {"appliance_id": "elsewhere"}, {"lsid": ""}):
            data = {
                "csrf_token": token,
                "appliance_id": "default",
                "lsid": session.lsid,
                "integration": "audit",
                **wrong,
            }
            refused = await olga.post("/admin/replay", data=data)
            assert refused.status_code == 400
        assert len(await store.list_jobs(JobFilter(limit=50))) == count


async def test_a_viewer_cannot_replay(tmp_path: Path, sim: SimAppliance) -> None:
    config = fixing_config(tmp_path, sim, [jsonl_integration("audit", tmp_path / "o.jsonl")])
    async with serving_console(config) as console, console.signed_in("vic") as vic:
        page = await vic.get("/admin/replay")
        assert page.status_code == 200
        assert '<button type="submit">Replay</button>' not in page.text
        answer = await vic.post(
            "/admin/replay",
            data={
                "csrf_token": csrf_of(page.text),
                "appliance_id": "default",
                "lsid": "x",
                "integration": "audit",
            },
        )
        assert answer.status_code == 403
