"""Fixtures for engine tests: a simulated appliance on loopback and engine configs."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rsbridge.appliance.events import END, IMPORTABLE_EVENTS
from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config, parse_config
from rsbridge.engine.intake import job_specs
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import IncomingEvent, Job, JobFilter, Store
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import create_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.serve import serve_in_thread
from rsbridge.sim.webhook import WebhookReceiverState
from rsbridge.sim.webhook import create_app as create_webhook_app
from rsbridge.web.app import create_app as create_intake_app
from rsbridge.web.serve import serving
from tests.conftest import SIGNING_SECRET, sign_session


@dataclass
class SimAppliance:
    """A running simulated appliance and the credentials of its full-access account."""

    state: SimApplianceState
    host: str
    client_id: str
    client_secret: str


@dataclass
class Hook:
    """A simulated webhook receiver and the URL deliveries go to."""

    state: WebhookReceiverState
    url: str


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = WebhookReceiverState()
    with serve_in_thread(create_webhook_app(state)) as url:
        yield Hook(state, f"{url}/hook")


@contextmanager
def serve_sim(seed: int = 3) -> Iterator[SimAppliance]:
    """A simulated appliance served on loopback (rate limits out of the way)."""
    state = SimApplianceState.default(seed=seed)
    account = state.accounts[0]
    with serve_in_thread(create_app(state, rate_per_second=1000, rate_per_hour=10**6)) as url:
        yield SimAppliance(
            state, url.removeprefix("http://"), account.client_id, account.client_secret
        )


@pytest.fixture
def sim() -> Iterator[SimAppliance]:
    with serve_sim() as running:
        yield running


def engine_config(
    tmp_path: Path,
    sim: SimAppliance | None,
    *,
    integrations: list[dict[str, Any]] | None = None,
    engine: dict[str, Any] | None = None,
    appliance: dict[str, Any] | None = None,
    actions: dict[str, Any] | None = None,
) -> Config:
    """A configuration with one appliance (the simulator) and a jsonl integration
    (and an ``[actions]`` section when given)."""
    data: dict[str, Any] = {
        "engine": {
            "store": str(tmp_path / "engine.db"),
            "backoff_base_seconds": 0.05,
            "backoff_max_seconds": 0.2,
            **(engine or {}),
        },
        "appliances": [
            {
                "id": "default",
                "host": sim.host if sim else "127.0.0.1:9",
                "client_id": sim.client_id if sim else "id",
                "client_secret": sim.client_secret if sim else "secret",
                "use_plain_http": True,
                **(appliance or {}),
            }
        ],
        "integrations": integrations
        if integrations is not None
        else [
            {
                "name": "audit",
                "connector": "jsonl",
                "association": {"on_unmatched": "create"},
                "settings": {"path": str(tmp_path / "deliveries.jsonl"), "fsync": False},
            }
        ],
        "signing": {"secret": SIGNING_SECRET},
    }
    if actions is not None:
        data["actions"] = actions
    return parse_config(data)


def webhook_config(
    tmp_path: Path,
    sim: SimAppliance | None,
    url: str,
    *,
    engine: dict[str, Any] | None = None,
    **integration: Any,
) -> Config:
    """A configuration with one webhook integration, ``hook``, posting to ``url``: it
    creates a ticket for a session without one unless ``association`` says otherwise; the
    other ``integration`` entries (``settings`` added to the url) override its own."""
    settings = {"url": url, **integration.pop("settings", {})}
    return engine_config(
        tmp_path,
        sim,
        integrations=[
            {
                "name": "hook",
                "connector": "webhook",
                "association": {"on_unmatched": "create"},
                "settings": settings,
                **integration,
            }
        ],
        engine=engine,
    )


async def record_ends(
    store: Store, config: Config, sim: SimAppliance, sessions: Sequence[SupportSession]
) -> None:
    """Put ``sessions``' reports in the appliance and record their session-end events (as
    the appliance's outbound events would be), with the jobs ``config`` gives them."""
    for session in sessions:
        sim.state.add_report(session)
        await store.record_event(
            IncomingEvent("default", END, "outbound", f"end/{session.lsid}", lsid=session.lsid),
            job_specs(config, "default", END, polled=False),
        )


async def drained(engine: Engine, *, limit: float = 30.0) -> dict[str, int]:
    """Wait until no job is queued or running; fails the test if that takes too long."""
    counts = await engine.wait_idle(limit)
    if counts.get("queued", 0) + counts.get("running", 0):
        raise AssertionError(f"jobs did not drain: {counts}")
    return counts


async def emit(
    url: str, sessions: list[SupportSession], *, twice: bool = False, query: str = ""
) -> Recipient:
    """Send the appliance's outbound events of ``sessions`` to the intake at ``url``
    (each twice with ``twice``; ``query`` added to the recipient URL), as the appliance
    does; none may be dropped."""
    extra = f"&{query}" if query else ""
    recipient = Recipient(f"{url}/ERSPost?appliance=default{extra}", retry_interval=0.05)
    async with OutboundEventEmitter([recipient]) as emitter:
        for session in sessions:
            for event in events_for_session(session, "abc"):
                emitter.enqueue(event)
                if twice:
                    emitter.enqueue(event)
        await emitter.run_until_idle()
    assert recipient.dropped == 0
    return recipient


def ended_sessions(
    tickets: Sequence[str],
    count: int,
    seed: int,
    integration: str,
    *,
    surveys: bool = True,
    signed: bool = True,
) -> list[SupportSession]:
    """Sessions that ended a minute ago, keyed to ``tickets`` in turn (the external key),
    signed for ``integration`` as the keys rsbridge generates are (unsigned: as a
    customer's own start URL would set them)."""
    generator = SessionGenerator(seed)
    made = []
    for i in range(count):
        session = generator.session_from_key(tickets[i % len(tickets)], {})
        assert session.start_time is not None and session.end_time is not None
        shift = datetime.now(UTC) - timedelta(seconds=60) - session.end_time
        moved = dataclasses.replace(
            session, start_time=session.start_time + shift, end_time=session.end_time + shift
        )
        if not surveys:
            moved = dataclasses.replace(moved, customer_surveys=[], rep_surveys=[])
        made.append(sign_session(moved, integration) if signed else moved)
    return made


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[tuple[Engine, str]]:
    """The engine with its workers started and its intake served: ``(engine, url)``."""
    async with (
        Engine(config) as engine,
        serving(create_intake_app(engine.intake, engine.store)) as url,
    ):
        engine.start()
        yield engine, url


async def all_jobs(engine: Engine) -> list[Job]:
    """Every job the engine holds (up to 200)."""
    return await engine.store.list_jobs(JobFilter(limit=200))


async def tried_jobs(engine: Engine, *, limit: float = 10.0) -> list[Job]:
    """The jobs the workers have tried at least once, as soon as there are any (or none
    after ``limit`` seconds)."""
    deadline = time.monotonic() + limit
    tried: list[Job] = []
    while not tried and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        tried = [j for j in await all_jobs(engine) if j.attempts > 0]
    return tried


def serve_config(
    path: Path,
    sim: SimAppliance,
    *,
    store: str,
    secret_env: str,
    integration: str,
    lease_seconds: float = 2,
    extra: str = "",
    engine_extra: str = "",
) -> Path:
    """Write the TOML of a ``rsbridge serve`` process to ``path``: fast backoffs, the
    simulator as appliance ``default`` (its secret from ``secret_env``), one integration
    ``audit`` (``integration``: its ``connector = ...`` and ``settings = ...`` lines);
    ``engine_extra``: more lines of the ``[engine]`` table."""
    path.write_text(
        f"""
[engine]
store = "{store}"
lease_seconds = {lease_seconds}
backoff_base_seconds = 0.1
backoff_max_seconds = 0.5
shutdown_grace_seconds = 1
{engine_extra}

[[appliances]]
id = "default"
host = "{sim.host}"
client_id = "{sim.client_id}"
client_secret = {{ env = "{secret_env}" }}
use_plain_http = true

[[integrations]]
name = "audit"
association = {{ on_unmatched = "create" }}
{integration}
{extra}""",
        encoding="utf-8",
    )
    return path


def sessions_in_the_sim(sim: SimAppliance, seed: int, count: int) -> list[SupportSession]:
    """``count`` sessions of ``SessionGenerator(seed)``, moved to end a second apart within
    the last hour, stored in the simulated appliance (a backlog the nodes pull or get
    events for)."""
    now = datetime.now(UTC)
    sessions = []
    for index, session in enumerate(SessionGenerator(seed).sessions(count)):
        assert session.start_time and session.end_time
        shift = now - timedelta(seconds=3600 - index) - session.end_time
        moved = dataclasses.replace(
            session, start_time=session.start_time + shift, end_time=session.end_time + shift
        )
        sim.state.add_report(moved)
        sessions.append(moved)
    return sessions


@dataclass
class Spread:
    """Outbound events spread over several nodes' intakes (see :func:`spread_events`)."""

    recipients: list[Recipient]
    emitters: list[OutboundEventEmitter]
    expected: Counter[str]
    """Deliveries each session must get: its end and each of its surveys."""


def spread_events(
    ports: Sequence[int],
    sessions: Sequence[SupportSession],
    appliance_id: str,
    rng: random.Random,
    *,
    retry_duration: float,
) -> Spread:
    """One emitter per node (at ``ports``), each session's events sent to nodes at random
    (a session's events may go to several), as behind a load balancer; not yet run."""
    recipients = [
        Recipient(
            f"http://127.0.0.1:{port}/ERSPost?appliance=default",
            retry_interval=0.05,
            retry_duration=retry_duration,
            timeout=5,
            events=set(IMPORTABLE_EVENTS),
        )
        for port in ports
    ]
    emitters = [OutboundEventEmitter([recipient]) for recipient in recipients]
    expected: Counter[str] = Counter()
    for session in sessions:
        for event in events_for_session(session, appliance_id):
            rng.choice(emitters).enqueue(event)
        expected[session.lsid] = 1 + len(session.customer_surveys) + len(session.rep_surveys)
    return Spread(recipients, emitters, expected)
