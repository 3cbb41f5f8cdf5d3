-- attendd store, PostgreSQL dialect. Released migrations are never edited;
-- changes go in a new numbered file. Instants are timestamptz, points are
-- integer hundredths.

-- Raw punches: append-only (triggers below refuse UPDATE and DELETE).
CREATE TABLE punches (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id TEXT NOT NULL,
    time        TIMESTAMPTZ NOT NULL,
    device_id   TEXT,
    source      TEXT NOT NULL,
    event_id    TEXT,
    identity    TEXT NOT NULL,
    raw         TEXT,
    received_at TIMESTAMPTZ NOT NULL,
    dedupe_key  TEXT NOT NULL UNIQUE
);
CREATE INDEX punches_employee_time ON punches (employee_id, time);
CREATE INDEX punches_time ON punches (time);

CREATE FUNCTION attendd_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: % refused', TG_ARGV[0], TG_OP;
END;
$$;
CREATE TRIGGER punches_append_only BEFORE UPDATE OR DELETE ON punches
    FOR EACH ROW EXECUTE FUNCTION attendd_refuse('punches are append-only');
CREATE TRIGGER punches_no_truncate BEFORE TRUNCATE ON punches
    FOR EACH STATEMENT EXECUTE FUNCTION attendd_refuse('punches are append-only');

-- Payloads that could not be decoded.
CREATE TABLE quarantine (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      TEXT NOT NULL,
    payload     BYTEA NOT NULL,
    payload_len BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX quarantine_received ON quarantine (received_at);

CREATE TABLE employees (
    employee_id TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    team        TEXT NOT NULL,
    supervisor  TEXT NOT NULL,
    shift       TEXT,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX employees_team ON employees (team);

CREATE TABLE employee_aliases (
    alias       TEXT PRIMARY KEY,
    employee_id TEXT NOT NULL REFERENCES employees (employee_id)
);
CREATE INDEX employee_aliases_employee ON employee_aliases (employee_id);

CREATE TABLE roster (
    employee_id TEXT NOT NULL,
    date        DATE NOT NULL,
    shift       TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (employee_id, date)
);
CREATE INDEX roster_date ON roster (date);

CREATE TABLE leaves (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id TEXT NOT NULL,
    start_at    TIMESTAMPTZ NOT NULL,
    end_at      TIMESTAMPTZ NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (employee_id, start_at, end_at, kind)
);
CREATE INDEX leaves_end ON leaves (end_at);

CREATE TABLE holidays (
    date       DATE PRIMARY KEY,
    kind       TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

-- One verdict per employee-day, with the policy version that produced it.
CREATE TABLE day_verdicts (
    employee_id    TEXT NOT NULL,
    date           DATE NOT NULL,
    policy_id      TEXT NOT NULL,
    policy_version TEXT NOT NULL,
    status         TEXT NOT NULL,
    points         BIGINT NOT NULL,
    verdict        TEXT NOT NULL,
    -- FNV-1a 64 of `verdict`: a recompute compares hashes, not texts.
    verdict_hash   BIGINT NOT NULL,
    provisional    BOOLEAN NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (employee_id, date)
);
CREATE INDEX day_verdicts_date ON day_verdicts (date);

-- Scoring ledger: device-derived and manual entries; voided, never deleted.
CREATE TABLE ledger (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id TEXT NOT NULL,
    date        DATE NOT NULL,
    category    TEXT NOT NULL,
    rule        TEXT NOT NULL,
    points      BIGINT NOT NULL,
    bonus       BOOLEAN NOT NULL,
    source      TEXT NOT NULL CHECK (source IN ('device', 'manual')),
    evidence    TEXT,
    recorded_by TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    voided_at   TIMESTAMPTZ,
    voided_by   TEXT,
    void_cause  TEXT
);
CREATE INDEX ledger_employee_date ON ledger (employee_id, date);
CREATE INDEX ledger_date ON ledger (date);
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION attendd_refuse('ledger entries are voided, never deleted');

-- Every change to verdicts and the ledger.
CREATE TABLE audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    table_name TEXT NOT NULL,
    row_key    TEXT NOT NULL,
    old_value  TEXT,
    new_value  TEXT,
    cause      TEXT NOT NULL,
    actor      TEXT NOT NULL
);
CREATE INDEX audit_row ON audit (table_name, row_key);
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION attendd_refuse('the audit trail is append-only');

CREATE TABLE published_months (
    month        TEXT PRIMARY KEY,
    published_at TIMESTAMPTZ NOT NULL,
    published_by TEXT NOT NULL
);

-- A re-derived verdict for a day in a published month, waiting for HR.
CREATE TABLE adjustments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    employee_id TEXT NOT NULL,
    date        DATE NOT NULL,
    old_verdict TEXT,
    new_verdict TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'superseded', 'applied', 'dismissed')),
    cause       TEXT NOT NULL,
    actor       TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX adjustments_employee_date ON adjustments (employee_id, date);
CREATE INDEX adjustments_status ON adjustments (status);

CREATE TABLE appeals (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ledger_id   BIGINT NOT NULL REFERENCES ledger (id),
    employee_id TEXT NOT NULL,
    filed_at    TIMESTAMPTZ NOT NULL,
    reason      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'upheld', 'rejected')),
    decided_at  TIMESTAMPTZ,
    decided_by  TEXT,
    answer      TEXT
);
CREATE INDEX appeals_ledger ON appeals (ledger_id);
