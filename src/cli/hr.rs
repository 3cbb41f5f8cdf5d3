//! HR's commands: `deduct`, `bonus`, `correct`, `appeal` and `export`.
//!
//! Like the store commands they read the daemon's configuration
//! (`--config`), print a line of text or, with `--json`, one JSON object,
//! and exit 0 on success, 1 on bad input (the message names the field)
//! and 2 on a store failure. The actor recorded in the ledger and the
//! audit trail is `--by`, else `$USER`.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{NaiveDate, Utc};
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use super::store::Common;
use crate::config;
use crate::dates::parse_month;
use crate::domain::Points;
use crate::domain::time::to_local;
use crate::export::{Lang, View};
use crate::hr::{EntryKind, HrError, ManualRequest};
use crate::store::{Store, StoreError};

/// HR's commands, flattened into the top-level command list.
#[derive(Debug, Subcommand)]
pub enum HrCommand {
    /// Record a manual deduction from the policy's catalogue (dress code,
    /// unauthorised shift swap, missed training, …).
    Deduct(ManualArgs),
    /// Record a bonus from the policy's catalogue.
    Bonus(ManualArgs),
    /// Record a forgotten punch a supervisor confirms (补卡) and
    /// recompute the employee's days.
    Correct(CorrectArgs),
    /// File, answer or list appeals against ledger entries of a published
    /// month.
    Appeal(AppealArgs),
    /// Export a month as CSV (one view) or an XLSX workbook (daily grid,
    /// deductions, scores), or a year's results (`--year`) as XLSX.
    Export(ExportArgs),
    /// Year results: per employee the monthly scores, the year score,
    /// `failed` against the policy's pass_mark and the flag
    /// failed_two_consecutive_years.
    Year(YearArgs),
}

/// `attendd year`.
#[derive(Debug, clap::Args)]
pub struct YearArgs {
    /// The year, YYYY.
    #[arg(value_name = "YYYY")]
    pub year: String,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd deduct` and `attendd bonus`.
#[derive(Debug, clap::Args)]
pub struct ManualArgs {
    /// Employee id.
    #[arg(long, value_name = "ID")]
    pub employee: String,
    /// The day it concerns, YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::dates::parse_date)]
    pub date: NaiveDate,
    /// Rule id from the policy's catalogue.
    #[arg(long)]
    pub rule: String,
    /// Points (default: the rule's).
    #[arg(long)]
    pub points: Option<Points>,
    /// What happened.
    #[arg(long)]
    pub note: String,
    /// Who records it (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd correct`.
#[derive(Debug, clap::Args)]
pub struct CorrectArgs {
    /// Employee id.
    #[arg(long, value_name = "ID")]
    pub employee: String,
    /// When the employee was there: RFC 3339, or `YYYY-MM-DD HH:MM[:SS]`
    /// in the policy's zone.
    #[arg(long)]
    pub time: String,
    /// Why the terminal missed it.
    #[arg(long)]
    pub reason: String,
    /// Who confirms it (default: $USER).
    #[arg(long)]
    pub by: Option<String>,
    /// HR's reason for recording it beyond the policy's `[corrections]`
    /// limits (per_month, within_days); kept in the audit trail.
    #[arg(long = "override", value_name = "REASON")]
    pub override_reason: Option<String>,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd appeal`.
#[derive(Debug, clap::Args)]
pub struct AppealArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: AppealCommand,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd appeal …`.
#[derive(Debug, Subcommand)]
pub enum AppealCommand {
    /// Appeal a ledger entry (until the end of the 2nd calendar day after
    /// its month's publication, in the policy's zone).
    File {
        /// The ledger entry id (`attendd employee ID` lists them).
        #[arg(long, value_name = "ID")]
        entry: i64,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Who files it (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Answer an appeal: upheld voids the entry, rejected keeps it.
    Answer {
        /// The appeal id.
        id: i64,
        /// The decision.
        #[arg(long, value_enum)]
        decision: Decision,
        /// The answer given to the employee.
        #[arg(long)]
        answer: String,
        /// Who answers (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// List appeals.
    List {
        /// Only appeals with this status: open, overdue (open past the
        /// policy's `appeal_answer_days`), upheld, rejected.
        #[arg(long)]
        status: Option<String>,
    },
}

/// An appeal's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Decision {
    /// The entry is voided.
    Upheld,
    /// The entry stands.
    Rejected,
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One view as CSV (UTF-8 with BOM).
    Csv,
    /// A workbook with one sheet per view.
    Xlsx,
}

/// `attendd export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The month, YYYY-MM.
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month, required_unless_present = "year", conflicts_with = "year")]
    pub month: Option<NaiveDate>,
    /// A year's results instead of a month (XLSX only), YYYY.
    #[arg(long, value_name = "YYYY")]
    pub year: Option<String>,
    /// File format.
    #[arg(long, value_enum)]
    pub format: Format,
    /// Output file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: PathBuf,
    /// Header and label language: en or zh.
    #[arg(long, default_value = "en", value_parser = Lang::parse)]
    pub lang: Lang,
    /// CSV only: days, deductions or scores.
    #[arg(long, default_value = "days", value_parser = View::parse)]
    pub view: View,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, thiserror::Error)]
enum CmdError {
    #[error("{0}")]
    Input(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
}

impl From<HrError> for CmdError {
    fn from(e: HrError) -> Self {
        match e {
            HrError::Store(s) => CmdError::Store(s),
            other => CmdError::Input(other.to_string()),
        }
    }
}

/// Runs an HR command and returns the exit code.
pub fn run(cmd: HrCommand, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(dispatch(cmd, out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CmdError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            for line in e.to_string().lines() {
                let _ = writeln!(err, "error: {line}");
            }
            ExitCode::from(match e {
                CmdError::Input(_) => 1,
                CmdError::Store(_) | CmdError::Output(_) => 2,
            })
        }
    }
}

fn actor(by: Option<String>) -> String {
    by.filter(|b| !b.trim().is_empty())
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "attendd".into())
}

async fn dispatch(cmd: HrCommand, out: &mut dyn Write) -> Result<(), CmdError> {
    let common = match &cmd {
        HrCommand::Deduct(a) | HrCommand::Bonus(a) => &a.common,
        HrCommand::Correct(a) => &a.common,
        HrCommand::Appeal(a) => &a.common,
        HrCommand::Export(a) => &a.common,
        HrCommand::Year(a) => &a.common,
    }
    .clone();
    let path = config::config_path(common.config.as_deref());
    let cfg = config::load_for_commands(&path).map_err(|e| CmdError::Input(e.to_string()))?;
    let store = Store::open_with(&cfg.store_url, cfg.sqlite_cache_mib).await?;
    let r = run_one(cmd, &cfg.policies, &store, common.json, out).await;
    store.close().await;
    r
}

async fn run_one(
    cmd: HrCommand,
    policies: &crate::policy_file::Policies,
    store: &Store,
    json_out: bool,
    out: &mut dyn Write,
) -> Result<(), CmdError> {
    let now = Utc::now();
    let emit = |out: &mut dyn Write, v: serde_json::Value, text: String| -> io::Result<()> {
        if json_out {
            writeln!(out, "{v}")
        } else {
            writeln!(out, "{text}")
        }
    };
    match cmd {
        HrCommand::Deduct(a) => manual(policies, store, a, EntryKind::Deduction, &emit, out).await,
        HrCommand::Bonus(a) => manual(policies, store, a, EntryKind::Bonus, &emit, out).await,
        HrCommand::Correct(a) => correct(a, policies, store, now, &emit, out).await,
        HrCommand::Appeal(a) => appeal(a.what, policies, store, now, &emit, out).await,
        HrCommand::Year(a) => year(a, policies, store, &emit, out).await,
        HrCommand::Export(a) => export(a, policies, store, &emit, out).await,
    }
}

/// `attendd correct`.
async fn correct(
    a: CorrectArgs,
    policies: &crate::policy_file::Policies,
    store: &Store,
    now: chrono::DateTime<Utc>,
    emit: &Emit<'_>,
    out: &mut dyn Write,
) -> Result<(), CmdError> {
    let policy = policies.default_policy();
    let time = crate::input::LocalTimes::new(policy.tz)
        .parse(&a.time)
        .map_err(|e| CmdError::Input(format!("--time: {e}")))?;
    let by = actor(a.by);
    let o = crate::hr::record_correction(
        store,
        policies,
        &a.employee,
        time,
        &a.reason,
        &by,
        a.override_reason.as_deref(),
        now,
    )
    .await?;
    emit(
        out,
        json!(o),
        format!(
            "correction {} for {} at {} recorded by {by}{}; {} day(s) evaluated, {} changed, {} adjustment(s)",
            o.id,
            a.employee,
            to_local(policy.tz, time).to_rfc3339(),
            o.override_reason
                .as_deref()
                .map(|r| format!(" (override: {r})"))
                .unwrap_or_default(),
            o.evaluated,
            o.changed,
            o.adjustments
        ),
    )?;
    Ok(())
}

/// `attendd appeal file|answer|list`.
async fn appeal(
    what: AppealCommand,
    policies: &crate::policy_file::Policies,
    store: &Store,
    now: chrono::DateTime<Utc>,
    emit: &Emit<'_>,
    out: &mut dyn Write,
) -> Result<(), CmdError> {
    let policy = policies.default_policy();
    match what {
        AppealCommand::File { entry, reason, by } => {
            let ap =
                crate::hr::file_appeal(store, policies, entry, &reason, &actor(by), now).await?;
            emit(
                out,
                json!(ap),
                format!("appeal {} filed against ledger entry {entry}", ap.id),
            )?;
            Ok(())
        }
        AppealCommand::Answer {
            id,
            decision,
            answer,
            by,
        } => {
            let ap = crate::hr::answer_appeal(
                store,
                id,
                decision == Decision::Upheld,
                &answer,
                &actor(by),
                now,
            )
            .await?;
            emit(
                out,
                json!(ap),
                format!(
                    "appeal {id} {}{}",
                    ap.status,
                    if ap.status == "upheld" {
                        format!(": ledger entry {} voided", ap.ledger_id)
                    } else {
                        String::new()
                    }
                ),
            )?;
            Ok(())
        }
        AppealCommand::List { status } => {
            let rows = crate::hr::list_appeals(store, policies, status.as_deref(), now)
                .await
                .map_err(|e| match e {
                    HrError::Invalid { why, .. } => CmdError::Input(format!("--status: {why}")),
                    other => other.into(),
                })?;
            for v in rows {
                let ap = &v.appeal;
                emit(
                    out,
                    json!(v),
                    format!(
                        "#{:<5} entry {:<6} {:<8} {:<9} filed {} by {}{}: {}",
                        ap.id,
                        ap.ledger_id,
                        ap.employee_id,
                        ap.status,
                        to_local(policy.tz, ap.filed_at).to_rfc3339(),
                        ap.filed_by,
                        if v.overdue {
                            format!(
                                " OVERDUE (answer due {})",
                                to_local(policy.tz, v.answer_due).to_rfc3339()
                            )
                        } else {
                            String::new()
                        },
                        ap.reason
                    ),
                )?;
            }
            Ok(())
        }
    }
}

/// `attendd year`.
async fn year(
    a: YearArgs,
    policies: &crate::policy_file::Policies,
    store: &Store,
    emit: &Emit<'_>,
    out: &mut dyn Write,
) -> Result<(), CmdError> {
    let year = crate::hr::year::parse_year(&a.year)?;
    for r in crate::hr::year::year_results(store, policies, year).await? {
        emit(
            out,
            json!(r),
            format!(
                "{:<8} {:<12} {:>2} month(s) score {:>6} {}{}",
                r.employee_id,
                r.name,
                r.months.len(),
                r.score.map_or_else(|| "-".to_string(), |s| s.to_string()),
                if r.failed { "FAILED" } else { "passed" },
                if r.flags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", r.flags.join(", "))
                }
            ),
        )?;
    }
    Ok(())
}

/// `attendd export --year` (a workbook) or `--month` (CSV or workbook).
async fn export(
    a: ExportArgs,
    policies: &crate::policy_file::Policies,
    store: &Store,
    emit: &Emit<'_>,
    out: &mut dyn Write,
) -> Result<(), CmdError> {
    let ExportArgs {
        year: Some(y),
        format,
        output,
        lang,
        ..
    } = a
    else {
        return export_month(a, policies, store, emit, out).await;
    };
    let policy = policies.default_policy();
    let year = crate::hr::year::parse_year(&y)?;
    if format != Format::Xlsx {
        return Err(CmdError::Input(
            "--format: a year is exported as xlsx only".into(),
        ));
    }
    let rows = crate::hr::year::year_results(store, policies, year).await?;
    let bytes = crate::export::year_xlsx(policy, year, &rows, lang)
        .map_err(|e| CmdError::Output(io::Error::other(e)))?;
    std::fs::write(&output, &bytes)
        .map_err(|e| CmdError::Input(format!("-o {}: {e}", output.display())))?;
    emit(
        out,
        json!({"year": year, "file": output, "bytes": bytes.len(), "employees": rows.len()}),
        format!(
            "{year}: {} employee(s) → {} ({} bytes)",
            rows.len(),
            output.display(),
            bytes.len()
        ),
    )?;
    Ok(())
}

/// `attendd export --month`.
async fn export_month(
    a: ExportArgs,
    policies: &crate::policy_file::Policies,
    store: &Store,
    emit: &Emit<'_>,
    out: &mut dyn Write,
) -> Result<(), CmdError> {
    let Some(month) = a.month else {
        return Err(CmdError::Input("--month or --year is required".into()));
    };
    let data = crate::hr::month_data(store, policies, month, |_| true).await?;
    // Several policies: every group's categories and rules.
    let policy = &policies.for_display();
    let bytes = match a.format {
        Format::Csv => crate::export::csv(policy, &data, a.view, a.lang)
            .map_err(|e| CmdError::Output(io::Error::other(e)))?,
        Format::Xlsx => crate::export::xlsx(policy, &data, a.lang)
            .map_err(|e| CmdError::Output(io::Error::other(e)))?,
    };
    std::fs::write(&a.output, &bytes)
        .map_err(|e| CmdError::Input(format!("-o {}: {e}", a.output.display())))?;
    emit(
        out,
        json!({"month": data.month, "file": a.output, "bytes": bytes.len(),
                   "employees": data.employees.len(), "ledger_entries": data.ledger.len()}),
        format!(
            "{}: {} employee(s), {} ledger entr(ies) → {} ({} bytes)",
            data.month,
            data.employees.len(),
            data.ledger.len(),
            a.output.display(),
            bytes.len()
        ),
    )?;
    Ok(())
}

type Emit<'a> = dyn Fn(&mut dyn Write, serde_json::Value, String) -> io::Result<()> + 'a;

async fn manual(
    policy: &crate::policy_file::Policies,
    store: &Store,
    a: ManualArgs,
    kind: EntryKind,
    emit: &Emit<'_>,
    out: &mut dyn Write,
) -> Result<(), CmdError> {
    let e = crate::hr::record_manual(
        store,
        policy,
        &ManualRequest {
            employee_id: a.employee,
            date: a.date,
            rule: a.rule,
            points: a.points,
            note: a.note,
            by: actor(a.by),
            kind,
        },
    )
    .await?;
    emit(
        out,
        json!(e),
        format!(
            "ledger entry {}: {} {} {}{} ({}) recorded by {}",
            e.id,
            e.employee_id,
            e.date,
            if e.bonus { "+" } else { "-" },
            Points::from_hundredths(e.points),
            e.rule,
            e.recorded_by
        ),
    )?;
    Ok(())
}
