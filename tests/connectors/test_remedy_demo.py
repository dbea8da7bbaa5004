"""`rsbridge demo --target remedy`: keys from incidents, auto-create, once-only imports."""

from __future__ import annotations

import io

from rich.console import Console
from typer.testing import CliRunner

from rsbridge.cli.root import app
from rsbridge.connectors.remedy.demo import (
    CLOSED_INCIDENT,
    FORGED_TARGET,
    OPEN_INCIDENTS,
    entries,
    run_demo,
    work_info,
)


def test_the_demo_delivers_every_session_once_on_its_incident() -> None:
    out = io.StringIO()
    result = run_demo(sessions=6, seed=7, console=Console(file=out, width=200))
    assert result.dead == 0
    server, ids = result.server, result.ids
    assert ids[CLOSED_INCIDENT] in out.getvalue() and "closed" in result.refused
    created = 0
    seeded = {ids[name] for name in (*OPEN_INCIDENTS, CLOSED_INCIDENT)}
    for item in result.sessions:
        lsid = item.session.lsid
        (header,) = entries(server, "RSB:Session", "Session ID", lsid)
        number = header["Ticket Number"]
        if item.ticket is not None:
            assert number == item.ticket
        else:
            created += 1
            assert number.startswith("INC") and number not in seeded
        # Every event was sent twice: one session work info entry, one per survey.
        surveys = len(item.session.customer_surveys) + len(item.session.rep_surveys)
        logs = work_info(server, number, lsid)
        assert len(logs) == 1 + surveys
        assert len(entries(server, "RSB:Session Survey", "Session ID", lsid)) == surveys
        people = entries(server, "RSB:Session Participant", "Session ID", lsid)
        reps, customers = item.session.representatives, item.session.customers
        assert len(people) == len(reps) + len(customers)
    assert created == 2
    # The key generated from each incident was logged on it as internal work info.
    for number in {i.ticket for i in result.sessions if i.ticket}:
        logged = [
            w
            for w in entries(server, "HPD:WorkLog", "Incident Number", number)
            if "session key" in str(w["Detailed Description"]).lower()
        ]
        assert logged and all(w["View Access"] == 0 for w in logged)
    everyone = sorted([*(i.session.lsid for i in result.sessions), result.forged.lsid])
    assert sorted(d["lsid"] for d in result.jsonl if d["kind"] == "session_report") == everyone
    assert sorted(d["lsid"] for d in result.webhook if d["kind"] == "session_report") == everyone
    # The customer who named someone else's incident did not reach it.
    forged = result.forged.lsid
    assert result.forged.external_key == ids[FORGED_TARGET]
    (header,) = entries(server, "RSB:Session", "Session ID", forged)
    assert header["Ticket Number"] and header["Ticket Number"] != ids[FORGED_TARGET]
    assert work_info(server, ids[FORGED_TARGET], forged) == []
    assert "(unsigned): refused" in out.getvalue()
    assert f"{result.ar_calls} AR calls" in out.getvalue()


def test_the_cli_tells_the_remedy_story() -> None:
    answer = CliRunner().invoke(app, ["demo", "--target", "remedy", "--sessions", "2"])
    assert answer.exit_code == 0, answer.output
    assert "Simulated AR System server" in answer.output
    assert "What arrived" in answer.output and "0 dead letters" in answer.output
