"""``rsbridge events show`` names a session's ticket the way people know it (ServiceNow
INC..., Salesforce CaseNumber, Remedy Incident Number, Agiloft id), with the record id,
for each connector against its simulator.

Each target's demo story delivers the sessions (real engine, real SQLite store, each
system's simulator); while it is kept running (``demo --keep``'s hook), ``rsbridge events
show`` reads that store as an operator would.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rsbridge.appliance.events import END
from rsbridge.cli import app
from rsbridge.demo import Stage


def _cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


class Shown:
    """What ``events show`` printed for each END job of the target's integration, by lsid."""

    def __init__(self, integration: str) -> None:
        self.integration = integration
        self.by_lsid: dict[str, str] = {}

    async def __call__(self, peers: Stage, engine_url: str) -> None:
        config = peers.workdir / "show.toml"
        store = peers.workdir / "rsbridge.db"
        config.write_text(f'[engine]\nstore = "{store}"\n', encoding="utf-8")
        # The CLI runs its own event loop: in a thread, beside the demo's.
        listed = await asyncio.to_thread(_cli, "events", "list", "--json", "-c", str(config))
        for job in map(json.loads, listed.splitlines()):
            if job["integration"] == self.integration and job["type"] == END:
                assert job["status"] == "done", job
                shown = await asyncio.to_thread(
                    _cli, "events", "show", str(job["job"]), "-c", str(config)
                )
                self.by_lsid[job["lsid"]] = shown


def _run(target: str, shown: Shown) -> Any:
    module = __import__(f"rsbridge.connectors.{target}.demo", fromlist=["run_demo"])
    quiet = Console(file=io.StringIO(), width=200)
    return module.run_demo(sessions=1, seed=5, console=quiet, keep=shown)


def _ticket_line(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("  ticket ")]
    return line


def _servicenow(result: Any, lsid: str) -> tuple[str, str]:
    [row] = result.snow.query("u_rs_session", f"u_lsid={lsid}")
    [incident] = result.snow.query("incident", f"sys_id={row['u_task']}")
    return incident["number"], incident["sys_id"]


def _salesforce(result: Any, lsid: str) -> tuple[str, str]:
    [record] = result.org.find_by("RS_Session__c", "LSID__c", lsid)
    case = result.org.find_by_id(record["Case__c"])
    return case["CaseNumber"], case["Id"]


def _remedy(result: Any, lsid: str) -> tuple[str, str]:
    number = next(s.ticket for s in result.sessions if s.session.lsid == lsid)
    return number, number


def _agiloft(result: Any, lsid: str) -> tuple[str, str]:
    case = next(s.ticket for s in result.sessions if s.session.lsid == lsid)
    return case, case


TARGETS: dict[str, Callable[[Any, str], tuple[str, str]]] = {
    "servicenow": _servicenow,
    "salesforce": _salesforce,
    "remedy": _remedy,
    "agiloft": _agiloft,
}
"""How to read, in the target's simulator, the number and record id of a session's ticket."""


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_events_show_names_the_ticket_by_its_number(target: str) -> None:
    shown = Shown(target)
    result = _run(target, shown)
    keyed = result.sessions[0]
    assert keyed.ticket is not None
    lsid = keyed.session.lsid
    number, record = TARGETS[target](result, lsid)
    assert number and record

    output = shown.by_lsid[lsid]
    line = _ticket_line(output)
    assert line.startswith(f"  ticket {number} ")
    if number != record:
        # The human number first, the record id beside it, on every effect too.
        assert f"record {record}" in line
        assert f"effect session_report: ticket {number} (record {record}) ref " in output
    else:
        assert "record" not in line
        assert f"effect session_report: ticket {number} ref " in output
    # The ticket's link into the system, when the connector knows one.
    links = [x.strip() for x in output.splitlines() if x.startswith("    http")]
    assert all(record in link or number in link for link in links), links


def test_events_show_numbers_a_created_ticket_too() -> None:
    """The forged session (its customer's reference refused) gets an incident created
    for it: events show gives that incident's number, not only its sys_id."""
    shown = Shown("servicenow")
    result = _run("servicenow", shown)
    lsid = result.forged.lsid
    number, sys_id = _servicenow(result, lsid)
    assert number.startswith("INC") and number not in result.snow_ids
    line = _ticket_line(shown.by_lsid[lsid])
    assert line.startswith(f"  ticket {number} (incident, record {sys_id}, created")
