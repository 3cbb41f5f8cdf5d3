//! The pipeline between sources and the store: decode, attribute, commit,
//! quarantine, and schedule re-classification of the days touched.
//!
//! [`Pipeline`] is the daemon's [`PunchSink`](crate::source::PunchSink): `commit` returns `Ok` only when
//! every message of the batch ended in one of three ways: stored as punches
//! (one transaction, duplicates counted, never doubled), quarantined with
//! the reason, or deliberately ignored (not a punch; counted in
//! `attendd_ignored_events_total` by kind and logged the first time per
//! device and kind). Only then does the source acknowledge.
//!
//! Attribution ([`Directory`]): an employee id (PIN, `customId`,
//! `employeeNoString`) must be one HR imported; an id nobody holds (a new
//! hire not imported yet, or a forged `&xxe;`) is quarantined as `unknown`,
//! a punch waiting for `attendd quarantine replay`. Before the first
//! import ids are taken as sent. A card number, face-match name or
//! device-local person id goes through the employees' aliases (scoped to
//! the device first); an alias nobody has is quarantined the same way.
//! Quarantine rows keep what a replay needs; photos are stripped; at most
//! 100 bad records of one upload are kept one by one
//! ([`crate::quarantine`]).
//!
//! The commit path (decode, attribute, write, count) is in `commit.rs`;
//! this file holds the directory, the pipeline's state and the
//! re-classification of the days new punches touched.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod commit;
pub mod replay;

use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::ingest::decode::{Identity, canonical_card};
use crate::metrics::Metrics;
use crate::service::Heartbeat;
pub use crate::source::SourceDecoding;
pub use crate::source::pull::PullAck;
use crate::store::{EmployeeRecord, Store};

/// Who the employees are, as the pipeline resolves identities: the ids HR
/// imported and every alias (card numbers, face-match names, device-scoped
/// person ids).
#[derive(Debug, Default)]
pub struct Directory {
    aliases: HashMap<String, String>,
    employees: std::collections::HashSet<String>,
}

/// The prefix of a device-scoped alias in employees.csv's alias column:
/// `device:DEVICE_ID:PERSON_ID` (RecPush `personId` is a per-device
/// counter on terminals enrolled from their own screen). The person id is
/// after the last `:`, so device ids with colons (MAC addresses) work.
pub const DEVICE_ALIAS_PREFIX: &str = "device:";

/// Splits a device-scoped alias into (device, person id).
pub fn device_alias(alias: &str) -> Option<(&str, &str)> {
    let rest = alias.trim().strip_prefix(DEVICE_ALIAS_PREFIX)?;
    let (dev, person) = rest.rsplit_once(':')?;
    (!dev.trim().is_empty() && !person.trim().is_empty()).then(|| (dev.trim(), person.trim()))
}

fn scoped_key(device: &str, key: &str) -> String {
    format!("{DEVICE_ALIAS_PREFIX}{}:{key}", device.to_lowercase())
}

impl Directory {
    /// The directory of these employees.
    pub fn new(emps: &[EmployeeRecord]) -> Directory {
        Directory {
            aliases: alias_map(emps),
            employees: emps.iter().map(|e| e.employee_id.clone()).collect(),
        }
    }

    /// The employee an identity seen on `device` stands for, or why none.
    ///
    /// An employee id nobody holds is refused once HR has imported any
    /// employee (a forged or mistyped id must not count as a punch); until
    /// then, ids are taken as sent so that a new site's first punches wait
    /// for the import in the store, not in quarantine. An alias is looked
    /// up scoped to the device first (`device:ID:alias`), then on its own.
    pub fn resolve(&self, id: &Identity, device: Option<&str>) -> Result<String, String> {
        match id {
            Identity::Employee(e) => {
                if self.employees.is_empty() || self.employees.contains(e) {
                    Ok(e.clone())
                } else {
                    Err(format!(
                        "unknown employee {:?}: no employee has this id; import employees.csv with it, then run `attendd quarantine replay`",
                        crate::quarantine::shown(e)
                    ))
                }
            }
            Identity::Alias(a) => {
                let keys = alias_keys(a);
                device
                    .and_then(|d| {
                        keys.iter()
                            .find_map(|k| self.aliases.get(&scoped_key(d, k)).cloned())
                    })
                    .or_else(|| keys.iter().find_map(|k| self.aliases.get(k).cloned()))
                    .ok_or_else(|| {
                        format!(
                            "unknown alias {:?}: no employee has it; add it to employees.csv (alias column, `device:ID:{}` for one terminal), import, and run `attendd quarantine replay`",
                            crate::quarantine::shown(a),
                            crate::quarantine::shown(a)
                        )
                    })
            }
        }
    }
}

/// Fault injection for tests: while the file this variable names exists,
/// every commit waits (a stalled store), so a test can flood the sources
/// and kill the daemon with punches waiting.
pub const STALL_FILE_ENV: &str = "ATTENDD_FAULT_STORE_STALL_FILE";

/// Longest a re-classification may take (waiting for the store's recompute
/// lock included) before the watchdog stops hearing from the pipeline.
const MAX_RECOMPUTE_WAIT: Duration = Duration::from_secs(600);

/// Decodes, attributes and commits batches from every source.
#[derive(Debug)]
pub struct Pipeline {
    store: Store,
    policies: RwLock<Arc<crate::policy_file::Policies>>,
    sources: HashMap<Arc<str>, SourceDecoding>,
    directory: RwLock<Directory>,
    dirty: Mutex<BTreeMap<String, (NaiveDate, NaiveDate)>>,
    metrics: Arc<Metrics>,
    heartbeat: Heartbeat,
    max_future_skew: chrono::Duration,
    drift: Arc<DriftBoard>,
    /// Device id of sources that stand for one terminal (a ZKTeco push
    /// terminal's serial number); it wins over what the payload implies.
    devices: HashMap<Arc<str>, String>,
    /// [`STALL_FILE_ENV`], read once at start.
    stall_file: Option<std::path::PathBuf>,
    /// Where a failed or successful write to the store is reported
    /// (`/healthz`'s `store`).
    health: Option<Arc<crate::health::Health>>,
    /// `[ingest] classify_from`, when configured.
    classify_from: Option<NaiveDate>,
    /// Ignored events already logged, per device and kind.
    ignored_logged: crate::source::push::LogOnce,
    /// Undecodable payloads older than this many days are pruned.
    quarantine_retention_days: u32,
    /// When the quarantine was last pruned.
    last_prune: Mutex<Option<DateTime<Utc>>>,
}

/// The keys an alias is found under: as written (lower case), and the
/// canonical card number when it reads as one (`0012345678` → `12345678`,
/// `0C8707` → `820999`).
///
/// All digits read as decimal: a card number written `1000000042` stays
/// that number. A hex UID that happens to be all digits, as a reader shows
/// it (esp-rfid shows `27373963`), is written `hex:27373963` (or
/// `0x27373963`) in the alias column and means 0x27373963 (issue 11,
/// defect 12); existing decimal aliases are never reinterpreted.
pub fn alias_keys(alias: &str) -> Vec<String> {
    let a = alias.trim();
    let mut keys = vec![a.to_lowercase()];
    let hex = a
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("hex:"))
        .and_then(|_| a.get(4..))
        .or_else(|| a.strip_prefix("0x"))
        .or_else(|| a.strip_prefix("0X"));
    if let Some(h) = hex {
        if let Some(c) = canonical_card(h.trim(), 16)
            && !keys.contains(&c)
        {
            keys.push(c);
        }
        return keys;
    }
    let digits = !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit());
    let canon = if digits {
        canonical_card(a, 10)
    } else if a.bytes().all(|b| b.is_ascii_hexdigit()) {
        canonical_card(a, 16)
    } else {
        None
    };
    if let Some(c) = canon
        && !keys.contains(&c)
    {
        keys.push(c);
    }
    keys
}

fn alias_map(emps: &[EmployeeRecord]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for e in emps {
        for a in &e.aliases {
            if let Some((dev, person)) = device_alias(a) {
                for k in alias_keys(person) {
                    m.insert(scoped_key(dev, &k), e.employee_id.clone());
                }
                continue;
            }
            for k in alias_keys(a) {
                m.insert(k, e.employee_id.clone());
            }
        }
    }
    m
}

impl Pipeline {
    /// A pipeline over `store` for the given sources.
    pub async fn new(
        store: Store,
        policies: impl crate::policy_file::PolicySet,
        sources: HashMap<Arc<str>, SourceDecoding>,
        metrics: Arc<Metrics>,
        max_future_skew: chrono::Duration,
    ) -> Result<Pipeline, crate::store::StoreError> {
        let emps = store.employees().await?;
        Ok(Pipeline {
            store,
            policies: RwLock::new(Arc::new(policies.as_policies().into_owned())),
            sources,
            directory: RwLock::new(Directory::new(&emps)),
            dirty: Mutex::new(BTreeMap::new()),
            metrics,
            heartbeat: Heartbeat::new(),
            max_future_skew,
            drift: Arc::default(),
            devices: HashMap::new(),
            stall_file: std::env::var_os(STALL_FILE_ENV).map(Into::into),
            health: None,
            classify_from: None,
            ignored_logged: Default::default(),
            quarantine_retention_days: crate::config::DEFAULT_QUARANTINE_RETENTION_DAYS,
            last_prune: Mutex::new(None),
        })
    }

    /// The default policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policies().default_arc()
    }

    /// The site's policies in force (the default and the groups).
    pub fn policies(&self) -> Arc<crate::policy_file::Policies> {
        self.policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the policies, all at once (SIGHUP); days are re-classified
    /// with them as punches arrive, and `attendd recompute` re-classifies
    /// the past.
    pub fn swap_policy(&self, policies: Arc<crate::policy_file::Policies>) {
        *self.policies.write().unwrap_or_else(|e| e.into_inner()) = policies;
    }

    /// Terminals seen with clocks running ahead, for the scheduler.
    pub fn drift(&self) -> Arc<DriftBoard> {
        self.drift.clone()
    }

    /// The same pipeline with the device id of sources that stand for one
    /// terminal.
    pub fn with_devices(mut self, devices: HashMap<Arc<str>, String>) -> Self {
        self.devices = devices;
        self
    }

    /// The same pipeline reporting every commit's outcome to `health`.
    pub fn with_health(mut self, health: Arc<crate::health::Health>) -> Self {
        self.health = Some(health);
        self
    }

    /// The heartbeat `commit` and the recompute loop bump.
    pub fn heartbeat(&self) -> Heartbeat {
        self.heartbeat.clone()
    }

    /// The same pipeline pruning undecodable quarantined payloads after
    /// `days` days (`[store] quarantine_retention_days`).
    pub fn with_quarantine_retention(mut self, days: u32) -> Self {
        self.quarantine_retention_days = days;
        self
    }

    fn resolve(&self, id: &Identity, device: Option<&str>) -> Result<String, String> {
        self.directory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .resolve(id, device)
    }

    /// Deletes undecodable payloads older than the retention, at most once
    /// an hour; never unknown-employee punches.
    async fn prune_quarantine(&self, now: DateTime<Utc>) {
        {
            let mut last = self.last_prune.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| now - t < chrono::Duration::hours(1)) {
                return;
            }
            *last = Some(now);
        }
        let cutoff = now - chrono::Duration::days(i64::from(self.quarantine_retention_days));
        match self.store.prune_quarantine(cutoff).await {
            Ok(0) => {}
            Ok(n) => info!(
                "pruned {n} undecodable quarantined payload(s) older than {} days",
                self.quarantine_retention_days
            ),
            Err(e) => warn!("cannot prune the quarantine: {e}"),
        }
    }

    /// Notes the days a new punch of `employee` at `at` can change: its
    /// date, the day before (an overnight shift started then) and the rest
    /// of that month (the escalation ladder counts per month). Only this
    /// employee's days: other employees' verdicts do not depend on it.
    fn mark_dirty(&self, employee: &str, at: DateTime<Utc>) {
        let d = to_local(self.policy().tz, at).date_naive();
        let from = d - Days::new(1);
        let to = crate::store::month_bounds(d).1;
        let mut m = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(employee.to_string()).or_insert((from, to));
        e.0 = e.0.min(from);
        e.1 = e.1.max(to);
    }

    /// The same pipeline with `[ingest] classify_from`.
    pub fn with_classify_from(mut self, classify_from: Option<NaiveDate>) -> Self {
        self.classify_from = classify_from;
        self
    }

    /// Re-classifies the days touched since the last call and reloads the
    /// aliases. Each employee's own range is re-classified, from the
    /// classification start on (policy.md, "Real sites"). Returns the number
    /// of employee-days evaluated.
    pub async fn recompute_dirty(
        &self,
        now: DateTime<Utc>,
    ) -> Result<usize, crate::store::StoreError> {
        let dirty = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(|e| e.into_inner()));
        if let Ok(emps) = self.store.employees().await {
            *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Directory::new(&emps);
        }
        self.prune_quarantine(now).await;
        self.heartbeat.beat();
        if dirty.is_empty() {
            return Ok(0);
        }
        let policies = self.policies();
        let today = to_local(policies.default_policy().tz, now).date_naive();
        let result = async {
            let start = self
                .store
                .classification_start(self.classify_from, Some(today), now)
                .await?;
            // Employees with the same range share one recompute.
            let mut groups: BTreeMap<(NaiveDate, NaiveDate), Vec<String>> = BTreeMap::new();
            for (emp, (from, to)) in &dirty {
                let from = start.map_or(*from, |s| (*from).max(s));
                if from <= *to {
                    groups.entry((from, *to)).or_default().push(emp.clone());
                }
            }
            let mut evaluated = 0;
            for ((from, to), ids) in groups {
                let r = self
                    .store
                    .recompute(
                        &policies,
                        Some(&ids),
                        from,
                        to,
                        "punches received",
                        "ingest",
                        now,
                    )
                    .await?;
                evaluated += r.evaluated;
            }
            Ok(evaluated)
        }
        .await;
        if result.is_err() {
            // Put them back so the next round tries again.
            let mut m = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
            for (k, v) in dirty {
                let e = m.entry(k).or_insert(v);
                e.0 = e.0.min(v.0);
                e.1 = e.1.max(v.1);
            }
        }
        result
    }

    /// Runs [`Pipeline::recompute_dirty`] every `interval` until `shutdown`,
    /// then once more.
    pub async fn recompute_loop(self: Arc<Self>, interval: Duration, shutdown: CancellationToken) {
        // The loop beats the heartbeat every second (the watchdog's sign of
        // life) and re-classifies every `interval`.
        let step = interval.min(Duration::from_secs(1));
        let mut next = tokio::time::Instant::now() + interval;
        loop {
            let stop = tokio::select! {
                _ = shutdown.cancelled() => true,
                _ = tokio::time::sleep(step) => false,
            };
            self.heartbeat.beat();
            if !stop && tokio::time::Instant::now() < next {
                continue;
            }
            next = tokio::time::Instant::now() + interval;
            // A recompute may wait for the store's recompute lock (a day
            // close, `attendd recompute`); the loop is alive meanwhile, so
            // it keeps beating, for at most MAX_RECOMPUTE_WAIT.
            let work = self.recompute_dirty(crate::clock::now());
            tokio::pin!(work);
            let started = tokio::time::Instant::now();
            let result = loop {
                tokio::select! {
                    r = &mut work => break r,
                    _ = tokio::time::sleep(step) => {
                        if started.elapsed() < MAX_RECOMPUTE_WAIT {
                            self.heartbeat.beat();
                        }
                    }
                }
            };
            match result {
                Ok(0) => {}
                Ok(n) => info!("re-classified {n} employee-day(s) touched by new punches"),
                Err(e) => warn!("re-classification failed, will retry: {e}"),
            }
            if stop {
                return;
            }
        }
    }
}

/// Terminals whose clock was seen running ahead: device → (when, seconds).
/// The pipeline writes it; the scheduler turns it into alerts.
#[derive(Debug, Default)]
pub struct DriftBoard(Mutex<HashMap<String, (DateTime<Utc>, i64)>>);

impl DriftBoard {
    /// Records a punch from `device` stamped `skew_secs` ahead at `at`.
    pub fn flag(&self, device: &str, at: DateTime<Utc>, skew_secs: i64) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(device.to_string(), (at, skew_secs));
    }

    /// Devices flagged at or after `since`; older flags are forgotten (the
    /// keys come from payloads, so the board must not grow for ever).
    pub fn since(&self, since: DateTime<Utc>) -> Vec<(String, DateTime<Utc>, i64)> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, (at, _)| *at >= since);
        let mut v: Vec<_> = m
            .iter()
            .filter(|(_, (at, _))| *at >= since)
            .map(|(d, (at, s))| (d.clone(), *at, *s))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests;
