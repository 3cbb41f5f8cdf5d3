//! Counters and gauges, rendered as Prometheus text for `GET /metrics`.
//!
//! Deliberately small: a map from (name, labels) to a value behind a mutex.
//! The hot path (a committed batch) takes the lock once per batch, not per
//! punch.

use std::collections::BTreeMap;
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

/// The process's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    values: Mutex<BTreeMap<(&'static str, String), f64>>,
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
    /// Adds `by` to a counter.
    pub fn add(&self, name: &'static str, label_pairs: &[(&str, &str)], by: f64) {
        let mut m = self.values.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((name, labels(label_pairs))).or_insert(0.0) += by;
    }

    /// Sets a gauge.
    pub fn set(&self, name: &'static str, label_pairs: &[(&str, &str)], value: f64) {
        let mut m = self.values.lock().unwrap_or_else(|e| e.into_inner());
        m.insert((name, labels(label_pairs)), value);
    }

    /// A value, for tests and health checks.
    pub fn get(&self, name: &'static str, label_pairs: &[(&str, &str)]) -> f64 {
        let m = self.values.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&(name, labels(label_pairs))).copied().unwrap_or(0.0)
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
}
