"""``rsbridge store copy``: move an installation's SQLite store into PostgreSQL.

Everything is copied with its ids (events, jobs, attempts, the delivery ledger, the
pollers' watermarks, the console's audit log), so that after the move a delivery the
appliance sends again is a duplicate, a replayed job finds its effects in the ledger, a
poller resumes at its watermark, and the audit log keeps its history. Ids continue after
the highest ever used (also by rows since pruned), as they would have in SQLite. Console
sign-ins and failed sign-in counts are not copied: they are short-lived, and signing in
again after the move is the safe default (a cookie made for the old store does not
follow it).

The source is read in one read transaction (a consistent snapshot even if an engine is
still writing, though what it writes afterwards is not copied: stop the nodes first).
The target must hold no data yet; it is written in one transaction with COPY, so a
failure leaves it empty.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from rsbridge.engine.store.postgresql import PostgreSQLStore
from rsbridge.engine.store.sqlite import SQLiteStore
from rsbridge.errors import ConfigurationError

__all__ = ["CopyCounts", "copy_sqlite_to_postgresql"]

# (table, columns) in the order rows must go in (foreign keys); the same names in both.
TABLES: Final = (
    (
        "events",
        "id, received_at, appliance_id, event_type, source, dedup_key, status, deliveries,"
        " lsid, external_key, timestamp, form",
    ),
    (
        "jobs",
        "id, event_id, integration, appliance_id, event_type, lsid, rank, status, attempts,"
        " run_after, created_at, updated_at, last_error, lease_owner, lease_until, claimed_at",
    ),
    ("attempts", "job_id, number, owner, started_at, finished_at, outcome, error"),
    (
        "ledger",
        "appliance_id, lsid, event, integration, effect, ticket_id, ref, created_at, detail",
    ),
    ("watermarks", "name, value, updated_at"),
    ("audit_log", "id, at, actor, action, target, detail, remote"),
)
# The source's rows in a stable order (the ledger's: the order they were recorded in).
ORDER: Final = {
    "events": "id",
    "jobs": "id",
    "attempts": "job_id, number",
    "ledger": "rowid",
    "watermarks": "name",
    "audit_log": "id",
}
SEQUENCES: Final = ("events", "jobs", "audit_log")
_HAS_DATA: Final = """
SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM jobs)
    OR EXISTS (SELECT 1 FROM ledger) OR EXISTS (SELECT 1 FROM watermarks)
    OR EXISTS (SELECT 1 FROM audit_log)"""


@dataclass(frozen=True, slots=True)
class CopyCounts:
    """Rows copied per table."""

    events: int
    jobs: int
    attempts: int
    ledger: int
    watermarks: int
    audit: int
    """Audit log entries."""


def _read(path: Path) -> tuple[dict[str, list[tuple[object, ...]]], dict[str, int]]:
    """Every row to copy, and the highest id each sequence ever gave, in one snapshot."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        rows = {
            table: conn.execute(
                f"SELECT {columns} FROM {table} ORDER BY {ORDER[table]}"  # noqa: S608 (constants)
            ).fetchall()
            for table, columns in TABLES
        }
        last = dict(conn.execute("SELECT name, seq FROM sqlite_sequence").fetchall())
        conn.execute("COMMIT")
    finally:
        conn.close()
    return rows, {name: int(last.get(name, 0)) for name in SEQUENCES}


async def copy_sqlite_to_postgresql(source: Path, target: str) -> CopyCounts:
    """Copy the SQLite store at ``source`` into the empty PostgreSQL store ``target``.

    Raises :class:`~rsbridge.errors.ConfigurationError` when the source is not a store,
    or the target cannot be reached or holds data already.
    """
    if not await asyncio.to_thread(source.is_file):
        raise ConfigurationError(f"no SQLite store at {source}")
    sqlite_store = SQLiteStore(source)  # brings the source's schema up to date first
    await sqlite_store.open()
    await sqlite_store.close()
    rows, last_ids = await asyncio.to_thread(_read, source)
    pg = PostgreSQLStore(target)
    await pg.open()  # creates or migrates the target's schema
    try:
        conn = await pg.connect()
        try:
            async with conn.transaction():
                cur = await conn.execute(_HAS_DATA)
                row = await cur.fetchone()
                if row is not None and row[0]:
                    raise ConfigurationError(
                        f"the store database {pg.label} holds data already: copy into an"
                        " empty database"
                    )
                async with conn.cursor() as copier:
                    for table, columns in TABLES:
                        statement = f"COPY {table} ({columns}) FROM STDIN"
                        async with copier.copy(statement.encode()) as copy:
                            for values in rows[table]:
                                await copy.write_row(values)
                for table in SEQUENCES:
                    # The next id follows the highest ever used, as SQLite's AUTOINCREMENT.
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                        f" GREATEST(%s, (SELECT COALESCE(MAX(id), 0) FROM {table}), 1),"
                        f" %s)",
                        (last_ids[table], last_ids[table] > 0 or bool(rows[table])),
                    )
        finally:
            await conn.close()
    finally:
        await pg.close()
    return CopyCounts(*(len(rows[table]) for table, _ in TABLES))
