"""What a session end and a survey cost in ServiceNow calls (the targets: at most 3 and 2),
and that the reads sent along with the ticket lookup are used once, for that ticket only,
against the simulated instance over real HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from rsbridge.appliance.report_model import CustomAttribute, SupportSession
from rsbridge.connectors.base import Association, Ticket
from rsbridge.connectors.servicenow import ServiceNowConnector, reads
from rsbridge.connectors.servicenow.records import stable_id
from rsbridge.errors import TicketNotFoundError
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.servicenow import DemoSeed, SimServiceNowState, create_app
from rsbridge.sim.servicenow.state import LoggedRequest
from tests.servicenow_helpers import connector_factory, seeded_state

from .contract import APPLIANCE_ID, INTEGRATION, sample_session, session_delivery, survey_delivery

Factory = Callable[..., ServiceNowConnector]
TRUSTED = Association("external_key", True)


@dataclasses.dataclass
class Instance:
    state: SimServiceNowState
    demo: DemoSeed
    url: str

    def calls_since(self, mark: int) -> list[LoggedRequest]:
        return [r for r in self.state.requests[mark:] if r.path.startswith("/api/")]


@pytest.fixture
def sn() -> Iterator[Instance]:
    state, demo = seeded_state(5)
    with serve_in_thread(create_app(state)) as url:
        yield Instance(state, demo, url)


@pytest.fixture
async def make(sn: Instance) -> AsyncIterator[Factory]:
    user, password = sn.demo.integration
    async with connector_factory(sn.url, user, password) as factory:
        yield factory


def session_id(lsid: str) -> str:
    return stable_id(APPLIANCE_ID, INTEGRATION, lsid, "session")


async def find(
    connector: ServiceNowConnector,
    reference: str = "INC0010001",
    session: SupportSession | None = None,
    references: dict[str, str] | None = None,
) -> Ticket:
    """The ticket lookup as the engine's association makes it for a session end."""
    return await connector.find_session_ticket(
        reference,
        source="external_key",
        session=session or sample_session(),
        references=references or {},
    )


async def test_a_session_end_costs_three_calls(sn: Instance, make: Factory) -> None:
    connector = make()
    session = sample_session()
    assert session.representatives and session.end_time is not None
    rep = sn.state.add_user(session.representatives[0].username or "", "pw", ("itil",))
    mark = len(sn.state.requests)
    ticket = await find(connector)
    result = await connector.write_session_report(ticket, session_delivery("k1"))
    calls = sn.calls_since(mark)
    # One read round (the lookup, the session row, the reps' users), one write round,
    # the call that marks the session complete.
    assert [(c.method, c.path) for c in calls] == [
        ("POST", "/api/now/v1/batch"),
        ("POST", "/api/now/v1/batch"),
        ("PATCH", f"/api/now/table/u_rs_session/{session_id(session.lsid)}"),
    ]
    assert {s.method for s in calls[0].sub_requests} == {"GET"}
    assert any(s.path == "/api/now/table/sys_user" for s in calls[0].sub_requests)
    assert any("number%3DINC0010001" in s.query for s in calls[0].sub_requests)
    (row,) = sn.state.query("u_rs_session")
    assert row["sys_id"] == result.ref and row["u_import_state"] == "complete"
    assert row["u_task"] == ticket.id and row["u_primary_rep_user"] == rep.sys_id
    assert len(sn.state.query("u_rs_session_event")) == len(session.events)


async def test_a_survey_costs_two_calls(sn: Instance, make: Factory) -> None:
    connector = make(survey_state_rules=["customer:rating=5 -> 6"], log_surveys=True)
    ticket = await find(connector)
    await connector.write_session_report(ticket, session_delivery("k1", association=TRUSTED))
    mark = len(sn.state.requests)
    await connector.write_survey(
        ticket, survey_delivery("s:survey:customer:0", association=TRUSTED)
    )
    calls = sn.calls_since(mark)
    assert [c.path for c in calls] == ["/api/now/v1/batch"] * 2
    assert {s.method for s in calls[0].sub_requests} == {"GET"}
    assert len(sn.state.query("u_rs_session_survey")) == 2
    assert sn.state.get("incident", ticket.id)["state"] == "6"  # type: ignore[index]
    # A replay reads once and writes nothing.
    mark = len(sn.state.requests)
    again = await connector.write_survey(
        ticket, survey_delivery("s:survey:customer:0", association=TRUSTED)
    )
    assert again.detail.get("already") == "complete"
    assert len(sn.calls_since(mark)) == 1


async def test_a_replay_after_a_lookup_costs_one_call(sn: Instance, make: Factory) -> None:
    connector = make()
    ticket = await find(connector)
    await connector.write_session_report(ticket, session_delivery("k1"))
    mark = len(sn.state.requests)
    ticket = await find(connector)
    again = await connector.write_session_report(ticket, session_delivery("k1"))
    assert again.detail.get("already") == "complete"
    assert len(sn.calls_since(mark)) == 1
    assert len(sn.state.query("u_rs_session")) == 1


async def test_what_the_lookup_read_serves_one_import_of_its_ticket(
    sn: Instance, make: Factory
) -> None:
    connector = make()
    other = await connector.find_ticket("INC0010002")
    await find(connector)  # reads along for INC0010001
    # Another ticket: the answers read along do not count for it; read again.
    mark = len(sn.state.requests)
    await connector.write_session_report(other, session_delivery("k1"))
    assert len(sn.calls_since(mark)) == 3
    (row,) = sn.state.query("u_rs_session")
    assert row["u_task"] == other.id
    # Used once: a second write reads again (and finds the session complete).
    mark = len(sn.state.requests)
    again = await connector.write_session_report(other, session_delivery("k1"))
    assert again.detail.get("already") == "complete" and len(sn.calls_since(mark)) == 1


async def test_old_answers_are_read_again(
    sn: Instance, make: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = make()
    ticket = await find(connector)
    monkeypatch.setattr(reads, "PREFETCH_SECONDS", -1.0)
    mark = len(sn.state.requests)
    await connector.write_session_report(ticket, session_delivery("k1"))
    assert len(sn.calls_since(mark)) == 3  # its own read round, the write, "complete"


async def test_a_later_attempt_never_uses_what_an_earlier_one_read(
    sn: Instance, make: Factory
) -> None:
    """The engine runs each attempt in a task of its own. An attempt that looked the ticket
    up and failed before writing leaves its answers behind; the next attempt (its ticket
    from the ledger, no lookup) must read for itself: the rows may have changed meanwhile,
    e.g. written by another node, and stale answers would write the journal twice."""
    connector = make()
    ticket = await asyncio.create_task(find(connector))  # attempt 1: lookup, then a failure
    mark = len(sn.state.requests)
    # Attempt 2, within PREFETCH_SECONDS, on the ticket the ledger holds.
    await asyncio.create_task(connector.write_session_report(ticket, session_delivery("k1")))
    assert len(sn.calls_since(mark)) == 3  # its own read round, the write, "complete"


async def test_a_ticket_not_found_keeps_nothing(sn: Instance, make: Factory) -> None:
    connector = make()
    with pytest.raises(TicketNotFoundError, match="INC0099999"):
        await find(connector, "INC0099999")
    assert connector._take_prefetch(sample_session().lsid) is None


async def test_the_lookup_follows_only_accepted_references(sn: Instance, make: Factory) -> None:
    ci_name = next(n for n in sn.demo.ids if n.startswith(("ws-", "srv-")))
    session = dataclasses.replace(
        sample_session(), custom_attributes=[CustomAttribute("snow_cmdb_ci_id", "CI", ci_name)]
    )
    connector = make()
    mark = len(sn.state.requests)
    await find(connector, session=session)  # the customer's CI name is not accepted
    assert not any("cmdb_ci" in s.path for c in sn.calls_since(mark) for s in c.sub_requests)
    mark = len(sn.state.requests)
    accepted = {"custom:snow_cmdb_ci_id": ci_name}
    ticket = await find(connector, session=session, references=accepted)
    assert any("cmdb_ci" in s.path for c in sn.calls_since(mark) for s in c.sub_requests)
    association = Association("external_key", True, accepted)
    delivery = session_delivery("k1", session=session, association=association)
    mark = len(sn.state.requests)
    await connector.write_session_report(ticket, delivery)
    assert len(sn.calls_since(mark)) == 2  # the CI came with the lookup
    (row,) = sn.state.query("u_rs_session")
    assert row["u_configuration_item"] == sn.demo.ids[ci_name]


async def test_a_live_session_lookup_reads_nothing_more(sn: Instance, make: Factory) -> None:
    # Auto-create on join looks the ticket up while the session runs: no import follows.
    connector = make()
    live = dataclasses.replace(sample_session(), end_time=None)
    mark = len(sn.state.requests)
    await find(connector, session=live)
    (call,) = sn.calls_since(mark)
    assert call.method == "GET" and call.path == "/api/now/table/incident"
    assert connector._take_prefetch(live.lsid) is None


async def test_an_interrupted_import_found_again_writes_nothing_twice(
    sn: Instance, make: Factory
) -> None:
    # A crash after the first write batch; the job runs again from the lookup, which
    # reads the half-written session row along: the rest is written, nothing twice.
    connector = make(batch_size=10)
    session = sample_session()
    original = connector.client.batch
    writes = 0

    async def crash_on_second_write(requests: Any, *, what: str) -> Any:
        nonlocal writes
        writes += any(r.method != "GET" for r in requests)
        if writes == 2:
            raise ConnectionError("the node died")
        return await original(requests, what=what)

    connector.client.batch = crash_on_second_write  # type: ignore[method-assign]
    ticket = await find(connector)
    with pytest.raises(ConnectionError):
        await connector.write_session_report(ticket, session_delivery("k1"))
    connector = make(batch_size=10)  # the next attempt, on a fresh node
    ticket = await find(connector)
    await connector.write_session_report(ticket, session_delivery("k1"))
    (row,) = sn.state.query("u_rs_session")
    assert row["u_import_state"] == "complete"
    assert len(sn.state.query("u_rs_session_event")) == len(session.events)
    values = [n["value"] for n in sn.state.journal(ticket.id, "work_notes")]
    assert len(values) == len(set(values)), "no journal entry twice"
