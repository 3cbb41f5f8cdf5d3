//! What a recompute reads: the employees in scope and, per employee, the
//! roster, leave and punches (corrections included) of a range, with the
//! holidays.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};

use super::{Store, StoreError, backend_pg, backend_sqlite};
use crate::domain::policy::Policy;
use crate::domain::types::{
    Direction, HolidayKind, Leave, LeaveDocument, LeaveStatus, Punch, Roster, RosterEntry,
};

/// Up to this many employees in scope, a recompute queries each one's
/// rows by index instead of reading the whole range.
pub(super) const SCOPED_QUERIES: usize = 64;

/// What classification needs, loaded from the store for a range: the
/// employees and, per employee (same index), roster, leaves and punches.
pub(crate) struct Inputs {
    /// The employees in scope.
    pub emps: Vec<super::EmployeeRecord>,
    /// One employee id per query when few are in scope, else `[None]`.
    pub targets: Vec<Option<String>>,
    /// The policy's holidays with the store's on top.
    pub holidays: crate::domain::types::Holidays,
    /// Roster per employee.
    pub roster: Vec<Roster>,
    /// Leave records per employee.
    pub leaves: Vec<Vec<Leave>>,
    /// Punches per employee.
    pub punches: Vec<Vec<Punch>>,
}

impl Store {
    /// Loads classification inputs: roster for `first..=last`, leaves and
    /// punches within `lo..hi`. `None` when no employee is in scope.
    pub(crate) async fn load_inputs(
        &self,
        policy: &Policy,
        wanted: Option<&HashSet<&str>>,
        first: NaiveDate,
        last: NaiveDate,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
    ) -> Result<Option<Inputs>, StoreError> {
        let in_scope = |id: &str| wanted.is_none_or(|w| w.contains(id));
        let mut emps = self.employees().await?;
        emps.retain(|e| in_scope(&e.employee_id));
        if emps.is_empty() {
            return Ok(None);
        }
        let index: HashMap<&str, usize> = emps
            .iter()
            .enumerate()
            .map(|(i, e)| (e.employee_id.as_str(), i))
            .collect();
        let n = emps.len();
        // A few employees: one query each, so that the indexes on
        // (employee_id, …) do the work; otherwise one pass over the range.
        let targets: Vec<Option<String>> = if wanted.is_some() && n <= SCOPED_QUERIES {
            emps.iter().map(|e| Some(e.employee_id.clone())).collect()
        } else {
            vec![None]
        };

        let mut holidays = policy.holidays.clone();
        for h in self.holidays().await? {
            let kind = match h.kind.as_str() {
                "holiday" => HolidayKind::Holiday,
                "workday" => HolidayKind::Workday,
                other => {
                    return Err(StoreError::Corrupt {
                        key: format!("holidays/{}", h.date),
                        why: format!("kind {other:?} is neither holiday nor workday"),
                    });
                }
            };
            holidays.insert(h.date, kind);
        }

        let mut roster: Vec<Roster> = vec![Roster::new(); n];
        for r in self.roster(first, last).await? {
            let Some(&i) = index.get(r.employee_id.as_str()) else {
                continue;
            };
            let entry = if r.shift == "rest" {
                RosterEntry::Rest
            } else {
                match policy.shift_by_id(&r.shift) {
                    Some(s) => RosterEntry::Shift(s),
                    // A row written under another policy group (the
                    // employee changed group since) does not stop the
                    // recompute; the day follows the default shift.
                    None => {
                        tracing::warn!(
                            employee = %r.employee_id,
                            date = %r.date,
                            "roster shift {:?} is not in policy {} {}; ignored",
                            r.shift,
                            policy.id,
                            policy.version
                        );
                        continue;
                    }
                }
            };
            roster[i].insert(r.date, entry);
        }

        let mut leaves: Vec<Vec<Leave>> = vec![Vec::new(); n];
        for l in self.leaves(lo, hi).await? {
            let Some(&i) = index.get(l.employee_id.as_str()) else {
                continue;
            };
            let status = match l.status.as_str() {
                "approved" => LeaveStatus::Approved,
                "pending" => LeaveStatus::Pending,
                _ => LeaveStatus::Rejected,
            };
            leaves[i].push(Leave {
                start: l.start,
                end: l.end,
                kind: Arc::from(l.kind.as_str()),
                status,
                requested_at: l.requested_at,
                document: match l.document {
                    None => LeaveDocument::Unknown,
                    Some(d) if d.is_empty() => LeaveDocument::Missing,
                    Some(d) => LeaveDocument::Given(Arc::from(d.as_str())),
                },
            });
        }

        let mut punches: Vec<Vec<Punch>> = vec![Vec::new(); n];
        let mut devices: HashMap<String, Arc<str>> = HashMap::new();
        let mut times = Vec::new();
        for only in targets.iter().map(|t| t.as_deref()) {
            times.extend(match self {
                Store::Sqlite(p) => backend_sqlite::punch_times(p, lo, hi, only).await?,
                Store::Postgres(p) => backend_pg::punch_times(p, lo, hi, only).await?,
            });
        }
        // Corrections (补卡) count as punches beside the raw ones; their
        // device reads `correction:ID`, so the explanation shows them.
        let n_raw = times.len();
        for only in targets.iter().map(|t| t.as_deref()) {
            // A correction says when, not which way.
            times.extend(
                super::hr::correction_times(self, lo, hi, only)
                    .await?
                    .into_iter()
                    .map(|(e, at, d)| (e, at, d, None)),
            );
        }
        let corrected = times.len() > n_raw;
        for (emp, at, device, state) in times {
            let Some(&i) = index.get(emp.as_str()) else {
                continue;
            };
            let device = device.map(|d| {
                devices
                    .entry(d)
                    .or_insert_with_key(|k| Arc::from(k.as_str()))
                    .clone()
            });
            punches[i].push(Punch {
                at,
                device,
                direction: state.as_deref().and_then(Direction::of_state),
            });
        }
        if corrected {
            for p in &mut punches {
                p.sort_by_key(|p| p.at);
            }
        }

        Ok(Some(Inputs {
            emps,
            targets,
            holidays,
            roster,
            leaves,
            punches,
        }))
    }
}
