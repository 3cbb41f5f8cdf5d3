//! `zk-rtlog`: ZKTeco access-control firmware ("Security PUSH",
//! `DeviceType=acc`: SpeedFace, ProFace, inBio panels) real-time events,
//! `POST /iclock/cdata?SN=…&table=rtlog`.
//!
//! One event per line, tab-separated `key=value` pairs in any order:
//! `time=2026-09-28 11:40:45<TAB>pin=41235478<TAB>cardno=0<TAB>eventaddr=1
//! <TAB>event=0<TAB>inoutstatus=0<TAB>verifytype=1<TAB>index=13355…`.
//! `time` is the terminal's local wall time. `event` 0 ("normal verify
//! open") is a verified pass and a punch (the `events` option lists the
//! codes taken as punches); every other event (door, alarm, refused
//! person, `pin=0` events) is counted as ignored. The dedupe key is the
//! device with `index` (the terminal's record counter), the PIN and the
//! time: a counter restarted by a reset never makes two people's punches
//! one.

use serde::Deserialize;

use super::value::{cap, invalid, missing, parse_local};
use super::{
    DecodeContext, DecodeError, Decoded, DecodedPunch, Identity, LineError, PunchKind, Verify,
    canonical_card,
};
use crate::domain::time::resolve_local;

/// Options of `zk-rtlog`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtlogOptions {
    /// `event` codes that are verified passes (punches); default `[0]`.
    #[serde(default = "default_events")]
    pub events: Vec<u32>,
}

fn default_events() -> Vec<u32> {
    vec![0]
}

impl Default for RtlogOptions {
    fn default() -> Self {
        RtlogOptions {
            events: default_events(),
        }
    }
}

fn verify(code: u32) -> Verify {
    match code {
        1 => Verify::Fingerprint,
        3 => Verify::Password,
        4 => Verify::Card,
        15 => Verify::Face,
        n => Verify::Other(n),
    }
}

/// Decodes an `rtlog` body (one or more lines).
pub fn decode(bytes: &[u8], cx: &DecodeContext, o: &RtlogOptions) -> Result<Decoded, DecodeError> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Decoded::default();
    let mut seen = 0usize;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c: char| c == '\r' || c == '\0' || c == ' ');
        if line.is_empty() {
            continue;
        }
        seen += 1;
        if let Err(error) = record(line, cx, o, &mut out) {
            out.line_errors.push(LineError {
                line: i + 1,
                text: cap(line),
                error,
            });
        }
    }
    if seen == 0 {
        return Err(DecodeError::Unrecognised("empty rtlog body".into()));
    }
    if seen == 1 && out.line_errors.len() == 1 {
        return Err(out.line_errors.swap_remove(0).error);
    }
    out.or_first_error()
}

fn record(
    line: &str,
    cx: &DecodeContext,
    o: &RtlogOptions,
    out: &mut Decoded,
) -> Result<(), DecodeError> {
    let sep = if line.contains('\t') { '\t' } else { ',' };
    let mut get = std::collections::HashMap::new();
    for pair in line.split(sep) {
        if let Some((k, v)) = pair.split_once('=') {
            get.insert(k.trim().to_ascii_lowercase(), v.trim());
        }
    }
    if !get.contains_key("event") || !get.contains_key("time") {
        return Err(DecodeError::Unrecognised(
            "not an rtlog record (time=…<TAB>pin=…<TAB>event=…)".into(),
        ));
    }
    let num = |k: &str| -> Result<Option<u32>, DecodeError> {
        match get.get(k) {
            None | Some(&"") => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .map(Some)
                .map_err(|_| invalid(k, v, "is not a whole number")),
        }
    };
    let event = num("event")?.ok_or_else(|| missing("event"))?;
    let time = get.get("time").copied().unwrap_or_default();
    let local = parse_local("time", time)?;
    if !(2000..=2100).contains(&chrono::Datelike::year(&local)) {
        return Err(invalid(
            "time",
            time,
            "is outside 2000-2100: terminal clock not set",
        ));
    }
    if !o.events.contains(&event) {
        out.ignore(format!("rtlog event {event} is not a verified pass"));
        return Ok(());
    }
    let pin = get.get("pin").copied().unwrap_or_default();
    let card = get.get("cardno").copied().unwrap_or_default();
    let identity = if !pin.is_empty() && pin != "0" {
        if pin.chars().any(|c| c.is_control() || c.is_whitespace()) || pin.len() > 64 {
            return Err(invalid("pin", pin, "is not a PIN"));
        }
        Identity::Employee(pin.to_string())
    } else if let Some(c) = canonical_card(card, 10).filter(|c| c != "0") {
        Identity::Alias(c)
    } else {
        out.ignore(format!("rtlog event {event} names no person (pin=0)"));
        return Ok(());
    };
    let index = get.get("index").copied().filter(|v| !v.is_empty());
    let event_id = index.map(|i| format!("rtlog:{}:{}:{}", cap(i), identity.as_str(), local));
    out.punches.push(DecodedPunch {
        identity,
        at: resolve_local(cx.device_tz, local),
        device_local: Some(local),
        device_id: cx.device_id.map(str::to_string),
        event_id,
        kind: PunchKind::Unspecified,
        verify: num("verifytype")?.map(verify).unwrap_or(Verify::Unknown),
        replay: false,
    });
    Ok(())
}

/// Real captures for tests and the fuzz corpus.
#[cfg(test)]
pub(crate) const SAMPLES: &[&[u8]] = &[
    // A SpeedFace-V3L's rtlog upload (SN CRJP230860129), as quoted in the
    // test suite of a public Node.js ADMS server (`accPushService` tests,
    // "Trama real enviada por el SpeedFace-V3L"): a verified face pass
    // (event 0) and an unregistered-person event (27, pin 0).
    b"time=2026-09-28 11:40:45\tpin=41235478\tcardno=0\teventaddr=1\tevent=0\tinoutstatus=0\tverifytype=1\tindex=13355\tsitecode=0\tlinkid=0\tmaskflag=0\ttemperature=0\tconvtemperature=0\ntime=2026-09-28 11:45:56\tpin=0\tcardno=0\teventaddr=1\tevent=27\tinoutstatus=1\tverifytype=1\tindex=13357\tsitecode=0\tlinkid=0\tmaskflag=0\ttemperature=0\tconvtemperature=0\n",
    // The layout given in a public integration guide for ZKTeco
    // access-control push (`table=rtlog` section): one pass.
    b"time=2017-01-10 11:49:32\tpin=1001\tcardno=0\teventaddr=1\tevent=0\tinoutstatus=0\tverifytype=15\tindex=42\n",
];

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn verified_pass_is_a_punch_and_other_events_are_ignored() {
        let c = cx(IST).with_device("CRJP230860129");
        let d = decode(SAMPLES[0], &c, &RtlogOptions::default()).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Employee("41235478".into()));
        assert_eq!(p.at, utc("2026-09-28T08:40:45Z"));
        assert_eq!(p.device_id.as_deref(), Some("CRJP230860129"));
        assert_eq!(
            p.event_id.as_deref(),
            Some("rtlog:13355:41235478:2026-09-28 11:40:45")
        );
        assert_eq!(p.verify, Verify::Fingerprint);
        assert_eq!(d.ignored.len(), 1);
        assert_eq!(d.ignored[0].reason, "rtlog event 27 is not a verified pass");
        let d = decode(SAMPLES[1], &c, &RtlogOptions::default()).unwrap();
        assert_eq!(one(&d).verify, Verify::Face);
    }

    #[test]
    fn garbage_and_unset_clocks_are_errors() {
        let c = cx(IST);
        let o = RtlogOptions::default();
        assert!(decode(b"hello", &c, &o).is_err());
        assert!(decode(b"", &c, &o).is_err());
        let e = decode(b"time=1970-01-01 00:00:09\tpin=7\tevent=0\tindex=1", &c, &o).unwrap_err();
        assert!(e.to_string().contains("clock not set"), "{e}");
        let d = decode(
            b"time=2026-09-28 11:40:45\tpin=7\tevent=0\tindex=1\nnonsense\n",
            &c,
            &o,
        )
        .unwrap();
        assert_eq!(d.punches.len(), 1);
        assert_eq!(d.line_errors.len(), 1);
        assert_eq!(d.line_errors[0].text, "nonsense");
    }
}
