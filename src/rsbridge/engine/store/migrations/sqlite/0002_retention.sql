-- Retention (SQLiteStore.prune) walks old events and old ledger entries in time order:
-- without these, every pruning step would read the whole table to find them.

CREATE INDEX events_by_received ON events (received_at);

CREATE INDEX ledger_by_created ON ledger (created_at);
