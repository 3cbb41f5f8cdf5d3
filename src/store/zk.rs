//! A minimal reader for ZKTeco ATTLOG lines as a terminal's USB export
//! (`attlog.dat`) holds them: `PIN<TAB>YYYY-MM-DD HH:MM:SS<TAB>status…`.
//! Only what `attendd import punches --format zk-attlog` needs: the PIN
//! (leading zeros kept, padding spaces dropped) and the local time. The
//! daemon's decoders for live terminals live elsewhere.

use chrono::NaiveDateTime;

/// One decoded line: the PIN as written and the local wall-clock time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AttLine {
    /// The PIN, leading zeros kept.
    pub pin: String,
    /// Local time in the terminal's zone.
    pub local: NaiveDateTime,
}

/// Decodes one line; the error says why it is not an ATTLOG record.
pub(crate) fn parse_line(line: &str) -> Result<AttLine, String> {
    let mut fields = line.trim_end_matches(['\r', '\n']).split('\t');
    let pin = fields.next().unwrap_or("").trim();
    if pin.is_empty() {
        return Err("no PIN before the first tab".into());
    }
    if pin.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("PIN {pin:?} contains spaces or control characters"));
    }
    let time = fields
        .next()
        .ok_or_else(|| "no tab-separated time after the PIN".to_string())?
        .trim();
    let local = NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S")
        .map_err(|_| format!("time {time:?} is not YYYY-MM-DD HH:MM:SS"))?;
    let local = crate::dates::bounded_local(local).map_err(|e| format!("time {e}"))?;
    Ok(AttLine {
        pin: pin.to_string(),
        local,
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
    }

    #[test]
    fn refuses_garbage() {
        assert!(parse_line("0217 2026-11-02 08:29:13").is_err());
        assert!(parse_line("0217\t2026-13-02 08:29:13").is_err());
        assert!(parse_line("\t2026-11-02 08:29:13").is_err());
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
            assert!(e.contains("outside"), "{t}: {e}");
        }
        assert!(parse_line("0217\t2000-01-01 00:00:00\t1").is_ok());
    }
}
