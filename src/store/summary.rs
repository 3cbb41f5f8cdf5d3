//! The daily deduction summary (`interfaces.md`, "Outputs"): totals and one
//! row per employee with points, status and deductions. Shared by
//! `attendd summary`, the day close and its revisions.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde_json::json;

use super::{EmployeeRecord, Store, StoreError};
use crate::domain::points::Points;
use crate::domain::policy::Policy;
use crate::domain::types::DayVerdict;

/// The summary of `date` from the stored verdicts.
pub async fn daily_summary(
    store: &Store,
    policy: &Policy,
    date: NaiveDate,
) -> Result<serde_json::Value, StoreError> {
    let rows = store.verdicts(date, date, None).await?;
    let emps: HashMap<String, EmployeeRecord> = store
        .employees()
        .await?
        .into_iter()
        .map(|e| (e.employee_id.clone(), e))
        .collect();
    let mut by_status: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut total = Points::ZERO;
    let mut deductions = 0usize;
    let mut out_rows = Vec::with_capacity(rows.len());
    let mut provisional = false;
    // Each row says its employee's policy group once the site has groups
    // (policy.md, "Several rule sets on one site"); a site without any
    // keeps the rows, and the hashes of closed days' summaries, unchanged.
    let history = store.policy_history().await?;
    for r in &rows {
        let v: DayVerdict = serde_json::from_str(&r.verdict).map_err(|e| StoreError::Corrupt {
            key: format!("day_verdicts/{}/{}", r.employee_id, r.date),
            why: format!("stored verdict does not parse: {e}"),
        })?;
        *by_status.entry(v.status.as_str()).or_default() += 1;
        total += v.points;
        deductions += v.deductions.len();
        provisional |= r.provisional;
        let e = emps.get(&r.employee_id);
        let mut row = json!({
            "employee_id": v.employee_id,
            "name": e.map(|e| e.name.as_str()),
            "team": e.map(|e| e.team.as_str()),
            "supervisor": e.map(|e| e.supervisor.as_str()),
            "status": v.status,
            "points": v.points,
            "deductions": v.deductions,
            "actions": v.actions,
        });
        if !history.is_empty() {
            row["policy"] = json!(history.at(&r.employee_id, date));
        }
        out_rows.push(row);
    }
    Ok(json!({
        "date": date,
        "policy": {"id": policy.id, "version": policy.version},
        "provisional": provisional,
        "totals": {"employees": rows.len(), "points": total, "deductions": deductions, "by_status": by_status},
        "rows": out_rows,
    }))
}

/// A stable hash of a summary's content (FNV-1a 64 over its JSON text),
/// to tell whether a closed day's summary changed.
pub fn summary_hash(doc: &serde_json::Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in doc.to_string().bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}
