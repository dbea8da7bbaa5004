"""``key_mail = "instance"``: the connector e-mails through the instance's Email API
(the simulated instance, over real HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rsbridge.connectors.servicenow import ServiceNowConnector
from rsbridge.errors import ConnectorPermanentError, ConnectorRetryableError
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.servicenow import SimServiceNowState, create_app
from tests.servicenow_helpers import connector_factory, seeded_state

Factory = Callable[..., ServiceNowConnector]


@pytest.fixture
def sn() -> Iterator[tuple[SimServiceNowState, str, tuple[str, str], str]]:
    state, demo = seeded_state(7)
    state.users["rsbridge"].roles |= {"email_api_send"}
    with serve_in_thread(create_app(state)) as url:
        yield state, url, demo.integration, demo.ids["INC0010001"]


@pytest.fixture
async def make(sn: tuple[SimServiceNowState, str, tuple[str, str], str]) -> AsyncIterator[Factory]:
    _, url, (user, password), _ = sn
    async with connector_factory(url, user, password) as factory:
        yield factory


async def test_smtp_unless_the_instance_is_asked_for(make: Factory) -> None:
    assert not make().sends_mail()
    assert make(key_mail="instance").sends_mail()


async def test_the_email_is_data_on_the_task(sn: Any, make: Factory) -> None:
    state, _, _, incident = sn
    connector = make(key_mail="instance")
    ticket = await connector.find_ticket("INC0010001")
    text = "Hello <script>alert(1)</script> & welcome\nhttps://support.example.com/?ak=1&b=2"
    email_id = await connector.send_mail(ticket, "abel.tuter@example.com", "Your\r\nkey", text)
    email = state.find("sys_email", email_id)
    assert email is not None
    assert (email["target_table"], email["instance"]) == ("incident", incident)
    assert email["subject"] == "Your key"  # one header line
    assert email["body_text"] == text
    assert "<script>" not in email["body"] and "&lt;script&gt;" in email["body"]
    assert "?ak=1&amp;b=2" in email["body"]


@pytest.mark.parametrize("address", ["", "two@example.com, three@example.com", "x@y\nBcc: z@w"])
async def test_a_bad_address_is_refused_without_a_call(
    sn: Any, make: Factory, address: str
) -> None:
    state = sn[0]
    connector = make(key_mail="instance")
    ticket = await connector.find_ticket("INC0010001")
    before = len(state.requests)
    with pytest.raises(ConnectorPermanentError, match="is not an e-mail address"):
        await connector.send_mail(ticket, address, "s", "t")
    assert len(state.requests) == before


async def test_instance_errors_are_the_connector_errors(sn: Any, make: Factory) -> None:
    state = sn[0]
    connector = make(key_mail="instance")
    ticket = await connector.find_ticket("INC0010001")
    state.fail_next(1, status=503)
    with pytest.raises(ConnectorRetryableError, match="send an e-mail: HTTP 503"):
        await connector.send_mail(ticket, "a@example.com", "s", "t")
    state.users["rsbridge"].roles -= {"email_api_send"}
    with pytest.raises(ConnectorPermanentError, match="email_api_send role"):
        await connector.send_mail(ticket, "a@example.com", "s", "t")
    assert state.query("sys_email") == []
