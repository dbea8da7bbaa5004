-- The console's queries (rsbridge.engine.store.console_sql): the overview's charts and
-- the session search read by these, so that a store with a million events answers a
-- page without reading the tables. Only jobs_by_integration is written by the intake (the
-- others change when a job ends, an attempt fails or the ledger records an effect); a
-- search by time goes through events_by_received and jobs_by_event, a session's own jobs
-- through jobs_by_session.

-- Session search by integration, newest first.
CREATE INDEX jobs_by_integration ON jobs (integration, id);

-- The activity chart: jobs done per time bucket. Partial: unfinished jobs, whose
-- updated_at changes at every claim, do not rewrite it.
CREATE INDEX jobs_done_by_time ON jobs (updated_at) WHERE status = 'done';

-- The activity chart: failed attempts per time bucket.
CREATE INDEX attempts_failed_by_time ON attempts (finished_at)
    WHERE outcome IN ('retry', 'dead');

-- Session search by ticket: the ledger's ticket id, or the ticket number it keeps in
-- its detail (the same expression as the query's, or SQLite will not use it).
CREATE INDEX ledger_by_ticket ON ledger (ticket_id);
CREATE INDEX ledger_by_number ON ledger (json_extract(detail, '$.number'));
