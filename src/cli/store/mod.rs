//! The commands that read and load the store (`interfaces.md`): `import`,
//! `punches`, `day`, `summary`, `employee`, `month`, `quarantine`,
//! `recompute` and `publish`.
//!
//! Each reads the daemon's configuration (`--config`), opens the store it
//! names (SQLite readers run beside the daemon), prints a table or, with
//! `--json`, one JSON object per line. Exit codes: 0 success, 1 bad input or
//! configuration, 2 store failure.
//!
//! HR files are imported all-or-nothing: every bad row is listed with its
//! file and line and nothing is written. An import that changes anything
//! re-derives exactly the employee-days it can affect (the ladder counts per
//! month, so a change reaches to the end of its month). No command deletes
//! or edits a stored punch, and none prunes anything (retention floor: two
//! years, [`crate::store::RETENTION_FLOOR_DAYS`]).
//!
//! This file holds the clap definitions, the dispatch and what every
//! handler shares; the handlers are in `import.rs` (HR files and punch
//! files), `views.rs` (punches, day, summary, employee, month) and
//! `admin.rs` (quarantine and its replay, punch supersede, adjustments,
//! outbox, recompute, publish).

mod admin;
mod import;
mod views;

use std::collections::HashSet;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::config::{self, Config};
use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::store::{RecomputeReport, Store, StoreError};

use admin::{adjustment, outbox, publish, quarantine, recompute_cmd, replay, supersede};
use import::import;
use views::{day, employee, month, punches, summary};

/// Options every store command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Common {
    /// Daemon configuration; default $ATTENDD_CONFIG, else /etc/attendd/attendd.toml.
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The store commands, flattened into the top-level command list.
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Load HR data or punches into the store.
    ///
    /// HR files (employees, roster, leaves, holidays) are all-or-nothing:
    /// one bad row imports nothing and every bad row is listed with its
    /// line. Punches already stored are counted as duplicates, not doubled.
    Import(ImportArgs),
    /// Raw punches stored for a date (in the policy's time zone).
    Punches(PunchesArgs),
    /// HR's daily attendance table (default: today in the policy's zone).
    Day(DayArgs),
    /// The daily deduction summary: totals and one row per employee.
    Summary(DayArgs),
    /// One person's days, deductions and ladder actions for a month.
    Employee(EmployeeArgs),
    /// Monthly 100-point scores by category.
    Month(MonthArgs),
    /// Payloads that could not be decoded, with source and reason.
    Quarantine(QuarantineArgs),
    /// Alerts and daily summaries decided by the daemon, and whether each
    /// sink has accepted them.
    Outbox(OutboxArgs),
    /// Re-derived verdicts for days of published months, waiting for HR:
    /// list them, apply one (the new verdict and its ledger difference are
    /// written, audited) or dismiss it (the published verdict stays).
    Adjustment(AdjustmentArgs),
    /// Re-derive stored verdicts and the ledger for a date range.
    Recompute(RecomputeArgs),
    /// Publish a month's scores: later changes to its days become
    /// adjustments for HR instead of edits.
    Publish(PublishArgs),
}

/// `attendd import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// What to import.
    #[command(subcommand)]
    pub what: ImportKind,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// The files `attendd import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportKind {
    /// employees.csv: employee_id,name,team,supervisor[,shift][,alias].
    Employees {
        /// The CSV file.
        file: PathBuf,
    },
    /// roster.csv: employee_id,date,shift (a shift id or `rest`).
    Roster {
        /// The CSV file.
        file: PathBuf,
    },
    /// leaves.csv: employee_id,start,end,kind,status.
    Leaves {
        /// The CSV file.
        file: PathBuf,
    },
    /// holidays.csv: date,kind (holiday or workday).
    Holidays {
        /// The CSV file.
        file: PathBuf,
    },
    /// Punches from a CSV (employee_id,time[,device_id]) or a terminal's
    /// attlog.dat USB export.
    Punches {
        /// The file.
        file: PathBuf,
        /// File format.
        #[arg(long, value_enum, default_value_t = PunchFormat::Csv)]
        format: PunchFormat,
        /// Device id for punches whose file does not name one.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
    },
}

/// Formats `attendd import punches` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PunchFormat {
    /// employee_id,time[,device_id] with a header row.
    Csv,
    /// ZKTeco ATTLOG lines: PIN<TAB>YYYY-MM-DD HH:MM:SS<TAB>….
    ZkAttlog,
}

/// `attendd punches`.
#[derive(Debug, clap::Args)]
#[command(subcommand_negates_reqs = true)]
pub struct PunchesArgs {
    /// Take stored punches out of classification instead of listing them.
    #[command(subcommand)]
    pub action: Option<PunchesAction>,
    /// The date, YYYY-MM-DD, in the policy's zone.
    #[arg(long, value_name = "YYYY-MM-DD", required = true, value_parser = crate::dates::parse_date)]
    pub date: Option<NaiveDate>,
    /// Only this employee.
    #[arg(long, value_name = "ID")]
    pub employee: Option<String>,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd punches supersede`.
#[derive(Debug, Subcommand)]
pub enum PunchesAction {
    /// Take a device's stored punches in [--from, --to) out of
    /// classification (e.g. punches shifted by a misread time offset), so
    /// that the correct punches the terminal re-sends count instead. The
    /// punches stay stored; each supersede is audited; the days touched
    /// are re-classified.
    Supersede {
        /// The terminal (its device id, e.g. a ZKTeco serial number).
        #[arg(long, value_name = "ID")]
        device: String,
        /// First instant, `YYYY-MM-DD HH:MM[:SS]` in the policy's zone or
        /// RFC 3339.
        #[arg(long, value_name = "TIME")]
        from: String,
        /// End instant (excluded), same forms.
        #[arg(long, value_name = "TIME")]
        to: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
}

/// `attendd quarantine replay`.
#[derive(Debug, Subcommand)]
pub enum QuarantineAction {
    /// Decode quarantined payloads again with today's employees and
    /// aliases, store what now resolves (once: stored punches are
    /// recognised), mark those rows resolved (audited) and re-classify the
    /// days touched.
    Replay {
        /// Every unresolved row.
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        /// These rows (ids as `attendd quarantine` lists them).
        #[arg(value_name = "ID", required_unless_present = "all")]
        ids: Vec<i64>,
        /// For rows kept before replay information was recorded: the
        /// configured source they came from, e.g. `mqtt[0]`,
        /// `hik_http[1]`, `zk_push[0]:SN`.
        #[arg(long, value_name = "NAME")]
        source: Option<String>,
    },
}

/// `attendd day` and `attendd summary`.
#[derive(Debug, clap::Args)]
pub struct DayArgs {
    /// The date, YYYY-MM-DD; default today in the policy's zone.
    #[arg(value_name = "YYYY-MM-DD", value_parser = crate::dates::parse_date)]
    pub date: Option<NaiveDate>,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd employee`.
#[derive(Debug, clap::Args)]
pub struct EmployeeArgs {
    /// The employee id.
    pub id: String,
    /// The month, YYYY-MM; default this month in the policy's zone.
    #[arg(long, value_name = "YYYY-MM", value_parser = parse_month)]
    pub month: Option<NaiveDate>,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd month`.
#[derive(Debug, clap::Args)]
pub struct MonthArgs {
    /// The month, YYYY-MM; default this month in the policy's zone.
    #[arg(value_name = "YYYY-MM", value_parser = parse_month)]
    pub month: Option<NaiveDate>,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd quarantine`.
#[derive(Debug, clap::Args)]
pub struct QuarantineArgs {
    /// Replay quarantined payloads instead of listing them.
    #[command(subcommand)]
    pub action: Option<QuarantineAction>,
    /// How many of the newest entries to show.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd outbox`.
#[derive(Debug, clap::Args)]
pub struct OutboxArgs {
    /// Only this kind: absence, arrival, summary, terminal, publication.
    #[arg(long)]
    pub kind: Option<String>,
    /// How many of the newest messages to show.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd adjustment`.
#[derive(Debug, clap::Args)]
pub struct AdjustmentArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: AdjustmentAction,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd adjustment list|apply|dismiss`.
#[derive(Debug, Subcommand)]
pub enum AdjustmentAction {
    /// The pending adjustments (all with --all).
    List {
        /// Also superseded, applied and dismissed ones.
        #[arg(long)]
        all: bool,
    },
    /// Write the adjustment's verdict and ledger difference.
    Apply {
        /// Adjustment id.
        id: i64,
    },
    /// Keep the published verdict.
    Dismiss {
        /// Adjustment id.
        id: i64,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
}

/// `attendd recompute`.
#[derive(Debug, clap::Args)]
pub struct RecomputeArgs {
    /// First date, YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::dates::parse_date)]
    pub from: NaiveDate,
    /// Last date (inclusive), YYYY-MM-DD; capped at today.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::dates::parse_date)]
    pub to: NaiveDate,
    /// Only this employee.
    #[arg(long, value_name = "ID")]
    pub employee: Option<String>,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// `attendd publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// The month, YYYY-MM.
    #[arg(value_name = "YYYY-MM", value_parser = parse_month)]
    pub month: NaiveDate,
    /// Configuration and output options.
    #[command(flatten)]
    pub common: Common,
}

/// Parses `YYYY-MM` into the first day of the month.
pub use crate::dates::parse_month;

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
enum CmdError {
    /// Bad input or configuration: exit 1. One line per problem.
    #[error("{0}")]
    Input(String),
    /// The store failed: exit 2.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// Writing the output failed.
    #[error("writing output: {0}")]
    Output(#[from] io::Error),
}

type CmdResult = Result<(), CmdError>;

/// Runs a store command and returns the process exit code.
pub fn run(cmd: StoreCommand, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
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
    let result = rt.block_on(dispatch(cmd, out, err));
    match result {
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

async fn dispatch(cmd: StoreCommand, out: &mut dyn Write, err: &mut dyn Write) -> CmdResult {
    let common = match &cmd {
        StoreCommand::Import(a) => &a.common,
        StoreCommand::Punches(a) => &a.common,
        StoreCommand::Day(a) | StoreCommand::Summary(a) => &a.common,
        StoreCommand::Employee(a) => &a.common,
        StoreCommand::Month(a) => &a.common,
        StoreCommand::Quarantine(a) => &a.common,
        StoreCommand::Outbox(a) => &a.common,
        StoreCommand::Adjustment(a) => &a.common,
        StoreCommand::Recompute(a) => &a.common,
        StoreCommand::Publish(a) => &a.common,
    }
    .clone();
    let path = config::config_path(common.config.as_deref());
    let cfg = config::load_for_commands(&path).map_err(|e| CmdError::Input(e.to_string()))?;
    let store = Store::open_with(&cfg.store_url, cfg.sqlite_cache_mib).await?;
    let ctx = Ctx {
        cfg: &cfg,
        store: &store,
        json: common.json,
        now: Utc::now(),
        actor: std::env::var("USER").unwrap_or_else(|_| "attendd".into()),
    };
    let r = match cmd {
        StoreCommand::Quarantine(QuarantineArgs {
            action: Some(QuarantineAction::Replay { all, ids, source }),
            ..
        }) => replay(&ctx, all, ids, source, out).await,
        StoreCommand::Quarantine(a) => quarantine(&ctx, a.limit, out).await,
        StoreCommand::Punches(PunchesArgs {
            action:
                Some(PunchesAction::Supersede {
                    device,
                    from,
                    to,
                    reason,
                }),
            ..
        }) => supersede(&ctx, &device, &from, &to, &reason, out).await,
        StoreCommand::Import(a) => import(&ctx, a.what, out, err).await,
        StoreCommand::Punches(a) => punches(&ctx, a, out).await,
        StoreCommand::Day(a) => day(&ctx, a.date, out, err).await,
        StoreCommand::Summary(a) => summary(&ctx, a.date, out).await,
        StoreCommand::Employee(a) => employee(&ctx, &a.id, a.month, out).await,
        StoreCommand::Month(a) => month(&ctx, a.month, out).await,
        StoreCommand::Outbox(a) => outbox(&ctx, a.kind.as_deref(), a.limit, out).await,
        StoreCommand::Adjustment(a) => adjustment(&ctx, a.action, out).await,
        StoreCommand::Recompute(a) => recompute_cmd(&ctx, a, out).await,
        StoreCommand::Publish(a) => publish(&ctx, a.month, out).await,
    };
    store.close().await;
    r
}

/// What every command needs.
struct Ctx<'a> {
    cfg: &'a Config,
    store: &'a Store,
    json: bool,
    now: DateTime<Utc>,
    actor: String,
}

impl Ctx<'_> {
    fn policy(&self) -> &Policy {
        &self.cfg.policy
    }

    /// The default policy and the `[[policy.group]]`s.
    fn policies(&self) -> &crate::policy_file::Policies {
        &self.cfg.policies
    }

    fn today(&self) -> NaiveDate {
        to_local(self.policy().tz, self.now).date_naive()
    }

    /// Prints a JSON object or a line of text.
    fn emit(&self, out: &mut dyn Write, value: serde_json::Value, text: &str) -> io::Result<()> {
        if self.json {
            writeln!(out, "{value}")
        } else {
            writeln!(out, "{text}")
        }
    }
}

fn report_json(r: &RecomputeReport) -> serde_json::Value {
    json!({
        "from": r.range.map(|x| x.0),
        "to": r.range.map(|x| x.1),
        "evaluated": r.evaluated,
        "created": r.created,
        "changed": r.changed,
        "touched": r.touched,
        "adjustments": r.adjustments,
        "ledger_added": r.ledger_added,
        "ledger_voided": r.ledger_voided,
        "unchanged": r.unchanged,
    })
}

fn report_text(r: &RecomputeReport) -> String {
    match r.range {
        None => "recompute: nothing to evaluate".into(),
        Some((f, t)) => format!(
            "recompute {f}..{t}: {} day(s) evaluated, {} new, {} changed, {} adjustment(s) for published months, \
             ledger +{} / voided {}",
            r.evaluated, r.created, r.changed, r.adjustments, r.ledger_added, r.ledger_voided
        ),
    }
}

async fn known_employees(store: &Store) -> Result<HashSet<String>, CmdError> {
    Ok(store
        .employees()
        .await?
        .into_iter()
        .map(|e| e.employee_id)
        .collect())
}

fn hr_error(e: crate::hr::HrError) -> CmdError {
    match e {
        crate::hr::HrError::Store(s) => CmdError::Store(s),
        other => CmdError::Input(other.to_string()),
    }
}
