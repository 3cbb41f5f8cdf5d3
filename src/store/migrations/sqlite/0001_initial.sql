-- attendd store, SQLite dialect. Released migrations are never edited;
-- changes go in a new numbered file. Instants are stored as RFC 3339 text
-- in UTC (sqlx's encoding of DateTime<Utc>), dates as YYYY-MM-DD text, so
-- text order is time order. Points are integer hundredths.

-- Raw punches: append-only (triggers below refuse UPDATE and DELETE).
CREATE TABLE punches (
    id          INTEGER PRIMARY KEY,
    employee_id TEXT NOT NULL,
    time        TEXT NOT NULL,
    device_id   TEXT,
    source      TEXT NOT NULL,
    event_id    TEXT,
    identity    TEXT NOT NULL,
    raw         TEXT,
    received_at TEXT NOT NULL,
    dedupe_key  TEXT NOT NULL UNIQUE
);
CREATE INDEX punches_employee_time ON punches (employee_id, time);
CREATE INDEX punches_time ON punches (time);
CREATE TRIGGER punches_no_update BEFORE UPDATE ON punches
BEGIN SELECT RAISE(ABORT, 'punches are append-only: UPDATE refused'); END;
CREATE TRIGGER punches_no_delete BEFORE DELETE ON punches
BEGIN SELECT RAISE(ABORT, 'punches are append-only: DELETE refused'); END;

-- Payloads that could not be decoded.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    payload     BLOB NOT NULL,
    payload_len INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX quarantine_received ON quarantine (received_at);

CREATE TABLE employees (
    employee_id TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    team        TEXT NOT NULL,
    supervisor  TEXT NOT NULL,
    shift       TEXT,
    updated_at  TEXT NOT NULL
);
CREATE INDEX employees_team ON employees (team);

CREATE TABLE employee_aliases (
    alias       TEXT PRIMARY KEY,
    employee_id TEXT NOT NULL REFERENCES employees (employee_id)
);
CREATE INDEX employee_aliases_employee ON employee_aliases (employee_id);

CREATE TABLE roster (
    employee_id TEXT NOT NULL,
    date        TEXT NOT NULL,
    shift       TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (employee_id, date)
);
CREATE INDEX roster_date ON roster (date);

CREATE TABLE leaves (
    id          INTEGER PRIMARY KEY,
    employee_id TEXT NOT NULL,
    start_at    TEXT NOT NULL,
    end_at      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    UNIQUE (employee_id, start_at, end_at, kind)
);
CREATE INDEX leaves_end ON leaves (end_at);

CREATE TABLE holidays (
    date       TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- One verdict per employee-day, with the policy version that produced it.
CREATE TABLE day_verdicts (
    employee_id    TEXT NOT NULL,
    date           TEXT NOT NULL,
    policy_id      TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    status         TEXT NOT NULL,
    points         INTEGER NOT NULL,
    verdict        TEXT NOT NULL,
    -- FNV-1a 64 of `verdict`: a recompute compares hashes, not texts.
    verdict_hash   INTEGER NOT NULL,
    provisional    BOOLEAN NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (employee_id, date)
);
CREATE INDEX day_verdicts_date ON day_verdicts (date);

-- Scoring ledger: device-derived and manual entries; voided, never deleted.
CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY,
    employee_id TEXT NOT NULL,
    date        TEXT NOT NULL,
    category    TEXT NOT NULL,
    rule        TEXT NOT NULL,
    points      INTEGER NOT NULL,
    bonus       BOOLEAN NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('device', 'manual')),
    evidence    TEXT,
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    voided_at   TEXT,
    voided_by   TEXT,
    void_cause  TEXT
);
CREATE INDEX ledger_employee_date ON ledger (employee_id, date);
CREATE INDEX ledger_date ON ledger (date);
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger entries are voided, never deleted'); END;

-- Every change to verdicts and the ledger.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         TEXT NOT NULL,
    table_name TEXT NOT NULL,
    row_key    TEXT NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    cause      TEXT NOT NULL,
    actor      TEXT NOT NULL
);
CREATE INDEX audit_row ON audit (table_name, row_key);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

CREATE TABLE published_months (
    month        TEXT PRIMARY KEY,
    published_at TEXT NOT NULL,
    published_by TEXT NOT NULL
);

-- A re-derived verdict for a day in a published month, waiting for HR.
CREATE TABLE adjustments (
    id          INTEGER PRIMARY KEY,
    employee_id TEXT NOT NULL,
    date        TEXT NOT NULL,
    old_verdict TEXT,
    new_verdict TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'superseded', 'applied', 'dismissed')),
    cause       TEXT NOT NULL,
    actor       TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX adjustments_employee_date ON adjustments (employee_id, date);
CREATE INDEX adjustments_status ON adjustments (status);

CREATE TABLE appeals (
    id          INTEGER PRIMARY KEY,
    ledger_id   INTEGER NOT NULL REFERENCES ledger (id),
    employee_id TEXT NOT NULL,
    filed_at    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'upheld', 'rejected')),
    decided_at  TEXT,
    decided_by  TEXT,
    answer      TEXT
);
CREATE INDEX appeals_ledger ON appeals (ledger_id);
