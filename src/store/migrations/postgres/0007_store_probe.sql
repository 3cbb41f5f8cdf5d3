-- One row the daemon rewrites every few seconds to learn whether the store
-- can still write (a full disk, a read-only server), so that /healthz says
-- so even when no punch is arriving.
CREATE TABLE store_probe (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    at TIMESTAMPTZ NOT NULL
);
