"""GET /actions/links and the auto-create link it offers (GET /actions/auto-create)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from tests.actions.conftest import (
    LINK_SECRET,
    PUBLIC_URL,
    Mailbox,
    Server,
    Sim,
    config_data,
    engine_server,
    integration,
)
from tests.conftest import signature


def live_session(server: Server, custom: dict[str, str] | None = None) -> str:
    """A session in progress on the simulated appliance, started from a key."""
    key = server.state.generate_session_key(queue_id="rep:2", custom=(custom or {}).items())
    return server.state.start_session(key.short_key)


def auto_create_link(server: Server, integration_name: str = "desk") -> str:
    links = server.get("/actions/links", params={"integration": integration_name}).json()["links"]
    return str(next(link["url"] for link in links if link["name"] == "rsbridge: create ticket"))


def test_links_are_the_connectors_and_rsbridges(server: Server) -> None:
    answer = server.get("/actions/links", params={"integration": "desk"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["integration"] == "desk"
    first, ours = body["links"]
    assert first["name"] == "Test ticket"
    url = urlsplit(ours["url"])
    assert f"{url.scheme}://{url.netloc}" == PUBLIC_URL
    assert url.path == "/actions/auto-create"
    params = dict(parse_qsl(url.query))
    assert params["integration"] == "desk"
    assert params["lsid"] == "%SESSION.LSID%" and params["username"] == "%REP.USERNAME%"
    assert len(params["token"]) == 64
    assert LINK_SECRET not in answer.text


def test_each_integration_has_its_own_link_token(server: Server) -> None:
    assert auto_create_link(server, "desk") != auto_create_link(server, "portal")


def test_no_auto_create_link_without_a_link_secret(
    tmp_path: Path, sim: Sim, mailbox: Mailbox
) -> None:
    data = config_data(tmp_path, sim, mailbox, integrations=[integration("desk")])
    del data["actions"]["link_secret"]
    with engine_server(data, sim, mailbox) as server:
        links = server.get("/actions/links", params={"integration": "desk"}).json()["links"]
    assert [link["name"] for link in links] == ["Test ticket"]


def open_link(server: Server, link: str, lsid: str, **params: str) -> httpx.Response:
    """What the rep console does: replace the macros, open the URL (no bearer token)."""
    url = link.replace("%SESSION.LSID%", lsid).replace("%REP.USERNAME%", "jsmith")
    path_and_query = url.removeprefix(PUBLIC_URL)
    with httpx.Client(follow_redirects=False) as browser:
        return browser.get(f"{server.url}{path_and_query}", params=params or None)


def test_the_auto_create_link_creates_a_ticket_and_redirects_to_it(server: Server) -> None:
    lsid = live_session(server)
    link = auto_create_link(server)
    answer = open_link(server, link, lsid)
    assert answer.status_code == 303, answer.text
    [created] = server.table.created.values()
    assert answer.headers["location"] == created.url
    # Written back, so the end-of-session import lands on the new ticket.
    assert server.state.active_sessions[lsid].custom["external_key"] == created.number
    again = open_link(server, link, lsid)
    assert again.headers["location"] == created.url
    assert len(server.table.created) == 1


def test_auto_create_answers_json_when_asked(server: Server) -> None:
    lsid = live_session(server)
    answer = server.get(
        "/actions/auto-create",
        params={"integration": "desk", "lsid": lsid, "username": "jsmith", "format": "json"},
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["lsid"] == lsid and body["ticket"]["number"].startswith("INC")


def test_auto_create_uses_the_ticket_the_session_already_names(server: Server) -> None:
    lsid = live_session(server)
    signed = signature({"external_key": "INC0010001"})
    server.state.set_session_attributes(lsid, [("external_key", "INC0010001"), ("rsb_sig", signed)])
    answer = server.get(
        "/actions/auto-create", params={"integration": "desk", "lsid": lsid, "format": "json"}
    )
    assert answer.json()["ticket"]["id"] == "sys-inc1"
    assert server.table.created == {}


def test_auto_create_ignores_a_ticket_a_customer_named(server: Server) -> None:
    # An unsigned external key (a start-session URL) does not choose the ticket: the
    # session gets a new one of its own, written back signed.
    lsid = live_session(server)
    server.state.set_session_attributes(lsid, [("external_key", "INC0010001")])
    answer = server.get(
        "/actions/auto-create", params={"integration": "desk", "lsid": lsid, "format": "json"}
    )
    ticket = answer.json()["ticket"]
    assert ticket["id"] != "sys-inc1"
    assert [t.id for t in server.table.created.values()] == [ticket["id"]]
    custom = {code: value for code, _, value in server.state.session_attributes(lsid)}
    assert custom["rsb_sig"] == signature({"external_key": ticket["number"] or ticket["id"]})


def test_auto_create_refusals(server: Server) -> None:
    lsid = live_session(server)
    desk_link = auto_create_link(server, "desk")
    # The desk link's token does not open another integration, nor another route.
    token = dict(parse_qsl(urlsplit(desk_link).query))["token"]
    with httpx.Client() as browser:
        other = browser.get(
            f"{server.url}/actions/auto-create",
            params={"integration": "portal", "lsid": lsid, "token": token},
        )
        issues = browser.get(
            f"{server.url}/actions/issues", params={"integration": "desk", "token": token}
        )
        wrong = browser.get(
            f"{server.url}/actions/auto-create",
            params={"integration": "desk", "lsid": lsid, "token": token[:-1] + "0"},
        )
    assert other.status_code == issues.status_code == wrong.status_code == 401
    assert server.table.created == {}
    unknown = server.get("/actions/auto-create", params={"integration": "desk", "lsid": "f" * 32})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "session_not_found")
    bad = server.get("/actions/auto-create", params={"integration": "desk", "lsid": "../x"})
    assert bad.status_code == 422
    missing = server.get("/actions/auto-create", params={"integration": "desk"})
    assert missing.status_code == 422
