-- The appliance's request budget (20 requests/s, 15,000/h per API account), shared by
-- every node on this database: one row per admitted call, kept for the longest window.
-- See rsbridge.engine.budget.

CREATE TABLE budget_calls (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account  text NOT NULL,
    at       double precision NOT NULL  -- when it counts: sent, then moved to its answer
);

CREATE INDEX budget_calls_by_account ON budget_calls (account, at);

-- A 429 from the appliance holds every node's calls of that account until "until".
CREATE TABLE budget_pauses (
    account  text PRIMARY KEY,
    until    double precision NOT NULL
);
