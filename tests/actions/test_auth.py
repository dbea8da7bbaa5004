"""Authentication of the actions API, and no secret in any answer or log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.actions.conftest import (
    LINK_SECRET,
    OTHER_TOKEN,
    SMTP_PASSWORD,
    TOKEN,
    Mailbox,
    Server,
    Sim,
    config_data,
    engine_server,
    integration,
    smtp_server,
)

PATHS = [
    ("POST", "/actions/session-key"),
    ("POST", "/actions/jump"),
    ("POST", "/actions/support-now"),
    ("GET", "/actions/issues"),
    ("GET", "/actions/links"),
    ("GET", "/actions/auto-create"),
    ("POST", "/actions/auto-create"),
    ("POST", "/actions/pull"),
]


BAD_HEADERS = [None, "Bearer", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN]


@pytest.mark.parametrize(("method", "path"), PATHS)
def test_missing_or_wrong_tokens_are_401(server: Server, method: str, path: str) -> None:
    for header in BAD_HEADERS:
        headers = {} if header is None else {"Authorization": header}
        with httpx.Client() as anonymous:
            answer = anonymous.request(
                method,
                f"{server.url}{path}",
                params={"integration": "desk", "lsid": "0" * 32},
                json={"integration": "desk", "ticket": "INC0010001"},
                headers=headers,
            )
        assert answer.status_code == 401, header
        assert answer.json() == {
            "error": "unauthorized",
            "message": "missing or wrong bearer token",
        }
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert server.state.session_keys == {}


def test_every_configured_token_works(server: Server) -> None:
    for token in (TOKEN, OTHER_TOKEN):
        answer = server.get(
            "/actions/issues",
            params={"integration": "desk"},
            headers={"Authorization": f"bearer {token}"},
        )
        assert answer.status_code == 200


def test_the_routes_do_not_exist_when_actions_are_disabled(
    tmp_path: Path, sim: Sim, mailbox: Mailbox
) -> None:
    data = config_data(tmp_path, sim, mailbox, integrations=[integration("desk")])
    data["actions"]["enabled"] = False
    with engine_server(data, sim, mailbox) as server:
        assert server.get("/actions/issues", params={"integration": "desk"}).status_code == 404
        assert server.get("/health").status_code == 200


def test_no_secret_in_any_answer_or_log(
    tmp_path: Path, sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with smtp_server(auth_require_tls=False, authenticator=_refuse) as box:
        data = config_data(
            tmp_path,
            sim,
            box,
            integrations=[integration("desk", email_key=True)],
            smtp={"username": "rsbridge", "password": SMTP_PASSWORD},
        )
        with engine_server(data, sim, box) as server:
            exercise(server)
            with httpx.Client() as anonymous:
                anonymous.get(
                    f"{server.url}/actions/issues",
                    params={"integration": "desk"},
                    headers={"Authorization": f"Bearer {LINK_SECRET}"},
                )
            answers = list(server.answers)
    assert len(answers) >= 8
    email = next(a for a in answers if '"email"' in a)
    assert "refused the login of 'rsbridge'" in email
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused" in logged
    for secret in (TOKEN, OTHER_TOKEN, LINK_SECRET, SMTP_PASSWORD, sim.client_secret):
        for text in [*answers, logged]:
            assert secret not in text


def _refuse(*args: object) -> object:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=False, handled=False)


def exercise(server: Server) -> None:
    """A bit of every route, successes and failures."""
    server.post(
        "/actions/session-key",
        {"integration": "desk", "ticket": "INC0010001", "assignment": "general"},
    )
    server.post("/actions/session-key", {"integration": "desk", "ticket": "INC0010001"})
    server.post("/actions/session-key", {"integration": "nope", "ticket": "INC0010001"})
    server.post("/actions/jump", {"integration": "desk", "ticket": "INC0010001"})
    server.post("/actions/support-now", {"integration": "desk", "ticket": "INC0010001"})
    server.get("/actions/issues", params={"integration": "desk"})
    server.get("/actions/links", params={"integration": "desk"})
    server.get("/actions/auto-create", params={"integration": "desk", "lsid": "f" * 32})
    server.post("/actions/auto-create", {"integration": "desk", "lsid": "f" * 32})


DESK_TOKEN = "desk-keys-only-token-4c1d9e"
ABEL_TOKEN = "abel-own-token-8e2f7a61c3"


@pytest.fixture
def scoped(tmp_path: Path, sim: Sim, mailbox: Mailbox) -> Iterator[Server]:
    clients = [
        {
            "name": "desk-ui",
            "token": DESK_TOKEN,
            "integrations": ["desk"],
            "routes": ["session_key", "links"],
        },
        {
            "name": "abel",
            "token": ABEL_TOKEN,
            "integrations": ["desk", "portal"],
            "routes": ["session_key", "auto_create"],
            "user": "abel.admin",
        },
    ]
    data = config_data(tmp_path, sim, mailbox, actions={"clients": clients})
    with engine_server(data, sim, mailbox) as running:
        yield running


def _as(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_client_token_opens_its_routes_and_integrations_only(scoped: Server) -> None:
    key = {"integration": "desk", "ticket": "INC0010001", "assignment": "general"}
    allowed = scoped.post("/actions/session-key", key, headers=_as(DESK_TOKEN))
    assert allowed.status_code == 200, allowed.text
    links = scoped.get("/actions/links", params={"integration": "desk"}, headers=_as(DESK_TOKEN))
    assert links.status_code == 200
    refused = [
        scoped.post(
            "/actions/session-key", {**key, "integration": "portal"}, headers=_as(DESK_TOKEN)
        ),
        scoped.get("/actions/links", params={"integration": "portal"}, headers=_as(DESK_TOKEN)),
        scoped.get("/actions/issues", params={"integration": "desk"}, headers=_as(DESK_TOKEN)),
        scoped.post(
            "/actions/jump",
            {"integration": "desk", "ticket": "INC0010001"},
            headers=_as(DESK_TOKEN),
        ),
        scoped.get(
            "/actions/auto-create",
            params={"integration": "desk", "lsid": "f" * 32},
            headers=_as(DESK_TOKEN),
        ),
    ]
    for answer in refused:
        assert (answer.status_code, answer.json()["error"]) == (403, "forbidden"), answer.text
    assert len(scoped.state.session_keys) == 1
    # The unscoped tokens of actions.tokens still open everything.
    assert scoped.get("/actions/issues", params={"integration": "portal"}).status_code == 200
    assert not any(DESK_TOKEN in a or ABEL_TOKEN in a for a in scoped.answers)


def test_a_user_bound_token_acts_as_its_user_only(scoped: Server) -> None:
    key = {"integration": "desk", "ticket": "INC0010001", "assignment": "technician"}
    # No user given: the token's. abel.admin is jsmith on the appliance (the connector maps).
    own = scoped.post("/actions/session-key", key, headers=_as(ABEL_TOKEN))
    assert own.status_code == 200, own.text
    made = scoped.state.session_keys[own.json()["short_key"]]
    assert made.queue == "rep" and made.queue_id == "2"  # jsmith
    assert any("generated by abel.admin" in n for n in scoped.table.notes_on("sys-inc1"))
    same = scoped.post(
        "/actions/session-key", {**key, "user": "Abel.Admin"}, headers=_as(ABEL_TOKEN)
    )
    assert same.status_code == 200, same.text
    other = scoped.post("/actions/session-key", {**key, "user": "mary"}, headers=_as(ABEL_TOKEN))
    assert (other.status_code, other.json()["error"]) == (403, "user_mismatch")
    assert len(scoped.state.session_keys) == 2
    # The auto-create route too: the bound user, never another.
    lsid = scoped.state.start_session(scoped.state.generate_session_key(queue_id="rep:2").short_key)
    create = {"integration": "desk", "lsid": lsid}
    posing = scoped.post(
        "/actions/auto-create", {**create, "username": "mary"}, headers=_as(ABEL_TOKEN)
    )
    assert (posing.status_code, posing.json()["error"]) == (403, "user_mismatch")
    assert scoped.post("/actions/auto-create", create, headers=_as(ABEL_TOKEN)).status_code == 200
    # An unbound token takes the user on the caller's word (the documented weaker mode).
    # (mary is mjones, who is not logged in: the appliance says so, for mjones.)
    word = scoped.post("/actions/session-key", {**key, "user": "mary"})
    assert word.json()["error"] == "representative_unavailable"
    assert "mjones" in word.json()["message"]
