"""The engine commands as a user runs them.

``rsbridge check / pull / render / events`` run in this process through Typer's
CliRunner, ``rsbridge serve`` as a child process; all of them against the simulated
appliance on loopback, a SQLite store file and a TOML configuration file in tmp_path
whose client secret comes from an environment variable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from typer.testing import CliRunner, Result

from rsbridge.appliance.events import BEGIN, END, FORM_CONTENT_TYPE
from rsbridge.appliance.report_model import SupportSession
from rsbridge.cli import app
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.engine.poller import watermark_name
from rsbridge.engine.store import open_store
from rsbridge.engine.store.base import AttemptOutcome, Finish, IncomingEvent, JobSpec
from rsbridge.sim.appliance.emitter import events_for_session
from rsbridge.sim.appliance.report_xml import session_list
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from tests.conftest import SIGNING_SECRET, free_port

SECRET_VAR = "RSBRIDGE_CLI_TEST_SECRET"
"""The environment variable the configuration files take the client secret from."""

HOUR = 3600.0

ALL_DONE = re.compile(r"^processed: [1-9][0-9]* done$", re.MULTILINE)
"""The summary line of a pull whose jobs all succeeded.

It does not check the count: Worker.run_until_idle loses the outcomes of jobs that
finish while it is claiming (see test_pull_counts_every_job_it_processed).
"""


@dataclasses.dataclass
class Sim:
    """A running simulated appliance and the credentials of its full-access account."""

    state: SimApplianceState
    host: str
    client_id: str
    client_secret: str


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sim]:
    state = SimApplianceState.default(seed=5)
    account = state.accounts[0]
    monkeypatch.setenv(SECRET_VAR, account.client_secret)
    with serve_in_thread(create_app(state, rate_per_second=1000, rate_per_hour=10**6)) as url:
        yield Sim(state, url.removeprefix("http://"), account.client_id, account.client_secret)


# --- configuration files --------------------------------------------------------------


def write_config(tmp_path: Path, sim: Sim, integrations: str, *, engine: str = "") -> Path:
    """``tmp_path/rsbridge.toml``: the simulator as appliance ``default``, then ``integrations``."""
    path = tmp_path / "rsbridge.toml"
    path.write_text(
        f"""
[engine]
store = "engine.db"
backoff_base_seconds = 0.05
backoff_max_seconds = 0.2
report_wait_seconds = 30
shutdown_grace_seconds = 1
{engine}

[[appliances]]
id = "default"
host = "{sim.host}"
client_id = "{sim.client_id}"
client_secret = {{ env = "{SECRET_VAR}" }}
use_plain_http = true

[signing]
secret = "{SIGNING_SECRET}"

{integrations}
""",
        encoding="utf-8",
    )
    return path


def jsonl_integration(out: Path, *, polling: bool = False, extra: str = "") -> str:
    """A ``jsonl`` integration named ``audit`` writing to ``out`` (an absolute path).

    ``polling``: it polls for ended sessions and takes no outbound events.
    """
    events = 'outbound_events = []\npolling_events = ["support_conference_end"]' if polling else ""
    return f"""
[[integrations]]
name = "audit"
connector = "jsonl"
{events}
{extra}
association = {{ on_unmatched = "create" }}
settings = {{ path = "{out}", fsync = false }}
"""


# --- sessions, runs and results -------------------------------------------------------


def ended(session: SupportSession, ago: float) -> SupportSession:
    """``session`` moved in time so that it ended ``ago`` seconds ago."""
    assert session.start_time is not None and session.end_time is not None
    shift = datetime.now(UTC) - timedelta(seconds=ago) - session.end_time
    return dataclasses.replace(
        session, start_time=session.start_time + shift, end_time=session.end_time + shift
    )


def add_sessions(sim: Sim, seed: int, *ago: float) -> list[SupportSession]:
    """Sessions of ``SessionGenerator(seed)`` that ended ``ago`` seconds ago, in the sim."""
    generated = SessionGenerator(seed).sessions(len(ago))
    sessions = [ended(s, a) for s, a in zip(generated, ago, strict=True)]
    for session in sessions:
        sim.state.add_report(session)
    return sessions


def rsbridge(*args: str | Path, columns: int | None = None) -> Result:
    """Run ``rsbridge ARGS`` in this process (stdout and stderr kept apart).

    Without ``columns`` the output is not a terminal, as when piped into another tool.
    """
    env = {"COLUMNS": str(columns)} if columns else None
    return CliRunner().invoke(app, [str(a) for a in args], env=env)


def ok(result: Result) -> str:
    """The standard output of a run that must have succeeded."""
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    return result.stdout


def failed(result: Result) -> str:
    """The whole output, spaces normalised, of a run that must have failed with status 1."""
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    return " ".join(result.output.split())


def reports(path: Path) -> Counter[str]:
    """lsid -> session reports written to the jsonl file ``path``."""
    if not path.exists():
        return Counter()
    return Counter(d["lsid"] for d in read_deliveries(path) if d["kind"] == "session_report")


def jobs(config: Path, *args: str) -> list[dict[str, Any]]:
    """``rsbridge events list --json ARGS``, parsed (a JSON object per line)."""
    out = ok(rsbridge("events", "list", "--config", config, "--json", *args))
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def watermark(tmp_path: Path, integration: str = "audit") -> float | None:
    async def read() -> float | None:
        store = open_store(str(tmp_path / "engine.db"))
        await store.open()
        try:
            return await store.get_watermark(watermark_name(integration))
        finally:
            await store.close()

    return asyncio.run(read())


# --- rsbridge check -------------------------------------------------------------------


def verdicts(output: str) -> dict[str, str]:
    """``{"appliance default": "ok", ...}`` from the output of ``rsbridge check``."""
    found = re.findall(r"^(ok|FAIL) +((?:appliance|integration) \S+):", output, re.MULTILINE)
    return {target: mark for mark, target in found}


def test_check_says_ok_for_the_simulator_and_a_jsonl_file(tmp_path: Path, sim: Sim) -> None:
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    result = rsbridge("check", "--config", config)
    out = ok(result)
    assert out.startswith("ok  configuration ")
    assert verdicts(out) == {"appliance default": "ok", "integration audit": "ok"}
    assert "FAIL" not in out
    assert sim.client_secret not in result.output


def test_check_warns_of_an_intake_open_to_anyone(tmp_path: Path, sim: Sim) -> None:
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    out = ok(rsbridge("check", "--config", config))
    assert re.search(r"^warn appliance default: no outbound_event_token and", out, re.M)
    assert "accepted_addresses is ALL" in " ".join(out.split())
    assert verdicts(out) == {"appliance default": "ok", "integration audit": "ok"}
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(
            "use_plain_http = true", 'use_plain_http = true\noutbound_event_token = "tk1"'
        ),
        encoding="utf-8",
    )
    out = ok(rsbridge("check", "--config", config))
    assert not re.search(r"^warn ", out, re.MULTILINE)
    assert "tk1" not in out


def test_check_fails_on_a_wrong_client_secret_without_printing_it(
    tmp_path: Path, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "not-the-secret-" + sim.client_secret[::-1]
    monkeypatch.setenv(SECRET_VAR, wrong)
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    result = rsbridge("check", "--config", config)
    failed(result)
    assert verdicts(result.stdout) == {"appliance default": "FAIL", "integration audit": "ok"}
    assert wrong not in result.output
    assert sim.client_secret not in result.output


@pytest.mark.parametrize(
    ("setting", "field"),
    [
        ("[engine]\nworkers = 0", "engine.workers"),
        ("", "integrations.0.polling_events"),
    ],
)
def test_check_names_the_field_of_an_invalid_configuration(
    tmp_path: Path, sim: Sim, setting: str, field: str
) -> None:
    integration = jsonl_integration(
        tmp_path / "out.jsonl",
        extra="" if setting else 'polling_events = ["support_conference_begin"]',
    )
    config = write_config(tmp_path, sim, integration)
    if setting:
        # A second [engine] table is a TOML error; append the setting to the first one.
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[engine]", setting, 1), encoding="utf-8")
    result = rsbridge("check", "--config", config)
    output = failed(result)
    assert f"{field}:" in output
    assert "invalid configuration" in output
    assert result.stdout == ""


# --- rsbridge pull --------------------------------------------------------------------


@pytest.fixture
def polling(tmp_path: Path, sim: Sim) -> tuple[Path, Path, list[SupportSession]]:
    """(configuration, jsonl file, sessions): a polling integration and three sessions
    that ended in the last hours, plus (last) one that ended two days ago."""
    out = tmp_path / "out.jsonl"
    config = write_config(tmp_path, sim, jsonl_integration(out, polling=True))
    sessions = add_sessions(sim, 21, 600, 1 * HOUR, 3 * HOUR, 48 * HOUR)
    return config, out, sessions


def test_pull_queues_and_processes_what_ended_since_the_watermark(
    tmp_path: Path, polling: tuple[Path, Path, list[SupportSession]]
) -> None:
    config, out, sessions = polling
    *recent, old = sessions

    first = ok(rsbridge("pull", "--config", config))
    assert "audit: 3 sessions listed, 3 new events queued" in first
    assert ALL_DONE.search(first)
    assert reports(out) == Counter(s.lsid for s in recent)
    mark = watermark(tmp_path)
    assert mark is not None and abs(mark - time.time()) < 60

    again = ok(rsbridge("pull", "--config", config))
    assert "0 new events queued" in again
    assert "processed: nothing" in again
    assert reports(out) == Counter(s.lsid for s in recent)

    # The 24 h lookback missed the two-day-old session; a backfill finds it, once.
    backfill = ok(rsbridge("pull", "--config", config, "--since", "3d"))
    assert "audit: 4 sessions listed, 1 new events queued" in backfill
    assert ALL_DONE.search(backfill)
    assert reports(out) == Counter(s.lsid for s in sessions)
    assert old.lsid in reports(out)


def test_pull_counts_every_job_it_processed(
    polling: tuple[Path, Path, list[SupportSession]],
) -> None:
    config, _, _ = polling
    assert "processed: 3 done" in ok(rsbridge("pull", "--config", config))


def test_pull_since_leaves_the_watermark_alone(
    tmp_path: Path, polling: tuple[Path, Path, list[SupportSession]]
) -> None:
    config, _, sessions = polling
    ok(rsbridge("pull", "--config", config))
    mark = watermark(tmp_path)
    ok(rsbridge("pull", "--config", config, "--since", "3d", "--no-work"))
    assert watermark(tmp_path) == mark
    assert [j["lsid"] for j in jobs(config, "--status", "queued")] == [sessions[-1].lsid]


def test_pull_no_work_only_queues(polling: tuple[Path, Path, list[SupportSession]]) -> None:
    config, out, sessions = polling
    recent = sessions[:3]
    queued = ok(rsbridge("pull", "--config", config, "--no-work"))
    assert "3 new events queued" in queued
    assert "processed" not in queued
    assert not out.exists()
    listed = jobs(config)
    assert {j["status"] for j in listed} == {"queued"}
    assert sorted(j["lsid"] for j in listed) == sorted(s.lsid for s in recent)

    # The next pull queues nothing new but processes what is waiting.
    worked = ok(rsbridge("pull", "--config", config))
    assert "0 new events queued" in worked
    assert ALL_DONE.search(worked)
    assert reports(out) == Counter(s.lsid for s in recent)


def test_pull_without_a_polling_integration_fails(tmp_path: Path, sim: Sim) -> None:
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    assert "no enabled polling integration" in failed(rsbridge("pull", "--config", config))


def test_pull_refuses_a_bad_since(polling: tuple[Path, Path, list[SupportSession]]) -> None:
    config, _, _ = polling
    result = rsbridge("pull", "--config", config, "--since", "yesterday")
    assert result.exit_code == 2, result.output
    assert "3d" in result.output


# --- rsbridge events ------------------------------------------------------------------


def test_events_list_as_a_table_and_as_json(
    polling: tuple[Path, Path, list[SupportSession]],
) -> None:
    config, _, sessions = polling
    recent = sessions[:3]
    ok(rsbridge("pull", "--config", config))

    table = ok(rsbridge("events", "list", "--config", config, columns=200))
    for header in ("job", "event", "integration", "type", "lsid", "status", "failed"):
        assert header in table
    # The table names session events without their "support_conference_" prefix.
    rows = [line for line in table.splitlines() if " end " in line]
    assert len(rows) == 3
    for session in recent:
        [row] = [r for r in rows if session.lsid in r]
        assert "audit" in row and "done" in row

    listed = jobs(config)
    assert [j["job"] for j in listed] == sorted((j["job"] for j in listed), reverse=True)
    assert sorted(j["lsid"] for j in listed) == sorted(s.lsid for s in recent)
    for job in listed:
        assert job["status"] == "done" and job["integration"] == "audit"
        assert job["type"] == END and job["attempts"] == 0 and job["error"] is None

    assert jobs(config, "--status", "dead") == []
    assert [j["lsid"] for j in jobs(config, "--lsid", recent[1].lsid)] == [recent[1].lsid]
    assert len(jobs(config, "--limit", "2")) == 2
    assert "unknown status" in failed(
        rsbridge("events", "list", "--config", config, "--status", "lost")
    )


def test_events_show_gives_the_attempts_and_the_effects(
    polling: tuple[Path, Path, list[SupportSession]],
) -> None:
    config, out, sessions = polling
    ok(rsbridge("pull", "--config", config))
    session = sessions[0]
    [job] = jobs(config, "--lsid", session.lsid)
    [line] = [
        d
        for d in read_deliveries(out)
        if d["kind"] == "session_report" and d["lsid"] == session.lsid
    ]
    ticket = line["ticket"]["id"]

    shown = ok(rsbridge("events", "show", str(job["job"]), "--config", config))
    assert f"job {job['job']}: {END} for audit, status done, 0 failed attempts" in shown
    assert f"event {job['event']}: from poll at " in shown
    assert f"lsid = {session.lsid}" in shown
    assert re.search(r"^  attempt 1 \S+ \S+ done", shown, re.MULTILINE), shown
    assert f"effect session_report: ticket {ticket} ref " in shown
    assert f"effect ticket: ticket {ticket} ref " in shown

    assert "no job 999" in failed(rsbridge("events", "show", "999", "--config", config))


def test_events_show_prints_control_characters_as_visible_text(tmp_path: Path, sim: Sim) -> None:
    """Outbound event variables are whatever was posted (a customer sets the external
    key): an escape sequence or a line break in them is shown, not acted on by the
    operator's terminal, and cannot fake a line of the output."""
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    hostile = "\x1b]0;owned\x07\x1b[2J\r\n  attempt 9 done:\u202egnp.exe\x9b"

    async def record() -> int:
        store = open_store(str(tmp_path / "engine.db"))
        await store.open()
        try:
            form = (("event", END), ("lsid", "L-1"), ("external_key", hostile))
            incoming = IncomingEvent("default", END, "outbound", "k1", lsid="L-1", form=form)
            [job_id] = (await store.record_event(incoming, [JobSpec("audit")])).job_ids
            return job_id
        finally:
            await store.close()

    job_id = asyncio.run(record())
    shown = ok(rsbridge("events", "show", str(job_id), "--config", config))
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]", shown), repr(shown)
    assert "external_key = \u241b]0;owned\u2407\u241b[2J\u240d\u240a  attempt 9 done:" in shown
    assert "\\u202egnp.exe\\u009b" in shown
    assert not re.search(r"^  attempt 9", shown, re.MULTILINE)


def test_events_retry_requeues_a_dead_letter_and_refuses_other_jobs(
    tmp_path: Path, sim: Sim
) -> None:
    # The jsonl file's directory does not exist: a permanent error, a dead letter at once.
    # Its name looks like Rich markup, which must be printed as is.
    out = tmp_path / "[bold]missing" / "out.jsonl"
    config = write_config(tmp_path, sim, jsonl_integration(out, polling=True))
    [session] = add_sessions(sim, 33, 900)
    checked = rsbridge("check", "--config", config)
    # Rich folds a long path at the console's width: compare without the spaces.
    assert "[bold]missing" in failed(checked).replace(" ", "")
    assert verdicts(checked.stdout) == {"appliance default": "ok", "integration audit": "FAIL"}

    assert re.search(r"^processed: 1 dead$", ok(rsbridge("pull", "--config", config)), re.M)
    [dead] = jobs(config, "--status", "dead")
    assert dead["lsid"] == session.lsid and dead["attempts"] == 1
    assert "[bold]missing" in dead["error"]
    shown = ok(rsbridge("events", "show", str(dead["job"]), "--config", config))
    assert re.search(r"^  attempt 1 \S+ \S+ dead: jsonl: .*\[bold\]missing", shown, re.M), shown

    assert "re-queued 1 job(s)" in ok(rsbridge("events", "retry", str(dead["job"]), "-c", config))
    [queued] = jobs(config)
    assert (queued["job"], queued["status"], queued["attempts"]) == (dead["job"], "queued", 0)
    # Only dead letters: a queued job is refused.
    refused = failed(rsbridge("events", "retry", str(dead["job"]), "--config", config))
    assert f"not dead letters (or unknown): {dead['job']}" in refused

    # Fixed, the retried job goes through; a done job is refused too.
    out.parent.mkdir()
    assert ALL_DONE.search(ok(rsbridge("pull", "--config", config)))
    assert reports(out) == Counter([session.lsid])
    assert [j["status"] for j in jobs(config)] == ["done"]
    failed(rsbridge("events", "retry", str(dead["job"]), "--config", config))
    failed(rsbridge("events", "retry", "999", "--config", config))


def test_events_retry_requeues_the_dead_among_refused_jobs(tmp_path: Path, sim: Sim) -> None:
    out = tmp_path / "missing" / "out.jsonl"
    config = write_config(tmp_path, sim, jsonl_integration(out, polling=True))
    add_sessions(sim, 34, 900, 1000)
    ok(rsbridge("pull", "--config", config))
    first, second = (j["job"] for j in jobs(config, "--status", "dead"))
    ok(rsbridge("events", "retry", str(first), "--config", config))
    result = rsbridge("events", "retry", str(first), str(second), "--config", config)
    assert f"not dead letters (or unknown): {first}" in failed(result)
    # The refusal does not hide that the other one was re-queued.
    assert "re-queued 1 job(s)" in result.stdout
    assert {j["status"] for j in jobs(config)} == {"queued"}


def test_events_list_says_skipped_not_error(tmp_path: Path, sim: Sim) -> None:
    """A session the integration skips (no ticket, by its configuration) is ``skipped``
    with its reason as a note, not ``done`` with an error."""
    skip = jsonl_integration(tmp_path / "out.jsonl", polling=True).replace(
        'on_unmatched = "create"', 'on_unmatched = "skip"'
    )
    config = write_config(tmp_path, sim, skip)
    add_sessions(sim, 36, 900, 1000, 1100)
    ok(rsbridge("pull", "--config", config))
    listed = jobs(config)
    skipped = [j for j in listed if j["status"] == "skipped"]
    assert skipped, listed
    for job in skipped:
        assert job["error"] is None and job["note"].startswith("skipped: ")
    table = ok(rsbridge("events", "list", "--config", config, columns=200))
    assert "skipped" in table and "failed" in table


def test_events_retry_dead_requeues_the_dead_letters_that_match(tmp_path: Path, sim: Sim) -> None:
    """After an outage: every dead letter at once, or one integration's, or recent ones."""
    audit = jsonl_integration(tmp_path / "missing" / "a.jsonl", polling=True)
    other = jsonl_integration(tmp_path / "missing" / "b.jsonl", polling=True)
    config = write_config(tmp_path, sim, audit + other.replace('"audit"', '"other"'))
    add_sessions(sim, 35, 900, 1000)
    ok(rsbridge("pull", "--config", config))
    dead = jobs(config, "--status", "dead")
    assert sorted(j["integration"] for j in dead) == ["audit", "audit", "other", "other"]

    def retry(*args: str) -> Result:
        return rsbridge("events", "retry", "--config", config, *args)

    assert "name dead job ids, or give --dead" in failed(retry())
    assert "name dead job ids, or give --dead" in failed(retry("--dead", str(dead[0]["job"])))
    assert "use them with --dead" in failed(retry(str(dead[0]["job"]), "--integration", "audit"))
    assert "no integration 'nope'" in failed(retry("--dead", "--integration", "nope"))
    # Nothing died after tomorrow.
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    assert "re-queued 0 job(s)" in ok(retry("--dead", "--since", tomorrow))
    assert len(jobs(config, "--status", "dead")) == 4

    assert "re-queued 2 job(s)" in ok(retry("--dead", "--integration", "other", "--since", "1h"))
    assert {(j["integration"], j["status"]) for j in jobs(config)} == {
        ("audit", "dead"),
        ("other", "queued"),
    }
    assert "re-queued 2 job(s)" in ok(retry("--dead"))
    assert {j["status"] for j in jobs(config)} == {"queued"}
    assert "re-queued 0 job(s)" in ok(retry("--dead"))


def test_events_replay_completes_without_writing_twice(
    polling: tuple[Path, Path, list[SupportSession]],
) -> None:
    config, out, sessions = polling
    ok(rsbridge("pull", "--config", config))
    before = out.read_bytes()
    [job] = jobs(config, "--lsid", sessions[0].lsid)

    replayed = ok(rsbridge("events", "replay", str(job["event"]), "--config", config))
    [again] = [j for j in jobs(config, "--lsid", sessions[0].lsid) if j["job"] != job["job"]]
    assert f"queued job(s) {again['job']}" in replayed
    assert again["event"] == job["event"] and again["status"] == "queued"

    assert ALL_DONE.search(ok(rsbridge("pull", "--config", config)))
    assert {j["status"] for j in jobs(config)} == {"done"}
    assert out.read_bytes() == before
    assert reports(out) == Counter(s.lsid for s in sessions[:3])

    assert "no event 999" in failed(rsbridge("events", "replay", "999", "--config", config))


def seed_store(path: Path, *finished: tuple[str, float, str]) -> None:
    """Events (key, days ago, "done" / "dead" / "ignored") finished when received."""

    async def seed() -> None:
        store = open_store(str(path))
        await store.open()
        try:
            for key, days_ago, outcome in finished:
                at = time.time() - days_ago * 86400
                incoming = IncomingEvent("default", END, "outbound", key, lsid=f"L-{key}")
                specs = [] if outcome == "ignored" else [JobSpec("audit")]
                result = await store.record_event(incoming, specs, now=at)
                for job_id in result.job_ids:
                    assert await store.claim("seed", limit=1, lease=30, now=at)
                    finish = Finish(AttemptOutcome(outcome), error="x")
                    assert await store.finish(job_id, "seed", finish, started_at=at, now=at)
        finally:
            await store.close()

    asyncio.run(seed())


def test_events_prune_removes_finished_events_past_their_age(tmp_path: Path, sim: Sim) -> None:
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    seed_store(
        tmp_path / "engine.db",
        ("old-done", 40, "done"),
        ("old-ignored", 31, "ignored"),
        ("old-dead", 40, "dead"),
        ("new-done", 2, "done"),
        ("new-dead", 2, "dead"),
    )
    dry = ok(rsbridge("events", "prune", "--config", config, "--dry-run"))
    assert "finished events older than 30 days; dead letters kept; ledger entries kept" in dry
    assert "would remove 2 events, 1 jobs, 1 attempts, 0 ledger entries" in dry
    assert len(jobs(config)) == 4  # nothing removed

    removed = ok(rsbridge("events", "prune", "--config", config))
    assert "removed 2 events, 1 jobs, 1 attempts, 0 ledger entries" in removed
    assert sorted(j["status"] for j in jobs(config)) == ["dead", "dead", "done"]

    # Cleaning up dead letters: given their own age, on the command line.
    removed = ok(rsbridge("events", "prune", "-c", config, "--dead-older-than", "7d"))
    assert "dead letters older than 7 days" in removed
    assert "removed 1 events, 1 jobs, 1 attempts" in removed
    removed = ok(rsbridge("events", "prune", "-c", config, "--older-than", "36h"))
    assert "finished events older than 1.5 days" in removed
    assert "removed 1 events" in removed
    assert [j["status"] for j in jobs(config)] == ["dead"]


def test_events_prune_refuses_an_unreadable_age(tmp_path: Path, sim: Sim) -> None:
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    result = rsbridge("events", "prune", "-c", config, "--older-than", "30")
    assert result.exit_code == 2
    assert "use an age like 30d, 12h or 90m" in " ".join(result.output.split())


# --- rsbridge render ------------------------------------------------------------------


@pytest.fixture
def report_file(tmp_path: Path) -> tuple[Path, SupportSession]:
    session = next(s for s in SessionGenerator(44).sessions(20) if s.events)
    path = tmp_path / "report.xml"
    path.write_bytes(session_list([session]))
    return path, session


def test_render_a_saved_report_as_text_html_and_one_part(
    report_file: tuple[Path, SupportSession],
) -> None:
    path, session = report_file
    text = ok(rsbridge("render", "--file", path))
    assert text.startswith(f"Remote Support session {session.lsid}\n")
    assert "Chat transcript" in text
    assert "<" not in text.split("\n", 1)[0]

    html = ok(rsbridge("render", "--file", path, "--html"))
    assert f"<h2>Remote Support session {session.lsid}</h2>" in html

    chat = ok(rsbridge("render", "--file", path, "--part", "chat"))
    assert chat.startswith("Chat transcript")
    assert "Remote Support session" not in chat
    assert chat.strip() in text

    unknown = failed(rsbridge("render", "--file", path, "--part", "bogus"))
    assert "no part 'bogus'" in unknown and "chat" in unknown
    assert "exactly one of --lsid or --file" in failed(rsbridge("render"))
    empty = path.with_name("empty.xml")
    empty.write_bytes(session_list([]))
    assert f"{empty} holds no session report" in failed(rsbridge("render", "--file", empty))


def test_render_fetches_a_session_from_the_appliance(tmp_path: Path, sim: Sim) -> None:
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    [session] = add_sessions(sim, 55, 300)
    text = ok(rsbridge("render", "--lsid", session.lsid, "--config", config))
    assert text.startswith(f"Remote Support session {session.lsid}\n")
    missing = failed(rsbridge("render", "--lsid", "no-such-session", "--config", config))
    assert "no report for session no-such-session" in missing


def test_a_broken_template_override_is_named_with_its_line(
    tmp_path: Path, sim: Sim, report_file: tuple[Path, SupportSession]
) -> None:
    path, _ = report_file
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "chat.txt").write_text("Chat\n{% for e in events %}\n{{ e. }}\n")
    integration = jsonl_integration(tmp_path / "out.jsonl", extra='templates = "tpl"')
    config = write_config(tmp_path, sim, integration)

    broken = failed(
        rsbridge("render", "--file", path, "--config", config, "--integration", "audit")
    )
    assert "chat.txt line 3" in broken
    # Without the integration the defaults render.
    ok(rsbridge("render", "--file", path, "--config", config))
    # The connection test finds it too.
    result = rsbridge("check", "--config", config)
    assert "chat.txt line 3" in failed(result)
    assert verdicts(result.stdout)["integration audit"] == "FAIL"
    (tmp_path / "tpl" / "chat.txt").unlink()
    (tmp_path / "tpl").rmdir()
    gone = failed(rsbridge("render", "--file", path, "--config", config, "--integration", "audit"))
    assert f"template directory {tmp_path / 'tpl'} does not exist" in gone
    assert "no integration named nope" in failed(
        rsbridge("render", "--file", path, "--config", config, "--integration", "nope")
    )


# --- rsbridge serve -------------------------------------------------------------------


def test_serve_answers_health_processes_events_and_stops_on_sigterm(
    tmp_path: Path, sim: Sim
) -> None:
    out = tmp_path / "out.jsonl"
    token = "cli-test-status-token"
    config = write_config(
        tmp_path,
        sim,
        f'{jsonl_integration(out)}\n[actions]\ntokens = ["{token}"]',
        engine="header_timeout_seconds = 0.5",
    )
    # An external key that looks like Rich markup, to be shown as is.
    session = ended(
        dataclasses.replace(SessionGenerator(66).session(), external_key="[/b]KEY-[bold]7"), 120
    )
    sim.state.add_report(session)
    forms = {e.event: urlencode(e.form()) for e in events_for_session(session, "default")}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(  # noqa: S603 (the test's own child)
            [
                *(sys.executable, "-m", "rsbridge", "serve", "--config", str(config)),
                *("--port", str(port), "--log-level", "warning"),
            ],
            cwd=tmp_path,
            env=dict(os.environ),
            stdout=sink,
            stderr=sink,
        )
    try:
        with httpx.Client(base_url=base, timeout=5) as http:
            health = None
            for _ in range(1200):
                try:
                    health = http.get("/health")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, log.read_text(errors="replace")
                    time.sleep(0.025)
            assert health is not None and health.status_code == 200, log.read_text()
            assert health.json() == {"status": "ok"}
            # [engine] header_timeout_seconds: a connection that sends nothing is let go.
            with socket.create_connection(("127.0.0.1", port), timeout=15) as silent:
                assert silent.recv(64).startswith(b"HTTP/1.1 408 ")
            authorized = {"Authorization": f"Bearer {token}"}
            body = http.get("/status", headers=authorized).json()
            assert body["status"] == "ok"
            assert {"queued": 0, "running": 0, "done": 0, "dead": 0}.items() <= body["jobs"].items()
            assert body["tasks"] == {"worker": True, "pruner": True}

            headers = {"Content-Type": FORM_CONTENT_TYPE}
            answer = http.post("/ERSPost?appliance=default", content=forms[END], headers=headers)
            assert (answer.status_code, answer.text) == (200, "OK")
            answer = http.post("/ERSPost?appliance=default", content=forms[BEGIN], headers=headers)
            assert (answer.status_code, answer.text) == (200, "ignored")

            deadline = time.monotonic() + 15
            while not reports(out) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert reports(out) == Counter([session.lsid]), log.read_text()
            # The delivery is written before its job is marked done: wait for both.
            for _ in range(300):
                counts = http.get("/status", headers=authorized).json()["jobs"]
                if counts["done"] == 1:
                    break
                time.sleep(0.05)
            assert (counts["done"], counts["events"], counts["ignored"]) == (1, 2, 1)

        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
        assert code == 0, log.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # What serve recorded, as the events commands show it.
    [ignored] = [
        json.loads(line)
        for line in ok(rsbridge("events", "list", "--config", config, "--ignored", "--json"))
        .strip()
        .splitlines()
    ]
    assert (ignored["type"], ignored["lsid"]) == (BEGIN, session.lsid)
    [done] = jobs(config)
    assert (done["type"], done["lsid"], done["status"]) == (END, session.lsid, "done")
    shown = ok(rsbridge("events", "show", str(done["job"]), "--config", config))
    assert "from outbound at " in shown
    assert "    external_key = [/b]KEY-[bold]7\n" in shown


def test_serve_refuses_an_unknown_log_level(tmp_path: Path, sim: Sim) -> None:
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    result = rsbridge("serve", "--config", config, "--log-level", "verbose")
    assert result.exit_code == 2, result.output
    assert "verbose" in result.output


def test_serve_and_check_report_a_missing_ca_file_before_anything_starts(
    tmp_path: Path, sim: Sim
) -> None:
    config = write_config(tmp_path, sim, jsonl_integration(tmp_path / "out.jsonl"))
    text = config.read_text().replace(
        "use_plain_http = true", 'use_plain_http = true\nca_file = "ca.pem"'
    )
    config.write_text(text)
    expected = f"the CA file '{tmp_path / 'ca.pem'}' does not exist"

    # Rich folds a long temporary path at the console's width: compare without spaces.
    def squeezed(text: str) -> str:
        return text.replace(" ", "")

    served = failed(rsbridge("serve", "--config", config, "--port", "1"))
    assert squeezed(f"appliance default: {expected}") in squeezed(served)
    assert "Traceback" not in served

    checked = failed(rsbridge("check", "--config", config))
    assert squeezed(f"FAIL appliance default: {expected}") in squeezed(checked)
    assert verdicts(rsbridge("check", "--config", config).stdout)["integration audit"] == "ok"
