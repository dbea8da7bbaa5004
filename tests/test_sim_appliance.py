"""The simulated appliance over real HTTP: OAuth, Command API, Reporting API."""

from __future__ import annotations

import dataclasses
import random
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from lxml import etree

from rsbridge.appliance.report_model import (
    EventType,
    ExitSurvey,
    PrimaryCustomer,
    PrimaryRep,
    SessionEvent,
    SupportSession,
    SurveyAnswer,
)
from rsbridge.sim.appliance.faults import ELEMENTS_BLOAT, Damage
from rsbridge.sim.appliance.server import COMMAND_NS, create_app
from rsbridge.sim.appliance.state import ApiAccount, SimApplianceState, SimRep
from rsbridge.sim.serve import SwappableApp, serve_in_thread
from tests.conftest import FakeClock

REPORTING_NS = "http://www.bomgar.com/namespaces/API/reporting"
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n\n'
NOW = 1_700_100_000.0  # 2023-11-16T02:00:00Z
HTTP = httpx.Client()  # one client: building one per request costs ~20 ms


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def state(clock: FakeClock) -> SimApplianceState:
    return SimApplianceState.default(seed=7, now=clock.now)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url
    HTTP.close()


@pytest.fixture
def base(server: tuple[SwappableApp, str], state: SimApplianceState, clock: FakeClock) -> str:
    server[0].app = create_app(state, clock=clock)
    return server[1]


def get_token(base: str, account: ApiAccount, secret: str | None = None) -> str:
    auth = (account.client_id, account.client_secret if secret is None else secret)
    r = HTTP.post(f"{base}/oauth2/token", data={"grant_type": "client_credentials"}, auth=auth)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


@pytest.fixture
def token(base: str, state: SimApplianceState) -> str:
    return get_token(base, state.accounts[0])


def call(base: str, token: str, api: str = "command", **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return HTTP.get(f"{base}/api/{api}", params=params, headers=headers)


def cmd(base: str, token: str, params: dict[str, Any], *, post: bool = False) -> str:
    if post:
        headers = {"Authorization": f"Bearer {token}"}
        r = HTTP.post(f"{base}/api/command", data=params, headers=headers)
    else:
        r = call(base, token, **params)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/xml; charset=UTF-8"
    assert r.headers["connection"] == "close"
    return r.text


def error_doc(message: str, ns: str = COMMAND_NS) -> str:
    return f'{DECL}<error xmlns="{ns}">{message}</error>\n'


def success_doc(message: str) -> str:
    return f'{DECL}<success xmlns="{COMMAND_NS}">{message}</success>\n'


# --- OAuth ---------------------------------------------------------------------------


def test_token_is_issued_like_the_real_appliance(base: str, state: SimApplianceState) -> None:
    account = state.accounts[0]
    r = HTTP.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(account.client_id, account.client_secret),
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.text.startswith('{"access_token":"')
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert re.fullmatch(r"[A-Za-z0-9]{40}", body["access_token"])
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)


@pytest.mark.parametrize(
    ("secret", "data", "status", "error"),
    [
        ("not-the-secret", {"grant_type": "client_credentials"}, 401, "invalid_client"),
        (None, {"grant_type": "client_credentials"}, 401, "invalid_client"),
        ("", {"grant_type": "password"}, 400, "unsupported_grant_type"),
        ("", {}, 400, "unsupported_grant_type"),
    ],
)
def test_token_errors(
    base: str,
    state: SimApplianceState,
    secret: str | None,
    data: dict[str, str],
    status: int,
    error: str,
) -> None:
    account = state.accounts[0]
    auth: dict[str, Any] = {}
    if secret is not None:
        auth["auth"] = (account.client_id, secret or account.client_secret)
    r = HTTP.post(f"{base}/oauth2/token", data=data, **auth)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert r.json()["error"] == error
    assert r.json()["message"]


ACCESS_DENIED = {
    "error": "access_denied",
    "message": "The resource owner or authorization server denied the request.",
}


def assert_denied(r: httpx.Response) -> None:
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/json"
    assert r.json() == ACCESS_DENIED


def test_token_expires_after_ttl(base: str, token: str, clock: FakeClock) -> None:
    clock.now += 3599
    assert call(base, token, action="get_api_info").status_code == 200
    clock.now += 1
    assert_denied(call(base, token, action="get_api_info"))


def test_31st_token_evicts_the_oldest(base: str, state: SimApplianceState) -> None:
    tokens = [get_token(base, state.accounts[0]) for _ in range(31)]
    assert len(set(tokens)) == 31
    assert_denied(call(base, tokens[0], action="get_api_info"))
    for live in (tokens[1], tokens[30]):
        assert call(base, live, action="get_api_info").status_code == 200
    # Another account's tokens are counted separately.
    assert call(base, get_token(base, state.accounts[1]), action="check_health").status_code == 200


def test_rotating_the_secret_invalidates_tokens(base: str, state: SimApplianceState) -> None:
    account = state.accounts[0]
    old_secret, token = account.client_secret, get_token(base, account)
    new_secret = state.rotate_secret(account.client_id)
    assert new_secret != old_secret
    assert_denied(call(base, token, action="get_api_info"))
    r = HTTP.post(
        f"{base}/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(account.client_id, old_secret),
    )
    assert r.status_code == 401
    assert call(base, get_token(base, account), action="get_api_info").status_code == 200


@pytest.mark.parametrize("api", ["command", "reporting"])
@pytest.mark.parametrize("authorization", [None, "Bearer unknowntoken", "Basic abc", "Bearer"])
def test_api_requires_a_valid_bearer_token(base: str, api: str, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    assert_denied(HTTP.get(f"{base}/api/{api}?action=get_api_info", headers=headers))


# --- rate limiting -----------------------------------------------------------------------


def test_rate_limit_per_second_and_per_hour(state: SimApplianceState, clock: FakeClock) -> None:
    app = create_app(state, clock=clock, rate_per_second=2, rate_per_hour=5)
    with serve_in_thread(app) as url:
        token = get_token(url, state.accounts[0])
        remaining = []
        for _ in range(2):
            r = call(url, token, action="check_health")
            assert r.headers["X-RateLimit-Limit"] == "5"
            remaining.append(r.headers["X-RateLimit-Remaining"])
        assert remaining == ["4", "3"]
        r = call(url, token, api="reporting", generate_report="SupportSession", lsid="x")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "1"
        assert r.headers["X-RateLimit-Remaining"] == "3"
        assert r.text == error_doc("API rate limit exceeded", REPORTING_NS)
        clock.now += 1.5
        assert call(url, token, action="check_health").headers["X-RateLimit-Remaining"] == "2"
        assert call(url, token, action="check_health").status_code == 200
        clock.now += 1.5
        assert call(url, token, action="check_health").headers["X-RateLimit-Remaining"] == "0"
        clock.now += 10
        r = call(url, token, action="check_health")
        assert r.status_code == 429
        assert r.text == error_doc("API rate limit exceeded")
        assert int(r.headers["Retry-After"]) == 3600 - 13
        # Other accounts have their own budget.
        other = get_token(url, state.accounts[1])
        assert call(url, other, action="check_health").status_code == 200
        clock.now += 3600
        fresh = get_token(url, state.accounts[0])
        assert call(url, fresh, action="check_health").headers["X-RateLimit-Remaining"] == "4"


# --- Command API: documents ---------------------------------------------------------------

MAIL_TEXT = (
    "Bomgar(TM) enables a support representative to view your screen in order to assist you.\n"
    "Session traffic is fully encrypted to protect your system's data.\n"
    "Once a session has begun, you will be able to end it at any time"
)


def session_key_doc(body: str, queue: str, middle: str, host: str = "support.example.com") -> str:
    """The expected ``session_key`` document, with key values taken from ``body``."""
    short_key = re.search(r"<short_key>(\d{7})</short_key>", body)
    ak = re.search(r"\?ak=([0-9a-f]{32})<", body)
    expires = re.search(r"<expires>(\d+)</expires>", body)
    assert short_key and ak and expires
    url = f"https://{host}/?ak={ak[1]}"
    return (
        f'{DECL}<session_key xmlns="{COMMAND_NS}">\n\n'
        f"\t<type>support</type>\n\t<expires>{expires[1]}</expires>\n"
        f"\t{queue}\n{middle}"
        f"\t<short_key>{short_key[1]}</short_key>\n\t<key_url>{url}</key_url>\n"
        "\t<mail_subject>Remote Support Invitation</mail_subject>\n"
        "\t<mail_body>\nClick on the link below and follow the directions.\n\n"
        f"{url}\n\n{MAIL_TEXT}\n\t</mail_body>\n</session_key>\n"
    )


def test_generate_session_key_general_matches_real_layout(
    base: str, token: str, state: SimApplianceState
) -> None:
    body = cmd(
        base, token, {"action": "generate_session_key", "type": "support", "queue_id": "general"}
    )
    assert body == session_key_doc(body, '<queue available="1">general</queue>', "")
    assert f"<expires>{int(NOW) + 86400}</expires>" in body
    assert len(state.session_keys) == 1


@pytest.mark.parametrize(
    ("params", "queue", "middle"),
    [
        ({"queue_id": "rep:1"}, '<queue available="1">rep</queue>', "\t<queue_id>1</queue_id>\n"),
        (
            {"queue_id": "rep_username:jsmith", "session.custom.external_key": "1234"},
            '<queue available="1">rep</queue>',
            "\t<queue_id>2</queue_id>\n\t<external_key>1234</external_key>\n",
        ),
        ({"queue_id": "team:1"}, '<queue available="1">team</queue>', "\t<queue_id>1</queue_id>\n"),
        ({"queue_id": "team:3"}, '<queue available="0">team</queue>', "\t<queue_id>3</queue_id>\n"),
        (
            {"queue_id": "issue:vpn", "session.custom.external_key": "a&b"},
            '<queue available="1">issue</queue>',
            "\t<queue_id>3</queue_id>\n\t<external_key>a&amp;b</external_key>\n",
        ),
    ],
)
def test_generate_session_key_queues(
    base: str, token: str, params: dict[str, str], queue: str, middle: str
) -> None:
    body = cmd(base, token, {"action": "generate_session_key", "type": "support", **params})
    assert body == session_key_doc(body, queue, middle)


def test_generate_session_key_options(base: str, token: str, state: SimApplianceState) -> None:
    params = {
        "action": "generate_session_key",
        "type": "support",
        "queue_id": "general",
        "ttl": "1800",
        "url_hostname": "partners.example.com",
        "priority": "1",
        "skills": "windows, printers",
        "session.custom.ticket_id": "INC001",
    }
    body = cmd(base, token, params)
    assert body == session_key_doc(
        body, '<queue available="1">general</queue>', "", "partners.example.com"
    )
    assert f"<expires>{int(NOW) + 1800}</expires>" in body
    (key,) = state.session_keys.values()
    assert (key.priority, key.skills, key.custom) == (
        1,
        ["windows", "printers"],
        {"ticket_id": "INC001"},
    )


REP_NOT_FOUND = "Error validating parameter 'queue_id': The representative could not be found"
UNAVAILABLE = "Requested support representative is not available at this time"
TEAM_NOT_FOUND = "Error validating parameter 'queue_id': The team could not be found"
ISSUE_NOT_FOUND = "Error validating parameter 'queue_id': The issue could not be found"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"queue_id": "rep:99"}, REP_NOT_FOUND),
        ({"queue_id": "rep_username:nobody"}, REP_NOT_FOUND),
        ({"queue_id": "rep:3"}, UNAVAILABLE),
        ({"queue_id": "rep_username:bwilson"}, UNAVAILABLE),
        ({"queue_id": "team:42"}, TEAM_NOT_FOUND),
        ({"queue_id": "issue:nope"}, ISSUE_NOT_FOUND),
        ({"queue_id": "general", "session.custom.nope": "x"},
         "Error validating parameter 'session.custom.nope': invalid custom field code name"),
        ({"queue_id": "general", "session.custom.ticket_id": "x" * 1025},
         "Error validating parameter 'session.custom.ticket_id': value is too long"),
        ({"queue_id": "general", "session.custom.external_key": "x" * 1024}, None),
        ({"queue_id": "general", **{f"session.custom.{c}": "é" * 1024 for c in
          ("external_key", "snow_task_id", "snow_cmdb_ci_id", "snow_call_id", "snow_interaction_id",
           "ticket_id")}},
         "Error validating parameter 'session.custom.ticket_id': value is too long"),
        ({}, "Missing required parameter 'queue_id'"),
        ({"queue_id": "general", "type": ""}, "Missing required parameter 'type'"),
        ({"queue_id": "general", "type": "presentation"},
         "Error validating parameter 'type': invalid value"),
        ({"queue_id": "general", "priority": "4"},
         "Error validating parameter 'priority': invalid value"),
        ({"queue_id": "general", "url_hostname": "evil.example.com"},
         "Error validating parameter 'url_hostname': invalid value"),
        ({"queue_id": "bogus:1"}, "Error validating parameter 'queue_id': invalid value"),
    ],
)  # fmt: skip
def test_generate_session_key_errors(
    base: str, token: str, params: dict[str, str], message: str | None
) -> None:
    params = {"action": "generate_session_key", "type": "support", **params}
    body = cmd(base, token, params, post=True)
    assert body == error_doc(message) if message else "<short_key>" in body


def test_rep_username_matching_several_reps_is_not_found(
    base: str, token: str, state: SimApplianceState
) -> None:
    state.reps.append(SimRep(9, "jsmith", "Other John", "John Smith (2)"))
    params = {
        "action": "generate_session_key",
        "type": "support",
        "queue_id": "rep_username:jsmith",
    }
    assert cmd(base, token, params) == error_doc(REP_NOT_FOUND)


def test_unknown_action_and_missing_action(base: str, token: str) -> None:
    assert cmd(base, token, {"action": "frobnicate"}) == error_doc("Invalid action: 'frobnicate'")
    assert cmd(base, token, {}) == error_doc("Missing required parameter 'action'")


@pytest.mark.parametrize(
    "action",
    ["generate_session_key", "set_session_attributes", "join_session", "transfer_session",
     "terminate_session"],
)  # fmt: skip
def test_read_only_account_cannot_change_anything(
    base: str, state: SimApplianceState, action: str
) -> None:
    token = get_token(base, state.accounts[1])
    assert cmd(base, token, {"action": action}) == error_doc(
        "Permission denied: this API account does not have perm_command access"
    )
    for allowed in ("get_logged_in_reps", "get_support_teams", "get_api_info", "check_health"):
        assert "<error" not in cmd(base, token, {"action": allowed})


def test_denied_account_can_still_read_its_api_info(base: str, state: SimApplianceState) -> None:
    account = ApiAccount("denied", "s3cret", "Denied", {"perm_command": "deny"})
    state.accounts.append(account)
    token = get_token(base, account)
    assert cmd(base, token, {"action": "get_logged_in_reps"}) == error_doc(
        "Permission denied: this API account does not have perm_command access"
    )
    assert "<api_information" in cmd(base, token, {"action": "get_api_info"})


def test_get_api_info_matches_real_layout(base: str, token: str) -> None:
    perms = [
        ("perm_command", "full_access"),
        ("perm_reporting_support", "1"),
        ("perm_reporting_presentation", "1"),
        ("perm_reporting_license", "1"),
        ("perm_reporting_archive", "1"),
        ("perm_real_time_state", "0"),
        ("perm_ecm", "0"),
        ("perm_backup", "0"),
        ("perm_scim", "0"),
    ]
    lines = "".join(f'\t\t\t\t<permission name="{n}">{v}</permission>\n' for n, v in perms)
    assert cmd(base, token, {"action": "get_api_info"}) == (
        f'{DECL}<api_information xmlns="{COMMAND_NS}">\n'
        "\t<api_version>1.19.0</api_version>\n"
        "\t<company_name>examplecorp</company_name>\n"
        f"\t<timestamp>{int(NOW)}</timestamp>\n"
        f"\t<permissions>\n{lines}\t\t\n\t</permissions>\n</api_information>\n"
    )


def test_check_health_matches_real_layout(base: str, token: str, state: SimApplianceState) -> None:
    assert cmd(base, token, {"action": "check_health"}) == (
        f'{DECL}<health_check xmlns="{COMMAND_NS}">\n'
        f'\t<appliance id="{state.appliance_id}">support.example.com</appliance>\n'
        "\t<version>19.1.8 (37380-749b17ca33d2475427428f263608ae98d69f7a35)</version>\n"
        "\t<success>1</success>\n"
        "\t\t<failover_role>none</failover_role>\n"
        "\t\t\t</health_check>\n\n"
    )
    assert re.fullmatch(r"[0-9a-f]{32}", state.appliance_id)


def test_unauthenticated_check_health_page(base: str) -> None:
    r = HTTP.get(f"{base}/check_health")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "healthy" in r.text


def test_get_logged_in_reps(base: str, token: str, state: SimApplianceState) -> None:
    start_session(base, token, state, "rep:2")
    body = cmd(base, token, {"action": "get_logged_in_reps"})
    root = etree.fromstring(body.encode())
    assert root.tag == f"{{{COMMAND_NS}}}logged_in_reps"
    assert [rep.get("id") for rep in root] == ["1", "2", "3", "5"]  # bwilson is logged out
    since = datetime.fromtimestamp(int(NOW) - 3600, UTC).isoformat()
    assert (
        '\t<rep id="2">\n'
        "\t\t<display_name>John</display_name>\n"
        "\t\t<public_display_name>John</public_display_name>\n"
        "\t\t<private_display_name>John Smith</private_display_name>\n"
        "\t\t<type>Normal</type>\n"
        '\t\t<direct_link>&lt;a href="https://support.example.com/api/start_session?id=2'
        '&amp;amp;name=John"&gt;John&lt;/a&gt;</direct_link>\n'
        f'\t\t<logged_in_since ts="{int(NOW) - 3600}">{since}</logged_in_since>\n'
        "\t\t<presentation_count>0</presentation_count>\n"
        "\t\t<support_session_count>1</support_session_count>\n"
        "\t\t<showing_on_rep_list>1</showing_on_rep_list>\n"
        "\t</rep>\n"
    ) in body
    assert body.startswith(f'{DECL}<logged_in_reps xmlns="{COMMAND_NS}">\n\t<rep id="1">')
    assert body.endswith("\t</rep>\n</logged_in_reps>\n")
    guest = root.find(f"{{{COMMAND_NS}}}rep[@id='5']")
    assert guest is not None
    assert guest.findtext(f"{{{COMMAND_NS}}}type") == "Invited"
    assert guest.findtext(f"{{{COMMAND_NS}}}showing_on_rep_list") == "0"
    link = root.findtext(f"{{{COMMAND_NS}}}rep/{{{COMMAND_NS}}}direct_link")
    assert link is not None
    assert link.startswith('<a href="https://') and link.endswith("</a>")


NETWORK_TEAM = (
    '\t<support_team id="2">\n'
    "\t\t<name>Network</name>\n"
    "\t\t<code_name>network</code_name>\n"
    "\t\t<issues>\n"
    '\t\t\t<issue id="3">\n'
    "\t\t\t\t<code_name>vpn</code_name>\n"
    "\t\t\t\t<description>VPN access</description>\n"
    "\t\t\t</issue>\n"
    "\t\t</issues>\n"
)
NETWORK_MEMBERS = (
    "\t\t<members>\n"
    '\t\t\t<member id="3">\n'
    "\t\t\t\t<username>mjones</username>\n"
    "\t\t\t\t<public_display_name>Mary</public_display_name>\n"
    "\t\t\t\t<private_display_name>Mary Jones</private_display_name>\n"
    "\t\t\t\t<role>member</role>\n"
    "\t\t\t</member>\n"
    '\t\t\t<member id="2">\n'
    "\t\t\t\t<username>jsmith</username>\n"
    "\t\t\t\t<public_display_name>John</public_display_name>\n"
    "\t\t\t\t<private_display_name>John Smith</private_display_name>\n"
    "\t\t\t\t<role>member</role>\n"
    "\t\t\t</member>\n"
    "\t\t</members>\n"
)


def test_get_support_teams(base: str, token: str) -> None:
    body = cmd(base, token, {"action": "get_support_teams"})
    assert body.startswith(f'{DECL}<support_teams xmlns="{COMMAND_NS}">\n\t<support_team id="1">\n')
    assert NETWORK_TEAM + "\t</support_team>\n" in body
    assert "<members>" not in body
    assert body.endswith("\t</support_team>\n</support_teams>\n")
    with_members = cmd(base, token, {"action": "get_support_teams", "showmembers": "1"})
    assert NETWORK_TEAM + NETWORK_MEMBERS + "\t</support_team>\n" in with_members
    assert "<role>manager</role>" in with_members and "<role>lead</role>" in with_members


# --- Command API: session operations ----------------------------------------------------------


def start_session(
    base: str, token: str, state: SimApplianceState, queue_id: str, **custom: str
) -> str:
    params = {"action": "generate_session_key", "type": "support", "queue_id": queue_id}
    params |= {f"session.custom.{k}": v for k, v in custom.items()}
    short_key = re.search(r"<short_key>(\d{7})<", cmd(base, token, params))
    assert short_key
    return state.start_session(short_key[1], now=NOW)


def attributes_doc(values: dict[str, str]) -> str:
    names = {
        "external_key": "External Key",
        "snow_task_id": "ServiceNow Task",
        "snow_cmdb_ci_id": "Configuration Item",
        "snow_call_id": "ServiceNow Call",
        "snow_interaction_id": "ServiceNow Interaction",
        "ticket_id": "Ticket",
        "rsb_sig": "rsbridge signature",
    }
    lines = "".join(
        f'\t<custom_attribute display_name="{name}" code_name="{code}">{values.get(code, "")}'
        "</custom_attribute>\n"
        for code, name in names.items()
    )
    return f'{DECL}<custom_attributes xmlns="{COMMAND_NS}">\n{lines}</custom_attributes>\n'


def test_session_attributes_get_and_set(base: str, token: str, state: SimApplianceState) -> None:
    lsid = start_session(base, token, state, "general", external_key="EK1", ticket_id="T1")
    get = {"action": "get_session_attributes", "lsid": lsid}
    assert cmd(base, token, get) == attributes_doc({"external_key": "EK1", "ticket_id": "T1"})
    update = {
        "action": "set_session_attributes",
        "lsid": lsid,
        "session.custom.ticket_id": "",
        "session.custom.snow_task_id": "TASK<1>",
    }
    assert cmd(base, token, update) == success_doc("Session attributes were set")
    assert cmd(base, token, get) == attributes_doc(
        {"external_key": "EK1", "snow_task_id": "TASK&lt;1&gt;"}
    )
    bad = {**update, "session.custom.bogus": "1"}
    assert cmd(base, token, bad) == error_doc(
        "Error validating parameter 'session.custom.bogus': invalid custom field code name"
    )
    too_long = {
        "action": "set_session_attributes",
        "lsid": lsid,
        "session.custom.snow_call_id": "x" * 1025,
    }
    assert cmd(base, token, too_long) == error_doc(
        "Error validating parameter 'session.custom.snow_call_id': value is too long"
    )
    # Refused updates change nothing.
    assert cmd(base, token, get) == attributes_doc(
        {"external_key": "EK1", "snow_task_id": "TASK&lt;1&gt;"}
    )


def test_join_transfer_terminate(base: str, token: str, state: SimApplianceState) -> None:
    lsid = start_session(base, token, state, "rep:1")
    join = {"action": "join_session", "lsid": lsid, "rep_id": "2"}
    assert cmd(base, token, join) == success_doc("Representative successfully added")
    join_by_name = {"action": "join_session", "lsid": lsid, "rep_username": "guest"}
    assert cmd(base, token, join_by_name) == success_doc("Representative successfully added")
    assert state.active_sessions[lsid].members == [1, 2, 5]
    transfer = {"action": "transfer_session", "lsid": lsid, "queue_id": "team:2"}
    assert cmd(base, token, transfer) == success_doc("Successfully transferred")
    transfer = {"action": "transfer_session", "lsid": lsid, "queue_id": "rep_username:jsmith"}
    assert cmd(base, token, transfer) == success_doc("Successfully transferred")
    assert state.active_sessions[lsid].members == [2, 1, 5]
    terminate = {"action": "terminate_session", "lsid": lsid}
    assert cmd(base, token, terminate) == success_doc("Successfully terminated")
    assert cmd(base, token, terminate) == error_doc(
        "Error validating parameter 'lsid': The session could not be found"
    )
    (report,) = state.report_sessions(NOW)
    assert report.lsid == lsid and report.end_time == datetime.fromtimestamp(NOW, UTC)
    assert report.primary_rep == PrimaryRep("John", 2, "2")
    # The customer is on the report too, as on the appliance's (auto-create reads it).
    assert report.primary_customer == PrimaryCustomer("Customer", 1)
    assert [c.info["name"] for c in report.customers] == ["Customer"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"action": "join_session", "rep_id": "99"},
         "Error validating parameter 'rep_id': The representative could not be found"),
        ({"action": "join_session", "rep_username": "nobody"},
         "Error validating parameter 'rep_id': The representative could not be found"),
        ({"action": "join_session", "rep_id": "4"}, UNAVAILABLE),
        ({"action": "join_session"}, "Missing required parameter 'rep_id'"),
        ({"action": "transfer_session", "queue_id": "general"},
         "Error validating parameter 'queue_id': invalid value"),
        ({"action": "transfer_session", "queue_id": "team:9"},
         TEAM_NOT_FOUND),
        ({"action": "transfer_session", "queue_id": "rep:3"}, UNAVAILABLE),
        ({"action": "transfer_session"}, "Missing required parameter 'queue_id'"),
    ],
)  # fmt: skip
def test_session_operation_errors(
    base: str, token: str, state: SimApplianceState, params: dict[str, str], message: str
) -> None:
    lsid = start_session(base, token, state, "general")
    assert cmd(base, token, {**params, "lsid": lsid}) == error_doc(message)


@pytest.mark.parametrize(
    "action",
    ["get_session_attributes", "set_session_attributes", "join_session", "transfer_session",
     "terminate_session"],
)  # fmt: skip
def test_unknown_lsid_and_missing_lsid(base: str, token: str, action: str) -> None:
    params = {"action": action, "lsid": "0" * 32, "rep_id": "1", "queue_id": "rep:1"}
    assert cmd(base, token, params) == error_doc(
        "Error validating parameter 'lsid': The session could not be found"
    )
    assert cmd(base, token, {"action": action}) == error_doc("Missing required parameter 'lsid'")


def test_session_keys_are_single_use_and_expire(
    base: str, token: str, state: SimApplianceState
) -> None:
    params = {
        "action": "generate_session_key",
        "type": "support",
        "queue_id": "general",
        "ttl": "60",
    }
    body = cmd(base, token, params)
    ak = re.search(r"\?ak=([0-9a-f]{32})<", body)
    assert ak
    with pytest.raises(LookupError):
        state.start_session(ak[1], now=NOW + 60)
    lsid = state.start_session(ak[1], now=NOW)
    assert re.fullmatch(r"[0-9a-f]{32}", lsid)
    with pytest.raises(LookupError):
        state.start_session(ak[1], now=NOW)


# --- transport ----------------------------------------------------------------------------


def test_post_form_equals_get(base: str, token: str, state: SimApplianceState) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    r = HTTP.post(f"{base}/api/command", data={"action": "get_support_teams"}, headers=headers)
    assert r.headers["content-type"] == "text/xml; charset=UTF-8"
    assert r.headers["connection"] == "close"
    assert r.text == cmd(base, token, {"action": "get_support_teams"})
    r = HTTP.post(
        f"{base}/api/command",
        data={"action": "generate_session_key", "type": "support", "queue_id": "rep:1"},
        headers=headers,
    )
    assert "<queue_id>1</queue_id>" in r.text
    r = HTTP.post(
        f"{base}/api/reporting",
        data={"generate_report": "SupportSessionListing", "start_time": "0"},
        headers=headers,
    )
    assert r.status_code == 200 and "session_summary_list" in r.text


def test_multipart_post_is_refused(base: str, token: str) -> None:
    r = HTTP.post(
        f"{base}/api/command",
        data={"action": "get_api_info"},
        files={"f": ("a.txt", b"x")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200
    assert r.text == error_doc("Multipart POST requests are not supported")


def test_real_looking_headers(base: str, token: str) -> None:
    r = call(base, token, action="check_health")
    assert r.headers["server"] == "Apache"
    assert r.headers["x-ratelimit-limit"] == "15000"
    assert r.headers["x-ratelimit-remaining"] == "14999"


# --- Reporting API ----------------------------------------------------------------------------


def ts(iso: str) -> datetime:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC)


def finished(lsid: str, start: str, minutes: int = 10, **kwargs: Any) -> SupportSession:
    begin = ts(start)
    return SupportSession(
        lsid=lsid,
        start_time=begin,
        end_time=begin + timedelta(minutes=minutes),
        duration=timedelta(minutes=minutes),
        **kwargs,
    )


@pytest.fixture
def reports(base: str, token: str, state: SimApplianceState) -> dict[str, str]:
    """Sessions A, B, C (finished on Nov 13, 14, 15 at 10:00) and D (running since Nov 15)."""
    rating = ExitSurvey(2, [SurveyAnswer("rating", "5"), SurveyAnswer("comments", "great")])
    state.add_report(finished("a" * 32, "2023-11-13T10:00:00"), now=NOW)
    state.add_report(
        finished(
            "b" * 32,
            "2023-11-14T10:00:00",
            external_key="EKB",
            customer_surveys=[rating],
            rep_surveys=[ExitSurvey(1, [SurveyAnswer("resolved", "yes")])],
            primary_rep=PrimaryRep("Admin", 1, "1"),
        ),
        now=NOW,
    )
    state.add_report(finished("c" * 32, "2023-11-15T10:00:00"), now=NOW)
    d = state.start_session(start_key(base, token), now=ts("2023-11-15T12:00:00").timestamp())
    return {"A": "a" * 32, "B": "b" * 32, "C": "c" * 32, "D": d}


def start_key(base: str, token: str) -> str:
    params = {"action": "generate_session_key", "type": "support", "queue_id": "rep:1"}
    found = re.search(r"<short_key>(\d{7})<", cmd(base, token, params))
    assert found
    return found[1]


def sessions(base: str, token: str, **params: str) -> list[tuple[str, bool]]:
    """(lsid, ended) of each session a SupportSession report returns."""
    r = call(base, token, api="reporting", generate_report="SupportSession", **params)
    assert r.status_code == 200 and r.headers["content-type"] == "text/xml; charset=UTF-8"
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.text.startswith(f'{DECL}<session_list xmlns="{REPORTING_NS}"')
    root = etree.fromstring(r.content)
    ns = {"r": REPORTING_NS}
    return [(str(s.get("lsid")), bool(s.findtext("r:end_time", namespaces=ns))) for s in root]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"start_date": "2023-11-14", "duration": "1"}, "B"),
        ({"start_date": "2023-11-14", "duration": "2"}, "BCD"),
        ({"start_date": "2023-11-14", "duration": "0"}, "BCD"),
        ({"start_date": "2023-11-14"}, "BCD"),
        ({"start_time": str(int(ts("2023-11-14T10:00:00").timestamp())), "duration": "2"}, "B"),
        ({"start_time": str(int(ts("2023-11-14T10:00:00").timestamp())), "duration": "86400"}, "B"),
        (
            {"start_time": str(int(ts("2023-11-14T10:00:00").timestamp())), "duration": "86401"},
            "BC",
        ),
        ({"start_time": str(int(ts("2023-11-14T10:00:01").timestamp()))}, "CD"),
        ({"end_time": str(int(ts("2023-11-14T10:10:00").timestamp())), "duration": "0"}, "BC"),
        ({"end_date": "2023-11-15"}, "C"),
        ({"end_date": "2023-11-13", "duration": "1"}, "A"),
        ({"lsid": "b" * 32}, "B"),
        ({"lsids": f"{'a' * 32},{'c' * 32}"}, "AC"),
    ],
)
def test_support_session_selection(
    base: str, token: str, reports: dict[str, str], params: dict[str, str], expected: str
) -> None:
    assert sessions(base, token, **params) == [(reports[n], n != "D") for n in expected]


def test_in_progress_session_has_no_end_time(
    base: str, token: str, reports: dict[str, str]
) -> None:
    assert sessions(base, token, lsid=reports["D"]) == [(reports["D"], False)]


def test_kept_report_xml_is_what_would_be_served_and_follows_a_replaced_report(
    base: str, token: str, state: SimApplianceState
) -> None:
    session = finished("e" * 32, "2023-11-13T11:00:00", external_key="EKE")
    state.add_report(session, now=NOW)
    fresh = call(base, token, api="reporting", generate_report="SupportSession", lsid=session.lsid)
    state.add_report(session, now=NOW, keep_xml=True)
    kept = call(base, token, api="reporting", generate_report="SupportSession", lsid=session.lsid)
    assert kept.content == fresh.content
    # A report stored again (changed) is served as it is now, not as it was kept.
    state.add_report(dataclasses.replace(session, external_key="EKE2"), now=NOW)
    again = call(base, token, api="reporting", generate_report="SupportSession", lsid=session.lsid)
    assert b"EKE2" in again.content and b">EKE<" not in again.content


def test_report_delay_hides_the_end_time(
    base: str, token: str, state: SimApplianceState, clock: FakeClock
) -> None:
    lsid = state.start_session(start_key(base, token), now=NOW - 600)
    state.complete_session(lsid, report_delay=30, now=NOW)
    assert sessions(base, token, lsid=lsid) == [(lsid, False)]
    assert sessions(base, token, end_time=str(int(NOW) - 1)) == []
    clock.now += 30
    assert sessions(base, token, lsid=lsid) == [(lsid, True)]
    assert sessions(base, token, end_time=str(int(NOW) - 1)) == [(lsid, True)]
    given = finished("e" * 32, "2023-11-15T23:00:00")
    state.complete_session("e" * 32, given, report_delay=5, now=clock.now)
    assert sessions(base, token, lsid="e" * 32) == [("e" * 32, False)]


def session_answer(base: str, token: str, **params: str) -> bytes:
    r = call(base, token, api="reporting", generate_report="SupportSession", **params)
    assert r.status_code == 200
    return r.content


def session_parts(answer: bytes) -> list[bytes]:
    """The answer cut before each ``<session``: the head, then one part per session."""
    return re.split(rb"(?=<session )", answer)


@pytest.mark.parametrize("how", ["value", "markup", "elements"])
def test_a_damaged_session_fault_damages_that_session_only(
    base: str, token: str, state: SimApplianceState, reports: dict[str, str], how: Damage
) -> None:
    lsids = ",".join(reports[n] for n in "ABC")
    clean = session_parts(session_answer(base, token, lsids=lsids))
    with state.lock:
        state.report_faults.damaged[reports["B"]] = how
    damaged = session_parts(session_answer(base, token, lsids=lsids))
    assert [damaged[i] for i in (0, 1, 3)] == [clean[i] for i in (0, 1, 3)]
    b = damaged[2]
    assert b != clean[2] and f'lsid="{reports["B"]}"'.encode() in b
    if how == "value":
        assert b"<file_transfer_count>12abc</file_transfer_count>" in b
        etree.fromstring(b"".join(damaged))  # still well-formed XML
    else:
        if how == "markup":
            assert b"<file_transfer_count><<" in b
        else:
            assert b.count(b"<padding/>") == ELEMENTS_BLOAT
            etree.fromstring(b"".join(damaged), etree.XMLParser(huge_tree=True))
        if how == "markup":
            with pytest.raises(etree.XMLSyntaxError):
                etree.fromstring(b"".join(damaged))


def test_the_unrequested_fault_answers_every_session(
    base: str, token: str, state: SimApplianceState, reports: dict[str, str]
) -> None:
    with state.lock:
        state.report_faults.unrequested = True
    assert [lsid for lsid, _ in sessions(base, token, lsid=reports["A"])] == [
        reports[n] for n in "ABCD"
    ]


def test_the_trickle_fault_sends_one_byte_at_a_time(
    base: str, token: str, state: SimApplianceState, reports: dict[str, str]
) -> None:
    normal = session_answer(base, token, lsid=reports["A"])
    pause = 0.0005
    with state.lock:
        state.report_faults.trickle_seconds = pause
    params = {"generate_report": "SupportSession", "lsid": reports["A"]}
    headers = {"Authorization": f"Bearer {token}"}
    began = time.monotonic()
    with HTTP.stream("GET", f"{base}/api/reporting", params=params, headers=headers) as r:
        assert r.headers["content-type"] == "text/xml; charset=UTF-8"
        chunks = list(r.iter_raw())
    # A pause before every byte: the answer cannot have come faster than that.
    assert time.monotonic() - began >= len(normal) * pause
    assert b"".join(chunks) == normal and len(chunks) > 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"generate_report": "SupportSession"},
         "Missing required parameter 'start_date', 'start_time', 'end_date', 'end_time', "
         "'lsid' or 'lsids'"),
        ({"generate_report": "SupportSession", "start_date": "14/11/2023"},
         "Error validating parameter 'start_date': invalid value"),
        ({"generate_report": "SupportSession", "start_time": "soon"},
         "Error validating parameter 'start_time': invalid value"),
        ({"generate_report": "SupportSession", "start_time": "0", "duration": "-1"},
         "Error validating parameter 'duration': invalid value"),
        ({"generate_report": "Nonsense", "start_time": "0"}, "Invalid report type: 'Nonsense'"),
        ({}, "Missing required parameter 'generate_report'"),
    ],
)  # fmt: skip
def test_reporting_errors(base: str, token: str, params: dict[str, str], message: str) -> None:
    r = call(base, token, api="reporting", **params)
    assert r.status_code == 200
    assert r.text == error_doc(message, REPORTING_NS)


def test_reporting_needs_the_support_permission(base: str, state: SimApplianceState) -> None:
    account = ApiAccount("cmd-only", "pw", "Command only", {"perm_command": "full_access"})
    state.accounts.append(account)
    r = call(
        base, get_token(base, account), api="reporting", generate_report="SupportSession", lsid="x"
    )
    assert r.text == error_doc(
        "Permission denied: this API account does not have perm_reporting_support access",
        REPORTING_NS,
    )


def test_session_listing(base: str, token: str, reports: dict[str, str]) -> None:
    r = call(
        base,
        token,
        api="reporting",
        generate_report="SupportSessionListing",
        start_date="2023-11-14",
    )
    root = etree.fromstring(r.content)
    assert root.tag == f"{{{REPORTING_NS}}}session_summary_list"
    assert [(s.get("lsid"), s.get("external_key")) for s in root] == [
        (reports["B"], "EKB"),
        (reports["C"], None),
        (reports["D"], None),
    ]


def test_a_listing_cap_keeps_the_sessions_that_ended_first_and_calls_are_counted(
    base: str, token: str, reports: dict[str, str], state: SimApplianceState
) -> None:
    state.report_faults.listing_limit = 2
    r = call(
        base,
        token,
        api="reporting",
        generate_report="SupportSessionListing",
        start_date="2023-11-14",
    )
    listed = [s.get("lsid") for s in etree.fromstring(r.content)]
    assert listed == [reports["B"], reports["C"]]
    before = state.calls["get_api_info"]
    call(base, token, action="get_api_info")
    assert state.calls["SupportSessionListing"] == 1
    assert state.calls["get_api_info"] == before + 1


@pytest.mark.parametrize(
    ("report", "submitted_by", "answers"),
    [
        ("SupportCustExitSurvey", "customer", {"rating": ["5"], "comments": ["great"]}),
        ("SupportRepExitSurvey", "rep", {"resolved": ["yes"]}),
    ],
)
def test_exit_survey_reports(
    base: str,
    token: str,
    reports: dict[str, str],
    report: str,
    submitted_by: str,
    answers: dict[str, list[str]],
) -> None:
    r = call(base, token, api="reporting", generate_report=report, start_date="2023-11-13")
    root = etree.fromstring(r.content)
    ns = {"r": REPORTING_NS}
    assert root.tag == f"{{{REPORTING_NS}}}exit_survey_list"
    (survey,) = root
    assert survey.get("lsid") == reports["B"]
    assert survey.get("timestamp") == str(int(ts("2023-11-14T10:10:00").timestamp()))
    assert survey.find("r:submitted_by", ns).get("type") == submitted_by  # type: ignore[union-attr]
    assert survey.findtext("r:primary_rep", namespaces=ns) == "Admin"
    found = {
        q.findtext("r:name", namespaces=ns): [
            a.text for a in q.iterfind("r:answer_list/r:answer", ns)
        ]
        for q in survey.iterfind("r:question_list/r:question", ns)
    }
    assert found == answers


def test_team_report(base: str, token: str, state: SimApplianceState) -> None:
    login = SessionEvent(ts("2023-11-14T09:00:00"), "Representative Logged In")
    state.add_team_event(1, login)
    state.add_team_event(
        2, SessionEvent(ts("2023-11-15T09:00:00"), EventType.CHAT_MESSAGE, body="hi")
    )
    r = call(
        base,
        token,
        api="reporting",
        generate_report="SupportTeam",
        start_date="2023-11-14",
        duration="1",
    )
    root = etree.fromstring(r.content)
    assert root.tag == f"{{{REPORTING_NS}}}team_activity_list"
    assert [(t.get("id"), t.get("name")) for t in root] == [("1", "Service Desk")]
    r = call(
        base, token, api="reporting", generate_report="SupportTeam", start_time="0", team_id="2"
    )
    assert [t.get("id") for t in etree.fromstring(r.content)] == ["2"]
    r = call(base, token, api="reporting", generate_report="SupportTeam", lsid="x")
    assert "<error" in r.text


def test_default_seed_is_reproducible_and_has_sessions() -> None:
    one = SimApplianceState.default(seed=3, sessions=4, now=NOW)
    two = SimApplianceState.default(seed=3, sessions=4, now=NOW)
    assert one.accounts[0].client_id == two.accounts[0].client_id
    assert re.fullmatch(r"[0-9a-f]{40}", one.accounts[0].client_id)
    listed = one.report_sessions(NOW)
    assert [s.lsid for s in listed] == [s.lsid for s in two.report_sessions(NOW)]
    assert len(listed) == 4 and all(s.ended for s in listed)
    assert {r.username for r in one.reps if not r.logged_in} == {"bwilson"}


def _one_live_session(state: SimApplianceState) -> tuple[str, str]:
    key = state.generate_session_key(queue_id="general")
    return key.short_key, state.start_session(key.short_key)


def test_live_ids_are_reproducible_by_default_and_fresh_with_a_live_source() -> None:
    """Tests replay the seed's series; the CLI's restarted simulator must not reuse lsids."""
    same_seed = [SimApplianceState.default(seed=4) for _ in range(2)]
    assert _one_live_session(same_seed[0]) == _one_live_session(same_seed[1])

    restarted = [SimApplianceState.default(seed=4) for _ in range(2)]
    for state in restarted:
        state.live_rng = random.SystemRandom()
    first, second = (_one_live_session(state) for state in restarted)
    assert first[1] != second[1]
    # The identity an engine is configured with stays the same across the restart.
    assert restarted[0].appliance_id == restarted[1].appliance_id
    assert restarted[0].accounts[0].client_secret == restarted[1].accounts[0].client_secret
