"""The actions with the real Agiloft connector and the simulated KB, end to end: the
seed's five assignment modes, the key and URL written into the case, the e-mail to the
customer, closed cases refused, Jump from the case's search criteria, the links."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from rsbridge.config import parse_config
from rsbridge.connectors.agiloft.demo import prepared_kb
from rsbridge.engine.runtime import Engine
from rsbridge.sim.agiloft import DemoSeed, SimAgiloftState, create_app
from rsbridge.sim.serve import serve_in_thread
from rsbridge.web.serve import serving
from tests.actions.conftest import TOKEN, Mailbox, Sim, config_data


@dataclass
class KB:
    state: SimAgiloftState
    demo: DemoSeed
    url: str

    def case(self, name: str) -> dict[str, Any]:
        with self.state.lock:
            return dict(self.state.records["case"][self.demo.ids[name]].values)


@pytest.fixture
def kb() -> Iterator[KB]:
    state, demo = prepared_kb()
    # John Doe is jsmith on the appliance (the seed's User Setup Requirements); a team
    # named as the appliance names one; the printer case names a rep in the mode-5 field.
    state.update("contacts.employees", demo.ids["jdoe"], {"bomgar_username": ["jsmith"]})
    state.create("teams", {"name": ["Service Desk"]})
    state.update(
        "case",
        demo.ids["printer"],
        {"assigned_team": [":Service Desk"], "bomgar_representative": ["team:Network"],
         "bomgar_jump_client_search_criteria": ["WKS-ALLEN"]},
    )  # fmt: skip
    with serve_in_thread(create_app(state)) as url:
        yield KB(state, demo, url)


@dataclass
class Running:
    url: str
    http: httpx.AsyncClient
    kb: KB
    sim: Sim
    mailbox: Mailbox


@pytest.fixture
async def running(tmp_path: Path, sim: Sim, mailbox: Mailbox, kb: KB) -> AsyncIterator[Running]:
    login, password = kb.demo.integration
    integrations: list[dict[str, Any]] = [
        {
            "name": "agiloft",
            "connector": "agiloft",
            "association": {"on_unmatched": "skip"},
            "settings": {"kb_url": kb.url, "kb": kb.demo.kb, "login": login, "password": password},
            "actions": {"assignment": "technician", "log_session_key": True, "email_key": True},
        }
    ]
    config = parse_config(config_data(tmp_path, sim, mailbox, integrations=integrations))
    async with (
        Engine(config) as engine,
        serving(engine.asgi_app()) as url,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
    ):
        yield Running(url, http, kb, sim, mailbox)


async def _key(running: Running, **body: Any) -> httpx.Response:
    ticket = str(running.kb.demo.ids[body.pop("case", "printer")])
    return await running.http.post(
        f"{running.url}/actions/session-key",
        json={"integration": "agiloft", "ticket": ticket, **body},
    )


@pytest.mark.parametrize(
    ("body", "queue"),
    [
        ({"assignment": "technician", "user": "jdoe"}, ("rep", "2")),  # the logged-in user
        ({"assignment": "assigned_user"}, ("rep", "2")),  # Assigned Person: John Doe
        ({"assignment": "assigned_team"}, ("team", "1")),  # Assigned Team: Service Desk
        ({"assignment": "general"}, ("general", None)),
        ({"assignment": "queue"}, ("team", "2")),  # the case's field: team:Network
    ],
)
async def test_the_five_assignment_modes(
    running: Running, body: dict[str, Any], queue: tuple[str, str | None]
) -> None:
    answer = await _key(running, email=False, **body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    key = running.sim.state.session_keys[result["short_key"]]
    assert (key.queue, key.queue_id) == queue
    assert key.custom["external_key"] == str(running.kb.demo.ids["printer"])
    case = running.kb.case("printer")
    assert case["bomgar_session_key"] == result["short_key"]
    assert case["bomgar_session_url"] == result["key_url"]
    assert result["ticket_fields"]["written"] is True
    assert result["short_key"] in case["additional_notes"]


async def test_the_key_is_emailed_to_the_cases_customer(running: Running) -> None:
    answer = await _key(running, user="jdoe")
    assert answer.status_code == 200, answer.text
    (mail,) = running.mailbox.received()
    assert mail[1] == ["allen@example.com"]


async def test_resolved_cases_get_no_key(running: Running) -> None:
    answer = await _key(running, case="laptop", user="jdoe")
    assert answer.status_code == 409 and answer.json()["error"] == "ticket_closed"
    assert running.sim.state.session_keys == {}


async def test_jump_from_the_cases_search_criteria(running: Running) -> None:
    for console in ("rep", "web"):
        answer = await running.http.post(
            f"{running.url}/actions/jump",
            json={"integration": "agiloft", "ticket": str(running.kb.demo.ids["printer"]),
                  "output": "url", "console": console},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        params = dict(parse_qsl(urlsplit(answer.json()["url"]).query))
        assert params["action"] == "start_jump_item_session"
        assert params["search_string"] == "WKS-ALLEN"
        assert answer.json()["console"] == console


async def test_the_case_link(running: Running) -> None:
    links = await running.http.get(
        f"{running.url}/actions/links", params={"integration": "agiloft"}
    )
    assert links.status_code == 200, links.text
    assert any(link["name"] == "Agiloft support case" for link in links.json()["links"])


@pytest.mark.parametrize(
    ("field", "queue"),
    [
        ("Network", ("team", "2")),  # a bare team name
        ("jsmith", ("rep", "2")),  # a bare representative
        ("Team:Network", ("team", "2")),  # the prefix in any case
        ("REP:jsmith", ("rep", "2")),
    ],
)
async def test_the_mode_5_field_takes_a_representative_or_a_team(
    running: Running, field: str, queue: tuple[str, str]
) -> None:
    kb = running.kb
    kb.state.update("case", kb.demo.ids["printer"], {"bomgar_representative": [field]})
    answer = await _key(running, email=False, assignment="queue")
    assert answer.status_code == 200, answer.text
    key = running.sim.state.session_keys[answer.json()["short_key"]]
    assert (key.queue, key.queue_id) == queue


async def test_a_repeated_request_still_writes_the_key_into_the_case(running: Running) -> None:
    kb = running.kb
    first = await _key(running, email=False, user="jdoe", request_id="req-1")
    assert first.status_code == 200, first.text
    kb.state.update("case", kb.demo.ids["printer"], {"bomgar_session_key": [""]})
    again = await _key(running, email=False, user="jdoe", request_id="req-1")
    assert again.json()["repeated"] is True
    assert again.json()["ticket_fields"]["written"] is True
    assert kb.case("printer")["bomgar_session_key"] == first.json()["short_key"]
