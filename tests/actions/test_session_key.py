"""POST /actions/session-key: the five assignment modes, the three sources, work notes
once-only, e-mail through a real SMTP server, and refusals."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from tests.actions.conftest import (
    ABEL,
    Mailbox,
    Server,
    Sim,
    config_data,
    engine_server,
    integration,
)
from tests.conftest import free_port, signed_names


def test_technician_mode_maps_the_user_and_stamps_the_ticket(server: Server) -> None:
    answer = server.post(
        "/actions/session-key",
        {"integration": "desk", "ticket": "INC0010001", "user": "abel.admin"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "command_api"
    assert body["queue"] == "rep:2"  # jsmith
    assert body["ticket"] == {
        "id": "sys-inc1",
        "number": "INC0010001",
        "url": "https://itsm.example.com/INC0010001",
    }
    assert len(body["short_key"]) == 7 and body["key_url"].startswith("https://")
    assert datetime.fromisoformat(body["expires"]).tzinfo is not None
    assert body["mail_subject"] and body["key_url"] in body["mail_body"]
    assert answer.headers["cache-control"] == "no-store"
    key = server.state.session_keys[body["short_key"]]
    # The end-of-session import finds the ticket through these.
    stamped = {"external_key": "INC0010001", "snow_task_id": "sys-inc1"}
    assert {k: v for k, v in key.custom.items() if k != "rsb_sig"} == stamped
    assert signed_names(key.custom["rsb_sig"], stamped, integration="desk") == set(stamped)
    assert (key.queue, key.queue_id) == ("rep", "2")


@pytest.mark.parametrize(
    ("assignment", "extra", "queue"),
    [
        ("assigned_user", {}, ("rep", "2")),  # the ticket's assigned_rep jsmith
        ("assigned_team", {}, ("team", "2")),  # the ticket's group "Network"
        ("general", {}, ("general", None)),
        ("queue", {}, ("rep", "2")),  # the integration's queue = "rep:jsmith"
        ("queue", {"queue": "team:service desk"}, ("team", "1")),  # by name, any case
        ("queue", {"queue": "rep:admin"}, ("rep", "1")),
    ],
)
def test_assignment_modes(
    server: Server, assignment: str, extra: dict[str, str], queue: tuple[str, str | None]
) -> None:
    answer = server.post(
        "/actions/session-key",
        {"integration": "desk", "ticket": "INC0010001", "assignment": assignment, **extra},
    )
    assert answer.status_code == 200, answer.text
    key = server.state.session_keys[answer.json()["short_key"]]
    assert (key.queue, key.queue_id) == queue


def test_the_ticket_can_be_named_by_id(server: Server) -> None:
    answer = server.post(
        "/actions/session-key",
        {"integration": "desk", "ticket": "sys-inc1", "assignment": "general"},
    )
    assert answer.status_code == 200
    assert answer.json()["ticket"]["number"] == "INC0010001"


def test_closed_tickets_are_refused(server: Server) -> None:
    before = len(server.state.session_keys)
    answer = server.post(
        "/actions/session-key",
        {"integration": "desk", "ticket": "INC0010002", "user": "abel.admin"},
    )
    assert answer.status_code == 409
    assert answer.json()["error"] == "ticket_closed"
    assert "INC0010002 is closed (state Closed)" in answer.json()["message"]
    assert len(server.state.session_keys) == before


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"assignment": "technician"}, "needs user"),
        ({"assignment": "assigned_user", "ticket": "INC0010003"}, "not assigned to a user"),
        ({"assignment": "assigned_team", "ticket": "INC0010003"}, "no assignment group"),
        ({"assignment": "queue", "queue": "team:Nobody"}, "no support team named 'Nobody'"),
        ({"assignment": "sideways"}, "assignment"),
        ({"queue": "desk:1"}, "queue"),
        ({"unknown": 1}, "unknown"),
        ({"ticket": ""}, "ticket"),
        ({"request_id": "spaces are not allowed"}, "request_id"),
    ],
)
def test_bad_input_is_422(server: Server, body: dict[str, object], needle: str) -> None:
    answer = server.post(
        "/actions/session-key", {"integration": "desk", "ticket": "INC0010001", **body}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "invalid_request"
    assert needle in answer.json()["message"]


def test_an_unknown_ticket_is_404(server: Server) -> None:
    answer = server.post(
        "/actions/session-key", {"integration": "desk", "ticket": "INC404", "assignment": "general"}
    )
    assert answer.status_code == 404
    assert answer.json()["error"] == "ticket_not_found"


def test_a_body_that_is_not_a_json_object_is_400(server: Server) -> None:
    answer = server.http.post(f"{server.url}/actions/session-key", content=b"[1, 2")
    assert answer.status_code == 400
    assert server.post("/actions/session-key", [1]).status_code == 400  # type: ignore[arg-type]


def test_work_note_is_written_once_per_request_id(server: Server) -> None:
    request = {
        "integration": "desk",
        "ticket": "INC0010001",
        "user": "abel.admin",
        "request_id": "ui-action-42",
    }
    first = server.post("/actions/session-key", request)
    keys_after_first = len(server.state.session_keys)
    second = server.post("/actions/session-key", request)
    assert first.status_code == second.status_code == 200
    assert first.json()["short_key"] == second.json()["short_key"]
    assert not first.json()["repeated"] and second.json()["repeated"]
    assert len(server.state.session_keys) == keys_after_first  # no second key
    notes = server.table.notes_on("sys-inc1")
    assert len(notes) == 1
    assert first.json()["short_key"] in notes[0] and "representative jsmith" in notes[0]
    assert "by abel.admin" in notes[0]
    assert first.json()["note"]["written"] is True


def test_each_new_request_gets_its_own_key_and_note(server: Server) -> None:
    request = {"integration": "desk", "ticket": "INC0010001", "assignment": "general"}
    keys = {server.post("/actions/session-key", request).json()["short_key"] for _ in range(2)}
    assert len(keys) == 2
    assert len(server.table.notes_on("sys-inc1")) == 2


def test_a_request_id_cannot_be_reused_for_another_ticket(server: Server) -> None:
    request = {"integration": "desk", "assignment": "general", "request_id": "r-1"}
    assert server.post("/actions/session-key", {**request, "ticket": "INC0010001"}).is_success
    answer = server.post("/actions/session-key", {**request, "ticket": "INC0010003"})
    assert answer.status_code == 409
    assert answer.json()["error"] == "request_id_reused"


def test_note_can_be_turned_off(server: Server) -> None:
    answer = server.post(
        "/actions/session-key",
        {"integration": "desk", "ticket": "INC0010001", "assignment": "general", "note": False},
    )
    assert answer.json()["note"] is None
    assert server.table.notes_on("sys-inc1") == []


def test_the_key_is_emailed_to_the_caller(server: Server) -> None:
    assert server.mailbox is not None
    answer = server.post(
        "/actions/session-key",
        {"integration": "mail", "ticket": "INC0010001", "assignment": "general"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["email"] == {"sent": True, "ref": "abel.tuter@example.com", "to": ABEL.caller_email}
    assert body["note"] is None  # log_session_key = false on this integration
    [(sender, recipients, message)] = server.mailbox.received()
    assert sender == "rsbridge@example.com"
    assert recipients == ["abel.tuter@example.com"]
    assert message["Subject"] == body["mail_subject"]
    text = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert body["key_url"] in text
    assert text.replace("\r\n", "\n").strip() == body["mail_body"].strip()


def test_email_to_an_address_in_the_request_and_once_per_request_id(server: Server) -> None:
    assert server.mailbox is not None
    request = {
        "integration": "desk",
        "ticket": "INC0010003",
        "assignment": "general",
        "email_to": "someone@example.org",
        "request_id": "mail-once",
    }
    first = server.post("/actions/session-key", request)
    second = server.post("/actions/session-key", request)
    assert first.json()["email"]["sent"] and second.json()["email"]["sent"]
    assert [r for _, r, _ in server.mailbox.received()] == [["someone@example.org"]]


def test_email_without_an_address_is_refused_before_any_key(server: Server) -> None:
    before = len(server.state.session_keys)
    answer = server.post(
        "/actions/session-key",
        {"integration": "mail", "ticket": "INC0010003", "assignment": "general"},
    )
    assert answer.status_code == 422
    assert "no caller e-mail address; give email_to" in answer.json()["message"]
    bad = server.post(
        "/actions/session-key",
        {"integration": "desk", "ticket": "INC0010001", "email_to": "not an address"},
    )
    assert bad.status_code == 422
    assert len(server.state.session_keys) == before


def test_email_failure_is_reported_with_the_key(tmp_path: Path, sim: Sim, mailbox: Mailbox) -> None:
    # An SMTP server that is not there: the key exists all the same and is answered.
    down = Mailbox(free_port())
    data = config_data(tmp_path, sim, down, integrations=[integration("mail", email_key=True)])
    with engine_server(data, sim, down) as running:
        answer = running.post(
            "/actions/session-key",
            {"integration": "mail", "ticket": "INC0010001", "assignment": "general"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["short_key"] in sim.state.session_keys
    assert body["email"]["sent"] is False
    assert f"127.0.0.1:{down.port}" in body["email"]["error"]
    assert body["note"]["written"] is True


def test_rep_console_source_gives_a_console_url_and_brcs(server: Server) -> None:
    before = len(server.state.session_keys)
    answer = server.post("/actions/session-key", {"integration": "console", "ticket": "INC0010001"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "rep_console" and body["short_key"] is None
    url = urlsplit(body["console_url"])
    assert url.path == "/api/client_script"
    query = dict(parse_qsl(url.query))
    signature = query.pop("session.custom.rsb_sig")
    assert query == {
        "type": "rep",
        "operation": "generate",
        "action": "generate_session_key",
        "session.custom.external_key": "INC0010001",
        "session.custom.snow_task_id": "sys-inc1",
    }
    stamped = {"external_key": "INC0010001", "snow_task_id": "sys-inc1"}
    assert signed_names(signature, stamped, integration="console") == set(stamped)
    brcs = body["brcs"]
    assert brcs["extension"] == "brcs-examplecorp"  # the appliance's company name
    assert brcs["filename"] == "session-key-INC0010001.brcs-examplecorp"
    assert brcs["content"].splitlines()[0] == "BRCS1.0"
    assert "action=generate_session_key" in brcs["content"]
    assert len(server.state.session_keys) == before  # the console makes the key


def test_rep_console_source_cannot_email(server: Server) -> None:
    answer = server.post(
        "/actions/session-key",
        {"integration": "console", "ticket": "INC0010001", "email": True},
    )
    assert answer.status_code == 422


def test_web_console_source_makes_the_key_and_gives_the_web_console(server: Server) -> None:
    answer = server.post(
        "/actions/session-key",
        {"integration": "web", "ticket": "INC0010001", "assignment": "assigned_user"},
    )
    body = answer.json()
    assert body["source"] == "web_console"
    assert body["short_key"] in server.state.session_keys
    assert body["console_url"] == f"https://{server.config.appliances[0].host}/console"


def test_ttl_and_public_portal(tmp_path: Path, sim: Sim, mailbox: Mailbox) -> None:
    data = config_data(
        tmp_path,
        sim,
        mailbox,
        integrations=[
            integration("desk", key_ttl_seconds=1800, public_portal_hostname="partners.example.com")
        ],
    )
    with engine_server(data, sim, mailbox) as running:
        before = time.time()
        answer = running.post(
            "/actions/session-key",
            {"integration": "desk", "ticket": "INC0010001", "assignment": "general"},
        )
    body = answer.json()
    assert urlsplit(body["key_url"]).hostname == "partners.example.com"
    assert sim.state.session_keys[body["short_key"]].portal.hostname == "partners.example.com"
    lifetime = datetime.fromisoformat(body["expires"]).timestamp() - before
    assert 1790 < lifetime < 1830


def test_keys_last_the_appliances_24_hours_by_default(server: Server) -> None:
    # No key_ttl_seconds: no ttl is sent, and the key lives as the appliance makes it.
    desk = server.config.integration("desk")
    assert desk is not None and desk.actions.key_ttl_seconds is None
    before = time.time()
    answer = server.post(
        "/actions/session-key",
        {"integration": "desk", "ticket": "INC0010001", "assignment": "general"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    lifetime = datetime.fromisoformat(body["expires"]).timestamp() - before
    assert 86400 - 30 < lifetime < 86400 + 30


def _templated(
    tmp_path: Path, sim: Sim, mailbox: Mailbox, subject: str, body: str
) -> dict[str, Any]:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "session_key_mail_subject.txt").write_text(subject)
    (folder / "session_key_mail.txt").write_text(body)
    desk = {**integration("desk", email_key=True), "templates": str(folder)}
    return config_data(tmp_path, sim, mailbox, integrations=[desk])


def test_the_key_email_comes_from_templates_an_administrator_overrides(
    tmp_path: Path, sim: Sim, mailbox: Mailbox
) -> None:
    data = _templated(
        tmp_path,
        sim,
        mailbox,
        "Your remote support key {{ short_key }}\nfor {{ ticket.number }}",
        "Hello {{ caller_name }},\n\nopen {{ key_url }} before {{ expires | datetime }}.\n"
        "({{ integration }}, queue {{ queue }}; the appliance says: {{ appliance_subject }})\n",
    )
    with engine_server(data, sim, mailbox) as running:
        answer = running.post(
            "/actions/session-key",
            {"integration": "desk", "ticket": "INC0010001", "assignment": "general"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["email"]["sent"] is True
    [(_, _, message)] = mailbox.received()
    # One line: the template's line break is a space in the header.
    assert message["Subject"] == f"Your remote support key {body['short_key']} for INC0010001"
    text = message.get_payload(decode=True).decode().replace("\r\n", "\n")  # type: ignore[union-attr]
    expires = datetime.fromisoformat(body["expires"]).strftime("%Y-%m-%d %H:%M")
    assert text.startswith(f"Hello Abel Tuter,\n\nopen {body['key_url']} before {expires}")
    assert f"(desk, queue general; the appliance says: {body['mail_subject']})" in text
    # The answer still carries the appliance's own texts.
    assert body["mail_subject"] == "Remote Support Invitation"


def test_a_broken_key_email_template_fails_the_email_not_the_key(
    tmp_path: Path, sim: Sim, mailbox: Mailbox
) -> None:
    data = _templated(tmp_path, sim, mailbox, "{{ no_such_value }}", "{{ key_url }}")
    with engine_server(data, sim, mailbox) as running:
        answer = running.post(
            "/actions/session-key",
            {"integration": "desk", "ticket": "INC0010001", "assignment": "general"},
        )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["short_key"] in sim.state.session_keys
    assert body["email"]["sent"] is False
    assert "session_key_mail_subject.txt line 1" in body["email"]["error"]
    assert "no_such_value" in body["email"]["error"]
    assert mailbox.received() == []
