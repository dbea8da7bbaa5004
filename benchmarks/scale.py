"""Nodes: backlog drain and steady-state latency on SQLite and on PostgreSQL with 1 to 3 nodes.

    python3 dev.py bench scale [--backlog 3000] [--rate 10] [--duration 15] [--workers 8]
                               [--worker-bound 2] [--peer-latency 0.02] [--only sqlite,pg1,...]
                               [--quick] [--postgres postgresql://postgres@127.0.0.1:5432/test]

Every configuration runs real ``rsbridge serve`` processes, in one invocation:

* ``sqlite``: one node on the SQLite store (the baseline);
* ``pg1``, ``pg2``, ``pg3``: one, two and three nodes on one fresh PostgreSQL database
  (``rsbridge_bench_<random>``, dropped afterwards) on the server of ``--postgres``.

The peers run in a child process of this script (fresh for each configuration): the
simulated appliance and the simulated webhook receiver, each answering every request
``--peer-latency`` seconds late (20 ms), so that the peers' own CPU does not hide the
engine's. Each node has one ``webhook`` integration importing session ends.

1. **Backlog**: ``--backlog`` ended sessions are stored in the appliance and their end
   events recorded in the store (``store.record_event``, before any node runs). The
   appliance holds every request at a gate while the nodes start; when all answer
   ``/health``, the gate opens and the clock starts. Drain rate: sessions per second
   until the receiver holds the last report.
2. **Steady state**: sessions end at ``--rate`` per second for ``--duration`` seconds,
   their end events spread over the nodes' intakes in turn; latency: the receiver's
   ``received_at`` minus the moment the event was queued (median, p95).

Where the time goes, per configuration during the backlog: CPU milliseconds per session
of the nodes together and of the PostgreSQL server's processes (``/proc``), the store's
write latency by operation and the peers' call latency, both from the nodes' ``/metrics``;
and how busy the machine's cores were during the drain (``/proc/stat``: every process,
and the share of the nodes, PostgreSQL and the peers). A drain with the cores busy 90 % of
the time or more measured this machine, not the engine: the table says so.

Two tables: ``--workers`` a node (8, as shipped), where on a small machine the cores are
usually the limit; then ``--worker-bound`` a node (2; none with ``--quick`` unless given),
few enough that each node is bound by its workers and the peers' latency: the speed-up per
node added there is what adding a node adds when the nodes have CPU to spare. Both targets
are judged for each table.

Printed as ratios against the baseline of the same run: each configuration against
SQLite, and each node count against one PostgreSQL node. Targets (issue 16): PostgreSQL
one node within 20% of SQLite (ratio >= 0.8); two nodes at least 1.6x one node. Exit
status 1 when a session was lost or imported twice (the figures are then meaningless).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg import sql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from harness import ChildPeer, announce, percentile, verdict
from pipeline import _PeersControl, _slim_bodies, _with_key, _with_latency
from rsbridge.appliance.events import END
from rsbridge.config import load_config
from rsbridge.engine.intake import job_specs
from rsbridge.engine.store import open_store
from rsbridge.engine.store.base import IncomingEvent
from rsbridge.sim.appliance.emitter import OutboundEventEmitter, Recipient, events_for_session
from rsbridge.sim.appliance.scenarios import SessionGenerator
from rsbridge.sim.appliance.server import create_app as appliance_app
from rsbridge.sim.appliance.state import SimApplianceState
from rsbridge.sim.webhook import WebhookReceiverState
from rsbridge.sim.webhook import create_app as webhook_app
from rsbridge.web.serve import serving

APPLIANCE_ID = "default"
INTAKE_PATH = f"/ERSPost?appliance={APPLIANCE_ID}"
SECRET_ENV = "RSBRIDGE_SCALE_SECRET"  # noqa: S105 (a variable's name)
RECORD_CHUNK = 200
CONFIGS = ("sqlite", "pg1", "pg2", "pg3")
PG1_TARGET = 0.8  # PostgreSQL one node within 20% of SQLite
TWO_NODES_TARGET = 1.6  # two nodes against one


# --- the peers process ------------------------------------------------------------------


class _Gate:
    """Holds every HTTP request of the wrapped app until opened."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()

    def wrap(self, app: ASGIApp) -> ASGIApp:
        async def gated(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http":
                await self.opened.wait()
            await app(scope, receive, send)

        return gated


class _ScaleControl(_PeersControl):
    """The pipeline benchmark's control, with the gate and steady events over several
    intakes."""

    def __init__(
        self, appliance: SimApplianceState, receiver: WebhookReceiverState, gate: _Gate
    ) -> None:
        super().__init__(appliance, receiver)
        self.gate = gate

    def app(self) -> Starlette:
        base = super().app()

        async def open_gate(request: Request) -> Response:
            self.gate.opened.set()
            return JSONResponse({"opened": time.time()})

        async def spread(request: Request) -> Response:
            args = await request.json()
            task = asyncio.create_task(
                self._spread([str(u) for u in args["intakes"]], int(args["count"]), args["rate"])
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            return JSONResponse({"ok": True})

        base.router.routes.append(Route("/open", open_gate, methods=["POST"]))
        base.router.routes.append(Route("/spread", spread, methods=["POST"]))
        return base

    async def _spread(self, intakes: list[str], count: int, rate: float) -> None:
        """End ``count`` sessions at ``rate`` per second (as the pipeline benchmark's
        steady state), session ``n``'s end event queued for intake ``n % len(intakes)``
        (the appliance sends to one address: spreading is a load balancer's job)."""
        sessions = [_with_key(s, n) for n, s in enumerate(SessionGenerator(11).sessions(count))]
        recipients = [Recipient(url, retry_interval=0.05, events={END}) for url in intakes]
        emitters = [OutboundEventEmitter([r]) for r in recipients]
        self.recipient = recipients[0]
        for emitter in emitters:
            emitter.start()
        loop = asyncio.get_running_loop()
        first = loop.time() + 0.2
        for n, session in enumerate(sessions):
            await asyncio.sleep(max(0.0, first + n / rate - loop.time()))
            assert session.start_time is not None and session.end_time is not None
            shift = timedelta(seconds=int(time.time()) - session.end_time.timestamp())
            ended = dataclasses.replace(
                session, start_time=session.start_time + shift, end_time=session.end_time + shift
            )
            self.appliance.add_report(ended)
            self.queued_at[ended.lsid] = time.time()
            for event in events_for_session(ended, self.appliance.appliance_id):
                if event.event == END:
                    emitters[n % len(emitters)].enqueue(event)


async def _run_peers(latency: float) -> None:
    """Child process: serve the peers behind the gate; print their addresses."""
    appliance = SimApplianceState.default(seed=3)
    receiver = WebhookReceiverState(delay=latency)
    gate = _Gate()
    control = _ScaleControl(appliance, receiver, gate)
    # The appliance's own rate limits stay as documented (20/s, 15,000/h): the nodes
    # share them through the store's budget (PostgreSQL) or the client (SQLite).
    sim = gate.wrap(_with_latency(appliance_app(appliance), latency, control.statuses))
    account = appliance.accounts[0]
    async with (
        serving(sim) as appliance_url,
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


class Peers(ChildPeer):
    """A fresh peers process for one configuration."""

    def __init__(self, latency: float) -> None:
        super().__init__([__file__, "--serve-peers", "--peer-latency", str(latency)], "peers")

    @property
    def pids(self) -> list[int]:
        """The peers process, while it runs (for its CPU time)."""
        return [self._child.pid] if self._child is not None else []

    async def reports(self) -> dict[str, Any]:
        """How many session reports the receiver holds, and when the last came."""
        progress: dict[str, Any] = await self.call("/progress")
        return progress

    async def wait_reports(self, count: int, *, limit: float) -> dict[str, Any]:
        """Wait until the receiver holds ``count`` reports (at most ``limit`` s)."""
        deadline = time.monotonic() + limit
        while True:
            progress = await self.reports()
            if progress["reports"] >= count or time.monotonic() > deadline:
                return progress
            await asyncio.sleep(0.25)


# --- the nodes ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(path: Path, store: str, peers: Peers, workers: int) -> Path:
    """One node's TOML: the peers' appliance and one webhook integration."""
    path.write_text(
        f"""
[engine]
store = "{store}"
workers = {workers}

[[appliances]]
id = "{APPLIANCE_ID}"
host = "{peers.info["appliance"]}"
client_id = "{peers.info["client_id"]}"
client_secret = {{ env = "{SECRET_ENV}" }}
use_plain_http = true

[[integrations]]
name = "bench"
connector = "webhook"
outbound_events = ["{END}"]
association = {{ on_unmatched = "create", trust = "any" }}
settings = {{ url = "{peers.info["webhook"]}" }}
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Node:
    """One ``rsbridge serve`` process."""

    config: Path
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    pythonpath: str | None = None
    """Another rsbridge's ``src`` folder to run (``--before``)."""

    def start(self, secret: str) -> None:
        log = (self.config.parent / f"serve-{self.port}.log").open("ab")
        with log:
            self.proc = subprocess.Popen(  # noqa: S603 (rsbridge itself, as a child)
                [
                    *(sys.executable, "-m", "rsbridge", "serve", "--config", str(self.config)),
                    *("--port", str(self.port), "--log-level", "warning"),
                ],
                cwd=self.config.parent,
                env={
                    **os.environ,
                    SECRET_ENV: secret,
                    **({"PYTHONPATH": self.pythonpath} if self.pythonpath else {}),
                },
                stdout=log,
                stderr=log,
            )

    async def ready(self, http: httpx.AsyncClient) -> None:
        for _ in range(600):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{self.url}/health")).status_code == 200:
                    return
            assert self.proc is not None
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        raise SystemExit(f"a node did not start; see {self.config.parent}/serve-{self.port}.log")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextlib.asynccontextmanager
async def running_nodes(nodes: Sequence[Node], secret: str) -> AsyncIterator[None]:
    """Start ``nodes`` and wait until every one answers ``/health``; stop them after."""
    try:
        for node in nodes:
            node.start(secret)
        async with httpx.AsyncClient(timeout=2) as http:
            await asyncio.gather(*(node.ready(http) for node in nodes))
        yield
    finally:
        for node in nodes:
            node.stop()


# --- where the time goes ----------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (same host only)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


class CpuMeter:
    """CPU seconds of some processes between :meth:`start` and :meth:`stop`, counting
    processes that started in between (a pool's new connections) in full."""

    def __init__(self, pids: Any) -> None:
        self._pids = pids
        self._before: dict[int, float] = {}

    def start(self) -> None:
        self._before = {pid: _cpu_of(pid) for pid in self._pids()}

    def stop(self) -> float:
        return sum(_cpu_of(pid) - self._before.get(pid, 0.0) for pid in self._pids())


class MachineMeter:
    """How busy the machine's CPUs were between :meth:`start` and :meth:`stop`
    (``/proc/stat``: every process, this script's and the other users' included)."""

    def __init__(self) -> None:
        self._before = (0, 0)
        self.core_seconds = 0.0
        """CPU time the machine had between start and stop (cores x seconds)."""
        self.cores = max(1, sum(1 for line in self._lines() if re.match(r"cpu\d", line)))

    @staticmethod
    def _lines() -> list[str]:
        try:
            return Path("/proc/stat").read_text().splitlines()
        except OSError:
            return []

    def _ticks(self) -> tuple[int, int]:
        """(busy, total) jiffies of all CPUs together so far."""
        for line in self._lines():
            if line.startswith("cpu "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
                total = sum(values[:8])  # guest time is counted in user already
                return total - idle, total
        return 0, 0

    def start(self) -> None:
        self._before = self._ticks()

    def stop(self) -> float:
        """The share (0 to 1) of all cores' time spent busy since :meth:`start`."""
        busy, total = self._ticks()
        spent = total - self._before[1]
        self.core_seconds = spent / _TICKS
        return (busy - self._before[0]) / spent if spent > 0 else float("nan")


_SAMPLE = re.compile(r"^(rsbridge_\w+?)_(sum|count)\{([^}]*)\} ([0-9.e+-]+)$", re.M)


async def scrape(nodes: Sequence[Node]) -> dict[tuple[str, str], list[float]]:
    """Sums and counts of the nodes' store-write and peer-call histograms, added up:
    ``{(metric, label): [seconds, count]}``."""
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    async with httpx.AsyncClient(timeout=10) as http:
        for node in nodes:
            text = (await http.get(f"{node.url}/metrics")).text
            for name, kind, labels, value in _SAMPLE.findall(text):
                if name == "rsbridge_store_write_seconds":
                    label = re.sub(r'operation="([^"]*)"', r"\1", labels)
                elif name == "rsbridge_peer_call_seconds":
                    found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
                    label = f"{found.get('peer')} {found.get('method')} {found.get('status')}"
                else:
                    continue
                totals[(name, label)][0 if kind == "sum" else 1] += float(value)
    return totals


# --- one configuration ------------------------------------------------------------------------


@dataclass
class Result:
    """The figures of one configuration."""

    name: str
    nodes: int
    backlog: int
    drained: int
    drain_seconds: float
    node_cpu: float
    server_cpu: float
    phases: dict[tuple[str, str], list[float]]
    machine_busy: float = float("nan")
    """Share of the machine's CPU time busy during the drain (all processes)."""
    ours: float = float("nan")
    """Share of it the nodes, PostgreSQL and the peers used (the rest: other users)."""
    steady_sent: int = 0
    latencies: list[float] = field(default_factory=list)
    repeats: int = 0

    @property
    def rate(self) -> float:
        return self.drained / self.drain_seconds if self.drain_seconds > 0 else 0.0

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies, 0.95) * 1000 if self.latencies else float("nan")

    @property
    def complete(self) -> bool:
        return (
            self.drained == self.backlog
            and len(self.latencies) == self.steady_sent
            and self.repeats == 0
        )


async def _record_backlog(store_url: str, config: Path, sessions: list[list[str]]) -> None:
    """Record an end event per session, as the intake does after parsing it."""
    specs = job_specs(load_config(config), APPLIANCE_ID, END, polled=False)
    store = open_store(store_url)
    await store.open()
    try:
        for i in range(0, len(sessions), RECORD_CHUNK):
            await asyncio.gather(
                *(
                    store.record_event(
                        IncomingEvent(
                            APPLIANCE_ID,
                            END,
                            "outbound",
                            f"bench-backlog-{lsid}",
                            lsid=lsid,
                            external_key=key or None,
                            form=(("event", END), ("lsid", lsid), ("external_key", key)),
                        ),
                        specs,
                    )
                    for lsid, key in sessions[i : i + RECORD_CHUNK]
                )
            )
    finally:
        await store.close()


async def measure(
    name: str, store_url: str, count: int, args: argparse.Namespace, workdir: Path, workers: int
) -> Result:
    """Backlog, then steady state, with ``count`` nodes of ``workers`` on ``store_url``."""
    with Peers(args.peer_latency) as peers:
        folder = workdir / f"{name}-w{workers}"
        folder.mkdir()
        config = _write_config(folder / "rsbridge.toml", store_url, peers, workers)
        sessions = (await peers.call("/backlog", {"count": args.backlog, "seed": 7}))["sessions"]
        os.environ[SECRET_ENV] = str(peers.info["client_secret"])
        await _record_backlog(store_url, config, sessions)
        older = str(args.before) if name.endswith("-before") else None
        nodes = [Node(config, pythonpath=older) for _ in range(count)]
        async with running_nodes(nodes, str(peers.info["client_secret"])):
            node_cpu = CpuMeter(lambda: [n.proc.pid for n in nodes if n.proc is not None])
            server_cpu = CpuMeter(_postgres_pids if store_url.startswith("postgresql") else list)
            machine, peers_cpu = MachineMeter(), CpuMeter(lambda: peers.pids)
            before = await scrape(nodes)
            node_cpu.start()
            server_cpu.start()
            peers_cpu.start()
            machine.start()
            opened = float((await peers.call("/open", {}))["opened"])
            done = await peers.wait_reports(args.backlog, limit=max(300.0, args.backlog / 5))
            busy = machine.stop()
            cpu_nodes, cpu_server = node_cpu.stop(), server_cpu.stop()
            cpu_ours = cpu_nodes + cpu_server + peers_cpu.stop()
            after = await scrape(nodes)
            phases = {
                key: [after[key][0] - before[key][0], after[key][1] - before[key][1]]
                for key in after
            }
            result = Result(
                name,
                count,
                args.backlog,
                int(done["reports"]),
                (done["last"] or opened) - opened,
                cpu_nodes,
                cpu_server,
                phases,
                busy,
                cpu_ours / machine.core_seconds if machine.core_seconds else float("nan"),
            )
            steady = round(args.rate * args.duration)
            intakes = [f"{node.url}{INTAKE_PATH}" for node in nodes]
            await peers.call("/spread", {"intakes": intakes, "count": steady, "rate": args.rate})
            await peers.wait_reports(args.backlog + steady, limit=args.duration + 60)
            results = await peers.call("/results")
        queued: dict[str, float] = results["queued_at"]
        result.steady_sent = steady
        result.latencies = [at - queued[lsid] for lsid, at in results["received"] if lsid in queued]
        result.repeats = int(results["repeats"])
        return result


@contextlib.contextmanager
def fresh_database(server: str) -> Any:
    """A new database on ``server`` for one configuration, dropped afterwards; its URL."""
    name = f"rsbridge_bench_{secrets.token_hex(4)}"
    admin = psycopg.connect(server, autocommit=True)
    try:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        parts = server.rsplit("/", 1)
        yield f"{parts[0]}/{name}"
    finally:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.close()


# --- the report -----------------------------------------------------------------------------


def _workers(count: int) -> str:
    return f"{count} worker" + ("" if count == 1 else "s")


MACHINE_BOUND = 0.9
"""A drain with the machine's CPUs busy this share of the time or more measured the machine."""


def report(results: list[Result], args: argparse.Namespace, workers: int, title: str) -> None:
    print(f"\n== {title}")
    print(
        f"backlog {args.backlog} sessions, steady {args.rate}/s for {args.duration} s, peers "
        f"answering in {args.peer_latency * 1000:.0f} ms, {_workers(workers)} a node"
    )
    base = results[0]
    pg1 = next((r for r in results if r.name == "pg1"), None)
    cores = MachineMeter().cores
    print(
        f"{'configuration':<20}{'sessions/s':>11}{'vs ' + base.name:>12}{'vs pg1':>8}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'node CPU ms/s.':>16}{'PG CPU ms/s.':>14}"
        f"{f'machine busy, {cores} cores':>23}"
    )
    for r in results:
        vs_base = r.rate / base.rate if base.rate else 0.0
        vs_pg1 = (
            f"{r.rate / pg1.rate:7.2f}x" if pg1 and pg1.rate and r.name != "sqlite" else "       -"
        )
        per = max(1, r.drained)
        print(
            f"{r.name + f' ({r.nodes} node' + ('s)' if r.nodes > 1 else ')'):<20}"
            f"{r.rate:11.1f}{vs_base:11.2f}x{vs_pg1:>8}{r.p50_ms:9.0f}{r.p95_ms:9.0f}"
            f"{r.node_cpu * 1000 / per:16.1f}{r.server_cpu * 1000 / per:14.1f}"
            f"{f'{r.machine_busy:.0%} ({r.ours:.0%} ours)':>23}"
        )
    for r in results:
        if not r.complete:
            print(
                f"  {r.name}: INCOMPLETE: {r.drained}/{r.backlog} backlog reports, "
                f"{len(r.latencies)}/{r.steady_sent} steady, {r.repeats} repeats"
            )
    if pg1 is not None and base.name == "sqlite":
        ratio = pg1.rate / base.rate
        met = verdict(ratio >= PG1_TARGET)
        print(f"target: PostgreSQL one node >= {PG1_TARGET}x SQLite: {ratio:.2f}x {met}")
    old = next((r for r in results if r.name == "pg1-before"), None)
    if pg1 is not None and old is not None and old.rate:
        print(f"PostgreSQL one node, this code vs --before: {pg1.rate / old.rate:.2f}x")
    pg2 = next((r for r in results if r.name == "pg2"), None)
    if pg1 is not None and pg2 is not None and pg1.rate:
        ratio = pg2.rate / pg1.rate
        met = verdict(ratio >= TWO_NODES_TARGET)
        print(f"target: two nodes >= {TWO_NODES_TARGET}x one: {ratio:.2f}x {met}")
    bound = [r.name for r in results if r.machine_busy >= MACHINE_BOUND]
    print(
        "machine busy: the share of the cores' time spent busy during the drain, by every "
        "process; 'ours': by the nodes, PostgreSQL and the peers (the rest: other users)"
    )
    if bound:
        print(
            f"machine-bound: the {cores} cores were busy >= {MACHINE_BOUND:.0%} during the "
            f"drain of {', '.join(bound)}: those rates are this machine's (nodes, PostgreSQL "
            "and peers share it), not the engine's limit"
        )
    else:
        print(
            f"not machine-bound: the cores had time to spare in every drain (busy < "
            f"{MACHINE_BOUND:.0%}): the nodes were bound by their workers and the peers' latency"
        )
    print(
        "\nwhere the time goes during the backlog (all nodes; ms per session, and calls per "
        "session):"
    )
    for r in results:
        per = max(1, r.drained)
        parts = sorted(r.phases.items(), key=lambda kv: -kv[1][0])
        shown = [
            f"{label.strip()} {seconds * 1000 / per:.1f} ms ({calls / per:.2f})"
            for (metric, label), (seconds, calls) in parts
            if calls
        ]
        print(f"  {r.name}: " + "; ".join(shown[:8]))


def tables(args: argparse.Namespace) -> list[tuple[int, str]]:
    """The tables to measure: (workers a node, title)."""
    found = [
        (
            args.workers,
            f"{_workers(args.workers)} a node: where this {MachineMeter().cores}-core machine "
            "runs the nodes, PostgreSQL and the peers, its CPUs can be the limit (see "
            "'machine busy')",
        )
    ]
    if args.worker_bound:
        found.append(
            (
                args.worker_bound,
                f"{_workers(args.worker_bound)} a node: nodes bound by their workers and the "
                "peers' latency, not by this machine's cores (what a node adds when each has "
                "CPU to spare)",
            )
        )
    return found


async def run(args: argparse.Namespace) -> int:
    measured: list[tuple[int, str, list[Result]]] = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir = Path(tmp)
        for workers, title in tables(args):
            results: list[Result] = []
            for name in args.only:
                if name == "sqlite":
                    url = str(workdir / f"sqlite-w{workers}.db")
                    results.append(await measure(name, url, 1, args, workdir, workers))
                else:
                    with fresh_database(args.postgres) as url:
                        count = int(name[2:].removesuffix("-before"))
                        results.append(await measure(name, url, count, args, workdir, workers))
                r = results[-1]
                print(
                    f"  {name}: {r.drained} sessions in {r.drain_seconds:.1f} s; "
                    f"steady {len(r.latencies)}/{r.steady_sent}; {_workers(workers)} a node, "
                    f"machine busy {r.machine_busy:.0%} ({r.ours:.0%} by this run)",
                    flush=True,
                )
            measured.append((workers, title, results))
    for workers, title, results in measured:
        report(results, args, workers, title)
    return 0 if all(r.complete for _, _, results in measured for r in results) else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--peer-latency", type=float, default=0.02)
    parser.add_argument(
        "--only",
        type=lambda text: [c.strip() for c in text.split(",") if c.strip()],
        default=list(CONFIGS),
        help=f"configurations to run, in order (of {', '.join(CONFIGS)}); the first is the "
        "baseline of the ratios",
    )
    parser.add_argument(
        "--workdir", type=Path, default=None, help="where the nodes' folders and logs go"
    )
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="the src folder of another rsbridge (an older commit): --only may then name "
        "pg1-before, pg2-before, pg3-before, whose nodes run that code",
    )
    parser.add_argument(
        "--worker-bound",
        type=int,
        default=None,
        help="workers a node of a second table, measured after the first: few enough that "
        "the nodes, not this machine's cores, are the limit (default 2; 0 for none, the "
        "default with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="a small run (about a minute)")
    parser.add_argument("--serve-peers", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "RSBRIDGE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    if args.serve_peers:
        asyncio.run(_run_peers(args.peer_latency))
        return
    known = set(CONFIGS) | ({f"{c}-before" for c in CONFIGS[1:]} if args.before else set())
    unknown = set(args.only) - known
    if unknown or not args.only:
        parser.error(f"--only takes some of {', '.join(CONFIGS)}")
    if args.worker_bound is None:
        args.worker_bound = 0 if args.quick else 2
    if args.quick:
        args.backlog, args.duration = min(args.backlog, 600), min(args.duration, 4.0)
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
