"""A :class:`Store` seen through metrics: the engine's one call site for what it records.

:class:`MeteredStore` wraps the engine's store and counts, on the way through, what the
intake, the pollers and the workers write: events (by source and result), the latency
of every write, attempts and dead letters (by integration and error class) and new
ledger entries (deliveries). The workers' code stays free of metrics calls. Every
method is the wrapped store's; a backend's own extras are reached with :attr:`inner`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Collection, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

from rsbridge.engine.store.base import (
    ActivityBucket,
    Attempt,
    AttemptOutcome,
    AuditEntry,
    AuditFilter,
    ConsoleSignIn,
    EventFilter,
    Finish,
    Finished,
    IncomingEvent,
    Job,
    JobFilter,
    JobSpec,
    JobStats,
    LastFailure,
    LedgerEntry,
    LedgerKey,
    Lockout,
    PruneCounts,
    RecordResult,
    RetentionPolicy,
    SessionFilter,
    SessionRow,
    Store,
    StoredEvent,
)
from rsbridge.metrics import Metrics

__all__ = ["MeteredStore"]

T = TypeVar("T")


def effect_kind(effect: str) -> str:
    """An effect's kind as a label: ``survey:customer:0`` counts as ``survey``."""
    return effect.partition(":")[0]


class MeteredStore:
    """``inner`` with its writes and results counted into ``metrics``."""

    def __init__(self, inner: Store, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        # The integration of each job a claim handed out, until it is finished: finish()
        # gets only the job's id.
        # A job's lease may also expire and go to another owner: its entry is replaced.
        self._claimed: dict[int, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"MeteredStore({self.inner!r})"

    @asynccontextmanager
    async def _timed(self, operation: str) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.metrics.store_writes.labels(operation).observe(time.perf_counter() - started)

    async def _write(self, operation: str, call: Awaitable[T]) -> T:
        async with self._timed(operation):
            return await call

    async def open(self) -> None:
        """Open the wrapped store."""
        await self.inner.open()

    async def close(self) -> None:
        """Close the wrapped store."""
        await self.inner.close()

    async def record_event(
        self, event: IncomingEvent, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> RecordResult:
        """Record, counting the event by source and result."""
        result = await self._write("record_event", self.inner.record_event(event, jobs, now=now))
        outcome = "duplicate" if result.duplicate else "queued" if result.job_ids else "ignored"
        self.metrics.events.labels(event.source, outcome).inc()
        return result

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease: float,
        now: float | None = None,
        exclude_appliances: Collection[str] = (),
    ) -> list[Job]:
        """Claim, remembering each job's integration for :meth:`finish`."""
        jobs = await self._write(
            "claim",
            self.inner.claim(
                owner, limit=limit, lease=lease, now=now, exclude_appliances=exclude_appliances
            ),
        )
        for job in jobs:
            self._claimed[job.id] = (owner, job.integration)
        return jobs

    async def extend_lease(
        self, job_ids: Sequence[int], owner: str, lease: float, *, now: float | None = None
    ) -> None:
        """Extend, timed."""
        await self._write("extend_lease", self.inner.extend_lease(job_ids, owner, lease, now=now))

    async def finish(
        self,
        job_id: int,
        owner: str,
        finish: Finish,
        *,
        started_at: float,
        now: float | None = None,
    ) -> Finished:
        """Finish, counting the attempt (and the dead letter) when it was recorded, and
        the effects recorded with it that were new as deliveries."""
        held = await self._write(
            "finish", self.inner.finish(job_id, owner, finish, started_at=started_at, now=now)
        )
        for entry in held.recorded:
            self._delivered(entry)
        if not held:
            # Not this owner's any more (its lease expired and another worker of this
            # process may hold the job now): that worker's claim entry stays.
            return held
        claimed = self._claimed.pop(job_id, None)
        if claimed is None:
            return held
        integration = claimed[1]
        error_class = finish.error_class or ""
        self.metrics.attempts.labels(integration, finish.outcome.value, error_class).inc()
        if finish.outcome is AttemptOutcome.DEAD:
            self.metrics.dead_letters.labels(integration, error_class).inc()
        return held

    async def release(self, owner: str, *, now: float | None = None) -> int:
        """Release, timed; the released jobs are no longer followed."""
        released = await self._write("release", self.inner.release(owner, now=now))
        for job_id in [j for j, (holder, _) in self._claimed.items() if holder == owner]:
            del self._claimed[job_id]
        return released

    async def ledger_get(self, key: LedgerKey) -> LedgerEntry | None:
        """The wrapped store's answer."""
        return await self.inner.ledger_get(key)

    async def ledger_for_sessions(
        self, sessions: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], list[LedgerEntry]]:
        """The wrapped store's answer."""
        return await self.inner.ledger_for_sessions(sessions)

    async def ledger_put(self, entry: LedgerEntry) -> LedgerEntry:
        """Record an effect, counting it as a delivery when it is new."""
        kept = await self._write("ledger_put", self.inner.ledger_put(entry))
        if kept == entry:
            self._delivered(entry)
        return kept

    def _delivered(self, entry: LedgerEntry) -> None:
        self.metrics.deliveries.labels(entry.key.integration, effect_kind(entry.key.effect)).inc()

    async def ledger_for_session(self, appliance_id: str, lsid: str) -> list[LedgerEntry]:
        """The wrapped store's answer."""
        return await self.inner.ledger_for_session(appliance_id, lsid)

    async def get_watermark(self, name: str) -> float | None:
        """The wrapped store's answer."""
        return await self.inner.get_watermark(name)

    async def set_watermark(self, name: str, value: float) -> None:
        """Set, timed."""
        await self._write("set_watermark", self.inner.set_watermark(name, value))

    async def get_event(self, event_id: int) -> StoredEvent | None:
        """The wrapped store's answer."""
        return await self.inner.get_event(event_id)

    async def list_events(self, selection: EventFilter) -> list[StoredEvent]:
        """The wrapped store's answer."""
        return await self.inner.list_events(selection)

    async def get_job(self, job_id: int) -> Job | None:
        """The wrapped store's answer."""
        return await self.inner.get_job(job_id)

    async def list_jobs(self, selection: JobFilter) -> list[Job]:
        """The wrapped store's answer."""
        return await self.inner.list_jobs(selection)

    async def attempts(self, job_id: int) -> list[Attempt]:
        """The wrapped store's answer."""
        return await self.inner.attempts(job_id)

    async def retry_job(self, job_id: int, *, now: float | None = None) -> bool:
        """Retry, timed."""
        return await self._write("retry_job", self.inner.retry_job(job_id, now=now))

    async def replay_event(
        self, event_id: int, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> list[int]:
        """Replay, timed."""
        return await self._write("replay_event", self.inner.replay_event(event_id, jobs, now=now))

    async def counts(self) -> dict[str, int]:
        """The wrapped store's answer."""
        return await self.inner.counts()

    async def job_stats(self, *, now: float | None = None) -> list[JobStats]:
        """The wrapped store's answer."""
        return await self.inner.job_stats(now=now)

    async def last_failures(self) -> list[LastFailure]:
        """The wrapped store's answer."""
        return await self.inner.last_failures()

    async def add_sign_in(self, sign_in: ConsoleSignIn) -> None:
        """Record, timed."""
        await self._write("add_sign_in", self.inner.add_sign_in(sign_in))

    async def find_sign_in(self, digest: str, *, now: float | None = None) -> ConsoleSignIn | None:
        """The wrapped store's answer."""
        return await self.inner.find_sign_in(digest, now=now)

    async def end_sign_in(self, digest: str) -> bool:
        """End, timed."""
        return await self._write("end_sign_in", self.inner.end_sign_in(digest))

    async def sign_in_failed(
        self, name: str, *, window: float, limit: int, now: float | None = None
    ) -> Lockout | None:
        """Count, timed."""
        return await self._write(
            "sign_in_failed", self.inner.sign_in_failed(name, window=window, limit=limit, now=now)
        )

    async def check_lockout(self, name: str, *, now: float | None = None) -> Lockout | None:
        """Check, timed (a locked name's refusal is a write)."""
        return await self._write("check_lockout", self.inner.check_lockout(name, now=now))

    async def write_audit(
        self,
        actor: str,
        action: str,
        *,
        target: str = "",
        detail: str = "",
        remote: str = "",
        now: float | None = None,
    ) -> AuditEntry:
        """Write, timed."""
        return await self._write(
            "write_audit",
            self.inner.write_audit(
                actor, action, target=target, detail=detail, remote=remote, now=now
            ),
        )

    async def list_audit(self, selection: AuditFilter) -> list[AuditEntry]:
        """The wrapped store's answer."""
        return await self.inner.list_audit(selection)

    async def prune_console(
        self, before: float, *, limit: int, audit_before: float | None = None
    ) -> int:
        """Prune, timed."""
        pruned = self.inner.prune_console(before, limit=limit, audit_before=audit_before)
        return await self._write("prune_console", pruned)

    async def activity(self, since: float, until: float, step: float) -> list[ActivityBucket]:
        """The wrapped store's answer."""
        return await self.inner.activity(since, until, step)

    async def search_sessions(
        self, selection: SessionFilter, *, now: float | None = None
    ) -> list[SessionRow]:
        """The wrapped store's answer."""
        return await self.inner.search_sessions(selection, now=now)

    async def prune(self, policy: RetentionPolicy, *, limit: int) -> PruneCounts:
        """Prune, timed."""
        return await self._write("prune", self.inner.prune(policy, limit=limit))

    async def count_prunable(self, policy: RetentionPolicy) -> PruneCounts:
        """The wrapped store's answer."""
        return await self.inner.count_prunable(policy)
