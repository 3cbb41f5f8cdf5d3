//! Year results (坐席员考核细则 一(九): "年终考核以月度考核为基础"; 一(十):
//! "连续两年考核不及格者予以辞退"): `attendd year`, `GET
//! /api/v1/years/{YYYY}` and `attendd export --year`.
//!
//! The year score is the mean of the year's monthly scores, counting only
//! months with at least one workday, rounded to two decimals (half away
//! from zero). Below the policy's `pass_mark` the year is `failed`; failed
//! this year and the year before is flagged `failed_two_consecutive_years`
//! for HR. attendd never decides the dismissal itself.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;

use super::{HrError, invalid, month_scores_data};
use crate::domain::Points;
use crate::policy_file::{Policies, PolicySet};
use crate::store::Store;

/// The flag for a failed year following a failed year.
pub const FAILED_TWO_CONSECUTIVE_YEARS: &str = "failed_two_consecutive_years";

/// One month that counts toward a year score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct YearMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// The monthly score.
    pub score: Points,
    /// Workdays of that month (at least one).
    pub workdays: u32,
}

/// One employee's year.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct YearResult {
    /// Employee.
    pub employee_id: String,
    /// Name.
    pub name: String,
    /// Team.
    pub team: String,
    /// The months with at least one workday, in order.
    pub months: Vec<YearMonth>,
    /// Mean of `months`' scores to two decimals; `null` without any.
    pub score: Option<Points>,
    /// `score` below the policy's `pass_mark`.
    pub failed: bool,
    /// `failed_two_consecutive_years` when this year and the one before
    /// are both failed.
    pub flags: Vec<String>,
    /// The policy group the employee follows at the year's end (`default`
    /// for the default policy), whose `pass_mark` applies (policy.md,
    /// "Several rule sets on one site").
    pub policy: String,
}

/// Mean of monthly scores to two decimals, half away from zero; `None`
/// for no months.
pub fn year_score(months: &[Points]) -> Option<Points> {
    if months.is_empty() {
        return None;
    }
    let n = months.len() as i64;
    let sum: i64 = months.iter().map(|p| p.hundredths()).sum();
    let half = n / 2;
    let mean = if sum >= 0 {
        (sum + half) / n
    } else {
        (sum - half) / n
    };
    Some(Points::from_hundredths(mean))
}

/// Checks a year given on the command line or in a path.
pub fn parse_year(s: &str) -> Result<i32, HrError> {
    match s.parse::<i32>() {
        Ok(y) if (2000..=2100).contains(&y) && s.len() == 4 => Ok(y),
        _ => Err(invalid(
            "year",
            format!("{s:?} is not a year YYYY from 2000 to 2100"),
        )),
    }
}

/// Monthly scores of every stored employee for the months of `year` that
/// have at least one workday, by employee id.
async fn scored_months(
    store: &Store,
    policy: &Policies,
    year: i32,
) -> Result<BTreeMap<String, Vec<YearMonth>>, HrError> {
    let mut out: BTreeMap<String, Vec<YearMonth>> = BTreeMap::new();
    for m in 1..=12 {
        let Some(first) = NaiveDate::from_ymd_opt(year, m, 1) else {
            continue;
        };
        let data = month_scores_data(store, policy, first, |_| true).await?;
        for s in data.scores {
            let e = out.entry(s.employee_id.to_string()).or_default();
            if s.workdays >= 1 {
                e.push(YearMonth {
                    month: s.month.clone(),
                    score: s.score,
                    workdays: s.workdays,
                });
            }
        }
    }
    Ok(out)
}

/// Year results for every stored employee, by employee id.
pub async fn year_results(
    store: &Store,
    policy: &(impl PolicySet + ?Sized),
    year: i32,
) -> Result<Vec<YearResult>, HrError> {
    if !(2000..=2100).contains(&year) {
        return Err(invalid("year", format!("{year} is outside 2000 … 2100")));
    }
    let policy = &*policy.as_policies();
    let history = store.policy_history().await?;
    let year_end = NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or_default();
    let this = scored_months(store, policy, year).await?;
    let before = if year > 2000 {
        scored_months(store, policy, year - 1).await?
    } else {
        BTreeMap::new()
    };
    let failed = |months: &[YearMonth], pass: Points| {
        let scores: Vec<Points> = months.iter().map(|m| m.score).collect();
        let score = year_score(&scores);
        (score, score.is_some_and(|s| s < pass))
    };
    let mut out = Vec::new();
    for e in store.employees().await? {
        let g = history.index_at(policy, &e.employee_id, year_end);
        let pass = policy.get(g).hr.pass_mark;
        let months = this.get(&e.employee_id).cloned().unwrap_or_default();
        let (score, failed_now) = failed(&months, pass);
        let failed_before = before
            .get(&e.employee_id)
            .is_some_and(|m| failed(m, pass).1);
        let mut flags = Vec::new();
        if failed_now && failed_before {
            flags.push(FAILED_TWO_CONSECUTIVE_YEARS.to_string());
        }
        out.push(YearResult {
            employee_id: e.employee_id,
            name: e.name,
            team: e.team,
            months,
            score,
            failed: failed_now,
            flags,
            policy: policy.label(g).to_string(),
        });
    }
    out.sort_by(|a, b| a.employee_id.cmp(&b.employee_id));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(h: i64) -> Points {
        Points::from_hundredths(h)
    }

    #[test]
    fn mean_to_two_decimals_half_away_from_zero() {
        // (100 + 90 + 85) / 3 = 91.666… → 91.67
        assert_eq!(year_score(&[p(10000), p(9000), p(8500)]), Some(p(9167)));
        // (60 + 59.99) / 2 = 59.995 → 60.00
        assert_eq!(year_score(&[p(6000), p(5999)]), Some(p(6000)));
        // (60 + 59.98) / 2 = 59.99
        assert_eq!(year_score(&[p(6000), p(5998)]), Some(p(5999)));
        assert_eq!(year_score(&[]), None);
    }

    #[test]
    fn years_outside_the_range_are_refused() {
        assert!(parse_year("1999").is_err());
        assert!(parse_year("2101").is_err());
        assert!(parse_year("26").is_err());
        assert_eq!(parse_year("2026").unwrap(), 2026);
    }
}
