//! When to alert and when a day closes (`interfaces.md`, "Outputs"), as pure
//! functions of the schedule, the punches seen so far and "now".
//!
//! - **Absence alert**: a scheduled employee with no punch in the shift's
//!   window and no approved leave covering the shift start, `alert_after`
//!   past the start, gets one alert to the supervisor; a punch after the
//!   alert turns into one follow-up ("arrived").
//! - **Day close**: a date closes at the latest end of its shift instances
//!   plus the earliness grace plus `close_delay`; a day without shifts
//!   closes at the end of the date plus `close_delay`.
//!
//! The daemon keeps which alerts were sent (in the store's outbox, so a
//! restart sends nothing twice) and asks [`absence_decision`] on each tick.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::calendar::{ShiftClock, shift_on};
use super::classify::EmployeeDays;
use super::types::{Holidays, LeaveStatus};

/// What has already been sent for one employee-date.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertState {
    /// The absence alert went out.
    pub absence_sent: bool,
    /// The follow-up went out.
    pub arrival_sent: bool,
}

/// What to send now, if anything.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertDecision {
    /// Nothing to send (yet).
    Nothing,
    /// The employee is missing: no punch and no leave `alert_after` past
    /// the shift start.
    Absent {
        /// Shift start.
        shift_start: DateTime<Utc>,
        /// Minutes since the start at `now`.
        minutes_late: i64,
    },
    /// The employee arrived after an absence alert.
    Arrived {
        /// The first punch in the window.
        at: DateTime<Utc>,
        /// Whole minutes after the shift start.
        minutes_late: i64,
    },
}

/// Decides what to send for `emp` on `date` at `now`.
///
/// 坐席考勤管理制度 三2: leave must be approved, so pending or rejected
/// leave does not hold back the alert.
pub fn absence_decision(
    clock: &ShiftClock<'_>,
    holidays: &Holidays,
    emp: &EmployeeDays<'_>,
    date: NaiveDate,
    alert_after: Duration,
    now: DateTime<Utc>,
    state: AlertState,
) -> AlertDecision {
    let policy = clock.policy();
    // policy.md, "Employment dates": no alert outside them.
    if !emp.employed_on(date) {
        return AlertDecision::Nothing;
    }
    let (Some(shift), _) = shift_on(policy, holidays, emp.roster, emp.default_shift, date) else {
        return AlertDecision::Nothing;
    };
    let t = clock.times(date, shift);
    let excused = emp
        .leaves
        .iter()
        .any(|l| l.status == LeaveStatus::Approved && l.start <= t.start && l.end > t.start);
    let win_start = t.start - Duration::seconds(policy.shift(shift).before_secs);
    let first = emp
        .punches
        .iter()
        .filter(|p| p.at >= win_start && p.at < t.end && p.at <= now)
        .map(|p| p.at)
        .min();
    match (first, state.absence_sent, state.arrival_sent) {
        (Some(at), true, false) => AlertDecision::Arrived {
            at,
            minutes_late: (at - t.start).num_seconds().div_euclid(60).max(0),
        },
        (None, false, _) if !excused && now >= t.start + alert_after && now < t.end => {
            AlertDecision::Absent {
                shift_start: t.start,
                minutes_late: (now - t.start).num_minutes(),
            }
        }
        _ => AlertDecision::Nothing,
    }
}

/// When `date` closes for a set of employees: the latest shift end plus the
/// earliness grace plus `close_delay`.
pub fn close_time(
    clock: &ShiftClock<'_>,
    holidays: &Holidays,
    employees: &[EmployeeDays<'_>],
    date: NaiveDate,
    close_delay: Duration,
) -> DateTime<Utc> {
    let policy = clock.policy();
    let end_of_date = super::time::resolve_local(
        policy.tz,
        date.succ_opt()
            .unwrap_or(date)
            .and_time(chrono::NaiveTime::MIN),
    );
    employees
        .iter()
        .filter(|e| e.employed_on(date))
        .filter_map(|e| {
            let (s, _) = shift_on(policy, holidays, e.roster, e.default_shift, date);
            s.map(|s| {
                let grace = policy
                    .shift(s)
                    .grace_minutes
                    .unwrap_or(policy.earliness.grace_minutes);
                clock.times(date, s).end + Duration::minutes(grace)
            })
        })
        .max()
        .unwrap_or(end_of_date)
        + close_delay
}
