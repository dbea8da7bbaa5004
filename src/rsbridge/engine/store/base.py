"""The durable store behind intake, workers and pollers: one interface, several backends.

Everything the engine must not lose lives here: the event log (every delivery the
intake acknowledged, and every session a poller found), the jobs derived from it (one
per event and integration), each attempt at a job, dead letters, the idempotency
ledger and the pollers' watermarks; and the admin console's sign-ins, failed sign-in
counts and audit log, so that they hold across restarts and nodes. A backend implements
:class:`Store`; the contract suite in ``tests/engine/store_contract.py`` is run against
each of them.

Per-session ordering is the store's job, so that it holds across worker processes: a
job is only handed out (:meth:`Store.claim`) when no unfinished job of the same
session and integration comes before it in ``(rank, id)`` order. Session-end jobs have
rank 0 and survey jobs rank 1, so a survey is applied after the end of its session
even when its event arrived first.

Times are UNIX seconds (floats) throughout; ``now`` parameters exist so that tests can
drive time. A claimed job carries a lease: a worker that dies (kill -9) leaves a lease
that expires, after which another claim hands the job out again.

Retention (:meth:`Store.prune`) removes what is no longer needed, never what still is:
events whose jobs have all finished, with their jobs and attempts; and, only when asked,
ledger entries of sessions the store holds no event of any more.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

EventSource = Literal["outbound", "poll", "pull", "replay"]


class EventStatus(enum.StrEnum):
    """What the intake did with an event."""

    ACCEPTED = "accepted"
    """At least one integration processes it: jobs were queued."""
    IGNORED = "ignored"
    """Authenticated, but no integration processes this event type: recorded only."""


class JobStatus(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    """Waiting to be claimed (a retry waits here too, until ``run_after``)."""
    RUNNING = "running"
    """Claimed by a worker that holds its lease."""
    DONE = "done"
    """Finished: its effects are in the ledger."""
    DEAD = "dead"
    """Given up (permanent error, or the attempt limit reached): a dead letter."""


class AttemptOutcome(enum.StrEnum):
    """How one attempt at a job ended."""

    DONE = "done"
    RETRY = "retry"
    """Failed with a retryable error; the job was re-queued with backoff."""
    DEAD = "dead"
    """Failed for good; the job is a dead letter."""
    WAIT = "wait"
    """Not failed, not ready (the report has no end time yet); does not use up an attempt."""
    RELEASED = "released"
    """Given back unfinished at shutdown; does not use up an attempt."""
    EXPIRED = "expired"
    """The worker's lease ran out (it died or hung); recorded when the job is reclaimed."""


RANK_LIVE = -1
"""Jobs of a live session (auto-create on join): before everything else of the session."""
RANK_SESSION_END = 0
RANK_SURVEY = 1


@dataclass(frozen=True, slots=True)
class IncomingEvent:
    """An event to record: from the appliance's outbound events or found by a poller.

    ``dedup_key`` identifies a delivery: the same event delivered twice has the same key
    and is recorded once. ``form`` holds every variable as received, in order.
    """

    appliance_id: str
    event_type: str
    source: EventSource
    dedup_key: str
    lsid: str | None = None
    external_key: str | None = None
    timestamp: int | None = None
    form: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to queue with an event: which integration handles it, at which rank."""

    integration: str
    rank: int = RANK_SESSION_END


@dataclass(frozen=True, slots=True)
class RecordResult:
    """What :meth:`Store.record_event` did."""

    event_id: int
    duplicate: bool
    """The ``dedup_key`` was already recorded; nothing new was queued."""
    job_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as recorded, with what became of it."""

    id: int
    received_at: float
    appliance_id: str
    event_type: str
    source: EventSource
    dedup_key: str
    status: EventStatus
    deliveries: int
    """How many times it was received (duplicates included)."""
    lsid: str | None = None
    external_key: str | None = None
    timestamp: int | None = None
    form: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Job:
    """One event to process for one integration."""

    id: int
    event_id: int
    integration: str
    appliance_id: str
    event_type: str
    lsid: str | None
    rank: int
    status: JobStatus
    attempts: int
    """Attempts that failed (WAIT, RELEASED and EXPIRED do not count)."""
    run_after: float
    created_at: float
    updated_at: float
    last_error: str | None = None
    lease_owner: str | None = None
    lease_until: float | None = None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try at a job, as recorded."""

    job_id: int
    number: int
    """1, 2, ... in the order the attempts ended."""
    owner: str
    started_at: float
    finished_at: float
    outcome: AttemptOutcome
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """How a worker ends its claim on a job (see :meth:`Store.finish`).

    ``DONE`` and ``DEAD`` are final. ``RETRY`` counts an attempt and re-queues the job at
    ``run_after``; ``WAIT`` and ``RELEASED`` re-queue it without counting one.
    """

    outcome: AttemptOutcome
    run_after: float | None = None
    error: str | None = None
    error_class: str | None = None
    """The failure's exception class name (for metrics); not stored."""
    ledger: tuple[LedgerEntry, ...] = ()
    """Effects the attempt delivered and has not recorded yet (the job's last one): the
    store records them in the same transaction as the finish, one round trip less per
    job. Recorded as :meth:`Store.ledger_put` would (a key recorded already keeps its
    entry), and also when ``owner`` no longer holds the job: the effect happened."""


@dataclass(frozen=True, slots=True)
class Finished:
    """What :meth:`Store.finish` did: true when ``owner`` held the job and it ended."""

    held: bool
    recorded: tuple[LedgerEntry, ...] = ()
    """The entries of :attr:`Finish.ledger` that were new (not recorded before): the
    deliveries, for metrics."""

    def __bool__(self) -> bool:
        return self.held


@dataclass(frozen=True, slots=True)
class LedgerKey:
    """What an effect is for: the idempotency key of the design."""

    appliance_id: str
    lsid: str
    event: str
    """The event (e.g. ``support_conference_end``) or ``ticket`` for the association."""
    integration: str
    effect: str
    """Which effect of the event (``session_report``, ``survey:customer:0``, ``ticket``...)."""

    def __str__(self) -> str:
        return f"{self.appliance_id}/{self.lsid}/{self.event}/{self.integration}/{self.effect}"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """An effect that happened: what was written where."""

    key: LedgerKey
    ticket_id: str
    ref: str
    """The record the effect wrote (a work-note id, a session record id, a file line...)."""
    created_at: float
    detail: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Selects events for :meth:`Store.list_events`; ``None`` fields select everything."""

    appliance_id: str | None = None
    lsid: str | None = None
    event_type: str | None = None
    status: EventStatus | None = None
    before_id: int | None = None
    """Only events with a smaller id (paging backwards, newest first)."""
    limit: int = 50


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Selects jobs for :meth:`Store.list_jobs`; ``None`` fields select everything."""

    status: JobStatus | None = None
    integration: str | None = None
    event_id: int | None = None
    lsid: str | None = None
    before_id: int | None = None
    """Only jobs with a smaller id (paging backwards, newest first)."""
    updated_since: float | None = None
    """Only jobs last changed at or after this time (UNIX seconds): for dead letters, those
    that died since."""
    limit: int = 50


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """What :meth:`Store.prune` may remove: cut-off times (UNIX seconds), not ages.

    An event is *finished* when none of its jobs is queued or running; it finished at
    the latest of its ``received_at`` and its jobs' ``updated_at``. A finished event
    whose jobs all ended done (or that had none: ignored) is removed, with its jobs and
    their attempts, when it finished before ``finished_before``. One with a dead letter
    among its jobs only when ``dead_before`` is set and it finished before that.

    The ledger entries of a session are removed, all together, when ``ledger_before`` is
    set, every one of them was recorded before it, and the store holds no event of that
    session (appliance and lsid) any more: a replay or a retry of a stored event always
    finds the effects it must not repeat.
    """

    finished_before: float
    dead_before: float | None = None
    ledger_before: float | None = None
    console_before: float | None = None
    """Console sign-ins that expired, and failed sign-in counts that lapsed, before this
    time go too (:meth:`Store.prune_console`); None keeps them."""
    audit_before: float | None = None
    """Console audit entries written before this time go too; None keeps them."""


@dataclass(frozen=True, slots=True)
class PruneCounts:
    """What :meth:`Store.prune` removed, or :meth:`Store.count_prunable` would."""

    events: int = 0
    jobs: int = 0
    attempts: int = 0
    ledger: int = 0
    """Ledger entries (of whole sessions)."""

    def __add__(self, other: PruneCounts) -> PruneCounts:
        return PruneCounts(
            self.events + other.events,
            self.jobs + other.jobs,
            self.attempts + other.attempts,
            self.ledger + other.ledger,
        )

    def __bool__(self) -> bool:
        return bool(self.events or self.jobs or self.attempts or self.ledger)


@dataclass(frozen=True, slots=True)
class JobStats:
    """The jobs of one appliance and integration, counted (see :meth:`Store.job_stats`)."""

    appliance_id: str
    integration: str
    queued: int = 0
    """Queued and runnable now."""
    waiting: int = 0
    """Queued for later: in backoff, or waiting for the appliance's report."""
    running: int = 0
    done: int = 0
    dead: int = 0
    oldest_unfinished_at: float | None = None
    """``created_at`` of the oldest queued or running job."""
    last_done_at: float | None = None
    """``updated_at`` of the newest done job: the last success."""


@dataclass(frozen=True, slots=True)
class LastFailure:
    """The newest failed attempt (retry or dead) of one appliance and integration."""

    appliance_id: str
    integration: str
    at: float
    error: str | None


@dataclass(frozen=True, slots=True)
class ConsoleSignIn:
    """A signed-in browser of the admin console, as stored.

    Only the SHA-256 ``digest`` of the cookie's token is kept: whoever reads the store
    cannot sign in with what they find there.
    """

    digest: str
    user: str
    csrf: str
    """The sign-in's CSRF token: every form of the console carries it back."""
    started_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class Lockout:
    """A user name locked after repeated failed sign-ins."""

    until: float
    refused: int
    """Sign-in attempts refused since the lock began (this one included)."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the console's audit log: who did what, on what, when, from where."""

    id: int
    at: float
    actor: str
    action: str
    target: str = ""
    detail: str = ""
    remote: str = ""
    """The browser's address (behind a trusted proxy: the forwarded client)."""


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Selects audit entries for :meth:`Store.list_audit`, newest first."""

    actor: str | None = None
    action: str | None = None
    before_id: int | None = None
    """Only entries with a smaller id (paging backwards)."""
    limit: int = 50


SessionState = Literal["queued", "waiting", "running", "done", "dead", "skipped"]
"""A session's state for one integration, from its jobs (see :class:`SessionRow`)."""

SESSION_STATES: tuple[SessionState, ...] = (
    "queued",
    "waiting",
    "running",
    "done",
    "dead",
    "skipped",
)


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Selects sessions for :meth:`Store.search_sessions`; ``None`` fields select all."""

    lsid: str | None = None
    ticket: str | None = None
    """A ticket id (the ledger's ``ticket_id``) or a ticket number (the ledger's detail)."""
    integration: str | None = None
    state: SessionState | None = None
    since: float | None = None
    """Only sessions whose row's job is for an event received at or after this time."""
    until: float | None = None
    """... and before this time."""
    before: int | None = None
    """Paging: only rows whose :attr:`SessionRow.key` is smaller (newest first)."""
    limit: int = 50


@dataclass(frozen=True, slots=True)
class SessionRow:
    """One session (appliance and lsid) for one integration, as the console lists it.

    ``state`` is the state of its most active job: running, then queued (runnable now),
    waiting (queued for later), dead, done (one job delivered), skipped (every finished job
    skipped the session).
    """

    key: int
    """The id of the job the row stands for (its newest, of the state searched for): the
    paging key."""
    appliance_id: str
    lsid: str
    integration: str
    state: SessionState
    at: float
    """When that job was queued."""
    last_error: str | None = None
    """The newest error of a job that has not succeeded (a done job's text is a note)."""
    ticket_id: str | None = None
    """The ticket the ledger says the session landed on, if any."""
    ticket_number: str | None = None


@dataclass(frozen=True, slots=True)
class ActivityBucket:
    """What happened in ``[start, start + step)`` (see :meth:`Store.activity`)."""

    start: float
    delivered: int = 0
    """Jobs that ended done in the bucket (skipped sessions not counted)."""
    failures: int = 0
    """Attempts that ended in RETRY or DEAD in the bucket."""
    latency_p50: float | None = None
    """Median seconds from a delivered job's queueing (the event's arrival) to done."""
    latency_p95: float | None = None


class Store(Protocol):
    """The engine's durable state. Every method is safe to call concurrently."""

    async def open(self) -> None:
        """Create or migrate the schema; connect."""

    async def close(self) -> None:
        """Flush and disconnect; idempotent."""

    # --- intake -----------------------------------------------------------------

    async def record_event(
        self, event: IncomingEvent, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> RecordResult:
        """Durably record ``event`` and queue ``jobs`` for it, atomically.

        When returning, the event and its jobs are on disk (a crash right after loses
        nothing). No jobs means the event is recorded as :attr:`EventStatus.IGNORED`. A
        ``dedup_key`` already recorded only counts a delivery: ``duplicate`` is true and
        no job is queued.
        """

    # --- workers ----------------------------------------------------------------

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        lease: float,
        now: float | None = None,
        exclude_appliances: Collection[str] = (),
    ) -> list[Job]:
        """Hand out up to ``limit`` runnable jobs to ``owner`` for ``lease`` seconds.

        Runnable: queued with ``run_after <= now``, or running with an expired lease (an
        EXPIRED attempt is recorded for it), first of its session and integration in
        ``(rank, id)`` order among unfinished jobs, and no other job of that session and
        integration running under a live lease (one at a time per session, even when an
        earlier-ranked job is recorded after a later one was handed out). Oldest first.
        Jobs of the appliances in ``exclude_appliances`` are left for later (a worker
        whose fetch from one of them is slow keeps claiming for the others).
        """

    async def extend_lease(
        self, job_ids: Sequence[int], owner: str, lease: float, *, now: float | None = None
    ) -> None:
        """Push back the lease of jobs ``owner`` holds (long-running work)."""

    async def finish(
        self,
        job_id: int,
        owner: str,
        finish: Finish,
        *,
        started_at: float,
        now: float | None = None,
    ) -> Finished:
        """End ``owner``'s claim on a job and record the attempt.

        The entries of ``finish.ledger`` are recorded in the same atomic step (both or
        neither are durable when a crash interrupts it). The result is false, nothing
        changed but the ledger, when ``owner`` no longer holds the job (its lease expired
        and someone else claimed it).
        """

    async def release(self, owner: str, *, now: float | None = None) -> int:
        """Give back every job ``owner`` holds (graceful shutdown); returns how many."""

    # --- ledger -----------------------------------------------------------------

    async def ledger_get(self, key: LedgerKey) -> LedgerEntry | None:
        """The effect recorded under ``key``, if any."""

    async def ledger_for_sessions(
        self, sessions: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], list[LedgerEntry]]:
        """Every effect recorded for each of ``sessions`` (appliance id, lsid), oldest
        first, as :meth:`ledger_for_session`: one read for many (a worker reads the
        ledger of a claimed batch at once). Every session asked for is a key of the
        answer, with an empty list when nothing is recorded."""

    async def ledger_put(self, entry: LedgerEntry) -> LedgerEntry:
        """Record an effect; if ``entry.key`` is already recorded, keep and return that one."""

    async def ledger_for_session(self, appliance_id: str, lsid: str) -> list[LedgerEntry]:
        """Every effect recorded for a session, oldest first."""

    # --- pollers ----------------------------------------------------------------

    async def get_watermark(self, name: str) -> float | None:
        """The persisted watermark ``name`` (a poller's last end time), if any."""

    async def set_watermark(self, name: str, value: float) -> None:
        """Persist watermark ``name``."""

    # --- operations (CLI, admin) ------------------------------------------------

    async def get_event(self, event_id: int) -> StoredEvent | None:
        """One event by id."""

    async def list_events(self, selection: EventFilter) -> list[StoredEvent]:
        """Events matching ``selection``, newest first."""

    async def get_job(self, job_id: int) -> Job | None:
        """One job by id."""

    async def list_jobs(self, selection: JobFilter) -> list[Job]:
        """Jobs matching ``selection``, newest first."""

    async def attempts(self, job_id: int) -> list[Attempt]:
        """Every attempt at a job, in order."""

    async def retry_job(self, job_id: int, *, now: float | None = None) -> bool:
        """Re-queue a dead job now with its attempt count reset; False if it is not dead."""

    async def replay_event(
        self, event_id: int, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> list[int]:
        """Queue new jobs for a recorded event (effects stay once-only via the ledger)."""

    async def counts(self) -> dict[str, int]:
        """Jobs per :class:`JobStatus` value plus ``events`` and ``ignored`` totals."""

    async def job_stats(self, *, now: float | None = None) -> list[JobStats]:
        """Jobs counted per appliance and integration (one entry per pair that has jobs),
        sorted by both; ``now`` splits queued jobs into runnable and waiting.

        Read at every metrics scrape: one aggregate over the jobs, nothing per job.
        """

    async def last_failures(self) -> list[LastFailure]:
        """Per appliance and integration, the newest attempt that ended in RETRY or DEAD
        (the last error ``rsbridge status`` shows), sorted by both."""

    # --- console: sign-ins, lock-out, audit log ---------------------------------

    async def add_sign_in(self, sign_in: ConsoleSignIn) -> None:
        """Record a console sign-in and forget its user's failed attempts (a success
        resets the count)."""

    async def find_sign_in(self, digest: str, *, now: float | None = None) -> ConsoleSignIn | None:
        """The live sign-in whose token has SHA-256 ``digest``; an expired one is removed."""

    async def end_sign_in(self, digest: str) -> bool:
        """Remove a sign-in (sign-out); False if there was none."""

    async def sign_in_failed(
        self, name: str, *, window: float, limit: int, now: float | None = None
    ) -> Lockout | None:
        """Count a failed sign-in of user name ``name`` (known or not); the lock-out if
        the name is locked now.

        Failures count in a row while each comes within ``window`` seconds of the one
        before; the ``limit``-th locks the name for ``window`` seconds. A failure while
        locked does not extend the lock. One row per name, forgotten (and removed by
        :meth:`prune_console`, or by later failures) once it no longer matters.
        """

    async def check_lockout(self, name: str, *, now: float | None = None) -> Lockout | None:
        """The lock-out of ``name`` if it is locked now, counting this refused attempt."""

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
        """Append an entry to the audit log; ids grow with time and are never reused."""

    async def list_audit(self, selection: AuditFilter) -> list[AuditEntry]:
        """Audit entries matching ``selection``, newest first (an indexed walk)."""

    async def prune_console(
        self, before: float, *, limit: int, audit_before: float | None = None
    ) -> int:
        """Remove up to ``limit`` sign-ins that expired, and as many lapsed failure
        counts, before ``before``; with ``audit_before``, also up to ``limit`` audit
        entries written before it, oldest first. How many rows went."""

    async def activity(self, since: float, until: float, step: float) -> list[ActivityBucket]:
        """Deliveries, failures and end-to-end latency in buckets of ``step`` seconds from
        ``since`` to ``until``: one :class:`ActivityBucket` per bucket, empty ones included.

        Aggregated by the store (indexed on the time columns; nothing per row comes back).
        Latency percentiles come from a histogram with bins a factor of sqrt(2) apart
        (:mod:`rsbridge.engine.store.console_sql`), so they are within that factor of the
        exact value. Raises ValueError for a step that is not positive or more than
        :data:`~rsbridge.engine.store.console_sql.MAX_BUCKETS` buckets.
        """

    async def search_sessions(
        self, selection: SessionFilter, *, now: float | None = None
    ) -> list[SessionRow]:
        """Sessions per integration matching ``selection``, newest first, at most
        ``selection.limit``; ``now`` tells queued from waiting. Every filter is an indexed
        lookup; the next page is ``before=<last row's key>``."""

    # --- retention --------------------------------------------------------------

    async def prune(self, policy: RetentionPolicy, *, limit: int) -> PruneCounts:
        """Remove what ``policy`` allows, in one atomic step of bounded size.

        At most ``limit`` events (oldest first, with their jobs and attempts) and the
        ledger entries of at most ``limit`` sessions. Call again until it removes
        nothing (see :func:`rsbridge.engine.retention.prune`): small steps keep the
        writer free for the intake in between.
        """

    async def count_prunable(self, policy: RetentionPolicy) -> PruneCounts:
        """What :meth:`prune` would remove in all, removing nothing (``--dry-run``)."""


def backend_of(store: Store) -> object:
    """The store that does the work behind a wrapper (``MeteredStore.inner``), else
    ``store``: the optional capabilities below (:class:`WakesWorkers`,
    :class:`LeadsPollers`, ``SharesBudgets``) are the backend's, so they are checked there."""
    return getattr(store, "inner", store)


@runtime_checkable
class WakesWorkers(Protocol):
    """A store that tells idle workers when a job may have become claimable."""

    async def wait_for_jobs(self, within: float) -> bool:
        """Wait until a job was queued, re-queued or freed (its successor may run), at
        most ``within`` seconds; True when woken. Spurious wake-ups are allowed."""


@runtime_checkable
class LeadsPollers(Protocol):
    """A store shared by several nodes, which elects one of them per named task."""

    async def lead(self, name: str) -> bool:
        """Take or keep the lead ``name``: True while this node (alone) holds it. A node
        that dies loses its leads, and another node's next call takes them over."""
