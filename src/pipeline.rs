//! The pipeline between sources and the store: decode, attribute, commit,
//! quarantine, and schedule re-classification of the days touched.
//!
//! [`Pipeline`] is the daemon's [`Sink`]: `commit` returns `Ok` only when
//! every message of the batch is safe in the store, either as punches (one
//! transaction, duplicates counted, never doubled) or in quarantine. Only
//! then does the source acknowledge.
//!
//! Attribution: an employee id (PIN, `customId`, `employeeNoString`) is
//! stored as sent, even when HR has not imported that employee yet (the
//! punch is a fact; the verdict follows the import). A card number or
//! face-match name goes through the employees' aliases; an alias nobody has
//! is quarantined with the reason, never dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::ingest::decode::{DecodeContext, Decoder, Identity, canonical_card};
use crate::metrics::Metrics;
use crate::service::Heartbeat;
use crate::source::{Received, Sink, SinkError};
use crate::store::{EmployeeRecord, Inserted, NewPunch, NewQuarantine, Store};

/// How one source's messages are decoded.
#[derive(Debug)]
pub struct SourceDecoding {
    /// The decoder.
    pub decoder: Decoder,
    /// Zone of the devices' local times.
    pub tz: Tz,
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
    policy: RwLock<Arc<Policy>>,
    sources: HashMap<Arc<str>, SourceDecoding>,
    aliases: RwLock<HashMap<String, String>>,
    dirty: Mutex<BTreeMap<String, (NaiveDate, NaiveDate)>>,
    metrics: Arc<Metrics>,
    heartbeat: Heartbeat,
    max_future_skew: chrono::Duration,
    drift: Arc<crate::scheduler::DriftBoard>,
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
        policy: Arc<Policy>,
        sources: HashMap<Arc<str>, SourceDecoding>,
        metrics: Arc<Metrics>,
        max_future_skew: chrono::Duration,
    ) -> Result<Pipeline, crate::store::StoreError> {
        let emps = store.employees().await?;
        Ok(Pipeline {
            store,
            policy: RwLock::new(policy),
            sources,
            aliases: RwLock::new(alias_map(&emps)),
            dirty: Mutex::new(BTreeMap::new()),
            metrics,
            heartbeat: Heartbeat::new(),
            max_future_skew,
            drift: Arc::default(),
            devices: HashMap::new(),
            stall_file: std::env::var_os(STALL_FILE_ENV).map(Into::into),
            health: None,
            classify_from: None,
        })
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the policy (SIGHUP); days are re-classified with it as
    /// punches arrive, and `attendd recompute` re-classifies the past.
    pub fn swap_policy(&self, policy: Arc<Policy>) {
        *self.policy.write().unwrap_or_else(|e| e.into_inner()) = policy;
    }

    /// Terminals seen with clocks running ahead, for the scheduler.
    pub fn drift(&self) -> Arc<crate::scheduler::DriftBoard> {
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

    fn resolve(&self, id: &Identity) -> Option<String> {
        match id {
            Identity::Employee(e) => Some(e.clone()),
            Identity::Alias(a) => {
                let m = self.aliases.read().unwrap_or_else(|e| e.into_inner());
                alias_keys(a).iter().find_map(|k| m.get(k).cloned())
            }
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
            *self.aliases.write().unwrap_or_else(|e| e.into_inner()) = alias_map(&emps);
        }
        self.heartbeat.beat();
        if dirty.is_empty() {
            return Ok(0);
        }
        let policy = self.policy();
        let today = to_local(policy.tz, now).date_naive();
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
                        &policy,
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
            let work = self.recompute_dirty(Utc::now());
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

/// A batch decoded and attributed, ready to store.
struct Prepared<'b> {
    punches: Vec<NewPunch>,
    /// The source of each punch: a batch may mix sources (HTTP push).
    punch_sources: Vec<&'b str>,
    quarantine: Vec<NewQuarantine>,
    last_seen: HashMap<String, DateTime<Utc>>,
}

/// Where a pull source has read up to, stored with the punches it covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullAck<'a> {
    /// The configured source, e.g. `hik_pull[0]`.
    pub source: &'a str,
    /// The terminal's serial number: the device id of every punch read.
    pub device: &'a str,
    /// The cursor after this batch (opaque to the store).
    pub cursor: &'a str,
    /// Appended to the terminal's event ids (`48211~1`) after it reset its
    /// counter, so that reused numbers are not taken for stored events.
    pub event_suffix: Option<&'a str>,
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
        let mut punch_sources: Vec<&str> = Vec::with_capacity(batch.len());
        let mut quarantine: Vec<NewQuarantine> = Vec::new();
        let mut last_seen: HashMap<String, DateTime<Utc>> = HashMap::new();
        for r in batch {
            let Some(src) = self.sources.get(&r.source) else {
                quarantine.push(NewQuarantine {
                    source: r.source.to_string(),
                    payload: r.payload.clone(),
                    reason: "no decoder configured for this source".into(),
                });
                continue;
            };
            let origin = match &r.topic {
                Some(t) => format!("{}:{t}", r.source),
                None => r.source.to_string(),
            };
            let mut cx = DecodeContext::new(src.tz, r.received_at);
            if let Some(t) = &r.topic {
                cx = cx.with_topic(t);
            }
            if let Some(d) = device.or_else(|| self.devices.get(&r.source).map(String::as_str)) {
                cx = cx.with_device(d);
            }
            let decoded = match src.decoder.decode(&r.payload, &cx) {
                Ok(d) => d,
                Err(e) => {
                    self.metrics
                        .add("attendd_quarantined_total", &[("source", &r.source)], 1.0);
                    quarantine.push(NewQuarantine {
                        source: origin,
                        payload: r.payload.clone(),
                        reason: format!("{}: {e}", src.decoder.name()),
                    });
                    continue;
                }
            };
            for le in &decoded.line_errors {
                self.metrics
                    .add("attendd_quarantined_total", &[("source", &r.source)], 1.0);
                quarantine.push(NewQuarantine {
                    source: format!("{origin} line {}", le.line),
                    payload: le.text.clone().into_bytes(),
                    reason: format!("{}: {}", src.decoder.name(), le.error),
                });
            }
            if !decoded.ignored.is_empty() {
                self.metrics.add(
                    "attendd_ignored_events_total",
                    &[("source", &r.source)],
                    decoded.ignored.len() as f64,
                );
            }
            for w in &decoded.warnings {
                warn!(source = %r.source, "{w}");
            }
            let raw = String::from_utf8_lossy(&r.payload[..r.payload.len().min(2048)]).into_owned();
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
                let Some(employee_id) = self.resolve(&p.identity) else {
                    self.metrics.add(
                        "attendd_punches_total",
                        &[("source", &r.source), ("outcome", "unknown_alias")],
                        1.0,
                    );
                    quarantine.push(NewQuarantine {
                        source: origin.clone(),
                        payload: r.payload.clone(),
                        reason: format!(
                            "unknown alias {:?}: no employee has it; add it to employees.csv (alias column), import, and replay",
                            p.identity.as_str()
                        ),
                    });
                    continue;
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
                });
            }
        }
        Prepared {
            punches,
            punch_sources,
            quarantine,
            last_seen,
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
        } = prepared;
        let started = std::time::Instant::now();
        let written = async {
            if let Some(ack) = pull {
                self.store.quarantine_many(&quarantine).await?;
                self.store
                    .insert_punches_with_cursor(&punches, ack.source, ack.device, ack.cursor)
                    .await
            } else {
                let outcomes = if punches.is_empty() {
                    Vec::new()
                } else {
                    self.store.insert_punches(&punches).await?
                };
                self.store.quarantine_many(&quarantine).await?;
                Ok::<_, crate::store::StoreError>(outcomes)
            }
        }
        .await;
        if let Some(h) = &self.health {
            h.store_written(
                written.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                self.store.engine(),
                Utc::now(),
            );
        }
        let outcomes = written.map_err(|e| {
            self.metrics.add("attendd_store_errors_total", &[], 1.0);
            SinkError(e.to_string())
        })?;
        self.metrics.add(
            "attendd_store_commit_seconds_sum",
            &[],
            started.elapsed().as_secs_f64(),
        );
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

impl Sink for Pipeline {
    async fn commit(&self, batch: &[Received]) -> Result<(), SinkError> {
        self.wait_stall(batch.len()).await;
        let prepared = self.prepare(batch, None, None);
        self.store_prepared(batch, prepared, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_keys_canonicalise_card_numbers() {
        assert_eq!(alias_keys("0012345678"), vec!["0012345678", "12345678"]);
        assert_eq!(alias_keys("0C8707"), vec!["0c8707", "820999"]);
        assert_eq!(alias_keys("Leyla"), vec!["leyla"]);
    }

    /// Issue 11 (12): an all-digit hex UID is said to be hex explicitly;
    /// a decimal alias keeps its meaning.
    #[test]
    fn hex_prefix_in_the_alias_column() {
        // esp-rfid's `"uid":"27373963"` is read as hex by the decoder.
        let decoded = canonical_card("27373963", 16).unwrap();
        assert_eq!(decoded, "657930595");
        assert!(alias_keys("hex:27373963").contains(&decoded));
        assert!(alias_keys("HEX:27373963").contains(&decoded));
        assert!(alias_keys("0x27373963").contains(&decoded));
        assert!(!alias_keys("27373963").contains(&decoded));
        assert_eq!(alias_keys("1000000042"), vec!["1000000042"]);
        // Not hex after the prefix: only the text itself.
        assert_eq!(alias_keys("hex:xyz"), vec!["hex:xyz"]);
    }
}
