//! Leaving alone the employees whose inputs did not change.
//!
//! A recompute of a range of more than one day records, per employee, a
//! fingerprint of everything the engine read for that employee (table
//! `recompute_inputs`): the employee's record, roster, leave and
//! corrections over the range and its margins, the count and highest ids
//! of its stored punches and their supersedes there (counted by the
//! database, so that an unchanged employee's punches are never read), with
//! the policy, the holidays, the closed days and the published months. A
//! later recompute of the same range with the same fingerprint, whose stored verdicts of the
//! range are all final and made under the same policy version, leaves that
//! employee alone: the engine is a pure function of those inputs, and
//! `now` only decides which days are provisional, which a final day no
//! longer is (a punch window that has closed stays closed).
//!
//! The fingerprint is a 64-bit hash of a canonical encoding; the hash
//! function may change between builds, which only makes the first
//! recompute after an upgrade evaluate everyone again (as does the first
//! after the punches started to be fingerprinted by their counts).

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use chrono::{DateTime, NaiveDate, Utc};

use super::inputs::{Inputs, PunchStats, SCOPED_QUERIES};
use super::{EmployeeRecord, Store, StoreError, backend_pg, backend_sqlite, dispatch};
use crate::domain::policy::Policy;
use crate::domain::types::{Holidays, Leave, Punch, Roster};

/// Ranges whose last day is this long before a newly recorded range's
/// first day are pruned when fingerprints are recorded.
const KEEP_DAYS: u64 = 100;

/// Writes `Debug` output into a hasher without building a string.
struct HashWriter<'a>(&'a mut DefaultHasher);

impl std::fmt::Write for HashWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

fn hash_debug(h: &mut DefaultHasher, v: &impl std::fmt::Debug) {
    use std::fmt::Write;
    let _ = write!(HashWriter(h), "{v:?}");
    h.write_u8(0xff);
}

/// What every employee of one recompute shares.
pub(super) struct Common<'a> {
    pub policy: &'a Policy,
    pub holidays: &'a Holidays,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub closed: &'a HashSet<NaiveDate>,
    pub published: &'a HashSet<String>,
}

/// The shared part of the fingerprints, hashed once.
pub(super) fn common_hash(c: &Common<'_>) -> DefaultHasher {
    let mut h = DefaultHasher::new();
    // `shift_ids` is an index of `shifts` in a map whose order changes
    // from process to process: left out, so that fingerprints compare
    // equal across runs of the command line.
    let mut policy = c.policy.clone();
    policy.shift_ids.clear();
    hash_debug(&mut h, &policy);
    hash_debug(&mut h, c.holidays);
    (c.from, c.to).hash(&mut h);
    let mut closed: Vec<&NaiveDate> = c
        .closed
        .iter()
        .filter(|d| **d >= c.from && **d <= c.to)
        .collect();
    closed.sort_unstable();
    closed.hash(&mut h);
    let mut published: Vec<&String> = c.published.iter().collect();
    published.sort_unstable();
    published.hash(&mut h);
    h
}

/// One employee's fingerprint: `common` extended with what the engine
/// reads for the employee. The stored punches enter by their count and
/// highest ids (`raw`), which change whenever one is stored or superseded
/// (both tables are append-only), so that an unchanged employee's punches
/// are never read; the corrections, which can be voided, enter whole.
pub(super) fn fingerprint(
    common: &DefaultHasher,
    e: &EmployeeRecord,
    roster: &Roster,
    leaves: &[Leave],
    corrections: &[Punch],
    raw: PunchStats,
) -> i64 {
    let mut h = common.clone();
    (&e.employee_id, &e.shift, e.start_date, e.end_date).hash(&mut h);
    let mut days: Vec<_> = roster.iter().collect();
    days.sort_unstable_by_key(|(d, _)| **d);
    hash_debug(&mut h, &days);
    hash_debug(&mut h, &leaves);
    corrections.hash(&mut h);
    raw.hash(&mut h);
    h.finish() as i64
}

/// The stored fingerprints of the range `[from, to]`: employee →
/// (fingerprint, number of verdicts the range had).
pub(super) async fn recorded(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashMap<String, (i64, i64)>, StoreError> {
    if from >= to {
        return Ok(HashMap::new());
    }
    let rows = dispatch!(store, input_fingerprints(from, to))?;
    Ok(rows.into_iter().map(|(e, f, n)| (e, (f, n))).collect())
}

/// Per employee, the number of stored verdicts of `[from, to]` that are
/// final and made under `policy`'s version (a day that is not both is
/// evaluated), counted by the database: of the employees `only` names
/// (one query each), or of all.
pub(super) async fn settled_days(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    policy: &Policy,
    only: Option<&[&str]>,
) -> Result<HashMap<String, i64>, StoreError> {
    let mut out = HashMap::new();
    match only {
        Some(ids) => {
            for &id in ids {
                out.extend(dispatch!(
                    store,
                    settled_counts(from, to, &policy.id, &policy.version, Some(id))
                )?);
            }
        }
        None => out.extend(dispatch!(
            store,
            settled_counts(from, to, &policy.id, &policy.version, None)
        )?),
    }
    Ok(out)
}

/// Records the fingerprints of `[from, to]` (`(employee, fingerprint,
/// verdicts)`) and prunes ranges long past. Nothing for a one-day range.
pub(super) async fn record(
    store: &Store,
    from: NaiveDate,
    to: NaiveDate,
    rows: &[(String, i64, i64)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if from >= to || rows.is_empty() {
        return Ok(());
    }
    let before = from
        .checked_sub_days(chrono::Days::new(KEEP_DAYS))
        .unwrap_or(NaiveDate::MIN);
    dispatch!(store, record_fingerprints(from, to, rows, before, now))
}

/// What [`Store::unchanged`] decided.
pub(super) struct Skips {
    /// Per employee: `Some(days)` when left alone.
    pub skip: Vec<Option<i64>>,
    /// Per employee: the fingerprint of its inputs.
    pub prints: Vec<i64>,
}

impl Store {
    /// Which employees a recompute leaves alone (see the module): for
    /// each, `Some(number of days)` when its inputs' fingerprint is the one
    /// recorded for the range and its stored verdicts of the range are all
    /// final under this policy version; and every employee's fingerprint
    /// (none for a one-day range, which is never recorded).
    pub(super) async fn unchanged(
        &self,
        common: &Common<'_>,
        unfreezing: bool,
        inputs: &Inputs,
        lo: DateTime<Utc>,
        hi: DateTime<Utc>,
    ) -> Result<Skips, StoreError> {
        let emps = &inputs.emps;
        // A one-day range (a day close, a late punch's day) is neither
        // recorded nor left alone: no fingerprint to compute.
        if common.from >= common.to {
            return Ok(Skips {
                skip: vec![None; emps.len()],
                prints: vec![0; emps.len()],
            });
        }
        let raw = self.raw_punch_stats(inputs, lo, hi).await?;
        let hash = common_hash(common);
        let prints: Vec<i64> = emps
            .iter()
            .enumerate()
            .map(|(i, e)| {
                fingerprint(
                    &hash,
                    e,
                    &inputs.roster[i],
                    &inputs.leaves[i],
                    &inputs.punches[i],
                    raw[i],
                )
            })
            .collect();
        let mut skip = vec![None; emps.len()];
        if unfreezing {
            return Ok(Skips { skip, prints });
        }
        let recorded = recorded(self, common.from, common.to).await?;
        // Those whose fingerprint matches; only their verdicts are counted
        // (a late punch's recompute of one employee counts nobody else's).
        let matching: Vec<(usize, i64)> = emps
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match recorded.get(&e.employee_id) {
                Some(&(old, days)) if old == prints[i] && days >= 0 => Some((i, days)),
                _ => None,
            })
            .collect();
        if matching.is_empty() {
            return Ok(Skips { skip, prints });
        }
        let only: Option<Vec<&str>> = (matching.len() <= SCOPED_QUERIES).then(|| {
            matching
                .iter()
                .map(|&(i, _)| emps[i].employee_id.as_str())
                .collect()
        });
        let settled =
            settled_days(self, common.from, common.to, common.policy, only.as_deref()).await?;
        for (i, days) in matching {
            if settled.get(emps[i].employee_id.as_str()) == Some(&days) {
                skip[i] = Some(days);
            }
        }
        Ok(Skips { skip, prints })
    }
}
