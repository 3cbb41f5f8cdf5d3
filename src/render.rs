//! How verdicts and scores are shown: JSON lines for machines, aligned
//! tables for people. Shared by every command that prints day records, so
//! `attendd day --json` and `attendd evaluate --json` print the same fields.

use std::io::{self, Write};

use crate::domain::policy::Policy;
use crate::domain::score::MonthScore;
use crate::domain::types::DayVerdict;

/// One day record as a JSON line (`interfaces.md`, "attendd evaluate"),
/// labelled with the employee's policy group (`default` for the default
/// policy; policy.md, "Several rule sets on one site").
pub fn json_line(v: &DayVerdict, policy: &str, buf: &mut Vec<u8>) {
    #[derive(serde::Serialize)]
    struct Labelled<'a> {
        #[serde(flatten)]
        v: &'a DayVerdict,
        policy: &'a str,
    }
    // Serialising plain data into a Vec cannot fail.
    serde_json::to_writer(&mut *buf, &Labelled { v, policy }).expect("verdict serialises");
    buf.push(b'\n');
}

/// One monthly score as `{"scores":{…}}` on its own line.
/// The score carries `policy` as a day record does.
pub fn score_json_line(s: &MonthScore, policy: &str, buf: &mut Vec<u8>) {
    #[derive(serde::Serialize)]
    struct Labelled<'a> {
        #[serde(flatten)]
        s: &'a MonthScore,
        policy: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Wrap<'a> {
        scores: Labelled<'a>,
    }
    serde_json::to_writer(
        &mut *buf,
        &Wrap {
            scores: Labelled { s, policy },
        },
    )
    .expect("score serialises");
    buf.push(b'\n');
}

/// The day table's header.
pub fn table_header(out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "{:<10} {:<10} {:<9} {:<14} {:<11} {:<11} {:>5} {:>5} {:>7} {:>6}  actions / rules",
        "employee", "date", "shift", "status", "in", "out", "late", "early", "absence", "points"
    )
}

/// The day table's header with a first `policy` column, for runs that mix
/// several policies (policy.md, "Several rule sets on one site").
pub fn table_header_labelled(out: &mut dyn Write) -> io::Result<()> {
    write!(out, "{:<12} ", "policy")?;
    table_header(out)
}

/// One day as a table row after its policy label.
pub fn table_row_labelled(v: &DayVerdict, policy: &str, buf: &mut Vec<u8>) {
    let _ = write!(buf, "{policy:<12} ");
    table_row(v, buf);
}

fn clock(v: &DayVerdict, t: Option<chrono::DateTime<chrono::FixedOffset>>) -> String {
    match t {
        None => "-".into(),
        Some(t) => {
            let days = (t.date_naive() - v.date).num_days();
            if days == 0 {
                t.format("%H:%M:%S").to_string()
            } else {
                format!("{}{:+}d", t.format("%H:%M:%S"), days)
            }
        }
    }
}

/// One day as a table row.
pub fn table_row(v: &DayVerdict, buf: &mut Vec<u8>) {
    let mut notes: Vec<String> = v.actions.iter().map(|a| a.to_string()).collect();
    notes.extend(
        v.deductions
            .iter()
            .map(|d| format!("{}:-{}", d.rule, d.points)),
    );
    notes.extend(v.flags.iter().map(|f| f.as_str().to_string()));
    let _ = writeln!(
        buf,
        "{:<10} {:<10} {:<9} {:<14} {:<11} {:<11} {:>5} {:>5} {:>7} {:>6}  {}",
        v.employee_id.as_str(),
        v.date,
        v.shift.as_deref().unwrap_or("-"),
        v.status.as_str(),
        clock(v, v.check_in),
        clock(v, v.check_out),
        v.late_minutes,
        v.early_minutes,
        v.absence_days.to_string(),
        v.points.to_string(),
        notes.join(" ")
    );
}

/// The score table's header: one column per category of the policy.
pub fn score_header(policy: &Policy, out: &mut dyn Write) -> io::Result<()> {
    write!(out, "{:<10} {:<7} {:>6}", "employee", "month", "score")?;
    for c in &policy.categories {
        write!(
            out,
            " {:>14}",
            format!("{}({})", c.id, c.cap.map_or("-".into(), |p| p.to_string()))
        )?;
    }
    writeln!(
        out,
        " {:>7} {:>10} {:>8}",
        "bonus", "attendance", "overtime"
    )
}

/// One monthly score as a table row: per category `raw→capped`.
pub fn score_row(policy: &Policy, s: &MonthScore, buf: &mut Vec<u8>) {
    let _ = write!(
        buf,
        "{:<10} {:<7} {:>6}",
        s.employee_id.as_str(),
        s.month,
        s.score.to_string()
    );
    for c in &policy.categories {
        let cell = match s.categories.get(&c.id) {
            Some(cs) if cs.raw != cs.capped => format!("{}→{}", cs.raw, cs.capped),
            Some(cs) => cs.raw.to_string(),
            None => "0".into(),
        };
        let _ = write!(buf, " {cell:>14}");
    }
    let _ = writeln!(
        buf,
        " {:>7} {:>10} {:>8}",
        s.bonuses.to_string(),
        s.attendance_days.to_string(),
        s.overtime_minutes
    );
}
