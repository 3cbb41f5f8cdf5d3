//! Dates, months and times typed by people: on the command line, in HTTP
//! API requests and in the CSV inputs. Every one is parsed here and bounded
//! to [`FIRST`]..=[`LAST`] (policy.md, "Clock not set": a clock before 2000
//! is not set, and nothing is planned past 2100).
//!
//! The bound is what keeps a request such as `?date=-262143-01-01` from
//! reaching date arithmetic near chrono's limits, where it would overflow:
//! an out-of-range value is refused with a message naming the field, before
//! anything is read or written.

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};

/// The first date accepted from any input.
pub const FIRST: NaiveDate = match NaiveDate::from_ymd_opt(2000, 1, 1) {
    Some(d) => d,
    None => panic!("2000-01-01 is a date"),
};

/// The last date accepted from any input.
pub const LAST: NaiveDate = match NaiveDate::from_ymd_opt(2100, 12, 31) {
    Some(d) => d,
    None => panic!("2100-12-31 is a date"),
};

/// The date when it lies in [`FIRST`]..=[`LAST`].
pub fn bounded(d: NaiveDate) -> Result<NaiveDate, String> {
    if (FIRST..=LAST).contains(&d) {
        Ok(d)
    } else {
        Err(format!("{d} is outside {FIRST} … {LAST}"))
    }
}

/// A local wall time whose date lies in [`FIRST`]..=[`LAST`].
pub fn bounded_local(t: NaiveDateTime) -> Result<NaiveDateTime, String> {
    bounded(t.date()).map(|_| t)
}

/// An instant whose UTC date lies within a day of [`FIRST`]..=[`LAST`] (a
/// local date at the bound may be the day before or after in UTC).
pub fn bounded_instant(t: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let d = t.date_naive();
    let lo = FIRST.pred_opt().unwrap_or(FIRST);
    let hi = LAST.succ_opt().unwrap_or(LAST);
    if (lo..=hi).contains(&d) {
        Ok(t)
    } else {
        Err(format!("{} is outside {FIRST} … {LAST}", t.to_rfc3339()))
    }
}

/// `YYYY-MM-DD`, bounded.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let t = s.trim();
    let d = NaiveDate::parse_from_str(t, "%Y-%m-%d")
        .map_err(|_| format!("{t:?} is not a date YYYY-MM-DD"))?;
    bounded(d)
}

/// `YYYY-MM`, bounded, as the month's first day.
pub fn parse_month(s: &str) -> Result<NaiveDate, String> {
    let t = s.trim();
    let d = NaiveDate::parse_from_str(&format!("{t}-01"), "%Y-%m-%d")
        .map_err(|_| format!("{t:?} is not a month YYYY-MM"))?;
    bounded(d).map_err(|_| {
        format!(
            "{t} is outside {} … {}",
            FIRST.format("%Y-%m"),
            LAST.format("%Y-%m")
        )
    })
}

/// `YYYY`, bounded.
pub fn parse_year(s: &str) -> Result<i32, String> {
    let t = s.trim();
    match t.parse::<i32>() {
        Ok(y) if (FIRST.year()..=LAST.year()).contains(&y) && t.len() == 4 => Ok(y),
        Ok(_) => Err(format!("{t} is outside {} … {}", FIRST.year(), LAST.year())),
        Err(_) => Err(format!("{t:?} is not a year YYYY")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_months_and_years_are_bounded() {
        assert_eq!(
            parse_date("2026-11-02"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 2).unwrap())
        );
        assert_eq!(parse_date(" 2000-01-01 "), Ok(FIRST));
        assert_eq!(parse_date("2100-12-31"), Ok(LAST));
        for bad in ["-262143-01-01", "1999-12-31", "2101-01-01", "+262142-12-31"] {
            let e = parse_date(bad).unwrap_err();
            assert!(e.contains("outside"), "{bad}: {e}");
        }
        assert!(parse_date("2026-13-01").unwrap_err().contains("YYYY-MM-DD"));
        assert_eq!(
            parse_month("2026-11"),
            Ok(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap())
        );
        assert!(parse_month("-262143-01").unwrap_err().contains("outside"));
        assert!(parse_month("2026-11-02").is_err());
        assert_eq!(parse_year("2026"), Ok(2026));
        assert!(parse_year("-262143").is_err());
        assert!(parse_year("1999").is_err());
        assert!(parse_year("02026").is_err());
    }

    #[test]
    fn instants_allow_a_day_of_zone_offset_at_the_bounds() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert!(bounded_instant(t("1999-12-31T16:30:00Z")).is_ok());
        assert!(bounded_instant(t("2101-01-01T10:00:00Z")).is_ok());
        assert!(bounded_instant(t("1999-12-30T00:00:00Z")).is_err());
        assert!(bounded_instant(DateTime::<Utc>::MIN_UTC).is_err());
    }
}
