//! Monthly scores with capped categories, and shifts across daylight-saving
//! changes.

use std::sync::Arc;

use attendd::domain::score::{ManualItem, month_scores};
use attendd::domain::types::{EmployeeId, Status};
use chrono::{Datelike, Weekday};

use crate::common::{Case, date, inline, pts, root, shipped};

/// Punches for every weekday of November 2026 except `skip`.
fn november(skip: &[u32], late: &[u32]) -> Vec<String> {
    let mut t = Vec::new();
    for d in 1..=30 {
        let day = date(&format!("2026-11-{d:02}"));
        if matches!(day.weekday(), Weekday::Sat | Weekday::Sun) || skip.contains(&d) {
            continue;
        }
        let start = if late.contains(&d) { "08:50" } else { "08:30" };
        t.push(format!("2026-11-{d:02} {start}"));
        t.push(format!("2026-11-{d:02} 17:30"));
    }
    t
}

#[test]
fn seed_default_discipline_is_capped_at_20() {
    let p = shipped("seed-default");
    let t = november(&[3, 10, 17], &[]);
    let refs: Vec<&str> = t.iter().map(String::as_str).collect();
    let days = Case::new(&p)
        .punches(&refs)
        .eval("2026-11-01", "2026-11-30");
    let id = EmployeeId::from("E001");
    let s = month_scores(&p, &id, &days, &[]);
    assert_eq!(s.len(), 1);
    let s = &s[0];
    assert_eq!(s.month, "2026-11");
    let d = &s.categories["discipline"];
    assert_eq!(
        (d.raw, d.capped, d.cap),
        (pts("30"), pts("20"), Some(pts("20")))
    );
    assert_eq!(s.score, pts("80"));
    assert_eq!(s.workdays, 21);
    assert_eq!(s.attendance_days, pts("18"));
    // The JSON shape of interfaces.md.
    let j = serde_json::to_value(s).unwrap();
    assert_eq!(j["categories"]["discipline"]["raw"], 30);
    assert_eq!(j["categories"]["discipline"]["capped"], 20);
    assert_eq!(j["attendance_days"], 18);
}

#[test]
fn manual_items_count_in_their_category_and_bonuses_add() {
    let p = shipped("hengshui-acceptance");
    let t = november(&[], &[2, 3]);
    let refs: Vec<&str> = t.iter().map(String::as_str).collect();
    let days = Case::new(&p)
        .punches(&refs)
        .eval("2026-11-01", "2026-11-30");
    let id = EmployeeId::from("E001");
    let manual = vec![
        ManualItem {
            date: date("2026-11-05"),
            rule: Arc::from("case_error"),
            category: Arc::from("assessment"),
            points: pts("0.5"),
            bonus: false,
        },
        ManualItem {
            date: date("2026-11-20"),
            rule: Arc::from("top_rated"),
            category: Arc::from("reward"),
            points: pts("3"),
            bonus: true,
        },
    ];
    let s = &month_scores(&p, &id, &days, &manual)[0];
    assert_eq!(s.categories["assessment"].raw, pts("2.5"));
    assert_eq!(s.bonuses, pts("3"));
    assert_eq!(s.score, pts("100.5"));
}

#[test]
fn outbound_attendance_category_capped_at_8() {
    let p = shipped("outbound-call-centre");
    let t = november(&[], &[2, 3, 4, 5, 6]);
    let refs: Vec<&str> = t.iter().map(String::as_str).collect();
    let days = Case::new(&p)
        .punches(&refs)
        .eval("2026-11-01", "2026-11-30");
    let s = &month_scores(&p, &EmployeeId::from("E001"), &days, &[])[0];
    let a = &s.categories["attendance"];
    assert_eq!((a.raw, a.capped), (pts("10"), pts("8")));
    assert_eq!(s.score, pts("92"));
}

#[test]
fn scores_split_by_month() {
    let p = shipped("seed-default");
    let days = Case::new(&p).eval("2026-10-30", "2026-11-02");
    let s = month_scores(&p, &EmployeeId::from("E001"), &days, &[]);
    let months: Vec<&str> = s.iter().map(|m| m.month.as_str()).collect();
    assert_eq!(months, vec!["2026-10", "2026-11"]);
    assert_eq!(s[0].categories["discipline"].raw, pts("10"));
    assert_eq!(s[1].categories["discipline"].raw, pts("10"));
}

/// seed-default moved to Berlin, every day a workday, plus a night shift.
fn berlin() -> attendd::domain::policy::Policy {
    let text = std::fs::read_to_string(root().join("config/policies/seed-default.toml")).unwrap();
    let text = text
        .replace(
            "timezone = \"Asia/Shanghai\"",
            "timezone = \"Europe/Berlin\"",
        )
        .replace(
            "workdays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\"]",
            "workdays = [\"mon\", \"tue\", \"wed\", \"thu\", \"fri\", \"sat\", \"sun\"]",
        );
    inline(&format!(
        "{text}\n[[shift]]\nid = \"night\"\nstart = \"22:00\"\nend = \"06:00\"\novernight = true\n\n[[shift]]\nid = \"early\"\nstart = \"02:30\"\nend = \"10:30\"\n"
    ))
}

#[test]
fn night_shift_across_autumn_change_is_nine_hours() {
    // 2026-10-25 03:00 CEST becomes 02:00 CET: 22:00 → 06:00 lasts 9 hours.
    let p = berlin();
    let v = Case::new(&p)
        .roster("2026-10-24", "night")
        .punches(&["2026-10-24 21:59", "2026-10-25 05:50"])
        .day("2026-10-24");
    assert_eq!(
        v.explanation.shift_start.unwrap().to_rfc3339(),
        "2026-10-24T22:00:00+02:00"
    );
    assert_eq!(
        v.explanation.shift_end.unwrap().to_rfc3339(),
        "2026-10-25T06:00:00+01:00"
    );
    assert_eq!(
        v.check_out.unwrap().to_rfc3339(),
        "2026-10-25T05:50:00+01:00"
    );
    assert_eq!((v.status, v.early_minutes), (Status::Present, 10));
    let v = Case::new(&p)
        .roster("2026-10-24", "night")
        .punches(&["2026-10-24 21:59", "2026-10-25 05:40"])
        .day("2026-10-24");
    assert_eq!((v.status, v.early_minutes), (Status::EarlyLeave, 20));
}

#[test]
fn night_shift_across_spring_change_is_seven_hours() {
    // 2026-03-29 02:00 CET becomes 03:00 CEST: 22:00 → 06:00 lasts 7 hours.
    let p = berlin();
    let v = Case::new(&p)
        .roster("2026-03-28", "night")
        .punches(&["2026-03-28 22:10", "2026-03-29 05:50"])
        .day("2026-03-28");
    assert_eq!(
        v.explanation.shift_end.unwrap().to_rfc3339(),
        "2026-03-29T06:00:00+02:00"
    );
    assert_eq!(
        (v.late_minutes, v.early_minutes, v.status),
        (10, 10, Status::Present)
    );
}

#[test]
fn shift_starting_in_the_spring_gap_starts_after_it() {
    // 02:30 does not exist on 2026-03-29 in Berlin; the shift starts at 03:30 CEST.
    let p = berlin();
    let v = Case::new(&p)
        .roster("2026-03-29", "early")
        .punches(&["2026-03-29 03:40", "2026-03-29 10:30"])
        .day("2026-03-29");
    assert_eq!(
        v.explanation.shift_start.unwrap().to_rfc3339(),
        "2026-03-29T03:30:00+02:00"
    );
    assert_eq!((v.late_minutes, v.status), (10, Status::Present));
}
