"""GET /actions/links and the auto-create link it offers (GET /actions/auto-create)."""

from __future__ import annotations

import html
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import httpx

from rsbridge.actions.link import CONFIRM_SECONDS
from rsbridge.actions.service import ActionService
from rsbridge.config import parse_config
from rsbridge.engine.store.memory import MemoryStore
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
from tests.conftest import signed_names, signer_for_tests


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


def open_link(server: Server, link: str, lsid: str, username: str = "jsmith") -> httpx.Response:
    """What the rep console does: replace the macros, open the URL (no bearer token)."""
    url = link.replace("%SESSION.LSID%", lsid).replace("%REP.USERNAME%", username)
    path_and_query = url.removeprefix(PUBLIC_URL)
    with httpx.Client(follow_redirects=False) as browser:
        return browser.get(f"{server.url}{path_and_query}")


def page_form(page: httpx.Response) -> dict[str, str]:
    """The hidden fields of the auto-create page's form."""
    assert page.status_code == 200, page.text
    assert 'method="post" action="auto-create"' in page.text
    fields = re.findall(r'<input type="hidden" name="([a-z]+)" value="([^"]*)">', page.text)
    return {name: html.unescape(value) for name, value in fields}


def press(server: Server, form: dict[str, str]) -> httpx.Response:
    """The representative presses the page's button: a form POST, no bearer token."""
    with httpx.Client(follow_redirects=False) as browser:
        return browser.post(f"{server.url}/actions/auto-create", data=form)


def test_the_auto_create_link_asks_then_creates_a_ticket_and_redirects_to_it(
    server: Server,
) -> None:
    lsid = live_session(server)
    link = auto_create_link(server)
    page = open_link(server, link, lsid)
    # Opening the link (a GET: previews and scanners open links too) creates nothing.
    assert server.table.created == {}
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    form = page_form(page)
    assert (form["integration"], form["lsid"], form["username"]) == ("desk", lsid, "jsmith")
    assert "token" not in form and LINK_SECRET not in page.text
    answer = press(server, form)
    assert answer.status_code == 303, answer.text
    [created] = server.table.created.values()
    assert answer.headers["location"] == created.url
    # Written back, so the end-of-session import lands on the new ticket.
    assert server.state.active_sessions[lsid].custom["external_key"] == created.number
    again = press(server, page_form(open_link(server, link, lsid)))
    assert again.headers["location"] == created.url
    assert len(server.table.created) == 1


def test_the_confirmation_is_bound_to_its_session_and_representative(server: Server) -> None:
    lsid, other = live_session(server), live_session(server)
    form = page_form(open_link(server, auto_create_link(server), lsid))
    for changed in (
        {"lsid": other},
        {"username": "mary"},
        {"integration": "portal"},
        {"expires": str(int(form["expires"]) + 3600)},
        {"confirm": "0" * 64},
    ):
        answer = press(server, {**form, **changed})
        assert (answer.status_code, answer.json()["error"]) == (401, "unauthorized"), changed
    without = {k: v for k, v in form.items() if k != "confirm"}
    assert press(server, without).status_code == 401
    assert server.table.created == {}


def test_the_page_shows_what_the_link_carried_as_text(server: Server) -> None:
    lsid = live_session(server)
    page = open_link(server, auto_create_link(server), lsid, username='<script>"x"</script>')
    assert "<script>" not in page.text
    assert page_form(page)["username"] == '<script>"x"</script>'


def test_the_link_works_only_during_a_young_session(server: Server) -> None:
    link = auto_create_link(server)
    ended = live_session(server)
    form = page_form(open_link(server, link, ended))
    server.state.complete_session(ended)
    for answer in (open_link(server, link, ended), press(server, form)):
        assert (answer.status_code, answer.json()["error"]) == (409, "session_ended")
    # A session started 13 hours ago (the limit is 12 by default): its link is stale.
    key = server.state.generate_session_key(queue_id="general", ttl=86400)
    old = server.state.start_session(key.short_key, now=time.time() - 13 * 3600)
    answer = open_link(server, link, old)
    assert (answer.status_code, answer.json()["error"]) == (409, "session_too_old")
    assert "12 hours" in answer.json()["message"]
    assert server.table.created == {}


def test_the_session_age_limit_is_configurable(tmp_path: Path, sim: Sim, mailbox: Mailbox) -> None:
    data = config_data(
        tmp_path,
        sim,
        mailbox,
        integrations=[integration("desk")],
        actions={"auto_create_max_session_hours": 24},
    )
    with engine_server(data, sim, mailbox) as server:
        key = server.state.generate_session_key(queue_id="general")
        lsid = server.state.start_session(key.short_key, now=time.time() - 13 * 3600)
        answer = press(server, page_form(open_link(server, auto_create_link(server), lsid)))
        assert answer.status_code == 303, answer.text
        assert len(server.table.created) == 1


async def test_a_confirmation_expires_after_ten_minutes(tmp_path: Path) -> None:
    now = [1_750_000_000.0]
    config = parse_config(config_data(tmp_path, None, None, integrations=[integration("desk")]))
    service = ActionService(config, MemoryStore(), {}, {}, clock=lambda: now[0])
    expires = int(now[0]) + CONFIRM_SECONDS
    token = service.confirm_token("desk", "abc", "jsmith", expires)
    assert token is not None
    assert service.check_confirm_token("desk", "abc", "jsmith", str(expires), token)
    now[0] += CONFIRM_SECONDS + 1
    assert not service.check_confirm_token("desk", "abc", "jsmith", str(expires), token)


def test_scripts_use_a_bearer_token_and_json(server: Server) -> None:
    lsid = live_session(server)
    offer = server.get(
        "/actions/auto-create",
        params={"integration": "desk", "lsid": lsid, "username": "jsmith", "format": "json"},
    )
    assert offer.status_code == 200, offer.text
    assert offer.json()["lsid"] == lsid and server.table.created == {}
    answer = server.post("/actions/auto-create", {"integration": "desk", "lsid": lsid})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["lsid"] == lsid and body["ticket"]["number"].startswith("INC")


def test_auto_create_uses_the_ticket_the_session_already_names(server: Server) -> None:
    lsid = live_session(server)
    started = datetime.fromtimestamp(server.state.active_sessions[lsid].start_time, UTC)
    signed = signer_for_tests().sign("default", "desk", {"external_key": "INC0010001"}, now=started)
    server.state.set_session_attributes(lsid, [("external_key", "INC0010001"), ("rsb_sig", signed)])
    answer = server.post("/actions/auto-create", {"integration": "desk", "lsid": lsid})
    assert answer.json()["ticket"]["id"] == "sys-inc1"
    assert server.table.created == {}


def test_auto_create_ignores_a_ticket_a_customer_named(server: Server) -> None:
    # An unsigned external key (a start-session URL) does not choose the ticket: the
    # session gets a new one of its own, written back signed.
    lsid = live_session(server)
    server.state.set_session_attributes(lsid, [("external_key", "INC0010001")])
    answer = server.post("/actions/auto-create", {"integration": "desk", "lsid": lsid})
    ticket = answer.json()["ticket"]
    assert ticket["id"] != "sys-inc1"
    assert [t.id for t in server.table.created.values()] == [ticket["id"]]
    custom = {code: value for code, _, value in server.state.session_attributes(lsid)}
    written = {"external_key": ticket["number"] or ticket["id"]}
    started = datetime.fromtimestamp(server.state.active_sessions[lsid].start_time, UTC)
    assert signed_names(custom["rsb_sig"], written, integration="desk", started=started) == {
        "external_key"
    }


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
        # The link token is for the page only: it makes nothing by itself.
        posted = browser.post(
            f"{server.url}/actions/auto-create",
            data={"integration": "desk", "lsid": lsid, "token": token},
        )
    assert other.status_code == issues.status_code == wrong.status_code == 401
    assert posted.status_code == 401
    assert server.table.created == {}
    unknown = server.get("/actions/auto-create", params={"integration": "desk", "lsid": "f" * 32})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "session_not_found")
    bad = server.get("/actions/auto-create", params={"integration": "desk", "lsid": "../x"})
    assert bad.status_code == 422
    missing = server.get("/actions/auto-create", params={"integration": "desk"})
    assert missing.status_code == 422
