//! `double-take`: Double Take's `double-take/matches/<name>` messages
//! (`devices.md` §4.2), also its `double-take/cameras/<camera>` results
//! (a `matches` list), and Frigate's native face updates
//! (`frigate/tracked_object_update` with `"type":"face"`, §4.3).
//!
//! Traps handled: the timestamp is UTC (`Z`, or epoch seconds on Frigate);
//! `match:true` is Double Take's own decision and is trusted (a site may
//! raise the bar with `min_confidence`); `match:false`, `unknown` and
//! matches below a configured `min_confidence` are not punches; Frigate
//! updates of other types (`lpr`, `description`, …) and faces with
//! `name: null` are counted as ignored; several attempts of one event share its `id` (the event id
//! here, the dedupe key) and one walk-by gives many updates, so callers also
//! run a [`super::Debounce`]. The identity is the match name, lowercased
//! (Double Take sanitises names to `a-z0-9-`), as an alias.

use serde::Deserialize;
use serde_json::Value;

use super::value::{at, float, missing, parse_json, text, time_value, topic_level};
use super::{DecodeContext, DecodeError, Decoded, DecodedPunch, Identity, PunchKind, Verify};

/// Which matches count.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DoubleTakeOptions {
    /// Lowest confidence (0–100; Frigate's 0–1 `score` is scaled) that is a
    /// punch. Default none: Double Take has already applied its own
    /// threshold (its default is 60) when it says `match: true`, and
    /// Frigate names a face only above its recognition threshold, so their
    /// decision is trusted (issue 11, defect 5). A site may raise it.
    pub min_confidence: Option<f64>,
}

struct Match {
    name: Option<String>,
    confidence: f64,
    is_match: bool,
}

fn read_match(m: &Value, field: &str) -> Result<Match, DecodeError> {
    let confidence =
        float(at(m, "confidence")).ok_or_else(|| missing(&format!("{field}.confidence")))?;
    Ok(Match {
        name: text(at(m, "name")),
        confidence,
        is_match: at(m, "match").and_then(Value::as_bool).unwrap_or(true),
    })
}

/// Decodes one Double Take (or Frigate face) message.
pub fn decode(
    bytes: &[u8],
    cx: &DecodeContext,
    o: &DoubleTakeOptions,
) -> Result<Decoded, DecodeError> {
    let v = parse_json(bytes)?;
    let mut out = Decoded::default();
    let kind = text(at(&v, "type"));
    let double_take = at(&v, "match").is_some_and(Value::is_object)
        || at(&v, "matches").is_some_and(Value::is_array);
    // Frigate's `tracked_object_update` topic carries more than faces:
    // license plates, generated descriptions, and faces it could not name.
    // That is normal traffic, counted as ignored, never quarantined.
    if !double_take && let Some(kind) = kind.as_deref() {
        if kind != "face" {
            out.ignore(format!("frigate {kind:?} update is not a face"));
            return Ok(out);
        }
        if text(at(&v, "name")).is_none() {
            out.ignore("frigate face update without a name (not recognised)");
            return Ok(out);
        }
    }
    let frigate = !double_take && kind.as_deref() == Some("face");
    let matches = if frigate {
        // Frigate names a face only above its own threshold; a score is
        // needed only to apply a site's higher `min_confidence`.
        let score = float(at(&v, "score"));
        if score.is_none() && o.min_confidence.is_some() {
            return Err(missing("score"));
        }
        vec![Match {
            name: text(at(&v, "name")),
            confidence: score.unwrap_or(1.0) * 100.0,
            is_match: true,
        }]
    } else if let Some(m) = at(&v, "match").filter(|m| m.is_object()) {
        vec![read_match(m, "match")?]
    } else if let Some(list) = at(&v, "matches").and_then(Value::as_array) {
        list.iter()
            .map(|m| read_match(m, "matches[]"))
            .collect::<Result<_, _>>()?
    } else {
        return Err(missing("match"));
    };
    let time = at(&v, "timestamp").ok_or_else(|| missing("timestamp"))?;
    let (at_utc, device_local) = time_value("timestamp", time, cx.device_tz)?;
    let event_id = text(at(&v, "id"));
    let device_id = cx
        .device_id
        .map(str::to_string)
        .or_else(|| text(at(&v, "camera")));
    let topic_name = match (topic_level(cx.topic, 1), topic_level(cx.topic, 2)) {
        (Some("matches"), Some(n)) => Some(n.to_string()),
        _ => None,
    };
    if matches.is_empty() {
        out.ignore("no matches");
    }
    for m in matches {
        let Some(name) = m.name.or_else(|| topic_name.clone()) else {
            return Err(missing("match.name"));
        };
        let name = name.to_lowercase();
        if name == "unknown" {
            out.ignore("unknown face");
        } else if !m.is_match {
            out.ignore(format!("{name}: not a match"));
        } else if let Some(min) = o.min_confidence.filter(|min| m.confidence < *min) {
            out.ignore(format!("{name}: confidence {} below {min}", m.confidence));
        } else {
            out.punches.push(DecodedPunch {
                identity: Identity::Alias(name),
                at: at_utc,
                device_local,
                device_id: device_id.clone(),
                event_id: event_id.clone(),
                kind: PunchKind::Unspecified,
                verify: Verify::Face,
                replay: false,
            });
        }
    }
    Ok(out)
}

/// Composed payloads for the fuzz corpus.
#[cfg(test)]
pub(crate) const SAMPLES: &[&[u8]] = &[
    br#"{"id":"1741067830.412077-k2v9aq","duration":0.91,"timestamp":"2025-03-04T05:57:12.140Z","attempts":4,"camera":"lobby","zones":["entrance"],"match":{"name":"leyla","confidence":88.4,"match":true,"box":{"top":212,"left":640,"width":142,"height":171},"type":"latest","duration":0.22,"detector":"compreface","filename":"5c1e2b7e.jpg","base64":null}}"#,
    br#"{"type":"face","id":"1741067830.412077-k2v9aq","name":"Leyla","score":0.93,"camera":"lobby","timestamp":1741067832.51}"#,
];

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use crate::ingest::decode::Debounce;
    use chrono::Duration;

    fn dec(s: &str, min: f64) -> Result<Decoded, DecodeError> {
        let c = cx(IST).with_topic("double-take/matches/leyla");
        decode(
            s.as_bytes(),
            &c,
            &DoubleTakeOptions {
                min_confidence: Some(min),
            },
        )
    }

    fn sample() -> String {
        String::from_utf8(SAMPLES[0].to_vec()).unwrap()
    }

    #[test]
    fn match_above_threshold() {
        let d = dec(&sample(), 80.0).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Alias("leyla".into()));
        assert_eq!(p.at.to_rfc3339(), "2025-03-04T05:57:12.140+00:00");
        assert_eq!(p.event_id.as_deref(), Some("1741067830.412077-k2v9aq"));
        assert_eq!(p.device_id.as_deref(), Some("lobby"));
        assert_eq!(p.verify, Verify::Face);
    }

    #[test]
    fn threshold_unknown_and_non_matches_are_ignored() {
        let d = dec(&sample(), 90.0).unwrap();
        assert!(d.punches.is_empty());
        assert_eq!(d.ignored[0].reason, "leyla: confidence 88.4 below 90");
        let d = dec(&sample().replace("\"match\":true", "\"match\":false"), 80.0).unwrap();
        assert!(d.punches.is_empty());
        let d = dec(&sample().replace("\"leyla\"", "\"unknown\""), 0.0).unwrap();
        assert_eq!(d.ignored[0].reason, "unknown face");
    }

    #[test]
    fn name_from_topic_when_absent() {
        let d = dec(&sample().replace("\"name\":\"leyla\",", ""), 80.0).unwrap();
        assert_eq!(one(&d).identity, Identity::Alias("leyla".into()));
    }

    #[test]
    fn several_attempts_share_the_event_id_and_debounce_to_one() {
        let mut deb = Debounce::new(Duration::seconds(60));
        let c = cx(IST);
        let mut kept = Vec::new();
        for (i, conf) in [81.0, 88.4, 92.1, 90.0].into_iter().enumerate() {
            let s = sample().replace("88.4", &conf.to_string());
            let mut d = dec(&s, 80.0).unwrap();
            deb.apply(&mut d, c.received_at + Duration::seconds(i as i64));
            kept.extend(d.punches);
        }
        assert_eq!(kept.len(), 1);
        assert_eq!(
            kept[0].event_id.as_deref(),
            Some("1741067830.412077-k2v9aq")
        );
    }

    #[test]
    fn camera_topic_with_several_matches() {
        let s = r#"{"id":"e1","timestamp":"2025-03-04T05:57:12Z","camera":"lobby",
          "matches":[{"name":"leyla","confidence":91,"match":true},{"name":"omar","confidence":55,"match":true}],
          "unknowns":[]}"#;
        let d = decode(s.as_bytes(), &cx(IST), &DoubleTakeOptions::default()).unwrap();
        // Both are Double Take matches: trusted by default.
        assert_eq!(d.punches.len(), 2);
        let raised = DoubleTakeOptions {
            min_confidence: Some(80.0),
        };
        let d = decode(s.as_bytes(), &cx(IST), &raised).unwrap();
        assert_eq!(d.punches.len(), 1);
        assert_eq!(d.ignored.len(), 1);
    }

    /// Issue 11 (5): a `match: true` at confidence 66 is Double Take's own
    /// decision (its default threshold is 60); it was dropped under a
    /// default of 80.
    #[test]
    fn match_true_is_trusted_by_default() {
        let s = sample().replace("88.4", "66");
        let d = decode(
            s.as_bytes(),
            &cx(IST).with_topic("double-take/matches/leyla"),
            &DoubleTakeOptions::default(),
        )
        .unwrap();
        assert_eq!(one(&d).identity, Identity::Alias("leyla".into()));
        let d = dec(&s, 70.0).unwrap();
        assert!(d.punches.is_empty());
        assert_eq!(d.ignored[0].reason, "leyla: confidence 66 below 70");
    }

    /// Double Take's own README samples (`tests/fixtures/captures/
    /// README.md`): the `matches/david` message is a `match: true` at
    /// confidence 66.07, below the old default of 80 (issue 11, defect 5).
    #[test]
    fn double_take_readme_messages() {
        let m = include_bytes!("../../../tests/fixtures/captures/double_take_matches_david.json");
        let c = cx(IST).with_topic("double-take/matches/david");
        let d = decode(m, &c, &DoubleTakeOptions::default()).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Alias("david".into()));
        assert_eq!(p.at.to_rfc3339(), "2021-06-17T05:01:36.030+00:00");
        assert_eq!(p.device_id.as_deref(), Some("living-room"));
        assert_eq!(p.event_id.as_deref(), Some("1623906078.684285-5l9hw6"));
        let cam =
            include_bytes!("../../../tests/fixtures/captures/double_take_cameras_back_door.json");
        let c = cx(IST).with_topic("double-take/cameras/back-door");
        let d = decode(cam, &c, &DoubleTakeOptions::default()).unwrap();
        assert_eq!(one(&d).identity, Identity::Alias("david".into()));
        assert_eq!(one(&d).device_id.as_deref(), Some("back-door"));
    }

    /// Frigate's `tracked_object_update` as documented and as logged
    /// (`tests/fixtures/captures/README.md`): one face punch; description
    /// and plate updates are ignored, never errors.
    #[test]
    fn frigate_tracked_object_update_capture() {
        let lines =
            include_str!("../../../tests/fixtures/captures/frigate_tracked_object_update.jsonl");
        let c = cx(IST).with_topic("frigate/tracked_object_update");
        let mut punches = Vec::new();
        let mut ignored = 0;
        for l in lines.lines() {
            let d = decode(l.as_bytes(), &c, &DoubleTakeOptions::default())
                .unwrap_or_else(|e| panic!("{l}: {e}"));
            ignored += d.ignored.len();
            punches.extend(d.punches);
        }
        assert_eq!(ignored, 3);
        assert_eq!(punches.len(), 1);
        assert_eq!(punches[0].identity, Identity::Alias("john".into()));
        assert_eq!(punches[0].device_id.as_deref(), Some("front_door_cam"));
        assert_eq!(punches[0].at.timestamp(), 1607123958);
    }

    /// Issue 11 (5): Frigate's other `tracked_object_update` messages are
    /// normal traffic: ignored and counted, never an error (quarantine).
    #[test]
    fn frigate_lpr_description_and_unnamed_faces_are_ignored() {
        for s in [
            r#"{"type":"lpr","id":"1741067830.412077-k2v9aq","name":null,"plate":"ABC123","score":0.91,"camera":"drive","timestamp":1741067832.51}"#,
            r#"{"type":"description","id":"1741067830.412077-k2v9aq","description":"A person walks to the door."}"#,
            r#"{"type":"face","id":"1741067830.412077-k2v9aq","name":null,"score":0.12,"camera":"lobby","timestamp":1741067832.51}"#,
        ] {
            let d = decode(s.as_bytes(), &cx(IST), &DoubleTakeOptions::default())
                .unwrap_or_else(|e| panic!("{s}: {e}"));
            assert!(d.punches.is_empty(), "{s}");
            assert_eq!(d.ignored.len(), 1, "{s}");
        }
    }

    #[test]
    fn frigate_face_update() {
        let d = decode(SAMPLES[1], &cx(IST), &DoubleTakeOptions::default()).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Alias("leyla".into()));
        assert_eq!(p.at.to_rfc3339(), "2025-03-04T05:57:12.510+00:00");
        // Frigate named it: trusted unless the site raised the bar.
        let low = String::from_utf8(SAMPLES[1].to_vec())
            .unwrap()
            .replace("0.93", "0.42");
        let d = decode(low.as_bytes(), &cx(IST), &DoubleTakeOptions::default()).unwrap();
        assert_eq!(d.punches.len(), 1);
        let raised = DoubleTakeOptions {
            min_confidence: Some(80.0),
        };
        assert!(
            decode(low.as_bytes(), &cx(IST), &raised)
                .unwrap()
                .punches
                .is_empty()
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = dec(&sample().replace("\"timestamp\"", "\"ts\""), 80.0).unwrap_err();
        assert_eq!(e.to_string(), "field \"timestamp\": missing");
        let e = dec(&sample().replace("\"confidence\"", "\"conf\""), 80.0).unwrap_err();
        assert_eq!(e.to_string(), "field \"match.confidence\": missing");
        let e = dec(r#"{"id":"x","timestamp":"2025-03-04T05:57:12Z"}"#, 80.0).unwrap_err();
        assert_eq!(e.to_string(), "field \"match\": missing");
    }
}
