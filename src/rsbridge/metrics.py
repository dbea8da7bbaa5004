"""The engine's Prometheus metrics (``GET /metrics``); the reference is docs/metrics.md.

One :class:`Metrics` per engine, on its own :class:`~prometheus_client.CollectorRegistry`
(never the process-wide one), so that tests and several engines in one process do not
count into each other. What is counted, and where:

* events recorded, by source and result, store write latency, attempts, dead letters and
  deliveries: :class:`~rsbridge.engine.store.metered.MeteredStore`, the engine's store
  seen through a wrapper, so that intake, pollers and workers need no call of their own;
* events refused, by reason: the intake routes (:mod:`rsbridge.web.app`);
* HTTP calls to the appliance and the ticketing systems, with their latency: httpx event
  hooks on each client (:func:`instrument_http`), plus the failure hooks of
  :class:`~rsbridge.deadline.DeadlineClient` for calls that got no answer at all;
* the appliance's rate-limit waits: the limiter's ``on_wait`` (:func:`rate_limit_observer`);
* jobs by state and the oldest job's age: read from the store at each scrape
  (:meth:`Store.job_stats`), never counted in memory, so they hold across nodes.

Every label value comes from a bounded set: configured names (appliance ids, integration
names), connector types, exception class names, fixed words. Nothing a sender controls
(an lsid, a ticket number, an unknown appliance id, a URL path) ever becomes a label.

Clients built by the engine are bound to its metrics through :func:`binding`: the
engine builds each appliance client and connector inside ``with binding(metrics,
target)``, and the client builders call :func:`instrument_http` and
:func:`rate_limit_observer`, which do nothing outside a binding (the CLI's one-off
clients, tests).
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from rsbridge.engine.store.base import JobStats, Store

__all__ = [
    "CONTENT_TYPE",
    "Metrics",
    "RefusalReason",
    "binding",
    "instrument_http",
    "rate_limit_observer",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""

RefusalReason = Literal["unauthorized", "too_large", "store_unavailable"]
"""Why the intake refused a delivery: not from a configured appliance (401), too
large (413), or the store could not record it (503)."""

_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
_STARTED = "rsbridge.started"
"""The request extension that carries a call's start time from hook to hook."""


def status_label(status: int) -> str:
    """A response status as a label: ``429`` as itself (rate limiting), else ``2xx``..."""
    return "429" if status == 429 else f"{status // 100}xx"


class Metrics:
    """Every metric of one engine, on its own registry."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry()
        self._clock = clock
        r = self.registry
        self.events = Counter(
            "rsbridge_events_received",
            "Events recorded, by source (outbound, poll, pull, replay) and result "
            "(queued, duplicate, ignored).",
            ["source", "result"],
            registry=r,
        )
        self.refused = Counter(
            "rsbridge_events_refused",
            "Outbound-event deliveries refused by the intake, by reason.",
            ["reason"],
            registry=r,
        )
        self.attempts = Counter(
            "rsbridge_job_attempts",
            "Attempts at jobs that ended, by integration, outcome and error class.",
            ["integration", "outcome", "error_class"],
            registry=r,
        )
        self.dead_letters = Counter(
            "rsbridge_dead_letters",
            "Jobs that became dead letters, by integration and error class.",
            ["integration", "error_class"],
            registry=r,
        )
        self.deliveries = Counter(
            "rsbridge_deliveries",
            "Effects written to a ticketing system (ledger entries), by integration and effect.",
            ["integration", "effect"],
            registry=r,
        )
        self.calls = Histogram(
            "rsbridge_peer_call_seconds",
            "HTTP calls to the appliance and the ticketing systems, until the answer's head "
            "(status 'error': no answer), by peer, target, method and status class.",
            ["peer", "target", "method", "status"],
            buckets=_CALL_BUCKETS,
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "rsbridge_rate_limit_waits",
            "Times a call to the appliance waited for the API account's request budget.",
            ["appliance"],
            registry=r,
        )
        self.rate_limit_wait_seconds = Counter(
            "rsbridge_rate_limit_wait_seconds",
            "Seconds spent waiting for the appliance's request budget.",
            ["appliance"],
            registry=r,
        )
        self.store_writes = Histogram(
            "rsbridge_store_write_seconds",
            "Latency of the store's writes, by operation.",
            ["operation"],
            buckets=_STORE_BUCKETS,
            registry=r,
        )
        self.store_up = Gauge(
            "rsbridge_store_up",
            "1 when the store answered the last scrape's job count, 0 when it failed.",
            registry=r,
        )
        self._jobs = _JobCollector(clock)
        r.register(self._jobs)

    def refusal(self, reason: RefusalReason) -> None:
        """Count a refused delivery."""
        self.refused.labels(reason).inc()

    async def exposition(self, store: Store) -> bytes:
        """Every metric in the text format, the job gauges read from ``store`` now."""
        try:
            self._jobs.snapshot = await store.job_stats(now=self._clock())
        except Exception:
            # The counters still tell what happened; the gauge says why jobs are missing.
            self._jobs.snapshot = []
            self.store_up.set(0)
        else:
            self.store_up.set(1)
        return generate_latest(self.registry)


class _JobCollector(Collector):
    """The job gauges, from the snapshot :meth:`Metrics.exposition` read just before."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.snapshot: Sequence[JobStats] = ()
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        # No description at registration: collect() needs a snapshot, taken per scrape.
        return ()

    def collect(self) -> Iterable[Metric]:
        labels = ["appliance", "integration"]
        jobs = GaugeMetricFamily(
            "rsbridge_jobs",
            "Jobs in the store, by appliance, integration and state (queued: runnable now; "
            "waiting: in backoff or waiting for the report).",
            labels=[*labels, "state"],
        )
        oldest = GaugeMetricFamily(
            "rsbridge_oldest_job_age_seconds",
            "Age of the oldest queued or running job (0 when none).",
            labels=labels,
        )
        last_done = GaugeMetricFamily(
            "rsbridge_last_done_timestamp_seconds",
            "When the newest job that is done finished (UNIX time).",
            labels=labels,
        )
        now = self._clock()
        for s in self.snapshot:
            key = [s.appliance_id, s.integration]
            for state in ("queued", "waiting", "running", "done", "dead"):
                jobs.add_metric([*key, state], getattr(s, state))
            age = 0.0 if s.oldest_unfinished_at is None else max(0.0, now - s.oldest_unfinished_at)
            oldest.add_metric(key, age)
            if s.last_done_at is not None:
                last_done.add_metric(key, s.last_done_at)
        return [jobs, oldest, last_done]


# --- binding clients to an engine's metrics ----------------------------------------


@dataclass(frozen=True, slots=True)
class _Binding:
    metrics: Metrics
    target: str


_bound: ContextVar[_Binding | None] = ContextVar("rsbridge_metrics_binding", default=None)
_instrumented: weakref.WeakSet[httpx.AsyncClient] = weakref.WeakSet()


@contextlib.contextmanager
def binding(metrics: Metrics | None, target: str) -> Iterator[None]:
    """Clients built inside count into ``metrics``, labelled ``target`` (a configured
    appliance id or integration name). ``None`` binds nothing."""
    token = _bound.set(None if metrics is None else _Binding(metrics, target))
    try:
        yield
    finally:
        _bound.reset(token)


def instrument_http(client: httpx.AsyncClient, *, peer: str) -> None:
    """Count ``client``'s calls (latency, status) as ``peer``'s, under the current
    :func:`binding`; nothing without one, and nothing twice for one client."""
    bound = _bound.get()
    if bound is None or client in _instrumented:
        return
    _instrumented.add(client)
    calls = bound.metrics.calls

    async def started(request: httpx.Request) -> None:
        request.extensions[_STARTED] = time.perf_counter()

    def observe(request: httpx.Request, status: str) -> None:
        begun = request.extensions.get(_STARTED)
        if isinstance(begun, float):
            calls.labels(peer, bound.target, request.method, status).observe(
                time.perf_counter() - begun
            )

    async def answered(response: httpx.Response) -> None:
        observe(response.request, status_label(response.status_code))

    def failed(request: httpx.Request, exc: Exception) -> None:
        observe(request, "error")

    hooks = client.event_hooks
    client.event_hooks = {
        "request": [*hooks.get("request", []), started],
        "response": [*hooks.get("response", []), answered],
    }
    failure_hooks = getattr(client, "failure_hooks", None)
    if isinstance(failure_hooks, list):
        failure_hooks.append(failed)


def rate_limit_observer() -> Callable[[float], None] | None:
    """The ``on_wait`` of an appliance client's limiter under the current
    :func:`binding` (counting the waits for the bound appliance), or None."""
    bound = _bound.get()
    if bound is None:
        return None
    waits = bound.metrics.rate_limit_waits.labels(bound.target)
    seconds = bound.metrics.rate_limit_wait_seconds.labels(bound.target)

    def on_wait(wait: float) -> None:
        waits.inc()
        seconds.inc(wait)

    return on_wait
