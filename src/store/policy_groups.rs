//! Each employee's policy group with its history (policy.md, "Several rule
//! sets on one site"): employees.csv's `policy` column names a
//! `[[policy.group]]`; a change of group applies from the date of the
//! import that made it. An employee without history follows the default
//! policy.
//!
//! A recompute is split here by policy: every employee-day is classified
//! with the policy the employee followed that date, in that policy's zone.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};

use super::recompute::Run;
use super::{RecomputeReport, Store, StoreError, backend_pg, backend_sqlite, dispatch};
use crate::policy_file::{DEFAULT_GROUP, Policies};

/// One employee's change of group: `policy` (a group id, or `default`) in
/// force from `valid_from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyChange {
    /// The employee.
    pub employee_id: String,
    /// The group id (`default` for the default policy).
    pub policy: String,
    /// First date it applies to.
    pub valid_from: NaiveDate,
}

/// The stored group history of every employee who has one.
#[derive(Clone, Debug, Default)]
pub struct PolicyHistory {
    /// Employee → (valid_from, group id), sorted by date.
    rows: HashMap<String, Vec<(NaiveDate, String)>>,
}

impl PolicyHistory {
    /// True when no employee was ever given a group.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The group id the employee follows on `date` (`default` when none).
    pub fn at(&self, employee: &str, date: NaiveDate) -> &str {
        self.rows
            .get(employee)
            .and_then(|h| h.iter().rev().find(|(from, _)| *from <= date))
            .map_or(DEFAULT_GROUP, |(_, g)| g.as_str())
    }

    /// The group id of the employee's latest row (`default` when none).
    pub fn latest(&self, employee: &str) -> &str {
        self.rows
            .get(employee)
            .and_then(|h| h.last())
            .map_or(DEFAULT_GROUP, |(_, g)| g.as_str())
    }

    /// The index in `policies` of the employee's group on `date`; a group
    /// the configuration no longer defines is the default (the daemon says
    /// so when it starts, see [`PolicyHistory::unknown_groups`]).
    pub fn index_at(&self, policies: &Policies, employee: &str, date: NaiveDate) -> usize {
        index_or_default(policies, self.at(employee, date))
    }

    /// The stored group ids that `policies` does not define, each once.
    pub fn unknown_groups(&self, policies: &Policies) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .rows
            .values()
            .flatten()
            .map(|(_, g)| g.as_str())
            .filter(|g| *g != DEFAULT_GROUP && policies.index_of(Some(g)).is_err())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// `[from, to]` cut where the employee's group changes: (policy index,
    /// first, last) in date order.
    pub fn segments(
        &self,
        policies: &Policies,
        employee: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<(usize, NaiveDate, NaiveDate)> {
        let mut out: Vec<(usize, NaiveDate, NaiveDate)> = Vec::new();
        if from > to {
            return out;
        }
        let mut start = from;
        let mut current = self.index_at(policies, employee, from);
        let changes = self
            .rows
            .get(employee)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (d, g) in changes {
            if *d <= from || *d > to {
                continue;
            }
            let next = index_or_default(policies, g);
            if next != current {
                out.push((current, start, d.pred_opt().unwrap_or(*d)));
                start = *d;
                current = next;
            }
        }
        out.push((current, start, to));
        out
    }
}

/// The first date a group can apply from: an employee's first group
/// covers every day classified for them.
pub fn since_always() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
}

/// The changes of group an import of employees.csv makes: each row's
/// (employee id, policy index) against the stored history. A new
/// employee's group applies from [`since_always`]; a known employee's
/// change from the import's date in the new policy's zone (policy.md: "A
/// change of group applies from the date of the import that made it").
pub fn changes_of_import(
    history: &PolicyHistory,
    policies: &Policies,
    rows: &[(String, usize)],
    known: &dyn Fn(&str) -> bool,
    now: DateTime<Utc>,
) -> Vec<PolicyChange> {
    rows.iter()
        .filter(|(id, g)| history.latest(id) != policies.label(*g))
        .map(|(id, g)| PolicyChange {
            employee_id: id.clone(),
            policy: policies.label(*g).to_string(),
            valid_from: if known(id) {
                crate::domain::time::to_local(policies.get(*g).tz, now).date_naive()
            } else {
                since_always()
            },
        })
        .collect()
}

/// The policy `employee` follows at the instant `at` (its date in the
/// default policy's zone).
pub async fn policy_on<'p>(
    store: &Store,
    policies: &'p Policies,
    employee: &str,
    at: DateTime<Utc>,
) -> Result<&'p crate::domain::policy::Policy, StoreError> {
    if policies.len() == 1 {
        return Ok(policies.default_policy());
    }
    let date = crate::domain::time::to_local(policies.default_policy().tz, at).date_naive();
    let history = store.policy_history().await?;
    Ok(policies.get(history.index_at(policies, employee, date)))
}

fn index_or_default(policies: &Policies, group: &str) -> usize {
    if group == DEFAULT_GROUP {
        return 0;
    }
    policies.index_of(Some(group)).unwrap_or(0)
}

impl Store {
    /// Every employee's group history.
    pub async fn policy_history(&self) -> Result<PolicyHistory, StoreError> {
        let rows = dispatch!(self, employee_policy_rows())?;
        let mut h = PolicyHistory::default();
        for (e, d, g) in rows {
            h.rows.entry(e).or_default().push((d, g));
        }
        Ok(h)
    }

    /// Records changes of group (a row for the same employee and date is
    /// replaced), each audited under `cause` and `actor`.
    pub async fn set_employee_policies(
        &self,
        changes: &[PolicyChange],
        cause: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        dispatch!(self, set_employee_policies(changes, cause, actor, now))
    }

    /// The employees of each policy group on `date` (index into `all`,
    /// ids), groups without employees left out; one `(0, None)` entry
    /// (everyone) when the site has no groups.
    #[allow(clippy::type_complexity)]
    pub async fn employees_by_group(
        &self,
        all: &Policies,
        date: NaiveDate,
    ) -> Result<Vec<(usize, Option<Vec<String>>)>, StoreError> {
        if all.len() == 1 {
            return Ok(vec![(0, None)]);
        }
        let history = self.policy_history().await?;
        let mut by: Vec<Vec<String>> = vec![Vec::new(); all.len()];
        for e in self.employees().await? {
            by[history.index_at(all, &e.employee_id, date)].push(e.employee_id);
        }
        Ok(by
            .into_iter()
            .enumerate()
            .filter(|(_, ids)| !ids.is_empty())
            .map(|(g, ids)| (g, Some(ids)))
            .collect())
    }

    /// A recompute split by policy: each employee's part of `[from, to]`
    /// under one group is classified with that group's policy. The caller
    /// holds the recompute lock.
    pub(super) async fn recompute_by_policy(
        &self,
        run: Run<'_>,
    ) -> Result<RecomputeReport, StoreError> {
        let policies = run.policies;
        let history = self.policy_history().await?;
        if history.is_empty() {
            return self.recompute_locked(run, policies.default_policy()).await;
        }
        let ids: Vec<String> = match run.employees {
            Some(e) => e.to_vec(),
            None => self
                .employees()
                .await?
                .into_iter()
                .map(|e| e.employee_id)
                .collect(),
        };
        let mut plan: BTreeMap<(usize, NaiveDate, NaiveDate), Vec<String>> = BTreeMap::new();
        for id in ids {
            for seg in history.segments(policies, &id, run.from, run.to) {
                plan.entry(seg).or_default().push(id.clone());
            }
        }
        let mut total = RecomputeReport::default();
        for ((g, from, to), emps) in plan {
            let part = Run {
                employees: Some(&emps),
                from,
                to,
                ..run
            };
            let r = self.recompute_locked(part, policies.get(g)).await?;
            add(&mut total, r);
        }
        Ok(total)
    }
}

fn add(total: &mut RecomputeReport, r: RecomputeReport) {
    total.range = match (total.range, r.range) {
        (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
        (x, y) => x.or(y),
    };
    total.evaluated += r.evaluated;
    total.created += r.created;
    total.changed += r.changed;
    total.touched += r.touched;
    total.adjustments += r.adjustments;
    total.ledger_added += r.ledger_added;
    total.ledger_voided += r.ledger_voided;
    total.unchanged += r.unchanged;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn policies() -> Policies {
        let load = |n: &str| {
            crate::policy_file::load(
                &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("config/policies/{n}.toml")),
            )
            .unwrap()
        };
        Policies::new(
            load("seed-default"),
            vec![("outbound".into(), load("outbound-call-centre"))],
        )
        .unwrap()
    }

    #[test]
    fn a_change_of_group_cuts_the_range_at_its_date() {
        let p = policies();
        let mut h = PolicyHistory::default();
        h.rows.insert(
            "E1".into(),
            vec![
                (d("2000-01-01"), "outbound".into()),
                (d("2026-11-10"), "default".into()),
            ],
        );
        assert_eq!(h.at("E1", d("2026-11-09")), "outbound");
        assert_eq!(h.at("E1", d("2026-11-10")), "default");
        assert_eq!(h.at("E2", d("2026-11-10")), "default");
        assert_eq!(h.latest("E1"), "default");
        assert_eq!(
            h.segments(&p, "E1", d("2026-11-01"), d("2026-11-30")),
            vec![
                (1, d("2026-11-01"), d("2026-11-09")),
                (0, d("2026-11-10"), d("2026-11-30"))
            ]
        );
        assert_eq!(
            h.segments(&p, "E1", d("2026-11-10"), d("2026-11-12")),
            vec![(0, d("2026-11-10"), d("2026-11-12"))]
        );
        assert_eq!(
            h.segments(&p, "E2", d("2026-11-01"), d("2026-11-02")),
            vec![(0, d("2026-11-01"), d("2026-11-02"))]
        );
    }

    #[test]
    fn a_group_no_longer_configured_is_the_default() {
        let p = policies();
        let mut h = PolicyHistory::default();
        h.rows
            .insert("E1".into(), vec![(d("2000-01-01"), "inbound".into())]);
        assert_eq!(h.index_at(&p, "E1", d("2026-11-02")), 0);
        assert_eq!(h.unknown_groups(&p), vec!["inbound"]);
    }
}
