"""The audit log: every operator action in the console, and every sign-in attempt, with
who, what, on what, when and from where.

Kept in the engine's store (so it outlives restarts and is shared by the nodes of a
PostgreSQL store), and written to the ``rsbridge.audit`` logger as well.
"""

from __future__ import annotations

import logging

from rsbridge.engine.store.base import AuditEntry, AuditFilter, Store

__all__ = ["AuditEntry", "AuditLog"]

log = logging.getLogger("rsbridge.audit")


class AuditLog:
    """The console's audit log, in ``store``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def write(
        self, actor: str, action: str, target: str = "", detail: str = "", *, remote: str = ""
    ) -> AuditEntry:
        """Record ``actor`` doing ``action`` on ``target`` from address ``remote``."""
        entry = await self._store.write_audit(
            actor, action, target=target, detail=detail, remote=remote
        )
        # %r: the values may come from a form or a session report; a log line stays one line.
        log.info(
            "audit #%d: %r %s %r %r from %s",
            entry.id,
            entry.actor,
            entry.action,
            entry.target,
            entry.detail,
            entry.remote or "?",
        )
        return entry

    async def newest(
        self, limit: int = 100, *, before: int | None = None, actor: str | None = None
    ) -> list[AuditEntry]:
        """Up to ``limit`` entries, newest first; ``before`` pages back (older ids only)."""
        return await self._store.list_audit(AuditFilter(actor=actor, before_id=before, limit=limit))
