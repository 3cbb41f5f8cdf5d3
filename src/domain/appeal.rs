//! The appeal window of a published month (坐席员考核细则 一(七): "考核结果
//! 每月公布，被考核人对考核结果有异议的，可在公布2天内提出申述").
//!
//! "Within 2 days of publication" is read as: until the end of the 2nd
//! calendar day after the day of publication, in the policy's time zone.
//! A month published on 2026-12-01 at 10:00 (Asia/Shanghai) takes appeals
//! until 2026-12-03 23:59:59.999…; from 2026-12-04 00:00 local time they
//! are refused. The publication day itself never counts as one of the two
//! days, so publishing late in the evening costs nobody a day.

use chrono::{DateTime, Days, Utc};
use chrono_tz::Tz;

use super::time::{resolve_local, to_local};

/// The first instant at which appeals against a month published at
/// `published_at` are refused: local midnight that starts the
/// `(days + 1)`-th day after the publication day, in `tz`.
pub fn appeal_deadline(published_at: DateTime<Utc>, tz: Tz, days: u32) -> DateTime<Utc> {
    let day = to_local(tz, published_at).date_naive();
    let end = day + Days::new(u64::from(days) + 1);
    resolve_local(tz, end.and_hms_opt(0, 0, 0).unwrap_or_default())
}

/// True while an appeal filed at `now` is in time.
pub fn appeal_open(published_at: DateTime<Utc>, tz: Tz, days: u32, now: DateTime<Utc>) -> bool {
    now < appeal_deadline(published_at, tz, days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sh(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(y, m, d, h, mi, s)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn two_calendar_days_after_the_publication_day() {
        let tz = chrono_tz::Asia::Shanghai;
        let published = sh(2026, 12, 1, 10, 0, 0);
        assert_eq!(appeal_deadline(published, tz, 2), sh(2026, 12, 4, 0, 0, 0));
        assert!(appeal_open(published, tz, 2, sh(2026, 12, 3, 23, 59, 59)));
        assert!(!appeal_open(published, tz, 2, sh(2026, 12, 4, 0, 0, 0)));
    }

    #[test]
    fn publication_day_is_local_not_utc() {
        // 2026-12-01 01:00 in Shanghai is still 2026-11-30 in UTC.
        let tz = chrono_tz::Asia::Shanghai;
        let published = sh(2026, 12, 1, 1, 0, 0);
        assert_eq!(appeal_deadline(published, tz, 2), sh(2026, 12, 4, 0, 0, 0));
    }
}
