"""The console's records in the in-memory store: sign-ins, failed sign-in counts and the
audit log (mixed into :class:`~rsbridge.engine.store.memory.MemoryStore`)."""

from __future__ import annotations

import asyncio
import time

from rsbridge.engine.store.base import AuditEntry, AuditFilter, ConsoleSignIn, Lockout
from rsbridge.engine.store.signins import SWEEP, FailureCount, audit_values, clip, next_failure

__all__ = ["MemoryConsole"]


def _clock(now: float | None) -> float:
    return time.time() if now is None else now


class MemoryConsole:
    """Sign-ins by token digest, failure counts by name, the audit log in a list."""

    def __init__(self) -> None:
        self._console_lock = asyncio.Lock()
        self._sign_ins: dict[str, ConsoleSignIn] = {}
        self._failures: dict[str, FailureCount] = {}
        self._audit: list[AuditEntry] = []
        self._last_audit_id = 0

    async def add_sign_in(self, sign_in: ConsoleSignIn) -> None:
        """Record a sign-in; its user's failures are forgotten."""
        async with self._console_lock:
            self._sign_ins[sign_in.digest] = sign_in
            self._failures.pop(clip(sign_in.user), None)

    async def find_sign_in(self, digest: str, *, now: float | None = None) -> ConsoleSignIn | None:
        """The live sign-in of ``digest``; an expired one is removed."""
        at = _clock(now)
        async with self._console_lock:
            found = self._sign_ins.get(digest)
            if found is not None and found.expires_at <= at:
                del self._sign_ins[digest]
                return None
            return found

    async def end_sign_in(self, digest: str) -> bool:
        """Remove a sign-in; False if there was none."""
        async with self._console_lock:
            return self._sign_ins.pop(digest, None) is not None

    async def sign_in_failed(
        self, name: str, *, window: float, limit: int, now: float | None = None
    ) -> Lockout | None:
        """Count a failed sign-in of ``name`` (see the base)."""
        at = _clock(now)
        key = clip(name)
        async with self._console_lock:
            lapsed = [n for n, c in self._failures.items() if c.forget_at <= at and n != key]
            for gone in lapsed[:SWEEP]:
                del self._failures[gone]
            count = next_failure(self._failures.get(key), now=at, window=window, limit=limit)
            self._failures[key] = count
            return count.lockout(at)

    async def check_lockout(self, name: str, *, now: float | None = None) -> Lockout | None:
        """The lock-out of ``name`` now, counting this refused attempt."""
        at = _clock(now)
        key = clip(name)
        async with self._console_lock:
            count = self._failures.get(key)
            if count is None or count.lockout(at) is None:
                return None
            count = FailureCount(
                count.failures,
                count.last_at,
                count.locked_until,
                count.refused + 1,
                count.forget_at,
            )
            self._failures[key] = count
            return count.lockout(at)

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
        async with self._console_lock:
            self._last_audit_id += 1
            texts = audit_values(actor, action, target, detail, remote)
            entry = AuditEntry(self._last_audit_id, _clock(now), *texts)
            self._audit.append(entry)
            return entry

    async def list_audit(self, selection: AuditFilter) -> list[AuditEntry]:
        """Audit entries matching ``selection``, newest first."""
        s = selection
        found: list[AuditEntry] = []
        for entry in reversed(self._audit):
            if len(found) >= max(s.limit, 0):
                break
            if (
                (s.actor is None or entry.actor == s.actor)
                and (s.action is None or entry.action == s.action)
                and (s.before_id is None or entry.id < s.before_id)
            ):
                found.append(entry)
        return found

    async def prune_console(
        self, before: float, *, limit: int, audit_before: float | None = None
    ) -> int:
        """Remove up to ``limit`` expired sign-ins, lapsed failure counts and (with
        ``audit_before``) old audit entries, of each."""
        async with self._console_lock:
            expired = [d for d, s in self._sign_ins.items() if s.expires_at <= before][:limit]
            lapsed = [n for n, c in self._failures.items() if c.forget_at <= before][:limit]
            for digest in expired:
                del self._sign_ins[digest]
            for name in lapsed:
                del self._failures[name]
            old = 0
            if audit_before is not None:
                # Entries are appended in time order: the old ones are at the front.
                while old < min(limit, len(self._audit)) and self._audit[old].at < audit_before:
                    old += 1
                del self._audit[:old]
            return len(expired) + len(lapsed) + old
