"""``rsbridge status``: per appliance and integration, from a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from typer.testing import CliRunner, Result

from rsbridge.cli import app
from rsbridge.engine.store import open_store
from rsbridge.engine.store.base import AttemptOutcome, Finish, IncomingEvent, JobSpec

CONFIG = """
[engine]
store = "{store}"

[[appliances]]
id = "default"
host = "appliance.example.com"
client_id = "id"
client_secret = "secret"

[[integrations]]
name = "audit"
connector = "jsonl"
settings = {{ path = "{out}" }}

[[integrations]]
name = "quiet"
connector = "jsonl"
settings = {{ path = "{out}" }}
"""


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "rsbridge.toml"
    path.write_text(
        CONFIG.format(store=tmp_path / "engine.db", out=tmp_path / "out.jsonl"), encoding="utf-8"
    )
    return path


def _fill(db: Path, now: float) -> None:
    """audit: one done, one dead (markup in its error), one in backoff, one queued; and
    jobs of an integration no longer configured."""

    async def go() -> None:
        store = open_store(str(db))
        await store.open()
        try:
            ids: list[int] = []
            for n, integration in enumerate(["audit"] * 4 + ["gone"]):
                incoming = IncomingEvent(
                    "default", "support_conference_end", "outbound", f"k{n}", lsid=f"L{n}"
                )
                result = await store.record_event(incoming, [JobSpec(integration)], now=now - 600)
                ids += result.job_ids
            finishes = [
                Finish(AttemptOutcome.DONE),
                Finish(AttemptOutcome.RETRY, run_after=now + 3600, error="503 later"),
                Finish(AttemptOutcome.DEAD, error="[bold]400[/bold] bad field"),
            ]
            for offset, finish in enumerate(finishes):
                (job,) = await store.claim("w", limit=1, lease=30, now=now - 300 + offset)
                assert await store.finish(
                    job.id, "w", finish, started_at=now - 300, now=now - 300 + offset
                )
        finally:
            await store.close()

    asyncio.run(go())


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def test_status_json_per_appliance_and_integration(tmp_path: Path) -> None:
    config = _config(tmp_path)
    now = time.time()
    _fill(tmp_path / "engine.db", now)
    result = _run("status", "--config", config, "--json")
    assert result.exit_code == 0, result.output
    rows = {r["integration"]: r for r in json.loads(result.stdout)["integrations"]}
    assert set(rows) == {"audit", "quiet", "gone"}
    audit = rows["audit"]
    assert (audit["queued"], audit["waiting"], audit["running"], audit["dead"], audit["done"]) == (
        1,
        1,
        0,
        1,
        1,
    )
    assert audit["configured"] and audit["appliance"] == "default"
    assert audit["last_success"] is not None and audit["last_success"].endswith("+00:00")
    # The newest failure: the dead letter, after the retry.
    assert audit["last_error"]["error"] == "[bold]400[/bold] bad field"
    assert 590 < audit["oldest_job_age_seconds"] < 700
    quiet = rows["quiet"]
    assert (quiet["queued"], quiet["dead"], quiet["last_success"], quiet["last_error"]) == (
        0,
        0,
        None,
        None,
    )
    assert rows["gone"]["configured"] is False and rows["gone"]["queued"] == 1


def test_status_table_shows_errors_as_text(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _fill(tmp_path / "engine.db", time.time())
    result = CliRunner().invoke(app, ["status", "--config", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[2].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "[bold]400[/bold] bad field" in lines["audit"] and "ago" in lines["audit"]
    assert "never" in lines["quiet"]
    assert "gone (not configured)" in lines


def test_status_on_an_empty_store_lists_the_configured_integrations(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _run("store", "migrate", "--config", config).exit_code == 0
    result = _run("status", "--config", config, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["integrations"]
    assert [r["integration"] for r in rows] == ["audit", "quiet"]
    assert all(r["queued"] == r["dead"] == 0 for r in rows)


def test_status_creates_no_store_where_there_is_none(tmp_path: Path) -> None:
    # A wrong [engine] store path must not be answered with an empty, new store.
    result = _run("status", "--config", _config(tmp_path))
    assert result.exit_code != 0
    assert "there is no store database at" in result.output
    assert "rsbridge store migrate" in result.output
    assert not (tmp_path / "engine.db").exists()
