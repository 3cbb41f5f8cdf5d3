// Where classification starts (policy.md, "Real sites"): the store's
// settings and the one-time voiding of absences stored before the start.
// A module of `backend_sqlite.rs` and `backend_pg.rs` beside `backend.rs`.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Pool, Row};

use super::queries::{begin, insert_audit};
use super::{Db, LedgerEntry, QueryContext, StoreError};

pub(crate) async fn setting(pool: &Pool<Db>, key: &str) -> Result<Option<String>, StoreError> {
    let r = sqlx::query("SELECT value FROM store_settings WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
        .ctx("select setting")?;
    r.map(|r| r.try_get(0)).transpose().ctx("read setting")
}

/// Writes `value` unless the key holds one already (or in any case when
/// `overwrite`); returns the value in force (the first writer wins when two
/// race).
pub(crate) async fn setting_once(
    pool: &Pool<Db>,
    key: &str,
    value: &str,
    overwrite: bool,
    now: DateTime<Utc>,
) -> Result<String, StoreError> {
    let mut tx = begin(pool).await?;
    let sql = if overwrite {
        "INSERT INTO store_settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
    } else {
        "INSERT INTO store_settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING"
    };
    sqlx::query(sql)
        .bind(key)
        .bind(value)
        .bind(now)
        .execute(&mut *tx)
        .await
        .ctx("insert setting")?;
    let v: String = sqlx::query("SELECT value FROM store_settings WHERE key = $1")
        .bind(key)
        .fetch_one(&mut *tx)
        .await
        .and_then(|r| r.try_get(0))
        .ctx("select setting")?;
    tx.commit().await.ctx("commit setting")?;
    Ok(v)
}

/// The earliest date with a stored verdict.
pub(crate) async fn earliest_verdict(pool: &Pool<Db>) -> Result<Option<NaiveDate>, StoreError> {
    let r = sqlx::query("SELECT date FROM day_verdicts ORDER BY date LIMIT 1")
        .fetch_optional(pool)
        .await
        .ctx("select earliest verdict")?;
    r.map(|r| r.try_get(0)).transpose().ctx("read earliest verdict")
}

/// Removes the absences stored for days before `from` (audited: the old
/// verdict, and each voided ledger entry), and records under `marker` that
/// this was done for `from`. Returns the number of days removed.
pub(crate) async fn void_absences_before(
    pool: &Pool<Db>,
    from: NaiveDate,
    marker: &str,
    cause: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut tx = begin(pool).await?;
    let rows = sqlx::query(
        "SELECT employee_id, date, verdict FROM day_verdicts \
         WHERE date < $1 AND status IN ('absent_full', 'absent_half') ORDER BY employee_id, date",
    )
    .bind(from)
    .fetch_all(&mut *tx)
    .await
    .ctx("select absences before classification start")?;
    let mut audit: Vec<(String, String, Option<String>, Option<String>)> = Vec::new();
    let mut dates = std::collections::BTreeSet::new();
    for r in &rows {
        let emp: String = r.try_get(0).ctx("read verdict")?;
        let date: NaiveDate = r.try_get(1).ctx("read verdict")?;
        let verdict: String = r.try_get(2).ctx("read verdict")?;
        let entries = sqlx::query(
            "SELECT id, employee_id, date, category, rule, points, bonus, source, evidence, recorded_by, recorded_at \
             FROM ledger WHERE employee_id = $1 AND date = $2 AND source = 'device' AND voided_at IS NULL ORDER BY id",
        )
        .bind(emp.as_str())
        .bind(date)
        .fetch_all(&mut *tx)
        .await
        .ctx("select ledger entries")?;
        for e in &entries {
            let old = LedgerEntry {
                id: e.try_get(0).ctx("read ledger")?,
                employee_id: e.try_get(1).ctx("read ledger")?,
                date: e.try_get(2).ctx("read ledger")?,
                category: e.try_get(3).ctx("read ledger")?,
                rule: e.try_get(4).ctx("read ledger")?,
                points: e.try_get(5).ctx("read ledger")?,
                bonus: e.try_get(6).ctx("read ledger")?,
                source: e.try_get(7).ctx("read ledger")?,
                evidence: e.try_get(8).ctx("read ledger")?,
                recorded_by: e.try_get(9).ctx("read ledger")?,
                recorded_at: e.try_get(10).ctx("read ledger")?,
                voided_at: None,
                voided_by: None,
                void_cause: None,
            };
            sqlx::query(
                "UPDATE ledger SET voided_at = $1, voided_by = $2, void_cause = $3 WHERE id = $4 AND voided_at IS NULL",
            )
            .bind(now)
            .bind(actor)
            .bind(cause)
            .bind(old.id)
            .execute(&mut *tx)
            .await
            .ctx("void ledger entry")?;
            let mut new = old.clone();
            new.voided_at = Some(now);
            new.voided_by = Some(actor.to_string());
            new.void_cause = Some(cause.to_string());
            audit.push((
                "ledger".into(),
                old.id.to_string(),
                serde_json::to_string(&old).ok(),
                serde_json::to_string(&new).ok(),
            ));
        }
        sqlx::query("DELETE FROM day_verdicts WHERE employee_id = $1 AND date = $2")
            .bind(emp.as_str())
            .bind(date)
            .execute(&mut *tx)
            .await
            .ctx("remove verdict before classification start")?;
        dates.insert(super::queries::revision_key(date));
        audit.push(("day_verdicts".into(), format!("{emp}/{date}"), Some(verdict), None));
    }
    super::queries::raise_revisions(&mut tx, &dates).await?;
    insert_audit(&mut tx, &audit, cause, actor, now).await?;
    let day = from.to_string();
    sqlx::query(
        "INSERT INTO store_settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(marker)
    .bind(day.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await
    .ctx("record voided absences")?;
    tx.commit().await.ctx("commit voided absences")?;
    Ok(rows.len())
}
