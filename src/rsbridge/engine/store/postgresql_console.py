"""The console's records in the PostgreSQL store: sign-ins, failed sign-in counts, the
audit log (migration 0003), shared by every node on the database.

A failed sign-in is counted under the name's row lock (the row is created first if
missing, ``ON CONFLICT DO NOTHING``, then read ``FOR UPDATE``): failures sent to several
nodes at once are each counted, and the limit-th locks the name everywhere.
"""

from __future__ import annotations

from typing import Any, Final

from psycopg import AsyncCursor

from rsbridge.engine.store.base import AuditEntry, AuditFilter, ConsoleSignIn, Lockout
from rsbridge.engine.store.signins import (
    SWEEP,
    audit_from_row,
    audit_values,
    clip,
    failure_from_row,
    next_failure,
    sign_in_from_row,
)

__all__ = [
    "SELECT_SIGN_IN",
    "add_sign_in",
    "check_lockout",
    "list_audit_statement",
    "prune_console",
    "sign_in_failed",
    "write_audit",
]

Cursor = AsyncCursor[tuple[Any, ...]]

_INSERT_SIGN_IN: Final = """
INSERT INTO console_sign_ins (digest, user_name, csrf, started_at, expires_at)
VALUES (%s, %s, %s, %s, %s)"""
SELECT_SIGN_IN: Final = """
SELECT digest, user_name, csrf, started_at, expires_at FROM console_sign_ins
WHERE digest = %s"""
DELETE_SIGN_IN: Final = "DELETE FROM console_sign_ins WHERE digest = %s"
DELETE_EXPIRED_SIGN_IN: Final = (
    "DELETE FROM console_sign_ins WHERE digest = %s AND expires_at <= %s"
)
_FORGET_FAILURES: Final = "DELETE FROM console_failures WHERE name = %s"
_SWEEP_FAILURES: Final = """
DELETE FROM console_failures WHERE name IN (
    SELECT name FROM console_failures WHERE forget_at <= %s AND name <> %s
    LIMIT %s FOR UPDATE SKIP LOCKED)"""
# Oldest first by id (the primary key): the walk stops after ``limit`` old entries.
_PRUNE_AUDIT: Final = """
DELETE FROM audit_log WHERE id IN (
    SELECT id FROM audit_log WHERE at < %s ORDER BY id
    LIMIT %s FOR UPDATE SKIP LOCKED)"""
_ENSURE_FAILURES: Final = """
INSERT INTO console_failures (name, failures, last_at, forget_at) VALUES (%s, 0, 0, 0)
ON CONFLICT (name) DO NOTHING"""
_LOCK_FAILURES: Final = """
SELECT failures, last_at, locked_until, refused, forget_at FROM console_failures
WHERE name = %s FOR UPDATE"""
_UPDATE_FAILURES: Final = """
UPDATE console_failures
SET failures = %s, last_at = %s, locked_until = %s, refused = %s, forget_at = %s
WHERE name = %s"""
_REFUSE: Final = """
UPDATE console_failures SET refused = refused + 1
WHERE name = %s AND locked_until > %s
RETURNING locked_until, refused"""
_INSERT_AUDIT: Final = """
INSERT INTO audit_log (at, actor, action, target, detail, remote)
VALUES (%s, %s, %s, %s, %s, %s)
RETURNING id, at, actor, action, target, detail, remote"""
_SELECT_AUDIT: Final = "SELECT id, at, actor, action, target, detail, remote FROM audit_log"
# WHERE is assembled from these fixed fragments only; values are bound parameters.
_AUDIT_CONDITIONS: Final = {
    "actor": "actor = %(actor)s",
    "action": "action = %(action)s",
    "before_id": "id < %(before_id)s",
}
_PRUNE_SIGN_INS: Final = """
DELETE FROM console_sign_ins WHERE digest IN (
    SELECT digest FROM console_sign_ins WHERE expires_at <= %s
    LIMIT %s FOR UPDATE SKIP LOCKED)"""
_PRUNE_FAILURES: Final = """
DELETE FROM console_failures WHERE name IN (
    SELECT name FROM console_failures WHERE forget_at <= %s
    LIMIT %s FOR UPDATE SKIP LOCKED)"""


async def add_sign_in(cur: Cursor, sign_in: ConsoleSignIn) -> None:
    """Record ``sign_in``; its user's failed attempts are forgotten (in a transaction)."""
    s = sign_in
    await cur.execute(_INSERT_SIGN_IN, (s.digest, s.user, s.csrf, s.started_at, s.expires_at))
    await cur.execute(_FORGET_FAILURES, (clip(s.user),))


def found_sign_in(row: tuple[Any, ...] | None) -> ConsoleSignIn | None:
    """The sign-in of a :data:`SELECT_SIGN_IN` row, if any."""
    return None if row is None else sign_in_from_row(row)


async def sign_in_failed(
    cur: Cursor, name: str, now: float, window: float, limit: int
) -> Lockout | None:
    """Count a failed sign-in of ``name`` under its row lock (in a transaction)."""
    key = clip(name)
    await cur.execute(_SWEEP_FAILURES, (now, key, SWEEP))
    await cur.execute(_ENSURE_FAILURES, (key,))
    await cur.execute(_LOCK_FAILURES, (key,))
    row = await cur.fetchone()
    assert row is not None
    before = failure_from_row(row)
    # A row just created by _ENSURE_FAILURES holds no failure yet.
    count = next_failure(before if before.failures else None, now=now, window=window, limit=limit)
    await cur.execute(
        _UPDATE_FAILURES,
        (count.failures, count.last_at, count.locked_until, count.refused, count.forget_at, key),
    )
    return count.lockout(now)


async def check_lockout(cur: Cursor, name: str, now: float) -> Lockout | None:
    """The lock-out of ``name`` at ``now``, counting the refused attempt."""
    await cur.execute(_REFUSE, (clip(name), now))
    row = await cur.fetchone()
    return None if row is None else Lockout(float(row[0]), int(row[1]))


async def write_audit(
    cur: Cursor, at: float, actor: str, action: str, extra: tuple[str, str, str]
) -> AuditEntry:
    """Append an audit entry; ``extra`` is target, detail, remote."""
    await cur.execute(_INSERT_AUDIT, (at, *audit_values(actor, action, *extra)))
    row = await cur.fetchone()
    assert row is not None
    return audit_from_row(row)


def list_audit_statement(selection: AuditFilter) -> tuple[str, dict[str, Any]]:
    """The statement and parameters of :meth:`Store.list_audit` for ``selection``."""
    params: dict[str, Any] = {
        "actor": selection.actor,
        "action": selection.action,
        "before_id": selection.before_id,
    }
    terms = [_AUDIT_CONDITIONS[name] for name, value in params.items() if value is not None]
    where = f" WHERE {' AND '.join(terms)}" if terms else ""
    params["limit"] = max(selection.limit, 0)
    return f"{_SELECT_AUDIT}{where} ORDER BY id DESC LIMIT %(limit)s", params


def audit_rows(rows: list[tuple[Any, ...]]) -> list[AuditEntry]:
    """Audit entries of ``rows``."""
    return [audit_from_row(row) for row in rows]


async def prune_console(cur: Cursor, before: float, limit: int, audit_before: float | None) -> int:
    """Remove up to ``limit`` expired sign-ins, lapsed failure counts and (with
    ``audit_before``) old audit entries, of each."""
    bound = max(limit, 0)
    await cur.execute(_PRUNE_SIGN_INS, (before, bound))
    gone = cur.rowcount
    await cur.execute(_PRUNE_FAILURES, (before, bound))
    gone += cur.rowcount
    if audit_before is not None:
        await cur.execute(_PRUNE_AUDIT, (audit_before, bound))
        gone += cur.rowcount
    return gone
