//! The validated policy: what [`crate::policy_file`] produces from a policy file
//! and what the engine reads. Every field is already checked; the engine
//! never has to handle an unknown shift, rule or category.
//!
//! `spec/policy.md`, "What the policy file must be able to say", lists the
//! knobs; each has a field here.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;

use super::points::Points;
use super::types::{Grade, Holidays, ShiftIdx};

/// A shift: start and end in local wall-clock time.
#[derive(Clone, Debug, PartialEq)]
pub struct Shift {
    /// The id rosters and employees.csv use.
    pub id: Arc<str>,
    /// Local start time.
    pub start: NaiveTime,
    /// Local end time; on the next day when `overnight`.
    pub end: NaiveTime,
    /// The end falls on the day after the start (18:00–08:00).
    pub overnight: bool,
    /// Grace for both lateness and earliness on this shift, replacing the
    /// policy's (`[[shift]] grace_minutes`); `None` keeps the policy's.
    pub grace_minutes: Option<i64>,
    /// Seconds before the start where this shift's punch window opens
    /// (`[[shift]] before_minutes`, else `[window] before_minutes`).
    pub before_secs: i64,
    /// Seconds after the end where this shift's punch window closes
    /// (`[[shift]] after_minutes`, else `[window] after_minutes`).
    pub after_secs: i64,
}

/// What a date with no roster row means for an employee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unrostered {
    /// The default shift on weekly workdays and make-up days.
    DefaultShift,
    /// Rest: shifts come only from the roster (24-hour rosters).
    Rest,
}

/// One step of a grading ladder: minutes beyond grace up to `up_to`
/// (inclusive) get `grade`, `rule` and `points`.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Inclusive upper bound in minutes; `None` for no bound.
    pub up_to: Option<i64>,
    /// The outcome.
    pub grade: Grade,
    /// Rule id from the catalogue.
    pub rule: Arc<str>,
    /// Points this side costs.
    pub points: Points,
}

/// How lateness (or earliness) in whole minutes becomes an outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Grading {
    /// Minutes that are still on time (0 … grace).
    pub grace_minutes: i64,
    /// Steps beyond grace, ordered by `up_to`; the last one is unbounded.
    pub steps: Vec<Step>,
}

impl Grading {
    /// The step that `minutes` falls on, or `None` when within grace.
    pub fn step_for(&self, minutes: i64) -> Option<&Step> {
        self.step_with_grace(minutes, self.grace_minutes)
    }

    /// [`Grading::step_for`] with a shift's own grace in place of the
    /// policy's: minutes up to `grace` are on time, the steps apply beyond.
    pub fn step_with_grace(&self, minutes: i64, grace: i64) -> Option<&Step> {
        if minutes <= grace {
            return None;
        }
        self.steps
            .iter()
            .find(|s| s.up_to.is_none_or(|u| minutes <= u))
    }
}

/// How a day with exactly one punch is treated (`missing_punch`).
#[derive(Clone, Debug, PartialEq)]
pub enum MissingPunch {
    /// The missing side counts as half a day of absence.
    AbsentHalf {
        /// Rule id for the deduction.
        rule: Arc<str>,
        /// Points it costs.
        points: Points,
    },
    /// No points; the day carries a flag for HR to check.
    Flag,
}

/// Absence points and the day cap.
#[derive(Clone, Debug, PartialEq)]
pub struct Absence {
    /// Points for half a day of absence (坐席员考核细则 二(二)2: 5).
    pub half_day_points: Points,
    /// Points for a whole day of absence (坐席员考核细则 二(二)2: 10).
    pub full_day_points: Points,
    /// The most one day can cost; `None` for no cap.
    pub day_cap: Option<Points>,
    /// Rule for a workday with no punch at all.
    pub no_punch_rule: Arc<str>,
    /// Points for a workday with no punch at all.
    pub no_punch_points: Points,
    /// Treatment of a day with exactly one punch.
    pub missing_punch: MissingPunch,
}

/// `[hours]`: worked minutes that count as absence (policy.md, "Worked
/// minutes"). Leave minutes count as worked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hours {
    /// Fewer worked minutes than this are half a day of absence.
    pub half_day_below: Option<i64>,
    /// Fewer worked minutes than this are a whole day of absence.
    pub absent_below: Option<i64>,
    /// Rule for the deduction (required when a threshold is set).
    pub rule: Option<Arc<str>>,
}

impl Hours {
    /// The absence `minutes` worked count as, or `None` when enough.
    /// "Fewer than" excludes the threshold itself (不满).
    pub fn grade(&self, minutes: i64) -> Option<Grade> {
        if self.absent_below.is_some_and(|t| minutes < t) {
            Some(Grade::FullDay)
        } else if self.half_day_below.is_some_and(|t| minutes < t) {
            Some(Grade::HalfDay)
        } else {
            None
        }
    }
}

/// `[leaving_post]`: time away between mid-shift punches (坐席员考核细则
/// 二(二)3: 无故脱岗半小时内(含半小时)扣2分,超过半小时按旷工半天计算,超过3小时
/// 按旷工一天计算).
#[derive(Clone, Debug, PartialEq)]
pub struct LeavingPost {
    /// Local windows (start, end) in which time away is excused (meals);
    /// an end not after its start runs to the next day.
    pub allowed_breaks: Vec<(NaiveTime, NaiveTime)>,
    /// Grace and steps, as `[lateness]`.
    pub grading: Grading,
    /// Terminal direction codes decide instead of the pairing.
    pub trust_direction: bool,
}

/// `[overtime]` (坐席考勤管理制度 七: 加班记录).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overtime {
    /// Fewer minutes after the shift's end (or on a rest day) are not
    /// overtime.
    pub min_minutes: i64,
}

/// `[leave]`: the flags of 坐席考勤管理制度 三 (HR decides; no points).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaveRules {
    /// Leave requested fewer hours than this before its start is flagged
    /// `leave_short_notice` (三4: 提前一天以上, 24).
    pub notice_hours: i64,
    /// Sick leave covering more calendar days than this needs a
    /// `hospital_record` (三3: 超过三天, 3).
    pub sick_days_need_hospital_record: i64,
}

/// The escalation ladder for repeat offenders (坐席考勤管理制度 五2).
#[derive(Clone, Debug, PartialEq)]
pub struct Ladder {
    /// Actions by occurrence: entry `n` for the `n+1`-th occurrence in the
    /// month; the last entry repeats for later ones.
    pub steps: Vec<Vec<Arc<str>>>,
    /// Run length of consecutive workdays that also triggers
    /// `consecutive_actions` (连续三次以上: 3, inclusive).
    pub consecutive: u32,
    /// Actions added when a run reaches `consecutive`.
    pub consecutive_actions: Vec<Arc<str>>,
}

/// A scoring category and its cap (坐席员考核细则 一(五): 扣完为止).
#[derive(Clone, Debug, PartialEq)]
pub struct Category {
    /// Id used in deductions.
    pub id: Arc<str>,
    /// Chinese label.
    pub zh: String,
    /// English label.
    pub en: String,
    /// The most this category can cost in a month; `None` for no cap.
    pub cap: Option<Points>,
}

/// Whether a catalogue rule takes points away or adds them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    /// Deducts points.
    Deduction,
    /// Adds points (衡水 考核奖励项).
    Bonus,
}

/// A rule in the policy's catalogue: what a deduction or bonus is for.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Id used in deductions and the ledger.
    pub id: Arc<str>,
    /// Category it counts against.
    pub category: Arc<str>,
    /// Chinese label.
    pub zh: String,
    /// English label.
    pub en: String,
    /// The seed section it encodes.
    pub seed: String,
    /// Points for a manual entry when none are given.
    pub points: Option<Points>,
    /// Deduction or bonus.
    pub kind: RuleKind,
    /// Absence days an entry under this rule also counts as (坐席员考核细则
    /// 二(一)1–2: 无故缺席 … 同时按旷工计算); zero for most rules.
    pub absence_days: Points,
}

/// A label pair for a ladder action.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionLabel {
    /// Chinese label.
    pub zh: String,
    /// English label.
    pub en: String,
}

/// A validated attendance policy.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Short id (`seed-default`).
    pub id: String,
    /// Version text, stored with every verdict it produces.
    pub version: String,
    /// Human title.
    pub name: String,
    /// The site's time zone; every local time in the policy is in it.
    pub tz: Tz,
    /// Every shift, indexed by [`ShiftIdx`].
    pub shifts: Vec<Shift>,
    /// Shift id → index.
    pub shift_ids: HashMap<Arc<str>, ShiftIdx>,
    /// The shift on a workday for employees without their own default.
    pub default_shift: Option<ShiftIdx>,
    /// Weekly workdays, Monday first.
    pub workdays: [bool; 7],
    /// What a date with no roster row means.
    pub unrostered: Unrostered,
    /// Holidays and make-up workdays the policy file lists itself.
    pub holidays: Holidays,
    /// Seconds before shift start where the punch window opens.
    pub window_before_secs: i64,
    /// Seconds after shift end where the punch window closes.
    pub window_after_secs: i64,
    /// Punches of one employee within this many seconds of the previous
    /// kept punch are the same punch (merged within a shift only).
    pub dedupe_secs: i64,
    /// A shift whose punches all lie within this many seconds of its first
    /// is one visit (`[window] visit_minutes`, default 30 minutes).
    pub visit_secs: i64,
    /// Worked-minute thresholds (`[hours]`).
    pub hours: Hours,
    /// Grading of check-in lateness.
    pub lateness: Grading,
    /// Grading of check-out earliness.
    pub earliness: Grading,
    /// Absence points, the day cap and missing-punch treatment.
    pub absence: Absence,
    /// The escalation ladder, when the policy has one.
    pub ladder: Option<Ladder>,
    /// Leaving-post grading, when the policy has `[leaving_post]`.
    pub leaving_post: Option<LeavingPost>,
    /// Overtime recording, when the policy has `[overtime]`.
    pub overtime: Option<Overtime>,
    /// Leave flags, when the policy has `[leave]`.
    pub leave: Option<LeaveRules>,
    /// Monthly score base (100).
    pub score_base: Points,
    /// Days after publication during which an entry may be appealed.
    pub appeal_days: u32,
    /// Appeal answers, year results and correction limits.
    pub hr: HrRules,
    /// Scoring categories in file order.
    pub categories: Vec<Category>,
    /// The rule catalogue by id.
    pub rules: BTreeMap<Arc<str>, Rule>,
    /// Labels of ladder actions by id.
    pub actions: BTreeMap<Arc<str>, ActionLabel>,
}

impl Policy {
    /// The shift with this index.
    pub fn shift(&self, idx: ShiftIdx) -> &Shift {
        &self.shifts[idx.0 as usize]
    }

    /// Looks a shift up by id.
    pub fn shift_by_id(&self, id: &str) -> Option<ShiftIdx> {
        self.shift_ids.get(id).copied()
    }

    /// True when the weekday is a weekly workday.
    pub fn is_weekly_workday(&self, wd: Weekday) -> bool {
        self.workdays[wd.num_days_from_monday() as usize]
    }

    /// The widest window margins of any shift, before and after, in
    /// seconds: how far a neighbouring date's window can reach.
    pub fn max_window_secs(&self) -> (i64, i64) {
        self.shifts.iter().fold(
            (self.window_before_secs, self.window_after_secs),
            |(b, a), s| (b.max(s.before_secs), a.max(s.after_secs)),
        )
    }

    /// The category a rule counts against.
    pub fn rule_category(&self, rule: &str) -> Option<&Arc<str>> {
        self.rules.get(rule).map(|r| &r.category)
    }
}

/// The policy's HR rules beyond the daily grading.
#[derive(Clone, Debug, PartialEq)]
pub struct HrRules {
    /// Days after filing within which an appeal is answered, counted like
    /// the filing window (坐席员考核细则 一(七): `appeal_answer_days`).
    pub appeal_answer_days: u32,
    /// A year score below this fails the year (坐席员考核细则 一(九)(十):
    /// `pass_mark`).
    pub pass_mark: Points,
    /// `[corrections] per_month`: confirmed forgotten punches (补卡) per
    /// employee per month; `None`: no limit.
    pub corrections_per_month: Option<u32>,
    /// `[corrections] within_days`: calendar days after the punch's day
    /// during which a correction may still be recorded; `None`: no limit.
    pub corrections_within_days: Option<u32>,
}
