"""The PostgreSQL backend of :class:`~rsbridge.engine.store.base.Store`: nodes share a database.

Why psycopg 3 (async, with ``psycopg_pool``) rather than asyncpg: psycopg is the driver
the PostgreSQL project documents and packages, it takes the same ``postgresql://`` URLs
and libpq options (``sslmode``, ``options``, service files, ``PG*`` variables) operators
already use, its pool checks connections and reconnects after a server restart, and it
receives LISTEN/NOTIFY notifications as an async iterator. asyncpg is faster on raw
row decoding, which this store does little of: its statements return a few rows each,
and the time goes into round trips and commits, which are the same for both.

How the contract holds across nodes:

* Every write is one transaction on a pooled connection (autocommit outside them), at
  READ COMMITTED. ``record_event`` inserts the event and its jobs together; a
  duplicate delivery meets the unique ``dedup_key`` and only counts itself.
* :meth:`PostgreSQLStore.claim` selects runnable jobs with ``FOR UPDATE SKIP LOCKED``
  and leases them in the same transaction: two nodes never get the same job, and rows
  being finished elsewhere are passed over. Per-session ordering is checked in that
  statement (see :data:`~rsbridge.engine.store.postgresql_sql.SELECT_CLAIMABLE`); as it
  reads other rows than it locks, claims take turns under a transaction-scoped advisory
  lock (one short transaction per batch of up to 100 jobs), so each sees the last.
* A lease is a time in the row: a node that dies (kill -9, lost network) leaves jobs
  whose lease expires, and the next claim anywhere takes them over, recording an
  EXPIRED attempt. The server's clock is not used: ``now`` comes from the caller, as in
  the other backends, so nodes need synchronised clocks (NTP), well within a lease.
* The ledger's primary key makes each effect once-only whichever node records it.
* Writes that may make a job claimable send ``NOTIFY rsbridge_jobs`` in their
  transaction; :meth:`PostgreSQLStore.wait_for_jobs` LISTENs on one dedicated
  connection so that idle workers on every node wake at once.

Migrations: ``migrations/postgresql/NNNN_*.sql``, applied by :meth:`PostgreSQLStore.open`
(and ``rsbridge store migrate``) under an advisory lock; a newer schema is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import replace
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from rsbridge.engine.store import console_sql
from rsbridge.engine.store import postgresql_budget as budget
from rsbridge.engine.store import postgresql_console as console
from rsbridge.engine.store import postgresql_search as search
from rsbridge.engine.store import postgresql_sql as sql
from rsbridge.engine.store import postgresql_stats as stats
from rsbridge.engine.store.base import (
    ActivityBucket,
    Attempt,
    AttemptOutcome,
    AuditEntry,
    AuditFilter,
    ConsoleSignIn,
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
    Lockout,
    PruneCounts,
    RecordResult,
    RetentionPolicy,
    SessionFilter,
    SessionRow,
    StoredEvent,
)
from rsbridge.engine.store.postgresql_node import NodeLinks
from rsbridge.engine.store.postgresql_retention import count_prunable, prune_step
from rsbridge.engine.store.postgresql_schema import advisory_key, check_schema, migrate
from rsbridge.engine.store.rows import attempt_from_row, job_from_row, ledger_key_params
from rsbridge.engine.store.urls import mask_url, scrub
from rsbridge.errors import ConfigurationError, StoreUnavailableError

__all__ = ["PostgreSQLStore"]


Cursor = AsyncCursor[tuple[Any, ...]]

CONNECT_TIMEOUT_S: Final = 10
# TCP keepalives on every connection, both ways: a node that vanishes without closing its
# socket (power loss, a network cut) loses its advisory locks (its poll lead) within about a
# minute instead of the operating system's two hours, and a node notices a dead server.
_CLIENT_KEEPALIVES: Final = {
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}
_SERVER_KEEPALIVES: Final = (
    "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
)


def with_keepalives(url: str) -> str:
    """``url`` as a connection string with the keepalive settings added (the URL's own
    ``options``, if any, kept in front of ours)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    options = " ".join(filter(None, [str(params.get("options") or ""), _SERVER_KEEPALIVES]))
    return psycopg.conninfo.make_conninfo(url, **_CLIENT_KEEPALIVES, options=options)


CHECK_AFTER_IDLE_S: Final = 2.0
"""A pooled connection idle longer than this is checked (one round trip) before use."""


class _IdleCheck:
    """The pool's ``check`` and ``reset`` callbacks: a connection back from use within the
    last :data:`CHECK_AFTER_IDLE_S` seconds is handed out unchecked.

    Checking every checkout cost a round trip per statement, about a third of the
    store's round trips in a backlog. A server restart or failover leaves connections
    idle for longer than that before the next use, so those are still replaced before
    use; one broken in between fails its statement as
    :class:`~rsbridge.errors.StoreUnavailableError` (retried) and the pool discards it.
    """

    def __init__(self) -> None:
        self._returned: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = (
            weakref.WeakKeyDictionary()
        )

    async def check(self, conn: AsyncConnection[Any]) -> None:
        returned = self._returned.get(conn)
        if returned is None or time.monotonic() - returned > CHECK_AFTER_IDLE_S:
            await AsyncConnectionPool.check_connection(conn)

    async def reset(self, conn: AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()


POOL_MIN: Final = 2
POOL_MAX: Final = 20
"""Enough for the default 8 workers, the intake's concurrent writes and the pollers."""
CLAIM_LOCK: Final = advisory_key("claim")
RETRIES: Final = 5
"""Attempts at a transaction the server aborted as a deadlock or serialization failure."""

# Outcomes that leave the job queued again, and those that use up an attempt.
REQUEUE_OUTCOMES: Final = frozenset(
    {AttemptOutcome.RETRY, AttemptOutcome.WAIT, AttemptOutcome.RELEASED}
)
FAILED_OUTCOMES: Final = frozenset({AttemptOutcome.RETRY, AttemptOutcome.DEAD})
FINISH_STATUS: Final = {
    AttemptOutcome.DONE: JobStatus.DONE,
    AttemptOutcome.DEAD: JobStatus.DEAD,
    AttemptOutcome.RETRY: JobStatus.QUEUED,
    AttemptOutcome.WAIT: JobStatus.QUEUED,
    AttemptOutcome.RELEASED: JobStatus.QUEUED,
}


class PostgreSQLStore:
    """The store in a PostgreSQL database, shared by any number of engine nodes.

    ``url`` is a libpq connection URL (``postgresql://user@host:5432/db?sslmode=...``);
    its password never appears in messages (:attr:`label`). A closed store can be
    opened again.
    """

    def __init__(
        self,
        url: str,
        *,
        min_connections: int = POOL_MIN,
        max_connections: int = POOL_MAX,
        migrate: bool = True,
    ) -> None:
        self.url = url.strip()
        self.migrate = migrate
        """Apply missing migrations on open; else refuse a database that lacks some."""
        self.label = mask_url(self.url)
        self._min = min_connections
        self._max = max(max_connections, min_connections)
        self._pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]] | None = None
        self._lifecycle = asyncio.Lock()
        self._links = NodeLinks(self.connect, self.label)

    def __repr__(self) -> str:
        return f"PostgreSQLStore({self.label!r})"

    # --- lifecycle --------------------------------------------------------------

    async def connect(self) -> AsyncConnection[tuple[Any, ...]]:
        """A new autocommit connection of its own (migrations, advisory locks, LISTEN).

        Raises :class:`~rsbridge.errors.ConfigurationError`, naming the database by its
        masked URL, when the server cannot be reached or refuses the login.
        """
        try:
            return await AsyncConnection.connect(
                with_keepalives(self.url), autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error as exc:
            # libpq's messages name host, port and user, never the password.
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            reason = scrub(reason, self.url)
            raise ConfigurationError(
                f"cannot connect to the store database {self.label}: {reason}"
            ) from None

    async def open(self) -> None:
        """Apply missing migrations, then open the connection pool.

        Raises :class:`~rsbridge.errors.ConfigurationError` when the database cannot be
        reached or was written by a newer rsbridge.
        """
        async with self._lifecycle:
            if self._pool is not None:
                return
            conn = await self.connect()
            try:
                if self.migrate:
                    await migrate(conn, self.label)
                else:
                    await check_schema(conn, self.label)
            finally:
                await conn.close()
            idle = _IdleCheck()
            pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]] = AsyncConnectionPool(
                with_keepalives(self.url),
                min_size=self._min,
                max_size=self._max,
                kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
                # A connection the server dropped (a restart, a failover) is replaced
                # before use instead of failing the first statement given to it.
                check=idle.check,
                reset=idle.reset,
                open=False,
                name="rsbridge-store",
            )
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
            self._pool = pool

    async def close(self) -> None:
        """Stop listening and close every connection; idempotent."""
        async with self._lifecycle:
            pool, self._pool = self._pool, None
            await self._links.close()
            if pool is not None:
                await pool.close()

    def _require_pool(self) -> AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]]:
        pool = self._pool
        if pool is None:
            raise RuntimeError(f"{self!r} is not open")
        return pool

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection[tuple[Any, ...]]]:
        """A pooled connection; a lost server becomes :class:`StoreUnavailableError`
        (retryable) rather than an unexpected error that would park the job."""
        pool = self._require_pool()
        try:
            async with pool.connection() as conn:
                yield conn
        except (
            psycopg.errors.DeadlockDetected,
            psycopg.errors.SerializationFailure,
            psycopg.errors.TransactionRollback,
        ):
            raise  # deadlock victims and serialization failures: _retrying's to handle
        except (psycopg.OperationalError, PoolTimeout) as exc:
            # The message names the database by its masked URL; libpq's text stays in the
            # chain (it names host and port, never the password).
            raise StoreUnavailableError(
                f"the store database {self.label} is unreachable ({type(exc).__name__})"
            ) from exc

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Cursor]:
        async with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    async def _retrying(self, attempt: Any) -> Any:
        """Run ``attempt()`` again when the server aborted it as a deadlock victim."""
        for n in range(RETRIES):
            try:
                return await attempt()
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if n == RETRIES - 1:
                    raise
                await asyncio.sleep(0.01 * (n + 1))
        raise AssertionError("unreachable")

    # --- wake-ups and leads (postgresql_node) ----------------------------------

    async def wait_for_jobs(self, within: float) -> bool:
        """Wait until any node may have queued a claimable job, at most ``within`` s;
        True when woken (LISTEN/NOTIFY, see :class:`NodeLinks`)."""
        self._require_pool()
        return await self._links.wait_for_jobs(within)

    async def lead(self, name: str) -> bool:
        """Take, or keep, the lead ``name`` among the nodes (see :meth:`NodeLinks.lead`)."""
        self._require_pool()
        return await self._links.lead(name)

    async def take_token_slot(self, account: str, slots: int) -> int | None:
        """Hold one of ``slots`` token slots of API account ``account`` for as long as
        this store is open (see :meth:`NodeLinks.take_slot`); None when all are held."""
        self._require_pool()
        return await self._links.take_slot(f"tokens:{account}", slots)

    async def keep_token_slots(self) -> dict[str, int | None]:
        """Take the token slots again if their connection was lost (see
        :meth:`NodeLinks.keep_slots`): the slot per account, None when none was free."""
        self._require_pool()
        held = await self._links.keep_slots()
        return {
            name.removeprefix("tokens:"): number
            for name, number in held.items()
            if name.startswith("tokens:")
        }

    # --- the shared appliance budget -------------------------------------------

    async def take_budget(
        self, account: str, windows: Sequence[tuple[float, int]], now: float
    ) -> tuple[int | None, float]:
        """Admit one call of ``account`` under every ``(seconds, limit)`` window, counted
        over all nodes: ``(call id, 0)``, or ``(None, seconds to wait)``."""
        key = advisory_key(f"budget:{account}")

        async def attempt() -> tuple[int | None, float]:
            async with self._transaction() as cur:
                return await budget.take(cur, key, account, windows, now)

        taken: tuple[int | None, float] = await self._retrying(attempt)
        return taken

    async def settle_budget(self, call_id: int, at: float) -> None:
        """Count call ``call_id`` from ``at`` (its answer) on, if that is later."""
        async with self._transaction() as cur:
            await budget.settle(cur, call_id, at)

    async def pause_budget(self, account: str, until: float) -> None:
        """Hold every node's calls of ``account`` until ``until``."""
        async with self._transaction() as cur:
            await budget.pause(cur, account, until)

    # --- intake -----------------------------------------------------------------

    async def record_event(
        self, event: IncomingEvent, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> RecordResult:
        """Durably record ``event`` and queue ``jobs`` for it, atomically (see base)."""
        at = time.time() if now is None else now
        specs = tuple(jobs)
        params: dict[str, Any] = {
            "received_at": at,
            "appliance_id": event.appliance_id,
            "event_type": event.event_type,
            "source": event.source,
            "dedup_key": event.dedup_key,
            "status": (EventStatus.ACCEPTED if specs else EventStatus.IGNORED).value,
            "lsid": event.lsid,
            "external_key": event.external_key,
            "timestamp": event.timestamp,
            "form": Jsonb([list(pair) for pair in event.form]),
        }
        params["integrations"] = [spec.integration for spec in specs]
        params["ranks"] = [spec.rank for spec in specs]
        row = await self._fetchone(sql.RECORD_EVENT, params)
        assert row is not None
        event_id, deliveries, job_ids = row[0], row[1], tuple(row[2])
        if deliveries > 1:
            return RecordResult(event_id=event_id, duplicate=True)
        return RecordResult(event_id=event_id, duplicate=False, job_ids=job_ids)

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
        """Hand out up to ``limit`` runnable jobs to ``owner`` (see base).

        Safe across nodes: the rows are locked ``FOR UPDATE SKIP LOCKED`` and leased in
        one transaction.
        """
        if limit <= 0:
            return []
        at = time.time() if now is None else now
        until = at + lease
        exclude = sorted(set(exclude_appliances))
        statement = sql.SELECT_CLAIMABLE.format(exclude=sql.EXCLUDE_APPLIANCES if exclude else "")
        params: dict[str, Any] = {"now": at, "limit": limit, "exclude": exclude}

        async def attempt() -> list[Job]:
            async with self._transaction() as cur:
                # Claims take turns (as under SQLite's write lock): the per-session checks
                # read other rows than the ones locked, and a claim committed by another
                # node after this statement's snapshot would otherwise go unseen (a late
                # session end handed out beside its survey, each on a node).
                await cur.execute(sql.CLAIM_TURN, (CLAIM_LOCK,))
                await cur.execute(statement, params)
                rows = await cur.fetchall()
                if not rows:
                    return []
                claimed: list[Job] = []
                for row in rows:
                    job = job_from_row(row)
                    if job.status is JobStatus.RUNNING:
                        assert job.lease_owner is not None
                        await _insert_attempt(
                            cur,
                            job.id,
                            job.lease_owner,
                            started_at=row[-1] if row[-1] is not None else at,
                            finished_at=at,
                            outcome=AttemptOutcome.EXPIRED,
                            error=f"lease expired at {job.lease_until}",
                        )
                    claimed.append(
                        replace(
                            job,
                            status=JobStatus.RUNNING,
                            lease_owner=owner,
                            lease_until=until,
                            updated_at=at,
                        )
                    )
                await cur.execute(
                    sql.CLAIM_JOBS,
                    {"owner": owner, "until": until, "now": at, "ids": [j.id for j in claimed]},
                )
                return claimed

        result: list[Job] = await self._retrying(attempt)
        return result

    async def extend_lease(
        self, job_ids: Sequence[int], owner: str, lease: float, *, now: float | None = None
    ) -> None:
        """Push back the lease of jobs ``owner`` still holds; others are left alone."""
        if not job_ids:
            return
        at = time.time() if now is None else now
        params = {"until": at + lease, "now": at, "ids": sorted(job_ids), "owner": owner}
        async with self._transaction() as cur:
            await cur.execute(sql.EXTEND_LEASE, params)

    async def finish(
        self,
        job_id: int,
        owner: str,
        finish: Finish,
        *,
        started_at: float,
        now: float | None = None,
    ) -> Finished:
        """End ``owner``'s claim on a job and record the attempt (see base and SQLiteStore)."""
        status = FINISH_STATUS.get(finish.outcome)
        if status is None:
            raise ValueError(f"a worker cannot finish a job as {finish.outcome.value}")
        at = time.time() if now is None else now
        run_after = None
        if finish.outcome in REQUEUE_OUTCOMES:
            run_after = at if finish.run_after is None else finish.run_after
        params: dict[str, Any] = {
            "status": status.value,
            "failed": int(finish.outcome in FAILED_OUTCOMES),
            "run_after": run_after,
            "error": finish.error,
            "now": at,
            "id": job_id,
            "owner": owner,
            "started_at": started_at,
            "outcome": finish.outcome.value,
        }
        recorded: tuple[LedgerEntry, ...] = ()
        if finish.ledger:
            params.update(_ledger_arrays(finish.ledger))
            row = await self._fetchone(sql.FINISH_JOB_WITH_LEDGER, params)
            if row is not None and row[2]:
                new = {tuple(key) for key in row[2]}
                recorded = tuple(e for e in finish.ledger if ledger_key_params(e.key) in new)
        else:
            row = await self._fetchone(sql.FINISH_JOB, params)
        finished = row is not None and row[0] == 1
        if finished:
            # A slot is free here: this node's idle workers claim again at once (other
            # nodes hear of it only when a job became claimable, see FINISH_JOB).
            self._links.wake_local()
        return Finished(finished, recorded)

    async def release(self, owner: str, *, now: float | None = None) -> int:
        """Re-queue every job ``owner`` holds, recording a RELEASED attempt for each."""
        at = time.time() if now is None else now

        async def attempt() -> int:
            async with self._transaction() as cur:
                await cur.execute(sql.RELEASE_HELD, {"owner": owner, "now": at})
                held = await cur.fetchall()
                for job_id, claimed_at in held:
                    started = at if claimed_at is None else claimed_at
                    await _insert_attempt(
                        cur, job_id, owner, started, at, AttemptOutcome.RELEASED, None
                    )
                if held:
                    await cur.execute(sql.NOTIFY)
                return len(held)

        count: int = await self._retrying(attempt)
        return count

    # --- ledger -----------------------------------------------------------------

    async def ledger_get(self, key: LedgerKey) -> LedgerEntry | None:
        """The effect recorded under ``key``, if any."""
        row = await self._fetchone(sql.SELECT_LEDGER, ledger_key_params(key))
        return None if row is None else sql.ledger_from_row(row)

    async def ledger_for_sessions(
        self, sessions: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], list[LedgerEntry]]:
        """Every effect recorded for each of ``sessions``, in one statement."""
        found: dict[tuple[str, str], list[LedgerEntry]] = {s: [] for s in sessions}
        if not found:
            return found
        appliances, lsids = (list(column) for column in zip(*found, strict=True))
        rows = await self._fetchall(sql.SELECT_LEDGER_FOR_SESSIONS, (appliances, lsids))
        for row in rows:
            entry = sql.ledger_from_row(row)
            found[entry.key.appliance_id, entry.key.lsid].append(entry)
        return found

    async def ledger_put(self, entry: LedgerEntry) -> LedgerEntry:
        """Record an effect unless its key is recorded; return the entry that stands."""
        key = ledger_key_params(entry.key)
        values = (*key, entry.ticket_id, entry.ref, entry.created_at, Jsonb(entry.detail))
        row = await self._fetchone(sql.PUT_LEDGER, values)
        assert row is not None
        return sql.ledger_from_row(row)

    async def ledger_for_session(self, appliance_id: str, lsid: str) -> list[LedgerEntry]:
        """Every effect recorded for a session, oldest first."""
        rows = await self._fetchall(sql.SELECT_LEDGER_FOR_SESSION, (appliance_id, lsid))
        return [sql.ledger_from_row(row) for row in rows]

    # --- pollers ----------------------------------------------------------------

    async def get_watermark(self, name: str) -> float | None:
        """The persisted watermark ``name``, if any."""
        row = await self._fetchone(sql.SELECT_WATERMARK, (name,))
        return None if row is None else float(row[0])

    async def set_watermark(self, name: str, value: float) -> None:
        """Persist watermark ``name``."""
        async with self._transaction() as cur:
            await cur.execute(sql.UPSERT_WATERMARK, (name, value, time.time()))

    # --- operations -------------------------------------------------------------

    # One statement reads in autocommit: no BEGIN and COMMIT round trips.

    async def _fetchone(self, statement: str, params: Any) -> tuple[Any, ...] | None:
        async with self._connection() as conn:
            cur = await conn.execute(statement, params)
            return await cur.fetchone()

    async def _fetchall(self, statement: str, params: Any) -> list[tuple[Any, ...]]:
        async with self._connection() as conn:
            cur = await conn.execute(statement, params)
            return await cur.fetchall()

    async def get_event(self, event_id: int) -> StoredEvent | None:
        """One event by id."""
        row = await self._fetchone(sql.SELECT_EVENT, (event_id,))
        return None if row is None else sql.event_from_row(row)

    async def list_events(self, selection: EventFilter) -> list[StoredEvent]:
        """Events matching ``selection``, newest first."""
        params: dict[str, Any] = {
            "appliance_id": selection.appliance_id,
            "lsid": selection.lsid,
            "event_type": selection.event_type,
            "status": None if selection.status is None else selection.status.value,
            "before_id": selection.before_id,
        }
        statement = sql.select_where(sql.SELECT_EVENTS, sql.EVENT_CONDITIONS, params)
        params["limit"] = max(selection.limit, 0)
        return [sql.event_from_row(row) for row in await self._fetchall(statement, params)]

    async def get_job(self, job_id: int) -> Job | None:
        """One job by id."""
        row = await self._fetchone(sql.SELECT_JOB, (job_id,))
        return None if row is None else job_from_row(row)

    async def list_jobs(self, selection: JobFilter) -> list[Job]:
        """Jobs matching ``selection``, newest first."""
        params: dict[str, Any] = {
            "status": None if selection.status is None else selection.status.value,
            "integration": selection.integration,
            "event_id": selection.event_id,
            "lsid": selection.lsid,
            "before_id": selection.before_id,
            "updated_since": selection.updated_since,
        }
        statement = sql.select_where(sql.SELECT_JOBS, sql.JOB_CONDITIONS, params)
        params["limit"] = max(selection.limit, 0)
        return [job_from_row(row) for row in await self._fetchall(statement, params)]

    async def attempts(self, job_id: int) -> list[Attempt]:
        """Every attempt at a job, in order."""
        rows = await self._fetchall(sql.SELECT_ATTEMPTS, (job_id,))
        return [attempt_from_row(row) for row in rows]

    async def retry_job(self, job_id: int, *, now: float | None = None) -> bool:
        """Re-queue a dead job now with its attempt count reset; False if it is not dead."""
        params = {"now": time.time() if now is None else now, "id": job_id}
        async with self._transaction() as cur:
            await cur.execute(sql.RETRY_DEAD_JOB, params)
            if cur.rowcount != 1:
                return False
            await cur.execute(sql.NOTIFY)
        return True

    async def replay_event(
        self, event_id: int, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> list[int]:
        """Queue new jobs for a recorded event (see base); KeyError for an unknown event."""
        at = time.time() if now is None else now
        specs = tuple(jobs)
        async with self._transaction() as cur:
            await cur.execute(sql.SELECT_EVENT_FOR_REPLAY, (event_id,))
            row = await cur.fetchone()
            if row is None:
                raise KeyError(f"no event {event_id} in the store")
            appliance_id, event_type, lsid = row
            job_ids = await _insert_jobs(cur, event_id, appliance_id, event_type, lsid, specs, at)
            if specs:
                await cur.execute(sql.MARK_EVENT_ACCEPTED, (event_id,))
                await cur.execute(sql.NOTIFY)
        return list(job_ids)

    async def counts(self) -> dict[str, int]:
        """Jobs per :class:`JobStatus` value (zeros included) plus ``events`` and ``ignored``."""
        counts = {status.value: 0 for status in JobStatus}
        async with self._transaction() as cur:
            await cur.execute(sql.COUNT_JOBS_BY_STATUS)
            for status, count in await cur.fetchall():
                counts[status] = count
            await cur.execute(sql.COUNT_EVENTS)
            row = await cur.fetchone()
            assert row is not None
            counts["events"], counts["ignored"] = row
        return counts

    async def job_stats(self, *, now: float | None = None) -> list[JobStats]:
        """Jobs counted per appliance and integration (see base)."""
        params = {"now": time.time() if now is None else now}
        return stats.job_stats_from_rows(await self._fetchall(stats.JOB_STATS, params))

    async def last_failures(self) -> list[LastFailure]:
        """The newest RETRY or DEAD attempt per appliance and integration (see base)."""
        return stats.last_failures_from_rows(await self._fetchall(stats.LAST_FAILURES, ()))

    # --- console (postgresql_console) --------------------------------------------

    async def add_sign_in(self, sign_in: ConsoleSignIn) -> None:
        """Record a sign-in; its user's failed attempts are forgotten."""
        async with self._transaction() as cur:
            await console.add_sign_in(cur, sign_in)

    async def find_sign_in(self, digest: str, *, now: float | None = None) -> ConsoleSignIn | None:
        """The live sign-in of ``digest``; an expired one is removed."""
        at = time.time() if now is None else now
        found = console.found_sign_in(await self._fetchone(console.SELECT_SIGN_IN, (digest,)))
        if found is not None and found.expires_at <= at:
            async with self._transaction() as cur:
                await cur.execute(console.DELETE_EXPIRED_SIGN_IN, (digest, at))
            return None
        return found

    async def end_sign_in(self, digest: str) -> bool:
        """Remove a sign-in; False if there was none."""
        async with self._transaction() as cur:
            await cur.execute(console.DELETE_SIGN_IN, (digest,))
            return cur.rowcount == 1

    async def sign_in_failed(
        self, name: str, *, window: float, limit: int, now: float | None = None
    ) -> Lockout | None:
        """Count a failed sign-in of ``name`` on every node's behalf (see the base)."""
        at = time.time() if now is None else now

        async def attempt() -> Lockout | None:
            async with self._transaction() as cur:
                return await console.sign_in_failed(cur, name, at, window, limit)

        lockout: Lockout | None = await self._retrying(attempt)
        return lockout

    async def check_lockout(self, name: str, *, now: float | None = None) -> Lockout | None:
        """The lock-out of ``name`` now, counting this refused attempt."""
        at = time.time() if now is None else now
        async with self._transaction() as cur:
            return await console.check_lockout(cur, name, at)

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
        """Append an entry to the audit log."""
        at = time.time() if now is None else now
        async with self._transaction() as cur:
            return await console.write_audit(cur, at, actor, action, (target, detail, remote))

    async def list_audit(self, selection: AuditFilter) -> list[AuditEntry]:
        """Audit entries matching ``selection``, newest first."""
        statement, params = console.list_audit_statement(selection)
        return console.audit_rows(await self._fetchall(statement, params))

    async def prune_console(
        self, before: float, *, limit: int, audit_before: float | None = None
    ) -> int:
        """Remove up to ``limit`` expired sign-ins, lapsed failure counts and (with
        ``audit_before``) old audit entries, of each."""
        async with self._transaction() as cur:
            return await console.prune_console(cur, before, limit, audit_before)

    async def activity(self, since: float, until: float, step: float) -> list[ActivityBucket]:
        """Deliveries, failures and latency per bucket (see base and console_sql)."""
        count = console_sql.bucket_count(since, until, step)
        params = {"since": since, "until": until, "step": step}
        async with self._transaction() as cur:
            await cur.execute(search.ACTIVITY_DONE, params)
            done = await cur.fetchall()
            await cur.execute(search.ACTIVITY_FAILED, params)
            failed = await cur.fetchall()
        return console_sql.buckets_from_counts(since, step, count, done, failed)

    async def search_sessions(
        self, selection: SessionFilter, *, now: float | None = None
    ) -> list[SessionRow]:
        """Sessions per integration, newest first (see base and console_sql)."""
        params = console_sql.search_params(selection, time.time() if now is None else now)
        rows = await self._fetchall(search.search_statement(selection), params)
        return [console_sql.session_row(row) for row in rows]

    # --- retention --------------------------------------------------------------

    async def prune(self, policy: RetentionPolicy, *, limit: int) -> PruneCounts:
        """Remove what ``policy`` allows, one bounded step (see base and postgresql_retention)."""

        async def attempt() -> PruneCounts:
            async with self._transaction() as cur:
                return await prune_step(cur, policy, limit)

        counts: PruneCounts = await self._retrying(attempt)
        return counts

    async def count_prunable(self, policy: RetentionPolicy) -> PruneCounts:
        """What :meth:`prune` would remove in all; a read, removing nothing."""
        async with self._transaction() as cur:
            return await count_prunable(cur, policy)


async def _insert_attempt(
    cur: Cursor,
    job_id: int,
    owner: str,
    started_at: float,
    finished_at: float,
    outcome: AttemptOutcome,
    error: str | None,
) -> None:
    await cur.execute(
        sql.INSERT_ATTEMPT,
        {
            "job_id": job_id,
            "owner": owner,
            "started_at": started_at,
            "finished_at": finished_at,
            "outcome": outcome.value,
            "error": error,
        },
    )


async def _insert_jobs(
    cur: Cursor,
    event_id: int,
    appliance_id: str,
    event_type: str,
    lsid: str | None,
    jobs: Sequence[JobSpec],
    now: float,
) -> tuple[int, ...]:
    ids: list[int] = []
    for spec in jobs:
        await cur.execute(
            sql.INSERT_JOB,
            (event_id, spec.integration, appliance_id, event_type, lsid, spec.rank, now, now, now),
        )
        row = await cur.fetchone()
        assert row is not None
        ids.append(int(row[0]))
    return tuple(ids)


def _ledger_arrays(entries: Sequence[LedgerEntry]) -> dict[str, list[Any]]:
    """The array parameters of :data:`sql.FINISH_JOB_WITH_LEDGER`: one per column."""
    keys = [ledger_key_params(e.key) for e in entries]
    return {
        "l_appliance": [k[0] for k in keys],
        "l_lsid": [k[1] for k in keys],
        "l_event": [k[2] for k in keys],
        "l_integration": [k[3] for k in keys],
        "l_effect": [k[4] for k in keys],
        "l_ticket": [e.ticket_id for e in entries],
        "l_ref": [e.ref for e in entries],
        "l_created": [e.created_at for e in entries],
        "l_detail": [Jsonb(e.detail) for e in entries],
    }
