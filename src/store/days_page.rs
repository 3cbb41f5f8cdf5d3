//! A page of a date's verdicts for the daily table, read so that a page of
//! every employee (10,000 verdicts, megabytes of JSON) costs one pass.
//!
//! [`Store::day_page`] sorts whole rows by employee and counts them in a
//! second statement. On SQLite the sort of the verdict texts outgrows the
//! sorter's memory and spills to temporary files, which was most of the
//! time of a large page. Here SQLite sorts the page's keys only, the rows
//! are then read by primary key and put in order in memory (by bytes, as
//! SQLite's `BINARY` collation orders them), and the count is only asked
//! for when the page does not tell it. PostgreSQL sorts in memory and keeps
//! [`Store::day_page`], whose order follows the database's collation.

use chrono::NaiveDate;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::hr::DayPageRow;
use super::{QueryContext, Store, StoreError, backend_pg, backend_sqlite, dispatch};

impl Store {
    /// What a page of `date`'s daily table was built from, as two counters
    /// the store raises with every write (table `day_revisions`): one
    /// for the date's verdicts, one for the employees. A page built after
    /// reading them is current while both are unchanged.
    pub async fn day_revision(&self, date: NaiveDate) -> Result<(i64, i64), StoreError> {
        dispatch!(self, day_revision(date))
    }

    /// One page of a date's verdicts, filtered by team and status in the
    /// database, ordered by employee, and the number of matching rows: the
    /// same answer as [`Store::day_page`].
    pub async fn day_page_read(
        &self,
        date: NaiveDate,
        team: Option<&str>,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<DayPageRow>), StoreError> {
        match self {
            Store::Sqlite(pool) => sqlite_page(pool, date, team, status, limit, offset).await,
            Store::Postgres(_) => self.day_page(date, team, status, limit, offset).await,
        }
    }

    /// The page [`Store::day_page_read`] reads, already written as the
    /// daily table's JSON items by the database (SQLite): `(total, items
    /// on the page, the items joined by commas)`, each item
    /// `{"employee_id":…,"name":…,"team":…,"status":…,"provisional":…,
    /// "verdict":…}` with the stored verdict as it is. One value crosses
    /// from the database instead of six per row, which was most of the
    /// time of a page of every employee. `None` on PostgreSQL, and when a
    /// stored verdict on the page is not a bare JSON object (the row path
    /// then says which).
    pub async fn day_page_items(
        &self,
        date: NaiveDate,
        team: Option<&str>,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Option<(i64, usize, String)>, StoreError> {
        let Store::Sqlite(pool) = self else {
            return Ok(None);
        };
        // The page's keys are sorted alone (with their position among all
        // matching rows); the items are written in the order the join
        // visits them, which is the keys' order, and that order is checked
        // below rather than asked of a sort of megabytes of text.
        let last = offset.saturating_add(limit);
        let mut qb =
            QueryBuilder::<Sqlite>::new("SELECT COUNT(*), group_concat(CASE WHEN k.rn <= ");
        qb.push_bind(last)
            .push(
                " THEN '{\"employee_id\":' || json_quote(d.employee_id) || ',\"name\":' || json_quote(e.name) \
                 || ',\"team\":' || json_quote(e.team) || ',\"status\":' || json_quote(d.status) \
                 || ',\"provisional\":' || CASE WHEN d.provisional THEN 'true' ELSE 'false' END \
                 || ',\"verdict\":' || d.verdict || '}' END, ','), group_concat(CASE WHEN k.rn <= ",
            )
            .push_bind(last)
            .push(" THEN d.employee_id END, char(31)), MAX(CASE WHEN k.rn <= ")
            .push_bind(last)
            .push(
                " AND NOT (d.verdict GLOB '{*}') THEN 1 ELSE 0 END) \
                 FROM (SELECT d.employee_id, row_number() OVER (ORDER BY d.employee_id) AS rn \
                 FROM day_verdicts d LEFT JOIN employees e ON e.employee_id = d.employee_id",
            );
        page_of_keys(&mut qb, date, team, status, limit, offset);
        let row = qb
            .build()
            .fetch_one(pool)
            .await
            .ctx("select day verdicts")?;
        let fetched: i64 = row.try_get(0).ctx("read day verdicts")?;
        let items: Option<String> = row.try_get(1).ctx("read day verdicts")?;
        let ids: Option<String> = row.try_get(2).ctx("read day verdicts")?;
        let bad: Option<i64> = row.try_get(3).ctx("read day verdicts")?;
        if bad.unwrap_or(0) != 0 {
            return Ok(None);
        }
        // Employee ids in byte order (SQLite's `BINARY`), as the keys were
        // sorted; otherwise the row path puts them in order.
        let ids = ids.unwrap_or_default();
        let mut prev: Option<&str> = None;
        for id in ids.split('\u{1f}').filter(|_| !ids.is_empty()) {
            if prev.is_some_and(|p| p >= id) {
                return Ok(None);
            }
            prev = Some(id);
        }
        let on_page = usize::try_from(fetched.min(limit).max(0)).unwrap_or(0);
        let total = if fetched <= limit && (fetched > 0 || offset == 0) {
            offset.saturating_add(fetched)
        } else {
            count(pool, date, team, status).await?
        };
        Ok(Some((total, on_page, items.unwrap_or_default())))
    }
}

/// The number of a date's verdicts that match the filter.
async fn count(
    pool: &SqlitePool,
    date: NaiveDate,
    team: Option<&str>,
    status: Option<&str>,
) -> Result<i64, StoreError> {
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT COUNT(*) FROM day_verdicts d LEFT JOIN employees e ON e.employee_id = d.employee_id",
    );
    filter(&mut qb, date, team, status);
    qb.build()
        .fetch_one(pool)
        .await
        .and_then(|r| r.try_get(0))
        .ctx("count day verdicts")
}

/// Ends a query whose open subquery selects the matching keys: the
/// filter, the keys' order and page (one row more than `limit`), and the
/// join back to each key's verdict and employee.
fn page_of_keys(
    qb: &mut QueryBuilder<Sqlite>,
    date: NaiveDate,
    team: Option<&str>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) {
    filter(qb, date, team, status);
    qb.push(" ORDER BY d.employee_id LIMIT ")
        .push_bind(limit.saturating_add(1))
        .push(" OFFSET ")
        .push_bind(offset)
        .push(") k JOIN day_verdicts d ON d.employee_id = k.employee_id AND d.date = ")
        .push_bind(date)
        .push(" LEFT JOIN employees e ON e.employee_id = d.employee_id");
}

/// The filter of [`Store::day_page`]: the date, and the team and status when
/// given.
fn filter(
    qb: &mut QueryBuilder<Sqlite>,
    date: NaiveDate,
    team: Option<&str>,
    status: Option<&str>,
) {
    qb.push(" WHERE d.date = ").push_bind(date);
    if let Some(t) = team {
        qb.push(" AND e.team = ").push_bind(t.to_string());
    }
    if let Some(s) = status {
        qb.push(" AND d.status = ").push_bind(s.to_string());
    }
}

async fn sqlite_page(
    pool: &SqlitePool,
    date: NaiveDate,
    team: Option<&str>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<DayPageRow>), StoreError> {
    // One row more than the page: when it comes back there are more rows
    // and they are counted; otherwise the page itself says how many.
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT d.employee_id, e.name, e.team, d.status, d.provisional, d.verdict \
         FROM (SELECT d.employee_id FROM day_verdicts d \
         LEFT JOIN employees e ON e.employee_id = d.employee_id",
    );
    page_of_keys(&mut qb, date, team, status, limit, offset);
    let rows = qb
        .build()
        .fetch_all(pool)
        .await
        .ctx("select day verdicts")?;
    let mut rows = rows
        .iter()
        .map(|r| {
            Ok(DayPageRow {
                employee_id: r.try_get(0)?,
                name: r.try_get(1)?,
                team: r.try_get(2)?,
                status: r.try_get(3)?,
                provisional: r.try_get(4)?,
                verdict: r.try_get(5)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .ctx("read day verdicts")?;
    // An employee has one verdict per date: the ids are distinct, and their
    // byte order is SQLite's `BINARY` order.
    rows.sort_unstable_by(|a, b| a.employee_id.cmp(&b.employee_id));
    let fetched = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    if fetched <= limit && (fetched > 0 || offset == 0) {
        return Ok((offset.saturating_add(fetched), rows));
    }
    rows.truncate(usize::try_from(limit.max(0)).unwrap_or(usize::MAX));
    let total = count(pool, date, team, status).await?;
    Ok((total, rows))
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use crate::store::{EmployeeRecord, NewPunch, Store};

    /// Every filter and page gives what [`Store::day_page`] gives.
    #[tokio::test]
    async fn pages_match_the_plain_query() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.unwrap();
        let policy = crate::policy_file::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/policies/seed-default.toml"
        )))
        .unwrap();
        // Ids whose byte order differs from a case-blind or numeric one.
        let ids = ["E10", "E9", "e1", "E01", "Z", "a", "E2"];
        let emps: Vec<EmployeeRecord> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| EmployeeRecord {
                employee_id: id.to_string(),
                // Quotes, a backslash, a tab and Chinese: escaped alike by
                // the database and by serde_json.
                name: format!("Person {i} \"李娜\"\\\t"),
                team: format!("T{}", i % 2),
                supervisor: "lead".into(),
                shift: None,
                aliases: Vec::new(),
                start_date: None,
                end_date: None,
            })
            .collect();
        store.upsert_employees(&emps, Utc::now()).await.unwrap();
        let at = |h, m| {
            policy
                .tz
                .with_ymd_and_hms(2026, 11, 2, h, m, 0)
                .unwrap()
                .with_timezone(&Utc)
        };
        let mut punches = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let times = match i % 3 {
                0 => vec![],
                1 => vec![at(8, 20), at(17, 40)],
                _ => vec![at(8, 50), at(17, 35)],
            };
            for t in times {
                punches.push(NewPunch {
                    employee_id: id.to_string(),
                    identity: id.to_string(),
                    time: t,
                    device_id: None,
                    event_id: None,
                    source: "test".into(),
                    raw: None,
                    direction: None,
                });
            }
        }
        store.insert_punches(&punches, Utc::now()).await.unwrap();
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        store
            .recompute(
                &policy,
                None,
                date,
                date,
                "test",
                "test",
                at(23, 0) + chrono::Duration::days(1),
            )
            .await
            .unwrap();
        for team in [None, Some("T0"), Some("T1"), Some("none")] {
            for status in [None, Some("present"), Some("late"), Some("absent_full")] {
                for (limit, offset) in [
                    (500, 0),
                    (7, 0),
                    (6, 0),
                    (3, 0),
                    (3, 3),
                    (3, 6),
                    (2, 9),
                    (0, 0),
                ] {
                    let want = store
                        .day_page(date, team, status, limit, offset)
                        .await
                        .unwrap();
                    let got = store
                        .day_page_read(date, team, status, limit, offset)
                        .await
                        .unwrap();
                    assert_eq!(got, want, "{team:?} {status:?} {limit} {offset}");
                    let (total, n, items) = store
                        .day_page_items(date, team, status, limit, offset)
                        .await
                        .unwrap()
                        .expect("SQLite writes the items");
                    assert_eq!((total, n), (want.0, want.1.len()));
                    let mut expected = String::new();
                    for (i, r) in want.1.iter().enumerate() {
                        if i > 0 {
                            expected.push(',');
                        }
                        expected.push_str(&format!(
                            "{{\"employee_id\":{},\"name\":{},\"team\":{},\"status\":{},\"provisional\":{},\"verdict\":{}}}",
                            serde_json::to_string(&r.employee_id).unwrap(),
                            serde_json::to_string(&r.name).unwrap(),
                            serde_json::to_string(&r.team).unwrap(),
                            serde_json::to_string(&r.status).unwrap(),
                            r.provisional,
                            r.verdict
                        ));
                    }
                    assert_eq!(items, expected, "{team:?} {status:?} {limit} {offset}");
                }
            }
        }
        let all = store.day_page_read(date, None, None, 500, 0).await.unwrap();
        assert_eq!(all.0, 7);
        store.close().await;
    }
}
