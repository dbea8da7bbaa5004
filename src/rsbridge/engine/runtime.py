"""The engine assembled: store, appliance clients, connectors, renderers, intake,
workers and pollers, with one start / stop life cycle.

``rsbridge serve`` runs :meth:`Engine.asgi_app` under uvicorn: the app's lifespan opens
the engine and runs the workers and pollers beside the intake routes, and stops them
gracefully when uvicorn shuts down (SIGTERM, Ctrl-C). An engine the caller opened already
(``async with Engine(config) as engine``) is not opened a second time by the lifespan, and
its workers run once however many times :meth:`Engine.start` is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette

from rsbridge import fastpaths
from rsbridge.actions.mail import Mailer
from rsbridge.actions.service import ActionService
from rsbridge.appliance.auth import MAX_LIVE_TOKENS
from rsbridge.appliance.client import ApplianceClient
from rsbridge.config import Config
from rsbridge.connectors.base import Connector
from rsbridge.connectors.registry import connector_class
from rsbridge.engine.appliances import make_appliance_client
from rsbridge.engine.budget import HoldsTokenSlots, SharedLimiter, SharesBudgets, budget_account
from rsbridge.engine.intake import Intake
from rsbridge.engine.poller import Poller
from rsbridge.engine.render import Renderer
from rsbridge.engine.render_pool import RendererSpec, RenderPool
from rsbridge.engine.retention import prune, retention_policy
from rsbridge.engine.store import open_store
from rsbridge.engine.store.base import LeadsPollers, Store, backend_of
from rsbridge.engine.store.metered import MeteredStore
from rsbridge.engine.worker import CANCEL_WAIT_SECONDS, Services, Worker
from rsbridge.errors import ConfigurationError, RsbridgeError
from rsbridge.log_setup import bind_log_fields
from rsbridge.metrics import Metrics, binding
from rsbridge.web.actions import action_routes
from rsbridge.web.admin import admin_routes
from rsbridge.web.app import create_app

log = logging.getLogger(__name__)

_STOP_MARGIN_SECONDS = CANCEL_WAIT_SECONDS + 5.0
"""Beyond the shutdown grace, how long stopping waits before it cancels what still runs:
longer than the worker's own wait for cancelled jobs, so that its last step (releasing
what it holds to the queue) is never cut short."""
_WORKER_TASK = "worker"
TOKEN_SLOT_CHECK_SECONDS = 5.0
"""How often a node on a shared store checks that it still holds its token slots."""


YOUNG_GENERATION_THRESHOLD = 10_000
"""Allocations between the garbage collector's young passes while the engine runs
(CPython's default: 700). A session's parse, render and delivery allocate many objects
that live a few milliseconds, and each young pass walks whatever is young then. Measured
in a backlog of 3,000 sessions: the collector's time went from 0.37-0.42 s to 0.25 s
(docs/benchmarks.md)."""

_CPYTHON_YOUNG_THRESHOLD = 700


@functools.cache
def tune_garbage_collector() -> None:
    """Once per process, at the first engine start: leave what exists then out of the
    garbage collector's passes, and make its young passes rarer.

    What exists (modules, compiled templates, settings, clients) lives as long as the
    process: a full pass walked all of it and stopped the event loop for about 50 ms,
    several times during a backlog; about 15 ms after the freeze. Once: a later start
    would also freeze whatever garbage the collector had not reached yet, for good.
    The young threshold is raised only from CPython's default: a program that embeds the
    engine and chose its own keeps it.
    """
    gc.freeze()
    young, *older = gc.get_threshold()
    if young == _CPYTHON_YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *older)


class Engine:
    """One engine process's parts. Use ``async with Engine(config) as engine``."""

    def __init__(
        self,
        config: Config,
        *,
        store: Store | None = None,
        appliances: dict[str, ApplianceClient] | None = None,
    ) -> None:
        self.config = config
        self.metrics = Metrics()
        """This engine's metrics (``GET /metrics``), on a registry of its own."""
        self.store: Store = MeteredStore(
            store or open_store(str(config.engine.store)), self.metrics
        )
        self._given_appliances = appliances
        self.appliances: dict[str, ApplianceClient] = {}
        self.connectors: dict[str, Connector] = {}
        self.renderers: dict[str, Renderer] = {}
        self.render_pool: RenderPool | None = None
        """The child processes rendering reports (``[engine] render_processes``), if any."""
        self.intake = Intake(config, self.store)
        self.worker: Worker | None = None
        self.pollers: list[Poller] = []
        self.actions: ActionService | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._on_stop: list[Callable[[], Awaitable[None]]] = []
        self._stop = asyncio.Event()
        self._leading: set[str] = set()  # appliances this node polls (shared stores)
        self._token_accounts: dict[str, str] = {}  # token slots taken: account -> client id
        self._slotless: set[str] = set()  # accounts whose slot was lost and not taken again
        self.token_slot_check_seconds = TOKEN_SLOT_CHECK_SECONDS
        """How often the token slots' connection is checked (see :meth:`start`)."""
        self._built = False
        self._opened = False

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def build(self) -> None:
        """Build every appliance client, connector and renderer; no I/O.

        A configuration mistake that only these reveal (a CA file that does not load, a
        connector setting it refuses) raises :class:`ConfigurationError` here, so
        ``rsbridge serve`` can report it before the server starts. :meth:`open` calls it
        when it has not run yet.
        """
        if self._built:
            return
        used = {i.appliance for i in self.config.active_integrations()}
        if self._given_appliances is not None:
            self.appliances = dict(self._given_appliances)
        else:
            for a in self.config.appliances:
                if a.id in used:
                    with binding(self.metrics, a.id):
                        self.appliances[a.id] = make_appliance_client(a)
        for integration in self.config.active_integrations():
            cls = connector_class(integration.connector)
            with binding(self.metrics, integration.name):
                self.connectors[integration.name] = cls(integration.connector_settings())
        specs = {
            integration.name: RendererSpec(
                integration.templates,
                None if integration.import_events is None else tuple(integration.import_events),
                fast_paths=fastpaths.enabled(),
            )
            for integration in self.config.active_integrations()
        }
        self.renderers = {name: spec.build() for name, spec in specs.items()}
        processes = self.config.engine.render_process_count()
        if processes and specs:
            self.render_pool = RenderPool(specs, self.renderers, processes)
        self._built = True

    async def open(self) -> None:
        """Open the store and build (see :meth:`build`) everything the engine runs.

        Opening an open engine does nothing: a second worker over the same store would
        be left behind by :meth:`stop`.
        """
        if self._opened:
            return
        await self.store.open()
        self.build()
        self._share_budgets()
        try:
            await self._take_token_slots()
        except RsbridgeError:
            # The store only: the clients stay usable for an open() that is tried again.
            await self.store.close()
            raise
        self.worker = Worker(
            self.config,
            self.store,
            Services(self.appliances, self.connectors, self.renderers, self.render_pool),
        )
        self.pollers = [
            Poller(self.config, self.store, self.appliances[i.appliance], i)
            for i in self.config.active_integrations()
            if i.polling
        ]
        smtp = self.config.smtp
        self.actions = ActionService(
            self.config,
            self.store,
            self.appliances,
            self.connectors,
            mailer=Mailer(smtp) if smtp is not None else None,
        )
        self._opened = True

    def _share_budgets(self) -> None:
        """On a store several nodes share, the appliance clients' request budgets are
        shared too: together the nodes never exceed an API account's limits."""
        backend = backend_of(self.store)
        if not isinstance(backend, SharesBudgets) or self._given_appliances is not None:
            return
        for appliance in self.config.appliances:
            client = self.appliances.get(appliance.id)
            if client is not None:
                account = budget_account(appliance.host, appliance.client_id)
                # The waits still count in this node's rate-limit metrics.
                client.limiter = SharedLimiter(backend, account, on_wait=client.limiter.on_wait)

    async def _take_token_slots(self) -> None:
        """On a shared store, this process takes one of an API account's 30 token slots
        per appliance it calls: each process caches one token per account and reuses it,
        so no more than 30 processes may share an account (the appliance drops the oldest
        token of an account at the 31st), checked here rather than found out as 401s."""
        backend = backend_of(self.store)
        if not isinstance(backend, HoldsTokenSlots) or self._given_appliances is not None:
            return
        for appliance in self.config.appliances:
            account = budget_account(appliance.host, appliance.client_id)
            self._token_accounts[account] = appliance.client_id
            if await backend.take_token_slot(account, MAX_LIVE_TOKENS) is None:
                raise ConfigurationError(
                    f"appliance {appliance.id!r}: {MAX_LIVE_TOKENS} rsbridge processes on "
                    f"this store already use API account {appliance.client_id!r}, which "
                    f"holds at most {MAX_LIVE_TOKENS} live tokens; run fewer nodes or give "
                    "some of them another API account"
                )

    @property
    def running(self) -> bool:
        """Whether the workers and pollers of :meth:`start` are running."""
        return any(not t.done() for t in self._tasks)

    def start(self) -> None:
        """Run the workers, pollers and pruning in the background (until :meth:`stop`).

        Does nothing while they run already.
        """
        if self.worker is None:
            raise RuntimeError("Engine.open() first")
        if self.running:
            return
        self._stop.clear()
        if self.render_pool is not None:
            self.render_pool.start()
        tune_garbage_collector()
        log.info(
            "starting %d workers on %s's event loop",
            self.config.engine.workers,
            type(asyncio.get_running_loop()).__module__.partition(".")[0],
        )
        self._tasks = [asyncio.create_task(self.worker.run(self._stop), name=_WORKER_TASK)]
        self._tasks += [
            asyncio.create_task(self._poll_loop(p), name=f"poller-{p.integration.name}")
            for p in self.pollers
        ]
        if self.config.engine.prune_interval_seconds > 0:
            self._tasks.append(asyncio.create_task(self._prune_loop(), name="pruner"))
        if self._token_accounts:
            self._tasks.append(asyncio.create_task(self._token_slot_loop(), name="token-slots"))

    async def stop(self) -> None:
        """Stop pollers and workers gracefully (in-flight jobs finish or are released).

        Bounded: the workers stop within ``shutdown_grace_seconds`` (and a few seconds for
        cancelled jobs to unwind); a poller still waiting for an appliance's answer by then
        is cancelled. That loses nothing: its watermark moves only after a whole poll,
        and the events it recorded already are on disk.
        """
        self._stop.set()
        callbacks, self._on_stop = self._on_stop, []  # once: aclose stops again
        for callback in callbacks:
            await callback()
        if self._tasks:
            workers = [t for t in self._tasks if t.get_name() == _WORKER_TASK]
            if workers:
                limit = self.config.engine.shutdown_grace_seconds + _STOP_MARGIN_SECONDS
                await asyncio.wait(workers, timeout=limit)
            late = [t for t in self._tasks if not t.done()]
            for task in late:
                log.info("%s is still waiting for a peer at shutdown; cancelled", task.get_name())
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=_STOP_MARGIN_SECONDS)
        self._tasks = []
        if self.render_pool is not None:
            # After the workers, whose last renders come first. A later start() restarts it.
            await self.render_pool.aclose()

    def on_stop(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Have ``callback`` awaited first when :meth:`stop` runs (the console's
        background runs end before the clients and the store they use close)."""
        self._on_stop.append(callback)

    async def aclose(self) -> None:
        """Stop, then close connectors, clients and the store."""
        await self.stop()
        for connector in self.connectors.values():
            await connector.aclose()
        if self._given_appliances is None:
            for client in self.appliances.values():
                await client.aclose()
        await self.store.close()
        self._opened = False

    async def _poll_loop(self, poller: Poller) -> None:
        bind_log_fields(integration=poller.integration.name, appliance=poller.integration.appliance)
        interval = poller.integration.polling_interval_seconds
        while not self._stop.is_set():
            try:
                if await self._leads(poller):
                    result = await poller.poll()
                    log.info(
                        "%s: polled %d sessions, %d new",
                        result.integration,
                        result.sessions,
                        result.queued,
                    )
            except RsbridgeError as exc:
                log.warning("%s: poll failed: %s", poller.integration.name, exc.message)
            except Exception:
                log.exception("%s: poll failed", poller.integration.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), interval)

    async def _leads(self, poller: Poller) -> bool:
        """Whether this node polls ``poller``'s appliance now: on a store that several
        nodes share, only the one holding the appliance's lead does (with failover)."""
        backend = backend_of(self.store)
        if not isinstance(backend, LeadsPollers):
            return True
        appliance = poller.integration.appliance
        leads = await backend.lead(f"poll:{appliance}")
        if leads != (appliance in self._leading):
            self._leading ^= {appliance}
            log.info(
                "appliance %s: %s",
                appliance,
                "this node polls it now" if leads else "another node polls it now",
            )
        return leads

    async def _token_slot_loop(self) -> None:
        """Keep this process's token slots: the store holds them on a connection of its
        own, and when that drops (a database restart or failover, a connection ended by
        an operator) the slots are free for other processes; take them again at once,
        so that the count of processes using an account stays true."""
        backend = backend_of(self.store)
        assert isinstance(backend, HoldsTokenSlots)
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.token_slot_check_seconds)
            if self._stop.is_set():
                return
            try:
                held = await backend.keep_token_slots()
            except Exception as exc:  # the store is down: the next round tries again
                log.warning("could not check the token slots: %s: %s", type(exc).__name__, exc)
                continue
            for account, number in held.items():
                client_id = self._token_accounts.get(account)
                lost = number is None
                if client_id is None or lost == (account in self._slotless):
                    continue  # unchanged: said already
                if lost:
                    self._slotless.add(account)
                    log.error(
                        "API account %r: this process lost its token slot and all %d are "
                        "held by other rsbridge processes now; stop one of them",
                        client_id,
                        MAX_LIVE_TOKENS,
                    )
                else:
                    self._slotless.discard(account)
                    log.warning("API account %r: holds token slot %d again", client_id, number)

    async def _prune_loop(self) -> None:
        """Prune the store at start, then every ``prune_interval_seconds``.

        Small steps (see :func:`~rsbridge.engine.retention.prune`) between which the
        intake's writes go first; a failure is logged and tried again next time.
        """
        settings = self.config.engine
        while not self._stop.is_set():
            try:
                policy = retention_policy(settings, now=time.time())
                pruned = await prune(self.store, policy, stop=self._stop)
                if pruned:
                    log.info(
                        "pruned %d events, %d jobs, %d attempts, %d ledger entries",
                        pruned.events,
                        pruned.jobs,
                        pruned.attempts,
                        pruned.ledger,
                    )
            except Exception:
                log.exception(
                    "pruning the store failed; trying again in %g s",
                    settings.prune_interval_seconds,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), settings.prune_interval_seconds)

    async def wait_idle(self, limit: float = 60.0) -> dict[str, int]:
        """Wait (at most ``limit`` seconds) until no job is queued or running; job counts.

        For the demo and tests, with :meth:`start` running the workers.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while True:
            counts = await self.store.counts()
            if counts.get("queued", 0) + counts.get("running", 0) == 0 or loop.time() > deadline:
                return counts
            await asyncio.sleep(0.05)

    def background_tasks(self) -> dict[str, bool]:
        """The background tasks (worker, pollers) by name, each with whether it runs."""
        return {t.get_name(): not t.done() for t in self._tasks}

    def asgi_app(self) -> Starlette:
        """The intake/health app (and actions API, when enabled) whose lifespan opens, runs
        and closes this engine; what the caller opened or started already, the caller
        closes or stops."""

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            opened_here = not self._opened
            await self.open()
            started_here = not self.running
            self.start()
            try:
                yield
            finally:
                if opened_here:
                    await self.aclose()
                elif started_here:
                    await self.stop()

        routes = (
            action_routes(self.config, lambda: self.actions) if self.config.actions.enabled else []
        )
        if self.config.admin.enabled:
            routes.extend(admin_routes(self))
        return create_app(
            self.intake,
            self.store,
            lifespan=lifespan,
            background=self.background_tasks,
            extra_routes=routes,
            metrics=self.metrics,
        )
