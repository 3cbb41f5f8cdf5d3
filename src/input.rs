//! The CSV files HR hands attendd (`interfaces.md`, "CSV inputs").
//!
//! A header row; columns are found by name, in any order, and extra
//! columns are ignored. Files come from spreadsheet programs: [`load`]
//! accepts UTF-8 (with or without a byte-order mark), GB18030/GBK when the
//! bytes are not UTF-8 (a Chinese-locale spreadsheet's "CSV"), CRLF or LF
//! line ends (line numbers are the file's own either way), and `.xlsx`
//! workbooks (the first sheet; a row's line number is its sheet row). A bad row never stops the file: it becomes a
//! [`RowError`] naming the file, the line and the reason, and the good rows
//! are still returned. Whether a caller then uses the good rows (as
//! `evaluate` does) or refuses the whole file (as `import` does) is the
//! caller's choice.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use crate::domain::policy::Policy;
use crate::domain::time::resolve_local;
use crate::domain::types::{HolidayKind, LeaveDocument, LeaveStatus, RosterEntry, ShiftIdx};

mod load;

pub use load::{load, text_to_csv, xlsx_to_csv};

/// A row that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The file, as given on the command line.
    pub file: String,
    /// 1-based line number (the header is line 1).
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// The good rows of a file (each with its line) and the errors.
#[derive(Clone, Debug)]
pub struct Parsed<T> {
    /// Rows that were read, with their line numbers.
    pub rows: Vec<(u64, T)>,
    /// Rows that were not.
    pub errors: Vec<RowError>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            rows: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// A row of employees.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct EmployeeRow {
    /// `employee_id`.
    pub id: String,
    /// `name`.
    pub name: String,
    /// `team`.
    pub team: String,
    /// `supervisor`.
    pub supervisor: String,
    /// Optional `shift`: the person's default shift.
    pub shift: Option<ShiftIdx>,
    /// Optional `alias`: card numbers and face-match names, `;`-separated.
    pub aliases: Vec<String>,
    /// Optional `start_date`: first day employed (inclusive).
    pub start_date: Option<NaiveDate>,
    /// Optional `end_date`: last day employed (inclusive).
    pub end_date: Option<NaiveDate>,
    /// Optional `supervisor_contact`: the mobile number or robot user id
    /// that alerts @-mention.
    pub supervisor_contact: Option<String>,
    /// Optional `policy`: the index in [`crate::policy_file::Policies`] of the
    /// employee's policy group (0, the default, when empty or absent).
    pub policy: usize,
}

/// A row of punches.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct PunchRow {
    /// `employee_id`.
    pub employee_id: String,
    /// `time`, as an instant.
    pub time: DateTime<Utc>,
    /// Optional `device_id`.
    pub device_id: Option<Arc<str>>,
}

/// A row of roster.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct RosterRow {
    /// `employee_id`.
    pub employee_id: String,
    /// `date`.
    pub date: NaiveDate,
    /// `shift`: a shift id or `rest`.
    pub entry: RosterEntry,
}

/// A row of leaves.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct LeaveRow {
    /// `employee_id`.
    pub employee_id: String,
    /// `start`.
    pub start: DateTime<Utc>,
    /// `end`.
    pub end: DateTime<Utc>,
    /// `kind`.
    pub kind: Arc<str>,
    /// `status`.
    pub status: LeaveStatus,
    /// `requested_at` (optional): when the leave was asked for.
    pub requested_at: Option<DateTime<Utc>>,
    /// `document` (optional): `certificate`, `hospital_record`, …;
    /// `Unknown` when the file has no such column.
    pub document: LeaveDocument,
}

/// A row of holidays.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct HolidayRow {
    /// `date`.
    pub date: NaiveDate,
    /// `kind`.
    pub kind: HolidayKind,
}

/// Reads local wall-clock times in one zone, caching each date's offset:
/// a month of punches touches few dates, and zone look-ups dominate parsing
/// otherwise.
pub struct LocalTimes {
    tz: Tz,
    /// Per date: the offset when it holds all day, `None` when the date has
    /// a daylight-saving change (then each time is resolved on its own).
    cache: HashMap<NaiveDate, Option<FixedOffset>>,
}

impl LocalTimes {
    /// A reader for `tz`.
    pub fn new(tz: Tz) -> Self {
        LocalTimes {
            tz,
            cache: HashMap::new(),
        }
    }

    /// The instant `local` names (see [`resolve_local`] for DST rules).
    pub fn resolve(&mut self, local: NaiveDateTime) -> DateTime<Utc> {
        let tz = self.tz;
        let off = *self.cache.entry(local.date()).or_insert_with(|| {
            let a = tz.offset_from_local_datetime(&local.date().and_time(NaiveTime::MIN));
            let b = tz
                .offset_from_local_datetime(&local.date().and_hms_opt(23, 59, 59).unwrap_or(local));
            match (a.single(), b.single()) {
                (Some(a), Some(b)) if a.fix() == b.fix() => Some(a.fix()),
                _ => None,
            }
        });
        match off {
            Some(off) => {
                (local - chrono::Duration::seconds(off.local_minus_utc() as i64)).and_utc()
            }
            None => resolve_local(tz, local),
        }
    }

    /// Parses `YYYY-MM-DD HH:MM[:SS]` (local, this zone) or RFC 3339 with an
    /// offset, on a date in [`crate::dates::FIRST`]..=[`crate::dates::LAST`].
    pub fn parse(&mut self, s: &str) -> Result<DateTime<Utc>, String> {
        let s = s.trim();
        let out_of_range = |e: String| format!("time {e}");
        if let Some(local) = parse_local_fast(s) {
            crate::dates::bounded_local(local).map_err(out_of_range)?;
            return Ok(self.resolve(local));
        }
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            crate::dates::bounded_local(t.naive_local()).map_err(out_of_range)?;
            return Ok(t.with_timezone(&Utc));
        }
        for f in [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(l) = NaiveDateTime::parse_from_str(s, f) {
                crate::dates::bounded_local(l).map_err(out_of_range)?;
                return Ok(self.resolve(l));
            }
        }
        Err(format!(
            "time {s:?} is neither YYYY-MM-DD HH:MM:SS nor RFC 3339 with an offset"
        ))
    }
}

/// `YYYY-MM-DD HH:MM:SS` without allocation or format parsing: punches.csv
/// can hold millions of rows.
fn parse_local_fast(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b' ' && b[10] != b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let n = |i: usize, len: usize| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[i..i + len] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u32;
        }
        Some(v)
    };
    let date = NaiveDate::from_ymd_opt(n(0, 4)? as i32, n(5, 2)?, n(8, 2)?)?;
    let time = NaiveTime::from_hms_opt(n(11, 2)?, n(14, 2)?, n(17, 2)?)?;
    Some(date.and_time(time))
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    crate::dates::parse_date(s).map_err(|e| format!("date {e}"))
}

/// An optional date column.
fn opt_date(r: &Row<'_>, col: &str) -> Result<Option<NaiveDate>, String> {
    r.opt(col)
        .map(|v| parse_date(v).map_err(|e| format!("column `{col}`: {e}")))
        .transpose()
}

/// A CSV file with named columns.
struct Table<R: Read> {
    file: String,
    reader: csv::Reader<R>,
    cols: HashMap<String, usize>,
}

impl<R: Read> Table<R> {
    fn open<T>(reader: R, file: &str, required: &[&str], out: &mut Parsed<T>) -> Option<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(reader);
        let headers = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                out.errors.push(RowError {
                    file: file.to_string(),
                    line: 1,
                    message: format!("cannot read header: {e}"),
                });
                return None;
            }
        };
        let cols: HashMap<String, usize> = headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim_start_matches('\u{feff}').to_ascii_lowercase(), i))
            .collect();
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| !cols.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            out.errors.push(RowError {
                file: file.to_string(),
                line: 1,
                message: format!(
                    "header lacks column(s) {} (expected {})",
                    missing.join(", "),
                    required.join(",")
                ),
            });
            return None;
        }
        Some(Table {
            file: file.to_string(),
            reader,
            cols,
        })
    }

    /// Calls `f` on every record; `f` returns the row or a reason.
    fn each<T>(mut self, out: &mut Parsed<T>, mut f: impl FnMut(&Row<'_>) -> Result<T, String>) {
        let mut rec = csv::StringRecord::new();
        loop {
            match self.reader.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {
                    let line = rec.position().map_or(0, |p| p.line());
                    if rec.iter().all(|f| f.is_empty()) {
                        continue;
                    }
                    let row = Row {
                        rec: &rec,
                        cols: &self.cols,
                    };
                    match f(&row) {
                        Ok(t) => out.rows.push((line, t)),
                        Err(message) => out.errors.push(RowError {
                            file: self.file.clone(),
                            line,
                            message,
                        }),
                    }
                }
                Err(e) => {
                    let line = e.position().map_or(0, |p| p.line());
                    out.errors.push(RowError {
                        file: self.file.clone(),
                        line,
                        message: format!("unreadable row: {e}"),
                    });
                    // A UTF-8 or quoting error does not stop the reader.
                    if !matches!(
                        e.kind(),
                        csv::ErrorKind::Utf8 { .. } | csv::ErrorKind::UnequalLengths { .. }
                    ) {
                        break;
                    }
                }
            }
        }
    }
}

struct Row<'a> {
    rec: &'a csv::StringRecord,
    cols: &'a HashMap<String, usize>,
}

impl Row<'_> {
    /// A required, non-empty column.
    fn req(&self, name: &str) -> Result<&str, String> {
        match self.opt(name) {
            Some(v) => Ok(v),
            None => Err(format!("column `{name}` is empty")),
        }
    }

    /// An optional column; empty counts as absent.
    fn opt(&self, name: &str) -> Option<&str> {
        let i = *self.cols.get(name)?;
        self.rec.get(i).filter(|v| !v.is_empty())
    }
}

fn shift_ref(policy: &Policy, id: &str) -> Result<ShiftIdx, String> {
    policy.shift_by_id(id).ok_or_else(|| {
        let known: Vec<&str> = policy.shifts.iter().map(|s| &*s.id).collect();
        format!(
            "unknown shift {id:?} (policy {} has {})",
            policy.id,
            known.join(", ")
        )
    })
}

/// Reads employees.csv: `employee_id,name,team,supervisor[,shift][,alias]
/// [,start_date][,end_date]` with one policy: a non-empty `policy` cell is
/// refused as naming no configured group.
pub fn read_employees(reader: impl Read, file: &str, policy: &Policy) -> Parsed<EmployeeRow> {
    read_employees_in(
        reader,
        file,
        &crate::policy_file::Policies::single(policy.clone()),
    )
}

/// Reads employees.csv with a site's policies: the `policy` column names
/// the employee's group (empty: the default), whose shifts the `shift`
/// column names (policy.md, "Several rule sets on one site").
pub fn read_employees_in(
    reader: impl Read,
    file: &str,
    policies: &crate::policy_file::Policies,
) -> Parsed<EmployeeRow> {
    let mut out = Parsed::default();
    let Some(t) = Table::open(
        reader,
        file,
        &["employee_id", "name", "team", "supervisor"],
        &mut out,
    ) else {
        return out;
    };
    let mut seen: HashMap<String, u64> = HashMap::new();
    t.each(&mut out, |r| {
        let id = r.req("employee_id")?.to_string();
        let line = r.rec.position().map_or(0, |p| p.line());
        if let Some(prev) = seen.insert(id.clone(), line) {
            return Err(format!("employee {id:?} already listed on line {prev}"));
        }
        let start_date = opt_date(r, "start_date")?;
        let end_date = opt_date(r, "end_date")?;
        if let (Some(a), Some(b)) = (start_date, end_date)
            && b < a
        {
            return Err(format!("end_date {b} is before start_date {a}"));
        }
        let group = policies.index_of(r.opt("policy"))?;
        let policy = policies.get(group);
        Ok(EmployeeRow {
            policy: group,
            start_date,
            end_date,
            name: r.opt("name").unwrap_or("").to_string(),
            team: r.opt("team").unwrap_or("").to_string(),
            supervisor: r.opt("supervisor").unwrap_or("").to_string(),
            supervisor_contact: r
                .opt("supervisor_contact")
                .map(supervisor_contact)
                .transpose()?,
            shift: r.opt("shift").map(|s| shift_ref(policy, s)).transpose()?,
            aliases: r
                .opt("alias")
                .map(|a| {
                    a.split(';')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default(),
            id,
        })
    });
    out
}

/// A `supervisor_contact` cell: a mobile number or a robot user id, one
/// token of at most 64 characters (robots take it verbatim).
fn supervisor_contact(v: &str) -> Result<String, String> {
    let v = v.trim();
    if v.chars().count() > 64 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "supervisor_contact {v:?} is not a mobile number or a user id (one word, at most 64 characters)"
        ));
    }
    Ok(v.to_string())
}

/// Reads punches.csv: `employee_id,time[,device_id]`.
pub fn read_punches(reader: impl Read, file: &str, tz: Tz) -> Parsed<PunchRow> {
    read_punches_by(reader, file, |_| tz)
}

/// Local times in several zones, one cache each.
struct ZonedTimes(Vec<LocalTimes>);

impl ZonedTimes {
    fn parse(&mut self, tz: Tz, s: &str) -> Result<DateTime<Utc>, String> {
        let i = match self.0.iter().position(|t| t.tz == tz) {
            Some(i) => i,
            None => {
                self.0.push(LocalTimes::new(tz));
                self.0.len() - 1
            }
        };
        self.0[i].parse(s)
    }
}

/// Reads punches.csv, each local time in the zone `tz_of` gives for the
/// row's employee (the zone of the employee's policy).
pub fn read_punches_by(
    reader: impl Read,
    file: &str,
    tz_of: impl Fn(&str) -> Tz,
) -> Parsed<PunchRow> {
    let mut out = Parsed::default();
    let Some(t) = Table::open(reader, file, &["employee_id", "time"], &mut out) else {
        return out;
    };
    let mut times = ZonedTimes(Vec::new());
    let mut devices: HashMap<String, Arc<str>> = HashMap::new();
    t.each(&mut out, |r| {
        let employee_id = r.req("employee_id")?;
        Ok(PunchRow {
            time: times.parse(tz_of(employee_id), r.req("time")?)?,
            employee_id: employee_id.to_string(),
            device_id: r.opt("device_id").map(|d| {
                devices
                    .entry(d.to_string())
                    .or_insert_with(|| Arc::from(d))
                    .clone()
            }),
        })
    });
    out
}

/// Reads roster.csv: `employee_id,date,shift` (a shift id or `rest`).
pub fn read_roster(reader: impl Read, file: &str, policy: &Policy) -> Parsed<RosterRow> {
    read_roster_by(reader, file, |_| policy)
}

/// Reads roster.csv, each shift id looked up in the policy `policy_of`
/// gives for the row's employee.
pub fn read_roster_by<'p>(
    reader: impl Read,
    file: &str,
    policy_of: impl Fn(&str) -> &'p Policy,
) -> Parsed<RosterRow> {
    let mut out = Parsed::default();
    let Some(t) = Table::open(reader, file, &["employee_id", "date", "shift"], &mut out) else {
        return out;
    };
    t.each(&mut out, |r| {
        let shift = r.req("shift")?;
        let employee_id = r.req("employee_id")?;
        Ok(RosterRow {
            date: parse_date(r.req("date")?)?,
            entry: if shift.eq_ignore_ascii_case("rest") {
                RosterEntry::Rest
            } else {
                RosterEntry::Shift(shift_ref(policy_of(employee_id), shift)?)
            },
            employee_id: employee_id.to_string(),
        })
    });
    out
}

/// Reads leaves.csv: `employee_id,start,end,kind,status[,requested_at][,document]`.
pub fn read_leaves(reader: impl Read, file: &str, tz: Tz) -> Parsed<LeaveRow> {
    read_leaves_by(reader, file, |_| tz)
}

/// Reads leaves.csv, each local time in the zone `tz_of` gives for the
/// row's employee.
pub fn read_leaves_by(
    reader: impl Read,
    file: &str,
    tz_of: impl Fn(&str) -> Tz,
) -> Parsed<LeaveRow> {
    let mut out = Parsed::default();
    let Some(t) = Table::open(
        reader,
        file,
        &["employee_id", "start", "end", "kind", "status"],
        &mut out,
    ) else {
        return out;
    };
    let mut zones = ZonedTimes(Vec::new());
    t.each(&mut out, |r| {
        let tz = tz_of(r.req("employee_id")?);
        let mut times = |s: &str| zones.parse(tz, s);
        let start = times(r.req("start")?)?;
        let end = times(r.req("end")?)?;
        if end <= start {
            return Err("leave ends before it starts".into());
        }
        let status = match r.req("status")?.to_ascii_lowercase().as_str() {
            "approved" => LeaveStatus::Approved,
            "pending" => LeaveStatus::Pending,
            "rejected" => LeaveStatus::Rejected,
            other => {
                return Err(format!(
                    "status {other:?} is not approved, pending or rejected"
                ));
            }
        };
        Ok(LeaveRow {
            employee_id: r.req("employee_id")?.to_string(),
            start,
            end,
            kind: Arc::from(r.req("kind")?.to_ascii_lowercase().as_str()),
            status,
            requested_at: r
                .opt("requested_at")
                .map(|t| times(t).map_err(|e| format!("requested_at: {e}")))
                .transpose()?,
            document: match r.opt("document").map(str::trim) {
                Some(d) if !d.is_empty() => {
                    LeaveDocument::Given(Arc::from(d.to_ascii_lowercase().as_str()))
                }
                _ if r.cols.contains_key("document") => LeaveDocument::Missing,
                _ => LeaveDocument::Unknown,
            },
        })
    });
    out
}

/// Reads holidays.csv: `date,kind` (`holiday` or `workday`).
pub fn read_holidays(reader: impl Read, file: &str) -> Parsed<HolidayRow> {
    let mut out = Parsed::default();
    let Some(t) = Table::open(reader, file, &["date", "kind"], &mut out) else {
        return out;
    };
    t.each(&mut out, |r| {
        Ok(HolidayRow {
            date: parse_date(r.req("date")?)?,
            kind: match r.req("kind")?.to_ascii_lowercase().as_str() {
                "holiday" => HolidayKind::Holiday,
                "workday" => HolidayKind::Workday,
                other => return Err(format!("kind {other:?} is not holiday or workday")),
            },
        })
    });
    out
}

/// The roster rows a file may not hold together (policy.md, "Roster and
/// holiday files"): a second row for one employee and date, and a rostered
/// shift that overlaps in time the employee's rostered shift of the day
/// before or after. `stored` holds rows already known (a store's roster),
/// checked against the file's rows but not against each other; their line
/// is 0. Each conflict names the file's later line and the earlier one.
pub fn roster_conflicts(
    policy: &Policy,
    file: &str,
    rows: &[(u64, RosterRow)],
    stored: &[RosterRow],
) -> Vec<RowError> {
    let mut errors = Vec::new();
    let mut by_day: HashMap<(&str, NaiveDate), (u64, &RosterEntry)> = HashMap::new();
    for r in stored {
        by_day.insert((r.employee_id.as_str(), r.date), (0, &r.entry));
    }
    let mut own: HashMap<(&str, NaiveDate), u64> = HashMap::new();
    for (line, r) in rows {
        let key = (r.employee_id.as_str(), r.date);
        if let Some(prev) = own.insert(key, *line) {
            errors.push(RowError {
                file: file.to_string(),
                line: *line,
                message: format!(
                    "{} on {} is already rostered on line {prev}",
                    r.employee_id, r.date
                ),
            });
            continue;
        }
        by_day.insert(key, (*line, &r.entry));
    }
    let Some(first) = rows.iter().map(|(_, r)| r.date).min() else {
        return errors;
    };
    let last = rows.iter().map(|(_, r)| r.date).max().unwrap_or(first);
    let clock = crate::domain::calendar::ShiftClock::new(
        policy,
        first - chrono::Days::new(1),
        last + chrono::Days::new(1),
    );
    for (line, r) in rows {
        if own.get(&(r.employee_id.as_str(), r.date)) != Some(line) {
            continue;
        }
        let RosterEntry::Shift(s) = r.entry else {
            continue;
        };
        let mine = clock.times(r.date, s);
        for other in [r.date.pred_opt(), r.date.succ_opt()].into_iter().flatten() {
            let Some(&(oline, RosterEntry::Shift(o))) =
                by_day.get(&(r.employee_id.as_str(), other))
            else {
                continue;
            };
            let theirs = clock.times(other, *o);
            if mine.start < theirs.end && theirs.start < mine.end {
                // A pair of the file's rows is reported once, on the later line.
                if oline > *line {
                    continue;
                }
                let where_ = if oline == 0 {
                    "the stored roster".to_string()
                } else {
                    format!("line {oline}")
                };
                errors.push(RowError {
                    file: file.to_string(),
                    line: *line,
                    message: format!(
                        "{}: shift {} on {} overlaps shift {} on {} ({where_})",
                        r.employee_id,
                        policy.shift(s).id,
                        r.date,
                        policy.shift(*o).id,
                        other
                    ),
                });
            }
        }
    }
    errors.sort_by_key(|e| e.line);
    errors
}

/// Holiday rows naming a date a previous row already named.
pub fn holiday_conflicts(file: &str, rows: &[(u64, HolidayRow)]) -> Vec<RowError> {
    let mut seen: HashMap<NaiveDate, u64> = HashMap::new();
    let mut errors = Vec::new();
    for (line, r) in rows {
        if let Some(prev) = seen.insert(r.date, *line) {
            errors.push(RowError {
                file: file.to_string(),
                line: *line,
                message: format!("{} is already listed on line {prev}", r.date),
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests;
