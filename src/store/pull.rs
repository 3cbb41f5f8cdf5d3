//! Cursors of pull sources (terminals attendd reads on its own initiative).
//!
//! A pull has no one to acknowledge: the stored cursor is the
//! acknowledgement. It is written in the same transaction as the punches it
//! covers, so a crash at any moment re-reads from the last cursor and the
//! dedupe keys absorb what was stored before.

use chrono::{DateTime, Utc};

use super::{Inserted, NewPunch, Store, StoreError, backend_pg, backend_sqlite, dispatch};

impl Store {
    /// Stores `punches` and sets the cursor of `source` on `device` to
    /// `cursor`, in one transaction. Reports each punch as new or duplicate.
    pub async fn insert_punches_with_cursor(
        &self,
        punches: &[NewPunch],
        source: &str,
        device: &str,
        cursor: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Inserted>, StoreError> {
        self.store_pull_read(punches, &[], source, device, cursor, now)
            .await
    }

    /// Stores one read of a pull source: its `punches`, what of it was
    /// quarantined, and the cursor of `source` on `device`, in one
    /// transaction (a crash re-reads the same records and stores nothing
    /// twice, quarantine rows included).
    pub async fn store_pull_read(
        &self,
        punches: &[NewPunch],
        quarantine: &[super::NewQuarantine],
        source: &str,
        device: &str,
        cursor: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Inserted>, StoreError> {
        let keys: Vec<String> = punches.iter().map(NewPunch::dedupe_key).collect();
        dispatch!(
            self,
            insert_punches_cursor(punches, &keys, quarantine, (source, device, cursor), now)
        )
    }

    /// The stored cursor of `source` on `device`, if any.
    pub async fn pull_cursor(
        &self,
        source: &str,
        device: &str,
    ) -> Result<Option<String>, StoreError> {
        dispatch!(self, pull_cursor(source, device))
    }
}
