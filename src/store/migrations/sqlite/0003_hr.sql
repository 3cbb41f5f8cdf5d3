-- HR's side: corrections (补卡) and who filed an appeal.

-- A forgotten punch confirmed by a supervisor. Raw punches stay untouched;
-- a recompute reads these beside them. Voided, never deleted.
CREATE TABLE corrections (
    id           INTEGER PRIMARY KEY,
    employee_id  TEXT NOT NULL,
    time         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    confirmed_by TEXT NOT NULL,
    recorded_at  TEXT NOT NULL,
    voided_at    TEXT,
    voided_by    TEXT
);
CREATE INDEX corrections_employee_time ON corrections (employee_id, time);
CREATE INDEX corrections_time ON corrections (time);
CREATE TRIGGER corrections_no_delete BEFORE DELETE ON corrections
BEGIN SELECT RAISE(ABORT, 'corrections are voided, never deleted'); END;

ALTER TABLE appeals ADD COLUMN filed_by TEXT NOT NULL DEFAULT '';
CREATE INDEX appeals_status ON appeals (status);
-- At most one open appeal per ledger entry, even under concurrent filing.
CREATE UNIQUE INDEX appeals_one_open ON appeals (ledger_id) WHERE status = 'open';
