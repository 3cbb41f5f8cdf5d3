//! Which dates are workdays and when each shift instance starts and ends.
//!
//! A date's shift comes, in order of precedence, from the employee's roster
//! row (a shift id or `rest`), then the holiday calendar (a public holiday
//! is off, a make-up workday works), then the weekly workdays, unless the
//! policy says unrostered dates are rest (the 24-hour roster of
//! 数字化城管监督指挥中心 工作制度 1). An overnight shift (18:00–08:00)
//! belongs to the date it starts on.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::policy::{Policy, Unrostered};
use super::time::{resolve_local, to_local};
use super::types::{HolidayKind, Holidays, Roster, RosterEntry, ShiftIdx};

/// Why a date has or lacks a shift, for the explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DayKind {
    /// A weekly workday.
    Weekday,
    /// Not a weekly workday.
    Weekend,
    /// A public holiday from the calendar.
    Holiday,
    /// A make-up workday (调休) from the calendar.
    MakeUpWorkday,
    /// A roster row gave the shift.
    Roster,
    /// A roster row said `rest`.
    RosterRest,
    /// The policy takes shifts from the roster only and there is no row.
    NotRostered,
    /// Outside the employee's employment dates.
    NotEmployed,
}

impl DayKind {
    /// The snake_case name used in explanations.
    pub fn as_str(self) -> &'static str {
        match self {
            DayKind::Weekday => "weekday",
            DayKind::Weekend => "weekend",
            DayKind::Holiday => "holiday",
            DayKind::MakeUpWorkday => "make_up_workday",
            DayKind::Roster => "roster",
            DayKind::RosterRest => "roster_rest",
            DayKind::NotRostered => "not_rostered",
            DayKind::NotEmployed => "not_employed",
        }
    }
}

/// A shift's start and end as instants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShiftTimes {
    /// Scheduled start.
    pub start: DateTime<Utc>,
    /// Scheduled end.
    pub end: DateTime<Utc>,
}

/// Instants of every shift on every date of a range, computed once and
/// shared by all employees: time-zone arithmetic is the costly part of
/// classifying a day, and every employee on the same shift shares it.
#[derive(Clone, Debug)]
pub struct ShiftClock<'p> {
    policy: &'p Policy,
    first: NaiveDate,
    days: usize,
    times: Vec<ShiftTimes>,
    offsets: Offsets,
}

impl<'p> ShiftClock<'p> {
    /// Precomputes shift instants for `[first, last]` (both inclusive).
    /// Dates outside the range are still answered, just not from the cache.
    pub fn new(policy: &'p Policy, first: NaiveDate, last: NaiveDate) -> Self {
        let days = (last - first).num_days().max(-1) as usize + 1;
        let n = policy.shifts.len();
        let mut times = Vec::with_capacity(days * n);
        for d in 0..days {
            let date = first + chrono::Days::new(d as u64);
            for s in 0..n {
                times.push(compute(policy, date, ShiftIdx(s as u16)));
            }
        }
        let offsets = Offsets::new(policy.tz, first, first + chrono::Days::new(days as u64));
        ShiftClock {
            policy,
            first,
            days,
            times,
            offsets,
        }
    }

    /// `at` shown in the policy's zone: the same as
    /// [`to_local`](super::time::to_local), looked up in the clock's table
    /// of offsets for instants near its range.
    pub fn to_local(&self, at: DateTime<Utc>) -> DateTime<FixedOffset> {
        match self.offsets.at(at.timestamp()) {
            Some(off) => at.with_timezone(&off),
            None => to_local(self.policy.tz, at),
        }
    }

    /// The instant a wall-clock time names in the policy's zone: the same
    /// as [`resolve_local`] (whose rules for folds and gaps apply), looked
    /// up in the clock's table of offsets for times well inside its range.
    pub fn resolve_local(&self, local: NaiveDateTime) -> DateTime<Utc> {
        self.offsets
            .resolve(local)
            .unwrap_or_else(|| resolve_local(self.policy.tz, local))
    }

    /// The policy the clock was built for.
    pub fn policy(&self) -> &'p Policy {
        self.policy
    }

    /// Start and end of `shift` on `date`.
    pub fn times(&self, date: NaiveDate, shift: ShiftIdx) -> ShiftTimes {
        let off = (date - self.first).num_days();
        if off >= 0 && (off as usize) < self.days {
            self.times[off as usize * self.policy.shifts.len() + shift.0 as usize]
        } else {
            compute(self.policy, date, shift)
        }
    }
}

/// The UTC offsets of a zone over a span of instants, as a short table.
///
/// Looking an offset up in `chrono-tz` searches the zone's whole history;
/// a day's classification shows a dozen instants in the zone, and all of
/// them fall within the few weeks a clock covers, where a zone has at most
/// a few offsets. The table is read from `chrono-tz` itself: sampled every
/// hour, each change located to the second. That finds every change because
/// no zone changes its offset twice within an hour (the closest changes in
/// the tz database are days apart).
#[derive(Clone, Debug)]
struct Offsets {
    /// First second covered (since the epoch, UTC).
    from: i64,
    /// First second no longer covered.
    to: i64,
    /// Each span's first second and its offset, in order; the first span
    /// starts at `from`.
    spans: Vec<(i64, FixedOffset)>,
}

impl Offsets {
    /// Sampling step: shorter than the gap between any two changes of a
    /// zone's offset.
    const STEP: i64 = 3600;
    /// Margin kept from the table's ends when resolving a wall-clock time:
    /// more than the largest difference between two UTC offsets (26 hours),
    /// so every instant a wall-clock time may name lies inside the table.
    const MARGIN: i64 = 2 * 86_400;

    /// The table for the UTC days from two days before `first` to three
    /// days after `end`.
    fn new(tz: Tz, first: NaiveDate, end: NaiveDate) -> Self {
        let day = |d: NaiveDate| d.and_time(chrono::NaiveTime::MIN).and_utc().timestamp();
        let from = day(first - chrono::Days::new(2));
        let to = day(end + chrono::Days::new(3)).max(from);
        let off = |t: i64| {
            DateTime::from_timestamp(t, 0)
                .map(|u| tz.offset_from_utc_datetime(&u.naive_utc()).fix())
        };
        let Some(mut cur) = off(from) else {
            return Offsets {
                from,
                to: from,
                spans: Vec::new(),
            };
        };
        let mut spans = vec![(from, cur)];
        let mut t = from;
        while t < to {
            let next = (t + Self::STEP).min(to);
            let Some(o) = off(next) else {
                return Offsets { from, to: t, spans };
            };
            if o != cur {
                // The change lies in (t, next]: find its first second.
                let (mut lo, mut hi) = (t, next);
                while hi - lo > 1 {
                    let mid = lo + (hi - lo) / 2;
                    if off(mid) == Some(cur) {
                        lo = mid;
                    } else {
                        hi = mid;
                    }
                }
                spans.push((hi, o));
                cur = o;
            }
            t = next;
        }
        Offsets { from, to, spans }
    }

    /// The offset in force at second `t`, when the table covers it.
    fn at(&self, t: i64) -> Option<FixedOffset> {
        if t < self.from || t >= self.to {
            return None;
        }
        self.spans
            .iter()
            .rev()
            .find(|(start, _)| *start <= t)
            .map(|(_, o)| *o)
    }

    /// [`resolve_local`] for a wall-clock time whose instants lie well
    /// inside the table; `None` otherwise, and for a time in a gap (left to
    /// [`resolve_local`]).
    fn resolve(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        let l = local.and_utc();
        let secs = l.timestamp();
        let mut best: Option<DateTime<Utc>> = None;
        for (i, &(_, o)) in self.spans.iter().enumerate() {
            if self.spans[..i].iter().any(|(_, p)| *p == o) {
                continue;
            }
            let shift = i64::from(o.local_minus_utc());
            let t = secs - shift;
            if t < self.from + Self::MARGIN || t >= self.to - Self::MARGIN {
                return None;
            }
            if self.at(t) == Some(o) {
                let at = l - chrono::Duration::seconds(shift);
                best = Some(best.map_or(at, |b| b.min(at)));
            }
        }
        best
    }
}

fn compute(policy: &Policy, date: NaiveDate, shift: ShiftIdx) -> ShiftTimes {
    let s = policy.shift(shift);
    let start = resolve_local(policy.tz, date.and_time(s.start));
    let end_date = if s.overnight {
        date.succ_opt().unwrap_or(date)
    } else {
        date
    };
    let end = resolve_local(policy.tz, end_date.and_time(s.end));
    ShiftTimes { start, end }
}

/// The shift an employee works on `date`, with the reason.
///
/// `holidays` is the policy's own calendar merged with any imported one;
/// `roster` holds the employee's rows; `default_shift` is the employee's
/// own default, falling back to the policy's.
pub fn shift_on(
    policy: &Policy,
    holidays: &Holidays,
    roster: Option<&Roster>,
    default_shift: Option<ShiftIdx>,
    date: NaiveDate,
) -> (Option<ShiftIdx>, DayKind) {
    if let Some(entry) = roster.and_then(|r| r.get(&date)) {
        return match entry {
            RosterEntry::Shift(s) => (Some(*s), DayKind::Roster),
            RosterEntry::Rest => match holidays.get(&date) {
                Some(HolidayKind::Holiday) => (None, DayKind::Holiday),
                _ => (None, DayKind::RosterRest),
            },
        };
    }
    let holiday = holidays.get(&date).copied();
    if policy.unrostered == Unrostered::Rest {
        return match holiday {
            Some(HolidayKind::Holiday) => (None, DayKind::Holiday),
            _ => (None, DayKind::NotRostered),
        };
    }
    let shift = default_shift.or(policy.default_shift);
    match holiday {
        Some(HolidayKind::Holiday) => (None, DayKind::Holiday),
        Some(HolidayKind::Workday) => (shift, DayKind::MakeUpWorkday),
        None if policy.is_weekly_workday(date.weekday()) => (shift, DayKind::Weekday),
        None => (None, DayKind::Weekend),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock's table answers exactly as `chrono-tz` does, across both
    /// of Berlin's changes in 2026 and at the table's ends.
    #[test]
    fn offsets_table_matches_the_zone() {
        for tz in [chrono_tz::Europe::Berlin, chrono_tz::Asia::Shanghai] {
            let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
            for (first, last) in [(d(3, 20), d(4, 5)), (d(10, 20), d(11, 3))] {
                let table = Offsets::new(tz, first, last);
                assert!(table.spans.len() <= 2);
                let start = first - chrono::Days::new(4);
                let mut at = start.and_time(chrono::NaiveTime::MIN).and_utc();
                let end = (last + chrono::Days::new(5))
                    .and_time(chrono::NaiveTime::MIN)
                    .and_utc();
                while at < end {
                    for t in [at, at + chrono::Duration::milliseconds(500)] {
                        let want = to_local(tz, t);
                        if let Some(o) = table.at(t.timestamp()) {
                            assert_eq!(t.with_timezone(&o), want, "{tz} {t}");
                        }
                        let local = t.naive_utc();
                        if let Some(r) = table.resolve(local) {
                            assert_eq!(r, resolve_local(tz, local), "{tz} {local}");
                        }
                    }
                    at += chrono::Duration::minutes(15);
                }
            }
        }
    }

    /// The wall-clock times of a fold and of a gap resolve as
    /// [`resolve_local`] says.
    #[test]
    fn clock_resolves_folds_and_gaps_like_resolve_local() {
        let mut policy = crate::policy_file::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/policies/seed-default.toml"
        )))
        .unwrap();
        policy.tz = chrono_tz::Europe::Berlin;
        let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        for (date, first, last) in [
            (d(3, 29), d(3, 1), d(3, 31)),
            (d(10, 25), d(10, 1), d(10, 31)),
        ] {
            let clock = ShiftClock::new(&policy, first, last);
            for minute in 0..24 * 60 {
                let local = date.and_hms_opt(minute / 60, minute % 60, 30).unwrap();
                assert_eq!(
                    clock.resolve_local(local),
                    resolve_local(policy.tz, local),
                    "{local}"
                );
                let at = clock.resolve_local(local);
                assert_eq!(clock.to_local(at), to_local(policy.tz, at));
            }
        }
    }
}
