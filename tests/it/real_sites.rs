//! Issue 12, "A real site's month, right": the engine's part. policy.md,
//! "Real sites: employment, partial leave, hours, windows". Every date is on
//! the Monday 2026-11-02 unless said otherwise.

use std::process::Command;

use attendd::domain::alerting::{AlertDecision, AlertState, absence_decision};
use attendd::domain::calendar::ShiftClock;
use attendd::domain::classify::EmployeeDays;
use attendd::domain::score::month_scores;
use attendd::domain::types::{EmployeeId, Flag, LeaveStatus, MissingSide, Status};
use chrono::Duration;

use crate::common::{Case, at, date, inline, pts, root, shipped};

const DAY: &str = "2026-11-02";

fn t(hm: &str) -> String {
    format!("{DAY} {hm}")
}

// ---- 3. Today: provisional verdicts ---------------------------------------

/// Issue 12 defect 3: at noon, a check-in at 08:20 is `in_progress`, not
/// `absent_half` −5 with `missing_check_out`.
#[test]
fn noon_with_a_check_in_is_in_progress_and_costs_nothing() {
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .punches(&[&t("08:20")])
        .at_time(&t("12:00"))
        .day(DAY);
    assert_eq!(v.status, Status::InProgress);
    assert!(v.provisional);
    assert_eq!(v.points, pts("0"));
    assert_eq!(v.absence_days, pts("0"));
    assert!(v.flags.is_empty(), "{:?}", v.flags);
    assert!(v.explanation.missing.is_none());
    assert_eq!(
        v.check_in.unwrap().to_rfc3339(),
        "2026-11-02T08:20:00+08:00"
    );
    assert!(v.check_out.is_none());
    assert_eq!(v.worked_minutes, None);

    // Once the window has closed (21:30 inclusive), the check-out is missing.
    let v = Case::new(&p)
        .punches(&[&t("08:20")])
        .at_time(&t("21:30:01"))
        .day(DAY);
    assert!(!v.provisional);
    assert_eq!(
        (v.status, v.points, v.flags.clone()),
        (Status::AbsentHalf, pts("5"), vec![Flag::MissingCheckOut])
    );
    // After 17:30 the shift is over, the window is not: graded on the
    // check-in alone, no missing check-out yet.
    let v = Case::new(&p)
        .punches(&[&t("08:20")])
        .at_time(&t("18:00"))
        .day(DAY);
    assert_eq!((v.status, v.points), (Status::Present, pts("0")));
    assert!(v.provisional && v.flags.is_empty());
    // At 21:30:00 a check-out can still arrive: still provisional.
    let v = Case::new(&p)
        .punches(&[&t("08:20")])
        .at_time(&t("21:30:00"))
        .day(DAY);
    assert!(v.provisional);
}

/// policy.md, "Today": a side that has happened is graded (a check-in at
/// 09:10 is already 40 minutes late, a half-day absence in seed-default).
#[test]
fn lateness_already_known_is_graded_while_in_progress() {
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .punches(&[&t("09:10")])
        .at_time(&t("11:00"))
        .day(DAY);
    assert_eq!(v.status, Status::InProgress);
    assert_eq!(v.late_minutes, 40);
    assert_eq!(v.points, pts("5"));
    let rules: Vec<&str> = v.deductions.iter().map(|d| &*d.rule).collect();
    assert_eq!(rules, ["late_half_day"]);
    // A punch at lunch is not a check-out while the shift runs.
    let v = Case::new(&p)
        .punches(&[&t("08:25"), &t("12:01")])
        .at_time(&t("12:30"))
        .day(DAY);
    assert_eq!((v.status, v.points), (Status::InProgress, pts("0")));
    assert_eq!(v.early_minutes, 0);
}

#[test]
fn not_arrived_before_the_first_punch() {
    let p = shipped("seed-default");
    for now in ["07:00", "09:00", "17:45"] {
        let v = Case::new(&p).at_time(&t(now)).day(DAY);
        assert_eq!(v.status, Status::NotArrived, "{now}");
        assert!(v.provisional);
        assert_eq!(v.points, pts("0"));
        assert!(v.deductions.is_empty());
        assert!(v.status.is_workday());
    }
    // After the window: absent.
    let v = Case::new(&p).at_time(&t("21:31")).day(DAY);
    assert_eq!((v.status, v.points), (Status::AbsentFull, pts("10")));
}

#[test]
fn after_the_shift_both_sides_are_graded_provisionally() {
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .punches(&[&t("08:29"), &t("17:31")])
        .at_time(&t("18:00"))
        .day(DAY);
    assert_eq!(v.status, Status::Present);
    assert!(v.provisional);
    assert_eq!(v.worked_minutes, Some(542));
    // Only a punch nearer the end, after the end: the check-in cannot come
    // any more, so it is missing even before the window closes.
    let v = Case::new(&p)
        .punches(&[&t("17:31")])
        .at_time(&t("18:00"))
        .day(DAY);
    assert_eq!(v.explanation.missing, Some(MissingSide::CheckIn));
    assert_eq!(v.status, Status::AbsentHalf);
    assert!(v.provisional);
}

#[test]
fn past_dates_are_final_and_today_is_provisional() {
    let p = shipped("seed-default");
    let days = Case::new(&p)
        .punches(&["2026-11-02 08:29", "2026-11-03 08:31"])
        .at_time("2026-11-03 10:00")
        .eval("2026-11-02", "2026-11-04");
    assert_eq!(days[0].status, Status::AbsentHalf);
    assert!(!days[0].provisional);
    assert_eq!(days[1].status, Status::InProgress);
    assert!(days[1].provisional);
    assert_eq!(days[2].status, Status::NotArrived);
    assert!(days[2].provisional);
}

#[test]
fn json_carries_provisional_and_worked_minutes() {
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .punches(&[&t("08:20")])
        .at_time(&t("12:00"))
        .day(DAY);
    let mut buf = Vec::new();
    attendd::render::json_line(&v, "default", &mut buf);
    let j: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(j["status"], "in_progress");
    assert_eq!(j["provisional"], true);
    assert!(j["worked_minutes"].is_null());
    let v = Case::new(&p).punches(&[&t("08:29"), &t("17:31")]).day(DAY);
    let mut buf = Vec::new();
    attendd::render::json_line(&v, "default", &mut buf);
    let j: serde_json::Value = serde_json::from_slice(&buf).unwrap();
    assert_eq!(j["provisional"], false);
    assert_eq!(j["worked_minutes"], 542);
    // A verdict stored before these fields existed still reads.
    let mut old = j.clone();
    old.as_object_mut().unwrap().remove("provisional");
    old.as_object_mut().unwrap().remove("worked_minutes");
    let back: attendd::domain::DayVerdict = serde_json::from_value(old).unwrap();
    assert!(!back.provisional);
    assert_eq!(back.worked_minutes, None);
}

// ---- 4. Employment dates ----------------------------------------------------

/// Issue 12 defect 4: a new hire is not absent before the first day, a
/// leaver not after the last; both dates inclusive.
#[test]
fn dates_outside_employment_are_not_employed() {
    let p = shipped("seed-default");
    let days = Case::new(&p)
        .employed("2026-11-03", "2026-11-05")
        .eval("2026-11-02", "2026-11-08");
    let s: Vec<Status> = days.iter().map(|d| d.status).collect();
    assert_eq!(
        s,
        [
            Status::NotEmployed,
            Status::AbsentFull,
            Status::AbsentFull,
            Status::AbsentFull,
            Status::NotEmployed,
            Status::NotEmployed,
            Status::NotEmployed,
        ]
    );
    for d in [&days[0], &days[4], &days[5]] {
        assert_eq!(d.points, pts("0"));
        assert!(d.deductions.is_empty());
        assert!(!d.status.is_workday());
        assert_eq!(d.explanation.day_kind, "not_employed");
    }
    let id = EmployeeId::from("E001");
    let scores = month_scores(&p, &id, &days, &[]);
    assert_eq!(scores[0].workdays, 3);

    // Punches outside employment are not classified either.
    let v = Case::new(&p)
        .employed("2026-11-03", "")
        .punches(&[&t("08:29"), &t("17:31")])
        .day(DAY);
    assert_eq!(v.status, Status::NotEmployed);
    // Only an end date.
    let days = Case::new(&p)
        .employed("", "2026-11-02")
        .eval("2026-11-02", "2026-11-03");
    assert_eq!(days[0].status, Status::AbsentFull);
    assert_eq!(days[1].status, Status::NotEmployed);
}

#[test]
fn no_absence_alert_outside_employment() {
    let p = shipped("seed-default");
    let clock = ShiftClock::new(&p, date("2026-11-01"), date("2026-11-04"));
    let id = EmployeeId::from("E001");
    let roster: attendd::domain::types::Roster = Default::default();
    let emp = |start: Option<&str>| EmployeeDays {
        employee: &id,
        default_shift: None,
        punches: &[],
        roster: Some(&roster),
        leaves: &[],
        start_date: start.map(date),
        end_date: None,
    };
    let decide = |e: &EmployeeDays<'_>| {
        absence_decision(
            &clock,
            &p.holidays,
            e,
            date(DAY),
            Duration::minutes(30),
            at(&p, &t("10:00")),
            AlertState::default(),
        )
    };
    assert!(matches!(decide(&emp(None)), AlertDecision::Absent { .. }));
    assert_eq!(decide(&emp(Some("2026-11-03"))), AlertDecision::Nothing);
}

// ---- 5. Partial leave -------------------------------------------------------

/// Issue 12 defect 5: leave 09:00–13:00 and arrival 13:05 is 35 unexcused
/// minutes (30 before the leave, 5 after), a half day, not 275 minutes.
#[test]
fn leave_in_the_middle_excuses_its_minutes_only() {
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .leave(&t("09:00"), &t("13:00"), "personal", LeaveStatus::Approved)
        .punches(&[&t("13:05"), &t("17:30")])
        .day(DAY);
    assert_eq!(v.late_minutes, 35);
    assert_eq!(v.status, Status::AbsentHalf);
    assert_eq!(v.points, pts("5"));
    assert_eq!(v.absence_days, pts("0.5"));
    assert_eq!(v.leave_days, pts("0.5"));
    assert_eq!(v.flags, vec![Flag::PartialLeave]);
    assert_eq!(v.explanation.excused_minutes, 240);
    // Arriving at 09:00 and leaving for the leave is on time both ways.
    let v = Case::new(&p)
        .leave(&t("12:00"), &t("14:00"), "personal", LeaveStatus::Approved)
        .punches(&[&t("08:30"), &t("17:30")])
        .day(DAY);
    assert_eq!((v.status, v.points), (Status::Present, pts("0")));
}

/// Issue 12 defect 5: leave until 15:30 and nobody came: the 2 unexcused
/// hours are graded on the lateness ladder, a half day; 0.5 + 0.5.
#[test]
fn no_punch_with_partial_leave_grades_the_unexcused_minutes() {
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .leave(&t("08:30"), &t("15:30"), "annual", LeaveStatus::Approved)
        .day(DAY);
    assert_eq!(v.status, Status::AbsentHalf);
    assert_eq!(v.late_minutes, 120);
    assert_eq!(v.points, pts("5"));
    assert_eq!(v.absence_days, pts("0.5"));
    assert_eq!(v.leave_days, pts("0.5"));
    // Leave to 17:20: ten unexcused minutes are within grace.
    let v = Case::new(&p)
        .leave(&t("08:30"), &t("17:20"), "annual", LeaveStatus::Approved)
        .day(DAY);
    assert_eq!((v.status, v.points), (Status::OnLeave, pts("0")));
    assert_eq!(v.leave_days, pts("1"));
    // Pending leave excuses nothing.
    let v = Case::new(&p)
        .leave(&t("08:30"), &t("15:30"), "annual", LeaveStatus::Pending)
        .day(DAY);
    assert_eq!((v.status, v.points), (Status::AbsentFull, pts("10")));
}

/// Issue 12 defect 5: a morning's leave is half a leave day; shares of
/// exactly a quarter and three quarters round up.
#[test]
fn leave_days_round_to_half_days() {
    let p = shipped("seed-default");
    // The shift is 540 minutes: a quarter is 135, three quarters 405.
    let share = |from: &str, to: &str, arrive: &str| {
        Case::new(&p)
            .leave(&t(from), &t(to), "annual", LeaveStatus::Approved)
            .punches(&[&t(arrive), &t("17:30")])
            .day(DAY)
    };
    let v = share("08:30", "12:00", "12:00");
    assert_eq!((v.status, v.leave_days), (Status::Present, pts("0.5")));
    assert_eq!(share("08:30", "10:44", "10:44").leave_days, pts("0"));
    assert_eq!(share("08:30", "10:45", "10:45").leave_days, pts("0.5"));
    assert_eq!(share("08:30", "15:14", "15:14").leave_days, pts("0.5"));
    assert_eq!(share("08:30", "15:15", "15:15").leave_days, pts("1"));
    // Two overlapping records count their minutes once: 08:30–12:00.
    let v = Case::new(&p)
        .leave(&t("08:30"), &t("11:00"), "annual", LeaveStatus::Approved)
        .leave(&t("10:00"), &t("12:00"), "sick", LeaveStatus::Approved)
        .punches(&[&t("12:00"), &t("17:30")])
        .day(DAY);
    assert_eq!(v.explanation.excused_minutes, 210);
    assert_eq!(v.leave_days, pts("0.5"));
    // Field work excuses minutes but is not leave.
    let v = Case::new(&p)
        .leave(&t("08:30"), &t("15:30"), "field", LeaveStatus::Approved)
        .punches(&[&t("15:30"), &t("17:30")])
        .day(DAY);
    assert_eq!((v.status, v.leave_days), (Status::Present, pts("0")));
}

#[test]
fn leave_days_give_way_to_absence() {
    let p = shipped("seed-default");
    // Three quarters on leave and the rest missed: 0.5 + 0.5, never 1 + 0.5.
    let v = Case::new(&p)
        .leave(&t("08:30"), &t("15:15"), "annual", LeaveStatus::Approved)
        .punches(&[&t("15:15")])
        .day(DAY);
    assert_eq!(v.absence_days, pts("0.5"));
    assert_eq!(v.leave_days, pts("0.5"));
}

// ---- 6, 9. Windows ------------------------------------------------------------

fn two_shift_policy(window: &str, day_extra: &str) -> attendd::domain::policy::Policy {
    let text = std::fs::read_to_string(root().join("config/policies/seed-default.toml"))
        .unwrap()
        .replace(
            "[window]\nbefore_minutes = 240\nafter_minutes = 240\n",
            &format!("[window]\n{window}\n"),
        )
        .replace(
            "[[shift]]\nid = \"day\"\nstart = \"08:30\"\nend = \"17:30\"\n",
            &format!(
                "[[shift]]\nid = \"day\"\nstart = \"08:30\"\nend = \"17:30\"\n{day_extra}\n\
                 [[shift]]\nid = \"nine\"\nstart = \"09:00\"\nend = \"17:00\"\n\n\
                 [[shift]]\nid = \"night\"\nstart = \"20:00\"\nend = \"08:00\"\novernight = true\n"
            ),
        );
    inline(&text)
}

/// Issue 12 defect 6: night 20:00–08:00 with `after_minutes = 10`, then a
/// 09:00 shift with `before_minutes = 120`: the boundary is 08:10, not the
/// midpoint 08:30, so 08:20 is the morning's check-in.
#[test]
fn a_split_never_widens_a_window() {
    let p = two_shift_policy("before_minutes = 120\nafter_minutes = 10", "");
    let days = Case::new(&p)
        .roster("2026-11-02", "night")
        .roster("2026-11-03", "nine")
        .punches(&[
            "2026-11-02 19:55",
            "2026-11-03 08:02",
            "2026-11-03 08:20",
            "2026-11-03 17:01",
        ])
        .eval("2026-11-02", "2026-11-03");
    let (night, nine) = (&days[0], &days[1]);
    assert_eq!(
        night.explanation.window_end.unwrap().to_rfc3339(),
        "2026-11-03T08:10:00+08:00"
    );
    assert_eq!(
        nine.explanation.window_start.unwrap().to_rfc3339(),
        "2026-11-03T08:10:00+08:00"
    );
    assert_eq!(
        night.check_out.unwrap().to_rfc3339(),
        "2026-11-03T08:02:00+08:00"
    );
    assert_eq!(night.status, Status::Present);
    assert_eq!(
        nine.check_in.unwrap().to_rfc3339(),
        "2026-11-03T08:20:00+08:00"
    );
    assert_eq!(nine.status, Status::Present);
    // The boundary instant belongs to the later shift.
    let days = Case::new(&p)
        .roster("2026-11-02", "night")
        .roster("2026-11-03", "nine")
        .punches(&["2026-11-02 19:55", "2026-11-03 08:10", "2026-11-03 17:01"])
        .eval("2026-11-02", "2026-11-03");
    assert_eq!(days[0].explanation.missing, Some(MissingSide::CheckOut));
    assert_eq!(days[1].status, Status::Present);
}

/// Issue 12 defect 6: with `after_minutes = 0`, a check-out exactly at the
/// shift end counts.
#[test]
fn after_minutes_zero_keeps_a_check_out_at_the_end() {
    let p = two_shift_policy("before_minutes = 240\nafter_minutes = 0", "");
    let v = Case::new(&p)
        .punches(&[&t("08:29"), &t("17:30:00")])
        .day(DAY);
    assert_eq!(v.status, Status::Present);
    assert_eq!(v.explanation.punches.len(), 2);
    let v = Case::new(&p)
        .punches(&[&t("08:29"), &t("17:30:01")])
        .day(DAY);
    assert_eq!(v.explanation.missing, Some(MissingSide::CheckOut));
}

/// Issue 12 defect 9: with seed-default, a check-out at exactly 21:30:00
/// (the 240-minute margin's end) after 08:30–17:30 counts.
#[test]
fn the_window_end_is_inclusive() {
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .punches(&[&t("08:29"), &t("21:30:00")])
        .day(DAY);
    assert_eq!((v.status, v.points), (Status::Present, pts("0")));
    assert_eq!(v.worked_minutes, Some(781));
    let v = Case::new(&p)
        .punches(&[&t("08:29"), &t("21:30:01")])
        .day(DAY);
    assert_eq!(v.status, Status::AbsentHalf);
}

/// `[[shift]] before_minutes / after_minutes / grace_minutes` override the
/// policy's for that shift only.
#[test]
fn per_shift_margins_and_grace() {
    let p = two_shift_policy(
        "before_minutes = 240\nafter_minutes = 240",
        "before_minutes = 30\nafter_minutes = 60\ngrace_minutes = 5",
    );
    let v = Case::new(&p)
        .punches(&[&t("07:59"), &t("08:36"), &t("18:31")])
        .day(DAY);
    // 07:59 is before the 30-minute margin, 18:31 after the 60-minute one.
    assert_eq!(
        v.check_in.unwrap().to_rfc3339(),
        "2026-11-02T08:36:00+08:00"
    );
    assert_eq!(v.explanation.missing, Some(MissingSide::CheckOut));
    // Grace 5: six minutes late is late, five is not.
    let v = Case::new(&p).punches(&[&t("08:36"), &t("17:30")]).day(DAY);
    assert_eq!((v.status, v.late_minutes), (Status::Late, 6));
    let v = Case::new(&p)
        .punches(&[&t("08:35:59"), &t("17:25")])
        .day(DAY);
    assert_eq!((v.status, v.points), (Status::Present, pts("0")));
    // The other shifts keep the policy's 15 minutes.
    let v = Case::new(&p)
        .roster(DAY, "nine")
        .punches(&[&t("09:15"), &t("17:00")])
        .day(DAY);
    assert_eq!(v.status, Status::Present);
}

// ---- 8, 10. Visits and repeats --------------------------------------------

/// Issue 12 defect 8: taps at 08:29 and 08:33 and no check-out are one
/// visit, a missing check-out (−5), not a 537-minute early leave (−10).
#[test]
fn one_visit_is_one_punch() {
    let p = shipped("seed-default");
    let v = Case::new(&p).punches(&[&t("08:29"), &t("08:33")]).day(DAY);
    assert_eq!(v.status, Status::AbsentHalf);
    assert_eq!(v.points, pts("5"));
    assert_eq!((v.late_minutes, v.early_minutes), (0, 0));
    assert_eq!(v.flags, vec![Flag::MissingCheckOut]);
    assert!(v.explanation.one_visit);
    assert_eq!(v.worked_minutes, None);
    // A visit near the end is a check-out: its last tap counts.
    let v = Case::new(&p).punches(&[&t("17:29"), &t("17:40")]).day(DAY);
    assert_eq!(v.explanation.missing, Some(MissingSide::CheckIn));
    assert_eq!(
        v.check_out.unwrap().to_rfc3339(),
        "2026-11-02T17:40:00+08:00"
    );
    // 31 minutes apart is two sides, graded however late or early.
    let v = Case::new(&p).punches(&[&t("08:29"), &t("09:00")]).day(DAY);
    assert_eq!(v.status, Status::AbsentFull);
    assert_eq!(v.early_minutes, 510);
    // Arrival at 13:05 is 275 minutes late.
    let v = Case::new(&p).punches(&[&t("13:05"), &t("17:30")]).day(DAY);
    assert_eq!((v.status, v.late_minutes), (Status::AbsentFull, 275));
}

#[test]
fn visit_minutes_is_a_policy_knob() {
    let text = std::fs::read_to_string(root().join("config/policies/seed-default.toml"))
        .unwrap()
        .replace("visit_minutes = 30", "visit_minutes = 0");
    let p = inline(&text);
    let v = Case::new(&p).punches(&[&t("08:29"), &t("08:33")]).day(DAY);
    assert_eq!(v.status, Status::AbsentFull);
}

/// Issue 12 defect 10: with city-management-24h, a night check-out at
/// 07:59:40 and the morning's check-in at 08:00:20 are two punches for two
/// shifts, not one repeat.
#[test]
fn handover_punches_are_not_merged_across_shifts() {
    let p = shipped("city-management-24h");
    let days = Case::new(&p)
        .roster("2026-11-02", "night")
        .roster("2026-11-03", "morning")
        .punches(&[
            "2026-11-02 17:58",
            "2026-11-03 07:59:40",
            "2026-11-03 08:00:20",
            "2026-11-03 12:01",
        ])
        .eval("2026-11-02", "2026-11-03");
    assert_eq!(days[0].status, Status::Present);
    assert_eq!(
        days[0].check_out.unwrap().to_rfc3339(),
        "2026-11-03T07:59:40+08:00"
    );
    assert_eq!(days[1].status, Status::Present, "{:?}", days[1].flags);
    assert_eq!(
        days[1].check_in.unwrap().to_rfc3339(),
        "2026-11-03T08:00:20+08:00"
    );
    assert_eq!(days[1].points, pts("0"));
    // Within one shift, repeats are still merged.
    assert_eq!(
        Case::new(&p)
            .roster(DAY, "morning")
            .punches(&[&t("07:59"), &t("07:59:30"), &t("12:00")])
            .day(DAY)
            .explanation
            .repeats_merged,
        1
    );
}

// ---- Worked minutes and [hours] -------------------------------------------

fn hours_policy(hours: &str) -> attendd::domain::policy::Policy {
    let text = std::fs::read_to_string(root().join("config/policies/seed-default.toml"))
        .unwrap()
        .replace(
            "# 坐席员考核细则 二(二)2: 旷工半天扣5分",
            &format!("[hours]\n{hours}\nrule = \"short_hours\"\n\n# 坐席员考核细则 二(二)2: 旷工半天扣5分"),
        )
        + "\n[rule.short_hours]\ncategory = \"discipline\"\nzh = \"工时不足\"\nen = \"Too few hours worked\"\n";
    inline(&text)
}

#[test]
fn too_few_hours_count_as_absence_when_worse() {
    let p = hours_policy("half_day_below = 480\nabsent_below = 240");
    // 09:00–17:10 is late 30 and early 20 (2 points) but 490 minutes: fine.
    let v = Case::new(&p).punches(&[&t("09:00"), &t("17:10")]).day(DAY);
    assert_eq!((v.status, v.points), (Status::LateAndEarly, pts("2")));
    // 09:00–16:59:59 is 479 minutes: a half day beats late + early.
    let v = Case::new(&p)
        .punches(&[&t("09:00"), &t("16:59:59")])
        .day(DAY);
    assert_eq!(v.worked_minutes, Some(479));
    assert_eq!(v.status, Status::AbsentHalf);
    assert_eq!(v.points, pts("5"));
    let rules: Vec<&str> = v.deductions.iter().map(|d| &*d.rule).collect();
    assert_eq!(rules, ["short_hours"]);
    assert!(v.explanation.ladder.is_empty(), "absence is no ladder step");
    // Leave minutes count as worked: 4 h leave + 4 h 30 worked.
    let v = Case::new(&p)
        .leave(&t("08:30"), &t("12:30"), "annual", LeaveStatus::Approved)
        .punches(&[&t("12:30"), &t("17:00")])
        .day(DAY);
    assert_eq!(v.explanation.short_hours, None);
    assert_eq!(v.status, Status::EarlyLeave);
    // The lateness grading wins when it is worse.
    let v = Case::new(&p).punches(&[&t("12:00"), &t("17:30")]).day(DAY);
    assert_eq!((v.status, v.points), (Status::AbsentFull, pts("10")));
    assert_eq!(&*v.deductions[0].rule, "late_full_day");
}

// ---- Validation ---------------------------------------------------------------

#[test]
fn new_policy_keys_are_validated_by_name() {
    let base = std::fs::read_to_string(root().join("config/policies/seed-default.toml")).unwrap();
    let bad = base
        .replace("visit_minutes = 30", "visit_minutes = -1")
        .replace(
            "end = \"17:30\"\n",
            "end = \"17:30\"\ngrace_minutes = -2\nbefore_minutes = 2000\nafter_minutes = -5\n",
        )
        .replace(
            "# 坐席员考核细则 二(二)2: 旷工半天扣5分",
            "[hours]\nhalf_day_below = 120\nabsent_below = 240\n\n# 坐席员考核细则 二(二)2: 旷工半天扣5分",
        );
    let e = attendd::policy_file::parse_str(&bad, "bad.toml").unwrap_err();
    let msg = e.to_string();
    for key in [
        "window.visit_minutes",
        "shift[0].grace_minutes",
        "shift[0].before_minutes",
        "shift[0].after_minutes",
        "hours.absent_below",
        "hours.rule",
    ] {
        assert!(msg.contains(&format!("key `{key}`")), "{key}: {msg}");
    }
    let bad = base.replace(
        "# 坐席员考核细则 二(二)2: 旷工半天扣5分",
        "[hours]\nhalf_day_below = 0\nrule = \"nope\"\n\n# 坐席员考核细则 二(二)2: 旷工半天扣5分",
    );
    let msg = attendd::policy_file::parse_str(&bad, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("key `hours.half_day_below`"), "{msg}");
    assert!(
        msg.contains("key `hours.rule`") && msg.contains("nope"),
        "{msg}"
    );
    let bad = base.replace(
        "\n[window]\n",
        "\n[hours]\nhalf_day_minutes = 3\n\n[window]\n",
    );
    let msg = attendd::policy_file::parse_str(&bad, "bad.toml")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("half_day_minutes"), "{msg}");
}

#[test]
fn check_config_names_a_broken_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(root().join("config/policies/seed-default.toml")).unwrap();
    std::fs::write(
        &bad,
        text.replace("visit_minutes = 30", "visit_minutes = 9999"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_attendd"))
        .args(["check-config", "--policy", bad.to_str().unwrap()])
        .current_dir(root())
        .env_remove("ATTENDD_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("window.visit_minutes"), "{err}");
    assert!(err.contains("9999"), "{err}");

    // A good file: the per-shift knobs and [hours] are shown.
    let good = dir.path().join("good.toml");
    let text = text
        .replace(
            "end = \"17:30\"\n",
            "end = \"17:30\"\nbefore_minutes = 30\nafter_minutes = 60\ngrace_minutes = 5\n",
        )
        .replace(
            "\n[window]\n",
            "\n[hours]\nhalf_day_below = 240\nrule = \"late\"\n\n[window]\n",
        );
    std::fs::write(&good, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_attendd"))
        .args(["check-config", "--policy", good.to_str().unwrap()])
        .current_dir(root())
        .env_remove("ATTENDD_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("shift day: 08:30–17:30; window −30/+60 min; grace 5 min"),
        "{text}"
    );
    assert!(text.contains("one visit within 30 min"), "{text}");
    assert!(text.contains("hours: half day below 240 min"), "{text}");
}
