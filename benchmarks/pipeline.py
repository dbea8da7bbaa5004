"""End to end: session end to ticket updated, steady and in a backlog, vs a naive script.

    python3 dev.py bench pipeline [--rate 10] [--duration 15] [--backlog 10000]
                                  [--baseline-sample 400] [--workers 8] [--quick]
                                  [--calls-only] [--backlog-only] [--pairs N]
                                  [--compare-workers 8,16] [--profile N]
                                  [--render-processes 1]

The peers run in a child process of their own (so that they do not share a core with
the system under test): the simulated appliance (``rsbridge.sim.appliance``) behind a
middleware that holds every request ``--peer-latency`` seconds (20 ms) and with the
documented rate limits (20 requests/s, 15,000/h per API account), the simulated
webhook receiver (``rsbridge.sim.webhook``) with the same ``delay``, and the
appliance's outbound-event sender (``OutboundEventEmitter``). A fresh child serves each
of the measurements below, so each starts with empty rate-limit windows.

What is measured, in this process:

* **rsbridge**: an :class:`~rsbridge.engine.runtime.Engine` on the SQLite store
  (synchronous=FULL, as shipped) with one ``webhook`` integration that imports session
  ends (``outbound_events = [support_conference_end]``), its intake served on loopback,
  ``--workers`` workers, rendering reports in ``--render-processes`` child processes
  (``[engine] render_processes``, 1 by default; 0: in the event loop's thread), whose CPU
  per session is printed beside this process's.
* **baseline**: what a simple integration script does. Its intake answers 200 at once
  and, per session-end event, fetches that one session (``SupportSession`` by ``lsid``),
  parses it, renders it with the same :class:`~rsbridge.engine.render.Renderer` and
  POSTs it to the same receiver, with nothing stored. It uses rsbridge's own appliance
  client (token cache, client-side rate limiting) and webhook connector, so that the
  difference measured is the pipeline (durable queue, batched fetches), not the HTTP
  code. It runs up to ``--workers`` imports at once, the concurrency of the engine's
  workers: the same resources on both sides.

1. **Steady state**: sessions end at ``--rate`` per second for ``--duration`` seconds.
   At each end moment the child stores the session's report in the simulated appliance
   and queues its end event for the pipeline's intake. Latency is the receiver's
   ``received_at`` of the session report minus the moment the end event was queued
   (the first, cold session included). Only end events are sent and imported: exit
   surveys would add deliveries to rsbridge that the naive script has no equivalent
   for.
2. **Backlog**: ``--backlog`` ended sessions are in the appliance and their end events
   are recorded in the store before the workers start, directly with
   ``store.record_event`` and the intake's ``job_specs`` (what the intake route does
   after parsing, without HTTP: faster to set up, and not what is measured). Then the
   workers start; figures: time to drain (to the last report received), sessions per
   second, appliance calls per imported session and peak RSS growth of this process.
   The baseline imports the first ``--baseline-sample`` sessions of an identical
   backlog (the appliance's rate limit makes the whole one take minutes); its time for
   the whole backlog is projected from its measured rate.

3. **Appliance call economy** (rsbridge only; ``--calls-only`` runs this and the
   rsbridge backlog): sessions end as in the steady state, each with its end event and
   its customer and rep exit-survey events, into an integration that imports all three;
   the figure is the appliance's count of SupportSession requests per session. Then
   every recorded event is replayed (all their effects are done) and the appliance
   calls of the replay are counted; then a manual pull reaching 400 days back (one
   more session ended 399 days ago) counts its SupportSessionListing calls.
4. **Before**: the rsbridge backlog again, with :mod:`rsbridge.fastpaths` turned off (the
   plain template sandbox, the general JSON converter), against a fresh peers process:
   the backlog rate of the fast paths over the old ones, measured in the same run
   (issue 15's target: at least 2.5x). Both are measured at each worker count of
   ``--compare-workers`` (8 and 16), and the target compares each path's best median: at 8
   workers the receiver's 20 ms bounds the new path (each job holds its worker for the
   answer), at 16 httpcore's pool slows the old one. ``--backlog-only`` measures just these;
   ``--profile N`` runs them under cProfile (CPU time of the event loop's thread, which
   slows them: their figures are then not comparable with a run without it) and prints
   the top N functions by own time. ``--pairs N`` measures the two backlogs N times,
   alternately (rsbridge, before, rsbridge, ...), and reports the run with the median
   rate of each: the machine's load drifts over a run, and one pair's ratio moves with it.

Appliance calls are counted by the client (``requests_sent`` plus tokens issued), so
token requests count too; the appliance's own count of the requests it received is
printed as a cross-check. Printed as ratios rsbridge / baseline, measured in the same
invocation. Targets (shared/DESIGN.md, issue 15): session end to ticket updated under
1 s median when the peers answer in 20 ms; under 0.02 appliance calls per imported
session during a backlog; at most one report fetch per session in the steady state,
its surveys included; no appliance call for a replay whose effects are done.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import dataclasses
import logging
import os
import pstats
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from harness import (
    ChildPeer,
    Comparison,
    announce,
    cpu_seconds,
    peak_rss_mb,
    percentile,
    verdict,
)
from rsbridge import eventloop, fastpaths
from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.events import END, SURVEY_EVENTS
from rsbridge.appliance.report_model import SupportSession
from rsbridge.config import Config, parse_config
from rsbridge.connectors.base import SessionDelivery, Ticket
from rsbridge.connectors.webhook import WebhookConnector
from rsbridge.engine.appliances import make_appliance_client
from rsbridge.engine.intake import job_specs
from rsbridge.engine.poller import Poller
from rsbridge.engine.render import Renderer
from rsbridge.engine.render_pool import RenderPool
from rsbridge.engine.runtime import Engine
from rsbridge.engine.store.base import EventFilter, IncomingEvent
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import create_app as appliance_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.webhook import WebhookReceiverState
from rsbridge.sim.webhook import create_app as webhook_app
from rsbridge.web.app import create_app as intake_app
from rsbridge.web.serve import serving

log = logging.getLogger("benchmarks.pipeline")

INTEGRATION = "bench"
NAIVE = "naive"
APPLIANCE_ID = "default"
INTAKE_PATH = f"/ERSPost?appliance={APPLIANCE_ID}"
RECORD_CHUNK = 500  # events recorded at once: enough for the store's group commit
SPEEDUP_TARGET = 2.5  # issue 15: the backlog rate against the old path's, same run
RATE_TARGET = 250.0  # shared/DESIGN.md: a backlog drained at 250+ sessions/s on one node


# --- the peers process ------------------------------------------------------------------


def _with_latency(app: ASGIApp, seconds: float, statuses: Counter[str]) -> ASGIApp:
    """``app`` answering every HTTP request ``seconds`` late; counts answers by path/status."""

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        await asyncio.sleep(seconds)
        path = str(scope["path"])

        async def counting(message: Message) -> None:
            if message["type"] == "http.response.start":
                statuses[f"{path} {message['status']}"] += 1
            await send(message)

        await app(scope, receive, counting)

    return slow


def _slim_bodies(app: ASGIApp) -> ASGIApp:
    """``app`` receiving JSON bodies cut down to what the benchmark reads.

    The receiver stores every body; 10,000 session reports of ~55 KB each would fill
    the peers process and slow it with garbage collection, which is not what is being
    measured. The whole body is still read and parsed, as a real receiver would, with
    orjson: the peers share the machine's cores with the pipelines under test, and the
    standard library's decoder cost them a fifth of their CPU.
    """

    async def slim(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        try:
            record = orjson.loads(body)
        except orjson.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            keep = ("kind", "key", "ticket", "lsid")
            body = orjson.dumps({k: record[k] for k in keep if k in record})
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await app({**scope, "headers": headers}, replay, send)

    return slim


def _with_key(session: SupportSession, number: int) -> SupportSession:
    """The session with an external key, so that both pipelines find its ticket at once."""
    if session.external_key:
        return session
    return dataclasses.replace(session, external_key=f"INC{number:07d}")


class _PeersControl:
    """The child's side: drives the simulators on the parent's requests."""

    def __init__(self, appliance: SimApplianceState, receiver: WebhookReceiverState) -> None:
        self.appliance = appliance
        self.receiver = receiver
        self.statuses: Counter[str] = Counter()
        self.queued_at: dict[str, float] = {}
        self.emitter: OutboundEventEmitter | None = None
        self.recipient: Recipient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def app(self) -> Starlette:
        async def steady(request: Request) -> Response:
            args = await request.json()
            task = asyncio.create_task(
                self._steady(
                    str(args["intake"]),
                    int(args["count"]),
                    float(args["rate"]),
                    surveys=bool(args.get("surveys")),
                )
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return JSONResponse({"ok": True})

        async def backlog(request: Request) -> Response:
            args = await request.json()
            return JSONResponse({"sessions": self._backlog(int(args["count"]), int(args["seed"]))})

        async def old(request: Request) -> Response:
            args = await request.json()
            return JSONResponse({"lsid": self._old(float(args["days"]))})

        async def progress(request: Request) -> Response:
            reports = self.receiver.of_kind("session_report")
            last = max((r.received_at for r in reports), default=None)
            return JSONResponse({"reports": len(reports), "last": last})

        async def results(request: Request) -> Response:
            recipient = self.recipient
            return JSONResponse(
                {
                    "queued_at": self.queued_at,
                    "received": [
                        [r.body.get("lsid"), r.received_at]
                        for r in self.receiver.of_kind("session_report")
                    ],
                    "repeats": sum(self.receiver.repeats.values()),
                    "statuses": dict(self.statuses),
                    "calls": dict(self.appliance.calls),
                    "dropped": recipient.dropped if recipient else 0,
                    "surveys": len(self.receiver.of_kind("survey")),
                }
            )

        return Starlette(
            routes=[
                Route("/steady", steady, methods=["POST"]),
                Route("/backlog", backlog, methods=["POST"]),
                Route("/old", old, methods=["POST"]),
                Route("/progress", progress),
                Route("/results", results),
            ]
        )

    def _backlog(self, count: int, seed: int) -> list[list[str]]:
        """Store ``count`` ended sessions (long past); their lsids and external keys."""
        out = []
        for number, generated in enumerate(SessionGenerator(seed).sessions(count)):
            session = _with_key(generated, number)
            # Serialised now, while the backlog is made: during the drain the simulated
            # appliance only sends bytes, as a real one does on its own hardware.
            self.appliance.add_report(session, keep_xml=True)
            out.append([session.lsid, session.external_key or ""])
        return out

    def _old(self, days: float) -> str:
        """Store one session that ended ``days`` ago; its lsid."""
        session = next(iter(SessionGenerator(5).sessions(1)))
        assert session.start_time is not None and session.end_time is not None
        shift = datetime.now(UTC) - timedelta(days=days) - session.end_time
        old = dataclasses.replace(
            session, start_time=session.start_time + shift, end_time=session.end_time + shift
        )
        self.appliance.add_report(old)
        return old.lsid

    async def _steady(self, intake: str, count: int, rate: float, *, surveys: bool) -> None:
        """End ``count`` sessions at ``rate`` per second, queueing each one's end event
        (and its exit-survey events, with ``surveys``)."""
        sessions = [_with_key(s, n) for n, s in enumerate(SessionGenerator(11).sessions(count))]
        sent = {END, *SURVEY_EVENTS} if surveys else {END}
        self.recipient = Recipient(intake, retry_interval=0.05, events=sent)
        self.emitter = OutboundEventEmitter([self.recipient])
        self.emitter.start()
        loop = asyncio.get_running_loop()
        first = loop.time() + 0.2
        for n, session in enumerate(sessions):
            await asyncio.sleep(max(0.0, first + n / rate - loop.time()))
            assert session.start_time is not None and session.end_time is not None
            # Moved in time so that it ends now (whole seconds, as reports carry them).
            shift = timedelta(seconds=int(time.time()) - session.end_time.timestamp())
            ended = dataclasses.replace(
                session, start_time=session.start_time + shift, end_time=session.end_time + shift
            )
            self.appliance.add_report(ended)
            events = [
                e for e in events_for_session(ended, self.appliance.appliance_id) if e.event in sent
            ]
            self.queued_at[ended.lsid] = time.time()
            for event in events:
                self.emitter.enqueue(event)


async def _run_peers(latency: float, per_second: int, per_hour: int) -> None:
    """Child process: serve the peers; print their addresses as one JSON line."""
    appliance = SimApplianceState.default(seed=3)
    receiver = WebhookReceiverState(delay=latency)
    control = _PeersControl(appliance, receiver)
    sim = appliance_app(appliance, rate_per_second=per_second, rate_per_hour=per_hour)
    account = appliance.accounts[0]
    async with (
        serving(_with_latency(sim, latency, control.statuses)) as appliance_url,
        serving(_slim_bodies(webhook_app(receiver))) as webhook_url,
        serving(control.app()) as control_url,
    ):
        await announce(
            {
                "appliance": appliance_url.removeprefix("http://"),
                "webhook": f"{webhook_url}/hook",
                "control": control_url,
                "client_id": account.client_id,
                "client_secret": account.client_secret,
            }
        )


# --- the parent's view of the peers ---------------------------------------------------


class Peers(ChildPeer):
    """A peers child process for one measurement (``with Peers(...) as peers``)."""

    def __init__(self, latency: float, per_second: int, per_hour: int) -> None:
        super().__init__(
            [
                __file__,
                "--serve-peers",
                "--peer-latency",
                str(latency),
                "--rate-per-second",
                str(per_second),
                "--rate-per-hour",
                str(per_hour),
            ],
            "peers",
        )

    async def wait_reports(self, count: int, *, limit: float) -> dict[str, Any]:
        """Wait until the receiver holds ``count`` session reports (at most ``limit`` s)."""
        deadline = time.monotonic() + limit
        while True:
            progress: dict[str, Any] = await self.call("/progress")
            if progress["reports"] >= count or time.monotonic() > deadline:
                return progress
            await asyncio.sleep(0.2)

    def appliance_requests(self, statuses: dict[str, int]) -> tuple[int, int]:
        """Requests the appliance received, and how many it answered 429."""
        return sum(statuses.values()), sum(n for k, n in statuses.items() if k.endswith(" 429"))


def _config(
    workdir: Path,
    peers: Peers,
    workers: int,
    *,
    events: tuple[str, ...] = (END,),
    lookback_days: float = 1.0,
    render_processes: int = 0,
) -> Config:
    """The engine's configuration: the peers' appliance and one webhook integration
    (importing ``events``), rendering in ``render_processes`` child processes."""
    return parse_config(
        {
            "engine": {
                "store": str(workdir / "engine.db"),
                "workers": workers,
                "render_processes": render_processes,
                "poll_lookback_hours": lookback_days * 24,
            },
            "appliances": [
                {
                    "id": APPLIANCE_ID,
                    "host": peers.info["appliance"],
                    "client_id": peers.info["client_id"],
                    "client_secret": peers.info["client_secret"],
                    "use_plain_http": True,
                }
            ],
            "integrations": [
                {
                    "name": INTEGRATION,
                    "connector": "webhook",
                    "outbound_events": list(events),
                    # Every session has an external key, set as a customer could; the
                    # naive script follows it blindly, so rsbridge trusts it too ("any"),
                    # else each session would cost a ticket creation the script does not
                    # make. "create" only guards the run.
                    "association": {"on_unmatched": "create", "trust": "any"},
                    "settings": {"url": peers.info["webhook"]},
                }
            ],
        }
    )


def _client_calls(client: ApplianceClient) -> int:
    """Appliance calls a client made: API requests and token requests."""
    return client.requests_sent + client.tokens.tokens_issued


# --- the baseline ------------------------------------------------------------------------


class NaivePipeline:
    """A simple integration script: per session end, fetch, parse, render, POST; no store."""

    def __init__(self, config: Config, concurrency: int) -> None:
        self.client = make_appliance_client(config.appliances[0])
        self.connector = WebhookConnector(config.integrations[0].connector_settings())
        self.renderer = Renderer()
        self.failures = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.connector.aclose()

    async def import_session(self, lsid: str) -> None:
        """One SupportSession fetch by lsid, then the report POSTed to the ticket."""
        async with self._slots:
            try:
                session = None
                async for found in self.client.support_sessions(lsid=lsid):
                    session = found
                if session is None or session.end_time is None:
                    raise RuntimeError(f"no complete report for {lsid}")
                key = f"{APPLIANCE_ID}/{lsid}/{END}/{NAIVE}/session_report"
                delivery = SessionDelivery(
                    key, APPLIANCE_ID, NAIVE, session, self.renderer.render(session)
                )
                ticket = Ticket(session.external_key or lsid)
                await self.connector.write_session_report(ticket, delivery)
            except Exception:
                self.failures += 1
                log.exception("baseline: session %s failed", lsid)

    def intake(self) -> Starlette:
        """Answers every event 200 at once and imports each session end in the background."""

        async def receive(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode()))
            lsid = form.get("lsid")
            if form.get("event") == END and lsid:
                task = asyncio.create_task(self.import_session(lsid))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return PlainTextResponse("OK")

        return Starlette(routes=[Route("/ERSPost", receive, methods=["POST"])])


# --- measurements ------------------------------------------------------------------------


@dataclass
class Steady:
    """Steady-state figures of one pipeline (latencies: session end to ticket updated)."""

    sessions: int
    delivered: int
    p50_ms: float
    p90_ms: float
    max_ms: float
    calls: int
    appliance_saw: int
    throttled: int

    @property
    def calls_per_session(self) -> float:
        return self.calls / max(1, self.delivered)


@dataclass
class Backlog:
    """Backlog figures of one pipeline; ``seconds`` runs to the last report received."""

    sessions: int
    """Sessions imported (the baseline's sample)."""
    seconds: float
    calls: int
    appliance_saw: int
    throttled: int
    cpu_seconds: float
    rss_mb: float | None = None
    report_calls: int | None = None
    render_processes: int = 0
    render_cpu_seconds: float = 0.0
    """CPU time of the render processes (``[engine] render_processes``)."""
    peers_cpu_seconds: float = 0.0
    """CPU time of the peers' process meanwhile: it shares the machine's cores."""

    @property
    def rate(self) -> float:
        return self.sessions / self.seconds

    @property
    def render_cpu_ms_per_session(self) -> float:
        return self.render_cpu_seconds * 1000 / max(1, self.sessions)

    @property
    def peers_cpu_ms_per_session(self) -> float:
        return self.peers_cpu_seconds * 1000 / max(1, self.sessions)

    @property
    def calls_per_session(self) -> float:
        return self.calls / max(1, self.sessions)

    @property
    def cpu_ms_per_session(self) -> float:
        return self.cpu_seconds * 1000 / max(1, self.sessions)


async def _steady_results(peers: Peers, count: int, calls: int) -> Steady:
    results: dict[str, Any] = await peers.call("/results")
    queued: dict[str, float] = results["queued_at"]
    latencies = [at - queued[lsid] for lsid, at in results["received"] if lsid in queued]
    if not latencies:
        raise SystemExit("no session report reached the receiver")
    if len(latencies) < count:
        print(f"  warning: {count - len(latencies)} of {count} sessions were not delivered")
    if results["dropped"]:
        print(f"  warning: the appliance dropped {results['dropped']} events")
    saw, throttled = peers.appliance_requests(results["statuses"])
    return Steady(
        count,
        len(latencies),
        statistics.median(latencies) * 1000,
        percentile(latencies, 0.9) * 1000,
        max(latencies) * 1000,
        calls,
        saw,
        throttled,
    )


async def steady_rsbridge(peers: Peers, args: argparse.Namespace, workdir: Path) -> Steady:
    count = round(args.rate * args.duration)
    config = _config(workdir, peers, args.workers, render_processes=args.render_processes)
    async with (
        Engine(config) as engine,
        serving(intake_app(engine.intake, engine.store)) as url,
    ):
        engine.start()
        await peers.call(
            "/steady", {"intake": f"{url}{INTAKE_PATH}", "count": count, "rate": args.rate}
        )
        await peers.wait_reports(count, limit=args.duration + 60)
        calls = _client_calls(engine.appliances[APPLIANCE_ID])
    return await _steady_results(peers, count, calls)


async def steady_baseline(peers: Peers, args: argparse.Namespace, workdir: Path) -> Steady:
    count = round(args.rate * args.duration)
    naive = NaivePipeline(_config(workdir, peers, args.workers), args.workers)
    try:
        async with serving(naive.intake()) as url:
            await peers.call(
                "/steady", {"intake": f"{url}{INTAKE_PATH}", "count": count, "rate": args.rate}
            )
            await peers.wait_reports(count, limit=args.duration + 60)
    finally:
        await naive.aclose()
    return await _steady_results(peers, count, _client_calls(naive.client))


async def _record_backlog(engine: Engine, sessions: list[list[str]]) -> None:
    """Record an end event per session, as the intake would after parsing it."""
    specs = job_specs(engine.config, APPLIANCE_ID, END, polled=False)
    events = [
        IncomingEvent(
            APPLIANCE_ID,
            END,
            "outbound",
            f"bench-backlog-{lsid}",
            lsid=lsid,
            external_key=external_key or None,
            form=(("event", END), ("lsid", lsid), ("external_key", external_key)),
        )
        for lsid, external_key in sessions
    ]
    for i in range(0, len(events), RECORD_CHUNK):
        chunk = events[i : i + RECORD_CHUNK]
        await asyncio.gather(*(engine.store.record_event(e, specs) for e in chunk))


async def _drained(engine: Engine, *, limit: float) -> dict[str, int]:
    """Wait until no job is queued or running (at most ``limit`` s); the job counts."""
    deadline = time.monotonic() + limit
    while True:
        counts = await engine.store.counts()
        if counts.get("queued", 0) + counts.get("running", 0) == 0:
            return counts
        if time.monotonic() > deadline:
            print(f"  warning: not drained after {limit:.0f} s: {counts}")
            return counts
        # Seldom: the query competes with the workers for the CPU, and the drain time is
        # taken from the receiver's clock, not from this loop.
        await asyncio.sleep(0.5)


async def backlog_rsbridge(peers: Peers, args: argparse.Namespace, workdir: Path) -> Backlog:
    """The rsbridge backlog, rendering in ``--render-processes`` child processes."""
    return await _backlog(peers, args, workdir, args.render_processes)


async def _backlog(
    peers: Peers, args: argparse.Namespace, workdir: Path, render_processes: int
) -> Backlog:
    sessions: list[list[str]] = (
        await peers.call("/backlog", {"count": args.backlog, "seed": args.seed})
    )["sessions"]
    config = _config(workdir, peers, args.workers, render_processes=render_processes)
    # CPU time of the event loop's thread: wall time would count waiting for the peers.
    profile = cProfile.Profile(time.thread_time) if args.profile else None
    async with Engine(config) as engine:
        started = time.perf_counter()
        await _record_backlog(engine, sessions)
        took = time.perf_counter() - started
        print(f"  {len(sessions)} end events recorded in {took:.1f} s (store.record_event)")
        pool = engine.render_pool
        if pool is not None:
            await _warm(pool)
        render_pids = pool.pids() if pool is not None else []
        render_before = _children_cpu(render_pids)
        peers_before = _children_cpu([peers.pid])
        rss_before, cpu_before = peak_rss_mb(), cpu_seconds()
        start = time.time()
        if profile is not None:
            profile.enable()
        engine.start()
        counts = await _drained(engine, limit=max(600.0, args.backlog / 10))
        if profile is not None:
            profile.disable()
            _print_profile(profile, args.profile)
        rss, cpu = peak_rss_mb() - rss_before, cpu_seconds() - cpu_before
        render_cpu = _children_cpu(render_pids) - render_before
        peers_cpu = _children_cpu([peers.pid]) - peers_before
        assert engine.worker is not None
        report_calls = engine.worker.appliance_calls
        calls = _client_calls(engine.appliances[APPLIANCE_ID])
    if counts.get("dead", 0):
        print(f"  warning: {counts['dead']} jobs are dead letters")
    progress = await peers.call("/progress")
    if not progress["reports"]:
        raise SystemExit("no session report reached the receiver")
    results = await peers.call("/results")
    saw, throttled = peers.appliance_requests(results["statuses"])
    if progress["reports"] != len(sessions) or results["repeats"]:
        print(
            f"  warning: {progress['reports']} reports received for {len(sessions)} "
            f"sessions ({results['repeats']} repeats)"
        )
    return Backlog(
        progress["reports"],
        progress["last"] - start,
        calls,
        saw,
        throttled,
        cpu,
        rss,
        report_calls,
        len(render_pids),
        render_cpu,
        peers_cpu,
    )


async def _warm(pool: RenderPool) -> None:
    """Start the render processes and render one session in each before the clock starts:
    their start (imports, renderers built) is not what is measured."""
    pool.start()
    session = next(iter(SessionGenerator(seed=1).sessions(1)))
    await asyncio.gather(*(pool.render(INTEGRATION, session, None) for _ in range(pool.processes)))


def _children_cpu(pids: list[int]) -> float:
    """CPU seconds the processes ``pids`` used so far (Linux ``/proc``; one gone counts 0)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


async def backlog_before(peers: Peers, args: argparse.Namespace, workdir: Path) -> Backlog:
    """The rsbridge backlog on the old paths: :mod:`rsbridge.fastpaths` turned off and
    rendering in the event loop's thread (``render_processes = 0``)."""
    with fastpaths.turned_off():
        return await _backlog(peers, args, workdir, 0)


def _print_profile(profile: cProfile.Profile, top: int) -> None:
    """The ``top`` functions by own CPU time, with their share of the profiled total."""
    stats = pstats.Stats(profile)
    rows: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    total = sum(own for _calls, _prim, own, _cum, _callers in rows.values()) or 1.0
    print(f"  profile: {total:.1f} s of CPU in the event loop's thread; top {top} by own time")
    ranked = sorted(rows.items(), key=lambda item: item[1][2], reverse=True)[:top]
    for (path, line, name), (_calls, primitive, own, cumulative, _callers) in ranked:
        where = f"{Path(path).name}:{line}({name})" if line else name
        print(
            f"  {own / total:6.1%} own {cumulative / total:6.1%} cum {primitive:>9} calls  {where}"
        )


async def backlog_baseline(peers: Peers, args: argparse.Namespace, workdir: Path) -> Backlog:
    # The same backlog in the appliance (so that each call costs it the same), of
    # which the baseline imports a sample.
    sessions: list[list[str]] = (
        await peers.call("/backlog", {"count": args.backlog, "seed": args.seed})
    )["sessions"]
    sample = [lsid for lsid, _key in sessions[: args.baseline_sample]]
    naive = NaivePipeline(_config(workdir, peers, args.workers), args.workers)
    try:
        start, cpu_before = time.time(), cpu_seconds()
        await asyncio.gather(*(naive.import_session(lsid) for lsid in sample))
        cpu = cpu_seconds() - cpu_before
    finally:
        await naive.aclose()
    progress = await peers.call("/progress")
    if not progress["reports"]:
        raise SystemExit("no session report reached the receiver")
    results = await peers.call("/results")
    saw, throttled = peers.appliance_requests(results["statuses"])
    if naive.failures:
        print(f"  warning: {naive.failures} baseline imports failed")
    calls = _client_calls(naive.client)
    return Backlog(progress["reports"], progress["last"] - start, calls, saw, throttled, cpu)


# --- appliance call economy ---------------------------------------------------------------

LOOKBACK_DAYS = 400


@dataclass
class Economy:
    """rsbridge's appliance calls on the paths that used to waste them (issue 15)."""

    sessions: int
    surveys: int
    """Survey deliveries the receiver got."""
    report_fetches: int
    """SupportSession requests the appliance answered in the steady state."""
    reused: int
    """Jobs served a kept report."""
    replayed: int
    """Events replayed once their effects were done."""
    replay_calls: int
    """Appliance requests (API and token) the replay made, by the client's count."""
    replay_seen: int
    """API requests the appliance answered during the replay."""
    listing_calls: int
    listed: int

    @property
    def fetches_per_session(self) -> float:
        return self.report_fetches / max(1, self.sessions)


async def economy_rsbridge(peers: Peers, args: argparse.Namespace, workdir: Path) -> Economy:
    """Steady state with exit surveys, then a replay of every event, then a first poll
    with a long look-back."""
    count = round(args.rate * args.duration)
    config = _config(
        workdir,
        peers,
        args.workers,
        events=(END, *SURVEY_EVENTS),
        lookback_days=LOOKBACK_DAYS,
        render_processes=args.render_processes,
    )
    async with (
        Engine(config) as engine,
        serving(intake_app(engine.intake, engine.store)) as url,
    ):
        engine.start()
        await peers.call(
            "/steady",
            {"intake": f"{url}{INTAKE_PATH}", "count": count, "rate": args.rate, "surveys": True},
        )
        await peers.wait_reports(count, limit=args.duration + 60)
        await _drained(engine, limit=120)  # the surveys come after the reports
        steady = await peers.call("/results")
        assert engine.worker is not None
        reused = engine.worker.reports_reused
        # Replay every event: every effect is in the ledger.
        client = engine.appliances[APPLIANCE_ID]
        before = _client_calls(client)
        events = await engine.store.list_events(EventFilter(limit=10 * count + 100))
        for event in events:
            specs = job_specs(config, APPLIANCE_ID, event.event_type, polled=False)
            await engine.store.replay_event(event.id, specs)
        await _drained(engine, limit=120)
        replay_calls = _client_calls(client) - before
        replayed = await peers.call("/results")
        # A first poll reaching 400 days back (a manual pull: its sessions are done).
        await peers.call("/old", {"days": LOOKBACK_DAYS - 1})
        poller = Poller(config, engine.store, client, config.integrations[0], manual=True)
        polled = await poller.poll()
        await _drained(engine, limit=120)
        # By the appliance's count: the workers share the client and fetch meanwhile.
        pulled = await peers.call("/results")
    listings = [r["calls"].get("SupportSessionListing", 0) for r in (replayed, pulled)]
    return Economy(
        count,
        steady["surveys"],
        steady["calls"].get("SupportSession", 0),
        reused,
        len(events),
        replay_calls,
        sum(replayed["calls"].values()) - sum(steady["calls"].values()),
        listings[1] - listings[0],
        polled.sessions,
    )


def _report_calls(args: argparse.Namespace, economy: Economy, backlog: Backlog) -> None:
    """The appliance-call figures against the targets (shared/DESIGN.md, issue 15)."""
    steady_met = economy.fetches_per_session <= 1.0
    replay_met = economy.replay_calls == 0 and economy.replay_seen == 0
    backlog_met = backlog.calls_per_session < 0.02
    print(
        f"appliance calls: {economy.sessions} sessions ending at {args.rate:g}/s with their "
        f"exit-survey events ({economy.surveys} surveys delivered)"
    )
    print(
        f"  report fetches / session, steady state, surveys included: "
        f"{economy.fetches_per_session:.3f} (target <= 1; {economy.reused} jobs used a kept "
        f"report) -> {verdict(steady_met)}"
    )
    print(
        f"  appliance calls for a replay of {economy.replayed} events whose effects are done: "
        f"{economy.replay_calls} (the appliance saw {economy.replay_seen}; target 0) -> "
        f"{verdict(replay_met)}"
    )
    print(
        f"  appliance calls / session in the backlog: {backlog.calls_per_session:.4f} "
        f"(target < 0.02) -> {verdict(backlog_met)}"
    )
    print(
        f"  SupportSessionListing calls for a first poll {LOOKBACK_DAYS} days back: "
        f"{economy.listing_calls} ({economy.listed} sessions listed; a day per call was "
        f"{LOOKBACK_DAYS})"
    )


# --- report ------------------------------------------------------------------------------


TABLE = Comparison(36)
_row = TABLE.row


def _report(
    args: argparse.Namespace,
    steady: tuple[Steady, Steady],
    backlog: tuple[Backlog, Backlog],
) -> None:
    base_s, ours_s = steady
    base_b, ours_b = backlog
    print()
    print(
        f"peers answer in {args.peer_latency * 1000:.0f} ms; appliance limits "
        f"{args.rate_per_second}/s, {args.rate_per_hour}/h; rsbridge: {args.workers} workers, "
        f"baseline: {args.workers} imports at once"
    )
    print(
        f"steady state: {args.rate:g} sessions/s for {args.duration:g} s "
        f"({ours_s.sessions} sessions)"
    )
    print(TABLE.header())
    print(_row("session end -> ticket p50 (ms)", base_s.p50_ms, ours_s.p50_ms))
    print(_row("session end -> ticket p90 (ms)", base_s.p90_ms, ours_s.p90_ms))
    print(_row("session end -> ticket max (ms)", base_s.max_ms, ours_s.max_ms))
    print(
        _row(
            "appliance calls / session",
            base_s.calls_per_session,
            ours_s.calls_per_session,
            "12.3f",
        )
    )
    projected = args.backlog / base_b.rate
    print(
        f"backlog: {args.backlog} sessions queued before the workers start "
        f"(baseline: {base_b.sessions} of them, time for all projected from its rate)"
    )
    print(TABLE.header())
    print(_row(f"time to drain {args.backlog} (s)", projected, ours_b.seconds))
    print(_row("sessions/s", base_b.rate, ours_b.rate))
    print(
        _row(
            "appliance calls / session", base_b.calls_per_session, ours_b.calls_per_session, "12.4f"
        )
    )
    cpu = (base_b.cpu_ms_per_session, ours_b.cpu_ms_per_session)
    print(_row("CPU ms / session (this process)", *cpu))
    print(_row("peak RSS growth (MB)", None, ours_b.rss_mb or 0.0))
    print(
        f"appliance requests received (429 answers): steady {base_s.appliance_saw} "
        f"({base_s.throttled}) vs {ours_s.appliance_saw} ({ours_s.throttled}); "
        f"backlog {base_b.appliance_saw} ({base_b.throttled}) vs "
        f"{ours_b.appliance_saw} ({ours_b.throttled}); rsbridge report fetches in the "
        f"backlog: {ours_b.report_calls}"
    )
    latency_met = ours_s.p50_ms < 1000
    calls_met = ours_b.calls_per_session < 0.02
    print(
        f"targets: median < 1 s -> {verdict(latency_met)} "
        f"({ours_s.p50_ms:.0f} ms); appliance calls / session in a backlog < 0.02 -> "
        f"{verdict(calls_met)} ({ours_b.calls_per_session:.4f})"
    )


def _median(runs: list[Backlog]) -> Backlog:
    """The run with the median rate (the lower one of the middle two for an even count)."""
    return sorted(runs, key=lambda run: run.rate)[(len(runs) - 1) // 2]


def _report_before(
    args: argparse.Namespace, runs: dict[int, tuple[list[Backlog], list[Backlog]]]
) -> None:
    """rsbridge's backlog on the old path (fast paths off) against today's, same run, at
    each worker count of ``--compare-workers``; the target compares each path's best."""
    for workers, (befores, ours) in runs.items():
        _report_pair(args, workers, befores, ours)
    # Each path at its best count: a count where the receiver's latency bounds the new path
    # measures the receiver, and one where httpcore's pool slows the old path flatters the
    # new one; the best of each is neither.
    best_before = max(runs, key=lambda n: _median(runs[n][0]).rate)
    best_ours = max(runs, key=lambda n: _median(runs[n][1]).rate)
    before, mine = _median(runs[best_before][0]), _median(runs[best_ours][1])
    speedup = mine.rate / before.rate
    print()
    print(
        f"target: rsbridge's best backlog rate ({mine.rate:.1f} sessions/s, {best_ours} "
        f"workers) at least {SPEEDUP_TARGET:g}x the old path's best ({before.rate:.1f}, "
        f"{best_before} workers) -> {verdict(speedup >= SPEEDUP_TARGET)} ({speedup:.2f}x); "
        f"at least {RATE_TARGET:g} sessions/s (design brief) -> "
        f"{verdict(mine.rate >= RATE_TARGET)} ({mine.rate:.1f})"
    )


def _report_pair(
    args: argparse.Namespace, workers: int, befores: list[Backlog], ours: list[Backlog]
) -> None:
    """The two backlogs at ``workers`` workers: the median run of each when there are
    several pairs."""
    before, mine = _median(befores), _median(ours)
    print()
    print(
        f"backlog: {args.backlog} sessions, rsbridge with its fast paths off (before) and on, "
        f"{workers} workers; render_processes = {before.render_processes} (before) and "
        f"{mine.render_processes} (rsbridge)"
    )
    if len(ours) > 1:
        rates = ", ".join(
            f"{b.rate:.1f} / {o.rate:.1f}" for b, o in zip(befores, ours, strict=True)
        )
        print(f"sessions/s of each pair (before / rsbridge): {rates}; the median runs:")
    print(f"{'':36}{'before':>12}{'rsbridge':>12}{'ratio':>9}")
    print(_row(f"time to drain {args.backlog} (s)", before.seconds, mine.seconds))
    print(_row("sessions/s", before.rate, mine.rate))
    print(
        _row("CPU ms / session (this process)", before.cpu_ms_per_session, mine.cpu_ms_per_session)
    )
    if mine.render_processes:
        print(_row("CPU ms / session (render processes)", None, mine.render_cpu_ms_per_session))
        total = mine.cpu_ms_per_session + mine.render_cpu_ms_per_session
        print(_row("CPU ms / session (both)", before.cpu_ms_per_session, total))
    print(
        _row(
            "CPU ms / session (peers' process)",
            before.peers_cpu_ms_per_session,
            mine.peers_cpu_ms_per_session,
        )
    )
    # A bound no CPU can lift: each job holds a worker for at least one receiver answer.
    ceiling = workers / args.peer_latency if args.peer_latency > 0 else float("inf")
    print(
        f"workers' ceiling: {workers} jobs at once, each waiting at least "
        f"{args.peer_latency * 1000:g} ms for the receiver -> at most {ceiling:.0f} sessions/s"
    )


def _worker_counts(text: str) -> tuple[int, ...]:
    """``--compare-workers``: distinct positive counts, comma-separated."""
    try:
        counts = tuple(dict.fromkeys(int(part) for part in text.split(",")))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of worker counts: {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"worker counts must be at least 1: {text!r}")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, help="steady state: sessions ending per second")
    parser.add_argument("--duration", type=float, help="steady state: seconds")
    parser.add_argument("--backlog", type=int, help="sessions in the backlog")
    parser.add_argument("--baseline-sample", type=int, help="backlog sessions the baseline imports")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--render-processes",
        type=int,
        default=1,
        help="rsbridge's [engine] render_processes (the 'before' run always uses 0)",
    )
    parser.add_argument("--peer-latency", type=float, default=0.02)
    parser.add_argument("--rate-per-second", type=int, default=20)
    parser.add_argument("--rate-per-hour", type=int, default=15000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="a smaller run (about 30 s)")
    parser.add_argument(
        "--calls-only",
        action="store_true",
        help="only the appliance-call figures (rsbridge's backlog and call economy)",
    )
    parser.add_argument(
        "--backlog-only",
        action="store_true",
        help="only rsbridge's backlog, with its fast paths off (before) and on",
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=1,
        metavar="N",
        help="measure the before and rsbridge backlogs N times, alternately; report the medians",
    )
    parser.add_argument(
        "--compare-workers",
        type=_worker_counts,
        default=(8, 16),
        metavar="N,M",
        help="worker counts at which the before and rsbridge backlogs are measured "
        "(each path's best median is compared with the target); default 8,16",
    )
    parser.add_argument(
        "--profile",
        type=int,
        metavar="N",
        default=0,
        help="profile rsbridge's backlogs (cProfile; slows them) and print the top N",
    )
    parser.add_argument("--serve-peers", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.serve_peers:
        asyncio.run(_run_peers(args.peer_latency, args.rate_per_second, args.rate_per_hour))
        return
    defaults = (
        {"rate": 10.0, "duration": 5.0, "backlog": 1000, "baseline_sample": 100}
        if args.quick
        else {"rate": 10.0, "duration": 15.0, "backlog": 10000, "baseline_sample": 400}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")

    def phase(title: str, measure: Any, at: argparse.Namespace = args) -> Any:
        print(title, flush=True)
        with (
            tempfile.TemporaryDirectory() as workdir,
            Peers(args.peer_latency, args.rate_per_second, args.rate_per_hour) as peers,
        ):
            # The engine runs on the loop `rsbridge serve` gives it (uvloop where installed);
            # the old path on asyncio's, as the naive script does.
            old = measure in (backlog_before, backlog_baseline, steady_baseline)
            return eventloop.run(measure(peers, at, Path(workdir)), "asyncio" if old else "auto")

    def pairs(first: Backlog) -> dict[int, tuple[list[Backlog], list[Backlog]]]:
        # Round after round, every count in each: the machine's drift meets all of them.
        runs: dict[int, tuple[list[Backlog], list[Backlog]]] = {
            n: ([], []) for n in args.compare_workers
        }
        for number in range(1, args.pairs + 1):
            of = f" ({number} of {args.pairs})" if args.pairs > 1 else ""
            for workers in args.compare_workers:
                at = argparse.Namespace(**{**vars(args), "workers": workers})
                befores, ours = runs[workers]
                if number == 1 and workers == args.workers:
                    ours.append(first)
                else:
                    title = f"backlog, rsbridge, {workers} workers{of} ..."
                    ours.append(phase(title, backlog_rsbridge, at))
                title = f"backlog, rsbridge before (fast paths off), {workers} workers{of} ..."
                befores.append(phase(title, backlog_before, at))
        return runs

    # The rsbridge backlog first: peak RSS is a high-water mark of this process.
    first = f" (1 of {args.pairs})" if args.pairs > 1 else ""
    ours_b = phase(f"backlog, rsbridge, {args.workers} workers{first} ...", backlog_rsbridge)
    if args.backlog_only:
        _report_before(args, pairs(ours_b))
        return
    economy = phase("appliance call economy, rsbridge ...", economy_rsbridge)
    if args.calls_only:
        _report_calls(args, economy, ours_b)
        return
    runs = pairs(ours_b)
    base_b = phase("backlog, baseline ...", backlog_baseline)
    ours_s = phase("steady state, rsbridge ...", steady_rsbridge)
    base_s = phase("steady state, baseline ...", steady_baseline)
    _report(args, (base_s, ours_s), (base_b, ours_b))
    _report_calls(args, economy, ours_b)
    _report_before(args, runs)


if __name__ == "__main__":
    main()
