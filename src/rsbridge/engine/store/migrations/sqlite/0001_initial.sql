-- The first schema of the SQLite store (see rsbridge.engine.store.base for the model).
--
-- Applied in one transaction by SQLiteStore.open(), which records it in
-- schema_migrations. Never edit a released migration: add a numbered file instead.

-- Every delivery the intake acknowledged and every session a poller found.
-- AUTOINCREMENT: ids are shown to operators (CLI, logs) and must never be reused,
-- even if old rows are purged one day.
CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at   REAL    NOT NULL,
    appliance_id  TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    source        TEXT    NOT NULL,
    dedup_key     TEXT    NOT NULL UNIQUE,
    status        TEXT    NOT NULL CHECK (status IN ('accepted', 'ignored')),
    deliveries    INTEGER NOT NULL DEFAULT 1,
    lsid          TEXT,
    external_key  TEXT,
    timestamp     INTEGER,
    form          TEXT    NOT NULL DEFAULT '[]'  -- JSON array of [name, value], as received
);

CREATE INDEX events_by_session ON events (lsid, id);
CREATE INDEX events_by_type ON events (event_type, id);
CREATE INDEX events_by_status ON events (status, id);

-- One event to process for one integration. claimed_at is internal: when the
-- current lease began, used as started_at of EXPIRED and RELEASED attempts.
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      INTEGER NOT NULL REFERENCES events (id),
    integration   TEXT    NOT NULL,
    appliance_id  TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    lsid          TEXT,
    rank          INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    run_after     REAL    NOT NULL,
    created_at    REAL    NOT NULL,
    updated_at    REAL    NOT NULL,
    last_error    TEXT,
    lease_owner   TEXT,
    lease_until   REAL,
    claimed_at    REAL
);

CREATE INDEX jobs_by_event ON jobs (event_id);
CREATE INDEX jobs_by_status ON jobs (status, id);
CREATE INDEX jobs_by_session ON jobs (lsid, id);

-- claim() walks unfinished jobs oldest first. Partial, so its size follows the
-- backlog rather than the history; covering, so rows that are not runnable yet
-- (backoff, live lease) are skipped without reading the table.
CREATE INDEX jobs_unfinished ON jobs (id, status, run_after, lease_until)
    WHERE status IN ('queued', 'running');

-- claim()'s per-session ordering check: is there an unfinished job of the same
-- session and integration before this one in (rank, id) order?
CREATE INDEX jobs_session_order ON jobs (appliance_id, lsid, integration, rank, id)
    WHERE status IN ('queued', 'running');

-- Every try at a job, numbered in the order they ended.
CREATE TABLE attempts (
    job_id       INTEGER NOT NULL REFERENCES jobs (id),
    number       INTEGER NOT NULL,
    owner        TEXT    NOT NULL,
    started_at   REAL    NOT NULL,
    finished_at  REAL    NOT NULL,
    outcome      TEXT    NOT NULL
        CHECK (outcome IN ('done', 'retry', 'dead', 'wait', 'released', 'expired')),
    error        TEXT,
    PRIMARY KEY (job_id, number)
) WITHOUT ROWID;

-- The idempotency ledger: one row per effect that happened.
CREATE TABLE ledger (
    appliance_id  TEXT NOT NULL,
    lsid          TEXT NOT NULL,
    event         TEXT NOT NULL,
    integration   TEXT NOT NULL,
    effect        TEXT NOT NULL,
    ticket_id     TEXT NOT NULL,
    ref           TEXT NOT NULL,
    created_at    REAL NOT NULL,
    detail        TEXT NOT NULL DEFAULT '{}',  -- JSON object of strings
    PRIMARY KEY (appliance_id, lsid, event, integration, effect)
);

-- The pollers' watermarks.
CREATE TABLE watermarks (
    name        TEXT PRIMARY KEY,
    value       REAL NOT NULL,
    updated_at  REAL NOT NULL
);
