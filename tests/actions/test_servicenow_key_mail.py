"""The session-key e-mail through the instance (ServiceNow ``key_mail = "instance"``), end
to end: the actions API, the connector, the simulated instance's Email API, no SMTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rsbridge.config import parse_config
from rsbridge.engine.runtime import Engine
from rsbridge.web.serve import serving
from tests.actions.conftest import LINK_SECRET, OTHER_TOKEN, TOKEN, Sim, config_data
from tests.conftest import SIGNING_SECRET
from tests.servicenow_helpers import Snow, running_instance

SECRETS = (TOKEN, OTHER_TOKEN, LINK_SECRET, SIGNING_SECRET)


@pytest.fixture
def snow() -> Iterator[Snow]:
    with running_instance(17) as running:
        running.state.users["rsbridge"].roles |= {"email_api_send"}
        yield running


@dataclass
class Running:
    url: str
    http: httpx.AsyncClient
    snow: Snow
    sim: Sim

    async def key(self, **request: Any) -> httpx.Response:
        body = {"integration": "servicenow", "ticket": "INC0010001", "assignment": "general"}
        return await self.http.post(f"{self.url}/actions/session-key", json={**body, **request})

    def emails(self) -> list[dict[str, str]]:
        return self.snow.state.query("sys_email")


@pytest.fixture
async def running(tmp_path: Path, sim: Sim, snow: Snow) -> AsyncIterator[Running]:
    user, password = snow.demo.integration
    integration = {
        "name": "servicenow",
        "connector": "servicenow",
        "settings": {
            "instance_url": snow.url,
            "username": user,
            "password": password,
            "key_mail": "instance",
        },
        "actions": {"email_key": True},
    }
    # No [smtp] section: the instance sends the e-mail.
    config = parse_config(config_data(tmp_path, sim, None, integrations=[integration]))
    assert config.smtp is None
    async with (
        Engine(config) as engine,
        serving(engine.asgi_app()) as url,
        httpx.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http,
    ):
        yield Running(url, http, snow, sim)


async def test_the_key_email_is_in_the_instance_log_on_the_incident(running: Running) -> None:
    incident = running.snow.demo.ids["INC0010001"]
    answer = await running.key(request_id="mail-1")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    (email,) = running.emails()
    # To the incident's caller; the ref is the e-mail's record.
    assert body["email"] == {"sent": True, "ref": email["sys_id"], "to": "abel.tuter@example.com"}
    assert (email["target_table"], email["instance"]) == ("incident", incident)
    assert email["recipients"] == "abel.tuter@example.com"
    assert (email["type"], email["mailbox"]) == ("send-ready", "outbox")
    assert email["subject"] == body["mail_subject"]
    # The text of the session_key_mail templates (by default the appliance's own).
    assert email["body_text"].strip() == body["mail_body"].strip()
    assert body["key_url"] in email["body_text"] and body["key_url"] in email["body"]
    # Nothing secret in it, nor in what the instance was sent.
    sent = json.dumps(email) + json.dumps([r.query for r in running.snow.state.requests])
    password = running.snow.demo.integration[1]
    assert not [s for s in (*SECRETS, password) if s in sent]
    # The same request again: the same key, no second e-mail.
    again = await running.key(request_id="mail-1")
    assert again.json()["short_key"] == body["short_key"]
    assert again.json()["email"]["ref"] == email["sys_id"]
    assert len(running.emails()) == 1


async def test_a_lost_email_api_answer_sends_no_second_email_on_the_retry(
    running: Running,
) -> None:
    # The instance sends the e-mail but its answer is lost (a proxy timed out): the
    # technician clicks again with the same request, and rsbridge finds the e-mail by the
    # marker it sent in the headers instead of sending a second one (the integration user
    # may read the e-mail log).
    running.snow.state.set_table_acl("sys_email", ["email_api_send"], ["admin"])
    first = await running.key(request_id="mail-lost")
    assert first.json()["email"]["sent"] is True
    assert len(running.emails()) == 1
    running.snow.state.fail_next(1, 504, after_processing=True, path="/api/now/v1/email")
    lost = await running.key(request_id="mail-lost-2")
    assert lost.json()["email"]["sent"] is False
    (sent,) = [e for e in running.emails() if e["sys_id"] != first.json()["email"]["ref"]]
    again = await running.key(request_id="mail-lost-2")
    assert again.json()["email"] == {
        "sent": True,
        "ref": sent["sys_id"],
        "to": "abel.tuter@example.com",
    }
    assert len(running.emails()) == 2
    # A request that never reached the instance is sent on the retry.
    running.snow.state.fail_next(1, 503, path="/api/now/v1/email")
    refused = await running.key(request_id="mail-down")
    assert refused.json()["email"]["sent"] is False
    assert len(running.emails()) == 2
    retried = await running.key(request_id="mail-down")
    assert retried.json()["email"]["sent"] is True
    assert len(running.emails()) == 3


async def test_without_read_access_to_the_email_log_a_lost_answer_sends_again(
    running: Running, caplog: pytest.LogCaptureFixture
) -> None:
    running.snow.state.fail_next(1, 504, after_processing=True, path="/api/now/v1/email")
    lost = (await running.key(request_id="mail-x")).json()
    assert lost["email"]["sent"] is False
    assert len(running.emails()) == 1
    again = (await running.key(request_id="mail-x")).json()
    assert again["email"]["sent"] is True
    assert len(running.emails()) == 2  # sent twice: better than not at all
    assert "grant the integration user read access to sys_email" in caplog.text


@pytest.mark.parametrize(
    "address", ["not an address", "a@example.com\r\nBcc: b@example.com", "A <a@example.com>"]
)
async def test_a_bad_address_is_refused_before_any_key(running: Running, address: str) -> None:
    answer = await running.key(email_to=address)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert running.emails() == []
    assert running.sim.state.session_keys == {}


async def test_an_instance_error_is_reported_clearly_with_the_key(running: Running) -> None:
    running.snow.state.users["rsbridge"].roles -= {"email_api_send"}
    answer = await running.key(request_id="mail-2")
    assert answer.status_code == 200, answer.text  # the key exists: it is answered
    body = answer.json()
    assert body["short_key"] and body["email"]["sent"] is False
    error = body["email"]["error"]
    assert "send an e-mail: access refused" in error
    assert "give the integration user the email_api_send role" in error
    password = running.snow.demo.integration[1]
    assert not [s for s in (*SECRETS, password) if s in error]
    assert running.emails() == []
    # Nothing recorded as sent: the same request, once the role is given, sends it.
    running.snow.state.users["rsbridge"].roles |= {"email_api_send"}
    again = (await running.key(request_id="mail-2")).json()
    assert again["short_key"] == body["short_key"] and again["email"]["sent"] is True
    assert len(running.emails()) == 1
