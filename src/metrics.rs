//! The process's metrics for `GET /metrics`, kept in typed [`prometheus`]
//! families (counters and gauges with fixed label names, one histogram)
//! and rendered in the Prometheus text format 0.0.4, which
//! `promtool check metrics` accepts.
//!
//! Callers name a series as before (`attendd_punches_total` with label
//! pairs); the name picks the typed family. Label values that come from
//! outside (device ids) are bounded ([`MAX_DEVICE_LABELS`]) and escaped.
//! The hot path (a committed batch) touches a handful of atomics per batch.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// A family: its name, label names (in output order) and help.
type Spec = (&'static str, &'static [&'static str], &'static str);

/// The counter families.
const COUNTERS: &[Spec] = &[
    (
        "attendd_punches_total",
        &["source", "outcome"],
        "Punches received, by source and outcome (new, duplicate, unknown_employee).",
    ),
    (
        "attendd_quarantined_total",
        &["source"],
        "Messages that could not be decoded, by source.",
    ),
    (
        "attendd_ignored_events_total",
        &["source", "kind"],
        "Decoded events that are not punches, by source and kind (door, heartbeat, refused, …; empty where a source does not say).",
    ),
    (
        "attendd_store_commits_total",
        &[],
        "Batches committed to the store.",
    ),
    (
        "attendd_store_errors_total",
        &[],
        "Failed store commits (retried).",
    ),
    (
        "attendd_clock_skew_flags_total",
        &["device"],
        "Punches stamped further in the future than allowed, by device.",
    ),
    (
        "attendd_push_requests_total",
        &["source", "outcome"],
        "HTTP push requests, by source and outcome (handshake, upload, ignored, heartbeat, refused, unauthorised, rate_limited, error).",
    ),
    (
        "attendd_push_lost_events_total",
        &["device"],
        "Events a push terminal numbered but never delivered (gaps in Hikvision serialNo), by device.",
    ),
    (
        "attendd_pull_errors_total",
        &["source", "kind"],
        "Pull source failures, by source and kind (auth, connection, protocol, store); each is retried with backoff.",
    ),
    (
        "attendd_pull_records_total",
        &["source", "path"],
        "Records read from pulled terminals, by source and path (catchup, live).",
    ),
    (
        "attendd_pull_catchups_total",
        &["source"],
        "Catch-up reads of a pulled terminal's log, by source.",
    ),
    (
        "attendd_alerts_total",
        &["sink", "kind", "outcome"],
        "Alerts by sink, kind and outcome.",
    ),
];

/// The gauge families set through [`Metrics::set`].
const GAUGES: &[Spec] = &[
    (
        "attendd_terminal_last_seen_seconds",
        &["device"],
        "Unix time of the last message from a terminal.",
    ),
    (
        "attendd_outbox_pending",
        &["sink"],
        "Messages in the outbox not yet accepted by their sink, by sink.",
    ),
    (
        "attendd_pull_up",
        &["source"],
        "1 while a pull source is connected to its terminal, by source.",
    ),
    (
        "attendd_pull_cursor_seconds",
        &["source", "device"],
        "Unix time of the last record a pull source has stored, by source and device.",
    ),
    (
        "attendd_pull_clock_offset_seconds",
        &["source", "device"],
        "How far a pulled terminal's clock is off the daemon's (positive: ahead), by source and device.",
    ),
];

/// Most distinct `device` label values: configured terminals first, then
/// devices as they are first seen; any further device is counted as
/// [`OTHER_DEVICE`]. Without a bound, a payload field a terminal (or anyone
/// reaching the broker) chooses freely would add series forever.
pub const MAX_DEVICE_LABELS: usize = 500;

/// The `device` label of devices beyond [`MAX_DEVICE_LABELS`].
pub const OTHER_DEVICE: &str = "other";

/// A series' labels as shown, in the order given.
type LabelSet = Vec<(String, String)>;

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    counters: HashMap<&'static str, IntCounterVec>,
    gauges: HashMap<&'static str, IntGaugeVec>,
    commit_seconds: Histogram,
    process: Process,
    labels: Mutex<Labels>,
    outbox_sinks: Mutex<std::collections::BTreeSet<String>>,
}

/// Most sinks given an `attendd_outbox_pending` series.
pub const MAX_SINK_LABELS: usize = 100;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// `process_*` gauges, read from /proc when rendered.
struct Process {
    resident: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    start_time: IntGauge,
}

/// Registers `c`; the names are fixed and distinct, so this cannot fail
/// at run time (the tests render every family).
fn register<C: Collector + Clone + 'static>(registry: &Registry, c: &C) {
    let _ = registry.register(Box::new(c.clone()));
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::with_opts(Opts::new(name, help))
        .unwrap_or_else(|_| IntGauge::new("attendd_invalid", "-").expect("valid name"));
    register(registry, &g);
    g
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        let mut counters = HashMap::new();
        for (name, labels, help) in COUNTERS {
            if let Ok(v) = IntCounterVec::new(Opts::new(*name, *help), labels) {
                register(&registry, &v);
                counters.insert(*name, v);
            }
        }
        let mut gauges = HashMap::new();
        for (name, labels, help) in GAUGES {
            if let Ok(v) = IntGaugeVec::new(Opts::new(*name, *help), labels) {
                register(&registry, &v);
                gauges.insert(*name, v);
            }
        }
        // 0.5 ms … 16 s: a batch commit on SQLite or PostgreSQL.
        let buckets = prometheus::exponential_buckets(0.0005, 2.0, 16).unwrap_or_default();
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "attendd_store_commit_seconds",
                "Time spent committing a batch to the store.",
            )
            .buckets(buckets),
        )
        .unwrap_or_else(|_| {
            Histogram::with_opts(HistogramOpts::new("attendd_invalid", "-")).expect("valid name")
        });
        register(&registry, &commit_seconds);
        if let Ok(build) = IntGaugeVec::new(
            Opts::new(
                "attendd_build_info",
                "The running build: version, OS and architecture; always 1.",
            ),
            &["version", "os", "arch"],
        ) {
            register(&registry, &build);
            build
                .with_label_values(&[
                    env!("CARGO_PKG_VERSION"),
                    std::env::consts::OS,
                    std::env::consts::ARCH,
                ])
                .set(1);
        }
        let process = Process {
            resident: gauge(
                &registry,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
            ),
            open_fds: gauge(
                &registry,
                "process_open_fds",
                "Number of open file descriptors.",
            ),
            max_fds: gauge(
                &registry,
                "process_max_fds",
                "Maximum number of open file descriptors.",
            ),
            start_time: gauge(
                &registry,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
            ),
        };
        Self {
            registry,
            counters,
            gauges,
            commit_seconds,
            process,
            labels: Mutex::default(),
            outbox_sinks: Mutex::default(),
        }
    }
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

    fn show(&mut self, pairs: &[(&str, &str)], remember: bool) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| {
                let v = match *k {
                    "device" => self.device(v, remember),
                    "source" => self
                        .sources
                        .get(*v)
                        .cloned()
                        .unwrap_or_else(|| v.to_string()),
                    _ => v.to_string(),
                };
                (k.to_string(), v)
            })
            .collect()
    }
}

fn plain(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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

    fn key(&self, label_pairs: &[(&str, &str)], remember: bool) -> LabelSet {
        if !label_pairs
            .iter()
            .any(|(k, _)| *k == "device" || *k == "source")
        {
            return plain(label_pairs);
        }
        self.labels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .show(label_pairs, remember)
    }

    /// Adds `by` (a count, rounded) to a counter. A name that is no
    /// counter family, or labels not the family's, are ignored (and fail
    /// a debug build's tests).
    pub fn add(&self, name: &'static str, label_pairs: &[(&str, &str)], by: f64) {
        let Some(family) = self.counters.get(name) else {
            debug_assert!(false, "{name} is not a counter");
            return;
        };
        let key = self.key(label_pairs, true);
        let by = if by.is_finite() && by > 0.0 {
            by.round() as u64
        } else {
            0
        };
        match family.get_metric_with_label_values(&values(name, COUNTERS, &key)) {
            Ok(c) => c.inc_by(by),
            Err(e) => debug_assert!(false, "{name}: {e}"),
        }
    }

    /// Sets a gauge. A gauge of a device beyond [`MAX_DEVICE_LABELS`]
    /// lands in [`OTHER_DEVICE`] (the last value set wins).
    pub fn set(&self, name: &'static str, label_pairs: &[(&str, &str)], value: f64) {
        let Some(family) = self.gauges.get(name) else {
            debug_assert!(false, "{name} is not a gauge");
            return;
        };
        let key = self.key(label_pairs, true);
        match family.get_metric_with_label_values(&values(name, GAUGES, &key)) {
            Ok(g) => g.set(value as i64),
            Err(e) => debug_assert!(false, "{name}: {e}"),
        }
    }

    /// Records one batch commit's duration.
    pub fn observe_commit(&self, seconds: f64) {
        self.commit_seconds.observe(seconds);
    }

    /// Sets the `attendd_outbox_pending` gauge from a count of
    /// undelivered messages per sink: a sink missing from `pending` that
    /// had some before shows 0. Sink names come from the configuration;
    /// at most [`MAX_SINK_LABELS`] get a series.
    pub fn set_outbox_pending(&self, pending: &[(String, i64)]) {
        let Some(family) = self.gauges.get("attendd_outbox_pending") else {
            return;
        };
        let mut seen = self.outbox_sinks.lock().unwrap_or_else(|e| e.into_inner());
        for (s, _) in pending {
            if seen.len() < MAX_SINK_LABELS {
                seen.insert(s.clone());
            }
        }
        for s in seen.iter() {
            let n = pending
                .iter()
                .find(|(p, _)| p == s)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            if let Ok(g) = family.get_metric_with_label_values(&[s.as_str()]) {
                g.set(n);
            }
        }
    }

    /// A value, for tests and health checks (labels as given to
    /// [`Metrics::add`]); 0 for a series never written.
    pub fn get(&self, name: &'static str, label_pairs: &[(&str, &str)]) -> f64 {
        let key = self.key(label_pairs, false);
        let (fams, specs) = if let Some(f) = self.counters.get(name) {
            (f.collect(), COUNTERS)
        } else if let Some(f) = self.gauges.get(name) {
            (f.collect(), GAUGES)
        } else {
            return 0.0;
        };
        let names = specs
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, l, _)| *l)
            .unwrap_or_default();
        let want: HashMap<&str, &str> = names
            .iter()
            .copied()
            .zip(values(name, specs, &key))
            .collect();
        fams.iter()
            .flat_map(|f| f.get_metric())
            .find(|m| {
                m.get_label().len() == want.len()
                    && m.get_label()
                        .iter()
                        .all(|l| want.get(l.name()) == Some(&l.value()))
            })
            .map(|m| m.get_counter().get_value() + m.get_gauge().get_value())
            .unwrap_or(0.0)
    }

    /// The Prometheus text exposition (format 0.0.4), process metrics
    /// read now.
    pub fn render(&self) -> String {
        self.read_process();
        let mut out = String::new();
        if TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            .is_err()
        {
            out.clear();
        }
        out
    }

    fn read_process(&self) {
        let p = proc_stats();
        let set = |g: &IntGauge, v: Option<i64>| {
            if let Some(v) = v {
                g.set(v);
            }
        };
        set(&self.process.resident, p.resident_bytes);
        set(&self.process.open_fds, p.open_fds);
        set(&self.process.max_fds, p.max_fds);
        set(&self.process.start_time, p.start_time);
    }
}

/// The values of `key` in the order of the family's label names; a label
/// the caller did not give is empty (Prometheus reads an empty label as
/// absent), one the family does not have is left out (and fails a debug
/// build's tests).
fn values<'a>(name: &str, specs: &[Spec], key: &'a LabelSet) -> Vec<&'a str> {
    let names = specs
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, l, _)| *l)
        .unwrap_or_default();
    debug_assert!(
        key.iter().all(|(k, _)| names.contains(&k.as_str())),
        "{name} has no label among {key:?}"
    );
    names
        .iter()
        .map(|n| {
            key.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        })
        .collect()
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What /proc says about this process; `None` where it cannot be read
/// (not Linux, or /proc hidden).
#[derive(Debug, Default, PartialEq)]
pub struct ProcStats {
    /// VmRSS, bytes.
    pub resident_bytes: Option<i64>,
    /// Entries of /proc/self/fd.
    pub open_fds: Option<i64>,
    /// The soft limit of open files.
    pub max_fds: Option<i64>,
    /// Unix time the process started, seconds.
    pub start_time: Option<i64>,
}

/// /proc's clock ticks (USER_HZ), 100 on every Linux architecture.
const USER_HZ: f64 = 100.0;

/// Reads [`ProcStats`] from /proc/self and /proc/stat.
pub fn proc_stats() -> ProcStats {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let status = read("/proc/self/status");
    let resident_bytes = status.as_deref().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
            .map(|kb| kb * 1024)
    });
    let open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|d| d.count() as i64);
    let max_fds = read("/proc/self/limits").and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok())
    });
    let stat = read("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is field 3, starttime 22.
    let after = stat
        .as_deref()
        .and_then(|s| s.rfind(')').map(|i| &s[i + 1..]))
        .map(|s| s.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_default();
    let field = |n: usize| after.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    let boot = read("/proc/stat").and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse::<i64>().ok())
    });
    let start_time = match (boot, field(22)) {
        (Some(b), Some(t)) => Some(b + (t / USER_HZ) as i64),
        _ => None,
    };
    ProcStats {
        resident_bytes,
        open_fds,
        max_fds,
        start_time,
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
            t.contains("attendd_punches_total{outcome=\"new\",source=\"mqtt[0]\"} 5\n"),
            "{t}"
        );
        assert!(
            t.contains("attendd_terminal_last_seen_seconds{device=\"ga\\\"te\"} 17\n"),
            "{t}"
        );
        assert!(t.contains("# TYPE attendd_punches_total counter\n"), "{t}");
    }

    /// Writes a sample of every family to a file and returns its text.
    fn sample() -> String {
        let m = Metrics::default();
        m.add(
            "attendd_punches_total",
            &[("source", "mqtt[0]"), ("outcome", "new")],
            3.0,
        );
        m.add("attendd_store_commits_total", &[], 1.0);
        m.add(
            "attendd_ignored_events_total",
            &[("source", "mqtt[0]")],
            1.0,
        );
        m.add(
            "attendd_ignored_events_total",
            &[("source", "zk_push[0]"), ("kind", "door")],
            2.0,
        );
        m.observe_commit(0.004);
        m.set(
            "attendd_terminal_last_seen_seconds",
            &[("device", "gate\\1 \"north\"\nline")],
            1_764_000_000.0,
        );
        m.set_outbox_pending(&[("dingtalk".into(), 4), ("site-mqtt".into(), 0)]);
        m.render()
    }

    /// Issue 17: `promtool check metrics` failed on the hand-written text
    /// (`attendd_store_commit_seconds_sum` as a counter). The reference
    /// parser reads the whole exposition, with a label value holding a
    /// backslash, quotes and a line feed. Skips, saying so, without
    /// promtool (Debian package `prometheus`), unless CI requires it.
    #[test]
    fn output_passes_promtool_check_metrics() {
        use std::io::Write as _;
        let text = sample();
        let child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var_os("ATTENDD_REQUIRE_SERVICES").is_none(),
                    "promtool is required under CI: {e}"
                );
                eprintln!("SKIPPED: promtool not found ({e}); apt-get install prometheus");
                return;
            }
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool: {said}\n{text}");
        assert!(said.trim().is_empty(), "promtool lint: {said}\n{text}");
    }

    /// The histogram replaces the `_sum` counter; the outbox gauge, build
    /// info and process metrics are there.
    #[test]
    fn new_families_are_rendered() {
        let t = sample();
        assert!(
            t.contains("# TYPE attendd_store_commit_seconds histogram\n"),
            "{t}"
        );
        assert!(t.contains("attendd_store_commit_seconds_count 1\n"), "{t}");
        assert!(
            t.contains("attendd_store_commit_seconds_bucket{le=\"0.004\"} 1\n"),
            "{t}"
        );
        assert!(
            !t.contains("attendd_store_commit_seconds_sum 0.004\n# TYPE"),
            "{t}"
        );
        assert!(
            t.contains("attendd_outbox_pending{sink=\"dingtalk\"} 4\n"),
            "{t}"
        );
        assert!(
            t.contains("attendd_outbox_pending{sink=\"site-mqtt\"} 0\n"),
            "{t}"
        );
        assert!(
            t.contains(&format!(
                "attendd_build_info{{arch=\"{}\",os=\"linux\",version=\"{}\"}} 1\n",
                std::env::consts::ARCH,
                env!("CARGO_PKG_VERSION")
            )),
            "{t}"
        );
        assert!(
            t.contains("{device=\"gate\\\\1 \\\"north\\\"\\nline\"} 1764000000\n"),
            "{t}"
        );
        for family in [
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_max_fds",
            "process_start_time_seconds",
        ] {
            assert!(t.contains(&format!("# TYPE {family} gauge\n")), "{t}");
        }
    }

    /// A sink whose messages were all delivered goes back to 0.
    #[test]
    fn outbox_pending_returns_to_zero() {
        let m = Metrics::default();
        m.set_outbox_pending(&[("hook".into(), 7)]);
        assert_eq!(m.get("attendd_outbox_pending", &[("sink", "hook")]), 7.0);
        m.set_outbox_pending(&[]);
        assert_eq!(m.get("attendd_outbox_pending", &[("sink", "hook")]), 0.0);
        assert!(
            m.render()
                .contains("attendd_outbox_pending{sink=\"hook\"} 0\n")
        );
    }

    /// /proc read for this test process: resident memory of at least a
    /// page, some descriptors (stdin …), a start time in this century
    /// and not after now.
    #[test]
    fn process_stats_come_from_proc() {
        let p = proc_stats();
        if !std::path::Path::new("/proc/self/stat").exists() {
            eprintln!("SKIPPED: no /proc");
            return;
        }
        assert!(p.resident_bytes.unwrap() >= 4096, "{p:?}");
        let fds = p.open_fds.unwrap();
        let _f = std::fs::File::open("/proc/self/status").unwrap();
        assert!(proc_stats().open_fds.unwrap() > fds - 1, "{p:?}");
        assert!(fds >= 3, "{p:?}");
        assert!(p.max_fds.unwrap() >= fds, "{p:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let start = p.start_time.unwrap();
        assert!(start > 946_684_800 && start <= now + 1, "{start} vs {now}");
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
