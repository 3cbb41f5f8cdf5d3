//! `[[source.dahua_pull]]`: Dahua access controllers read over their CGI.
//!
//! On every (re)connect the source asks
//! `GET /cgi-bin/magicBox.cgi?action=getSerialNo` (`sn=…`: the device id of
//! every punch), catches up with
//! `GET /cgi-bin/recordFinder.cgi?action=find&name=AccessControlCardRec&StartTime=…&EndTime=…&count=N`
//! (`found=N` and `records[i].Key=Value` lines, times in epoch seconds)
//! from the stored cursor, a page at a time, then follows
//! `GET /cgi-bin/eventManager.cgi?action=attach&codes=[AccessControl]&heartbeat=…`,
//! a multipart stream of `Code=AccessControl;action=Pulse;index=0;data={…}`
//! text parts and `Heartbeat` parts. A `RecNo` that skips numbers triggers
//! another catch-up; a lower `RecNo` at a later time is a cleared log or a
//! reset counter (new epoch, nothing skipped). Each record is committed
//! with the cursor after it, in one transaction.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Backoff;
use super::digest::Client;
use super::pull::{
    Cursor, Multipart, PullCtx, Stop, boundary, http_client, http_stop, retry_after,
};
pub use crate::config::pull::RawDahuaPull;

/// The name of the `i`th source in logs, health and metrics.
pub fn source_name(i: usize) -> String {
    format!("dahua_pull[{i}]")
}

/// One record of a `recordFinder` answer: its lines (renumbered 0), time
/// and `RecNo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundRecord {
    /// `records[0].Key=Value` lines.
    pub text: String,
    /// `CreateTimeRealUTC`, else `CreateTime`.
    pub time: Option<DateTime<Utc>>,
    /// `RecNo`.
    pub rec_no: Option<i64>,
}

/// Splits a `recordFinder` answer into its records, in index order; and
/// `found=`. `CreateTime` is epoch seconds on Dahua firmware and the local
/// wall time (`2026-05-15 10:14:27`) on Intelbras firmware, read in `tz`
/// (the source's `timezone`; without one such a record has no time).
pub fn found_records(text: &str, tz: Option<Tz>) -> (Option<usize>, Vec<FoundRecord>) {
    let mut found = None;
    // Per index: lines, CreateTime, CreateTimeRealUTC, RecNo.
    type Acc = (String, Option<i64>, Option<i64>, Option<i64>);
    let mut by: std::collections::BTreeMap<usize, Acc> = Default::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(n) = line.strip_prefix("found=") {
            found = n.trim().parse().ok();
            continue;
        }
        let Some(rest) = line.strip_prefix("records[") else {
            continue;
        };
        let Some((idx, kv)) = rest.split_once("].") else {
            continue;
        };
        let Ok(idx) = idx.parse::<usize>() else {
            continue;
        };
        let e = by.entry(idx).or_default();
        e.0.push_str(&format!("records[0].{kv}\r\n"));
        if let Some((k, v)) = kv.split_once('=') {
            let local = || {
                let t =
                    chrono::NaiveDateTime::parse_from_str(v.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
                let t = tz?.from_local_datetime(&t).earliest()?;
                Some(t.timestamp())
            };
            let v = v.trim().parse::<i64>().ok().or_else(local);
            match k {
                "CreateTime" => e.1 = v,
                "CreateTimeRealUTC" => e.2 = v,
                "RecNo" => e.3 = v,
                _ => {}
            }
        }
    }
    let recs = by
        .into_values()
        .map(|(text, ct, real, rec_no)| FoundRecord {
            text,
            time: real
                .or(ct)
                .filter(|t| *t > 0)
                .and_then(|t| DateTime::from_timestamp(t, 0)),
            rec_no,
        })
        .collect();
    (found, recs)
}

/// The `RecNo` and time (`RealUTC`, else `UTC`) of a live text part.
fn part_meta(body: &[u8]) -> (bool, Option<DateTime<Utc>>, Option<i64>) {
    let text = String::from_utf8_lossy(body);
    let Some(start) = text.find("Code=") else {
        return (false, None, None);
    };
    let head = &text[start..];
    let is_ac = head
        .split(';')
        .next()
        .is_some_and(|c| c.trim().eq_ignore_ascii_case("Code=AccessControl"));
    let pulse = head
        .split(';')
        .any(|kv| kv.trim().eq_ignore_ascii_case("action=Pulse"));
    let Some(d) = head.find("data=") else {
        return (is_ac && pulse, None, None);
    };
    let mut de =
        serde_json::Deserializer::from_str(&head[d + 5..]).into_iter::<serde_json::Value>();
    let Some(Ok(v)) = de.next() else {
        return (is_ac && pulse, None, None);
    };
    let num = |k: &str| {
        v[k].as_i64()
            .or_else(|| v[k].as_str().and_then(|s| s.parse().ok()))
    };
    let time = num("RealUTC")
        .or_else(|| num("UTC"))
        .filter(|t| *t > 0)
        .and_then(|t| DateTime::from_timestamp(t, 0));
    (is_ac && pulse, time, num("RecNo"))
}

struct Dahua {
    raw: RawDahuaPull,
    client: Client,
    cx: PullCtx,
    stop: CancellationToken,
}

/// Runs the source until `stop` fires.
pub async fn run(raw: RawDahuaPull, cx: PullCtx, stop: CancellationToken) {
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
    let d = Dahua {
        raw,
        client,
        cx,
        stop,
    };
    d.cx.state(false, "connecting");
    loop {
        match d.session(&mut backoff).await {
            Stop::Shutdown => return,
            Stop::Retry(why, kind) => {
                if !retry_after(&d.cx, &d.stop, &mut backoff, why, kind).await {
                    return;
                }
            }
        }
    }
}

impl Dahua {
    async fn serial(&self) -> Result<String, Stop> {
        let body = self
            .client
            .fetch(
                "GET",
                "/cgi-bin/magicBox.cgi?action=getSerialNo",
                Bytes::new(),
                None,
                16 * 1024,
            )
            .await
            .map_err(http_stop)?;
        let text = String::from_utf8_lossy(&body);
        text.lines()
            .find_map(|l| l.trim().strip_prefix("sn="))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                Stop::Retry(
                    "magicBox.cgi?action=getSerialNo: no sn= in the answer".into(),
                    "protocol",
                )
            })
    }

    async fn session(&self, backoff: &mut Backoff) -> Stop {
        let serial = match self.serial().await {
            Ok(s) => s,
            Err(s) => return s,
        };
        let mut cursor = match self.cx.cursor(&serial).await {
            Ok(c) => c,
            Err(e) => return Stop::Retry(format!("reading the cursor: {e}"), "store"),
        };
        let hb = self.raw.heartbeat_seconds;
        let resp = match self
            .client
            .send(
                "GET",
                &format!("/cgi-bin/eventManager.cgi?action=attach&codes=%5BAccessControl%5D&heartbeat={hb}"),
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
        let mut parts = Multipart::new(&boundary(ct).unwrap_or_else(|| "myboundary".into()));
        let mut body = resp.into_body();
        backoff.reset();
        self.cx.state(
            true,
            format!("device {serial}: following eventManager attach"),
        );
        info!(source = %self.cx.name, "device {serial}: caught up; following eventManager attach");
        let idle = Duration::from_secs(hb * 3 + 2);
        let mut out = Vec::new();
        loop {
            let frame = tokio::select! {
                _ = self.stop.cancelled() => return Stop::Shutdown,
                f = tokio::time::timeout(idle, body.frame()) => f,
            };
            let frame = match frame {
                Err(_) => {
                    return Stop::Retry(format!("event stream silent for {idle:?}"), "connection");
                }
                Ok(None) => {
                    return Stop::Retry("event stream closed by the device".into(), "connection");
                }
                Ok(Some(Err(e))) => return Stop::Retry(format!("event stream: {e}"), "connection"),
                Ok(Some(Ok(f))) => f,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            parts.push(&data, &mut out);
            for part in out.drain(..) {
                let (access, time, rec_no) = part_meta(&part.body);
                if !access {
                    continue; // Heartbeat, other codes, Start/Stop actions
                }
                let (Some(time), Some(rec_no)) = (time, rec_no) else {
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
                if cursor.gap_before(rec_no) {
                    info!(source = %self.cx.name, "device {serial}: RecNo {rec_no} after {}: catching up the gap", cursor.count);
                    if let Err(s) = self.catch_up(&serial, &mut cursor).await {
                        return s;
                    }
                    continue;
                }
                if cursor.advance(time, rec_no) {
                    warn!(source = %self.cx.name, "device {serial}: RecNo went back to {rec_no}: the device cleared its log or restarted its numbering");
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

    async fn catch_up(&self, serial: &str, cursor: &mut Cursor) -> Result<(), Stop> {
        let mut start = cursor.time.map(|t| t.timestamp()).unwrap_or(946_684_800);
        let end = (crate::clock::now() + chrono::Duration::days(1)).timestamp();
        let tz = self
            .raw
            .timezone
            .as_deref()
            .and_then(|t| t.parse::<Tz>().ok());
        let count = self.raw.page_size as usize;
        let mut read = 0usize;
        self.cx
            .state(true, format!("device {serial}: catching up from {start}"));
        loop {
            let path = format!(
                "/cgi-bin/recordFinder.cgi?action=find&name=AccessControlCardRec&StartTime={start}&EndTime={end}&count={count}"
            );
            let body = self
                .client
                .fetch("GET", &path, Bytes::new(), None, 8 << 20)
                .await
                .map_err(http_stop)?;
            let (found, recs) = found_records(&String::from_utf8_lossy(&body), tz);
            let n = found.unwrap_or(recs.len());
            let mut groups: Vec<(Cursor, Vec<Vec<u8>>)> = Vec::new();
            let mut last_time = None;
            for r in recs {
                if let (Some(t), Some(no)) = (r.time, r.rec_no) {
                    last_time = Some(t.timestamp());
                    if cursor.advance(t, no) {
                        warn!(source = %self.cx.name, "device {serial}: RecNo went back to {no}: the device cleared its log or restarted its numbering");
                    }
                }
                if groups.last().is_none_or(|g| g.0.epoch != cursor.epoch) {
                    groups.push((cursor.clone(), Vec::new()));
                }
                if let Some(g) = groups.last_mut() {
                    g.0 = cursor.clone();
                    g.1.push(r.text.into_bytes());
                }
            }
            for (c, payloads) in groups {
                read += payloads.len();
                if !self.cx.commit(serial, payloads, &c, &self.stop).await {
                    return Err(Stop::Shutdown);
                }
            }
            if n < count {
                break;
            }
            // A full page: the next starts at its last record's second
            // (records of that second are read again; their RecNo dedupes).
            let next = match last_time {
                Some(t) if t > start => t,
                _ => {
                    warn!(source = %self.cx.name, "device {serial}: more than {count} records at {start}; raise page_size to read them all");
                    start.saturating_add(1)
                }
            };
            start = next;
            if start >= end {
                // A device that keeps answering full pages cannot hold the
                // source in catch-up past the search's end.
                warn!(source = %self.cx.name, "device {serial}: catch-up reached its end ({end}) with full pages still coming; the rest comes with the next catch-up");
                break;
            }
            if self.stop.is_cancelled() {
                return Err(Stop::Shutdown);
            }
        }
        self.cx.caught_up(read);
        if read > 0 {
            info!(source = %self.cx.name, "device {serial}: caught up {read} record(s)");
        }
        Ok(())
    }
}

/// Starts every `[[source.dahua_pull]]`.
pub fn spawn_all(
    sources: &[RawDahuaPull],
    make: impl Fn(&str) -> PullCtx,
    tracker: &tokio_util::task::TaskTracker,
    stop: &CancellationToken,
) {
    for (i, raw) in sources.iter().enumerate() {
        tracker.spawn(run(raw.clone(), make(&source_name(i)), stop.clone()));
    }
}

/// The pipeline decoding of a `[[source.dahua_pull]]`.
pub fn decoding(tz: Tz) -> super::SourceDecoding {
    super::SourceDecoding {
        decoder: crate::ingest::decode::Decoder::Dahua(Default::default()),
        tz,
        options: toml::Table::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Intelbras firmware writes `CreateTime` as the local wall time: read
    /// in the source's zone, the cursor moves (before, every record had no
    /// time and catch-up stepped one second per request forever).
    #[test]
    fn intelbras_local_create_time_is_read_in_the_source_zone() {
        let text =
            include_str!("../../tests/fixtures/captures/intelbras_recordfinder_localtime.txt");
        let (found, r) = found_records(text, Some(chrono_tz::America::Sao_Paulo));
        assert_eq!(found, Some(3));
        assert_eq!(
            r[0].time.map(|t| t.to_rfc3339()),
            Some("2026-05-15T13:14:27+00:00".to_string())
        );
        assert!(r.iter().all(|x| x.time.is_some()));
        assert!(found_records(text, None).1.iter().all(|x| x.time.is_none()));
    }

    #[test]
    fn record_finder_answer_splits_into_records() {
        let text = "found=2\r\nrecords[0].RecNo=5521\r\nrecords[0].UserID=1043\r\nrecords[0].CreateTime=1741067832\r\nrecords[0].Status=1\r\nrecords[1].RecNo=5523\r\nrecords[1].UserID=7\r\nrecords[1].CreateTime=1741067900\r\nrecords[1].CreateTimeRealUTC=1741067901\r\n";
        let (found, r) = found_records(text, None);
        assert_eq!(found, Some(2));
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].rec_no, Some(5521));
        assert_eq!(r[0].time.unwrap().timestamp(), 1741067832);
        assert_eq!(r[1].time.unwrap().timestamp(), 1741067901);
        assert!(r[1].text.starts_with("records[0].RecNo=5523\r\n"));
        assert_eq!(found_records("found=0\r\n", None), (Some(0), vec![]));
    }

    #[test]
    fn live_part_meta() {
        let p = b"Code=AccessControl;action=Pulse;index=0;data={\n   \"CardNo\" : \"\",\n   \"Method\" : 15,\n   \"RecNo\" : 2127,\n   \"Status\" : 1,\n   \"Type\" : \"Entry\",\n   \"UTC\" : 1651153432,\n   \"UserID\" : \"1\"\n}\n";
        let (ac, t, no) = part_meta(p);
        assert!(ac);
        assert_eq!((t.unwrap().timestamp(), no), (1651153432, Some(2127)));
        assert!(!part_meta(b"Heartbeat").0);
        assert!(!part_meta(b"Code=VideoMotion;action=Start;index=0").0);
    }
}
