"""Fixing what failed: re-queue dead letters, replay recorded events, read a "since" time.

Shared by the command line (``rsbridge events retry --dead``, ``rsbridge events replay``)
and the admin console (``/admin/dead``, ``/admin/replay``), so that both follow one set
of rules. Effects stay once-only either way: the ledger keeps a replay from writing what
is already on the ticket.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rsbridge.config import Config
from rsbridge.engine.intake import job_specs
from rsbridge.engine.store.base import (
    EventFilter,
    JobFilter,
    JobSpec,
    JobStatus,
    Store,
    StoredEvent,
)

RETRY_PAGE = 500
"""Dead letters re-queued per store query by :func:`retry_dead`."""
REPLAY_PAGE = 200
"""Events of a session read per store query by :func:`replay_session`."""

_AGO_UNITS = {"m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, *, now: float | None = None) -> float:
    """``2026-11-20``, an ISO date-time (UTC unless it says otherwise), or a span ago
    (``30m``, ``12h``, ``3d``), as UNIX seconds.

    Raises:
        ValueError: ``text`` is none of these.
    """
    text = text.strip()
    moment = datetime.now(UTC).timestamp() if now is None else now
    if re.fullmatch(r"[0-9]{1,9}[mhd]", text):
        found = moment - int(text[:-1]) * _AGO_UNITS[text[-1]]
    else:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("use a date, an ISO date-time, or 30m / 12h / 3d") from None
        found = (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    # Nothing the store holds is older than 1970 or from the future: such a time is a
    # typo, and past the calendar's range it would fail wherever it is shown.
    if not 0 <= found <= moment + 86400:
        raise ValueError("that time is before 1970 or in the future")
    return found


async def retry_dead(store: Store, integration: str | None, since: float | None) -> int:
    """Re-queue the dead letters of ``integration`` (None: all) that died at or after
    ``since`` (None: whenever); how many were re-queued.

    A page at a time, newest first, each next page older than the last: a job that dies
    again while this runs (its system still down) is not met twice. A job another process
    re-queued meanwhile is not counted.
    """
    count = 0
    before: int | None = None
    while True:
        page = await store.list_jobs(
            JobFilter(
                status=JobStatus.DEAD,
                integration=integration,
                updated_since=since,
                before_id=before,
                limit=RETRY_PAGE,
            )
        )
        for job in page:
            count += await store.retry_job(job.id)
        if len(page) < RETRY_PAGE:
            return count
        before = page[-1].id


def replay_specs(
    config: Config, event: StoredEvent, integration: str | None = None
) -> list[JobSpec]:
    """The jobs a replay of ``event`` queues: one per enabled integration that processes
    its type from its source (pushed or polled), as the intake would queue it today;
    only ``integration``'s when given."""
    specs = job_specs(
        config, event.appliance_id, event.event_type, polled=event.source in ("poll", "pull")
    )
    return [s for s in specs if integration is None or s.integration == integration]


async def replay_session(
    config: Config, store: Store, appliance_id: str, lsid: str, integration: str
) -> list[int]:
    """Queue every recorded event of a session again for ``integration`` (the ones it
    processes), oldest first; the ids of the jobs queued (empty: none it processes).

    Effects already in the ledger are not repeated: a replay completes what is missing.
    """
    events: list[StoredEvent] = []
    before: int | None = None
    while True:
        page = await store.list_events(
            EventFilter(appliance_id=appliance_id, lsid=lsid, before_id=before, limit=REPLAY_PAGE)
        )
        events += page
        if len(page) < REPLAY_PAGE:
            break
        before = page[-1].id
    created: list[int] = []
    for event in reversed(events):
        specs = replay_specs(config, event, integration)
        if specs:
            created += await store.replay_event(event.id, specs)
    return created
