//! The engine's vocabulary: employees, punches, leave, roster rows, holiday
//! calendars, and the verdict an employee-day receives.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::points::Points;

/// An employee id as HR and the terminals spell it. Always text: terminals
/// send ids with leading zeros (`0217`) or letters, so ids are never parsed
/// as numbers.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmployeeId(pub Arc<str>);

impl EmployeeId {
    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmployeeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for EmployeeId {
    fn from(s: &str) -> Self {
        EmployeeId(Arc::from(s))
    }
}

/// Index of a shift in [`crate::domain::policy::Policy::shifts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShiftIdx(pub u16);

/// One person on the payroll, as employees.csv describes them.
#[derive(Clone, Debug, PartialEq)]
pub struct Employee {
    /// HR's id for the person (the terminals' PIN or `customId`).
    pub id: EmployeeId,
    /// Display name.
    pub name: String,
    /// Team, used to route alerts and to scope supervisors.
    pub team: String,
    /// The supervisor who is told about absences.
    pub supervisor: String,
    /// The person's default shift, overriding the policy's default shift.
    pub default_shift: Option<ShiftIdx>,
    /// Card numbers and face-match names that identify the person.
    pub aliases: Vec<String>,
    /// First day employed (inclusive); `None` when employees.csv leaves it
    /// empty. Earlier dates are `not_employed` (policy.md, "Employment
    /// dates").
    pub start_date: Option<NaiveDate>,
    /// Last day employed (inclusive); `None` when employees.csv leaves it
    /// empty. Later dates are `not_employed`.
    pub end_date: Option<NaiveDate>,
}

impl Employee {
    /// True when `date` lies within the employment dates.
    pub fn employed_on(&self, date: NaiveDate) -> bool {
        employed_on(self.start_date, self.end_date, date)
    }
}

/// True when `date` lies in `[start, end]`, either bound optional
/// (policy.md, "Employment dates": both inclusive).
pub fn employed_on(start: Option<NaiveDate>, end: Option<NaiveDate>, date: NaiveDate) -> bool {
    start.is_none_or(|s| date >= s) && end.is_none_or(|e| date <= e)
}

/// One recognition event, already attributed to an employee.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Punch {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// The terminal that saw it, when known.
    pub device: Option<Arc<str>>,
    /// The direction the terminal gave it, when it gave one (ZKTeco status
    /// 0/1/2/3, Hikvision `attendanceStatus`); read only under
    /// `[leaving_post] trust_direction = true`.
    pub direction: Option<Direction>,
}

/// A punch's direction as a terminal reported it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    /// Coming in: check-in, break-in (returns), overtime-in.
    In,
    /// Going out: check-out, break-out (leaves), overtime-out.
    Out,
}

impl Direction {
    /// The direction of a stored punch state (`check_in`, `break_out`, …,
    /// the names of [`crate::ingest::decode::PunchKind`]); `None` for
    /// anything else.
    pub fn of_state(state: &str) -> Option<Direction> {
        match state {
            "check_in" | "break_in" | "ot_in" => Some(Direction::In),
            "check_out" | "break_out" | "ot_out" => Some(Direction::Out),
            _ => None,
        }
    }
}

/// Whether a leave request was approved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaveStatus {
    /// Approved: excuses the time it covers.
    Approved,
    /// Waiting for a decision: excuses nothing (坐席考勤管理制度 三2).
    Pending,
    /// Refused: excuses nothing.
    Rejected,
}

/// A period of leave or field work (外出) for one employee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Leave {
    /// Start instant (inclusive).
    pub start: DateTime<Utc>,
    /// End instant (exclusive).
    pub end: DateTime<Utc>,
    /// `annual`, `sick`, `personal`, `field`, or a site's own kind.
    pub kind: Arc<str>,
    /// Approval state.
    pub status: LeaveStatus,
    /// When it was requested (leaves.csv `requested_at`), when known:
    /// 坐席考勤管理制度 三4 asks for a day's notice.
    pub requested_at: Option<DateTime<Utc>>,
    /// The document handed in (leaves.csv `document`, e.g. `certificate`
    /// or `hospital_record`): 坐席考勤管理制度 三3.
    pub document: LeaveDocument,
}

/// What is known about the document behind a leave (坐席考勤管理制度 三3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LeaveDocument {
    /// The source does not record documents (leaves.csv without a
    /// `document` column, the store): no document flag is raised.
    #[default]
    Unknown,
    /// The source records documents and this leave has none.
    Missing,
    /// The document handed in, lower case (`certificate`,
    /// `hospital_record`, …).
    Given(Arc<str>),
}

impl Leave {
    /// Field work (外出) is recorded as work done elsewhere, not as absence
    /// (坐席考勤管理制度 四2).
    pub fn is_field(&self) -> bool {
        &*self.kind == "field"
    }
}

/// What a roster row says about one employee-date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RosterEntry {
    /// The employee works this shift, starting on that date.
    Shift(ShiftIdx),
    /// The employee is off that date.
    Rest,
}

/// What the holiday calendar says about a date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolidayKind {
    /// A public holiday: no work unless rostered.
    Holiday,
    /// A make-up workday (调休): the default shift applies even on a weekend.
    Workday,
}

/// A holiday calendar: public holidays and make-up workdays by date.
pub type Holidays = BTreeMap<NaiveDate, HolidayKind>;

/// An employee's roster rows by date.
pub type Roster = HashMap<NaiveDate, RosterEntry>;

/// The status an employee-day ends with (`interfaces.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Worked the shift within grace on both sides.
    Present,
    /// Late beyond grace but not converted to absence.
    Late,
    /// Left early beyond grace but not converted to absence.
    EarlyLeave,
    /// Both late and early.
    LateAndEarly,
    /// Counts as half a day of absence.
    AbsentHalf,
    /// Counts as a whole day of absence.
    AbsentFull,
    /// Approved leave covering the whole shift.
    OnLeave,
    /// Approved field work covering the whole shift.
    Field,
    /// Not a workday.
    Rest,
    /// A public holiday.
    Holiday,
    /// Outside the employee's employment dates (policy.md, "Employment
    /// dates"): no points, not a workday.
    NotEmployed,
    /// The punch window is open and there is no punch yet (policy.md,
    /// "Today"); always provisional.
    NotArrived,
    /// Checked in, the window is open and no check-out can be told yet
    /// (policy.md, "Today"); always provisional. Lateness already known is
    /// in the deductions.
    InProgress,
}

impl Status {
    /// The snake_case name used in JSON and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Present => "present",
            Status::Late => "late",
            Status::EarlyLeave => "early_leave",
            Status::LateAndEarly => "late_and_early",
            Status::AbsentHalf => "absent_half",
            Status::AbsentFull => "absent_full",
            Status::OnLeave => "on_leave",
            Status::Field => "field",
            Status::Rest => "rest",
            Status::Holiday => "holiday",
            Status::NotEmployed => "not_employed",
            Status::NotArrived => "not_arrived",
            Status::InProgress => "in_progress",
        }
    }

    /// Chinese label, as HR reads it.
    pub fn label_zh(self) -> &'static str {
        match self {
            Status::Present => "正常",
            Status::Late => "迟到",
            Status::EarlyLeave => "早退",
            Status::LateAndEarly => "迟到且早退",
            Status::AbsentHalf => "旷工半天",
            Status::AbsentFull => "旷工一天",
            Status::OnLeave => "请假",
            Status::Field => "外出",
            Status::Rest => "休息",
            Status::Holiday => "节假日",
            Status::NotEmployed => "未在职",
            Status::NotArrived => "未到岗",
            Status::InProgress => "在岗中",
        }
    }

    /// True for days the employee was expected to work.
    pub fn is_workday(self) -> bool {
        !matches!(self, Status::Rest | Status::Holiday | Status::NotEmployed)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one side of a shift (arrival or departure) was graded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grade {
    /// Within grace.
    OnTime,
    /// Late or early beyond grace, not converted to absence.
    Minor,
    /// Converted to half a day of absence.
    HalfDay,
    /// Converted to a whole day of absence.
    FullDay,
}

impl Grade {
    /// The absence this grade counts as, in days.
    pub fn absence(self) -> Points {
        match self {
            Grade::OnTime | Grade::Minor => Points::ZERO,
            Grade::HalfDay => Points::HALF,
            Grade::FullDay => Points::ONE,
        }
    }
}

/// One deduction (or bonus, with negative points never used here) that a
/// day's verdict puts in the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deduction {
    /// Rule id from the policy's catalogue.
    pub rule: Arc<str>,
    /// Category the points count against.
    pub category: Arc<str>,
    /// Points deducted.
    pub points: Points,
}

/// A grading of one side of a shift, with the minutes that led to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideGrade {
    /// Whole minutes late (or early), rounded down.
    pub minutes: i64,
    /// The outcome.
    pub grade: Grade,
    /// The rule applied, when any (none when on time).
    pub rule: Option<Arc<str>>,
    /// Points before the day cap.
    pub points: Points,
}

/// The side of a shift that has no punch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingSide {
    /// No check-in: the only punch was nearer the end.
    CheckIn,
    /// No check-out: the only punch was nearer the start.
    CheckOut,
}

/// A condition on a day that HR should look at, whatever its points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flag {
    /// Exactly one punch, taken as the check-out.
    MissingCheckIn,
    /// Exactly one punch, taken as the check-in.
    MissingCheckOut,
    /// Approved leave covered part of the shift.
    PartialLeave,
    /// Approved field work covered part of the shift.
    PartialField,
    /// A mid-shift punch without its partner (坐席员考核细则 二(二)3:
    /// leaves and returns pair up); not deducted.
    UnpairedPunch,
    /// Leave requested less than `[leave] notice_hours` before its start
    /// (坐席考勤管理制度 三4: 提前一天以上).
    LeaveShortNotice,
    /// Sick leave without a document (坐席考勤管理制度 三3: 病假证明).
    SickLeaveNoCertificate,
    /// Sick leave of more than `[leave] sick_days_need_hospital_record`
    /// calendar days without `hospital_record` (坐席考勤管理制度 三3:
    /// 超过三天的病假需提供医院的病历证明).
    SickLeaveNeedsHospitalRecord,
    /// The punches fit another shift of the policy within its grace while
    /// the rostered shift has none (坐席员考核细则 二(一)7: 擅自换班); a
    /// supervisor confirms with a manual entry.
    PossibleShiftSwap,
}

impl Flag {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::MissingCheckIn => "missing_check_in",
            Flag::MissingCheckOut => "missing_check_out",
            Flag::PartialLeave => "partial_leave",
            Flag::PartialField => "partial_field",
            Flag::UnpairedPunch => "unpaired_punch",
            Flag::LeaveShortNotice => "leave_short_notice",
            Flag::SickLeaveNoCertificate => "sick_leave_no_certificate",
            Flag::SickLeaveNeedsHospitalRecord => "sick_leave_needs_hospital_record",
            Flag::PossibleShiftSwap => "possible_shift_swap",
        }
    }
}

/// A punch shown in an explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PunchRef {
    /// When, in the policy's zone.
    pub time: DateTime<FixedOffset>,
    /// The terminal, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<Arc<str>>,
}

/// Leave or field work that changed a day's expectations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaveRef {
    /// Kind of leave.
    pub kind: Arc<str>,
    /// Start, in the policy's zone.
    pub start: DateTime<FixedOffset>,
    /// End, in the policy's zone.
    pub end: DateTime<FixedOffset>,
}

/// One ladder step reached on a day (坐席考勤管理制度 五2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LadderHit {
    /// `late` or `early_leave`.
    pub kind: Arc<str>,
    /// The occurrence's number in the period (1 for the first).
    pub occurrence: u32,
    /// Length of the run of consecutive workdays of this kind ending here.
    pub consecutive: u32,
    /// Actions the ladder prescribes for this occurrence.
    pub actions: Vec<Arc<str>>,
}

/// Why the day came out as it did: every input and rule that decided it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// Why the date is or is not a workday: `weekday`, `weekend`,
    /// `holiday`, `make_up_workday`, `roster`, `roster_rest`, `not_rostered`.
    pub day_kind: String,
    /// Scheduled shift start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift_start: Option<DateTime<FixedOffset>>,
    /// Scheduled shift end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shift_end: Option<DateTime<FixedOffset>>,
    /// Expected start after partial leave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_start: Option<DateTime<FixedOffset>>,
    /// Expected end after partial leave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_end: Option<DateTime<FixedOffset>>,
    /// First instant of the punch window (inclusive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start: Option<DateTime<FixedOffset>>,
    /// Last instant of the punch window: included, unless the next
    /// shift's window starts there (policy.md, "Windows").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_end: Option<DateTime<FixedOffset>>,
    /// Punches in the window after merging repeats.
    pub punches: Vec<PunchRef>,
    /// Punches merged into an earlier one as repeats (within this shift
    /// only).
    pub repeats_merged: u32,
    /// The shift's punches all lay within `[window] visit_minutes` of the
    /// first: one visit to the terminal, sided by the one-punch rule
    /// (policy.md, "One visit, one punch").
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub one_visit: bool,
    /// Minutes of the shift covered by approved leave or field work.
    #[serde(skip_serializing_if = "is_zero_i64", default)]
    pub excused_minutes: i64,
    /// Leave that excused the day or moved its expected start or end.
    pub leave: Vec<LeaveRef>,
    /// Arrival grading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late: Option<SideGrade>,
    /// Departure grading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early: Option<SideGrade>,
    /// The side with no punch, when there was exactly one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<MissingSide>,
    /// Worked minutes graded under `[hours]`, when they decided the day
    /// (worse than the lateness and earliness grading).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub short_hours: Option<SideGrade>,
    /// Time away between mid-shift punches (leaves, returns) and its
    /// grading under `[leaving_post]` (坐席员考核细则 二(二)3), when any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub away: Option<SideGrade>,
    /// The day's points before the day cap, when the cap lowered them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncapped_points: Option<Points>,
    /// Ladder steps reached on this day.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub ladder: Vec<LadderHit>,
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

/// The verdict on one employee-day, with its explanation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayVerdict {
    /// Who.
    pub employee_id: EmployeeId,
    /// The date the shift starts on.
    pub date: NaiveDate,
    /// Shift id, or null on a day without a shift.
    pub shift: Option<Arc<str>>,
    /// Outcome.
    pub status: Status,
    /// First punch in the window.
    pub check_in: Option<DateTime<FixedOffset>>,
    /// Last punch in the window.
    pub check_out: Option<DateTime<FixedOffset>>,
    /// Whole minutes late, rounded down; 0 when on time or absent.
    pub late_minutes: i64,
    /// Whole minutes early, rounded down; 0 when on time or absent.
    pub early_minutes: i64,
    /// 0, 0.5 or 1.
    pub absence_days: Points,
    /// Leave days taken: the share of the shift covered by approved leave,
    /// rounded to a half day (a quarter and three quarters round up), and
    /// never more than `1 − absence_days` (policy.md, "Partial leave").
    pub leave_days: Points,
    /// Whole minutes from check-in to check-out minus time away; `null`
    /// when a side is missing (policy.md, "Worked minutes").
    #[serde(default)]
    pub worked_minutes: Option<i64>,
    /// Overtime (坐席考勤管理制度 七: 加班记录): whole minutes after the
    /// shift's end when at least `[overtime] min_minutes`, or on a rest day
    /// or holiday the span from the first to the last punch. Never points.
    #[serde(default)]
    pub overtime_minutes: i64,
    /// The punch window is still open at the `now` the verdict was made
    /// for: a side that has not happened yet is not graded (policy.md,
    /// "Today").
    #[serde(default)]
    pub provisional: bool,
    /// Points deducted, after the day cap.
    pub points: Points,
    /// Ladder actions HR and the supervisor are told about.
    pub actions: Vec<Arc<str>>,
    /// The ledger entries this day produces.
    pub deductions: Vec<Deduction>,
    /// Conditions HR should look at.
    pub flags: Vec<Flag>,
    /// Why.
    pub explanation: Explanation,
}
