//! What the HTTP push sources share (`[[source.zk_push]]`,
//! `[[source.hik_http]]`): their configuration, the group committer that
//! turns many concurrent uploads into few store transactions, per-terminal
//! rate limits, request authentication and body inflation.
//!
//! The one promise of a push source is the one of every source: a terminal
//! hears "stored" (HTTP 200, `OK`) only after [`Sink::commit`] returned `Ok`
//! for what it sent. Everything else (a full queue, a failed commit, a rate
//! limit) is an HTTP error, after which the terminal keeps its records and
//! sends them again.

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, header};
use serde::Deserialize;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use super::{Received, Sink, SinkError};

/// Default largest request body: 2 MiB, room for a Hikvision multipart post
/// with its face photo, or a ZKTeco batch of some 30,000 ATTLOG lines.
pub const DEFAULT_MAX_BODY: usize = 2 * 1024 * 1024;

/// The environment variable that delays every push commit by that many
/// milliseconds. Fault injection for tests (kill the daemon between
/// receipt and commit); never set it in production.
pub const COMMIT_DELAY_ENV: &str = "ATTENDD_FAULT_PUSH_COMMIT_DELAY_MS";

/// Settings every HTTP push listener has.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Address to listen on, e.g. `0.0.0.0:8081` (or `127.0.0.1:8081`
    /// behind a reverse proxy).
    pub listen: String,
    /// Largest request body accepted, in bytes (after inflating a deflate
    /// body too); default 2 MiB. Larger requests get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Requests per second one terminal may make on average; 0 turns the
    /// limit off. Default 20. Over the limit a request gets 429 and the
    /// terminal retries later.
    #[serde(default = "default_rate")]
    pub rate_per_second: f64,
    /// Requests a terminal may make at once above the average; default 40.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// HTTP basic auth user name; with it every request must carry
    /// `Authorization: Basic …` with this name and the password.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the basic auth password (it stays out
    /// of this file).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Environment variable holding a shared secret; with it, every URL
    /// must start with `/<secret>/` (for terminals that cannot send basic
    /// auth: configure the server path as `…/<secret>`).
    #[serde(default)]
    pub path_secret_env: Option<String>,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed
    /// (for per-address rate limits); from any other peer the header is
    /// ignored, so a terminal cannot pick a fresh address per request.
    /// Default none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Most connections open at once on this listener; default 1024. One
    /// more waits until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_connections() -> usize {
    crate::http::DEFAULT_MAX_CONNECTIONS
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY
}
fn default_rate() -> f64 {
    20.0
}
fn default_burst() -> u32 {
    40
}

/// One terminal allowed on a `[[source.zk_push]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZkTerminal {
    /// The serial number the terminal sends as `SN=`.
    pub sn: String,
    /// What `/metrics` calls the terminal (`gate-1`): its serial number is
    /// its only credential and is never shown there. Default
    /// `zk_push[I].terminals[J]`, its place in this file.
    #[serde(default)]
    pub name: Option<String>,
    /// IANA zone of the terminal's wall clock; default the policy's zone.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// `[[source.zk_push]]`: ZKTeco PUSH/ADMS terminals (`/iclock/…`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZkPush {
    /// Listener settings.
    #[serde(flatten)]
    pub listener: RawListener,
    /// Seconds between a terminal's polls (`Delay` in the handshake);
    /// default 30.
    #[serde(default = "default_delay")]
    pub delay_seconds: u32,
    /// Ask terminals to push each punch at once (`Realtime=1`); default true.
    #[serde(default = "default_true")]
    pub realtime: bool,
    /// The terminals allowed; any other serial number is refused.
    #[serde(default)]
    pub terminals: Vec<RawZkTerminal>,
}

fn default_delay() -> u32 {
    30
}
fn default_true() -> bool {
    true
}

/// `[[source.hik_http]]`: Hikvision listening mode (or Dahua uploads with
/// `decoder = "dahua"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHikHttp {
    /// Listener settings.
    #[serde(flatten)]
    pub listener: RawListener,
    /// `hik-isapi` (default), `dahua` or `uniview`.
    #[serde(default = "default_hik")]
    pub decoder: String,
    /// Zone of the terminals' local times (Dahua `LocaleTime`); default the
    /// policy's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Decoder options.
    #[serde(default)]
    pub decoder_options: Option<toml::Table>,
}

fn default_hik() -> String {
    "hik-isapi".into()
}

/// Decoders a `[[source.hik_http]]` may use.
pub const HIK_HTTP_DECODERS: &[&str] = &["hik-isapi", "dahua", "uniview"];

fn check_zone(key: &str, tz: &Option<String>, push: &mut dyn FnMut(&str, String)) {
    if let Some(tz) = tz
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        push(
            &format!("{key}.timezone"),
            format!("{tz:?} is not an IANA time zone"),
        );
    }
}

impl RawListener {
    /// Reports every problem through `push(key, why)`.
    pub fn check(&self, key: &str, push: &mut dyn FnMut(&str, String)) {
        if self.listen.parse::<SocketAddr>().is_err() {
            push(
                &format!("{key}.listen"),
                format!("{:?} is not an address such as 0.0.0.0:8081", self.listen),
            );
        }
        if self.max_body_bytes < 1024 {
            push(
                &format!("{key}.max_body_bytes"),
                format!("{} is below 1024", self.max_body_bytes),
            );
        }
        if !(self.rate_per_second >= 0.0 && self.rate_per_second.is_finite()) {
            push(
                &format!("{key}.rate_per_second"),
                "must be 0 (off) or a positive number".into(),
            );
        }
        if self.rate_per_second > 0.0 && self.burst == 0 {
            push(&format!("{key}.burst"), "must be positive".into());
        }
        for (j, p) in self.trusted_proxies.iter().enumerate() {
            if p.trim().parse::<IpAddr>().is_err() {
                push(
                    &format!("{key}.trusted_proxies[{j}]"),
                    format!("{p:?} is not an IP address such as 127.0.0.1"),
                );
            }
        }
        if self.max_connections == 0 {
            push(&format!("{key}.max_connections"), "must be positive".into());
        }
        match (&self.username, &self.password_env) {
            (Some(_), None) => push(
                &format!("{key}.password_env"),
                "required with username".into(),
            ),
            (None, Some(_)) => push(
                &format!("{key}.username"),
                "required with password_env".into(),
            ),
            _ => {}
        }
        for (k, var) in [
            ("password_env", &self.password_env),
            ("path_secret_env", &self.path_secret_env),
        ] {
            if let Some(var) = var {
                match std::env::var(var) {
                    Err(_) => push(
                        &format!("{key}.{k}"),
                        format!("environment variable {var} is not set"),
                    ),
                    Ok(v) if k == "path_secret_env" && !path_safe(&v) => push(
                        &format!("{key}.{k}"),
                        format!(
                            "the value of {var} must be 8 to 128 letters, digits, '-' or '_' (it is a URL path segment)"
                        ),
                    ),
                    Ok(_) => {}
                }
            }
        }
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    pub fn proxies(&self) -> Vec<IpAddr> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }

    /// Resolves the secrets from the environment.
    pub fn auth(&self) -> Auth {
        let basic = self.username.as_ref().map(|u| {
            let p = self
                .password_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok())
                .unwrap_or_default();
            format!("Basic {}", base64(format!("{u}:{p}").as_bytes()))
        });
        let path_secret = self
            .path_secret_env
            .as_ref()
            .and_then(|v| std::env::var(v).ok())
            .filter(|s| path_safe(s));
        Auth { basic, path_secret }
    }
}

fn path_safe(s: &str) -> bool {
    (8..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl RawZkTerminal {
    /// The terminal's name in metrics: `name`, else its place in the
    /// configuration (`zk_push[0].terminals[1]`).
    pub fn label(&self, source: usize, index: usize) -> String {
        match &self.name {
            Some(n) => n.trim().to_string(),
            None => format!("zk_push[{source}].terminals[{index}]"),
        }
    }
}

/// Pairs of (what a label would say, what it says instead).
pub type Renames = Vec<(String, String)>;

/// What `/metrics` shows for the configured push terminals: (device id,
/// name) and (source name, `zk_push[I]:NAME`, or `zk_push[I].terminals[J]`
/// without a name), so that no serial number appears in a label.
pub fn metric_names(sources: &crate::config::RawSources) -> (Renames, Renames) {
    let mut devices = Vec::new();
    let mut names = Vec::new();
    for (i, z) in sources.zk_push.iter().enumerate() {
        for (j, t) in z.terminals.iter().enumerate() {
            let label = t.label(i, j);
            devices.push((t.sn.clone(), label.clone()));
            let shown = match &t.name {
                Some(_) => super::zk_push::source_name(i, &label),
                None => label.clone(),
            };
            // The serial number is the terminal's only credential: it is
            // never shown on /metrics, for attendance or access-control
            // (rtlog) uploads alike.
            names.push((
                super::zk_push::rtlog_source_name(i, &t.sn),
                format!("{shown}:rtlog"),
            ));
            names.push((super::zk_push::source_name(i, &t.sn), shown));
        }
    }
    (devices, names)
}

impl RawZkPush {
    /// Reports every problem through `push(key, why)`.
    pub fn check(&self, key: &str, push: &mut dyn FnMut(&str, String)) {
        self.listener.check(key, push);
        let mut names = std::collections::HashSet::new();
        for (j, t) in self.terminals.iter().enumerate() {
            let Some(n) = &t.name else { continue };
            let nk = format!("{key}.terminals[{j}].name");
            if n.trim().is_empty() || n.len() > 64 || n.chars().any(char::is_control) {
                push(
                    &nk,
                    format!("{n:?} is not a name of 1 to 64 printable characters"),
                );
            } else if n.trim() == t.sn.trim() {
                push(
                    &nk,
                    "is the serial number; /metrics is open and the serial number is the terminal's credential".into(),
                );
            } else if !names.insert(n.trim()) {
                push(&nk, format!("{n:?} is used twice"));
            }
        }
        if self.terminals.is_empty() {
            push(
                &format!("{key}.terminals"),
                "at least one terminal (sn, timezone) is required: unknown serial numbers are refused".into(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (j, t) in self.terminals.iter().enumerate() {
            let tk = format!("{key}.terminals[{j}]");
            if t.sn.trim().is_empty() || t.sn.len() > 64 || t.sn.chars().any(char::is_control) {
                push(
                    &format!("{tk}.sn"),
                    format!("{:?} is not a serial number", t.sn),
                );
            }
            if !seen.insert(t.sn.as_str()) {
                push(&format!("{tk}.sn"), format!("{:?} is listed twice", t.sn));
            }
            check_zone(&tk, &t.timezone, push);
        }
        if self.delay_seconds == 0 {
            push(&format!("{key}.delay_seconds"), "must be positive".into());
        }
    }
}

impl RawHikHttp {
    /// Reports every problem through `push(key, why)`.
    pub fn check(&self, key: &str, push: &mut dyn FnMut(&str, String)) {
        self.listener.check(key, push);
        if !HIK_HTTP_DECODERS.contains(&self.decoder.as_str()) {
            push(
                &format!("{key}.decoder"),
                format!(
                    "{:?} is not one of {}",
                    self.decoder,
                    HIK_HTTP_DECODERS.join(", ")
                ),
            );
        } else if let Err(e) = crate::ingest::decode::Decoder::with_options(
            &self.decoder,
            self.decoder_options.as_ref().unwrap_or(&toml::Table::new()),
        ) {
            push(&format!("{key}.decoder_options"), e.to_string());
        }
        check_zone(key, &self.timezone, push);
    }
}

/// Standard base64 with padding (RFC 4648 §4), for the basic auth header.
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The resolved credentials of a listener.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// The exact `Authorization` header value required, when basic auth is on.
    basic: Option<String>,
    /// The first path segment required, when a path secret is on.
    pub path_secret: Option<String>,
}

impl Auth {
    /// True when the request carries the basic auth credentials (or none
    /// are required).
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(want) = &self.basic else {
            return true;
        };
        let got = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        // Compare every byte so the time taken does not tell how much matched.
        got.len() == want.len()
            && got
                .iter()
                .zip(want.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// Most keys a [`RateLimiter`] tracks: past it, keys whose limit has
/// recovered are forgotten, and if none has, all are (a flood of new
/// addresses restarts the limits rather than grow memory).
pub const MAX_RATE_KEYS: usize = 10_000;

/// `governor`'s keyed limiter on clock `C`.
type Keyed<C> = governor::RateLimiter<
    String,
    governor::state::keyed::DefaultKeyedStateStore<String>,
    C,
    governor::middleware::NoOpMiddleware<<C as governor::clock::Clock>::Instant>,
>;

/// Per-terminal rate limits (serial number or peer address): `governor`'s
/// keyed GCRA limiter, bounded to [`MAX_RATE_KEYS`] keys.
pub struct RateLimiter<C: governor::clock::Clock = governor::clock::DefaultClock> {
    quota: Option<governor::Quota>,
    clock: C,
    inner: Mutex<Option<Keyed<C>>>,
}

impl<C: governor::clock::Clock + Clone> std::fmt::Debug for RateLimiter<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("quota", &self.quota)
            .field("keys", &self.len())
            .finish()
    }
}

impl RateLimiter {
    /// `rate` requests per second on average, `burst` at once; `rate` 0
    /// admits everything.
    pub fn new(rate: f64, burst: u32) -> Self {
        Self::with_clock(rate, burst, governor::clock::DefaultClock::default())
    }
}

impl<C: governor::clock::Clock + Clone> RateLimiter<C> {
    /// [`RateLimiter::new`] on another clock (tests use a fake one).
    pub fn with_clock(rate: f64, burst: u32, clock: C) -> Self {
        let quota = (rate.is_finite() && rate > 0.0)
            .then(|| Duration::from_secs_f64((1.0 / rate).min(1e9)))
            .and_then(governor::Quota::with_period)
            .map(|q| q.allow_burst(std::num::NonZeroU32::new(burst.max(1)).unwrap_or(NONZERO_ONE)));
        RateLimiter {
            quota,
            inner: Mutex::new(quota.map(|q| Self::fresh(q, &clock))),
            clock,
        }
    }

    fn fresh(q: governor::Quota, clock: &C) -> Keyed<C> {
        governor::RateLimiter::new(
            q,
            governor::state::keyed::DefaultKeyedStateStore::default(),
            clock.clone(),
        )
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.as_ref().map_or(0, |l| l.len())
    }

    /// True when no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `key` may make a request now.
    pub fn admit(&self, key: &str) -> bool {
        let Some(quota) = self.quota else {
            return true;
        };
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let l = g.get_or_insert_with(|| Self::fresh(quota, &self.clock));
        if l.len() >= MAX_RATE_KEYS {
            l.retain_recent();
            l.shrink_to_fit();
            if l.len() >= MAX_RATE_KEYS {
                *l = Self::fresh(quota, &self.clock);
            }
        }
        l.check_key(&key.to_string()).is_ok()
    }
}

const NONZERO_ONE: std::num::NonZeroU32 = match std::num::NonZeroU32::new(1) {
    Some(n) => n,
    None => unreachable!(),
};

/// Inflates a `Content-Encoding: deflate` body (zlib framing as HTTP means
/// it, or raw deflate as some firmware send) or a `gzip` body, refusing
/// more than `max` bytes of output. `Ok(None)` when the encoding is
/// identity.
pub fn inflate(headers: &HeaderMap, body: &[u8], max: usize) -> Result<Option<Vec<u8>>, String> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let read = |r: &mut dyn Read| -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.take(max as u64 + 1).read_to_end(&mut out)?;
        Ok(out)
    };
    let out = match enc.as_str() {
        "" | "identity" => return Ok(None),
        "deflate" => read(&mut flate2::read::ZlibDecoder::new(body))
            .or_else(|_| read(&mut flate2::read::DeflateDecoder::new(body)))
            .map_err(|e| format!("deflate body does not inflate: {e}"))?,
        "gzip" | "x-gzip" => read(&mut flate2::read::MultiGzDecoder::new(body))
            .map_err(|e| format!("gzip body does not inflate: {e}"))?,
        other => {
            return Err(format!(
                "Content-Encoding {other:?} is not supported (identity, gzip or deflate)"
            ));
        }
    };
    if out.len() > max {
        return Err(format!("inflated body is larger than {max} bytes"));
    }
    Ok(Some(out))
}

/// Reads the body of a request that was already admitted (authenticated,
/// its terminal known, within its rate): at most `max` bytes (413 beyond),
/// within the listener's body deadline (408 after it). Handlers take the
/// body only after admission, so that a client that is refused never gets
/// to hold a connection open by sending a body slowly.
pub async fn read_body(
    body: axum::body::Body,
    max: usize,
) -> Result<bytes::Bytes, axum::response::Response> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    match axum::body::to_bytes(body, max).await {
        Ok(b) => Ok(b),
        Err(e) => {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            let mut too_large = false;
            while let Some(c) = cause {
                if c.is::<http_body_util::LengthLimitError>() {
                    too_large = true;
                }
                cause = c.source();
            }
            Err(if too_large {
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("body is larger than {max} bytes\n"),
                )
                    .into_response()
            } else {
                (
                    StatusCode::REQUEST_TIMEOUT,
                    format!("body not received: {e}\n"),
                )
                    .into_response()
            })
        }
    }
}

/// Most uploads one store transaction takes.
const GROUP_MAX: usize = 256;
/// Most payload bytes one store transaction takes.
const GROUP_MAX_BYTES: usize = 16 * 1024 * 1024;

/// A resume marker to save once an upload is committed: (device, table,
/// stamp).
pub type Stamp = (String, String, String);

struct Job {
    messages: Vec<Received>,
    stamp: Option<Stamp>,
    done: oneshot::Sender<Result<(), SinkError>>,
}

/// Commits uploads of many concurrent requests together: one task takes
/// whatever uploads are waiting (up to 256, 16 MiB) and commits them in one
/// [`Sink::commit`], then saves their stamps in one transaction, then
/// answers each request. With SQLite's single writer and a synced commit,
/// that is what makes hundreds of terminals catching up at once fast.
#[derive(Clone, Debug)]
pub struct Committer {
    tx: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Job({} message(s))", self.messages.len())
    }
}

impl Committer {
    /// The committer and the task that runs it. The task ends when every
    /// clone of the committer is gone (the listeners stopped) and the
    /// queue is empty.
    pub fn new<S: Sink>(
        sink: Arc<S>,
        store: Option<crate::store::Store>,
    ) -> (Committer, impl Future<Output = ()> + Send) {
        let (tx, rx) = mpsc::channel::<Job>(1024);
        let delay = std::env::var(COMMIT_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis);
        (Committer { tx }, run_committer(sink, store, rx, delay))
    }

    /// Commits `messages`, then saves `stamp`; `Ok` once the messages are
    /// safe in the store (a stamp that could not be saved is logged: it
    /// only means re-sent, deduplicated records later).
    pub async fn commit(
        &self,
        messages: Vec<Received>,
        stamp: Option<Stamp>,
    ) -> Result<(), SinkError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job {
                messages,
                stamp,
                done,
            })
            .await
            .map_err(|_| SinkError("shutting down".into()))?;
        wait.await
            .map_err(|_| SinkError("commit abandoned (shutting down)".into()))?
    }
}

async fn run_committer<S: Sink>(
    sink: Arc<S>,
    store: Option<crate::store::Store>,
    mut rx: mpsc::Receiver<Job>,
    delay: Option<Duration>,
) {
    while let Some(first) = rx.recv().await {
        let mut bytes: usize = first.messages.iter().map(|m| m.payload.len()).sum();
        let mut jobs = vec![first];
        while jobs.len() < GROUP_MAX && bytes < GROUP_MAX_BYTES {
            match rx.try_recv() {
                Ok(j) => {
                    bytes += j.messages.iter().map(|m| m.payload.len()).sum::<usize>();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        if let Some(d) = delay {
            warn!(
                "fault injection ({COMMIT_DELAY_ENV}): {} upload(s) received, commit delayed by {d:?}",
                jobs.len()
            );
            tokio::time::sleep(d).await;
        }
        let batch: Vec<Received> = jobs
            .iter_mut()
            .flat_map(|j| std::mem::take(&mut j.messages))
            .collect();
        let result = if batch.is_empty() {
            Ok(())
        } else {
            sink.commit(&batch).await
        };
        match &result {
            Err(e) => warn!(
                "cannot commit {} push upload(s): {e}; the terminals will re-send",
                jobs.len()
            ),
            Ok(()) => {
                let stamps: Vec<Stamp> = jobs.iter_mut().filter_map(|j| j.stamp.take()).collect();
                if let Some(store) = &store
                    && let Err(e) = store.save_push_stamps(&stamps, chrono::Utc::now()).await
                {
                    warn!(
                        "cannot save {} push stamp(s): {e}; those terminals may re-send records (stored once)",
                        stamps.len()
                    );
                }
            }
        }
        for j in jobs {
            let _ = j.done.send(
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| SinkError(e.0.clone())),
            );
        }
    }
}

/// Remembers which refused keys were already logged, so a misconfigured
/// terminal polling every few seconds logs once, not forever.
#[derive(Debug, Default)]
pub struct LogOnce {
    seen: Mutex<std::collections::HashSet<String>>,
}

impl LogOnce {
    /// True the first time `key` is seen (up to 4096 keys are kept).
    pub fn first(&self, key: &str) -> bool {
        let mut s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if s.contains(key) || s.len() >= 4096 {
            return false;
        }
        s.insert(key.to_string())
    }
}

/// The peer's address for rate limits when the terminal has no id in the
/// URL. Behind a reverse proxy every request comes from the proxy, so when
/// the peer is one of `trusted` the last `X-Forwarded-For` address (the one
/// that proxy added; earlier ones came with the request) is used instead.
/// From any other peer the header is ignored.
pub fn peer_key(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> String {
    let ip = peer.ip().to_canonical();
    if trusted.iter().any(|t| t.to_canonical() == ip)
        && let Some(fwd) = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|v| v.trim().parse::<IpAddr>().ok())
            .next_back()
    {
        return fwd.to_string();
    }
    ip.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: a terminal's serial number (its only credential) never
    /// reaches /metrics, for access-control (rtlog) uploads too.
    #[test]
    fn metric_names_hide_serial_numbers_of_every_upload_kind() {
        let sources: crate::config::RawSources = toml::from_str(
            "[[zk_push]]\nlisten = \"127.0.0.1:0\"\n[[zk_push.terminals]]\nsn = \"CQZ7231460021\"\nname = \"front-door\"\n",
        )
        .unwrap();
        let (_, names) = metric_names(&sources);
        for source in [
            super::super::zk_push::source_name(0, "CQZ7231460021"),
            super::super::zk_push::rtlog_source_name(0, "CQZ7231460021"),
        ] {
            let shown = names
                .iter()
                .find(|(from, _)| *from == source)
                .map(|(_, to)| to.clone());
            let shown = shown.unwrap_or_else(|| panic!("{source} has no shown name"));
            assert!(!shown.contains("CQZ7231460021"), "{shown}");
        }
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn rate_limiter_refills() {
        let clock = governor::clock::FakeRelativeClock::default();
        let r = RateLimiter::with_clock(2.0, 2, clock.clone());
        assert!(r.admit("a"));
        assert!(r.admit("a"));
        assert!(!r.admit("a"));
        assert!(r.admit("b"));
        clock.advance(Duration::from_millis(600));
        assert!(r.admit("a"));
        assert!(RateLimiter::new(0.0, 1).admit("a"));
        assert!(RateLimiter::new(f64::NAN, 1).admit("a"));
    }

    /// A flood of new keys (peer addresses) cannot grow the limiter past
    /// its bound; keys whose limit has recovered make room.
    #[test]
    fn rate_limiter_keys_are_bounded() {
        let clock = governor::clock::FakeRelativeClock::default();
        let r = RateLimiter::with_clock(1.0, 1, clock.clone());
        for i in 0..MAX_RATE_KEYS + 500 {
            r.admit(&format!("10.0.{}.{}", i / 256, i % 256));
        }
        let len = || r.len();
        assert!(len() <= MAX_RATE_KEYS, "{}", len());
        // Later every key has recovered: a new one is admitted.
        clock.advance(Duration::from_secs(5));
        assert!(r.admit("192.168.1.1"));
        assert!(len() <= MAX_RATE_KEYS);
    }

    #[test]
    fn inflate_reads_zlib_and_raw_deflate_and_caps() {
        use std::io::Write;
        let text = b"Code=AccessControl;action=Pulse;data={}".repeat(10);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&text).unwrap();
        let zlib = z.finish().unwrap();
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(&text).unwrap();
        let raw = d.finish().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(inflate(&h, b"x", 10).unwrap(), None);
        h.insert(header::CONTENT_ENCODING, "deflate".parse().unwrap());
        assert_eq!(inflate(&h, &zlib, 1 << 20).unwrap().unwrap(), text);
        assert_eq!(inflate(&h, &raw, 1 << 20).unwrap().unwrap(), text);
        assert!(inflate(&h, &zlib, 16).unwrap_err().contains("larger"));
        let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        g.write_all(&text).unwrap();
        let gz = g.finish().unwrap();
        h.insert(header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(inflate(&h, &gz, 1 << 20).unwrap().unwrap(), text);
        assert!(inflate(&h, &gz, 16).unwrap_err().contains("larger"));
        h.insert(header::CONTENT_ENCODING, "br".parse().unwrap());
        assert!(inflate(&h, &zlib, 1 << 20).is_err());
    }

    /// Records batch sizes; fails while `fail` is set.
    #[derive(Default)]
    struct FakeSink {
        batches: Mutex<Vec<usize>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl Sink for FakeSink {
        async fn commit(&self, batch: &[Received]) -> Result<(), SinkError> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(SinkError("disk full".into()));
            }
            self.batches.lock().unwrap().push(batch.len());
            Ok(())
        }
    }

    fn msg(i: usize) -> Received {
        Received {
            source: Arc::from("zk_push[0]:A"),
            topic: None,
            payload: format!("{i}").into_bytes(),
            received_at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn committer_groups_uploads_and_reports_failures_to_every_waiter() {
        let sink = Arc::new(FakeSink::default());
        let (c, task) = Committer::new(sink.clone(), None);
        let task = tokio::spawn(task);
        let uploads: Vec<_> = (0..10)
            .map(|i| {
                let c = c.clone();
                tokio::spawn(async move { c.commit(vec![msg(i), msg(i + 100)], None).await })
            })
            .collect();
        for u in uploads {
            u.await.unwrap().unwrap();
        }
        assert_eq!(sink.batches.lock().unwrap().iter().sum::<usize>(), 20);
        sink.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let e = c.commit(vec![msg(1)], None).await.unwrap_err();
        assert_eq!(e.0, "disk full");
        // Stamps alone (OPERLOG uploads) need no sink commit.
        c.commit(Vec::new(), Some(("A".into(), "OPERLOG".into(), "5".into())))
            .await
            .unwrap();
        drop(c);
        task.await.unwrap();
    }

    /// Issue 13: `X-Forwarded-For` was believed from any loopback peer, so a
    /// random header reset the rate limit.
    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "6.6.6.6, 10.0.0.7".parse().unwrap());
        let proxy: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let other: SocketAddr = "10.0.0.9:5000".parse().unwrap();
        let trusted = ["127.0.0.1".parse().unwrap()];
        assert_eq!(peer_key(proxy, &h, &trusted), "10.0.0.7");
        assert_eq!(peer_key(proxy, &h, &[]), "127.0.0.1");
        assert_eq!(peer_key(other, &h, &trusted), "10.0.0.9");
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(peer_key(mapped, &h, &trusted), "10.0.0.7");
        assert_eq!(peer_key(proxy, &HeaderMap::new(), &trusted), "127.0.0.1");
    }

    #[test]
    fn auth_compares_the_whole_header() {
        let a = Auth {
            basic: Some(format!("Basic {}", base64(b"zk:s3cret"))),
            path_secret: None,
        };
        let mut h = HeaderMap::new();
        assert!(!a.allows(&h));
        h.insert(header::AUTHORIZATION, "Basic ems6czNjcmV0".parse().unwrap());
        assert!(a.allows(&h));
        h.insert(header::AUTHORIZATION, "Basic ems6czNjcmV".parse().unwrap());
        assert!(!a.allows(&h));
        assert!(Auth::default().allows(&HeaderMap::new()));
    }
}

/// Source names with their decoding, and source names with their device id.
pub type PushDecodings = (
    Vec<(Arc<str>, crate::pipeline::SourceDecoding)>,
    HashMap<Arc<str>, String>,
);

/// The pipeline decodings of the push sources, and the device id of each
/// ZKTeco terminal's source name (its serial number).
pub fn decodings(
    sources: &crate::config::RawSources,
    default_tz: chrono_tz::Tz,
) -> Result<PushDecodings, String> {
    use crate::ingest::decode::{Decoder, ZkLayout, ZkOptions};
    let zone = |tz: &Option<String>| {
        tz.as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(default_tz)
    };
    let mut out = Vec::new();
    let mut devices = HashMap::new();
    for (i, z) in sources.zk_push.iter().enumerate() {
        for t in &z.terminals {
            let name: Arc<str> = Arc::from(super::zk_push::source_name(i, &t.sn).as_str());
            let mut options = toml::Table::new();
            options.insert("layout".into(), toml::Value::String("push".into()));
            out.push((
                name.clone(),
                crate::pipeline::SourceDecoding {
                    decoder: Decoder::ZkAttlog(ZkOptions {
                        layout: ZkLayout::Push,
                    }),
                    tz: zone(&t.timezone),
                    options,
                },
            ));
            devices.insert(name, t.sn.clone());
            // Access-control firmware's `table=rtlog` uploads.
            let rtlog: Arc<str> = Arc::from(super::zk_push::rtlog_source_name(i, &t.sn).as_str());
            out.push((
                rtlog.clone(),
                crate::pipeline::SourceDecoding {
                    decoder: Decoder::ZkRtlog(Default::default()),
                    tz: zone(&t.timezone),
                    options: toml::Table::new(),
                },
            ));
            devices.insert(rtlog, t.sn.clone());
        }
    }
    for (i, h) in sources.hik_http.iter().enumerate() {
        let decoder = Decoder::with_options(
            &h.decoder,
            h.decoder_options.as_ref().unwrap_or(&toml::Table::new()),
        )
        .map_err(|e| format!("source.hik_http[{i}].decoder: {e}"))?;
        out.push((
            Arc::from(super::hik_http::source_name(i).as_str()),
            crate::pipeline::SourceDecoding {
                decoder,
                tz: zone(&h.timezone),
                options: h.decoder_options.clone().unwrap_or_default(),
            },
        ));
    }
    Ok((out, devices))
}

async fn bind(
    listen: &str,
    key: String,
) -> Result<(tokio::net::TcpListener, SocketAddr), crate::app::StartError> {
    use crate::app::StartError;
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| StartError::Other(format!("{key}: {listen:?} is not an address")))?;
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            key: key.clone(),
            source,
        })?;
    let local = l
        .local_addr()
        .map_err(|e| StartError::Other(format!("{key}: {e}")))?;
    Ok((l, local))
}

/// Binds every `[[source.zk_push]]` and `[[source.hik_http]]` listener and
/// spawns it, with one [`Committer`] for all, under `tracker`. A listen
/// address that cannot be bound is a [`crate::app::StartError::Listen`]
/// naming its config key.
pub async fn start<S: Sink>(
    config: &crate::config::Config,
    sink: Arc<S>,
    shared: &crate::app::Shared,
    tracker: &tokio_util::task::TaskTracker,
    shutdown: &tokio_util::sync::CancellationToken,
    listening: &mut Vec<String>,
) -> Result<(), crate::app::StartError> {
    let sources = &config.sources;
    if sources.zk_push.is_empty() && sources.hik_http.is_empty() {
        return Ok(());
    }
    let mut bound = Vec::new();
    for (i, z) in sources.zk_push.iter().enumerate() {
        let (l, local) = bind(&z.listener.listen, format!("source.zk_push[{i}].listen")).await?;
        bound.push((l, local));
    }
    for (i, h) in sources.hik_http.iter().enumerate() {
        let (l, local) = bind(&h.listener.listen, format!("source.hik_http[{i}].listen")).await?;
        bound.push((l, local));
    }
    let (devices, names) = metric_names(sources);
    shared.metrics.name_devices(devices);
    shared.metrics.name_sources(names);
    let (committer, task) = Committer::new(sink, shared.store.clone());
    tracker.spawn(task);
    let mut bound = bound.into_iter();
    let now = chrono::Utc::now();
    let serve = |l: tokio::net::TcpListener, router: axum::Router, name: String, max: usize| {
        let token = shutdown.clone();
        tracker.spawn(async move {
            let limits = crate::http::Limits::with_max_connections(max);
            if let Err(e) = crate::http::listener::serve(l, router, limits, token).await {
                tracing::error!("{name}: http push listener failed: {e}");
            }
        });
    };
    for (i, z) in sources.zk_push.iter().enumerate() {
        let Some((l, local)) = bound.next() else {
            break;
        };
        let name = format!("zk_push[{i}]");
        let router = super::zk_push::ZkPush::new(
            i,
            z,
            config.policy.tz,
            committer.clone(),
            shared.store.clone(),
            shared.metrics.clone(),
        )
        .router(z.listener.max_body_bytes);
        super::zk_push::announce(i, local, z.terminals.len());
        listening.push(format!("{name} on {local}"));
        shared
            .health
            .set(&name, true, format!("listening on {local}"), now);
        serve(l, router, name, z.listener.max_connections);
    }
    for (i, h) in sources.hik_http.iter().enumerate() {
        let Some((l, local)) = bound.next() else {
            break;
        };
        let name = super::hik_http::source_name(i);
        let router = super::hik_http::HikHttp::new(i, h, committer.clone(), shared.metrics.clone())
            .with_catch_up(shared.catch_up.clone())
            .router();
        super::hik_http::announce(i, local, &h.decoder);
        listening.push(format!("{name} on {local}"));
        shared
            .health
            .set(&name, true, format!("listening on {local}"), now);
        serve(l, router, name, h.listener.max_connections);
    }
    Ok(())
}

#[cfg(test)]
mod config_tests {
    use super::*;

    #[test]
    fn flattened_listener_keys_and_unknown_keys() {
        let z: RawZkPush = toml::from_str(
            "listen = \"127.0.0.1:0\"\nrate_per_second = 5\n[[terminals]]\nsn = \"A1\"\ntimezone = \"Europe/Istanbul\"\n",
        )
        .unwrap();
        assert_eq!(z.listener.rate_per_second, 5.0);
        assert_eq!(z.listener.max_body_bytes, DEFAULT_MAX_BODY);
        assert_eq!(z.terminals[0].sn, "A1");
        let e = toml::from_str::<RawZkPush>("listen = \"127.0.0.1:0\"\nlisen = 1\n").unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
        let e = toml::from_str::<RawHikHttp>("listen = \"127.0.0.1:0\"\ncolour = 1\n").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let mut problems = Vec::new();
        z.check("source.zk_push[0]", &mut |k, w| {
            problems.push(format!("{k}: {w}"))
        });
        assert!(problems.is_empty(), "{problems:?}");
        let bad: RawHikHttp = toml::from_str("listen = \"nowhere\"\ndecoder = \"json\"\n").unwrap();
        bad.check("source.hik_http[0]", &mut |k, w| {
            problems.push(format!("{k}: {w}"))
        });
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
