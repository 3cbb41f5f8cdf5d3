//! ZKTeco ATTLOG lines for `attendd import punches --format zk-attlog`: a
//! terminal's USB export (`attlog.dat`) or a saved PUSH body. The line is
//! read by the live decoder's own parser
//! ([`crate::ingest::decode::zk_attlog::read_columns`]), so an import and a
//! terminal pushing the same line agree on the PIN, the time and whether
//! the 11th column is a `TimeOffset` (issue 11, defect 1).

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone, Utc};

use crate::ingest::decode::PunchKind;
use crate::ingest::decode::zk_attlog::{ZkLayout, read_columns};

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

#[cfg(test)]
mod tests {
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
