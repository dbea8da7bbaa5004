"""Outbound-event intake over real HTTP: authentication, durability, parking, refusals."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from rsbridge.engine.intake import MALFORMED_EVENT, Intake, client_address
from rsbridge.engine.store.base import (
    EventFilter,
    EventStatus,
    IncomingEvent,
    JobFilter,
    JobSpec,
    RecordResult,
)
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving

from .conftest import engine_config

TOKEN = "tok-7f3a9c-very-secret"
END_FORM = [
    ("event", "support_conference_end"),
    ("version", "3"),
    ("timestamp", "1763700000"),
    ("appliance_id", "abc123"),
    ("lsid", "5f1e0c5b7a2a4c8e9d0f1a2b3c4d5e6f"),
    ("external_key", "INC0010001"),
]


class Harness:
    def __init__(self, url: str, store: MemoryStore) -> None:
        self.url = url
        self.store = store
        self.http = httpx.AsyncClient(base_url=url)

    async def post(
        self,
        form: Sequence[tuple[str, str]] | bytes,
        *,
        path: str = "/ERSPost?appliance=default",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        body = form if isinstance(form, bytes) else urlencode(list(form)).encode()
        return await self.http.post(
            path,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
        )


@asynccontextmanager
async def _harness(tmp_path: Path, **appliance: Any) -> AsyncIterator[Harness]:
    engine = appliance.pop("engine", None)
    config = engine_config(tmp_path, None, appliance=appliance, engine=engine)
    store = MemoryStore()
    await store.open()
    async with serving(create_app(Intake(config, store), store)) as url:
        harness = Harness(url, store)
        yield harness
        await harness.http.aclose()


@pytest.fixture
async def intake(tmp_path: Path) -> AsyncIterator[Harness]:
    async with _harness(tmp_path, outbound_event_token=TOKEN) as h:
        yield h


async def test_an_event_is_recorded_with_its_job_before_200(intake: Harness) -> None:
    response = await intake.post([*END_FORM, ("outbound_event_token", TOKEN)])
    assert response.status_code == 200, response.text
    [event] = await intake.store.list_events(EventFilter())
    assert event.status is EventStatus.ACCEPTED
    assert event.lsid == "5f1e0c5b7a2a4c8e9d0f1a2b3c4d5e6f"
    assert event.external_key == "INC0010001"
    assert event.timestamp == 1763700000
    # The token authenticates the delivery but is not kept with the event.
    assert "outbound_event_token" not in dict(event.form)
    [job] = await intake.store.list_jobs(JobFilter())
    assert (job.integration, job.event_type, job.event_id) == ("audit", event.event_type, event.id)


async def test_the_token_may_come_in_the_query_string(intake: Harness) -> None:
    response = await intake.post(
        END_FORM, path=f"/ERSPost?appliance=default&outbound_event_token={TOKEN}"
    )
    assert response.status_code == 200


async def test_our_own_path_is_equivalent(intake: Harness) -> None:
    response = await intake.post(END_FORM, path=f"/events/default?outbound_event_token={TOKEN}")
    assert response.status_code == 200
    assert len(await intake.store.list_jobs(JobFilter())) == 1


async def test_a_duplicate_delivery_is_acknowledged_once_recorded(intake: Harness) -> None:
    form = [*END_FORM, ("outbound_event_token", TOKEN)]
    assert (await intake.post(form)).status_code == 200
    again = await intake.post(form)
    assert again.status_code == 200 and again.text == "duplicate"
    [event] = await intake.store.list_events(EventFilter())
    assert event.deliveries == 2
    assert len(await intake.store.list_jobs(JobFilter())) == 1


@pytest.mark.parametrize(
    ("form", "status"),
    [
        (END_FORM, 401),
        ([*END_FORM, ("outbound_event_token", "wrong")], 401),
        ([*END_FORM, ("outbound_event_token", TOKEN[:-1])], 401),
    ],
)
async def test_missing_or_wrong_tokens_are_refused(
    intake: Harness, form: list[tuple[str, str]], status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    response = await intake.post(form)
    assert response.status_code == status
    assert await intake.store.list_events(EventFilter()) == []
    assert "token" in caplog.text
    assert TOKEN not in caplog.text and TOKEN not in response.text


async def test_an_unknown_appliance_id_is_answered_like_a_wrong_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # An outsider must not learn which appliance ids exist: an unknown id, a known one
    # with a wrong or no token, and a known one from a refused address look the same.
    caplog.set_level(logging.WARNING)
    async with (
        _harness(tmp_path, outbound_event_token=TOKEN) as h,
        _harness(tmp_path, outbound_event_token=TOKEN, accepted_addresses=["10.0.0.0/8"]) as fenced,
    ):
        answers = [
            await h.post([*END_FORM, ("outbound_event_token", TOKEN)], path="/ERSPost?appliance=x"),
            await h.post([*END_FORM, ("outbound_event_token", TOKEN)], path="/events/x"),
            await h.post([*END_FORM, ("outbound_event_token", "wrong")]),
            await h.post(END_FORM),
            await fenced.post([*END_FORM, ("outbound_event_token", TOKEN)]),
        ]
        assert await h.store.list_events(EventFilter()) == []
    seen = {(a.status_code, a.text, a.headers.get("content-type")) for a in answers}
    assert len(seen) == 1, seen
    assert answers[0].status_code == 401
    # The log says which it was, for the administrator of a misconfigured appliance.
    assert "unknown appliance id 'x'" in caplog.text
    assert "not accepted for appliance default" in caplog.text
    assert "wrong outbound event token" in caplog.text
    assert "missing outbound event token" in caplog.text


@pytest.mark.parametrize(
    "path",
    ["/ERSPost?appliance=nobody", f"/ERSPost?appliance=default&outbound_event_token=wrong-{TOKEN}"],
)
async def test_a_sender_refused_by_its_url_is_answered_before_its_body(
    tmp_path: Path, path: str
) -> None:
    # An unknown appliance id or a wrong token in the query is refused at once: the
    # connection is not held while the sender trickles (or never sends) its body.
    async with _harness(tmp_path, outbound_event_token=TOKEN) as h:
        url = httpx.URL(h.url)
        reader, writer = await asyncio.open_connection(url.host, url.port)
        try:
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n\r\nevent=".encode()
            )
            await writer.drain()
            async with asyncio.timeout(5):  # the body timeout is 30 s
                status = await reader.readline()
        finally:
            writer.close()
    assert status.startswith(b"HTTP/1.1 401"), status


async def test_without_an_appliance_parameter_the_id_is_default(intake: Harness) -> None:
    response = await intake.post([*END_FORM, ("outbound_event_token", TOKEN)], path="/ERSPost")
    assert response.status_code == 200


async def test_addresses_outside_the_accepted_networks_are_refused(tmp_path: Path) -> None:
    async with _harness(tmp_path, accepted_addresses=["10.0.0.0/8"]) as h:
        response = await h.post(END_FORM)
        assert response.status_code == 401
        # A forwarded-for header from an untrusted peer changes nothing.
        spoofed = await h.post(END_FORM, headers={"X-Forwarded-For": "10.1.2.3"})
        assert spoofed.status_code == 401


async def test_forwarded_addresses_are_believed_from_trusted_proxies_only(tmp_path: Path) -> None:
    async with _harness(
        tmp_path,
        accepted_addresses=["203.0.113.0/24"],
        engine={"trusted_proxies": ["127.0.0.1"]},
    ) as h:
        ok = await h.post(END_FORM, headers={"X-Forwarded-For": "203.0.113.9"})
        assert ok.status_code == 200
        refused = await h.post(END_FORM, headers={"X-Forwarded-For": "198.51.100.1"})
        assert refused.status_code == 401


def test_the_forwarded_chain_is_walked_from_our_side() -> None:
    import ipaddress

    trusted = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("192.0.2.0/24")]
    # client spoofs 10.0.0.1 in front of its real address 198.51.100.7
    got = client_address("127.0.0.1", "10.0.0.1, 198.51.100.7, 192.0.2.10", trusted)
    assert str(got) == "198.51.100.7"
    assert client_address("127.0.0.1", "not-an-ip", trusted) is None
    assert str(client_address("::ffff:127.0.0.1", None, [])) == "127.0.0.1"


async def test_an_oversized_body_is_refused_with_413(tmp_path: Path) -> None:
    async with _harness(tmp_path, engine={"max_event_bytes": 1024}) as h:
        response = await h.post([*END_FORM, ("padding", "x" * 2000)])
        assert response.status_code == 413
        assert await h.store.list_events(EventFilter()) == []


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe not utf-8",
        b"event=support_conference_end&event=support_conference_end&lsid=a",
        b"version=3&lsid=abc",
        b"event=support_conference_end&version=3",  # no lsid
        b"%%%=&&",
    ],
)
async def test_malformed_forms_are_parked_not_refused(tmp_path: Path, body: bytes) -> None:
    # Refusing would block the appliance's queue behind an event that can never pass.
    async with _harness(tmp_path) as h:
        response = await h.post(body)
        assert response.status_code == 200
        assert response.text.startswith("recorded as malformed")
        [event] = await h.store.list_events(EventFilter())
        assert event.event_type == MALFORMED_EVENT
        assert event.status is EventStatus.IGNORED
        assert dict(event.form)["body"] == body.decode("utf-8", errors="replace")
        assert await h.store.list_jobs(JobFilter()) == []


_SECRET = TOKEN.encode()


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        # Authenticated by the token in the form, parked for the missing lsid.
        (b"event=support_conference_end&outbound_event_token=" + _SECRET + b"&v=3", ["v=3"]),
        # Authenticated by the query token; the body repeats it in every spelling that
        # decodes to the variable, or differs from it only in case.
        (b"event=x&event=x&outbound%5Fevent%5Ftoken=" + _SECRET + b"&a=1", ["event=x", "a=1"]),
        (b"event=x&event=x&OUTBOUND_EVENT_TOKEN=" + _SECRET + b"&a=1", ["a=1"]),
        (b"%%%&outbound_event_token%3D" + _SECRET + b"&b=2", ["b=2"]),
        (b"outbound_event_token%3D" + _SECRET + b"&b=2", ["b=2"]),  # named by the parser
        (b"\xff&outbound_event_token=" + _SECRET, []),
    ],
    ids=["form", "percent-encoded", "upper-case", "encoded-equals", "first-bad-part", "not-utf-8"],
)
async def test_the_token_is_stripped_from_a_parked_body(
    intake: Harness, body: bytes, kept: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await intake.post(body, path=f"/ERSPost?outbound_event_token={TOKEN}")
    assert TOKEN not in response.text and TOKEN not in caplog.text
    assert response.status_code == 200 and response.text.startswith("recorded as malformed")
    [event] = await intake.store.list_events(EventFilter())
    assert event.event_type == MALFORMED_EVENT
    assert TOKEN not in repr(event.form)  # neither in the body nor in the problem
    stored = dict(event.form)["body"]
    assert "token" not in stored.lower()
    for part in kept:  # everything else is kept as received
        assert part in stored


async def test_a_token_variable_in_another_case_is_not_kept_with_an_event(
    intake: Harness,
) -> None:
    form = [*END_FORM, ("Outbound_Event_Token", TOKEN)]
    response = await intake.post(form, path=f"/ERSPost?outbound_event_token={TOKEN}")
    assert (response.status_code, response.text) == (200, "OK")
    [event] = await intake.store.list_events(EventFilter())
    assert TOKEN not in repr(event.form)


@pytest.mark.parametrize(
    "event", ["support_conference_begin", "support_conference_member_added", "made_up_event"]
)
async def test_events_nobody_processes_are_acknowledged_as_ignored(
    tmp_path: Path, event: str
) -> None:
    async with _harness(tmp_path) as h:
        form = [("event", event), *END_FORM[1:]]
        response = await h.post(form)
        assert (response.status_code, response.text) == (200, "ignored")
        [stored] = await h.store.list_events(EventFilter())
        assert stored.status is EventStatus.IGNORED and stored.event_type == event
        assert await h.store.list_jobs(JobFilter()) == []


class _BrokenStore(MemoryStore):
    async def record_event(
        self, event: IncomingEvent, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> RecordResult:
        raise OSError("disk full")


async def test_a_store_failure_answers_503_so_the_appliance_retries(tmp_path: Path) -> None:
    config = engine_config(tmp_path, None)
    store = _BrokenStore()
    await store.open()
    async with (
        serving(create_app(Intake(config, store), store)) as url,
        httpx.AsyncClient() as http,
    ):
        response = await http.post(
            f"{url}/ERSPost",
            content=urlencode(END_FORM),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 503


STATUS_TOKEN = "status-reader-token-0b7d2e"


async def test_health_is_public_and_says_only_whether_the_engine_lives(intake: Harness) -> None:
    await intake.post([*END_FORM, ("outbound_event_token", TOKEN)])
    response = await intake.http.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert response.headers["cache-control"] == "no-store"


@asynccontextmanager
async def _status_harness(tmp_path: Path, store: MemoryStore) -> AsyncIterator[httpx.AsyncClient]:
    # Actions disabled: the status route needs the tokens only.
    config = engine_config(tmp_path, None, actions={"tokens": [STATUS_TOKEN]})
    app = create_app(Intake(config, store), store, background=lambda: {"worker": True})
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        yield http


async def test_status_gives_the_counts_to_a_bearer_of_an_actions_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    store = MemoryStore()
    await store.open()
    async with _status_harness(tmp_path, store) as http:
        assert (await http.post("/ERSPost", content=urlencode(END_FORM))).status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong-token-of-16-chars"}):
            refused = await http.get("/status", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert "jobs" not in refused.text
        answer = await http.get("/status", headers={"Authorization": f"Bearer {STATUS_TOKEN}"})
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["jobs"]["queued"], body["tasks"]) == ("ok", 1, {"worker": True})
    assert answer.headers["cache-control"] == "no-store"
    assert "status: refused" in caplog.text and STATUS_TOKEN not in caplog.text


class _DownStore(MemoryStore):
    async def get_watermark(self, name: str) -> float | None:
        raise OSError("disk gone")

    async def counts(self) -> dict[str, int]:
        raise OSError("disk gone")


async def test_ready_answers_503_without_details_when_the_store_fails(tmp_path: Path) -> None:
    store = _DownStore()
    await store.open()
    async with _status_harness(tmp_path, store) as http:
        health = await http.get("/health")
        ready = await http.get("/ready")
        status = await http.get("/status", headers={"Authorization": f"Bearer {STATUS_TOKEN}"})
    # Alive (a restart would not bring the store back), but not ready for traffic.
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (503, {"status": "unavailable"})
    assert (status.status_code, status.json()["error"]) == (503, "OSError")


async def test_health_answers_503_when_a_background_task_has_stopped(tmp_path: Path) -> None:
    config = engine_config(tmp_path, None, actions={"tokens": [STATUS_TOKEN]})
    store = MemoryStore()
    await store.open()
    tasks = {"worker": True, "poller-audit": False}
    app = create_app(Intake(config, store), store, background=lambda: tasks)
    async with serving(app) as url, httpx.AsyncClient(base_url=url) as http:
        health = await http.get("/health")
        status = await http.get("/status", headers={"Authorization": f"Bearer {STATUS_TOKEN}"})
    assert (health.status_code, health.json()) == (503, {"status": "unavailable"})
    assert status.status_code == 503
    assert status.json()["tasks"] == tasks
