//! Policy files: the TOML a site writes, read in two stages.
//!
//! 1. [`RawPolicy`] mirrors the file. Unknown keys are rejected, so a typo
//!    (`grace_minute`) is an error, never a silently ignored setting.
//! 2. [`validate`] turns it into a [`Policy`], checking every cross
//!    reference (shift ids, rule ids, categories, ladder actions) and every
//!    range, and collecting *all* problems, each with its key.
//!
//! The format is documented in the README ("Writing a policy") and by the
//! four shipped files in `config/policies/`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::domain::points::Points;
use crate::domain::policy::*;
use crate::domain::types::{Grade, HolidayKind, ShiftIdx};

mod check;

/// The policy file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    /// Short id, e.g. `seed-default`.
    pub id: String,
    /// Version text stored with verdicts; change it when the rules change.
    pub version: String,
    /// Human title.
    #[serde(default)]
    pub name: String,
    /// IANA zone name; default `Asia/Shanghai`.
    #[serde(default = "default_tz")]
    pub timezone: String,
    /// Shift on weekly workdays for employees without their own.
    #[serde(default)]
    pub default_shift: Option<String>,
    /// Weekly workdays: `mon` … `sun`; default Monday to Friday.
    #[serde(default = "default_workdays")]
    pub workdays: Vec<String>,
    /// `default-shift` (weekly workdays carry the default shift) or `rest`
    /// (shifts come from the roster only).
    #[serde(default = "default_unrostered")]
    pub unrostered: String,
    /// Monthly score base; default 100.
    #[serde(default = "default_base")]
    pub score_base: Points,
    /// Days after publication during which an entry may be appealed;
    /// default 2 (坐席员考核细则 一(七)).
    #[serde(default = "default_appeal_days")]
    pub appeal_days: u32,
    /// Punch window and repeat merging.
    #[serde(default)]
    pub window: RawWindow,
    /// Worked-minute thresholds; absent: none.
    #[serde(default)]
    pub hours: Option<RawHours>,
    /// Shifts.
    #[serde(default)]
    pub shift: Vec<RawShift>,
    /// Holidays (`"2026-10-01" = "holiday"`) and make-up workdays
    /// (`"2026-09-28" = "workday"`).
    #[serde(default)]
    pub holidays: BTreeMap<String, String>,
    /// Grading of lateness at check-in.
    pub lateness: RawGrading,
    /// Grading of earliness at check-out.
    pub earliness: RawGrading,
    /// Absence points, day cap, missing punches.
    pub absence: RawAbsence,
    /// Escalation ladder; absent when the rule set has none.
    #[serde(default)]
    pub ladder: Option<RawLadder>,
    /// Leaving post (脱岗); absent: not graded.
    #[serde(default)]
    pub leaving_post: Option<RawLeavingPost>,
    /// Overtime (加班); absent: not recorded.
    #[serde(default)]
    pub overtime: Option<RawOvertime>,
    /// Leave rules (请假); absent: no leave flags.
    #[serde(default)]
    pub leave: Option<RawLeave>,
    /// Labels of ladder actions.
    #[serde(default)]
    pub actions: BTreeMap<String, RawLabel>,
    /// Scoring categories, in display order.
    #[serde(default)]
    pub category: Vec<RawCategory>,
    /// The rule catalogue by id.
    #[serde(default)]
    pub rule: BTreeMap<String, RawRule>,
    /// Days after filing within which an appeal must be answered, counted
    /// like the filing window; default 2 (坐席员考核细则 一(七)).
    #[serde(default = "default_appeal_days")]
    pub appeal_answer_days: u32,
    /// The year score below which a year is failed; default 60, a site's
    /// choice (坐席员考核细则 一(九)(十) gives no number).
    #[serde(default = "default_pass_mark")]
    pub pass_mark: Points,
    /// `[corrections]`: limits on forgotten-punch corrections (补卡).
    #[serde(default)]
    pub corrections: RawCorrections,
}

/// `[corrections]`: DingTalk's 补卡规则 for confirmed forgotten punches.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCorrections {
    /// Corrections per employee per month; absent: no limit.
    #[serde(default)]
    pub per_month: Option<u32>,
    /// Calendar days after the punch's day during which a correction may
    /// still be recorded; absent: no limit.
    #[serde(default)]
    pub within_days: Option<u32>,
}

fn default_pass_mark() -> Points {
    Points::from_hundredths(6000)
}

/// Checks the HR keys (`appeal_answer_days`, `pass_mark`, `[corrections]`)
/// and turns them into [`HrRules`].
fn validate_hr_rules(
    appeal_answer_days: u32,
    pass_mark: Points,
    score_base: Points,
    c: &RawCorrections,
    is: &mut Issues,
) -> HrRules {
    if appeal_answer_days == 0 || appeal_answer_days > 366 {
        is.push(
            "appeal_answer_days",
            format!("{appeal_answer_days} is outside 1 … 366 days"),
        );
    }
    if pass_mark < Points::ZERO || pass_mark > score_base {
        is.push(
            "pass_mark",
            format!("{pass_mark} is outside 0 … score_base ({score_base})"),
        );
    }
    if let Some(n) = c.per_month
        && !(1..=100).contains(&n)
    {
        is.push(
            "corrections.per_month",
            format!("{n} is outside 1 … 100 corrections a month (omit the key for no limit)"),
        );
    }
    if let Some(n) = c.within_days
        && n > 366
    {
        is.push(
            "corrections.within_days",
            format!("{n} is outside 0 … 366 days (omit the key for no limit)"),
        );
    }
    HrRules {
        appeal_answer_days,
        pass_mark,
        corrections_per_month: c.per_month,
        corrections_within_days: c.within_days,
    }
}

fn default_tz() -> String {
    "Asia/Shanghai".into()
}
fn default_workdays() -> Vec<String> {
    ["mon", "tue", "wed", "thu", "fri"]
        .map(String::from)
        .to_vec()
}
fn default_unrostered() -> String {
    "default-shift".into()
}
fn default_base() -> Points {
    Points::whole(100)
}
fn default_appeal_days() -> u32 {
    2
}

/// `[window]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    /// Minutes before shift start the window opens; default 240.
    #[serde(default = "default_window")]
    pub before_minutes: i64,
    /// Minutes after shift end the window closes; default 240.
    #[serde(default = "default_window")]
    pub after_minutes: i64,
    /// Punches within this many seconds of the previous one are one;
    /// default 60.
    #[serde(default = "default_dedupe")]
    pub dedupe_seconds: i64,
    /// A shift whose punches all lie within this many minutes of its first
    /// is one visit; default 30.
    #[serde(default = "default_visit")]
    pub visit_minutes: i64,
}

/// `[hours]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHours {
    /// Fewer worked minutes are half a day of absence.
    #[serde(default)]
    pub half_day_below: Option<i64>,
    /// Fewer worked minutes are a whole day of absence.
    #[serde(default)]
    pub absent_below: Option<i64>,
    /// Rule id for the deduction; required with either threshold.
    #[serde(default)]
    pub rule: Option<String>,
}

fn default_window() -> i64 {
    240
}
fn default_dedupe() -> i64 {
    60
}
fn default_visit() -> i64 {
    30
}

impl Default for RawWindow {
    fn default() -> Self {
        RawWindow {
            before_minutes: default_window(),
            after_minutes: default_window(),
            dedupe_seconds: default_dedupe(),
            visit_minutes: default_visit(),
        }
    }
}

/// `[[shift]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawShift {
    /// Id used by rosters.
    pub id: String,
    /// `HH:MM` local start.
    pub start: String,
    /// `HH:MM` local end.
    pub end: String,
    /// Must be true when the end is on the next day.
    #[serde(default)]
    pub overnight: bool,
    /// Grace for lateness and earliness on this shift; default: the
    /// `[lateness]` and `[earliness]` graces.
    #[serde(default)]
    pub grace_minutes: Option<i64>,
    /// Minutes before the start the window opens; default
    /// `[window] before_minutes`.
    #[serde(default)]
    pub before_minutes: Option<i64>,
    /// Minutes after the end the window closes; default
    /// `[window] after_minutes`.
    #[serde(default)]
    pub after_minutes: Option<i64>,
}

/// `[lateness]` / `[earliness]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrading {
    /// Minutes still on time.
    pub grace_minutes: i64,
    /// Steps beyond grace.
    pub steps: Vec<RawStep>,
}

/// One step of a grading ladder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Inclusive upper bound in minutes; omitted on the last step.
    #[serde(default)]
    pub up_to: Option<i64>,
    /// `minor`, `half-day` or `full-day`.
    pub grade: String,
    /// Rule id from `[rule.*]`.
    pub rule: String,
    /// Points; defaults to the absence points for `half-day`/`full-day`.
    #[serde(default)]
    pub points: Option<Points>,
}

/// `[absence]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAbsence {
    /// Points for half a day of absence.
    pub half_day_points: Points,
    /// Points for a whole day of absence.
    pub full_day_points: Points,
    /// The most one day can cost; omit for no cap.
    #[serde(default)]
    pub day_cap: Option<Points>,
    /// Rule for a workday without any punch.
    pub no_punch_rule: String,
    /// Points for a workday without any punch; default `full_day_points`.
    #[serde(default)]
    pub no_punch_points: Option<Points>,
    /// `absent-half` or `flag`.
    #[serde(default = "default_missing")]
    pub missing_punch: String,
    /// Rule for the missing side when `missing_punch = "absent-half"`.
    #[serde(default)]
    pub missing_punch_rule: Option<String>,
}

fn default_missing() -> String {
    "absent-half".into()
}

/// `[ladder]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLadder {
    /// Actions by occurrence; the last entry repeats.
    pub steps: Vec<Vec<String>>,
    /// Run of consecutive workdays that adds `consecutive_actions`; 0 = off.
    #[serde(default)]
    pub consecutive: u32,
    /// Actions for a run.
    #[serde(default)]
    pub consecutive_actions: Vec<String>,
}

/// `[leaving_post]` (坐席员考核细则 二(二)3).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLeavingPost {
    /// Local `HH:MM-HH:MM` windows in which time away is excused.
    #[serde(default)]
    pub allowed_breaks: Vec<String>,
    /// Minutes away still excused; default 0.
    #[serde(default)]
    pub grace_minutes: i64,
    /// Steps beyond grace, as `[lateness]`.
    pub steps: Vec<RawStep>,
    /// Let terminal direction codes decide instead of the pairing.
    #[serde(default)]
    pub trust_direction: bool,
}

/// `[overtime]` (坐席考勤管理制度 七).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOvertime {
    /// Fewer minutes are not overtime; default 30.
    #[serde(default = "default_overtime_min")]
    pub min_minutes: i64,
}

fn default_overtime_min() -> i64 {
    30
}

/// `[leave]` (坐席考勤管理制度 三).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLeave {
    /// Hours of notice a leave request needs; default 24.
    #[serde(default = "default_notice_hours")]
    pub notice_hours: i64,
    /// Calendar days of sick leave beyond which a hospital record is
    /// needed; default 3.
    #[serde(default = "default_sick_days")]
    pub sick_days_need_hospital_record: i64,
}

fn default_notice_hours() -> i64 {
    24
}
fn default_sick_days() -> i64 {
    3
}

/// A Chinese/English label pair.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLabel {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: String,
}

/// `[[category]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCategory {
    /// Id.
    pub id: String,
    /// Chinese label.
    pub zh: String,
    /// English label.
    pub en: String,
    /// Monthly cap; omit for none.
    #[serde(default)]
    pub cap: Option<Points>,
}

/// `[rule.ID]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Category id.
    pub category: String,
    /// Chinese label.
    pub zh: String,
    /// English label.
    pub en: String,
    /// Seed section it encodes.
    #[serde(default)]
    pub seed: String,
    /// Default points for manual entries.
    #[serde(default)]
    pub points: Option<Points>,
    /// `deduction` (default) or `bonus`.
    #[serde(default = "default_kind")]
    pub kind: String,
    /// Absence days a manual entry under this rule also counts as (0.5 or
    /// 1; 同时按旷工计算).
    #[serde(default)]
    pub absence_days: Option<Points>,
}

fn default_kind() -> String {
    "deduction".into()
}

/// One problem in a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key (`lateness.steps[1].rule`), empty for syntax errors.
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

/// Every problem found in one policy file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// The file (or `<inline>`).
    pub file: String,
    /// The problems, in file order where known.
    pub issues: Vec<Issue>,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, is) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(l) = is.line {
                write!(f, ":{l}")?;
            }
            if !is.key.is_empty() {
                write!(f, ": key `{}`", is.key)?;
            }
            write!(f, ": {}", is.message)?;
        }
        Ok(())
    }
}

/// Reads and validates a policy file.
pub fn load(path: &Path) -> Result<Policy, PolicyError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: file.clone(),
        issues: vec![Issue {
            key: String::new(),
            line: None,
            message: format!("cannot read: {e}"),
        }],
    })?;
    parse_str(&text, &file)
}

/// Parses and validates policy text; `origin` names it in errors.
pub fn parse_str(text: &str, origin: &str) -> Result<Policy, PolicyError> {
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        PolicyError {
            file: origin.to_string(),
            issues: vec![Issue {
                key: String::new(),
                line,
                message: e.message().trim().to_string(),
            }],
        }
    })?;
    let lines = KeyLines::new(text);
    validate(raw).map_err(|mut issues| {
        for is in &mut issues {
            is.line = lines.find(&is.key);
        }
        PolicyError {
            file: origin.to_string(),
            issues,
        }
    })
}

/// Finds the line a dotted key is written on, best effort, for messages.
struct KeyLines<'a> {
    lines: Vec<&'a str>,
}

impl<'a> KeyLines<'a> {
    fn new(text: &'a str) -> Self {
        KeyLines {
            lines: text.lines().collect(),
        }
    }

    fn find(&self, key: &str) -> Option<usize> {
        // The last plain segment of the key (`rule` in `lateness.steps[1].rule`).
        let last = key.rsplit('.').next()?;
        let last = last.split('[').next()?.trim_matches('"');
        if last.is_empty() {
            return None;
        }
        let section = key.split('.').next().unwrap_or("");
        let mut in_section = section == key;
        for (i, l) in self.lines.iter().enumerate() {
            let t = l.trim_start();
            if t.starts_with('[') {
                let name = t.trim_start_matches('[').split(']').next().unwrap_or("");
                in_section =
                    name.trim() == section || name.trim().starts_with(&format!("{section}."));
                if section == key && in_section {
                    return Some(i + 1);
                }
                continue;
            }
            if (in_section || section == last)
                && (t.starts_with(&format!("{last} "))
                    || t.starts_with(&format!("{last}="))
                    || t.contains(&format!(" {last} =")))
            {
                return Some(i + 1);
            }
        }
        None
    }
}

struct Issues(Vec<Issue>);

impl Issues {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            key: key.into(),
            line: None,
            message: message.into(),
        });
    }
}

fn parse_hm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(s, "%H:%M:%S"))
        .ok()
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Mon,
        "tue" | "tuesday" => Weekday::Tue,
        "wed" | "wednesday" => Weekday::Wed,
        "thu" | "thursday" => Weekday::Thu,
        "fri" | "friday" => Weekday::Fri,
        "sat" | "saturday" => Weekday::Sat,
        "sun" | "sunday" => Weekday::Sun,
        _ => return None,
    })
}

fn parse_grade(s: &str) -> Option<Grade> {
    Some(match s {
        "minor" => Grade::Minor,
        "half-day" => Grade::HalfDay,
        "full-day" => Grade::FullDay,
        _ => return None,
    })
}

pub use check::validate;

/// A day shift must end after it starts; a shift whose end is not after its
/// start must say `overnight = true`, and an overnight shift must end at or
/// before its start time on the next day.
fn check_shift_bounds(
    start: NaiveTime,
    end: NaiveTime,
    overnight: bool,
    is: &mut Issues,
    key: &str,
) {
    if !overnight && end <= start {
        is.push(
            format!("{key}.end"),
            "ends before it starts; set overnight = true for a shift that ends the next day",
        );
    }
    if overnight && end > start {
        is.push(
            format!("{key}.overnight"),
            "an overnight shift must end at or before its start time on the next day",
        );
    }
}

/// The label of the default policy (`[policy] file`, or `evaluate
/// --policy`) in records that name an employee's policy.
pub const DEFAULT_GROUP: &str = "default";

/// A site's rule sets (policy.md, "Several rule sets on one site"): the
/// default policy and the `[[policy.group]]`s by id. Index 0 is the
/// default; an employee's `policy` column picks one of the others.
#[derive(Clone, Debug)]
pub struct Policies {
    list: Vec<(String, std::sync::Arc<Policy>)>,
}

impl Policies {
    /// The default policy alone.
    pub fn single(default: Policy) -> Self {
        Policies {
            list: vec![(DEFAULT_GROUP.to_string(), std::sync::Arc::new(default))],
        }
    }

    /// The default policy and the groups; a group id that is empty,
    /// `default` or repeated is refused, naming it.
    pub fn new(default: Policy, groups: Vec<(String, Policy)>) -> Result<Self, String> {
        let mut p = Policies::single(default);
        for (id, policy) in groups {
            if id.trim().is_empty() || id != id.trim() {
                return Err(format!("policy group id {id:?} is empty or padded"));
            }
            if p.list.iter().any(|(g, _)| *g == id) {
                return Err(if id == DEFAULT_GROUP {
                    format!("policy group id {id:?} is reserved for the default policy")
                } else {
                    format!("policy group {id:?} is given twice")
                });
            }
            p.list.push((id, std::sync::Arc::new(policy)));
        }
        Ok(p)
    }

    /// The default policy.
    pub fn default_policy(&self) -> &Policy {
        &self.list[0].1
    }

    /// The default policy, shared.
    pub fn default_arc(&self) -> std::sync::Arc<Policy> {
        self.list[0].1.clone()
    }

    /// The index an employees.csv `policy` cell names: empty (or absent)
    /// is the default; an unknown id is an error listing the known ones.
    pub fn index_of(&self, group: Option<&str>) -> Result<usize, String> {
        let g = group.map(str::trim).unwrap_or("");
        if g.is_empty() {
            return Ok(0);
        }
        self.list.iter().position(|(id, _)| id == g).ok_or_else(|| {
            let known: Vec<&str> = self.list.iter().map(|(id, _)| id.as_str()).collect();
            format!(
                "policy {g:?} is no policy group (known: {})",
                known.join(", ")
            )
        })
    }

    /// The policy at `i` (from [`Policies::index_of`]); out of range is
    /// the default.
    pub fn get(&self, i: usize) -> &Policy {
        &self.list.get(i).unwrap_or(&self.list[0]).1
    }

    /// The id records carry for the policy at `i` (`default` for 0).
    pub fn label(&self, i: usize) -> &str {
        &self.list.get(i).unwrap_or(&self.list[0]).0
    }

    /// How many policies (the default counts).
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Never: the default is always there.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// What tables that mix the policies show: the default policy with the
    /// categories of all of them ([`Policies::category_union`]) and the
    /// rules of the groups that the default lacks.
    pub fn for_display(&self) -> Policy {
        let mut shown = self.default_policy().clone();
        shown.categories = self.category_union();
        for (_, p) in &self.list[1..] {
            for (id, r) in &p.rules {
                shown.rules.entry(id.clone()).or_insert_with(|| r.clone());
            }
        }
        shown
    }

    /// The categories of every policy, each id once, in order of first
    /// appearance (default first); a category whose cap differs between
    /// policies shows no cap.
    pub fn category_union(&self) -> Vec<crate::domain::policy::Category> {
        let mut out: Vec<crate::domain::policy::Category> = Vec::new();
        for (_, p) in &self.list {
            for c in &p.categories {
                match out.iter_mut().find(|o| o.id == c.id) {
                    Some(o) if o.cap != c.cap => o.cap = None,
                    Some(_) => {}
                    None => out.push(c.clone()),
                }
            }
        }
        out
    }
}

/// What takes a site's policies: [`Policies`], or one [`Policy`] alone
/// (a site without groups), shared or not.
pub trait PolicySet {
    /// The policies, the default first.
    fn as_policies(&self) -> std::borrow::Cow<'_, Policies>;
}

impl PolicySet for Policies {
    fn as_policies(&self) -> std::borrow::Cow<'_, Policies> {
        std::borrow::Cow::Borrowed(self)
    }
}

impl PolicySet for Policy {
    fn as_policies(&self) -> std::borrow::Cow<'_, Policies> {
        std::borrow::Cow::Owned(Policies::single(self.clone()))
    }
}

impl<T: PolicySet + ?Sized> PolicySet for std::sync::Arc<T> {
    fn as_policies(&self) -> std::borrow::Cow<'_, Policies> {
        (**self).as_policies()
    }
}

#[cfg(test)]
mod policies_tests {
    use super::*;

    fn shipped(name: &str) -> Policy {
        load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("config/policies/{name}.toml")))
            .unwrap()
    }

    #[test]
    fn groups_are_found_by_id_and_empty_is_the_default() {
        let p = Policies::new(
            shipped("seed-default"),
            vec![("outbound".into(), shipped("outbound-call-centre"))],
        )
        .unwrap();
        assert_eq!(p.index_of(None), Ok(0));
        assert_eq!(p.index_of(Some(" ")), Ok(0));
        assert_eq!(p.index_of(Some("outbound")), Ok(1));
        assert_eq!(p.get(1).id, "outbound-call-centre");
        assert_eq!(p.label(0), "default");
        assert_eq!(p.label(1), "outbound");
        let e = p.index_of(Some("inbound")).unwrap_err();
        assert!(
            e.contains("\"inbound\"") && e.contains("default, outbound"),
            "{e}"
        );
    }

    #[test]
    fn a_category_with_differing_caps_shows_none() {
        let a = shipped("seed-default");
        let mut b = a.clone();
        b.categories[0].cap = None;
        let p = Policies::new(a.clone(), vec![("b".into(), b)]).unwrap();
        let u = p.category_union();
        assert_eq!(u.len(), a.categories.len());
        assert_eq!(u[0].cap, None);
        assert_eq!(u[1].cap, a.categories[1].cap);
    }
}
