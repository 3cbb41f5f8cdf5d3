-- A counter per date, raised by every change to that date's verdicts, and
-- one under the key '*', raised by every change to the employees (whose
-- names and teams the daily table shows). A page of the daily table built
-- once is served again while both counters are those it was built under.
-- Kept by the triggers below, whoever writes: the daemon, a command, or a
-- site's own tool. Statement triggers: one update per date a statement
-- touches, not one per row.
CREATE TABLE day_revisions (
    key      TEXT PRIMARY KEY,
    revision BIGINT NOT NULL
);

CREATE FUNCTION attendd_revise_new_dates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO day_revisions (key, revision)
        SELECT DISTINCT to_char(date, 'YYYY-MM-DD'), 1 FROM new_rows
        ON CONFLICT (key) DO UPDATE SET revision = day_revisions.revision + 1;
    RETURN NULL;
END $$;
CREATE FUNCTION attendd_revise_old_dates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO day_revisions (key, revision)
        SELECT DISTINCT to_char(date, 'YYYY-MM-DD'), 1 FROM old_rows
        ON CONFLICT (key) DO UPDATE SET revision = day_revisions.revision + 1;
    RETURN NULL;
END $$;
CREATE FUNCTION attendd_revise_employees() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO day_revisions (key, revision) VALUES ('*', 1)
        ON CONFLICT (key) DO UPDATE SET revision = day_revisions.revision + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER day_verdicts_revise_insert AFTER INSERT ON day_verdicts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attendd_revise_new_dates();
CREATE TRIGGER day_verdicts_revise_update_new AFTER UPDATE ON day_verdicts
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attendd_revise_new_dates();
CREATE TRIGGER day_verdicts_revise_update_old AFTER UPDATE ON day_verdicts
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attendd_revise_old_dates();
CREATE TRIGGER day_verdicts_revise_delete AFTER DELETE ON day_verdicts
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION attendd_revise_old_dates();
CREATE TRIGGER day_verdicts_revise_truncate AFTER TRUNCATE ON day_verdicts
    FOR EACH STATEMENT EXECUTE FUNCTION attendd_revise_employees();
CREATE TRIGGER employees_revise AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON employees
    FOR EACH STATEMENT EXECUTE FUNCTION attendd_revise_employees();
