"""GET /actions/issues ("Load Issues") and POST /actions/support-now ("Get Support Now")."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from tests.actions.conftest import Server
from tests.conftest import signed_names


def test_issues_are_loaded_from_the_appliance(server: Server) -> None:
    answer = server.get("/actions/issues", params={"integration": "everything"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    codes = [i["code_name"] for i in body["issues"]]
    assert codes == ["printing", "password_reset", "vpn", "hardware"]
    assert body["count"] == body["appliance_issue_count"] == 4
    assert body["missing"] == []
    assert body["issues"][2] == {
        "code_name": "vpn",
        "description": "VPN access",
        "id": "3",
        "team": "Network",
        "team_id": "2",
    }


def test_configured_issues_filter_and_order_the_list(server: Server) -> None:
    body = server.get("/actions/issues", params={"integration": "portal"}).json()
    assert [i["code_name"] for i in body["issues"]] == ["vpn", "printing"]
    assert body["appliance_issue_count"] == 4
    assert body["missing"] == ["no_such_issue"]


def test_issues_need_the_integration(server: Server) -> None:
    answer = server.get("/actions/issues")
    assert answer.status_code == 422


def test_support_now_chat_url_is_associated_with_the_ticket(server: Server) -> None:
    answer = server.post(
        "/actions/support-now",
        {
            "integration": "portal",
            "ticket": "INC0010001",
            "issue": "vpn",
            "details": "VPN drops every hour",
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["start_type"] == "chat"
    url = urlsplit(body["url"])
    assert (url.hostname, url.path) == ("partners.example.com", "/api/start_session")
    params = dict(parse_qsl(url.query))
    signature = params.pop("session.custom.rsb_sig")
    assert params == {
        "issue_menu": "1",
        "codeName": "vpn",
        "c2cjs": "1",
        "customer.name": "Abel Tuter",
        "customer.details": "VPN drops every hour",
        "session.custom.external_key": "INC0010001",
        "session.custom.snow_task_id": "sys-inc1",
    }
    stamped = {"external_key": "INC0010001", "snow_task_id": "sys-inc1"}
    assert signed_names(signature, stamped, integration="portal") == set(stamped)
    assert body["issue"]["team"] == "Network"
    assert body["note"]["written"] is True
    [note] = server.table.notes_on("sys-inc1")
    assert note.startswith("Customer-initiated BeyondTrust Remote Support chat requested by Abel")
    assert "VPN access" in note


def test_support_now_full_session_on_the_appliance_host(server: Server) -> None:
    body = server.post(
        "/actions/support-now",
        {"integration": "everything", "ticket": "INC0010001", "issue": "hardware", "note": False},
    ).json()
    url = urlsplit(body["url"])
    assert url.netloc == server.config.appliances[0].host
    params = dict(parse_qsl(url.query))
    assert "c2cjs" not in params and params["codeName"] == "hardware"
    assert body["start_type"] == "full" and body["note"] is None
    assert server.table.notes_on("sys-inc1") == []


def test_support_now_start_type_from_the_request(server: Server) -> None:
    body = server.post(
        "/actions/support-now",
        {"integration": "portal", "ticket": "INC0010001", "issue": "vpn", "start_type": "full"},
    ).json()
    assert "c2cjs" not in dict(parse_qsl(urlsplit(body["url"]).query))


def test_support_now_note_is_once_per_request_id(server: Server) -> None:
    request = {
        "integration": "portal",
        "ticket": "INC0010001",
        "issue": "printing",
        "request_id": "widget-7",
    }
    for _ in range(2):
        assert server.post("/actions/support-now", request).status_code == 200
    assert len(server.table.notes_on("sys-inc1")) == 1


def test_support_now_refusals(server: Server) -> None:
    cases = [
        ({"integration": "desk", "ticket": "INC0010001"}, 403, "self_service_disabled"),
        ({"integration": "portal", "ticket": "INC0010002"}, 409, "ticket_closed"),
        ({"integration": "portal", "ticket": "INC0010001"}, 422, "invalid_request"),
        (
            {"integration": "portal", "ticket": "INC0010001", "issue": "hardware"},
            422,
            "invalid_request",
        ),
    ]
    for body, status, code in cases:
        answer = server.post("/actions/support-now", body)
        assert (answer.status_code, answer.json()["error"]) == (status, code), body
    message = server.post(
        "/actions/support-now", {"integration": "portal", "ticket": "INC0010001"}
    ).json()["message"]
    assert message == "choose an issue: vpn, printing"


def test_support_now_for_someone_elses_ticket_is_refused(server: Server) -> None:
    # The start URL carries signed references: a requester who is not the ticket's caller
    # must not get one (a portal passes the user it authenticated).
    other = server.post(
        "/actions/support-now",
        {"integration": "portal", "ticket": "INC0010001", "requester_email": "eve@example.com"},
    )
    assert other.status_code == 403, other.text
    assert other.json()["error"] == "not_your_ticket"
    assert "session.custom" not in other.text
    # A portal user without an e-mail address is nobody's caller, not a skipped check.
    for blank in ("", "  "):
        nobody = server.post(
            "/actions/support-now",
            {"integration": "portal", "ticket": "INC0010001", "requester_email": blank},
        )
        assert (nobody.status_code, nobody.json()["error"]) == (403, "not_your_ticket")
    mine = server.post(
        "/actions/support-now",
        {
            "integration": "portal",
            "ticket": "INC0010001",
            "issue": "vpn",
            "requester_email": "Abel.Tuter@example.com",
        },
    )
    assert mine.status_code == 200, mine.text
    unknown = server.post(
        "/actions/support-now",
        {
            "integration": "portal",
            "ticket": "INC0010003",
            "requester_email": "abel.tuter@example.com",
        },
    )
    assert unknown.status_code == 403, "a ticket without a known caller e-mail is nobody's"
