"""`rsbridge demo --target salesforce`: keys from Cases, auto-create, once-only imports."""

from __future__ import annotations

import io

from rich.console import Console
from typer.testing import CliRunner

from rsbridge.cli.root import app
from rsbridge.connectors.salesforce.demo import (
    CLOSED_CASE,
    FORGED_TARGET,
    run_demo,
    session_comments,
    session_records,
)


def test_the_demo_delivers_every_session_once_on_its_case() -> None:
    out = io.StringIO()
    result = run_demo(sessions=6, seed=7, console=Console(file=out, width=200))
    assert result.dead == 0
    org, ids = result.org, result.ids
    assert ids[CLOSED_CASE] in out.getvalue() and "closed" in result.refused
    created = 0
    for item in result.sessions:
        lsid = item.session.lsid
        (record,) = session_records(org, lsid)
        case_id = record["Case__c"]
        if item.ticket is not None:
            assert case_id == item.ticket
        else:
            created += 1
            (case,) = org.find_by("Case", "Id", case_id)
            assert case["Origin"] == "Remote Support"
            assert case_id not in {ids["case_printer"], ids["case_vpn"], ids[CLOSED_CASE]}
        comments = session_comments(org, case_id, lsid)
        ends = [c for c in comments if f"{lsid}: session end)" in c["CommentBody"]]
        assert len(ends) == 1, "every event was sent twice; one session-end comment"
        answers = sum(
            len(s.answers) for s in (*item.session.customer_surveys, *item.session.rep_surveys)
        )
        assert len(org.find_by("RS_Session_Survey__c", "Session__c", record["Id"])) == answers
    assert created == 2
    # The key generated from each Case was logged on it as a private comment.
    for case_id in {i.ticket for i in result.sessions if i.ticket}:
        logged = [
            c
            for c in org.find_by("CaseComment", "ParentId", case_id)
            if "session key" in c["CommentBody"].lower()
        ]
        assert logged and not any(c["IsPublished"] for c in logged)
    # The file and the webhook keep every session once, the forged one included.
    everyone = sorted([*(i.session.lsid for i in result.sessions), result.forged.lsid])
    reports = [d["lsid"] for d in result.jsonl if d["kind"] == "session_report"]
    assert sorted(reports) == everyone
    hooks = [d["lsid"] for d in result.webhook if d["kind"] == "session_report"]
    assert sorted(hooks) == everyone
    # The customer who named someone else's Case did not reach it: a Case of its own.
    forged = result.forged.lsid
    assert result.forged.external_key == ids[FORGED_TARGET]
    (record,) = session_records(org, forged)
    assert record["Case__c"] and record["Case__c"] != ids[FORGED_TARGET]
    assert session_comments(org, ids[FORGED_TARGET], forged) == []
    assert "(unsigned): refused" in out.getvalue()
    # The calls reported are the ones the org answered (logins not counted).
    assert result.api_calls > 0
    assert f"{result.api_calls} Salesforce API calls" in out.getvalue()


def test_the_cli_tells_the_salesforce_story() -> None:
    answer = CliRunner().invoke(app, ["demo", "--target", "salesforce", "--sessions", "2"])
    assert answer.exit_code == 0, answer.output
    assert "Simulated Salesforce org" in answer.output
    assert "What arrived" in answer.output and "0 dead letters" in answer.output
