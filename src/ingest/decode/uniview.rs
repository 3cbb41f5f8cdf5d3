//! `uniview`: Uniview (UNV) face terminals' LAPI `PersonVerification`
//! notifications, `POST /LAPI/V1.0/System/Event/Notification/PersonVerification`
//! on a `[[source.hik_http]]` listener with `decoder = "uniview"`.
//!
//! The body is JSON: `DeviceCode`, `Timestamp` (epoch seconds, UTC), `Seq`,
//! `FaceInfoList` (captures, with base64 photos that are never kept),
//! `CardInfoList` and `LibMatInfoList`, one entry per library match with
//! `MatchStatus` (1: verified; 7: verified in face-to-open mode; 2–6 and
//! 8–11: refused, out of schedule, expired, not live, …) and
//! `MatchPersonInfo.PersonCode` (the person's code as enrolled) beside the
//! device-local `MatchPersonID`. A verified match is a punch for
//! `PersonCode`, else for `MatchPersonID` as an alias (scoped to the
//! terminal with `device:DEVICECODE:ID`); every other status, and a
//! notification without matches (a stranger, a capture), is counted as
//! ignored. The terminal expects `{"Response":{"StatusCode":0,…}}` back.

use serde_json::Value;

use super::value::{at, from_epoch, int, invalid, missing, parse_json, text};
use super::{DecodeContext, DecodeError, Decoded, DecodedPunch, Identity, PunchKind, Verify};

/// The answer a Uniview terminal expects after a notification was taken.
pub fn answer(path: &str) -> String {
    serde_json::json!({"Response": {
        "ResponseURL": path, "CreatedID": -1, "ResponseCode": 0, "SubResponseCode": 0,
        "ResponseString": "Succeed", "StatusCode": 0, "StatusString": "Succeed", "Data": "null"
    }})
    .to_string()
}

fn status_name(s: i64) -> &'static str {
    match s {
        0 => "no verification",
        2 => "comparison failed",
        3 => "outside the allowed schedule",
        4 => "credential expired",
        5 => "stopped",
        6 => "not a live face",
        8 => "face-to-open failed",
        9 => "helmet check failed",
        10 => "face attributes abnormal",
        11 => "temperature abnormal",
        _ => "not a verified pass",
    }
}

/// Decodes one `PersonVerification` notification.
pub fn decode(bytes: &[u8], cx: &DecodeContext) -> Result<Decoded, DecodeError> {
    let v = parse_json(bytes)?;
    if !v.is_object() {
        return Err(DecodeError::Unrecognised(
            "not a LAPI notification object".into(),
        ));
    }
    let mut out = Decoded::default();
    let matches = match at(&v, "LibMatInfoList") {
        None | Some(Value::Null) => {
            out.ignore("notification without library matches (capture or stranger)");
            return Ok(out);
        }
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(invalid(
                "LibMatInfoList",
                &other.to_string().chars().take(64).collect::<String>(),
                "is not a list",
            ));
        }
    };
    if matches.is_empty() {
        out.ignore("notification without library matches (capture or stranger)");
        return Ok(out);
    }
    let ts = at(&v, "Timestamp")
        .and_then(Value::as_f64)
        .or_else(|| {
            at(&v, "FaceInfoList")
                .and_then(|l| l.get(0))
                .and_then(|f| f.get("Timestamp"))
                .and_then(Value::as_f64)
        })
        .ok_or_else(|| missing("Timestamp"))?;
    let when = from_epoch("Timestamp", ts)?;
    if !(2000..=2100).contains(&chrono::Datelike::year(&when)) {
        return Err(invalid(
            "Timestamp",
            &ts.to_string(),
            "is outside 2000-2100: terminal clock not set",
        ));
    }
    let device_id = cx
        .device_id
        .map(str::to_string)
        .or_else(|| text(at(&v, "DeviceCode")));
    let seq = int(at(&v, "Seq"));
    for (i, m) in matches.iter().enumerate() {
        let status =
            int(m.get("MatchStatus")).ok_or_else(|| missing("LibMatInfoList[].MatchStatus"))?;
        if status != 1 && status != 7 {
            out.ignore(format!(
                "MatchStatus {status} ({}) is not a punch",
                status_name(status)
            ));
            continue;
        }
        let code = text(m.get("MatchPersonInfo").and_then(|p| p.get("PersonCode")));
        let person = text(m.get("MatchPersonID")).filter(|p| p != "0");
        let identity = match (code, person) {
            (Some(c), _) => Identity::Employee(c),
            (None, Some(p)) => Identity::Alias(p),
            (None, None) => return Err(missing("LibMatInfoList[].MatchPersonInfo.PersonCode")),
        };
        let event_id =
            seq.map(|s| format!("unv:{s}:{i}:{}:{}", identity.as_str(), when.timestamp()));
        out.punches.push(DecodedPunch {
            identity,
            at: when,
            device_local: None,
            device_id: device_id.clone(),
            event_id,
            kind: PunchKind::Unspecified,
            verify: Verify::Face,
            replay: false,
        });
    }
    Ok(out)
}

/// A real capture for tests and the fuzz corpus: a Uniview terminal's
/// `PersonVerification` notification (device 210235C3R0320B000985), as kept
/// in a public Go tool that masks its photos (`replaceDataReg`); the photo
/// data is cut short here.
#[cfg(test)]
pub(crate) const SAMPLES: &[&[u8]] = &[
    br#"{"Reference":"","Seq":9,"DeviceCode":"210235C3R0320B000985","Timestamp":1624364137,"NotificationType":0,"FaceInfoNum":1,"FaceInfoList":[{"ID":9,"Timestamp":1624364136,"CapSrc":1,"FeatureNum":0,"FeatureList":[{"FeatureVersion":"","Feature":"QAAAQABAAD/2wDFABsSFBcUERsXFhceHB"}],"Temperature":0,"MaskFlag":0,"PanoImage":{"Name":"1624364136_1_93.jpg","Size":134884,"Data":"/9j/4AAQSkZJRgABAQAAAQABAAD/2wDFABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdAY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2N+mRJbiARSuJMfdYjkU0SSN/q4SfwzR5V22Moye5OKAGRGewfbKhaBu4521fBBAKkFSMg+tUnsnmQpLcsqnrs61PbW0VpAIYixVe7HJoAmooo70AGaQ/NnNHel4FADo5OiP17GpKgPIp6SfwOeexoAkopKWgAooooAKM0UlAC0UUlAC0UlFAC0lFGaACikozQAtJRmj86AP/9k="},"FaceArea":{"LeftTopX":2555,"LeftTopY":5390,"RightBottomX":4620,"RightBottomY":6531}}],"CardInfoNum":0,"CardInfoList":[],"GateInfoNum":0,"GateInfoList":[],"LibMatInfoNum":1,"LibMatInfoList":[{"ID":9,"LibID":3,"LibType":3,"MatchStatus":1,"MatchPersonID":111,"MatchFaceID":1,"MatchPersonInfo":{"PersonCode":"111","PersonName":"\u4f4f\u62371","Gender":0,"CardID":"","IdentityNo":""}}]}"#,
];

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn verified_match_is_a_punch_in_utc() {
        let d = decode(SAMPLES[0], &cx(IST)).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Employee("111".into()));
        assert_eq!(p.at, utc("2021-06-22T12:15:37Z"));
        assert_eq!(p.device_id.as_deref(), Some("210235C3R0320B000985"));
        assert!(p.event_id.as_deref().unwrap().starts_with("unv:9:0:111:"));
    }

    #[test]
    fn refused_matches_and_captures_are_ignored() {
        let refused =
            String::from_utf8_lossy(SAMPLES[0]).replace("\"MatchStatus\":1", "\"MatchStatus\":2");
        let d = decode(refused.as_bytes(), &cx(IST)).unwrap();
        assert!(d.punches.is_empty());
        assert_eq!(
            d.ignored[0].reason,
            "MatchStatus 2 (comparison failed) is not a punch"
        );
        let d = decode(
            br#"{"DeviceCode":"X","Timestamp":1624364137,"LibMatInfoList":[]}"#,
            &cx(IST),
        )
        .unwrap();
        assert_eq!(d.ignored.len(), 1);
        assert!(decode(b"[1]", &cx(IST)).is_err());
        assert!(
            decode(
                br#"{"LibMatInfoList":[{"MatchStatus":1,"MatchPersonID":5}],"Timestamp":9}"#,
                &cx(IST)
            )
            .is_err()
        );
        assert!(answer("/x").contains("\"StatusCode\":0"));
    }
}
