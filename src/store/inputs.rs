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
    /// Loads classification inputs: roster for `first..=last`, leaves,
    /// corrections and punches within `lo..hi`. `None` when no employee is
    /// in scope.
    pub(crate) async fn load_inputs(
        &self,
        policy: &Policy,
        wanted: Option<&HashSet<&str>>,
        first: NaiveDate,
        last: NaiveDate,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
    ) -> Result<Option<Inputs>, StoreError> {
        let Some(mut inputs) = self
            .load_inputs_but_punches(policy, wanted, first, last, lo, hi)
            .await?
        else {
            return Ok(None);
        };
        self.add_raw_punches(&mut inputs, lo, hi, None).await?;
        Ok(Some(inputs))
    }

    /// [`Store::load_inputs`] without the stored punches (the corrections
    /// are there): the caller adds those it needs with
    /// [`Store::add_raw_punches`].
    pub(crate) async fn load_inputs_but_punches(
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

        // Corrections (补卡) count as punches beside the raw ones; their
        // device reads `correction:ID`, so the explanation shows them.
        let mut punches: Vec<Vec<Punch>> = vec![Vec::new(); n];
        for only in targets.iter().map(|t| t.as_deref()) {
            for (emp, at, device) in super::hr::correction_times(self, lo, hi, only).await? {
                let Some(&i) = index.get(emp.as_str()) else {
                    continue;
                };
                // A correction says when, not which way.
                punches[i].push(Punch {
                    at,
                    device: device.map(Arc::from),
                    direction: None,
                });
            }
        }
        for p in &mut punches {
            p.sort_by_key(|p| p.at);
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

    /// Adds the stored punches within `lo..hi` (superseded ones left out)
    /// to the corrections `inputs` holds, of every employee or of those
    /// `which` marks.
    pub(crate) async fn add_raw_punches(
        &self,
        inputs: &mut Inputs,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
        which: Option<&[bool]>,
    ) -> Result<(), StoreError> {
        let wanted = |i: usize| which.is_none_or(|w| w.get(i).copied().unwrap_or(false));
        let n = inputs.emps.len();
        let chosen = (0..n).filter(|&i| wanted(i)).count();
        if chosen == 0 {
            return Ok(());
        }
        // Few employees: one query each by index; otherwise as the inputs
        // were read.
        let targets: Vec<Option<String>> = if chosen < n && chosen <= SCOPED_QUERIES {
            (0..n)
                .filter(|&i| wanted(i))
                .map(|i| Some(inputs.emps[i].employee_id.clone()))
                .collect()
        } else {
            inputs.targets.clone()
        };
        let index: HashMap<&str, usize> = inputs
            .emps
            .iter()
            .enumerate()
            .map(|(i, e)| (e.employee_id.as_str(), i))
            .collect();
        let corrections: Vec<usize> = inputs.punches.iter().map(Vec::len).collect();
        let mut devices: HashMap<String, Arc<str>> = HashMap::new();
        for only in targets.iter().map(|t| t.as_deref()) {
            let times = match self {
                Store::Sqlite(p) => backend_sqlite::punch_times(p, lo, hi, only).await?,
                Store::Postgres(p) => backend_pg::punch_times(p, lo, hi, only).await?,
            };
            for (emp, at, device, state) in times {
                let Some(&i) = index.get(emp.as_str()) else {
                    continue;
                };
                if !wanted(i) {
                    continue;
                }
                let device = device.map(|d| {
                    devices
                        .entry(d)
                        .or_insert_with_key(|k| Arc::from(k.as_str()))
                        .clone()
                });
                inputs.punches[i].push(Punch {
                    at,
                    device,
                    direction: state.as_deref().and_then(Direction::of_state),
                });
            }
        }
        // The stored punches first, then the corrections, in time order
        // (a correction at the instant of a punch comes after it).
        for (i, p) in inputs.punches.iter_mut().enumerate() {
            if corrections[i] > 0 && wanted(i) {
                p.rotate_left(corrections[i]);
                p.sort_by_key(|p| p.at);
            }
        }
        Ok(())
    }

    /// Per employee of `inputs` (same index), what identifies the set of
    /// stored punches within `lo..hi` that a recompute would read: their
    /// number and highest id, and the number and highest id of their
    /// supersedes. Both tables are append-only (triggers refuse UPDATE and
    /// DELETE), so any punch stored or superseded since changes them.
    pub(crate) async fn raw_punch_stats(
        &self,
        inputs: &Inputs,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
    ) -> Result<Vec<PunchStats>, StoreError> {
        let index: HashMap<&str, usize> = inputs
            .emps
            .iter()
            .enumerate()
            .map(|(i, e)| (e.employee_id.as_str(), i))
            .collect();
        let mut out = vec![PunchStats::default(); inputs.emps.len()];
        for only in inputs.targets.iter().map(|t| t.as_deref()) {
            let rows = match self {
                Store::Sqlite(p) => backend_sqlite::punch_stats(p, lo, hi, only).await?,
                Store::Postgres(p) => backend_pg::punch_stats(p, lo, hi, only).await?,
            };
            for (emp, stats) in rows {
                if let Some(&i) = index.get(emp.as_str()) {
                    out[i] = stats;
                }
            }
        }
        Ok(out)
    }
}

/// See [`Store::raw_punch_stats`]: (punches, highest punch id,
/// supersedes, highest supersede id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct PunchStats(pub i64, pub i64, pub i64, pub i64);
