//! Helpers shared by the decoders: lenient reads of JSON values (numbers
//! often arrive as strings, `devices.md` §6 "Encoding"), time parsing, and
//! error construction with capped values.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::DecodeError;
use crate::domain::time::resolve_local;

/// The local time layout terminals write, as error messages name it.
pub const LOCAL_LAYOUT: &str = "YYYY-MM-DD HH:MM:SS";

/// First day a punch may carry. A terminal whose clock was never set
/// counts from its epoch (1970, 2000-00-00 on some firmware) or from boot
/// (esp-rfid before NTP), so anything earlier is "terminal clock not set".
pub const FIRST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => NaiveDate::MIN,
};

/// Last day a punch may carry; the bound also keeps date arithmetic far
/// from overflow.
pub const LAST_DAY: NaiveDate = match NaiveDate::from_ymd_opt(2100, 12, 31) {
    Some(d) => d,
    None => NaiveDate::MAX,
};

/// True when `t` falls on a day in [`FIRST_DAY`] ..= [`LAST_DAY`].
pub fn plausible(t: NaiveDateTime) -> bool {
    (FIRST_DAY..=LAST_DAY).contains(&t.date())
}

/// The error for a time outside the plausible range.
pub fn clock_not_set(field: &str, value: &str) -> DecodeError {
    DecodeError::ClockNotSet {
        field: field.to_string(),
        value: cap(value),
    }
}

/// Parses a JSON payload. Bytes that are not UTF-8 (GBK names) are
/// replaced, so they cannot fail a payload whose fields we read are ASCII.
pub fn parse_json(bytes: &[u8]) -> Result<Value, DecodeError> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}');
    serde_json::from_str(text).map_err(|e| DecodeError::NotJson(e.to_string()))
}

/// Reads the first JSON value that starts at byte `start` of `text`,
/// ignoring whatever follows it. Returns the value and its end offset.
pub fn json_prefix(text: &str, start: usize) -> Result<(Value, usize), DecodeError> {
    let rest = text.get(start..).unwrap_or("");
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, start + stream.byte_offset())),
        Some(Err(e)) => Err(DecodeError::NotJson(e.to_string())),
        None => Err(DecodeError::NotJson("empty".into())),
    }
}

/// The value at a dotted path (`Wiegand.UID`, `info.time`); numeric
/// segments index arrays.
pub fn at<'v>(v: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(v, |v, seg| match v {
        Value::Object(m) => m.get(seg),
        Value::Array(a) => seg.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Text of a string (trimmed, non-empty) or an integer. Floats, booleans,
/// objects and null are not text.
pub fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => {
            let s = s.trim();
            (!s.is_empty()).then(|| s.to_string())
        }
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

/// An integer, or a string holding one (`"1"`, `" 3310 "`), or a float or
/// float string with no fraction (`"1.000000"`).
pub fn int(v: Option<&Value>) -> Option<i64> {
    match v? {
        Value::Number(n) => n.as_i64().or_else(|| whole(n.as_f64()?)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| whole(s.parse::<f64>().ok()?))
        }
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn whole(f: f64) -> Option<i64> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

/// A number, or a string holding one.
pub fn float(v: Option<&Value>) -> Option<f64> {
    let f = match v? {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    f.is_finite().then_some(f)
}

/// A boolean, or `"true"`/`"false"`, or 1/0 in either form.
pub fn flag(v: Option<&Value>) -> Option<bool> {
    match v? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => None,
        },
        Value::Number(n) => match n.as_i64() {
            Some(1) => Some(true),
            Some(0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A value shown in an error, capped so a megabyte of Base64 stays out of
/// logs.
pub fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => cap(s),
        other => cap(&other.to_string()),
    }
}

/// A record of a multi-record body as kept for quarantine and replay: its
/// own text, up to 64 KiB (cut at a character boundary).
pub fn cap_record(s: &str) -> String {
    const MAX: usize = 64 * 1024;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// At most 80 characters of `s`.
pub fn cap(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// A `Missing` error for `field`.
pub fn missing(field: &str) -> DecodeError {
    DecodeError::Missing {
        field: field.to_string(),
    }
}

/// An `Invalid` error for `field`.
pub fn invalid(field: &str, value: &str, why: impl Into<String>) -> DecodeError {
    DecodeError::Invalid {
        field: field.to_string(),
        value: cap(value),
        why: why.into(),
    }
}

/// A device-local wall time: `YYYY-MM-DD HH:MM:SS` (also with `T` or `/`,
/// and optional fractional seconds).
pub fn parse_local(field: &str, s: &str) -> Result<NaiveDateTime, DecodeError> {
    let t = s.trim();
    let parsed = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S%.f",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(t, f).ok());
    match parsed {
        Some(n) if plausible(n) => Ok(n),
        Some(_) => Err(clock_not_set(field, s)),
        None => Err(invalid(field, s, format!("is not {LOCAL_LAYOUT}"))),
    }
}

/// A time with an offset (RFC 3339, `Z` or `+03:00`), or a local wall time
/// read in `tz`. Returns the instant and the wall time the device wrote.
pub fn parse_time(
    field: &str,
    s: &str,
    tz: Tz,
) -> Result<(DateTime<Utc>, Option<NaiveDateTime>), DecodeError> {
    let t = s.trim();
    match parse_local(field, t) {
        Ok(local) => return Ok((resolve_local(tz, local), Some(local))),
        Err(e @ DecodeError::ClockNotSet { .. }) => return Err(e),
        Err(_) => {}
    }
    let with_offset = DateTime::parse_from_rfc3339(t)
        .ok()
        .or_else(|| DateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .or_else(|| DateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f%z").ok());
    match with_offset {
        Some(d) if plausible(d.naive_local()) && plausible(d.naive_utc()) => {
            Ok((d.with_timezone(&Utc), Some(d.naive_local())))
        }
        Some(_) => Err(clock_not_set(field, s)),
        None => Err(invalid(
            field,
            s,
            format!("is neither {LOCAL_LAYOUT} nor RFC 3339 with an offset"),
        )),
    }
}

/// Seconds since the Unix epoch (fractions allowed). Values above 1e11 are
/// read as milliseconds: as seconds they would be past the year 5000.
/// Small values (a clock counting from 1970 or from boot) and values past
/// 2100 are "terminal clock not set".
pub fn from_epoch(field: &str, secs: f64) -> Result<DateTime<Utc>, DecodeError> {
    let secs = if secs > 1e11 { secs / 1000.0 } else { secs };
    let bad = || invalid(field, &secs.to_string(), "is not epoch seconds");
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    // 2000-01-01T00:00:00Z and 2101-01-01T00:00:00Z.
    if !(946_684_800.0..4_133_980_800.0).contains(&secs) {
        return Err(clock_not_set(field, &secs.to_string()));
    }
    let whole = secs.floor();
    // f64 epoch seconds hold about a microsecond; finer digits are noise.
    let micros = (((secs - whole) * 1e6).round() as u32).min(999_999);
    let nanos = micros * 1000;
    DateTime::from_timestamp(whole as i64, nanos).ok_or_else(bad)
}

/// A time from a JSON value: a string as [`parse_time`], or epoch seconds
/// as a number or a numeric string.
pub fn time_value(
    field: &str,
    v: &Value,
    tz: Tz,
) -> Result<(DateTime<Utc>, Option<NaiveDateTime>), DecodeError> {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(f) => Ok((from_epoch(field, f)?, None)),
            None => Err(invalid(field, &n.to_string(), "is not epoch seconds")),
        },
        Value::String(s) => {
            let t = s.trim();
            if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
                match t.parse::<f64>() {
                    Ok(f) => Ok((from_epoch(field, f)?, None)),
                    Err(_) => Err(invalid(field, s, "is not epoch seconds")),
                }
            } else {
                parse_time(field, s, tz)
            }
        }
        other => Err(invalid(field, &shown(other), "is not a time")),
    }
}

/// A local wall time made an instant with a fixed offset in seconds east
/// of UTC (ZKTeco `TimeOffset`).
pub fn with_offset(
    field: &str,
    local: NaiveDateTime,
    secs: i64,
    raw: &str,
) -> Result<DateTime<Utc>, DecodeError> {
    if secs.abs() > 14 * 3600 {
        return Err(invalid(field, raw, "is not seconds from UTC within ±14 h"));
    }
    FixedOffset::east_opt(secs as i32)
        .and_then(|o| o.from_local_datetime(&local).single())
        .map(|d| d.with_timezone(&Utc))
        .ok_or_else(|| invalid(field, raw, "is not seconds from UTC"))
}

/// Level `n` (0-based) of an MQTT topic, when non-empty.
pub fn topic_level(topic: Option<&str>, n: usize) -> Option<&str> {
    topic?.split('/').nth(n).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_reads() {
        assert_eq!(text(Some(&json!("0217"))).as_deref(), Some("0217"));
        assert_eq!(text(Some(&json!(1043))).as_deref(), Some("1043"));
        assert_eq!(text(Some(&json!(" "))), None);
        assert_eq!(text(Some(&json!(1.5))), None);
        assert_eq!(int(Some(&json!("1"))), Some(1));
        assert_eq!(int(Some(&json!("91.000000"))), Some(91));
        assert_eq!(int(Some(&json!("x"))), None);
        assert_eq!(float(Some(&json!("91.5"))), Some(91.5));
        assert_eq!(flag(Some(&json!("false"))), Some(false));
        assert_eq!(flag(Some(&json!(0))), Some(false));
        assert_eq!(
            at(&json!({"a":{"b":[1,{"c":2}]}}), "a.b.1.c"),
            Some(&json!(2))
        );
        assert_eq!(at(&json!({"a":1}), "a.b"), None);
    }

    #[test]
    fn time_errors_name_the_field() {
        let e = parse_local("time", "2025-13-01").unwrap_err();
        assert_eq!(
            e.to_string(),
            "field \"time\": \"2025-13-01\" is not YYYY-MM-DD HH:MM:SS"
        );
        // Issue 11 (4): a clock that was never set is named as such.
        let e = parse_local("time", "1970-01-01 08:00:05").unwrap_err();
        assert_eq!(
            e.to_string(),
            "field \"time\": \"1970-01-01 08:00:05\": terminal clock not set (outside 2000-01-01 … 2100-12-31)"
        );
        assert!(matches!(
            parse_local("time", "2101-01-01 00:00:00"),
            Err(DecodeError::ClockNotSet { .. })
        ));
        assert!(parse_local("time", "2000-01-01 00:00:00").is_ok());
        assert!(parse_local("time", "2100-12-31 23:59:59").is_ok());
        assert!(matches!(
            from_epoch("t", 3_600.0),
            Err(DecodeError::ClockNotSet { .. })
        ));
        assert!(matches!(
            parse_time("t", "1970-01-01T00:00:05Z", Tz::UTC),
            Err(DecodeError::ClockNotSet { .. })
        ));
        assert!(from_epoch("t", -1.0).is_err());
        assert!(from_epoch("t", f64::NAN).is_err());
        assert_eq!(
            from_epoch("t", 1_741_067_832_510.0).unwrap().to_rfc3339(),
            "2025-03-04T05:57:12.510+00:00"
        );
    }

    #[test]
    fn offsets_and_local_times() {
        let (t, l) = parse_time("t", "2025-03-04T08:57:12+03:00", Tz::UTC).unwrap();
        assert_eq!(t.to_rfc3339(), "2025-03-04T05:57:12+00:00");
        assert_eq!(l.unwrap().to_string(), "2025-03-04 08:57:12");
        let (t, _) = parse_time("t", "2025-03-04T08:57:12+0300", Tz::UTC).unwrap();
        assert_eq!(t.to_rfc3339(), "2025-03-04T05:57:12+00:00");
        let (t, _) = parse_time("t", "2025-03-04 08:57:12", chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(t.to_rfc3339(), "2025-03-04T00:57:12+00:00");
    }

    #[test]
    fn json_prefix_stops_after_one_value() {
        let text = "xx{\"a\":1}\r\n--b\r\n\u{ffd}\u{ffd}";
        let (v, end) = json_prefix(text, 2).unwrap();
        assert_eq!(v, json!({"a":1}));
        assert_eq!(&text[end..end + 2], "\r\n");
        assert!(json_prefix(text, 200).is_err());
    }
}
