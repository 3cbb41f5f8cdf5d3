//! What the pull sources share: the cursor they store with their punches,
//! their state for `/healthz` and `/metrics`, and a multipart reader for
//! the live event streams (Hikvision `alertStream`, Dahua `attach`).
//!
//! A pull has no one to acknowledge: the cursor is the acknowledgement. It
//! is the time of the last record read plus the device's counter (serial
//! number, or how many records carried that time) and an epoch that grows
//! each time the device resets its counter or clears its log. Catch-up
//! always starts at the cursor's time (inclusive), so a restart re-reads a
//! few records that the dedupe keys absorb, never skips one.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::health::Health;
use crate::metrics::Metrics;
use crate::source::{Backoff, Received, SinkError};

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

/// A boxed future, so that [`PullSink`] can be used as a trait object.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where pull sources deliver: the punches of a batch and the cursor after
/// it are committed in one transaction, so the cursor never runs ahead of
/// what is stored (the pipeline implements it).
pub trait PullSink: Send + Sync + std::fmt::Debug + 'static {
    /// Commits `batch` with `ack`'s cursor; `Ok` means both are durable.
    fn commit_pull<'a>(
        &'a self,
        batch: &'a [Received],
        ack: &'a PullAck<'a>,
    ) -> BoxFuture<'a, Result<(), SinkError>>;

    /// The stored cursor of `source` on terminal `device`.
    fn pull_cursor<'a>(
        &'a self,
        source: &'a str,
        device: &'a str,
    ) -> BoxFuture<'a, Result<Option<String>, SinkError>>;
}

/// A source's position in one terminal's log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Time of the last record read.
    pub time: Option<DateTime<Utc>>,
    /// The device's counter at that record (serial number; for ZKTeco,
    /// how many records carried `time`).
    pub count: i64,
    /// How many times the device was seen to reset its counter.
    pub epoch: u32,
}

impl Cursor {
    /// Reads a stored cursor; an unreadable one starts over (the dedupe keys
    /// absorb what is read again).
    pub fn parse(s: &str) -> Cursor {
        serde_json::from_str(s).unwrap_or_default()
    }

    /// The stored form.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The suffix of event ids in this epoch (none before the first reset).
    pub fn suffix(&self) -> Option<String> {
        (self.epoch > 0).then(|| format!("~{}", self.epoch))
    }

    /// Takes in one record with a device counter; returns true when the
    /// record shows the device reset its counter (a lower counter at a
    /// later time), in which case the epoch has grown.
    pub fn advance(&mut self, time: DateTime<Utc>, count: i64) -> bool {
        let reset = match self.time {
            Some(t) => count < self.count && time > t,
            None => false,
        };
        if reset {
            self.epoch = self.epoch.saturating_add(1);
        }
        if reset
            || self
                .time
                .is_none_or(|t| time > t || (time == t && count >= self.count))
        {
            self.time = Some(time);
            self.count = count;
        }
        reset
    }

    /// Whether the next counter `count` leaves a hole after this cursor.
    pub fn gap_before(&self, count: i64) -> bool {
        self.time.is_some()
            && self.count > 0
            && self.count.checked_add(1).is_some_and(|next| count > next)
    }
}

/// Catch-up requests by device id (a terminal's serial number): a
/// Hikvision pull registers the terminal it reads; a push listener that
/// sees a `serialNo` gap from the same terminal asks that pull to search
/// the terminal's log for what the pushes missed.
#[derive(Debug, Default)]
pub struct CatchUpSignals {
    by_device: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Notify>>>,
}

impl CatchUpSignals {
    /// The signal of `device`, made on first use (by either side).
    pub fn register(&self, device: &str) -> Arc<tokio::sync::Notify> {
        let mut m = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        m.entry(device.to_string()).or_default().clone()
    }

    /// Asks the pull reading `device` to catch up; false when no pull reads
    /// it (the gap is only counted).
    pub fn ask(&self, device: &str) -> bool {
        let m = self.by_device.lock().unwrap_or_else(|e| e.into_inner());
        match m.get(device) {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }
}

/// A pull source's handle on the daemon: where it commits and reports.
#[derive(Clone, Debug)]
pub struct PullCtx {
    /// `hik_pull[0]`, …
    pub name: Arc<str>,
    /// Commits punches with cursors (the pipeline).
    pub sink: Arc<dyn PullSink>,
    /// `/healthz`.
    pub health: Option<Arc<Health>>,
    /// `/metrics`.
    pub metrics: Option<Arc<Metrics>>,
    /// Catch-up requests from push listeners, by device id.
    pub catch_up: Arc<CatchUpSignals>,
}

impl PullCtx {
    /// Reports the source up or down.
    pub fn state(&self, up: bool, detail: impl Into<String>) {
        if let Some(h) = &self.health {
            h.set(&self.name, up, detail, crate::clock::now());
        }
        if let Some(m) = &self.metrics {
            m.set(
                "attendd_pull_up",
                &[("source", &self.name)],
                if up { 1.0 } else { 0.0 },
            );
        }
    }

    /// Counts an error (wrong password, lost connection).
    pub fn error(&self, kind: &str) {
        if let Some(m) = &self.metrics {
            m.add(
                "attendd_pull_errors_total",
                &[("source", &self.name), ("kind", kind)],
                1.0,
            );
        }
    }

    /// Counts a catch-up run and the records it read.
    pub fn caught_up(&self, records: usize) {
        if let Some(m) = &self.metrics {
            m.add(
                "attendd_pull_catchups_total",
                &[("source", &self.name)],
                1.0,
            );
            m.add(
                "attendd_pull_records_total",
                &[("source", &self.name), ("path", "catchup")],
                records as f64,
            );
        }
    }

    /// Counts a live record.
    pub fn live(&self) {
        if let Some(m) = &self.metrics {
            m.add(
                "attendd_pull_records_total",
                &[("source", &self.name), ("path", "live")],
                1.0,
            );
        }
    }

    /// The stored cursor on `device`.
    pub async fn cursor(&self, device: &str) -> Result<Cursor, String> {
        self.sink
            .pull_cursor(&self.name, device)
            .await
            .map(|c| c.as_deref().map(Cursor::parse).unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    /// Commits `payloads` (each one record or page) with `cursor`, retrying
    /// with backoff until stored; false when `stop` fired first.
    pub async fn commit(
        &self,
        device: &str,
        payloads: Vec<Vec<u8>>,
        cursor: &Cursor,
        stop: &tokio_util::sync::CancellationToken,
    ) -> bool {
        let now = crate::clock::now();
        let batch: Vec<Received> = payloads
            .into_iter()
            .map(|payload| Received {
                source: self.name.clone(),
                topic: None,
                payload,
                received_at: now,
            })
            .collect();
        let encoded = cursor.encode();
        let suffix = cursor.suffix();
        let ack = PullAck {
            source: &self.name,
            device,
            cursor: &encoded,
            event_suffix: suffix.as_deref(),
        };
        let mut backoff = Backoff::new(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(10),
        );
        loop {
            match self.sink.commit_pull(&batch, &ack).await {
                Ok(()) => {
                    if let (Some(m), Some(t)) = (&self.metrics, cursor.time) {
                        m.set(
                            "attendd_pull_cursor_seconds",
                            &[("source", &self.name), ("device", device)],
                            t.timestamp() as f64,
                        );
                    }
                    return true;
                }
                Err(e) => {
                    let d = backoff.next_delay();
                    tracing::warn!(source = %self.name, "cannot commit: {e}; retrying in {d:.1?}");
                    tokio::select! {
                        _ = stop.cancelled() => return false,
                        _ = tokio::time::sleep(d) => {}
                    }
                }
            }
        }
    }
}

/// The pipeline decodings of every pull source, by source name.
pub fn decodings(
    sources: &crate::config::RawSources,
    default_tz: chrono_tz::Tz,
) -> Vec<(Arc<str>, super::SourceDecoding)> {
    let zone = |tz: &Option<String>| {
        tz.as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(default_tz)
    };
    let mut out = Vec::new();
    for (i, z) in sources.zk_pull.iter().enumerate() {
        out.push((
            Arc::from(super::zk_pull::source_name(i).as_str()),
            super::zk_pull::decoding(zone(&z.timezone)),
        ));
    }
    for (i, h) in sources.hik_pull.iter().enumerate() {
        out.push((
            Arc::from(super::hik_pull::source_name(i).as_str()),
            super::hik_pull::decoding(zone(&h.timezone)),
        ));
    }
    for (i, d) in sources.dahua_pull.iter().enumerate() {
        out.push((
            Arc::from(super::dahua_pull::source_name(i).as_str()),
            super::dahua_pull::decoding(zone(&d.timezone)),
        ));
    }
    out
}

/// One line per pull source for `attendd check-config`.
pub fn describe(sources: &crate::config::RawSources) -> Vec<String> {
    let mut out = Vec::new();
    for z in &sources.zk_pull {
        out.push(format!(
            "source zk_pull: {} ({}) every {} s",
            z.address, z.transport, z.poll_seconds
        ));
    }
    for h in &sources.hik_pull {
        out.push(format!("source hik_pull: {} as {}", h.url, h.username));
    }
    for d in &sources.dahua_pull {
        out.push(format!("source dahua_pull: {} as {}", d.url, d.username));
    }
    out
}

/// What every pull source takes from the daemon.
#[derive(Clone, Debug)]
pub struct PullShared {
    /// Commits punches with cursors (the pipeline).
    pub sink: Arc<dyn PullSink>,
    /// `/healthz`.
    pub health: Arc<Health>,
    /// `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Catch-up requests from push listeners, by device id.
    pub catch_up: Arc<CatchUpSignals>,
}

/// Starts every pull source; each runs until `stop` fires.
pub fn spawn(
    sources: &crate::config::RawSources,
    default_tz: chrono_tz::Tz,
    shared: &PullShared,
    tracker: &tokio_util::task::TaskTracker,
    stop: &tokio_util::sync::CancellationToken,
) {
    let make = |name: &str| {
        let cx = PullCtx {
            name: Arc::from(name),
            sink: shared.sink.clone(),
            health: Some(shared.health.clone()),
            metrics: Some(shared.metrics.clone()),
            catch_up: shared.catch_up.clone(),
        };
        cx.state(false, "connecting");
        cx
    };
    super::zk_pull::spawn_all(&sources.zk_pull, default_tz, make, tracker, stop);
    super::hik_pull::spawn_all(&sources.hik_pull, default_tz, make, tracker, stop);
    super::dahua_pull::spawn_all(&sources.dahua_pull, make, tracker, stop);
}

/// `attendd terminal …`: ask a pulled terminal directly.
#[derive(Debug, clap::Subcommand)]
pub enum TerminalCommand {
    /// List a terminal's users (ZKTeco `[[source.zk_pull]]`): user id
    /// (the PIN punches carry), name, card number, privilege.
    Users(TerminalUsersArgs),
}

/// `attendd terminal users`.
#[derive(Debug, clap::Args)]
pub struct TerminalUsersArgs {
    /// The source: `zk_pull[0]`, or the terminal's configured address.
    pub source: String,
    /// Also write an employees.csv (employee_id,name,team,supervisor,alias;
    /// the card number as alias) to start HR's table from.
    #[arg(long, value_name = "FILE")]
    pub write_employees: Option<std::path::PathBuf>,
    /// Daemon configuration; default $ATTENDD_CONFIG, else /etc/attendd/attendd.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `attendd terminal …`; the exit code.
pub fn run_terminal(
    c: TerminalCommand,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let TerminalCommand::Users(a) = c;
    let path = crate::config::config_path(a.config.as_deref());
    let config = match crate::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return ExitCode::from(1);
        }
    };
    let found = config
        .sources
        .zk_pull
        .iter()
        .enumerate()
        .find(|(i, z)| super::zk_pull::source_name(*i) == a.source || z.address == a.source);
    let Some((i, raw)) = found else {
        let known: Vec<String> = (0..config.sources.zk_pull.len())
            .map(super::zk_pull::source_name)
            .collect();
        let _ = writeln!(
            err,
            "error: {}: no [[source.zk_pull]] named {:?} (known: {}); user lists are read from ZKTeco terminals only",
            path.display(),
            a.source,
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        return ExitCode::from(1);
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let (serial, users) = match rt.block_on(super::zk_pull::read_users(raw)) {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(
                err,
                "error: {} ({}): {e}",
                super::zk_pull::source_name(i),
                raw.address
            );
            return ExitCode::from(2);
        }
    };
    for u in &users {
        let r = if a.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({"device_id": serial, "uid": u.uid, "user_id": u.user_id,
                    "name": u.name, "card": u.card, "privilege": u.privilege})
            )
        } else {
            writeln!(
                out,
                "{:<12} {:<24} {:>10} {:>3}",
                u.user_id, u.name, u.card, u.privilege
            )
        };
        if r.is_err() {
            return ExitCode::from(2);
        }
    }
    if let Some(file) = &a.write_employees {
        let mut w = csv::Writer::from_writer(Vec::new());
        let _ = w.write_record(["employee_id", "name", "team", "supervisor", "alias"]);
        for u in &users {
            let card = if u.card == 0 {
                String::new()
            } else {
                u.card.to_string()
            };
            let _ = w.write_record([u.user_id.as_str(), u.name.as_str(), "", "", card.as_str()]);
        }
        let bytes = w.into_inner().unwrap_or_default();
        if let Err(e) = std::fs::write(file, bytes) {
            let _ = writeln!(err, "error: writing {}: {e}", file.display());
            return ExitCode::from(1);
        }
        let _ = writeln!(
            err,
            "wrote {} user(s) of {serial} to {}",
            users.len(),
            file.display()
        );
    }
    ExitCode::SUCCESS
}

/// Longest part kept from a live stream; a longer one is skipped (JPEG
/// snapshots of face terminals can be large, events are small).
pub const MAX_PART: usize = 2 << 20;

/// One part of a multipart stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Its `Content-Type`, lower case, empty when absent.
    pub content_type: String,
    /// Its body.
    pub body: Vec<u8>,
}

/// Cuts a `multipart/mixed` (or `x-mixed-replace`) byte stream into parts,
/// across arbitrary read boundaries. A part announced with
/// `Content-Length` is complete after that many bytes; one without ends at
/// the next boundary. A part cut off by a closed stream is never returned.
#[derive(Debug)]
pub struct Multipart {
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    /// Bytes dropped to resynchronise (noise, oversized parts).
    pub skipped: usize,
}

/// The boundary of a `Content-Type: multipart/…; boundary=…` header.
pub fn boundary(content_type: &str) -> Option<String> {
    content_type.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Multipart {
    /// A reader for parts separated by `--boundary` (a boundary given with
    /// its leading dashes is accepted as is).
    pub fn new(boundary: &str) -> Multipart {
        let b = boundary.strip_prefix("--").unwrap_or(boundary);
        Multipart {
            delimiter: format!("--{b}").into_bytes(),
            buf: Vec::new(),
            skipped: 0,
        }
    }

    /// Feeds bytes; complete parts are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Part>) {
        self.buf.extend_from_slice(bytes);
        loop {
            let Some(start) = find(&self.buf, &self.delimiter) else {
                // Keep a tail that may be the start of a delimiter.
                let keep = self.delimiter.len().min(self.buf.len());
                let drop = self.buf.len() - keep;
                self.skipped += drop;
                self.buf.drain(..drop);
                return;
            };
            let after = start + self.delimiter.len();
            // The header block ends with an empty line.
            let Some(hdr_end) = find(&self.buf[after..], b"\r\n\r\n")
                .map(|i| (i, 4))
                .or_else(|| find(&self.buf[after..], b"\n\n").map(|i| (i, 2)))
            else {
                if self.buf.len() - start > 64 * 1024 {
                    self.skipped += self.buf.len();
                    self.buf.clear();
                }
                return;
            };
            let headers = String::from_utf8_lossy(&self.buf[after..after + hdr_end.0]).into_owned();
            let body_start = after + hdr_end.0 + hdr_end.1;
            let mut content_type = String::new();
            let mut length: Option<usize> = None;
            for line in headers.lines() {
                if let Some((k, v)) = line.split_once(':') {
                    let k = k.trim();
                    if k.eq_ignore_ascii_case("content-type") {
                        content_type = v.trim().to_ascii_lowercase();
                    } else if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().ok();
                    }
                }
            }
            let (body_end, next) = match length {
                Some(n) if n <= MAX_PART => {
                    if self.buf.len() < body_start + n {
                        return;
                    }
                    (body_start + n, body_start + n)
                }
                _ => match find(&self.buf[body_start..], &self.delimiter) {
                    Some(i) => {
                        let mut end = body_start + i;
                        if self.buf[..end].ends_with(b"\r\n") {
                            end -= 2;
                        } else if self.buf[..end].ends_with(b"\n") {
                            end -= 1;
                        }
                        (end.max(body_start), body_start + i)
                    }
                    None => {
                        if self.buf.len() - body_start > MAX_PART {
                            // Too long: skip it and look for the next part.
                            self.skipped += self.buf.len() - start;
                            let tail = self.buf.split_off(self.buf.len() - self.delimiter.len());
                            self.buf = tail;
                        }
                        return;
                    }
                },
            };
            let body = self.buf[body_start..body_end].to_vec();
            self.buf.drain(..next);
            if !headers.trim().is_empty() || !body.is_empty() {
                out.push(Part { content_type, body });
            }
        }
    }
}

/// Why a pull session ended.
pub(crate) enum Stop {
    /// Shut down.
    Shutdown,
    /// Retry after a delay; the reason and the error kind counted in
    /// `attendd_pull_errors_total`.
    Retry(String, &'static str),
}

/// A failed HTTP exchange with a terminal, as a retry.
pub(crate) fn http_stop(e: super::digest::HttpError) -> Stop {
    match e {
        e @ (super::digest::HttpError::Unauthorized { .. }
        | super::digest::HttpError::BasicOnly { .. }) => Stop::Retry(e.to_string(), "auth"),
        e => Stop::Retry(e.to_string(), "connection"),
    }
}

/// The digest client of an HTTP pull source, or `None` (reported in its
/// health) when the URL cannot be used.
pub(crate) fn http_client(
    cx: &PullCtx,
    url: &str,
    username: &str,
    password: &Option<String>,
    password_env: &Option<String>,
) -> Option<super::digest::Client> {
    let endpoint = match super::digest::Endpoint::parse(url) {
        Ok(e) => e,
        Err(e) => {
            cx.state(false, format!("{}: url: {e}", cx.name));
            return None;
        }
    };
    let password = super::hik_pull::resolve_password(password, password_env);
    Some(super::digest::Client::new(
        endpoint,
        username,
        &password,
        std::time::Duration::from_secs(20),
    ))
}

/// After a failed session: counts and logs it, shows it in the source's
/// health and waits the backoff's next delay. False when shutting down.
pub(crate) async fn retry_after(
    cx: &PullCtx,
    stop: &tokio_util::sync::CancellationToken,
    backoff: &mut Backoff,
    why: String,
    kind: &'static str,
) -> bool {
    cx.error(kind);
    let wait = backoff.next_delay();
    let msg = format!("{}: {why}; retrying in {wait:.1?}", cx.name);
    tracing::warn!(source = %cx.name, "{msg}");
    cx.state(false, msg);
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(wait) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn cursor_advances_and_detects_resets() {
        let mut c = Cursor::default();
        assert!(!c.advance(t("2026-11-02T00:00:00Z"), 10));
        assert!(!c.advance(t("2026-11-02T00:00:05Z"), 11));
        // Re-read of an older record: the cursor does not move back.
        assert!(!c.advance(t("2026-11-02T00:00:00Z"), 10));
        assert_eq!(c.count, 11);
        assert!(!c.gap_before(12));
        assert!(c.gap_before(14));
        // Later time, lower counter: the device restarted its numbering.
        assert!(c.advance(t("2026-11-02T01:00:00Z"), 1));
        assert_eq!((c.epoch, c.count), (1, 1));
        assert_eq!(c.suffix().as_deref(), Some("~1"));
        assert_eq!(Cursor::parse(&c.encode()), c);
        assert_eq!(Cursor::parse("garbage"), Cursor::default());
    }

    /// Counters at the edge of their range neither overflow nor report a
    /// gap for ever.
    #[test]
    fn counters_at_their_limits_do_not_wrap() {
        let mut c = Cursor::default();
        assert!(!c.advance(t("2026-11-02T00:00:00Z"), i64::MAX));
        assert!(!c.gap_before(i64::MAX));
        assert!(!c.gap_before(i64::MIN));
        c.epoch = u32::MAX;
        assert!(c.advance(t("2026-11-02T01:00:00Z"), 1));
        assert_eq!(c.epoch, u32::MAX);
    }

    #[test]
    fn multipart_across_reads_with_and_without_length() {
        let stream = b"--MIME_boundary\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}\r\n--MIME_boundary\r\nContent-Type: text/plain\r\n\r\nCode=AccessControl;action=Pulse\r\n--MIME_boundary\r\n";
        for step in [1, 3, 7, stream.len()] {
            let mut m = Multipart::new("MIME_boundary");
            let mut out = Vec::new();
            for c in stream.chunks(step) {
                m.push(c, &mut out);
            }
            assert_eq!(out.len(), 2, "step {step}: {out:?}");
            assert_eq!(out[0].body, b"{\"a\":1}");
            assert_eq!(out[0].content_type, "application/json");
            assert_eq!(out[1].body, b"Code=AccessControl;action=Pulse");
        }
    }

    #[test]
    fn multipart_cut_mid_part_returns_nothing_of_it() {
        let mut m = Multipart::new("--myboundary");
        let mut out = Vec::new();
        m.push(
            b"--myboundary\r\nContent-Type: text/plain\r\nContent-Length: 40\r\n\r\nCode=Acc",
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(
            boundary("multipart/mixed; boundary=\"MIME_boundary\"").as_deref(),
            Some("MIME_boundary")
        );
        assert_eq!(
            boundary("multipart/x-mixed-replace;boundary=myboundary").as_deref(),
            Some("myboundary")
        );
        assert_eq!(boundary("text/plain"), None);
    }

    #[test]
    fn multipart_noise_is_bounded() {
        let mut m = Multipart::new("b");
        let mut out = Vec::new();
        for _ in 0..100 {
            m.push(&[b'x'; 10_000], &mut out);
        }
        assert!(m.buf.len() <= 8 && out.is_empty());
    }
}
