//! Table-driven cases: every worked example of `spec/policy.md` and every
//! rule and boundary of the four shipped policies.

use attendd::domain::types::{Flag, HolidayKind, LeaveStatus, MissingSide, Status};

use crate::common::{Case, pts, shipped};

/// One row: punches on Monday 2026-11-02 and what the day must come out as.
struct Row {
    punches: &'static [&'static str],
    status: Status,
    late: i64,
    early: i64,
    absence: &'static str,
    points: &'static str,
    rules: &'static [&'static str],
}

#[track_caller]
fn check(policy: &str, rows: &[Row]) {
    let p = shipped(policy);
    for (i, r) in rows.iter().enumerate() {
        let punches: Vec<String> = r
            .punches
            .iter()
            .map(|t| format!("2026-11-02 {t}"))
            .collect();
        let refs: Vec<&str> = punches.iter().map(String::as_str).collect();
        let v = Case::new(&p).punches(&refs).day("2026-11-02");
        let ctx = format!("{policy} row {i} {:?}", r.punches);
        assert_eq!(v.status, r.status, "{ctx}: status");
        assert_eq!(v.late_minutes, r.late, "{ctx}: late");
        assert_eq!(v.early_minutes, r.early, "{ctx}: early");
        assert_eq!(v.absence_days, pts(r.absence), "{ctx}: absence");
        assert_eq!(v.points, pts(r.points), "{ctx}: points");
        let rules: Vec<&str> = v.deductions.iter().map(|d| &*d.rule).collect();
        assert_eq!(rules, r.rules, "{ctx}: rules");
        let sum: attendd::domain::Points = v.deductions.iter().map(|d| d.points).sum();
        assert_eq!(
            sum, v.points,
            "{ctx}: deductions add up to the day's points"
        );
    }
}

macro_rules! row {
    ([$($p:expr),*], $status:ident, $late:expr, $early:expr, $abs:expr, $pts:expr, [$($r:expr),*]) => {
        Row { punches: &[$($p),*], status: Status::$status, late: $late, early: $early,
              absence: $abs, points: $pts, rules: &[$($r),*] }
    };
}

/// policy.md, "Worked examples, day shift 08:30–17:30".
#[test]
fn policy_md_worked_examples() {
    check(
        "seed-default",
        &[
            row!(["08:29", "17:31"], Present, 0, 0, "0", "0", []),
            row!(["08:45:59", "17:30"], Present, 15, 0, "0", "0", []),
            row!(["08:46", "17:30"], Late, 16, 0, "0", "1", ["late"]),
            row!(
                ["09:00", "17:10"],
                LateAndEarly,
                30,
                20,
                "0",
                "2",
                ["late", "early_leave"]
            ),
            row!(
                ["09:01", "17:30"],
                AbsentHalf,
                31,
                0,
                "0.5",
                "5",
                ["late_half_day"]
            ),
            row!(["08:20"], AbsentHalf, 0, 0, "0.5", "5", ["missing_punch"]),
            row!([], AbsentFull, 0, 0, "1", "10", ["absent"]),
        ],
    );
}

/// seed-default boundaries: 15/16, 30/31 and 180/181 minutes on both sides,
/// seconds rounded down, the day cap, two half days making one.
#[test]
fn seed_default_boundaries() {
    check(
        "seed-default",
        &[
            // Lateness.
            row!(["08:45:00", "17:30"], Present, 15, 0, "0", "0", []),
            row!(["08:46:00", "17:30"], Late, 16, 0, "0", "1", ["late"]),
            row!(["09:00:59", "17:30"], Late, 30, 0, "0", "1", ["late"]),
            row!(
                ["09:01:00", "17:30"],
                AbsentHalf,
                31,
                0,
                "0.5",
                "5",
                ["late_half_day"]
            ),
            row!(
                ["11:30:59", "17:30"],
                AbsentHalf,
                180,
                0,
                "0.5",
                "5",
                ["late_half_day"]
            ),
            row!(
                ["11:31:00", "17:30"],
                AbsentFull,
                181,
                0,
                "1",
                "10",
                ["late_full_day"]
            ),
            // Earliness: 17:14:59 is 15 minutes early.
            row!(["08:30", "17:14:59"], Present, 0, 15, "0", "0", []),
            row!(
                ["08:30", "17:14:00"],
                EarlyLeave,
                0,
                16,
                "0",
                "1",
                ["early_leave"]
            ),
            row!(
                ["08:30", "17:00:00"],
                EarlyLeave,
                0,
                30,
                "0",
                "1",
                ["early_leave"]
            ),
            row!(
                ["08:30", "16:59:59"],
                EarlyLeave,
                0,
                30,
                "0",
                "1",
                ["early_leave"]
            ),
            row!(
                ["08:30", "16:59:00"],
                AbsentHalf,
                0,
                31,
                "0.5",
                "5",
                ["early_half_day"]
            ),
            row!(
                ["08:30", "14:30:00"],
                AbsentHalf,
                0,
                180,
                "0.5",
                "5",
                ["early_half_day"]
            ),
            row!(
                ["08:30", "14:29:59"],
                AbsentHalf,
                0,
                180,
                "0.5",
                "5",
                ["early_half_day"]
            ),
            row!(
                ["08:30", "14:29:00"],
                AbsentFull,
                0,
                181,
                "1",
                "10",
                ["early_full_day"]
            ),
            // Early punches are not negative lateness.
            row!(["05:00", "21:00"], Present, 0, 0, "0", "0", []),
            // Two half days make one day, 5 + 5 = 10.
            row!(
                ["09:31", "16:00"],
                AbsentFull,
                61,
                90,
                "1",
                "10",
                ["late_half_day", "early_half_day"]
            ),
            // Half a day plus a minor: 5 + 1.
            row!(
                ["09:31", "17:10"],
                AbsentHalf,
                61,
                20,
                "0.5",
                "6",
                ["late_half_day", "early_leave"]
            ),
            // Full day plus a minor is capped at 10.
            row!(
                ["12:00", "17:10"],
                AbsentFull,
                210,
                20,
                "1",
                "10",
                ["late_full_day"]
            ),
            // One punch nearer the end is the check-out; the check-in is missing.
            row!(["17:20"], AbsentHalf, 0, 10, "0.5", "5", ["missing_punch"]),
            row!(
                ["16:00"],
                AbsentFull,
                0,
                90,
                "1",
                "10",
                ["missing_punch", "early_half_day"]
            ),
            // Repeats within 60 s are one punch: this is a single punch.
            row!(
                ["08:20:00", "08:20:30", "08:21:00"],
                AbsentHalf,
                0,
                0,
                "0.5",
                "5",
                ["missing_punch"]
            ),
            // Outside the 4-hour window the punch does not count.
            row!(
                ["04:29", "17:30"],
                AbsentHalf,
                0,
                0,
                "0.5",
                "5",
                ["missing_punch"]
            ),
            // The window's end instant is in it (issue 12: 21:30:00 counts).
            row!(["08:30", "21:30"], Present, 0, 0, "0", "0", []),
            row!(
                ["08:30", "21:30:01"],
                AbsentHalf,
                0,
                0,
                "0.5",
                "5",
                ["missing_punch"]
            ),
        ],
    );
}

#[test]
fn cap_is_explained() {
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .punches(&["2026-11-02 12:00", "2026-11-02 17:10"])
        .day("2026-11-02");
    assert_eq!(v.explanation.uncapped_points, Some(pts("11")));
    let early = v.explanation.early.as_ref().unwrap();
    assert_eq!(early.minutes, 20);
    assert_eq!(early.rule.as_deref(), Some("early_leave"));
    let v = Case::new(&p)
        .punches(&["2026-11-02 08:20"])
        .day("2026-11-02");
    assert_eq!(v.explanation.missing, Some(MissingSide::CheckOut));
    assert_eq!(v.flags, vec![Flag::MissingCheckOut]);
    assert!(v.check_in.is_some() && v.check_out.is_none());
}

/// City management (rule set C alone): no grace, a roster-only 24-hour
/// schedule, the overnight shift.
#[test]
fn city_management_grading() {
    let p = shipped("city-management-24h");
    let case = |punches: &[&str]| {
        Case::new(&p)
            .roster("2026-11-02", "morning")
            .punches(punches)
            .day("2026-11-02")
    };
    let v = case(&["2026-11-02 08:00:59", "2026-11-02 12:00"]);
    assert_eq!(
        (v.status, v.late_minutes, v.points),
        (Status::Present, 0, pts("0"))
    );
    let v = case(&["2026-11-02 08:01:00", "2026-11-02 12:00"]);
    assert_eq!(
        (v.status, v.late_minutes, v.points),
        (Status::Late, 1, pts("1"))
    );
    let v = case(&["2026-11-02 08:30:59", "2026-11-02 12:00"]);
    assert_eq!((v.status, v.points), (Status::Late, pts("1")));
    let v = case(&["2026-11-02 08:31:00", "2026-11-02 12:00"]);
    assert_eq!((v.status, v.points), (Status::AbsentHalf, pts("5")));
    let v = case(&["2026-11-02 08:00", "2026-11-02 11:59"]);
    assert_eq!(
        (v.status, v.early_minutes, v.points),
        (Status::EarlyLeave, 1, pts("1"))
    );
    let v = case(&[]);
    assert_eq!((v.status, v.points), (Status::AbsentFull, pts("10")));

    // A date with no roster row is rest, whatever the weekday.
    let v = Case::new(&p).day("2026-11-02");
    assert_eq!(v.status, Status::Rest);
    assert_eq!(v.explanation.day_kind, "not_rostered");
}

#[test]
fn overnight_shift_counts_on_its_start_date() {
    let p = shipped("city-management-24h");
    let base = || Case::new(&p).roster("2026-11-02", "night");
    let v = base()
        .punches(&["2026-11-02 17:55", "2026-11-03 08:05"])
        .day("2026-11-02");
    assert_eq!(v.status, Status::Present);
    assert_eq!(v.shift.as_deref(), Some("night"));
    assert_eq!(
        v.check_out.unwrap().to_rfc3339(),
        "2026-11-03T08:05:00+08:00"
    );
    let v = base()
        .punches(&["2026-11-02 18:20", "2026-11-03 08:05"])
        .day("2026-11-02");
    assert_eq!(
        (v.status, v.late_minutes, v.points),
        (Status::Late, 20, pts("1"))
    );
    let v = base()
        .punches(&["2026-11-02 17:59", "2026-11-03 07:40"])
        .day("2026-11-02");
    assert_eq!(
        (v.status, v.early_minutes, v.points),
        (Status::EarlyLeave, 20, pts("1"))
    );
    // The next date, not rostered, is rest and does not take the check-out.
    let days = base()
        .punches(&["2026-11-02 17:55", "2026-11-03 08:05"])
        .eval("2026-11-02", "2026-11-03");
    assert_eq!(days[1].status, Status::Rest);
}

#[test]
fn night_then_afternoon_splits_the_gap() {
    // Night ends 08:00 on the 3rd, afternoon starts 14:30: windows split at 11:15.
    let p = shipped("city-management-24h");
    let case = Case::new(&p)
        .roster("2026-11-02", "night")
        .roster("2026-11-03", "afternoon")
        .punches(&[
            "2026-11-02 17:58",
            "2026-11-03 08:01",
            "2026-11-03 11:14",
            "2026-11-03 11:16",
            "2026-11-03 18:02",
        ]);
    let days = case.eval("2026-11-02", "2026-11-03");
    let (night, afternoon) = (&days[0], &days[1]);
    assert_eq!(
        night.check_out.unwrap().to_rfc3339(),
        "2026-11-03T11:14:00+08:00"
    );
    assert_eq!(night.status, Status::Present);
    assert_eq!(
        afternoon.check_in.unwrap().to_rfc3339(),
        "2026-11-03T11:16:00+08:00"
    );
    assert_eq!(afternoon.status, Status::Present);
    assert_eq!(
        night.explanation.window_end.unwrap().to_rfc3339(),
        "2026-11-03T11:15:00+08:00"
    );
}

#[test]
fn night_then_morning_meets_at_shift_change() {
    // Night 18:00–08:00 followed by morning 08:00–12:00: no gap, the windows
    // meet at 08:00.
    let p = shipped("city-management-24h");
    let case = Case::new(&p)
        .roster("2026-11-02", "night")
        .roster("2026-11-03", "morning")
        .punches(&[
            "2026-11-02 17:59",
            "2026-11-03 07:59:30",
            "2026-11-03 08:00:45",
            "2026-11-03 12:01",
        ]);
    let days = case.eval("2026-11-02", "2026-11-03");
    assert_eq!(days[0].status, Status::Present);
    assert_eq!(
        days[0].check_out.unwrap().to_rfc3339(),
        "2026-11-03T07:59:30+08:00"
    );
    assert_eq!(days[1].status, Status::Present);
    assert_eq!(days[1].late_minutes, 0);
}

#[test]
fn day_then_night_then_day_off() {
    // A roster mixing a day shift and a night shift on consecutive dates.
    let p = shipped("city-management-24h");
    let days = Case::new(&p)
        .roster("2026-11-02", "afternoon")
        .roster("2026-11-03", "night")
        .punches(&[
            "2026-11-02 14:29",
            "2026-11-02 18:01",
            "2026-11-03 17:59",
            "2026-11-04 08:00",
        ])
        .eval("2026-11-02", "2026-11-04");
    let s: Vec<Status> = days.iter().map(|d| d.status).collect();
    assert_eq!(s, vec![Status::Present, Status::Present, Status::Rest]);
}

#[test]
fn outbound_call_centre_rule_set_b() {
    check(
        "outbound-call-centre",
        &[
            row!(["08:45", "17:30"], Present, 15, 0, "0", "0", []),
            row!(["08:46", "17:30"], Late, 16, 0, "0", "2", ["late"]),
            // No half-hour conversion: four hours late is still "late", −2.
            row!(["12:30", "17:30"], Late, 240, 0, "0", "2", ["late"]),
            row!(
                ["09:00", "17:00"],
                LateAndEarly,
                30,
                30,
                "0",
                "4",
                ["late", "early_leave"]
            ),
            row!([], AbsentFull, 0, 0, "1", "2", ["unexcused_absence"]),
            row!(["08:30"], AbsentHalf, 0, 0, "0.5", "2", ["missing_punch"]),
        ],
    );
    let v = Case::new(&shipped("outbound-call-centre")).day("2026-11-02");
    assert_eq!(v.deductions[0].category.as_ref(), "attendance");
}

#[test]
fn hengshui_rule_set_d() {
    check(
        "hengshui-acceptance",
        &[
            row!(["08:45:59", "17:30"], Present, 15, 0, "0", "0", []),
            row!(["08:46", "17:30"], Late, 16, 0, "0", "1", ["late"]),
            row!(["10:30", "17:30"], Late, 120, 0, "0", "1", ["late"]),
            row!(
                ["08:30", "15:00"],
                EarlyLeave,
                0,
                150,
                "0",
                "1",
                ["early_leave"]
            ),
            row!(
                ["09:00", "17:00"],
                LateAndEarly,
                30,
                30,
                "0",
                "2",
                ["late", "early_leave"]
            ),
            row!([], AbsentFull, 0, 0, "1", "10", ["absent"]),
            row!(["17:30"], AbsentHalf, 0, 0, "0.5", "5", ["missing_punch"]),
        ],
    );
}

#[test]
fn leave_whole_and_partial() {
    let p = shipped("seed-default");
    use LeaveStatus::*;
    // Whole shift on approved leave: no points, one leave day.
    let v = Case::new(&p)
        .leave("2026-11-02 00:00", "2026-11-03 00:00", "annual", Approved)
        .day("2026-11-02");
    assert_eq!(
        (v.status, v.points, v.leave_days),
        (Status::OnLeave, pts("0"), pts("1"))
    );
    // Field work: recorded, not absence, not leave.
    let v = Case::new(&p)
        .leave("2026-11-02 08:30", "2026-11-02 17:30", "field", Approved)
        .day("2026-11-02");
    assert_eq!(
        (v.status, v.points, v.leave_days),
        (Status::Field, pts("0"), pts("0"))
    );
    // Pending and rejected leave excuse nothing.
    for st in [Pending, Rejected] {
        let v = Case::new(&p)
            .leave("2026-11-02 08:30", "2026-11-02 17:30", "sick", st)
            .day("2026-11-02");
        assert_eq!(
            (v.status, v.points),
            (Status::AbsentFull, pts("10")),
            "{st:?}"
        );
    }
    // Leave covering the start moves the expected start to its end.
    let morning = |inp: &str| {
        Case::new(&p)
            .leave("2026-11-02 08:30", "2026-11-02 12:00", "sick", Approved)
            .punches(&[inp, "2026-11-02 17:30"])
            .day("2026-11-02")
    };
    let v = morning("2026-11-02 12:15");
    assert_eq!((v.status, v.late_minutes), (Status::Present, 15));
    assert_eq!(v.flags, vec![Flag::PartialLeave]);
    assert_eq!(
        v.explanation.expected_start.unwrap().to_rfc3339(),
        "2026-11-02T12:00:00+08:00"
    );
    let v = morning("2026-11-02 12:16");
    assert_eq!(
        (v.status, v.late_minutes, v.points),
        (Status::Late, 16, pts("1"))
    );
    // Leave covering the end moves the expected end to its start.
    let v = Case::new(&p)
        .leave("2026-11-02 15:00", "2026-11-02 18:00", "personal", Approved)
        .punches(&["2026-11-02 08:30", "2026-11-02 14:50"])
        .day("2026-11-02");
    assert_eq!((v.status, v.early_minutes), (Status::Present, 10));
    // Partial field work flags as such.
    let v = Case::new(&p)
        .leave("2026-11-02 08:00", "2026-11-02 10:00", "field", Approved)
        .punches(&["2026-11-02 10:05", "2026-11-02 17:30"])
        .day("2026-11-02");
    assert_eq!(
        (v.status, v.flags.clone()),
        (Status::Present, vec![Flag::PartialField])
    );
    // Two leaves that together cover the shift.
    let v = Case::new(&p)
        .leave("2026-11-02 08:00", "2026-11-02 12:00", "annual", Approved)
        .leave("2026-11-02 12:00", "2026-11-02 18:00", "sick", Approved)
        .day("2026-11-02");
    assert_eq!(v.status, Status::OnLeave);
}

#[test]
fn holidays_make_up_days_and_roster_overrides() {
    let p = shipped("seed-default");
    // 2026-10-01 (Thursday) is a holiday, 2026-10-10 (Saturday) a make-up workday.
    let c = Case::new(&p)
        .holiday("2026-10-01", HolidayKind::Holiday)
        .holiday("2026-10-10", HolidayKind::Workday);
    let days = c.eval("2026-10-01", "2026-10-11");
    let st = |d: u32| days[(d - 1) as usize].status;
    assert_eq!(st(1), Status::Holiday);
    assert_eq!(st(2), Status::AbsentFull); // Friday, ordinary workday
    assert_eq!(st(3), Status::Rest); // Saturday
    assert_eq!(st(10), Status::AbsentFull); // make-up Saturday
    assert_eq!(days[9].explanation.day_kind, "make_up_workday");
    assert_eq!(st(11), Status::Rest);

    // A roster row beats the calendar: working a holiday, resting a Monday.
    let c = Case::new(&p)
        .holiday("2026-10-01", HolidayKind::Holiday)
        .roster("2026-10-01", "day")
        .roster("2026-10-05", "rest")
        .punches(&["2026-10-01 08:30", "2026-10-01 17:30"]);
    let days = c.eval("2026-10-01", "2026-10-05");
    assert_eq!(days[0].status, Status::Present);
    assert_eq!(days[0].explanation.day_kind, "roster");
    assert_eq!(days[4].status, Status::Rest);
    assert_eq!(days[4].explanation.day_kind, "roster_rest");
}

/// 坐席考勤管理制度 五2: the ladder per month, by kind, with runs of
/// consecutive workdays.
#[test]
fn escalation_ladder() {
    let p = shipped("seed-default");
    // Late (16–30 min) Mon–Thu 2026-11-02..05.
    let mut times = Vec::new();
    for d in 2..=5 {
        times.push(format!("2026-11-{d:02} 08:50"));
        times.push(format!("2026-11-{d:02} 17:30"));
    }
    let refs: Vec<&str> = times.iter().map(String::as_str).collect();
    let days = Case::new(&p)
        .punches(&refs)
        .eval("2026-11-02", "2026-11-05");
    let acts: Vec<Vec<&str>> = days
        .iter()
        .map(|d| d.actions.iter().map(|a| &**a).collect())
        .collect();
    assert_eq!(
        acts,
        vec![
            vec!["verbal_reminder"],
            vec!["deduct_day_wage"],
            vec!["deduct_day_wage_and_criticism", "disciplinary_review"],
            vec!["deduct_day_wage_and_criticism", "disciplinary_review"],
        ]
    );
    assert_eq!(days[3].explanation.ladder[0].occurrence, 4);
    assert_eq!(days[3].explanation.ladder[0].consecutive, 4);
}

#[test]
fn ladder_runs_skip_rest_days_and_holidays_but_not_workdays() {
    let p = shipped("seed-default");
    let late = |d: &str| [format!("{d} 08:50"), format!("{d} 17:30")];
    let on_time = |d: &str| [format!("{d} 08:30"), format!("{d} 17:30")];
    // Fri 11-06 late, weekend, Mon 11-09 late, Tue 11-10 holiday, Wed 11-11 late: a run of 3.
    let mut t: Vec<String> = Vec::new();
    t.extend(on_time("2026-11-02"));
    t.extend(on_time("2026-11-03"));
    t.extend(on_time("2026-11-04"));
    t.extend(on_time("2026-11-05"));
    t.extend(late("2026-11-06"));
    t.extend(late("2026-11-09"));
    t.extend(late("2026-11-11"));
    let refs: Vec<&str> = t.iter().map(String::as_str).collect();
    let days = Case::new(&p)
        .holiday("2026-11-10", HolidayKind::Holiday)
        .punches(&refs)
        .eval("2026-11-11", "2026-11-11");
    assert_eq!(days[0].explanation.ladder[0].consecutive, 3);
    assert!(
        days[0]
            .actions
            .iter()
            .any(|a| &**a == "disciplinary_review")
    );

    // The same, but Tuesday is an ordinary workday on time: the run breaks.
    let mut t2 = t.clone();
    t2.extend(on_time("2026-11-10"));
    let refs: Vec<&str> = t2.iter().map(String::as_str).collect();
    let days = Case::new(&p)
        .punches(&refs)
        .eval("2026-11-11", "2026-11-11");
    assert_eq!(days[0].explanation.ladder[0].consecutive, 1);
    assert_eq!(days[0].explanation.ladder[0].occurrence, 3);
    assert_eq!(
        days[0].actions.iter().map(|a| &**a).collect::<Vec<_>>(),
        vec!["deduct_day_wage_and_criticism"]
    );

    // A day of leave is a workday without an occurrence: it breaks the run.
    let days = Case::new(&p)
        .holiday("2026-11-10", HolidayKind::Holiday)
        .leave(
            "2026-11-09 00:00",
            "2026-11-10 00:00",
            "annual",
            LeaveStatus::Approved,
        )
        .punches(&refs[..refs.len() - 2])
        .eval("2026-11-11", "2026-11-11");
    assert_eq!(days[0].explanation.ladder[0].consecutive, 1);
}

#[test]
fn ladder_counts_kinds_separately_and_resets_monthly() {
    let p = shipped("seed-default");
    // 10-30 late, 11-02 late and early: each is a first occurrence.
    let days = Case::new(&p)
        .punches(&[
            "2026-10-30 08:50",
            "2026-10-30 17:30",
            "2026-11-02 08:50",
            "2026-11-02 17:10",
        ])
        .eval("2026-10-30", "2026-11-02");
    let mon = days.last().unwrap();
    assert_eq!(mon.status, Status::LateAndEarly);
    let hits: Vec<(&str, u32)> = mon
        .explanation
        .ladder
        .iter()
        .map(|h| (&*h.kind, h.occurrence))
        .collect();
    assert_eq!(hits, vec![("late", 1), ("early_leave", 1)]);
    assert_eq!(
        mon.actions.iter().map(|a| &**a).collect::<Vec<_>>(),
        vec!["verbal_reminder"]
    );
    // A half-day absence is not a ladder occurrence.
    let days = Case::new(&p)
        .punches(&[
            "2026-11-02 09:10",
            "2026-11-02 17:30",
            "2026-11-03 08:50",
            "2026-11-03 17:30",
        ])
        .eval("2026-11-02", "2026-11-03");
    assert!(days[0].explanation.ladder.is_empty());
    assert_eq!(days[1].explanation.ladder[0].occurrence, 1);
}

#[test]
fn policies_without_a_ladder_report_no_actions() {
    for name in [
        "city-management-24h",
        "outbound-call-centre",
        "hengshui-acceptance",
    ] {
        let p = shipped(name);
        let mut c = Case::new(&p);
        if name == "city-management-24h" {
            c = c.roster("2026-11-02", "morning");
        }
        let v = c
            .punches(&["2026-11-02 08:50", "2026-11-02 17:30"])
            .day("2026-11-02");
        assert!(v.actions.is_empty(), "{name}");
    }
}
