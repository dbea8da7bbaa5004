"""Tests for the simulated appliance's outbound-event sender, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rsbridge.appliance.report_model import EventType
from rsbridge.sim.appliance.emitter import (
    BEGIN,
    CUSTOMER_SURVEY,
    END,
    FORM_CONTENT_TYPE,
    MEMBER_ADDED,
    MEMBER_DEPARTED,
    OWNER_CHANGED,
    REP_SURVEY,
    OutboundEvent,
    OutboundEventEmitter,
    Recipient,
    events_for_session,
)
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.serve import serve_in_thread

APPLIANCE_ID = "4f0c3b8e9a7d4b21a6e5c3d2b1a09f8e"


@dataclass
class Hit:
    """One POST the receiver got; ``status`` 0 means it answered after the sender gave up."""

    path: str
    content_type: str
    form: list[tuple[str, str]]
    status: int
    at: float

    @property
    def lsid(self) -> str:
        return dict(self.form).get("lsid", "")


@dataclass
class Receiver:
    """An outbound-event endpoint whose answers the test scripts per lsid."""

    base_url: str = ""
    failures: dict[str, int] = field(default_factory=dict)
    slow: dict[str, int] = field(default_factory=dict)
    slow_seconds: float = 0.75
    hits: list[Hit] = field(default_factory=list)

    async def endpoint(self, request: Request) -> Response:
        form = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        hit = Hit(request.url.path, request.headers["content-type"], form, 200, time.monotonic())
        if self.failures.get(hit.lsid, 0) > 0:
            self.failures[hit.lsid] -= 1
            hit.status = 500
        elif self.slow.get(hit.lsid, 0) > 0:
            self.slow[hit.lsid] -= 1
            hit.status = 0
        self.hits.append(hit)
        if hit.status == 0:
            await asyncio.sleep(self.slow_seconds)
        return Response(status_code=hit.status or 200)

    def delivered(self, path: str) -> list[str]:
        return [h.lsid for h in self.hits if h.path == path and h.status == 200]

    def statuses(self) -> list[tuple[str, int]]:
        return [(h.lsid, h.status) for h in self.hits]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    app = Starlette(routes=[Route("/{name}", r.endpoint, methods=["POST"])])
    with serve_in_thread(app) as base_url:
        r.base_url = base_url
        yield r


def _event(lsid: str, name: str = BEGIN) -> OutboundEvent:
    return OutboundEvent(name, (("version", "3"), ("lsid", lsid)))


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/ERSPost"


async def _send(recipients: list[Recipient], events: list[OutboundEvent]) -> None:
    emitter = OutboundEventEmitter(recipients)
    for event in events:
        emitter.enqueue(event)
    await emitter.run_until_idle()
    await emitter.aclose()


async def _wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        # Polling: the counters and the server thread's hits have no change notification.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


# --- events_for_session -------------------------------------------------------------


def test_session_events_follow_the_session() -> None:
    session = SessionGenerator(11).session_from_key("INC0010001", {"snow_task_id": "a" * 32})
    events = events_for_session(session, APPLIANCE_ID)
    names = [e.event for e in events]
    assert names[0] == BEGIN
    end = names.index(END)
    assert set(names[1:end]) <= {MEMBER_ADDED, OWNER_CHANGED, MEMBER_DEPARTED}
    assert names[end + 1 :] == [CUSTOMER_SURVEY] * len(session.customer_surveys) + [
        REP_SURVEY
    ] * len(session.rep_surveys)
    people = len(session.customers) + len(session.representatives)
    assert names.count(MEMBER_ADDED) == names.count(MEMBER_DEPARTED) == people
    owners = session.events_of(EventType.CONFERENCE_OWNER_CHANGED)
    assert names.count(OWNER_CHANGED) == sum(
        e.destination is not None and e.destination.type == "representative" for e in owners
    )

    begin = events[0]
    assert [k for k, _ in begin.form()] == [
        "event",
        "version",
        "timestamp",
        "appliance_id",
        "lsid",
        "external_key",
    ]
    assert session.start_time is not None and session.end_time is not None
    assert begin.get("timestamp") == str(int(session.start_time.timestamp()))
    assert events[end].get("timestamp") == str(int(session.end_time.timestamp()))
    assert begin.get("appliance_id") == APPLIANCE_ID
    assert begin.get("lsid") == session.lsid and begin.get("external_key") == "INC0010001"
    assert begin.get("session.custom.snow_task_id") is None
    timestamps = [int(e.get("timestamp") or 0) for e in events]
    assert timestamps == sorted(timestamps)

    rep = session.representatives[0]
    joined = next(
        e for e in events if e.event == MEMBER_ADDED and e.get("type") == "representative"
    )
    assert list(joined.variables[5:]) == [
        ("type", "representative"),
        ("name", rep.display_name),
        ("username", rep.username),
        ("user_id", rep.id),
        ("display_name", rep.display_name),
    ]
    customer = next(e for e in events if e.event == MEMBER_ADDED and e.get("type") == "customer")
    assert customer.get("username") == session.customers[0].username
    assert customer.get("user_id") == ""


def test_custom_fields_are_sent_on_request() -> None:
    session = SessionGenerator(12).session_from_key(
        None, {"snow_task_id": "b" * 32, "ticket_id": "CHG0030002"}
    )
    for event in events_for_session(session, APPLIANCE_ID, send_custom_fields=True):
        assert event.get("external_key") == ""
        assert event.form()[-2:] == [
            ("session.custom.snow_task_id", "b" * 32),
            ("session.custom.ticket_id", "CHG0030002"),
        ]


def test_a_session_in_progress_has_no_end_event() -> None:
    session = next(SessionGenerator(13).sessions(1))
    session.end_time = None
    names = [e.event for e in events_for_session(session, APPLIANCE_ID)]
    assert END not in names and CUSTOMER_SURVEY not in names and REP_SURVEY not in names


# --- delivery over HTTP -------------------------------------------------------------


async def test_events_arrive_form_encoded_and_in_order(receiver: Receiver) -> None:
    sessions = SessionGenerator(14).sessions(3)
    events = [e for s in sessions for e in events_for_session(s, APPLIANCE_ID)]
    recipient = Recipient(f"{receiver.base_url}/ERSPost")
    await _send([recipient], events)
    assert [h.form for h in receiver.hits] == [e.form() for e in events]
    assert {h.content_type for h in receiver.hits} == {FORM_CONTENT_TYPE}
    assert {h.path for h in receiver.hits} == {"/ERSPost"}
    assert (recipient.sent, recipient.attempts, recipient.dropped, recipient.queued) == (
        len(events),
        len(events),
        0,
        0,
    )


async def test_head_of_line_blocks_until_200_and_retries_every_interval(
    receiver: Receiver,
) -> None:
    receiver.failures["a"] = 3
    recipient = Recipient(f"{receiver.base_url}/hook", retry_interval=0.05, retry_duration=5)
    await _send([recipient], [_event("a"), _event("b"), _event("c")])
    assert receiver.statuses() == [("a", 500)] * 3 + [("a", 200), ("b", 200), ("c", 200)]
    tries = [h.at for h in receiver.hits if h.lsid == "a"]
    assert all(later - earlier >= 0.045 for earlier, later in pairwise(tries))
    assert (recipient.sent, recipient.attempts, recipient.dropped) == (3, 6, 0)


async def test_event_is_dropped_after_retry_duration(receiver: Receiver) -> None:
    receiver.failures["a"] = 10**6
    recipient = Recipient(f"{receiver.base_url}/hook", retry_interval=0.02, retry_duration=0.15)
    await _send([recipient], [_event("a"), _event("b")])
    tries = [h.at for h in receiver.hits if h.lsid == "a"]
    # Retried every 0.02 s for 0.15 s: at most 0.15 / 0.02 + 1 tries, fewer on a busy
    # machine (how many is a matter of its load, not of the emitter).
    assert 1 <= len(tries) <= 9
    assert receiver.delivered("/hook") == ["b"]
    assert receiver.hits[-1].lsid == "b"
    assert (recipient.sent, recipient.dropped, recipient.attempts) == (1, 1, len(tries) + 1)


async def test_timeout_counts_as_failure(receiver: Receiver) -> None:
    receiver.slow["a"] = 1
    recipient = Recipient(
        f"{receiver.base_url}/hook", retry_interval=0.01, retry_duration=5, timeout=0.25
    )
    await _send([recipient], [_event("a"), _event("b")])
    assert receiver.statuses() == [("a", 0), ("a", 200), ("b", 200)]
    assert (recipient.sent, recipient.attempts, recipient.dropped) == (2, 3, 0)


async def test_connection_errors_are_retried_then_dropped() -> None:
    recipient = Recipient(_closed_port_url(), retry_interval=0.01, retry_duration=0.05)
    await _send([recipient], [_event("a"), _event("b")])
    assert (recipient.sent, recipient.dropped, recipient.queued) == (0, 2, 0)
    assert recipient.attempts >= 4


async def test_events_to_send_filter(receiver: Receiver) -> None:
    session = next(SessionGenerator(15).sessions(1))
    events = events_for_session(session, APPLIANCE_ID)
    everything = Recipient(f"{receiver.base_url}/all")
    ends = Recipient(f"{receiver.base_url}/ends", events={END})
    await _send([everything, ends], events)
    assert [h.form for h in receiver.hits if h.path == "/ends"] == [
        e.form() for e in events if e.event == END
    ]
    assert len(receiver.delivered("/all")) == everything.sent == len(events)
    assert ends.sent == ends.attempts == 1


async def test_recipients_are_independent_in_the_background(receiver: Receiver) -> None:
    dead = Recipient(_closed_port_url(), retry_interval=0.05, retry_duration=60)
    alive = Recipient(f"{receiver.base_url}/hook", retry_interval=0.05, retry_duration=60)
    emitter = OutboundEventEmitter([dead, alive])
    async with emitter:
        for lsid in "abc":
            emitter.enqueue(_event(lsid))
        await _wait_for(lambda: alive.sent == 3)
        emitter.enqueue(_event("d"))
        await _wait_for(lambda: alive.sent == 4)
        assert dead.sent == 0 and dead.attempts >= 1
    assert receiver.delivered("/hook") == ["a", "b", "c", "d"]
    assert (dead.queued, dead.dropped, alive.queued) == (4, 0, 0)
    assert (emitter.sent, emitter.queued) == (4, 4)
