//! Peer projects' own test scenarios, replayed through attendd's engine.
//!
//! Each test names the peer's file and test. The peers' clocks, shifts and
//! margins are kept; where a peer's rule differs from policy.md the
//! comment says so and the assertion follows policy.md.
//!
//! The peers' shifts are written into a policy made for the test: Frappe
//! HRMS's test shift type is 08:00–12:00 with 60 minutes before and after
//! (`setup_shift_type` in hrms/hr/doctype/shift_type/test_shift_type.py);
//! Odoo's test calendar is 08:00–17:00.

use attendd::domain::policy::Policy;
use attendd::domain::types::{LeaveStatus, MissingSide, Status};

use crate::common::{Case, inline, pts};

const DAY: &str = "2026-11-02";

fn t(hm: &str) -> String {
    format!("{DAY} {hm}")
}

/// A policy with the peer's shifts and margins. Lateness and earliness
/// beyond grace are `minor` (the peers flag late entry and early exit and
/// do not convert them to absence); absence and missing punches as
/// seed-default.
fn peer_policy(shifts: &str, window: &str, grace: i64, extra: &str) -> Policy {
    inline(&format!(
        r#"
id = "peer"
version = "1"
timezone = "Asia/Shanghai"
default_shift = "s"
{extra}
[window]
{window}

{shifts}

[lateness]
grace_minutes = {grace}
steps = [{{ grade = "minor", rule = "late", points = 1 }}]

[earliness]
grace_minutes = {grace}
steps = [{{ grade = "minor", rule = "early", points = 1 }}]

[absence]
half_day_points = 5
full_day_points = 10
no_punch_rule = "absent"
missing_punch = "absent-half"
missing_punch_rule = "missing"

[[category]]
id = "discipline"
zh = "作风纪律"
en = "Discipline"

[rule.late]
category = "discipline"
zh = "迟到"
en = "Late"
[rule.early]
category = "discipline"
zh = "早退"
en = "Early"
[rule.absent]
category = "discipline"
zh = "旷工"
en = "Absent"
[rule.missing]
category = "discipline"
zh = "缺卡"
en = "Missing punch"
[rule.short_hours]
category = "discipline"
zh = "工时不足"
en = "Too few hours"
"#
    ))
}

/// Frappe's test shift type: 08:00–12:00, 60 minutes either side.
fn frappe(extra: &str) -> Policy {
    peer_policy(
        "[[shift]]\nid = \"s\"\nstart = \"08:00\"\nend = \"12:00\"",
        "before_minutes = 60\nafter_minutes = 60",
        0,
        extra,
    )
}

/// frappe/hrms hrms/hr/doctype/employee_checkin/test_employee_checkin.py,
/// `test_fetch_shift`: with 60 minutes before and after an 08:00–12:00
/// shift, a log at 07:00 and one at 13:00 belong to the shift, 13:01 does
/// not. attendd: the window includes both ends (issue 12, defect 9).
#[test]
fn frappe_fetch_shift_window_ends_are_inclusive() {
    let p = frappe("");
    let v = Case::new(&p).punches(&[&t("07:00"), &t("13:00")]).day(DAY);
    assert_eq!(v.status, Status::Present);
    assert_eq!(v.explanation.punches.len(), 2);
    let v = Case::new(&p)
        .punches(&[&t("06:59:59"), &t("08:45"), &t("13:01")])
        .day(DAY);
    assert_eq!(v.explanation.punches.len(), 1);
    assert_eq!(v.explanation.missing, Some(MissingSide::CheckOut));
}

/// frappe/hrms test_employee_checkin.py,
/// `test_fetch_night_shift_in_margin_period_after_shift`: shift 15:00–23:00
/// with `allow_check_out_after_shift_end_time = 120`; in at 14:00, out at
/// 01:00 the next day, exactly the margin's end: both are the shift's.
#[test]
fn frappe_night_margin_check_out_at_the_window_end() {
    let p = peer_policy(
        "[[shift]]\nid = \"s\"\nstart = \"15:00\"\nend = \"23:00\"\nafter_minutes = 120",
        "before_minutes = 60\nafter_minutes = 60",
        0,
        "",
    );
    let v = Case::new(&p)
        .punches(&[&t("14:00"), "2026-11-03 01:00:00"])
        .day(DAY);
    assert_eq!(v.status, Status::Present);
    assert_eq!(
        v.check_out.unwrap().to_rfc3339(),
        "2026-11-03T01:00:00+08:00"
    );
    assert_eq!(v.worked_minutes, Some(660));
}

/// frappe/hrms hrms/hr/doctype/shift_type/test_shift_type.py,
/// `test_do_not_mark_absent_before_shift_actual_end_time`: shift
/// 15:00–23:30 whose check-out margin (60) runs to 00:30 the next day: at
/// 00:30 nothing is final yet; at 01:00 the logs 15:00 and 23:30 (exactly
/// the shift end) make the day Present. attendd: provisional until the
/// window has closed (issue 12, defect 3).
#[test]
fn frappe_not_final_before_the_shift_actual_end() {
    let p = peer_policy(
        "[[shift]]\nid = \"s\"\nstart = \"15:00\"\nend = \"23:30\"",
        "before_minutes = 60\nafter_minutes = 60",
        0,
        "",
    );
    let v = Case::new(&p)
        .punches(&[&t("15:00"), &t("23:30")])
        .at_time("2026-11-03 00:30")
        .day(DAY);
    assert!(v.provisional);
    assert_eq!(v.points, pts("0"));
    let v = Case::new(&p)
        .punches(&[&t("15:00"), &t("23:30")])
        .at_time("2026-11-03 01:00")
        .day(DAY);
    assert!(!v.provisional);
    assert_eq!(v.status, Status::Present);
    // With no logs at all the day is not absent before the window closes.
    let v = Case::new(&p).at_time("2026-11-03 00:30").day(DAY);
    assert_eq!(v.status, Status::NotArrived);
    let v = Case::new(&p).at_time("2026-11-03 00:31").day(DAY);
    assert_eq!(v.status, Status::AbsentFull);
}

/// frappe/hrms test_shift_type.py, `test_entry_and_exit_grace`: grace 60
/// on both sides of 08:00–12:00; in at 09:30 and out at 10:30 are a late
/// entry and an early exit. attendd: `[[shift]] grace_minutes = 60`.
#[test]
fn frappe_entry_and_exit_grace_per_shift() {
    let p = peer_policy(
        "[[shift]]\nid = \"s\"\nstart = \"08:00\"\nend = \"12:00\"\ngrace_minutes = 60",
        "before_minutes = 60\nafter_minutes = 60",
        0,
        "",
    );
    let v = Case::new(&p).punches(&[&t("09:30"), &t("10:30")]).day(DAY);
    assert_eq!(v.status, Status::LateAndEarly);
    assert_eq!((v.late_minutes, v.early_minutes), (90, 90));
    // Within the 60 minutes: on time.
    let v = Case::new(&p).punches(&[&t("09:00"), &t("11:00")]).day(DAY);
    assert_eq!(v.status, Status::Present);
}

/// frappe/hrms test_shift_type.py, `test_working_hours_threshold_for_half_day`
/// (threshold 2 h; 08:00–09:30 → Half Day, 1.5 h),
/// `test_working_hours_threshold_for_absent` (threshold 2 h → Absent),
/// `test_working_hours_threshold_for_absent_and_half_day_1` (half day 2 h,
/// absent 1 h; 1.5 h → Half Day) and `…_2` (08:00–08:45 → Absent).
#[test]
fn frappe_working_hours_thresholds() {
    let half = frappe("[hours]\nhalf_day_below = 120\nrule = \"short_hours\"\n");
    let v = Case::new(&half)
        .punches(&[&t("08:00"), &t("09:30")])
        .day(DAY);
    assert_eq!(v.worked_minutes, Some(90));
    assert_eq!((v.status, v.absence_days), (Status::AbsentHalf, pts("0.5")));

    let absent = frappe("[hours]\nabsent_below = 120\nrule = \"short_hours\"\n");
    let v = Case::new(&absent)
        .punches(&[&t("08:00"), &t("09:30")])
        .day(DAY);
    assert_eq!((v.status, v.absence_days), (Status::AbsentFull, pts("1")));

    let both = frappe("[hours]\nhalf_day_below = 120\nabsent_below = 60\nrule = \"short_hours\"\n");
    let v = Case::new(&both)
        .punches(&[&t("08:00"), &t("09:30")])
        .day(DAY);
    assert_eq!(v.status, Status::AbsentHalf);
    let v = Case::new(&both)
        .punches(&[&t("08:00"), &t("08:45")])
        .day(DAY);
    assert_eq!(v.status, Status::AbsentFull);
    // Enough hours: Present (test_mark_attendance: 08:00 and 12:00).
    let v = Case::new(&both)
        .punches(&[&t("08:00"), &t("12:00")])
        .day(DAY);
    assert_eq!((v.status, v.worked_minutes), (Status::Present, Some(240)));
}

/// frappe/hrms test_employee_checkin.py,
/// `test_modifying_half_attendance_created_from_leave`: a half-day leave,
/// logs 08:00 and 10:00 on 08:00–12:00 with a 3-hour half-day threshold:
/// Half Day, present for the half worked, 2 working hours. attendd: the
/// afternoon half (10:00–12:00) on leave is 0.5 leave days, the leave
/// minutes count as worked (2 h + 2 h ≥ 3 h), no absence.
#[test]
fn frappe_half_day_leave_with_logs() {
    let p = frappe("[hours]\nhalf_day_below = 180\nrule = \"short_hours\"\n");
    let v = Case::new(&p)
        .leave(&t("10:00"), &t("12:00"), "annual", LeaveStatus::Approved)
        .punches(&[&t("08:00"), &t("10:00")])
        .day(DAY);
    assert_eq!(v.status, Status::Present);
    assert_eq!(v.leave_days, pts("0.5"));
    assert_eq!(v.absence_days, pts("0"));
    assert_eq!(v.worked_minutes, Some(120));
    // test_modifying_half_day_attendance_when_checkins_are_absent: the same
    // leave and no logs (Frappe: the other half absent). attendd grades the
    // 120 unexcused minutes on the lateness ladder, which in this policy
    // has no conversion to absence: late, 0.5 leave days.
    let v = Case::new(&p)
        .leave(&t("10:00"), &t("12:00"), "annual", LeaveStatus::Approved)
        .day(DAY);
    assert_eq!(v.leave_days, pts("0.5"));
    assert_eq!(v.late_minutes, 120);
    assert_eq!(v.status, Status::Late);
}

/// frappe/hrms test_shift_type.py, `test_get_start_and_end_dates`: an
/// employee joined 30 days ago and relieved 5 days ago is absent on the
/// relieving date and not marked after it, nor before joining.
#[test]
fn frappe_joining_and_relieving_dates() {
    let p = frappe("");
    let days = Case::new(&p)
        .employed("2026-11-03", "2026-11-05")
        .eval("2026-11-02", "2026-11-06");
    let s: Vec<Status> = days.iter().map(|d| d.status).collect();
    assert_eq!(
        s,
        [
            Status::NotEmployed,
            Status::AbsentFull,
            Status::AbsentFull,
            Status::AbsentFull,
            Status::NotEmployed
        ]
    );
}

/// Odoo's standard test calendar, 08:00–17:00, with attendd's default
/// 240-minute margins.
fn odoo() -> Policy {
    peer_policy(
        "[[shift]]\nid = \"s\"\nstart = \"08:00\"\nend = \"17:00\"",
        "before_minutes = 240\nafter_minutes = 240",
        15,
        "",
    )
}

/// odoo/odoo addons/hr_attendance/tests/test_hr_attendance_overtime.py,
/// `test_overtime_hours_inside_attendance`: a long day 08:00 → 21:00 on the
/// 08:00–17:00 calendar (4 hours of overtime). 21:00:00 is exactly the end
/// of attendd's 240-minute window: it counts (issue 12, defect 9).
#[test]
fn odoo_long_day_ending_at_the_window_end() {
    let p = odoo();
    let v = Case::new(&p)
        .punches(&[&t("08:00"), &t("21:00:00")])
        .day(DAY);
    assert_eq!(v.status, Status::Present);
    assert_eq!(v.worked_minutes, Some(13 * 60));
    assert_eq!(v.points, pts("0"));
}

/// odoo/odoo test_hr_attendance_overtime.py, `test_auto_check_out`, and
/// OCA/hr-attendance hr_attendance_autoclose/tests/test_hr_attendance_auto_close.py,
/// `test_employee_edit`: a check-in never closed by a check-out. Odoo and
/// OCA close it by a cron; attendd never invents a check-out: while the
/// window is open the day is in progress and costs nothing, after it the
/// check-out is missing (seed-default: −5), never a full day.
#[test]
fn odoo_open_attendance_is_in_progress_then_missing_check_out() {
    let p = odoo();
    let v = Case::new(&p)
        .punches(&[&t("08:00")])
        .at_time(&t("16:00"))
        .day(DAY);
    assert_eq!((v.status, v.points), (Status::InProgress, pts("0")));
    assert!(v.provisional);
    // After the shift's end, before the window closes: graded on the
    // check-in alone, still provisional, no missing check-out yet.
    let v = Case::new(&p)
        .punches(&[&t("08:00")])
        .at_time(&t("19:00"))
        .day(DAY);
    assert_eq!((v.status, v.points), (Status::Present, pts("0")));
    assert!(v.provisional);
    assert!(v.flags.is_empty());
    let v = Case::new(&p)
        .punches(&[&t("08:00")])
        .at_time(&t("23:00"))
        .day(DAY);
    assert_eq!(v.status, Status::AbsentHalf);
    assert_eq!(v.explanation.missing, Some(MissingSide::CheckOut));
    assert_eq!(v.points, pts("5"));
    assert_eq!(v.worked_minutes, None);
    // Odoo's same test closes back-to-back attendances 08:00–11:00 and
    // 11:00–13:00: the first in and the last out, 300 minutes worked.
    let v = Case::new(&p)
        .punches(&[&t("08:00"), &t("11:00"), &t("11:00"), &t("13:00")])
        .day(DAY);
    assert_eq!(v.worked_minutes, Some(300));
    assert_eq!(v.explanation.repeats_merged, 1);
}

/// TimeTrex unit_tests/testcases/other/ExceptionTest.php (community
/// edition), `testExceptionMissingNormalIn`, `testExceptionMissingNormalOut`
/// and `testExceptionMissingNormalOutPreMature`: yesterday only an out
/// punch at 5:00 PM is a missing in (M1, active); yesterday only an in
/// punch at 8:00 AM is a missing out (M2, active); today only an in punch at
/// 8:00 AM is a missing out that is still "pre-mature". attendd: the first
/// two are missing punches, the third is provisional `in_progress` with no
/// missing side yet.
#[test]
fn timetrex_missing_in_and_out_and_premature_out() {
    let p = odoo();
    let now = "2026-11-03 12:00";
    let v = Case::new(&p).punches(&[&t("17:00")]).at_time(now).day(DAY);
    assert!(!v.provisional);
    assert_eq!(v.explanation.missing, Some(MissingSide::CheckIn));
    let v = Case::new(&p).punches(&[&t("08:00")]).at_time(now).day(DAY);
    assert!(!v.provisional);
    assert_eq!(v.explanation.missing, Some(MissingSide::CheckOut));
    assert_eq!(v.status, Status::AbsentHalf);
    let v = Case::new(&p)
        .punches(&["2026-11-03 08:00"])
        .at_time(now)
        .day("2026-11-03");
    assert!(v.provisional);
    assert_eq!(v.status, Status::InProgress);
    assert_eq!(v.explanation.missing, None);
    assert!(v.flags.is_empty());
}
