//! HR's records in the store: corrections (补卡), appeals and their
//! answers, publication times, and the look-ups the HTTP API needs.
//!
//! Every change here writes an audit row in the same transaction. Nothing
//! is deleted: a correction or a ledger entry is voided, an appeal is
//! answered. The SQL text is in `hr_sql.rs`, compiled once per engine like
//! `backend.rs`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{LedgerEntry, Store, StoreError, backend_pg, backend_sqlite, dispatch};

/// A correction to record: a forgotten punch confirmed by a supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCorrection {
    /// Employee.
    pub employee_id: String,
    /// When the employee was there.
    pub time: DateTime<Utc>,
    /// Why the terminal did not see it.
    pub reason: String,
    /// Who confirms it.
    pub confirmed_by: String,
}

/// A stored correction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Correction {
    /// Row id.
    pub id: i64,
    /// Employee.
    pub employee_id: String,
    /// When the employee was there.
    pub time: DateTime<Utc>,
    /// Why.
    pub reason: String,
    /// Who confirmed it.
    pub confirmed_by: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// An appeal against a ledger entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Appeal {
    /// Row id.
    pub id: i64,
    /// The entry appealed against.
    pub ledger_id: i64,
    /// Whose entry it is.
    pub employee_id: String,
    /// When it was filed.
    pub filed_at: DateTime<Utc>,
    /// Who filed it.
    pub filed_by: String,
    /// Why.
    pub reason: String,
    /// `open`, `upheld` or `rejected`.
    pub status: String,
    /// When it was answered.
    pub decided_at: Option<DateTime<Utc>>,
    /// Who answered it.
    pub decided_by: Option<String>,
    /// The answer.
    pub answer: Option<String>,
}

/// A terminal as seen in the punches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Terminal {
    /// Device id.
    pub device_id: String,
    /// Punches stored from it.
    pub punches: i64,
    /// Its latest punch.
    pub last_punch: DateTime<Utc>,
}

/// One stored verdict of a date, unparsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayRow {
    /// Employee.
    pub employee_id: String,
    /// Status name.
    pub status: String,
    /// The verdict JSON (the fields of `evaluate --json`).
    pub verdict: String,
    /// True while the day's punch window is open.
    pub provisional: bool,
}

/// One row of a page of the daily table, with the employee's name and team.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayPageRow {
    /// Employee.
    pub employee_id: String,
    /// Name, when the employee is stored.
    pub name: Option<String>,
    /// Team, when the employee is stored.
    pub team: Option<String>,
    /// Status name.
    pub status: String,
    /// True while the day's punch window is open.
    pub provisional: bool,
    /// The verdict JSON.
    pub verdict: String,
}

/// Verdicts of a date counted by team, status and provisional flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayTotal {
    /// Team (empty for verdicts of employees no longer stored).
    pub team: String,
    /// Status name.
    pub status: String,
    /// Provisional or closed.
    pub provisional: bool,
    /// How many.
    pub employees: i64,
    /// Their points, in hundredths.
    pub points: i64,
}

/// Why answering an appeal did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// No appeal with that id.
    #[error("appeal {0} does not exist")]
    NotFound(i64),
    /// Already answered.
    #[error("appeal {id} was already answered ({status})")]
    Decided {
        /// Appeal id.
        id: i64,
        /// Its status.
        status: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Correction instants with `lo <= time < hi` that are not voided, as
/// `(employee, time, device)` with device `correction:ID`.
pub(crate) async fn correction_times(
    store: &Store,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    employee: Option<&str>,
) -> Result<Vec<(String, DateTime<Utc>, Option<String>)>, StoreError> {
    dispatch!(store, hr::correction_times(lo, hi, employee))
}

impl Store {
    /// Records a correction and audits it; returns its id. The caller
    /// recomputes the days it touches.
    pub async fn add_correction(
        &self,
        c: &NewCorrection,
        cause: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        dispatch!(self, hr::add_correction(c, cause, now))
    }

    /// Corrections (not voided) with `from <= time < to`, optionally of one
    /// employee, by employee then time.
    pub async fn corrections(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        employee: Option<&str>,
    ) -> Result<Vec<Correction>, StoreError> {
        dispatch!(self, hr::corrections(from, to, employee))
    }

    /// One employee, when stored.
    pub async fn employee(&self, id: &str) -> Result<Option<super::EmployeeRecord>, StoreError> {
        dispatch!(self, hr::employee(id))
    }

    /// When and by whom a month (`YYYY-MM`) was published.
    pub async fn published(
        &self,
        month: &str,
    ) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
        dispatch!(self, hr::published(month))
    }

    /// One ledger entry.
    pub async fn ledger_entry(&self, id: i64) -> Result<Option<LedgerEntry>, StoreError> {
        dispatch!(self, hr::ledger_entry(id))
    }

    /// Files an appeal and audits it; returns its id.
    pub async fn add_appeal(
        &self,
        ledger_id: i64,
        employee_id: &str,
        reason: &str,
        filed_by: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        dispatch!(
            self,
            hr::add_appeal(ledger_id, employee_id, reason, filed_by, now)
        )
    }

    /// One appeal.
    pub async fn appeal(&self, id: i64) -> Result<Option<Appeal>, StoreError> {
        dispatch!(self, hr::appeal(id))
    }

    /// Appeals, oldest first; only those with this status when given.
    pub async fn appeals(&self, status: Option<&str>) -> Result<Vec<Appeal>, StoreError> {
        dispatch!(self, hr::appeals(status))
    }

    /// Answers an open appeal. Upheld: the entry is voided. Rejected: it is
    /// kept. Both the appeal and the entry's change are audited.
    pub async fn answer_appeal(
        &self,
        id: i64,
        upheld: bool,
        answer: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Appeal, AnswerError> {
        dispatch!(self, hr::answer_appeal(id, upheld, answer, by, now))
    }

    /// One page of a date's verdicts, filtered by team and status in the
    /// database, ordered by employee, and the number of matching rows.
    pub async fn day_page(
        &self,
        date: NaiveDate,
        team: Option<&str>,
        status: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<(i64, Vec<DayPageRow>), StoreError> {
        dispatch!(self, hr::day_page(date, team, status, limit, offset))
    }

    /// A date's verdicts counted by team, status and provisional flag,
    /// optionally of one team.
    pub async fn day_totals(
        &self,
        date: NaiveDate,
        team: Option<&str>,
    ) -> Result<Vec<DayTotal>, StoreError> {
        dispatch!(self, hr::day_totals(date, team))
    }

    /// Marks a month (`YYYY-MM`) published at `now`. Returns false when it
    /// already was. Verdicts of a published month are no longer rewritten:
    /// a change becomes an [`super::Adjustment`].
    pub async fn publish_month_at(
        &self,
        month: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(p) => super::backend_sqlite::publish_month(p, month, actor, now).await,
            Store::Postgres(p) => super::backend_pg::publish_month(p, month, actor, now).await,
        }
    }

    /// Terminals seen in the punches, by device id.
    pub async fn terminals(&self) -> Result<Vec<Terminal>, StoreError> {
        dispatch!(self, hr::terminals())
    }

    /// The stored verdicts of a date as text, ordered by employee: the
    /// daily table without parsing.
    pub async fn day_rows(&self, date: NaiveDate) -> Result<Vec<DayRow>, StoreError> {
        dispatch!(self, hr::day_rows(date))
    }
}
