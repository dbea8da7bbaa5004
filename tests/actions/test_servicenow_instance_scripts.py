"""The update set's UI action, widget and page scripts, run in Node against a stand-in for
the Glide calls they use (tests/glide/glide_standin.js), as the instance stores them.

Everything the scripts see comes from the simulated instance after it imported the update
set: the Script Include, the UI action's script and condition, the REST message's
methods and headers, the properties (the token typed in). The stand-in's GlideRecord
reads the instance through its Table API and its RESTMessageV2.execute() makes a real
synchronous HTTP call to the running rsbridge, with the simulated appliance behind it.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from rsbridge.connectors.servicenow.update_set import REST_MESSAGE, TOKEN_PROPERTY
from rsbridge.sim.servicenow.seed import SEED_START
from tests.actions.conftest import TOKEN, Mailbox, Sim
from tests.actions.snow_bridge import Bridge, bridge_for
from tests.glide import STANDIN, node_or_skip
from tests.servicenow_helpers import Snow, running_instance

NOW_MS = int(SEED_START * 1000) + 3_600_000
TECHNICIAN: tuple[str, list[str]] = ("jsmith", ["itil", "rsbridge_user"])


@pytest.fixture
def node() -> str:
    return node_or_skip()


@pytest.fixture
def snow() -> Iterator[Snow]:
    with running_instance(17) as running:
        yield running


@pytest.fixture
async def bridge(tmp_path: Path, sim: Sim, mailbox: Mailbox, snow: Snow) -> AsyncIterator[Bridge]:
    async with bridge_for(tmp_path, sim, mailbox, snow, self_service_enabled=True) as running:
        yield running


def stored(bridge: Bridge, table: str, /, **match: str) -> dict[str, str]:
    (found,) = [
        r for r in bridge.snow.state.records(table) if all(r[k] == v for k, v in match.items())
    ]
    return found


def rest_messages(bridge: Bridge) -> dict[str, dict[str, Any]]:
    """The stored REST messages, as RESTMessageV2 reads them."""
    state = bridge.snow.state
    messages: dict[str, dict[str, Any]] = {}
    names = {m["sys_id"]: m["name"] for m in state.records("sys_rest_message")}
    for fn in state.records("sys_rest_message_fn"):
        headers = {
            h["name"]: h["value"]
            for h in state.records("sys_rest_message_fn_headers")
            if h["rest_message_function"] == fn["sys_id"]
        }
        messages.setdefault(names[fn["rest_message"]], {})[fn["function_name"]] = {
            "endpoint": fn["rest_endpoint"],
            "http_method": fn["http_method"],
            "content": fn["content"],
            "headers": headers,
        }
    return messages


def world(
    bridge: Bridge,
    script: str,
    *,
    user: tuple[str, list[str]] = TECHNICIAN,
    current: tuple[str, str] | None = None,
    mode: str = "script",
    now_ms: int = NOW_MS,
    **extra: Any,
) -> dict[str, Any]:
    state = bridge.snow.state
    admin, password = bridge.snow.demo.admin
    (account,) = [u for u in state.records("sys_user") if u["user_name"] == user[0]]
    return {
        "instance": {"url": bridge.snow.url, "user": admin, "password": password},
        "rest_messages": rest_messages(bridge),
        "properties": {p["name"]: p["value"] for p in state.records("sys_properties")},
        "script_includes": [s["script"] for s in state.records("sys_script_include")],
        "user": {
            "sys_id": account["sys_id"],
            "user_name": user[0],
            "email": account["email"],
            "roles": user[1],
        },
        "now_ms": now_ms,
        "mode": mode,
        "script": script,
        "current": {"table": current[0], "sys_id": current[1]} if current else None,
        **extra,
    }


async def run(node: str, tmp_path: Path, data: dict[str, Any]) -> dict[str, Any]:
    path = tmp_path / "world.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    process = await asyncio.create_subprocess_exec(
        node,
        str(STANDIN),
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode == 0, stderr.decode()
    result: dict[str, Any] = json.loads(stdout)
    return result


def action_script(bridge: Bridge, table: str, action_name: str) -> str:
    return stored(bridge, "sys_ui_action", table=table, action_name=action_name)["script"]


async def click(
    node: str, tmp_path: Path, bridge: Bridge, table: str, action_name: str, **kwargs: Any
) -> dict[str, Any]:
    script = action_script(bridge, table, action_name)
    return await run(node, tmp_path, world(bridge, script, **kwargs))


def incident(bridge: Bridge, number: str) -> tuple[str, str]:
    return ("incident", bridge.snow.demo.ids[number])


# --- Session Key ------------------------------------------------------------------------


async def open_dialog(
    node: str, tmp_path: Path, bridge: Bridge, clicks: list[str], **kwargs: Any
) -> dict[str, Any]:
    """The client-side Session Key button's script loaded on the task form, then
    ``clicks`` run one after the other (each followed by its GlideAjax answers)."""
    stored_action = stored(
        bridge, "sys_ui_action", table="task", action_name="rsbridge_session_key"
    )
    assert stored_action["client"] == "true"
    assert stored_action["onclick"] == "rsbridgeSessionKey()"
    data = world(bridge, stored_action["script"], mode="client", clicks=clicks, **kwargs)
    return await run(node, tmp_path, data)


async def test_session_key_dialog_shows_the_key_repeats_it_and_emails_it_once(
    node: str, tmp_path: Path, bridge: Bridge, mailbox: Mailbox
) -> None:
    ticket = incident(bridge, "INC0010001")
    answer = await open_dialog(
        node,
        tmp_path,
        bridge,
        [
            "rsbridgeSessionKey(); rsbridgeSessionKey()",  # a double click
            "rsbridgeSessionKey()",  # clicked again, the dialog still open
            "rsbridgeEmailSessionKey()",
            "rsbridgeEmailSessionKey()",
            "rsbridgeCloseSessionKey()",
            "rsbridgeSessionKey()",  # a new dialog opening
        ],
        current=ticket,
    )
    assert answer["errors"] == [], answer
    bodies = [json.loads(r["body"]) for r in answer["requests"]]
    assert all(r["url"] == bridge.url + "/actions/session-key" for r in answer["requests"])
    assert all(r["headers"]["Authorization"] == f"Bearer {TOKEN}" for r in answer["requests"])
    assert [b.get("email", False) for b in bodies] == [False, False, False, True, True, False]
    first_id = bodies[0]["request_id"]
    assert first_id.startswith(f"rsb-sk.{ticket[1]}.")
    assert {b["request_id"] for b in bodies[:5]} == {first_id}
    assert bodies[5]["request_id"] != first_id
    assert all(b["ticket"] == ticket[1] and b["user"] == "jsmith" for b in bodies)

    keys = bridge.sim.state.session_keys
    assert len(keys) == 2  # one per dialog opening
    first_key = next(k for k, v in keys.items() if v.custom["snow_task_id"] == ticket[1])
    first, second = answer["dialogs"]
    assert first["title"] == "Session Key" and first["closed"] and not second["closed"]
    assert len(first["html"]) == 5
    shown = first["html"][0]
    assert f'<b class="rsbridge-key">{first_key}</b> for INC0010001' in shown
    access_key = bridge.sim.state.session_keys[first_key].access_key
    assert re.search(f'<a href="https://[^"<>]+{access_key}"', shown), shown
    assert "valid until " in shown
    assert 'onclick="rsbridgeEmailSessionKey()">E-mail the key</button>' in shown
    assert all(f">{first_key}</b>" in html for html in first["html"])
    assert "E-mailed to abel.tuter@example.com." in first["html"][3]
    assert first_key not in second["html"][0]

    ((_, to, message),) = mailbox.received()  # e-mailed once
    assert to == ["abel.tuter@example.com"]
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert bridge.sim.state.session_keys[first_key].access_key in payload.decode()


async def test_session_key_dialog_refuses_without_the_role_or_on_a_closed_task(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    ticket = incident(bridge, "INC0010001")
    viewer = await open_dialog(
        node, tmp_path, bridge, ["rsbridgeSessionKey()"], current=ticket, user=("viewer", ["itil"])
    )
    assert viewer["requests"] == []
    assert "Session keys need the role rsbridge_user." in viewer["dialogs"][0]["html"][0]
    # Closed before the answer came: nothing is shown for it.
    gone = await open_dialog(
        node,
        tmp_path,
        bridge,
        ["rsbridgeSessionKey(); rsbridgeCloseSessionKey()"],
        current=ticket,
        user=("viewer", ["itil"]),
    )
    assert gone["dialogs"] == []
    closed = incident(bridge, "INC0010003")
    bridge.snow.state.update("incident", closed[1], {"state": "7", "active": "false"})
    answer = await open_dialog(node, tmp_path, bridge, ["rsbridgeSessionKey()"], current=closed)
    assert answer["requests"] == []
    assert "No open task to make a key for." in answer["dialogs"][0]["html"][0]
    assert bridge.sim.state.session_keys == {}


async def test_session_key_in_workspace_gets_a_key_and_a_double_click_the_same_key(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    ticket = incident(bridge, "INC0010001")
    name = "rsbridge_session_key_workspace"
    first = await click(node, tmp_path, bridge, "task", name, current=ticket)
    assert first["errors"] == [], first
    (request,) = first["requests"]
    body = json.loads(request["body"])
    assert body["ticket"] == ticket[1] and body["request_id"].startswith("rsb-sk.")
    (short_key,) = bridge.sim.state.session_keys
    (message,) = first["info"]
    assert f"Session key <b>{short_key}</b> for INC0010001" in message
    assert first["redirect"] == f"incident.do?sys_id={ticket[1]}"

    again = await click(node, tmp_path, bridge, "task", name, current=ticket)
    assert json.loads(again["requests"][0]["body"])["request_id"] == body["request_id"]
    assert len(bridge.sim.state.session_keys) == 1
    assert "The same key" in again["info"][0]

    later = await click(
        node, tmp_path, bridge, "task", name, current=ticket, now_ms=NOW_MS + 10 * 60 * 1000
    )
    assert later["errors"] == [] and len(bridge.sim.state.session_keys) == 2


async def test_email_session_key_in_workspace_sends_the_key_already_shown_once(
    node: str, tmp_path: Path, bridge: Bridge, mailbox: Mailbox
) -> None:
    ticket = incident(bridge, "INC0010001")
    shown = await click(
        node, tmp_path, bridge, "task", "rsbridge_session_key_workspace", current=ticket
    )
    (short_key,) = bridge.sim.state.session_keys
    name = "rsbridge_session_key_email_workspace"
    mailed = await click(node, tmp_path, bridge, "task", name, current=ticket)
    assert mailed["errors"] == [], mailed
    body = json.loads(mailed["requests"][0]["body"])
    assert body["email"] is True
    assert body["request_id"] == json.loads(shown["requests"][0]["body"])["request_id"]
    assert len(bridge.sim.state.session_keys) == 1  # the key already shown
    assert f"<b>{short_key}</b>" in mailed["info"][0]
    ((_, to, message),) = mailbox.received()
    assert mailed["info"][1] == f"E-mailed to {to[0]}."
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert bridge.sim.state.session_keys[short_key].access_key in payload.decode()
    again = await click(node, tmp_path, bridge, "task", name, current=ticket)
    assert again["errors"] == [] and len(mailbox.received()) == 1  # no second e-mail


async def test_conditions_show_the_buttons_where_they_belong(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    state = bridge.snow.state
    open_one = incident(bridge, "INC0010001")
    closed = incident(bridge, "INC0010003")
    state.update("incident", closed[1], {"state": "7", "active": "false"})

    async def shown(
        table: str, name: str, current: tuple[str, str], user: tuple[str, list[str]]
    ) -> bool:
        condition = stored(bridge, "sys_ui_action", table=table, action_name=name)["condition"]
        data = world(bridge, condition, mode="condition", current=current, user=user)
        return bool((await run(node, tmp_path, data))["result"])

    assert await shown("task", "rsbridge_session_key", open_one, TECHNICIAN)
    assert not await shown("task", "rsbridge_session_key", closed, TECHNICIAN)
    assert not await shown("task", "rsbridge_session_key", open_one, ("viewer", ["itil"]))
    caller: tuple[str, list[str]] = ("abel.tuter", [])
    assert await shown("incident", "rsbridge_get_support_now", open_one, caller)
    assert not await shown("incident", "rsbridge_get_support_now", open_one, TECHNICIAN)
    assert await shown("task", "rsbridge_jump_to_ci", open_one, TECHNICIAN)
    no_ci = incident(bridge, "INC0010003")
    state.update("incident", no_ci[1], {"active": "true"})
    assert not await shown("task", "rsbridge_jump_to_ci", no_ci, TECHNICIAN)


# --- Jump, Get Support Now, Load Issues, Pull now, the widget ---------------------------


async def test_jump_buttons_open_the_console_for_the_ci_and_the_callers_computer(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    ids = bridge.snow.demo.ids
    ticket = incident(bridge, "INC0010001")
    to_ci = await click(node, tmp_path, bridge, "task", "rsbridge_jump_to_ci", current=ticket)
    assert to_ci["errors"] == [], to_ci
    assert json.loads(to_ci["requests"][0]["body"])["ticket"] == ticket[1]
    assert to_ci["redirect"] and to_ci["redirect"].startswith("http")
    assert "ws-ann-01" in to_ci["info"][0]

    other = incident(bridge, "INC0010002")  # Beth Anglin's
    bridge.snow.state.update("incident", other[1], {"cmdb_ci": ""})
    caller = await click(
        node, tmp_path, bridge, "incident", "rsbridge_jump_to_caller_computer", current=other
    )
    assert caller["errors"] == [], caller
    assert json.loads(caller["requests"][0]["body"])["ci"] == ids["ws-beth-02"]
    assert "ws-beth-02" in caller["info"][0]

    on_ci = await click(
        node,
        tmp_path,
        bridge,
        "cmdb_ci",
        "rsbridge_jump_to_ci",
        current=("cmdb_ci_computer", ids["ws-beth-02"]),
    )
    assert on_ci["errors"] == [], on_ci
    body = json.loads(on_ci["requests"][0]["body"])
    assert body["ci"] == ids["ws-beth-02"] and "ticket" not in body
    assert "ws-beth-02" in on_ci["info"][0]


async def test_a_caller_without_a_computer_gets_a_clear_error(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    ticket = incident(bridge, "INC0010003")  # Charlie has no computer in the CMDB
    answer = await click(
        node, tmp_path, bridge, "incident", "rsbridge_jump_to_caller_computer", current=ticket
    )
    assert answer["requests"] == []
    assert answer["errors"] == [
        "No Jump: the caller has no computer in the CMDB "
        "(a cmdb_ci_computer whose Assigned to is the caller)."
    ]


async def test_get_support_now_sends_the_caller_to_the_session(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    ticket = incident(bridge, "INC0010001")
    answer = await click(
        node,
        tmp_path,
        bridge,
        "incident",
        "rsbridge_get_support_now",
        current=ticket,
        user=("abel.tuter", []),
    )
    assert answer["errors"] == [], answer
    started = json.loads(answer["requests"][1]["body"])
    assert started["requester_email"] == "abel.tuter@example.com"
    assert started["ticket"] == ticket[1] and started["issue"]
    assert started["request_id"].startswith("rsb-sn.")
    assert answer["redirect"].startswith(f"https://{bridge.sim.host}/api/start_session?")
    assert "customer.details=Outlook%20keeps" in answer["redirect"]


async def test_load_issues_is_the_connectivity_test(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    prop = ("sys_properties", stored(bridge, "sys_properties", name=TOKEN_PROPERTY)["sys_id"])
    admin = ("admin", ["admin"])
    good = await click(
        node, tmp_path, bridge, "sys_properties", "rsbridge_load_issues", current=prop, user=admin
    )
    assert good["errors"] == [], good
    assert good["info"][0].startswith("rsbridge reached the appliance: ")
    assert good["requests"][0]["method"] == "GET"

    bridge.snow.state.update("sys_properties", prop[1], {"value": "not-the-token-000000000"})
    refused = await click(
        node, tmp_path, bridge, "sys_properties", "rsbridge_load_issues", current=prop, user=admin
    )
    (error,) = refused["errors"]
    assert error.startswith("Something went wrong while attempting to load issues: ")
    assert "not-the-token" not in error

    bridge.snow.state.update("sys_properties", prop[1], {"value": ""})
    empty = await click(
        node, tmp_path, bridge, "sys_properties", "rsbridge_load_issues", current=prop, user=admin
    )
    assert empty["requests"] == [] and TOKEN_PROPERTY in empty["errors"][0]


async def test_an_unreachable_rsbridge_is_named_in_the_error(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    data = world(
        bridge,
        action_script(bridge, "task", "rsbridge_session_key_workspace"),
        current=incident(bridge, "INC0010001"),
    )
    for method in data["rest_messages"][REST_MESSAGE].values():
        method["endpoint"] = "http://127.0.0.1:9/actions/session-key"
    answer = await run(node, tmp_path, data)
    (error,) = answer["errors"]
    assert error.startswith("No session key: rsbridge could not be reached: ")


async def test_pull_now_page_queues_the_sessions(node: str, tmp_path: Path, bridge: Bridge) -> None:
    page = stored(bridge, "sys_ui_page", name="rsbridge_pull_now")
    answer = await run(
        node, tmp_path, world(bridge, page["processing_script"], user=("admin", ["admin"]))
    )
    assert answer["errors"] == [], answer
    assert answer["info"][0].startswith("rsbridge queued ")
    assert answer["redirect"] == "rsbridge_pull_now.do"
    refused = await run(node, tmp_path, world(bridge, page["processing_script"]))
    assert refused["requests"] == [] and "rsbridge_admin" in refused["errors"][0]


async def test_the_portal_widget_lists_issues_and_starts_a_session(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    widget = stored(bridge, "sp_widget", id="rsbridge-get-support-now")
    ticket = bridge.snow.demo.ids["INC0010001"]
    caller: tuple[str, list[str]] = ("abel.tuter", [])
    loaded = await run(
        node,
        tmp_path,
        world(bridge, widget["script"], mode="widget", user=caller, params={"sys_id": ticket}),
    )
    assert loaded["data"]["error"] == "", loaded
    issues = loaded["data"]["issues"]
    assert issues and loaded["data"]["ticket"] == ticket
    start = {"action": "start", "ticket": ticket, "issue": issues[0]["code_name"], "details": "x"}
    started = await run(
        node, tmp_path, world(bridge, widget["script"], mode="widget", user=caller, input=start)
    )
    assert started["data"]["error"] == "", started
    assert started["data"]["url"].startswith("http")
    body = json.loads(started["requests"][0]["body"])
    assert body["issue"] == issues[0]["code_name"] and body["details"] == "x"

    stranger = await run(
        node,
        tmp_path,
        world(bridge, widget["script"], mode="widget", user=("beth.anglin", []), input=start),
    )
    assert stranger["data"]["url"] == "" and stranger["data"]["error"]


async def test_the_related_lists_page_adds_the_session_list_once_keeping_the_forms_lists(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    state = bridge.snow.state
    # The incident form's related lists as an instance has them; problem has none.
    incident_list = state.insert(
        "sys_ui_related_list", {"name": "incident", "view": "Default view"}
    )
    state.insert(
        "sys_ui_related_list_entry",
        {"list_id": incident_list["sys_id"], "related_list": "task_sla.task", "position": "0"},
    )
    page = stored(bridge, "sys_ui_page", name="rsbridge_related_lists")
    admin: tuple[str, list[str]] = ("admin", ["admin"])
    for _ in range(2):
        answer = await run(node, tmp_path, world(bridge, page["processing_script"], user=admin))
        entries = [
            e
            for e in state.records("sys_ui_related_list_entry")
            if e["list_id"] == incident_list["sys_id"]
        ]
        assert sorted((e["related_list"], e["position"]) for e in entries) == [
            ("task_sla.task", "0"),
            ("u_rs_session.u_task", "1"),
        ]
    assert "already there: incident" in answer["info"][0]
    assert "problem (no related lists of its own" in answer["errors"][0]
    assert answer["redirect"] == "rsbridge_related_lists.do"

    refused = await run(node, tmp_path, world(bridge, page["processing_script"]))
    assert refused["errors"] == ["Adding related lists needs the role admin."]


async def test_values_from_the_records_are_escaped_in_the_messages(
    node: str, tmp_path: Path, bridge: Bridge
) -> None:
    ids = bridge.snow.demo.ids
    hostile = '<img src=x onerror="alert(1)">'
    bridge.snow.state.update("cmdb_ci_computer", ids["ws-ann-01"], {"name": hostile})
    answer = await click(
        node,
        tmp_path,
        bridge,
        "task",
        "rsbridge_jump_to_ci",
        current=incident(bridge, "INC0010001"),
    )
    assert answer["errors"] == [], answer
    assert hostile not in answer["info"][0]
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in answer["info"][0]


async def test_with_the_rep_console_source_session_key_opens_the_console(
    node: str, tmp_path: Path, sim: Sim, mailbox: Mailbox, snow: Snow
) -> None:
    async with bridge_for(tmp_path, sim, mailbox, snow, session_key_source="rep_console") as bridge:
        ticket = incident(bridge, "INC0010001")
        answer = await click(
            node, tmp_path, bridge, "task", "rsbridge_session_key_workspace", current=ticket
        )
        dialog = await open_dialog(node, tmp_path, bridge, ["rsbridgeSessionKey()"], current=ticket)
    assert answer["errors"] == [], answer
    assert bridge.sim.state.session_keys == {}
    assert answer["info"] == ["Opening the representative console's Generate Session Key dialog."]
    assert answer["redirect"] and not answer["redirect"].startswith("incident.do")
    # The dialog's button opens the console instead of a dialog.
    assert dialog["dialogs"] == [] and dialog["redirect"]
    assert dialog["redirect"].split("?")[0] == answer["redirect"].split("?")[0]
