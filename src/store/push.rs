//! Resume markers of HTTP push terminals (ZKTeco ADMS "stamps").
//!
//! A terminal uploads `table=ATTLOG&Stamp=<n>`; once that upload is
//! committed the stamp is saved here, and the next handshake hands it back
//! as `ATTLOGStamp=<n>` so the terminal resumes after it. A stamp is saved
//! only after the records it covers are committed, so a crash in between
//! makes the terminal re-send (idempotent), never skip.

use chrono::{DateTime, Utc};

use super::{QueryContext, Store, StoreError};

const UPSERT: &str = "INSERT INTO push_stamps (device_id, tbl, stamp, updated_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (device_id, tbl) DO UPDATE SET stamp = excluded.stamp, updated_at = excluded.updated_at";

const SELECT: &str = "SELECT tbl, stamp FROM push_stamps WHERE device_id = $1 ORDER BY tbl";

impl Store {
    /// Saves the last committed stamp of `device` for `table` (`ATTLOG`,
    /// `OPERLOG`, `ATTPHOTO`), replacing the previous one.
    pub async fn save_push_stamp(
        &self,
        device: &str,
        table: &str,
        stamp: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(p) => sqlx::query(UPSERT)
                .bind(device)
                .bind(table)
                .bind(stamp)
                .bind(now)
                .execute(p)
                .await
                .map(|_| ())
                .ctx("save push stamp"),
            Store::Postgres(p) => sqlx::query(UPSERT)
                .bind(device)
                .bind(table)
                .bind(stamp)
                .bind(now)
                .execute(p)
                .await
                .map(|_| ())
                .ctx("save push stamp"),
        }
    }

    /// The saved stamps of `device`, as (table, stamp), ordered by table.
    pub async fn push_stamps(&self, device: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Store::Sqlite(p) => sqlx::query_as::<_, (String, String)>(SELECT)
                .bind(device)
                .fetch_all(p)
                .await
                .ctx("select push stamps"),
            Store::Postgres(p) => sqlx::query_as::<_, (String, String)>(SELECT)
                .bind(device)
                .fetch_all(p)
                .await
                .ctx("select push stamps"),
        }
    }
}
