//! HR's operations on the store, shared by the command line and the HTTP
//! API: manual ledger entries (deductions and bonuses from the policy's
//! catalogue), corrections (补卡), publication, appeals and monthly scores
//! that honour voided entries.
//!
//! Each function validates its input against the policy and the store and
//! says which field is wrong; the callers map [`HrError`] to exit codes
//! (1 bad input, 2 store) or HTTP statuses (400/404/409, 500 logged).

pub mod year;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::Points;
use crate::domain::appeal::appeal_deadline;
use crate::domain::policy::{Policy, RuleKind};
use crate::domain::score::{ManualItem, MonthScore, month_scores};
use crate::domain::time::to_local;
use crate::domain::types::{DayVerdict, EmployeeId};
use crate::store::hr::{AnswerError, Appeal, NewCorrection};
use crate::store::{LedgerEntry, NewManualEntry, RecomputeReport, Store, StoreError};

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

fn invalid(field: &'static str, why: impl Into<String>) -> HrError {
    HrError::Invalid {
        field,
        why: why.into(),
    }
}

/// `YYYY-MM` of a date.
pub fn month_label(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// Deduction or bonus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// Takes points away (`attendd deduct`).
    Deduction,
    /// Adds points (`attendd bonus`).
    Bonus,
}

/// A manual ledger entry as asked for.
#[derive(Clone, Debug)]
pub struct ManualRequest {
    /// Employee.
    pub employee_id: String,
    /// The day it concerns.
    pub date: NaiveDate,
    /// Rule id from the policy's catalogue.
    pub rule: String,
    /// Points; the rule's default when `None`.
    pub points: Option<Points>,
    /// What happened.
    pub note: String,
    /// Who records it.
    pub by: String,
    /// Deduction or bonus; must match the rule's kind.
    pub kind: EntryKind,
}

/// Records a manual deduction or bonus (dress code, unauthorised shift
/// swap, missed training, 衡水 考核奖励项 …). The rule must be in the
/// policy's catalogue and of the right kind; its month must not be
/// published (a published month is frozen). The catalogue is that of the
/// policy the employee follows on the entry's date (policy.md, "Several
/// rule sets on one site").
pub async fn record_manual(
    store: &Store,
    policy: &(impl crate::policy::PolicySet + ?Sized),
    req: &ManualRequest,
) -> Result<LedgerEntry, HrError> {
    let policies = &*policy.as_policies();
    let policy = if policies.len() > 1 {
        let history = store.policy_history().await?;
        policies.get(history.index_at(policies, &req.employee_id, req.date))
    } else {
        policies.default_policy()
    };
    let rule = policy.rules.get(req.rule.as_str()).ok_or_else(|| {
        let known: Vec<&str> = policy
            .rules
            .values()
            .filter(|r| (r.kind == RuleKind::Bonus) == (req.kind == EntryKind::Bonus))
            .map(|r| r.id.as_ref())
            .collect();
        invalid(
            "rule",
            format!(
                "{:?} is not in the catalogue of policy {}; known: {}",
                req.rule,
                policy.id,
                known.join(", ")
            ),
        )
    })?;
    match (rule.kind, req.kind) {
        (RuleKind::Bonus, EntryKind::Deduction) => {
            return Err(invalid(
                "rule",
                format!("{:?} is a bonus rule; use bonus", req.rule),
            ));
        }
        (RuleKind::Deduction, EntryKind::Bonus) => {
            return Err(invalid(
                "rule",
                format!("{:?} is a deduction rule; use deduct", req.rule),
            ));
        }
        _ => {}
    }
    // A month's score starts at `score_base` and no single entry can take
    // or give more than that; larger values only overflow the month's sum.
    let points = match req.points.or(rule.points) {
        Some(p) if p > Points::ZERO && p <= policy.score_base => p,
        Some(p) if p > Points::ZERO => {
            return Err(invalid(
                "points",
                format!(
                    "{p} is more than the policy's score_base ({})",
                    policy.score_base
                ),
            ));
        }
        Some(p) => return Err(invalid("points", format!("{p} is not positive"))),
        None => {
            return Err(invalid(
                "points",
                format!("rule {:?} has no default; give the points", req.rule),
            ));
        }
    };
    if req.note.trim().is_empty() {
        return Err(invalid("note", "is empty; say what happened"));
    }
    if req.by.trim().is_empty() {
        return Err(invalid("by", "is empty"));
    }
    if store.employee(&req.employee_id).await?.is_none() {
        return Err(HrError::NotFound(format!(
            "employee {:?} is not in the store",
            req.employee_id
        )));
    }
    let month = month_label(req.date);
    if store.published(&month).await?.is_some() {
        return Err(HrError::Conflict(format!(
            "month {month} is published and frozen; appeal or correct instead"
        )));
    }
    let entry = NewManualEntry {
        employee_id: req.employee_id.clone(),
        date: req.date,
        category: rule.category.to_string(),
        rule: rule.id.to_string(),
        points: points.hundredths(),
        bonus: req.kind == EntryKind::Bonus,
        evidence: Some(req.note.trim().to_string()),
        recorded_by: req.by.clone(),
    };
    let cause = match req.kind {
        EntryKind::Deduction => format!("deduct {}", rule.id),
        EntryKind::Bonus => format!("bonus {}", rule.id),
    };
    let id = store
        .add_manual_entry(&entry, &cause, crate::clock::now())
        .await?;
    store
        .ledger_entry(id)
        .await?
        .ok_or_else(|| HrError::NotFound(format!("ledger entry {id} vanished")))
}

/// What recording a correction did.
#[derive(Clone, Debug, Serialize)]
pub struct CorrectionOutcome {
    /// The correction's id.
    pub id: i64,
    /// The local date the punch falls on.
    pub date: NaiveDate,
    /// Days evaluated again.
    pub evaluated: usize,
    /// Days whose verdict changed.
    pub changed: usize,
    /// Days of a published month that got an adjustment instead.
    pub adjustments: usize,
    /// HR's reason for recording it beyond the policy's `[corrections]`
    /// limits, when given.
    #[serde(rename = "override", skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
}

/// Why a correction for the punch at `time` (local date `date`) is beyond
/// the policy's `[corrections]` limits (DingTalk's 补卡规则), if it is:
/// more than `per_month` corrections of the employee in that month, or
/// recorded after the end of the `within_days`-th calendar day after the
/// punch's day (policy zone; counted like the appeal window).
pub async fn correction_limit_breach(
    store: &Store,
    policy: &Policy,
    employee_id: &str,
    time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<String>, HrError> {
    let rules = &policy.hr;
    let date = to_local(policy.tz, time).date_naive();
    if let Some(days) = rules.corrections_within_days {
        let closes = appeal_deadline(time, policy.tz, days);
        if now >= closes {
            return Ok(Some(format!(
                "corrections for {date} closed at {} ([corrections] within_days = {days})",
                to_local(policy.tz, closes).to_rfc3339()
            )));
        }
    }
    if let Some(limit) = rules.corrections_per_month {
        let (first, last) = crate::store::month_bounds(date);
        let lo =
            crate::domain::time::resolve_local(policy.tz, first.and_time(chrono::NaiveTime::MIN));
        let hi = crate::domain::time::resolve_local(
            policy.tz,
            (last + chrono::Days::new(1)).and_time(chrono::NaiveTime::MIN),
        );
        let had = store.corrections(lo, hi, Some(employee_id)).await?.len();
        if had >= limit as usize {
            return Ok(Some(format!(
                "{employee_id} already has {had} correction(s) in {} ([corrections] per_month = {limit})",
                month_label(date)
            )));
        }
    }
    Ok(None)
}

/// Records a forgotten punch a supervisor confirms (补卡; 坐席考勤管理制度:
/// nobody alters attendance records, so it is a separate, attributed
/// record) and recomputes the employee's days it can change: from the day
/// before (overnight shifts) to the end of the month (the ladder counts
/// per month). In a published month the new verdict waits as an
/// adjustment. Beyond the policy's `[corrections]` limits it is refused
/// with the reason unless HR gives `override_reason`, which the audit
/// trail keeps with the limit it overrode.
#[allow(clippy::too_many_arguments)]
pub async fn record_correction(
    store: &Store,
    policies: &(impl crate::policy::PolicySet + ?Sized),
    employee_id: &str,
    time: DateTime<Utc>,
    reason: &str,
    by: &str,
    override_reason: Option<&str>,
    now: DateTime<Utc>,
) -> Result<CorrectionOutcome, HrError> {
    if reason.trim().is_empty() {
        return Err(invalid(
            "reason",
            "is empty; say why the terminal missed it",
        ));
    }
    if by.trim().is_empty() {
        return Err(invalid("by", "is empty"));
    }
    if time > now {
        return Err(invalid(
            "time",
            format!("{} is in the future", time.to_rfc3339()),
        ));
    }
    if store.employee(employee_id).await?.is_none() {
        return Err(HrError::NotFound(format!(
            "employee {employee_id:?} is not in the store"
        )));
    }
    let override_reason = match override_reason.map(str::trim) {
        Some("") => {
            return Err(invalid(
                "override",
                "is empty; say why the correction limit is overridden",
            ));
        }
        o => o,
    };
    // The limits and the zone of the employee's own policy (policy.md,
    // "Several rule sets on one site").
    let policies = &*policies.as_policies();
    let policy = crate::store::policy_groups::policy_on(store, policies, employee_id, time).await?;
    let mut cause = format!("correction (补卡) for {employee_id}");
    match (
        correction_limit_breach(store, policy, employee_id, time, now).await?,
        override_reason,
    ) {
        (Some(why), None) => {
            return Err(HrError::Conflict(format!(
                "correction refused: {why}; HR may override with a reason"
            )));
        }
        (Some(why), Some(o)) => cause.push_str(&format!("; override by {by}: {o} (beyond: {why})")),
        (None, Some(o)) => cause.push_str(&format!("; override by {by}: {o} (within the limits)")),
        (None, None) => {}
    }
    let id = store
        .add_correction(
            &NewCorrection {
                employee_id: employee_id.to_string(),
                time,
                reason: reason.trim().to_string(),
                confirmed_by: by.to_string(),
            },
            &cause,
            now,
        )
        .await?;
    let date = to_local(policy.tz, time).date_naive();
    let from = date.pred_opt().unwrap_or(date);
    let to = crate::store::month_bounds(date).1;
    let rep: RecomputeReport = store
        .recompute(
            policies,
            Some(&[employee_id.to_string()]),
            from,
            to,
            &format!("correction {id}"),
            by,
            now,
        )
        .await?;
    Ok(CorrectionOutcome {
        id,
        date,
        evaluated: rep.evaluated,
        changed: rep.changed + rep.created,
        adjustments: rep.adjustments,
        override_reason: override_reason.map(String::from),
    })
}

/// Publishes a month (`attendd publish`): its scores are frozen and the
/// appeal window opens. Refused before the last punch window of the
/// month's last day has closed (policy.md, "Today"): a later punch would
/// otherwise become an adjustment for a day that had not ended.
pub async fn publish(
    store: &Store,
    policy: &(impl crate::policy::PolicySet + ?Sized),
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

/// Files an appeal against a ledger entry. Allowed only once the entry's
/// month is published and until the deadline
/// ([`crate::domain::appeal::appeal_deadline`]: the end of the 2nd
/// calendar day after publication, in the policy's zone); one open appeal
/// per entry. The window is that of the policy the employee followed on
/// the entry's date (policy.md, "Several rule sets on one site").
pub async fn file_appeal(
    store: &Store,
    policy: &(impl crate::policy::PolicySet + ?Sized),
    ledger_id: i64,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Appeal, HrError> {
    if reason.trim().is_empty() {
        return Err(invalid("reason", "is empty"));
    }
    let entry = store
        .ledger_entry(ledger_id)
        .await?
        .ok_or_else(|| HrError::NotFound(format!("ledger entry {ledger_id} does not exist")))?;
    if entry.voided_at.is_some() {
        return Err(HrError::Conflict(format!(
            "ledger entry {ledger_id} is already void"
        )));
    }
    let all = policy.as_policies();
    let policy = if all.len() > 1 {
        let history = store.policy_history().await?;
        all.get(history.index_at(&all, &entry.employee_id, entry.date))
    } else {
        all.default_policy()
    };
    let month = month_label(entry.date);
    let Some((published_at, _)) = store.published(&month).await? else {
        return Err(HrError::Conflict(format!(
            "month {month} is not published yet; appeals open on publication"
        )));
    };
    let deadline = appeal_deadline(published_at, policy.tz, policy.appeal_days);
    if now >= deadline {
        return Err(HrError::Conflict(format!(
            "the appeal window for {month} closed at {} ({} day(s) after publication on {})",
            to_local(policy.tz, deadline).to_rfc3339(),
            policy.appeal_days,
            to_local(policy.tz, published_at).to_rfc3339()
        )));
    }
    if store
        .appeals(Some("open"))
        .await?
        .iter()
        .any(|a| a.ledger_id == ledger_id)
    {
        return Err(HrError::Conflict(format!(
            "ledger entry {ledger_id} already has an open appeal"
        )));
    }
    let id = match store
        .add_appeal(ledger_id, &entry.employee_id, reason.trim(), by, now)
        .await
    {
        Ok(id) => id,
        // Filed concurrently: the unique index on open appeals refused it.
        Err(StoreError::Query {
            source: sqlx::Error::Database(e),
            ..
        }) if e.is_unique_violation() => {
            return Err(HrError::Conflict(format!(
                "ledger entry {ledger_id} already has an open appeal"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    store
        .appeal(id)
        .await?
        .ok_or_else(|| HrError::NotFound(format!("appeal {id} vanished")))
}

/// An appeal as listed: with the time its answer is due and whether it
/// is overdue (坐席员考核细则 一(七): 考核领导小组应在2天内作出答复).
#[derive(Clone, Debug, Serialize)]
pub struct AppealView {
    /// The stored appeal.
    #[serde(flatten)]
    pub appeal: Appeal,
    /// The first instant at which it is late: the end of the
    /// `appeal_answer_days`-th calendar day after filing, policy zone.
    pub answer_due: DateTime<Utc>,
    /// Not answered before `answer_due`, which has passed.
    pub overdue: bool,
}

/// When an appeal filed at `filed_at` must have been answered by, counted
/// like the filing window ([`appeal_deadline`]): until the end of the
/// `appeal_answer_days`-th calendar day after filing, in the policy's zone.
pub fn answer_due(policy: &Policy, filed_at: DateTime<Utc>) -> DateTime<Utc> {
    appeal_deadline(filed_at, policy.tz, policy.hr.appeal_answer_days)
}

/// An appeal with its due time and whether it is overdue at `now`: open at
/// or after the due time, or answered only then.
pub fn appeal_view(policy: &Policy, a: Appeal, now: DateTime<Utc>) -> AppealView {
    let due = answer_due(policy, a.filed_at);
    let answered = a.decided_at.filter(|_| a.status != "open");
    let overdue = match answered {
        Some(at) => at >= due,
        None => now >= due,
    };
    AppealView {
        appeal: a,
        answer_due: due,
        overdue,
    }
}

/// Appeals for `attendd appeal list` and `GET /api/v1/appeals`: with
/// `status` `overdue`, the open ones whose answer is late. Each is due by
/// the policy its employee follows on the filing date.
pub async fn list_appeals(
    store: &Store,
    policy: &(impl crate::policy::PolicySet + ?Sized),
    status: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<AppealView>, HrError> {
    match status {
        None | Some("open" | "upheld" | "rejected" | "overdue") => {}
        Some(s) => {
            return Err(invalid(
                "status",
                format!("{s:?} is not open, overdue, upheld or rejected"),
            ));
        }
    }
    let want = if status == Some("overdue") {
        Some("open")
    } else {
        status
    };
    let all = policy.as_policies();
    let history = if all.len() > 1 {
        store.policy_history().await?
    } else {
        Default::default()
    };
    let tz = all.default_policy().tz;
    let mut rows: Vec<AppealView> = store
        .appeals(want)
        .await?
        .into_iter()
        .map(|a| {
            let date = to_local(tz, a.filed_at).date_naive();
            let p = all.get(history.index_at(&all, &a.employee_id, date));
            appeal_view(p, a, now)
        })
        .collect();
    if status == Some("overdue") {
        rows.retain(|a| a.overdue);
    }
    Ok(rows)
}

/// The outbox key of an overdue appeal's announcement.
pub fn overdue_key(id: i64) -> String {
    format!("appeal_overdue/{id}")
}

/// Announcements for HR of the open appeals that are overdue at `now`
/// (坐席员考核细则 一(七): 考核领导小组应在2天内作出答复): one
/// `(appeal_overdue/{id}, payload)` each; the outbox's unique key makes
/// each one go out once.
pub async fn overdue_announcements(
    store: &Store,
    policies: &(impl crate::policy::PolicySet + ?Sized),
    now: DateTime<Utc>,
) -> Result<Vec<(String, serde_json::Value)>, HrError> {
    let all = policies.as_policies();
    let policy = all.default_policy();
    let local = |t: DateTime<Utc>| {
        to_local(policy.tz, t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    Ok(list_appeals(store, &*all, Some("overdue"), now)
        .await?
        .into_iter()
        .map(|v| {
            let a = &v.appeal;
            let key = overdue_key(a.id);
            let due = to_local(policy.tz, v.answer_due).format("%Y-%m-%d %H:%M");
            let payload = serde_json::json!({
                "id": key,
                "kind": "appeal",
                "appeal_id": a.id,
                "ledger_id": a.ledger_id,
                "employee_id": a.employee_id,
                "filed_at": local(a.filed_at),
                "filed_by": a.filed_by,
                "answer_due": local(v.answer_due),
                "text": format!(
                    "appeal {} of {} (ledger entry {}) not answered by {due} — 申诉逾期未答复",
                    a.id, a.employee_id, a.ledger_id
                ),
            });
            (key, payload)
        })
        .collect())
}

/// Answers an appeal: upheld voids the entry, rejected keeps it.
pub async fn answer_appeal(
    store: &Store,
    id: i64,
    upheld: bool,
    answer: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Appeal, HrError> {
    if answer.trim().is_empty() {
        return Err(invalid("answer", "is empty"));
    }
    store
        .answer_appeal(id, upheld, answer.trim(), by, now)
        .await
        .map_err(|e| match e {
            AnswerError::NotFound(_) => HrError::NotFound(e.to_string()),
            AnswerError::Decided { .. } => HrError::Conflict(e.to_string()),
            AnswerError::Store(s) => HrError::Store(s),
        })
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
    policy: &(impl crate::policy::PolicySet + ?Sized),
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
    policy: &(impl crate::policy::PolicySet + ?Sized),
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
    policies: &crate::policy::Policies,
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
