//! The month grid behind `GET /api/v1/months/{month}/grid`: employees ×
//! days, one status per cell, the calendar's weekends and holidays, and
//! each person's month totals — the paper attendance sheet HR prints
//! (考勤表), read by the dashboard.
//!
//! Building it is pure: the handler in [`super::api`] reads the month's
//! scores, stored verdicts and holiday calendar and hands them here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::domain::Points;
use crate::domain::policy::Policy;
use crate::domain::score::MonthScore;
use crate::domain::types::{HolidayKind, Holidays};
use crate::store::{EmployeeRecord, HolidayRecord, StoredVerdict};

/// One calendar day of the month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GridDate {
    /// The date.
    pub date: NaiveDate,
    /// ISO weekday, Monday 1 … Sunday 7.
    pub weekday: u32,
    /// `workday`, `weekend`, `holiday` or `make_up_workday` (调休), from the
    /// policy's weekly workdays and the holiday calendar (policy and
    /// imported), as [`crate::domain::calendar::shift_on`] reads them.
    pub kind: &'static str,
}

/// One employee-day: what the stored verdict says, in brief.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GridCell {
    /// Status name (`interfaces.md`).
    pub status: String,
    /// True while the day's punch window is open.
    pub provisional: bool,
    /// Flag ids HR should look at.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Whole minutes late.
    #[serde(skip_serializing_if = "is_zero")]
    pub late_minutes: i64,
    /// Whole minutes early.
    #[serde(skip_serializing_if = "is_zero")]
    pub early_minutes: i64,
    /// Overtime minutes (坐席考勤管理制度 七).
    #[serde(skip_serializing_if = "is_zero")]
    pub overtime_minutes: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A person's month on the sheet's right-hand side.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GridTotals {
    /// Days per status.
    pub by_status: BTreeMap<String, u32>,
    /// Days with a shift.
    pub workdays: u32,
    /// Workdays − absence − leave.
    pub attendance_days: Points,
    /// Absence days.
    pub absence_days: Points,
    /// Leave days.
    pub leave_days: Points,
    /// Overtime minutes.
    pub overtime_minutes: i64,
    /// Days with at least one flag.
    pub flagged_days: u32,
    /// The month's 100-point score (from the ledger's active entries).
    pub score: Points,
}

/// One row: an employee, a cell per date (`null` where no verdict is
/// stored) and the totals.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GridRow {
    /// Employee id.
    pub employee_id: String,
    /// Name.
    pub name: String,
    /// Team.
    pub team: String,
    /// One per date of the month ([`dates`]), in order.
    pub days: Vec<Option<GridCell>>,
    /// The month's totals.
    pub totals: GridTotals,
}

/// The fields of a stored verdict a cell needs.
#[derive(Deserialize)]
struct CellFields {
    date: NaiveDate,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    late_minutes: i64,
    #[serde(default)]
    early_minutes: i64,
    #[serde(default)]
    overtime_minutes: i64,
}

/// The grid's dates: every day from `from` to `to`.
pub fn dates(
    policy: &Policy,
    holidays: &Holidays,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<GridDate> {
    from.iter_days()
        .take_while(|d| *d <= to)
        .map(|date| GridDate {
            date,
            weekday: date.weekday().number_from_monday(),
            kind: match holidays.get(&date) {
                Some(HolidayKind::Holiday) => "holiday",
                Some(HolidayKind::Workday) => "make_up_workday",
                None if policy.is_weekly_workday(date.weekday()) => "workday",
                None => "weekend",
            },
        })
        .collect()
}

/// The policy's holidays with the imported calendar over them; a stored
/// row of another kind is skipped (the recompute refuses it loudly).
pub fn calendar(policy: &Policy, imported: &[HolidayRecord]) -> Holidays {
    let mut h = policy.holidays.clone();
    for r in imported {
        match r.kind.as_str() {
            "holiday" => h.insert(r.date, HolidayKind::Holiday),
            "workday" => h.insert(r.date, HolidayKind::Workday),
            _ => None,
        };
    }
    h
}

/// Rows for `employees` (with their `scores`, same order) over `dates`,
/// from the stored `verdicts` (any employees; others are skipped). A
/// verdict whose JSON does not parse is an error naming its key.
pub fn rows(
    employees: &[&EmployeeRecord],
    scores: &HashMap<&str, &MonthScore>,
    dates: &[GridDate],
    verdicts: &[StoredVerdict],
) -> Result<Vec<GridRow>, String> {
    let index: HashMap<&str, usize> = employees
        .iter()
        .enumerate()
        .map(|(i, e)| (e.employee_id.as_str(), i))
        .collect();
    let day_index: HashMap<NaiveDate, usize> =
        dates.iter().enumerate().map(|(i, d)| (d.date, i)).collect();
    let mut out: Vec<GridRow> = employees
        .iter()
        .map(|e| {
            let s = scores.get(e.employee_id.as_str());
            GridRow {
                employee_id: e.employee_id.clone(),
                name: e.name.clone(),
                team: e.team.clone(),
                days: vec![None; dates.len()],
                totals: GridTotals {
                    by_status: BTreeMap::new(),
                    workdays: s.map_or(0, |s| s.workdays),
                    attendance_days: s.map_or(Points::ZERO, |s| s.attendance_days),
                    absence_days: s.map_or(Points::ZERO, |s| s.absence_days),
                    leave_days: s.map_or(Points::ZERO, |s| s.leave_days),
                    overtime_minutes: s.map_or(0, |s| s.overtime_minutes),
                    flagged_days: 0,
                    score: s.map_or(Points::ZERO, |s| s.score),
                },
            }
        })
        .collect();
    for v in verdicts {
        let (Some(&row), Some(&col)) = (index.get(v.employee_id.as_str()), day_index.get(&v.date))
        else {
            continue;
        };
        let f: CellFields = serde_json::from_str(&v.verdict).map_err(|e| {
            format!(
                "day_verdicts/{}/{}: stored verdict does not parse: {e}",
                v.employee_id, v.date
            )
        })?;
        if f.date != v.date {
            return Err(format!(
                "day_verdicts/{}/{}: stored verdict is for {}",
                v.employee_id, v.date, f.date
            ));
        }
        let r = &mut out[row];
        *r.totals.by_status.entry(v.status.clone()).or_default() += 1;
        if !f.flags.is_empty() {
            r.totals.flagged_days += 1;
        }
        r.days[col] = Some(GridCell {
            status: v.status.clone(),
            provisional: v.provisional,
            flags: f.flags,
            late_minutes: f.late_minutes,
            early_minutes: f.early_minutes,
            overtime_minutes: f.overtime_minutes,
        });
    }
    Ok(out)
}

/// The teams among `employees`, sorted, for the page's team filter.
pub fn teams<'a>(employees: impl Iterator<Item = &'a EmployeeRecord>) -> Vec<String> {
    employees
        .map(|e| e.team.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        crate::policy_file::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/policies/seed-default.toml"
        )))
        .unwrap()
    }

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 10, day).unwrap()
    }

    #[test]
    fn dates_shade_weekends_holidays_and_make_up_days() {
        let p = policy();
        let h = calendar(
            &p,
            &[
                HolidayRecord {
                    date: d(1),
                    kind: "holiday".into(),
                },
                HolidayRecord {
                    date: d(11),
                    kind: "workday".into(),
                },
                HolidayRecord {
                    date: d(12),
                    kind: "bogus".into(),
                },
            ],
        );
        let ds = dates(&p, &h, d(1), d(31));
        assert_eq!(ds.len(), 31);
        assert_eq!(ds[0].kind, "holiday");
        assert_eq!(ds[0].weekday, 4, "2026-10-01 is a Thursday");
        assert_eq!(ds[2].kind, "weekend", "Saturday");
        assert_eq!(ds[10].kind, "make_up_workday", "Sunday 11th works");
        assert_eq!(ds[11].kind, "workday", "an unknown kind is ignored");
    }

    #[test]
    fn rows_place_cells_by_date_and_count_statuses() {
        let p = policy();
        let ds = dates(&p, &Holidays::new(), d(1), d(31));
        let e = EmployeeRecord {
            employee_id: "E1".into(),
            name: "Ann".into(),
            team: "A".into(),
            supervisor: String::new(),
            shift: None,
            aliases: Vec::new(),
            start_date: None,
            end_date: None,
        };
        let sv = |id: &str, day: u32, status: &str, json: &str| StoredVerdict {
            employee_id: id.into(),
            date: d(day),
            policy_id: "p".into(),
            policy_version: "1".into(),
            status: status.into(),
            points: 0,
            verdict: json.into(),
            provisional: false,
            updated_at: chrono::Utc::now(),
        };
        let vs = [
            sv(
                "E1",
                2,
                "late",
                r#"{"date":"2026-10-02","late_minutes":12,"flags":["missing_check_out"]}"#,
            ),
            sv("E1", 5, "present", r#"{"date":"2026-10-05"}"#),
            sv("E9", 5, "present", "not json: another employee is skipped"),
        ];
        let r = rows(&[&e], &HashMap::new(), &ds, &vs).unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].days[0].is_none());
        let c = r[0].days[1].as_ref().unwrap();
        assert_eq!((c.status.as_str(), c.late_minutes), ("late", 12));
        assert_eq!(c.flags, ["missing_check_out"]);
        assert_eq!(r[0].totals.by_status["present"], 1);
        assert_eq!(r[0].totals.flagged_days, 1);
        let j = serde_json::to_value(&r[0].days[4]).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"status": "present", "provisional": false})
        );

        let bad = [sv("E1", 3, "late", "{")];
        let err = rows(&[&e], &HashMap::new(), &ds, &bad).unwrap_err();
        assert!(err.contains("day_verdicts/E1/2026-10-03"), "{err}");
    }
}
