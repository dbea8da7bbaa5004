"""POST /actions/jump: every kind of Jump, as console URL or BRCS file."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.actions.conftest import Server
from tests.conftest import signed_names

STAMPED = {"external_key": "INC0010001", "snow_task_id": "sys-inc1"}
ATTRIBUTES = {f"session.custom.{code}": value for code, value in STAMPED.items()}


def jump(server: Server, **body: object) -> dict[str, object]:
    answer = server.post("/actions/jump", {"integration": "desk", **body})
    assert answer.status_code == 200, answer.text
    result: dict[str, object] = answer.json()
    return result


def query(url: object) -> dict[str, str]:
    assert isinstance(url, str)
    parts = urlsplit(url)
    assert parts.path == "/api/client_script"
    return dict(parse_qsl(parts.query))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"kind": "jump_item", "method": "pinned"},
            {
                "action": "start_jump_item_session",
                "search_string": "WKS-ABEL",
                "jump.method": "pinned",
            },
        ),
        (
            {"kind": "jump_item"},
            {"action": "start_jump_item_session", "search_string": "WKS-ABEL"},
        ),
        (
            {"kind": "push_local"},
            {"action": "push_and_start_local", "hostname": "wks-abel.corp.example.com"},
        ),
        (
            {"kind": "push_remote", "jumpoint": "HQ"},
            {
                "action": "push_and_start_remote",
                "target": "wks-abel.corp.example.com",
                "jumpoint": "HQ",
            },
        ),
        (
            {"kind": "rdp", "username": "admin"},
            {
                "action": "start_rdp_session",
                "target": "wks-abel.corp.example.com",
                "username": "admin",
            },
        ),
        (
            {"kind": "vnc", "port": 5901},
            {"action": "start_vnc_session", "target": "wks-abel.corp.example.com", "port": "5901"},
        ),
        (
            {"kind": "shell", "protocol": "ssh", "port": 2222, "username": "root"},
            {
                "action": "start_shell_jump_session",
                "target": "wks-abel.corp.example.com",
                "username": "root",
                "protocol": "ssh",
                "port": "2222",
            },
        ),
        (
            {"kind": "vpro", "jumpoint": "vPro-HQ"},
            {
                "action": "start_vpro_session",
                "target": "wks-abel.corp.example.com",
                "jumpoint": "vPro-HQ",
            },
        ),
    ],
)
def test_each_kind_from_the_tickets_ci(
    server: Server, body: dict[str, object], expected: dict[str, str]
) -> None:
    result = jump(server, ticket="INC0010001", **body)
    assert result["console"] == "rep" and result["brcs"] is None
    assert result["configuration_item"] == {
        "id": "ci-1",
        "name": "WKS-ABEL",
        "host": "wks-abel.corp.example.com",
    }
    params = query(result["url"])
    signature = params.pop("session.custom.rsb_sig")
    assert params == {"type": "rep", "operation": "generate", **expected, **ATTRIBUTES}
    assert signed_names(signature, STAMPED, integration="desk") == set(STAMPED)


def test_a_named_ci_without_a_ticket(server: Server) -> None:
    result = jump(server, ci="SRV-DB01", kind="rdp")
    assert result["ticket"] is None
    params = query(result["url"])
    assert params["target"] == "10.0.0.5"
    assert not any(k.startswith("session.custom.") for k in params)


def test_brcs_output(server: Server) -> None:
    result = jump(server, ticket="INC0010001", output="brcs", kind="shell")
    assert result["url"] is None
    brcs = result["brcs"]
    assert isinstance(brcs, dict)
    assert brcs["extension"] == "brcs-examplecorp"
    assert brcs["filename"] == "jump-WKS-ABEL.brcs-examplecorp"
    header, line = brcs["content"].split("\n")
    assert header == "BRCS1.0"
    assert line.startswith("action=start_shell_jump_session&target=wks-abel.corp.example.com")


def test_web_console(server: Server) -> None:
    answer = server.post("/actions/jump", {"integration": "web", "ticket": "INC0010001"})
    result = answer.json()
    assert result["console"] == "web"
    params = query(result["url"])
    assert (params["type"], params["operation"]) == ("web_console", "execute")
    # The web console runs only search-string Jumps; BRCS files are for the desktop one.
    for body in ({"kind": "rdp"}, {"output": "brcs"}):
        refused = server.post(
            "/actions/jump", {"integration": "web", "ticket": "INC0010001", **body}
        )
        assert refused.status_code == 422, refused.text


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({}, 422, "give ticket"),
        ({"ticket": "INC0010003"}, 422, "has no configuration item"),
        ({"ticket": "INC0010001", "kind": "vpro"}, 422, "needs a jumpoint"),
        ({"ticket": "INC0010001", "kind": "teleport"}, 422, "kind"),
        ({"ticket": "INC0010001", "method": "warp"}, 422, "method"),
        ({"ticket": "INC0010002"}, 409, "is closed"),
        ({"ci": "NOPE"}, 404, "no configuration item"),
    ],
)
def test_refusals(server: Server, body: dict[str, object], status: int, needle: str) -> None:
    answer = server.post("/actions/jump", {"integration": "desk", **body})
    assert answer.status_code == status, answer.text
    assert needle in answer.json()["message"]
