//! `attendd import`: HR files (employees, roster, leaves, holidays) here,
//! punch files (CSV or a terminal's attlog.dat) in `punches.rs`.
//!
//! Every HR import takes the same steps: read the file, check every row
//! (the file's own rules, then what the store already holds), refuse the
//! whole file when any row is bad ([`refuse`]), write, re-derive the days
//! it changed and report ([`recompute_and_emit`]).

mod punches;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::Instant;

use chrono::{Datelike, NaiveDate};
use serde_json::json;

use super::{CmdError, CmdResult, Ctx, ImportKind, known_employees, report_json, report_text};
use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::domain::types::{HolidayKind, LeaveDocument, LeaveStatus, RosterEntry};
use crate::input::{self, EmployeeRow, RosterRow, RowError};
use crate::store::month_bounds;
use crate::store::{EmployeeRecord, HolidayRecord, LeaveRecord, RecomputeReport, RosterRecord};
use punches::import_punches;

/// Runs `attendd import` for one file.
pub(super) async fn import(
    ctx: &Ctx<'_>,
    what: ImportKind,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CmdResult {
    match what {
        ImportKind::Employees { file } => import_employees(ctx, &file, out).await,
        ImportKind::Roster { file } => import_roster(ctx, &file, out).await,
        ImportKind::Leaves { file } => import_leaves(ctx, &file, out).await,
        ImportKind::Holidays { file } => import_holidays(ctx, &file, out).await,
        ImportKind::Punches {
            file,
            format,
            device,
        } => import_punches(ctx, &file, format, device, out, err).await,
    }
}

/// employees.csv: who works here, their default shift, employment dates,
/// aliases, supervisor contacts and policy group.
async fn import_employees(ctx: &Ctx<'_>, file: &Path, out: &mut dyn Write) -> CmdResult {
    let name = file.display().to_string();
    let parsed = input::read_employees_in(table(file)?, &name, ctx.policies());
    let mut errors = parsed.errors;
    errors.extend(alias_conflicts(&name, &parsed.rows));
    refuse(&name, errors)?;
    let before: HashMap<String, Basis> = ctx
        .store
        .employees()
        .await?
        .into_iter()
        .map(|e| (e.employee_id, (e.shift, e.start_date, e.end_date)))
        .collect();
    let (rows, regrouped) = write_employees(ctx, &name, parsed.rows, &before).await?;
    let changed: Vec<String> = rows
        .iter()
        .filter(|r| {
            before.get(&r.employee_id) != Some(&(r.shift.clone(), r.start_date, r.end_date))
                || regrouped.contains(r.employee_id.as_str())
        })
        .map(|r| r.employee_id.clone())
        .collect();
    let start = employees_recompute_start(ctx, &changed).await?;
    let today = ctx.today();
    recompute_and_emit(
        ctx,
        out,
        ImportSummary {
            kind: "employees",
            what: "employee(s)",
            changed_as: "new or with a new shift",
            file: &name,
            rows: rows.len(),
            changed: changed.len(),
        },
        Some(changed.clone()),
        start.into_iter().flat_map(|s| [s, today]),
    )
    .await
}

/// What classification depends on in an employee's record: the default
/// shift and the employment dates.
type Basis = (Option<String>, Option<NaiveDate>, Option<NaiveDate>);

/// An alias may belong to one employee only.
fn alias_conflicts(name: &str, rows: &[(u64, EmployeeRow)]) -> Vec<RowError> {
    let mut errors = Vec::new();
    let mut alias_line: HashMap<&str, (u64, &str)> = HashMap::new();
    for (line, r) in rows {
        for a in &r.aliases {
            if let Some((prev, who)) = alias_line.insert(a, (*line, &r.id))
                && who != r.id
            {
                errors.push(RowError {
                    file: name.to_string(),
                    line: *line,
                    message: format!("alias {a:?} already belongs to {who} on line {prev}"),
                });
            }
        }
    }
    errors
}

/// Writes the employees, their supervisors' contacts and their policy
/// groups; returns the records and the employees whose group changed.
async fn write_employees(
    ctx: &Ctx<'_>,
    name: &str,
    parsed: Vec<(u64, EmployeeRow)>,
    before: &HashMap<String, Basis>,
) -> Result<(Vec<EmployeeRecord>, HashSet<String>), CmdError> {
    // Each employee's policy group (policy.md, "Several rule sets on one
    // site").
    let groups: Vec<(String, usize)> = parsed
        .iter()
        .map(|(_, r)| (r.id.clone(), r.policy))
        .collect();
    let group_changes = crate::store::policy_groups::changes_of_import(
        &ctx.store.policy_history().await?,
        ctx.policies(),
        &groups,
        &|id| before.contains_key(id),
        ctx.now,
    );
    let contacts: Vec<(String, Option<String>)> = parsed
        .iter()
        .map(|(_, r)| (r.id.clone(), r.supervisor_contact.clone()))
        .collect();
    let rows: Vec<EmployeeRecord> = parsed
        .into_iter()
        .map(|(_, r)| EmployeeRecord {
            shift: r
                .shift
                .map(|s| ctx.policies().get(r.policy).shift(s).id.to_string()),
            employee_id: r.id,
            name: r.name,
            team: r.team,
            supervisor: r.supervisor,
            aliases: r.aliases,
            start_date: r.start_date,
            end_date: r.end_date,
        })
        .collect();
    ctx.store
        .upsert_employees(&rows, chrono::Utc::now())
        .await?;
    ctx.store.set_supervisor_contacts(&contacts).await?;
    ctx.store
        .set_employee_policies(
            &group_changes,
            &format!("import employees {name}"),
            &ctx.actor,
            ctx.now,
        )
        .await?;
    let regrouped = group_changes.into_iter().map(|c| c.employee_id).collect();
    Ok((rows, regrouped))
}

/// Where the days of changed employees are re-derived from: their first
/// punch's month, or (none yet) the classification start: a new employee
/// who never came is absent on the days since, unless not employed then.
async fn employees_recompute_start(
    ctx: &Ctx<'_>,
    changed: &[String],
) -> Result<Option<NaiveDate>, CmdError> {
    let first = ctx.store.first_punch(changed).await?;
    Ok(match first {
        Some(t) => Some(
            to_local(ctx.policy().tz, t)
                .date_naive()
                .with_day(1)
                .unwrap_or_default(),
        ),
        None if changed.is_empty() => None,
        None => {
            ctx.store
                .classify_from(ctx.cfg.ingest.classify_from)
                .await?
        }
    })
}

/// roster.csv: who works which shift (or rests) on which day.
async fn import_roster(ctx: &Ctx<'_>, file: &Path, out: &mut dyn Write) -> CmdResult {
    let name = file.display().to_string();
    // Each row's shift is one of its employee's policy (the group the
    // employee follows now).
    let history = ctx.store.policy_history().await?;
    let group_of = |id: &str| history.index_at(ctx.policies(), id, NaiveDate::MAX);
    let policy_of = |id: &str| ctx.policies().get(group_of(id));
    let parsed = input::read_roster_by(table(file)?, &name, policy_of);
    let mut errors = parsed.errors;
    check_all_known(
        ctx,
        &name,
        parsed
            .rows
            .iter()
            .map(|(l, r)| (*l, r.employee_id.as_str())),
        &mut errors,
    )
    .await?;
    let stored = stored_neighbours(ctx, &parsed.rows, &policy_of).await?;
    errors.extend(roster_overlaps(
        ctx,
        &name,
        &parsed.rows,
        &stored,
        &group_of,
    ));
    refuse(&name, errors)?;
    let rows: Vec<RosterRecord> = parsed
        .rows
        .into_iter()
        .map(|(_, r)| RosterRecord {
            shift: match r.entry {
                RosterEntry::Rest => "rest".into(),
                RosterEntry::Shift(s) => policy_of(&r.employee_id).shift(s).id.to_string(),
            },
            employee_id: r.employee_id,
            date: r.date,
        })
        .collect();
    let changed = ctx.store.upsert_roster(&rows, chrono::Utc::now()).await?;
    let emps: Vec<String> = unique(changed.iter().map(|r| r.employee_id.clone()));
    recompute_and_emit(
        ctx,
        out,
        ImportSummary {
            kind: "roster",
            what: "roster row(s)",
            changed_as: "new or changed",
            file: &name,
            rows: rows.len(),
            changed: changed.len(),
        },
        Some(emps),
        changed.iter().map(|r| r.date),
    )
    .await
}

/// The stored roster rows a day around the file's dates that the file does
/// not replace: overlaps with them count too.
async fn stored_neighbours<'p>(
    ctx: &Ctx<'_>,
    rows: &[(u64, RosterRow)],
    policy_of: &impl Fn(&str) -> &'p Policy,
) -> Result<Vec<RosterRow>, CmdError> {
    let mut stored = Vec::new();
    let (Some(lo), Some(hi)) = (
        rows.iter().map(|(_, r)| r.date).min(),
        rows.iter().map(|(_, r)| r.date).max(),
    ) else {
        return Ok(stored);
    };
    let in_file: HashSet<(&str, NaiveDate)> = rows
        .iter()
        .map(|(_, r)| (r.employee_id.as_str(), r.date))
        .collect();
    for r in ctx
        .store
        .roster(lo.pred_opt().unwrap_or(lo), hi.succ_opt().unwrap_or(hi))
        .await?
    {
        if in_file.contains(&(r.employee_id.as_str(), r.date)) {
            continue;
        }
        let entry = if r.shift == "rest" {
            RosterEntry::Rest
        } else if let Some(s) = policy_of(&r.employee_id).shift_by_id(&r.shift) {
            RosterEntry::Shift(s)
        } else {
            continue;
        };
        stored.push(RosterRow {
            employee_id: r.employee_id,
            date: r.date,
            entry,
        });
    }
    Ok(stored)
}

/// Overlapping shifts of one employee, in the file or against the stored
/// neighbours, measured on each policy's own shift clock.
fn roster_overlaps(
    ctx: &Ctx<'_>,
    name: &str,
    rows: &[(u64, RosterRow)],
    stored: &[RosterRow],
    group_of: &impl Fn(&str) -> usize,
) -> Vec<RowError> {
    let mut errors = Vec::new();
    for g in 0..ctx.policies().len() {
        let mine: Vec<(u64, RosterRow)> = rows
            .iter()
            .filter(|(_, r)| group_of(&r.employee_id) == g)
            .cloned()
            .collect();
        let theirs: Vec<RosterRow> = stored
            .iter()
            .filter(|r| group_of(&r.employee_id) == g)
            .cloned()
            .collect();
        errors.extend(input::roster_conflicts(
            ctx.policies().get(g),
            name,
            &mine,
            &theirs,
        ));
    }
    errors
}

/// leaves.csv: leave requests and their status.
async fn import_leaves(ctx: &Ctx<'_>, file: &Path, out: &mut dyn Write) -> CmdResult {
    let name = file.display().to_string();
    // Local times in the zone of each employee's policy.
    let history = ctx.store.policy_history().await?;
    let tz_of = |id: &str| {
        ctx.policies()
            .get(history.index_at(ctx.policies(), id, NaiveDate::MAX))
            .tz
    };
    let parsed = input::read_leaves_by(table(file)?, &name, tz_of);
    let mut errors = parsed.errors;
    check_all_known(
        ctx,
        &name,
        parsed
            .rows
            .iter()
            .map(|(l, r)| (*l, r.employee_id.as_str())),
        &mut errors,
    )
    .await?;
    refuse(&name, errors)?;
    let rows: Vec<LeaveRecord> = parsed
        .rows
        .into_iter()
        .map(|(_, r)| LeaveRecord {
            employee_id: r.employee_id,
            start: r.start,
            end: r.end,
            kind: r.kind.to_string(),
            status: match r.status {
                LeaveStatus::Approved => "approved",
                LeaveStatus::Pending => "pending",
                LeaveStatus::Rejected => "rejected",
            }
            .into(),
            requested_at: r.requested_at,
            document: match r.document {
                LeaveDocument::Unknown => None,
                LeaveDocument::Missing => Some(String::new()),
                LeaveDocument::Given(d) => Some(d.to_string()),
            },
        })
        .collect();
    let changed = ctx.store.upsert_leaves(&rows, chrono::Utc::now()).await?;
    let emps: Vec<String> = unique(changed.iter().map(|r| r.employee_id.clone()));
    let tz = ctx.policy().tz;
    let dates = changed.iter().flat_map(|l| {
        [
            to_local(tz, l.start).date_naive(),
            to_local(tz, l.end).date_naive(),
        ]
    });
    recompute_and_emit(
        ctx,
        out,
        ImportSummary {
            kind: "leaves",
            what: "leave record(s)",
            changed_as: "new or changed",
            file: &name,
            rows: rows.len(),
            changed: changed.len(),
        },
        Some(emps),
        dates,
    )
    .await
}

/// holidays.csv: public holidays and working days in their place.
async fn import_holidays(ctx: &Ctx<'_>, file: &Path, out: &mut dyn Write) -> CmdResult {
    let name = file.display().to_string();
    let parsed = input::read_holidays(table(file)?, &name);
    let mut errors = parsed.errors;
    errors.extend(input::holiday_conflicts(&name, &parsed.rows));
    refuse(&name, errors)?;
    let rows: Vec<HolidayRecord> = parsed
        .rows
        .into_iter()
        .map(|(_, r)| HolidayRecord {
            date: r.date,
            kind: match r.kind {
                HolidayKind::Holiday => "holiday",
                HolidayKind::Workday => "workday",
            }
            .into(),
        })
        .collect();
    let changed = ctx.store.upsert_holidays(&rows, chrono::Utc::now()).await?;
    recompute_and_emit(
        ctx,
        out,
        ImportSummary {
            kind: "holidays",
            what: "holiday row(s)",
            changed_as: "new or changed",
            file: &name,
            rows: rows.len(),
            changed: changed.len(),
        },
        None,
        changed.iter().map(|r| r.date),
    )
    .await
}

/// The last steps of every HR import: re-derive the days it changed (of
/// `employees`; all employees when `None`), then print what it did.
async fn recompute_and_emit(
    ctx: &Ctx<'_>,
    out: &mut dyn Write,
    s: ImportSummary<'_>,
    employees: Option<Vec<String>>,
    dates: impl Iterator<Item = NaiveDate>,
) -> CmdResult {
    let cause = format!("import {} {}", s.kind, s.file);
    let rep = recompute_affected(ctx, employees, dates, None, &cause).await?;
    emit_import(ctx, out, s, &rep)?;
    Ok(())
}

/// Adds an error for every row whose employee is not in the store.
async fn check_all_known<'r>(
    ctx: &Ctx<'_>,
    file: &str,
    rows: impl Iterator<Item = (u64, &'r str)>,
    errors: &mut Vec<RowError>,
) -> CmdResult {
    let known = known_employees(ctx.store).await?;
    for (line, id) in rows {
        check_known(&known, id, file, line, errors);
    }
    Ok(())
}

/// A file to read line by line.
fn open(path: &Path) -> Result<io::BufReader<File>, CmdError> {
    File::open(path)
        .map(|f| io::BufReader::with_capacity(1 << 16, f))
        .map_err(|e| CmdError::Input(format!("{}: {e}", path.display())))
}

/// A table file as CSV text (`.xlsx`, GB18030 and CRLF read as
/// `input::load` says).
fn table(path: &Path) -> Result<io::Cursor<Vec<u8>>, CmdError> {
    input::load(path)
        .map(io::Cursor::new)
        .map_err(|e| CmdError::Input(format!("{}: {e}", path.display())))
}

/// Refuses a whole file when any row is bad.
fn refuse(file: &str, mut errors: Vec<RowError>) -> CmdResult {
    if errors.is_empty() {
        return Ok(());
    }
    errors.sort_by_key(|e| e.line);
    let mut lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    lines.push(format!(
        "{file}: {} bad row(s); nothing imported",
        errors.len()
    ));
    Err(CmdError::Input(lines.join("\n")))
}

/// What an import of employees, roster, leaves or holidays reports.
struct ImportSummary<'a> {
    /// `employees`, `roster`, `leaves`, `holidays` (the JSON's `imported`).
    kind: &'a str,
    /// The rows as people count them, e.g. `roster row(s)`.
    what: &'a str,
    /// What "changed" means for them, e.g. `new or changed`.
    changed_as: &'a str,
    file: &'a str,
    rows: usize,
    changed: usize,
}

/// Prints an import's summary and its recompute, as JSON or text.
fn emit_import(
    ctx: &Ctx<'_>,
    out: &mut dyn Write,
    s: ImportSummary<'_>,
    rep: &RecomputeReport,
) -> io::Result<()> {
    ctx.emit(
        out,
        json!({"imported": s.kind, "file": s.file, "rows": s.rows, "new_or_changed": s.changed,
               "recompute": report_json(rep)}),
        &format!(
            "{}: {} {} imported, {} {}\n{}",
            s.file,
            s.rows,
            s.what,
            s.changed,
            s.changed_as,
            report_text(rep)
        ),
    )
}

/// Recomputes the days an import touched: per employee set, from the day
/// before the earliest date (an overnight shift reaches into the next day)
/// to the end of the latest date's month (the ladder counts per month),
/// never before the classification start (policy.md, "Real sites"; a punch
/// import offers its earliest date as `candidate` when none is fixed yet).
async fn recompute_affected(
    ctx: &Ctx<'_>,
    employees: Option<Vec<String>>,
    dates: impl Iterator<Item = NaiveDate>,
    candidate: Option<NaiveDate>,
    cause: &str,
) -> Result<RecomputeReport, CmdError> {
    let mut lo: Option<NaiveDate> = None;
    let mut hi: Option<NaiveDate> = None;
    for d in dates {
        lo = Some(lo.map_or(d, |l| l.min(d)));
        hi = Some(hi.map_or(d, |h| h.max(d)));
    }
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return Ok(RecomputeReport::default());
    };
    if employees.as_ref().is_some_and(Vec::is_empty) {
        return Ok(RecomputeReport::default());
    }
    let Some(start) = ctx
        .store
        .classification_start(ctx.cfg.ingest.classify_from, candidate, ctx.now)
        .await?
    else {
        // Nothing fixed the classification start yet: no day is classified
        // automatically before a punch import or the daemon's first run.
        return Ok(RecomputeReport::default());
    };
    let from = lo.pred_opt().unwrap_or(lo).max(start);
    let to = month_bounds(hi).1;
    if from > to {
        return Ok(RecomputeReport::default());
    }
    let started = Instant::now();
    let progress = crate::progress::Progress::spinner(&format!("recomputing {from}..{to}"));
    let r = ctx
        .store
        .recompute(
            ctx.policies(),
            employees.as_deref(),
            from,
            to,
            cause,
            &ctx.actor,
            ctx.now,
        )
        .await?;
    progress.finish(&format!(
        "recomputed {from}..{to} in {:.1?}",
        started.elapsed()
    ));
    Ok(r)
}

/// Adds an error when `id` is not a stored employee.
fn check_known(
    known: &HashSet<String>,
    id: &str,
    file: &str,
    line: u64,
    errors: &mut Vec<RowError>,
) {
    if !known.contains(id) {
        errors.push(RowError {
            file: file.to_string(),
            line,
            message: format!("employee {id:?} is not in the store (import employees first)"),
        });
    }
}

/// The ids, sorted, each once.
fn unique(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = it.collect();
    v.sort();
    v.dedup();
    v
}
