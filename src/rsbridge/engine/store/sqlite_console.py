"""The console's records in the SQLite store: sign-ins, failed sign-in counts, the audit
log (migration 0003). Each function runs inside one operation of the store's writer or
one read snapshot; :class:`~rsbridge.engine.store.sqlite.SQLiteStore` calls them."""

from __future__ import annotations

import sqlite3
from typing import Any, Final

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
    "add_sign_in",
    "check_lockout",
    "end_sign_in",
    "find_sign_in",
    "list_audit",
    "prune_console",
    "sign_in_failed",
    "write_audit",
]

_INSERT_SIGN_IN: Final = """
INSERT INTO console_sign_ins (digest, user_name, csrf, started_at, expires_at)
VALUES (?, ?, ?, ?, ?)"""
_SELECT_SIGN_IN: Final = """
SELECT digest, user_name, csrf, started_at, expires_at FROM console_sign_ins WHERE digest = ?"""
_DELETE_SIGN_IN: Final = "DELETE FROM console_sign_ins WHERE digest = ?"
_DELETE_EXPIRED_SIGN_IN: Final = "DELETE FROM console_sign_ins WHERE digest = ? AND expires_at <= ?"
_FORGET_FAILURES: Final = "DELETE FROM console_failures WHERE name = ?"
_SELECT_FAILURES: Final = """
SELECT failures, last_at, locked_until, refused, forget_at FROM console_failures WHERE name = ?"""
_UPSERT_FAILURES: Final = """
INSERT INTO console_failures (name, failures, last_at, locked_until, refused, forget_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
    failures = excluded.failures, last_at = excluded.last_at,
    locked_until = excluded.locked_until, refused = excluded.refused,
    forget_at = excluded.forget_at"""
# Bounded, through the forget_at index: a sweep never reads the whole table.
_SWEEP_FAILURES: Final = """
DELETE FROM console_failures WHERE name IN (
    SELECT name FROM console_failures WHERE forget_at <= ? AND name <> ? LIMIT ?)"""
_REFUSE: Final = """
UPDATE console_failures SET refused = refused + 1
WHERE name = ? AND locked_until > ?
RETURNING locked_until, refused"""
_INSERT_AUDIT: Final = """
INSERT INTO audit_log (at, actor, action, target, detail, remote) VALUES (?, ?, ?, ?, ?, ?)
RETURNING id, at, actor, action, target, detail, remote"""
_SELECT_AUDIT: Final = "SELECT id, at, actor, action, target, detail, remote FROM audit_log"
# WHERE is assembled from these fixed fragments only; values are bound parameters.
_AUDIT_CONDITIONS: Final = {
    "actor": "actor = :actor",
    "action": "action = :action",
    "before_id": "id < :before_id",
}
_PRUNE_SIGN_INS: Final = """
DELETE FROM console_sign_ins WHERE digest IN (
    SELECT digest FROM console_sign_ins WHERE expires_at <= ? LIMIT ?)"""
_PRUNE_FAILURES: Final = """
DELETE FROM console_failures WHERE name IN (
    SELECT name FROM console_failures WHERE forget_at <= ? LIMIT ?)"""
# Oldest first by id (the primary key): the walk stops after ``limit`` old entries.
_PRUNE_AUDIT: Final = """
DELETE FROM audit_log WHERE id IN (
    SELECT id FROM audit_log WHERE at < ? ORDER BY id LIMIT ?)"""


def add_sign_in(conn: sqlite3.Connection, sign_in: ConsoleSignIn) -> None:
    """Record ``sign_in``; its user's failed attempts are forgotten (writer)."""
    s = sign_in
    conn.execute(_INSERT_SIGN_IN, (s.digest, s.user, s.csrf, s.started_at, s.expires_at))
    conn.execute(_FORGET_FAILURES, (clip(s.user),))


def find_sign_in(conn: sqlite3.Connection, digest: str) -> ConsoleSignIn | None:
    """The sign-in of ``digest``, expired or not (read)."""
    row = conn.execute(_SELECT_SIGN_IN, (digest,)).fetchone()
    return None if row is None else sign_in_from_row(row)


def end_sign_in(conn: sqlite3.Connection, digest: str, expired_at: float | None = None) -> bool:
    """Remove the sign-in of ``digest`` (only if expired by ``expired_at``, when given)."""
    if expired_at is None:
        return conn.execute(_DELETE_SIGN_IN, (digest,)).rowcount == 1
    return conn.execute(_DELETE_EXPIRED_SIGN_IN, (digest, expired_at)).rowcount == 1


def sign_in_failed(
    conn: sqlite3.Connection, name: str, now: float, window: float, limit: int
) -> Lockout | None:
    """Count a failed sign-in of ``name``, sweeping a few lapsed counts (writer)."""
    key = clip(name)
    conn.execute(_SWEEP_FAILURES, (now, key, SWEEP))
    row = conn.execute(_SELECT_FAILURES, (key,)).fetchone()
    before = None if row is None else failure_from_row(row)
    count = next_failure(before, now=now, window=window, limit=limit)
    conn.execute(
        _UPSERT_FAILURES,
        (key, count.failures, count.last_at, count.locked_until, count.refused, count.forget_at),
    )
    return count.lockout(now)


def check_lockout(conn: sqlite3.Connection, name: str, now: float) -> Lockout | None:
    """The lock-out of ``name`` at ``now``, counting the refused attempt (writer)."""
    row = conn.execute(_REFUSE, (clip(name), now)).fetchone()
    return None if row is None else Lockout(float(row[0]), int(row[1]))


def write_audit(
    conn: sqlite3.Connection, at: float, actor: str, action: str, extra: tuple[str, str, str]
) -> AuditEntry:
    """Append an audit entry; ``extra`` is target, detail, remote (writer)."""
    texts = audit_values(actor, action, *extra)
    return audit_from_row(conn.execute(_INSERT_AUDIT, (at, *texts)).fetchone())


def list_audit(conn: sqlite3.Connection, selection: AuditFilter) -> list[AuditEntry]:
    """Audit entries matching ``selection``, newest first (read)."""
    params: dict[str, Any] = {
        "actor": selection.actor,
        "action": selection.action,
        "before_id": selection.before_id,
    }
    terms = [_AUDIT_CONDITIONS[name] for name, value in params.items() if value is not None]
    where = f" WHERE {' AND '.join(terms)}" if terms else ""
    params["limit"] = max(selection.limit, 0)
    sql = f"{_SELECT_AUDIT}{where} ORDER BY id DESC LIMIT :limit"
    return [audit_from_row(row) for row in conn.execute(sql, params).fetchall()]


def prune_console(
    conn: sqlite3.Connection, before: float, limit: int, audit_before: float | None
) -> int:
    """Remove up to ``limit`` expired sign-ins, lapsed failure counts and (with
    ``audit_before``) old audit entries, of each (writer)."""
    bound = max(limit, 0)
    gone = conn.execute(_PRUNE_SIGN_INS, (before, bound)).rowcount
    gone += conn.execute(_PRUNE_FAILURES, (before, bound)).rowcount
    if audit_before is not None:
        gone += conn.execute(_PRUNE_AUDIT, (audit_before, bound)).rowcount
    return gone
