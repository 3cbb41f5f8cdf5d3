//! The pipeline between sources and the store: decode, attribute, commit,
//! quarantine, and schedule re-classification of the days touched.
//!
//! [`Pipeline`] is the daemon's [`Sink`]: `commit` returns `Ok` only when
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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub mod replay;

use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::ingest::decode::{DecodeContext, Identity, canonical_card};
use crate::metrics::Metrics;
use crate::service::Heartbeat;
pub use crate::source::SourceDecoding;
pub use crate::source::pull::PullAck;
use crate::source::{Received, Sink, SinkError};
use crate::store::{EmployeeRecord, Inserted, NewPunch, NewQuarantine, QuarantineKind, Store};

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
    policies: RwLock<Arc<crate::policy::Policies>>,
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
        policies: impl crate::policy::PolicySet,
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
    pub fn policies(&self) -> Arc<crate::policy::Policies> {
        self.policies
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the policies, all at once (SIGHUP); days are re-classified
    /// with them as punches arrive, and `attendd recompute` re-classifies
    /// the past.
    pub fn swap_policy(&self, policies: Arc<crate::policy::Policies>) {
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

/// Ignored events of one commit, counted by (source, kind) and logged
/// once per (device, kind): a 2 MiB upload of header lines costs a few map
/// updates per line, not a metric and a log lookup each.
#[derive(Default)]
struct IgnoredTally<'a> {
    kinds: HashMap<String, String>,
    counts: BTreeMap<(&'a str, String), f64>,
    first: BTreeMap<(String, String), (&'a str, String)>,
}

impl<'a> IgnoredTally<'a> {
    fn add(
        &mut self,
        source: &'a str,
        device: Option<&str>,
        ignored: &[crate::ingest::decode::Ignored],
    ) {
        for i in ignored {
            let kind = match self.kinds.get(&i.reason) {
                Some(k) => k.clone(),
                None => {
                    let k = crate::quarantine::ignored_kind(&i.reason);
                    if self.kinds.len() < 1024 {
                        self.kinds.insert(i.reason.clone(), k.clone());
                    }
                    k
                }
            };
            let key = (device.unwrap_or("-").to_string(), kind.clone());
            if self.first.len() < 1024 && !self.first.contains_key(&key) {
                self.first.insert(key, (source, i.reason.clone()));
            }
            *self.counts.entry((source, kind)).or_default() += 1.0;
        }
    }
}

impl Pipeline {
    /// Counts ignored events by kind and logs the first of each kind per
    /// device.
    fn count_ignored(&self, tally: IgnoredTally<'_>) {
        for ((source, kind), n) in tally.counts {
            self.metrics.add(
                "attendd_ignored_events_total",
                &[("source", source), ("kind", &kind)],
                n,
            );
        }
        for ((dev, kind), (source, reason)) in tally.first {
            if self.ignored_logged.first(&format!("{dev}\u{1f}{kind}")) {
                info!(
                    source = %source,
                    device = %dev,
                    "ignored an event that is not a punch: {reason} (counted in attendd_ignored_events_total{{kind={kind:?}}}; logged once per device and kind)",
                );
            }
        }
    }
}

/// A batch decoded and attributed, ready to store.
struct Prepared<'b> {
    punches: Vec<NewPunch>,
    /// The source of each punch: a batch may mix sources (HTTP push).
    punch_sources: Vec<&'b str>,
    quarantine: Vec<NewQuarantine>,
    last_seen: HashMap<String, DateTime<Utc>>,
    /// Ignored events, counted once the batch is committed (a failed
    /// commit is read or sent again and would count them twice).
    ignored: IgnoredTally<'b>,
}

impl Pipeline {
    /// Commits a pull source's batch and its cursor in one transaction
    /// (quarantined parts first: re-quarantining on a retry is harmless,
    /// losing them is not). `Ok` means the punches and the cursor are
    /// durable.
    pub async fn commit_pull(
        &self,
        batch: &[Received],
        ack: &PullAck<'_>,
    ) -> Result<(), SinkError> {
        self.wait_stall(batch.len()).await;
        let prepared = self.prepare(batch, Some(ack.device), ack.event_suffix);
        self.store_prepared(batch, prepared, Some(ack)).await
    }

    /// The stored cursor of a pull source on a terminal.
    pub async fn pull_cursor(
        &self,
        source: &str,
        device: &str,
    ) -> Result<Option<String>, SinkError> {
        self.store
            .pull_cursor(source, device)
            .await
            .map_err(|e| SinkError(e.to_string()))
    }

    async fn wait_stall(&self, n: usize) {
        if let Some(f) = &self.stall_file {
            let mut logged = false;
            while f.exists() {
                if !logged {
                    warn!(
                        "fault injection ({STALL_FILE_ENV}): commit of {n} message(s) stalled while {} exists",
                        f.display()
                    );
                    logged = true;
                }
                self.heartbeat.beat();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    fn prepare<'b>(
        &self,
        batch: &'b [Received],
        device: Option<&str>,
        event_suffix: Option<&str>,
    ) -> Prepared<'b> {
        let mut punches: Vec<NewPunch> = Vec::with_capacity(batch.len());
        // The source of each punch: a batch may mix sources (HTTP push).
        let mut punch_sources: Vec<&str> = Vec::with_capacity(batch.len());
        let mut quarantine = crate::quarantine::Bounded::default();
        let mut ignored = IgnoredTally::default();
        let mut last_seen: HashMap<String, DateTime<Utc>> = HashMap::new();
        for (i, r) in batch.iter().enumerate() {
            // The lines of one HTTP upload (or serial read) share their
            // source and arrival time; an MQTT message stands alone. At
            // most 100 bad records of one upload are kept one by one.
            let upload = (r.source.clone(), r.received_at, r.topic.as_ref().map(|_| i));
            let Some(src) = self.sources.get(&r.source) else {
                quarantine.push(&upload, || NewQuarantine {
                    source: r.source.to_string(),
                    payload: crate::quarantine::strip_photos(&r.payload),
                    reason: "no decoder configured for this source".into(),
                    received_at: Some(r.received_at),
                    ..Default::default()
                });
                continue;
            };
            let origin = match &r.topic {
                Some(t) => format!("{}:{t}", r.source),
                None => r.source.to_string(),
            };
            let device = device.or_else(|| self.devices.get(&r.source).map(String::as_str));
            let mut cx = DecodeContext::new(src.tz, r.received_at);
            if let Some(t) = &r.topic {
                cx = cx.with_topic(t);
            }
            if let Some(d) = device {
                cx = cx.with_device(d);
            }
            // Built only for rows that are kept.
            let quarantined = |label: String, payload: &[u8], reason: String, kind| NewQuarantine {
                source: label,
                payload: crate::quarantine::strip_photos(payload),
                reason,
                kind,
                replay: Some(src.replay_info(&r.source, r.topic.as_deref(), device)),
                received_at: Some(r.received_at),
            };
            let decoded = match src.decoder.decode(&r.payload, &cx) {
                Ok(d) => d,
                Err(e) => {
                    self.metrics
                        .add("attendd_quarantined_total", &[("source", &r.source)], 1.0);
                    quarantine.push(&upload, || {
                        quarantined(
                            origin,
                            &r.payload,
                            format!("{}: {e}", src.decoder.name()),
                            QuarantineKind::Undecodable,
                        )
                    });
                    continue;
                }
            };
            for le in &decoded.line_errors {
                self.metrics
                    .add("attendd_quarantined_total", &[("source", &r.source)], 1.0);
                quarantine.push(&upload, || {
                    quarantined(
                        format!("{origin} line {}", le.line),
                        le.text.as_bytes(),
                        format!("{}: {}", src.decoder.name(), le.error),
                        QuarantineKind::Undecodable,
                    )
                });
            }
            // The device, as far as it is known: the payload's, the
            // source's, else the MQTT topic it came on.
            let payload_device = decoded
                .punches
                .first()
                .and_then(|p| p.device_id.as_deref())
                .or(device)
                .or(r.topic.as_deref());
            ignored.add(&r.source, payload_device, &decoded.ignored);
            for w in &decoded.warnings {
                warn!(source = %r.source, "{w}");
            }
            // The raw text punches keep (photos stripped), only when there
            // are punches.
            let raw = if decoded.punches.is_empty() {
                String::new()
            } else {
                String::from_utf8_lossy(&crate::quarantine::strip_photos(
                    &r.payload[..r.payload.len().min(64 * 1024)],
                ))
                .chars()
                .take(2048)
                .collect::<String>()
            };
            // Unknown identities of this payload: one quarantine row holds
            // the payload once (a replay re-decodes all of it), however
            // many of its punches wait for HR.
            let mut unknown: Option<(String, usize)> = None;
            for p in decoded.punches {
                if let Some(d) = &p.device_id {
                    last_seen.insert(d.clone(), r.received_at);
                }
                if let Some(skew) = p.clock_skew(r.received_at)
                    && skew > self.max_future_skew
                {
                    let dev = p.device_id.clone().unwrap_or_default();
                    self.metrics
                        .add("attendd_clock_skew_flags_total", &[("device", &dev)], 1.0);
                    self.drift.flag(&dev, r.received_at, skew.num_seconds());
                    warn!(
                        device = %dev,
                        "punch stamped {}s in the future: the terminal's clock runs ahead (stored as stamped)",
                        skew.num_seconds()
                    );
                }
                let employee_id = match self.resolve(&p.identity, p.device_id.as_deref()) {
                    Ok(e) => e,
                    Err(why) => {
                        self.metrics.add(
                            "attendd_punches_total",
                            &[("source", &r.source), ("outcome", "unknown_employee")],
                            1.0,
                        );
                        match &mut unknown {
                            Some((_, more)) => *more += 1,
                            None => unknown = Some((why, 0)),
                        }
                        continue;
                    }
                };
                punch_sources.push(&r.source);
                let event_id = match (p.event_id, event_suffix) {
                    (Some(e), Some(sfx)) => Some(format!("{e}{sfx}")),
                    (e, _) => e,
                };
                punches.push(NewPunch {
                    employee_id,
                    identity: p.identity.as_str().to_string(),
                    time: p.at,
                    device_id: p.device_id,
                    event_id,
                    source: origin.clone(),
                    raw: Some(raw.clone()),
                    direction: p.kind.state().map(String::from),
                });
            }
            if let Some((why, more)) = unknown {
                let why = if more == 0 {
                    why
                } else {
                    format!("{why} (and {more} more unknown in this payload)")
                };
                // Unknown people are punches waiting for HR: never cut
                // short by the per-upload bound.
                quarantine.push_always(quarantined(
                    origin.clone(),
                    &r.payload,
                    why,
                    QuarantineKind::Unknown,
                ));
            }
        }
        let quarantine = quarantine.finish();
        Prepared {
            punches,
            punch_sources,
            quarantine,
            last_seen,
            ignored,
        }
    }

    async fn store_prepared(
        &self,
        batch: &[Received],
        prepared: Prepared<'_>,
        pull: Option<&PullAck<'_>>,
    ) -> Result<(), SinkError> {
        let Prepared {
            punches,
            punch_sources,
            quarantine,
            last_seen,
            ignored,
        } = prepared;
        let started = std::time::Instant::now();
        let written = async {
            if let Some(ack) = pull {
                self.store
                    .store_pull_read(
                        &punches,
                        &quarantine,
                        ack.source,
                        ack.device,
                        ack.cursor,
                        crate::clock::now(),
                    )
                    .await
            } else {
                let outcomes = if punches.is_empty() {
                    Vec::new()
                } else {
                    self.store
                        .insert_punches(&punches, crate::clock::now())
                        .await?
                };
                self.store
                    .quarantine_many(&quarantine, crate::clock::now())
                    .await?;
                Ok::<_, crate::store::StoreError>(outcomes)
            }
        }
        .await;
        if let Some(h) = &self.health {
            h.store_written(
                written.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                self.store.engine(),
                crate::clock::now(),
            );
        }
        let outcomes = written.map_err(|e| {
            self.metrics.add("attendd_store_errors_total", &[], 1.0);
            SinkError(e.to_string())
        })?;
        self.count_ignored(ignored);
        self.metrics.observe_commit(started.elapsed().as_secs_f64());
        self.metrics.add("attendd_store_commits_total", &[], 1.0);
        let mut counts: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for ((p, o), src) in punches.iter().zip(&outcomes).zip(&punch_sources) {
            let c = counts.entry(src).or_default();
            if let Inserted::New(_) = o {
                c.0 += 1.0;
                self.mark_dirty(&p.employee_id, p.time);
            } else {
                c.1 += 1.0;
            }
        }
        if counts.is_empty()
            && let Some(r) = batch.first()
        {
            counts.insert(&r.source, (0.0, 0.0));
        }
        for (src, (new, duplicate)) in counts {
            self.metrics.add(
                "attendd_punches_total",
                &[("source", src), ("outcome", "new")],
                new,
            );
            self.metrics.add(
                "attendd_punches_total",
                &[("source", src), ("outcome", "duplicate")],
                duplicate,
            );
        }
        for (d, t) in last_seen {
            self.metrics.set(
                "attendd_terminal_last_seen_seconds",
                &[("device", &d)],
                t.timestamp() as f64,
            );
        }
        self.heartbeat.beat();
        Ok(())
    }
}

impl crate::source::pull::PullSink for Pipeline {
    fn commit_pull<'a>(
        &'a self,
        batch: &'a [Received],
        ack: &'a PullAck<'a>,
    ) -> crate::source::pull::BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(Pipeline::commit_pull(self, batch, ack))
    }

    fn pull_cursor<'a>(
        &'a self,
        source: &'a str,
        device: &'a str,
    ) -> crate::source::pull::BoxFuture<'a, Result<Option<String>, SinkError>> {
        Box::pin(Pipeline::pull_cursor(self, source, device))
    }
}

impl Sink for Pipeline {
    async fn commit(&self, batch: &[Received]) -> Result<(), SinkError> {
        self.wait_stall(batch.len()).await;
        let prepared = self.prepare(batch, None, None);
        self.store_prepared(batch, prepared, None).await
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
