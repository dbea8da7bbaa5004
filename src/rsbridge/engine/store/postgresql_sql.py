"""The statements the PostgreSQL store runs, and the rows they return turned into models.

Kept apart from :mod:`rsbridge.engine.store.postgresql` so that the store module holds
the transactions and this one the SQL. Every value is a bound parameter; the only text
ever put together is from the fixed fragments below.
"""

# ruff: noqa: S608 (text is put together from this module's constants only, see above)

from __future__ import annotations

from typing import Any, Final, cast

from rsbridge.engine.store.base import (
    EventSource,
    EventStatus,
    LedgerEntry,
    LedgerKey,
    StoredEvent,
)

Row = tuple[Any, ...]

NOTIFY_CHANNEL: Final = "rsbridge_jobs"
"""The LISTEN/NOTIFY channel: a notification means a job may have become claimable."""
NOTIFY: Final = f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')"

# A lead (PostgreSQLStore.lead): a session-level advisory lock, never waited for.
TRY_LEAD: Final = "SELECT pg_try_advisory_lock(%s)"

# record_event in one statement (one round trip, its own transaction): the event, or
# one more delivery of it (RETURNING deliveries > 1 tells a duplicate apart, and then no
# job is inserted), its jobs in the order given (identity ids follow the rows), and a
# notification when jobs were queued. Concurrent deliveries of one key wait for each
# other on the unique index.
RECORD_EVENT: Final = """
WITH e AS (
    INSERT INTO events (received_at, appliance_id, event_type, source, dedup_key, status,
                        lsid, external_key, timestamp, form)
    VALUES (%(received_at)s, %(appliance_id)s, %(event_type)s, %(source)s, %(dedup_key)s,
            %(status)s, %(lsid)s, %(external_key)s, %(timestamp)s, %(form)s)
    ON CONFLICT (dedup_key) DO UPDATE SET deliveries = events.deliveries + 1
    RETURNING id, deliveries
), j AS (
    INSERT INTO jobs (event_id, integration, appliance_id, event_type, lsid, rank, status,
                      attempts, run_after, created_at, updated_at)
    SELECT e.id, s.integration, %(appliance_id)s, %(event_type)s, %(lsid)s, s.rank,
           'queued', 0, %(received_at)s, %(received_at)s, %(received_at)s
    FROM e, unnest(%(integrations)s::text[], %(ranks)s::integer[])
            WITH ORDINALITY AS s (integration, rank, n)
    WHERE e.deliveries = 1
    ORDER BY s.n
    RETURNING id
)
SELECT e.id, e.deliveries, ARRAY(SELECT id FROM j ORDER BY id),
       CASE WHEN EXISTS (SELECT 1 FROM j) THEN pg_notify('rsbridge_jobs', '') END::text
FROM e"""
INSERT_JOB: Final = """
INSERT INTO jobs (event_id, integration, appliance_id, event_type, lsid, rank, status,
                  attempts, run_after, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, 'queued', 0, %s, %s, %s)
RETURNING id"""
# The columns the row converters below read, in order.
EVENT_COLUMNS: Final = """id, received_at, appliance_id, event_type, source, dedup_key, status,
       deliveries, lsid, external_key, timestamp, form"""
SELECT_EVENT: Final = """
SELECT id, received_at, appliance_id, event_type, source, dedup_key, status,
       deliveries, lsid, external_key, timestamp, form
FROM events WHERE id = %s"""
# FOR KEY SHARE: the event cannot be pruned while its new jobs are queued.
SELECT_EVENT_FOR_REPLAY: Final = (
    "SELECT appliance_id, event_type, lsid FROM events WHERE id = %s FOR KEY SHARE"
)
MARK_EVENT_ACCEPTED: Final = "UPDATE events SET status = 'accepted' WHERE id = %s"

JOB_COLUMNS: Final = """id, event_id, integration, appliance_id, event_type, lsid, rank, status,
       attempts, run_after, created_at, updated_at, last_error, lease_owner, lease_until"""

# Runnable, first of its session and integration among unfinished jobs, and no other
# job of that session at work on any node under a live lease. FOR UPDATE
# SKIP LOCKED: concurrent claimers (other workers, other nodes) pass over the rows one
# of them is taking instead of waiting for it, and a row another claimer changed since
# this statement's snapshot is re-checked against the WHERE clause before it is locked,
# so no job is handed out twice. A predecessor being finished concurrently still counts
# as unfinished here: the job waits for the next claim, it never overtakes.
SELECT_CLAIMABLE: Final = """
SELECT j.id, j.event_id, j.integration, j.appliance_id, j.event_type, j.lsid, j.rank,
       j.status, j.attempts, j.run_after, j.created_at, j.updated_at, j.last_error,
       j.lease_owner, j.lease_until, j.claimed_at
FROM jobs AS j
WHERE j.status IN ('queued', 'running')
  AND ((j.status = 'queued' AND j.run_after <= %(now)s)
       OR (j.status = 'running' AND j.lease_until <= %(now)s))
  AND (j.lsid IS NULL OR NOT EXISTS (
        SELECT 1 FROM jobs AS p
        WHERE p.status IN ('queued', 'running')
          AND p.appliance_id = j.appliance_id
          AND p.lsid = j.lsid
          AND p.integration = j.integration
          AND (p.rank < j.rank OR (p.rank = j.rank AND p.id < j.id)
               OR (p.status = 'running' AND p.lease_until > %(now)s AND p.id <> j.id))))
  {exclude}
ORDER BY j.id
LIMIT %(limit)s
FOR UPDATE OF j SKIP LOCKED"""
# Held until the claim's transaction ends; taken before its snapshot.
CLAIM_TURN: Final = "SELECT pg_advisory_xact_lock(%s)"
EXCLUDE_APPLIANCES: Final = "AND NOT (j.appliance_id = ANY(%(exclude)s))"
CLAIM_JOBS: Final = """
UPDATE jobs SET status = 'running', lease_owner = %(owner)s, lease_until = %(until)s,
                claimed_at = %(now)s, updated_at = %(now)s
WHERE id = ANY(%(ids)s)"""
EXTEND_LEASE: Final = """
UPDATE jobs SET lease_until = %(until)s, updated_at = %(now)s
WHERE id = ANY(%(ids)s) AND status = 'running' AND lease_owner = %(owner)s"""
# finish in one statement: the job's new state and its attempt (numbered after the
# others: only the holder of the row's lock adds attempts). Nothing happens, and 0 is
# returned, when the owner no longer holds the job. Other nodes are notified only when the
# finish made a job claimable: this one re-queued, or a later job of its session waiting
# for it. A NOTIFY serialises the commits that send one (the server takes a database-wide
# lock before such a commit and holds it through the WAL flush), so one per finished job
# held every worker of every node in one line; this node's own workers are woken
# in-process (PostgreSQLStore.finish).
FINISH_JOB: Final = """
WITH f AS (
    UPDATE jobs SET status = %(status)s, attempts = attempts + %(failed)s,
                    run_after = COALESCE(%(run_after)s::double precision, run_after),
                    last_error = CASE WHEN %(status)s = 'done' THEN %(error)s::text
                                      ELSE COALESCE(%(error)s::text, last_error) END,
                    lease_owner = NULL, lease_until = NULL, claimed_at = NULL,
                    updated_at = %(now)s
    WHERE id = %(id)s AND status = 'running' AND lease_owner = %(owner)s
    RETURNING id, status, appliance_id, lsid, integration
), a AS (
    INSERT INTO attempts (job_id, number, owner, started_at, finished_at, outcome, error)
    SELECT f.id, (SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE job_id = f.id),
           %(owner)s, %(started_at)s, %(now)s, %(outcome)s, %(error)s
    FROM f
    RETURNING job_id
)
SELECT (SELECT COUNT(*) FROM a),
       CASE WHEN EXISTS (
           SELECT 1 FROM f
           WHERE f.status = 'queued'
              OR (f.lsid IS NOT NULL AND EXISTS (
                    SELECT 1 FROM jobs AS n
                    WHERE n.appliance_id = f.appliance_id AND n.lsid = f.lsid
                      AND n.integration = f.integration AND n.status = 'queued'
                      AND n.id <> f.id)))
       THEN pg_notify('rsbridge_jobs', '') END::text"""
# FINISH_JOB with the attempt's last effects recorded in the same statement (one round
# trip, one atomic commit): inserted whoever holds the job, as the effect happened. The
# third column lists the keys that were new (the deliveries).
FINISH_JOB_WITH_LEDGER: Final = (
    """
WITH l AS (
    INSERT INTO ledger (appliance_id, lsid, event, integration, effect, ticket_id, ref,
                        created_at, detail)
    SELECT * FROM unnest(%(l_appliance)s::text[], %(l_lsid)s::text[], %(l_event)s::text[],
                         %(l_integration)s::text[], %(l_effect)s::text[],
                         %(l_ticket)s::text[], %(l_ref)s::text[],
                         %(l_created)s::double precision[], %(l_detail)s::jsonb[])
    ON CONFLICT (appliance_id, lsid, event, integration, effect) DO NOTHING
    RETURNING appliance_id, lsid, event, integration, effect
), """
    + FINISH_JOB.removeprefix("\nWITH ")
    + """,
       (SELECT json_agg(json_build_array(appliance_id, lsid, event, integration, effect))
        FROM l)"""
)
# Locked in id order, as claim() locks them, so that the two cannot deadlock.
RELEASE_HELD: Final = """
WITH held AS (
    SELECT id, claimed_at FROM jobs
    WHERE status = 'running' AND lease_owner = %(owner)s
    ORDER BY id FOR UPDATE
)
UPDATE jobs AS j SET status = 'queued', lease_owner = NULL, lease_until = NULL,
                     claimed_at = NULL, updated_at = %(now)s
FROM held WHERE j.id = held.id
RETURNING j.id, held.claimed_at"""
RETRY_DEAD_JOB: Final = """
UPDATE jobs SET status = 'queued', attempts = 0, run_after = %(now)s, updated_at = %(now)s
WHERE id = %(id)s AND status = 'dead'"""
SELECT_JOB: Final = """
SELECT id, event_id, integration, appliance_id, event_type, lsid, rank, status,
       attempts, run_after, created_at, updated_at, last_error, lease_owner, lease_until
FROM jobs WHERE id = %s"""

# Only the holder of the job's row lock (claim, finish, release) adds attempts to it,
# so MAX(number) + 1 cannot race.
INSERT_ATTEMPT: Final = """
INSERT INTO attempts (job_id, number, owner, started_at, finished_at, outcome, error)
VALUES (%(job_id)s,
        (SELECT COALESCE(MAX(number), 0) + 1 FROM attempts WHERE job_id = %(job_id)s),
        %(owner)s, %(started_at)s, %(finished_at)s, %(outcome)s, %(error)s)"""
SELECT_ATTEMPTS: Final = """
SELECT job_id, number, owner, started_at, finished_at, outcome, error
FROM attempts WHERE job_id = %s ORDER BY number"""

LEDGER_COLUMNS: Final = (
    "appliance_id, lsid, event, integration, effect, ticket_id, ref, created_at, detail"
)
SELECT_LEDGER: Final = """
SELECT appliance_id, lsid, event, integration, effect, ticket_id, ref, created_at,
       detail
FROM ledger
WHERE appliance_id = %s AND lsid = %s AND event = %s AND integration = %s AND effect = %s"""
# ledger_put in one statement: the entry, or the one that stands. A concurrent insert of
# the same key is waited for; DO UPDATE (which changes nothing) then returns the row that
# committed first, which a second statement's new snapshot was needed for with DO NOTHING.
PUT_LEDGER: Final = """
INSERT INTO ledger (appliance_id, lsid, event, integration, effect, ticket_id, ref,
                    created_at, detail)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (appliance_id, lsid, event, integration, effect)
DO UPDATE SET ticket_id = ledger.ticket_id
RETURNING appliance_id, lsid, event, integration, effect, ticket_id, ref, created_at,
          detail"""
SELECT_LEDGER_FOR_SESSION: Final = """
SELECT appliance_id, lsid, event, integration, effect, ticket_id, ref, created_at,
       detail
FROM ledger WHERE appliance_id = %s AND lsid = %s
ORDER BY created_at, seq"""
# The same for many sessions: one array of appliance ids, one of lsids.
SELECT_LEDGER_FOR_SESSIONS: Final = """
SELECT l.appliance_id, l.lsid, l.event, l.integration, l.effect, l.ticket_id, l.ref,
       l.created_at, l.detail
FROM unnest(%s::text[], %s::text[]) AS s (appliance_id, lsid)
JOIN ledger AS l USING (appliance_id, lsid)
ORDER BY l.created_at, l.seq"""

SELECT_WATERMARK: Final = "SELECT value FROM watermarks WHERE name = %s"
UPSERT_WATERMARK: Final = """
INSERT INTO watermarks (name, value, updated_at) VALUES (%s, %s, %s)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"""

COUNT_JOBS_BY_STATUS: Final = "SELECT status, COUNT(*) FROM jobs GROUP BY status"
COUNT_EVENTS: Final = """
SELECT (SELECT COUNT(*) FROM events),
       (SELECT COUNT(*) FROM events WHERE status = 'ignored')"""

# list_events / list_jobs: WHERE is assembled from these fixed fragments only.
SELECT_EVENTS: Final = """
SELECT id, received_at, appliance_id, event_type, source, dedup_key, status,
       deliveries, lsid, external_key, timestamp, form
FROM events"""
EVENT_CONDITIONS: Final = {
    "appliance_id": "appliance_id = %(appliance_id)s",
    "lsid": "lsid = %(lsid)s",
    "event_type": "event_type = %(event_type)s",
    "status": "status = %(status)s",
    "before_id": "id < %(before_id)s",
}
SELECT_JOBS: Final = """
SELECT id, event_id, integration, appliance_id, event_type, lsid, rank, status,
       attempts, run_after, created_at, updated_at, last_error, lease_owner, lease_until
FROM jobs"""
JOB_CONDITIONS: Final = {
    "status": "status = %(status)s",
    "integration": "integration = %(integration)s",
    "event_id": "event_id = %(event_id)s",
    "lsid": "lsid = %(lsid)s",
    "before_id": "id < %(before_id)s",
    "updated_since": "updated_at >= %(updated_since)s",
}
NEWEST_FIRST: Final = " ORDER BY id DESC LIMIT %(limit)s"


def select_where(select: str, conditions: dict[str, str], params: dict[str, Any]) -> str:
    """``select`` with the conditions whose parameter is set, newest first."""
    terms = [conditions[name] for name, value in params.items() if value is not None]
    where = f" WHERE {' AND '.join(terms)}" if terms else ""
    return select + where + NEWEST_FIRST


def event_from_row(row: Row) -> StoredEvent:
    """A :class:`StoredEvent` from :data:`EVENT_COLUMNS`."""
    return StoredEvent(
        id=row[0],
        received_at=row[1],
        appliance_id=row[2],
        event_type=row[3],
        source=cast(EventSource, row[4]),
        dedup_key=row[5],
        status=EventStatus(row[6]),
        deliveries=row[7],
        lsid=row[8],
        external_key=row[9],
        timestamp=row[10],
        form=tuple((str(name), str(value)) for name, value in row[11]),
    )


def ledger_from_row(row: Row) -> LedgerEntry:
    """A :class:`LedgerEntry` from :data:`LEDGER_COLUMNS`."""
    return LedgerEntry(
        key=LedgerKey(*row[:5]),
        ticket_id=row[5],
        ref=row[6],
        created_at=row[7],
        detail={str(k): str(v) for k, v in row[8].items()},
    )
