"""GET /metrics: what the engine counts, on real traffic, and who may read it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.ratelimit import RateLimits, SlidingWindowLimiter
from rsbridge.engine.intake import Intake
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import AttemptOutcome, Finish, IncomingEvent, JobSpec, JobStats
from rsbridge.engine.store.memory import MemoryStore
from rsbridge.engine.store.metered import MeteredStore
from rsbridge.metrics import Metrics, binding
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.web.app import create_app
from rsbridge.web.serve import serving

from .conftest import SimAppliance, drained, emit, ended_sessions, engine_config

TOKEN = "metrics-reader-token-4c1e9a"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and label set."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def label_values(samples: Samples) -> set[str]:
    return {v for _, ls in samples for _, v in ls}


async def _scrape(url: str, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(f"{url}/metrics", headers=headers)


async def test_traffic_is_counted_with_bounded_labels(tmp_path: Path, sim: SimAppliance) -> None:
    config = engine_config(tmp_path, sim)
    sessions = ended_sessions(["INC0010001"], 4, seed=21, integration="audit", surveys=False)
    for session in sessions:
        sim.state.add_report(session)
    engine = Engine(config)
    async with serving(engine.asgi_app()) as url:
        await emit(url, sessions, twice=True)
        async with httpx.AsyncClient(base_url=url) as http:
            big = await http.post("/ERSPost?appliance=default", content=b"x" * 70_000)
            assert big.status_code == 413
            # Refused: an unknown appliance id that looks like a session.
            refused = await http.post("/events/L-evil-lsid-77", content=b"x=1")
            assert refused.status_code == 401
            assert (await http.post("/ERSPost?appliance=nope", content=b"x=1")).status_code == 401
        await drained(engine)
        response = await _scrape(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse(response.text)
    queued = value(samples, "rsbridge_events_received_total", source="outbound", result="queued")
    assert queued >= len(sessions)
    dupes = value(samples, "rsbridge_events_received_total", source="outbound", result="duplicate")
    ignored = value(samples, "rsbridge_events_received_total", source="outbound", result="ignored")
    # Every event was sent twice: each second delivery is a duplicate.
    assert dupes == queued + ignored
    assert value(samples, "rsbridge_events_refused_total", reason="unauthorized") == 2
    assert value(samples, "rsbridge_events_refused_total", reason="too_large") == 1
    assert value(
        samples, "rsbridge_deliveries_total", integration="audit", effect="session_report"
    ) == len(sessions)
    assert value(samples, "rsbridge_jobs", integration="audit", state="done") == queued
    for state in ("queued", "waiting", "running", "dead"):
        assert value(samples, "rsbridge_jobs", integration="audit", state=state) == 0
    assert value(samples, "rsbridge_oldest_job_age_seconds", integration="audit") == 0
    assert value(samples, "rsbridge_job_attempts_total", integration="audit", outcome="done") > 0
    calls = value(
        samples,
        "rsbridge_peer_call_seconds_count",
        peer="appliance",
        target="default",
        status="2xx",
    )
    assert calls >= 1
    assert (
        value(samples, "rsbridge_store_write_seconds_count", operation="record_event") >= dupes * 2
    )
    assert value(samples, "rsbridge_store_up") == 1
    # Nothing a sender chose is a label: no lsid, ticket, unknown id or path.
    shown = label_values(samples)
    for session in sessions:
        assert session.lsid not in shown
    for forbidden in ("INC0010001", "nope", "L-evil-lsid-77", "/ERSPost"):
        assert not any(forbidden in v for v in shown), forbidden
    assert not any("/" in v for v in shown)


async def test_failures_count_by_error_class_and_unanswered_calls(tmp_path: Path) -> None:
    # No appliance listens on port 9: every report fetch fails to connect.
    config = engine_config(
        tmp_path,
        None,
        integrations=[
            {
                "name": "audit",
                "connector": "jsonl",
                "retry_limit": 1,
                "settings": {"path": str(tmp_path / "d.jsonl"), "fsync": False},
            }
        ],
    )
    session = next(iter(SessionGenerator(3).sessions(1)))
    async with Engine(config) as engine, serving(engine.asgi_app()) as url:
        await emit(url, [session])
        samples: Samples = {}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            samples = parse((await _scrape(url)).text)
            if value(samples, "rsbridge_dead_letters_total"):
                break
            await asyncio.sleep(0.1)
    labels = {"integration": "audit", "error_class": "ApplianceConnectionError"}
    assert value(samples, "rsbridge_dead_letters_total", **labels) >= 1
    assert value(samples, "rsbridge_job_attempts_total", outcome="retry", **labels) >= 1
    assert value(samples, "rsbridge_jobs", integration="audit", state="dead") >= 1
    unanswered = value(
        samples, "rsbridge_peer_call_seconds_count", peer="appliance", status="error"
    )
    assert unanswered >= 1


async def test_metrics_need_a_token_unless_asked_straight_from_loopback(tmp_path: Path) -> None:
    config = engine_config(tmp_path, None, actions={"tokens": [TOKEN]})
    store = MemoryStore()
    await store.open()
    app = create_app(Intake(config, store), store, metrics=Metrics())
    async with serving(app) as url:
        assert (await _scrape(url)).status_code == 200
        # Through a local reverse proxy: the request may come from anywhere.
        forwarded = await _scrape(url, **{"X-Forwarded-For": "203.0.113.9"})
        assert forwarded.status_code == 401
        assert "rsbridge_" not in forwarded.text
        wrong = await _scrape(url, **{"X-Forwarded-For": "x", "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        bearer = await _scrape(url, **{"X-Forwarded-For": "x", "Authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200 and "rsbridge_store_up 1.0" in bearer.text
    # From the trusted proxy's own address: a token is needed even without a header.
    behind = engine_config(
        tmp_path, None, actions={"tokens": [TOKEN]}, engine={"trusted_proxies": ["127.0.0.1/32"]}
    )
    proxied = create_app(Intake(behind, store), store, metrics=Metrics())
    async with serving(proxied) as url:
        assert (await _scrape(url)).status_code == 401
    # An app without metrics has no such route.
    async with serving(create_app(Intake(config, store), store)) as url:
        assert (await _scrape(url)).status_code == 404


async def test_a_monitoring_client_token_opens_metrics_and_nothing_else(tmp_path: Path) -> None:
    scraper = "prometheus-scrape-token-0123"
    actions = {
        "enabled": True,
        "tokens": [TOKEN],
        "clients": [
            {
                "name": "prometheus",
                "token": scraper,
                "integrations": ["audit"],
                "routes": ["metrics"],
            }
        ],
    }
    config = engine_config(tmp_path, None, actions=actions)
    store = MemoryStore()
    await store.open()
    app = create_app(Intake(config, store), store, metrics=Metrics())
    far = {"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {scraper}"}
    async with serving(app) as url, httpx.AsyncClient(timeout=10) as http:
        assert (await _scrape(url, **far)).status_code == 200
        # The status route and the actions are not this token's.
        assert (await http.get(f"{url}/status", headers=far)).status_code == 401


async def test_engines_in_one_process_count_apart() -> None:
    first, second = Metrics(), Metrics()
    store = MeteredStore(MemoryStore(), first)
    incoming = IncomingEvent("a1", "support_conference_end", "outbound", "k", lsid="L1")
    await store.record_event(incoming, [JobSpec("sn")], now=0)
    (job,) = await store.claim("w", limit=1, lease=30, now=0)
    dead = Finish(AttemptOutcome.DEAD, error="400", error_class="ConnectorPermanentError")
    assert await store.finish(job.id, "w", dead, started_at=0, now=1)
    one = parse((await first.exposition(store)).decode())
    two = parse((await second.exposition(MemoryStore())).decode())
    labels = {"integration": "sn", "error_class": "ConnectorPermanentError"}
    assert value(one, "rsbridge_dead_letters_total", **labels) == 1
    assert value(one, "rsbridge_jobs", integration="sn", state="dead") == 1
    assert value(two, "rsbridge_dead_letters_total") == 0
    assert value(two, "rsbridge_jobs") == 0


async def test_a_store_that_fails_at_scrape_time_shows_as_down() -> None:
    class Down(MemoryStore):
        async def job_stats(self, *, now: float | None = None) -> list[JobStats]:
            raise OSError("disk gone")

    samples = parse((await Metrics().exposition(Down())).decode())
    assert value(samples, "rsbridge_store_up") == 0


async def test_appliance_rate_limit_waits_are_counted(sim: SimAppliance) -> None:
    metrics = Metrics()
    with binding(metrics, "default"):
        client = ApplianceClient(
            sim.host,
            sim.client_id,
            sim.client_secret,
            scheme="http",
            rate_limits=RateLimits(per_second=1, per_hour=100),
        )
    async with client:
        for _ in range(3):
            await client.get_api_info()
    samples = parse((await metrics.exposition(MemoryStore())).decode())
    assert value(samples, "rsbridge_rate_limit_waits_total", appliance="default") >= 1
    assert value(samples, "rsbridge_rate_limit_wait_seconds_total", appliance="default") > 0
    assert value(samples, "rsbridge_peer_call_seconds_count", peer="appliance") >= 3


def test_clients_built_outside_a_binding_are_not_instrumented() -> None:
    client = ApplianceClient("appliance.example.com", "id", "secret")
    assert isinstance(client.limiter, SlidingWindowLimiter)
    assert client.limiter.on_wait is None
    assert not client._http.event_hooks["response"]


@pytest.mark.parametrize("path", ["/health", "/ready"])
async def test_health_and_ready_while_the_engine_serves(
    tmp_path: Path, sim: SimAppliance, path: str
) -> None:
    engine = Engine(engine_config(tmp_path, sim))
    async with serving(engine.asgi_app()) as url, httpx.AsyncClient() as http:
        answer = await http.get(f"{url}{path}")
    assert answer.status_code == 200
    assert answer.json()["status"] in ("ok", "ready")


async def test_ready_is_503_before_the_lifespan_started_and_after_it_ended(
    tmp_path: Path,
) -> None:
    config = engine_config(tmp_path, None)
    store = MemoryStore()
    await store.open()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    app = create_app(Intake(config, store), store, lifespan=lifespan)
    # ASGITransport runs no lifespan: the app is asked as if its server had not started.
    direct = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    async with direct:
        assert (await direct.get("/ready")).status_code == 503
        async with serving(app) as url, httpx.AsyncClient() as http:
            assert (await http.get(f"{url}/ready")).status_code == 200
        # Shut down: out of rotation again.
        assert (await direct.get("/ready")).status_code == 503


@pytest.mark.parametrize(
    ("peer", "local"),
    [("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True), ("::ffff:10.0.0.5", False)],
)
def test_a_dual_stack_listener_sees_loopback_as_loopback(
    tmp_path: Path, peer: str, local: bool
) -> None:
    from starlette.requests import Request

    from rsbridge.web.app import local_caller

    config = engine_config(tmp_path, None)
    request = Request({"type": "http", "headers": [], "client": (peer, 5000)})
    assert local_caller(config, request) is local
