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

/// Validates a raw policy, returning every problem found.
pub fn validate(raw: RawPolicy) -> Result<Policy, Vec<Issue>> {
    let mut is = Issues(Vec::new());

    if raw.id.trim().is_empty() {
        is.push("id", "must not be empty");
    }
    if raw.version.trim().is_empty() {
        is.push("version", "must not be empty");
    }
    let tz: Tz = match raw.timezone.parse() {
        Ok(tz) => tz,
        Err(_) => {
            is.push(
                "timezone",
                format!(
                    "{:?} is not an IANA time zone (e.g. Asia/Shanghai)",
                    raw.timezone
                ),
            );
            chrono_tz::Asia::Shanghai
        }
    };

    // Categories and rules first: everything else refers to them.
    let mut categories = Vec::new();
    for (i, c) in raw.category.iter().enumerate() {
        if categories.iter().any(|x: &Category| *x.id == *c.id) {
            is.push(
                format!("category[{i}].id"),
                format!("duplicate category {:?}", c.id),
            );
        }
        if c.cap.is_some_and(|cap| cap < Points::ZERO) {
            is.push(format!("category[{i}].cap"), "must not be negative");
        }
        categories.push(Category {
            id: Arc::from(c.id.as_str()),
            zh: c.zh.clone(),
            en: c.en.clone(),
            cap: c.cap,
        });
    }
    let mut rules = BTreeMap::new();
    for (id, r) in &raw.rule {
        let key = format!("rule.{id}");
        let Some(cat) = categories.iter().find(|c| *c.id == *r.category) else {
            is.push(
                format!("{key}.category"),
                format!(
                    "unknown category {:?} (declare it in [[category]])",
                    r.category
                ),
            );
            continue;
        };
        let kind = match r.kind.as_str() {
            "deduction" => RuleKind::Deduction,
            "bonus" => RuleKind::Bonus,
            other => {
                is.push(
                    format!("{key}.kind"),
                    format!("{other:?} is not `deduction` or `bonus`"),
                );
                RuleKind::Deduction
            }
        };
        if r.points.is_some_and(|p| p < Points::ZERO) {
            is.push(format!("{key}.points"), "must not be negative");
        }
        let absence_days = r.absence_days.unwrap_or(Points::ZERO);
        if let Some(a) = r.absence_days {
            if a != Points::HALF && a != Points::ONE {
                is.push(
                    format!("{key}.absence_days"),
                    format!("{a} is not 0.5 or 1 (days of absence an entry counts as)"),
                );
            } else if kind == RuleKind::Bonus {
                is.push(
                    format!("{key}.absence_days"),
                    "a bonus cannot count as absence",
                );
            }
        }
        rules.insert(
            Arc::<str>::from(id.as_str()),
            Rule {
                id: Arc::from(id.as_str()),
                category: cat.id.clone(),
                zh: r.zh.clone(),
                en: r.en.clone(),
                seed: r.seed.clone(),
                points: r.points,
                kind,
                absence_days,
            },
        );
    }
    let rule_ref = |is: &mut Issues, key: String, id: &str| -> Arc<str> {
        match rules.get_key_value(id) {
            Some((k, r)) => {
                if r.kind == RuleKind::Bonus {
                    is.push(key, format!("rule {id:?} is a bonus, not a deduction"));
                }
                k.clone()
            }
            None => {
                is.push(
                    key,
                    format!("unknown rule {id:?} (declare it as [rule.{id}])"),
                );
                Arc::from(id)
            }
        }
    };

    // Shifts.
    let mut shifts = Vec::new();
    let mut shift_ids = HashMap::new();
    for (i, s) in raw.shift.iter().enumerate() {
        let key = format!("shift[{i}]");
        if s.id.trim().is_empty() || s.id == "rest" {
            is.push(
                format!("{key}.id"),
                format!("{:?} cannot be a shift id", s.id),
            );
        }
        let start = parse_hm(&s.start);
        let end = parse_hm(&s.end);
        if start.is_none() {
            is.push(
                format!("{key}.start"),
                format!("{:?} is not HH:MM", s.start),
            );
        }
        if end.is_none() {
            is.push(format!("{key}.end"), format!("{:?} is not HH:MM", s.end));
        }
        let (start, end) = (start.unwrap_or_default(), end.unwrap_or_default());
        check_shift_bounds(start, end, s.overnight, &mut is, &key);
        for (k, v) in [
            ("grace_minutes", s.grace_minutes),
            ("before_minutes", s.before_minutes),
            ("after_minutes", s.after_minutes),
        ] {
            if let Some(v) = v
                && !(0..=24 * 60).contains(&v)
            {
                is.push(
                    format!("{key}.{k}"),
                    format!("{v} is outside 0 … 1440 minutes"),
                );
            }
        }
        let id: Arc<str> = Arc::from(s.id.as_str());
        if shift_ids.insert(id.clone(), ShiftIdx(i as u16)).is_some() {
            is.push(format!("{key}.id"), format!("duplicate shift {:?}", s.id));
        }
        shifts.push(Shift {
            id,
            start,
            end,
            overnight: s.overnight,
            grace_minutes: s.grace_minutes,
            before_secs: s.before_minutes.unwrap_or(raw.window.before_minutes) * 60,
            after_secs: s.after_minutes.unwrap_or(raw.window.after_minutes) * 60,
        });
    }
    if shifts.is_empty() {
        is.push("shift", "at least one [[shift]] is required");
    }
    let default_shift = match &raw.default_shift {
        Some(id) => match shift_ids.get(id.as_str()) {
            Some(s) => Some(*s),
            None => {
                is.push("default_shift", format!("unknown shift {id:?}"));
                None
            }
        },
        None => None,
    };
    let unrostered = match raw.unrostered.as_str() {
        "default-shift" => {
            if default_shift.is_none() {
                is.push(
                    "default_shift",
                    "required unless unrostered = \"rest\" (which shift do weekly workdays carry?)",
                );
            }
            Unrostered::DefaultShift
        }
        "rest" => Unrostered::Rest,
        other => {
            is.push(
                "unrostered",
                format!("{other:?} is not `default-shift` or `rest`"),
            );
            Unrostered::DefaultShift
        }
    };
    let mut workdays = [false; 7];
    for (i, w) in raw.workdays.iter().enumerate() {
        match parse_weekday(w) {
            Some(d) => workdays[d.num_days_from_monday() as usize] = true,
            None => is.push(
                format!("workdays[{i}]"),
                format!("{w:?} is not a weekday (mon … sun)"),
            ),
        }
    }
    let mut holidays = BTreeMap::new();
    for (d, k) in &raw.holidays {
        let key = format!("holidays.\"{d}\"");
        let Ok(date) = NaiveDate::parse_from_str(d, "%Y-%m-%d") else {
            is.push(key, format!("{d:?} is not a date YYYY-MM-DD"));
            continue;
        };
        match k.as_str() {
            "holiday" => holidays.insert(date, HolidayKind::Holiday),
            "workday" => holidays.insert(date, HolidayKind::Workday),
            other => {
                is.push(key, format!("{other:?} is not `holiday` or `workday`"));
                None
            }
        };
    }

    let w = &raw.window;
    for (k, v) in [
        ("window.before_minutes", w.before_minutes),
        ("window.after_minutes", w.after_minutes),
    ] {
        if !(0..=24 * 60).contains(&v) {
            is.push(k, format!("{v} is outside 0 … 1440 minutes"));
        }
    }
    if !(0..=3600).contains(&w.dedupe_seconds) {
        is.push(
            "window.dedupe_seconds",
            format!("{} is outside 0 … 3600 seconds", w.dedupe_seconds),
        );
    }
    if !(0..=24 * 60).contains(&w.visit_minutes) {
        is.push(
            "window.visit_minutes",
            format!("{} is outside 0 … 1440 minutes", w.visit_minutes),
        );
    }

    let a = &raw.absence;
    for (k, v) in [
        ("absence.half_day_points", a.half_day_points),
        ("absence.full_day_points", a.full_day_points),
    ] {
        if v < Points::ZERO {
            is.push(k, "must not be negative");
        }
    }
    let no_punch_rule = rule_ref(&mut is, "absence.no_punch_rule".into(), &a.no_punch_rule);
    let missing_punch = match a.missing_punch.as_str() {
        "absent-half" => match &a.missing_punch_rule {
            Some(r) => MissingPunch::AbsentHalf {
                rule: rule_ref(&mut is, "absence.missing_punch_rule".into(), r),
                points: a.half_day_points,
            },
            None => {
                is.push(
                    "absence.missing_punch_rule",
                    "required when missing_punch = \"absent-half\"",
                );
                MissingPunch::Flag
            }
        },
        "flag" => MissingPunch::Flag,
        other => {
            is.push(
                "absence.missing_punch",
                format!("{other:?} is not `absent-half` or `flag`"),
            );
            MissingPunch::Flag
        }
    };
    let absence = Absence {
        half_day_points: a.half_day_points,
        full_day_points: a.full_day_points,
        day_cap: a.day_cap,
        no_punch_rule,
        no_punch_points: a.no_punch_points.unwrap_or(a.full_day_points),
        missing_punch,
    };

    let grading_of = |name: &str, grace: i64, raw_steps: &[RawStep], is: &mut Issues| -> Grading {
        if grace < 0 {
            is.push(format!("{name}.grace_minutes"), "must not be negative");
        }
        let mut steps = Vec::new();
        let mut prev = grace;
        for (i, s) in raw_steps.iter().enumerate() {
            let key = format!("{name}.steps[{i}]");
            let last = i + 1 == raw_steps.len();
            match (s.up_to, last) {
                (Some(u), _) if u <= prev => is.push(
                    format!("{key}.up_to"),
                    format!("{u} must be greater than the previous bound {prev}"),
                ),
                (Some(u), _) => prev = u,
                (None, false) => {
                    is.push(format!("{key}.up_to"), "only the last step may omit up_to")
                }
                (None, true) => {}
            }
            let grade = parse_grade(&s.grade).unwrap_or_else(|| {
                is.push(
                    format!("{key}.grade"),
                    format!("{:?} is not `minor`, `half-day` or `full-day`", s.grade),
                );
                Grade::Minor
            });
            let points = match (s.points, grade) {
                (Some(p), _) => p,
                (None, Grade::HalfDay) => absence.half_day_points,
                (None, Grade::FullDay) => absence.full_day_points,
                (None, _) => {
                    is.push(format!("{key}.points"), "required for a `minor` step");
                    Points::ZERO
                }
            };
            if points < Points::ZERO {
                is.push(format!("{key}.points"), "must not be negative");
            }
            steps.push(Step {
                up_to: s.up_to,
                grade,
                rule: rule_ref(is, format!("{key}.rule"), &s.rule),
                points,
            });
        }
        if steps.is_empty() {
            is.push(format!("{name}.steps"), "at least one step is required");
        } else if steps.last().is_some_and(|s| s.up_to.is_some()) {
            is.push(
                format!("{name}.steps[{}].up_to", steps.len() - 1),
                "the last step must have no up_to (it covers everything beyond)",
            );
        }
        Grading {
            grace_minutes: grace,
            steps,
        }
    };
    let grading = |name: &str, g: &RawGrading, is: &mut Issues| {
        grading_of(name, g.grace_minutes, &g.steps, is)
    };
    let lateness = grading("lateness", &raw.lateness, &mut is);
    let earliness = grading("earliness", &raw.earliness, &mut is);
    let leaving_post = raw.leaving_post.as_ref().map(|lp| {
        let mut allowed_breaks = Vec::new();
        for (i, b) in lp.allowed_breaks.iter().enumerate() {
            let parsed = b
                .split_once('-')
                .and_then(|(a, z)| Some((parse_hm(a.trim())?, parse_hm(z.trim())?)));
            match parsed {
                Some(w) if w.0 != w.1 => allowed_breaks.push(w),
                _ => is.push(
                    format!("leaving_post.allowed_breaks[{i}]"),
                    format!("{b:?} is not a window HH:MM-HH:MM (e.g. \"11:30-12:30\")"),
                ),
            }
        }
        if lp.grace_minutes > 24 * 60 {
            is.push(
                "leaving_post.grace_minutes",
                format!("{} is outside 0 … 1440 minutes", lp.grace_minutes),
            );
        }
        LeavingPost {
            allowed_breaks,
            grading: grading_of("leaving_post", lp.grace_minutes, &lp.steps, &mut is),
            trust_direction: lp.trust_direction,
        }
    });
    let overtime = raw.overtime.as_ref().map(|o| {
        if !(1..=24 * 60).contains(&o.min_minutes) {
            is.push(
                "overtime.min_minutes",
                format!("{} is outside 1 … 1440 minutes", o.min_minutes),
            );
        }
        Overtime {
            min_minutes: o.min_minutes,
        }
    });
    let leave = raw.leave.as_ref().map(|l| {
        if !(0..=24 * 366).contains(&l.notice_hours) {
            is.push(
                "leave.notice_hours",
                format!("{} is outside 0 … 8784 hours", l.notice_hours),
            );
        }
        if !(0..=366).contains(&l.sick_days_need_hospital_record) {
            is.push(
                "leave.sick_days_need_hospital_record",
                format!(
                    "{} is outside 0 … 366 days",
                    l.sick_days_need_hospital_record
                ),
            );
        }
        LeaveRules {
            notice_hours: l.notice_hours,
            sick_days_need_hospital_record: l.sick_days_need_hospital_record,
        }
    });

    let hours = match &raw.hours {
        None => Hours::default(),
        Some(h) => {
            for (k, v) in [
                ("hours.half_day_below", h.half_day_below),
                ("hours.absent_below", h.absent_below),
            ] {
                if let Some(v) = v
                    && !(1..=24 * 60).contains(&v)
                {
                    is.push(k, format!("{v} is outside 1 … 1440 minutes"));
                }
            }
            if let (Some(half), Some(full)) = (h.half_day_below, h.absent_below)
                && full > half
            {
                is.push(
                    "hours.absent_below",
                    format!(
                        "{full} is above half_day_below = {half} (fewer minutes cannot be a smaller absence)"
                    ),
                );
            }
            let any = h.half_day_below.is_some() || h.absent_below.is_some();
            let rule = match (&h.rule, any) {
                (Some(r), _) => Some(rule_ref(&mut is, "hours.rule".into(), r)),
                (None, true) => {
                    is.push(
                        "hours.rule",
                        "required when half_day_below or absent_below is set",
                    );
                    None
                }
                (None, false) => None,
            };
            Hours {
                half_day_below: h.half_day_below,
                absent_below: h.absent_below,
                rule,
            }
        }
    };

    let mut actions = BTreeMap::new();
    for (id, l) in &raw.actions {
        actions.insert(
            Arc::<str>::from(id.as_str()),
            ActionLabel {
                zh: l.zh.clone(),
                en: l.en.clone(),
            },
        );
    }
    let action_ref = |is: &mut Issues, key: String, id: &str| -> Arc<str> {
        match actions.get_key_value(id) {
            Some((k, _)) => k.clone(),
            None => {
                is.push(
                    key,
                    format!("unknown action {id:?} (label it in [actions])"),
                );
                Arc::from(id)
            }
        }
    };
    let ladder = raw.ladder.as_ref().map(|l| {
        if l.steps.is_empty() {
            is.push("ladder.steps", "at least one step is required");
        }
        let steps = l
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.iter()
                    .enumerate()
                    .map(|(j, a)| action_ref(&mut is, format!("ladder.steps[{i}][{j}]"), a))
                    .collect()
            })
            .collect();
        let consecutive_actions = l
            .consecutive_actions
            .iter()
            .enumerate()
            .map(|(j, a)| action_ref(&mut is, format!("ladder.consecutive_actions[{j}]"), a))
            .collect();
        Ladder {
            steps,
            consecutive: l.consecutive,
            consecutive_actions,
        }
    });

    // `absence_days` is for manual entries: an engine rule already counts
    // its absence on the verdict, and counting it again would double it.
    let mut engine_rules: Vec<(String, &Arc<str>)> = Vec::new();
    for (name, g) in [("lateness", &lateness), ("earliness", &earliness)]
        .into_iter()
        .chain(
            leaving_post
                .as_ref()
                .map(|lp| ("leaving_post", &lp.grading)),
        )
    {
        for (i, st) in g.steps.iter().enumerate() {
            engine_rules.push((format!("{name}.steps[{i}].rule"), &st.rule));
        }
    }
    engine_rules.push(("absence.no_punch_rule".into(), &absence.no_punch_rule));
    if let MissingPunch::AbsentHalf { rule, .. } = &absence.missing_punch {
        engine_rules.push(("absence.missing_punch_rule".into(), rule));
    }
    if let Some(r) = &hours.rule {
        engine_rules.push(("hours.rule".into(), r));
    }
    for (used_by, id) in engine_rules {
        if rules.get(id).is_some_and(|r| !r.absence_days.is_zero()) {
            is.push(
                format!("rule.{id}.absence_days"),
                format!(
                    "only manual rules may count as absence; {used_by} uses rule {id:?}, whose days already count"
                ),
            );
        }
    }
    let hr = validate_hr_rules(
        raw.appeal_answer_days,
        raw.pass_mark,
        raw.score_base,
        &raw.corrections,
        &mut is,
    );

    if !is.0.is_empty() {
        return Err(is.0);
    }
    Ok(Policy {
        id: raw.id,
        version: raw.version,
        name: raw.name,
        tz,
        shifts,
        shift_ids,
        default_shift,
        workdays,
        unrostered,
        holidays,
        window_before_secs: raw.window.before_minutes * 60,
        window_after_secs: raw.window.after_minutes * 60,
        dedupe_secs: raw.window.dedupe_seconds,
        visit_secs: raw.window.visit_minutes * 60,
        hours,
        lateness,
        earliness,
        absence,
        ladder,
        leaving_post,
        overtime,
        leave,
        score_base: raw.score_base,
        appeal_days: raw.appeal_days,
        hr,
        categories,
        rules,
        actions,
    })
}

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
