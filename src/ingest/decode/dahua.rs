//! `dahua`: Dahua (and OEM, e.g. Intelbras) `AccessControl` events
//! (`devices.md` §3): the event-stream text parts
//! `Code=AccessControl;action=Pulse;index=0;data={…}` (the JSON may span
//! lines; a body may hold several parts with multipart boundaries and
//! `Heartbeat` parts between them), the HTTP-upload envelope
//! `{"Events":[{"Code":…,"Action":…,"Data":{…}}]}`, and the `recordFinder`
//! backfill answer (`records[0].UserID=1043` lines).
//!
//! Traps handled: `UserID` is text and empty for remote/button opens (not a
//! punch); `Status` 0 is a failed access (not a punch); `RecNo` is the dedupe
//! key; time is `RealUTC`/`CreateTimeRealUTC` when present, else
//! `LocaleTime` in the device's zone, and `UTC`/`CreateTime` is
//! cross-checked against it because firmware disagree whether it is true
//! UTC or local wall time written as epoch (a disagreement is a warning,
//! `LocaleTime` wins); with `UTC` alone, [`DahuaOptions::utc_is_local`]
//! decides. Direction: a configured `AttendanceState` mapping, else `Type`
//! `Entry`/`Exit`. Backfill records are replays. Deflate-compressed uploads
//! must be inflated by the transport before this decoder.
//!
//! Also read: Intelbras/Dahua `_DoorFace_` parts (a recognised face;
//! `UserID` `FFFFFF` is an unknown face, ignored); an event with no time at
//! all is stamped on arrival with a warning, never dropped; a
//! `recordFinder` answer is recognised by its structure (`found=N` and
//! `records[i].Key=Value` lines), never by a substring, and its
//! `CreateTime` is epoch seconds (Dahua) or local wall time (Intelbras).
//! Parts start at a line that starts with `Code=`. `RecNo` is a per-device
//! counter and uploads often name no device (then `PhysicalAddress` or
//! `MacAddress` when the event has one): the store's key adds the employee
//! and the instant.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::value::{
    at, cap_record, from_epoch, int, invalid, json_prefix, missing, parse_json, parse_local, text,
};
use super::{
    DecodeContext, DecodeError, Decoded, DecodedPunch, Identity, LineError, PunchKind, Verify,
};
use crate::domain::time::resolve_local;

/// Options of the `dahua` decoder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DahuaOptions {
    /// `AttendanceState` values and the punch kind each means on this site
    /// (the mapping is configurable on the terminal). Default: none, so
    /// `Type` decides.
    pub attendance_states: Vec<AttendanceState>,
    /// Read a lone `UTC` (no `RealUTC`, no `LocaleTime`) as local wall time
    /// written as epoch. Default false: it is true UTC.
    pub utc_is_local: bool,
}

/// One `AttendanceState` mapping.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttendanceState {
    /// The terminal's value.
    pub value: i64,
    /// What it means.
    pub kind: PunchKind,
}

fn verify(method: Option<i64>) -> Verify {
    match method {
        None => Verify::Unknown,
        Some(0) => Verify::Password,
        Some(1) => Verify::Card,
        Some(6) => Verify::Fingerprint,
        Some(14) => Verify::Qr,
        Some(15) => Verify::Face,
        Some(m) => Verify::Other(u32::try_from(m).unwrap_or(u32::MAX)),
    }
}

fn epoch(field: &str, v: Option<&Value>) -> Result<Option<DateTime<Utc>>, DecodeError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match int(Some(v)) {
            Some(0) => Ok(None),
            Some(n) => from_epoch(field, n as f64).map(Some),
            None => Err(invalid(field, &v.to_string(), "is not epoch seconds")),
        },
    }
}

/// The instant and device wall time of one event, with a warning when
/// `UTC` contradicts `LocaleTime`.
fn event_time(
    data: &Value,
    cx: &DecodeContext,
    o: &DahuaOptions,
    out: &mut Decoded,
) -> Result<(DateTime<Utc>, Option<NaiveDateTime>), DecodeError> {
    let real = epoch("RealUTC", at(data, "RealUTC"))?;
    let local = match text(at(data, "LocaleTime")) {
        Some(t) => Some(parse_local("LocaleTime", &t)?),
        None => None,
    };
    let utc = epoch("UTC", at(data, "UTC"))?;
    if let Some(real) = real {
        return Ok((real, local));
    }
    match (local, utc) {
        (Some(local), utc) => {
            let at = resolve_local(cx.device_tz, local);
            if let Some(utc) = utc {
                let true_utc = (utc - at).num_seconds().abs() <= 1;
                let local_epoch = (utc.naive_utc() - local).num_seconds().abs() <= 1;
                if !true_utc && !local_epoch {
                    out.warnings.push(format!(
                        "field \"UTC\": {} disagrees with \"LocaleTime\" {local} in {} by {} s; using LocaleTime",
                        utc.timestamp(),
                        cx.device_tz,
                        (utc - at).num_seconds()
                    ));
                }
            }
            Ok((at, Some(local)))
        }
        (None, Some(utc)) if o.utc_is_local => {
            let local = utc.naive_utc();
            Ok((resolve_local(cx.device_tz, local), Some(local)))
        }
        (None, Some(utc)) => Ok((utc, None)),
        // Issue 11 (8): some events carry no time at all (Intelbras
        // `_DoorFace_`, a bare `{"UserID":…}`): the punch is stamped on
        // arrival, as a card reader's is (no device wall time), and flagged.
        (None, None) => {
            out.warnings.push(format!(
                "event without RealUTC, LocaleTime or UTC: stamped on arrival ({})",
                cx.received_at.to_rfc3339()
            ));
            Ok((cx.received_at, None))
        }
    }
}

fn access_control(
    data: &Value,
    cx: &DecodeContext,
    o: &DahuaOptions,
    replay: bool,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    if !data.is_object() {
        return Err(missing("data"));
    }
    if int(at(data, "Status")) == Some(0) {
        let code = int(at(data, "ErrorCode")).unwrap_or(0);
        out.ignore(format!("access failed (Status 0, ErrorCode {code})"));
        return Ok(());
    }
    let Some(user) = text(at(data, "UserID")) else {
        out.ignore("no UserID (remote or exit-button open)");
        return Ok(());
    };
    let (at_utc, device_local) = event_time(data, cx, o, out)?;
    let state = int(at(data, "AttendanceState"));
    let kind = match o.attendance_states.iter().find(|s| Some(s.value) == state) {
        Some(s) => s.kind,
        None => match text(at(data, "Type")).as_deref() {
            Some("Entry") => PunchKind::CheckIn,
            Some("Exit") => PunchKind::CheckOut,
            _ => PunchKind::Unspecified,
        },
    };
    out.punches.push(DecodedPunch {
        identity: Identity::Employee(user),
        at: at_utc,
        device_local,
        device_id: device(data, cx),
        event_id: text(at(data, "RecNo")),
        kind,
        verify: verify(int(at(data, "Method"))),
        replay,
    });
    Ok(())
}

/// The device: the source's, else what the event names (`PhysicalAddress`,
/// `MacAddress`). `Code=AccessControl` uploads often name none; then the
/// dedupe key rests on employee and instant with `RecNo` (issue 11, 3).
fn device(data: &Value, cx: &DecodeContext) -> Option<String> {
    cx.device_id
        .map(str::to_string)
        .or_else(|| text(at(data, "PhysicalAddress")))
        .or_else(|| text(at(data, "MacAddress")))
}

/// Intelbras/Dahua `_DoorFace_`: a face recognised at the door. `UserID`
/// `FFFFFF` (or empty) is a face the terminal did not recognise. Often no
/// time but `RealUTC`, sometimes none at all (stamped on arrival).
fn door_face(
    data: &Value,
    cx: &DecodeContext,
    o: &DahuaOptions,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    if !data.is_object() {
        return Err(missing("data"));
    }
    let user = match text(at(data, "UserID")) {
        Some(u) if !u.eq_ignore_ascii_case("FFFFFF") => u,
        _ => {
            out.ignore("face not recognised (no UserID)");
            return Ok(());
        }
    };
    let (at_utc, device_local) = event_time(data, cx, o, out)?;
    out.punches.push(DecodedPunch {
        identity: Identity::Employee(user),
        at: at_utc,
        device_local,
        device_id: device(data, cx),
        event_id: None,
        kind: PunchKind::Unspecified,
        verify: Verify::Face,
        replay: false,
    });
    Ok(())
}

/// One event of either envelope: its code, action and data.
fn event(
    code: &str,
    action: Option<&str>,
    data: Option<&Value>,
    cx: &DecodeContext,
    o: &DahuaOptions,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let face = code.eq_ignore_ascii_case("_DoorFace_");
    if !code.eq_ignore_ascii_case("AccessControl") && !face {
        out.ignore(format!("event code {code:?} is not AccessControl"));
        return Ok(());
    }
    if let Some(a) = action.filter(|a| !a.eq_ignore_ascii_case("Pulse")) {
        out.ignore(format!("action {a:?} is not Pulse"));
        return Ok(());
    }
    let data = data.ok_or_else(|| missing("data"))?;
    if face {
        door_face(data, cx, o, out)
    } else {
        access_control(data, cx, o, false, out)
    }
}

fn get_ci<'v>(m: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn events_envelope(
    v: &Value,
    cx: &DecodeContext,
    o: &DahuaOptions,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let list = at(v, "Events")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("Events"))?;
    for (i, e) in list.iter().enumerate() {
        let r = match e
            .as_object()
            .and_then(|m| Some((m, text(get_ci(m, "Code"))?)))
        {
            Some((m, code)) => {
                let action = text(get_ci(m, "Action"));
                event(&code, action.as_deref(), get_ci(m, "Data"), cx, o, out)
            }
            None => Err(missing("Events[].Code")),
        };
        keep(out, i + 1, || e.to_string(), r);
    }
    Ok(())
}

/// Byte offsets where a line starts with `Code=`: the start of an event
/// part. Only there: `ErrorCode=` in a `recordFinder` answer, or `Code=`
/// inside a value, is not a part (issue 11, defect 10).
fn part_starts(text: &str) -> Vec<usize> {
    let mut v = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let lead = line.len() - line.trim_start_matches([' ', '\t', '\r']).len();
        if line[lead..].starts_with("Code=") {
            v.push(line_start + lead);
        }
        line_start += line.len();
    }
    v
}

/// `Code=…;action=…;index=…;data={…}` parts (the header on one line, or one
/// `key=value` per line), each starting a line.
fn text_parts(text: &str, cx: &DecodeContext, o: &DahuaOptions, out: &mut Decoded) {
    let starts = part_starts(text);
    let mut resume = 0;
    for (n, &start) in starts.iter().enumerate() {
        if start < resume {
            // Inside the JSON of the previous part.
            continue;
        }
        let n = n + 1;
        let limit = starts
            .iter()
            .find(|&&s| s > start)
            .copied()
            .unwrap_or(text.len());
        let line_end = text[start..].find('\n').map_or(text.len(), |e| start + e);
        let head_end = text[start..limit].find("data=").map(|d| start + d);
        let head = &text[start..head_end.unwrap_or(line_end)];
        let mut code = "";
        let mut action = None;
        for kv in head.split([';', '\n']) {
            match kv.trim().split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("Code") => code = v.trim(),
                Some((k, v)) if k.eq_ignore_ascii_case("action") => action = Some(v.trim()),
                _ => {}
            }
        }
        let (r, next) = match head_end {
            Some(d) => match json_prefix(text, d + "data=".len()) {
                Ok((v, end)) => (event(code, action, Some(&v), cx, o, out), end),
                // Where a broken part ends is unknown: resume at the next
                // line that starts a part.
                Err(e) => (Err(e), line_end),
            },
            None => (event(code, action, None, cx, o, out), line_end),
        };
        // The part's own text (quarantined when it cannot be read).
        let own = text.get(start..next.max(start + 1)).unwrap_or(head);
        keep(out, n, || own.trim_end().to_string(), r);
        resume = next;
    }
}

/// A `recordFinder.cgi` answer: `found=N` (or `totalCount=N`) first and
/// `records[i].Key=Value` lines, recognised by that structure.
fn is_record_finder(text: &str) -> bool {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return false;
    };
    let counter = |l: &str| {
        ["found=", "totalCount="].iter().any(|p| {
            l.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    let record = |l: &str| l.starts_with("records[") && l.contains("].") && l.contains('=');
    (counter(first) || record(first))
        && text
            .lines()
            .map(str::trim)
            .all(|l| l.is_empty() || counter(l) || record(l))
}

/// `records[N].Key=Value` lines of a `recordFinder` answer, as (N, data
/// object).
fn records(text: &str) -> Vec<(usize, Value)> {
    let mut by_index: std::collections::BTreeMap<usize, Map<String, Value>> = Default::default();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("records[") else {
            continue;
        };
        let Some((idx, rest)) = rest.split_once("].") else {
            continue;
        };
        let (Ok(idx), Some((key, value))) = (idx.parse::<usize>(), rest.split_once('=')) else {
            continue;
        };
        let value = value.trim();
        let key = match key {
            "CreateTimeRealUTC" => "RealUTC",
            // Epoch seconds on Dahua; Intelbras firmware write the local
            // wall time there (`2026-05-15 10:14:27`).
            "CreateTime" if value.bytes().all(|b| b.is_ascii_digit()) => "UTC",
            "CreateTime" => "LocaleTime",
            k => k,
        };
        by_index
            .entry(idx)
            .or_default()
            .insert(key.to_string(), Value::String(value.to_string()));
    }
    by_index
        .into_iter()
        .map(|(i, m)| (i, Value::Object(m)))
        .collect()
}

/// The lines of record `idx` of a `recordFinder` answer, as sent.
fn record_text(text: &str, idx: usize) -> String {
    let prefix = format!("records[{idx}].");
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with(&prefix))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Decodes one Dahua body.
pub fn decode(bytes: &[u8], cx: &DecodeContext, o: &DahuaOptions) -> Result<Decoded, DecodeError> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let mut out = Decoded::default();
    // Formats are told apart by structure, never by a substring (issue 11,
    // defect 10: `ErrorCode=` of a record contains `Code=`).
    if is_record_finder(text) {
        let recs = records(text);
        if recs.is_empty() {
            out.ignore("recordFinder answer without records");
        }
        for (i, (idx, r)) in recs.into_iter().enumerate() {
            let res = access_control(&r, cx, o, true, &mut out);
            keep(&mut out, i + 1, || record_text(text, idx), res);
        }
    } else if text.trim_start().starts_with('{') {
        events_envelope(&parse_json(text.as_bytes())?, cx, o, &mut out)?;
    } else if !part_starts(text).is_empty() {
        text_parts(text, cx, o, &mut out);
    } else if text.lines().any(|l| l.trim() == "Heartbeat") {
        out.ignore("heartbeat");
    } else if !text.trim().is_empty() {
        return Err(DecodeError::Unrecognised(
            "no Code=…;data= part, Events envelope or recordFinder answer".into(),
        ));
    }
    if out.punches.is_empty() && out.ignored.is_empty() && out.line_errors.len() == 1 {
        // A body of one event: its error is the body's.
        return Err(out.line_errors.swap_remove(0).error);
    }
    out.or_first_error()
}

/// Files the error of one event of a multi-event body beside the others,
/// so one bad event does not lose the good ones.
fn keep(out: &mut Decoded, n: usize, shown: impl FnOnce() -> String, r: Result<(), DecodeError>) {
    if let Err(error) = r {
        out.line_errors.push(LineError {
            line: n,
            text: cap_record(&shown()),
            error,
        });
    }
}

/// Composed payloads for the fuzz corpus.
#[cfg(test)]
pub(crate) const SAMPLES: &[&[u8]] = &[
    b"--myboundary\r\nContent-Type: text/plain\r\n\r\nCode=AccessControl;action=Pulse;index=0;data={\n\"CardNo\":\"\",\"Door\":0,\"ErrorCode\":0,\"LocaleTime\":\"2025-03-04 08:57:12\",\"Method\":15,\"ReaderID\":\"1\",\n\"RecNo\":5521,\"Status\":1,\"Type\":\"Entry\",\"UTC\":1741067832,\"UserID\":\"1043\",\"UserType\":0}\r\n",
    br#"{"Events":[{"Code":"AccessControl","Action":"Pulse","Index":0,"Data":{"UserID":"0217","RecNo":"5522","Status":1,"Method":1,"Type":"Exit","LocaleTime":"2025-03-04 18:02:05","RealUTC":1741100525}}]}"#,
    b"found=2\r\nrecords[0].RecNo=5521\r\nrecords[0].UserID=1043\r\nrecords[0].CreateTime=1741067832\r\nrecords[0].Status=1\r\nrecords[0].Method=15\r\nrecords[1].RecNo=5523\r\nrecords[1].UserID=\r\nrecords[1].CreateTime=1741067900\r\nrecords[1].Status=1\r\n",
];

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn dec(bytes: &[u8]) -> Result<Decoded, DecodeError> {
        decode(
            bytes,
            &cx(IST).with_device("dahua-1"),
            &DahuaOptions::default(),
        )
    }

    fn sample() -> String {
        String::from_utf8(SAMPLES[0].to_vec()).unwrap()
    }

    #[test]
    fn multi_line_text_part() {
        let d = dec(SAMPLES[0]).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Employee("1043".into()));
        assert_eq!(p.at, utc("2025-03-04T05:57:12Z"));
        assert_eq!(p.event_id.as_deref(), Some("5521"));
        assert_eq!(p.kind, PunchKind::CheckIn);
        assert_eq!(p.verify, Verify::Face);
        assert_eq!(p.device_id.as_deref(), Some("dahua-1"));
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
    }

    #[test]
    fn several_parts_with_heartbeats_between() {
        let mut body = sample();
        body.push_str("--myboundary\r\nContent-Type: text/plain\r\n\r\nHeartbeat\r\n");
        body.push_str(
            &sample()
                .replace("5521", "5524")
                .replace("\"1043\"", "\"0217\""),
        );
        body.push_str("--myboundary\r\nContent-Type: text/plain\r\n\r\nCode=VideoMotion;action=Start;index=0\r\n");
        let d = dec(body.as_bytes()).unwrap();
        assert_eq!(d.punches.len(), 2);
        assert_eq!(d.punches[1].identity, Identity::Employee("0217".into()));
        assert_eq!(d.ignored.len(), 1);
    }

    #[test]
    fn events_envelope_prefers_real_utc() {
        let d = dec(SAMPLES[1]).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Employee("0217".into()));
        assert_eq!(p.kind, PunchKind::CheckOut);
        assert_eq!(p.verify, Verify::Card);
        assert_eq!(p.at, DateTime::from_timestamp(1741100525, 0).unwrap());
        assert_eq!(p.event_id.as_deref(), Some("5522"));
    }

    #[test]
    fn utc_written_as_local_epoch_is_accepted_and_wrong_utc_warned() {
        // 1741078632 = 08:57:12 read as UTC: the local-as-epoch firmware.
        let d = dec(sample().replace("1741067832", "1741078632").as_bytes()).unwrap();
        assert_eq!(one(&d).at, utc("2025-03-04T05:57:12Z"));
        assert!(d.warnings.is_empty());
        // Device zone wrong by two hours: LocaleTime wins, with a warning.
        let d = dec(sample().replace("1741067832", "1741060632").as_bytes()).unwrap();
        assert_eq!(one(&d).at, utc("2025-03-04T05:57:12Z"));
        assert_eq!(
            d.warnings,
            [
                "field \"UTC\": 1741060632 disagrees with \"LocaleTime\" 2025-03-04 08:57:12 in Europe/Istanbul by -7200 s; using LocaleTime"
            ]
        );
    }

    #[test]
    fn failed_and_anonymous_opens_are_ignored() {
        let d = dec(sample()
            .replace("\"Status\":1", "\"Status\":0")
            .replace("\"ErrorCode\":0", "\"ErrorCode\":16")
            .as_bytes())
        .unwrap();
        assert!(d.punches.is_empty());
        assert_eq!(
            d.ignored[0].reason,
            "access failed (Status 0, ErrorCode 16)"
        );
        let d = dec(sample().replace("\"1043\"", "\"\"").as_bytes()).unwrap();
        assert_eq!(
            d.ignored[0].reason,
            "no UserID (remote or exit-button open)"
        );
    }

    #[test]
    fn backfill_records_are_replays_with_utc() {
        let d = dec(SAMPLES[2]).unwrap();
        let p = one(&d);
        assert!(p.replay);
        assert_eq!(p.at, utc("2025-03-04T05:57:12Z"));
        assert_eq!(d.ignored.len(), 1);
        let o = DahuaOptions {
            utc_is_local: true,
            ..DahuaOptions::default()
        };
        let local = String::from_utf8(SAMPLES[2].to_vec())
            .unwrap()
            .replace("1741067832", "1741078632");
        let d = decode(local.as_bytes(), &cx(IST), &o).unwrap();
        assert_eq!(one(&d).at, utc("2025-03-04T05:57:12Z"));
    }

    #[test]
    fn attendance_state_mapping() {
        let o = DahuaOptions {
            attendance_states: vec![AttendanceState {
                value: 3,
                kind: PunchKind::BreakIn,
            }],
            ..DahuaOptions::default()
        };
        let s = sample().replace("\"UserType\":0", "\"UserType\":0,\"AttendanceState\":3");
        assert_eq!(
            one(&decode(s.as_bytes(), &cx(IST), &o).unwrap()).kind,
            PunchKind::BreakIn
        );
    }

    #[test]
    fn berlin_dst_gap_in_locale_time() {
        let s = sample()
            .replace("2025-03-04 08:57:12", "2025-03-30 02:30:00")
            .replace(",\"UTC\":1741067832", "");
        let d = decode(
            s.as_bytes(),
            &cx(chrono_tz::Europe::Berlin),
            &DahuaOptions::default(),
        )
        .unwrap();
        assert_eq!(one(&d).at, utc("2025-03-30T01:30:00Z"));
    }

    #[test]
    fn errors_name_the_field() {
        let e = dec(sample()
            .replace("2025-03-04 08:57:12", "2025-03-04")
            .as_bytes())
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "field \"LocaleTime\": \"2025-03-04\" is not YYYY-MM-DD HH:MM:SS"
        );
        let e = dec(b"Code=AccessControl;action=Pulse;index=0;data={\"UserID\":\"1\"").unwrap_err();
        assert!(matches!(e, DecodeError::NotJson(_)), "{e}");
        assert!(matches!(dec(b"hello"), Err(DecodeError::Unrecognised(_))));
    }

    /// Issue 11 (8): an event without a time is stamped on arrival and
    /// flagged (it was an error, "field LocaleTime: missing", before).
    #[test]
    fn an_event_without_a_time_is_stamped_on_arrival() {
        let c = cx(IST).with_device("dahua-1");
        let d = decode(
            br#"{"Events":[{"Code":"AccessControl","Action":"Pulse","Data":{"UserID":"1"}}]}"#,
            &c,
            &DahuaOptions::default(),
        )
        .unwrap();
        assert_eq!(one(&d).at, c.received_at);
        assert_eq!(one(&d).device_local, None);
        assert_eq!(one(&d).clock_skew(c.received_at), None);
        assert_eq!(d.warnings.len(), 1);
        assert!(
            d.warnings[0].contains("stamped on arrival"),
            "{:?}",
            d.warnings
        );
        // The shape of an Intelbras `_DoorFace_` part with no time at all.
        let body = b"--myboundary\r\nContent-Type: text/plain\r\n\r\nCode=_DoorFace_;action=Pulse;index=0;data={\"UserID\":\"22222\",\"Similarity\":92,\"CardNo\":\"\"}\r\n";
        let d = decode(body, &c, &DahuaOptions::default()).unwrap();
        assert_eq!(one(&d).identity, Identity::Employee("22222".into()));
        assert_eq!(one(&d).at, c.received_at);
        assert_eq!(one(&d).verify, Verify::Face);
    }

    /// Intelbras `_DoorFace_` capture (`tests/fixtures/captures/README.md`):
    /// a recognised face with `RealUTC`; `FFFFFF` is an unknown face.
    #[test]
    fn intelbras_door_face_capture() {
        let body = include_bytes!("../../../tests/fixtures/captures/intelbras_doorface.txt");
        let d = dec(body).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Employee("22222".into()));
        assert_eq!(p.at, DateTime::from_timestamp(1761311858, 0).unwrap());
        assert_eq!(p.verify, Verify::Face);
        let unknown = String::from_utf8_lossy(body).replace("\"22222\"", "\"FFFFFF\"");
        let d = dec(unknown.as_bytes()).unwrap();
        assert!(d.punches.is_empty());
        assert_eq!(d.ignored[0].reason, "face not recognised (no UserID)");
    }

    /// Issue 11 (10), on a live terminal's `recordFinder` answer: its
    /// `ErrorCode=0` lines made it look like an event stream (`Code=`), so
    /// both records were ignored.
    #[test]
    fn record_finder_answer_with_error_code_lines_is_read_as_records() {
        let body =
            include_bytes!("../../../tests/fixtures/captures/dahua_recordfinder_errorcode.txt");
        let d = decode(
            body,
            &cx(chrono_tz::Asia::Tashkent),
            &DahuaOptions::default(),
        )
        .unwrap();
        assert!(d.ignored.is_empty() && d.line_errors.is_empty(), "{d:?}");
        assert_eq!(d.punches.len(), 2);
        let p = &d.punches[0];
        assert_eq!(p.identity, Identity::Employee("108".into()));
        assert_eq!(p.at, DateTime::from_timestamp(1789554842, 0).unwrap());
        assert_eq!(p.event_id.as_deref(), Some("550478"));
        assert_eq!(p.kind, PunchKind::CheckIn);
        assert_eq!(p.verify, Verify::Face);
        assert!(p.replay);
        assert_eq!(d.punches[1].identity, Identity::Employee("28".into()));
        // A line that starts with `Code=` still starts an event part.
        assert!(!is_record_finder(
            "Code=AccessControl;action=Pulse;index=0;data={}"
        ));
        assert!(is_record_finder("found=0\r\n"));
        assert!(!is_record_finder("found=2\r\nhello\r\n"));
    }

    /// Intelbras firmware write `CreateTime` as local wall time.
    #[test]
    fn intelbras_record_finder_with_local_create_time() {
        let body =
            include_bytes!("../../../tests/fixtures/captures/intelbras_recordfinder_localtime.txt");
        let sp = chrono_tz::America::Sao_Paulo;
        let d = decode(body, &cx(sp), &DahuaOptions::default()).unwrap();
        assert_eq!(d.punches.len(), 2, "{d:?}");
        assert_eq!(d.ignored.len(), 1); // Status 0: access refused
        assert_eq!(d.punches[0].at, utc("2026-05-15T13:14:27Z"));
        assert_eq!(
            d.punches[0].device_local.unwrap().to_string(),
            "2026-05-15 10:14:27"
        );
        assert_eq!(d.punches[1].kind, PunchKind::CheckOut);
    }

    #[test]
    fn a_bad_event_keeps_the_good_ones() {
        let mut body = sample().replace("2025-03-04 08:57:12", "2025-03-04");
        body.push_str("Code=AccessControl;action=Pulse;index=0;data={\"UserID\":\"7\",\n");
        body.push_str(&sample().replace("5521", "5524"));
        let d = dec(body.as_bytes()).unwrap();
        assert_eq!(one(&d).event_id.as_deref(), Some("5524"));
        assert_eq!(d.line_errors.len(), 2);
        assert_eq!(d.line_errors[0].line, 1);
        assert_eq!(
            d.line_errors[0].error.to_string(),
            "field \"LocaleTime\": \"2025-03-04\" is not YYYY-MM-DD HH:MM:SS"
        );
        // Issue 11 item 15: the part's own text (up to where it breaks),
        // not only its header.
        assert_eq!(
            d.line_errors[1].text,
            "Code=AccessControl;action=Pulse;index=0;data={\"UserID\":\"7\","
        );
        assert!(
            d.line_errors[0]
                .text
                .contains("\"LocaleTime\":\"2025-03-04\""),
            "{}",
            d.line_errors[0].text
        );
        let recs = "records[0].UserID=1\r\nrecords[0].CreateTime=x\r\nrecords[1].UserID=2\r\nrecords[1].CreateTime=1741067832\r\n";
        let d = dec(recs.as_bytes()).unwrap();
        assert_eq!(one(&d).identity, Identity::Employee("2".into()));
        // Issue 11 item 15: the record's own text, not a label.
        assert_eq!(
            d.line_errors[0].text,
            "records[0].UserID=1\nrecords[0].CreateTime=x"
        );
    }
}
