-- The admin console's sign-ins, failed sign-in counts and audit log: in the store, so
-- that they hold across restarts and for every process sharing the file.

-- One signed-in browser. Only the SHA-256 (hex) of the cookie's token is kept: reading
-- the file does not let anyone sign in.
CREATE TABLE console_sign_ins (
    digest      TEXT PRIMARY KEY,
    user_name   TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    started_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
) WITHOUT ROWID;

-- Retention removes expired sign-ins in expiry order.
CREATE INDEX console_sign_ins_by_expiry ON console_sign_ins (expires_at);

-- Failed sign-ins of one user name (known or not): one row per name, however many
-- attempts; forget_at is when the row stops mattering and may go.
CREATE TABLE console_failures (
    name          TEXT PRIMARY KEY,
    failures      INTEGER NOT NULL,
    last_at       REAL    NOT NULL,
    locked_until  REAL,
    refused       INTEGER NOT NULL DEFAULT 0,
    forget_at     REAL    NOT NULL
) WITHOUT ROWID;

CREATE INDEX console_failures_by_forget ON console_failures (forget_at);

-- Who did what in the console, on what, when and from where. AUTOINCREMENT: ids page
-- the log (?before=<id>) and are never reused.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT '',
    remote  TEXT NOT NULL DEFAULT ''
);

-- One actor's entries newest first (e.g. a name's failed sign-ins); the whole log
-- newest first walks the primary key.
CREATE INDEX audit_log_by_actor ON audit_log (actor, action, id);
