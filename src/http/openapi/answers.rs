//! Descriptions of the answers of the HR API: mirrors of the JSON the
//! handlers build from domain and store types (never constructed; they
//! keep HTTP concerns out of those layers). Where a handler can answer a
//! date before classification starts (policy.md, "Real sites"), the fields
//! of that answer are optional.

// Descriptions of JSON, never built or read.
#![allow(dead_code)]

use std::collections::BTreeMap;

use utoipa::ToSchema;

use super::EntryKind;

/// An XLSX workbook.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Workbook(Vec<u8>);

/// A page of a list, any items.
#[derive(ToSchema)]
pub struct Page {
    pub items: Vec<serde_json::Value>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub next_offset: Option<u64>,
}

/// `GET /api/v1/whoami`.
#[derive(ToSchema)]
pub struct WhoAmI {
    /// The token's name.
    pub name: String,
    /// hr, supervisor:{team} or terminal-admin.
    pub role: String,
    /// A supervisor's team.
    pub team: Option<String>,
}

/// A category of the policy.
#[derive(ToSchema)]
pub struct CategoryView {
    pub id: String,
    pub zh: String,
    pub en: String,
    /// The most it can cost in a month; null for no cap.
    pub cap: Option<f64>,
}

/// A rule of the policy's catalogue.
#[derive(ToSchema)]
pub struct RuleView {
    pub category: String,
    pub zh: String,
    pub en: String,
    /// The rule text it implements.
    pub seed: String,
    /// Default points; null when given per entry.
    pub points: Option<f64>,
    #[schema(inline)]
    pub kind: EntryKind,
}

/// Labels of a ladder action.
#[derive(ToSchema)]
pub struct ActionView {
    pub zh: String,
    pub en: String,
}

/// The `[corrections]` limits; null for none.
#[derive(ToSchema)]
pub struct CorrectionLimits {
    pub per_month: Option<u32>,
    pub within_days: Option<u32>,
}

/// `GET /api/v1/policy`.
#[derive(ToSchema)]
pub struct PolicyView {
    pub id: String,
    pub version: String,
    pub name: String,
    /// IANA zone.
    pub timezone: String,
    /// Today in that zone.
    #[schema(format = Date)]
    pub today: String,
    pub appeal_days: u32,
    pub appeal_answer_days: u32,
    pub pass_mark: f64,
    pub corrections: CorrectionLimits,
    pub categories: Vec<CategoryView>,
    /// By rule id.
    pub rules: BTreeMap<String, RuleView>,
    /// By action id.
    pub actions: BTreeMap<String, ActionView>,
    /// Each `[[policy.group]]` in force.
    pub groups: Vec<PolicyGroup>,
}

/// A `[[policy.group]]` in force.
#[derive(ToSchema)]
pub struct PolicyGroup {
    /// The group's id (employees name it).
    pub id: String,
    /// Its policy's id.
    pub policy: String,
    pub version: String,
    /// IANA zone.
    pub timezone: String,
}

/// A stored verdict (the fields of `attendd evaluate --json`); only its
/// main fields are listed here.
#[derive(ToSchema)]
pub struct DayVerdict {
    pub employee_id: String,
    #[schema(format = Date)]
    pub date: String,
    /// Shift id, null on a day without a shift.
    pub shift: Option<String>,
    pub status: String,
    /// First punch in the window, RFC 3339 with the policy zone's offset.
    #[schema(format = DateTime)]
    pub check_in: Option<String>,
    /// Last punch in the window.
    #[schema(format = DateTime)]
    pub check_out: Option<String>,
    pub late_minutes: i64,
    pub early_minutes: i64,
    /// 0, 0.5 or 1.
    pub absence_days: f64,
    /// Leave days taken, to a half day.
    pub leave_days: f64,
    /// Check-in to check-out minus time away; null when a side is missing
    /// (absent from verdicts stored before it was recorded).
    pub worked_minutes: Option<i64>,
    /// Overtime minutes (absent from verdicts stored before it was
    /// recorded).
    #[schema(required = false)]
    pub overtime_minutes: i64,
    /// The punch window is still open (absent from verdicts stored before
    /// it was recorded).
    #[schema(required = false)]
    pub provisional: bool,
    pub points: f64,
    pub actions: Vec<String>,
    pub deductions: Vec<serde_json::Value>,
    pub flags: Vec<serde_json::Value>,
    pub explanation: serde_json::Value,
    /// In an employee's month: the policy group of that day (`default`
    /// for the default policy).
    pub policy: Option<String>,
}

/// A row of the daily table.
#[derive(ToSchema)]
pub struct DayItem {
    pub employee_id: String,
    pub name: Option<String>,
    pub team: Option<String>,
    pub status: String,
    pub provisional: bool,
    pub verdict: DayVerdict,
}

/// `GET /api/v1/days/{date}`: a page of the daily table.
#[derive(ToSchema)]
pub struct DaysPage {
    #[schema(format = Date)]
    pub date: String,
    pub items: Vec<DayItem>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub next_offset: Option<u64>,
    /// Before classification starts: the first date classified.
    #[schema(format = Date)]
    pub classify_from: Option<String>,
    /// Before classification starts: why there are no rows.
    pub note: Option<String>,
}

/// The policy a summary was made with.
#[derive(ToSchema)]
pub struct PolicyRef {
    pub id: String,
    pub version: String,
}

/// Totals of a summary.
#[derive(ToSchema)]
pub struct SummaryTotals {
    pub employees: i64,
    pub points: f64,
    /// Employees by status.
    pub by_status: BTreeMap<String, i64>,
    /// Employees by team, then status.
    pub by_team: BTreeMap<String, BTreeMap<String, i64>>,
}

/// A row of a summary.
#[derive(ToSchema)]
pub struct SummaryRow {
    pub employee_id: String,
    /// The policy group the employee follows that day (`default` for the
    /// default policy).
    pub policy: String,
    pub name: Option<String>,
    pub team: String,
    pub status: String,
    pub provisional: bool,
    pub points: f64,
    pub deductions: Vec<serde_json::Value>,
    pub actions: Vec<String>,
}

/// `GET /api/v1/summaries/{date}`.
#[derive(ToSchema)]
pub struct Summary {
    #[schema(format = Date)]
    pub date: String,
    pub policy: Option<PolicyRef>,
    pub provisional: Option<bool>,
    pub totals: SummaryTotals,
    pub rows: Vec<SummaryRow>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub next_offset: Option<u64>,
    /// Before classification starts: the first date classified.
    #[schema(format = Date)]
    pub classify_from: Option<String>,
    /// Before classification starts: why there are no rows.
    pub note: Option<String>,
}

/// Someone missing.
#[derive(ToSchema)]
pub struct MissingItem {
    pub employee_id: String,
    /// The employee's policy group (`default` for the default policy).
    pub policy: String,
    pub name: String,
    pub team: String,
    pub shift: String,
    /// RFC 3339, policy zone.
    #[schema(format = DateTime)]
    pub shift_start: String,
    pub minutes_since_start: i64,
}

/// `GET /api/v1/missing/{date}`.
#[derive(ToSchema)]
pub struct Missing {
    #[schema(format = Date)]
    pub date: String,
    /// Today only: the instant "so far" is.
    #[schema(format = DateTime)]
    pub as_of: Option<String>,
    /// Before classification starts: the first date classified.
    #[schema(format = Date)]
    pub classify_from: Option<String>,
    pub items: Vec<MissingItem>,
    pub total: u64,
}

/// An employee as the API shows them.
#[derive(ToSchema)]
pub struct EmployeeView {
    pub employee_id: String,
    pub name: String,
    pub team: String,
    pub supervisor: String,
}

/// A ledger entry.
#[derive(ToSchema)]
pub struct LedgerEntry {
    pub id: i64,
    pub employee_id: String,
    #[schema(format = Date)]
    pub date: String,
    pub category: String,
    pub rule: String,
    /// Always positive.
    pub points: f64,
    pub bonus: bool,
    /// device or manual
    pub source: String,
    pub evidence: Option<String>,
    pub recorded_by: String,
    #[schema(format = DateTime)]
    pub recorded_at: String,
    #[schema(format = DateTime)]
    pub voided_at: Option<String>,
    pub voided_by: Option<String>,
    pub void_cause: Option<String>,
}

/// A recorded correction (补卡).
#[derive(ToSchema)]
pub struct Correction {
    pub id: i64,
    pub employee_id: String,
    #[schema(format = DateTime)]
    pub time: String,
    pub reason: String,
    pub confirmed_by: String,
    #[schema(format = DateTime)]
    pub recorded_at: String,
}

/// An appeal, with when its answer is due and whether it is overdue.
#[derive(ToSchema)]
pub struct Appeal {
    pub id: i64,
    pub ledger_id: i64,
    pub employee_id: String,
    #[schema(format = DateTime)]
    pub filed_at: String,
    pub filed_by: String,
    pub reason: String,
    /// open, upheld or rejected
    pub status: String,
    #[schema(format = DateTime)]
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub answer: Option<String>,
    #[schema(format = DateTime)]
    pub answer_due: String,
    pub overdue: bool,
}

/// A category's points in a month.
#[derive(ToSchema)]
pub struct CategoryScore {
    /// Sum of the month's deductions in it.
    pub raw: f64,
    /// `min(raw, cap)`.
    pub capped: f64,
    /// The category cap, null when uncapped.
    pub cap: Option<f64>,
}

/// An employee's monthly score (the fields of `attendd month --json`).
#[derive(ToSchema)]
pub struct MonthScore {
    pub employee_id: String,
    /// YYYY-MM
    pub month: String,
    pub score: f64,
    /// Per category of the policy.
    pub categories: BTreeMap<String, CategoryScore>,
    pub bonuses: f64,
    pub attendance_days: f64,
    pub workdays: u32,
    pub absence_days: f64,
    pub leave_days: f64,
    #[schema(required = false)]
    pub overtime_minutes: i64,
    /// The employee's policy group; present for the rows of
    /// `GET /api/v1/months/{month}`.
    pub policy: Option<String>,
    /// Present for the rows of `GET /api/v1/months/{month}`.
    pub name: Option<String>,
    /// Present for the rows of `GET /api/v1/months/{month}`.
    pub team: Option<String>,
}

/// `GET /api/v1/employees/{id}/days`.
#[derive(ToSchema)]
pub struct EmployeeMonth {
    pub employee: EmployeeView,
    /// YYYY-MM
    pub month: String,
    #[schema(format = DateTime)]
    pub published_at: Option<String>,
    /// RFC 3339, policy zone.
    #[schema(format = DateTime)]
    pub appeal_deadline: Option<String>,
    /// The verdicts, each with `provisional`.
    pub days: Vec<DayVerdict>,
    pub ledger: Vec<LedgerEntry>,
    pub corrections: Vec<Correction>,
    pub appeals: Vec<Appeal>,
    pub score: Option<MonthScore>,
    /// The employee's policy group (`default` for the default policy).
    pub policy: Option<String>,
}

/// `GET /api/v1/months/{month}`: a page of scores.
#[derive(ToSchema)]
pub struct MonthPage {
    /// YYYY-MM
    pub month: String,
    #[schema(format = DateTime)]
    pub published_at: Option<String>,
    /// RFC 3339, policy zone.
    #[schema(format = DateTime)]
    pub appeal_deadline: Option<String>,
    pub categories: Vec<CategoryView>,
    pub items: Vec<MonthScore>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub next_offset: Option<u64>,
}

/// `POST /api/v1/months/{month}/publish`.
#[derive(ToSchema)]
pub struct Published {
    /// YYYY-MM
    pub month: String,
    /// False when it was published already.
    pub published: bool,
    #[schema(format = DateTime)]
    pub published_at: Option<String>,
    /// RFC 3339, policy zone.
    #[schema(format = DateTime)]
    pub appeal_deadline: Option<String>,
}

/// A month of a year result.
#[derive(ToSchema)]
pub struct YearMonth {
    /// YYYY-MM
    pub month: String,
    pub score: f64,
    pub workdays: u32,
}

/// One employee's year.
#[derive(ToSchema)]
pub struct YearResult {
    pub employee_id: String,
    pub name: String,
    pub team: String,
    pub months: Vec<YearMonth>,
    /// Mean of the months' scores, two decimals; null without any.
    pub score: Option<f64>,
    pub failed: bool,
    /// e.g. failed_two_consecutive_years
    pub flags: Vec<String>,
    /// The policy group at the year's end, whose pass_mark applies.
    pub policy: String,
}

/// `GET /api/v1/years/{year}`.
#[derive(ToSchema)]
pub struct YearResults {
    pub year: i32,
    pub pass_mark: f64,
    pub items: Vec<YearResult>,
}

/// A stored punch.
#[derive(ToSchema)]
pub struct Punch {
    pub id: i64,
    pub employee_id: String,
    /// RFC 3339, policy zone.
    #[schema(format = DateTime)]
    pub time: String,
    pub device_id: Option<String>,
    pub source: String,
    pub event_id: Option<String>,
    pub identity: String,
    #[schema(format = DateTime)]
    pub received_at: String,
}

/// `GET /api/v1/punches`: a page of punches.
#[derive(ToSchema)]
pub struct PunchesPage {
    #[schema(format = Date)]
    pub date: String,
    pub items: Vec<Punch>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub next_offset: Option<u64>,
}

/// What recording a correction did.
#[derive(ToSchema)]
pub struct CorrectionOutcome {
    pub id: i64,
    /// The local date the punch falls on.
    #[schema(format = Date)]
    pub date: String,
    /// Days evaluated again.
    pub evaluated: u64,
    /// Days whose verdict changed.
    pub changed: u64,
    /// Days of a published month that got an adjustment instead.
    pub adjustments: u64,
    /// HR's reason beyond the limits, when given.
    #[schema(rename = "override")]
    pub override_reason: Option<String>,
}

/// `GET /api/v1/appeals`: a page of appeals.
#[derive(ToSchema)]
pub struct AppealsPage {
    pub items: Vec<Appeal>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    pub next_offset: Option<u64>,
}

/// Kinds of quarantine rows.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum QuarantineKind {
    Undecodable,
    Unknown,
    Summary,
}

/// A quarantined payload.
#[derive(ToSchema)]
pub struct QuarantineItem {
    pub id: i64,
    pub source: String,
    pub reason: String,
    #[schema(format = DateTime)]
    pub received_at: String,
    pub payload_len: i64,
    /// The bytes as text (invalid UTF-8 replaced).
    pub payload: String,
    #[schema(inline)]
    pub kind: QuarantineKind,
    #[schema(format = DateTime)]
    pub resolved_at: Option<String>,
}

/// `GET /api/v1/quarantine`: newest first.
#[derive(ToSchema)]
pub struct QuarantinePage {
    pub items: Vec<QuarantineItem>,
    pub offset: u64,
    pub limit: u64,
    pub next_offset: Option<u64>,
}

/// What a replay did. `unresolved` and `skipped` hold `[id, why]` pairs.
#[derive(ToSchema)]
pub struct ReplayReport {
    pub examined: u64,
    pub resolved: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub unresolved: Vec<Vec<serde_json::Value>>,
    pub skipped: Vec<Vec<serde_json::Value>>,
    pub evaluated: u64,
}

/// A terminal seen in the punches.
#[derive(ToSchema)]
pub struct Terminal {
    pub device_id: String,
    pub punches: i64,
    #[schema(format = DateTime)]
    pub last_punch: String,
}

/// `GET /api/v1/terminals`.
#[derive(ToSchema)]
pub struct Terminals {
    pub items: Vec<Terminal>,
}

/// How a date of the month counts.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DateKind {
    Workday,
    Weekend,
    Holiday,
    MakeUpWorkday,
}

/// A column of the month grid.
#[derive(ToSchema)]
pub struct GridDate {
    #[schema(format = Date)]
    pub date: String,
    /// ISO weekday, Monday 1
    #[schema(minimum = 1, maximum = 7)]
    pub weekday: u8,
    #[schema(inline)]
    pub kind: DateKind,
}

/// The status of an employee-day.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DayStatus {
    Present,
    Late,
    EarlyLeave,
    LateAndEarly,
    AbsentHalf,
    AbsentFull,
    OnLeave,
    Field,
    Rest,
    Holiday,
    NotEmployed,
    NotArrived,
    InProgress,
}

/// A cell of the month grid.
#[derive(ToSchema)]
pub struct GridCell {
    #[schema(inline)]
    pub status: DayStatus,
    pub provisional: bool,
    #[schema(required = false)]
    pub flags: Vec<String>,
    #[schema(required = false)]
    pub late_minutes: i64,
    #[schema(required = false)]
    pub early_minutes: i64,
    #[schema(required = false)]
    pub overtime_minutes: i64,
}

/// A person's totals over the month.
#[derive(ToSchema)]
pub struct GridTotals {
    pub by_status: BTreeMap<String, i64>,
    pub workdays: i64,
    pub attendance_days: f64,
    pub absence_days: f64,
    pub leave_days: f64,
    pub overtime_minutes: i64,
    pub flagged_days: i64,
    pub score: f64,
}

/// A row of the month grid.
#[derive(ToSchema)]
pub struct GridRow {
    pub employee_id: String,
    pub name: String,
    pub team: String,
    /// `days[i]` belongs to `dates[i]`; null where no verdict is stored.
    pub days: Vec<Option<GridCell>>,
    pub totals: GridTotals,
}

/// `GET /api/v1/months/{month}/grid`.
#[derive(ToSchema)]
pub struct MonthGrid {
    #[schema(pattern = "^[0-9]{4}-[0-9]{2}$")]
    pub month: String,
    /// the policy's zone (IANA name)
    pub timezone: String,
    #[schema(format = DateTime)]
    pub published_at: Option<String>,
    /// teams the caller may filter on
    pub teams: Vec<String>,
    /// the team filter in force
    pub team: Option<String>,
    pub dates: Vec<GridDate>,
    pub items: Vec<GridRow>,
    pub total: u64,
    pub offset: u64,
    pub limit: u64,
    #[schema(required = true)]
    pub next_offset: Option<u64>,
}
