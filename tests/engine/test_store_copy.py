"""``rsbridge store copy``: a SQLite installation moved into PostgreSQL keeps everything,
with its ids, so that nothing is imported twice after the move."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from rsbridge.cli import app
from rsbridge.engine.store.base import (
    RANK_SURVEY,
    AttemptOutcome,
    AuditFilter,
    ConsoleSignIn,
    EventFilter,
    Finish,
    JobFilter,
    JobSpec,
    RetentionPolicy,
    Store,
)
from rsbridge.engine.store.copy import copy_sqlite_to_postgresql
from rsbridge.engine.store.postgresql import PostgreSQLStore
from rsbridge.engine.store.sqlite import SQLiteStore
from rsbridge.errors import ConfigurationError

from .store_contract import DONE, SURVEY, T0, event, ledger_entry


async def filled_sqlite(path: Path) -> int:
    """A store with some history: done, retried, dead and queued jobs, pruned ids, a
    ledger and watermarks. Returns the highest event id it ever gave (since pruned)."""
    store = SQLiteStore(path)
    await store.open()
    try:
        await store.record_event(event("gone", lsid="L0"), [JobSpec("sn")], now=T0 - 9)
        for n in range(1, 6):
            await store.record_event(
                event(f"e{n}", lsid=f"L{n}", form=(("lsid", f"L{n}"), ("z", "é"))),
                [JobSpec("sn"), JobSpec("audit")],
                now=T0 + n,
            )
        await store.record_event(
            event("s1", lsid="L1", event_type=SURVEY), [JobSpec("sn", RANK_SURVEY)], now=T0 + 6
        )
        await store.record_event(event("ignored"), [], now=T0 + 7)
        jobs = await store.claim("w", limit=4, lease=30, now=T0 + 10)
        await store.finish(jobs[0].id, "w", DONE, started_at=T0 + 10, now=T0 + 11)
        await store.finish(
            jobs[1].id, "w", Finish(AttemptOutcome.RETRY, T0 + 60, "503"), started_at=T0, now=T0
        )
        await store.finish(
            jobs[2].id, "w", Finish(AttemptOutcome.DEAD, error="bad"), started_at=T0, now=T0
        )
        for effect in ("session_report", "ticket"):
            await store.ledger_put(ledger_entry(effect, lsid="L1", created_at=T0 + 12))
        await store.set_watermark("poll:sn", T0 + 13)
        await store.record_event(event("late", lsid="L9"), [JobSpec("sn")], now=T0 + 14)
        tail = await store.record_event(event("tail"), [], now=T0 - 50)
        # The first event finished, and the ignored ones: pruned. Their ids, the highest
        # ever among them, must never be given again.
        assert jobs[0].event_id == 1
        pruned = await store.prune(RetentionPolicy(finished_before=T0 + 12), limit=10)
        assert pruned.events == 3
        return tail.event_id
    finally:
        await store.close()


async def snapshot(store: Store) -> tuple[object, ...]:
    events = await store.list_events(EventFilter(limit=1000))
    jobs = await store.list_jobs(JobFilter(limit=1000))
    attempts = [await store.attempts(job.id) for job in jobs]
    ledger = await store.ledger_for_session("a1", "L1")
    return (
        events,
        jobs,
        attempts,
        ledger,
        await store.get_watermark("poll:sn"),
        await store.counts(),
    )


async def test_copy_keeps_everything_and_nothing_is_imported_twice(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "rsbridge.db"
    highest = await filled_sqlite(source)
    before = SQLiteStore(source)
    await before.open()
    try:
        expected = await snapshot(before)
    finally:
        await before.close()

    counts = await copy_sqlite_to_postgresql(source, postgres_url)
    assert (counts.events, counts.watermarks, counts.ledger) == (7, 1, 2)

    moved = PostgreSQLStore(postgres_url)
    await moved.open()
    try:
        assert await snapshot(moved) == expected
        # A new event takes the id SQLite would have given, never one used before.
        fresh = await moved.record_event(event("probe"), [JobSpec("sn")], now=T0)
        assert fresh.event_id == highest + 1 and not fresh.duplicate
        # The appliance sends an event again: a duplicate, queuing nothing.
        again = await moved.record_event(event("e3", lsid="L3"), [JobSpec("sn")], now=T0 + 99)
        assert again.duplicate and not again.job_ids
        # The work goes on where it stopped: the retried job at its run_after.
        claimed = await moved.claim("pg", limit=100, lease=30, now=T0 + 100)
        assert claimed and all(job.lease_owner == "pg" for job in claimed)
    finally:
        await moved.close()


async def test_copy_refuses_a_target_with_data(tmp_path: Path, postgres_url: str) -> None:
    source = tmp_path / "rsbridge.db"
    await filled_sqlite(source)
    await copy_sqlite_to_postgresql(source, postgres_url)
    with pytest.raises(ConfigurationError, match="holds data already"):
        await copy_sqlite_to_postgresql(source, postgres_url)
    with psycopg.connect(postgres_url) as conn:
        (events,) = conn.execute("SELECT COUNT(*) FROM events").fetchone() or (0,)
    assert events == 7  # not copied twice


def test_the_command_copies_and_masks_the_password(tmp_path: Path, postgres_url: str) -> None:
    import asyncio

    source = tmp_path / "rsbridge.db"
    asyncio.run(filled_sqlite(source))
    target = f"{postgres_url}&password=hunter22"  # trust authentication ignores it
    result = CliRunner().invoke(
        app, ["store", "copy", "--from", f"sqlite:///{source}", "--to", target]
    )
    assert result.exit_code == 0, result.output
    assert "copied 7 events" in result.output and "hunter22" not in result.output
    again = CliRunner().invoke(app, ["store", "copy", "--from", str(source), "--to", target])
    assert again.exit_code == 1 and "holds data already" in again.output
    assert "hunter22" not in again.output


async def test_copy_moves_the_audit_log_but_not_the_sign_ins(
    tmp_path: Path, postgres_url: str
) -> None:
    source = tmp_path / "rsbridge.db"
    store = SQLiteStore(source)
    await store.open()
    try:
        written = [
            await store.write_audit("olga", "retry", target=f"job {n}", remote="::1", now=T0 + n)
            for n in range(3)
        ]
        await store.add_sign_in(ConsoleSignIn("digest-1", "olga", "csrf", T0, T0 + 10**9))
        await store.sign_in_failed("mallory", window=600, limit=1, now=T0)
    finally:
        await store.close()

    counts = await copy_sqlite_to_postgresql(source, postgres_url)
    assert (counts.events, counts.audit) == (0, 3)

    moved = PostgreSQLStore(postgres_url)
    await moved.open()
    try:
        assert await moved.list_audit(AuditFilter()) == list(reversed(written))
        newer = await moved.write_audit("vic", "sign-in", now=T0 + 9)
        assert newer.id == written[-1].id + 1
        # Sign-ins stay behind: an old cookie does not sign anyone in on the new store.
        assert await moved.find_sign_in("digest-1", now=T0) is None
        assert await moved.check_lockout("mallory", now=T0) is None
    finally:
        await moved.close()
