//! Classifying employee-days: punches, shifts and leave in, verdicts out.
//!
//! This is `spec/policy.md`, "Classifying one employee-day", step by step.
//! Each step's doc comment names the seed rule it encodes.

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};

use super::calendar::{DayKind, ShiftClock, ShiftTimes, shift_on};
use super::ladder::apply_ladder;
use super::points::Points;
use super::policy::{Grading, LeaveRules, LeavingPost, MissingPunch, Policy, Shift};
use super::time::to_local;
use super::types::*;

mod instance;

use instance::classify_instance;

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
    /// First day employed (inclusive); earlier dates are `not_employed`.
    pub start_date: Option<NaiveDate>,
    /// Last day employed (inclusive); later dates are `not_employed`.
    pub end_date: Option<NaiveDate>,
}

impl EmployeeDays<'_> {
    /// True when `date` lies within the employment dates.
    pub fn employed_on(&self, date: NaiveDate) -> bool {
        employed_on(self.start_date, self.end_date, date)
    }
}

/// A shift instance of one employee with its punch window.
#[derive(Clone, Copy, Debug)]
struct Instance {
    date: NaiveDate,
    shift: ShiftIdx,
    times: ShiftTimes,
    win_start: DateTime<Utc>,
    win_end: DateTime<Utc>,
    /// The window includes `win_end` itself: true unless the next shift's
    /// window starts there (policy.md, "Windows").
    end_inclusive: bool,
}

impl Instance {
    /// The window is still open at `now`: punches may yet arrive.
    fn open_at(&self, now: DateTime<Utc>) -> bool {
        now < self.win_end || (self.end_inclusive && now == self.win_end)
    }
}

/// A punch after repeats were merged.
#[derive(Clone, Debug)]
struct Kept<'a> {
    at: DateTime<Utc>,
    device: Option<&'a Arc<str>>,
    direction: Option<Direction>,
    merged: u32,
}

/// Evaluates every date in `[from, to]` for one employee, as known at
/// `now`.
///
/// A shift whose punch window is still open at `now` gets a provisional
/// verdict (policy.md, "Today"); pass an instant after every window (e.g.
/// [`DateTime::<Utc>::MAX_UTC`]) for final verdicts only.
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
    now: DateTime<Utc>,
) -> Vec<DayVerdict> {
    let policy = clock.policy();
    if to < from {
        return Vec::new();
    }
    let eval_from = from.with_day(1).unwrap_or(from);

    let sorted: Cow<'_, [Punch]> = if emp.punches.is_sorted() {
        Cow::Borrowed(emp.punches)
    } else {
        // Punches arrive nearly sorted (a late resend here and there): the
        // stable sort merges the sorted runs. Punches equal in order are
        // equal in every field, so which comes first cannot show.
        let mut v = emp.punches.to_vec();
        v.sort();
        Cow::Owned(v)
    };

    // Shift instances over the range plus enough margin that a neighbour's
    // window can reach into it.
    let (before, after) = policy.max_window_secs();
    let margin = ((before + after) / 86_400 + 2) as u64;
    let first = eval_from - Days::new(margin);
    let last = to + Days::new(margin);
    let mut kinds: Vec<(NaiveDate, Option<ShiftIdx>, DayKind)> =
        Vec::with_capacity((last - first).num_days() as usize + 1);
    let mut instances: Vec<Instance> = Vec::new();
    let mut d = first;
    while d <= last {
        let (shift, kind) = if emp.employed_on(d) {
            shift_on(policy, holidays, emp.roster, emp.default_shift, d)
        } else {
            (None, DayKind::NotEmployed)
        };
        kinds.push((d, shift, kind));
        if let Some(s) = shift {
            let times = clock.times(d, s);
            let sh = policy.shift(s);
            instances.push(Instance {
                date: d,
                shift: s,
                times,
                win_start: times.start - chrono::Duration::seconds(sh.before_secs),
                win_end: times.end + chrono::Duration::seconds(sh.after_secs),
                end_inclusive: true,
            });
        }
        d = d + Days::new(1);
    }
    split_windows(&mut instances);

    let mut out = Vec::with_capacity((to - eval_from).num_days() as usize + 1);
    let mut next_instance = 0;
    let mut scratch: Vec<Kept<'_>> = Vec::new();
    for &(date, shift, kind) in &kinds {
        if date < eval_from || date > to {
            continue;
        }
        let verdict = match shift {
            None => {
                let mut v = rest_day(emp.employee, date, kind);
                if let Some(ot) = &policy.overtime
                    && kind != DayKind::NotEmployed
                {
                    v.overtime_minutes =
                        rest_day_overtime(clock, &sorted, &instances, date, &mut scratch)
                            .filter(|m| *m >= ot.min_minutes)
                            .unwrap_or(0);
                }
                v
            }
            Some(_) => {
                while instances[next_instance].date < date {
                    next_instance += 1;
                }
                classify_instance(
                    clock,
                    emp,
                    &sorted,
                    &instances[next_instance],
                    kind,
                    now,
                    &mut scratch,
                )
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
/// one shift within `dedupe_secs` of the previous kept punch are one punch
/// (a terminal re-sending, a reader repeating, a person trying twice).
/// Called on one shift's punches only, so repeats are never merged across
/// two shifts (policy.md, "One visit, one punch": a handover at 07:59:40
/// and 08:00:20 is two punches for two shifts). `punches` is sorted.
fn merge_repeats<'a>(dedupe_secs: i64, punches: &'a [Punch], kept: &mut Vec<Kept<'a>>) {
    kept.clear();
    for p in punches {
        if let Some(last) = kept.last_mut()
            && (p.at - last.at).num_seconds() <= dedupe_secs
        {
            last.merged += 1;
            continue;
        }
        kept.push(Kept {
            at: p.at,
            device: p.device.as_ref(),
            direction: p.direction,
            merged: 0,
        });
    }
}

/// Punch windows of consecutive shifts never overlap. Where they would, the
/// boundary is the midpoint between the earlier shift's end and the later
/// one's start, moved into `[later.start − later.before, earlier.end +
/// earlier.after]`: a split never widens a window past its own margin
/// (policy.md, "Windows"). The boundary instant belongs to the later shift.
fn split_windows(instances: &mut [Instance]) {
    for i in 1..instances.len() {
        let (a, b) = instances.split_at_mut(i);
        let prev = &mut a[i - 1];
        let cur = &mut b[0];
        if prev.win_end >= cur.win_start {
            let gap = cur.times.start - prev.times.end;
            let mid = prev.times.end + gap / 2;
            let boundary = mid.clamp(cur.win_start, prev.win_end);
            prev.win_end = boundary;
            prev.end_inclusive = false;
            cur.win_start = boundary;
        }
    }
}

/// 坐席考勤管理制度 七 (加班记录): on a rest day or holiday, the span in
/// whole minutes from the first to the last punch of the local date (repeats
/// merged), leaving out punches that belong to a neighbouring shift's
/// window. `None` without two distinct punches.
fn rest_day_overtime<'a>(
    clock: &ShiftClock<'_>,
    punches: &'a [Punch],
    instances: &[Instance],
    date: NaiveDate,
    kept: &mut Vec<Kept<'a>>,
) -> Option<i64> {
    let policy = clock.policy();
    let mut lo = clock.resolve_local(date.and_time(chrono::NaiveTime::MIN));
    let mut hi = clock.resolve_local((date + Days::new(1)).and_time(chrono::NaiveTime::MIN));
    // A punch at the previous window's inclusive end belongs to it.
    let mut lo_inclusive = true;
    let next = instances.partition_point(|i| i.date < date);
    if let Some(prev) = next.checked_sub(1).and_then(|i| instances.get(i))
        && prev.win_end >= lo
    {
        lo = prev.win_end;
        lo_inclusive = !prev.end_inclusive;
    }
    if let Some(n) = instances.get(next) {
        hi = hi.min(n.win_start);
    }
    if hi <= lo {
        return None;
    }
    let a = if lo_inclusive {
        punches.partition_point(|p| p.at < lo)
    } else {
        punches.partition_point(|p| p.at <= lo)
    };
    let b = punches.partition_point(|p| p.at < hi);
    merge_repeats(policy.dedupe_secs, &punches[a..b.max(a)], kept);
    match (kept.first(), kept.last()) {
        (Some(f), Some(l)) if kept.len() > 1 => Some(whole_minutes(f.at, l.at)),
        _ => None,
    }
}

fn rest_day(employee: &EmployeeId, date: NaiveDate, kind: DayKind) -> DayVerdict {
    DayVerdict {
        employee_id: employee.clone(),
        date,
        shift: None,
        status: match kind {
            DayKind::Holiday => Status::Holiday,
            DayKind::NotEmployed => Status::NotEmployed,
            _ => Status::Rest,
        },
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
/// `grace` is the shift's own when it sets one (`[[shift]] grace_minutes`).
fn grade_side(grading: &Grading, grace: Option<i64>, minutes: i64) -> SideGrade {
    match grading.step_with_grace(minutes, grace.unwrap_or(grading.grace_minutes)) {
        None => on_time(minutes),
        Some(step) => SideGrade {
            minutes,
            grade: step.grade,
            rule: Some(step.rule.clone()),
            points: step.points,
        },
    }
}

fn on_time(minutes: i64) -> SideGrade {
    SideGrade {
        minutes,
        grade: Grade::OnTime,
        rule: None,
        points: Points::ZERO,
    }
}

/// Approved leave or field work overlapping `[a, b)`.
fn approved_in(
    leaves: &[Leave],
    a: DateTime<Utc>,
    b: DateTime<Utc>,
) -> impl Iterator<Item = &Leave> {
    leaves
        .iter()
        .filter(move |l| l.status == LeaveStatus::Approved && l.start < b && l.end > a)
}

/// Seconds of `[a, b)` covered by approved leave (field work too when
/// `field`), overlapping records counted once.
fn covered_secs(leaves: &[Leave], a: DateTime<Utc>, b: DateTime<Utc>, field: bool) -> i64 {
    if b <= a || leaves.is_empty() {
        return 0;
    }
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = approved_in(leaves, a, b)
        .filter(|l| field || !l.is_field())
        .map(|l| (l.start.max(a), l.end.min(b)))
        .collect();
    spans.sort_unstable();
    let mut total = 0;
    let mut reach = a;
    for (s, e) in spans {
        let s = s.max(reach);
        if e > s {
            total += (e - s).num_seconds();
            reach = e;
        }
    }
    total
}

/// Whole minutes of `[a, b)` not excused by approved leave or field work
/// (policy.md, "Partial leave": lateness and earliness count only
/// unexcused minutes).
fn unexcused_minutes(leaves: &[Leave], a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
    if b <= a {
        return 0;
    }
    ((b - a).num_seconds() - covered_secs(leaves, a, b, true))
        .div_euclid(60)
        .max(0)
}

/// Leave days for `covered` seconds of leave in a shift of `shift` seconds:
/// the share rounded to the nearest half day, exactly a quarter or three
/// quarters rounding up (policy.md, "Partial leave": a morning is 0.5).
fn leave_share(covered: i64, shift: i64) -> Points {
    if covered <= 0 || shift <= 0 || covered * 4 < shift {
        Points::ZERO
    } else if covered * 4 < shift * 3 {
        Points::HALF
    } else {
        Points::ONE
    }
}

/// The expected start moved past approved leave that covers it and the
/// expected end before approved leave that covers it: the whole shift is
/// excused when they cross (policy.md step 2), and the one-punch rule
/// measures from them. Returns the leave records overlapping the shift.
fn apply_leave(leaves: &[Leave], times: ShiftTimes) -> (DateTime<Utc>, DateTime<Utc>, Vec<&Leave>) {
    let mut start = times.start;
    let mut end = times.end;
    let used: Vec<&Leave> = approved_in(leaves, times.start, times.end).collect();
    while let Some(l) = used.iter().find(|l| l.start <= start && l.end > start) {
        start = l.end;
        if start >= end {
            return (start, end, used);
        }
    }
    while let Some(l) = used.iter().find(|l| l.start < end && l.end >= end) {
        end = l.start;
        if start >= end {
            break;
        }
    }
    (start, end, used)
}

/// 坐席考勤管理制度 三3–4: flags on a day covered by approved leave (HR
/// decides; nothing is deducted). Field work (外出) is not leave.
fn leave_flags(rules: &LeaveRules, tz: chrono_tz::Tz, used: &[&Leave], flags: &mut Vec<Flag>) {
    let mut add = |f: Flag| {
        if !flags.contains(&f) {
            flags.push(f);
        }
    };
    for l in used.iter().filter(|l| !l.is_field()) {
        // 三4: 员工请假需提前一天以上 — "以上" includes the bound: exactly
        // `notice_hours` before the start is enough.
        if let Some(asked) = l.requested_at
            && (l.start - asked).num_seconds() < rules.notice_hours * 3600
        {
            add(Flag::LeaveShortNotice);
        }
        if &*l.kind == "sick" {
            // 三3: 因病导致的请假,公司需提供病假证明. Only where the source
            // records documents: an unknown document raises no flag.
            if l.document == LeaveDocument::Missing {
                add(Flag::SickLeaveNoCertificate);
            }
            // 三3: 超过三天的病假需提供医院的病历证明 — "超过" excludes the
            // bound: 3 days need nothing more, 4 do. Calendar days touched,
            // the end being exclusive.
            let first = to_local(tz, l.start).date_naive();
            let last = to_local(tz, l.end - chrono::Duration::seconds(1)).date_naive();
            let days = (last - first).num_days() + 1;
            let hospital = match &l.document {
                LeaveDocument::Unknown => true,
                LeaveDocument::Missing => false,
                LeaveDocument::Given(d) => &**d == "hospital_record",
            };
            if days > rules.sick_days_need_hospital_record && !hospital {
                add(Flag::SickLeaveNeedsHospitalRecord);
            }
        }
    }
}

/// 坐席员考核细则 二(二)3 (脱岗): the punches between the check-in and the
/// check-out pair up in order as (leaves, returns), after repeats were
/// merged. Extra taps of the arrival or departure visit (within
/// `visit_minutes` of the check-in or check-out) are set aside when that
/// makes the rest pair up, as many as possible, so a double tap does not
/// shift the pairs. Returns the raw seconds away (for worked minutes), the
/// seconds graded (inside the shift, outside `allowed_breaks` and approved
/// leave), and whether a punch was left unpaired.
fn time_away(
    lp: &LeavingPost,
    clock: &ShiftClock<'_>,
    leaves: &[Leave],
    inst: &Instance,
    kept: &[Kept<'_>],
) -> (i64, i64, bool) {
    let policy = clock.policy();
    let (Some(first), Some(last)) = (kept.first(), kept.last()) else {
        return (0, 0, false);
    };
    if kept.len() < 3 {
        return (0, 0, false);
    }
    let inner = &kept[1..kept.len() - 1];
    // policy.md, "Leaving post": with `trust_direction`, the terminal's
    // direction codes decide when every punch between check-in and
    // check-out has one.
    if lp.trust_direction && inner.iter().all(|p| p.direction.is_some()) {
        return away_by_direction(lp, clock, leaves, inst, inner);
    }
    let visit = chrono::Duration::seconds(policy.visit_secs);
    let arrival = inner
        .iter()
        .take_while(|p| p.at - first.at <= visit)
        .count();
    let departure = inner
        .iter()
        .rev()
        .take_while(|p| last.at - p.at <= visit)
        .count();
    let m = inner.len();
    let mut strip = (0, 0);
    for i in 0..=arrival {
        for j in 0..=departure {
            if i + j <= m && (m - i - j).is_multiple_of(2) && i + j > strip.0 + strip.1 {
                strip = (i, j);
            }
        }
    }
    let middle = &inner[strip.0..m - strip.1];
    let (mut raw, mut graded) = (0, 0);
    for pair in middle.chunks_exact(2) {
        let (l, r) = (pair[0].at, pair[1].at);
        raw += (r - l).num_seconds();
        // Allowed breaks excuse time away inside the shift only.
        let s = l.max(inst.times.start);
        let e = r.min(inst.times.end);
        if e > s {
            graded += (e - s).num_seconds() - excused_away(lp, clock, leaves, inst.date, s, e);
        }
    }
    (raw, graded, !middle.len().is_multiple_of(2))
}

/// 坐席员考核细则 二(二)3 (脱岗) under `[leaving_post] trust_direction`:
/// each `Out` punch between check-in and check-out leaves, the next `In`
/// returns (a second `Out` before it is a repeat of the first leave); an
/// `Out` without a return or an `In` without a leave is unpaired (flagged,
/// not deducted).
fn away_by_direction(
    lp: &LeavingPost,
    clock: &ShiftClock<'_>,
    leaves: &[Leave],
    inst: &Instance,
    inner: &[Kept<'_>],
) -> (i64, i64, bool) {
    let (mut raw, mut graded, mut unpaired) = (0, 0, false);
    let mut out: Option<DateTime<Utc>> = None;
    for p in inner {
        match p.direction {
            Some(Direction::Out) => out = out.or(Some(p.at)),
            Some(Direction::In) => match out.take() {
                Some(l) => {
                    raw += (p.at - l).num_seconds();
                    // Allowed breaks excuse time away inside the shift only.
                    let s = l.max(inst.times.start);
                    let e = p.at.min(inst.times.end);
                    if e > s {
                        graded += (e - s).num_seconds()
                            - excused_away(lp, clock, leaves, inst.date, s, e);
                    }
                }
                None => unpaired = true,
            },
            None => {}
        }
    }
    (raw, graded, unpaired || out.is_some())
}

/// Seconds of `[a, b)` inside an allowed break or approved leave, each
/// instant counted once.
fn excused_away(
    lp: &LeavingPost,
    clock: &ShiftClock<'_>,
    leaves: &[Leave],
    date: NaiveDate,
    a: DateTime<Utc>,
    b: DateTime<Utc>,
) -> i64 {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = approved_in(leaves, a, b)
        .map(|l| (l.start.max(a), l.end.min(b)))
        .collect();
    for d in [date, date + Days::new(1)] {
        for &(from, to) in &lp.allowed_breaks {
            let s = clock.resolve_local(d.and_time(from));
            let end_day = if to > from { d } else { d + Days::new(1) };
            let e = clock.resolve_local(end_day.and_time(to));
            if s < b && e > a {
                spans.push((s.max(a), e.min(b)));
            }
        }
    }
    spans.sort_unstable();
    let (mut total, mut reach) = (0, a);
    for (s, e) in spans {
        let s = s.max(reach);
        if e > s {
            total += (e - s).num_seconds();
            reach = e;
        }
    }
    total
}

/// True when a punch lies in `[a, b]`; returns the first such.
fn punch_in(punches: &[Punch], a: DateTime<Utc>, b: DateTime<Utc>) -> Option<DateTime<Utc>> {
    punches
        .get(punches.partition_point(|p| p.at < a))
        .map(|p| p.at)
        .filter(|t| *t <= b)
}

/// A punch no later than the shift's start plus its grace (from its window
/// opening) and a later one, beyond a visit, no earlier than its end minus
/// grace (up to its window closing): the punches fit `shift` on that date.
fn fits(
    policy: &Policy,
    punches: &[Punch],
    sh: &Shift,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let min = chrono::Duration::minutes;
    let late = sh.grace_minutes.unwrap_or(policy.lateness.grace_minutes);
    let early = sh.grace_minutes.unwrap_or(policy.earliness.grace_minutes);
    let arrived = punch_in(
        punches,
        start - chrono::Duration::seconds(sh.before_secs),
        start + min(late),
    )?;
    let close = end + chrono::Duration::seconds(sh.after_secs);
    let hi = punches.partition_point(|p| p.at <= close);
    punches[..hi]
        .last()
        .filter(|p| p.at >= end - min(early) && (p.at - arrived).num_seconds() > policy.visit_secs)
        .map(|p| (arrived, p.at))
}

/// 坐席员考核细则 二(一)7 (擅自换班) and 呼出中心 私自换班: the punches fit
/// another shift of the policy on that date within its grace while they do
/// not fit the rostered one. Only a flag: a supervisor confirms.
fn possible_swap(clock: &ShiftClock<'_>, punches: &[Punch], inst: &Instance) -> bool {
    let policy = clock.policy();
    if policy.shifts.len() < 2 || punches.is_empty() {
        return false;
    }
    let own = policy.shift(inst.shift);
    let (s0, e0) = (inst.times.start, inst.times.end);
    if fits(policy, punches, own, s0, e0).is_some() {
        return false;
    }
    // The arrival must be nearer the other shift's start than the rostered
    // one's, and the departure nearer its end: a late arrival on the
    // rostered shift is lateness, not a swap.
    (0..policy.shifts.len() as u16)
        .map(ShiftIdx)
        .filter(|s| *s != inst.shift)
        .any(|s| {
            let t = clock.times(inst.date, s);
            fits(policy, punches, policy.shift(s), t.start, t.end).is_some_and(|(a, d)| {
                (a - t.start).abs() < (a - s0).abs() && (d - t.end).abs() < (d - e0).abs()
            })
        })
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
