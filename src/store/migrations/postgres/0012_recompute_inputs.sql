-- What a recompute of a range of days read for each employee, as a
-- fingerprint (a hash of the employee's record, roster, leave, punches and
-- corrections over the range and its margins, with the policy, holidays,
-- closed days and published months). A later recompute of the same range
-- whose fingerprint is the same, and whose stored verdicts are all final,
-- leaves the employee alone: the verdicts would come out the same. Only
-- ranges of more than one day are kept; rows of ranges long past are
-- pruned when new ones are written. A cache: deleting rows only costs time.
CREATE TABLE recompute_inputs (
    employee_id TEXT NOT NULL,
    from_date   DATE NOT NULL,
    to_date     DATE NOT NULL,
    fingerprint BIGINT NOT NULL,
    days        INTEGER NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (employee_id, from_date, to_date)
);
-- Read by range (to_date, from_date) and pruned by to_date.
CREATE INDEX recompute_inputs_range ON recompute_inputs (to_date, from_date);
