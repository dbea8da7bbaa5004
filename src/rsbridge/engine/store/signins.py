"""The console's sign-in records, the same for every backend: how a failed sign-in
changes a name's count, and stored rows as records.

The rule lives here once (every backend calls :func:`next_failure`), so that memory,
SQLite and PostgreSQL lock a name after exactly the same attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rsbridge.engine.store.base import AuditEntry, ConsoleSignIn, Lockout

__all__ = [
    "MAX_NAME",
    "SWEEP",
    "FailureCount",
    "audit_from_row",
    "audit_values",
    "clip",
    "failure_from_row",
    "next_failure",
    "sign_in_from_row",
]

MAX_NAME = 200
"""Longest user name (or audit text) kept; a form may send far more."""
SWEEP = 20
"""Lapsed failure counts removed by each new failure: the table stays near the number of
names that failed within one lock-out window, whatever an attacker sends."""


def clip(text: str, size: int = MAX_NAME) -> str:
    """``text`` cut to ``size`` characters (attacker-sized input, bounded rows)."""
    return text if len(text) <= size else text[: size - 1] + "…"


def audit_values(
    actor: str, action: str, target: str, detail: str, remote: str
) -> tuple[str, str, str, str, str]:
    """An audit entry's texts, each cut to its size: one entry never grows large."""
    return (clip(actor), clip(action), clip(target, 1000), clip(detail, 4000), clip(remote))


@dataclass(frozen=True, slots=True)
class FailureCount:
    """Failed sign-ins of one user name, as stored."""

    failures: int
    last_at: float
    locked_until: float | None
    refused: int
    forget_at: float
    """After this, the row no longer matters (not locked, no failure within the window)."""

    def lockout(self, now: float) -> Lockout | None:
        """The lock-out in force at ``now``, if any."""
        if self.locked_until is not None and self.locked_until > now:
            return Lockout(self.locked_until, self.refused)
        return None


def next_failure(
    before: FailureCount | None, *, now: float, window: float, limit: int
) -> FailureCount:
    """The count after one more failure at ``now``.

    A streak restarts when the last failure is ``window`` old or a lock has run out; a
    failure while locked is counted but does not extend the lock.
    """
    if before is not None and before.lockout(now) is not None:
        failures, locked_until, refused = before.failures + 1, before.locked_until, before.refused
    else:
        lapsed = before is None or before.last_at <= now - window or before.locked_until is not None
        failures = 1 if lapsed or before is None else before.failures + 1
        locked_until, refused = (now + window, 0) if failures >= limit else (None, 0)
    forget_at = max(now + window, locked_until or 0.0)
    return FailureCount(failures, now, locked_until, refused, forget_at)


def sign_in_from_row(row: Sequence[Any]) -> ConsoleSignIn:
    """A sign-in from digest, user, csrf, started_at, expires_at."""
    return ConsoleSignIn(row[0], row[1], row[2], float(row[3]), float(row[4]))


def failure_from_row(row: Sequence[Any]) -> FailureCount:
    """A failure count from failures, last_at, locked_until, refused, forget_at."""
    locked = None if row[2] is None else float(row[2])
    return FailureCount(int(row[0]), float(row[1]), locked, int(row[3]), float(row[4]))


def audit_from_row(row: Sequence[Any]) -> AuditEntry:
    """An audit entry from id, at, actor, action, target, detail, remote."""
    return AuditEntry(int(row[0]), float(row[1]), row[2], row[3], row[4], row[5], row[6])
