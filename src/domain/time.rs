//! Wall-clock time in a real time zone.
//!
//! Terminals and policies speak local wall-clock time; the engine measures
//! in instants. Around a daylight-saving change a wall-clock time can occur
//! twice (autumn) or not at all (spring), and both cases are resolved here,
//! once, the same way for shifts, punches and leave.

use chrono::{DateTime, FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The instant a wall-clock time names in `tz`.
///
/// - A time that occurs twice (the autumn fold) is its earlier occurrence.
/// - A time that does not occur (the spring gap) is read with the offset in
///   force just before the gap, i.e. moved forward by the gap's length:
///   02:30 on the night clocks jump from 02:00 to 03:00 is 03:30. This is
///   what a clock that was not adjusted would show.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // No gap in the tz database is longer than a day; the offset a
            // day earlier is the one in force before the gap.
            let before = local - chrono::Duration::hours(24);
            let off = match tz.from_local_datetime(&before) {
                LocalResult::Single(t) => t.offset().fix(),
                LocalResult::Ambiguous(a, _) => a.offset().fix(),
                LocalResult::None => tz.offset_from_utc_datetime(&before).fix(),
            };
            (local - chrono::Duration::seconds(off.local_minus_utc() as i64)).and_utc()
        }
    }
}

/// The instant shown with the offset in force in `tz` at that instant.
pub fn to_local(tz: Tz, at: DateTime<Utc>) -> DateTime<FixedOffset> {
    at.with_timezone(&tz.offset_from_utc_datetime(&at.naive_utc()).fix())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn ndt(y: i32, m: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, mi, 0)
            .unwrap()
    }

    #[test]
    fn shanghai_is_plus_eight() {
        let t = resolve_local(chrono_tz::Asia::Shanghai, ndt(2026, 11, 2, 8, 30));
        assert_eq!(t.to_rfc3339(), "2026-11-02T00:30:00+00:00");
    }

    #[test]
    fn berlin_gap_moves_forward() {
        // 2026-03-29 02:00 CET -> 03:00 CEST.
        let t = resolve_local(chrono_tz::Europe::Berlin, ndt(2026, 3, 29, 2, 30));
        assert_eq!(
            to_local(chrono_tz::Europe::Berlin, t).to_rfc3339(),
            "2026-03-29T03:30:00+02:00"
        );
    }

    #[test]
    fn berlin_fold_takes_earlier() {
        // 2026-10-25 03:00 CEST -> 02:00 CET; 02:30 happens twice.
        let t = resolve_local(chrono_tz::Europe::Berlin, ndt(2026, 10, 25, 2, 30));
        assert_eq!(t.to_rfc3339(), "2026-10-25T00:30:00+00:00");
    }
}
