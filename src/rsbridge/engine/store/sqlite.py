"""The SQLite backend of :class:`~rsbridge.engine.store.base.Store`.

Design, for intake latency and throughput:

* One dedicated writer thread owns the only write connection. Callers put write
  operations on a queue and await a future; the writer takes everything pending, runs
  it in ONE ``BEGIN IMMEDIATE`` transaction (each operation inside its own SAVEPOINT,
  so one failing operation does not fail the others), commits, and only then resolves
  the futures. Fifty concurrent ``record_event`` calls therefore cost one fsync, and a
  call that returned is on disk.
* Reads run on a small thread pool, one read connection per thread. WAL lets them run
  while the writer writes; each read statement starts a fresh snapshot, and futures
  are resolved after COMMIT, so a read issued after a write returned sees it.
* ``BEGIN IMMEDIATE`` takes SQLite's write lock at the start of each group, which makes
  :meth:`SQLiteStore.claim` atomic across processes sharing the file.

The schema lives in ``migrations/sqlite/NNNN_name.sql`` (package data, loaded with
:mod:`importlib.resources`); :meth:`SQLiteStore.open` applies missing ones in order and
refuses a database written by a newer rsbridge.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import functools
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, TypeVar, cast

from rsbridge.engine.store import sqlite_console as console
from rsbridge.engine.store import sqlite_search
from rsbridge.engine.store.base import (
    ActivityBucket,
    Attempt,
    AttemptOutcome,
    AuditEntry,
    AuditFilter,
    ConsoleSignIn,
    EventFilter,
    EventSource,
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
from rsbridge.engine.store.rows import attempt_from_row, job_from_row, ledger_key_params
from rsbridge.engine.store.sqlite_retention import count_prunable, prune_step
from rsbridge.engine.store.sqlite_stats import job_stats, last_failures
from rsbridge.engine.store.wakeup import Wakeup
from rsbridge.errors import ConfigurationError

__all__ = ["Migration", "SQLiteStore", "WriterStats", "load_migrations"]

T = TypeVar("T")
Row = tuple[Any, ...]

MIGRATIONS_PACKAGE: Final = "rsbridge.engine.store"
MIGRATIONS_DIR: Final = "migrations"

BUSY_TIMEOUT_S: Final = 30.0
"""How long a connection waits for another process's write lock before failing."""
MAX_GROUP: Final = 1000
"""Most operations committed in one transaction, bounding the latency of the group."""
READ_THREADS: Final = 4

# --- SQL ------------------------------------------------------------------------
# The schema is in the migration files; these are the statements run against it.

CREATE_SCHEMA_MIGRATIONS: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
)"""
SELECT_SCHEMA_VERSIONS: Final = "SELECT version FROM schema_migrations"
SELECT_SCHEMA_VERSION: Final = "SELECT 1 FROM schema_migrations WHERE version = ?"
INSERT_SCHEMA_VERSION: Final = "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)"

PRAGMA_WAL: Final = "PRAGMA journal_mode = WAL"
PRAGMA_SYNCHRONOUS: Final = {
    "normal": "PRAGMA synchronous = NORMAL",
    "full": "PRAGMA synchronous = FULL",
}
PRAGMA_FOREIGN_KEYS: Final = "PRAGMA foreign_keys = ON"
PRAGMA_QUERY_ONLY: Final = "PRAGMA query_only = ON"

BEGIN_WRITE: Final = "BEGIN IMMEDIATE"
BEGIN_READ: Final = "BEGIN DEFERRED"
COMMIT: Final = "COMMIT"
ROLLBACK: Final = "ROLLBACK"
SAVEPOINT: Final = "SAVEPOINT op"
RELEASE_SAVEPOINT: Final = "RELEASE op"
ROLLBACK_SAVEPOINT: Final = "ROLLBACK TO op"

# A duplicate delivery only counts itself; RETURNING deliveries > 1 tells it apart.
INSERT_EVENT: Final = """
INSERT INTO events (received_at, appliance_id, event_type, source, dedup_key, status,
                    lsid, external_key, timestamp, form)
VALUES (:received_at, :appliance_id, :event_type, :source, :dedup_key, :status,
        :lsid, :external_key, :timestamp, :form)
ON CONFLICT (dedup_key) DO UPDATE SET deliveries = deliveries + 1
RETURNING id, deliveries"""
INSERT_JOB: Final = """
INSERT INTO jobs (event_id, integration, appliance_id, event_type, lsid, rank, status,
                  attempts, run_after, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)"""
SELECT_EVENT: Final = """
SELECT id, received_at, appliance_id, event_type, source, dedup_key, status, deliveries,
       lsid, external_key, timestamp, form
FROM events WHERE id = ?"""
SELECT_EVENT_FOR_REPLAY: Final = "SELECT appliance_id, event_type, lsid FROM events WHERE id = ?"
MARK_EVENT_ACCEPTED: Final = "UPDATE events SET status = 'accepted' WHERE id = ?"

# Runnable, first of its session and integration among unfinished jobs, and no other
# job of that session at work under a live lease (a survey that imports its session
# must not race an end event recorded after it was claimed). The
# ``status IN ('queued', 'running')`` terms are spelled exactly as in the partial
# indexes' WHERE clauses so that the planner may use them. INDEXED BY pins the walk in
# id order over the covering partial index: without statistics the planner prefers
# jobs_by_status, which reads the table for every row and is twice as slow when a
# large backlog waits in backoff (100k jobs: 7 ms instead of 13 ms per claim).
SELECT_CLAIMABLE: Final = """
SELECT j.id, j.event_id, j.integration, j.appliance_id, j.event_type, j.lsid, j.rank,
       j.status, j.attempts, j.run_after, j.created_at, j.updated_at, j.last_error,
       j.lease_owner, j.lease_until, j.claimed_at
FROM jobs AS j INDEXED BY jobs_unfinished
WHERE j.status IN ('queued', 'running')
  AND ((j.status = 'queued' AND j.run_after <= :now)
       OR (j.status = 'running' AND j.lease_until <= :now))
  AND (j.lsid IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs AS p
        WHERE p.status IN ('queued', 'running')
          AND p.appliance_id = j.appliance_id
          AND p.lsid = j.lsid
          AND p.integration = j.integration
          AND (p.rank < j.rank OR (p.rank = j.rank AND p.id < j.id)
               OR (p.status = 'running' AND p.lease_until > :now AND p.id <> j.id))))
  AND (:exclude = '' OR instr(:exclude, ',' || j.appliance_id || ',') = 0)
ORDER BY j.id
LIMIT :limit"""
CLAIM_JOB: Final = """
UPDATE jobs SET status = 'running', lease_owner = :owner, lease_until = :until,
                claimed_at = :now, updated_at = :now
WHERE id = :id"""
EXTEND_LEASE: Final = """
UPDATE jobs SET lease_until = :until, updated_at = :now
WHERE id = :id AND status = 'running' AND lease_owner = :owner"""
FINISH_JOB: Final = """
UPDATE jobs SET status = :status, attempts = attempts + :failed,
                run_after = COALESCE(:run_after, run_after),
                last_error = CASE WHEN :status = 'done' THEN :error
                                  ELSE COALESCE(:error, last_error) END,
                lease_owner = NULL, lease_until = NULL, claimed_at = NULL, updated_at = :now
WHERE id = :id AND status = 'running' AND lease_owner = :owner"""
SELECT_HELD_BY: Final = (
    "SELECT id, claimed_at FROM jobs WHERE status = 'running' AND lease_owner = ? ORDER BY id"
)
RELEASE_JOB: Final = """
UPDATE jobs SET status = 'queued', lease_owner = NULL, lease_until = NULL,
                claimed_at = NULL, updated_at = :now
WHERE id = :id"""
RETRY_DEAD_JOB: Final = """
UPDATE jobs SET status = 'queued', attempts = 0, run_after = :now, updated_at = :now
WHERE id = :id AND status = 'dead'"""
SELECT_JOB: Final = """
SELECT id, event_id, integration, appliance_id, event_type, lsid, rank, status, attempts,
       run_after, created_at, updated_at, last_error, lease_owner, lease_until
FROM jobs WHERE id = ?"""

INSERT_ATTEMPT: Final = """
INSERT INTO attempts (job_id, number, owner, started_at, finished_at, outcome, error)
VALUES (:job_id, (SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE job_id = :job_id),
        :owner, :started_at, :finished_at, :outcome, :error)"""
SELECT_ATTEMPTS: Final = """
SELECT job_id, number, owner, started_at, finished_at, outcome, error
FROM attempts WHERE job_id = ? ORDER BY number"""

SELECT_LEDGER: Final = """
SELECT appliance_id, lsid, event, integration, effect, ticket_id, ref, created_at, detail
FROM ledger
WHERE appliance_id = ? AND lsid = ? AND event = ? AND integration = ? AND effect = ?"""
INSERT_LEDGER: Final = """
INSERT INTO ledger (appliance_id, lsid, event, integration, effect, ticket_id, ref,
                    created_at, detail)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING"""
SELECT_LEDGER_FOR_SESSION: Final = """
SELECT appliance_id, lsid, event, integration, effect, ticket_id, ref, created_at, detail
FROM ledger WHERE appliance_id = ? AND lsid = ?
ORDER BY created_at, rowid"""

SELECT_WATERMARK: Final = "SELECT value FROM watermarks WHERE name = ?"
UPSERT_WATERMARK: Final = """
INSERT INTO watermarks (name, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"""

COUNT_JOBS_BY_STATUS: Final = "SELECT status, COUNT(*) FROM jobs GROUP BY status"
COUNT_EVENTS: Final = """
SELECT (SELECT COUNT(*) FROM events),
       (SELECT COUNT(*) FROM events WHERE status = 'ignored')"""

# list_events / list_jobs: WHERE is assembled from these fixed fragments only; values
# are always bound parameters.
SELECT_EVENTS: Final = """
SELECT id, received_at, appliance_id, event_type, source, dedup_key, status, deliveries,
       lsid, external_key, timestamp, form
FROM events"""
EVENT_CONDITIONS: Final = {
    "appliance_id": "appliance_id = :appliance_id",
    "lsid": "lsid = :lsid",
    "event_type": "event_type = :event_type",
    "status": "status = :status",
    "before_id": "id < :before_id",
}
SELECT_JOBS: Final = """
SELECT id, event_id, integration, appliance_id, event_type, lsid, rank, status, attempts,
       run_after, created_at, updated_at, last_error, lease_owner, lease_until
FROM jobs"""
JOB_CONDITIONS: Final = {
    "status": "status = :status",
    "integration": "integration = :integration",
    "event_id": "event_id = :event_id",
    "lsid": "lsid = :lsid",
    "before_id": "id < :before_id",
    "updated_since": "updated_at >= :updated_since",
}
NEWEST_FIRST: Final = " ORDER BY id DESC LIMIT :limit"

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


# --- migrations -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema migration file: ``NNNN_name.sql`` applies version ``NNNN``."""

    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        """The file's statements, one per ``execute`` (so they share one transaction).

        ``executescript`` would commit any open transaction first, so the file is split
        here; :func:`sqlite3.complete_statement` keeps ``;`` inside strings, comments and
        trigger bodies from splitting a statement.
        """
        statements: list[str] = []
        start = 0
        for index, char in enumerate(self.sql):
            if char == ";" and sqlite3.complete_statement(self.sql[start : index + 1]):
                statements.append(self.sql[start : index + 1].strip())
                start = index + 1
        rest = [line for line in self.sql[start:].splitlines() if line.strip()]
        if any(not line.strip().startswith("--") for line in rest):
            raise ValueError(f"migration {self.name} ends with an unterminated statement")
        return statements


@functools.cache
def load_migrations(dialect: str = "sqlite") -> tuple[Migration, ...]:
    """The migrations shipped for ``dialect`` (``sqlite``, ``postgresql``), by version.

    Versions run 1, 2, ... without gaps.
    """
    folder = resources.files(MIGRATIONS_PACKAGE) / MIGRATIONS_DIR / dialect
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        prefix = entry.name.partition("_")[0]
        if not prefix.isdigit():
            raise RuntimeError(f"migration file {entry.name} does not start with a number")
        found.append(Migration(int(prefix), entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        names = ", ".join(m.name for m in found)
        raise RuntimeError(f"migration versions must run 1, 2, ... without gaps: {names}")
    return tuple(found)


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a database whose schema is not exactly the one this rsbridge knows."""
    known = len(load_migrations())
    conn.execute(CREATE_SCHEMA_MIGRATIONS)
    applied = {row[0] for row in conn.execute(SELECT_SCHEMA_VERSIONS).fetchall()}
    newest = max(applied, default=0)
    if newest > known:
        _migrate(conn, path)  # raises the newer-rsbridge error
    if len(applied) < known:
        raise ConfigurationError(
            f"the store database {path} has schema version {newest}; this rsbridge needs "
            f"version {known}: run `rsbridge store migrate` (starting `rsbridge serve` "
            "applies it too)"
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Apply the migrations ``conn``'s database lacks, each in its own transaction."""
    migrations = load_migrations()
    known = migrations[-1].version if migrations else 0
    conn.execute(CREATE_SCHEMA_MIGRATIONS)
    applied = {row[0] for row in conn.execute(SELECT_SCHEMA_VERSIONS).fetchall()}
    newest = max(applied, default=0)
    if newest > known:
        raise ConfigurationError(
            f"the store database {path} has schema version {newest}, but this rsbridge"
            f" only knows versions up to {known}: it was written by a newer rsbridge."
            " Upgrade rsbridge, or point the store at another database file."
        )
    for migration in migrations:
        if migration.version in applied:
            continue
        conn.execute(BEGIN_WRITE)
        try:
            # Another process may have applied it since we looked: check under the lock.
            if conn.execute(SELECT_SCHEMA_VERSION, (migration.version,)).fetchone() is None:
                for statement in migration.statements():
                    conn.execute(statement)
                conn.execute(INSERT_SCHEMA_VERSION, (migration.version, time.time()))
            conn.execute(COMMIT)
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute(ROLLBACK)
            exc.add_note(f"while applying store migration {migration.name} to {path}")
            raise


# --- rows -------------------------------------------------------------------------


def _event_from_row(row: Row) -> StoredEvent:
    return StoredEvent(
        id=row[0],
        received_at=row[1],
        appliance_id=row[2],
        event_type=row[3],
        source=cast(EventSource, row[4]),
        dedup_key=row[5],
        status=EventStatus(row[6]),
        deliveries=row[7],
        lsid=row[8],
        external_key=row[9],
        timestamp=row[10],
        form=tuple((name, value) for name, value in json.loads(row[11])),
    )


def _ledger_values(entry: LedgerEntry) -> tuple[str | float, ...]:
    """The parameters of :data:`INSERT_LEDGER` for ``entry``."""
    return (
        *ledger_key_params(entry.key),
        entry.ticket_id,
        entry.ref,
        entry.created_at,
        json.dumps(entry.detail, sort_keys=True),
    )


def _ledger_from_row(row: Row) -> LedgerEntry:
    return LedgerEntry(
        key=LedgerKey(*row[:5]),
        ticket_id=row[5],
        ref=row[6],
        created_at=row[7],
        detail=dict(json.loads(row[8])),
    )


def _insert_attempt(
    conn: sqlite3.Connection,
    job_id: int,
    owner: str,
    started_at: float,
    finished_at: float,
    outcome: AttemptOutcome,
    error: str | None,
) -> None:
    conn.execute(
        INSERT_ATTEMPT,
        {
            "job_id": job_id,
            "owner": owner,
            "started_at": started_at,
            "finished_at": finished_at,
            "outcome": outcome.value,
            "error": error,
        },
    )


def _insert_jobs(
    conn: sqlite3.Connection,
    event_id: int,
    appliance_id: str,
    event_type: str,
    lsid: str | None,
    jobs: Sequence[JobSpec],
    now: float,
) -> tuple[int, ...]:
    ids: list[int] = []
    for spec in jobs:
        cursor = conn.execute(
            INSERT_JOB,
            (event_id, spec.integration, appliance_id, event_type, lsid, spec.rank, now, now, now),
        )
        ids.append(cast(int, cursor.lastrowid))
    return tuple(ids)


def _session_ledger(conn: sqlite3.Connection, appliance_id: str, lsid: str) -> list[LedgerEntry]:
    """Every effect recorded for a session, oldest first."""
    rows = conn.execute(SELECT_LEDGER_FOR_SESSION, (appliance_id, lsid)).fetchall()
    return [_ledger_from_row(row) for row in rows]


# --- the store --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WriterStats:
    """What the writer thread did so far (for tests, metrics and tuning)."""

    groups: int
    """Transactions committed (one fsync each with ``synchronous="full"``)."""
    operations: int
    """Write operations run in them (failed ones included)."""


_Op = Callable[[sqlite3.Connection], Any]
_Item = tuple[_Op, "cf.Future[Any]"]
_STOP: Final = object()


class SQLiteStore:
    """The store in one SQLite file (WAL mode), for one host and several processes.

    ``synchronous="full"`` (the default) makes every commit survive power loss;
    ``"normal"`` only survives the process being killed, and is faster on slow disks.
    A closed store can be opened again.
    """

    def __init__(
        self,
        path: Path,
        *,
        synchronous: Literal["normal", "full"] = "full",
        migrate: bool = True,
    ) -> None:
        if synchronous not in PRAGMA_SYNCHRONOUS:
            raise ConfigurationError(f"synchronous must be 'normal' or 'full', not {synchronous!r}")
        self.path = Path(path)
        self.synchronous = synchronous
        self.migrate = migrate
        """Create the file and apply missing migrations on open; else refuse both (an
        operator's command must not create a store or change its schema)."""
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._lifecycle = asyncio.Lock()  # open() and close() do not overlap
        self._writer: threading.Thread | None = None
        self._reader: cf.ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._read_conns_lock = threading.Lock()
        self._groups = 0
        self._operations = 0
        self._wakeup = Wakeup()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, synchronous={self.synchronous!r})"

    @property
    def writer_stats(self) -> WriterStats:
        """Groups committed and operations run by the writer thread so far."""
        return WriterStats(self._groups, self._operations)

    # --- lifecycle --------------------------------------------------------------

    async def open(self) -> None:
        """Create or migrate the schema, start the writer thread and the readers.

        Raises :class:`~rsbridge.errors.ConfigurationError` when the file cannot be
        opened as a database, or was written by a newer rsbridge.
        """
        async with self._lifecycle:
            if self._writer is None:
                await self._start()

    async def _start(self) -> None:
        # A queue per writer thread: a stop marker left by a failed open cannot stop
        # the next writer.
        self._queue = queue.SimpleQueue()
        ready: cf.Future[None] = cf.Future()
        writer = threading.Thread(
            target=self._writer_main,
            args=(ready, self._queue),
            name="rsbridge-store-writer",
            daemon=True,
        )
        writer.start()
        try:
            await asyncio.shield(asyncio.wrap_future(ready))
        except BaseException:
            # Failed, or cancelled while migrating: make sure the thread ends.
            self._queue.put(_STOP)
            await asyncio.to_thread(writer.join)
            raise
        self._writer = writer
        self._reader = cf.ThreadPoolExecutor(READ_THREADS, thread_name_prefix="rsbridge-store-read")

    async def close(self) -> None:
        """Let the writer commit what is queued, stop it, and close every connection."""
        async with self._lifecycle:
            await self._stop()

    async def _stop(self) -> None:
        writer, reader = self._writer, self._reader
        if writer is None:
            return
        self._writer = self._reader = None
        self._queue.put(_STOP)
        await asyncio.to_thread(writer.join)
        if reader is not None:
            await asyncio.to_thread(reader.shutdown, True)
        with self._read_conns_lock:
            conns, self._read_conns = self._read_conns, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    # --- the writer thread ------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            # isolation_level=None: no implicit transactions; we issue BEGIN ourselves.
            return sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open the store database {self.path}: {exc}") from exc

    def _create_owner_only(self) -> None:
        """Create the database file readable by its owner only, if it does not exist.

        SQLite would create it 0644 (less the umask), and gives its ``-wal`` and ``-shm``
        files the mode of the database file: created 0600 here, all three stay private
        (they hold chat transcripts and customer data). An existing file keeps its mode.
        """
        flags = os.O_RDONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        try:
            os.close(os.open(self.path, flags, 0o600))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot open the store database {self.path}: {exc.strerror}"
            ) from exc

    def _writer_main(self, ready: cf.Future[None], jobs: queue.SimpleQueue[_Item | object]) -> None:
        conn: sqlite3.Connection | None = None
        try:
            if self.migrate:
                self._create_owner_only()
            elif not self.path.exists():
                raise ConfigurationError(
                    f"there is no store database at {self.path}: check [engine] store, or "
                    "create it with `rsbridge store migrate` (`rsbridge serve` does too)"
                )
            conn = self._connect()
            try:
                mode = conn.execute(PRAGMA_WAL).fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise ConfigurationError(
                    f"cannot use {self.path} as the store database: {exc}"
                ) from exc
            if str(mode).lower() != "wal":
                raise ConfigurationError(
                    f"the store database {self.path} cannot use WAL mode (got {mode!r});"
                    " put it on a local file system"
                )
            conn.execute(PRAGMA_SYNCHRONOUS[self.synchronous])
            conn.execute(PRAGMA_FOREIGN_KEYS)
            if self.migrate:
                _migrate(conn, self.path)
            else:
                _check_schema(conn, self.path)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            ready.set_exception(exc)
            return
        ready.set_result(None)
        try:
            self._serve(conn, jobs)
        finally:
            conn.close()
            _fail_pending(jobs, RuntimeError(f"{self!r} is closed"))

    def _serve(self, conn: sqlite3.Connection, jobs: queue.SimpleQueue[_Item | object]) -> None:
        """Run groups until the stop marker; everything queued before it is committed."""
        while True:
            item = jobs.get()
            group: list[_Item] = []
            stop = False
            while True:
                if item is _STOP:
                    stop = True
                    break
                group.append(cast(_Item, item))
                if len(group) >= MAX_GROUP:
                    break
                try:
                    item = jobs.get_nowait()
                except queue.Empty:
                    break
            if group:
                self._run_group(conn, group)
            if stop:
                return

    def _run_group(self, conn: sqlite3.Connection, group: list[_Item]) -> None:
        # A caller cancelled before its turn is dropped; after this, cancelling no
        # longer stops the operation (it commits, the caller just does not hear of it).
        live = [(op, future) for op, future in group if future.set_running_or_notify_cancel()]
        if not live:
            return
        outcomes: list[tuple[cf.Future[Any], bool, Any]] = []
        try:
            conn.execute(BEGIN_WRITE)
            for op, future in live:
                conn.execute(SAVEPOINT)
                try:
                    value = op(conn)
                except Exception as exc:
                    if not conn.in_transaction:
                        # SQLite rolled back the whole transaction (disk full, I/O
                        # error): the group's earlier operations are lost with it.
                        raise
                    conn.execute(ROLLBACK_SAVEPOINT)
                    conn.execute(RELEASE_SAVEPOINT)
                    outcomes.append((future, False, exc))
                else:
                    conn.execute(RELEASE_SAVEPOINT)
                    outcomes.append((future, True, value))
            conn.execute(COMMIT)
        except Exception as exc:
            # Nothing of the group is on disk: every caller hears of the failure.
            if conn.in_transaction:
                conn.execute(ROLLBACK)
            self._operations += len(live)
            for _, future in live:
                future.set_exception(exc)
            return
        self._groups += 1
        self._operations += len(live)
        for future, ok, value in outcomes:
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    async def wait_for_jobs(self, within: float) -> bool:
        """Wait until this process queued or freed a job, at most ``within`` seconds.

        In-process only: another process writing the same file does not wake it.
        """
        return await self._wakeup.wait(within)

    async def _write_and_wake(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`_write`, then wake idle workers: a job may have become claimable."""
        result = await self._write(op)
        self._wakeup.notify()
        return result

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in the writer's next group; return once it is committed."""
        writer = self._writer
        if writer is None or not writer.is_alive():
            raise RuntimeError(f"{self!r} is not open")
        future: cf.Future[T] = cf.Future()
        self._queue.put((op, future))
        return await asyncio.wrap_future(future)

    # --- reads ------------------------------------------------------------------

    def _read_conn(self) -> sqlite3.Connection:
        conn = cast(sqlite3.Connection | None, getattr(self._local, "conn", None))
        if conn is None:
            conn = self._connect()
            conn.execute(PRAGMA_QUERY_ONLY)
            self._local.conn = conn
            with self._read_conns_lock:
                self._read_conns.append(conn)
        return conn

    def _run_read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._read_conn()
        # One read transaction: every statement of ``op`` sees the same snapshot.
        conn.execute(BEGIN_READ)
        try:
            return op(conn)
        finally:
            conn.execute(COMMIT)

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        reader = self._reader
        if reader is None:
            raise RuntimeError(f"{self!r} is not open")
        return await asyncio.get_running_loop().run_in_executor(reader, self._run_read, op)

    # --- intake -----------------------------------------------------------------

    async def record_event(
        self, event: IncomingEvent, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> RecordResult:
        """Durably record ``event`` and queue ``jobs`` for it, atomically (see base)."""
        at = time.time() if now is None else now
        specs = tuple(jobs)
        params = {
            "received_at": at,
            "appliance_id": event.appliance_id,
            "event_type": event.event_type,
            "source": event.source,
            "dedup_key": event.dedup_key,
            "status": (EventStatus.ACCEPTED if specs else EventStatus.IGNORED).value,
            "lsid": event.lsid,
            "external_key": event.external_key,
            "timestamp": event.timestamp,
            "form": json.dumps([list(pair) for pair in event.form]),
        }

        def op(conn: sqlite3.Connection) -> RecordResult:
            event_id, deliveries = conn.execute(INSERT_EVENT, params).fetchall()[0]
            if deliveries > 1:
                return RecordResult(event_id=event_id, duplicate=True)
            job_ids = _insert_jobs(
                conn, event_id, event.appliance_id, event.event_type, event.lsid, specs, at
            )
            return RecordResult(event_id=event_id, duplicate=False, job_ids=job_ids)

        return await self._write_and_wake(op)

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

        Atomic across processes: the selection and the update run under SQLite's write
        lock. A caller cancelled while its claim runs leaves the jobs leased to
        ``owner`` until the lease expires.
        """
        if limit <= 0:
            return []
        at = time.time() if now is None else now
        until = at + lease
        # Appliance ids hold no comma (config: letters, digits, '.', '_'): ",a,b," is exact.
        exclude = f",{','.join(exclude_appliances)}," if exclude_appliances else ""

        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                SELECT_CLAIMABLE, {"now": at, "limit": limit, "exclude": exclude}
            ).fetchall()
            claimed: list[Job] = []
            for row in rows:
                job = job_from_row(row)
                if job.status is JobStatus.RUNNING:
                    assert job.lease_owner is not None
                    _insert_attempt(
                        conn,
                        job.id,
                        job.lease_owner,
                        started_at=row[-1] if row[-1] is not None else at,
                        finished_at=at,
                        outcome=AttemptOutcome.EXPIRED,
                        error=f"lease expired at {job.lease_until}",
                    )
                conn.execute(CLAIM_JOB, {"owner": owner, "until": until, "now": at, "id": job.id})
                claimed.append(
                    replace(
                        job,
                        status=JobStatus.RUNNING,
                        lease_owner=owner,
                        lease_until=until,
                        updated_at=at,
                    )
                )
            return claimed

        return await self._write(op)

    async def extend_lease(
        self, job_ids: Sequence[int], owner: str, lease: float, *, now: float | None = None
    ) -> None:
        """Push back the lease of jobs ``owner`` still holds; others are left alone."""
        at = time.time() if now is None else now
        params = [{"until": at + lease, "now": at, "id": i, "owner": owner} for i in job_ids]
        if not params:
            return

        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(EXTEND_LEASE, params)

        await self._write(op)

    async def finish(
        self,
        job_id: int,
        owner: str,
        finish: Finish,
        *,
        started_at: float,
        now: float | None = None,
    ) -> Finished:
        """End ``owner``'s claim on a job and record the attempt (see base).

        ``RETRY`` and ``DEAD`` count an attempt; ``RETRY``, ``WAIT`` and ``RELEASED``
        re-queue the job at ``finish.run_after`` (default: now). A given
        ``finish.error`` becomes the job's ``last_error``. ``EXPIRED`` is not a way to
        finish (ValueError): the store records it itself. The entries of
        ``finish.ledger`` are recorded in the same transaction, whoever holds the job.
        """
        status = FINISH_STATUS.get(finish.outcome)
        if status is None:
            raise ValueError(f"a worker cannot finish a job as {finish.outcome.value}")
        at = time.time() if now is None else now
        run_after = None
        if finish.outcome in REQUEUE_OUTCOMES:
            run_after = at if finish.run_after is None else finish.run_after
        params = {
            "status": status.value,
            "failed": int(finish.outcome in FAILED_OUTCOMES),
            "run_after": run_after,
            "error": finish.error,
            "now": at,
            "id": job_id,
            "owner": owner,
        }

        ledger = [(entry, _ledger_values(entry)) for entry in finish.ledger]

        def op(conn: sqlite3.Connection) -> Finished:
            recorded = tuple(
                entry for entry, values in ledger if conn.execute(INSERT_LEDGER, values).rowcount
            )
            if conn.execute(FINISH_JOB, params).rowcount != 1:
                return Finished(False, recorded)
            _insert_attempt(conn, job_id, owner, started_at, at, finish.outcome, finish.error)
            return Finished(True, recorded)

        return await self._write_and_wake(op)

    async def release(self, owner: str, *, now: float | None = None) -> int:
        """Re-queue every job ``owner`` holds, recording a RELEASED attempt for each."""
        at = time.time() if now is None else now

        def op(conn: sqlite3.Connection) -> int:
            held = conn.execute(SELECT_HELD_BY, (owner,)).fetchall()
            for job_id, claimed_at in held:
                conn.execute(RELEASE_JOB, {"now": at, "id": job_id})
                started = at if claimed_at is None else claimed_at
                _insert_attempt(conn, job_id, owner, started, at, AttemptOutcome.RELEASED, None)
            return len(held)

        return await self._write_and_wake(op)

    # --- ledger -----------------------------------------------------------------

    async def ledger_get(self, key: LedgerKey) -> LedgerEntry | None:
        """The effect recorded under ``key``, if any."""
        params = ledger_key_params(key)

        def op(conn: sqlite3.Connection) -> LedgerEntry | None:
            row = conn.execute(SELECT_LEDGER, params).fetchone()
            return None if row is None else _ledger_from_row(row)

        return await self._read(op)

    async def ledger_for_sessions(
        self, sessions: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], list[LedgerEntry]]:
        """Every effect recorded for each of ``sessions`` (an index lookup per session in
        one read: no round trips to save on SQLite, but one trip to the reader thread)."""
        wanted = list(dict.fromkeys(sessions))

        def op(conn: sqlite3.Connection) -> dict[tuple[str, str], list[LedgerEntry]]:
            return {session: _session_ledger(conn, *session) for session in wanted}

        return await self._read(op)

    async def ledger_put(self, entry: LedgerEntry) -> LedgerEntry:
        """Record an effect unless its key is recorded; return the entry that stands."""
        key = ledger_key_params(entry.key)
        values = _ledger_values(entry)

        def op(conn: sqlite3.Connection) -> LedgerEntry:
            conn.execute(INSERT_LEDGER, values)
            return _ledger_from_row(conn.execute(SELECT_LEDGER, key).fetchone())

        return await self._write(op)

    async def ledger_for_session(self, appliance_id: str, lsid: str) -> list[LedgerEntry]:
        """Every effect recorded for a session, oldest first."""

        return await self._read(lambda conn: _session_ledger(conn, appliance_id, lsid))

    # --- pollers ----------------------------------------------------------------

    async def get_watermark(self, name: str) -> float | None:
        """The persisted watermark ``name``, if any."""

        def op(conn: sqlite3.Connection) -> float | None:
            row = conn.execute(SELECT_WATERMARK, (name,)).fetchone()
            return None if row is None else cast(float, row[0])

        return await self._read(op)

    async def set_watermark(self, name: str, value: float) -> None:
        """Persist watermark ``name``."""
        params = (name, value, time.time())

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(UPSERT_WATERMARK, params)

        await self._write(op)

    # --- operations -------------------------------------------------------------

    async def get_event(self, event_id: int) -> StoredEvent | None:
        """One event by id."""

        def op(conn: sqlite3.Connection) -> StoredEvent | None:
            row = conn.execute(SELECT_EVENT, (event_id,)).fetchone()
            return None if row is None else _event_from_row(row)

        return await self._read(op)

    async def list_events(self, selection: EventFilter) -> list[StoredEvent]:
        """Events matching ``selection``, newest first."""
        params: dict[str, Any] = {
            "appliance_id": selection.appliance_id,
            "lsid": selection.lsid,
            "event_type": selection.event_type,
            "status": None if selection.status is None else selection.status.value,
            "before_id": selection.before_id,
        }
        sql = _select_where(SELECT_EVENTS, EVENT_CONDITIONS, params)
        params["limit"] = max(selection.limit, 0)

        def op(conn: sqlite3.Connection) -> list[StoredEvent]:
            return [_event_from_row(row) for row in conn.execute(sql, params).fetchall()]

        return await self._read(op)

    async def get_job(self, job_id: int) -> Job | None:
        """One job by id."""

        def op(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(SELECT_JOB, (job_id,)).fetchone()
            return None if row is None else job_from_row(row)

        return await self._read(op)

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
        sql = _select_where(SELECT_JOBS, JOB_CONDITIONS, params)
        params["limit"] = max(selection.limit, 0)

        def op(conn: sqlite3.Connection) -> list[Job]:
            return [job_from_row(row) for row in conn.execute(sql, params).fetchall()]

        return await self._read(op)

    async def attempts(self, job_id: int) -> list[Attempt]:
        """Every attempt at a job, in order."""

        def op(conn: sqlite3.Connection) -> list[Attempt]:
            rows = conn.execute(SELECT_ATTEMPTS, (job_id,)).fetchall()
            return [attempt_from_row(row) for row in rows]

        return await self._read(op)

    async def retry_job(self, job_id: int, *, now: float | None = None) -> bool:
        """Re-queue a dead job now with its attempt count reset; False if it is not dead."""
        params = {"now": time.time() if now is None else now, "id": job_id}

        def op(conn: sqlite3.Connection) -> bool:
            return conn.execute(RETRY_DEAD_JOB, params).rowcount == 1

        return await self._write_and_wake(op)

    async def replay_event(
        self, event_id: int, jobs: Sequence[JobSpec], *, now: float | None = None
    ) -> list[int]:
        """Queue new jobs for a recorded event (see base).

        Raises KeyError when there is no such event. An ignored event given jobs
        becomes accepted.
        """
        at = time.time() if now is None else now
        specs = tuple(jobs)

        def op(conn: sqlite3.Connection) -> list[int]:
            row = conn.execute(SELECT_EVENT_FOR_REPLAY, (event_id,)).fetchone()
            if row is None:
                raise KeyError(f"no event {event_id} in the store")
            appliance_id, event_type, lsid = row
            job_ids = _insert_jobs(conn, event_id, appliance_id, event_type, lsid, specs, at)
            if specs:
                conn.execute(MARK_EVENT_ACCEPTED, (event_id,))
            return list(job_ids)

        return await self._write_and_wake(op)

    async def counts(self) -> dict[str, int]:
        """Jobs per :class:`JobStatus` value (zeros included) plus ``events`` and ``ignored``."""

        def op(conn: sqlite3.Connection) -> dict[str, int]:
            counts = {status.value: 0 for status in JobStatus}
            for status, count in conn.execute(COUNT_JOBS_BY_STATUS).fetchall():
                counts[status] = count
            counts["events"], counts["ignored"] = conn.execute(COUNT_EVENTS).fetchone()
            return counts

        return await self._read(op)

    async def job_stats(self, *, now: float | None = None) -> list[JobStats]:
        """Jobs counted per appliance and integration (see the base and sqlite_stats)."""
        at = time.time() if now is None else now
        return await self._read(lambda conn: job_stats(conn, at))

    async def last_failures(self) -> list[LastFailure]:
        """The newest RETRY or DEAD attempt per appliance and integration."""
        return await self._read(last_failures)

    # --- console (sqlite_console) ------------------------------------------------

    async def add_sign_in(self, sign_in: ConsoleSignIn) -> None:
        """Record a sign-in; its user's failed attempts are forgotten."""
        await self._write(lambda conn: console.add_sign_in(conn, sign_in))

    async def find_sign_in(self, digest: str, *, now: float | None = None) -> ConsoleSignIn | None:
        """The live sign-in of ``digest``; an expired one is removed."""
        at = time.time() if now is None else now
        found = await self._read(lambda conn: console.find_sign_in(conn, digest))
        if found is not None and found.expires_at <= at:
            await self._write(lambda conn: console.end_sign_in(conn, digest, at))
            return None
        return found

    async def end_sign_in(self, digest: str) -> bool:
        """Remove a sign-in; False if there was none."""
        return await self._write(lambda conn: console.end_sign_in(conn, digest))

    async def sign_in_failed(
        self, name: str, *, window: float, limit: int, now: float | None = None
    ) -> Lockout | None:
        """Count a failed sign-in of ``name`` (see the base)."""
        at = time.time() if now is None else now
        return await self._write(lambda conn: console.sign_in_failed(conn, name, at, window, limit))

    async def check_lockout(self, name: str, *, now: float | None = None) -> Lockout | None:
        """The lock-out of ``name`` now, counting this refused attempt."""
        at = time.time() if now is None else now
        return await self._write(lambda conn: console.check_lockout(conn, name, at))

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
        extra = (target, detail, remote)
        return await self._write(lambda conn: console.write_audit(conn, at, actor, action, extra))

    async def list_audit(self, selection: AuditFilter) -> list[AuditEntry]:
        """Audit entries matching ``selection``, newest first."""
        return await self._read(lambda conn: console.list_audit(conn, selection))

    async def prune_console(
        self, before: float, *, limit: int, audit_before: float | None = None
    ) -> int:
        """Remove up to ``limit`` expired sign-ins, lapsed failure counts and (with
        ``audit_before``) old audit entries, of each."""
        return await self._write(
            lambda conn: console.prune_console(conn, before, limit, audit_before)
        )

    async def activity(self, since: float, until: float, step: float) -> list[ActivityBucket]:
        """Deliveries, failures and latency per bucket (see base and console_sql)."""
        return await self._read(lambda conn: sqlite_search.activity(conn, since, until, step))

    async def search_sessions(
        self, selection: SessionFilter, *, now: float | None = None
    ) -> list[SessionRow]:
        """Sessions per integration, newest first (see base and console_sql)."""
        at = time.time() if now is None else now
        return await self._read(lambda conn: sqlite_search.search_sessions(conn, selection, at))

    # --- retention --------------------------------------------------------------

    async def prune(self, policy: RetentionPolicy, *, limit: int) -> PruneCounts:
        """Remove what ``policy`` allows, one bounded step (see base and sqlite_retention)."""
        return await self._write(lambda conn: prune_step(conn, policy, limit))

    async def count_prunable(self, policy: RetentionPolicy) -> PruneCounts:
        """What :meth:`prune` would remove in all; a read, removing nothing."""
        return await self._read(lambda conn: count_prunable(conn, policy))


def _fail_pending(jobs: queue.SimpleQueue[_Item | object], error: Exception) -> None:
    """Fail what was queued after the stop marker (a write racing close())."""
    while True:
        try:
            item = jobs.get_nowait()
        except queue.Empty:
            return
        if item is not _STOP:
            future = cast(_Item, item)[1]
            if future.set_running_or_notify_cancel():
                future.set_exception(error)


def _select_where(select: str, conditions: dict[str, str], params: dict[str, Any]) -> str:
    """``select`` with the conditions whose parameter is set, newest first."""
    terms = [conditions[name] for name, value in params.items() if value is not None]
    where = f" WHERE {' AND '.join(terms)}" if terms else ""
    return select + where + NEWEST_FIRST
