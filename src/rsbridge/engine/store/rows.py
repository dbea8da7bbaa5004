"""Stored rows as the store's records, the same for every SQL backend (SQLite, PostgreSQL):
their ``SELECT`` lists name the columns in this order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rsbridge.engine.store.base import Attempt, AttemptOutcome, Job, JobStatus, LedgerKey

Row = Sequence[Any]

__all__ = ["attempt_from_row", "job_from_row", "ledger_key_params"]


def job_from_row(row: Row) -> Job:
    """A :class:`Job` from the job columns, in table order (extra columns are ignored)."""
    return Job(
        id=row[0],
        event_id=row[1],
        integration=row[2],
        appliance_id=row[3],
        event_type=row[4],
        lsid=row[5],
        rank=row[6],
        status=JobStatus(row[7]),
        attempts=row[8],
        run_after=row[9],
        created_at=row[10],
        updated_at=row[11],
        last_error=row[12],
        lease_owner=row[13],
        lease_until=row[14],
    )


def attempt_from_row(row: Row) -> Attempt:
    """An :class:`Attempt` from job id, number, owner, start, finish, outcome, error."""
    return Attempt(
        job_id=row[0],
        number=row[1],
        owner=row[2],
        started_at=row[3],
        finished_at=row[4],
        outcome=AttemptOutcome(row[5]),
        error=row[6],
    )


def ledger_key_params(key: LedgerKey) -> tuple[str, str, str, str, str]:
    """The bound parameters of :data:`SELECT_LEDGER` for ``key``."""
    return (key.appliance_id, key.lsid, key.event, key.integration, key.effect)
