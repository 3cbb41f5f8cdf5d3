//! `[[source.hik_pull]]`: Hikvision terminals read over ISAPI.
//!
//! On every (re)connect the source asks `GET /ISAPI/System/deviceInfo` for
//! the serial number (the device id of every punch it reads), catches up
//! with `POST /ISAPI/AccessControl/AcsEvent?format=json` from the stored
//! cursor, paging while `responseStatusStrg` is `MORE`, then follows
//! `GET /ISAPI/Event/notification/alertStream`, a multipart stream of
//! `AccessControllerEvent` parts and heartbeats. A `serialNo` that skips
//! numbers triggers another catch-up; a lower `serialNo` at a later time is
//! a device that restarted its numbering (new epoch, nothing skipped).
//!
//! Each page or live event is committed with the cursor after it, in one
//! transaction; a SIGKILL re-reads from the cursor and the dedupe key
//! (device serial number, `serialNo`) stores nothing twice.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use http_body_util::BodyExt;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Backoff;
use super::digest::Client;
use super::pull::{
    Cursor, Multipart, PullCtx, Stop, boundary, http_client, http_stop, retry_after,
};
pub use crate::config::pull::RawHikPull;

/// The password from `password` or `password_env`.
pub(crate) fn resolve_password(password: &Option<String>, env: &Option<String>) -> String {
    match (password, env) {
        (Some(p), _) => p.clone(),
        (None, Some(v)) => std::env::var(v).unwrap_or_default(),
        (None, None) => String::new(),
    }
}

/// The name of the `i`th source in logs, health and metrics.
pub fn source_name(i: usize) -> String {
    format!("hik_pull[{i}]")
}

/// The text of the first `<tag>…</tag>` in an XML document.
pub(crate) fn xml_text<'t>(doc: &'t str, tag: &str) -> Option<&'t str> {
    let open = format!("<{tag}>");
    let s = doc.find(&open)? + open.len();
    let e = doc[s..].find(&format!("</{tag}>"))? + s;
    Some(doc[s..e].trim())
}

/// The event type, time and `serialNo` of a live part (JSON or XML).
fn part_meta(body: &[u8]) -> (Option<String>, Option<DateTime<Utc>>, Option<i64>) {
    let text = String::from_utf8_lossy(body);
    let time = |s: Option<&str>| {
        s.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    if let Some(j) = text.find('{') {
        let mut de = serde_json::Deserializer::from_str(&text[j..]).into_iter::<Value>();
        if let Some(Ok(v)) = de.next() {
            let et = v["eventType"].as_str().map(String::from);
            let t = time(v["dateTime"].as_str());
            let sn = &v["AccessControllerEvent"]["serialNo"];
            let sn = sn
                .as_i64()
                .or_else(|| sn.as_str().and_then(|s| s.parse().ok()));
            return (et, t, sn);
        }
    }
    (
        xml_text(&text, "eventType").map(String::from),
        time(xml_text(&text, "dateTime")),
        xml_text(&text, "serialNo").and_then(|s| s.parse().ok()),
    )
}

/// One event of an `AcsEvent` answer: its time and `serialNo`.
fn search_meta(ev: &Value) -> Option<(DateTime<Utc>, i64)> {
    let t = DateTime::parse_from_rfc3339(ev["time"].as_str()?).ok()?;
    let sn = &ev["serialNo"];
    let sn = sn
        .as_i64()
        .or_else(|| sn.as_str().and_then(|s| s.parse().ok()))?;
    Some((t.with_timezone(&Utc), sn))
}

struct Hik {
    raw: RawHikPull,
    tz: Tz,
    client: Client,
    cx: PullCtx,
    stop: CancellationToken,
}

/// Runs the source until `stop` fires.
pub async fn run(raw: RawHikPull, tz: Tz, cx: PullCtx, stop: CancellationToken) {
    let Some(client) = http_client(
        &cx,
        &raw.url,
        &raw.username,
        &raw.password,
        &raw.password_env,
    ) else {
        return;
    };
    let mut backoff = Backoff::new(
        Duration::from_millis(raw.retry_min_ms),
        Duration::from_secs(300),
    );
    let h = Hik {
        raw,
        tz,
        client,
        cx,
        stop,
    };
    h.cx.state(false, "connecting");
    loop {
        match h.session(&mut backoff).await {
            Stop::Shutdown => return,
            Stop::Retry(why, kind) => {
                if !retry_after(&h.cx, &h.stop, &mut backoff, why, kind).await {
                    return;
                }
            }
        }
    }
}

impl Hik {
    async fn serial(&self) -> Result<String, Stop> {
        let body = self
            .client
            .fetch(
                "GET",
                "/ISAPI/System/deviceInfo",
                Bytes::new(),
                None,
                64 * 1024,
            )
            .await
            .map_err(http_stop)?;
        let text = String::from_utf8_lossy(&body);
        xml_text(&text, "serialNumber")
            .filter(|s| !s.is_empty())
            .map(String::from)
            .ok_or_else(|| {
                Stop::Retry(
                    "GET /ISAPI/System/deviceInfo: no <serialNumber> in the answer".into(),
                    "protocol",
                )
            })
    }

    /// One connection's life: serial, catch-up, live stream.
    async fn session(&self, backoff: &mut Backoff) -> Stop {
        let serial = match self.serial().await {
            Ok(s) => s,
            Err(s) => return s,
        };
        // A push listener that hears the same terminal asks here when its
        // `serialNo` jumps.
        let asked = self.cx.catch_up.register(&serial);
        let mut cursor = match self.cx.cursor(&serial).await {
            Ok(c) => c,
            Err(e) => return Stop::Retry(format!("reading the cursor: {e}"), "store"),
        };
        let resp = match self
            .client
            .send(
                "GET",
                "/ISAPI/Event/notification/alertStream",
                Bytes::new(),
                None,
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return http_stop(e),
        };
        // Caught up after the stream is open: an event recorded between the
        // two is in the search, never in neither.
        if let Err(s) = self.catch_up(&serial, &mut cursor).await {
            return s;
        }
        let ct = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mut parts = Multipart::new(&boundary(ct).unwrap_or_else(|| "boundary".into()));
        let mut body = resp.into_body();
        backoff.reset();
        self.cx
            .state(true, format!("device {serial}: following alertStream"));
        info!(source = %self.cx.name, "device {serial}: caught up; following alertStream");
        let idle = Duration::from_secs(self.raw.idle_seconds);
        let mut out = Vec::new();
        loop {
            let frame = tokio::select! {
                _ = self.stop.cancelled() => return Stop::Shutdown,
                _ = asked.notified() => {
                    info!(
                        source = %self.cx.name,
                        "device {serial}: a push listener saw a serialNo gap: catching up"
                    );
                    if let Err(s) = self.catch_up(&serial, &mut cursor).await {
                        return s;
                    }
                    continue;
                }
                f = tokio::time::timeout(idle, body.frame()) => f,
            };
            let frame = match frame {
                Err(_) => {
                    return Stop::Retry(format!("alertStream silent for {idle:?}"), "connection");
                }
                Ok(None) => {
                    return Stop::Retry("alertStream closed by the device".into(), "connection");
                }
                Ok(Some(Err(e))) => return Stop::Retry(format!("alertStream: {e}"), "connection"),
                Ok(Some(Ok(f))) => f,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            parts.push(&data, &mut out);
            for part in out.drain(..) {
                if part.content_type.starts_with("image/") {
                    continue;
                }
                let (event_type, time, sn) = part_meta(&part.body);
                if event_type.as_deref() != Some("AccessControllerEvent") {
                    continue; // heartBeat and other event types
                }
                let (Some(time), Some(sn)) = (time, sn) else {
                    // Cannot place it: the pipeline quarantines or stores it,
                    // the cursor stays.
                    let c = cursor.clone();
                    if !self
                        .cx
                        .commit(&serial, vec![part.body], &c, &self.stop)
                        .await
                    {
                        return Stop::Shutdown;
                    }
                    continue;
                };
                if cursor.gap_before(sn) {
                    info!(
                        source = %self.cx.name,
                        "device {serial}: serialNo {sn} after {}: catching up the gap",
                        cursor.count
                    );
                    if let Err(s) = self.catch_up(&serial, &mut cursor).await {
                        return s;
                    }
                    // The live event is committed too: a device's search
                    // can lag its stream, and the dedupe key (serial
                    // number, serialNo) absorbs it if the catch-up had it.
                }
                let reset = cursor.advance(time, sn);
                if reset {
                    warn!(
                        source = %self.cx.name,
                        "device {serial}: serialNo went back to {sn}: the device restarted its numbering"
                    );
                }
                self.cx.live();
                if !self
                    .cx
                    .commit(&serial, vec![part.body], &cursor, &self.stop)
                    .await
                {
                    return Stop::Shutdown;
                }
            }
        }
    }

    /// Reads every event from the cursor's time on, page by page, each
    /// page committed with the cursor after it.
    async fn catch_up(&self, serial: &str, cursor: &mut Cursor) -> Result<(), Stop> {
        let start = cursor
            .time
            .unwrap_or_else(|| DateTime::<Utc>::from_timestamp(946_684_800, 0).unwrap_or_default());
        let end = crate::clock::now() + chrono::Duration::days(1);
        let fmt = |t: DateTime<Utc>| {
            t.with_timezone(&self.tz)
                .format("%Y-%m-%dT%H:%M:%S%:z")
                .to_string()
        };
        let search_id = format!("attendd-{}", Utc::now().timestamp_millis());
        let mut position: u64 = 0;
        let mut read = 0usize;
        self.cx.state(
            true,
            format!("device {serial}: catching up from {}", fmt(start)),
        );
        loop {
            let cond = serde_json::json!({"AcsEventCond": {
                "searchID": search_id,
                "searchResultPosition": position,
                "maxResults": self.raw.page_size,
                "major": 5,
                "minor": 0,
                "startTime": fmt(start),
                "endTime": fmt(end),
            }});
            let body = self
                .client
                .fetch(
                    "POST",
                    "/ISAPI/AccessControl/AcsEvent?format=json",
                    Bytes::from(cond.to_string()),
                    Some("application/json"),
                    4 << 20,
                )
                .await
                .map_err(http_stop)?;
            let v: Value = serde_json::from_slice(&body).map_err(|e| {
                Stop::Retry(format!("AcsEvent answer is not JSON: {e}"), "protocol")
            })?;
            let a = &v["AcsEvent"];
            let status = a["responseStatusStrg"].as_str().unwrap_or("").to_string();
            let list = a["InfoList"].as_array().cloned().unwrap_or_default();
            let n = a["numOfMatches"].as_u64().unwrap_or(list.len() as u64);
            // One payload per event, grouped by epoch: events after a reset
            // of the counter get the new epoch's suffix.
            let mut groups: Vec<(Cursor, Vec<Vec<u8>>)> = Vec::new();
            for ev in &list {
                let payload = serde_json::json!({"AcsEvent": {"InfoList": [ev]}})
                    .to_string()
                    .into_bytes();
                if let Some((t, sn)) = search_meta(ev)
                    && cursor.advance(t, sn)
                {
                    warn!(source = %self.cx.name, "device {serial}: serialNo went back to {sn}: the device restarted its numbering");
                }
                if groups.last().is_none_or(|g| g.0.epoch != cursor.epoch) {
                    groups.push((cursor.clone(), Vec::new()));
                }
                if let Some(g) = groups.last_mut() {
                    g.0 = cursor.clone();
                    g.1.push(payload);
                }
            }
            for (c, payloads) in groups {
                read += payloads.len();
                if !self.cx.commit(serial, payloads, &c, &self.stop).await {
                    return Err(Stop::Shutdown);
                }
            }
            position = position.saturating_add(n);
            if status != "MORE" || n == 0 {
                break;
            }
            if self.stop.is_cancelled() {
                return Err(Stop::Shutdown);
            }
        }
        self.cx.caught_up(read);
        if read > 0 {
            info!(source = %self.cx.name, "device {serial}: caught up {read} event(s)");
        }
        Ok(())
    }
}

/// Settings handed to [`run`] by the daemon.
pub fn spawn_all(
    sources: &[RawHikPull],
    default_tz: Tz,
    make: impl Fn(&str) -> PullCtx,
    tracker: &tokio_util::task::TaskTracker,
    stop: &CancellationToken,
) {
    for (i, raw) in sources.iter().enumerate() {
        let tz = raw
            .timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(default_tz);
        let cx = make(&source_name(i));
        tracker.spawn(run(raw.clone(), tz, cx, stop.clone()));
    }
}

/// The decoders of the pull sources, for the pipeline.
pub fn decoding(tz: Tz) -> super::SourceDecoding {
    super::SourceDecoding {
        decoder: crate::ingest::decode::Decoder::HikIsapi(Default::default()),
        tz,
        options: toml::Table::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_part_meta_json_and_xml() {
        let (et, t, sn) = part_meta(crate::ingest::decode::hik_isapi::SAMPLES[0]);
        assert_eq!(et.as_deref(), Some("AccessControllerEvent"));
        assert_eq!(t.unwrap().to_rfc3339(), "2025-03-04T05:57:12+00:00");
        assert_eq!(sn, Some(48211));
        let (et, _, sn) = part_meta(crate::ingest::decode::hik_isapi::SAMPLES[1]);
        assert_eq!(
            (et.as_deref(), sn),
            (Some("AccessControllerEvent"), Some(48377))
        );
        let (et, _, _) = part_meta(br#"{"eventType":"heartBeat","eventState":"active"}"#);
        assert_eq!(et.as_deref(), Some("heartBeat"));
    }
}
