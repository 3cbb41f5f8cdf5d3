-- Alerts and daily summaries waiting to be delivered, one row per message,
-- and one delivery row per (message, sink). A message's `key` is unique,
-- so an alert decided twice (a restart, a second tick) is stored once; a
-- delivery is marked sent only after its sink accepted it, so a crash in
-- between sends it again (receivers dedupe by the `id` in the message).
CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    key        TEXT NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_kind ON outbox (kind, created_at);

CREATE TABLE outbox_deliveries (
    outbox_id       BIGINT NOT NULL REFERENCES outbox (id),
    sink            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    sent_at         TIMESTAMPTZ,
    last_error      TEXT,
    PRIMARY KEY (outbox_id, sink)
);
CREATE INDEX outbox_deliveries_due ON outbox_deliveries (sent_at, next_attempt_at);

-- Closed days: the summary as last published, and its revision (0 for the
-- first close, +1 for each correction after late data).
CREATE TABLE day_closes (
    date         DATE PRIMARY KEY,
    revision     INTEGER NOT NULL,
    summary      TEXT NOT NULL,
    summary_hash TEXT NOT NULL,
    closed_at    TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
