-- Real sites (policy.md, "Real sites"): employment dates per employee, and
-- the store's own settings, starting with the first date it classifies
-- automatically (`classify_from`).
ALTER TABLE employees ADD COLUMN start_date TEXT;
ALTER TABLE employees ADD COLUMN end_date TEXT;

-- One row per setting. `classify_from` (YYYY-MM-DD) is written once, the
-- first time it is needed; `classify_from_applied` records that the
-- absences stored before it were voided after the upgrade.
CREATE TABLE store_settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
