"""The simulated Email API: an outbound e-mail in the e-mail log, related to its record."""

from __future__ import annotations

import pytest

from tests.sim_servicenow.conftest import Instance

EMAIL = "/api/now/v1/email"


@pytest.fixture
def sender(sn: Instance) -> Instance:
    sn.state.users["rsbridge"].roles |= {"email_api_send"}
    return sn


def test_an_email_lands_in_the_log_on_its_record(sender: Instance) -> None:
    incident = sender.ids["INC0010001"]
    r = sender.post(
        EMAIL,
        json={
            "to": ["Abel Tuter <abel.tuter@example.com>"],
            "cc": ["beth.anglin@example.com"],
            "subject": "Your session key",
            "text": "Key 1234567",
            "html": "<b>Key 1234567</b>",
            "table_name": "incident",
            "table_record_id": incident,
            "headers": {"X-Custom": "header"},
        },
    )
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    email_id = result["id"]
    assert [link["rel"] for link in result["links"]] == ["self", "status"]
    assert result["links"][0]["href"] == f"/now/v1/email/{email_id}"
    record = sender.state.find("sys_email", email_id)
    assert record is not None
    assert (record["type"], record["mailbox"], record["state"]) == ("send-ready", "outbox", "ready")
    assert (record["target_table"], record["instance"]) == ("incident", incident)
    assert record["recipients"] == "Abel Tuter <abel.tuter@example.com>"
    assert record["copied"] == "beth.anglin@example.com"
    assert (record["body"], record["body_text"]) == ("<b>Key 1234567</b>", "Key 1234567")
    assert record["user"] == "rsbridge"
    # The GET answers in the API's shape, not the table's.
    shown = sender.result(f"{EMAIL}/{email_id}", auth=sender.demo.admin)
    assert shown["to"] == ["Abel Tuter <abel.tuter@example.com>"]
    assert (shown["subject"], shown["type"]) == ("Your session key", "send-ready")
    assert shown["headers"] == {"X-Custom": "header"}
    status = sender.result(
        f"{EMAIL}/{email_id}",
        params={"sysparm_fields": "id,type,state,error"},
        auth=sender.demo.admin,
    )
    assert set(status) == {"id", "type", "state", "error"}


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        ({"subject": "no recipient"}, 400, "'to' must be a list"),
        ({"to": "someone@example.com"}, 400, "'to' must be a list"),
        ({"to": ["not an address"]}, 400, "Invalid email address"),
        ({"to": ["a@example.com\r\nBcc: b@example.com"]}, 400, "Invalid email address"),
        ({"to": ["a@example.com", "b@example.com"] * 51}, 400, "more than 100"),
        ({"to": ["a@example.com"], "table_name": "incident"}, 400, "together"),
        (
            {"to": ["a@example.com"], "table_name": "u_nothing", "table_record_id": "1"},
            400,
            "Invalid table",
        ),
        (
            {"to": ["a@example.com"], "table_name": "incident", "table_record_id": "0" * 32},
            404,
            "No Record",
        ),
    ],
)
def test_bad_emails_are_refused(
    sender: Instance, body: dict[str, object], status: int, text: str
) -> None:
    r = sender.post(EMAIL, json=body)
    assert r.status_code == status
    assert text in r.text
    assert sender.state.query("sys_email") == []


def test_sending_needs_the_email_api_send_role(sn: Instance) -> None:
    r = sn.post(EMAIL, json={"to": ["a@example.com"], "subject": "x"})
    assert r.status_code == 403
    assert "email_api_send" in r.json()["error"]["detail"]
    assert sn.post(EMAIL, json={"to": ["a@example.com"]}, auth=sn.demo.admin).status_code == 200
    # The e-mail log itself is the administrators'.
    assert sn.get("/api/now/table/sys_email").status_code == 403
