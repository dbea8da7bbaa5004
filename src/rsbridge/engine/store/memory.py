"""An in-memory :class:`~rsbridge.engine.store.base.Store`, for tests of workers and intake.

Same semantics as the SQLite store (the contract suite runs against both), nothing
durable. Records are frozen dataclasses replaced on every change, so a caller never
sees one change under its feet.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import replace

from rsbridge.engine.store import console_sql
from rsbridge.engine.store.base import (
    ActivityBucket,
    Attempt,
    AttemptOutcome,
    EventFilter,
    EventStatus,
    Finish,
    Finished,
    IncomingEvent,
    Job,
    JobFilter,
    JobSpec,
    JobStats,
    JobStatus,
    LastFailure,
    LedgerEntry,
    LedgerKey,
    PruneCounts,
    RecordResult,
    RetentionPolicy,
    SessionFilter,
    SessionRow,
    StoredEvent,
)
from rsbridge.engine.store.memory_console import MemoryConsole

__all__ = ["MemoryStore"]

_UNFINISHED = (JobStatus.QUEUED, JobStatus.RUNNING)
_FINISH_STATUS = {
    AttemptOutcome.DONE: JobStatus.DONE,
    AttemptOutcome.DEAD: JobStatus.DEAD,
    AttemptOutcome.RETRY: JobStatus.QUEUED,
    AttemptOutcome.WAIT: JobStatus.QUEUED,
    AttemptOutcome.RELEASED: JobStatus.QUEUED,
}
_FAILED = (AttemptOutcome.RETRY, AttemptOutcome.DEAD)


def _clock(now: float | None) -> float:
    return time.time() if now is None else now


class MemoryStore(MemoryConsole):
    """The store in dicts, guarded by one :class:`asyncio.Lock`; lost on exit."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = asyncio.Lock()
        self._events: dict[int, StoredEvent] = {}
        self._by_dedup: dict[str, int] = {}
        self._jobs: dict[int, Job] = {}
        self._claimed_at: dict[int, float] = {}
        self._attempts: dict[int, list[Attempt]] = {}
        self._ledger: dict[LedgerKey, LedgerEntry] = {}
        self._watermarks: dict[str, float] = {}
        # Ids are never reused, also after pruning (as AUTOINCREMENT in SQLite).
        self._last_event_id = 0
        self._last_job_id = 0

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Nothing to flush; the data stays until the object goes."""

    # --- intake -----------------------------------------------------------------

    async def record_event(
        self, event: IncomingEvent, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> RecordResult:
        """Record ``event`` and queue ``jobs`` for it (see base)."""
        at = _clock(now)
        async with self._lock:
            existing = self._by_dedup.get(event.dedup_key)
            if existing is not None:
                stored = self._events[existing]
                self._events[existing] = replace(stored, deliveries=stored.deliveries + 1)
                return RecordResult(event_id=existing, duplicate=True)
            self._last_event_id += 1
            event_id = self._last_event_id
            self._events[event_id] = StoredEvent(
                id=event_id,
                received_at=at,
                appliance_id=event.appliance_id,
                event_type=event.event_type,
                source=event.source,
                dedup_key=event.dedup_key,
                status=EventStatus.ACCEPTED if jobs else EventStatus.IGNORED,
                deliveries=1,
                lsid=event.lsid,
                external_key=event.external_key,
                timestamp=event.timestamp,
                form=tuple(event.form),
            )
            self._by_dedup[event.dedup_key] = event_id
            job_ids = self._add_jobs(self._events[event_id], jobs, at)
            return RecordResult(event_id=event_id, duplicate=False, job_ids=job_ids)

    def _add_jobs(self, event: StoredEvent, jobs: Sequence[JobSpec], at: float) -> tuple[int, ...]:
        ids = []
        for spec in jobs:
            self._last_job_id += 1
            job_id = self._last_job_id
            self._jobs[job_id] = Job(
                id=job_id,
                event_id=event.id,
                integration=spec.integration,
                appliance_id=event.appliance_id,
                event_type=event.event_type,
                lsid=event.lsid,
                rank=spec.rank,
                status=JobStatus.QUEUED,
                attempts=0,
                run_after=at,
                created_at=at,
                updated_at=at,
            )
            ids.append(job_id)
        return tuple(ids)

    # --- workers ----------------------------------------------------------------

    def _record_attempt(
        self,
        job_id: int,
        owner: str,
        started_at: float,
        finished_at: float,
        outcome: AttemptOutcome,
        error: str | None,
    ) -> None:
        attempts = self._attempts.setdefault(job_id, [])
        attempts.append(
            Attempt(job_id, len(attempts) + 1, owner, started_at, finished_at, outcome, error)
        )

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease: float,
        now: float | None = None,
        exclude_appliances: Collection[str] = (),
    ) -> list[Job]:
        """Hand out up to ``limit`` runnable jobs to ``owner`` (see base)."""
        at = _clock(now)
        async with self._lock:
            unfinished = sorted(
                (job for job in self._jobs.values() if job.status in _UNFINISHED),
                key=lambda job: job.id,
            )
            # The (rank, id) of the first unfinished job of each session and integration.
            first: dict[tuple[str, str, str], tuple[int, int]] = {}
            for job in unfinished:
                if job.lsid is not None:
                    key = (job.appliance_id, job.lsid, job.integration)
                    first[key] = min(first.get(key, (job.rank, job.id)), (job.rank, job.id))
            # Sessions with a job at work under a live lease: none of their other jobs
            # is handed out meanwhile (a survey importing its session must not race a
            # session end recorded after it was claimed).
            busy = {
                (job.appliance_id, job.lsid, job.integration)
                for job in unfinished
                if job.lsid is not None
                and job.status is JobStatus.RUNNING
                and job.lease_until is not None
                and job.lease_until > at
            }
            claimed: list[Job] = []
            for job in unfinished:
                if len(claimed) >= limit:
                    break
                if job.status is JobStatus.QUEUED:
                    runnable = job.run_after <= at
                else:
                    runnable = job.lease_until is not None and job.lease_until <= at
                if job.lsid is not None:
                    key = (job.appliance_id, job.lsid, job.integration)
                    runnable = runnable and first[key] == (job.rank, job.id) and key not in busy
                if not runnable or job.appliance_id in exclude_appliances:
                    continue
                if job.status is JobStatus.RUNNING:
                    assert job.lease_owner is not None
                    self._record_attempt(
                        job.id,
                        job.lease_owner,
                        self._claimed_at.get(job.id, at),
                        at,
                        AttemptOutcome.EXPIRED,
                        f"lease expired at {job.lease_until}",
                    )
                job = replace(
                    job,
                    status=JobStatus.RUNNING,
                    lease_owner=owner,
                    lease_until=at + lease,
                    updated_at=at,
                )
                self._jobs[job.id] = job
                self._claimed_at[job.id] = at
                claimed.append(job)
            return claimed

    def _held(self, job_id: int, owner: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None or job.status is not JobStatus.RUNNING or job.lease_owner != owner:
            return None
        return job

    async def extend_lease(
        self, job_ids: Sequence[int], owner: str, lease: float, *, now: float | None = None
    ) -> None:
        """Push back the lease of jobs ``owner`` still holds; others are left alone."""
        at = _clock(now)
        async with self._lock:
            for job_id in job_ids:
                job = self._held(job_id, owner)
                if job is not None:
                    self._jobs[job_id] = replace(job, lease_until=at + lease, updated_at=at)

    async def finish(
        self,
        job_id: int,
        owner: str,
        finish: Finish,
        *,
        started_at: float,
        now: float | None = None,
    ) -> Finished:
        """End ``owner``'s claim on a job and record the attempt (see SQLiteStore.finish)."""
        status = _FINISH_STATUS.get(finish.outcome)
        if status is None:
            raise ValueError(f"a worker cannot finish a job as {finish.outcome.value}")
        at = _clock(now)
        async with self._lock:
            recorded = [entry for entry in finish.ledger if self._put(entry) is entry]
            job = self._held(job_id, owner)
            if job is None:
                return Finished(False, tuple(recorded))
            run_after = job.run_after
            if status is JobStatus.QUEUED:
                run_after = at if finish.run_after is None else finish.run_after
            self._jobs[job_id] = replace(
                job,
                status=status,
                attempts=job.attempts + (finish.outcome in _FAILED),
                run_after=run_after,
                # A success clears a stale error (its own note, if any, replaces it); the
                # other outcomes keep the last error when they bring none.
                last_error=finish.error
                if status is JobStatus.DONE or finish.error is not None
                else job.last_error,
                lease_owner=None,
                lease_until=None,
                updated_at=at,
            )
            self._claimed_at.pop(job_id, None)
            self._record_attempt(job_id, owner, started_at, at, finish.outcome, finish.error)
            return Finished(True, tuple(recorded))

    async def release(self, owner: str, *, now: float | None = None) -> int:
        """Re-queue every job ``owner`` holds, recording a RELEASED attempt for each."""
        at = _clock(now)
        async with self._lock:
            held = [job for job in self._jobs.values() if self._held(job.id, owner)]
            for job in held:
                self._jobs[job.id] = replace(
                    job, status=JobStatus.QUEUED, lease_owner=None, lease_until=None, updated_at=at
                )
                started = self._claimed_at.pop(job.id, at)
                self._record_attempt(job.id, owner, started, at, AttemptOutcome.RELEASED, None)
            return len(held)

    # --- ledger -----------------------------------------------------------------

    async def ledger_get(self, key: LedgerKey) -> LedgerEntry | None:
        """The effect recorded under ``key``, if any."""
        return self._ledger.get(key)

    async def ledger_for_sessions(
        self, sessions: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], list[LedgerEntry]]:
        """Every effect recorded for each of ``sessions``, oldest first."""
        return self._ledgers(sessions)

    def _ledgers(
        self, sessions: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], list[LedgerEntry]]:
        # Not ledger_for_sessions itself: a test's store that fails that read must still
        # answer ledger_for_session.
        found: dict[tuple[str, str], list[LedgerEntry]] = {s: [] for s in sessions}
        for key, entry in self._ledger.items():
            entries = found.get((key.appliance_id, key.lsid))
            if entries is not None:
                entries.append(entry)
        for entries in found.values():
            entries.sort(key=lambda entry: entry.created_at)  # stable: recording order
        return found

    async def ledger_put(self, entry: LedgerEntry) -> LedgerEntry:
        """Record an effect unless its key is recorded; return the entry that stands."""
        async with self._lock:
            stands = self._put(entry)
            return self._ledger[entry.key] if stands is entry else stands

    def _put(self, entry: LedgerEntry) -> LedgerEntry:
        """Record ``entry`` unless its key is recorded (caller holds the lock): ``entry``
        itself when it was new, else the entry that stands."""
        stands = self._ledger.get(entry.key)
        if stands is not None:
            return stands
        self._ledger[entry.key] = replace(entry, detail=dict(entry.detail))
        return entry

    async def ledger_for_session(self, appliance_id: str, lsid: str) -> list[LedgerEntry]:
        """Every effect recorded for a session, oldest first (ties: in recording order)."""
        return self._ledgers([(appliance_id, lsid)])[appliance_id, lsid]

    # --- pollers ----------------------------------------------------------------

    async def get_watermark(self, name: str) -> float | None:
        """The watermark ``name``, if any."""
        return self._watermarks.get(name)

    async def set_watermark(self, name: str, value: float) -> None:
        """Set watermark ``name``."""
        async with self._lock:
            self._watermarks[name] = value

    # --- operations -------------------------------------------------------------

    async def get_event(self, event_id: int) -> StoredEvent | None:
        """One event by id."""
        return self._events.get(event_id)

    async def list_events(self, selection: EventFilter) -> list[StoredEvent]:
        """Events matching ``selection``, newest first."""
        s = selection
        found = [
            event
            for event in reversed(self._events.values())
            if (s.appliance_id is None or event.appliance_id == s.appliance_id)
            and (s.lsid is None or event.lsid == s.lsid)
            and (s.event_type is None or event.event_type == s.event_type)
            and (s.status is None or event.status is s.status)
            and (s.before_id is None or event.id < s.before_id)
        ]
        return found[: max(s.limit, 0)]

    async def get_job(self, job_id: int) -> Job | None:
        """One job by id."""
        return self._jobs.get(job_id)

    async def list_jobs(self, selection: JobFilter) -> list[Job]:
        """Jobs matching ``selection``, newest first."""
        s = selection
        found = [
            job
            for job in reversed(self._jobs.values())
            if (s.status is None or job.status is s.status)
            and (s.integration is None or job.integration == s.integration)
            and (s.event_id is None or job.event_id == s.event_id)
            and (s.lsid is None or job.lsid == s.lsid)
            and (s.before_id is None or job.id < s.before_id)
            and (s.updated_since is None or job.updated_at >= s.updated_since)
        ]
        return found[: max(s.limit, 0)]

    async def attempts(self, job_id: int) -> list[Attempt]:
        """Every attempt at a job, in order."""
        return list(self._attempts.get(job_id, ()))

    async def retry_job(self, job_id: int, *, now: float | None = None) -> bool:
        """Re-queue a dead job now with its attempt count reset; False if it is not dead."""
        at = _clock(now)
        async with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.status is not JobStatus.DEAD:
                return False
            self._jobs[job_id] = replace(
                job, status=JobStatus.QUEUED, attempts=0, run_after=at, updated_at=at
            )
            return True

    async def replay_event(
        self, event_id: int, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> list[int]:
        """Queue new jobs for a recorded event; KeyError if there is none (see SQLiteStore)."""
        at = _clock(now)
        async with self._lock:
            event = self._events.get(event_id)
            if event is None:
                raise KeyError(f"no event {event_id} in the store")
            if jobs:
                self._events[event_id] = replace(event, status=EventStatus.ACCEPTED)
            return list(self._add_jobs(event, jobs, at))

    async def counts(self) -> dict[str, int]:
        """Jobs per :class:`JobStatus` value (zeros included) plus ``events`` and ``ignored``."""
        counts = {status.value: 0 for status in JobStatus}
        for job in self._jobs.values():
            counts[job.status.value] += 1
        counts["events"] = len(self._events)
        counts["ignored"] = sum(e.status is EventStatus.IGNORED for e in self._events.values())
        return counts

    async def job_stats(self, *, now: float | None = None) -> list[JobStats]:
        """Jobs counted per appliance and integration (see the base's docstring)."""
        at = _clock(now)
        groups: dict[tuple[str, str], list[Job]] = {}
        for job in self._jobs.values():
            groups.setdefault((job.appliance_id, job.integration), []).append(job)
        stats = []
        for (appliance_id, integration), jobs in sorted(groups.items()):
            by_status = Counter(j.status for j in jobs)
            waiting = sum(j.status is JobStatus.QUEUED and j.run_after > at for j in jobs)
            unfinished = [j.created_at for j in jobs if j.status in _UNFINISHED]
            done = [j.updated_at for j in jobs if j.status is JobStatus.DONE]
            stats.append(
                JobStats(
                    appliance_id,
                    integration,
                    queued=by_status[JobStatus.QUEUED] - waiting,
                    waiting=waiting,
                    running=by_status[JobStatus.RUNNING],
                    done=by_status[JobStatus.DONE],
                    dead=by_status[JobStatus.DEAD],
                    oldest_unfinished_at=min(unfinished, default=None),
                    last_done_at=max(done, default=None),
                )
            )
        return stats

    async def activity(self, since: float, until: float, step: float) -> list[ActivityBucket]:
        """Deliveries, failures and latency per bucket (see base and console_sql)."""
        failed = (
            a.finished_at
            for attempts in self._attempts.values()
            for a in attempts
            if a.outcome in _FAILED
        )
        return console_sql.activity_of(self._jobs.values(), failed, since, until, step)

    async def search_sessions(
        self, selection: SessionFilter, *, now: float | None = None
    ) -> list[SessionRow]:
        """Sessions per integration, newest first (see base and console_sql)."""
        jobs = list(self._jobs.values())
        received = {e.id: e.received_at for e in self._events.values()}
        return console_sql.search_in(jobs, self._ledger.values(), received, selection, _clock(now))

    async def last_failures(self) -> list[LastFailure]:
        """The newest RETRY or DEAD attempt per appliance and integration."""
        newest: dict[tuple[str, str], Attempt] = {}
        for job_id, attempts in self._attempts.items():
            job = self._jobs.get(job_id)
            if job is None:
                continue
            key = (job.appliance_id, job.integration)
            for attempt in attempts:
                if attempt.outcome in _FAILED and (
                    key not in newest or attempt.finished_at >= newest[key].finished_at
                ):
                    newest[key] = attempt
        return [
            LastFailure(appliance_id, integration, attempt.finished_at, attempt.error)
            for (appliance_id, integration), attempt in sorted(newest.items())
        ]

    # --- retention --------------------------------------------------------------

    def _prunable_events(self, policy: RetentionPolicy) -> list[int]:
        """Ids of the events ``policy`` allows to remove, oldest first."""
        jobs_of: dict[int, list[Job]] = {}
        for job in self._jobs.values():
            jobs_of.setdefault(job.event_id, []).append(job)
        found = []
        for event in self._events.values():
            jobs = jobs_of.get(event.id, [])
            if any(job.status in _UNFINISHED for job in jobs):
                continue
            finished = max([event.received_at, *(job.updated_at for job in jobs)])
            dead = any(job.status is JobStatus.DEAD for job in jobs)
            cutoff = policy.dead_before if dead else policy.finished_before
            if cutoff is not None and finished < cutoff:
                found.append(event.id)
        return sorted(found)

    def _prunable_sessions(
        self, policy: RetentionPolicy, leaving: set[int]
    ) -> list[tuple[str, str]]:
        """(appliance, lsid) of the sessions whose ledger entries ``policy`` allows to
        remove once the events ``leaving`` are gone."""
        if policy.ledger_before is None:
            return []
        newest: dict[tuple[str, str], float] = {}
        for key, entry in self._ledger.items():
            session = (key.appliance_id, key.lsid)
            newest[session] = max(newest.get(session, entry.created_at), entry.created_at)
        stored = {
            (e.appliance_id, e.lsid)
            for e in self._events.values()
            if e.lsid is not None and e.id not in leaving
        }
        return [
            session
            for session, created in newest.items()
            if created < policy.ledger_before and session not in stored
        ]

    def _ledger_of(self, sessions: set[tuple[str, str]]) -> list[LedgerKey]:
        return [k for k in self._ledger if (k.appliance_id, k.lsid) in sessions]

    async def prune(self, policy: RetentionPolicy, *, limit: int) -> PruneCounts:
        """Remove what ``policy`` allows, at most ``limit`` events and sessions (see base)."""
        async with self._lock:
            events = self._prunable_events(policy)[: max(limit, 0)]
            gone = set(events)
            jobs = [job.id for job in self._jobs.values() if job.event_id in gone]
            attempts = sum(len(self._attempts.get(job_id, ())) for job_id in jobs)
            for job_id in jobs:
                del self._jobs[job_id]
                self._attempts.pop(job_id, None)
                self._claimed_at.pop(job_id, None)
            for event_id in events:
                del self._by_dedup[self._events.pop(event_id).dedup_key]
            # After the events: a session whose last event went just now qualifies.
            sessions = set(self._prunable_sessions(policy, set())[: max(limit, 0)])
            keys = self._ledger_of(sessions)
            for key in keys:
                del self._ledger[key]
            return PruneCounts(len(events), len(jobs), attempts, len(keys))

    async def count_prunable(self, policy: RetentionPolicy) -> PruneCounts:
        """What :meth:`prune` would remove in all; removes nothing."""
        async with self._lock:
            gone = set(self._prunable_events(policy))
            jobs = [job.id for job in self._jobs.values() if job.event_id in gone]
            attempts = sum(len(self._attempts.get(job_id, ())) for job_id in jobs)
            sessions = set(self._prunable_sessions(policy, gone))
            return PruneCounts(len(gone), len(jobs), attempts, len(self._ledger_of(sessions)))
