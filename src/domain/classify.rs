//! Classifying employee-days: punches, shifts and leave in, verdicts out.
//!
//! This is `spec/policy.md`, "Classifying one employee-day", step by step.
//! Each step's doc comment names the seed rule it encodes.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};

use super::calendar::{DayKind, ShiftClock, ShiftTimes, shift_on};
use super::ladder::apply_ladder;
use super::points::Points;
use super::policy::{Grading, MissingPunch, Policy};
use super::time::to_local;
use super::types::*;

/// Everything the engine needs to know about one employee.
#[derive(Clone, Copy, Debug)]
pub struct EmployeeDays<'a> {
    /// Who.
    pub employee: &'a EmployeeId,
    /// The employee's own default shift, if employees.csv names one.
    pub default_shift: Option<ShiftIdx>,
    /// The employee's punches, in any order, repeats included.
    pub punches: &'a [Punch],
    /// Roster rows by date.
    pub roster: Option<&'a Roster>,
    /// Leave and field-work records, in any state.
    pub leaves: &'a [Leave],
}

/// A shift instance of one employee with its punch window.
#[derive(Clone, Copy, Debug)]
struct Instance {
    date: NaiveDate,
    shift: ShiftIdx,
    times: ShiftTimes,
    win_start: DateTime<Utc>,
    win_end: DateTime<Utc>,
}

/// A punch after repeats were merged.
#[derive(Clone, Debug)]
struct Kept<'a> {
    at: DateTime<Utc>,
    device: Option<&'a Arc<str>>,
    merged: u32,
}

/// Evaluates every date in `[from, to]` for one employee.
///
/// Dates from the first of `from`'s month are classified too (and
/// discarded) because the escalation ladder counts occurrences per calendar
/// month (坐席考勤管理制度 五2). The result is sorted by date.
pub fn evaluate_employee(
    clock: &ShiftClock<'_>,
    holidays: &Holidays,
    emp: &EmployeeDays<'_>,
    from: NaiveDate,
    to: NaiveDate,
) -> Vec<DayVerdict> {
    let policy = clock.policy();
    if to < from {
        return Vec::new();
    }
    let eval_from = from.with_day(1).unwrap_or(from);

    let kept = merge_repeats(policy, emp.punches);

    // Shift instances over the range plus enough margin that a neighbour's
    // window can reach into it.
    let margin = ((policy.window_before_secs + policy.window_after_secs) / 86_400 + 2) as u64;
    let first = eval_from - Days::new(margin);
    let last = to + Days::new(margin);
    let mut kinds: Vec<(NaiveDate, Option<ShiftIdx>, DayKind)> =
        Vec::with_capacity((last - first).num_days() as usize + 1);
    let mut instances: Vec<Instance> = Vec::new();
    let mut d = first;
    while d <= last {
        let (shift, kind) = shift_on(policy, holidays, emp.roster, emp.default_shift, d);
        kinds.push((d, shift, kind));
        if let Some(s) = shift {
            let times = clock.times(d, s);
            instances.push(Instance {
                date: d,
                shift: s,
                times,
                win_start: times.start - chrono::Duration::seconds(policy.window_before_secs),
                win_end: times.end + chrono::Duration::seconds(policy.window_after_secs),
            });
        }
        d = d + Days::new(1);
    }
    split_windows(&mut instances);

    let mut out = Vec::with_capacity((to - eval_from).num_days() as usize + 1);
    let mut next_instance = 0;
    for &(date, shift, kind) in &kinds {
        if date < eval_from || date > to {
            continue;
        }
        let verdict = match shift {
            None => rest_day(policy, emp.employee, date, kind),
            Some(_) => {
                while instances[next_instance].date < date {
                    next_instance += 1;
                }
                classify_instance(policy, emp, &kept, &instances[next_instance], kind)
            }
        };
        out.push(verdict);
    }
    if let Some(ladder) = &policy.ladder {
        apply_ladder(ladder, &mut out);
    }
    out.retain(|v| v.date >= from);
    out
}

/// 坐席考勤管理制度 四1 (face recognition) and `dedupe_seconds`: punches of
/// the same employee within the window of the previous kept punch are one
/// punch (a terminal re-sending, a reader repeating, a person trying twice).
fn merge_repeats<'a>(policy: &Policy, punches: &'a [Punch]) -> Vec<Kept<'a>> {
    let mut refs: Vec<&Punch> = punches.iter().collect();
    if !refs.is_sorted() {
        refs.sort_unstable();
    }
    let mut kept: Vec<Kept<'a>> = Vec::with_capacity(refs.len());
    for p in refs {
        if let Some(last) = kept.last_mut()
            && (p.at - last.at).num_seconds() <= policy.dedupe_secs
        {
            last.merged += 1;
            continue;
        }
        kept.push(Kept {
            at: p.at,
            device: p.device.as_ref(),
            merged: 0,
        });
    }
    kept
}

/// Punch windows of consecutive shifts never overlap: where they would, the
/// gap between the earlier shift's end and the later one's start is split
/// in half (policy.md, "Punch window").
fn split_windows(instances: &mut [Instance]) {
    for i in 1..instances.len() {
        let (a, b) = instances.split_at_mut(i);
        let prev = &mut a[i - 1];
        let cur = &mut b[0];
        if prev.win_end > cur.win_start {
            let gap = cur.times.start - prev.times.end;
            let split = prev.times.end + gap / 2;
            prev.win_end = split;
            cur.win_start = split;
        }
    }
}

fn rest_day(policy: &Policy, employee: &EmployeeId, date: NaiveDate, kind: DayKind) -> DayVerdict {
    let _ = policy;
    DayVerdict {
        employee_id: employee.clone(),
        date,
        shift: None,
        status: if kind == DayKind::Holiday {
            Status::Holiday
        } else {
            Status::Rest
        },
        check_in: None,
        check_out: None,
        late_minutes: 0,
        early_minutes: 0,
        absence_days: Points::ZERO,
        leave_days: Points::ZERO,
        points: Points::ZERO,
        actions: Vec::new(),
        deductions: Vec::new(),
        flags: Vec::new(),
        explanation: Explanation {
            day_kind: kind.as_str().to_string(),
            ..Explanation::default()
        },
    }
}

/// Whole minutes from `a` to `b`, rounded down, never negative
/// (policy.md: 08:45:59 is 15 minutes late).
fn whole_minutes(a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    (b - a).num_seconds().div_euclid(60).max(0)
}

/// 坐席考勤管理制度 五1 (grace of 15 minutes) and 坐席员考核细则 二(二)1
/// (≤ 30 min: 1 point; > 30 min: half-day absence; > 3 h: whole day).
fn grade_side(grading: &Grading, minutes: i64) -> SideGrade {
    match grading.step_for(minutes) {
        None => SideGrade {
            minutes,
            grade: Grade::OnTime,
            rule: None,
            points: Points::ZERO,
        },
        Some(step) => SideGrade {
            minutes,
            grade: step.grade,
            rule: Some(step.rule.clone()),
            points: step.points,
        },
    }
}

/// Moves the expected start past approved leave that covers it and the
/// expected end before approved leave that covers it (policy.md step 2).
/// Returns the leave records used.
fn apply_leave(leaves: &[Leave], times: ShiftTimes) -> (DateTime<Utc>, DateTime<Utc>, Vec<&Leave>) {
    let mut start = times.start;
    let mut end = times.end;
    let mut used: Vec<&Leave> = Vec::new();
    let approved = || {
        leaves.iter().filter(|l| {
            l.status == LeaveStatus::Approved && l.start < times.end && l.end > times.start
        })
    };
    while let Some(l) = approved().find(|l| l.start <= start && l.end > start) {
        start = l.end;
        used.push(l);
        if start >= end {
            return (start, end, used);
        }
    }
    while let Some(l) = approved().find(|l| l.start < end && l.end >= end) {
        end = l.start;
        if !used.contains(&l) {
            used.push(l);
        }
        if start >= end {
            break;
        }
    }
    (start, end, used)
}

fn classify_instance(
    policy: &Policy,
    emp: &EmployeeDays<'_>,
    kept: &[Kept<'_>],
    inst: &Instance,
    kind: DayKind,
) -> DayVerdict {
    let tz = policy.tz;
    let shift = policy.shift(inst.shift);
    let mut ex = Explanation {
        day_kind: kind.as_str().to_string(),
        shift_start: Some(to_local(tz, inst.times.start)),
        shift_end: Some(to_local(tz, inst.times.end)),
        window_start: Some(to_local(tz, inst.win_start)),
        window_end: Some(to_local(tz, inst.win_end)),
        ..Explanation::default()
    };
    let mut v = DayVerdict {
        employee_id: emp.employee.clone(),
        date: inst.date,
        shift: Some(shift.id.clone()),
        status: Status::Present,
        check_in: None,
        check_out: None,
        late_minutes: 0,
        early_minutes: 0,
        absence_days: Points::ZERO,
        leave_days: Points::ZERO,
        points: Points::ZERO,
        actions: Vec::new(),
        deductions: Vec::new(),
        flags: Vec::new(),
        explanation: Explanation::default(),
    };

    // Punches in the half-open window [win_start, win_end).
    let lo = kept.partition_point(|p| p.at < inst.win_start);
    let hi = kept.partition_point(|p| p.at < inst.win_end);
    let punches = &kept[lo..hi];
    ex.punches = punches
        .iter()
        .map(|p| PunchRef {
            time: to_local(tz, p.at),
            device: p.device.cloned(),
        })
        .collect();
    ex.repeats_merged = punches.iter().map(|p| p.merged).sum();

    // Step 2: approved leave or field work (坐席考勤管理制度 三2, 四2).
    let (exp_start, exp_end, used) = if emp.leaves.is_empty() {
        (inst.times.start, inst.times.end, Vec::new())
    } else {
        apply_leave(emp.leaves, inst.times)
    };
    ex.leave = used
        .iter()
        .map(|l| LeaveRef {
            kind: l.kind.clone(),
            start: to_local(tz, l.start),
            end: to_local(tz, l.end),
        })
        .collect();
    if exp_start >= exp_end {
        let field = used.iter().all(|l| l.is_field());
        v.status = if field {
            Status::Field
        } else {
            Status::OnLeave
        };
        v.leave_days = if field { Points::ZERO } else { Points::ONE };
        if let (Some(f), Some(l)) = (punches.first(), punches.last()) {
            v.check_in = Some(to_local(tz, f.at));
            v.check_out = Some(to_local(tz, l.at));
        }
        v.explanation = ex;
        return v;
    }
    if !used.is_empty() {
        ex.expected_start = Some(to_local(tz, exp_start));
        ex.expected_end = Some(to_local(tz, exp_end));
        v.flags.push(if used.iter().all(|l| l.is_field()) {
            Flag::PartialField
        } else {
            Flag::PartialLeave
        });
    }

    let abs = &policy.absence;
    let (late, early) = match punches {
        // Step 3: no punch in the window: a whole day of absence
        // (坐席员考核细则 二(二)2: 旷工1天扣10分).
        [] => {
            v.status = Status::AbsentFull;
            v.absence_days = Points::ONE;
            v.points = abs.no_punch_points;
            if !abs.no_punch_points.is_zero() {
                v.deductions
                    .push(deduction(policy, &abs.no_punch_rule, abs.no_punch_points));
            }
            v.explanation = ex;
            return v;
        }
        // Step 4: one punch: the side it is nearer to is kept, the other is
        // missing.
        [only] => {
            let to_start = (only.at - exp_start).abs();
            let to_end = (exp_end - only.at).abs();
            let missing = match &abs.missing_punch {
                MissingPunch::AbsentHalf { rule, points } => SideGrade {
                    minutes: 0,
                    grade: Grade::HalfDay,
                    rule: Some(rule.clone()),
                    points: *points,
                },
                MissingPunch::Flag => SideGrade {
                    minutes: 0,
                    grade: Grade::OnTime,
                    rule: None,
                    points: Points::ZERO,
                },
            };
            if to_start < to_end {
                v.check_in = Some(to_local(tz, only.at));
                ex.missing = Some(MissingSide::CheckOut);
                v.flags.push(Flag::MissingCheckOut);
                let late = grade_side(&policy.lateness, whole_minutes(exp_start, only.at));
                (late, missing)
            } else {
                v.check_out = Some(to_local(tz, only.at));
                ex.missing = Some(MissingSide::CheckIn);
                v.flags.push(Flag::MissingCheckIn);
                let early = grade_side(&policy.earliness, whole_minutes(only.at, exp_end));
                (missing, early)
            }
        }
        // Step 5: first in, last out, each graded on its ladder.
        [first, .., last] => {
            v.check_in = Some(to_local(tz, first.at));
            v.check_out = Some(to_local(tz, last.at));
            let late = grade_side(&policy.lateness, whole_minutes(exp_start, first.at));
            let early = grade_side(&policy.earliness, whole_minutes(last.at, exp_end));
            (late, early)
        }
    };

    // Missing sides report 0 minutes (policy.md, "08:20 only").
    v.late_minutes = late.minutes;
    v.early_minutes = early.minutes;

    // Step 6: two half days make one; the day's points are capped.
    v.absence_days = (late.grade.absence() + early.grade.absence()).min(Points::ONE);
    let raw = late.points + early.points;
    v.points = match abs.day_cap {
        Some(cap) if raw > cap => {
            ex.uncapped_points = Some(raw);
            cap
        }
        _ => raw,
    };
    let mut left = v.points;
    for side in [&late, &early] {
        if let Some(rule) = &side.rule
            && !side.points.is_zero()
        {
            let p = side.points.min(left);
            if !p.is_zero() {
                v.deductions.push(deduction(policy, rule, p));
                left = left - p;
            }
        }
    }

    // Step 7: status.
    v.status = if v.absence_days >= Points::ONE {
        Status::AbsentFull
    } else if v.absence_days > Points::ZERO {
        Status::AbsentHalf
    } else {
        match (late.grade == Grade::Minor, early.grade == Grade::Minor) {
            (true, true) => Status::LateAndEarly,
            (true, false) => Status::Late,
            (false, true) => Status::EarlyLeave,
            (false, false) => Status::Present,
        }
    };
    ex.late = Some(late);
    ex.early = Some(early);
    v.explanation = ex;
    v
}

fn deduction(policy: &Policy, rule: &Arc<str>, points: Points) -> Deduction {
    let category = policy
        .rule_category(rule)
        .cloned()
        .unwrap_or_else(|| Arc::from("unknown"));
    Deduction {
        rule: rule.clone(),
        category,
        points,
    }
}
