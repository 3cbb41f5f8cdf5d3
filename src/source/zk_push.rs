//! `[[source.zk_push]]`: ZKTeco PUSH/ADMS terminals (`devices.md` §1.1).
//!
//! The terminal is the HTTP client. It shakes hands with
//! `GET /iclock/cdata?SN=…&options=all` and gets its options back (the
//! resume stamps, which tables to upload, its time zone, how often to
//! poll); it uploads `POST /iclock/cdata?SN=…&table=ATTLOG&Stamp=…` with
//! one punch per line and keeps the batch until it hears `OK`. So `OK:n` is
//! answered only after the lines are committed (decoded punches stored,
//! bad lines quarantined) and the stamp saved; anything else makes the
//! terminal re-send, which the store's dedupe key absorbs.
//!
//! `OPERLOG` uploads (users, operations) are answered `OK:n` and their
//! `OpStamp` kept; `ATTPHOTO`, `options` and other tables are acknowledged
//! and ignored, counted per table and logged once per terminal and table.
//! `GET …&table=RemoteAtt` (a user typed a PIN the terminal does not
//! know) gets an empty remote-attendance answer: attendd does not hand out
//! users. `/iclock/getrequest` answers `OK` (no commands),
//! `/iclock/devicecmd` and `/iclock/ping` answer `OK`. Serial numbers not
//! configured are refused with 403, logged once per serial number.
//!
//! Access-control firmware ("Security PUSH", `DeviceType=acc`: SpeedFace,
//! ProFace) registers first: the handshake with `DeviceType=acc` answers
//! `registry=ok` and a `RegistryCode`, `POST /iclock/registry` answers the
//! code, `POST /iclock/push` the options, `GET /iclock/rtdata?type=time`
//! the server time; its events arrive as `table=rtlog` and are decoded by
//! `zk-rtlog` under the source `zk_push[i]:SN:rtlog`. Bodies sent with
//! `Content-Encoding: gzip` or `deflate` are inflated first, within the
//! body limit.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{Offset, TimeZone, Utc};
use chrono_tz::Tz;
use tracing::{info, warn};

use super::Received;
use super::push::{Auth, Committer, LogOnce, RateLimiter, RawZkPush};
use crate::metrics::Metrics;
use crate::store::Store;

/// The tables whose stamps a handshake hands back, with the option names
/// new and old firmware read.
const STAMPED: &[(&str, &str, &str)] = &[
    ("ATTLOG", "ATTLOGStamp", "Stamp"),
    ("OPERLOG", "OPERLOGStamp", "OpStamp"),
    ("ATTPHOTO", "ATTPHOTOStamp", "PhotoStamp"),
];

/// The pipeline source name of one terminal of `source.zk_push[index]`:
/// `zk_push[0]:CQZ7231460021`. Punches from it are decoded in its zone and
/// carry its serial number as device id.
pub fn source_name(index: usize, sn: &str) -> String {
    format!("zk_push[{index}]:{sn}")
}

/// The pipeline source name of one terminal's `rtlog` uploads
/// (access-control firmware): `zk_push[0]:CQZ7231460021:rtlog`.
pub fn rtlog_source_name(index: usize, sn: &str) -> String {
    format!("zk_push[{index}]:{sn}:rtlog")
}

/// One allowed terminal.
#[derive(Debug)]
struct Terminal {
    source: Arc<str>,
    rtlog: Arc<str>,
    tz: Tz,
}

/// What the handlers of one listener share.
#[derive(Debug)]
pub struct ZkPush {
    name: String,
    terminals: HashMap<String, Terminal>,
    committer: Committer,
    store: Option<Store>,
    limiter: RateLimiter,
    auth: Auth,
    refused: LogOnce,
    ignored: LogOnce,
    max_body: usize,
    delay: u32,
    realtime: bool,
    metrics: Arc<Metrics>,
}

impl ZkPush {
    /// The listener `source.zk_push[index]`; terminals without a zone use
    /// `default_tz`. Stamps are kept in `store` (none: every handshake says
    /// 0, for tests without a store).
    pub fn new(
        index: usize,
        raw: &RawZkPush,
        default_tz: Tz,
        committer: Committer,
        store: Option<Store>,
        metrics: Arc<Metrics>,
    ) -> ZkPush {
        let terminals = raw
            .terminals
            .iter()
            .map(|t| {
                let tz = t
                    .timezone
                    .as_deref()
                    .and_then(|z| z.parse().ok())
                    .unwrap_or(default_tz);
                (
                    t.sn.clone(),
                    Terminal {
                        source: Arc::from(source_name(index, &t.sn).as_str()),
                        rtlog: Arc::from(rtlog_source_name(index, &t.sn).as_str()),
                        tz,
                    },
                )
            })
            .collect();
        ZkPush {
            name: format!("zk_push[{index}]"),
            terminals,
            committer,
            store,
            limiter: RateLimiter::new(raw.listener.rate_per_second, raw.listener.burst),
            auth: raw.listener.auth(),
            refused: LogOnce::default(),
            ignored: LogOnce::default(),
            max_body: raw.listener.max_body_bytes,
            delay: raw.delay_seconds,
            realtime: raw.realtime,
            metrics,
        }
    }

    /// The routes, with the body limit; under `/<secret>/` when a path
    /// secret is configured.
    pub fn router(self, max_body: usize) -> Router {
        let secret = self.auth.path_secret.clone();
        let r = Router::new()
            .route("/iclock/cdata", get(handshake).post(upload))
            .route("/iclock/cdata.aspx", get(handshake).post(upload))
            .route("/iclock/getrequest", get(no_command))
            .route("/iclock/getrequest.aspx", get(no_command))
            .route("/iclock/devicecmd", post(no_command))
            .route("/iclock/devicecmd.aspx", post(no_command))
            .route("/iclock/ping", get(no_command))
            .route("/iclock/registry", post(registry).get(registry))
            .route("/iclock/registry.aspx", post(registry).get(registry))
            .route("/iclock/push", post(push_options).get(push_options))
            .route("/iclock/push.aspx", post(push_options).get(push_options))
            .route("/iclock/rtdata", get(rtdata))
            .route("/iclock/rtdata.aspx", get(rtdata))
            .layer(DefaultBodyLimit::max(max_body))
            .with_state(Arc::new(self));
        match secret {
            Some(s) => Router::new().nest(&format!("/{s}"), r),
            None => r,
        }
    }

    fn count(&self, outcome: &str) {
        self.metrics.add(
            "attendd_push_requests_total",
            &[("source", &self.name), ("outcome", outcome)],
            1.0,
        );
    }

    /// Authenticates, finds the terminal and applies its rate limit.
    fn admit(&self, q: &Params, headers: &HeaderMap) -> Result<(&str, &Terminal), Refusal> {
        if !self.auth.allows(headers) {
            self.count("unauthorised");
            return Err(Refusal::Unauthorised);
        }
        let Some(sn) = q.get("sn") else {
            self.count("refused");
            return Err(Refusal::NoSerial);
        };
        let Some((sn, t)) = self.terminals.get_key_value(sn.as_str()) else {
            self.count("refused");
            if self.refused.first(sn) {
                let shown: String = sn.chars().take(64).collect();
                warn!(
                    source = %self.name,
                    "refused terminal with serial number {shown:?}: not in {}.terminals (logged once per serial number)",
                    self.name
                );
            }
            return Err(Refusal::Unknown);
        };
        if !self.limiter.admit(sn) {
            self.count("rate_limited");
            return Err(Refusal::RateLimited);
        }
        Ok((sn.as_str(), t))
    }
}

/// Why a request was not served. The answers name nothing secret: not
/// which serial numbers are allowed, not the expected credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Unauthorised,
    NoSerial,
    Unknown,
    RateLimited,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorised => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic realm=\"attendd\"")],
                "authentication required\n",
            )
                .into_response(),
            Refusal::NoSerial => {
                (StatusCode::BAD_REQUEST, "query parameter SN is missing\n").into_response()
            }
            Refusal::Unknown => (StatusCode::FORBIDDEN, "unknown terminal\n").into_response(),
            Refusal::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "5")],
                "too many requests\n",
            )
                .into_response(),
        }
    }
}

/// Query parameters with lower-case names (firmware differ in case).
type Params = HashMap<String, String>;

fn params(q: HashMap<String, String>) -> Params {
    q.into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

fn text(body: String) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], body).into_response()
}

/// A stamp as terminals write it: digits (a few firmware send `None`).
fn valid_stamp(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The handshake's `TimeZone`: whole hours, or minutes for zones off the
/// hour (`devices.md` §1.1), at the current offset of `tz`.
pub fn timezone_option(tz: Tz, now: chrono::DateTime<Utc>) -> i32 {
    let secs = tz
        .offset_from_utc_datetime(&now.naive_utc())
        .fix()
        .local_minus_utc();
    if secs % 3600 == 0 {
        secs / 3600
    } else {
        secs / 60
    }
}

async fn handshake(
    State(s): State<Arc<ZkPush>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let q = params(q);
    let (sn, t) = match s.admit(&q, &headers) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let stamps: HashMap<String, String> = match &s.store {
        Some(store) => match store.push_stamps(sn).await {
            Ok(v) => v.into_iter().collect(),
            Err(e) => {
                // Answering 0 would make the terminal re-upload its whole log.
                warn!(source = %s.name, sn, "cannot read the stamps: {e}");
                s.count("error");
                return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
            }
        },
        None => HashMap::new(),
    };
    if q.get("table")
        .is_some_and(|t| t.eq_ignore_ascii_case("RemoteAtt"))
    {
        // No user data is handed out: an empty answer means "no such user".
        s.count("remote_att");
        return text(String::new());
    }
    if q.get("devicetype")
        .is_some_and(|t| t.eq_ignore_ascii_case("acc"))
    {
        s.count("handshake");
        return text(format!(
            "registry=ok\nRegistryCode={}\n{}",
            registry_code(sn),
            acc_options(&s, sn)
        ));
    }
    s.count("handshake");
    let mut body = format!("GET OPTION FROM: {sn}\n");
    for (table, new, old) in STAMPED {
        let v = stamps.get(*table).map(String::as_str).unwrap_or("0");
        body.push_str(&format!("{new}={v}\n{old}={v}\n"));
    }
    let tz = timezone_option(t.tz, crate::clock::now());
    body.push_str(&format!(
        "ErrorDelay=30\nDelay={}\nTransTimes=00:00;14:05\nTransInterval=1\n\
         TransFlag=TransData AttLog\tOpLog\nTimeZone={tz}\nRealtime={}\nEncrypt=None\n\
         ServerVer=2.4.1\nPushProtVer=2.4.1\n",
        s.delay,
        u8::from(s.realtime),
    ));
    text(body)
}

/// The `RegistryCode` of a terminal: stable per serial number (FNV-1a).
fn registry_code(sn: &str) -> String {
    let h = sn.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{:010x}", h & 0xff_ffff_ffff)
}

/// The options access-control firmware reads after registering.
fn acc_options(s: &ZkPush, sn: &str) -> String {
    format!(
        "ServerVersion=3.1.2\nServerName=attendd\nPushProtVer=3.1.2\nErrorDelay=30\n\
         RequestDelay={}\nTransTimes=00:00;14:05\nTransInterval=1\n\
         TransTables=User Transaction\nRealtime={}\nSessionID={}\nTimeoutSec=10\n",
        s.delay,
        u8::from(s.realtime),
        registry_code(sn),
    )
}

/// `POST /iclock/registry`: the terminal announces itself; it gets its
/// registry code.
async fn registry(
    State(s): State<Arc<ZkPush>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let q = params(q);
    match s.admit(&q, &headers) {
        Ok((sn, _)) => {
            s.count("handshake");
            text(format!("RegistryCode={}", registry_code(sn)))
        }
        Err(r) => r.into_response(),
    }
}

/// `POST /iclock/push`: the options of a registered terminal.
async fn push_options(
    State(s): State<Arc<ZkPush>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let q = params(q);
    match s.admit(&q, &headers) {
        Ok((sn, _)) => {
            s.count("handshake");
            text(acc_options(&s, sn))
        }
        Err(r) => r.into_response(),
    }
}

/// The Security PUSH time encoding: seconds counted in months of 31 days
/// from 2000-01-01, in the terminal's local time.
pub fn zk_time(local: chrono::NaiveDateTime) -> i64 {
    use chrono::{Datelike, Timelike};
    let days = (i64::from(local.year()) - 2000) * 12 * 31
        + i64::from(local.month0()) * 31
        + i64::from(local.day0());
    days * 86_400 + i64::from(local.num_seconds_from_midnight())
}

/// `GET /iclock/rtdata?type=time`: the server's time for the terminal.
async fn rtdata(
    State(s): State<Arc<ZkPush>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let q = params(q);
    let (_, t) = match s.admit(&q, &headers) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let now = crate::clock::now();
    let local = now.with_timezone(&t.tz);
    let off = local.offset().fix().local_minus_utc();
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.abs();
    text(format!(
        "DateTime={},ServerTZ={sign}{:02}{:02}",
        zk_time(local.naive_local()),
        off / 3600,
        off % 3600 / 60
    ))
}

/// The body of an upload, inflated when the terminal compressed it.
fn inflated(s: &ZkPush, headers: &HeaderMap, body: Bytes) -> Result<Bytes, Box<Response>> {
    match super::push::inflate(headers, &body, s.max_body) {
        Ok(Some(b)) => Ok(Bytes::from(b)),
        Ok(None) => Ok(body),
        Err(e) => {
            s.count("refused");
            let code = if e.contains("larger") {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            };
            Err(Box::new((code, format!("{e}\n")).into_response()))
        }
    }
}

async fn upload(
    State(s): State<Arc<ZkPush>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Response {
    let q = params(q);
    let (sn, t) = match s.admit(&q, &headers) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let body = match super::push::read_body(req.into_body(), s.max_body).await {
        Ok(b) => b,
        Err(r) => {
            s.count("refused");
            return r;
        }
    };
    let body = match inflated(&s, &headers, body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let table = q
        .get("table")
        .map(|t| t.to_ascii_uppercase())
        .unwrap_or_default();
    // Firmware name the stamp after the table (`OpStamp`, `PhotoStamp`)
    // or plainly `Stamp`.
    let stamp = q
        .get("stamp")
        .or_else(|| match table.as_str() {
            "OPERLOG" => q.get("opstamp"),
            "ATTPHOTO" => q.get("photostamp"),
            _ => None,
        })
        .filter(|v| valid_stamp(v) && STAMPED.iter().any(|(tb, _, _)| *tb == table))
        .map(|v| (sn.to_string(), table.clone(), v.clone()));
    let now = crate::clock::now();
    let attlog = table == "ATTLOG";
    let rtlog = table == "RTLOG";
    let mut messages = Vec::new();
    if rtlog {
        messages = body
            .split(|&b| b == b'\n')
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .filter(|l| !l.trim_ascii().is_empty())
            .map(|l| Received {
                source: t.rtlog.clone(),
                topic: None,
                payload: l.to_vec(),
                received_at: now,
            })
            .collect();
    }
    if attlog {
        // One message per line, so each punch keeps its own line as raw
        // text and a bad line is quarantined alone. A form-encoded body
        // (TAB written as %09) is decoded as a whole.
        let form = !body.contains(&b'\t') && body.windows(3).any(|w| w == b"%09");
        let lines: Vec<&[u8]> = if form {
            vec![&body[..]]
        } else {
            body.split(|&b| b == b'\n')
                .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
                .filter(|l| !l.trim_ascii().is_empty())
                .collect()
        };
        messages = lines
            .into_iter()
            .map(|l| Received {
                source: t.source.clone(),
                topic: None,
                payload: l.to_vec(),
                received_at: now,
            })
            .collect();
    }
    let n = if !attlog {
        0
    } else if messages.len() == 1 && !body.contains(&b'\t') {
        // A form-encoded body: its records are separated by %0A.
        String::from_utf8_lossy(&body)
            .replace("%0a", "\n")
            .replace("%0A", "\n")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    } else {
        messages.len()
    };
    if (!messages.is_empty() || stamp.is_some())
        && let Err(e) = s.committer.commit(messages, stamp).await
    {
        warn!(source = %s.name, sn, "upload of {n} {table} line(s) not committed: {e}; the terminal will re-send");
        s.count("error");
        return (StatusCode::SERVICE_UNAVAILABLE, "not stored, send again\n").into_response();
    }
    if attlog {
        s.count("upload");
        text(format!("OK:{n}"))
    } else if rtlog {
        s.count("upload");
        text("OK".into())
    } else {
        s.count("ignored");
        s.metrics.add(
            "attendd_ignored_events_total",
            &[
                ("source", &s.name),
                (
                    "kind",
                    &format!("zk table {}", crate::quarantine::ignored_kind(&table)),
                ),
            ],
            1.0,
        );
        if s.ignored.first(&format!("{sn}\u{1f}{table}")) {
            info!(
                source = %s.name, sn,
                "acknowledged and ignored a {table:?} upload: not punches (logged once per terminal and table)"
            );
        }
        if table == "OPERLOG" {
            // The protocol counts OPERLOG records like ATTLOG lines.
            let records = body
                .split(|&b| b == b'\n')
                .filter(|l| !l.trim_ascii().is_empty())
                .count();
            text(format!("OK:{records}"))
        } else {
            text("OK".into())
        }
    }
}

async fn no_command(
    State(s): State<Arc<ZkPush>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let q = params(q);
    match s.admit(&q, &headers) {
        Ok(_) => text("OK".into()),
        Err(r) => r.into_response(),
    }
}

/// Logs the listener's start.
pub fn announce(index: usize, local: std::net::SocketAddr, terminals: usize) {
    info!(
        "zk_push[{index}]: ZKTeco ADMS terminals ({terminals} allowed) on http://{local}/iclock/"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timezone_option_is_hours_or_minutes() {
        let now = Utc.with_ymd_and_hms(2025, 3, 4, 6, 0, 0).unwrap();
        assert_eq!(timezone_option(chrono_tz::Europe::Istanbul, now), 3);
        assert_eq!(timezone_option(chrono_tz::Asia::Kolkata, now), 330);
        assert_eq!(timezone_option(chrono_tz::America::New_York, now), -5);
        assert_eq!(timezone_option(chrono_tz::UTC, now), 0);
    }

    #[test]
    fn security_push_time_counts_31_day_months_from_2000() {
        let t = chrono::NaiveDate::from_ymd_opt(2026, 9, 28)
            .unwrap()
            .and_hms_opt(11, 40, 45)
            .unwrap();
        let days = 26 * 12 * 31 + 8 * 31 + 27;
        assert_eq!(zk_time(t), days * 86_400 + 11 * 3600 + 40 * 60 + 45);
        assert_eq!(registry_code("CRJP230860129").len(), 10);
        assert_eq!(registry_code("A"), registry_code("A"));
        assert_ne!(registry_code("A"), registry_code("B"));
    }

    #[test]
    fn stamps_are_digits() {
        assert!(valid_stamp("9999"));
        assert!(!valid_stamp("None"));
        assert!(!valid_stamp(""));
        assert!(!valid_stamp("1; DROP"));
    }
}
