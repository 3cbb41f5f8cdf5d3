-- Each employee's policy group with its history (policy.md, "Several rule
-- sets on one site"): the `[[policy.group]]` id employees.csv's `policy`
-- column names (`default` for the default policy), in force from
-- `valid_from` (the local date of the import that set it) until the next
-- row. An employee without rows follows the default policy.
CREATE TABLE employee_policy (
    employee_id TEXT NOT NULL,
    valid_from  DATE NOT NULL,
    policy      TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (employee_id, valid_from)
);
