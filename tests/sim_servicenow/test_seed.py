"""Demo seed data and the ``rsbridge sim servicenow`` command."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from rsbridge.cli import app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.servicenow import SimServiceNowState, demo_state, seed_accounts
from tests.sim_servicenow.conftest import Instance
from tests.sim_servicenow.test_schema import UNLOAD


def test_seed_is_deterministic() -> None:
    first, seed_one = demo_state(seed=5)
    second, seed_two = demo_state(seed=5)
    assert seed_one.ids == seed_two.ids
    assert first.query("task", "ORDERBYnumber") == second.query("task", "ORDERBYnumber")
    assert demo_state(seed=6)[1].ids != seed_one.ids


def test_seeded_accounts(sn: Instance) -> None:
    users = sn.state.users
    assert users["admin"].roles == {"admin"}
    assert users["rsbridge"].roles == {"itil", "rest_service"}
    assert "snc_read_only" in users["viewer"].roles
    rows = {u["user_name"]: u for u in sn.state.query("sys_user")}
    assert rows["admin"]["name"] == "System Administrator"
    assert rows["jsmith"]["name"] == "John Smith" and rows["bwilson"]["name"] == "Bob Wilson"
    assert rows["abel.tuter"]["email"] == "abel.tuter@example.com"
    assert rows["jsmith"]["sys_created_on"] == "2024-12-02 08:00:00"
    # the appliance simulator's reps (except its invited guest) have ServiceNow accounts
    reps = {r.username for r in SimApplianceState.default().reps if r.type == "Normal"}
    assert reps <= set(users)


def test_seeded_records(sn: Instance) -> None:
    state = sn.state
    incidents = {r["number"]: r for r in state.query("incident")}
    assert [incidents[n]["state"] for n in sorted(incidents)] == ["2", "1", "1", "6", "7"]
    first = incidents["INC0010001"]
    assert first["caller_id"] == sn.ids["abel.tuter"]
    assert first["assigned_to"] == sn.ids["jsmith"]
    assert first["assignment_group"] == sn.ids["Service Desk"]
    assert first["cmdb_ci"] == sn.ids["ws-ann-01"]
    assert incidents["INC0010004"]["resolved_at"] and incidents["INC0010004"]["active"] == "true"
    assert incidents["INC0010005"]["active"] == "false" and incidents["INC0010005"]["closed_at"]
    ci = state.get("cmdb_ci", sn.ids["srv-exch-01"])
    assert ci is not None
    assert (ci["sys_class_name"], ci["fqdn"], ci["ip_address"]) == (
        "cmdb_ci_server",
        "srv-exch-01.example.com",
        "10.0.1.15",
    )
    numbers = {r["number"] for r in state.query("task")}
    for number in (
        "CHG0010001",
        "PRB0010001",
        "REQ0010001",
        "RITM0010001",
        "CALL0010001",
        "IMS0010001",
    ):
        assert number in numbers
    groups = {g["name"] for g in state.query("sys_user_group")}
    assert {"Service Desk", "Network"} <= groups
    members = state.query("sys_user_grmember", f"group={sn.ids['Service Desk']}")
    assert {m["user"] for m in members} == {sn.ids["jsmith"], sn.ids["mjones"]}


def test_accounts_only() -> None:
    state = SimServiceNowState()
    seed = seed_accounts(state)
    assert set(state.users) == {"admin", "rsbridge", "viewer"}
    assert state.query("incident") == []
    assert state.oauth_clients[seed.oauth_client[0]].user == "rsbridge"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_run(application: Any, **kwargs: Any) -> None:
        seen.update(kwargs, app=application)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return seen


def test_cli_prints_url_and_credentials(served: dict[str, Any], tmp_path: Path) -> None:
    unload = tmp_path / "tables.xml"
    unload.write_text(UNLOAD)
    result = CliRunner().invoke(
        app, ["sim", "servicenow", "--port", "8299", "--import", str(unload)]
    )
    assert result.exit_code == 0, result.output
    assert "Imported tables.xml: 2 tables, 8 columns, 15 records, skipped u_widget" in result.output
    assert "Simulated ServiceNow: http://127.0.0.1:8299" in result.output
    assert "Integration user:    rsbridge / rsbridge-demo" in result.output
    assert (
        "OAuth client:        5f1c7e2a9b3d4c6e8a0f1b2c3d4e5f60 / rsbridge-demo-secret"
        in result.output
    )
    assert served["port"] == 8299 and served["host"] == "127.0.0.1"


def test_cli_reports_a_bad_import(served: dict[str, Any], tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text("<unload><x>")
    result = CliRunner().invoke(app, ["sim", "servicenow", "--no-seed", "--import", str(bad)])
    assert result.exit_code == 1
    assert "bad.xml" in result.output and "malformed" in result.output
    assert served == {}


def test_the_appliance_simulators_sessions_name_open_incidents_of_this_seed() -> None:
    """``rsbridge sim appliance --sessions N`` next to ``rsbridge sim servicenow``: every
    pre-loaded session names an incident that exists there and is still open."""
    state, _ = demo_state()
    incidents = {row["number"]: row for row in state.query("incident")}
    sessions = SimApplianceState.default(sessions=7).report_sessions()
    named = {s.external_key for s in sessions}
    assert len(named) == 3
    for number in named:
        assert number in incidents and incidents[number]["active"] == "true", number
