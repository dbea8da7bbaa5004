-- The first schema of the PostgreSQL store (see rsbridge.engine.store.base for the model).
--
-- Applied in one transaction, under an advisory lock, by PostgreSQLStore.open() or
-- `rsbridge store migrate`, which record it in schema_migrations. Never edit a released
-- migration: add a numbered file instead. Times are UNIX seconds (double precision), as
-- in the SQLite store, so that both backends hand out the same values.

-- Every delivery the intake acknowledged and every session a poller found. Identity ids
-- are never reused: operators see them (CLI, logs).
CREATE TABLE events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at   double precision NOT NULL,
    appliance_id  text    NOT NULL,
    event_type    text    NOT NULL,
    source        text    NOT NULL,
    dedup_key     text    NOT NULL UNIQUE,
    status        text    NOT NULL CHECK (status IN ('accepted', 'ignored')),
    deliveries    integer NOT NULL DEFAULT 1,
    lsid          text,
    external_key  text,
    timestamp     bigint,
    form          jsonb   NOT NULL DEFAULT '[]'  -- array of [name, value], as received
);

CREATE INDEX events_by_session ON events (appliance_id, lsid, id);
CREATE INDEX events_by_type ON events (event_type, id);
CREATE INDEX events_by_status ON events (status, id);
CREATE INDEX events_by_received ON events (received_at);

-- One event to process for one integration. claimed_at is internal: when the current
-- lease began, used as started_at of EXPIRED and RELEASED attempts.
CREATE TABLE jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id      bigint  NOT NULL REFERENCES events (id),
    integration   text    NOT NULL,
    appliance_id  text    NOT NULL,
    event_type    text    NOT NULL,
    lsid          text,
    rank          integer NOT NULL,
    status        text    NOT NULL CHECK (status IN ('queued', 'running', 'done', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    run_after     double precision NOT NULL,
    created_at    double precision NOT NULL,
    updated_at    double precision NOT NULL,
    last_error    text,
    lease_owner   text,
    lease_until   double precision,
    claimed_at    double precision
);

CREATE INDEX jobs_by_event ON jobs (event_id);
CREATE INDEX jobs_by_status ON jobs (status, id);
CREATE INDEX jobs_by_session ON jobs (lsid, id);

-- claim() walks unfinished jobs oldest first; partial, so its size follows the backlog
-- rather than the history.
CREATE INDEX jobs_unfinished ON jobs (id, status, run_after, lease_until)
    WHERE status IN ('queued', 'running');

-- claim()'s per-session ordering check: is there an unfinished job of the same session
-- and integration before this one in (rank, id) order?
CREATE INDEX jobs_session_order ON jobs (appliance_id, lsid, integration, rank, id)
    WHERE status IN ('queued', 'running');

-- Every try at a job, numbered in the order they ended.
CREATE TABLE attempts (
    job_id       bigint  NOT NULL REFERENCES jobs (id),
    number       integer NOT NULL,
    owner        text    NOT NULL,
    started_at   double precision NOT NULL,
    finished_at  double precision NOT NULL,
    outcome      text    NOT NULL
        CHECK (outcome IN ('done', 'retry', 'dead', 'wait', 'released', 'expired')),
    error        text,
    PRIMARY KEY (job_id, number)
);

-- The idempotency ledger: one row per effect that happened. seq orders entries recorded
-- at the same created_at (SQLite's rowid).
CREATE TABLE ledger (
    appliance_id  text NOT NULL,
    lsid          text NOT NULL,
    event         text NOT NULL,
    integration   text NOT NULL,
    effect        text NOT NULL,
    ticket_id     text NOT NULL,
    ref           text NOT NULL,
    created_at    double precision NOT NULL,
    detail        jsonb NOT NULL DEFAULT '{}',  -- object of strings
    seq           bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    PRIMARY KEY (appliance_id, lsid, event, integration, effect)
);

CREATE INDEX ledger_by_created ON ledger (created_at);

-- The pollers' watermarks.
CREATE TABLE watermarks (
    name        text PRIMARY KEY,
    value       double precision NOT NULL,
    updated_at  double precision NOT NULL
);
