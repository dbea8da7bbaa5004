"""A session's page: events, jobs, every attempt with its error, the tickets, links to
replay and to the dead letters, and the report as an integration renders it (inert)."""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

from rsbridge.config import Config
from tests.admin.conftest import console_config, serving_console, unmasked
from tests.admin.views_helpers import TICKETS, delivered, table_rows
from tests.engine.conftest import SimAppliance, drained, emit, ended_sessions
from tests.servicenow_helpers import running_instance

HOSTILE = """<script>alert("x")</script> O'Brien & "Sons" <img src=x onerror=alert(1)>"""
_IFRAME = re.compile(r"<iframe\b([^>]*)>")
_PRE = re.compile(r"<pre>(.*?)</pre>", re.DOTALL)


async def test_the_page_shows_events_jobs_attempts_and_tickets(
    tmp_path: Path, sim: SimAppliance
) -> None:
    async with delivered(tmp_path, sim) as run, run.console.signed_in("vic") as browser:
        lsid = run.sessions[0].lsid
        page = await browser.get(f"/admin/sessions/default/{lsid}")
        missing = await browser.get("/admin/sessions/default/no-such-session")
    assert page.status_code == 200
    text = page.text
    assert f"<h1>Session {lsid}</h1>" in text
    rows = table_rows(text)
    # Tickets: the audit integration's effects landed on the session's ticket.
    tickets = [r for r in rows if len(r) == 5 and r[0] == "audit"]
    assert {r[1] for r in tickets} >= {"ticket", "session_report"}
    assert {r[2] for r in tickets} == {TICKETS[0]}  # jsonl has no UI to link to: text only
    # Jobs: audit done, broken dead with a link to its dead letters.
    jobs = {r[1]: r for r in rows if len(r) == 7 and r[2] == "support_conference_end"}
    assert jobs["audit"][3] == "done" and jobs["broken"][3] == "dead"
    assert jobs["broken"][4] == "1" and "No such file or directory" in jobs["broken"][5]
    assert '<a href="/admin/dead?integration=broken">Dead letters of broken</a>' in text
    # Attempts: each, with its outcome and error.
    attempts = [r for r in rows if len(r) == 7 and r[1].isdigit() and "(" in r[0]]
    outcomes = {r[0].split(" ")[1].strip("()"): r[5] for r in attempts}
    assert outcomes == {"audit": "done", "broken": "dead"}
    assert any("No such file or directory" in r[6] for r in attempts)
    # Events: the session's end as received, with its delivery count.
    events = [r for r in rows if len(r) == 6]
    assert ["support_conference_end", "outbound"] in [r[1:3] for r in events]
    assert all(r[4] == "1" for r in events)
    # Replay and render links per integration.
    for name in ("audit", "broken"):
        assert (
            f'href="/admin/replay?appliance_id=default&amp;lsid={lsid}&amp;integration={name}"'
            in text
        )
        assert (
            f'href="/admin/sessions/default/{lsid}?render={name}#report">'
            f"Show the report as {name} renders it</a>" in text
        )
    assert missing.status_code == 404


async def test_the_report_renders_as_the_integration_renders_it_and_stays_inert(
    tmp_path: Path, sim: SimAppliance
) -> None:
    [session] = ended_sessions(TICKETS, 1, seed=43, integration="audit", surveys=False)
    assert session.customers
    customers = [dataclasses.replace(session.customers[0], username=HOSTILE)]
    hostile = dataclasses.replace(session, customers=customers + session.customers[1:])
    async with (
        delivered(tmp_path, sim, [hostile]) as run,
        run.console.signed_in("vic") as browser,
    ):
        fetches = sim.state.calls["SupportSession"]
        page = await browser.get(f"/admin/sessions/default/{hostile.lsid}?render=audit")
        assert sim.state.calls["SupportSession"] == fetches + 1  # fetched once
        nothing = await browser.get(f"/admin/sessions/default/{hostile.lsid}?render=nope")
    assert page.status_code == 200
    text = page.text
    assert "The report as audit renders it" in text
    # Nothing of the customer's value is markup on the console's page.
    assert "<script>alert" not in text and "<img src=x" not in text
    [pre] = _PRE.findall(text)
    assert html.unescape(pre).count(HOSTILE) >= 1  # the text report, shown as text
    [iframe] = _IFRAME.findall(text)
    assert " sandbox " in iframe and "allow-scripts" not in iframe
    srcdoc = re.search(r'srcdoc="([^"]*)"', iframe)
    assert srcdoc is not None
    document = html.unescape(srcdoc.group(1))
    # The HTML report, escaped by its own templates, then once more into the attribute.
    assert "&lt;script&gt;alert(" in document and "<script" not in document
    assert "No active integration of that name." in nothing.text


async def test_a_report_the_appliance_does_not_have_is_said_so(
    tmp_path: Path, sim: SimAppliance
) -> None:
    # Ended, but its report is not on the appliance (yet): its jobs wait for it.
    [unknown] = ended_sessions(TICKETS, 1, seed=44, integration="audit", surveys=False)
    async with delivered(tmp_path, sim, []) as run, run.console.signed_in("vic") as browser:
        await emit(run.console.url, [unknown])
        page = await browser.get(f"/admin/sessions/default/{unknown.lsid}?render=audit")
    assert page.status_code == 200
    assert "The appliance has no report of this session." in page.text
    assert "<iframe" not in page.text


async def test_a_servicenow_ticket_is_a_link_to_its_record_and_found_by_number(
    tmp_path: Path, sim: SimAppliance
) -> None:
    with running_instance(11) as snow:
        user, password = snow.demo.integration
        base = console_config(tmp_path, sim)
        data = base.model_dump(mode="python")
        data["integrations"] = [
            {
                "name": "servicenow",
                "connector": "servicenow",
                "settings": {"instance_url": snow.url, "username": user, "password": password},
            }
        ]
        config = Config.model_validate(unmasked(data))
        number = sorted(n for n in snow.demo.ids if n.startswith("INC"))[0]
        [session] = ended_sessions([number], 1, seed=45, integration="servicenow", surveys=False)
        sim.state.add_report(session)
        async with serving_console(config) as console, console.signed_in("vic") as browser:
            await emit(console.url, [session])
            await drained(console.engine)
            page = await browser.get(f"/admin/sessions/default/{session.lsid}")
            found = await browser.get("/admin/sessions", params={"ticket": number})
    sys_id = snow.demo.ids[number]
    link = f'<a href="{snow.url}/nav_to.do?uri=incident.do?sys_id={sys_id}"'
    assert link in page.text
    assert f'{link} rel="noopener noreferrer" target="_blank">{number}</a>' in page.text
    rows = [r for r in table_rows(found.text) if len(r) == 7]
    assert [(r[0], r[2], r[3], r[5]) for r in rows] == [
        (session.lsid, "servicenow", "done", number)
    ]
