"""The store contract against SQLite, plus what only a file can show: durability,
migrations, several stores (and processes) on one file, group commit, kill -9."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast

import pytest

from rsbridge.engine.store.base import (
    RANK_SURVEY,
    AttemptOutcome,
    EventFilter,
    Finish,
    JobFilter,
    JobSpec,
    LedgerEntry,
    LedgerKey,
    RetentionPolicy,
    Store,
)
from rsbridge.engine.store.sqlite import SQLiteStore, load_migrations
from rsbridge.errors import ConfigurationError

from .store_contract import END, SURVEY, T0, StoreContract, event

if sys.platform == "win32":  # pragma: no cover - SIGKILL and fork-free spawn tests
    pytest.skip("POSIX only", allow_module_level=True)


class TestSQLiteStore(StoreContract):
    def make_store(self, tmp_path: Path) -> Store:
        return SQLiteStore(tmp_path / "store.db")


# --- helpers ------------------------------------------------------------------------


async def opened(path: Path, **kwargs: Any) -> SQLiteStore:
    store = SQLiteStore(path, **kwargs)
    await store.open()
    return store


async def queue_jobs(store: SQLiteStore, sessions: int) -> set[int]:
    """Per session an end job, a survey job behind it, and a job without session."""
    job_ids: set[int] = set()
    for n in range(sessions):
        for incoming, rank in (
            (event(f"s{n}", lsid=f"L{n}", event_type=SURVEY), RANK_SURVEY),
            (event(f"e{n}", lsid=f"L{n}"), 0),
            (event(f"x{n}", lsid=None, event_type="other"), 0),
        ):
            result = await store.record_event(incoming, [JobSpec("sn", rank)], now=T0)
            job_ids.update(result.job_ids)
    return job_ids


class WriterGate:
    """Holds the writer thread inside one operation, so that what is queued meanwhile
    is committed as one group when the gate opens."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.task: asyncio.Future[bool] | None = None

    def _hold(self, conn: sqlite3.Connection) -> bool:
        self.entered.set()
        return self.gate.wait(10)

    async def __aenter__(self) -> WriterGate:
        self.task = asyncio.ensure_future(self.store._write(self._hold))
        assert await asyncio.to_thread(self.entered.wait, 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.gate.set()
        assert self.task is not None and await self.task


# --- durability and migrations --------------------------------------------------------


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = await opened(path)
    recorded = await store.record_event(
        event("k1", form=(("a", "1"), ("b", "2"))), [JobSpec("sn")], now=T0
    )
    entry = LedgerEntry(LedgerKey("a1", "L1", END, "sn", "ticket"), "INC1", "r", T0, {"k": "v"})
    await store.ledger_put(entry)
    await store.set_watermark("poll", T0 + 3)
    (job,) = await store.claim("w", limit=1, lease=30, now=T0)
    await store.close()

    again = await opened(path)
    try:
        stored = await again.get_event(recorded.event_id)
        assert stored is not None and stored.form == (("a", "1"), ("b", "2"))
        assert await again.get_job(job.id) == job
        assert await again.ledger_get(entry.key) == entry
        assert await again.get_watermark("poll") == T0 + 3
        assert (await again.counts())["running"] == 1
    finally:
        await again.close()


async def test_a_closed_store_can_be_opened_again(tmp_path: Path) -> None:
    store = await opened(tmp_path / "store.db")
    await store.record_event(event("k1"), [JobSpec("sn")], now=T0)
    await store.close()
    with pytest.raises(RuntimeError, match="not open"):
        await store.record_event(event("k2"), [JobSpec("sn")], now=T0)
    with pytest.raises(RuntimeError, match="not open"):
        await store.counts()
    await store.open()
    await store.open()  # idempotent too
    try:
        assert (await store.counts())["events"] == 1
    finally:
        await store.close()


async def test_the_database_and_its_wal_files_are_readable_by_the_owner_only(
    tmp_path: Path,
) -> None:
    # The store holds chat transcripts and customer data: like the jsonl file, owner only,
    # whatever the umask lets other files be.
    path = tmp_path / "store.db"
    old = os.umask(0o022)
    try:
        store = await opened(path)
    finally:
        os.umask(old)
    try:
        await store.record_event(event("k1"), [JobSpec("sn")], now=T0)
        await store.counts()  # a reader connection too
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(f.exists() for f in files)
        modes = {f.name: oct(f.stat().st_mode & 0o777) for f in files}
        assert modes == {f.name: "0o600" for f in files}
    finally:
        await store.close()


async def test_migrations_are_versioned(tmp_path: Path) -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations][:1] == [1]
    assert migrations[0].name == "0001_initial.sql"  # found as package data
    path = tmp_path / "store.db"
    before = time.time()
    await (await opened(path)).close()
    await (await opened(path)).close()  # nothing applied twice

    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
        assert [version for version, _ in rows] == [m.version for m in migrations]
        assert all(before <= applied_at <= time.time() for _, applied_at in rows)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"events", "jobs", "attempts", "ledger", "watermarks"} <= tables
        assert {"jobs_unfinished", "jobs_session_order"} <= tables
    conn.close()


async def test_a_version_1_database_is_upgraded_for_retention(tmp_path: Path) -> None:
    # A store written before retention existed: schema 1 only, with events in it.
    path = tmp_path / "store.db"
    [initial] = [m for m in load_migrations() if m.version == 1]
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL)"
        )
        for statement in initial.statements():
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (1, 0)")
        conn.execute(
            "INSERT INTO events (received_at, appliance_id, event_type, source, dedup_key,"
            " status) VALUES (?, 'a1', 'x', 'outbound', 'old', 'ignored')",
            (T0,),
        )
    conn.close()
    store = await opened(path)
    try:
        assert (await store.prune(RetentionPolicy(T0 + 1), limit=10)).events == 1
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"events_by_received", "ledger_by_created"} <= names
    conn.close()


async def test_a_database_from_a_newer_rsbridge_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    await (await opened(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (9999, 0)")
    conn.close()
    store = SQLiteStore(path)
    with pytest.raises(ConfigurationError, match=r"schema version 9999.*newer rsbridge"):
        await store.open()
    with pytest.raises(RuntimeError, match="not open"):
        await store.counts()
    await store.close()


async def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not a database, it is a text file " * 100)
    with pytest.raises(ConfigurationError, match="store database"):
        await SQLiteStore(path).open()
    with pytest.raises(ConfigurationError, match="cannot open"):
        await SQLiteStore(tmp_path / "no" / "such" / "dir" / "store.db").open()


@pytest.mark.parametrize(("mode", "level"), [("normal", 1), ("full", 2)])
async def test_synchronous_mode_is_applied(tmp_path: Path, mode: str, level: int) -> None:
    store = await opened(tmp_path / "store.db", synchronous=mode)
    try:
        found = await store._write(lambda conn: conn.execute("PRAGMA synchronous").fetchone()[0])
        assert found == level
    finally:
        await store.close()


# --- the writer: group commit ---------------------------------------------------------


async def test_group_commit_under_200_concurrent_records(tmp_path: Path) -> None:
    store = await opened(tmp_path / "store.db")
    try:
        before = store.writer_stats
        results = await asyncio.gather(
            *(
                store.record_event(
                    event(f"k{i}", lsid=f"L{i % 20}", form=(("n", str(i)),)),
                    [JobSpec("sn"), JobSpec("audit", RANK_SURVEY)],
                    now=T0 + i,
                )
                for i in range(200)
            )
        )
        after = store.writer_stats
        assert after.operations - before.operations == 200
        assert after.groups - before.groups < 100  # grouped, not one commit each

        assert not any(r.duplicate for r in results)
        assert len({r.event_id for r in results}) == 200
        assert len({j for r in results for j in r.job_ids}) == 400
        for i, result in enumerate(results):
            stored = await store.get_event(result.event_id)
            assert stored is not None
            assert (stored.dedup_key, stored.form, stored.received_at) == (
                f"k{i}",
                (("n", str(i)),),
                T0 + i,
            )
            jobs = await store.list_jobs(JobFilter(event_id=result.event_id))
            assert sorted(j.id for j in jobs) == sorted(result.job_ids)
        assert (await store.counts())["queued"] == 400
    finally:
        await store.close()


async def test_queued_writes_commit_as_one_group(tmp_path: Path) -> None:
    store = await opened(tmp_path / "store.db")
    try:
        before = store.writer_stats
        async with WriterGate(store):
            tasks = [
                asyncio.ensure_future(store.record_event(event(f"k{i}"), [], now=T0))
                for i in range(50)
            ]
            await asyncio.sleep(0)  # every task queues its operation
        await asyncio.gather(*tasks)
        assert store.writer_stats.groups - before.groups == 2  # the gate's, and one for 50
    finally:
        await store.close()


async def test_a_failing_operation_does_not_fail_its_group(tmp_path: Path) -> None:
    store = await opened(tmp_path / "store.db")
    try:
        bad_spec = JobSpec("sn", rank=cast(int, object()))  # fails after the event insert
        async with WriterGate(store):
            good = [
                asyncio.ensure_future(store.record_event(event(f"k{i}"), [JobSpec("sn")]))
                for i in range(10)
            ]
            bad = asyncio.ensure_future(store.record_event(event("bad"), [JobSpec("sn"), bad_spec]))
            missing = asyncio.ensure_future(store.replay_event(9999, [JobSpec("sn")]))
            more = asyncio.ensure_future(store.record_event(event("after"), [JobSpec("sn")]))
            await asyncio.sleep(0)
        with pytest.raises(sqlite3.Error):
            await bad
        with pytest.raises(KeyError):
            await missing
        await asyncio.gather(*good, more)
        keys = {e.dedup_key for e in await store.list_events(EventFilter(limit=100))}
        assert keys == {f"k{i}" for i in range(10)} | {"after"}  # "bad" rolled back whole
        assert (await store.counts())["queued"] == 11
    finally:
        await store.close()


async def test_a_lost_transaction_fails_the_whole_group(tmp_path: Path) -> None:
    """When SQLite itself rolls back (disk full, I/O error), no caller is told "done"."""
    store = await opened(tmp_path / "store.db")

    def disk_full(conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL
        raise sqlite3.OperationalError("database or disk is full")

    try:
        async with WriterGate(store):
            before = asyncio.ensure_future(store.record_event(event("k1"), [JobSpec("sn")]))
            failing = asyncio.ensure_future(store._write(disk_full))
            after = asyncio.ensure_future(store.record_event(event("k2"), [JobSpec("sn")]))
            await asyncio.sleep(0)
        for task in (before, failing, after):
            with pytest.raises(sqlite3.OperationalError, match="disk is full"):
                await task
        assert (await store.counts())["events"] == 0
        # The writer carries on with the next group.
        await store.record_event(event("k3"), [JobSpec("sn")])
        assert (await store.counts())["events"] == 1
    finally:
        await store.close()


async def test_a_write_cancelled_before_its_turn_is_not_done(tmp_path: Path) -> None:
    store = await opened(tmp_path / "store.db")
    try:
        async with WriterGate(store):
            task = asyncio.ensure_future(store.record_event(event("k1"), [JobSpec("sn")]))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert (await store.counts())["events"] == 0
    finally:
        await store.close()


# --- several stores, several processes ------------------------------------------------


async def test_two_stores_on_one_file_never_claim_the_same_job(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    first, second = await opened(path), await opened(path)
    try:
        job_ids = await queue_jobs(first, 40)
        # A write through one store is read at once through the other.
        assert (await second.counts())["queued"] == len(job_ids)

        claimed: list[int] = []

        async def worker(store: SQLiteStore, owner: str) -> None:
            while (counts := await store.counts())["queued"] or counts["running"]:
                jobs = await store.claim(owner, limit=4, lease=60)
                claimed.extend(job.id for job in jobs)
                for job in jobs:
                    assert await store.finish(
                        job.id, owner, Finish(AttemptOutcome.DONE), started_at=T0
                    )
                if not jobs:
                    await asyncio.sleep(0.001)

        await asyncio.gather(
            *(
                worker(store, f"{name}{n}")
                for n in range(3)
                for name, store in (("a", first), ("b", second))
            )
        )
        assert sorted(claimed) == sorted(job_ids)  # each exactly once
        assert (await first.counts())["done"] == len(job_ids)
    finally:
        await first.close()
        await second.close()


def _claim_in_process(
    path: str, owner: str, ready: Any, start: Any, results: Any
) -> None:  # pragma: no cover - runs in a spawned process
    async def run() -> list[int]:
        store = await opened(Path(path))
        claimed: list[int] = []
        try:
            ready.put(owner)
            start.wait(10)
            while (counts := await store.counts())["queued"] or counts["running"]:
                jobs = await store.claim(owner, limit=3, lease=60)
                for job in jobs:
                    claimed.append(job.id)
                    done = Finish(AttemptOutcome.DONE)
                    assert await store.finish(job.id, owner, done, started_at=time.time())
                # Work takes time; meanwhile the other process claims.
                await asyncio.sleep(0.002)
        finally:
            await store.close()
        return claimed

    results.put((owner, asyncio.run(run())))


async def test_two_processes_never_claim_the_same_job(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = await opened(path)
    try:
        job_ids = await queue_jobs(store, 60)
    finally:
        await store.close()

    ctx = multiprocessing.get_context("spawn")
    ready, results, start = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_claim_in_process, args=(str(path), f"p{n}", ready, start, results))
        for n in range(2)
    ]
    for proc in procs:
        proc.start()
    try:
        for _ in procs:
            await asyncio.to_thread(ready.get, True, 30)
        start.set()
        by_owner = dict([await asyncio.to_thread(results.get, True, 30) for _ in procs])
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
    claimed = [job_id for ids in by_owner.values() for job_id in ids]
    assert len(claimed) == len(set(claimed))  # no job handed out twice
    assert set(claimed) == job_ids
    assert all(by_owner.values()), "both processes should have claimed jobs"


# --- kill -9 ---------------------------------------------------------------------------

RECORDER = """
import asyncio, sys
from pathlib import Path
from rsbridge.engine.store.base import IncomingEvent, JobSpec
from rsbridge.engine.store.sqlite import SQLiteStore

async def recorder(store, lane):
    for n in range(10**9):
        key = f"{lane}-{n}"
        event = IncomingEvent("a1", "support_conference_end", "outbound", key, lsid=key)
        result = await store.record_event(event, [JobSpec("sn")])
        print(result.event_id, result.job_ids[0], key, flush=True)

async def main():
    store = SQLiteStore(Path(sys.argv[1]))
    await store.open()
    await asyncio.gather(*(recorder(store, lane) for lane in range(8)))

asyncio.run(main())
"""


async def test_recorded_events_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RECORDER, str(path), stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    lines: list[bytes] = []
    try:
        while len(lines) < 300:
            line = await asyncio.wait_for(child.stdout.readline(), 30)
            assert line, f"recorder exited early with {await child.wait()}"
            lines.append(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)  # mid-way: 8 lanes keep records in flight
    rest = await child.stdout.read()  # what it printed before dying
    assert await child.wait() == -signal.SIGKILL
    # Only whole lines were acknowledged; the kill may cut the last one.
    lines += [line for line in rest.splitlines(keepends=True) if line.endswith(b"\n")]

    store = await opened(path)
    try:
        for line in lines:
            event_id, job_id, key = line.decode().split()
            stored = await store.get_event(int(event_id))
            assert stored is not None and stored.dedup_key == key
            job = await store.get_job(int(job_id))
            assert job is not None and job.event_id == int(event_id)
        assert (await store.counts())["events"] >= len(lines)
        integrity = await store._read(lambda c: c.execute("PRAGMA integrity_check").fetchall())
        assert integrity == [("ok",)]
    finally:
        await store.close()
