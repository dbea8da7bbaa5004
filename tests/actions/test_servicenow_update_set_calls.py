"""The update set's REST message, as stored in an instance, calls rsbridge's actions API.

The instance imports ``rsbridge servicenow update-set``; each request is then built from
the stored ``sys_rest_message_fn`` records the way ``sn_ws.RESTMessageV2`` builds it
(endpoint, HTTP method, headers and body with their ``${variables}`` substituted, the
token taken from the ``rsbridge.actions.token`` property) and sent to a running rsbridge.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from rsbridge.connectors.servicenow.update_set import TOKEN_PROPERTY
from tests.actions.conftest import Mailbox, Sim
from tests.actions.snow_bridge import Bridge, bridge_for
from tests.servicenow_helpers import Snow, running_instance


@pytest.fixture
def snow() -> Iterator[Snow]:
    with running_instance(17) as running:
        yield running


@pytest.fixture
async def bridge(tmp_path: Path, sim: Sim, mailbox: Mailbox, snow: Snow) -> AsyncIterator[Bridge]:
    async with bridge_for(tmp_path, sim, mailbox, snow) as running:
        yield running


def substitute(text: str, values: dict[str, str], *, json_string: bool) -> str:
    """``${name}`` replaced as RESTMessageV2 does (escaped for a JSON string in a body)."""

    def one(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return json.dumps(value)[1:-1] if json_string else value

    return re.sub(r"\$\{(\w+)\}", one, text)


async def call(bridge: Bridge, method_name: str, **variables: str) -> httpx.Response:
    """Send HTTP method ``method_name`` of the stored REST message ``rsbridge``."""
    state = bridge.snow.state
    (method,) = [
        m for m in state.records("sys_rest_message_fn") if m["function_name"] == method_name
    ]
    props = {p["name"]: p["value"] for p in state.records("sys_properties")}
    values = {"token": props[TOKEN_PROPERTY], **variables}
    headers = {
        h["name"]: substitute(h["value"], values, json_string=False)
        for h in state.records("sys_rest_message_fn_headers")
        if h["rest_message_function"] == method["sys_id"]
    }
    declared = {
        v["name"]
        for v in state.records("sys_rest_message_fn_param_defs")
        if v["rest_message_function"] == method["sys_id"]
    }
    assert set(values) <= declared, (method_name, values, declared)
    body = substitute(method["content"], values, json_string=True)
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.request(
            method["http_method"].upper(),
            substitute(method["rest_endpoint"], values, json_string=False),
            headers=headers,
            content=body.encode() if body else None,
        )


async def test_session_key_gets_a_key_for_the_ticket(bridge: Bridge) -> None:
    click = {"ticket": "INC0010001", "user": "jsmith", "request_id": "sys-inc1-click-1"}
    answer = await call(bridge, "session-key", **click)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    key = bridge.sim.state.session_keys[body["short_key"]]
    assert key.custom["snow_task_id"] == bridge.snow.demo.ids["INC0010001"]
    # The same click sent again (a double click) gets the same key, not a second one.
    again = await call(bridge, "session-key", **click)
    assert again.json()["short_key"] == body["short_key"] and again.json()["repeated"]
    assert len(bridge.sim.state.session_keys) == 1


async def test_issues_and_pull_answer_for_the_integration(bridge: Bridge) -> None:
    issues = await call(bridge, "issues")
    assert issues.status_code == 200, issues.text
    assert issues.json()["integration"] == "servicenow"
    pulled = await call(bridge, "pull-now")
    assert pulled.status_code == 200, pulled.text
    assert pulled.json()["integration"] == "servicenow" and pulled.json()["first_run"] is True


async def test_a_wrong_token_in_the_property_is_refused(bridge: Bridge) -> None:
    state = bridge.snow.state
    (prop,) = [p for p in state.records("sys_properties") if p["name"] == TOKEN_PROPERTY]
    state.update("sys_properties", prop["sys_id"], {"value": "not-the-actions-token-0000"})
    answer = await call(bridge, "jump", ticket="INC0010001", ci="")
    assert answer.status_code == 401
