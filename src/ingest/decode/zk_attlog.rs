//! `zk-attlog`: ZKTeco ATTLOG text, one punch per line: the PUSH/ADMS upload
//! body (`devices.md` §1.1), the same lines on a serial port, and the USB
//! export `attlog.dat` (§1.3).
//!
//! Layouts (TAB-separated):
//! - PUSH: `PIN, Time, Status, Verify, WorkCode, Reserved1, Reserved2`
//!   and on firmware ≥ 2.4 `MaskFlag, Temperature, ConvTemperature,
//!   TimeOffset, ExtendData`;
//! - `attlog.dat`: `PIN, Time, DeviceID, Status, Verify, WorkCode` (exactly
//!   six columns, which is how [`ZkLayout::Auto`] tells them apart).
//!
//! Traps handled: PINs are text (leading zeros kept; the space padding of
//! `attlog.dat` trimmed); time is local wall time in the device's zone
//! unless `TimeOffset` (seconds east of UTC) is present and looks like one
//! (see [`time_offset`]: MB10-VL-style firmware write a record counter in
//! that column); LF or CRLF, no
//! final newline; form-encoded bodies (`%09` for TAB); `OPLOG`/`USER`/`FP`
//! lines of other tables, and the serial-number header and checksum
//! trailer of the extended `attlog.dat`, are skipped; bytes that are not
//! UTF-8 (GBK names) are replaced, never fatal; a bad line is reported in
//! [`Decoded::line_errors`] and the good lines are kept; `Status` 0–5 maps
//! to [`PunchKind`] and any other value is `Unspecified`; `Verify` maps to
//! [`Verify`] with an `Other` arm and never rejects. The event id is
//! `PIN` + local time, the natural key with the device (§1.1 "Duplicates").

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};
use serde::Deserialize;

use super::value::{LOCAL_LAYOUT, cap, invalid, missing, parse_local, with_offset};
use super::{
    DecodeContext, DecodeError, Decoded, DecodedPunch, Identity, Ignored, LineError, PunchKind,
    Verify,
};
use crate::domain::time::resolve_local;

/// Which column layout the lines have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZkLayout {
    /// Six columns is `attlog.dat`, anything else PUSH.
    #[default]
    Auto,
    /// The PUSH/serial layout.
    Push,
    /// The `attlog.dat` layout.
    Dat,
}

/// Options of the `zk-attlog` decoder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZkOptions {
    /// Column layout.
    pub layout: ZkLayout,
}

fn kind(status: &str) -> PunchKind {
    match status.trim() {
        "0" => PunchKind::CheckIn,
        "1" => PunchKind::CheckOut,
        "2" => PunchKind::BreakOut,
        "3" => PunchKind::BreakIn,
        "4" => PunchKind::OtIn,
        "5" => PunchKind::OtOut,
        _ => PunchKind::Unspecified,
    }
}

/// The PUSH appendix table as field practice confirms it (§1.1).
fn verify(code: &str) -> Verify {
    match code.trim().parse::<u32>() {
        Ok(0) => Verify::Any,
        Ok(1) => Verify::Fingerprint,
        Ok(2) => Verify::UserId,
        Ok(3) => Verify::Password,
        Ok(4) => Verify::Card,
        Ok(15) => Verify::Face,
        Ok(25) => Verify::Palm,
        Ok(n) => Verify::Other(n),
        Err(_) => Verify::Unknown,
    }
}

/// Undoes form encoding (`+` and `%XX`); invalid escapes stay as written.
fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Lines of other tables that share the endpoint (§1.1 step 3).
fn other_table(line: &str) -> bool {
    [
        "OPLOG ",
        "USER ",
        "FP ",
        "FACE ",
        "BIODATA ",
        "USERPIC ",
        "BIOPHOTO ",
    ]
    .iter()
    .any(|p| line.starts_with(p))
}

/// One token of letters and digits: the shape of the extended export's
/// serial-number header and checksum trailer.
fn header_like(line: &str) -> bool {
    !line.is_empty() && line.len() <= 64 && line.chars().all(|c| c.is_ascii_alphanumeric())
}

/// One ATTLOG record as written, before it is placed in time: what both
/// the live decoder and `attendd import punches --format zk-attlog` read
/// (one parser, so both agree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkLine {
    /// The PIN, leading zeros kept, padding trimmed.
    pub pin: String,
    /// The device wall time.
    pub local: NaiveDateTime,
    /// A trusted `TimeOffset` (seconds east of UTC), see [`time_offset`].
    pub offset: Option<i64>,
    /// A non-empty `TimeOffset` column that was not trusted, as written.
    pub untrusted_offset: Option<String>,
    /// `Status`.
    pub kind: PunchKind,
    /// `Verify`.
    pub verify: Verify,
    /// The `attlog.dat` `DeviceID` column, when that layout was read.
    pub column_device: Option<String>,
    /// True for the `attlog.dat` layout.
    pub dat: bool,
}

/// Reads the 11th column as a `TimeOffset` only when it looks like one:
/// signed (`+28800`, `-18000`, `+0`), a whole number of quarter hours and
/// within ±14 h. Some firmware (e.g. MB10-VL) put a running record counter
/// there (`10881`, `10882`, …); read as seconds it shifted every punch by a
/// different amount (issue 11, defect 1). Anything else is not an offset
/// and the device's configured zone applies.
pub fn time_offset(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if !(raw.starts_with('+') || raw.starts_with('-')) {
        return None;
    }
    let digits = &raw[1..];
    if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = raw.parse::<i64>().ok()?;
    (secs % 900 == 0 && secs.abs() <= 14 * 3600).then_some(secs)
}

/// Reads one TAB-separated record (already split into columns).
pub fn read_columns(cols: &[&str], layout: ZkLayout) -> Result<ZkLine, DecodeError> {
    let pin = cols.first().copied().unwrap_or("").trim();
    if pin.is_empty() {
        return Err(missing("PIN"));
    }
    if pin.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("PIN", pin, "is not one token"));
    }
    let time = cols.get(1).copied().unwrap_or("");
    let local = parse_local("Time", time).map_err(|e| match e {
        DecodeError::Invalid { field, value, why } if why.starts_with("is not") => {
            DecodeError::Invalid {
                field,
                value,
                why: format!("is not {LOCAL_LAYOUT}"),
            }
        }
        e => e,
    })?;
    let dat = match layout {
        ZkLayout::Dat => true,
        ZkLayout::Push => false,
        ZkLayout::Auto => cols.len() == 6,
    };
    let col = |i: usize| cols.get(i).copied().unwrap_or("");
    let (status, code, column_device) = if dat {
        (
            col(3),
            col(4),
            Some(col(2).trim()).filter(|d| !d.is_empty()),
        )
    } else {
        (col(2), col(3), None)
    };
    let raw_offset = if dat { "" } else { col(10).trim() };
    let offset = time_offset(raw_offset);
    Ok(ZkLine {
        pin: pin.to_string(),
        local,
        offset,
        untrusted_offset: (offset.is_none() && !raw_offset.is_empty()).then(|| cap(raw_offset)),
        kind: kind(status),
        verify: verify(code),
        column_device: column_device.map(str::to_string),
        dat,
    })
}

fn line(
    cols: &[&str],
    cx: &DecodeContext,
    layout: ZkLayout,
) -> Result<(DecodedPunch, Option<String>), DecodeError> {
    let l = read_columns(cols, layout)?;
    let at = match l.offset {
        Some(secs) => with_offset("TimeOffset", l.local, secs, &secs.to_string())?,
        None => resolve_local(cx.device_tz, l.local),
    };
    let punch = DecodedPunch {
        identity: Identity::Employee(l.pin.clone()),
        at,
        device_local: Some(l.local),
        device_id: cx.device_id.map(str::to_string).or(l.column_device.clone()),
        event_id: Some(format!("{} {}", l.pin, l.local.format("%Y-%m-%d %H:%M:%S"))),
        kind: l.kind,
        verify: l.verify,
        // A USB export is history by nature.
        replay: l.dat,
    };
    Ok((punch, l.untrusted_offset))
}

/// Decodes a body of ATTLOG lines.
pub fn decode(bytes: &[u8], cx: &DecodeContext, o: &ZkOptions) -> Result<Decoded, DecodeError> {
    let raw = String::from_utf8_lossy(bytes);
    let text = if !raw.contains('\t') && raw.contains("%09") {
        form_decode(&raw)
    } else {
        raw.into_owned()
    };
    let text = text.trim_start_matches('\u{feff}');
    let lines: Vec<(usize, &str)> = text
        .split('\n')
        .map(|l| l.trim_end_matches('\r'))
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l))
        .collect();
    let first = lines.first().map(|(n, _)| *n);
    let last = lines.last().map(|(n, _)| *n);
    let mut out = Decoded::default();
    for &(n, l) in &lines {
        let skip = |out: &mut Decoded, reason: &str| {
            out.ignored.push(Ignored {
                line: Some(n),
                reason: reason.to_string(),
            })
        };
        if other_table(l) {
            skip(&mut out, "not an ATTLOG record (other table)");
            continue;
        }
        let cols: Vec<&str> = l.split('\t').collect();
        if cols.len() < 2 {
            if (Some(n) == first || Some(n) == last) && header_like(l.trim()) {
                skip(&mut out, "export header or checksum line");
            } else {
                out.line_errors.push(LineError {
                    line: n,
                    text: cap(l),
                    error: DecodeError::Unrecognised("no TAB-separated fields".into()),
                });
            }
            continue;
        }
        match line(&cols, cx, o.layout) {
            Ok((p, untrusted)) => {
                if let Some(raw) = untrusted
                    && out.warnings.is_empty()
                {
                    out.warnings.push(format!(
                        "line {n}: field \"TimeOffset\": {raw:?} is not a signed whole number of quarter hours within ±14 h (some firmware write a record counter there); read in the device zone {}",
                        cx.device_tz
                    ));
                }
                out.punches.push(p)
            }
            Err(error) => out.line_errors.push(LineError {
                line: n,
                text: cap(l),
                error,
            }),
        }
    }
    out.or_first_error()
}

/// One ATTLOG line read alone, for `attendd import punches --format
/// zk-attlog` (a USB export or a saved PUSH body): the same columns as the
/// live decoder reads ([`read_columns`]), so an import and a terminal pushing
/// the same line agree on the PIN, the time and whether the 11th column is a
/// `TimeOffset` (issue 11, defect 1).
///
/// One decoded line: the PIN as written and the device wall-clock time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttLine {
    /// The PIN, leading zeros kept.
    pub pin: String,
    /// Local time in the terminal's zone.
    pub local: NaiveDateTime,
    /// The instant, when the line carries a trusted `TimeOffset`; else the
    /// caller reads `local` in the terminal's zone.
    pub at: Option<DateTime<Utc>>,
    /// `Status` (0 check-in, 1 check-out, 2 break-out, 3 break-in, …).
    pub kind: PunchKind,
}

/// Decodes one line; the error says why it is not an ATTLOG record.
pub(crate) fn parse_line(line: &str) -> Result<AttLine, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let cols: Vec<&str> = line.split('\t').collect();
    if cols.first().is_none_or(|p| p.trim().is_empty()) {
        return Err("no PIN before the first tab".into());
    }
    if cols.len() < 2 {
        return Err("no tab-separated time after the PIN".into());
    }
    let l = read_columns(&cols, ZkLayout::Auto).map_err(|e| e.to_string())?;
    let at = l.offset.and_then(|secs| {
        FixedOffset::east_opt(i32::try_from(secs).ok()?)?
            .from_local_datetime(&l.local)
            .single()
            .map(|d| d.with_timezone(&Utc))
    });
    Ok(AttLine {
        pin: l.pin,
        local: l.local,
        at,
        kind: l.kind,
    })
}

/// Composed payloads for the fuzz corpus.
#[cfg(test)]
pub(crate) const SAMPLES: &[&[u8]] = &[
    b"1043\t2025-03-04 08:57:12\t0\t15\t0\t0\t0\n0217\t2025-03-04 09:04:40\t0\t1\t0\t0\t0\n1043\t2025-03-04 18:02:05\t1\t15\t0\t0\t0\t0\t36.4\t36.4\t+10800\t\n",
    b"     1043\t2025-03-04 08:57:12\t1\t0\t15\t0\r\n      217\t2025-03-04 09:04:40\t1\t0\t1\t0\r\n",
];

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    fn dec(bytes: &[u8], c: &DecodeContext) -> Result<Decoded, DecodeError> {
        decode(bytes, c, &ZkOptions::default())
    }

    #[test]
    fn push_body_three_punches() {
        let c = cx(IST).with_device("CQZ7231460021");
        let d = dec(SAMPLES[0], &c).unwrap();
        assert_eq!(d.punches.len(), 3);
        assert!(d.line_errors.is_empty() && d.ignored.is_empty());
        let p = &d.punches[1];
        assert_eq!(p.identity, Identity::Employee("0217".into()));
        assert_eq!(p.at, utc("2025-03-04T06:04:40Z"));
        assert_eq!(p.kind, PunchKind::CheckIn);
        assert_eq!(p.verify, Verify::Fingerprint);
        assert_eq!(p.device_id.as_deref(), Some("CQZ7231460021"));
        assert_eq!(p.event_id.as_deref(), Some("0217 2025-03-04 09:04:40"));
        assert!(!p.replay);
        assert_eq!(d.punches[0].verify, Verify::Face);
        assert_eq!(d.punches[2].kind, PunchKind::CheckOut);
    }

    #[test]
    fn time_offset_wins_over_device_zone() {
        // Device zone misconfigured as Shanghai; the +10800 line is still right.
        let d = dec(SAMPLES[0], &cx(chrono_tz::Asia::Shanghai)).unwrap();
        assert_eq!(d.punches[0].at, utc("2025-03-04T00:57:12Z"));
        assert_eq!(d.punches[2].at, utc("2025-03-04T15:02:05Z"));
        // Issue 11 (1): a value that is not a plausible offset is not used
        // (it was an error before); the device zone applies, with a warning.
        let bad = b"1043\t2025-03-04 18:02:05\t1\t15\t0\t0\t0\t0\t36.4\t36.4\t+99999999\t\n";
        let d = dec(bad, &cx(IST)).unwrap();
        assert_eq!(one(&d).at, utc("2025-03-04T15:02:05Z"));
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("\"+99999999\""), "{:?}", d.warnings);
    }

    #[test]
    fn time_offset_must_be_signed_quarter_hours_within_14_h() {
        assert_eq!(time_offset("+28800"), Some(28800));
        assert_eq!(time_offset("-18000"), Some(-18000));
        assert_eq!(time_offset("+19800"), Some(19800)); // India, +05:30
        assert_eq!(time_offset("+20700"), Some(20700)); // Nepal, +05:45
        assert_eq!(time_offset("+0"), Some(0));
        assert_eq!(time_offset("+50400"), Some(50400));
        assert_eq!(time_offset("10881"), None); // unsigned: a counter
        assert_eq!(time_offset("28800"), None);
        assert_eq!(time_offset("+10881"), None); // not quarter hours
        assert_eq!(time_offset("+51300"), None); // beyond 14 h
        assert_eq!(time_offset("+"), None);
        assert_eq!(time_offset("--900"), None);
        assert_eq!(time_offset(""), None);
    }

    /// Issue 11 (1), on the MB10-VL capture (`tests/fixtures/captures/
    /// README.md`): field 11 is a running record counter, not a time
    /// offset; every punch is the device's wall time in its zone.
    #[test]
    fn mb10_vl_record_counter_is_not_a_time_offset() {
        let body = include_bytes!("../../../tests/fixtures/captures/zk_mb10vl_attlog.txt");
        let bogota = chrono_tz::America::Bogota;
        let c = cx(bogota).with_device("CNYG213260182");
        let d = dec(body, &c).unwrap();
        assert_eq!(d.punches.len(), 3);
        assert!(d.line_errors.is_empty());
        let at: Vec<String> = d.punches.iter().map(|p| p.at.to_rfc3339()).collect();
        assert_eq!(
            at,
            [
                "2025-01-29T11:58:48+00:00",
                "2025-01-29T11:59:10+00:00",
                "2025-01-29T11:59:32+00:00"
            ]
        );
        assert_eq!(d.punches[0].identity, Identity::Employee("46".into()));
        assert_eq!(d.punches[0].verify, Verify::Face);
        assert_eq!(d.punches[1].verify, Verify::Fingerprint);
        assert_eq!(d.punches[2].kind, PunchKind::CheckIn);
        // One warning per body, not one per line.
        assert_eq!(d.warnings.len(), 1);
        assert!(d.warnings[0].contains("\"10881\""), "{:?}", d.warnings);
    }

    /// Face terminals behind `iClock Proxy/1.09` (`tests/fixtures/
    /// captures/README.md`): ten or eleven fields, `Status` 255 (no punch
    /// state), an empty 11th field: the device zone, no warning.
    #[test]
    fn status_255_face_terminals() {
        let body = include_bytes!("../../../tests/fixtures/captures/zk_face_status255_attlog.txt");
        let c = cx(chrono_tz::America::Argentina::Buenos_Aires).with_device("0782232260009");
        let d = dec(body, &c).unwrap();
        assert_eq!(d.punches.len(), 3);
        assert!(d.warnings.is_empty() && d.line_errors.is_empty(), "{d:?}");
        assert!(
            d.punches
                .iter()
                .all(|p| p.kind == PunchKind::Unspecified && p.verify == Verify::Face)
        );
        assert_eq!(d.punches[0].at, utc("2023-10-16T11:38:16Z"));
        assert_eq!(d.punches[0].identity, Identity::Employee("3".into()));
    }

    #[test]
    fn a_clock_that_was_never_set_is_quarantined_per_line() {
        // Issue 11 (4).
        let body = b"1043\t1970-01-01 00:01:12\t0\t15\t0\t0\t0\n0217\t2025-03-04 09:04:40\t0\t1\t0\t0\t0\n";
        let d = dec(body, &cx(IST)).unwrap();
        assert_eq!(one(&d).identity, Identity::Employee("0217".into()));
        assert_eq!(d.line_errors.len(), 1);
        assert!(
            d.line_errors[0]
                .error
                .to_string()
                .contains("terminal clock not set"),
            "{}",
            d.line_errors[0].error
        );
        let e = dec(b"1043\t1970-01-01 00:01:12\t0\t15\t0\t0\t0\n", &cx(IST)).unwrap_err();
        assert!(e.to_string().contains("terminal clock not set"), "{e}");
    }

    #[test]
    fn attlog_dat_padded_pins_crlf_and_device_column() {
        let d = dec(SAMPLES[1], &cx(IST)).unwrap();
        assert_eq!(d.punches.len(), 2);
        let p = &d.punches[1];
        assert_eq!(p.identity, Identity::Employee("217".into()));
        assert_eq!(p.device_id.as_deref(), Some("1"));
        assert_eq!(p.kind, PunchKind::CheckIn);
        assert_eq!(p.verify, Verify::Fingerprint);
        assert!(p.replay);
        // Leading zeros inside the padding are kept.
        let d = dec(b"    00217\t2025-03-04 09:04:40\t1\t0\t1\t0", &cx(IST)).unwrap();
        assert_eq!(one(&d).identity, Identity::Employee("00217".into()));
    }

    #[test]
    fn extended_export_header_and_checksum_are_skipped() {
        let body = b"CQZ7231460021\r\n     1043\t2025-03-04 08:57:12\t1\t0\t15\t0\r\n      217\t2025-03-04 09:04:40\t1\t0\t1\t0\r\n9F3A2C\r\n";
        let d = dec(body, &cx(IST)).unwrap();
        assert_eq!(d.punches.len(), 2);
        assert_eq!(
            d.ignored.iter().map(|i| i.line).collect::<Vec<_>>(),
            [Some(1), Some(4)]
        );
        assert!(d.line_errors.is_empty());
    }

    #[test]
    fn a_bad_line_keeps_the_good_ones() {
        let body = b"1043\t2025-03-04 08:57:12\t0\t15\t0\t0\t0\n0217\t2025-13-01\t0\t1\t0\t0\t0\n\t2025-03-04 09:00:00\t0\n1043\t2025-03-04 18:02:05\t1\t15\t0\t0\t0";
        let d = dec(body, &cx(IST)).unwrap();
        assert_eq!(d.punches.len(), 2);
        assert_eq!(d.line_errors.len(), 2);
        assert_eq!(d.line_errors[0].line, 2);
        assert_eq!(
            d.line_errors[0].error.to_string(),
            "field \"Time\": \"2025-13-01\" is not YYYY-MM-DD HH:MM:SS"
        );
        assert_eq!(d.line_errors[0].text, "0217\t2025-13-01\t0\t1\t0\t0\t0");
        assert_eq!(d.line_errors[1].error.to_string(), "field \"PIN\": missing");
    }

    #[test]
    fn all_bad_is_an_error_and_garbage_in_the_middle_is_a_line_error() {
        let e = dec(b"0217\t2025-13-01\t0\t1", &cx(IST)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: field \"Time\": \"2025-13-01\" is not YYYY-MM-DD HH:MM:SS"
        );
        let d = dec(
            b"1043\t2025-03-04 08:57:12\t0\t15\nhello world\n1043\t2025-03-04 18:02:05\t1\t15",
            &cx(IST),
        )
        .unwrap();
        assert_eq!(d.punches.len(), 2);
        assert_eq!(
            d.line_errors[0].error.to_string(),
            "no TAB-separated fields"
        );
        assert!(dec(b"", &cx(IST)).unwrap().punches.is_empty());
    }

    #[test]
    fn gbk_user_lines_and_odd_codes_never_fail() {
        let mut body = b"USER PIN=1043\tName=".to_vec();
        body.extend_from_slice(&[0xC1, 0xF5, 0xD1, 0xF3]);
        body.extend_from_slice(b"\tPri=0\n1043\t2025-03-04 08:57:12\t9\t200\t0\t0\t0\n0217\t2025-03-04 09:04:40\t\txx\n");
        let d = dec(&body, &cx(IST)).unwrap();
        assert_eq!(d.punches.len(), 2);
        assert_eq!(d.ignored.len(), 1);
        assert_eq!(d.punches[0].kind, PunchKind::Unspecified);
        assert_eq!(d.punches[0].verify, Verify::Other(200));
        assert_eq!(d.punches[1].verify, Verify::Unknown);
    }

    #[test]
    fn form_encoded_body() {
        let body = b"1043%092025-03-04+08%3A57%3A12%090%0915%090%090%090%0A0217%092025-03-04+09%3A04%3A40%090%091";
        let d = dec(body, &cx(IST)).unwrap();
        assert_eq!(d.punches.len(), 2);
        assert_eq!(d.punches[1].at, utc("2025-03-04T06:04:40Z"));
        assert_eq!(form_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn berlin_dst_gap() {
        let d = dec(
            b"7\t2025-03-30 02:30:00\t0\t1",
            &cx(chrono_tz::Europe::Berlin),
        )
        .unwrap();
        assert_eq!(one(&d).at, utc("2025-03-30T01:30:00Z"));
        assert_eq!(
            one(&d).device_local.unwrap().to_string(),
            "2025-03-30 02:30:00"
        );
    }

    #[test]
    fn explicit_layout() {
        // Six columns read as PUSH when told so: column 2 is then Status.
        let o = ZkOptions {
            layout: ZkLayout::Push,
        };
        let d = decode(b"1043\t2025-03-04 08:57:12\t1\t15\t0\t0", &cx(IST), &o).unwrap();
        assert_eq!(one(&d).kind, PunchKind::CheckOut);
        assert_eq!(one(&d).verify, Verify::Face);
    }
}

#[cfg(test)]
mod import_line_tests {
    use super::*;

    #[test]
    fn reads_padded_pin_and_time() {
        let l = parse_line("   0217\t2026-11-02 08:29:13\t1\t0\t1\t0\r\n").unwrap();
        assert_eq!(l.pin, "0217");
        assert_eq!(l.local.to_string(), "2026-11-02 08:29:13");
        assert_eq!(l.at, None);
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse_line("0217 2026-11-02 08:29:13").is_err());
        assert!(parse_line("0217\t2026-13-02 08:29:13").is_err());
        assert!(parse_line("\t2026-11-02 08:29:13").is_err());
    }

    /// Issue 11 (1): the import reads the 11th column as the decoder does.
    #[test]
    fn agrees_with_the_decoder_on_time_offset() {
        let counter = "46\t2025-01-29 06:58:48\t0\t15\t0\t0\t0\t0\t0\t0\t10881";
        assert_eq!(parse_line(counter).unwrap().at, None);
        let offset = "1043\t2025-03-04 18:02:05\t1\t15\t0\t0\t0\t0\t36.4\t36.4\t+10800\t";
        assert_eq!(
            parse_line(offset).unwrap().at.map(|t| t.to_rfc3339()),
            Some("2025-03-04T15:02:05+00:00".to_string())
        );
    }

    /// Issue 11 (4): a clock that was never set is refused with that reason.
    #[test]
    fn refuses_a_clock_that_was_never_set() {
        let e = parse_line("0217\t1970-01-01 00:00:07\t1\t0\t1\t0").unwrap_err();
        assert!(e.contains("terminal clock not set"), "{e}");
    }

    /// Issue 13: a year such as -262143 reached date arithmetic that
    /// overflows; such lines are refused (reported, not imported).
    #[test]
    fn refuses_times_outside_2000_to_2100() {
        for t in [
            "-262143-01-02 12:00:00",
            "1999-12-31 23:59:59",
            "2101-01-01 00:00:00",
        ] {
            let e = parse_line(&format!("0217\t{t}\t1")).unwrap_err();
            assert!(
                e.contains("outside") || e.contains("clock not set"),
                "{t}: {e}"
            );
        }
        assert!(parse_line("0217\t2000-01-01 00:00:00\t1").is_ok());
    }
}
