//! Manual ledger entries (deductions and bonuses from the policy's
//! catalogue) and corrections (补卡).

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::domain::Points;
use crate::domain::appeal::appeal_deadline;
use crate::domain::policy::{Policy, RuleKind};
use crate::domain::time::to_local;
use crate::store::hr::NewCorrection;
use crate::store::{LedgerEntry, NewManualEntry, RecomputeReport, Store};

use super::{HrError, invalid, month_label};

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
    policy: &(impl crate::policy_file::PolicySet + ?Sized),
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
    policies: &(impl crate::policy_file::PolicySet + ?Sized),
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
