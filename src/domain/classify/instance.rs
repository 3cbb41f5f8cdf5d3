//! One shift instance of one employee classified: the window's punches,
//! approved leave, the sides, their grades and the day's status.

use super::*;

/// What the punches of a shift say, once sided.
enum Sides {
    /// No punch in the window.
    None,
    /// A check-in only.
    In(DateTime<Utc>),
    /// A check-out only.
    Out(DateTime<Utc>),
    /// Both.
    Both(DateTime<Utc>, DateTime<Utc>),
}

/// The day's explanation and verdict before any step: the shift and its
/// window, present with nothing graded.
fn blank(
    emp: &EmployeeDays<'_>,
    inst: &Instance,
    kind: DayKind,
    shift: &Shift,
    clock: &ShiftClock<'_>,
) -> DayVerdict {
    let explanation = Explanation {
        day_kind: kind.as_str().to_string(),
        shift_start: Some(clock.to_local(inst.times.start)),
        shift_end: Some(clock.to_local(inst.times.end)),
        window_start: Some(clock.to_local(inst.win_start)),
        window_end: Some(clock.to_local(inst.win_end)),
        ..Explanation::default()
    };
    DayVerdict {
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
        worked_minutes: None,
        overtime_minutes: 0,
        provisional: false,
        points: Points::ZERO,
        actions: Vec::new(),
        deductions: Vec::new(),
        flags: Vec::new(),
        explanation,
    }
}

pub(super) fn classify_instance<'a>(
    clock: &ShiftClock<'_>,
    emp: &EmployeeDays<'_>,
    punches: &'a [Punch],
    inst: &Instance,
    kind: DayKind,
    now: DateTime<Utc>,
    kept: &mut Vec<Kept<'a>>,
) -> DayVerdict {
    let policy = clock.policy();
    let shift = policy.shift(inst.shift);
    let mut v = blank(emp, inst, kind, shift, clock);

    // The window: [win_start, win_end], or [win_start, win_end) when the
    // next shift's window starts at win_end (policy.md, "Windows").
    let lo = punches.partition_point(|p| p.at < inst.win_start);
    let hi = if inst.end_inclusive {
        punches.partition_point(|p| p.at <= inst.win_end)
    } else {
        punches.partition_point(|p| p.at < inst.win_end)
    };
    merge_repeats(policy.dedupe_secs, &punches[lo..hi], kept);
    v.explanation.punches = kept
        .iter()
        .map(|p| PunchRef {
            time: clock.to_local(p.at),
            device: p.device.cloned(),
        })
        .collect();
    v.explanation.repeats_merged = kept.iter().map(|p| p.merged).sum();
    // policy.md, "One visit, one punch": all of a shift's punches within
    // visit_minutes of its first are one visit to the terminal.
    let one_visit = match (kept.first(), kept.last()) {
        (Some(f), Some(l)) => kept.len() > 1 && (l.at - f.at).num_seconds() <= policy.visit_secs,
        _ => false,
    };
    v.explanation.one_visit = one_visit;
    let open = inst.open_at(now);
    v.provisional = open;

    // Step 2: approved leave or field work (坐席考勤管理制度 三2, 四2).
    let shift_secs = (inst.times.end - inst.times.start).num_seconds();
    let (exp_start, exp_end, used) = if emp.leaves.is_empty() {
        (inst.times.start, inst.times.end, Vec::new())
    } else {
        apply_leave(emp.leaves, inst.times)
    };
    v.explanation.leave = used
        .iter()
        .map(|l| LeaveRef {
            kind: l.kind.clone(),
            start: clock.to_local(l.start),
            end: clock.to_local(l.end),
        })
        .collect();
    let (excused_secs, leave_secs) = if used.is_empty() {
        (0, 0)
    } else {
        (
            covered_secs(emp.leaves, inst.times.start, inst.times.end, true),
            covered_secs(emp.leaves, inst.times.start, inst.times.end, false),
        )
    };
    v.explanation.excused_minutes = excused_secs / 60;
    let all_field = used.iter().all(|l| l.is_field());
    if exp_start >= exp_end {
        v.status = if all_field {
            Status::Field
        } else {
            Status::OnLeave
        };
        v.leave_days = leave_share(leave_secs, shift_secs);
        v.provisional = false;
        if let Some(rules) = &policy.leave {
            leave_flags(rules, policy.tz, &used, &mut v.flags);
        }
        if let (Some(f), Some(l)) = (kept.first(), kept.last()) {
            v.check_in = Some(clock.to_local(f.at));
            v.check_out = Some(clock.to_local(l.at));
            if kept.len() > 1 && !one_visit {
                v.worked_minutes = Some(whole_minutes(f.at, l.at));
            }
        }
        return v;
    }
    if !used.is_empty() {
        v.explanation.expected_start = Some(clock.to_local(exp_start));
        v.explanation.expected_end = Some(clock.to_local(exp_end));
        v.flags.push(if all_field {
            Flag::PartialField
        } else {
            Flag::PartialLeave
        });
        if let Some(rules) = &policy.leave {
            leave_flags(rules, policy.tz, &used, &mut v.flags);
        }
    }

    // Which sides the punches show. policy.md, "Today": while the window is
    // open nothing that has not happened yet is graded; before the
    // (expected) end every punch so far is on the arrival side.
    let shift_over = now >= exp_end;
    let sides = match (kept.first(), kept.last()) {
        (None, _) | (_, None) => Sides::None,
        (Some(f), Some(_)) if open && !shift_over => Sides::In(f.at),
        // Step 4: one punch (or one visit): the side it is nearer to.
        (Some(f), Some(l)) if kept.len() == 1 || one_visit => {
            if (f.at - exp_start).abs() < (exp_end - f.at).abs() {
                Sides::In(f.at)
            } else {
                Sides::Out(l.at)
            }
        }
        // Step 5: first in, last out.
        (Some(f), Some(l)) => Sides::Both(f.at, l.at),
    };

    let f = Facts {
        clock,
        emp,
        punches,
        inst,
        sides,
        open,
        shift_over,
        excused_secs,
        leave_secs,
        shift_secs,
        all_field,
    };
    let Some(graded) = grade_sides(&f, kept, &mut v) else {
        return v;
    };
    settle(&f, graded, &mut v);
    v
}

/// What the steps after the leave step share.
struct Facts<'f> {
    clock: &'f ShiftClock<'f>,
    emp: &'f EmployeeDays<'f>,
    punches: &'f [Punch],
    inst: &'f Instance,
    sides: Sides,
    open: bool,
    shift_over: bool,
    excused_secs: i64,
    leave_secs: i64,
    shift_secs: i64,
    all_field: bool,
}

/// The two sides graded (steps 3–5), with the time away between them.
struct Graded {
    late: SideGrade,
    early: SideGrade,
    away: Option<SideGrade>,
    away_secs: i64,
    in_progress: bool,
}

/// Steps 3–5: grades the sides the punches show. `None` when the verdict
/// is already complete (not arrived yet, or absent with no punch).
fn grade_sides(f: &Facts<'_>, kept: &[Kept<'_>], v: &mut DayVerdict) -> Option<Graded> {
    let (clock, emp, punches, inst) = (f.clock, f.emp, f.punches, f.inst);
    let (open, shift_over, excused_secs) = (f.open, f.shift_over, f.excused_secs);
    let policy = clock.policy();
    let shift = policy.shift(inst.shift);
    let abs = &policy.absence;
    let grace = shift.grace_minutes;
    let late_of = |at: DateTime<Utc>| {
        grade_side(
            &policy.lateness,
            grace,
            unexcused_minutes(emp.leaves, inst.times.start, at),
        )
    };
    let early_of = |at: DateTime<Utc>| {
        grade_side(
            &policy.earliness,
            grace,
            unexcused_minutes(emp.leaves, at, inst.times.end),
        )
    };
    let missing = || match &abs.missing_punch {
        MissingPunch::AbsentHalf { rule, points } => SideGrade {
            minutes: 0,
            grade: Grade::HalfDay,
            rule: Some(rule.clone()),
            points: *points,
        },
        MissingPunch::Flag => on_time(0),
    };
    let mut in_progress = false;
    // 坐席员考核细则 二(二)3: time away between mid-shift punches.
    let mut away: Option<SideGrade> = None;
    let mut away_secs = 0;
    let (late, early) = match f.sides {
        Sides::None if open => {
            v.status = Status::NotArrived;
            return None;
        }
        // Step 3: no punch in the window: a whole day of absence
        // (坐席员考核细则 二(二)2: 旷工1天扣10分).
        Sides::None if excused_secs == 0 => {
            v.status = Status::AbsentFull;
            v.absence_days = Points::ONE;
            v.points = abs.no_punch_points;
            if !abs.no_punch_points.is_zero() {
                v.deductions
                    .push(deduction(policy, &abs.no_punch_rule, abs.no_punch_points));
            }
            if possible_swap(clock, punches, inst) {
                v.flags.push(Flag::PossibleShiftSwap);
            }
            return None;
        }
        // policy.md, "Partial leave": with no punch at all, the unexcused
        // minutes of the shift are graded on the lateness ladder.
        Sides::None => (late_of(inst.times.end), on_time(0)),
        Sides::In(at) => {
            v.check_in = Some(clock.to_local(at));
            let late = late_of(at);
            if open {
                // No missing check-out before the window closes; while the
                // shift runs the day is `in_progress`, after its end the
                // lateness alone decides the provisional status.
                in_progress = !shift_over;
                (late, on_time(0))
            } else {
                v.explanation.missing = Some(MissingSide::CheckOut);
                v.flags.push(Flag::MissingCheckOut);
                (late, missing())
            }
        }
        Sides::Out(at) => {
            v.check_out = Some(clock.to_local(at));
            v.explanation.missing = Some(MissingSide::CheckIn);
            v.flags.push(Flag::MissingCheckIn);
            (missing(), early_of(at))
        }
        Sides::Both(i, o) => {
            v.check_in = Some(clock.to_local(i));
            v.check_out = Some(clock.to_local(o));
            if let Some(lp) = &policy.leaving_post {
                let (raw_secs, graded_secs, unpaired) =
                    time_away(lp, clock, emp.leaves, inst, kept);
                away_secs = raw_secs;
                if unpaired {
                    v.flags.push(Flag::UnpairedPunch);
                }
                if raw_secs > 0 {
                    away = Some(grade_side(&lp.grading, None, graded_secs.div_euclid(60)));
                }
            }
            v.worked_minutes = Some(((o - i).num_seconds() - away_secs).div_euclid(60).max(0));
            if let Some(ot) = &policy.overtime {
                let m = whole_minutes(inst.times.end, o);
                if m >= ot.min_minutes {
                    v.overtime_minutes = m;
                }
            }
            (late_of(i), early_of(o))
        }
    };
    Some(Graded {
        late,
        early,
        away,
        away_secs,
        in_progress,
    })
}

/// Steps 6–7: the day's absence, points, deductions, leave days and status.
fn settle(f: &Facts<'_>, g: Graded, v: &mut DayVerdict) {
    let (clock, emp, punches, inst, sides) = (f.clock, f.emp, f.punches, f.inst, &f.sides);
    let (open, excused_secs) = (f.open, f.excused_secs);
    let (leave_secs, shift_secs, all_field) = (f.leave_secs, f.shift_secs, f.all_field);
    let policy = clock.policy();
    let abs = &policy.absence;
    let Graded {
        late,
        early,
        away,
        away_secs,
        in_progress,
    } = g;
    let away_grade = away.clone().unwrap_or_else(|| on_time(0));

    // Missing sides report 0 minutes (policy.md, "08:20 only").
    v.late_minutes = late.minutes;
    v.early_minutes = early.minutes;

    // Step 6: two half days make one; the day's points are capped.
    // Leaving post counts toward the day cap and the day's absence; it is
    // not a ladder occurrence (the status does not change for it).
    v.absence_days = (late.grade.absence() + early.grade.absence() + away_grade.grade.absence())
        .min(Points::ONE);
    let mut raw = late.points + early.points + away_grade.points;
    // policy.md, "Worked minutes": too few worked minutes (leave minutes
    // counting as worked) are absence when that is worse.
    let mut short = None;
    if let (Sides::Both(i, o), Some(rule)) = (&sides, &policy.hours.rule) {
        let excused_outside = excused_secs
            - covered_secs(
                emp.leaves,
                (*i).max(inst.times.start),
                (*o).min(inst.times.end),
                true,
            );
        let credited = ((*o - *i).num_seconds() - away_secs + excused_outside).div_euclid(60);
        if let Some(grade) = policy.hours.grade(credited) {
            let points = if grade == Grade::FullDay {
                abs.full_day_points
            } else {
                abs.half_day_points
            };
            let absence = grade.absence();
            if absence > v.absence_days || (absence == v.absence_days && points > raw) {
                v.absence_days = absence;
                raw = points;
                short = Some(SideGrade {
                    minutes: credited,
                    grade,
                    rule: Some(rule.clone()),
                    points,
                });
            }
        }
    }
    v.points = match abs.day_cap {
        Some(cap) if raw > cap => {
            v.explanation.uncapped_points = Some(raw);
            cap
        }
        _ => raw,
    };
    let mut left = v.points;
    let sources: [Option<&SideGrade>; 3] = match &short {
        Some(s) => [Some(s), None, None],
        None => [Some(&late), Some(&early), Some(&away_grade)],
    };
    for side in sources.into_iter().flatten() {
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

    // policy.md, "Partial leave": leave days are the covered share, and
    // leave days plus absence days never exceed one (leave gives way).
    v.leave_days = leave_share(leave_secs, shift_secs).min(Points::ONE - v.absence_days);

    // Step 7: status.
    v.status = if in_progress {
        Status::InProgress
    } else if v.absence_days >= Points::ONE {
        Status::AbsentFull
    } else if v.absence_days > Points::ZERO {
        Status::AbsentHalf
    } else if short.is_none() && matches!(sides, Sides::None) && late.grade == Grade::OnTime {
        // No punch, and the little that leave did not cover is within grace.
        if all_field {
            Status::Field
        } else {
            Status::OnLeave
        }
    } else {
        match (late.grade == Grade::Minor, early.grade == Grade::Minor) {
            (true, true) => Status::LateAndEarly,
            (true, false) => Status::Late,
            (false, true) => Status::EarlyLeave,
            (false, false) => Status::Present,
        }
    };
    if !open
        && matches!(
            v.status,
            Status::AbsentFull
                | Status::AbsentHalf
                | Status::Late
                | Status::EarlyLeave
                | Status::LateAndEarly
        )
        && possible_swap(clock, punches, inst)
    {
        v.flags.push(Flag::PossibleShiftSwap);
    }
    v.explanation.late = Some(late);
    v.explanation.early = Some(early);
    v.explanation.away = away;
    v.explanation.short_hours = short;
}
