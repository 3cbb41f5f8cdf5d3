//! Absence alerts and day close as pure decisions on a clock passed in.

use attendd::domain::alerting::{AlertDecision, AlertState, absence_decision, close_time};
use attendd::domain::calendar::ShiftClock;
use attendd::domain::classify::EmployeeDays;
use attendd::domain::types::{EmployeeId, Leave, LeaveStatus, Punch, Roster};
use chrono::Duration;

use crate::common::{at, date, shipped};

fn decide(
    policy: &attendd::domain::policy::Policy,
    roster: &Roster,
    punches: &[&str],
    leaves: &[Leave],
    d: &str,
    now: &str,
    state: AlertState,
) -> AlertDecision {
    let clock = ShiftClock::new(policy, date("2026-10-25"), date("2026-11-30"));
    let id = EmployeeId::from("E001");
    let punches: Vec<Punch> = punches
        .iter()
        .map(|t| Punch {
            at: at(policy, t),
            device: None,
            direction: None,
        })
        .collect();
    let emp = EmployeeDays {
        employee: &id,
        default_shift: None,
        punches: &punches,
        roster: Some(roster),
        leaves,
        start_date: None,
        end_date: None,
    };
    absence_decision(
        &clock,
        &policy.holidays,
        &emp,
        date(d),
        Duration::minutes(30),
        at(policy, now),
        state,
    )
}

#[test]
fn on_time_arrival_never_alerts() {
    let p = shipped("seed-default");
    let r = Roster::new();
    let d = decide(
        &p,
        &r,
        &["2026-11-02 08:25"],
        &[],
        "2026-11-02",
        "2026-11-02 09:30",
        AlertState::default(),
    );
    assert_eq!(d, AlertDecision::Nothing);
}

#[test]
fn absence_alerts_once_after_the_delay_then_follows_up() {
    let p = shipped("seed-default");
    let r = Roster::new();
    let none = AlertState::default();
    assert_eq!(
        decide(&p, &r, &[], &[], "2026-11-02", "2026-11-02 08:59:59", none),
        AlertDecision::Nothing
    );
    let d = decide(&p, &r, &[], &[], "2026-11-02", "2026-11-02 09:00", none);
    assert!(
        matches!(
            d,
            AlertDecision::Absent {
                minutes_late: 30,
                ..
            }
        ),
        "{d:?}"
    );
    let sent = AlertState {
        absence_sent: true,
        arrival_sent: false,
    };
    assert_eq!(
        decide(&p, &r, &[], &[], "2026-11-02", "2026-11-02 09:10", sent),
        AlertDecision::Nothing
    );
    let d = decide(
        &p,
        &r,
        &["2026-11-02 09:41:30"],
        &[],
        "2026-11-02",
        "2026-11-02 09:42",
        sent,
    );
    assert!(
        matches!(
            d,
            AlertDecision::Arrived {
                minutes_late: 71,
                ..
            }
        ),
        "{d:?}"
    );
    let both = AlertState {
        absence_sent: true,
        arrival_sent: true,
    };
    assert_eq!(
        decide(
            &p,
            &r,
            &["2026-11-02 09:41:30"],
            &[],
            "2026-11-02",
            "2026-11-02 10:00",
            both
        ),
        AlertDecision::Nothing
    );
}

#[test]
fn approved_leave_holds_the_alert_back_pending_does_not() {
    let p = shipped("seed-default");
    let r = Roster::new();
    let leave = |status| Leave {
        start: at(&p, "2026-11-02 08:00"),
        end: at(&p, "2026-11-02 12:00"),
        kind: "sick".into(),
        status,
        requested_at: None,
        document: Default::default(),
    };
    let none = AlertState::default();
    let d = decide(
        &p,
        &r,
        &[],
        &[leave(LeaveStatus::Approved)],
        "2026-11-02",
        "2026-11-02 09:30",
        none,
    );
    assert_eq!(d, AlertDecision::Nothing);
    let d = decide(
        &p,
        &r,
        &[],
        &[leave(LeaveStatus::Pending)],
        "2026-11-02",
        "2026-11-02 09:30",
        none,
    );
    assert!(matches!(d, AlertDecision::Absent { .. }));
    // Rest days never alert.
    assert_eq!(
        decide(&p, &r, &[], &[], "2026-11-01", "2026-11-01 09:30", none),
        AlertDecision::Nothing
    );
}

#[test]
fn overnight_shift_alerts_in_the_evening_and_closes_next_morning() {
    let p = shipped("city-management-24h");
    let mut r = Roster::new();
    r.insert(
        date("2026-11-02"),
        attendd::domain::types::RosterEntry::Shift(p.shift_by_id("night").unwrap()),
    );
    let none = AlertState::default();
    let d = decide(&p, &r, &[], &[], "2026-11-02", "2026-11-02 18:30", none);
    assert!(matches!(d, AlertDecision::Absent { .. }), "{d:?}");
    // The night's punch from the previous evening window does not count for another date.
    let clock = ShiftClock::new(&p, date("2026-11-01"), date("2026-11-04"));
    let id = EmployeeId::from("E001");
    let emp = EmployeeDays {
        employee: &id,
        default_shift: None,
        punches: &[],
        roster: Some(&r),
        leaves: &[],
        start_date: None,
        end_date: None,
    };
    let close = close_time(
        &clock,
        &p.holidays,
        &[emp],
        date("2026-11-02"),
        Duration::minutes(30),
    );
    assert_eq!(close, at(&p, "2026-11-03 08:30"));
}

#[test]
fn day_close_uses_the_latest_shift_plus_grace_and_delay() {
    let p = shipped("seed-default");
    let clock = ShiftClock::new(&p, date("2026-11-01"), date("2026-11-04"));
    let id = EmployeeId::from("E001");
    let r = Roster::new();
    let emp = EmployeeDays {
        employee: &id,
        default_shift: None,
        punches: &[],
        roster: Some(&r),
        leaves: &[],
        start_date: None,
        end_date: None,
    };
    let close = close_time(
        &clock,
        &p.holidays,
        &[emp],
        date("2026-11-02"),
        Duration::minutes(60),
    );
    // 17:30 + 15 min grace + 60 min delay.
    assert_eq!(close, at(&p, "2026-11-02 18:45"));
    // A Sunday has no shift: end of the date plus the delay.
    let close = close_time(
        &clock,
        &p.holidays,
        &[emp],
        date("2026-11-01"),
        Duration::minutes(60),
    );
    assert_eq!(close, at(&p, "2026-11-02 01:00"));
}
