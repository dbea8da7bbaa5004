"""Get Support Now from a self-service portal: the Apex's requests against the real engine.

The portal's Apex class (``RSBridgeSupportNow``) cannot run here; its requests can. The
routes, methods and body fields are read from the generated Apex, sent with the token of
the portal's rsbridge client (limited to the issues and support-now routes, as the
portal's principal holds it) to the engine with the Salesforce connector on the simulated
org, with the package loaded. The customer gets a start URL for their own Case, not for
someone else's, and the portal's token opens nothing else.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from rsbridge.config import parse_config
from rsbridge.connectors.salesforce.demo import prepared_org
from rsbridge.connectors.salesforce.package import SOURCE_DIR, package_files
from rsbridge.connectors.salesforce.portal import PORTAL_CLASS
from rsbridge.connectors.salesforce.schema import Schema
from rsbridge.engine.runtime import Engine
from rsbridge.sim.salesforce import DemoSeed, SimSalesforceState, create_app
from rsbridge.sim.serve import serve_in_thread
from rsbridge.web.serve import serving
from tests.actions.conftest import Mailbox, Sim, config_data

PORTAL_TOKEN = "portal-client-token-0123456789abcdef"


@dataclass
class Portal:
    url: str
    http: httpx.AsyncClient
    org: SimSalesforceState
    demo: DemoSeed
    apex: str


@pytest.fixture
async def portal(tmp_path: Path, sim: Sim, mailbox: Mailbox) -> AsyncIterator[Portal]:
    org, demo = prepared_org(7, tmp_path)
    key, secret = demo.app
    apex = package_files(Schema.build())[f"{SOURCE_DIR}/classes/{PORTAL_CLASS}.cls"].decode()
    with serve_in_thread(create_app(org)) as org_url:
        integrations: list[dict[str, Any]] = [
            {
                "name": "salesforce",
                "connector": "salesforce",
                "actions": {"self_service_enabled": True},
                "settings": {"login_url": org_url, "client_id": key, "client_secret": secret},
            }
        ]
        clients = [
            {
                "name": "salesforce-portal",
                "token": PORTAL_TOKEN,
                "integrations": ["salesforce"],
                "routes": ["issues", "support_now"],
            }
        ]
        data = config_data(
            tmp_path, sim, mailbox, integrations=integrations, actions={"clients": clients}
        )
        async with (
            Engine(parse_config(data)) as engine,
            serving(engine.asgi_app()) as url,
            httpx.AsyncClient(
                headers={"Authorization": f"Bearer {PORTAL_TOKEN}"}, timeout=30
            ) as http,
        ):
            yield Portal(url, http, org, demo, apex)


def _route(apex: str, method: str, path: str) -> str:
    """The path (without query) of the Apex's ``send(method, path...)`` call."""
    found = re.findall(rf"send\(\s*'{method}',\s*'({re.escape(path)})[?']", apex)
    assert found == [path], (method, path)
    return path


def _fields(apex: str) -> set[str]:
    """The JSON field names ``supportNow`` puts in its body."""
    source = apex[apex.index("public static String supportNow(") :]
    return set(re.findall(r"'([a-z_]+)' =>", source))


async def _support_now(portal: Portal, case: str, email: str, issue: str) -> httpx.Response:
    values = {
        "integration": "salesforce",
        "ticket": portal.demo.ids[case],
        "requester_email": email,
        "customer_name": "Ada Lovelace",
        "issue": issue,
        "start_type": "chat",
        "details": "The printer jams.",
        "request_id": f"sf-1700000000000-{case}",
    }
    fields = _fields(portal.apex)
    assert fields == set(values)
    path = _route(portal.apex, "POST", "/actions/support-now")
    return await portal.http.post(f"{portal.url}{path}", json=values)


async def test_a_customer_gets_a_start_url_for_their_case(portal: Portal) -> None:
    path = _route(portal.apex, "GET", "/actions/issues")
    assert "?integration=' + EncodingUtil.urlEncode(RSBridgeActions.INTEGRATION" in portal.apex
    issues = await portal.http.get(f"{portal.url}{path}", params={"integration": "salesforce"})
    assert issues.status_code == 200, issues.text
    code = issues.json()["issues"][0]["code_name"]
    answer = await _support_now(portal, "case_printer", "ADA@acme.example", code)
    assert answer.status_code == 200, answer.text
    url = answer.json()["url"]
    assert url.startswith("https://")  # what the component and the Apex link to
    params = dict(parse_qsl(urlsplit(url).query))
    assert params["session.custom.external_key"] == portal.demo.ids["case_printer"]
    assert params["codeName"] == code


async def test_someone_elses_case_is_refused(portal: Portal) -> None:
    issues = await portal.http.get(
        f"{portal.url}/actions/issues", params={"integration": "salesforce"}
    )
    code = issues.json()["issues"][0]["code_name"]
    # Ada may read Grace's Case through a sharing mistake; rsbridge still refuses it.
    answer = await _support_now(portal, "case_vpn", "ada@acme.example", code)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "not_your_ticket"


async def test_the_portal_token_opens_nothing_else(portal: Portal) -> None:
    answer = await portal.http.post(
        f"{portal.url}/actions/session-key",
        json={"integration": "salesforce", "ticket": portal.demo.ids["case_printer"]},
    )
    assert answer.status_code == 403, answer.text
