-- A counter per date ('YYYY-MM-DD'), raised in the same transaction as
-- every write of that date's verdicts, and one under the key '*', raised
-- with every write of the employees (whose names and teams the daily table
-- shows). A page of the daily table built once is served again while both
-- counters are those it was built under. The store's writers raise them
-- (once per date a transaction writes, not once per row); a tool that
-- edits day_verdicts or employees directly must raise them too, or the
-- API be run with [http] page_cache_mib = 0.
CREATE TABLE day_revisions (
    key      TEXT PRIMARY KEY,
    revision BIGINT NOT NULL
);
