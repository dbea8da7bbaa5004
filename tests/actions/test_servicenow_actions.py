"""The actions with the real ServiceNow connector and the simulated instance, end to end.

A key generated from an incident, e-mailed to its caller and logged as a work note; the
session run from that key lands on the incident once; closed incidents are refused; Jump
to the incident's CI; Get Support Now; the custom links; the auto-create link.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from rsbridge.config import parse_config
from rsbridge.connectors.servicenow.writes import journal_marker
from rsbridge.engine.runtime import Engine
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.web.serve import serving
from tests.actions.conftest import LINK_SECRET, TOKEN, Mailbox, Sim, config_data
from tests.engine.conftest import drained
from tests.servicenow_helpers import Snow, running_instance


@pytest.fixture
def snow() -> Iterator[Snow]:
    with running_instance(13) as running:
        yield running


@dataclass
class Running:
    engine: Engine
    url: str
    http: httpx.AsyncClient
    snow: Snow
    sim: Sim
    mailbox: Mailbox


@pytest.fixture
async def running(tmp_path: Path, sim: Sim, mailbox: Mailbox, snow: Snow) -> AsyncIterator[Running]:
    user, password = snow.demo.integration
    integrations: list[dict[str, Any]] = [
        {
            "name": "servicenow",
            "connector": "servicenow",
            "association": {"on_unmatched": "skip"},
            "settings": {"instance_url": snow.url, "username": user, "password": password},
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
        yield Running(engine, url, http, snow, sim, mailbox)


async def test_a_key_from_an_incident_and_the_session_landing_on_it(running: Running) -> None:
    snow, state = running.snow, running.sim.state
    incident = snow.demo.ids["INC0010001"]
    answer = await running.http.post(
        f"{running.url}/actions/session-key",
        json={"integration": "servicenow", "ticket": "INC0010001", "user": "jsmith"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    key = state.session_keys[body["short_key"]]
    assert key.custom["snow_task_id"] == incident
    assert key.custom["external_key"] == "INC0010001"
    assert key.custom["snow_cmdb_ci_id"] == snow.demo.ids["ws-ann-01"]
    assert (key.queue, key.queue_id) == ("rep", "2")  # jsmith, mapped by user_name
    # The work note and the e-mail to the caller.
    notes = [e["value"] for e in snow.state.journal(incident, "work_notes")]
    assert any(body["short_key"] in n for n in notes)
    (mail,) = running.mailbox.received()
    assert mail[1] == ["abel.tuter@example.com"]
    # The customer uses the key; the session ends; the appliance sends its events.
    lsid = state.start_session(body["short_key"])
    report = state.complete_session(lsid)
    recipient = Recipient(f"{running.url}/ERSPost?appliance=default", retry_interval=0.05)
    async with OutboundEventEmitter([recipient]) as emitter:
        for _ in range(2):  # sent twice: imported once
            for event in events_for_session(report, state.appliance_id):
                emitter.enqueue(event)
        await emitter.run_until_idle()
    await drained(running.engine)
    (row,) = snow.state.query("u_rs_session")
    assert row["u_task"] == incident and row["u_lsid"] == lsid
    assert row["u_configuration_item"] == snow.demo.ids["ws-ann-01"]
    ends = [e for e in snow.state.journal(incident) if journal_marker(lsid, "end") in e["value"]]
    assert len(ends) == 1


async def test_closed_incidents_get_no_key(running: Running) -> None:
    answer = await running.http.post(
        f"{running.url}/actions/session-key",
        json={"integration": "servicenow", "ticket": "INC0010005", "user": "jsmith"},
    )
    assert answer.status_code == 409
    assert answer.json()["error"] == "ticket_closed"
    assert running.sim.state.session_keys == {}


async def test_closed_requests_and_interactions_get_no_key(running: Running) -> None:
    snow = running.snow.state
    request = snow.insert("sc_request", {"short_description": "new laptop"})
    snow.update("sc_request", request["sys_id"], {"state": "3"})  # Closed Complete
    interaction = snow.insert("interaction", {"short_description": "chat"})
    snow.update("interaction", interaction["sys_id"], {"state": "closed_complete"})
    for ticket in (request["number"], interaction["sys_id"]):
        answer = await running.http.post(
            f"{running.url}/actions/session-key",
            json={"integration": "servicenow", "ticket": ticket, "assignment": "general"},
        )
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"] == "ticket_closed"
    assert running.sim.state.session_keys == {}


async def test_a_ticket_whose_state_cannot_be_read_gets_no_key(running: Running) -> None:
    running.snow.state.update("incident", running.snow.demo.ids["INC0010001"], {"state": ""})
    answer = await running.http.post(
        f"{running.url}/actions/session-key",
        json={"integration": "servicenow", "ticket": "INC0010001", "user": "jsmith"},
    )
    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["error"] == "ticket_closed"
    assert "cannot be read" in body["message"] and "INC0010001" in body["message"]
    assert running.sim.state.session_keys == {}


async def test_jump_to_the_incidents_configuration_item(running: Running) -> None:
    answer = await running.http.post(
        f"{running.url}/actions/jump",
        json={"integration": "servicenow", "ticket": "INC0010001", "output": "url"},
    )
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["action"] == "start_jump_item_session"
    assert params["search_string"] == "ws-ann-01"
    assert params["session.custom.snow_task_id"] == running.snow.demo.ids["INC0010001"]


async def test_get_support_now_is_associated_with_the_incident(running: Running) -> None:
    issues = await running.http.get(
        f"{running.url}/actions/issues", params={"integration": "servicenow"}
    )
    assert issues.status_code == 200, issues.text
    code = issues.json()["issues"][0]["code_name"]
    answer = await running.http.post(
        f"{running.url}/actions/support-now",
        json={"integration": "servicenow", "ticket": "INC0010002", "issue": code},
    )
    assert answer.status_code == 200, answer.text
    params = dict(parse_qsl(urlsplit(answer.json()["url"]).query))
    assert params["session.custom.snow_task_id"] == running.snow.demo.ids["INC0010002"]
    assert params["codeName"] == code
    incident = running.snow.demo.ids["INC0010002"]
    assert any(
        "support" in e["value"].lower() for e in running.snow.state.journal(incident, "work_notes")
    )


async def test_links_and_the_auto_create_link(running: Running) -> None:
    links = await running.http.get(
        f"{running.url}/actions/links", params={"integration": "servicenow"}
    )
    assert links.status_code == 200, links.text
    urls = [link["url"] for link in links.json()["links"]]
    assert any(f"{running.snow.url}/nav_to.do?uri=task.do" in u for u in urls)
    auto = next(u for u in urls if "/actions/auto-create" in u)
    token = dict(parse_qsl(urlsplit(auto).query))["token"]
    assert LINK_SECRET not in auto
    # A live session without a ticket; the rep clicks the link.
    state = running.sim.state
    key = state.generate_session_key(queue_id="general")
    lsid = state.start_session(key.short_key)
    async with httpx.AsyncClient() as anonymous:  # the rep console sends no bearer token
        page = await anonymous.get(
            f"{running.url}/actions/auto-create",
            params={
                "integration": "servicenow",
                "lsid": lsid,
                "username": "jsmith",
                "token": token,
            },
        )
        assert page.status_code == 200, page.text
        assert running.snow.state.query("incident", f"correlation_id=rs-{lsid}") == []
        form = dict(re.findall(r'name="([a-z]+)" value="([^"]*)"', page.text))
        answer = await anonymous.post(f"{running.url}/actions/auto-create", data=form)
    assert answer.status_code == 303, answer.text
    created = running.snow.state.query("incident", f"correlation_id=rs-{lsid}")
    assert len(created) == 1
    assert created[0]["sys_id"] in answer.headers["location"]
    assert state.active_sessions[lsid].custom["snow_task_id"] == created[0]["sys_id"]


async def test_unknown_integration_is_named(running: Running) -> None:
    answer = await running.http.post(
        f"{running.url}/actions/session-key",
        json={"integration": "nosuch", "ticket": "INC0010001"},
    )
    assert answer.status_code == 404
    assert "nosuch" in answer.json()["message"]
