//! HR's operations on the store, shared by the command line and the HTTP
//! API: manual ledger entries (deductions and bonuses from the policy's
//! catalogue), corrections (补卡), publication, appeals and monthly scores
//! that honour voided entries.
//!
//! Each function validates its input against the policy and the store and
//! says which field is wrong; the callers map [`HrError`] to exit codes
//! (1 bad input, 2 store) or HTTP statuses (400/404/409, 500 logged).

mod appeals;
mod manual;
pub mod year;

pub use appeals::{
    AppealView, answer_appeal, answer_due, appeal_view, file_appeal, list_appeals,
    overdue_announcements, overdue_key, view_appeal,
};
pub use manual::{
    CorrectionOutcome, EntryKind, ManualRequest, correction_limit_breach, record_correction,
    record_manual,
};

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use crate::domain::Points;
use crate::domain::policy::Policy;
use crate::domain::score::{ManualItem, MonthScore, month_scores};
use crate::domain::types::{DayVerdict, EmployeeId};
use crate::store::{LedgerEntry, Store, StoreError};

/// Why an HR operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum HrError {
    /// A field is malformed or not allowed by the policy.
    #[error("{field}: {why}")]
    Invalid {
        /// The field (`rule`, `points`, `date`, …).
        field: &'static str,
        /// Why.
        why: String,
    },
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the state: a published month, a passed
    /// appeal deadline, an appeal already answered.
    #[error("{0}")]
    Conflict(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn invalid(field: &'static str, why: impl Into<String>) -> HrError {
    HrError::Invalid {
        field,
        why: why.into(),
    }
}

/// `YYYY-MM` of a date.
pub fn month_label(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// Publishes a month (`attendd publish`): its scores are frozen and the
/// appeal window opens. Refused before the last punch window of the
/// month's last day has closed (policy.md, "Today"): a later punch would
/// otherwise become an adjustment for a day that had not ended.
pub async fn publish(
    store: &Store,
    policy: &(impl crate::policy_file::PolicySet + ?Sized),
    month: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, HrError> {
    let first = parse_month(month)?;
    // The last window of every policy group (policy.md, "Several rule sets
    // on one site"): a group's later shift is not cut off.
    let all = policy.as_policies();
    let policy = all.default_policy();
    let closes = (0..all.len())
        .map(|g| month_closes_at(all.get(g), first))
        .max()
        .unwrap_or_else(|| month_closes_at(policy, first));
    if now < closes {
        return Err(HrError::Conflict(format!(
            "month {month} cannot be published before its last punch window closes at {}",
            crate::domain::time::to_local(policy.tz, closes).to_rfc3339()
        )));
    }
    Ok(store.publish_month_at(month, by, now).await?)
}

/// When the last punch window of the last day of `first`'s month closes:
/// the latest end of any of the policy's shifts on that day (an overnight
/// shift ends the next morning) plus the window's after-margin.
pub fn month_closes_at(policy: &Policy, first: NaiveDate) -> DateTime<Utc> {
    let last = crate::store::month_bounds(first).1;
    let clock = crate::domain::calendar::ShiftClock::new(policy, last, last);
    let after = chrono::Duration::seconds(policy.window_after_secs);
    (0..policy.shifts.len())
        .map(|i| {
            clock
                .times(last, crate::domain::types::ShiftIdx(i as u16))
                .end
                + after
        })
        .max()
        .unwrap_or_else(|| {
            crate::domain::time::resolve_local(
                policy.tz,
                (last + chrono::Days::new(1)).and_time(chrono::NaiveTime::MIN),
            )
        })
}

/// What a view of a date before the classification start says.
pub fn before_start_note(date: NaiveDate, start: NaiveDate) -> String {
    format!(
        "{date} is before classification starts ({start}); its punches are stored, \
         its days not classified (attendd recompute --from {date} --to {date} classifies them)"
    )
}

/// Parses `YYYY-MM` into the month's first day.
pub fn parse_month(s: &str) -> Result<NaiveDate, HrError> {
    crate::dates::parse_month(s).map_err(|why| invalid("month", why))
}

/// A month's data for one set of employees: closed verdicts, the ledger
/// and the scores computed from the ledger's active entries.
#[derive(Clone, Debug)]
pub struct MonthData {
    /// `YYYY-MM`.
    pub month: String,
    /// First and last day.
    pub bounds: (NaiveDate, NaiveDate),
    /// Employees in scope, by id.
    pub employees: Vec<crate::store::EmployeeRecord>,
    /// Verdicts by employee (closed and provisional), by date; empty from
    /// [`month_scores_data`].
    pub days: BTreeMap<String, Vec<(DayVerdict, bool)>>,
    /// Ledger entries, voided ones included.
    pub ledger: Vec<LedgerEntry>,
    /// One score per employee, in employee order.
    pub scores: Vec<MonthScore>,
    /// Each employee's policy group (`default` for the default policy)
    /// at the month's end, in employee order.
    pub policy_labels: Vec<String>,
    /// Each employee's group history, for the group of each day.
    pub policy_history: crate::store::policy_groups::PolicyHistory,
    /// When it was published, if it was.
    pub published_at: Option<DateTime<Utc>>,
}

/// Loads a month for the employees `keep` accepts. Scores count the
/// ledger's active entries (device and manual), so an upheld appeal lowers
/// a deduction; workdays and absence come from the closed verdicts.
pub async fn month_data(
    store: &Store,
    policy: &(impl crate::policy_file::PolicySet + ?Sized),
    first: NaiveDate,
    keep: impl Fn(&crate::store::EmployeeRecord) -> bool,
) -> Result<MonthData, HrError> {
    load_month(store, &policy.as_policies(), first, keep, true).await
}

/// [`month_data`] without the verdicts (`days` is empty): only what the
/// scores need is read from each stored verdict, which is several times
/// faster for a month of a large site.
pub async fn month_scores_data(
    store: &Store,
    policy: &(impl crate::policy_file::PolicySet + ?Sized),
    first: NaiveDate,
    keep: impl Fn(&crate::store::EmployeeRecord) -> bool,
) -> Result<MonthData, HrError> {
    load_month(store, &policy.as_policies(), first, keep, false).await
}

/// The fields of a stored verdict that a score needs.
#[derive(serde::Deserialize)]
struct ScoreFields {
    date: NaiveDate,
    status: crate::domain::types::Status,
    absence_days: Points,
    leave_days: Points,
    #[serde(default)]
    overtime_minutes: i64,
}

impl ScoreFields {
    fn into_verdict(self, employee_id: &str) -> DayVerdict {
        DayVerdict {
            employee_id: EmployeeId::from(employee_id),
            date: self.date,
            shift: None,
            status: self.status,
            check_in: None,
            check_out: None,
            late_minutes: 0,
            early_minutes: 0,
            absence_days: self.absence_days,
            leave_days: self.leave_days,
            worked_minutes: None,
            overtime_minutes: self.overtime_minutes,
            provisional: false,
            points: Points::ZERO,
            actions: Vec::new(),
            deductions: Vec::new(),
            flags: Vec::new(),
            explanation: Default::default(),
        }
    }
}

async fn load_month(
    store: &Store,
    policies: &crate::policy_file::Policies,
    first: NaiveDate,
    keep: impl Fn(&crate::store::EmployeeRecord) -> bool,
    full: bool,
) -> Result<MonthData, HrError> {
    let (from, to) = crate::store::month_bounds(first);
    let month = month_label(from);
    let mut employees = store.employees().await?;
    employees.retain(|e| keep(e));
    let wanted: HashMap<&str, ()> = employees
        .iter()
        .map(|e| (e.employee_id.as_str(), ()))
        .collect();
    let mut days: BTreeMap<String, Vec<(DayVerdict, bool)>> = BTreeMap::new();
    for r in store.verdicts(from, to, None).await? {
        if !wanted.contains_key(r.employee_id.as_str()) {
            continue;
        }
        let corrupt = |e: serde_json::Error| {
            HrError::Store(StoreError::Corrupt {
                key: format!("day_verdicts/{}/{}", r.employee_id, r.date),
                why: format!("stored verdict does not parse: {e}"),
            })
        };
        let v: DayVerdict = if full {
            serde_json::from_str(&r.verdict).map_err(corrupt)?
        } else {
            serde_json::from_str::<ScoreFields>(&r.verdict)
                .map_err(corrupt)?
                .into_verdict(&r.employee_id)
        };
        days.entry(r.employee_id.clone())
            .or_default()
            .push((v, r.provisional));
    }
    let mut ledger = store.ledger(from, to, None).await?;
    ledger.retain(|e| wanted.contains_key(e.employee_id.as_str()));
    let mut items: HashMap<&str, Vec<ManualItem>> = HashMap::new();
    for e in ledger.iter().filter(|e| e.voided_at.is_none()) {
        items
            .entry(e.employee_id.as_str())
            .or_default()
            .push(ManualItem {
                date: e.date,
                rule: e.rule.as_str().into(),
                category: e.category.as_str().into(),
                points: Points::from_hundredths(e.points),
                bonus: e.bonus,
            });
    }
    // Each employee's score follows the policy they follow at the month's
    // end (policy.md, "Several rule sets on one site").
    let history = if policies.len() > 1 {
        store.policy_history().await?
    } else {
        Default::default()
    };
    let mut scores = Vec::with_capacity(employees.len());
    let mut policy_labels = Vec::with_capacity(employees.len());
    for e in &employees {
        let g = history.index_at(policies, &e.employee_id, to);
        let policy = policies.get(g);
        policy_labels.push(policies.label(g).to_string());
        // Deductions come from the ledger; the verdicts give workdays and
        // absence only, every day the grid shows (a provisional day too:
        // its verdict grades only what has happened), so that the scores
        // agree with the days listed beside them.
        let closed: Vec<DayVerdict> = days
            .get(&e.employee_id)
            .map(|d| {
                d.iter()
                    .map(|(v, _)| {
                        let mut v = v.clone();
                        v.deductions.clear();
                        v
                    })
                    .collect()
            })
            .unwrap_or_default();
        let id = EmployeeId::from(e.employee_id.as_str());
        let mine = items.get(e.employee_id.as_str()).map_or(&[][..], |v| v);
        let mut s = month_scores(policy, &id, &closed, mine);
        s.retain(|s| s.month == month);
        let s = s
            .into_iter()
            .next()
            .unwrap_or_else(|| empty_score(policy, &id, &month));
        scores.push(s);
    }
    if !full {
        days.clear();
    }
    let published_at = store.published(&month).await?.map(|p| p.0);
    Ok(MonthData {
        month,
        bounds: (from, to),
        employees,
        days,
        ledger,
        scores,
        policy_labels,
        policy_history: history,
        published_at,
    })
}

fn empty_score(policy: &Policy, id: &EmployeeId, month: &str) -> MonthScore {
    MonthScore {
        employee_id: id.clone(),
        month: month.to_string(),
        score: policy.score_base,
        categories: policy
            .categories
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    crate::domain::score::CategoryScore {
                        raw: Points::ZERO,
                        capped: Points::ZERO,
                        cap: c.cap,
                    },
                )
            })
            .collect(),
        bonuses: Points::ZERO,
        attendance_days: Points::ZERO,
        workdays: 0,
        absence_days: Points::ZERO,
        leave_days: Points::ZERO,
        overtime_minutes: 0,
    }
}
