"""The audit log: every operator action in the console, with who, what and when.

Kept in this process's memory and written to the ``rsbridge.audit`` logger.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

log = logging.getLogger("rsbridge.audit")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded action."""

    at: float
    actor: str
    action: str
    target: str = ""
    detail: str = ""


class AuditLog:
    """The console's audit log."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []

    async def write(self, actor: str, action: str, target: str = "", detail: str = "") -> None:
        """Record ``actor`` doing ``action`` on ``target``."""
        entry = AuditEntry(time.time(), actor, action, target, detail)
        self._entries.append(entry)
        log.info("audit: %s %s %s %s", actor, action, target, detail)

    async def newest(self, limit: int = 100) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first."""
        return list(reversed(self._entries[-limit:]))
