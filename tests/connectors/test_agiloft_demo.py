"""`rsbridge demo --target agiloft`: keys from cases, auto-create, one record per session."""

from __future__ import annotations

import io

from rich.console import Console
from typer.testing import CliRunner

from rsbridge.cli.root import app
from rsbridge.connectors.agiloft.demo import (
    CLOSED_CASE,
    FORGED_TARGET,
    OPEN_CASES,
    run_demo,
    session_records,
)


def test_the_demo_delivers_every_session_once_on_its_case() -> None:
    out = io.StringIO()
    result = run_demo(sessions=6, seed=7, console=Console(file=out, width=200))
    assert result.dead == 0
    kb, ids = result.kb, result.ids
    assert "closed" in result.refused
    seeded = {ids[name] for name in (*OPEN_CASES, CLOSED_CASE)}
    created = 0
    for item in result.sessions:
        (record,) = session_records(kb, item.session.lsid)
        if item.ticket is not None:
            assert str(record["case"]) == item.ticket
        else:
            created += 1
            assert record["case"] not in seeded
        assert record["session_report"], "the rendered HTML report is on the record"
        for kind, surveys in (
            ("customer_survey", item.session.customer_surveys),
            ("rep_survey", item.session.rep_surveys),
        ):
            text = record.get(kind) or ""
            assert text.count("[rsbridge survey") == len(surveys), "each survey once"
    assert created == 2
    # Keys were written into their cases.
    for case_id in {i.ticket for i in result.sessions if i.ticket}:
        with kb.lock:
            case = kb.records["case"][int(case_id)].values
        assert case.get("bomgar_session_key") and case.get("bomgar_session_url")
        assert "session key" in str(case.get("additional_notes")).lower()
    everyone = sorted([*(i.session.lsid for i in result.sessions), result.forged.lsid])
    assert sorted(d["lsid"] for d in result.jsonl if d["kind"] == "session_report") == everyone
    forged = result.forged
    assert forged.external_key == str(ids[FORGED_TARGET])
    (record,) = session_records(kb, forged.lsid)
    assert record["case"] != ids[FORGED_TARGET]
    assert f"{result.calls} Agiloft calls" in out.getvalue()


def test_the_cli_tells_the_agiloft_story() -> None:
    answer = CliRunner().invoke(app, ["demo", "--target", "agiloft", "--sessions", "2"])
    assert answer.exit_code == 0, answer.output
    assert "Simulated Agiloft KB" in answer.output and "0 dead letters" in answer.output
