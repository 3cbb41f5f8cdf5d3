//! Rules of the seed beyond lateness (spec/policy.md, "Rules of the seed
//! beyond lateness"): leaving post, overtime, leave rules, shift swaps and
//! manual rules that also count as absence. Each boundary is tested on both
//! sides, with the seed's wording beside the numbers.

use attendd::domain::score::{ManualItem, month_scores};
use attendd::domain::types::*;

use crate::common::*;

fn flags(v: &DayVerdict) -> Vec<&'static str> {
    v.flags.iter().map(|f| f.as_str()).collect()
}

// ---------------------------------------------------------------------------
// Leaving post. 坐席员考核细则 二(二)3: "无故脱岗半小时内(含半小时)扣2分,超过半小时
// 按旷工半天计算,超过3小时按旷工一天计算。" city-management-24h enables it, with
// the meal windows 11:00–12:00 and 17:00–18:00 as allowed breaks.
// ---------------------------------------------------------------------------

fn morning(punches: &[&str]) -> DayVerdict {
    let p = shipped("city-management-24h");
    Case::new(&p)
        .roster("2026-11-02", "morning")
        .punches(punches)
        .day("2026-11-02")
}

fn night(punches: &[&str]) -> DayVerdict {
    let p = shipped("city-management-24h");
    Case::new(&p)
        .roster("2026-11-02", "night")
        .punches(punches)
        .day("2026-11-02")
}

#[test]
fn leaving_post_30_minutes_is_minus_2() {
    // 半小时内(含半小时)扣2分: 30 minutes away is −2, no absence.
    let v = morning(&[
        "2026-11-02 08:00",
        "2026-11-02 09:00",
        "2026-11-02 09:30",
        "2026-11-02 12:00",
    ]);
    assert_eq!(v.status, Status::Present);
    assert_eq!(v.points, pts("2"));
    assert_eq!(v.absence_days, pts("0"));
    assert_eq!(v.deductions.len(), 1);
    assert_eq!(&*v.deductions[0].rule, "leaving_post");
    assert_eq!(v.explanation.away.as_ref().unwrap().minutes, 30);
    // worked_minutes subtracts time away: 240 − 30.
    assert_eq!(v.worked_minutes, Some(210));
    assert!(flags(&v).is_empty());
}

#[test]
fn leaving_post_31_minutes_is_half_day_absence() {
    // 超过半小时按旷工半天计算: 31 minutes is half a day (5 points, 二(二)2).
    let v = morning(&[
        "2026-11-02 08:00",
        "2026-11-02 09:00",
        "2026-11-02 09:31",
        "2026-11-02 12:00",
    ]);
    assert_eq!(v.status, Status::AbsentHalf);
    assert_eq!(v.absence_days, pts("0.5"));
    assert_eq!(v.points, pts("5"));
    assert_eq!(&*v.deductions[0].rule, "leaving_post_half_day");
    assert_eq!(v.worked_minutes, Some(209));
}

#[test]
fn leaving_post_3_hours_is_half_day_3h01_full_day() {
    // 超过3小时按旷工一天计算: exactly 3 h is still half a day …
    let v = night(&[
        "2026-11-02 18:00",
        "2026-11-02 20:00",
        "2026-11-02 23:00",
        "2026-11-03 08:00",
    ]);
    assert_eq!(v.explanation.away.as_ref().unwrap().minutes, 180);
    assert_eq!(v.status, Status::AbsentHalf);
    assert_eq!(v.absence_days, pts("0.5"));
    assert_eq!(v.points, pts("5"));
    // … 3 h 1 min is a whole day (旷工1天扣10分).
    let v = night(&[
        "2026-11-02 18:00",
        "2026-11-02 20:00",
        "2026-11-02 23:01",
        "2026-11-03 08:00",
    ]);
    assert_eq!(v.explanation.away.as_ref().unwrap().minutes, 181);
    assert_eq!(v.status, Status::AbsentFull);
    assert_eq!(v.absence_days, pts("1"));
    assert_eq!(v.points, pts("10"));
    assert_eq!(&*v.deductions[0].rule, "leaving_post_full_day");
    assert_eq!(v.worked_minutes, Some(14 * 60 - 181));
}

#[test]
fn leaving_post_meal_window_is_excused() {
    // 工作制度: meals 11:00–12:00. Away 10:40–11:40 is 60 minutes, of which
    // 20 fall outside the meal window: −2, not half a day.
    let v = morning(&[
        "2026-11-02 08:00",
        "2026-11-02 10:40",
        "2026-11-02 11:40",
        "2026-11-02 12:00",
    ]);
    assert_eq!(v.explanation.away.as_ref().unwrap().minutes, 20);
    assert_eq!(v.points, pts("2"));
    // Worked minutes subtract the whole time away, meal included.
    assert_eq!(v.worked_minutes, Some(180));
}

#[test]
fn leaving_post_pairs_after_repeats_and_visits_are_merged() {
    // A double tap when leaving (within dedupe_seconds) and a second tap at
    // arrival (within visit_minutes of the check-in) do not shift the pairs.
    let v = morning(&[
        "2026-11-02 08:00",
        "2026-11-02 08:10",
        "2026-11-02 09:00:00",
        "2026-11-02 09:00:30",
        "2026-11-02 09:20",
        "2026-11-02 12:00",
    ]);
    assert_eq!(v.explanation.away.as_ref().unwrap().minutes, 20);
    assert_eq!(v.points, pts("2"));
    assert!(flags(&v).is_empty(), "{:?}", v.flags);
}

#[test]
fn leaving_post_unpaired_punch_is_flagged_not_deducted() {
    let v = morning(&["2026-11-02 08:00", "2026-11-02 09:00", "2026-11-02 12:00"]);
    assert_eq!(flags(&v), ["unpaired_punch"]);
    assert_eq!(v.points, pts("0"));
    assert_eq!(v.status, Status::Present);
    assert_eq!(v.worked_minutes, Some(240));
}

#[test]
fn leaving_post_counts_toward_the_day_cap() {
    // Late 40 min (half day, 5) + away 31 min (half day, 5): one whole day.
    let v = morning(&[
        "2026-11-02 08:40",
        "2026-11-02 09:00",
        "2026-11-02 09:31",
        "2026-11-02 12:00",
    ]);
    assert_eq!(v.absence_days, pts("1"));
    assert_eq!(v.points, pts("10"));
    assert_eq!(v.status, Status::AbsentFull);
    // Late 3 h 1 min (10) + away 20 min (2): capped at 10.
    let p = shipped("city-management-24h");
    let v = Case::new(&p)
        .roster("2026-11-02", "night")
        .punches(&[
            "2026-11-02 21:01",
            "2026-11-02 22:00",
            "2026-11-02 22:20",
            "2026-11-03 08:00",
        ])
        .day("2026-11-02");
    assert_eq!(v.points, pts("10"));
    assert_eq!(v.explanation.uncapped_points, Some(pts("12")));
}

#[test]
fn leaving_post_is_off_where_the_policy_does_not_say_it() {
    // seed-default has no [leaving_post]: mid-shift punches change nothing.
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .punches(&[
            "2026-11-02 08:30",
            "2026-11-02 10:00",
            "2026-11-02 11:00",
            "2026-11-02 17:30",
        ])
        .day("2026-11-02");
    assert_eq!(v.points, pts("0"));
    assert_eq!(v.worked_minutes, Some(540));
    assert!(v.explanation.away.is_none());
}

// ---------------------------------------------------------------------------
// Overtime. 坐席考勤管理制度 七1: "考勤记录,包括打卡记录、请假记录、加班记录等";
// seed-default: [overtime] min_minutes = 30. Never points.
// ---------------------------------------------------------------------------

#[test]
fn overtime_29_minutes_is_none_30_is_recorded() {
    let p = shipped("seed-default");
    let v = Case::new(&p)
        .punches(&["2026-11-02 08:30", "2026-11-02 17:59:59"])
        .day("2026-11-02");
    assert_eq!(v.overtime_minutes, 0);
    let v = Case::new(&p)
        .punches(&["2026-11-02 08:30", "2026-11-02 18:00"])
        .day("2026-11-02");
    assert_eq!(v.overtime_minutes, 30);
    assert_eq!(v.points, pts("0"));
    assert_eq!(v.status, Status::Present);
}

#[test]
fn overtime_on_a_rest_day_and_a_holiday_is_the_punched_span() {
    let p = shipped("seed-default");
    let c = Case::new(&p)
        .holiday("2026-11-09", HolidayKind::Holiday)
        .punches(&[
            // Saturday 2026-11-07: 09:00 … 12:30 with a double tap.
            "2026-11-07 09:00",
            "2026-11-07 09:00:20",
            "2026-11-07 12:30",
            // Holiday Monday 2026-11-09: 10:00 … 10:29, under min_minutes.
            "2026-11-09 10:00",
            "2026-11-09 10:29",
        ]);
    let v = c.day("2026-11-07");
    assert_eq!(v.status, Status::Rest);
    assert_eq!(v.overtime_minutes, 210);
    assert_eq!(v.points, pts("0"));
    let v = c.day("2026-11-09");
    assert_eq!(v.status, Status::Holiday);
    assert_eq!(v.overtime_minutes, 0);
}

#[test]
fn overtime_a_friday_checkout_is_not_saturday_overtime() {
    // A check-out at 21:00 on Friday lies in Friday's window: it is
    // Friday's overtime (210 min), never Saturday's.
    let p = shipped("seed-default");
    let c = Case::new(&p).punches(&["2026-11-06 08:30", "2026-11-06 21:00", "2026-11-07 10:00"]);
    assert_eq!(c.day("2026-11-06").overtime_minutes, 210);
    assert_eq!(c.day("2026-11-07").overtime_minutes, 0);
}

#[test]
fn overtime_is_summed_per_month() {
    let p = shipped("seed-default");
    let c = Case::new(&p).punches(&[
        "2026-11-02 08:30",
        "2026-11-02 18:30",
        "2026-11-03 08:30",
        "2026-11-03 17:45",
        "2026-11-07 09:00",
        "2026-11-07 11:00",
    ]);
    let days = c.eval("2026-11-01", "2026-11-30");
    let s = month_scores(&p, &EmployeeId::from("E001"), &days, &[]);
    assert_eq!(s.len(), 1);
    // 60 (Monday) + 0 (Tuesday, 15 < 30) + 120 (Saturday).
    assert_eq!(s[0].overtime_minutes, 180);
    // `attendd month` prints it as the last column.
    let mut out = Vec::new();
    attendd::render::score_header(&p, &mut out).unwrap();
    attendd::render::score_row(&p, &s[0], &mut out);
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert!(
        lines.next().unwrap().trim_end().ends_with("overtime"),
        "{text}"
    );
    assert!(lines.next().unwrap().trim_end().ends_with(" 180"), "{text}");
}

// ---------------------------------------------------------------------------
// Leave rules. 坐席考勤管理制度 三3: "对于因病导致的请假,公司需提供病假证明,超过三天的病假
// 需提供医院的病历证明。" 三4: "员工请假需提前一天以上向直接主管请假". HR decides:
// flags on the covered days, never points.
// ---------------------------------------------------------------------------

#[test]
fn leave_notice_23h59_is_short_24h_is_enough() {
    let p = shipped("seed-default");
    // 提前一天以上 (以上 includes the bound): 23 h 59 min is short notice.
    let v = Case::new(&p)
        .leave_asked(
            "2026-11-03 08:30",
            "2026-11-03 17:30",
            "annual",
            "2026-11-02 08:31",
            "",
        )
        .day("2026-11-03");
    assert_eq!(v.status, Status::OnLeave);
    assert_eq!(flags(&v), ["leave_short_notice"]);
    assert_eq!(v.points, pts("0"));
    // Exactly 24 h is enough.
    let v = Case::new(&p)
        .leave_asked(
            "2026-11-03 08:30",
            "2026-11-03 17:30",
            "annual",
            "2026-11-02 08:30",
            "",
        )
        .day("2026-11-03");
    assert!(flags(&v).is_empty(), "{:?}", v.flags);
    // No requested_at: nothing to judge.
    let v = Case::new(&p)
        .leave_asked("2026-11-03 08:30", "2026-11-03 17:30", "annual", "", "")
        .day("2026-11-03");
    assert!(flags(&v).is_empty());
}

#[test]
fn sick_leave_without_certificate_is_flagged() {
    let p = shipped("seed-default");
    // 公司需提供病假证明: sick leave without any document.
    let v = Case::new(&p)
        .leave_asked("2026-11-02 08:30", "2026-11-02 17:30", "sick", "", "")
        .day("2026-11-02");
    assert_eq!(flags(&v), ["sick_leave_no_certificate"]);
    assert_eq!(v.points, pts("0"));
    let v = Case::new(&p)
        .leave_asked(
            "2026-11-02 08:30",
            "2026-11-02 17:30",
            "sick",
            "",
            "certificate",
        )
        .day("2026-11-02");
    assert!(flags(&v).is_empty());
    // Partial sick leave is flagged beside partial_leave.
    let v = Case::new(&p)
        .leave_asked("2026-11-02 13:30", "2026-11-02 17:30", "sick", "", "")
        .punches(&["2026-11-02 08:30", "2026-11-02 13:30"])
        .day("2026-11-02");
    assert_eq!(flags(&v), ["partial_leave", "sick_leave_no_certificate"]);
}

#[test]
fn sick_leave_3_days_needs_no_hospital_record_4_days_does() {
    let p = shipped("seed-default");
    // 超过三天 (超过 excludes the bound): 3 calendar days, Mon–Wed.
    let c = Case::new(&p).leave_asked(
        "2026-11-02 00:00",
        "2026-11-05 00:00",
        "sick",
        "",
        "certificate",
    );
    for d in ["2026-11-02", "2026-11-04"] {
        assert!(flags(&c.day(d)).is_empty(), "{d}");
    }
    // 4 calendar days, Mon–Thu: every covered day is flagged.
    let c = Case::new(&p).leave_asked(
        "2026-11-02 00:00",
        "2026-11-05 17:30",
        "sick",
        "",
        "certificate",
    );
    for d in ["2026-11-02", "2026-11-05"] {
        let v = c.day(d);
        assert_eq!(flags(&v), ["sick_leave_needs_hospital_record"], "{d}");
        assert_eq!(v.points, pts("0"));
    }
    // With the hospital record, nothing.
    let c = Case::new(&p).leave_asked(
        "2026-11-02 00:00",
        "2026-11-05 17:30",
        "sick",
        "",
        "hospital_record",
    );
    assert!(flags(&c.day("2026-11-05")).is_empty());
}

#[test]
fn leave_rules_are_off_where_the_policy_does_not_say_them() {
    let p = shipped("outbound-call-centre");
    let v = Case::new(&p)
        .leave_asked(
            "2026-11-02 08:30",
            "2026-11-02 17:30",
            "sick",
            "2026-11-02 08:00",
            "",
        )
        .day("2026-11-02");
    assert!(flags(&v).is_empty());
}

#[test]
fn leaves_csv_reads_requested_at_and_document() {
    let p = shipped("seed-default");
    let csv = "employee_id,start,end,kind,status,requested_at,document\n\
               E001,2026-11-03 08:30,2026-11-03 17:30,sick,approved,2026-11-02 09:00,Hospital_Record\n\
               E002,2026-11-03 08:30,2026-11-03 17:30,annual,approved,,\n\
               E003,2026-11-03 08:30,2026-11-03 17:30,annual,approved,yesterday,\n";
    let r = attendd::input::read_leaves(csv.as_bytes(), "leaves.csv", p.tz);
    assert_eq!(r.rows.len(), 2);
    let a = &r.rows[0].1;
    assert_eq!(a.requested_at, Some(at(&p, "2026-11-02 09:00")));
    assert_eq!(a.document, LeaveDocument::Given("hospital_record".into()));
    assert_eq!(r.rows[1].1.requested_at, None);
    assert_eq!(r.rows[1].1.document, LeaveDocument::Missing);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].line, 4);
    assert!(
        r.errors[0].message.contains("requested_at"),
        "{}",
        r.errors[0].message
    );
    // The old five columns still read.
    let r = attendd::input::read_leaves(
        "employee_id,start,end,kind,status\nE1,2026-11-03 08:30,2026-11-03 17:30,sick,approved\n"
            .as_bytes(),
        "leaves.csv",
        p.tz,
    );
    assert_eq!(r.rows.len(), 1);
    assert!(r.errors.is_empty());
    // Without the column the document is unknown: no document flag.
    assert_eq!(r.rows[0].1.document, LeaveDocument::Unknown);
    let v = Case::new(&p)
        .leave(
            "2026-11-02 00:00",
            "2026-11-06 17:30",
            "sick",
            LeaveStatus::Approved,
        )
        .day("2026-11-02");
    assert!(flags(&v).is_empty(), "{:?}", v.flags);
}

// ---------------------------------------------------------------------------
// Shift swap. 坐席员考核细则 二(一)7: "擅自换班扣2分"; 呼出中心 二4: "私自外出、换班、
// 请假的每次每人2分". A flag; a supervisor confirms with a manual entry.
// ---------------------------------------------------------------------------

#[test]
fn punches_fitting_another_shift_are_a_possible_swap() {
    let p = shipped("city-management-24h");
    // Rostered morning 08:00–12:00, worked the afternoon 14:30–18:00.
    let v = Case::new(&p)
        .roster("2026-11-02", "morning")
        .punches(&["2026-11-02 14:25", "2026-11-02 18:05"])
        .day("2026-11-02");
    assert!(flags(&v).contains(&"possible_shift_swap"), "{:?}", v.flags);
    // Nothing deducted for it: the day is graded as the roster says.
    assert!(v.deductions.iter().all(|d| &*d.rule != "shift_swap"));
    // Rostered morning, worked the night 18:00–08:00: no punch in the
    // morning window at all.
    let v = Case::new(&p)
        .roster("2026-11-02", "morning")
        .punches(&["2026-11-02 18:00", "2026-11-03 08:00"])
        .day("2026-11-02");
    assert_eq!(v.status, Status::AbsentFull);
    assert_eq!(flags(&v), ["possible_shift_swap"]);
}

#[test]
fn a_late_arrival_is_not_a_swap() {
    let p = shipped("city-management-24h");
    // Late 5 min on the morning, then stayed on: lateness, not a swap,
    // though 08:05 … 14:30 covers the midday shift 12:00–14:30.
    let v = Case::new(&p)
        .roster("2026-11-02", "morning")
        .punches(&["2026-11-02 08:05", "2026-11-02 14:30"])
        .day("2026-11-02");
    assert_eq!(v.status, Status::Late);
    assert!(flags(&v).is_empty(), "{:?}", v.flags);
    // Within grace on the rostered shift: nothing.
    let v = Case::new(&p)
        .roster("2026-11-02", "afternoon")
        .punches(&["2026-11-02 14:25", "2026-11-02 18:05"])
        .day("2026-11-02");
    assert_eq!(v.status, Status::Present);
    assert!(flags(&v).is_empty());
    // A one-shift policy never flags a swap.
    let p = shipped("seed-default");
    let v = Case::new(&p).day("2026-11-02");
    assert!(flags(&v).is_empty());
}

// ---------------------------------------------------------------------------
// Manual rules that also count as absence. 坐席员考核细则 二(一)1: "无故缺席扣5分
// (同时按旷工计算)". The shipped `training_absence` says absence_days = 0.5.
// ---------------------------------------------------------------------------

#[test]
fn a_manual_rule_with_absence_days_adds_to_the_month() {
    let p = shipped("seed-default");
    assert_eq!(p.rules["training_absence"].absence_days, pts("0.5"));
    let c = Case::new(&p).punches(&["2026-11-02 08:30", "2026-11-02 17:30"]);
    let days = c.eval("2026-11-02", "2026-11-02");
    let item = |rule: &str, points: &str| ManualItem {
        date: date("2026-11-02"),
        rule: rule.into(),
        category: "internal".into(),
        points: pts(points),
        bonus: false,
    };
    let s = &month_scores(
        &p,
        &EmployeeId::from("E001"),
        &days,
        &[item("training_absence", "5")],
    )[0];
    assert_eq!(s.workdays, 1);
    assert_eq!(s.absence_days, pts("0.5"));
    assert_eq!(s.attendance_days, pts("0.5"));
    assert_eq!(s.score, pts("95"));
    // A rule without absence_days changes no absence.
    let s = &month_scores(
        &p,
        &EmployeeId::from("E001"),
        &days,
        &[item("dress_code", "2")],
    )[0];
    assert_eq!(s.absence_days, pts("0"));
    assert_eq!(s.attendance_days, pts("1"));
}

// ---------------------------------------------------------------------------
// check-config: every new key's errors name the key (and its line).
// ---------------------------------------------------------------------------

fn errors_of(extra: &str) -> String {
    let base = std::fs::read_to_string(root().join("config/policies/city-management-24h.toml"))
        .unwrap()
        .replace("[leaving_post]\n", "[leaving_post_disabled]\n");
    // Drop the shipped [leaving_post] table and put the test's own in.
    let mut text = String::new();
    let mut skip = false;
    for l in base.lines() {
        if l.starts_with('[') {
            skip = l.starts_with("[leaving_post_disabled]");
        }
        if !skip {
            text.push_str(l);
            text.push('\n');
        }
    }
    text.push_str(extra);
    match attendd::policy_file::parse_str(&text, "p.toml") {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn check_config_names_each_new_key() {
    let e = errors_of(
        "[leaving_post]\nallowed_breaks = [\"11:00-12:00\", \"lunch\"]\ngrace_minutes = 0\ntrust_direction = true\nsteps = [{ up_to = 30, grade = \"minor\", rule = \"leaving_post\", points = 2 }, { grade = \"half-day\", rule = \"nope\" }]\n",
    );
    assert!(e.contains("key `leaving_post.allowed_breaks[1]`"), "{e}");
    // trust_direction = true is accepted since punches keep their direction.
    assert!(!e.contains("leaving_post.trust_direction"), "{e}");
    assert!(e.contains("key `leaving_post.steps[1].rule`"), "{e}");
    let e = errors_of(
        "[overtime]\nmin_minutes = 0\n[leave]\nnotice_hours = -1\nsick_days_need_hospital_record = 400\n",
    );
    assert!(e.contains("key `overtime.min_minutes`"), "{e}");
    assert!(e.contains("key `leave.notice_hours`"), "{e}");
    assert!(
        e.contains("key `leave.sick_days_need_hospital_record`"),
        "{e}"
    );
    // Lines are named: the [overtime] table is near the end of the file.
    let line = e
        .lines()
        .find(|l| l.contains("overtime.min_minutes"))
        .and_then(|l| l.strip_prefix("p.toml:"))
        .and_then(|l| l.split(':').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(line.is_some_and(|n| n > 100), "{e}");
    // Unknown keys in the new tables are refused.
    let e = errors_of("[overtime]\nmin_minute = 30\n");
    assert!(e.contains("min_minute"), "{e}");
    // absence_days: 0.5 or 1, manual rules only.
    let e =
        errors_of("[rule.x]\ncategory = \"internal\"\nzh = \"x\"\nen = \"x\"\nabsence_days = 2\n");
    assert!(e.contains("key `rule.x.absence_days`"), "{e}");
    let text = std::fs::read_to_string(root().join("config/policies/seed-default.toml"))
        .unwrap()
        .replace("[rule.absent]\n", "[rule.absent]\nabsence_days = 1\n");
    let e = attendd::policy_file::parse_str(&text, "p.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("key `rule.absent.absence_days`"), "{e}");
    assert!(e.contains("absence.no_punch_rule"), "{e}");
}

// ---------------------------------------------------------------------------
// End to end: `attendd evaluate` reads the new leaves.csv columns, shows the
// flags and overtime per day and sums overtime in the month's scores.
// ---------------------------------------------------------------------------

#[test]
fn evaluate_shows_leave_flags_and_overtime() {
    let dir = tempfile::tempdir().unwrap();
    let w = |name: &str, body: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        path.to_str().unwrap().to_string()
    };
    let employees = w(
        "employees.csv",
        "employee_id,name,team,supervisor\nE001,A,t,s\n",
    );
    let punches = w(
        "punches.csv",
        "employee_id,time\nE001,2026-11-02 08:30\nE001,2026-11-02 18:15\nE001,2026-11-07 09:00\nE001,2026-11-07 10:00\n",
    );
    let leaves = w(
        "leaves.csv",
        "employee_id,start,end,kind,status,requested_at,document\n\
         E001,2026-11-03 08:30,2026-11-03 17:30,sick,approved,2026-11-03 07:00,\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_attendd"))
        .args([
            "evaluate",
            "--policy",
            "config/policies/seed-default.toml",
            "--employees",
            &employees,
            "--punches",
            &punches,
            "--leaves",
            &leaves,
            "--from",
            "2026-11-02",
            "--to",
            "2026-11-07",
            "--json",
            "--scores",
        ])
        .current_dir(root())
        .env_remove("ATTENDD_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let day = |d: &str| lines.iter().find(|l| l["date"] == d).unwrap();
    assert_eq!(day("2026-11-02")["overtime_minutes"], 45);
    assert_eq!(day("2026-11-03")["status"], "on_leave");
    assert_eq!(
        day("2026-11-03")["flags"],
        serde_json::json!(["leave_short_notice", "sick_leave_no_certificate"])
    );
    assert_eq!(day("2026-11-07")["overtime_minutes"], 60);
    let score = lines.iter().find(|l| l.get("scores").is_some()).unwrap();
    assert_eq!(score["scores"]["overtime_minutes"], 105);
}
