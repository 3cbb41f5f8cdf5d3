//! The escalation ladder for repeat lateness and early leave
//! (坐席考勤管理制度 五2).
//!
//! Counted per employee per calendar month, separately for late and for
//! early leave. Only a side graded [`Grade::Minor`] (late 16–30 minutes in
//! seed-default) is an occurrence: a side converted to absence is punished
//! as absence instead (policy.md, "Escalation ladder"). A run of consecutive
//! workdays is broken by a workday without an occurrence of that kind
//! (including a day of leave); rest days and holidays are not workdays and
//! neither extend nor break it. Runs, like counts, start afresh each month.

use std::sync::Arc;

use chrono::Datelike;

use super::policy::Ladder;
use super::types::{DayVerdict, Grade, LadderHit};

const KINDS: [&str; 2] = ["late", "early_leave"];

/// Adds ladder hits and actions to `days`, which must be one employee's
/// verdicts sorted by date.
pub fn apply_ladder(ladder: &Ladder, days: &mut [DayVerdict]) {
    let kinds: [Arc<str>; 2] = [Arc::from(KINDS[0]), Arc::from(KINDS[1])];
    let mut month = None;
    let mut counts = [0u32; 2];
    let mut runs = [0u32; 2];
    for v in days.iter_mut() {
        let m = (v.date.year(), v.date.month());
        if month != Some(m) {
            month = Some(m);
            counts = [0; 2];
            runs = [0; 2];
        }
        if !v.status.is_workday() {
            continue;
        }
        for k in 0..2 {
            let side = if k == 0 {
                v.explanation.late.as_ref()
            } else {
                v.explanation.early.as_ref()
            };
            // A day that worked too few hours is punished as absence.
            if side.is_none_or(|s| s.grade != Grade::Minor) || v.explanation.short_hours.is_some() {
                runs[k] = 0;
                continue;
            }
            counts[k] += 1;
            runs[k] += 1;
            let step = (counts[k] as usize).min(ladder.steps.len());
            let mut actions: Vec<Arc<str>> = if step == 0 {
                Vec::new()
            } else {
                ladder.steps[step - 1].clone()
            };
            // 连续三次以上: "3 or more", 以上 includes the number.
            if ladder.consecutive > 0 && runs[k] >= ladder.consecutive {
                actions.extend(ladder.consecutive_actions.iter().cloned());
            }
            for a in &actions {
                if !v.actions.contains(a) {
                    v.actions.push(a.clone());
                }
            }
            v.explanation.ladder.push(LadderHit {
                kind: kinds[k].clone(),
                occurrence: counts[k],
                consecutive: runs[k],
                actions,
            });
        }
    }
}
