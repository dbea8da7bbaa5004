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
counted. For each job (steps 2 and 3 are :mod:`.effects`):

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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from rsbridge.appliance.events import END, MEMBER_ADDED, SURVEY_EVENTS
from rsbridge.appliance.report_model import SupportSession
from rsbridge.backoff import backoff
from rsbridge.config import Config
from rsbridge.connectors.base import (
    RenderedReport,
)
from rsbridge.engine.effects import REPORT_EVENTS, Ahead, JobEffects, Services, Skip, of_integration
from rsbridge.engine.ledger_check import (
    REPORT_EFFECT,
    effects_done,
)
from rsbridge.engine.report_cache import ReportCache
from rsbridge.engine.reports import Answer, Fetched, ReportFetcher
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
    ConnectorQuotaError,
    RsbridgeError,
    SessionNotReadyError,
)
from rsbridge.log_setup import bind_log_fields

log = logging.getLogger(__name__)

__all__ = ["CANCEL_WAIT_SECONDS", "REPORT_EFFECT", "Outcome", "Services", "Worker"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What processing one job did (for logs and tests)."""

    job_id: int
    outcome: AttemptOutcome
    note: str | None = None


CANCEL_WAIT_SECONDS = 5.0
"""At shutdown, how long cancelled jobs get to unwind before they are left behind (their
jobs are released to the queue either way)."""


def _needs_report(job: Job) -> bool:
    return bool(job.lsid) and job.event_type in REPORT_EVENTS


def _forget(task: asyncio.Task[RenderedReport]) -> None:
    """Mark an ahead rendering's outcome as seen, used or not (asyncio would log an
    unused failure as 'never retrieved'; the job that needed it reported it)."""
    if not task.cancelled():
        task.exception()


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
        self._inflight: set[asyncio.Task[Outcome]] = set()
        # Jobs claimed and not finished, started or still waiting for a slot: their
        # leases are extended while they are held so that a long batch never expires.
        self._held: set[int] = set()
        # Jobs whose report fetch is still running, with their appliance: they hold no
        # worker slot, and an appliance with a batch of them waiting gets no more claims.
        self._awaiting: dict[int, str] = {}
        self._margin = self._engine.clock_margin()  # once, not per job
        # Set when a claim held back by the worker itself could now take jobs: a job
        # ended while enough were runnable (``_full``), or a report arrived for an
        # appliance left out for its batch waiting (``_excluded``). The idle claim loop
        # wakes then, not at its next poll.
        self._room = asyncio.Event()
        self._full = False
        self._excluded: frozenset[str] = frozenset()
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
            gather=self._engine.report_gather_seconds,
        )
        self._last_heartbeat = 0.0
        self._slots = asyncio.Semaphore(self._engine.workers)
        self._effects = JobEffects(config, store, services, clock=self._clock)
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
        """Wait for ``stop``, the store's word that a job may be claimable, room for a
        claim the worker held back, or ``seconds``.

        The wake-ups take the idle poll out of an event's latency and out of a backlog's
        pace; the poll stays for backoffs that end and for stores that cannot tell
        (memory).
        """
        waits: list[asyncio.Future[bool]] = [asyncio.ensure_future(stop.wait())]
        if self._full or self._excluded:
            waits.append(asyncio.ensure_future(self._room.wait()))
        backend = backend_of(self.store)
        if isinstance(backend, WakesWorkers):
            waits.append(asyncio.ensure_future(backend.wait_for_jobs(seconds)))
        first = asyncio.FIRST_COMPLETED
        _, pending = await asyncio.wait(waits, timeout=seconds, return_when=first)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def run_until_idle(self, *, max_wait: float = 30.0) -> list[Outcome]:
        """Process jobs until none is runnable, none is in flight and no report fetch is
        still reading (tests, ``pull``).

        Jobs waiting for a later ``run_after``, and fetches still reading after their jobs
        are done, are waited for up to ``max_wait`` seconds overall; returns every outcome.
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
            if self._fetcher.running and time.monotonic() < deadline:
                # Its jobs got their sessions and are done; the rest of the answer is still
                # read (and its unrequested sessions counted) before the worker is idle.
                await asyncio.wait(
                    set(self._fetcher.running), timeout=self._engine.lease_seconds / 3
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
        self._room.clear()
        self._excluded = frozenset()
        self._full = self._enough_runnable()
        if self._full:
            return 0
        waiting = Counter(self._awaiting.values())
        excluded = frozenset(a for a, n in waiting.items() if n >= batch)
        jobs = await self.store.claim(
            self.owner,
            limit=batch,
            lease=self._engine.lease_seconds,
            now=self._clock(),
            exclude_appliances=excluded,
        )
        if not jobs:
            self._excluded = excluded
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
            if isinstance(answer, asyncio.Future):
                self._awaiting[job.id] = job.appliance_id
            entries = ledgers.get((job.appliance_id, job.lsid or ""))
            known = None if entries is None else of_integration(entries, job.integration)
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

    def _enough_runnable(self) -> bool:
        """Whether twice ``workers`` jobs are started and not waiting for their report
        fetch: the next batch is claimed only below that."""
        return len(self._inflight) - len(self._awaiting) >= 2 * self._engine.workers

    def _answered(self, appliance_id: str) -> None:
        """A job's report fetch answered: wake a claim loop that left ``appliance_id`` out
        for a whole batch waiting, once fewer wait."""
        if appliance_id in self._excluded:
            batch = self._engine.report_batch_size
            if sum(1 for a in self._awaiting.values() if a == appliance_id) < batch:
                self._room.set()

    def _inflight_done(self, task: asyncio.Task[Outcome]) -> None:
        # Every finished task is collected here, whatever the loop was awaiting then.
        self._inflight.discard(task)
        if self._full and not self._enough_runnable():
            self._room.set()
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
            if isinstance(answer, asyncio.Future):
                try:
                    # Shielded: one job cancelled must not cancel the answer that another
                    # job of its session (a survey) waits for too.
                    answer = await asyncio.shield(answer)
                finally:
                    self._awaiting.pop(job.id, None)
                    self._answered(job.appliance_id)
            rendering = self._render_ahead(job, answer)
            if rendering is not None:
                # Its outcome, a failure included, is the write's business, in the slot.
                await asyncio.wait([rendering])
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
        if self.services.render_pool is None or job.event_type != END:
            return None
        if not isinstance(answer, Fetched):  # done before, or no report asked for
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
        return asyncio.create_task(self.services.render(integration.name, session))

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
            note = await self._effects.process(
                job,
                report,
                asked_at=answer.asked_at if answer is not None else None,
                last=last,
                ahead=ahead,
            )
            return Finish(AttemptOutcome.DONE, error=note)
        except Skip as skip:
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
