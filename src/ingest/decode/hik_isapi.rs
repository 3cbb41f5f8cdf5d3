//! `hik-isapi`: Hikvision face terminals' `AccessControllerEvent`
//! (`devices.md` §2): the JSON push (bare, or the JSON part of a multipart
//! body with JPEG parts after it), the XML `EventNotificationAlert` form, and
//! the `AcsEvent.InfoList` answer of a backfill search.
//!
//! Traps handled: one punch produces several posts (auth pass, lock open,
//! door open, door closed), so only major 5 with a pass minor is a punch,
//! keyed on the (major, minor) pair; `heartBeat` posts are ignored;
//! `currentEvent:false` marks history uploaded after a link recovers, and
//! backfill results are history too; `serialNo` is the event id, but it
//! restarts after a reset, so the dedupe key adds the employee and the
//! instant ([`super::DecodedPunch::dedupe_key`]); the time
//! carries an offset; `currentVerifyMode` is the reader's configured mode,
//! so the method is derived from the minor; `attendanceStatus` is
//! `undefined` unless attendance mode is configured.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::value::{at, cap_record, flag, int, json_prefix, missing, parse_time, text};
use super::{
    DecodeContext, DecodeError, Decoded, DecodedPunch, Identity, LineError, PunchKind, Verify,
    canonical_card,
};

/// Access event major type.
const MAJOR_EVENT: i64 = 5;

/// Minor types under major 5 (`MAJOR_EVENT`) that the vendor SDK names as
/// a person passing authentication (`MINOR_*_PASS` in the HCNetSDK headers;
/// [S14] of `devices.md`, checked against public copies of `HCNetSDK.java`
/// / `CHCNetSDK.cs`): card, card+password, fingerprint, the two- and
/// three-factor combinations, face, employee number + face or password,
/// person vs. ID card, dynamic code and password alone.
pub const PASS_MINORS: &[i64] = &[
    0x01, // MINOR_LEGAL_CARD_PASS
    0x02, // MINOR_CARD_AND_PSW_PASS
    0x26, // MINOR_FINGERPRINT_COMPARE_PASS
    0x28, // MINOR_CARD_FINGERPRINT_VERIFY_PASS
    0x2b, // MINOR_CARD_FINGERPRINT_PASSWD_VERIFY_PASS
    0x2e, // MINOR_FINGERPRINT_PASSWD_VERIFY_PASS
    0x36, // MINOR_FACE_AND_FP_VERIFY_PASS
    0x39, // MINOR_FACE_AND_PW_VERIFY_PASS
    0x3c, // MINOR_FACE_AND_CARD_VERIFY_PASS
    0x3f, // MINOR_FACE_AND_PW_AND_FP_VERIFY_PASS
    0x42, // MINOR_FACE_CARD_AND_FP_VERIFY_PASS
    0x45, // MINOR_EMPLOYEENO_AND_FP_VERIFY_PASS
    0x48, // MINOR_EMPLOYEENO_AND_FP_AND_PW_VERIFY_PASS
    0x4b, // MINOR_FACE_VERIFY_PASS
    0x4d, // MINOR_EMPLOYEENO_AND_FACE_VERIFY_PASS
    0x65, // MINOR_EMPLOYEENO_AND_PW_PASS
    0x69, // MINOR_PEOPLE_AND_ID_CARD_COMPARE_PASS
    0xb3, // MINOR_DYNAMICCODE_VERIFY_PASS
    0xb5, // MINOR_PASSWD_VERIFY_PASS
];

/// Which events are punches.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HikOptions {
    /// Minor codes under major 5 that mean "person authenticated". Default
    /// [`PASS_MINORS`], every pass minor of the vendor SDK (1, 2, 38, 40,
    /// 43, 46, 54, 57, 60, 63, 66, 69, 72, 75, 77, 101, 105, 179, 181);
    /// a site that wants fewer lists them.
    pub pass_minors: Vec<i64>,
}

impl Default for HikOptions {
    fn default() -> Self {
        HikOptions {
            pass_minors: PASS_MINORS.to_vec(),
        }
    }
}

fn minor_name(major: i64, minor: i64) -> &'static str {
    match (major, minor) {
        (5, 76) => "face authentication failed",
        (5, 21) => "lock opened",
        (5, 22) => "lock closed",
        (5, 23) | (5, 24) => "exit button",
        (5, 25) | (5, 26) => "door sensor",
        (3, 1024) => "remote open",
        (5, _) => "not a pass event",
        _ => "not an access event",
    }
}

fn kind(status: Option<String>) -> PunchKind {
    match status.as_deref() {
        Some("checkIn") => PunchKind::CheckIn,
        Some("checkOut") => PunchKind::CheckOut,
        Some("breakOut") => PunchKind::BreakOut,
        Some("breakIn") => PunchKind::BreakIn,
        Some("overtimeIn") => PunchKind::OtIn,
        Some("overtimeOut") => PunchKind::OtOut,
        _ => PunchKind::Unspecified,
    }
}

/// The method of a single-factor pass; combined passes keep their minor.
fn verify(minor: i64) -> Verify {
    match minor {
        0x4b => Verify::Face,
        0x01 => Verify::Card,
        0x26 => Verify::Fingerprint,
        0xb5 => Verify::Password,
        m => Verify::Other(u32::try_from(m).unwrap_or(u32::MAX)),
    }
}

/// Field names of one event record, which differ between the push and the
/// backfill answer.
struct Names {
    prefix: &'static str,
    major: &'static str,
    minor: &'static str,
}

const PUSH: Names = Names {
    prefix: "AccessControllerEvent.",
    major: "majorEventType",
    minor: "subEventType",
};
const SEARCH: Names = Names {
    prefix: "AcsEvent.InfoList[].",
    major: "major",
    minor: "minor",
};

#[allow(clippy::too_many_arguments)]
fn record(
    ev: &Value,
    names: &Names,
    time: (&str, Option<String>),
    replay: bool,
    device_id: Option<String>,
    cx: &DecodeContext,
    o: &HikOptions,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let f = |n: &str| format!("{}{n}", names.prefix);
    let major = int(at(ev, names.major)).ok_or_else(|| missing(&f(names.major)))?;
    let minor = int(at(ev, names.minor)).ok_or_else(|| missing(&f(names.minor)))?;
    if major != MAJOR_EVENT || !o.pass_minors.contains(&minor) {
        out.ignore(format!(
            "major {major} minor {minor}: {}",
            minor_name(major, minor)
        ));
        return Ok(());
    }
    let identity =
        if let Some(id) = text(at(ev, "employeeNoString")).or_else(|| text(at(ev, "employeeNo"))) {
            Identity::Employee(id)
        } else if let Some(card) = text(at(ev, "cardNo")) {
            Identity::Alias(canonical_card(&card, 10).unwrap_or(card))
        } else {
            return Err(missing(&f("employeeNoString")));
        };
    let (time_field, time) = time;
    let time = time.ok_or_else(|| missing(time_field))?;
    let (at_utc, device_local) = parse_time(time_field, &time, cx.device_tz)?;
    // `serialNo` restarts after a reset or a firmware update: the store's
    // key adds the employee and the instant (issue 11, defect 3).
    let event_id = text(at(ev, "serialNo"));
    out.punches.push(DecodedPunch {
        identity,
        at: at_utc,
        device_local,
        device_id,
        event_id,
        kind: kind(text(at(ev, "attendanceStatus"))),
        verify: verify(minor),
        replay,
    });
    Ok(())
}

/// The text between `<tag …>` and `</tag>`, trimmed.
fn xml_text<'t>(doc: &'t str, tag: &str) -> Option<&'t str> {
    let mut from = 0;
    while let Some(i) = doc.get(from..)?.find(&format!("<{tag}")) {
        let start = from + i + 1 + tag.len();
        let rest = doc.get(start..)?;
        if rest.starts_with('>') || rest.starts_with(' ') {
            let open_end = start + rest.find('>')? + 1;
            let close = doc.get(open_end..)?.find(&format!("</{tag}>"))?;
            return doc.get(open_end..open_end + close).map(str::trim);
        }
        from = start;
    }
    None
}

/// The XML form turned into the JSON shape, with the fields read here.
fn xml_to_json(doc: &str) -> Value {
    let mut top = Map::new();
    for k in ["eventType", "dateTime", "macAddress", "ipAddress"] {
        if let Some(t) = xml_text(doc, k) {
            top.insert(k.into(), Value::String(t.into()));
        }
    }
    if let Some(inner) = xml_text(doc, "AccessControllerEvent") {
        let mut ev = Map::new();
        for k in [
            "majorEventType",
            "subEventType",
            "employeeNoString",
            "cardNo",
            "attendanceStatus",
            "serialNo",
            "currentEvent",
        ] {
            if let Some(t) = xml_text(inner, k) {
                ev.insert(k.into(), Value::String(t.into()));
            }
        }
        top.insert("AccessControllerEvent".into(), Value::Object(ev));
    }
    Value::Object(top)
}

/// Finds the event in the body: bare JSON, the JSON part of a multipart
/// body, or XML.
fn locate(bytes: &[u8]) -> Result<Value, DecodeError> {
    let text = String::from_utf8_lossy(bytes);
    let json = text.find('{');
    let xml = text.find("<EventNotificationAlert");
    match (json, xml) {
        (Some(j), x) if x.is_none_or(|x| j < x) => json_prefix(&text, j).map(|(v, _)| v),
        (_, Some(x)) => Ok(xml_to_json(&text[x..])),
        _ => Err(DecodeError::Unrecognised(
            "no JSON object or EventNotificationAlert XML in the body".into(),
        )),
    }
}

/// Decodes one ISAPI post (or a backfill search answer).
pub fn decode(bytes: &[u8], cx: &DecodeContext, o: &HikOptions) -> Result<Decoded, DecodeError> {
    let v = locate(bytes)?;
    let mut out = Decoded::default();
    let device_id = cx
        .device_id
        .map(str::to_string)
        .or_else(|| text(at(&v, "macAddress")))
        .or_else(|| text(at(&v, "ipAddress")));
    if let Some(list) = at(&v, "AcsEvent.InfoList") {
        let list = list
            .as_array()
            .ok_or_else(|| missing("AcsEvent.InfoList[]"))?;
        // One bad result must not lose the others of the page.
        for (i, ev) in list.iter().enumerate() {
            let time = ("AcsEvent.InfoList[].time", text(at(ev, "time")));
            if let Err(error) = record(ev, &SEARCH, time, true, device_id.clone(), cx, o, &mut out)
            {
                out.line_errors.push(LineError {
                    line: i + 1,
                    text: cap_record(&ev.to_string()),
                    error,
                });
            }
        }
        return out.or_first_error();
    }
    let event_type = text(at(&v, "eventType")).ok_or_else(|| missing("eventType"))?;
    if event_type != "AccessControllerEvent" {
        out.ignore(format!(
            "event type {event_type:?} is not an access controller event"
        ));
        return Ok(out);
    }
    let ev = at(&v, "AccessControllerEvent")
        .filter(|e| e.is_object())
        .ok_or_else(|| missing("AccessControllerEvent"))?;
    let replay = flag(at(ev, "currentEvent")) == Some(false);
    let time = ("dateTime", text(at(&v, "dateTime")));
    record(ev, &PUSH, time, replay, device_id, cx, o, &mut out)?;
    Ok(out)
}

/// Composed payloads for the fuzz corpus.
#[cfg(test)]
pub(crate) const SAMPLES: &[&[u8]] = &[
    br#"{"ipAddress":"10.20.1.31","portNo":80,"macAddress":"24:0f:9b:4e:aa:10","dateTime":"2025-03-04T08:57:12+03:00","activePostCount":1,"eventType":"AccessControllerEvent","eventState":"active","eventDescription":"Access Controller Event","AccessControllerEvent":{"deviceName":"Lobby","majorEventType":5,"subEventType":75,"name":"Leyla Aydin","employeeNoString":"1043","cardReaderNo":1,"doorNo":1,"userType":"normal","currentVerifyMode":"cardOrFace","attendanceStatus":"checkIn","label":"Check In","serialNo":48211,"currentEvent":true,"mask":"no","picturesNumber":1}}"#,
    b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n<ipAddress>10.20.1.31</ipAddress>\n<macAddress>24:0f:9b:4e:aa:10</macAddress>\n<dateTime>2025-03-04T18:02:05+03:00</dateTime>\n<eventType>AccessControllerEvent</eventType>\n<AccessControllerEvent>\n<majorEventType>5</majorEventType>\n<subEventType>75</subEventType>\n<employeeNoString>0217</employeeNoString>\n<attendanceStatus>checkOut</attendanceStatus>\n<serialNo>48377</serialNo>\n<currentEvent>false</currentEvent>\n</AccessControllerEvent>\n</EventNotificationAlert>\n",
];

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn dec(s: &str) -> Result<Decoded, DecodeError> {
        decode(s.as_bytes(), &cx(chrono_tz::UTC), &HikOptions::default())
    }

    fn sample() -> String {
        String::from_utf8(SAMPLES[0].to_vec()).unwrap()
    }

    #[test]
    fn face_pass_is_a_check_in_with_offset_time() {
        let d = dec(&sample()).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Employee("1043".into()));
        assert_eq!(p.at, utc("2025-03-04T05:57:12Z"));
        assert_eq!(p.device_local.unwrap().to_string(), "2025-03-04 08:57:12");
        assert_eq!(p.kind, PunchKind::CheckIn);
        assert_eq!(p.verify, Verify::Face);
        assert_eq!(p.event_id.as_deref(), Some("48211"));
        assert_eq!(p.device_id.as_deref(), Some("24:0f:9b:4e:aa:10"));
        assert!(!p.replay);
    }

    #[test]
    fn history_upload_is_a_replay() {
        let s = sample()
            .replace("08:57:12", "18:02:05")
            .replace("\"checkIn\"", "\"checkOut\"")
            .replace("48211", "48377")
            .replace("\"currentEvent\":true", "\"currentEvent\":false");
        let d = dec(&s).unwrap();
        let p = one(&d);
        assert!(p.replay);
        assert_eq!(p.kind, PunchKind::CheckOut);
        assert_eq!(p.at, utc("2025-03-04T15:02:05Z"));
    }

    #[test]
    fn one_punch_many_posts_gives_one_punch() {
        let posts = [(5, 75), (5, 21), (5, 25), (5, 26), (5, 22)];
        let mut punches = 0;
        let mut ignored = Vec::new();
        for (major, minor) in posts {
            let s = sample()
                .replace(
                    "\"majorEventType\":5",
                    &format!("\"majorEventType\":{major}"),
                )
                .replace("\"subEventType\":75", &format!("\"subEventType\":{minor}"));
            let d = dec(&s).unwrap();
            punches += d.punches.len();
            ignored.extend(d.ignored.into_iter().map(|i| i.reason));
        }
        assert_eq!(punches, 1);
        assert_eq!(
            ignored,
            [
                "major 5 minor 21: lock opened",
                "major 5 minor 25: door sensor",
                "major 5 minor 26: door sensor",
                "major 5 minor 22: lock closed"
            ]
        );
    }

    #[test]
    fn minor_is_keyed_with_major() {
        // Minor 1 under another major is not a valid card.
        let s = sample()
            .replace("\"majorEventType\":5", "\"majorEventType\":2")
            .replace("\"subEventType\":75", "\"subEventType\":1");
        assert!(dec(&s).unwrap().punches.is_empty());
        let s = sample().replace("\"subEventType\":75", "\"subEventType\":76");
        assert_eq!(
            dec(&s).unwrap().ignored[0].reason,
            "major 5 minor 76: face authentication failed"
        );
        let s = sample().replace("\"subEventType\":75", "\"subEventType\":38");
        assert_eq!(one(&dec(&s).unwrap()).verify, Verify::Fingerprint);
    }

    /// Issue 11 (11): every pass minor of the vendor SDK is a punch by
    /// default; two-factor and combined passes were ignored with 200.
    #[test]
    fn every_sdk_pass_minor_is_a_punch_by_default() {
        for minor in [
            1, 2, 38, 40, 43, 46, 54, 57, 60, 63, 66, 69, 72, 75, 77, 101, 105, 179, 181,
        ] {
            let s = sample().replace("\"subEventType\":75", &format!("\"subEventType\":{minor}"));
            let d = dec(&s).unwrap();
            assert_eq!(d.punches.len(), 1, "minor {minor}: {d:?}");
        }
        // Failures, timeouts and door events are not.
        for minor in [3, 39, 41, 55, 76, 78, 102, 103] {
            let s = sample().replace("\"subEventType\":75", &format!("\"subEventType\":{minor}"));
            assert!(dec(&s).unwrap().punches.is_empty(), "minor {minor}");
        }
        // A site may narrow the list.
        let o = HikOptions {
            pass_minors: vec![75],
        };
        let s = sample().replace("\"subEventType\":75", "\"subEventType\":38");
        assert!(
            decode(s.as_bytes(), &cx(chrono_tz::UTC), &o)
                .unwrap()
                .punches
                .is_empty()
        );
    }

    /// A real listening-mode push (TAB-indented JSON, `purePwdVerifyEnable`
    /// firmware; `tests/fixtures/captures/README.md`): fingerprint pass with
    /// `checkIn`, then the lock closing, which is not a punch.
    #[test]
    fn tab_indented_push_capture() {
        let c = cx(chrono_tz::Asia::Shanghai);
        let clock_in = include_bytes!("../../../tests/fixtures/captures/hik_fp_clockin.json");
        let d = decode(clock_in, &c, &HikOptions::default()).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Employee("001".into()));
        assert_eq!(p.at, utc("2025-10-22T05:43:48Z"));
        assert_eq!(p.kind, PunchKind::CheckIn);
        assert_eq!(p.verify, Verify::Fingerprint);
        assert_eq!(p.event_id.as_deref(), Some("139"));
        assert_eq!(p.device_id.as_deref(), Some("a4:d5:c2:24:dd:74"));
        let lock = include_bytes!("../../../tests/fixtures/captures/hik_lock_closed.json");
        let d = decode(lock, &c, &HikOptions::default()).unwrap();
        assert!(d.punches.is_empty());
        assert_eq!(d.ignored[0].reason, "major 5 minor 22: lock closed");
        // The same serialNo after a reset is another punch: the dedupe key
        // carries the employee and the instant (issue 11, defect 3).
        let after_reset = String::from_utf8_lossy(clock_in)
            .replace("2025-10-22T13:43:48", "2025-11-03T08:01:02")
            .replace("\"001\"", "\"007\"");
        let d2 = decode(after_reset.as_bytes(), &c, &HikOptions::default()).unwrap();
        assert_eq!(one(&d2).event_id, p.event_id);
        assert_ne!(one(&d2).dedupe_key(), p.dedupe_key());
    }

    #[test]
    fn heartbeat_ignored_and_undefined_status_unspecified() {
        let d = dec(r#"{"ipAddress":"10.20.1.31","dateTime":"2025-03-04T08:57:12+03:00","eventType":"heartBeat"}"#)
            .unwrap();
        assert!(d.punches.is_empty());
        assert_eq!(d.ignored.len(), 1);
        let s = sample().replace("\"checkIn\"", "\"undefined\"");
        assert_eq!(one(&dec(&s).unwrap()).kind, PunchKind::Unspecified);
    }

    #[test]
    fn multipart_body_with_jpeg() {
        let mut body = b"--MIME_boundary\r\nContent-Disposition: form-data; name=\"event_log\"\r\nContent-Type: application/json\r\n\r\n".to_vec();
        body.extend_from_slice(SAMPLES[0]);
        body.extend_from_slice(b"\r\n--MIME_boundary\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0{\x00\x10JFIF\r\n--MIME_boundary--\r\n");
        let d = decode(&body, &cx(chrono_tz::UTC), &HikOptions::default()).unwrap();
        assert_eq!(one(&d).identity, Identity::Employee("1043".into()));
    }

    #[test]
    fn xml_alert() {
        let d = decode(SAMPLES[1], &cx(chrono_tz::UTC), &HikOptions::default()).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Employee("0217".into()));
        assert_eq!(p.kind, PunchKind::CheckOut);
        assert_eq!(p.event_id.as_deref(), Some("48377"));
        assert_eq!(p.at, utc("2025-03-04T15:02:05Z"));
        assert!(p.replay);
    }

    #[test]
    fn backfill_search_answer() {
        let s = r#"{"AcsEvent":{"searchID":"1","responseStatusStrg":"OK","numOfMatches":3,"InfoList":[
          {"major":5,"minor":75,"time":"2025-03-04T08:57:12+03:00","employeeNoString":"1043","name":"Leyla","attendanceStatus":"checkIn","serialNo":48211},
          {"major":5,"minor":21,"time":"2025-03-04T08:57:13+03:00","serialNo":48212},
          {"major":5,"minor":1,"time":"2025-03-04T09:04:40+03:00","cardNo":"0000820999","serialNo":48213}]}}"#;
        let d = decode(
            s.as_bytes(),
            &cx(chrono_tz::UTC).with_device("lobby"),
            &HikOptions::default(),
        )
        .unwrap();
        assert_eq!(d.punches.len(), 2);
        assert_eq!(d.ignored.len(), 1);
        assert!(
            d.punches
                .iter()
                .all(|p| p.replay && p.device_id.as_deref() == Some("lobby"))
        );
        assert_eq!(d.punches[1].identity, Identity::Alias("820999".into()));
        assert_eq!(d.punches[1].verify, Verify::Card);
        let bad = s.replace("2025-03-04T09:04:40+03:00", "soon");
        let d = decode(bad.as_bytes(), &cx(chrono_tz::UTC), &HikOptions::default()).unwrap();
        assert_eq!(d.punches.len(), 1);
        assert_eq!(d.line_errors[0].line, 3);
        assert!(
            d.line_errors[0]
                .error
                .to_string()
                .starts_with("field \"AcsEvent.InfoList[].time\": \"soon\"")
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = dec(&sample().replace("employeeNoString", "x")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "field \"AccessControllerEvent.employeeNoString\": missing"
        );
        let e = dec(&sample().replace("2025-03-04T08:57:12+03:00", "yesterday")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("field \"dateTime\": \"yesterday\""),
            "{e}"
        );
        assert!(matches!(dec("hello"), Err(DecodeError::Unrecognised(_))));
    }
}
