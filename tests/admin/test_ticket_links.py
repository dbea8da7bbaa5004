"""Connector.ticket_link: the URL of a ticket in its system's own UI, for the session page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rsbridge.connectors.agiloft.connector import AgiloftConnector
from rsbridge.connectors.base import Connector
from rsbridge.connectors.jsonl import JsonlConnector
from rsbridge.connectors.remedy.connector import RemedyConnector
from rsbridge.connectors.salesforce.connector import SalesforceConnector
from rsbridge.connectors.servicenow.connector import ServiceNowConnector
from rsbridge.connectors.webhook import WebhookConnector


@pytest.fixture
async def made() -> AsyncIterator[list[Connector]]:
    connectors: list[Connector] = []
    yield connectors
    for connector in connectors:
        await connector.aclose()


def _make(made: list[Connector], cls: type[Connector], **raw: object) -> Connector:
    connector = cls(cls.validate_settings(raw))
    made.append(connector)
    return connector


SYS_ID = "46d44a23a9fe19810012d100cca80666"


async def test_servicenow_links_to_the_record_form_of_its_table(made: list[Connector]) -> None:
    snow = _make(
        made,
        ServiceNowConnector,
        instance_url="https://acme.service-now.com",
        username="u",
        password="p",
    )
    assert snow.ticket_link(SYS_ID, {"kind": "incident", "number": "INC0010001"}) == (
        f"https://acme.service-now.com/nav_to.do?uri=incident.do?sys_id={SYS_ID}"
    )
    # No table known (or not a table name): the task form opens every kind of task.
    assert snow.ticket_link(SYS_ID, {}) == (
        f"https://acme.service-now.com/nav_to.do?uri=task.do?sys_id={SYS_ID}"
    )
    odd = snow.ticket_link("a&b=c", {"kind": "x.do?evil=1&"})
    assert odd == "https://acme.service-now.com/nav_to.do?uri=task.do?sys_id=a%26b%3Dc"


async def test_salesforce_links_to_the_case_in_lightning(made: list[Connector]) -> None:
    sf = _make(
        made,
        SalesforceConnector,
        login_url="https://acme.my.salesforce.com",
        client_id="k",
        client_secret="s",
    )
    assert sf.ticket_link("500XX000001", {"number": "00001026"}) == (
        "https://acme.my.salesforce.com/lightning/r/Case/500XX000001/view"
    )
    assert sf.ticket_link("../x?y", {}) == (
        "https://acme.my.salesforce.com/lightning/r/Case/..%2Fx%3Fy/view"
    )


async def test_remedy_links_to_the_mid_tier_form_searched_by_number(
    made: list[Connector],
) -> None:
    remedy = _make(
        made,
        RemedyConnector,
        server_url="https://ar.example.com",
        midtier_url="https://midtier.example.com",
        ar_server="arsys01",
        username="u",
        password="p",
    )
    link = remedy.ticket_link("INC000000000101", {"kind": "incident"})
    assert link is not None
    assert link.startswith("https://midtier.example.com/arsys/forms/arsys01/HPD%3AHelp%20Desk/")
    assert "INC000000000101" in link
    # Not a ticket number, or a kind it does not know: no link rather than a wrong one.
    assert remedy.ticket_link("x' OR 1=1", {"kind": "incident"}) is None
    assert remedy.ticket_link("INC000000000101", {"kind": "nonsense"}) is None


async def test_systems_without_a_documented_link_give_none(
    made: list[Connector], tmp_path: Path
) -> None:
    agiloft = _make(
        made,
        AgiloftConnector,
        kb_url="https://acme.agiloft.com",
        kb="Demo",
        login="u",
        password="p",
    )
    jsonl = _make(made, JsonlConnector, path=str(tmp_path / "d.jsonl"))
    hook = _make(made, WebhookConnector, url="https://hooks.example.com/in")
    for connector in (agiloft, jsonl, hook):
        assert connector.ticket_link("123", {"number": "123"}) is None
