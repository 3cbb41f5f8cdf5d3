-- Quarantine rows keep what a replay needs (`attendd quarantine replay`):
-- the pipeline source that received the payload, its decoder and options
-- (JSON), the device id and zone it was decoded with, and the MQTT topic.
-- `received_at` of new rows is the arrival time (card readers are stamped
-- on arrival). `kind`: `undecodable` (pruned after
-- [store] quarantine_retention_days), `unknown` (a punch for an employee
-- or alias nobody holds: a punch, kept as long as punches) or `summary`
-- (the count of an upload's bad records beyond the first 100).
-- `resolved_at`/`resolved_by`: set once a replay stored what the row held.
ALTER TABLE quarantine ADD COLUMN kind TEXT NOT NULL DEFAULT 'undecodable';
ALTER TABLE quarantine ADD COLUMN pipeline_source TEXT;
ALTER TABLE quarantine ADD COLUMN topic TEXT;
ALTER TABLE quarantine ADD COLUMN decoder TEXT;
ALTER TABLE quarantine ADD COLUMN decoder_options TEXT;
ALTER TABLE quarantine ADD COLUMN device_id TEXT;
ALTER TABLE quarantine ADD COLUMN timezone TEXT;
ALTER TABLE quarantine ADD COLUMN resolved_at TEXT;
ALTER TABLE quarantine ADD COLUMN resolved_by TEXT;
UPDATE quarantine SET kind = 'unknown' WHERE reason LIKE 'unknown alias%';
CREATE INDEX quarantine_kind_received ON quarantine (kind, received_at);

-- A stored punch taken out of classification (e.g. shifted by a misread
-- terminal time offset). Punches stay append-only; a supersede row is
-- itself append-only and audited.
CREATE TABLE punch_supersedes (
    id          INTEGER PRIMARY KEY,
    punch_id    INTEGER NOT NULL UNIQUE REFERENCES punches (id),
    reason      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE TRIGGER punch_supersedes_no_update BEFORE UPDATE ON punch_supersedes
BEGIN SELECT RAISE(ABORT, 'punch supersedes are append-only: UPDATE refused'); END;
CREATE TRIGGER punch_supersedes_no_delete BEFORE DELETE ON punch_supersedes
BEGIN SELECT RAISE(ABORT, 'punch supersedes are append-only: DELETE refused'); END;
