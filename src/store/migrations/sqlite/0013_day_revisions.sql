-- A counter per date, raised by every change to that date's verdicts, and
-- one under the key '*', raised by every change to the employees (whose
-- names and teams the daily table shows). A page of the daily table built
-- once is served again while both counters are those it was built under.
-- Kept by the triggers below, whoever writes: the daemon, a command, or a
-- site's own tool.
CREATE TABLE day_revisions (
    key      TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
);

CREATE TRIGGER day_verdicts_revise_insert AFTER INSERT ON day_verdicts
BEGIN
    INSERT INTO day_revisions (key, revision) VALUES (NEW.date, 1)
        ON CONFLICT (key) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER day_verdicts_revise_update AFTER UPDATE ON day_verdicts
BEGIN
    INSERT INTO day_revisions (key, revision) VALUES (NEW.date, 1)
        ON CONFLICT (key) DO UPDATE SET revision = revision + 1;
    INSERT INTO day_revisions (key, revision) SELECT OLD.date, 1 WHERE OLD.date <> NEW.date
        ON CONFLICT (key) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER day_verdicts_revise_delete AFTER DELETE ON day_verdicts
BEGIN
    INSERT INTO day_revisions (key, revision) VALUES (OLD.date, 1)
        ON CONFLICT (key) DO UPDATE SET revision = revision + 1;
END;

CREATE TRIGGER employees_revise_insert AFTER INSERT ON employees
BEGIN
    INSERT INTO day_revisions (key, revision) VALUES ('*', 1)
        ON CONFLICT (key) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER employees_revise_update AFTER UPDATE ON employees
BEGIN
    INSERT INTO day_revisions (key, revision) VALUES ('*', 1)
        ON CONFLICT (key) DO UPDATE SET revision = revision + 1;
END;
CREATE TRIGGER employees_revise_delete AFTER DELETE ON employees
BEGIN
    INSERT INTO day_revisions (key, revision) VALUES ('*', 1)
        ON CONFLICT (key) DO UPDATE SET revision = revision + 1;
END;
