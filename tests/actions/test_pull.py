"""``POST /actions/pull`` and ``rsbridge actions pull``: pull now, as the vendor's module.

The simulated appliance holds ended sessions; the engine serves the actions API over real
HTTP and its workers import what a pull queues into the test connector.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rsbridge.appliance.report_model import SupportSession
from rsbridge.sim.appliance.scenarios import SessionGenerator
from tests.actions.conftest import (
    Mailbox,
    Server,
    Sim,
    config_data,
    engine_server,
    integration,
)

PULL_TOKEN = "pull-only-token-5b8e1d2c7a"
KEYS_TOKEN = "keys-only-token-9c4f3a6e1b"


def _ended(session: SupportSession, ago: float) -> SupportSession:
    """``session`` moved in time so that it ended ``ago`` seconds ago."""
    assert session.start_time is not None and session.end_time is not None
    shift = datetime.now(UTC) - timedelta(seconds=ago) - session.end_time
    return dataclasses.replace(
        session, start_time=session.start_time + shift, end_time=session.end_time + shift
    )


def _sessions(seed: int, count: int, ago: float) -> list[SupportSession]:
    generator = SessionGenerator(seed)
    return [_ended(generator.session_from_key("INC0010001"), ago + i) for i in range(count)]


@pytest.fixture
def pulling(tmp_path: Path, sim: Sim, mailbox: Mailbox) -> Iterator[Server]:
    """Two integrations that take outbound events (no polling), and two scoped clients."""
    clients = [
        {"name": "module", "token": PULL_TOKEN, "integrations": ["desk"], "routes": ["pull"]},
        {"name": "keys", "token": KEYS_TOKEN, "integrations": ["desk"], "routes": ["session_key"]},
    ]
    data = config_data(
        tmp_path,
        sim,
        mailbox,
        integrations=[
            # Imported even without a ticket: what is checked is that the session arrives.
            {**integration(name), "association": {"on_unmatched": "import"}}
            for name in ("desk", "other")
        ],
        actions={"clients": clients},
    )
    with engine_server(data, sim, mailbox) as running:
        yield running


def _wait_for(condition: object, seconds: float = 20.0) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_first_pull_takes_24_hours_and_the_next_starts_where_it_ended(
    pulling: Server,
) -> None:
    old = _sessions(1, 1, ago=3 * 86400)  # before the first window
    fresh = _sessions(2, 3, ago=600)
    for session in [*old, *fresh]:
        pulling.state.add_report(session)
    before = time.time()
    first = pulling.post("/actions/pull", {"integration": "desk"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["integration"] == "desk" and body["first_run"] is True
    assert body["sessions_listed"] == 3 and body["sessions_queued"] == 3
    assert body["surveys_queued"] == 0 and body["appliance_calls"] >= 1
    since = datetime.fromisoformat(body["since"]).timestamp()
    assert abs(since - (before - 24 * 3600)) < 60
    assert first.headers["cache-control"] == "no-store"
    # The engine's workers import what was queued (this integration does not even poll).
    table = pulling.table
    _wait_for(lambda: sorted(table.imported) == sorted(s.lsid for s in fresh))

    # Pulled again: nothing new to queue; the window starts at the last pull (less the
    # report wait), not 24 hours back.
    again = pulling.post("/actions/pull", {"integration": "desk"}).json()
    assert again["first_run"] is False
    assert again["sessions_queued"] == 0
    wait = pulling.config.engine.report_wait_seconds
    assert abs(datetime.fromisoformat(again["since"]).timestamp() - (before - wait)) < 60

    # A session that ends now is the only one the next pull queues.
    [late] = _sessions(3, 1, ago=1)
    pulling.state.add_report(late)
    third = pulling.post("/actions/pull", {"integration": "desk"}).json()
    assert third["sessions_queued"] == 1
    _wait_for(lambda: late.lsid in table.imported)
    time.sleep(0.3)
    assert sorted(table.imported) == sorted(s.lsid for s in [*fresh, late])  # none twice


def test_each_integration_has_its_own_watermark(pulling: Server) -> None:
    for session in _sessions(4, 2, ago=300):
        pulling.state.add_report(session)
    assert pulling.post("/actions/pull", {"integration": "desk"}).json()["first_run"] is True
    other = pulling.post("/actions/pull", {"integration": "other"}).json()
    assert (other["first_run"], other["sessions_queued"]) == (True, 2)


def test_scoped_clients_need_the_pull_route_and_the_integration(pulling: Server) -> None:
    allowed = pulling.post(
        "/actions/pull", {"integration": "desk"}, headers={"Authorization": f"Bearer {PULL_TOKEN}"}
    )
    assert allowed.status_code == 200, allowed.text
    refused = [
        pulling.post(
            "/actions/pull",
            {"integration": "other"},
            headers={"Authorization": f"Bearer {PULL_TOKEN}"},
        ),
        pulling.post(
            "/actions/pull",
            {"integration": "desk"},
            headers={"Authorization": f"Bearer {KEYS_TOKEN}"},
        ),
    ]
    for answer in refused:
        assert (answer.status_code, answer.json()["error"]) == (403, "forbidden"), answer.text
    # The refused integration was not pulled: its first pull is still to come.
    assert pulling.post("/actions/pull", {"integration": "other"}).json()["first_run"] is True


def test_bad_requests_are_refused_clearly(pulling: Server) -> None:
    unknown = pulling.post("/actions/pull", {"integration": "nope"})
    assert (unknown.status_code, unknown.json()["error"]) == (
        404,
        "appliance_configuration_not_found",
    )
    assert "desk" in unknown.json()["message"]
    missing = pulling.post("/actions/pull", {})
    assert (missing.status_code, missing.json()["error"]) == (422, "invalid_request")
    extra = pulling.post("/actions/pull", {"integration": "desk", "since": "3d"})
    assert (extra.status_code, extra.json()["error"]) == (422, "invalid_request")
    assert pulling.get("/actions/pull").status_code == 405
