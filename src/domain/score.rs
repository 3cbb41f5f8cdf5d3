//! Monthly scores (坐席员考核细则 一(三)(五)): 100 points a month,
//! deductions counted per category and each category capped ("以每一项考核
//! 所占分值为限，扣完为止"), bonuses added.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::points::Points;
use super::policy::Policy;
use super::types::{DayVerdict, EmployeeId};

/// A manual ledger entry (a supervisor's deduction or a bonus) that counts
/// toward the monthly score beside the device-derived deductions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualItem {
    /// The day it concerns.
    pub date: NaiveDate,
    /// Rule id from the catalogue.
    pub rule: Arc<str>,
    /// Category it counts in.
    pub category: Arc<str>,
    /// Points, always positive.
    pub points: Points,
    /// True for a bonus (added to the score), false for a deduction.
    pub bonus: bool,
}

/// One category's deductions in a month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryScore {
    /// Sum of the category's deductions.
    pub raw: Points,
    /// `min(raw, cap)`.
    pub capped: Points,
    /// The category cap, null when uncapped.
    pub cap: Option<Points>,
}

/// One employee's score for one month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthScore {
    /// Who.
    pub employee_id: EmployeeId,
    /// `YYYY-MM`.
    pub month: String,
    /// base − Σ capped + bonuses.
    pub score: Points,
    /// Per category, every category of the policy.
    pub categories: BTreeMap<Arc<str>, CategoryScore>,
    /// Sum of bonuses.
    pub bonuses: Points,
    /// Workdays − absence days − leave days (坐席员考核细则: the
    /// workload baseline divides by it).
    pub attendance_days: Points,
    /// Days with a shift.
    pub workdays: u32,
    /// Sum of absence days.
    pub absence_days: Points,
    /// Sum of leave days.
    pub leave_days: Points,
    /// Sum of overtime minutes (坐席考勤管理制度 七: 加班记录).
    #[serde(default)]
    pub overtime_minutes: i64,
}

/// Scores for every month touched by `days` (one employee's verdicts, any
/// order) plus `manual` entries of the same employee.
pub fn month_scores(
    policy: &Policy,
    employee: &EmployeeId,
    days: &[DayVerdict],
    manual: &[ManualItem],
) -> Vec<MonthScore> {
    let mut months: BTreeMap<(i32, u32), MonthScore> = BTreeMap::new();
    let blank = |y: i32, m: u32| MonthScore {
        employee_id: employee.clone(),
        month: format!("{y:04}-{m:02}"),
        score: policy.score_base,
        categories: policy
            .categories
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    CategoryScore {
                        raw: Points::ZERO,
                        capped: Points::ZERO,
                        cap: c.cap,
                    },
                )
            })
            .collect(),
        bonuses: Points::ZERO,
        attendance_days: Points::ZERO,
        workdays: 0,
        absence_days: Points::ZERO,
        leave_days: Points::ZERO,
        overtime_minutes: 0,
    };
    let add = |ms: &mut MonthScore, category: &Arc<str>, points: Points| {
        ms.categories
            .entry(category.clone())
            .or_insert(CategoryScore {
                raw: Points::ZERO,
                capped: Points::ZERO,
                cap: None,
            })
            .raw += points;
    };
    for v in days {
        let (y, m) = (v.date.year(), v.date.month());
        let ms = months.entry((y, m)).or_insert_with(|| blank(y, m));
        if v.status.is_workday() {
            ms.workdays += 1;
        }
        ms.absence_days += v.absence_days;
        ms.leave_days += v.leave_days;
        ms.overtime_minutes += v.overtime_minutes;
        for d in &v.deductions {
            add(ms, &d.category, d.points);
        }
    }
    for item in manual {
        let (y, m) = (item.date.year(), item.date.month());
        let ms = months.entry((y, m)).or_insert_with(|| blank(y, m));
        if item.bonus {
            ms.bonuses += item.points;
        } else {
            add(ms, &item.category, item.points);
        }
        // 坐席员考核细则 二(一)1–2: 无故缺席 … 同时按旷工计算 — a rule with
        // `absence_days` also counts as absence.
        if let Some(rule) = policy.rules.get(&*item.rule) {
            ms.absence_days += rule.absence_days;
        }
    }
    months
        .into_values()
        .map(|mut ms| {
            let mut lost = Points::ZERO;
            for c in ms.categories.values_mut() {
                c.capped = match c.cap {
                    Some(cap) => c.raw.min(cap),
                    None => c.raw,
                };
                lost += c.capped;
            }
            ms.score = policy.score_base - lost + ms.bonuses;
            ms.attendance_days =
                (Points::whole(ms.workdays as i64) - ms.absence_days - ms.leave_days)
                    .max(Points::ZERO);
            ms
        })
        .collect()
}
