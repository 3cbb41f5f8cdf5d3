//! `attendd evaluate`: classify employee-days from files, with no store and
//! no network (`interfaces.md`, "attendd evaluate").
//!
//! Reads the policy and the CSV files, reports every malformed row with its
//! file and line, evaluates every well-formed row, and prints one record per
//! employee-day sorted by employee id then date: a table for people, JSON
//! lines with `--json`. With `--scores`, monthly scores follow.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};

use crate::domain::calendar::ShiftClock;
use crate::domain::classify::{EmployeeDays, evaluate_employee};
use crate::domain::policy::Policy;
use crate::domain::score::{MonthScore, month_scores};
use crate::domain::types::*;
use crate::input::{self, Parsed, RowError};
use crate::render;

/// What to evaluate.
#[derive(Clone, Debug)]
pub struct Request {
    /// Policy file.
    pub policy: PathBuf,
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
    Policy(#[from] crate::policy::PolicyError),
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
    /// Punches by employee index.
    pub punches: Vec<Vec<Punch>>,
    /// Roster by employee index.
    pub roster: Vec<Roster>,
    /// Leaves by employee index.
    pub leaves: Vec<Vec<Leave>>,
    /// Policy holidays merged with holidays.csv (the file wins).
    pub holidays: Holidays,
    /// Malformed rows.
    pub errors: Vec<RowError>,
    /// Rows naming an employee not in employees.csv.
    pub unknown: Vec<RowError>,
}

/// Reads and groups the input files.
pub fn read_inputs(policy: &Policy, req: &Request) -> Result<Inputs, EvaluateError> {
    let file = |p: &Path| p.display().to_string();
    let emps = input::read_employees(table(&req.employees)?, &file(&req.employees), policy);
    let mut errors = emps.errors;
    let mut employees: Vec<Employee> = emps
        .rows
        .into_iter()
        .map(|(_, r)| Employee {
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
    employees.sort_by(|a, b| a.id.cmp(&b.id));
    let index: HashMap<&str, usize> = employees
        .iter()
        .enumerate()
        .map(|(i, e)| (e.id.as_str(), i))
        .collect();
    let n = employees.len();
    let mut unknown = Vec::new();

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

    let mut punches: Vec<Vec<Punch>> = vec![Vec::new(); n];
    let p = input::read_punches(table(&req.punches)?, &file(&req.punches), policy.tz);
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
            });
            Some(())
        },
    );
    for v in &mut punches {
        v.sort_unstable();
    }

    let mut roster: Vec<Roster> = vec![Roster::new(); n];
    if let Some(path) = &req.roster {
        let r = input::read_roster(table(path)?, &file(path), policy);
        refuse(input::roster_conflicts(policy, &file(path), &r.rows, &[]))?;
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
        let l = input::read_leaves(table(path)?, &file(path), policy.tz);
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
                });
                Some(())
            },
        );
    }
    let mut holidays = policy.holidays.clone();
    if let Some(path) = &req.holidays {
        let h = input::read_holidays(table(path)?, &file(path));
        refuse(input::holiday_conflicts(&file(path), &h.rows))?;
        errors.extend(h.errors);
        for (_, row) in h.rows {
            holidays.insert(row.date, row.kind);
        }
    }
    errors.sort_by(|a, b| (a.file.as_str(), a.line).cmp(&(b.file.as_str(), b.line)));
    Ok(Inputs {
        employees,
        punches,
        roster,
        leaves,
        holidays,
        errors,
        unknown,
    })
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
    let policy = crate::policy::load(&req.policy)?;
    let inputs = read_inputs(&policy, req)?;
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
    let clock = ShiftClock::new(&policy, month_start - Days::new(3), req.to + Days::new(3));
    let progress = io::stderr().is_terminal();
    let started = Instant::now();
    let mut last_tick = started;
    let total = inputs.employees.len();
    let mut scores: Vec<MonthScore> = Vec::new();
    if !req.json {
        render::table_header(out)?;
    }
    let mut line: Vec<u8> = Vec::with_capacity(2048);
    for (i, emp) in inputs.employees.iter().enumerate() {
        let days = evaluate_employee(
            &clock,
            &inputs.holidays,
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
                render::json_line(v, &mut line);
            } else {
                render::table_row(v, &mut line);
            }
            out.write_all(&line)?;
        }
        if req.scores {
            scores.extend(month_scores(&policy, &emp.id, &days, &[]));
        }
        if progress && last_tick.elapsed().as_millis() >= 200 {
            last_tick = Instant::now();
            write!(err, "\revaluated {}/{} employees", i + 1, total)?;
        }
    }
    if progress && started.elapsed().as_millis() >= 200 {
        writeln!(
            err,
            "\revaluated {total}/{total} employees in {:.1?}",
            started.elapsed()
        )?;
    }
    if req.scores {
        if !req.json {
            writeln!(out)?;
            render::score_header(&policy, out)?;
        }
        for s in &scores {
            line.clear();
            if req.json {
                render::score_json_line(s, &mut line);
            } else {
                render::score_row(&policy, s, &mut line);
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
