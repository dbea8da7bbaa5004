"""The webhook connector against the simulated receiver, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from rsbridge import fastpaths
from rsbridge.appliance.report_model import to_jsonable
from rsbridge.connectors.base import Connector, Ticket
from rsbridge.connectors.webhook import WebhookConnector, idempotency_header, retry_after_seconds
from rsbridge.engine.render import Renderer
from rsbridge.errors import (
    ConfigurationError,
    ConnectorAuthError,
    ConnectorError,
    ConnectorPermanentError,
    ConnectorRetryableError,
    TicketNotFoundError,
)
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.serve import SwappableApp, serve_in_thread
from rsbridge.sim.webhook import WebhookReceiverState, create_app

from .contract import (
    APPLIANCE_ID,
    INTEGRATION,
    ConnectorContract,
    note_delivery,
    sample_session,
    session_delivery,
    survey_delivery,
)

SECRET = "hook-Secret-7c1e0b"
TICKET = Ticket(id="INC0010001")
FAST = {"backoff_seconds": 0.001, "timeout": 2.0}  # keeps retry tests quick


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[SwappableApp, str]]:
    swappable = SwappableApp()
    with serve_in_thread(swappable) as url:
        yield swappable, url


@pytest.fixture
def state(server: tuple[SwappableApp, str]) -> WebhookReceiverState:
    state = WebhookReceiverState(secret=SECRET)
    server[0].app = create_app(state)
    return state


@pytest.fixture
def base(server: tuple[SwappableApp, str], state: WebhookReceiverState) -> str:
    return server[1]


Factory = Callable[..., WebhookConnector]


@pytest.fixture
async def make(base: str) -> AsyncIterator[Factory]:
    """Build connectors posting to the receiver (fast retries, the right secret)."""
    made: list[WebhookConnector] = []

    def factory(**settings: object) -> WebhookConnector:
        raw = {"url": f"{base}/hook", "secret": SECRET, **FAST, **settings}
        connector = WebhookConnector(WebhookConnector.validate_settings(raw))
        made.append(connector)
        return connector

    yield factory
    for connector in made:
        await connector.aclose()


class TestWebhookContract(ConnectorContract):
    connector_class = WebhookConnector
    unknown_ticket_ref = ""

    @pytest.fixture
    async def connector(self, make: Factory, state: WebhookReceiverState) -> Connector:
        self.state = state
        return make()  # ``make`` closes it

    def valid_settings(self) -> dict[str, object]:
        return {"url": "https://hooks.example.com/rsbridge", "secret": "x"}

    def effects(self, key: str) -> int:
        return self.state.effects(key)


def assert_no_secret(err: BaseException) -> None:
    assert SECRET not in str(err)
    assert SECRET not in repr(err)


# --- the request ----------------------------------------------------------------------------


async def test_session_report_body_and_headers(make: Factory, state: WebhookReceiverState) -> None:
    delivery = session_delivery("report-1")
    result = await make().write_session_report(TICKET, delivery)
    [received] = state.received
    assert result.ref == received.id == "rx-1"
    assert result.detail["status"] == "201"
    assert received.path == "/hook"
    assert received.headers["idempotency-key"] == "report-1"
    assert received.headers["authorization"] == f"Bearer {SECRET}"
    assert received.headers["content-type"] == "application/json"
    body = received.body
    assert body["kind"] == "session_report"
    assert body["key"] == "report-1"
    assert body["ticket"] == {"id": "INC0010001", "number": None, "url": None}
    assert (body["appliance_id"], body["integration"]) == (APPLIANCE_ID, INTEGRATION)
    assert body["lsid"] == delivery.session.lsid
    assert (body["text"], body["html"]) == (delivery.report.full.text, delivery.report.full.html)
    assert body["parts"]["chat"]["text"] == "Chat transcript"
    assert body["session"] == json.loads(json.dumps(to_jsonable(delivery.session)))


def _bodies_on_both_paths(state: WebhookReceiverState, count: int) -> list[tuple[object, object]]:
    """The received bodies, fast path and old path in turn, without write times and keys."""
    bodies = [dict(r.body) for r in state.received]
    for body in bodies:
        body.pop("at"), body.pop("key")
    assert len(bodies) == 2 * count
    return list(zip(bodies[0::2], bodies[1::2], strict=True))


async def test_the_fast_path_posts_the_same_session_json(
    make: Factory, state: WebhookReceiverState
) -> None:
    generator = SessionGenerator(seed=5, include_unknown_events=True, system_info_rows=(1, 4))
    sessions = list(generator.sessions(12))
    # Values orjson refuses take the standard library's path: an integer past 64 bits
    # (the parser keeps counts exact) and a key that is not text.
    sessions.append(dataclasses.replace(sessions[0], lsid="big", file_transfer_count=2**70))
    event = dataclasses.replace(sessions[1].events[0], data={"n": "1", 7: "x"})  # type: ignore[dict-item]
    sessions.append(dataclasses.replace(sessions[1], lsid="keys", events=[event]))
    connector = make()
    for n, session in enumerate(sessions):
        await connector.write_session_report(TICKET, session_delivery(f"k{n}", session=session))
        with fastpaths.turned_off():
            before = session_delivery(f"old{n}", session=session)
            await connector.write_session_report(TICKET, before)
    for fast, old in _bodies_on_both_paths(state, len(sessions)):
        assert fast == old
    # Every kind of value was written: times, durations, endpoints, system information.
    first = state.received[0].body["session"]
    assert first["start_time"] == sessions[0].start_time.isoformat()  # type: ignore[union-attr]
    assert isinstance(first["duration"], float)
    assert any(isinstance(c["public_ip"], str) for c in first["customers"])
    assert state.received[-4].body["session"]["file_transfer_count"] == 2**70
    assert state.received[-2].body["session"]["events"][0]["data"] == {"n": "1", "7": "x"}


async def test_a_session_json_written_with_the_rendering_posts_the_same_body(
    make: Factory, state: WebhookReceiverState
) -> None:
    # The engine asks the renderer (in a render process) for the session's JSON when the
    # connector writes it: the body must be byte for byte the one written here from the
    # session, values orjson refuses included (then the standard library writes both).
    generator = SessionGenerator(seed=9, include_unknown_events=True, system_info_rows=(1, 4))
    sessions = list(generator.sessions(6))
    sessions.append(dataclasses.replace(sessions[0], lsid="big", file_transfer_count=2**70))
    connector = make()
    assert connector.writes_session_json()
    with fastpaths.turned_off():
        assert not connector.writes_session_json()
    assert not make(include_session=False).writes_session_json()
    renderer = Renderer()
    bodies: list[bytes] = []
    original = connector.http.send

    async def keep_body(request: httpx.Request, **kwargs: Any) -> httpx.Response:
        bodies.append(request.content)
        return await original(request, **kwargs)

    connector.http.send = keep_body  # type: ignore[method-assign]
    for n, session in enumerate(sessions):
        here = session_delivery(f"k{n}", session=session)
        written = renderer.render(session, session_json=True).session_json
        assert written is not None
        ahead = dataclasses.replace(
            here, report=dataclasses.replace(here.report, session_json=written)
        )
        await connector.write_session_report(TICKET, here)
        await connector.write_session_report(TICKET, ahead)
        first, second = bodies[2 * n], bodies[2 * n + 1]
        # Only the write time may differ.
        assert _without_time(first) == _without_time(second)
    assert len(bodies) == 2 * len(sessions)
    assert json.loads(bodies[-1])["session"]["file_transfer_count"] == 2**70
    assert json.loads(bodies[0])["session"] == json.loads(json.dumps(to_jsonable(sessions[0])))


def _without_time(body: bytes) -> bytes:
    data = json.loads(body)
    at = data.pop("at")
    return body.replace(json.dumps(at).encode(), b"")


async def test_include_session_off(make: Factory, state: WebhookReceiverState) -> None:
    await make(include_session=False).write_session_report(TICKET, session_delivery("r"))
    assert "session" not in state.received[0].body


async def test_survey_and_note_bodies(make: Factory, state: WebhookReceiverState) -> None:
    connector = make()
    await connector.write_survey(TICKET, survey_delivery("s-1"))
    await connector.write_note(TICKET, note_delivery("n-1"))
    survey, note = (r.body for r in state.received)
    assert survey["kind"] == "survey"
    assert survey["survey"]["kind"] == "customer"
    assert survey["survey"]["answers"][0] == {"name": "rating", "value": "5"}
    assert note["kind"] == "note"
    assert note["text"] == "A note from rsbridge"


async def test_no_secret_no_authorization_header(
    make: Factory, state: WebhookReceiverState
) -> None:
    state.secret = None
    await make(secret=None).write_note(TICKET, note_delivery("n"))
    assert "authorization" not in state.received[0].headers


async def test_create_ticket_uses_the_receivers_answer(
    make: Factory, state: WebhookReceiverState
) -> None:
    ticket = await make().create_ticket(sample_session(), {"caller": "Ann"}, key="t-1")
    assert ticket == Ticket(id="rx-1", number="WH0000001")
    body = state.received[0].body
    assert (body["kind"], body["ticket"], body["fields"]) == ("ticket", None, {"caller": "Ann"})


async def test_without_an_id_the_ref_comes_from_the_key(
    make: Factory, state: WebhookReceiverState
) -> None:
    # A receiver that answers 204: the write's ref is the key, the ticket id derives from it.
    state.fail_next(204, 3, body="")
    connector = make()
    assert (await connector.write_note(TICKET, note_delivery("n-1"))).ref == "n-1"
    first = await connector.create_ticket(sample_session(), {}, key="t-1")
    again = await connector.create_ticket(sample_session(), {}, key="t-1")
    assert first == again and first.id.startswith("webhook-")


async def test_check_posts_a_check(make: Factory, state: WebhookReceiverState) -> None:
    result = await make().check()
    assert "/hook answered HTTP 200" in result.summary
    assert state.checks == 1 and state.received == []


async def test_check_gets_the_check_url(
    make: Factory, state: WebhookReceiverState, base: str
) -> None:
    result = await make(check_url=f"{base}/health?token=abc").check()
    assert result.summary == f"{base}/health answered HTTP 200"  # no query string shown
    assert state.checks == 1


# --- status mapping and retries -------------------------------------------------------------


async def test_429_with_retry_after_then_success(
    make: Factory, state: WebhookReceiverState
) -> None:
    state.fail_next(429, 1, retry_after=0.2)
    started = time.monotonic()
    result = await make().write_note(TICKET, note_delivery("n-1"))
    assert time.monotonic() - started >= 0.2
    assert result.ref == "rx-1"
    assert state.requests == 2
    assert state.effects("n-1") == 1


async def test_a_long_retry_after_ends_the_call(make: Factory, state: WebhookReceiverState) -> None:
    state.fail_next(503, 1, retry_after=120)
    with pytest.raises(ConnectorRetryableError, match="retry after 120 s") as caught:
        await make(max_retry_wait=5).write_note(TICKET, note_delivery("n-1"))
    assert caught.value.retry_after == 120
    assert caught.value.retryable
    assert state.requests == 1


@pytest.mark.parametrize("status", [500, 502, 503, 408, 425, 429])
async def test_passing_failures_are_retried_then_retryable(
    make: Factory, state: WebhookReceiverState, status: int
) -> None:
    state.fail_next(status, 10)
    with pytest.raises(ConnectorRetryableError, match=rf"HTTP {status} \(gave up after 4") as c:
        await make(max_attempts=4).write_note(TICKET, note_delivery("n-1"))
    assert c.value.retry_after is None
    assert state.requests == 4
    assert state.received == []


async def test_failures_then_success(make: Factory, state: WebhookReceiverState) -> None:
    state.fail_next(500, 2)
    result = await make(max_attempts=3).write_session_report(TICKET, session_delivery("r"))
    assert result.ref == "rx-1"
    assert state.requests == 3


async def test_400_is_permanent_with_an_excerpt(make: Factory, state: WebhookReceiverState) -> None:
    state.fail_next(422, 1, body="field 'text' is too long " + "x" * 5000)
    with pytest.raises(ConnectorPermanentError, match="HTTP 422: field 'text' is too long x") as c:
        await make().write_note(TICKET, note_delivery("n-1"))
    assert not c.value.retryable
    assert len(str(c.value)) < 500
    assert state.requests == 1  # not retried


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_credentials(make: Factory, state: WebhookReceiverState, status: int) -> None:
    state.fail_next(status)
    with pytest.raises(ConnectorAuthError, match=f"HTTP {status}") as caught:
        await make().write_note(TICKET, note_delivery("n-1"))
    assert not caught.value.retryable
    assert state.requests == 1


async def test_a_wrong_secret_fails_the_check(make: Factory, state: WebhookReceiverState) -> None:
    state.secret = "another"
    with pytest.raises(ConnectorAuthError, match="check the secret setting") as caught:
        await make().check()
    assert_no_secret(caught.value)


async def test_404_for_a_ticket(make: Factory, state: WebhookReceiverState) -> None:
    state.unknown_tickets.add("INC0010001")
    with pytest.raises(TicketNotFoundError, match="INC0010001"):
        await make().write_note(TICKET, note_delivery("n-1"))


async def test_404_elsewhere_is_permanent(make: Factory, state: WebhookReceiverState) -> None:
    state.fail_next(404, 2)
    with pytest.raises(ConnectorPermanentError) as caught:
        await make().create_ticket(sample_session(), {}, key="t-1")
    assert type(caught.value) is ConnectorPermanentError
    with pytest.raises(ConnectorPermanentError, match="HTTP 404"):
        await make().check()


async def test_timeouts_are_retried_then_retryable(
    make: Factory, state: WebhookReceiverState
) -> None:
    state.slow_next(0.5, 2)
    with pytest.raises(ConnectorRetryableError, match=r"no answer within 0.1 s") as caught:
        await make(timeout=0.1, max_attempts=2).write_note(TICKET, note_delivery("n-1"))
    assert_no_secret(caught.value)


async def test_a_timed_out_request_that_arrived_is_not_doubled(
    make: Factory, state: WebhookReceiverState
) -> None:
    # The first request times out on the client but is still processed by the receiver;
    # the retry carries the same Idempotency-Key, so the receiver holds one delivery.
    state.slow_next(0.3)
    await make(timeout=0.1, max_attempts=3).write_note(TICKET, note_delivery("n-1"))
    await asyncio.sleep(0.4)  # the held-back request is answered 0.3 s after it arrived
    assert state.repeats == {"n-1": 1}
    assert state.effects("n-1") == 1


async def test_an_unreachable_receiver_is_retryable() -> None:
    # Port 9 (discard) on loopback: nothing listens there in the test environment.
    raw = {"url": "http://127.0.0.1:9/hook", "secret": SECRET, **FAST, "max_attempts": 2}
    connector = WebhookConnector(WebhookConnector.validate_settings(raw))
    try:
        with pytest.raises(ConnectorRetryableError, match="could not be reached") as caught:
            await connector.write_note(TICKET, note_delivery("n-1"))
    finally:
        await connector.aclose()
    assert_no_secret(caught.value)


async def test_the_secret_is_never_in_a_message(
    make: Factory, state: WebhookReceiverState, base: str
) -> None:
    # Even with the secret in the URL's query, or a receiver that echoes it in its body.
    connector = make(url=f"{base}/hook?token={SECRET}")
    errors: list[ConnectorError] = []
    for status, body in [(400, f"bad request, you sent Bearer {SECRET}"), (401, None)]:
        state.fail_next(status, 1, body=body)
        with pytest.raises(ConnectorError) as caught:
            await connector.write_note(TICKET, note_delivery(f"n-{status}"))
        errors.append(caught.value)
    state.fail_next(500, 3)
    with pytest.raises(ConnectorError) as caught:
        await connector.write_note(TICKET, note_delivery("n-500"))
    errors.append(caught.value)
    for err in errors:
        assert_no_secret(err)
    assert "you sent Bearer ***" in str(errors[0])
    assert SECRET not in repr(connector)


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"url": "ftp://hooks.example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"check_url": "mailto:ops@example.com"}, "check_url"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": 0}, "timeout"),
        ({"backoff_seconds": -1}, "backoff_seconds"),
        (
            {"url": "https://user:pw@hooks.example.com/x", "secret": "s3cret-value"},
            "Basic auth only",
        ),
    ],
)
def test_bad_settings_are_refused(settings: dict[str, object], named: str) -> None:
    raw = {"url": "https://hooks.example.com/x", **settings}
    with pytest.raises(ConfigurationError, match=named):
        WebhookConnector.validate_settings(raw)


def test_retry_after_values() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    later = (now + timedelta(seconds=90)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_after_seconds("7") == 7
    assert retry_after_seconds("0.25") == 0.25
    assert retry_after_seconds("-3") == 0
    assert retry_after_seconds(later, now=now) == 90
    assert retry_after_seconds("Wed, 01 May 2024 11:00:00 GMT", now=now) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("nan") is None


async def test_a_key_that_is_no_header_value_is_percent_encoded(
    make: Factory, state: WebhookReceiverState
) -> None:
    key = "appliance/lsid/Session End/intégration ü/report\n"
    assert idempotency_header("a1/b2/support_conference_end/hook/report") == (
        "a1/b2/support_conference_end/hook/report"
    )
    connector = make()
    first = await connector.write_note(TICKET, note_delivery(key))
    again = await connector.write_note(TICKET, note_delivery(key))
    assert first.ref == again.ref
    [received] = state.received
    assert received.headers["idempotency-key"] == idempotency_header(key)
    assert received.headers["idempotency-key"].isascii()
    assert received.body["key"] == key
