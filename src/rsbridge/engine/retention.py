"""Retention: what the store keeps, and pruning the rest (``rsbridge events prune``, ``serve``).

The ``[engine]`` settings give ages; :func:`retention_policy` turns them into the cut-off
times of a :class:`~rsbridge.engine.store.base.RetentionPolicy`, and :func:`prune` applies
it in bounded steps, so that the store's writer is never held long and the intake's
writes pass between steps. What may go and what never does is the store's rule (see
``RetentionPolicy``): finished events with their jobs and attempts; dead letters only with
their own age; ledger entries only when asked, never while an event of the session is
stored.
"""

from __future__ import annotations

import asyncio
import time

from rsbridge.config import EngineConfig
from rsbridge.engine.store.base import PruneCounts, RetentionPolicy, Store

__all__ = ["DAY", "PRUNE_BATCH", "prune", "retention_policy"]

DAY = 86400.0
PRUNE_BATCH = 500
"""Events (and sessions' ledger entries) removed per step: a few milliseconds of writing."""


def retention_policy(
    engine: EngineConfig,
    *,
    now: float | None = None,
    older_than: float | None = None,
    dead_older_than: float | None = None,
) -> RetentionPolicy:
    """The cut-offs of ``engine``'s retention settings at ``now``.

    ``older_than`` and ``dead_older_than`` (seconds) replace ``retention_days`` and
    ``dead_letter_retention_days`` (``rsbridge events prune`` options).
    """
    at = time.time() if now is None else now
    finished = engine.retention_days * DAY if older_than is None else older_than
    dead = dead_older_than
    if dead is None and engine.dead_letter_retention_days is not None:
        dead = engine.dead_letter_retention_days * DAY
    ledger = engine.ledger_retention_days
    return RetentionPolicy(
        finished_before=at - finished,
        dead_before=None if dead is None else at - dead,
        ledger_before=None if ledger is None else at - ledger * DAY,
        console_before=at,
        audit_before=at - engine.audit_retention_days * DAY,
    )


async def prune(
    store: Store,
    policy: RetentionPolicy,
    *,
    batch: int = PRUNE_BATCH,
    stop: asyncio.Event | None = None,
) -> PruneCounts:
    """Prune until nothing ``policy`` allows is left (or ``stop`` is set); what went.

    Expired console sign-ins, lapsed failed sign-in counts and old audit entries go too
    (not counted in the result: they are not the event history it reports on).
    """
    total = PruneCounts()
    while stop is None or not stop.is_set():
        step = await store.prune(policy, limit=batch)
        if not step:
            break
        total += step
        # Let the coroutines waiting to write (the intake) queue before the next step.
        await asyncio.sleep(0)
    while policy.console_before is not None and (stop is None or not stop.is_set()):
        pruned = await store.prune_console(
            policy.console_before, limit=batch, audit_before=policy.audit_before
        )
        if not pruned:
            break
        await asyncio.sleep(0)
    return total
