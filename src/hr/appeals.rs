//! Appeals against ledger entries: filing within the window, answers,
//! and the ones whose answer is overdue.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::appeal::appeal_deadline;
use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::store::hr::{AnswerError, Appeal};
use crate::store::{Store, StoreError};

use super::{HrError, invalid, month_label};

/// Files an appeal against a ledger entry. Allowed only once the entry's
/// month is published and until the deadline
/// ([`crate::domain::appeal::appeal_deadline`]: the end of the 2nd
/// calendar day after publication, in the policy's zone); one open appeal
/// per entry. The window is that of the policy the employee followed on
/// the entry's date (policy.md, "Several rule sets on one site").
pub async fn file_appeal(
    store: &Store,
    policy: &(impl crate::policy_file::PolicySet + ?Sized),
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

/// One appeal as [`list_appeals`] shows it (due by the policy its
/// employee follows on the filing date), for the answer of a filing or a
/// decision.
pub async fn view_appeal(
    store: &Store,
    policy: &(impl crate::policy_file::PolicySet + ?Sized),
    a: Appeal,
    now: DateTime<Utc>,
) -> Result<AppealView, HrError> {
    let all = policy.as_policies();
    let p = if all.len() > 1 {
        let history = store.policy_history().await?;
        let date = to_local(all.default_policy().tz, a.filed_at).date_naive();
        all.get(history.index_at(&all, &a.employee_id, date))
    } else {
        all.default_policy()
    };
    Ok(appeal_view(p, a, now))
}

/// Appeals for `attendd appeal list` and `GET /api/v1/appeals`: with
/// `status` `overdue`, the open ones whose answer is late. Each is due by
/// the policy its employee follows on the filing date.
pub async fn list_appeals(
    store: &Store,
    policy: &(impl crate::policy_file::PolicySet + ?Sized),
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
    policies: &(impl crate::policy_file::PolicySet + ?Sized),
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
