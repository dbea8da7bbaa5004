"""Rehearsal without an appliance: live sessions played on the simulated appliance (its
control API and ``rsbridge rehearse``) reach a running engine as the appliance's would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from rsbridge.cli import app
from rsbridge.connectors.jsonl import read_deliveries
from rsbridge.engine.runtime import Engine
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient
from rsbridge.sim.appliance.rehearsal import Rehearsal
from rsbridge.sim.appliance.scenario_file import load_scenario
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.web.serve import serving

from .conftest import SimAppliance, drained, engine_config, running


@dataclass
class Stage:
    """A simulated appliance with its control API, and the engine its events go to."""

    sim: str
    engine: Engine
    state: SimApplianceState
    emitter: OutboundEventEmitter
    deliveries: Path


@asynccontextmanager
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    state = SimApplianceState.default(seed=6)
    emitter = OutboundEventEmitter([])
    rehearsal = Rehearsal(state, emitter)
    sim_app = create_app(state, rate_per_second=1000, rate_per_hour=10**6, rehearsal=rehearsal)
    async with serving(sim_app) as sim_url:
        account = state.accounts[0]
        sim = SimAppliance(
            state, sim_url.removeprefix("http://"), account.client_id, account.client_secret
        )
        async with running(engine_config(tmp_path, sim)) as (engine, url):
            emitter.add(Recipient(f"{url}/ERSPost?appliance=default", retry_interval=0.05))
            yield Stage(sim_url, engine, state, emitter, tmp_path / "deliveries.jsonl")


async def rehearse(*args: str | Path) -> Result:
    """``rsbridge rehearse ARGS`` in a thread: the simulator answers on this loop."""
    argv = ["rehearse", *map(str, args)]
    return await asyncio.to_thread(CliRunner().invoke, app, argv)


async def ok(*args: str | Path) -> str:
    result = await rehearse(*args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


async def settled(s: Stage) -> None:
    """Every queued outbound event delivered, then every job done."""
    for _ in range(200):
        if s.emitter.queued == 0:
            break
        await asyncio.sleep(0.05)
    assert s.emitter.queued == 0 and s.emitter.dropped == 0
    await drained(s.engine)


def by_kind(path: Path, lsid: str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in read_deliveries(path):
        if record.get("lsid") == lsid or (record.get("key") or "").startswith(lsid):
            found.setdefault(record["kind"], []).append(record)
    return found


async def test_a_session_played_step_by_step_lands_with_its_chat_and_surveys(
    tmp_path: Path,
) -> None:
    async with stage(tmp_path) as s:
        sim = ("--sim", s.sim)
        key = await ok("key", *sim, "--external-key", "INC0010001", "--custom", "ticket_id=INC1")
        assert key.isdigit() and len(key) == 7
        lsid = await ok("start", key, *sim, "--customer", "Ann Example")
        assert s.state.active_sessions[lsid].custom["external_key"] == "INC0010001"
        # The live session's report names its customer (auto-create on join reads it).
        [live] = [r for r in s.state.report_sessions() if r.lsid == lsid]
        assert live.primary_customer is not None
        assert live.primary_customer.name == "Ann Example"
        await ok("join", lsid, "--rep", "jsmith", *sim)
        await ok("chat", lsid, "My printer is jammed [bold]", *sim)
        await ok("chat", lsid, "Let me look", "--from", "rep", *sim)
        await ok("note", lsid, "Cleared the paper path", *sim)
        await ok("file", lsid, "driver.zip", "--size", "1200", *sim)
        await ok("survey", lsid, "customer", "rating=5", *sim)
        await ok("end", lsid, *sim)
        # A late representative survey, after the end, as the appliance allows.
        await ok("survey", lsid, "rep", "task_number=INC0010001", *sim)
        await settled(s)

        kinds = by_kind(s.deliveries, lsid)
        [report] = kinds["session_report"]
        text = report["text"]
        for expected in ("My printer is jammed [bold]", "Let me look", "Cleared the paper path"):
            assert expected in text
        assert "driver.zip" in text
        assert sorted(r["survey"]["kind"] for r in kinds["survey"]) == ["customer", "rep"]
        assert report["session"]["external_key"] == "INC0010001"
        # The appliance's report has it too: the Reporting API serves the ended session.
        [stored] = [r for r in s.state.report_sessions() if r.lsid == lsid]
        assert stored.end_time is not None and len(stored.rep_surveys) == 1

        shown = await ok("show", lsid, *sim)
        assert '"ended": true' in shown and "/ERSPost" in shown
        assert "appliance=default" not in shown  # a recipient URL's query may hold a token


async def test_a_scenario_file_plays_a_day_of_sessions(tmp_path: Path) -> None:
    scenario = tmp_path / "day.toml"
    scenario.write_text(
        """
[[sessions]]
external_key = "INC0010002"
customer = "Bo"
repeat = 3
steps = [
  { join = "jsmith" },
  { chat = "Hello", from = "customer" },
  { survey = "customer", answers = { rating = "4" } },
]

[[sessions]]
customer = "Cy"
steps = [{ join = "admin" }, { note = "Jump session" }, { end = true }]
""",
        encoding="utf-8",
    )
    async with stage(tmp_path) as s:
        played = (await ok("play", scenario, "--sim", s.sim)).split()
        assert len(played) == len(set(played)) == 4
        await settled(s)
        reports = [r for r in read_deliveries(s.deliveries) if r["kind"] == "session_report"]
        assert sorted(r["lsid"] for r in reports) == sorted(played)
        surveys = [r for r in read_deliveries(s.deliveries) if r["kind"] == "survey"]
        assert len(surveys) == 3


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[[sessions]]\nsteps = [{ dance = 1 }]", "session 1, step 1: give exactly one of"),
        ("[[sessions]]\nsteps = [{ chat = 'a', loud = true }]", "chat takes no loud"),
        ("[[sessions]]\nrepeat = 0", "repeat must be a whole number"),
        ("[[sessions]]\nsteps = [{ end = true }, { note = 'x' }]", "only the last step may end"),
        ("sessions = 3", "no [[sessions]]"),
        ("[[sessions]\n", "not valid TOML"),
    ],
)
def test_a_broken_scenario_file_is_refused_before_anything_is_played(
    tmp_path: Path, content: str, message: str
) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text(content, encoding="utf-8")
    # Port 9 (discard) is never a simulator: a refusal must come before any call.
    result = CliRunner().invoke(
        app, ["rehearse", "play", str(scenario), "--sim", "http://127.0.0.1:9"]
    )
    assert result.exit_code != 0
    assert message in result.output


async def test_steps_that_cannot_be_played_get_a_clear_error(tmp_path: Path) -> None:
    async with stage(tmp_path) as s:
        sim = ("--sim", s.sim)
        refused = await rehearse("start", "0000000", *sim)
        assert refused.exit_code != 0 and "unknown or expired session key" in refused.output
        lsid = await ok("start", await ok("key", *sim), *sim)
        for args, message in [
            (("chat", lsid, "hi"), "a representative must join before you chat"),
            (("join", lsid, "--rep", "nobody"), "representative could not be found"),
            (("survey", lsid, "boss", "a=b"), "survey kind must be customer or rep"),
            (("attributes", lsid, "nonsense=1"), "invalid custom field code name"),
            (("note", "f" * 32, "x"), "no rehearsed session"),
        ]:
            result = await rehearse(*args, *sim)
            assert result.exit_code != 0 and message in result.output, (args, result.output)
        await ok("end", lsid, *sim)
        ended = await rehearse("note", lsid, "too late", *sim)
        assert ended.exit_code != 0 and "has ended" in ended.output
        async with httpx.AsyncClient() as client:
            json_type = {"Content-Type": "application/json"}
            bad = await client.post(
                f"{s.sim}/sim/sessions", content=b"{not json", headers=json_type
            )
            assert bad.status_code == 400 and "not JSON" in bad.json()["error"]
            # A cross-site page can send text/plain without a preflight: refused.
            plain = await client.post(
                f"{s.sim}/sim/sessions", content=b"{}", headers={"Content-Type": "text/plain"}
            )
            assert plain.status_code == 400 and "application/json" in plain.json()["error"]
            step = await client.post(f"{s.sim}/sim/sessions/{lsid}/dance", json={})
            assert step.status_code == 400 and "unknown step 'dance'" in step.json()["error"]


def test_the_documented_scenario_file_is_valid(tmp_path: Path) -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "simulator.md").read_text()
    example = doc.split("```toml\n[[sessions]]", 1)[1].split("```", 1)[0]
    scenario = tmp_path / "doc.toml"
    scenario.write_text("[[sessions]]" + example, encoding="utf-8")
    [session] = load_scenario(scenario)
    assert session.repeat == 3 and session.external_key == "INC0010001"
    assert [s.name for s in session.steps] == [
        "join", "chat", "note", "file", "attributes", "survey", "end",
    ]  # fmt: skip
    assert session.steps[3].body == {"name": "driver.zip", "size": 120000, "direction": "upload"}
