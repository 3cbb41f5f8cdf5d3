//! Counters and gauges, rendered as Prometheus text for `GET /metrics`.
//!
//! Deliberately small: a map from (name, labels) to a value behind a mutex.
//! The hot path (a committed batch) takes the lock once per batch, not per
//! punch.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;
use std::sync::Mutex;

/// Help text and type of each metric family, in output order.
const FAMILIES: &[(&str, &str, &str)] = &[
    (
        "attendd_punches_total",
        "counter",
        "Punches received, by source and outcome (new, duplicate, unknown_employee).",
    ),
    (
        "attendd_quarantined_total",
        "counter",
        "Messages that could not be decoded, by source.",
    ),
    (
        "attendd_ignored_events_total",
        "counter",
        "Decoded events that are not punches (door, heartbeat, refused), by source.",
    ),
    (
        "attendd_store_commit_seconds_sum",
        "counter",
        "Time spent committing batches to the store.",
    ),
    (
        "attendd_store_commits_total",
        "counter",
        "Batches committed to the store.",
    ),
    (
        "attendd_store_errors_total",
        "counter",
        "Failed store commits (retried).",
    ),
    (
        "attendd_clock_skew_flags_total",
        "counter",
        "Punches stamped further in the future than allowed, by device.",
    ),
    (
        "attendd_terminal_last_seen_seconds",
        "gauge",
        "Unix time of the last message from a terminal.",
    ),
    (
        "attendd_push_requests_total",
        "counter",
        "HTTP push requests, by source and outcome (handshake, upload, ignored, heartbeat, refused, unauthorised, rate_limited, error).",
    ),
    (
        "attendd_push_lost_events_total",
        "counter",
        "Events a push terminal numbered but never delivered (gaps in Hikvision serialNo), by device.",
    ),
    (
        "attendd_pull_up",
        "gauge",
        "1 while a pull source is connected to its terminal, by source.",
    ),
    (
        "attendd_pull_errors_total",
        "counter",
        "Pull source failures, by source and kind (auth, connection, protocol, store); each is retried with backoff.",
    ),
    (
        "attendd_pull_records_total",
        "counter",
        "Records read from pulled terminals, by source and path (catchup, live).",
    ),
    (
        "attendd_pull_catchups_total",
        "counter",
        "Catch-up reads of a pulled terminal's log, by source.",
    ),
    (
        "attendd_pull_cursor_seconds",
        "gauge",
        "Unix time of the last record a pull source has stored, by source and device.",
    ),
    (
        "attendd_pull_clock_offset_seconds",
        "gauge",
        "How far a pulled terminal's clock is off the daemon's (positive: ahead), by source and device.",
    ),
    (
        "attendd_alerts_total",
        "counter",
        "Alerts by sink and outcome.",
    ),
];

/// Most distinct `device` label values: configured terminals first, then
/// devices as they are first seen; any further device is counted as
/// [`OTHER_DEVICE`]. Without a bound, a payload field a terminal (or anyone
/// reaching the broker) chooses freely would add series forever.
pub const MAX_DEVICE_LABELS: usize = 500;

/// The `device` label of devices beyond [`MAX_DEVICE_LABELS`].
pub const OTHER_DEVICE: &str = "other";

/// The process's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(&'static str, String), f64>>,
    labels: Mutex<Labels>,
}

/// How `device` and `source` label values are shown.
#[derive(Debug, Default)]
struct Labels {
    /// Configured terminals: device id → the configured name. A ZKTeco
    /// push terminal's id is its serial number, its only credential, and
    /// `/metrics` is open: the name is shown instead.
    named: HashMap<String, String>,
    /// Source names holding a serial number → the same with the name.
    sources: HashMap<String, String>,
    /// Other devices given their own label so far.
    seen: HashSet<String>,
}

impl Labels {
    fn device(&mut self, id: &str, remember: bool) -> String {
        if let Some(n) = self.named.get(id) {
            return n.clone();
        }
        if self.seen.contains(id) {
            return id.to_string();
        }
        if self.named.len() + self.seen.len() < MAX_DEVICE_LABELS {
            if remember {
                self.seen.insert(id.to_string());
            }
            return id.to_string();
        }
        OTHER_DEVICE.to_string()
    }

    fn show(&mut self, pairs: &[(&str, &str)], remember: bool) -> String {
        let mut shown: Vec<(&str, String)> = Vec::with_capacity(pairs.len());
        for (k, v) in pairs {
            let v = match *k {
                "device" => self.device(v, remember),
                "source" => self
                    .sources
                    .get(*v)
                    .cloned()
                    .unwrap_or_else(|| v.to_string()),
                _ => v.to_string(),
            };
            shown.push((k, v));
        }
        let refs: Vec<(&str, &str)> = shown.iter().map(|(k, v)| (*k, v.as_str())).collect();
        labels(&refs)
    }
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let v = v
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = write!(s, "{k}=\"{v}\"");
    }
    s
}

impl Metrics {
    /// Names configured terminals: `(device id, name)`. Their `device`
    /// labels show the name, and they keep their own label however many
    /// other devices are seen.
    pub fn name_devices(&self, named: impl IntoIterator<Item = (String, String)>) {
        let mut l = self.labels.lock().unwrap_or_else(|e| e.into_inner());
        for (id, name) in named {
            l.seen.remove(&id);
            l.named.insert(id, name);
        }
    }

    /// Shows source names (`zk_push[0]:SERIAL`) under another name
    /// (`zk_push[0]:gate-1`) in `source` labels.
    pub fn name_sources(&self, named: impl IntoIterator<Item = (String, String)>) {
        let mut l = self.labels.lock().unwrap_or_else(|e| e.into_inner());
        l.sources.extend(named);
    }

    fn key(&self, label_pairs: &[(&str, &str)], remember: bool) -> String {
        if !label_pairs
            .iter()
            .any(|(k, _)| *k == "device" || *k == "source")
        {
            return labels(label_pairs);
        }
        self.labels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .show(label_pairs, remember)
    }

    /// Adds `by` to a counter.
    pub fn add(&self, name: &'static str, label_pairs: &[(&str, &str)], by: f64) {
        let key = self.key(label_pairs, true);
        let mut m = self.values.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((name, key)).or_insert(0.0) += by;
    }

    /// Sets a gauge. A gauge of a device beyond [`MAX_DEVICE_LABELS`]
    /// lands in [`OTHER_DEVICE`] (the last value set wins).
    pub fn set(&self, name: &'static str, label_pairs: &[(&str, &str)], value: f64) {
        let key = self.key(label_pairs, true);
        let mut m = self.values.lock().unwrap_or_else(|e| e.into_inner());
        m.insert((name, key), value);
    }

    /// A value, for tests and health checks (labels as given to
    /// [`Metrics::add`]).
    pub fn get(&self, name: &'static str, label_pairs: &[(&str, &str)]) -> f64 {
        let key = self.key(label_pairs, false);
        let m = self.values.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(name, key)).copied().unwrap_or(0.0)
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let m = self.values.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        for (name, kind, help) in FAMILIES {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for ((n, l), v) in m.range((*name, String::new())..) {
                if n != name {
                    break;
                }
                if l.is_empty() {
                    let _ = writeln!(out, "{name} {v}");
                } else {
                    let _ = writeln!(out, "{name}{{{l}}} {v}");
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.add(
            "attendd_punches_total",
            &[("source", "mqtt[0]"), ("outcome", "new")],
            3.0,
        );
        m.add(
            "attendd_punches_total",
            &[("source", "mqtt[0]"), ("outcome", "new")],
            2.0,
        );
        m.set(
            "attendd_terminal_last_seen_seconds",
            &[("device", "ga\"te")],
            17.0,
        );
        let t = m.render();
        assert!(
            t.contains("attendd_punches_total{source=\"mqtt[0]\",outcome=\"new\"} 5\n"),
            "{t}"
        );
        assert!(
            t.contains("attendd_terminal_last_seen_seconds{device=\"ga\\\"te\"} 17\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE attendd_punches_total counter\n"));
    }

    /// Issue 13: a series per distinct device id, forever (50,000 series,
    /// 8.4 MB), and push terminals' serial numbers on an open endpoint.
    #[test]
    fn device_labels_are_bounded_and_configured_terminals_named() {
        let m = Metrics::default();
        m.name_devices([("CQZ7231460021".to_string(), "gate-1".to_string())]);
        m.name_sources([(
            "zk_push[0]:CQZ7231460021".to_string(),
            "zk_push[0]:gate-1".to_string(),
        )]);
        for i in 0..50_000 {
            m.set(
                "attendd_terminal_last_seen_seconds",
                &[("device", &format!("dev-{i}"))],
                1.0,
            );
        }
        m.set(
            "attendd_terminal_last_seen_seconds",
            &[("device", "CQZ7231460021")],
            2.0,
        );
        m.add(
            "attendd_punches_total",
            &[("source", "zk_push[0]:CQZ7231460021"), ("outcome", "new")],
            1.0,
        );
        let t = m.render();
        let series = t
            .lines()
            .filter(|l| l.starts_with("attendd_terminal_last_seen_seconds{"))
            .count();
        assert_eq!(series, MAX_DEVICE_LABELS + 1, "499 seen, 1 named, other");
        assert!(t.contains("{device=\"gate-1\"} 2\n"), "{t}");
        assert!(t.contains("{device=\"other\"} 1\n"));
        assert!(t.contains("{device=\"dev-498\"}"));
        assert!(!t.contains("{device=\"dev-499\"}"));
        assert!(t.contains("source=\"zk_push[0]:gate-1\""));
        assert!(!t.contains("CQZ7231460021"), "serial number published");
        assert!(t.len() < 100_000, "{} bytes", t.len());
    }
}
