//! What the pipeline quarantines and how it comes back out.
//!
//! - [`Bounded`]: at most [`MAX_BAD_RECORDS_PER_UPLOAD`] bad records of one
//!   upload are kept one by one; the rest are counted in one summary row
//!   (a 2 MiB upload of garbage lines is one bounded set of rows, not half
//!   a million). Unknown-employee punches are never cut short: they are
//!   punches waiting for HR.
//! - [`strip_photos`]: base64 photos (face terminals send them inline) and
//!   JPEG bytes never reach a quarantine row or a punch's raw text.
//! - [`replay`]: `attendd quarantine replay` and `POST
//!   /api/v1/quarantine/replay` decode quarantined payloads again with
//!   today's employees and aliases, store what now resolves (the store's
//!   dedupe keys make it once), mark the row resolved with an audit row,
//!   and re-classify the days touched.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Days, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::domain::time::to_local;
use crate::ingest::decode::{DecodeContext, Decoder};
use crate::pipeline::{Directory, SourceDecoding};
use crate::store::{
    Inserted, NewPunch, NewQuarantine, QuarantineKind, QuarantineRow, Store, StoreError,
};

/// Bad records of one upload kept individually; the rest are counted.
pub const MAX_BAD_RECORDS_PER_UPLOAD: usize = 100;

/// An id or alias as shown in a reason: at most 64 characters.
pub fn shown(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A bounded label for an ignored event's reason, for the metric: lower
/// case, digits folded to `N`, up to the first `(` or `:`, at most 48
/// characters; after 64 distinct kinds, `other`.
pub fn ignored_kind(reason: &str) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut k = String::new();
    let mut digits = false;
    for c in reason.chars() {
        if c == '(' || c == ':' || k.len() >= 48 {
            break;
        }
        if c.is_ascii_digit() {
            if !digits {
                k.push('N');
            }
            digits = true;
            continue;
        }
        digits = false;
        if c.is_alphanumeric() || c == ' ' || c == '_' || c == '-' || c == '.' {
            k.extend(c.to_lowercase());
        }
    }
    let k = k.trim().to_string();
    let k = if k.is_empty() { "other".to_string() } else { k };
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if seen.contains(&k) {
        return k;
    }
    if seen.len() >= 64 {
        return "other".into();
    }
    seen.insert(k.clone());
    k
}

fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' || b == b'\\'
}

/// Shortest run of base64 characters taken for a photo.
const PHOTO_MIN: usize = 512;

/// The payload with photos removed: in JSON, every string that is a
/// `data:image/…` URL or a long run of base64; in any other text, runs of
/// 512 or more base64 characters; and everything from a JPEG start marker
/// on. Each is replaced by `<photo removed: N bytes>`.
pub fn strip_photos(payload: &[u8]) -> Vec<u8> {
    let start = payload
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if payload.get(start) == Some(&b'{')
        && payload.len() > PHOTO_MIN
        && let Ok(mut v) = serde_json::from_slice::<Value>(payload)
    {
        if strip_json(&mut v) {
            return v.to_string().into_bytes();
        }
        return payload.to_vec();
    }
    let mut out = Vec::with_capacity(payload.len().min(64 * 1024));
    let mut i = 0;
    while i < payload.len() {
        if payload[i..].starts_with(&[0xFF, 0xD8, 0xFF]) {
            out.extend_from_slice(
                format!("<photo removed: {} bytes>", payload.len() - i).as_bytes(),
            );
            break;
        }
        if is_b64(payload[i]) {
            let run = payload[i..].iter().take_while(|&&b| is_b64(b)).count();
            if run >= PHOTO_MIN {
                out.extend_from_slice(format!("<photo removed: {run} bytes>").as_bytes());
            } else {
                out.extend_from_slice(&payload[i..i + run]);
            }
            i += run;
            continue;
        }
        out.push(payload[i]);
        i += 1;
    }
    out
}

fn strip_json(v: &mut Value) -> bool {
    match v {
        Value::String(s) => {
            let photo = s.starts_with("data:image/")
                || (s.len() >= 200 && s.bytes().all(|b| is_b64(b) || b == b'\n' || b == b'\r'));
            if photo {
                *s = format!("<photo removed: {} bytes>", s.len());
            }
            photo
        }
        Value::Array(a) => a.iter_mut().fold(false, |acc, x| strip_json(x) | acc),
        Value::Object(o) => o.values_mut().fold(false, |acc, x| strip_json(x) | acc),
        _ => false,
    }
}

/// One upload: its source, its arrival time and, for transports where
/// every message stands alone (MQTT), the message's place in the batch.
pub type Upload = (Arc<str>, DateTime<Utc>, Option<usize>);

/// The quarantine rows of one commit, at most
/// [`MAX_BAD_RECORDS_PER_UPLOAD`] undecodable records per upload and one
/// summary row for the rest.
#[derive(Debug, Default)]
pub struct Bounded {
    rows: Vec<NewQuarantine>,
    uploads: BTreeMap<Upload, (usize, usize)>,
}

impl Bounded {
    /// Keeps the row `q` makes unless its upload already has 100 kept bad
    /// records (then `q` is not called: nothing is built for a counted
    /// record).
    pub fn push(&mut self, upload: &Upload, q: impl FnOnce() -> NewQuarantine) {
        let e = self.uploads.entry(upload.clone()).or_default();
        if e.0 < MAX_BAD_RECORDS_PER_UPLOAD {
            e.0 += 1;
            self.rows.push(q());
        } else {
            e.1 += 1;
        }
    }

    /// Keeps `q` whatever the count (unknown-employee punches).
    pub fn push_always(&mut self, q: NewQuarantine) {
        self.rows.push(q);
    }

    /// The rows, with one summary per upload that had more.
    pub fn finish(mut self) -> Vec<NewQuarantine> {
        for ((source, at, _), (_, over)) in self.uploads {
            if over > 0 {
                self.rows.push(NewQuarantine {
                    source: source.to_string(),
                    payload: format!("{over} further bad record(s)").into_bytes(),
                    reason: format!(
                        "{over} further bad record(s) of this upload were counted, not kept (the first {MAX_BAD_RECORDS_PER_UPLOAD} are kept one by one)"
                    ),
                    kind: QuarantineKind::Summary,
                    replay: None,
                    received_at: Some(at),
                });
            }
        }
        self.rows
    }
}

/// Which rows a replay takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every unresolved row.
    All,
    /// These rows.
    Ids(Vec<i64>),
}

/// What a replay did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Rows looked at.
    pub examined: usize,
    /// Rows whose content is now stored (or deliberately ignored); marked
    /// resolved, audited.
    pub resolved: usize,
    /// Punches stored now.
    pub stored: usize,
    /// Punches that were already stored.
    pub duplicates: usize,
    /// Rows that still do not resolve, with why.
    pub unresolved: Vec<(i64, String)>,
    /// Rows not replayed (already resolved, summaries, unknown ids), with why.
    pub skipped: Vec<(i64, String)>,
    /// Employee-days re-classified.
    pub evaluated: usize,
}

/// How to decode rows: the sources of the configuration (for rows kept
/// before replay information existed, with `--source NAME`).
#[derive(Debug, Default)]
pub struct Decodings {
    /// Source name → decoding.
    pub sources: HashMap<Arc<str>, SourceDecoding>,
    /// Source name → device id (ZKTeco push terminals).
    pub devices: HashMap<Arc<str>, String>,
}

impl Decodings {
    /// The decodings of every source of `config`.
    pub fn from_config(config: &crate::config::Config) -> Result<Decodings, String> {
        let empty = toml::Table::new();
        let tz_of = |tz: &Option<String>| {
            tz.as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(config.policy.tz)
        };
        let mut sources = HashMap::new();
        for (i, m) in config.sources.mqtt.iter().enumerate() {
            let options = m.decoder_options.clone().unwrap_or_default();
            let decoder = Decoder::with_options(&m.decoder, &options)
                .map_err(|e| format!("source.mqtt[{i}].decoder: {e}"))?;
            sources.insert(
                Arc::from(format!("mqtt[{i}]").as_str()),
                SourceDecoding {
                    decoder,
                    tz: tz_of(&m.timezone),
                    options,
                },
            );
        }
        for (i, s) in config.sources.serial.iter().enumerate() {
            let options = s.decoder_options.clone().unwrap_or_default();
            let decoder =
                Decoder::with_options(&s.decoder, s.decoder_options.as_ref().unwrap_or(&empty))
                    .map_err(|e| format!("source.serial[{i}].decoder: {e}"))?;
            sources.insert(
                Arc::from(format!("serial[{i}]").as_str()),
                SourceDecoding {
                    decoder,
                    tz: tz_of(&s.timezone),
                    options,
                },
            );
        }
        let (push, devices) = crate::source::push::decodings(&config.sources, config.policy.tz)?;
        sources.extend(push);
        Ok(Decodings { sources, devices })
    }
}

/// One row's decoding: the decoder, zone, device, topic and the pipeline
/// source name punches are stored under.
struct RowDecoding {
    decoder: Decoder,
    tz: chrono_tz::Tz,
    device: Option<String>,
    topic: Option<String>,
    source: String,
}

fn row_decoding(
    row: &QuarantineRow,
    fallback: Option<&str>,
    d: &Decodings,
) -> Result<RowDecoding, String> {
    if let Some(info) = &row.replay {
        let options: toml::Table = if info.decoder_options.trim().is_empty() {
            toml::Table::new()
        } else {
            serde_json::from_str(&info.decoder_options)
                .map_err(|e| format!("stored decoder options do not parse: {e}"))?
        };
        let decoder = Decoder::with_options(&info.decoder, &options).map_err(|e| e.to_string())?;
        let tz = info
            .timezone
            .parse()
            .map_err(|_| format!("stored zone {:?} is not an IANA zone", info.timezone))?;
        return Ok(RowDecoding {
            decoder,
            tz,
            device: info.device_id.clone(),
            topic: info.topic.clone(),
            source: info.pipeline_source.clone(),
        });
    }
    let Some(name) = fallback else {
        return Err(
            "kept before replay information was recorded: name its source with --source NAME (e.g. mqtt[0])"
                .into(),
        );
    };
    let src = d.sources.get(name).ok_or_else(|| {
        let mut known: Vec<&str> = d.sources.keys().map(|k| &**k).collect();
        known.sort_unstable();
        format!(
            "--source {name:?} is not a configured source ({})",
            known.join(", ")
        )
    })?;
    // Old rows name their origin `SOURCE[:TOPIC][ line N]`.
    let topic = row
        .source
        .strip_prefix(name)
        .and_then(|t| t.strip_prefix(':'))
        .map(|t| t.split(" line ").next().unwrap_or(t).to_string())
        .filter(|t| !t.is_empty());
    Ok(RowDecoding {
        decoder: src.decoder.clone(),
        tz: src.tz,
        device: d.devices.get(name).cloned(),
        topic,
        source: name.to_string(),
    })
}

/// Replays the selected rows (see the module doc). `fallback` names the
/// source of rows kept without replay information.
#[allow(clippy::too_many_arguments)]
pub async fn replay(
    store: &Store,
    policies: &(impl crate::policy::PolicySet + ?Sized),
    decodings: &Decodings,
    selection: &Selection,
    fallback: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ReplayReport, StoreError> {
    let policies = &*policies.as_policies();
    let directory = Directory::new(&store.employees().await?);
    let mut report = ReplayReport::default();
    let mut touched: BTreeMap<String, (chrono::NaiveDate, chrono::NaiveDate)> = BTreeMap::new();
    let mut after = 0i64;
    loop {
        let rows = match selection {
            Selection::All => store.quarantine_unresolved(after, 500).await?,
            Selection::Ids(ids) if after == 0 => {
                let rows = store.quarantine_rows(ids).await?;
                for id in ids {
                    if !rows.iter().any(|r| r.id == *id) {
                        report.skipped.push((*id, "no such quarantine row".into()));
                    }
                }
                rows
            }
            Selection::Ids(_) => Vec::new(),
        };
        let Some(last) = rows.last() else { break };
        after = last.id.max(1);
        for row in &rows {
            report.examined += 1;
            if let Some((at, by)) = &row.resolved {
                report.skipped.push((
                    row.id,
                    format!("already replayed {} by {by}", at.to_rfc3339()),
                ));
                continue;
            }
            if row.kind == QuarantineKind::Summary {
                report
                    .skipped
                    .push((row.id, "a count of records that were not kept".into()));
                continue;
            }
            let rd = match row_decoding(row, fallback, decodings) {
                Ok(rd) => rd,
                Err(why) => {
                    report.unresolved.push((row.id, why));
                    continue;
                }
            };
            let mut cx = DecodeContext::new(rd.tz, row.received_at);
            if let Some(t) = &rd.topic {
                cx = cx.with_topic(t);
            }
            if let Some(d) = &rd.device {
                cx = cx.with_device(d);
            }
            let decoded = match rd.decoder.decode(&row.payload, &cx) {
                Ok(d) => d,
                Err(e) => {
                    report
                        .unresolved
                        .push((row.id, format!("{}: {e}", rd.decoder.name())));
                    continue;
                }
            };
            let origin = match &rd.topic {
                Some(t) => format!("{}:{t}", rd.source),
                None => rd.source.clone(),
            };
            let raw: String = String::from_utf8_lossy(&row.payload)
                .chars()
                .take(2048)
                .collect();
            let mut punches = Vec::new();
            let mut why = decoded
                .line_errors
                .first()
                .map(|le| format!("line {}: {}", le.line, le.error));
            for p in &decoded.punches {
                match directory.resolve(&p.identity, p.device_id.as_deref()) {
                    Ok(employee_id) => punches.push(NewPunch {
                        employee_id,
                        identity: p.identity.as_str().to_string(),
                        time: p.at,
                        device_id: p.device_id.clone(),
                        event_id: p.event_id.clone(),
                        source: origin.clone(),
                        raw: Some(raw.clone()),
                        direction: p.kind.state().map(String::from),
                    }),
                    Err(e) => why = why.or(Some(e)),
                }
            }
            let outcomes = store.insert_punches(&punches).await?;
            let mut new = 0usize;
            for (p, o) in punches.iter().zip(&outcomes) {
                if let Inserted::New(_) = o {
                    new += 1;
                    let d = to_local(policies.default_policy().tz, p.time).date_naive();
                    let e = touched
                        .entry(p.employee_id.clone())
                        .or_insert((d - Days::new(1), d));
                    e.0 = e.0.min(d - Days::new(1));
                    e.1 = e.1.max(d);
                }
            }
            report.stored += new;
            report.duplicates += punches.len() - new;
            if let Some(why) = why {
                report.unresolved.push((row.id, why));
                continue;
            }
            let outcome = json!({
                "stored": new, "duplicates": punches.len() - new,
                "ignored": decoded.ignored.len(), "punches": punches.len(),
            });
            if store
                .resolve_quarantine(row.id, &outcome, actor, now)
                .await?
            {
                report.resolved += 1;
            } else {
                report
                    .skipped
                    .push((row.id, "replayed meanwhile by another run".into()));
            }
        }
        if matches!(selection, Selection::Ids(_)) {
            break;
        }
    }
    if !touched.is_empty() {
        let from = touched.values().map(|r| r.0).min().unwrap_or_default();
        let to = touched.values().map(|r| r.1).max().unwrap_or_default();
        let ids: Vec<String> = touched.keys().cloned().collect();
        report.evaluated = store
            .recompute(
                policies,
                Some(&ids),
                from,
                to,
                "quarantine replay",
                actor,
                now,
            )
            .await?
            .evaluated;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_removed_from_json_and_text() {
        let photo = "/9j/".to_string() + &"A".repeat(900);
        let j = format!(
            r#"{{"PanoImage":{{"Name":"a.jpg","Data":"{photo}"}},"pic":"data:image/jpeg;base64,/9j/4A","x":"short"}}"#
        );
        let out = String::from_utf8(strip_photos(j.as_bytes())).unwrap();
        assert!(!out.contains("AAAA"), "{out}");
        assert!(out.contains("<photo removed: 904 bytes>"), "{out}");
        assert!(out.contains("\"x\":\"short\""), "{out}");
        assert!(!out.contains("data:image"), "{out}");
        let t = format!("Code=AccessControl;data={{\"Photo\":\"{photo}\"}}");
        let out = String::from_utf8(strip_photos(t.as_bytes())).unwrap();
        assert!(out.starts_with("Code=AccessControl;"), "{out}");
        assert!(!out.contains("AAAA"), "{out}");
        let jpeg = [b"head ".as_slice(), &[0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]].concat();
        assert_eq!(strip_photos(&jpeg), b"head <photo removed: 7 bytes>");
        assert_eq!(
            strip_photos(b"0217\t2026-11-02 08:29:13"),
            b"0217\t2026-11-02 08:29:13"
        );
    }

    #[test]
    fn ignored_kinds_are_bounded_labels() {
        assert_eq!(
            ignored_kind("VerifyStatus 2 (refused) is not a punch"),
            "verifystatus N"
        );
        assert_eq!(ignored_kind("rtlog event 27: door"), "rtlog event N");
        assert_eq!(ignored_kind(""), "other");
    }

    #[test]
    fn an_upload_keeps_100_bad_records_and_counts_the_rest() {
        let mut b = Bounded::default();
        let up: Upload = (Arc::from("zk_push[0]:A"), Utc::now(), None);
        let other: Upload = (Arc::from("zk_push[0]:A"), Utc::now(), Some(3));
        for _ in 0..250 {
            b.push(&up, NewQuarantine::default);
        }
        b.push(&other, NewQuarantine::default);
        b.push_always(NewQuarantine {
            kind: QuarantineKind::Unknown,
            ..Default::default()
        });
        let rows = b.finish();
        assert_eq!(rows.len(), 100 + 1 + 1 + 1);
        let summary = rows.last().unwrap();
        assert_eq!(summary.kind, QuarantineKind::Summary);
        assert!(
            summary.reason.starts_with("150 further"),
            "{}",
            summary.reason
        );
    }
}
