//! `attendd evaluate`: classify employee-days from files, with no store and
//! no network (`interfaces.md`, "attendd evaluate").
//!
//! Reads the policy and the CSV files, reports every malformed row with its
//! file and line, evaluates every well-formed row, and prints one record per
//! employee-day sorted by employee id then date: a table for people, JSON
//! lines with `--json`. With `--scores`, monthly scores follow.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};

use crate::domain::calendar::ShiftClock;
use crate::domain::classify::{EmployeeDays, evaluate_employee};
use crate::domain::score::{MonthScore, month_scores};
use crate::domain::types::*;
use crate::input::{self, Parsed, RowError};
use crate::policy_file::Policies;
use crate::render;

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct Request {
    /// Policy file (the default policy).
    pub policy: PathBuf,
    /// Further policies by group id (`--group ID=FILE`), picked by
    /// employees.csv's `policy` column.
    pub groups: Vec<(String, PathBuf)>,
    /// employees.csv.
    pub employees: PathBuf,
    /// punches.csv.
    pub punches: PathBuf,
    /// roster.csv.
    pub roster: Option<PathBuf>,
    /// leaves.csv.
    pub leaves: Option<PathBuf>,
    /// holidays.csv.
    pub holidays: Option<PathBuf>,
    /// First date (inclusive).
    pub from: NaiveDate,
    /// Last date (inclusive).
    pub to: NaiveDate,
    /// JSON lines instead of a table.
    pub json: bool,
    /// Print monthly scores after the days.
    pub scores: bool,
    /// The instant the verdicts are made for: a shift whose punch window
    /// is still open then is provisional (policy.md, "Today"). The CLI
    /// passes the real clock, so past dates are final.
    pub now: DateTime<Utc>,
}

/// How an evaluation ended.
#[derive(Debug)]
pub enum Outcome {
    /// Everything read and printed.
    Clean,
    /// Some rows were malformed (already reported); the rest was printed.
    BadRows(usize),
}

/// An error that stops evaluation before anything is printed.
#[derive(Debug, thiserror::Error)]
pub enum EvaluateError {
    /// The policy is invalid.
    #[error("{0}")]
    Policy(#[from] crate::policy_file::PolicyError),
    /// A file cannot be opened.
    #[error("{path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// `--from` is after `--to`.
    #[error("--from {from} is after --to {to}")]
    Range {
        /// First date.
        from: NaiveDate,
        /// Last date.
        to: NaiveDate,
    },
    /// A roster or holiday file holds rows that cannot stand together
    /// (two rows for one employee and date, overlapping shifts, two rows
    /// for one holiday date); one line per conflict.
    #[error("{0}")]
    Refused(String),
    /// `--group` ids that cannot stand together.
    #[error("--group: {0}")]
    Group(String),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
}

/// Stops evaluation when rows conflict (policy.md, "Roster and holiday
/// files": refused in `evaluate` as in `import`).
fn refuse(conflicts: Vec<RowError>) -> Result<(), EvaluateError> {
    if conflicts.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = conflicts.iter().map(|e| e.to_string()).collect();
    Err(EvaluateError::Refused(lines.join("\n")))
}

/// A table file as CSV text (`.xlsx`, GB18030 and CRLF read as
/// `input::load` says).
fn table(path: &Path) -> Result<io::Cursor<Vec<u8>>, EvaluateError> {
    input::load(path)
        .map(io::Cursor::new)
        .map_err(|source| EvaluateError::Open {
            path: path.display().to_string(),
            source,
        })
}

/// Everything read from the input files, grouped by employee.
pub struct Inputs {
    /// Employees sorted by id.
    pub employees: Vec<Employee>,
    /// Each employee's policy, an index into the [`Policies`].
    pub policy_of: Vec<usize>,
    /// Punches by employee index.
    pub punches: Vec<Vec<Punch>>,
    /// Roster by employee index.
    pub roster: Vec<Roster>,
    /// Leaves by employee index.
    pub leaves: Vec<Vec<Leave>>,
    /// Per policy (by index): its holidays merged with holidays.csv (the
    /// file wins).
    pub holidays: Vec<Holidays>,
    /// Malformed rows.
    pub errors: Vec<RowError>,
    /// Rows naming an employee not in employees.csv.
    pub unknown: Vec<RowError>,
}

/// Puts each parsed row with its employee (`put`), reporting rows of
/// employees not in employees.csv in `unknown`.
fn place<T, U>(
    parsed: Parsed<T>,
    file: &str,
    index: &HashMap<&str, usize>,
    errors: &mut Vec<RowError>,
    unknown: &mut Vec<RowError>,
    id: impl Fn(&T) -> &str,
    mut put: impl FnMut(usize, T) -> Option<U>,
) {
    errors.extend(parsed.errors);
    for (line, row) in parsed.rows {
        match index.get(id(&row)) {
            Some(&i) => {
                put(i, row);
            }
            None => unknown.push(RowError {
                file: file.to_string(),
                line,
                message: format!(
                    "employee {:?} is not in employees.csv; row ignored",
                    id(&row)
                ),
            }),
        }
    }
}

/// Reads and groups the input files.
pub fn read_inputs(policies: &Policies, req: &Request) -> Result<Inputs, EvaluateError> {
    let file = |p: &Path| p.display().to_string();
    let emps = input::read_employees_in(table(&req.employees)?, &file(&req.employees), policies);
    let mut errors = emps.errors;
    let mut rows: Vec<input::EmployeeRow> = emps.rows.into_iter().map(|(_, r)| r).collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    let policy_of: Vec<usize> = rows.iter().map(|r| r.policy).collect();
    let employees: Vec<Employee> = rows
        .into_iter()
        .map(|r| Employee {
            id: EmployeeId::from(r.id.as_str()),
            name: r.name,
            team: r.team,
            supervisor: r.supervisor,
            default_shift: r.shift,
            aliases: r.aliases,
            start_date: r.start_date,
            end_date: r.end_date,
        })
        .collect();
    let index: HashMap<&str, usize> = employees
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    let n = employees.len();
    let mut unknown = Vec::new();
    // Rows of employees not in employees.csv are reported, not evaluated;
    // their times and shifts are read with the default policy.
    let group_of = |id: &str| index.get(id).map_or(0, |&i| policy_of[i]);
    let policy_for = |id: &str| policies.get(group_of(id));
    let tz_of = |id: &str| policy_for(id).tz;

    let mut punches: Vec<Vec<Punch>> = vec![Vec::new(); n];
    let p = input::read_punches_by(table(&req.punches)?, &file(&req.punches), tz_of);
    place(
        p,
        &file(&req.punches),
        &index,
        &mut errors,
        &mut unknown,
        |r| &r.employee_id,
        |i, r| {
            punches[i].push(Punch {
                at: r.time,
                device: r.device_id,
                direction: None,
            });
            Some(())
        },
    );
    for v in &mut punches {
        v.sort_unstable();
    }

    let mut roster: Vec<Roster> = vec![Roster::new(); n];
    if let Some(path) = &req.roster {
        let r = input::read_roster_by(table(path)?, &file(path), policy_for);
        // Overlaps are measured on each policy's own shift clock.
        let mut conflicts = Vec::new();
        for g in 0..policies.len() {
            let mine: Vec<(u64, input::RosterRow)> = r
                .rows
                .iter()
                .filter(|(_, row)| group_of(&row.employee_id) == g)
                .cloned()
                .collect();
            conflicts.extend(input::roster_conflicts(
                policies.get(g),
                &file(path),
                &mine,
                &[],
            ));
        }
        conflicts.sort_by_key(|e| e.line);
        refuse(conflicts)?;
        place(
            r,
            &file(path),
            &index,
            &mut errors,
            &mut unknown,
            |r| &r.employee_id,
            |i, r| roster[i].insert(r.date, r.entry),
        );
    }
    let mut leaves: Vec<Vec<Leave>> = vec![Vec::new(); n];
    if let Some(path) = &req.leaves {
        let l = input::read_leaves_by(table(path)?, &file(path), tz_of);
        place(
            l,
            &file(path),
            &index,
            &mut errors,
            &mut unknown,
            |r| &r.employee_id,
            |i, r| {
                leaves[i].push(Leave {
                    start: r.start,
                    end: r.end,
                    kind: r.kind,
                    status: r.status,
                    requested_at: r.requested_at,
                    document: r.document,
                });
                Some(())
            },
        );
    }
    let mut holidays: Vec<Holidays> = (0..policies.len())
        .map(|g| policies.get(g).holidays.clone())
        .collect();
    if let Some(path) = &req.holidays {
        let h = input::read_holidays(table(path)?, &file(path));
        refuse(input::holiday_conflicts(&file(path), &h.rows))?;
        errors.extend(h.errors);
        for (_, row) in h.rows {
            for set in &mut holidays {
                set.insert(row.date, row.kind);
            }
        }
    }
    errors.sort_by(|a, b| (a.file.as_str(), a.line).cmp(&(b.file.as_str(), b.line)));
    Ok(Inputs {
        employees,
        policy_of,
        punches,
        roster,
        leaves,
        holidays,
        errors,
        unknown,
    })
}

/// The default policy and each `--group ID=FILE`.
fn load_policies(req: &Request) -> Result<Policies, EvaluateError> {
    let default = crate::policy_file::load(&req.policy)?;
    let mut groups = Vec::with_capacity(req.groups.len());
    for (id, path) in &req.groups {
        groups.push((id.clone(), crate::policy_file::load(path)?));
    }
    Policies::new(default, groups).map_err(EvaluateError::Group)
}

/// Runs `attendd evaluate`, writing records to `out` and problems to `err`.
pub fn run(
    req: &Request,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<Outcome, EvaluateError> {
    if req.from > req.to {
        return Err(EvaluateError::Range {
            from: req.from,
            to: req.to,
        });
    }
    let policies = load_policies(req)?;
    let inputs = read_inputs(&policies, req)?;
    for e in &inputs.errors {
        writeln!(err, "error: {e}")?;
    }
    const SHOWN: usize = 20;
    for e in inputs.unknown.iter().take(SHOWN) {
        writeln!(err, "warning: {e}")?;
    }
    if inputs.unknown.len() > SHOWN {
        writeln!(
            err,
            "warning: {} more rows name employees not in employees.csv",
            inputs.unknown.len() - SHOWN
        )?;
    }

    let month_start = req.from.with_day(1).unwrap_or(req.from);
    let clocks: Vec<ShiftClock> = (0..policies.len())
        .map(|g| {
            ShiftClock::new(
                policies.get(g),
                month_start - Days::new(3),
                req.to + Days::new(3),
            )
        })
        .collect();
    let started = Instant::now();
    let total = inputs.employees.len();
    let progress = crate::progress::Progress::bar(total as u64, "employees");
    let mut scores: Vec<(usize, MonthScore)> = Vec::new();
    // With groups, table rows name their policy (JSON records always do).
    let mixed = policies.len() > 1;
    if !req.json {
        if mixed {
            render::table_header_labelled(out)?;
        } else {
            render::table_header(out)?;
        }
    }
    let mut line: Vec<u8> = Vec::with_capacity(2048);
    for (i, emp) in inputs.employees.iter().enumerate() {
        let g = inputs.policy_of[i];
        let label = policies.label(g);
        let days = evaluate_employee(
            &clocks[g],
            &inputs.holidays[g],
            &EmployeeDays {
                employee: &emp.id,
                default_shift: emp.default_shift,
                punches: &inputs.punches[i],
                roster: Some(&inputs.roster[i]),
                leaves: &inputs.leaves[i],
                start_date: emp.start_date,
                end_date: emp.end_date,
            },
            req.from,
            req.to,
            req.now,
        );
        for v in &days {
            line.clear();
            if req.json {
                render::json_line(v, label, &mut line);
            } else {
                if mixed {
                    render::table_row_labelled(v, label, &mut line);
                } else {
                    render::table_row(v, &mut line);
                }
            }
            out.write_all(&line)?;
        }
        if req.scores {
            scores.extend(
                month_scores(policies.get(g), &emp.id, &days, &[])
                    .into_iter()
                    .map(|s| (g, s)),
            );
        }
        progress.set(i as u64 + 1);
    }
    progress.finish(&format!(
        "evaluated {total} employees in {:.1?}",
        started.elapsed()
    ));
    if req.scores {
        // Mixed policies show the union of their categories.
        let mut shown = policies.default_policy().clone();
        shown.categories = policies.category_union();
        if !req.json {
            writeln!(out)?;
            render::score_header(&shown, out)?;
        }
        for (g, s) in &scores {
            line.clear();
            if req.json {
                render::score_json_line(s, policies.label(*g), &mut line);
            } else {
                render::score_row(&shown, s, &mut line);
            }
            out.write_all(&line)?;
        }
    }
    out.flush()?;
    Ok(if inputs.errors.is_empty() {
        Outcome::Clean
    } else {
        Outcome::BadRows(inputs.errors.len())
    })
}
