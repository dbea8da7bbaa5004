"""The failures the vendor guide's Troubleshooting section lists, as clear answers.

Each one is produced for real: a host that does not resolve, a wrong OAuth client secret,
representatives the simulated appliance does not know or who are not available, custom
fields it does not have (and its other wording of that error), and an integration name
that no configuration has.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from rsbridge.sim.appliance.state import SimApplianceState, SimCommandError
from tests.actions.conftest import (
    Mailbox,
    Server,
    Sim,
    config_data,
    engine_server,
    integration,
    sim_server,
)

ATTRIBUTE_INVALID = "Error validating parameter 'snow_task_id': The session attribute is invalid"


def key(server: Server, **body: object) -> tuple[int, dict[str, str]]:
    answer = server.post(
        "/actions/session-key", {"integration": "desk", "ticket": "INC0010001", **body}
    )
    return answer.status_code, answer.json()


def test_unknown_host(tmp_path: Path, mailbox: Mailbox) -> None:
    # .invalid never resolves (RFC 6761).
    data = config_data(
        tmp_path,
        None,
        mailbox,
        integrations=[integration("desk")],
        appliance={"host": "appliance.invalid", "use_plain_http": False},
    )
    with engine_server(data, None, mailbox) as server:
        issues = server.get("/actions/issues", params={"integration": "desk"})
        status, body = key(server, assignment="general")
    assert issues.status_code == 502
    assert issues.json()["error"] == "unknown_host"
    message = issues.json()["message"]
    assert message.startswith("Something went wrong while attempting to load issues: Unknown host")
    assert "'appliance.invalid' does not resolve" in message and "firewall" in message
    assert (status, body["error"]) == (502, "unknown_host")


def test_bad_oauth_client(tmp_path: Path, sim: Sim, mailbox: Mailbox) -> None:
    data = config_data(
        tmp_path,
        sim,
        mailbox,
        integrations=[integration("desk")],
        appliance={"client_secret": "wrong-secret-value"},
    )
    with engine_server(data, sim, mailbox) as server:
        issues = server.get("/actions/issues", params={"integration": "desk"})
        status, body = key(server, assignment="general")
    assert issues.status_code == 502
    assert issues.json()["error"] == "appliance_auth"
    message = issues.json()["message"]
    assert "The appliance refused the OAuth client" in message
    assert "client_secret" in message and "saved" in message
    assert (status, body["error"]) == (502, "appliance_auth")
    for text in (message, body["message"]):
        assert "wrong-secret-value" not in text and sim.client_secret not in text


def test_representative_not_found_on_the_appliance(server: Server) -> None:
    status, body = key(server, user="ghost")  # mapped to "nobody", unknown to the appliance
    assert status == 502
    assert body["error"] == "representative_not_found"
    assert body["message"].startswith(
        "Error validating parameter 'queue_id': The representative could not be found"
    )
    assert "[queue: representative nobody]" in body["message"]


def test_user_not_mapped_to_a_representative(server: Server) -> None:
    status, body = key(server, user="stranger")
    assert status == 422
    assert body["error"] == "representative_not_found"
    assert "'stranger' is not mapped to a BeyondTrust representative" in body["message"]


@pytest.mark.parametrize("user", ["mary", "bob"])  # unavailable; logged out
def test_representative_not_available(server: Server, user: str) -> None:
    status, body = key(server, user=user)
    assert status == 502
    assert body["error"] == "representative_unavailable"
    assert body["message"].startswith(
        "Requested support representative is not available at this time"
    )
    assert "log" in body["message"] and "rep_console" in body["message"]


def test_invalid_custom_field_code_name(server: Server) -> None:
    answer = server.post(
        "/actions/session-key",
        {"integration": "desk", "ticket": "INC0010004", "assignment": "general"},
    )
    assert answer.status_code == 502
    body = answer.json()
    assert body["error"] == "invalid_custom_field"
    assert body["message"].startswith("Invalid custom field code name")
    assert "code name no_such_field" in body["message"]
    assert "/login > Configuration > Custom Fields" in body["message"]


class AttributeInvalidState(SimApplianceState):
    """An appliance answering with the guide's other wording of a missing custom field."""

    def generate_session_key(self, **kwargs: object) -> object:  # type: ignore[override]
        raise SimCommandError(ATTRIBUTE_INVALID)


def test_session_attribute_invalid(tmp_path: Path, mailbox: Mailbox) -> None:
    state = AttributeInvalidState.default(seed=2)
    with sim_server(state) as sim:
        data = config_data(tmp_path, sim, mailbox, integrations=[integration("desk")])
        with engine_server(data, sim, mailbox) as server:
            status, body = key(server, assignment="general")
    assert status == 502
    assert body["error"] == "session_attribute_invalid"
    assert body["message"].startswith(
        'Error validating parameter "snow_task_id": The session attribute is invalid'
    )
    assert "code name snow_task_id" in body["message"]


ROUTES: Iterable[tuple[str, str, dict[str, object]]] = [
    ("POST", "/actions/session-key", {"ticket": "INC0010001"}),
    ("POST", "/actions/jump", {"ticket": "INC0010001"}),
    ("POST", "/actions/support-now", {"ticket": "INC0010001"}),
    ("GET", "/actions/issues", {}),
    ("GET", "/actions/links", {}),
    ("GET", "/actions/auto-create", {"lsid": "0" * 32}),
]


@pytest.mark.parametrize(("method", "path", "extra"), ROUTES)
def test_appliance_configuration_not_found(
    server: Server, method: str, path: str, extra: dict[str, object]
) -> None:
    if method == "POST":
        answer = server.post(path, {"integration": "Default", **extra})
    else:
        answer = server.get(path, params={"integration": "Default", **extra})
    assert answer.status_code == 404
    body = answer.json()
    assert body["error"] == "appliance_configuration_not_found"
    assert body["message"].startswith(
        "appliance configuration not found: no enabled integration named 'Default'"
    )
    assert "desk" in body["message"]


def test_a_disabled_integration_is_not_found(tmp_path: Path, sim: Sim, mailbox: Mailbox) -> None:
    data = config_data(
        tmp_path,
        sim,
        mailbox,
        integrations=[integration("desk"), {**integration("off"), "disabled": True}],
    )
    with engine_server(data, sim, mailbox) as server:
        answer = server.get("/actions/issues", params={"integration": "off"})
    assert answer.status_code == 404
