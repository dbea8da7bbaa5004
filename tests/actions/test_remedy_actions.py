"""The actions with the real Remedy connector and the simulated AR server, end to end.

A key generated from an incident (the technician and assignee modes), e-mailed to its
customer and logged as internal work info; the session run from that key lands on the
incident once; resolved incidents are refused; Jump to the incident's computer system;
Get Support Now from a service request; the custom links.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from rsbridge.config import parse_config
from rsbridge.connectors.remedy.demo import entries, prepared_server, work_info
from rsbridge.engine.runtime import Engine
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.sim.remedy import DemoSeed, SimRemedyState, create_app
from rsbridge.sim.serve import serve_in_thread
from rsbridge.web.serve import serving
from tests.actions.conftest import TOKEN, Mailbox, Sim, config_data
from tests.engine.conftest import drained


@dataclass
class AR:
    state: SimRemedyState
    demo: DemoSeed
    url: str


@pytest.fixture
def ar() -> Iterator[AR]:
    state, demo = prepared_server()
    printer = demo.ids["printer"]
    state.update(
        "HPD:IncidentInterface",
        f"{printer}|{printer}",
        {"Assignee Login ID": "jsmith", "Internet E-mail": "allen@example.com",
         "HPD_CI": "ws-0042"},
        "Demo",
    )  # fmt: skip
    with serve_in_thread(create_app(state)) as url:
        yield AR(state, demo, url)


@dataclass
class Running:
    engine: Engine
    url: str
    http: httpx.AsyncClient
    ar: AR
    sim: Sim
    mailbox: Mailbox


@pytest.fixture
async def running(tmp_path: Path, sim: Sim, mailbox: Mailbox, ar: AR) -> AsyncIterator[Running]:
    user, password = ar.demo.integration
    integrations: list[dict[str, Any]] = [
        {
            "name": "remedy",
            "connector": "remedy",
            "association": {"on_unmatched": "skip"},
            "settings": {"server_url": ar.url, "username": user, "password": password},
            "actions": {
                "assignment": "technician",
                "log_session_key": True,
                "email_key": True,
                "log_customer_initiated": True,
                "self_service_enabled": True,
            },
        }
    ]
    config = parse_config(config_data(tmp_path, sim, mailbox, integrations=integrations))
    async with (
        Engine(config) as engine,
        serving(engine.asgi_app()) as url,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
    ):
        yield Running(engine, url, http, ar, sim, mailbox)


async def _key(running: Running, ticket: str, **body: Any) -> httpx.Response:
    return await running.http.post(
        f"{running.url}/actions/session-key",
        json={"integration": "remedy", "ticket": ticket, **body},
    )


async def test_a_key_from_an_incident_and_the_session_landing_on_it(running: Running) -> None:
    ar, state = running.ar, running.sim.state
    printer = ar.demo.ids["printer"]
    answer = await _key(running, printer, user="jsmith")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    key = state.session_keys[body["short_key"]]
    assert key.custom["external_key"] == printer
    assert key.queue == "rep"
    notes = [
        w for w in entries(ar.state, "HPD:WorkLog", "Incident Number", printer)
        if body["short_key"] in str(w["Detailed Description"])
    ]  # fmt: skip
    assert len(notes) == 1 and notes[0]["View Access"] == 0
    (mail,) = running.mailbox.received()
    assert mail[1] == ["allen@example.com"]
    lsid = state.start_session(body["short_key"])
    report = state.complete_session(lsid)
    recipient = Recipient(f"{running.url}/ERSPost?appliance=default", retry_interval=0.05)
    async with OutboundEventEmitter([recipient]) as emitter:
        for _ in range(2):  # sent twice: imported once
            for event in events_for_session(report, state.appliance_id):
                emitter.enqueue(event)
        await emitter.run_until_idle()
    await drained(running.engine)
    (header,) = entries(ar.state, "RSB:Session", "Session ID", lsid)
    assert header["Ticket Number"] == printer and header["Import State"] == 1
    assert (
        len([w for w in work_info(ar.state, printer, lsid) if "survey" not in w["Description"]])
        == 1
    )


async def test_the_assignee_mode_uses_the_assignee_login(running: Running) -> None:
    answer = await _key(running, running.ar.demo.ids["printer"], assignment="assigned_user")
    assert answer.status_code == 200, answer.text
    key = running.sim.state.session_keys[answer.json()["short_key"]]
    assert key.queue == "rep"
    # An incident with no assignee says so.
    answer = await _key(running, running.ar.demo.ids["vpn"], assignment="assigned_user")
    assert answer.status_code == 422, answer.text


async def test_resolved_incidents_get_no_key(running: Running) -> None:
    answer = await _key(running, running.ar.demo.ids["laptop"], user="jsmith")
    assert answer.status_code == 409 and answer.json()["error"] == "ticket_closed"
    assert running.sim.state.session_keys == {}


async def test_jump_to_the_incidents_computer_system(running: Running) -> None:
    printer = running.ar.demo.ids["printer"]
    answer = await running.http.post(
        f"{running.url}/actions/jump",
        json={"integration": "remedy", "ticket": printer, "output": "url"},
    )
    assert answer.status_code == 200, answer.text
    params = dict(parse_qsl(urlsplit(answer.json()["url"]).query))
    assert params["action"] == "start_jump_item_session"
    assert params["search_string"] == "ws-0042"
    assert params["session.custom.external_key"] == printer


async def test_get_support_now_from_a_service_request(running: Running) -> None:
    issues = await running.http.get(
        f"{running.url}/actions/issues", params={"integration": "remedy"}
    )
    assert issues.status_code == 200, issues.text
    code = issues.json()["issues"][0]["code_name"]
    request = running.ar.demo.ids["request"]
    answer = await running.http.post(
        f"{running.url}/actions/support-now",
        json={"integration": "remedy", "ticket": request, "issue": code},
    )
    assert answer.status_code == 200, answer.text
    params = dict(parse_qsl(urlsplit(answer.json()["url"]).query))
    assert params["session.custom.external_key"] == request
    assert params["codeName"] == code


async def test_the_custom_links(running: Running) -> None:
    links = await running.http.get(f"{running.url}/actions/links", params={"integration": "remedy"})
    assert links.status_code == 200, links.text
    names = {link["name"] for link in links.json()["links"]}
    assert {"Remedy incident (Mid-Tier)", "Create Incident via BMC Smart IT"} <= names
