-- One row the daemon rewrites every few seconds to learn whether the store
-- can still write (a full disk answers "database or disk is full"), so that
-- /healthz says so even when no punch is arriving.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT NOT NULL
);
