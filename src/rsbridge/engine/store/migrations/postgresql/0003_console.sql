-- The console's queries (rsbridge.engine.store.console_sql): the overview's charts and
-- the session search read by these, so that a store with a million events answers a
-- page without reading the tables.

-- Session search by integration, newest first.
CREATE INDEX jobs_by_integration ON jobs (integration, id);

-- Session search by time.
CREATE INDEX jobs_by_created ON jobs (created_at);

-- The activity chart: jobs done per time bucket (partial: unfinished jobs, whose
-- updated_at changes at every claim, do not rewrite it).
CREATE INDEX jobs_done_by_time ON jobs (updated_at) WHERE status = 'done';

-- The activity chart: failed attempts per time bucket.
CREATE INDEX attempts_failed_by_time ON attempts (finished_at)
    WHERE outcome IN ('retry', 'dead');

-- Session search by ticket: the ledger's ticket id, or the ticket number in its detail.
CREATE INDEX ledger_by_ticket ON ledger (ticket_id);
CREATE INDEX ledger_by_number ON ledger ((detail ->> 'number'));

-- A session's jobs for one integration (the search's per-row lookups: its state, its
-- newest job, its last error).
CREATE INDEX jobs_of_session ON jobs (lsid, appliance_id, integration, id);
