//! Which dates are workdays and when each shift instance starts and ends.
//!
//! A date's shift comes, in order of precedence, from the employee's roster
//! row (a shift id or `rest`), then the holiday calendar (a public holiday
//! is off, a make-up workday works), then the weekly workdays, unless the
//! policy says unrostered dates are rest (the 24-hour roster of
//! 数字化城管监督指挥中心 工作制度 1). An overnight shift (18:00–08:00)
//! belongs to the date it starts on.

use chrono::{DateTime, Datelike, NaiveDate, Utc};

use super::policy::{Policy, Unrostered};
use super::time::resolve_local;
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
        ShiftClock {
            policy,
            first,
            days,
            times,
        }
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
