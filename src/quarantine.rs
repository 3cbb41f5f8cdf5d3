//! What the pipeline quarantines and how it comes back out.
//!
//! - [`Bounded`]: at most [`MAX_BAD_RECORDS_PER_UPLOAD`] bad records of one
//!   upload are kept one by one; the rest are counted in one summary row
//!   (a 2 MiB upload of garbage lines is one bounded set of rows, not half
//!   a million). Unknown-employee punches are never cut short: they are
//!   punches waiting for HR.
//! - [`strip_photos`]: base64 photos (face terminals send them inline) and
//!   JPEG bytes never reach a quarantine row or a punch's raw text.
//! - [`crate::pipeline::replay`]: `attendd quarantine replay` and `POST
//!   /api/v1/quarantine/replay` decode quarantined payloads again with
//!   today's employees and aliases, store what now resolves (the store's
//!   dedupe keys make it once), mark the row resolved with an audit row,
//!   and re-classify the days touched.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::store::{NewQuarantine, QuarantineKind};

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
