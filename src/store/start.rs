//! Where automatic classification starts (policy.md, "Real sites").
//!
//! The store records the first date it classifies on its own:
//! `[ingest] classify_from` when configured; otherwise it is fixed the
//! first time it is needed (the day the daemon first runs on the store, or
//! the earliest date of the first `attendd import punches` into a store
//! without verdicts). A store that already holds verdicts from before this
//! rule takes the date of its earliest verdict. Earlier days are classified
//! only by an explicit `attendd recompute --from …`; absences stored for
//! them are removed (audited) by the first automatic recompute after the
//! start is known.

use chrono::{DateTime, NaiveDate, Utc};

use super::{Store, StoreError, dispatch};
use super::{backend_pg, backend_sqlite};

/// Settings key of the fixed start.
const CLASSIFY_FROM: &str = "classify_from";
/// Settings key of the day the daemon first ran on the store.
const FIRST_RUN: &str = "daemon_first_run";
/// Settings key recording the start for which absences before it were
/// removed.
const VOIDED_BEFORE: &str = "classify_from_applied";

fn parse_day(key: &str, v: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| StoreError::Corrupt {
        key: format!("store_settings/{key}"),
        why: format!("{v:?} is not YYYY-MM-DD"),
    })
}

impl Store {
    /// The classification start in force, without fixing it: `configured`
    /// (`[ingest] classify_from`; the daemon stores it at start, so readers
    /// without the configuration see it too), else the stored one, else the earliest
    /// stored verdict's date; `None` when nothing has fixed it yet (the store
    /// holds no verdicts then).
    pub async fn classify_from(
        &self,
        configured: Option<NaiveDate>,
    ) -> Result<Option<NaiveDate>, StoreError> {
        if configured.is_some() {
            return Ok(configured);
        }
        if let Some(v) = dispatch!(self, setting(CLASSIFY_FROM))? {
            return parse_day(CLASSIFY_FROM, &v).map(Some);
        }
        dispatch!(self, earliest_verdict())
    }

    /// Records `today` as the day the daemon first ran on the store, unless
    /// a day is recorded already; returns the recorded day.
    pub async fn note_first_run(
        &self,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<NaiveDate, StoreError> {
        let v = dispatch!(
            self,
            setting_once(FIRST_RUN, &today.to_string(), false, now)
        )?;
        parse_day(FIRST_RUN, &v)
    }

    /// The day the daemon first ran on the store, when it has.
    pub async fn first_run(&self) -> Result<Option<NaiveDate>, StoreError> {
        match dispatch!(self, setting(FIRST_RUN))? {
            Some(v) => parse_day(FIRST_RUN, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The classification start as fixed in the store (by the daemon's first
    /// run, a punch import, or the configuration the daemon started with).
    pub async fn classify_from_fixed(&self) -> Result<Option<NaiveDate>, StoreError> {
        match dispatch!(self, setting(CLASSIFY_FROM))? {
            Some(v) => parse_day(CLASSIFY_FROM, &v).map(Some),
            None => Ok(None),
        }
    }

    /// The classification start an automatic recompute uses, fixing it when
    /// it is not yet: `configured` wins; else the stored start; else the
    /// earliest stored verdict's date; else `candidate` (the day the daemon
    /// first runs, or the earliest date of a punch import). `None` when none
    /// of these exists. Then, once per start, the absences stored for days
    /// before it are removed, each audited.
    pub async fn classification_start(
        &self,
        configured: Option<NaiveDate>,
        candidate: Option<NaiveDate>,
        now: DateTime<Utc>,
    ) -> Result<Option<NaiveDate>, StoreError> {
        let start = match configured {
            Some(d) => {
                let stored = dispatch!(self, setting(CLASSIFY_FROM))?;
                if stored.as_deref() != Some(d.to_string().as_str()) {
                    dispatch!(self, setting_once(CLASSIFY_FROM, &d.to_string(), true, now))?;
                }
                d
            }
            None => {
                let fixed = match dispatch!(self, setting(CLASSIFY_FROM))? {
                    Some(v) => Some(v),
                    None => {
                        let first = dispatch!(self, earliest_verdict())?.or(candidate);
                        match first {
                            Some(d) => Some(dispatch!(
                                self,
                                setting_once(CLASSIFY_FROM, &d.to_string(), false, now)
                            )?),
                            None => None,
                        }
                    }
                };
                match fixed {
                    Some(v) => parse_day(CLASSIFY_FROM, &v)?,
                    None => return Ok(None),
                }
            }
        };
        let applied = dispatch!(self, setting(VOIDED_BEFORE))?;
        if applied.as_deref() != Some(start.to_string().as_str()) {
            let n = dispatch!(
                self,
                void_absences_before(
                    start,
                    VOIDED_BEFORE,
                    &format!("before classification start {start}"),
                    "recompute",
                    now
                )
            )?;
            if n > 0 {
                tracing::info!(
                    "removed {n} absence(s) stored for days before the classification start {start} (audited)"
                );
            }
        }
        Ok(Some(start))
    }
}
