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

    fn mark_dirty(&self, employee: &str, at: DateTime<Utc>) {
        let d = to_local(self.policy().tz, at).date_naive();
        // An overnight shift started the day before.
        let from = d - Days::new(1);
        let mut m = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(employee.to_string()).or_insert((from, d));
        e.0 = e.0.min(from);
        e.1 = e.1.max(d);
    }

    /// Re-classifies the days touched since the last call and reloads the
    /// aliases. Returns the number of employee-days evaluated.
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
        let from = dirty.values().map(|r| r.0).min().unwrap_or_default();
        let to = dirty.values().map(|r| r.1).max().unwrap_or_default();
        let ids: Vec<String> = dirty.keys().cloned().collect();
        match self
            .store
            .recompute(
                &self.policy(),
                Some(&ids),
                from,
                to,
                "punches received",
                "ingest",
                now,
            )
            .await
        {
            Ok(r) => Ok(r.evaluated),
            Err(e) => {
                // Put them back so the next round tries again.
                let mut m = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
                for (k, v) in dirty {
                    let e = m.entry(k).or_insert(v);
                    e.0 = e.0.min(v.0);
                    e.1 = e.1.max(v.1);
                }
                Err(e)
            }
        }
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

impl Sink for Pipeline {
    async fn commit(&self, batch: &[Received]) -> Result<(), SinkError> {
        if let Some(f) = &self.stall_file {
            let mut logged = false;
            while f.exists() {
                if !logged {
                    warn!(
                        "fault injection ({STALL_FILE_ENV}): commit of {} message(s) stalled while {} exists",
                        batch.len(),
                        f.display()
                    );
                    logged = true;
                }
                self.heartbeat.beat();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let mut punches: Vec<NewPunch> = Vec::with_capacity(batch.len());
        // The source of each punch: a batch may mix sources (HTTP push).
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
            if let Some(d) = self.devices.get(&r.source) {
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
                punches.push(NewPunch {
                    employee_id,
                    identity: p.identity.as_str().to_string(),
                    time: p.at,
                    device_id: p.device_id,
                    event_id: p.event_id,
                    source: origin.clone(),
                    raw: Some(raw.clone()),
                });
            }
        }
        let started = std::time::Instant::now();
        let written = async {
            let outcomes = if punches.is_empty() {
                Vec::new()
            } else {
                self.store.insert_punches(&punches).await?
            };
            self.store.quarantine_many(&quarantine).await?;
            Ok::<_, crate::store::StoreError>(outcomes)
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
