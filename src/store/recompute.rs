//! Re-deriving employee-days from what the store holds.
//!
//! A recompute loads the punches, roster, leave and holidays of a date
//! range (from the first of its month, which the escalation ladder counts
//! from), runs the pure engine, and compares each verdict with the stored
//! one. Only days whose verdict changed are written. The ledger follows by
//! difference: device entries the new verdict no longer has are voided,
//! entries it adds are inserted, and each of these changes is audited. A
//! day in a published month is not rewritten: the new verdict becomes a
//! pending adjustment for HR.
//!
//! Days after "today" in the policy's zone are never classified: a day that
//! has not started has no verdict yet. Today's verdict is provisional while
//! its punch window is open and puts nothing in the ledger until it closes.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};

use super::{
    LedgerEntry, Store, StoreError, VerdictMeta, backend_pg, backend_sqlite, dispatch, unchanged,
};
use crate::domain::calendar::ShiftClock;
use crate::domain::classify::{EmployeeDays, evaluate_employee};
use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::domain::types::{DayVerdict, EmployeeId};
use crate::policy_file::{Policies, PolicySet};

/// A stored punch as a recompute reads it: employee, instant, device and
/// the state the terminal reported.
pub(super) type PunchTime = (String, DateTime<Utc>, Option<String>, Option<String>);

use super::inputs::{Inputs, SCOPED_QUERIES};

/// What a recompute did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecomputeReport {
    /// The range actually evaluated (after capping at today), when any.
    pub range: Option<(NaiveDate, NaiveDate)>,
    /// Employee-days evaluated.
    pub evaluated: usize,
    /// Days classified for the first time.
    pub created: usize,
    /// Days whose verdict changed.
    pub changed: usize,
    /// Days whose verdict is the same but whose provisional flag or policy
    /// version changed.
    pub touched: usize,
    /// Days of published months that got a pending adjustment instead.
    pub adjustments: usize,
    /// Ledger entries added.
    pub ledger_added: usize,
    /// Ledger entries voided.
    pub ledger_voided: usize,
    /// Employees left alone: their inputs were those of the last recompute
    /// of the same range and their verdicts of it were final (their days
    /// count in `evaluated`).
    pub unchanged: usize,
}

/// What a recompute writes for one employee-day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    /// First verdict of the day.
    Create,
    /// A different verdict.
    Update,
    /// Same verdict; provisional flag or policy version changed.
    Meta,
    /// A different verdict in a published month.
    Adjust,
}

/// A ledger entry a verdict asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NewDeduction {
    pub category: String,
    pub rule: String,
    pub points: i64,
    pub evidence: String,
}

/// One employee-day to write.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub kind: ChangeKind,
    pub employee_id: String,
    pub date: NaiveDate,
    pub status: &'static str,
    pub points: i64,
    pub verdict: String,
    pub hash: i64,
    pub provisional: bool,
    pub void: Vec<LedgerEntry>,
    pub add: Vec<NewDeduction>,
}

/// The first and last day of `d`'s month.
pub fn month_bounds(d: NaiveDate) -> (NaiveDate, NaiveDate) {
    let first = d.with_day(1).unwrap_or(d);
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    (first, next.pred_opt().unwrap_or(first))
}

fn utc_midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

fn not_pending(id: i64, why: &str) -> StoreError {
    StoreError::Corrupt {
        key: format!("adjustments/{id}"),
        why: why.to_string(),
    }
}

/// What one recompute covers, and why.
#[derive(Clone, Copy)]
pub(super) struct Run<'a> {
    /// The site's policies; each employee-day follows its employee's.
    pub policies: &'a Policies,
    /// Only these employees (all when `None`).
    pub employees: Option<&'a [String]>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Recorded in the audit trail.
    pub cause: &'a str,
    pub actor: &'a str,
    pub now: DateTime<Utc>,
    /// A date being closed: its verdicts are final whatever the time.
    pub closing: Option<NaiveDate>,
    /// A date whose published month is open for this run (an adjustment
    /// being applied).
    pub unfreeze: Option<NaiveDate>,
}

impl Store {
    /// Re-derives the verdicts of `[from, to]` (capped at today in the
    /// zone of each employee's policy) for the given employees (all stored
    /// employees when `None`), each employee-day with the policy its
    /// employee follows that date; writes what changed, updates the ledger
    /// by difference and audits every change under `cause` and `actor`.
    /// `now` decides which days are still provisional (their punch window
    /// has not closed).
    #[allow(clippy::too_many_arguments)]
    pub async fn recompute(
        &self,
        policies: &(impl PolicySet + ?Sized),
        employees: Option<&[String]>,
        from: NaiveDate,
        to: NaiveDate,
        cause: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<RecomputeReport, StoreError> {
        self.recompute_inner(Run {
            policies: &policies.as_policies(),
            employees,
            from,
            to,
            cause,
            actor,
            now,
            closing: None,
            unfreeze: None,
        })
        .await
    }

    /// Applies a pending adjustment: the employee's day is re-classified
    /// with its published month open for that day, so the new verdict and
    /// its ledger difference are written (audited), and the adjustment is
    /// marked applied. Errors when it is not pending.
    pub async fn apply_adjustment(
        &self,
        policies: &(impl PolicySet + ?Sized),
        id: i64,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<RecomputeReport, StoreError> {
        let a = self.pending_adjustment(id).await?;
        // Claim it first, so that a dismiss at the same time loses.
        if !dispatch!(
            self,
            set_adjustment_status(id, "pending", "applied", actor, "applied", now)
        )? {
            return Err(not_pending(id, "no longer pending"));
        }
        let run = self
            .recompute_inner(Run {
                policies: &policies.as_policies(),
                employees: Some(std::slice::from_ref(&a.employee_id)),
                from: a.date,
                to: a.date,
                cause: &format!("adjustment {id} applied"),
                actor,
                now,
                closing: None,
                unfreeze: Some(a.date),
            })
            .await;
        if run.is_err() {
            // Not applied after all: back to pending (audited).
            dispatch!(
                self,
                set_adjustment_status(id, "applied", "pending", actor, "apply failed", now)
            )?;
        }
        run
    }

    /// Dismisses a pending adjustment: the published verdict stays.
    pub async fn dismiss_adjustment(
        &self,
        id: i64,
        actor: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.pending_adjustment(id).await?;
        if dispatch!(
            self,
            set_adjustment_status(id, "pending", "dismissed", actor, reason, now)
        )? {
            Ok(())
        } else {
            Err(not_pending(id, "no longer pending"))
        }
    }

    async fn pending_adjustment(&self, id: i64) -> Result<super::Adjustment, StoreError> {
        let all = self.adjustments(false).await?;
        match all.into_iter().find(|a| a.id == id) {
            Some(a) if a.status == "pending" => Ok(a),
            Some(a) => Err(not_pending(id, &format!("is {}, not pending", a.status))),
            None => Err(not_pending(id, "no such adjustment")),
        }
    }

    /// Closes `date`: re-classifies every employee's day with the verdicts
    /// made final (not provisional, ledger written) even if a punch window
    /// is still open; later punches then revise the closed day.
    pub async fn recompute_closing(
        &self,
        policies: &(impl PolicySet + ?Sized),
        date: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<RecomputeReport, StoreError> {
        self.recompute_inner(Run {
            policies: &policies.as_policies(),
            employees: None,
            from: date,
            to: date,
            cause: "day close",
            actor: "scheduler",
            now,
            closing: Some(date),
            unfreeze: None,
        })
        .await
    }

    async fn recompute_inner(&self, run: Run<'_>) -> Result<RecomputeReport, StoreError> {
        // Recomputes read, compare and then write; two at once (two daemons
        // sharing a store, or a daemon and `attendd recompute`) could both
        // add the same ledger entries. One at a time per store.
        let lock = super::lock::RecomputeLock::acquire(self).await?;
        let r = self.recompute_by_policy(run).await;
        lock.release().await;
        r
    }

    /// One policy's part of a recompute (see `recompute_by_policy`).
    pub(super) async fn recompute_locked(
        &self,
        run: Run<'_>,
        policy: &Policy,
    ) -> Result<RecomputeReport, StoreError> {
        let Run {
            policies: _,
            employees,
            from,
            to,
            cause,
            actor,
            now,
            closing,
            unfreeze,
        } = run;
        let mut report = RecomputeReport::default();
        let today = to_local(policy.tz, now).date_naive();
        let to = to.min(today);
        if from > to {
            return Ok(report);
        }
        report.range = Some((from, to));
        let month_start = from.with_day(1).unwrap_or(from);
        let margin =
            Days::new(((policy.window_before_secs + policy.window_after_secs) / 86_400 + 2) as u64);
        let first = month_start - margin;
        let last = to + margin;
        // Instants a day wider than the dates, whatever the zone's offset.
        let lo = utc_midnight(first - Days::new(1));
        let hi = utc_midnight(last + Days::new(2));

        let wanted: Option<HashSet<&str>> =
            employees.map(|e| e.iter().map(String::as_str).collect());
        let in_scope = |id: &str| wanted.as_ref().is_none_or(|w| w.contains(id));
        let Some(mut inputs) = self
            .load_inputs_but_punches(policy, wanted.as_ref(), first, last, lo, hi)
            .await?
        else {
            return Ok(report);
        };
        let (published, closed) = self
            .published_and_closed(from, to, closing, unfreeze)
            .await?;

        // Employees whose inputs are those of the last recompute of this
        // range, and whose verdicts of it are all final, are left alone;
        // their punches, verdicts and ledger are not even read. The
        // punches are counted before any is read, so that one stored in
        // between makes the recorded fingerprint older than the verdicts,
        // never newer.
        let skip = self
            .unchanged(
                &unchanged::Common {
                    policy,
                    holidays: &inputs.holidays,
                    from,
                    to,
                    closed: &closed,
                    published: &published,
                },
                unfreeze.is_some(),
                &inputs,
                lo,
                hi,
            )
            .await?;
        let prints = skip.prints;
        let skip = skip.skip;
        let todo: Vec<bool> = skip.iter().map(Option::is_none).collect();
        self.add_raw_punches(&mut inputs, lo, hi, Some(&todo))
            .await?;
        let Inputs {
            emps,
            targets,
            holidays,
            roster,
            leaves,
            punches,
        } = inputs;
        for days in skip.iter().flatten() {
            report.unchanged += 1;
            report.evaluated += usize::try_from(*days).unwrap_or(0);
        }
        let (mut stored, mut ledger) = self
            .existing_of(&emps, &skip, &targets, &in_scope, from, to)
            .await?;

        let clock = ShiftClock::new(policy, first, last);
        let cx = Classify {
            policy,
            clock: &clock,
            holidays: &holidays,
            from,
            to,
            now,
            closed: &closed,
            published: &published,
        };
        let mut changes: Vec<Change> = Vec::new();
        let mut record: Vec<(String, i64, i64)> = Vec::new();
        for (i, e) in emps.iter().enumerate() {
            if skip[i].is_some() {
                continue;
            }
            let id = EmployeeId::from(e.employee_id.as_str());
            let input = EmployeeDays {
                employee: &id,
                default_shift: e.shift.as_deref().and_then(|s| policy.shift_by_id(s)),
                punches: &punches[i],
                roster: Some(&roster[i]),
                leaves: &leaves[i],
                start_date: e.start_date,
                end_date: e.end_date,
            };
            let (n, settled) = cx.employee(&input, &mut stored, &mut ledger, &mut changes)?;
            report.evaluated += n;
            // A range not yet settled is recorded too (with no day count a
            // recompute can match), so that no older fingerprint vouches
            // for it.
            let n = if settled {
                i64::try_from(n).unwrap_or(-1)
            } else {
                -1
            };
            record.push((e.employee_id.clone(), prints[i], n));
        }
        count(&mut report, &changes);
        if !changes.is_empty() {
            report.adjustments = dispatch!(
                self,
                apply_changes(
                    &changes,
                    &policy.id,
                    &policy.version,
                    cause,
                    actor,
                    crate::clock::now()
                )
            )?;
        }
        // Only after the verdicts are written: a fingerprint vouches for
        // them.
        if unfreeze.is_none() {
            unchanged::record(self, from, to, &record, crate::clock::now()).await?;
        }
        Ok(report)
    }

    /// The published months (less the one an applied adjustment opens)
    /// and the closed dates of `[from, to]` (with the one being closed).
    async fn published_and_closed(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        closing: Option<NaiveDate>,
        unfreeze: Option<NaiveDate>,
    ) -> Result<(HashSet<String>, HashSet<NaiveDate>), StoreError> {
        let mut published: HashSet<String> = self.published_months().await?.into_iter().collect();
        // Applying an adjustment: HR lets the new verdict into a published
        // month for this one day.
        if let Some(d) = unfreeze {
            published.remove(&d.format("%Y-%m").to_string());
        }
        // A closed day's verdicts are final: a late punch inside the punch
        // window revises them instead of making them provisional again.
        let mut closed: HashSet<NaiveDate> = dispatch!(self, closed_dates(from, to))?
            .into_iter()
            .collect();
        closed.extend(closing);
        Ok((published, closed))
    }

    /// [`Store::existing`] for the employees a recompute evaluates (those
    /// `skip` does not leave alone): one query each when they are few,
    /// else one pass over the range (`targets`, as the inputs were read).
    async fn existing_of(
        &self,
        emps: &[super::EmployeeRecord],
        skip: &[Option<i64>],
        targets: &[Option<String>],
        in_scope: &(dyn Fn(&str) -> bool + Sync),
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(StoredDays, LedgerDays), StoreError> {
        let todo: HashSet<&str> = emps
            .iter()
            .zip(skip)
            .filter(|(_, s)| s.is_none())
            .map(|(e, _)| e.employee_id.as_str())
            .collect();
        if todo.is_empty() {
            return Ok((HashMap::new(), HashMap::new()));
        }
        let targets: Vec<Option<&str>> = if todo.len() <= SCOPED_QUERIES {
            todo.iter().map(|e| Some(*e)).collect()
        } else {
            targets.iter().map(|t| t.as_deref()).collect()
        };
        let in_todo = |id: &str| in_scope(id) && todo.contains(id);
        self.existing(&targets, &in_todo, from, to).await
    }

    /// What the store holds for `[from, to]` before a recompute: verdict
    /// hashes and active device ledger entries by employee-day, of the
    /// employees `in_scope` accepts.
    async fn existing(
        &self,
        targets: &[Option<&str>],
        in_scope: &(dyn Fn(&str) -> bool + Sync),
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(StoredDays, LedgerDays), StoreError> {
        let mut stored: StoredDays = HashMap::new();
        for &only in targets {
            for v in dispatch!(self, verdict_meta(from, to, only))? {
                if in_scope(&v.employee_id) {
                    stored.insert((v.employee_id.clone(), v.date), v);
                }
            }
        }
        let mut ledger: LedgerDays = HashMap::new();
        let mut entries = Vec::new();
        for &only in targets {
            entries.extend(match self {
                Store::Sqlite(p) => backend_sqlite::ledger_rows(p, from, to, only, true).await?,
                Store::Postgres(p) => backend_pg::ledger_rows(p, from, to, only, true).await?,
            });
        }
        for e in entries {
            if in_scope(&e.employee_id) {
                ledger
                    .entry((e.employee_id.clone(), e.date))
                    .or_default()
                    .push(e);
            }
        }
        Ok((stored, ledger))
    }
}

/// Stored verdict hashes by employee-day.
type StoredDays = HashMap<(String, NaiveDate), VerdictMeta>;
/// Active device ledger entries by employee-day.
type LedgerDays = HashMap<(String, NaiveDate), Vec<LedgerEntry>>;

/// Adds what `changes` write to `report` (adjustments are counted when
/// written).
fn count(report: &mut RecomputeReport, changes: &[Change]) {
    for c in changes {
        match c.kind {
            ChangeKind::Create => report.created += 1,
            ChangeKind::Update => report.changed += 1,
            ChangeKind::Meta => report.touched += 1,
            ChangeKind::Adjust => continue,
        }
        report.ledger_added += c.add.len();
        report.ledger_voided += c.void.len();
    }
}

/// What classifying one employee's range needs besides the employee.
struct Classify<'a> {
    policy: &'a Policy,
    clock: &'a ShiftClock<'a>,
    holidays: &'a crate::domain::types::Holidays,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
    closed: &'a HashSet<NaiveDate>,
    published: &'a HashSet<String>,
}

impl Classify<'_> {
    /// Evaluates one employee's range and adds what changed to `changes`
    /// (taking the employee's days out of `stored` and `ledger`). Returns
    /// the days evaluated and whether all of them are final, under this
    /// policy version, with nothing left pending.
    fn employee(
        &self,
        input: &EmployeeDays<'_>,
        stored: &mut StoredDays,
        ledger: &mut LedgerDays,
        changes: &mut Vec<Change>,
    ) -> Result<(usize, bool), StoreError> {
        let days = evaluate_final(
            self.clock,
            self.holidays,
            input,
            self.from,
            self.to,
            self.now,
            self.closed,
        );
        let n = days.len();
        let mut settled = true;
        for v in days {
            let key = (input.employee.to_string(), v.date);
            let old = stored.remove(&key);
            let old_ledger = ledger.remove(&key).unwrap_or_default();
            let final_day = self.closed.contains(&v.date);
            match diff(
                self.policy,
                v,
                old.as_ref(),
                old_ledger,
                self.published,
                self.now,
                final_day,
            )? {
                Diff::Same { provisional } => settled &= !provisional,
                Diff::Write(c) => {
                    settled &= !c.provisional && c.kind != ChangeKind::Adjust;
                    changes.push(c);
                }
            }
        }
        Ok((n, settled))
    }
}

/// The engine's verdicts of `[from, to]` as known at `now`, except that a
/// closed day's verdict is final even while its punch window is open.
fn evaluate_final(
    clock: &ShiftClock<'_>,
    holidays: &crate::domain::types::Holidays,
    input: &EmployeeDays<'_>,
    from: NaiveDate,
    to: NaiveDate,
    now: DateTime<Utc>,
    closed: &HashSet<NaiveDate>,
) -> Vec<DayVerdict> {
    let mut days = evaluate_employee(clock, holidays, input, from, to, now);
    if days
        .iter()
        .any(|v| v.provisional && closed.contains(&v.date))
    {
        let fin = evaluate_employee(clock, holidays, input, from, to, DateTime::<Utc>::MAX_UTC);
        for (v, f) in days.iter_mut().zip(fin) {
            if v.provisional && closed.contains(&v.date) {
                *v = f;
            }
        }
    }
    days
}

/// What [`diff`] found for one employee-day.
enum Diff {
    /// Nothing to write; whether the stored day is provisional.
    Same { provisional: bool },
    /// A change to write.
    Write(Change),
}

/// Compares a fresh verdict with the stored one and the day's active device
/// ledger entries.
fn diff(
    policy: &Policy,
    v: DayVerdict,
    old: Option<&VerdictMeta>,
    old_ledger: Vec<LedgerEntry>,
    published: &HashSet<String>,
    now: DateTime<Utc>,
    final_day: bool,
) -> Result<Diff, StoreError> {
    let verdict = serde_json::to_string(&v).map_err(|e| StoreError::Corrupt {
        key: format!("day_verdicts/{}/{}", v.employee_id, v.date),
        why: format!("verdict does not serialise: {e}"),
    })?;
    // The engine made the verdict for `now`: provisional while the punch
    // window (its end instant included) is open.
    let provisional = !final_day
        && (v.provisional
            || v.explanation
                .window_end
                .is_some_and(|w| w.with_timezone(&Utc) > now));
    let hash = verdict_hash(&verdict);
    let same_verdict = old.is_some_and(|o| o.hash == hash);
    if same_verdict && let Some(o) = old {
        if o.provisional == provisional
            && o.policy_id == policy.id
            && o.policy_version == policy.version
        {
            return Ok(Diff::Same { provisional });
        }
        if !published.contains(&v.date.format("%Y-%m").to_string()) {
            return Ok(Diff::Write(Change {
                kind: ChangeKind::Meta,
                employee_id: v.employee_id.to_string(),
                date: v.date,
                status: v.status.as_str(),
                points: v.points.hundredths(),
                verdict,
                hash,
                provisional,
                void: Vec::new(),
                add: Vec::new(),
            }));
        }
        // A published month keeps the stored version and flag.
        return Ok(Diff::Same {
            provisional: o.provisional || o.policy_version != policy.version,
        });
    }
    let month = v.date.format("%Y-%m").to_string();
    let kind = if published.contains(&month) {
        ChangeKind::Adjust
    } else if old.is_some() {
        ChangeKind::Update
    } else {
        ChangeKind::Create
    };

    // Ledger by difference: entries matched on (category, rule, points).
    let evidence = v
        .explanation
        .punches
        .iter()
        .map(|p| p.time.to_rfc3339())
        .collect::<Vec<_>>()
        .join(",");
    let mut wanted: Vec<NewDeduction> = v
        .deductions
        .iter()
        .map(|d| NewDeduction {
            category: d.category.to_string(),
            rule: d.rule.to_string(),
            points: d.points.hundredths(),
            evidence: if evidence.is_empty() {
                "no punch".into()
            } else {
                format!("punches {evidence}")
            },
        })
        .collect();
    let mut void = Vec::new();
    for e in old_ledger {
        match wanted
            .iter()
            .position(|d| d.category == e.category && d.rule == e.rule && d.points == e.points)
        {
            Some(p) => {
                wanted.remove(p);
            }
            None => void.push(e),
        }
    }
    // A published month keeps its ledger until HR acts on the adjustment;
    // a provisional day (punch window still open) has no ledger entries yet.
    let (void, add) = match kind {
        ChangeKind::Adjust => (Vec::new(), Vec::new()),
        _ if provisional => (void, Vec::new()),
        _ => (void, wanted),
    };
    Ok(Diff::Write(Change {
        kind,
        employee_id: v.employee_id.to_string(),
        date: v.date,
        status: v.status.as_str(),
        points: v.points.hundredths(),
        verdict,
        hash,
        provisional,
        void,
        add,
    }))
}

/// FNV-1a 64 of a verdict's JSON, stored beside it: a stable function of
/// the bytes (unlike `std`'s hasher), so any build compares equal texts
/// equal.
pub(crate) fn verdict_hash(json: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}
