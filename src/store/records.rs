//! What the store reads and writes, as plain values: punches, quarantined
//! payloads, employees, roster, leave, holidays, verdicts, ledger entries,
//! audit rows and adjustments.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde::Serialize;

use super::quarantine::{QuarantineKind, ReplayInfo};

/// A punch to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPunch {
    /// The employee it was attributed to (after alias resolution).
    pub employee_id: String,
    /// The identity as the terminal or file sent it (PIN, card, name).
    pub identity: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// The terminal, when known.
    pub device_id: Option<String>,
    /// The terminal's own event id, when it sends one.
    pub event_id: Option<String>,
    /// Where it came from: `import:FILE`, `mqtt:TOPIC`, …
    pub source: String,
    /// The raw line or payload, when it is text.
    pub raw: Option<String>,
    /// The punch state the terminal reported (`check_in`, `break_out`, …;
    /// [`crate::ingest::decode::PunchKind::state`]), when it reported one.
    pub direction: Option<String>,
}

impl NewPunch {
    /// The dedupe key (`interfaces.md`): `(device_id, event_id, identity,
    /// time)` when an event id is present, else `(employee_id as sent,
    /// time, device_id)`. The event id alone is not trusted: Hikvision
    /// `serialNo`, Dahua `RecNo` and RecPush `RecordID` are per-device
    /// counters that restart after a reset, and Dahua uploads name no
    /// device, so a key of the counter alone made new punches "duplicates"
    /// (issue 11, defect 3). Punches stored under the older recipe are
    /// still recognised: the insert also treats the same employee at the
    /// same instant on the same device as a duplicate.
    pub fn dedupe_key(&self) -> String {
        let dev = self.device_id.as_deref().unwrap_or("");
        match &self.event_id {
            Some(ev) => format!(
                "e\u{1f}{dev}\u{1f}{ev}\u{1f}{}\u{1f}{}",
                self.identity,
                self.time.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ),
            // Time first: punches arrive roughly in time order, so new keys
            // land at the end of the unique index instead of all over it.
            None => format!(
                "t\u{1f}{}\u{1f}{}\u{1f}{dev}",
                self.time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                self.identity
            ),
        }
    }
}

/// What happened to one punch of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored, with its row id.
    New(i64),
    /// A punch with the same dedupe key was already stored (or earlier in
    /// the same batch); nothing was written.
    Duplicate,
}

/// A stored punch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoredPunch {
    /// Row id.
    pub id: i64,
    /// Employee.
    pub employee_id: String,
    /// When it happened.
    pub time: DateTime<Utc>,
    /// Terminal.
    pub device_id: Option<String>,
    /// Where it came from.
    pub source: String,
    /// Terminal event id.
    pub event_id: Option<String>,
    /// Identity as sent.
    pub identity: String,
    /// When attendd stored it.
    pub received_at: DateTime<Utc>,
}

/// A payload that could not be decoded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NewQuarantine {
    /// Topic, port or `file:LINE`.
    pub source: String,
    /// The bytes as received (cut to [`QUARANTINE_MAX_BYTES`] when stored).
    pub payload: Vec<u8>,
    /// Why it was refused.
    pub reason: String,
    /// What kind of row it is (pruning and replay depend on it).
    pub kind: QuarantineKind,
    /// What a replay needs to decode it again; `None` for rows that cannot
    /// be replayed (imports, summaries).
    pub replay: Option<ReplayInfo>,
    /// When the payload arrived; `None`: when it is stored.
    pub received_at: Option<DateTime<Utc>>,
}

/// A punch taken out of classification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Supersede {
    /// The punch's row id.
    pub punch_id: i64,
    /// Why.
    pub reason: String,
    /// Who.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A quarantined payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuarantineRow {
    /// Row id.
    pub id: i64,
    /// Topic, port or `file:LINE`.
    pub source: String,
    /// The stored bytes (at most [`QUARANTINE_MAX_BYTES`]).
    pub payload: Vec<u8>,
    /// The original length.
    pub payload_len: i64,
    /// Why it was refused.
    pub reason: String,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// What kind of row it is.
    pub kind: QuarantineKind,
    /// What a replay needs (rows from before migration 0005 have none).
    pub replay: Option<ReplayInfo>,
    /// When a replay stored what it held, and who ran it.
    pub resolved: Option<(DateTime<Utc>, String)>,
}

/// An employee as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EmployeeRecord {
    /// HR's id.
    pub employee_id: String,
    /// Display name.
    pub name: String,
    /// Team.
    pub team: String,
    /// Supervisor.
    pub supervisor: String,
    /// Default shift id, when the employee has one.
    pub shift: Option<String>,
    /// Card numbers and face-match names.
    pub aliases: Vec<String>,
    /// First day employed (inclusive), when known.
    pub start_date: Option<NaiveDate>,
    /// Last day employed (inclusive), when known.
    pub end_date: Option<NaiveDate>,
}

/// A roster row as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterRecord {
    /// Employee.
    pub employee_id: String,
    /// Date.
    pub date: NaiveDate,
    /// Shift id or `rest`.
    pub shift: String,
}

/// A leave record as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaveRecord {
    /// Employee.
    pub employee_id: String,
    /// Start (inclusive).
    pub start: DateTime<Utc>,
    /// End (exclusive).
    pub end: DateTime<Utc>,
    /// Kind (`annual`, `sick`, `field`, …).
    pub kind: String,
    /// `approved`, `pending` or `rejected`.
    pub status: String,
    /// When it was asked for (leaves.csv `requested_at`); `None` when the
    /// source does not say.
    pub requested_at: Option<DateTime<Utc>>,
    /// The document handed in (leaves.csv `document`): `None` when the
    /// source does not say, `Some("")` when it says none was.
    pub document: Option<String>,
}

/// A holiday-calendar row as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolidayRecord {
    /// Date.
    pub date: NaiveDate,
    /// `holiday` or `workday`.
    pub kind: String,
}

/// A stored day verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredVerdict {
    /// Employee.
    pub employee_id: String,
    /// Date.
    pub date: NaiveDate,
    /// Policy id that produced it.
    pub policy_id: String,
    /// Policy version that produced it.
    pub policy_version: String,
    /// Status name.
    pub status: String,
    /// Points in hundredths.
    pub points: i64,
    /// The verdict as JSON (the fields of `evaluate --json`).
    pub verdict: String,
    /// True while the day's punch window is still open.
    pub provisional: bool,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// What a recompute compares a fresh verdict with: everything but the
/// verdict text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VerdictMeta {
    pub employee_id: String,
    pub date: NaiveDate,
    pub hash: i64,
    pub provisional: bool,
    pub policy_id: String,
    pub policy_version: String,
}

/// A ledger entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LedgerEntry {
    /// Row id.
    pub id: i64,
    /// Employee.
    pub employee_id: String,
    /// The day it concerns.
    pub date: NaiveDate,
    /// Category.
    pub category: String,
    /// Rule id.
    pub rule: String,
    /// Points in hundredths, always positive. Shown as points (`10`,
    /// `0.5`) wherever an entry is serialised: the API, `--json`, the audit.
    #[serde(serialize_with = "points_number")]
    pub points: i64,
    /// True for a bonus.
    pub bonus: bool,
    /// `device` or `manual`.
    pub source: String,
    /// Punch times or a note.
    pub evidence: Option<String>,
    /// Who recorded it.
    pub recorded_by: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// When it was voided, if it was.
    pub voided_at: Option<DateTime<Utc>>,
    /// Who voided it.
    pub voided_by: Option<String>,
    /// Why it was voided.
    pub void_cause: Option<String>,
}

/// Hundredths serialised as the points they stand for (`1000` → `10`,
/// `50` → `0.5`), as every other view shows points.
fn points_number<S: serde::Serializer>(hundredths: &i64, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&crate::domain::Points::from_hundredths(*hundredths), s)
}

/// A manual ledger entry to record (a supervisor's deduction or a bonus).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewManualEntry {
    /// Employee.
    pub employee_id: String,
    /// The day it concerns.
    pub date: NaiveDate,
    /// Category.
    pub category: String,
    /// Rule id.
    pub rule: String,
    /// Points in hundredths, positive.
    pub points: i64,
    /// True for a bonus.
    pub bonus: bool,
    /// A note.
    pub evidence: Option<String>,
    /// Who records it.
    pub recorded_by: String,
}

/// An audit row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    /// Row id.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// Table changed.
    pub table_name: String,
    /// Key of the changed row (`E001/2026-11-02`, a ledger id, …).
    pub row_key: String,
    /// JSON before, null for a creation.
    pub old_value: Option<String>,
    /// JSON after.
    pub new_value: Option<String>,
    /// Why (`import punches FILE`, `recompute`, …).
    pub cause: String,
    /// Who.
    pub actor: String,
}

/// A re-derived verdict for a day of a published month, waiting for HR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Adjustment {
    /// Row id.
    pub id: i64,
    /// Employee.
    pub employee_id: String,
    /// Date.
    pub date: NaiveDate,
    /// The published verdict (JSON), null when the day had none.
    pub old_verdict: Option<String>,
    /// The verdict the current data gives (JSON).
    pub new_verdict: String,
    /// `pending`, `superseded`, `applied` or `dismissed`.
    pub status: String,
    /// What caused it.
    pub cause: String,
    /// Who caused it.
    pub actor: String,
    /// When.
    pub created_at: DateTime<Utc>,
}
