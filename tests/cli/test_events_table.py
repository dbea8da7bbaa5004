"""``rsbridge events list`` on a narrow terminal: one line per job, nothing past the width,
cut cells end with an ellipsis, and the status and error columns still say what happened.

A real SQLite store, seeded through the Store API with what the workers would write.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rsbridge.appliance.events import CUSTOMER_SURVEY, END
from rsbridge.cli import app
from rsbridge.engine.store import open_store
from rsbridge.engine.store.base import AttemptOutcome, Finish, IncomingEvent, JobSpec

LONG_INTEGRATION = "servicenow-production-emea-west-primary"
LONG_ERROR = (
    "ServiceNow said HTTP 403 on POST /api/now/table/u_rs_session: ACL denies the write "
    "for user rsbridge.integration [bold]Insufficient rights[/bold]\nsecond line of the error"
)


def _seed(path: Path) -> dict[str, int]:
    """Four jobs, by name: a dead letter with a long error, a job that failed twice then
    succeeded, a skipped session and a survey retried once (queued again)."""

    async def seed() -> dict[str, int]:
        store = open_store(str(path))
        await store.open()
        jobs: dict[str, int] = {}
        try:
            for name, event, attempts in (
                ("dead", END, [("dead", LONG_ERROR)]),
                ("recovered", END, [("retry", "HTTP 503"), ("retry", "HTTP 503"), ("done", "")]),
                ("skipped", END, [("done", "skipped: session matches no ticket")]),
                ("retrying", CUSTOMER_SURVEY, [("retry", LONG_ERROR)]),
            ):
                lsid = f"{name}-{'a' * 32}"
                incoming = IncomingEvent("default", event, "outbound", name, lsid=lsid)
                [job] = (await store.record_event(incoming, [JobSpec(LONG_INTEGRATION)])).job_ids
                jobs[name] = job
                for outcome, error in attempts:
                    assert await store.claim("seed", limit=1, lease=30)
                    finish = Finish(AttemptOutcome(outcome), run_after=0, error=error or None)
                    assert await store.finish(job, "seed", finish, started_at=0)
        finally:
            await store.close()
        return jobs

    return asyncio.run(seed())


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "rsbridge.toml"
    path.write_text('[engine]\nstore = "engine.db"\n', encoding="utf-8")
    return path


def _listed(config: Path, columns: int, *args: str) -> list[str]:
    result = CliRunner().invoke(
        app, ["events", "list", "--config", str(config), *args], env={"COLUMNS": str(columns)}
    )
    assert result.exit_code == 0, result.output
    return [line.rstrip() for line in result.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("columns", [80, 100, 132])
def test_events_list_fits_the_terminal(config: Path, columns: int) -> None:
    jobs = _seed(config.parent / "engine.db")
    lines = _listed(config, columns)
    assert all(len(line) <= columns for line in lines), "\n".join(lines)
    header, *rows = lines
    # One line per job: nothing wrapped onto a second line.
    assert len(rows) == len(jobs)
    assert header.split()[:3] == ["job", "event", "integration"]
    assert header.endswith("last error")
    by_job = {int(row.split()[0]): row for row in rows}
    assert set(by_job) == set(jobs.values())

    dead = by_job[jobs["dead"]]
    # The error is cut, not wrapped, and the cut says so; Rich markup in it stays text.
    assert dead.endswith("…") and "ServiceNow" in dead and "\n" not in dead
    assert " dead " in dead and LONG_INTEGRATION not in dead
    assert by_job[jobs["retrying"]].split()[5:7] == ["queued", "1"]
    # A success clears the stale error; the failed attempts are still counted.
    recovered = by_job[jobs["recovered"]]
    assert recovered.split()[5:7] == ["done", "2"]
    assert "503" not in recovered
    skipped = by_job[jobs["skipped"]]
    assert skipped.split()[5:7] == ["skipped", "0"] and "matches" not in skipped


def test_events_list_keeps_whole_cells_on_a_wide_terminal(config: Path) -> None:
    jobs = _seed(config.parent / "engine.db")
    lines = _listed(config, 400)
    rows = {int(line.split()[0]): line for line in lines[1:]}
    dead = rows[jobs["dead"]]
    assert LONG_INTEGRATION in dead and f"dead-{'a' * 32}" in dead
    # The whole error, on one line.
    assert " ".join(LONG_ERROR.split()) in dead
    assert "customer_exit_survey_completed" in rows[jobs["retrying"]]


def test_ignored_events_fit_too(config: Path) -> None:
    async def seed() -> None:
        store = open_store(str(config.parent / "engine.db"))
        await store.open()
        try:
            for n in range(3):
                incoming = IncomingEvent(
                    "default", CUSTOMER_SURVEY, "outbound", f"i{n}", lsid=f"{n}{'b' * 40}"
                )
                await store.record_event(incoming, [])
        finally:
            await store.close()

    asyncio.run(seed())
    lines = _listed(config, 80, "--ignored")
    assert len(lines) == 4 and all(len(line) <= 80 for line in lines), lines
    assert all(line.endswith("…") for line in lines[1:])
