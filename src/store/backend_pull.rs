// Pull sources' cursors, shared by both engines (a module of each engine
// beside `backend.rs`, whose `begin` and `insert_punches_in` it uses).

use chrono::{DateTime, Utc};
use sqlx::Pool;

use super::outbox_queries::add_quarantine_in;
use super::queries::{begin, insert_punches_in};
use super::{Db, Inserted, NewPunch, NewQuarantine, QueryContext, StoreError};

/// Stores `rows` (keys in `keys`, as [`insert_punches`]), the quarantined
/// part of the same read and the cursor of `(source, device)` in one
/// transaction: the cursor never runs ahead of the punches and quarantine
/// rows it covers, nor behind them, and a crash re-reads neither twice.
pub(crate) async fn insert_punches_cursor(
    pool: &Pool<Db>,
    rows: &[NewPunch],
    keys: &[String],
    quarantine: &[NewQuarantine],
    cursor: (&str, &str, &str),
    now: DateTime<Utc>,
) -> Result<Vec<Inserted>, StoreError> {
    let mut tx = begin(pool).await?;
    let out = insert_punches_in(&mut tx, rows, keys, now).await?;
    add_quarantine_in(&mut tx, quarantine, now).await?;
    let (source, device, value) = cursor;
    sqlx::query(
        "INSERT INTO pull_cursors (source, device_id, cursor, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (source, device_id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
    )
    .bind(source)
    .bind(device)
    .bind(value)
    .bind(now)
    .execute(&mut *tx)
    .await
    .ctx("save pull cursor")?;
    tx.commit().await.ctx("commit punches and pull cursor")?;
    Ok(out)
}

pub(crate) async fn pull_cursor(
    pool: &Pool<Db>,
    source: &str,
    device: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar::<_, String>(
        "SELECT cursor FROM pull_cursors WHERE source = $1 AND device_id = $2",
    )
    .bind(source)
    .bind(device)
    .fetch_optional(pool)
    .await
    .ctx("select pull cursor")
}
