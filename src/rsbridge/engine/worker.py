"""Workers: turn queued jobs into ticket effects, once each.

A :class:`Worker` claims jobs from the store in batches, fetches the session reports the
batch needs in as few appliance calls as possible (``lsids=``, 100 per call), then
processes the jobs concurrently. No call for a job whose effects the ledger holds
already (:mod:`.ledger_check`), nor for one whose session's report a recent fetch
brought and that it can use (:mod:`.report_cache`).

One slow or broken appliance holds only its own jobs: each appliance's fetch runs as a
task of its own, the jobs that need it wait for it (without taking a worker slot), and
claiming, the other appliances and the jobs that need no report go on meanwhile. Every
appliance call ends within its deadline (``call_deadline_seconds``), which is a
retryable failure of those jobs only. A session the report holds damaged fails alone:
the others of the same answer are delivered (fetched again without it when the parser
could not read past it), and sessions the appliance sent unasked are skipped and
counted. For each job:

1. the report must be complete (an end time): otherwise the job waits, with growing
   delays, up to ``report_wait_seconds`` from its arrival, and only then counts as failed;
2. the ticket comes from the ledger (an earlier job found or created it) or from the
   association rules (find by reference, or create, or skip); one found or created now
   is recorded with the job's finish, whatever its outcome (a crash before it leaves a
   ticket the next attempt finds by the same reference or creates once only by the same
   key);
3. each effect (the session report, each survey) is written only if the idempotency
   ledger does not hold it yet (the ledger of a claimed batch's sessions is read once,
   with the claim), and recorded there right after. Connectors upsert by the effect's
   key, so a crash between the write and the ledger entry repeats the write without a
   second effect. The job's last effect is recorded with the job's finish, in the same
   store transaction (one round trip less): nothing runs between that write and the
   finish, so the window a crash can hit is the same, and the entry is recorded
   whatever the outcome and even when the lease was lost meanwhile.

A worker slot (``workers``) is held for a job's calls to its peers, not for what can
go on without them: a session end's report is rendered before the job takes a slot,
where it renders in a child process (:meth:`Worker._render_ahead`), and the job's
finish is committed after it gives the slot back.

Failures: a retryable error of an event type the integration retries is re-queued with
exponential backoff and full jitter (at least the peer's ``Retry-After``) until
``retry_limit`` retries are spent; anything else becomes a dead letter at once. Every
attempt is recorded with its outcome and error.

No job waits for another event that may never come. The store hands out a survey only
after the session-end job of its session has finished (done or dead), so a survey whose
session is not imported yet imports it itself, under the session end's ledger key: the
appliance drops an event it could not deliver, and a session-end event that comes later
finds the import done. The other waits are for the appliance (a report without an end
time, a survey not in the report yet), bounded by ``report_wait_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from rsbridge.appliance.client import ApplianceClient
from rsbridge.appliance.events import END, MEMBER_ADDED, SURVEY_EVENTS
from rsbridge.appliance.report_model import ExitSurvey, SupportSession
from rsbridge.backoff import backoff
from rsbridge.config import Config, IntegrationConfig
from rsbridge.connectors.base import (
    Association,
    Connector,
    RenderedPart,
    RenderedReport,
    SessionDelivery,
    SurveyDelivery,
    Ticket,
)
from rsbridge.engine.association import (
    CREATED_SOURCE,
    TICKET_EFFECT,
    judge_session,
    ledger_association,
    ledger_ticket,
    resolve_ticket,
    ticket_detail,
    ticket_key,
    trusted_references,
)
from rsbridge.engine.autocreate import create_for_live_session, join_filter_refusal
from rsbridge.engine.ledger_check import (
    ALREADY_DELIVERED,
    JOIN_OFF,
    REPORT_EFFECT,
    effects_done,
    imports_end,
    survey_detail,
    survey_effect,
)
from rsbridge.engine.render import Renderer
from rsbridge.engine.render_pool import RenderPool
from rsbridge.engine.report_cache import ReportCache
from rsbridge.engine.reports import Answer, Fetched, ReportFetcher
from rsbridge.engine.signing import signer_for
from rsbridge.engine.store.base import (
    AttemptOutcome,
    Finish,
    Job,
    LedgerEntry,
    LedgerKey,
    Store,
    WakesWorkers,
    backend_of,
)
from rsbridge.errors import (
    ConfigurationError,
    ConnectorQuotaError,
    RsbridgeError,
    SessionNotReadyError,
)
from rsbridge.log_setup import bind_log_fields

log = logging.getLogger(__name__)

__all__ = ["CANCEL_WAIT_SECONDS", "REPORT_EFFECT", "Ahead", "Outcome", "Services", "Worker"]


@dataclass(frozen=True, slots=True)
class _Writing:
    """What writing one job's effects needs: the ticket, the report, the ledger read."""

    job: Job
    integration: IntegrationConfig
    connector: Connector
    ticket: Ticket | None
    association: Association
    session: SupportSession
    known: Mapping[LedgerKey, LedgerEntry]
    rendering: asyncio.Future[RenderedReport] | None


@dataclass(frozen=True, slots=True)
class Ahead:
    """What was read or started for a job before it took a worker slot."""

    ledger: Mapping[LedgerKey, LedgerEntry] | None = None
    """The ledger's entries for the job's session and integration, read with its claimed
    batch; None: read when the job runs."""
    rendering: asyncio.Future[RenderedReport] | None = None
    """The session report's rendering (a session end), awaited instead of rendering it."""


@dataclass
class Services:
    """What workers talk to, by appliance id and by integration name."""

    appliances: Mapping[str, ApplianceClient]
    connectors: Mapping[str, Connector]
    renderers: Mapping[str, Renderer]
    render_pool: RenderPool | None = None
    """Renders in child processes (``[engine] render_processes``); None: in-process."""

    async def render(
        self, integration: str, session: SupportSession, templates: Collection[str] | None
    ) -> RenderedReport:
        """``integration``'s report of ``session``: in a child process when there is a
        pool, else here (:meth:`Renderer.render <rsbridge.engine.render.Renderer.render>`)."""
        if self.render_pool is not None:
            return await self.render_pool.render(integration, session, templates)
        return self.renderers[integration].render(session, templates)

    async def render_survey(
        self,
        integration: str,
        session: SupportSession,
        kind: Literal["customer", "rep"],
        survey: ExitSurvey,
    ) -> RenderedPart:
        """One exit survey of ``session`` rendered for ``integration``, as :meth:`render`."""
        if self.render_pool is not None:
            return await self.render_pool.render_survey(integration, session, kind, survey)
        return self.renderers[integration].render_survey(session, kind, survey)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing one job did (for logs and tests)."""

    job_id: int
    outcome: AttemptOutcome
    note: str | None = None


_REPORT_EVENTS = frozenset({END, MEMBER_ADDED, *SURVEY_EVENTS})
"""Events whose processing needs the session's report (live, for a join)."""


CANCEL_WAIT_SECONDS = 5.0
"""At shutdown, how long cancelled jobs get to unwind before they are left behind (their
jobs are released to the queue either way)."""


def _needs_report(job: Job) -> bool:
    return bool(job.lsid) and job.event_type in _REPORT_EVENTS


def _of_integration(
    entries: Collection[LedgerEntry], integration: str
) -> dict[LedgerKey, LedgerEntry]:
    """A session's ledger entries of one integration, by key."""
    return {e.key: e for e in entries if e.key.integration == integration}


def _forget(task: asyncio.Task[RenderedReport]) -> None:
    """Mark an ahead rendering's outcome as seen, used or not (asyncio would log an
    unused failure as 'never retrieved'; the job that needed it reported it)."""
    if not task.cancelled():
        task.exception()


class _Skip(Exception):  # noqa: N818 (a control-flow signal, not an error)
    """The session has no ticket and the integration skips such sessions."""


class Worker:
    """Claims and processes jobs until stopped."""

    def __init__(
        self,
        config: Config,
        store: Store,
        services: Services,
        *,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.services = services
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._rng = rng or random.Random()
        self._engine = config.engine
        self._signer = signer_for(config.signing)
        self._inflight: set[asyncio.Task[Outcome]] = set()
        # Jobs claimed and not finished, started or still waiting for a slot: their
        # leases are extended while they are held so that a long batch never expires.
        self._held: set[int] = set()
        # Jobs whose report fetch is still running, with their appliance: they hold no
        # worker slot, and an appliance with a batch of them waiting gets no more claims.
        self._awaiting: dict[int, str] = {}
        self._margin = self._engine.clock_margin()  # once, not per job
        # Reports are kept only where surveys follow their session's end.
        surveys = {
            i.appliance
            for i in config.active_integrations()
            if any(e in SURVEY_EVENTS for e in (*i.outbound_events, *i.polling_events))
        }
        self._fetcher = ReportFetcher(
            services.appliances,
            ReportCache(margin=self._margin),
            keep=surveys,
            clock=self._clock,
        )
        self._last_heartbeat = 0.0
        self._slots = asyncio.Semaphore(self._engine.workers)
        self.processed = 0
        self.outcomes: list[Outcome] = []
        """Outcomes of the last :meth:`run_until_idle` (a long :meth:`run` keeps none)."""
        self._collect = False

    @property
    def appliance_calls(self) -> int:
        """Report fetches made (each may cover up to 100 sessions)."""
        return self._fetcher.calls

    @property
    def unrequested_sessions(self) -> int:
        """Sessions appliances answered without being asked for (ignored)."""
        return self._fetcher.unrequested

    @property
    def reports_reused(self) -> int:
        """Jobs served a kept report instead of an appliance call."""
        return self._fetcher.cache.hits

    # --- running ----------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, poll_interval: float = 0.2) -> None:
        """Claim and process jobs until ``stop`` is set, then shut down gracefully.

        Graceful: no new claims; report fetches still running are cancelled and the jobs
        waiting for them released at once (they have done nothing yet); jobs at work get
        ``shutdown_grace_seconds`` to finish; what is still running then is cancelled
        and released back to the queue.
        """
        failures = 0
        try:
            while not stop.is_set():
                try:
                    await self._heartbeat()
                    claimed = await self._claim_and_start()
                except Exception as exc:
                    # The store failed (a database restart, a full disk): keep trying. A
                    # worker that ended here would leave the node taking events that it
                    # never processes, while /ready still says it is fine.
                    failures += 1
                    if failures == 1 or failures % 20 == 0:
                        log.error("the worker cannot claim jobs (%d in a row): %s", failures, exc)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), min(30.0, 0.25 * 2 ** min(failures, 7)))
                    continue
                if failures:
                    log.warning("the worker claims jobs again after %d failure(s)", failures)
                    failures = 0
                if claimed == 0:
                    await self._idle(stop, poll_interval)
                else:
                    await asyncio.sleep(0)
        finally:
            await self._shutdown()

    async def _idle(self, stop: asyncio.Event, seconds: float) -> None:
        """Wait for ``stop``, the store's word that a job may be claimable, or ``seconds``.

        The wake-up takes the idle poll out of an event's latency; the poll stays for
        backoffs that end and for stores that cannot tell (memory).
        """
        waits: list[asyncio.Future[bool]] = [asyncio.ensure_future(stop.wait())]
        backend = backend_of(self.store)
        if isinstance(backend, WakesWorkers):
            waits.append(asyncio.ensure_future(backend.wait_for_jobs(seconds)))
        first = asyncio.FIRST_COMPLETED
        _, pending = await asyncio.wait(waits, timeout=seconds, return_when=first)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def run_until_idle(self, *, max_wait: float = 30.0) -> list[Outcome]:
        """Process jobs until none is runnable and none is in flight (tests, ``pull``).

        Jobs waiting for a later ``run_after`` are waited for, up to ``max_wait`` seconds
        overall; returns every outcome.
        """
        self.outcomes = []
        self._collect = True
        deadline = time.monotonic() + max_wait
        while True:
            await self._heartbeat()
            claimed = await self._claim_and_start()
            if claimed:
                # Claim on while there is room: jobs waiting for a slow appliance's
                # fetch must not keep runnable jobs of other appliances unclaimed.
                await asyncio.sleep(0)
                continue
            if self._inflight:
                await asyncio.wait(
                    set(self._inflight),
                    timeout=self._engine.lease_seconds / 3,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                continue
            counts = await self.store.counts()
            if counts.get("queued", 0) == 0 or time.monotonic() > deadline:
                self._collect = False
                return list(self.outcomes)
            await asyncio.sleep(0.05)

    async def _shutdown(self) -> None:
        # A fetch may be stuck on a trickling appliance until its deadline; its jobs have
        # done nothing yet, so they go back to the queue now rather than after the grace.
        for fetch in list(self._fetcher.running):
            fetch.cancel()
        if self._inflight:
            _, pending = await asyncio.wait(
                set(self._inflight), timeout=self._engine.shutdown_grace_seconds
            )
            for task in pending:
                task.cancel()
            if pending:
                # Bounded: a task that ignores its cancellation must not hold the process.
                _, stuck = await asyncio.wait(pending, timeout=CANCEL_WAIT_SECONDS)
                if stuck:
                    log.warning("%d jobs did not stop when cancelled; released anyway", len(stuck))
            self._inflight.clear()
        # A task cancelled before it began never cleared its marks; run() may start again.
        self._awaiting.clear()
        self._held.clear()
        try:
            released = await self.store.release(self.owner)
        except Exception as exc:
            # Their leases expire and another worker takes them over: nothing is lost.
            log.warning("could not release unfinished jobs at shutdown: %s", exc)
            return
        if released:
            log.info("released %d unfinished jobs at shutdown", released)

    async def _heartbeat(self) -> None:
        now = self._clock()
        if self._held and now - self._last_heartbeat >= self._engine.lease_seconds / 3:
            self._last_heartbeat = now
            await self.store.extend_lease(
                sorted(self._held), self.owner, self._engine.lease_seconds, now=now
            )

    async def _claim_and_start(self) -> int:
        # Claim a whole batch (a backlog is fetched from the appliance 100 sessions per
        # call) while fewer than two slots' worth of jobs are runnable: the next batch's
        # fetch then runs while the slots still deliver, instead of after they drain.
        # Jobs still waiting for their fetch take no slot, and an appliance with a batch
        # waiting already gets no more claims: a hung appliance holds one batch, never
        # the other appliances' jobs.
        batch = self._engine.report_batch_size
        if len(self._inflight) - len(self._awaiting) >= 2 * self._engine.workers:
            return 0
        waiting = Counter(self._awaiting.values())
        jobs = await self.store.claim(
            self.owner,
            limit=batch,
            lease=self._engine.lease_seconds,
            now=self._clock(),
            exclude_appliances={a for a, n in waiting.items() if n >= batch},
        )
        if not jobs:
            return 0
        self._held.update(job.id for job in jobs)
        needing = [job for job in jobs if _needs_report(job)]
        ledgers = await self._ledgers(needing)
        answers = await self._fetcher.answers(
            needing,
            lambda job: effects_done(
                self.store,
                self.config.integration(job.integration),
                job,
                margin=self._margin,
                session_ledger=ledgers.get((job.appliance_id, job.lsid or "")),
            ),
        )
        for job in jobs:
            answer = answers.get(job.id)
            if isinstance(answer, asyncio.Task):
                self._awaiting[job.id] = job.appliance_id
            entries = ledgers.get((job.appliance_id, job.lsid or ""))
            known = None if entries is None else _of_integration(entries, job.integration)
            task = asyncio.create_task(self._guarded(job, answer, known))
            self._inflight.add(task)
            task.add_done_callback(self._inflight_done)
        return len(jobs)

    async def _ledgers(self, jobs: list[Job]) -> dict[tuple[str, str], list[LedgerEntry]]:
        """The ledger of each session of a claimed batch's ``jobs``: one store read for
        the batch instead of two per job (is it done? which effects are recorded?).

        The read stands until the jobs run: only jobs of a session and integration write
        its entries (an action's ticket for a live session is created under the same key
        the job would use, and the first entry recorded is the one every writer uses),
        and the store hands those jobs out one at a time. Empty when the read fails: each
        job then reads for itself.
        """
        sessions = {(job.appliance_id, job.lsid) for job in jobs if job.lsid}
        if not sessions:
            return {}
        try:
            return await self.store.ledger_for_sessions(sessions)
        except Exception as exc:  # the store's failure meets each job on its own
            log.warning("the ledger could not be read: %s: %s", type(exc).__name__, exc)
            return {}

    def _inflight_done(self, task: asyncio.Task[Outcome]) -> None:
        # Every finished task is collected here, whatever the loop was awaiting then.
        self._inflight.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            # The store failed while finishing the job (its lease will expire and another
            # claim retries it): say so, as nothing else will.
            log.error("a job could not be finished: %s: %s", type(error).__name__, error)
            return
        self.processed += 1
        if self._collect:
            self.outcomes.append(task.result())

    # --- one job ----------------------------------------------------------------

    async def _guarded(
        self, job: Job, answer: Answer | None, known: Mapping[LedgerKey, LedgerEntry] | None
    ) -> Outcome:
        bind_log_fields(
            integration=job.integration, appliance=job.appliance_id, lsid=job.lsid, job=job.id
        )
        rendering: asyncio.Task[RenderedReport] | None = None
        try:
            if isinstance(answer, asyncio.Task):
                try:
                    # Shielded: one job cancelled must not cancel its batch-mates' fetch.
                    answer = await asyncio.shield(answer)
                finally:
                    self._awaiting.pop(job.id, None)
            rendering = self._render_ahead(job, answer)
            return await self._run_one(job, answer, Ahead(known, rendering))
        except asyncio.CancelledError:
            if rendering is not None:
                rendering.cancel()
            raise
        finally:
            if rendering is not None:
                # Unused when the job failed before its write: nobody else awaits it.
                rendering.add_done_callback(_forget)
            self._held.discard(job.id)

    def _render_ahead(
        self, job: Job, answer: Fetched | str | None
    ) -> asyncio.Task[RenderedReport] | None:
        """The session report's rendering, started before the job waits for a worker slot,
        where it is rendered in a child process and surely written: a session end whose
        complete report arrived, for an integration that imports every session.

        The slot is then held for the job's calls to the peers, not for the child's queue
        and turn: in a backlog a render took a quarter of a slot's time. A session the
        integration might skip (no ticket found) is rendered in its slot, as before, once
        the ticket is known; so is every other case.
        """
        if self.services.render_pool is None or job.event_type != END or answer is None:
            return None
        if isinstance(answer, str):
            return None
        session = answer.found.get(job.lsid or "")
        integration = self.config.integration(job.integration)
        if (
            not isinstance(session, SupportSession)
            or session.end_time is None
            or integration is None
            or integration.disabled
            or integration.association.on_unmatched == "skip"
        ):
            return None
        templates = self.services.connectors[integration.name].report_templates()
        return asyncio.create_task(self.services.render(integration.name, session, templates))

    async def _run_one(
        self,
        job: Job,
        answer: Fetched | str | None,
        ahead: Ahead,
    ) -> Outcome:
        async with self._slots:
            started = self._clock()
            last: list[LedgerEntry] = []
            finish = await self._attempt(job, answer, last, ahead)
        # Recorded after the slot is freed: the commit waits for the disk, not for a peer,
        # and the next job's calls need not wait behind it.
        if last:
            finish = replace(finish, ledger=tuple(last))
        if not await self.store.finish(
            job.id, self.owner, finish, started_at=started, now=self._clock()
        ):
            log.warning("job %d: lease lost before it finished; another worker has it", job.id)
        return Outcome(job.id, finish.outcome, finish.error)

    async def _attempt(
        self,
        job: Job,
        answer: Fetched | str | None,
        last: list[LedgerEntry],
        ahead: Ahead,
    ) -> Finish:
        try:
            if isinstance(answer, str):
                return Finish(AttemptOutcome.DONE, error=answer)  # done before: no call
            report = answer.found.get(job.lsid or "") if answer is not None else None
            if isinstance(report, Exception):
                raise report
            note = await self.process(
                job,
                report,
                asked_at=answer.asked_at if answer is not None else None,
                last=last,
                ahead=ahead,
            )
            return Finish(AttemptOutcome.DONE, error=note)
        except _Skip as skip:
            log.info("job %d: %s", job.id, skip)
            return Finish(AttemptOutcome.DONE, error=f"skipped: {skip}")
        except SessionNotReadyError as exc:
            age = self._clock() - job.created_at
            if age < self._engine.report_wait_seconds:
                delay = min(60.0, max(1.0, age / 2)) * self._rng.uniform(0.8, 1.0)
                return Finish(
                    AttemptOutcome.WAIT, run_after=self._clock() + delay, error=exc.message
                )
            return replace(await self._failure(job, exc), error_class=type(exc).__name__)
        except RsbridgeError as exc:
            return replace(await self._failure(job, exc), error_class=type(exc).__name__)
        except Exception as exc:
            # A bug, not a peer's failure: park it where an operator sees it and can retry
            # it after the fix, rather than spinning on it.
            log.exception("job %d: unexpected error", job.id)
            return Finish(
                AttemptOutcome.DEAD,
                error=f"unexpected error: {type(exc).__name__}: {exc}",
                error_class=type(exc).__name__,
            )

    async def _failure(self, job: Job, exc: RsbridgeError) -> Finish:
        integration = self.config.integration(job.integration)
        retry_types: list[str] = []
        if integration is not None:
            event = await self.store.get_event(job.event_id)
            polled = event is not None and event.source in ("poll", "pull")
            retry_types = (
                integration.retry_polling_events if polled else integration.retry_outbound_events
            )
            if integration.association.create_on_join:
                # A join is only processed for auto-create; while the session is live a
                # passing failure is worth retrying (the end would otherwise find no ticket).
                retry_types = [*retry_types, MEMBER_ADDED]
        limit = integration.retry_limit if integration else 0
        age = self._clock() - job.created_at
        quota_wait = self._engine.quota_wait_hours * 3600
        if (
            isinstance(exc, ConnectorQuotaError)
            and job.event_type in retry_types
            and age < quota_wait
        ):
            # The allowance comes back by itself: waiting uses up no retry.
            delay = max(exc.retry_after or 0.0, self._engine.backoff_base_seconds)
            log.warning(
                "job %d waits %.0fs for the peer's allowance: %s", job.id, delay, exc.message
            )
            return Finish(AttemptOutcome.WAIT, run_after=self._clock() + delay, error=exc.message)
        if exc.retryable and job.event_type in retry_types and job.attempts < limit:
            delay = backoff(
                job.attempts,
                base=self._engine.backoff_base_seconds,
                cap=self._engine.backoff_max_seconds,
                rng=self._rng,
                at_least=getattr(exc, "retry_after", None),
            )
            log.warning(
                "job %d failed (retry %d of %d in %.1fs): %s",
                job.id,
                job.attempts + 1,
                limit,
                delay,
                exc.message,
            )
            return Finish(AttemptOutcome.RETRY, run_after=self._clock() + delay, error=exc.message)
        why = "permanent error" if not exc.retryable else "retries exhausted or not retried"
        log.error("job %d is a dead letter (%s): %s", job.id, why, exc.message)
        return Finish(AttemptOutcome.DEAD, error=exc.message)

    async def process(
        self,
        job: Job,
        session: SupportSession | None,
        *,
        asked_at: float | None = None,
        last: list[LedgerEntry] | None = None,
        ahead: Ahead | None = None,
    ) -> str | None:
        """Apply one job's effects; raises to fail, returns a note (or None) when done.

        ``asked_at``: when ``session`` was asked for (recorded with survey effects).
        ``last``: when given, the ledger entries of the job's ticket (found or created
        now) and of its last effect are appended to it instead of recorded, for the
        caller to record with the job's finish.
        ``ahead``: what was read or started for the job before (:class:`Ahead`).
        """
        integration = self.config.integration(job.integration)
        if integration is None or integration.disabled:
            raise ConfigurationError(
                f"integration {job.integration} is not configured or is disabled"
            )
        if job.lsid is None or job.event_type not in _REPORT_EVENTS:
            return f"nothing to do for {job.event_type}"
        if job.event_type == MEMBER_ADDED:
            return await self._on_join(job, integration, session)
        if session is None or session.end_time is None:
            raise SessionNotReadyError(
                f"the appliance has no complete report for session {job.lsid} yet"
            )
        connector = self.services.connectors[integration.name]
        # One read for every effect of the job: while it runs, no other job of its
        # session and integration does (the store's ordering); a duplicate run after a
        # lost lease is caught by the connectors' upsert by key, as a crash is.
        ahead = ahead or Ahead()
        known = await self._known(job) if ahead.ledger is None else ahead.ledger
        ticket, association = await self._ticket(job, integration, connector, session, known, last)
        writing = _Writing(
            job, integration, connector, ticket, association, session, known, ahead.rendering
        )
        if job.event_type == END:
            imported = await self._import_session(writing, last)
            return None if imported else ALREADY_DELIVERED
        if imports_end(integration):
            # The store hands a survey out only once its session's end job has finished
            # (done or dead), or when there never was one: the appliance drops an event it
            # could not deliver in its retry duration. Waiting for the end import could
            # then last forever; the report is complete, so the survey brings the import
            # along, under the end's own ledger key (a late end event finds it done).
            await self._import_session(writing, None)
        kind: Literal["customer", "rep"] = (
            "customer" if SURVEY_EVENTS[job.event_type] == "customer" else "rep"
        )
        surveys = session.customer_surveys if kind == "customer" else session.rep_surveys
        if not surveys:
            raise SessionNotReadyError(f"the report of session {job.lsid} has no {kind} survey yet")
        written = 0
        for index, survey in enumerate(surveys):
            key = self._key(job, job.event_type, survey_effect(kind, index))
            if key in known:
                continue
            rendered = await self.services.render_survey(integration.name, session, kind, survey)
            result = await connector.write_survey(
                ticket,
                SurveyDelivery(
                    str(key),
                    job.appliance_id,
                    integration.name,
                    kind,
                    survey,
                    session,
                    rendered,
                    association,
                ),
            )
            detail = {**result.detail, **survey_detail(len(surveys), asked_at)}
            final = last if index == len(surveys) - 1 else None
            await self._record(key, ticket, result.ref, detail, final)
            written += 1
        return None if written else ALREADY_DELIVERED

    async def _import_session(self, w: _Writing, last: list[LedgerEntry] | None) -> bool:
        """Write the session report (the session end's effect) unless the ledger holds it;
        whether it was written now. ``last``: see :meth:`process`."""
        key = self._key(w.job, END, REPORT_EFFECT)
        if key in w.known:
            return False
        renderer = self.services.renderers[w.integration.name]
        if w.rendering is not None:
            rendered = await w.rendering
        else:
            templates = w.connector.report_templates()
            rendered = await self.services.render(w.integration.name, w.session, templates)
        delivery = SessionDelivery(
            str(key),
            w.job.appliance_id,
            w.integration.name,
            renderer.imported_session(w.session),
            rendered,
            w.association,
        )
        result = await w.connector.write_session_report(w.ticket, delivery)
        await self._record(key, w.ticket, result.ref, result.detail, last)
        return True

    def _key(self, job: Job, event: str, effect: str) -> LedgerKey:
        return LedgerKey(job.appliance_id, job.lsid or "", event, job.integration, effect)

    async def _known(self, job: Job) -> dict[LedgerKey, LedgerEntry]:
        """The effects the ledger holds for ``job``'s session and integration."""
        entries = await self.store.ledger_for_session(job.appliance_id, job.lsid or "")
        return _of_integration(entries, job.integration)

    async def _record(
        self,
        key: LedgerKey,
        ticket: Ticket | None,
        ref: str,
        detail: Mapping[str, str],
        last: list[LedgerEntry] | None = None,
    ) -> None:
        """Record an effect just written; appended to ``last`` (see :meth:`process`)
        instead when given: the job's finish records it, as nothing else runs before."""
        ticket_id = ticket.id if ticket is not None else ""
        entry = LedgerEntry(key, ticket_id, ref, self._clock(), dict(detail))
        if last is not None:
            last.append(entry)
        else:
            await self.store.ledger_put(entry)

    async def _on_join(
        self, job: Job, integration: IntegrationConfig, session: SupportSession | None
    ) -> str | None:
        """Someone joined a live session: auto-create its ticket when the rules say so."""
        rules = integration.association
        if not rules.create_on_join:
            return JOIN_OFF
        if session is None:
            raise SessionNotReadyError(f"the appliance has no report of session {job.lsid} yet")
        known = await self.store.ledger_get(
            ticket_key(job.appliance_id, session.lsid, job.integration)
        )
        if known is None or not known.ticket_id:
            refusal = join_filter_refusal(session, rules)
            if refusal is not None:
                raise _Skip(f"no ticket created for session {job.lsid}: {refusal}")
        # With a ticket known already this only finishes a write-back that failed before.
        ticket = await create_for_live_session(
            store=self.store,
            integration=integration,
            connector=self.services.connectors[integration.name],
            appliance=self.services.appliances[job.appliance_id],
            lsid=session.lsid,
            appliance_id=job.appliance_id,
            signer=self._signer,
            now=self._clock(),
            session=session,
        )
        return f"ticket {ticket.number or ticket.id}"

    async def _ticket(
        self,
        job: Job,
        integration: IntegrationConfig,
        connector: Connector,
        session: SupportSession,
        known: Mapping[LedgerKey, LedgerEntry],
        last: list[LedgerEntry] | None,
    ) -> tuple[Ticket | None, Association]:
        """The session's ticket: remembered in the ledger, found, created, or none.

        None means the session is imported unassociated (``on_unmatched = "import"``);
        a skipped session raises :class:`_Skip`. The association says how far the
        ticket and the session's references are trusted (docs/security.md). A ticket
        found or created now is remembered by :meth:`_remember`.
        """
        rules = integration.association
        trust = judge_session(session, rules, job.appliance_id, job.integration, self._signer)
        references = trusted_references(session, trust)
        key = self._key(job, TICKET_EFFECT, TICKET_EFFECT)
        recorded = known.get(key)
        if recorded is not None:
            return ledger_ticket(recorded), ledger_association(recorded, references)
        resolution = await resolve_ticket(session, rules, connector, trust)
        ticket = resolution.ticket
        source, trusted = resolution.source, resolution.trusted
        if ticket is None and rules.on_unmatched == "create":
            ticket = await connector.create_ticket(session, rules.create_fields, key=str(key))
            source, trusted = CREATED_SOURCE, connector.created_tickets_trusted()
        elif ticket is None and rules.on_unmatched == "import":
            log.info("session %s is imported without a ticket (%s)", job.lsid, resolution.why())
            entry = await self._remember(
                LedgerEntry(key, "", "", self._clock(), {"unassociated": resolution.why()}), last
            )
            return ledger_ticket(entry), ledger_association(entry, references)
        elif ticket is None:
            raise _Skip(
                f"session {job.lsid} matches no ticket and the integration skips such "
                f"sessions ({resolution.why()})"
            )
        elif resolution.tried:
            log.info("session %s: %s before %s matched", job.lsid, resolution.why(), source)
        detail = ticket_detail(ticket, source, trusted=trusted)
        entry = await self._remember(
            LedgerEntry(key, ticket.id, ticket.id, self._clock(), detail), last
        )
        return ledger_ticket(entry), ledger_association(entry, references)

    async def _remember(self, entry: LedgerEntry, last: list[LedgerEntry] | None) -> LedgerEntry:
        """The ticket's entry, recorded with the job's finish when ``last`` is given (see
        :meth:`process`), else now; the entry to use.

        With the finish, whatever the job's outcome: a retry uses the ticket without
        looking for it again. Its own commit bought nothing: a crash before the finish
        leaves a ticket the next attempt finds again by the same reference, or creates
        once only by the same key (the connectors' contract), and the report it writes
        there is the same upsert by key. It cost a commit per job while the job held its
        worker slot.
        """
        if last is not None:
            last.append(entry)
            return entry
        # Another worker may have recorded the ticket first: theirs is the one to use.
        return await self.store.ledger_put(entry)
