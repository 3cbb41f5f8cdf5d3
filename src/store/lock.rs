//! One recompute at a time per store, across processes: a PostgreSQL
//! session advisory lock, or an exclusive `flock` on a file beside the
//! SQLite database (`attendd.db.recompute.lock`).

use super::{Store, StoreError};

/// Arbitrary, fixed: "attendd" in ASCII.
const PG_KEY: i64 = 0x0061_7474_656e_6464;

/// A held recompute lock; call [`RecomputeLock::release`].
pub(super) enum RecomputeLock {
    /// The connection holding the advisory lock (taken by `release`).
    Pg(Option<sqlx::pool::PoolConnection<sqlx::Postgres>>),
    /// The locked file, held only for its drop: closing it unlocks.
    File(#[allow(dead_code)] Option<std::fs::File>),
}

impl RecomputeLock {
    /// Waits for the lock.
    pub(super) async fn acquire(store: &Store) -> Result<RecomputeLock, StoreError> {
        match store {
            Store::Postgres(pool) => {
                // Try, and between tries give the connection back: waiters
                // must not hold the pool's connections (ingest needs them).
                loop {
                    let mut conn = pool.acquire().await.map_err(|source| StoreError::Query {
                        what: "acquire a connection for the recompute lock",
                        source,
                    })?;
                    let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1)")
                        .bind(PG_KEY)
                        .fetch_one(&mut *conn)
                        .await
                        .and_then(|r| sqlx::Row::try_get(&r, 0))
                        .map_err(|source| StoreError::Query {
                            what: "take the recompute lock",
                            source,
                        })?;
                    if got {
                        return Ok(RecomputeLock::Pg(Some(conn)));
                    }
                    drop(conn);
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
            Store::Sqlite(pool) => {
                let db = pool.connect_options().get_filename().to_path_buf();
                if db.as_os_str().is_empty() || db.to_str() == Some(":memory:") {
                    return Ok(RecomputeLock::File(None));
                }
                let mut path = db.into_os_string();
                path.push(".recompute.lock");
                let file = tokio::task::spawn_blocking(move || {
                    // flock needs no write access: a lock file created by
                    // another user (root running `attendd recompute`) still
                    // serves the daemon's user.
                    let f = match std::fs::File::open(&path) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                            std::fs::OpenOptions::new()
                                .create(true)
                                .truncate(false)
                                .write(true)
                                .open(&path)?
                        }
                        r => r?,
                    };
                    f.lock()?;
                    Ok::<_, std::io::Error>(f)
                })
                .await
                .map_err(|e| StoreError::Corrupt {
                    key: "recompute lock".into(),
                    why: e.to_string(),
                })?
                .map_err(|e| StoreError::Corrupt {
                    key: "recompute lock".into(),
                    why: format!("cannot lock the file beside the database: {e}"),
                })?;
                Ok(RecomputeLock::File(Some(file)))
            }
        }
    }

    /// Releases the lock. A PostgreSQL connection whose unlock failed is
    /// closed rather than returned to the pool still holding the lock.
    pub(super) async fn release(mut self) {
        if let RecomputeLock::Pg(slot) = &mut self
            && let Some(mut conn) = slot.take()
        {
            let ok = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(PG_KEY)
                .execute(&mut *conn)
                .await
                .is_ok();
            if !ok {
                drop(conn.detach());
            }
        }
    }
}

impl Drop for RecomputeLock {
    /// A recompute cancelled half-way (its future dropped) never reached
    /// `release`: close the connection instead of returning it to the pool
    /// still holding the lock; closing the session releases it.
    fn drop(&mut self) {
        if let RecomputeLock::Pg(slot) = self
            && let Some(conn) = slot.take()
        {
            drop(conn.detach());
        }
    }
}
