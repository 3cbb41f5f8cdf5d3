//! `[[source.hik_http]]`: terminals that POST their events (`devices.md`
//! §2 Hikvision listening mode, §3 Dahua event upload).
//!
//! Any path is accepted (the terminal's configured URL), by `POST` or
//! `PUT`. A body is JSON, XML `EventNotificationAlert`, Dahua
//! `Code=AccessControl;…;data={…}` text or the `{"Events":[…]}` envelope,
//! or a `multipart/*` body holding those; `Content-Encoding: deflate` is
//! inflated first. Image parts (face photos) are dropped here and never
//! stored. Each remaining part goes to the pipeline under the source name
//! `hik_http[i]`, and the terminal gets 200 only after the commit.
//!
//! Hikvision heartbeats are answered at once without a commit. Hikvision
//! `serialNo` is a per-device event sequence: a jump forward means events
//! the daemon never saw, reported per terminal (log line and the
//! `attendd_push_lost_events_total` counter). Dedupe is the store's: the
//! same `serialNo` (Dahua `RecNo`) from the same device is stored once.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use tracing::{info, warn};

use super::Received;
use super::push::{Auth, Committer, RateLimiter, RawHikHttp, inflate, peer_key};
use crate::metrics::Metrics;

/// The pipeline source name of `source.hik_http[index]`.
pub fn source_name(index: usize) -> String {
    format!("hik_http[{index}]")
}

/// What the handler of one listener shares.
#[derive(Debug)]
pub struct HikHttp {
    name: String,
    source: Arc<str>,
    hikvision: bool,
    /// Uniview terminals expect a LAPI JSON answer.
    uniview: bool,
    committer: Committer,
    limiter: RateLimiter,
    auth: Auth,
    /// Proxies whose `X-Forwarded-For` is believed.
    proxies: Vec<std::net::IpAddr>,
    max_body: usize,
    metrics: Arc<Metrics>,
    /// Highest `serialNo` committed per device.
    last_serial: Mutex<HashMap<String, i64>>,
    /// Serial numbers of terminals by MAC/IP (`decoder_options`).
    options: crate::ingest::decode::hik_isapi::HikOptions,
    /// Where a gap is reported to a pull reading the same terminal.
    catch_up: Option<Arc<crate::source::pull::CatchUpSignals>>,
}

impl HikHttp {
    /// The listener `source.hik_http[index]`.
    pub fn new(
        index: usize,
        raw: &RawHikHttp,
        committer: Committer,
        metrics: Arc<Metrics>,
    ) -> Self {
        HikHttp {
            name: source_name(index),
            source: Arc::from(source_name(index).as_str()),
            hikvision: raw.decoder == "hik-isapi",
            uniview: raw.decoder == "uniview",
            committer,
            limiter: RateLimiter::new(raw.listener.rate_per_second, raw.listener.burst),
            auth: raw.listener.auth(),
            proxies: raw.listener.proxies(),
            max_body: raw.listener.max_body_bytes,
            metrics,
            last_serial: Mutex::new(HashMap::new()),
            options: match crate::ingest::decode::Decoder::with_options(
                &raw.decoder,
                raw.decoder_options.as_ref().unwrap_or(&toml::Table::new()),
            ) {
                Ok(crate::ingest::decode::Decoder::HikIsapi(o)) => o,
                _ => Default::default(),
            },
            catch_up: None,
        }
    }

    /// Reports `serialNo` gaps to the pulls registered in `signals`.
    pub fn with_catch_up(mut self, signals: Arc<crate::source::pull::CatchUpSignals>) -> Self {
        self.catch_up = Some(signals);
        self
    }

    /// The routes (every path), with the body limit; under `/<secret>/`
    /// when a path secret is configured.
    pub fn router(self) -> Router {
        let secret = self.auth.path_secret.clone();
        let max = self.max_body;
        let r = Router::new()
            .fallback(receive)
            .layer(DefaultBodyLimit::max(max))
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

    /// Records committed serial numbers; reports jumps forward.
    fn track(&self, seen: &[(String, i64)]) {
        let mut m = self.last_serial.lock().unwrap_or_else(|e| e.into_inner());
        for (dev, serial) in seen {
            match m.get_mut(dev) {
                Some(last) if *serial > *last => {
                    let lost = *serial - *last - 1;
                    if lost > 0 {
                        warn!(
                            source = %self.name,
                            device = %dev,
                            "serialNo jumped from {last} to {serial}: {lost} event(s) possibly lost (a history upload may still bring them)"
                        );
                        self.metrics.add(
                            "attendd_push_lost_events_total",
                            &[("device", dev)],
                            lost as f64,
                        );
                        if self.catch_up.as_ref().is_some_and(|c| c.ask(dev)) {
                            info!(
                                source = %self.name,
                                device = %dev,
                                "asked the pull reading this terminal to search its log for the missing event(s)"
                            );
                        }
                    }
                    *last = *serial;
                }
                Some(_) => {}
                None => {
                    if m.len() < 10_000 {
                        m.insert(dev.clone(), *serial);
                    }
                }
            }
        }
    }
}

/// What a Hikvision event part says about itself, for heartbeats and gaps.
#[derive(Debug, Default, PartialEq, Eq)]
struct Envelope {
    event_type: Option<String>,
    /// `macAddress`, else `ipAddress`.
    device: Option<String>,
    /// `ipAddress`.
    ip: Option<String>,
    serial: Option<i64>,
}

fn xml_tag<'t>(doc: &'t str, tag: &str) -> Option<&'t str> {
    let open = format!("<{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&format!("</{tag}>"))? + start;
    Some(doc[start..end].trim())
}

fn envelope(part: &[u8]) -> Envelope {
    let text = String::from_utf8_lossy(part);
    if let Some(j) = text.find('{')
        && text[..j].trim().is_empty()
        && let Some(Ok(v)) = serde_json::Deserializer::from_str(&text[j..])
            .into_iter::<Value>()
            .next()
    {
        let s = |p: &str| v.get(p).and_then(Value::as_str).map(str::to_string);
        let ev = v.get("AccessControllerEvent");
        let serial = ev.and_then(|e| e.get("serialNo")).and_then(|n| {
            n.as_i64()
                .or_else(|| n.as_str().and_then(|t| t.trim().parse().ok()))
        });
        return Envelope {
            event_type: s("eventType"),
            device: s("macAddress").or_else(|| s("ipAddress")),
            ip: s("ipAddress"),
            serial,
        };
    }
    if text.contains("<EventNotificationAlert") {
        return Envelope {
            event_type: xml_tag(&text, "eventType").map(str::to_string),
            device: xml_tag(&text, "macAddress")
                .or_else(|| xml_tag(&text, "ipAddress"))
                .map(str::to_string),
            ip: xml_tag(&text, "ipAddress").map(str::to_string),
            serial: xml_tag(&text, "serialNo").and_then(|t| t.parse().ok()),
        };
    }
    Envelope::default()
}

/// The `boundary` parameter of a multipart content type.
fn boundary(content_type: &str) -> Option<String> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case("boundary"))
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The parts of a multipart body that are not images, without their
/// headers; `None` when no delimiter is found.
pub fn text_parts(body: &[u8], boundary: &str) -> Option<Vec<Vec<u8>>> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut at = find(body, delim, 0)?;
    let mut out = Vec::new();
    loop {
        let start = at + delim.len();
        if body[start..].starts_with(b"--") {
            break;
        }
        let next = find(body, delim, start);
        let end = next.unwrap_or(body.len());
        let mut part = &body[start..end];
        part = part
            .strip_prefix(b"\r\n")
            .or_else(|| part.strip_prefix(b"\n"))
            .unwrap_or(part);
        part = part
            .strip_suffix(b"\r\n")
            .or_else(|| part.strip_suffix(b"\n"))
            .unwrap_or(part);
        let (head, content) = match find(part, b"\r\n\r\n", 0) {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => match find(part, b"\n\n", 0) {
                Some(i) => (&part[..i], &part[i + 2..]),
                None => (&b""[..], part),
            },
        };
        let head = String::from_utf8_lossy(head).to_ascii_lowercase();
        let image = head
            .lines()
            .any(|l| l.starts_with("content-type:") && l.contains("image/"))
            || content.starts_with(&[0xFF, 0xD8, 0xFF]);
        if !image && !content.trim_ascii().is_empty() {
            out.push(content.to_vec());
        }
        match next {
            Some(n) => at = n,
            None => break,
        }
    }
    Some(out)
}

/// Success as the terminal expects it: `OK`, or for Uniview the LAPI
/// `{"Response":{"StatusCode":0,…}}` naming the path it posted to.
fn success(s: &HikHttp, uri: &axum::http::Uri) -> Response {
    if s.uniview {
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            crate::ingest::decode::uniview::answer(uri.path()),
        )
            .into_response();
    }
    (StatusCode::OK, "OK").into_response()
}

async fn receive(
    State(s): State<Arc<HikHttp>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    req: axum::extract::Request,
) -> Response {
    if !s.auth.allows(&headers) {
        s.count("unauthorised");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"attendd\"")],
            "authentication required\n",
        )
            .into_response();
    }
    if method != Method::POST && method != Method::PUT {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST events here\n").into_response();
    }
    let peer = peer_key(peer, &headers, &s.proxies);
    if !s.limiter.admit(&peer) {
        s.count("rate_limited");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "5")],
            "too many requests\n",
        )
            .into_response();
    }
    let body = match super::push::read_body(req.into_body(), s.max_body).await {
        Ok(b) => b,
        Err(r) => {
            s.count("refused");
            return r;
        }
    };
    let body = match inflate(&headers, &body, s.max_body) {
        Ok(Some(b)) => b,
        Ok(None) => body.to_vec(),
        Err(e) => {
            s.count("refused");
            let code = if e.contains("larger") {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            };
            return (code, format!("{e}\n")).into_response();
        }
    };
    let parts = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(boundary)
        .and_then(|b| text_parts(&body, &b))
        .unwrap_or_else(|| vec![body]);
    let now = crate::clock::now();
    let mut seen = Vec::new();
    let mut messages = Vec::new();
    for p in parts {
        if s.hikvision {
            let e = envelope(&p);
            if e.event_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("heartBeat"))
            {
                continue;
            }
            if let Some(serial) = e.serial {
                let device = s
                    .options
                    .terminal_id(e.device.as_deref(), e.ip.as_deref())
                    .unwrap_or_else(|| peer.clone());
                seen.push((device, serial));
            }
        }
        messages.push(Received {
            source: s.source.clone(),
            topic: None,
            payload: p,
            received_at: now,
        });
    }
    if messages.is_empty() {
        s.count("heartbeat");
        s.metrics.add(
            "attendd_ignored_events_total",
            &[("source", &s.name), ("kind", "heartbeat")],
            1.0,
        );
        return success(&s, &uri);
    }
    if let Err(e) = s.committer.commit(messages, None).await {
        warn!(source = %s.name, peer = %peer, "event not committed: {e}; the terminal will re-send");
        s.count("error");
        return (StatusCode::SERVICE_UNAVAILABLE, "not stored, send again\n").into_response();
    }
    s.track(&seen);
    s.count("upload");
    success(&s, &uri)
}

/// Logs the listener's start.
pub fn announce(index: usize, local: SocketAddr, decoder: &str) {
    info!("hik_http[{index}]: {decoder} event uploads on http://{local}/");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_keeps_text_parts_and_drops_images() {
        let body = b"--MIME_boundary\r\nContent-Disposition: form-data; name=\"event_log\"\r\nContent-Type: application/json\r\n\r\n{\"eventType\":\"AccessControllerEvent\"}\r\n--MIME_boundary\r\nContent-Disposition: form-data; name=\"Picture\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n\xFF\xD8\xFF\xE0{junk}\r\n--MIME_boundary--\r\n";
        let b = boundary("multipart/form-data; boundary=MIME_boundary").unwrap();
        let parts = text_parts(body, &b).unwrap();
        assert_eq!(
            parts,
            vec![b"{\"eventType\":\"AccessControllerEvent\"}".to_vec()]
        );
        assert_eq!(boundary("application/json"), None);
        assert_eq!(
            boundary("multipart/x-mixed-replace; boundary=\"myboundary\"").as_deref(),
            Some("myboundary")
        );
        assert_eq!(text_parts(b"no delimiter", "x"), None);
    }

    #[test]
    fn envelope_reads_json_and_xml() {
        let j = br#"{"macAddress":"24:0f","eventType":"AccessControllerEvent","AccessControllerEvent":{"serialNo":48211}}"#;
        assert_eq!(
            envelope(j),
            Envelope {
                event_type: Some("AccessControllerEvent".into()),
                device: Some("24:0f".into()),
                ip: None,
                serial: Some(48211)
            }
        );
        let x = b"<EventNotificationAlert><ipAddress>10.0.0.1</ipAddress><eventType>heartBeat</eventType></EventNotificationAlert>";
        assert_eq!(envelope(x).event_type.as_deref(), Some("heartBeat"));
        assert_eq!(envelope(x).device.as_deref(), Some("10.0.0.1"));
        assert_eq!(envelope(b"\xFF\xD8"), Envelope::default());
    }
}
