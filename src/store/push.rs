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

    /// Saves several stamps, `(device, table, stamp)`, in one transaction
    /// (later entries for the same device and table win).
    pub async fn save_push_stamps(
        &self,
        stamps: &[(String, String, String)],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        macro_rules! all {
            ($p:expr) => {{
                let mut tx = $p.begin().await.ctx("begin transaction")?;
                for (device, table, stamp) in stamps {
                    sqlx::query(UPSERT)
                        .bind(device)
                        .bind(table)
                        .bind(stamp)
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .ctx("save push stamps")?;
                }
                tx.commit().await.ctx("commit push stamps")
            }};
        }
        if stamps.is_empty() {
            return Ok(());
        }
        match self {
            Store::Sqlite(p) => all!(p),
            Store::Postgres(p) => all!(p),
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
