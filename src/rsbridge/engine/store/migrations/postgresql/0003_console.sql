-- The admin console's sign-ins, failed sign-in counts and audit log, shared by every
-- node: a sign-in made on one node holds on the others, a failure on one counts on all.

-- One signed-in browser. Only the SHA-256 (hex) of the cookie's token is kept: reading
-- the database does not let anyone sign in.
CREATE TABLE console_sign_ins (
    digest      text PRIMARY KEY,
    user_name   text NOT NULL,
    csrf        text NOT NULL,
    started_at  double precision NOT NULL,
    expires_at  double precision NOT NULL
);

-- Retention removes expired sign-ins in expiry order.
CREATE INDEX console_sign_ins_by_expiry ON console_sign_ins (expires_at);

-- Failed sign-ins of one user name (known or not): one row per name, however many
-- attempts (updated under its row lock); forget_at is when the row stops mattering.
CREATE TABLE console_failures (
    name          text PRIMARY KEY,
    failures      integer NOT NULL,
    last_at       double precision NOT NULL,
    locked_until  double precision,
    refused       integer NOT NULL DEFAULT 0,
    forget_at     double precision NOT NULL
);

CREATE INDEX console_failures_by_forget ON console_failures (forget_at);

-- Who did what in the console, on what, when and from where; ids page the log.
CREATE TABLE audit_log (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      double precision NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL DEFAULT '',
    detail  text NOT NULL DEFAULT '',
    remote  text NOT NULL DEFAULT ''
);

-- One actor's entries newest first (e.g. a name's failed sign-ins); the whole log
-- newest first walks the primary key.
CREATE INDEX audit_log_by_actor ON audit_log (actor, action, id);
