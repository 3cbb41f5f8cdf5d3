//! `recpush`: OEM face terminals' MQTT `RecPush` on `mqtt/face/{deviceId}/Rec`
//! (`devices.md` §4.1).
//!
//! Traps handled: numbers arrive as strings; the name field is spelled
//! `persionName` in the vendor PDF and `personName` on devices (neither is
//! read: identity is `customId`, else the device-local `personId` as an
//! alias, since `customId` is empty for people enrolled on the device UI);
//! `VerifyStatus` other than 1 is a refused or unknown face, not a punch;
//! `Sendintime:0` (re-sent) and `PushType:2` (manual replay) are replays;
//! `time` is local wall time in the device's zone; `RecordID` is the dedupe
//! key; the device id is the topic level before `Rec` (also for the
//! real-name platforms' `mqtt/device/{CODE}/{ID}/Rec`), else `facesluiceId`.

use super::value::{at, int, missing, parse_json, parse_time, text};
use super::{DecodeContext, DecodeError, Decoded, DecodedPunch, Identity, PunchKind, Verify};

fn device_from_topic(topic: Option<&str>) -> Option<&str> {
    let mut levels = topic?.rsplit('/');
    match (levels.next(), levels.next()) {
        (Some(last), Some(id)) if last.eq_ignore_ascii_case("rec") && !id.is_empty() => Some(id),
        _ => None,
    }
}

/// Decodes one `RecPush` message.
pub fn decode(bytes: &[u8], cx: &DecodeContext) -> Result<Decoded, DecodeError> {
    let v = parse_json(bytes)?;
    let mut out = Decoded::default();
    let operator = text(at(&v, "operator")).ok_or_else(|| missing("operator"))?;
    if !operator.eq_ignore_ascii_case("RecPush") {
        out.ignore(format!("operator {operator:?} is not a recognition record"));
        return Ok(out);
    }
    let info = at(&v, "info")
        .filter(|i| i.is_object())
        .ok_or_else(|| missing("info"))?;
    let status = int(at(info, "VerifyStatus")).ok_or_else(|| missing("info.VerifyStatus"))?;
    if status != 1 {
        let why = match status {
            0 => "no verification",
            2 => "refused",
            3 => "not registered",
            _ => "unknown status",
        };
        out.ignore(format!("VerifyStatus {status} ({why}) is not a punch"));
        return Ok(out);
    }
    let identity = match (text(at(info, "customId")), text(at(info, "personId"))) {
        (Some(id), _) => Identity::Employee(id),
        (None, Some(person)) => Identity::Alias(person),
        (None, None) => return Err(missing("info.customId")),
    };
    let time = text(at(info, "time")).ok_or_else(|| missing("info.time"))?;
    let (at_utc, device_local) = parse_time("info.time", &time, cx.device_tz)?;
    let replay = int(at(info, "Sendintime")) == Some(0) || int(at(info, "PushType")) == Some(2);
    let device_id = cx
        .device_id
        .or_else(|| device_from_topic(cx.topic))
        .map(str::to_string)
        .or_else(|| text(at(info, "facesluiceId")));
    out.punches.push(DecodedPunch {
        identity,
        at: at_utc,
        device_local,
        device_id,
        event_id: text(at(info, "RecordID")),
        kind: PunchKind::Unspecified,
        verify: Verify::Face,
        replay,
    });
    Ok(out)
}

/// Composed payloads for the fuzz corpus.
#[cfg(test)]
pub(crate) const SAMPLES: &[&[u8]] = &[
    br#"{"operator":"RecPush","info":{"customId":"EMP-1043","personId":"57","RecordID":"3310","VerifyStatus":"1","PersonType":"0","similarity1":"91.000000","Sendintime":1,"personName":"Leyla Aydin","facesluiceId":"1026731","idCard":"","telnum":" ","time":"2025-03-04 08:57:12","isNoMask":"0","PushType":0,"pic":"data:image/jpeg;base64,/9j/4AAQ"}}"#,
];

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    const TOPIC: &str = "mqtt/face/1026731/Rec";

    fn dec(s: &str) -> Result<Decoded, DecodeError> {
        decode(s.as_bytes(), &cx(IST).with_topic(TOPIC))
    }

    fn sample() -> String {
        String::from_utf8(SAMPLES[0].to_vec()).unwrap()
    }

    /// A payload captured from a real terminal (`tests/fixtures/captures/
    /// README.md`): enrolled on the device, so `customId` is empty and the
    /// device-local `personId` is the alias; `RecordID` with the device is
    /// the record key, and the dedupe key adds who and when.
    #[test]
    fn captured_record_of_a_person_enrolled_on_the_device() {
        let body = include_bytes!("../../../tests/fixtures/captures/recpush_cloud_1026700.json");
        let c = cx(chrono_tz::Europe::Amsterdam).with_topic("mqtt/face/1026700/Rec");
        let d = decode(body, &c).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Alias("3".into()));
        assert_eq!(p.at, utc("2026-04-10T08:00:07Z"));
        assert_eq!(p.device_id.as_deref(), Some("1026700"));
        assert_eq!(p.event_id.as_deref(), Some("2"));
        assert_eq!(p.verify, Verify::Face);
    }

    #[test]
    fn live_record() {
        let d = dec(&sample()).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Employee("EMP-1043".into()));
        assert_eq!(p.at, utc("2025-03-04T05:57:12Z"));
        assert_eq!(p.device_local.unwrap().to_string(), "2025-03-04 08:57:12");
        assert_eq!(p.device_id.as_deref(), Some("1026731"));
        assert_eq!(p.event_id.as_deref(), Some("3310"));
        assert_eq!(p.verify, Verify::Face);
        assert!(!p.replay);
    }

    #[test]
    fn empty_custom_id_falls_back_to_person_id_alias() {
        let d = dec(&sample().replace(r#""customId":"EMP-1043""#, r#""customId":"""#)).unwrap();
        assert_eq!(one(&d).identity, Identity::Alias("57".into()));
        let d = dec(&sample()
            .replace(r#""personId":"57""#, r#""personId":57"#)
            .replace("EMP-1043", ""))
        .unwrap();
        assert_eq!(one(&d).identity, Identity::Alias("57".into()));
    }

    #[test]
    fn spec_spelling_and_numbers_as_numbers() {
        let s = sample()
            .replace("personName", "persionName")
            .replace(r#""VerifyStatus":"1""#, r#""VerifyStatus":1"#)
            .replace(r#""RecordID":"3310""#, r#""RecordID":3310"#);
        let d = dec(&s).unwrap();
        assert_eq!(one(&d).event_id.as_deref(), Some("3310"));
    }

    #[test]
    fn resent_and_replayed_records_are_replays() {
        let d = dec(&sample().replace(r#""Sendintime":1"#, r#""Sendintime":0"#)).unwrap();
        assert!(one(&d).replay);
        let d = dec(&sample().replace(r#""PushType":0"#, r#""PushType":"2""#)).unwrap();
        assert!(one(&d).replay);
    }

    #[test]
    fn refused_and_unregistered_faces_are_ignored() {
        for (code, why) in [
            ("2", "refused"),
            ("3", "not registered"),
            ("0", "no verification"),
        ] {
            let d = dec(&sample().replace(
                r#""VerifyStatus":"1""#,
                &format!(r#""VerifyStatus":"{code}""#),
            ))
            .unwrap();
            assert!(d.punches.is_empty());
            assert_eq!(
                d.ignored[0].reason,
                format!("VerifyStatus {code} ({why}) is not a punch")
            );
        }
    }

    #[test]
    fn heartbeats_are_ignored_and_garbage_is_an_error() {
        let d = dec(r#"{"operator":"HeartBeat","info":{"facesluiceId":"1026731"}}"#).unwrap();
        assert_eq!(d.ignored.len(), 1);
        assert_eq!(
            dec(r#"{"info":{}}"#).unwrap_err().to_string(),
            "field \"operator\": missing"
        );
        let e = dec(&sample().replace("2025-03-04 08:57:12", "04/03/2025 08:57")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("field \"info.time\": \"04/03/2025 08:57\" is neither"),
            "{e}"
        );
        assert_eq!(
            dec(&sample().replace("VerifyStatus", "Verify"))
                .unwrap_err()
                .to_string(),
            "field \"info.VerifyStatus\": missing"
        );
    }

    #[test]
    fn device_from_other_topics_and_payload() {
        let c = cx(IST).with_topic("mqtt/device/SITE9/88/Rec");
        assert_eq!(
            one(&decode(SAMPLES[0], &c).unwrap()).device_id.as_deref(),
            Some("88")
        );
        let c = cx(IST);
        assert_eq!(
            one(&decode(SAMPLES[0], &c).unwrap()).device_id.as_deref(),
            Some("1026731")
        );
    }

    #[test]
    fn gbk_name_bytes_do_not_fail_the_record() {
        let s = sample();
        let (a, b) = s.split_once("Leyla Aydin").unwrap();
        let mut bytes = a.as_bytes().to_vec();
        bytes.extend_from_slice(&[0xC1, 0xF5, 0xD1, 0xF3]); // 刘洋 in GBK
        bytes.extend_from_slice(b.as_bytes());
        let d = decode(&bytes, &cx(IST).with_topic(TOPIC)).unwrap();
        assert_eq!(one(&d).identity, Identity::Employee("EMP-1043".into()));
    }

    #[test]
    fn berlin_dst_gap_and_fold() {
        let c = cx(chrono_tz::Europe::Berlin).with_topic(TOPIC);
        let gap = sample().replace("2025-03-04 08:57:12", "2025-03-30 02:30:00");
        assert_eq!(
            one(&decode(gap.as_bytes(), &c).unwrap()).at,
            utc("2025-03-30T01:30:00Z")
        );
        let fold = sample().replace("2025-03-04 08:57:12", "2025-10-26 02:30:00");
        assert_eq!(
            one(&decode(fold.as_bytes(), &c).unwrap()).at,
            utc("2025-10-26T00:30:00Z")
        );
    }
}
