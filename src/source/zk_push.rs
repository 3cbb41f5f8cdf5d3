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
//! `OPERLOG`, `ATTPHOTO` and `options` uploads are acknowledged and
//! ignored (their stamps are kept so they are not re-sent either);
//! `/iclock/getrequest` answers `OK` (no commands), `/iclock/devicecmd` and
//! `/iclock/ping` answer `OK`. Serial numbers not configured are refused
//! with 403, logged once per serial number.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

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

/// One allowed terminal.
#[derive(Debug)]
struct Terminal {
    source: Arc<str>,
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
        if !self.limiter.admit(sn, Instant::now()) {
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
    s.count("handshake");
    let mut body = format!("GET OPTION FROM: {sn}\n");
    for (table, new, old) in STAMPED {
        let v = stamps.get(*table).map(String::as_str).unwrap_or("0");
        body.push_str(&format!("{new}={v}\n{old}={v}\n"));
    }
    let tz = timezone_option(t.tz, Utc::now());
    body.push_str(&format!(
        "ErrorDelay=30\nDelay={}\nTransTimes=00:00;14:05\nTransInterval=1\n\
         TransFlag=TransData AttLog\tOpLog\nTimeZone={tz}\nRealtime={}\nEncrypt=None\n\
         ServerVer=2.4.1\nPushProtVer=2.4.1\n",
        s.delay,
        u8::from(s.realtime),
    ));
    text(body)
}

async fn upload(
    State(s): State<Arc<ZkPush>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = params(q);
    let (sn, t) = match s.admit(&q, &headers) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    let table = q
        .get("table")
        .map(|t| t.to_ascii_uppercase())
        .unwrap_or_default();
    let stamp = q
        .get("stamp")
        .filter(|v| valid_stamp(v) && STAMPED.iter().any(|(tb, _, _)| *tb == table))
        .map(|v| (sn.to_string(), table.clone(), v.clone()));
    let now = Utc::now();
    let attlog = table == "ATTLOG";
    let mut messages = Vec::new();
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
    } else {
        s.count("ignored");
        text("OK".into())
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
    fn stamps_are_digits() {
        assert!(valid_stamp("9999"));
        assert!(!valid_stamp("None"));
        assert!(!valid_stamp(""));
        assert!(!valid_stamp("1; DROP"));
    }
}
