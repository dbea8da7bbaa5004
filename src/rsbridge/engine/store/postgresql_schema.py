"""The PostgreSQL store's schema and connection details: migrations, URLs, lock keys.

Migrations are the numbered files in ``migrations/postgresql/`` (package data, loaded by
:func:`rsbridge.engine.store.sqlite.load_migrations`). :func:`migrate` applies the
missing ones, each in its own transaction, under a transaction-scoped advisory lock, so
that several nodes starting at once apply each migration exactly once; a database
written by a newer rsbridge is refused before anything is changed.

A store URL may hold a password (``postgresql://user:secret@host/db``): only its masked
form (:func:`rsbridge.engine.store.urls.mask_url`) goes into a message or a log line.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Final

import psycopg

from rsbridge.engine.store.sqlite import load_migrations
from rsbridge.errors import ConfigurationError

__all__ = ["SchemaState", "advisory_key", "migrate", "schema_state"]

_CREATE_SCHEMA_MIGRATIONS: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    applied_at double precision NOT NULL
)"""
_SELECT_VERSIONS: Final = "SELECT version FROM schema_migrations"
_INSERT_VERSION: Final = "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)"
_TABLE_EXISTS: Final = "SELECT to_regclass('schema_migrations') IS NOT NULL"
# Transaction-scoped: released by COMMIT or ROLLBACK, and by the server if the node dies.
_LOCK: Final = "SELECT pg_advisory_xact_lock(%s)"


def advisory_key(name: str) -> int:
    """A stable 64-bit advisory lock key for ``name`` (the same on every node)."""
    digest = hashlib.blake2b(f"rsbridge:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Which schema versions a database holds and which this rsbridge knows."""

    applied: tuple[int, ...]
    known: int

    @property
    def pending(self) -> tuple[int, ...]:
        """Versions this rsbridge would apply."""
        return tuple(v for v in range(1, self.known + 1) if v not in self.applied)

    @property
    def newer(self) -> bool:
        """The database was written by a newer rsbridge."""
        return max(self.applied, default=0) > self.known


async def schema_state(conn: psycopg.AsyncConnection[tuple[object, ...]]) -> SchemaState:
    """The schema versions the database of ``conn`` holds (none for an empty database)."""
    known = len(load_migrations("postgresql"))
    cur = await conn.execute(_TABLE_EXISTS)
    row = await cur.fetchone()
    if row is None or not row[0]:
        return SchemaState((), known)
    cur = await conn.execute(_SELECT_VERSIONS)
    applied = tuple(sorted(int(str(r[0])) for r in await cur.fetchall()))
    return SchemaState(applied, known)


def _refuse_newer(state: SchemaState, label: str) -> None:
    if state.newer:
        raise ConfigurationError(
            f"the store database {label} has schema version {max(state.applied)}, but this"
            f" rsbridge only knows versions up to {state.known}: it was written by a newer"
            " rsbridge. Upgrade rsbridge, or point the store at another database."
        )


async def check_schema(conn: psycopg.AsyncConnection[tuple[object, ...]], label: str) -> None:
    """Refuse a database whose schema is not exactly the one this rsbridge knows."""
    state = await schema_state(conn)
    _refuse_newer(state, label)
    if state.pending:
        raise ConfigurationError(
            f"the store database {label} has schema version {max(state.applied, default=0)};"
            f" this rsbridge needs version {state.known}: run `rsbridge store migrate`"
            " (starting `rsbridge serve` applies it too)"
        )


async def migrate(conn: psycopg.AsyncConnection[tuple[object, ...]], label: str) -> list[int]:
    """Apply the migrations the database of ``conn`` (autocommit) lacks; the versions applied.

    ``label`` names the database in messages (a masked URL). Raises
    :class:`~rsbridge.errors.ConfigurationError` for a database of a newer rsbridge.
    """
    _refuse_newer(await schema_state(conn), label)
    applied: list[int] = []
    lock = advisory_key("schema_migrations")
    for migration in load_migrations("postgresql"):
        async with conn.transaction():
            await conn.execute(_LOCK, (lock,))
            await conn.execute(_CREATE_SCHEMA_MIGRATIONS)
            # Under the lock: another node may have applied it, or a newer schema, since.
            state = await schema_state(conn)
            _refuse_newer(state, label)
            if migration.version in state.applied:
                continue
            try:
                # No parameters: the file's statements run as one simple query.
                await conn.execute(migration.sql.encode())
            except psycopg.Error as exc:
                exc.add_note(f"while applying store migration {migration.name} to {label}")
                raise
            await conn.execute(_INSERT_VERSION, (migration.version, time.time()))
            applied.append(migration.version)
    return applied
