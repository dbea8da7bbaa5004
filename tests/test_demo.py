"""`rsbridge demo` tells the whole story: keys from incidents, auto-create, once-only."""

from __future__ import annotations

import io

from rich.console import Console

from rsbridge.demo import CLOSED_INCIDENT, run_demo


def test_the_demo_delivers_every_session_once_where_it_belongs() -> None:
    out = io.StringIO()
    result = run_demo(sessions=6, seed=7, console=Console(file=out, width=200))
    assert result.dead == 0
    assert CLOSED_INCIDENT in out.getvalue() and "closed" in result.refused
    snow, ids = result.snow, result.snow_ids
    created = 0
    for item in result.sessions:
        lsid = item.session.lsid
        (row,) = snow.query("u_rs_session", f"u_lsid={lsid}")
        if item.incident is not None:
            assert row["u_task"] == ids[item.incident]
        else:
            created += 1
            (incident,) = snow.query("incident", f"correlation_id=rs-{lsid}")
            assert row["u_task"] == incident["sys_id"]
        ends = [e for e in snow.journal(row["u_task"]) if f"{lsid}: session end" in e["value"]]
        assert len(ends) == 1, "every event was sent twice; one session-end note"
        answers = sum(
            len(s.answers) for s in (*item.session.customer_surveys, *item.session.rep_surveys)
        )
        assert len(snow.query("u_rs_session_survey", f"u_session={row['sys_id']}")) == answers
    assert created == 2
    keyed = {i.session.lsid for i in result.sessions if i.incident is not None}
    reports = [d for d in result.jsonl if d["kind"] == "session_report"]
    assert sorted(d["lsid"] for d in reports) == sorted(keyed)
    assert sorted(d["lsid"] for d in result.webhook if d["kind"] == "session_report") == sorted(
        keyed
    )
