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

// Over 800 lines: the clap definitions and one handler per store command
// (import, punches, day, summary, employee, month, quarantine, outbox,
// adjustment, recompute, publish); each handler is short except `import`.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use clap::{Subcommand, ValueEnum};
use serde_json::json;

use crate::config::{self, Config};
use crate::domain::time::{resolve_local, to_local};
use crate::domain::types::{DayVerdict, HolidayKind, LeaveDocument, LeaveStatus, RosterEntry};
use crate::domain::{Points, policy::Policy};
use crate::hr::before_start_note;
use crate::ingest::decode::zk_attlog as zk;
use crate::input::{self, LocalTimes, RowError};
use crate::render;
use crate::store::month_bounds;
use crate::store::{
    EmployeeRecord, HolidayRecord, Inserted, LeaveRecord, NewPunch, NewQuarantine, RecomputeReport,
    RosterRecord, Store, StoreError,
};

/// Punches per transaction when importing a file.
const IMPORT_BATCH: usize = 5000;

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
    let store = Store::open(&cfg.store_url).await?;
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
    fn policies(&self) -> &crate::policy::Policies {
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

// Over 150 lines: one arm per file kind (employees, roster, leaves,
// holidays, punches), each checking every row before it writes anything.
async fn import(
    ctx: &Ctx<'_>,
    what: ImportKind,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CmdResult {
    let policy = ctx.policy();
    match what {
        ImportKind::Employees { file } => {
            let name = file.display().to_string();
            let parsed = input::read_employees_in(table(&file)?, &name, ctx.policies());
            let mut errors = parsed.errors;
            let mut alias_line: HashMap<&str, (u64, &str)> = HashMap::new();
            for (line, r) in &parsed.rows {
                for a in &r.aliases {
                    if let Some((prev, who)) = alias_line.insert(a, (*line, &r.id))
                        && who != r.id
                    {
                        errors.push(RowError {
                            file: name.clone(),
                            line: *line,
                            message: format!("alias {a:?} already belongs to {who} on line {prev}"),
                        });
                    }
                }
            }
            refuse(&name, errors)?;
            // What classification depends on: the default shift and the
            // employment dates.
            type Basis = (Option<String>, Option<NaiveDate>, Option<NaiveDate>);
            let before: HashMap<String, Basis> = ctx
                .store
                .employees()
                .await?
                .into_iter()
                .map(|e| (e.employee_id, (e.shift, e.start_date, e.end_date)))
                .collect();
            // Each employee's policy group (policy.md, "Several rule sets
            // on one site").
            let groups: Vec<(String, usize)> = parsed
                .rows
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
                .rows
                .iter()
                .map(|(_, r)| (r.id.clone(), r.supervisor_contact.clone()))
                .collect();
            let rows: Vec<EmployeeRecord> = parsed
                .rows
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
            let regrouped: HashSet<&str> = group_changes
                .iter()
                .map(|c| c.employee_id.as_str())
                .collect();
            let changed: Vec<String> = rows
                .iter()
                .filter(|r| {
                    before.get(&r.employee_id) != Some(&(r.shift.clone(), r.start_date, r.end_date))
                        || regrouped.contains(r.employee_id.as_str())
                })
                .map(|r| r.employee_id.clone())
                .collect();
            // From their first punch's month, or (none yet) from the
            // classification start: a new employee who never came is absent
            // on the days since, unless not employed then.
            let first = ctx.store.first_punch(&changed).await?;
            let start = match first {
                Some(t) => Some(
                    to_local(policy.tz, t)
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
            };
            let rep = match start {
                Some(s) => {
                    let days = [s, ctx.today()];
                    recompute_affected(
                        ctx,
                        Some(changed.clone()),
                        days.into_iter(),
                        None,
                        &format!("import employees {name}"),
                    )
                    .await?
                }
                None => RecomputeReport::default(),
            };
            emit_import(
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
                &rep,
            )?;
        }
        ImportKind::Roster { file } => {
            let name = file.display().to_string();
            // Each row's shift is one of its employee's policy (the group
            // the employee follows now).
            let history = ctx.store.policy_history().await?;
            let group_of = |id: &str| history.index_at(ctx.policies(), id, NaiveDate::MAX);
            let policy_of = |id: &str| ctx.policies().get(group_of(id));
            let parsed = input::read_roster_by(table(&file)?, &name, policy_of);
            let known = known_employees(ctx.store).await?;
            let mut errors = parsed.errors;
            for (line, r) in &parsed.rows {
                check_known(&known, &r.employee_id, &name, *line, &mut errors);
            }
            // Overlaps with the stored neighbours count too; a stored row
            // the file replaces does not.
            let mut stored = Vec::new();
            if let (Some(lo), Some(hi)) = (
                parsed.rows.iter().map(|(_, r)| r.date).min(),
                parsed.rows.iter().map(|(_, r)| r.date).max(),
            ) {
                let in_file: HashSet<(&str, NaiveDate)> = parsed
                    .rows
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
                    stored.push(input::RosterRow {
                        employee_id: r.employee_id,
                        date: r.date,
                        entry,
                    });
                }
            }
            // Overlaps are measured on each policy's own shift clock.
            for g in 0..ctx.policies().len() {
                let mine = |rows: &[(u64, input::RosterRow)]| -> Vec<(u64, input::RosterRow)> {
                    rows.iter()
                        .filter(|(_, r)| group_of(&r.employee_id) == g)
                        .cloned()
                        .collect()
                };
                let theirs: Vec<input::RosterRow> = stored
                    .iter()
                    .filter(|r| group_of(&r.employee_id) == g)
                    .cloned()
                    .collect();
                errors.extend(input::roster_conflicts(
                    ctx.policies().get(g),
                    &name,
                    &mine(&parsed.rows),
                    &theirs,
                ));
            }
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
            let rep = recompute_affected(
                ctx,
                Some(emps),
                changed.iter().map(|r| r.date),
                None,
                &format!("import roster {name}"),
            )
            .await?;
            emit_import(
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
                &rep,
            )?;
        }
        ImportKind::Leaves { file } => {
            let name = file.display().to_string();
            // Local times in the zone of each employee's policy.
            let history = ctx.store.policy_history().await?;
            let tz_of = |id: &str| {
                ctx.policies()
                    .get(history.index_at(ctx.policies(), id, NaiveDate::MAX))
                    .tz
            };
            let parsed = input::read_leaves_by(table(&file)?, &name, tz_of);
            let known = known_employees(ctx.store).await?;
            let mut errors = parsed.errors;
            for (line, r) in &parsed.rows {
                check_known(&known, &r.employee_id, &name, *line, &mut errors);
            }
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
            let tz = policy.tz;
            let dates = changed.iter().flat_map(|l| {
                [
                    to_local(tz, l.start).date_naive(),
                    to_local(tz, l.end).date_naive(),
                ]
            });
            let rep = recompute_affected(
                ctx,
                Some(emps),
                dates,
                None,
                &format!("import leaves {name}"),
            )
            .await?;
            emit_import(
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
                &rep,
            )?;
        }
        ImportKind::Holidays { file } => {
            let name = file.display().to_string();
            let parsed = input::read_holidays(table(&file)?, &name);
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
            let rep = recompute_affected(
                ctx,
                None,
                changed.iter().map(|r| r.date),
                None,
                &format!("import holidays {name}"),
            )
            .await?;
            emit_import(
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
                &rep,
            )?;
        }
        ImportKind::Punches {
            file,
            format,
            device,
        } => import_punches(ctx, &file, format, device, out, err).await?,
    }
    Ok(())
}

async fn known_employees(store: &Store) -> Result<HashSet<String>, CmdError> {
    Ok(store
        .employees()
        .await?
        .into_iter()
        .map(|e| e.employee_id)
        .collect())
}

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

fn unique(it: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = it.collect();
    v.sort();
    v.dedup();
    v
}

// Over 150 lines: one arm per punch file format (CSV, ZKTeco ATTLOG),
// then one batched, attributed write shared by both.
async fn import_punches(
    ctx: &Ctx<'_>,
    file: &Path,
    format: PunchFormat,
    device: Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CmdResult {
    let policy = ctx.policy();
    let name = file.display().to_string();
    let source = format!("import:{name}");
    let employees = ctx.store.employees().await?;
    let mut identity: HashMap<String, String> = HashMap::new();
    for e in &employees {
        for a in &e.aliases {
            identity.insert(a.clone(), e.employee_id.clone());
            // An explicit hex card (`hex:27373963`) is also found under its
            // canonical number, as the daemon finds it (issue 11, 12).
            if a.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("hex:")) {
                for k in crate::pipeline::alias_keys(a) {
                    identity.entry(k).or_insert_with(|| e.employee_id.clone());
                }
            }
        }
    }
    for e in &employees {
        identity.insert(e.employee_id.clone(), e.employee_id.clone());
    }
    let attribute = |id: &str| identity.get(id).cloned().unwrap_or_else(|| id.to_string());

    let mut punches: Vec<NewPunch> = Vec::new();
    let mut quarantined = 0usize;
    match format {
        PunchFormat::Csv => {
            // Local times in the zone of each employee's policy.
            let history = ctx.store.policy_history().await?;
            let tz_of = |id: &str| {
                ctx.policies()
                    .get(history.index_at(ctx.policies(), &attribute(id), NaiveDate::MAX))
                    .tz
            };
            let parsed = input::read_punches_by(table(file)?, &name, tz_of);
            refuse(&name, parsed.errors)?;
            punches = parsed
                .rows
                .into_iter()
                .map(|(_, r)| NewPunch {
                    employee_id: attribute(&r.employee_id),
                    time: r.time,
                    device_id: r
                        .device_id
                        .map(|d| d.to_string())
                        .or_else(|| device.clone()),
                    event_id: None,
                    source: source.clone(),
                    raw: None,
                    identity: r.employee_id,
                    direction: None,
                })
                .collect();
        }
        PunchFormat::ZkAttlog => {
            let mut times = LocalTimes::new(policy.tz);
            let mut reader = open(file)?;
            let mut buf = Vec::new();
            let mut line_no = 0u64;
            loop {
                buf.clear();
                let n = reader
                    .read_until(b'\n', &mut buf)
                    .map_err(|e| CmdError::Input(format!("{name}: {e}")))?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                let decoded = std::str::from_utf8(&buf)
                    .map_err(|_| "not UTF-8".to_string())
                    .and_then(|s| {
                        if s.trim().is_empty() {
                            Ok(None)
                        } else {
                            zk::parse_line(s).map(|l| Some((s, l)))
                        }
                    });
                match decoded {
                    Ok(None) => {}
                    Ok(Some((text, l))) => punches.push(NewPunch {
                        employee_id: attribute(&l.pin),
                        time: l.at.unwrap_or_else(|| times.resolve(l.local)),
                        device_id: device.clone(),
                        event_id: None,
                        source: source.clone(),
                        raw: Some(text.trim_end_matches(['\r', '\n']).to_string()),
                        direction: l.kind.state().map(String::from),
                        identity: l.pin,
                    }),
                    Err(reason) => {
                        ctx.store
                            .quarantine(
                                &NewQuarantine {
                                    source: format!("{name}:{line_no}"),
                                    payload: buf.clone(),
                                    reason: reason.clone(),
                                    ..Default::default()
                                },
                                chrono::Utc::now(),
                            )
                            .await?;
                        writeln!(err, "warning: {name}:{line_no}: {reason}; quarantined")?;
                        quarantined += 1;
                    }
                }
            }
        }
    }

    let progress = crate::progress::Progress::bar(punches.len() as u64, "punches stored");
    let started = Instant::now();
    let (mut new, mut dup) = (0usize, 0usize);
    // The dates the file covers (its new punches): classified for every
    // employee, so that those who never came are absent there too.
    let mut covered: Option<(NaiveDate, NaiveDate)> = None;
    let mut new_dates: Vec<NaiveDate> = Vec::new();
    for (b, batch) in punches.chunks(IMPORT_BATCH).enumerate() {
        let res = ctx.store.insert_punches(batch, chrono::Utc::now()).await?;
        for (p, r) in batch.iter().zip(res) {
            match r {
                Inserted::New(_) => {
                    new += 1;
                    let d = to_local(policy.tz, p.time).date_naive();
                    new_dates.push(d);
                    let c = covered.get_or_insert((d, d));
                    c.0 = c.0.min(d);
                    c.1 = c.1.max(d);
                }
                Inserted::Duplicate => dup += 1,
            }
        }
        progress.set((b * IMPORT_BATCH + batch.len()) as u64);
    }
    progress.finish(&format!(
        "stored {} punches in {:.1?}",
        punches.len(),
        started.elapsed()
    ));
    let rep = recompute_affected(
        ctx,
        None,
        covered.into_iter().flat_map(|(a, b)| [a, b]),
        covered.map(|c| c.0),
        &format!("import punches {name}"),
    )
    .await?;
    let start = ctx
        .store
        .classify_from(ctx.cfg.ingest.classify_from)
        .await?;
    let before = start.map_or(0, |s| new_dates.iter().filter(|d| **d < s).count());
    if before > 0
        && let Some(s) = start
    {
        writeln!(
            err,
            "note: {before} punch(es) dated before the classification start {s} stored, not classified \
             (attendd recompute --from DATE classifies earlier days)"
        )?;
    }
    ctx.emit(
        out,
        json!({"imported": "punches", "file": name, "new": new, "duplicates": dup, "quarantined": quarantined,
               "before_classify_from": before, "classify_from": start,
               "recompute": report_json(&rep)}),
        &format!(
            "{name}: {new} new, {dup} duplicates{}{}\n{}",
            if quarantined > 0 { format!(", {quarantined} quarantined") } else { String::new() },
            match start {
                Some(s) if before > 0 => format!(", {before} before the classification start {s}"),
                _ => String::new(),
            },
            report_text(&rep)
        ),
    )?;
    Ok(())
}

/// The instants a local date spans in the policy's zone.
fn day_span(policy: &Policy, d: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = d + Days::new(1);
    (
        resolve_local(policy.tz, d.and_hms_opt(0, 0, 0).unwrap_or_default()),
        resolve_local(policy.tz, next.and_hms_opt(0, 0, 0).unwrap_or_default()),
    )
}

async fn punches(ctx: &Ctx<'_>, a: PunchesArgs, out: &mut dyn Write) -> CmdResult {
    let tz = ctx.policy().tz;
    let date = a
        .date
        .ok_or_else(|| CmdError::Input("--date YYYY-MM-DD is required".into()))?;
    let (from, to) = day_span(ctx.policy(), date);
    let rows = ctx.store.punches(from, to, a.employee.as_deref()).await?;
    if !ctx.json {
        writeln!(
            out,
            "{:<10} {:<25} {:<12} {:<10} source",
            "employee", "time", "device", "identity"
        )?;
    }
    for p in &rows {
        let local = to_local(tz, p.time);
        if ctx.json {
            writeln!(
                out,
                "{}",
                json!({"id": p.id, "employee_id": p.employee_id, "time": local.to_rfc3339(),
                       "device_id": p.device_id, "source": p.source, "event_id": p.event_id,
                       "identity": p.identity, "received_at": p.received_at.to_rfc3339()})
            )?;
        } else {
            writeln!(
                out,
                "{:<10} {:<25} {:<12} {:<10} {}",
                p.employee_id,
                local.to_rfc3339(),
                p.device_id.as_deref().unwrap_or("-"),
                p.identity,
                p.source
            )?;
        }
    }
    Ok(())
}

/// The classification start when `date` lies before it (policy.md, "Real
/// sites": such a date has no rows, only a note).
async fn before_start(ctx: &Ctx<'_>, date: NaiveDate) -> Result<Option<NaiveDate>, CmdError> {
    Ok(ctx
        .store
        .classify_from(ctx.cfg.ingest.classify_from)
        .await?
        .filter(|s| date < *s))
}

fn parse_verdict(json: &str, key: &str) -> Result<DayVerdict, CmdError> {
    serde_json::from_str(json).map_err(|e| {
        CmdError::Store(StoreError::Corrupt {
            key: key.to_string(),
            why: format!("stored verdict does not parse: {e}"),
        })
    })
}

async fn day(
    ctx: &Ctx<'_>,
    date: Option<NaiveDate>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CmdResult {
    let date = date.unwrap_or_else(|| ctx.today());
    if let Some(start) = before_start(ctx, date).await? {
        if !ctx.json {
            render::table_header(out)?;
        }
        writeln!(err, "note: {}", before_start_note(date, start))?;
        return Ok(());
    }
    let rows = ctx.store.verdicts(date, date, None).await?;
    let history = ctx.store.policy_history().await?;
    let pending: HashSet<String> = ctx
        .store
        .adjustments(true)
        .await?
        .into_iter()
        .filter(|a| a.date == date)
        .map(|a| a.employee_id)
        .collect();
    // Several policies: a first `policy` column, as `evaluate` prints.
    let labelled = ctx.policies().len() > 1;
    if !ctx.json {
        if labelled {
            render::table_header_labelled(out)?;
        } else {
            render::table_header(out)?;
        }
    }
    let mut line = Vec::with_capacity(1024);
    for r in &rows {
        let v = parse_verdict(
            &r.verdict,
            &format!("day_verdicts/{}/{}", r.employee_id, r.date),
        )?;
        line.clear();
        if ctx.json {
            render::json_line(&v, history.at(&r.employee_id, r.date), &mut line);
        } else {
            if labelled {
                render::table_row_labelled(&v, history.at(&r.employee_id, r.date), &mut line);
            } else {
                render::table_row(&v, &mut line);
            }
            if pending.contains(&r.employee_id) || r.provisional {
                line.pop();
                if r.provisional {
                    line.extend_from_slice(b" provisional");
                }
                if pending.contains(&r.employee_id) {
                    line.extend_from_slice(b" adjustment_pending");
                }
                line.push(b'\n');
            }
        }
        out.write_all(&line)?;
    }
    if rows.is_empty() {
        writeln!(
            err,
            "note: no verdicts stored for {date} (attendd recompute --from {date} --to {date})"
        )?;
    }
    Ok(())
}

async fn summary(ctx: &Ctx<'_>, date: Option<NaiveDate>, out: &mut dyn Write) -> CmdResult {
    let date = date.unwrap_or_else(|| ctx.today());
    if let Some(start) = before_start(ctx, date).await? {
        let note = before_start_note(date, start);
        if ctx.json {
            writeln!(
                out,
                "{}",
                json!({"date": date, "classify_from": start, "note": note, "rows": []})
            )?;
        } else {
            writeln!(out, "deduction summary {date}\nnote: {note}")?;
        }
        return Ok(());
    }
    let doc = crate::store::summary::daily_summary(ctx.store, ctx.policy(), date).await?;
    let provisional = doc["provisional"].as_bool().unwrap_or(false);
    let empty = Vec::new();
    let out_rows = doc["rows"].as_array().unwrap_or(&empty);
    if ctx.json {
        writeln!(out, "{doc}")?;
        return Ok(());
    }
    writeln!(
        out,
        "deduction summary {date}{}",
        if provisional { " (provisional)" } else { "" }
    )?;
    writeln!(
        out,
        "{:<10} {:<16} {:<12} {:<14} {:>6}  deductions",
        "employee", "name", "team", "status", "points"
    )?;
    for r in out_rows {
        let deds: Vec<String> = r["deductions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| format!("{}:-{}", d["rule"].as_str().unwrap_or(""), d["points"]))
                    .collect()
            })
            .unwrap_or_default();
        writeln!(
            out,
            "{:<10} {:<16} {:<12} {:<14} {:>6}  {}",
            r["employee_id"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or("-"),
            r["team"].as_str().unwrap_or("-"),
            r["status"].as_str().unwrap_or(""),
            r["points"],
            deds.join(" ")
        )?;
    }
    let totals = &doc["totals"];
    let counts: Vec<String> = totals["by_status"]
        .as_object()
        .map(|m| m.iter().map(|(s, n)| format!("{s} {n}")).collect())
        .unwrap_or_default();
    writeln!(
        out,
        "total: {} employee(s), {} point(s), {}",
        totals["employees"],
        totals["points"],
        counts.join(", ")
    )?;
    Ok(())
}

async fn employee(
    ctx: &Ctx<'_>,
    id: &str,
    month: Option<NaiveDate>,
    out: &mut dyn Write,
) -> CmdResult {
    let policy = ctx.policy();
    let known = known_employees(ctx.store).await?;
    if !known.contains(id) {
        return Err(CmdError::Input(format!(
            "employee {id:?} is not in the store"
        )));
    }
    let (from, to) = month_bounds(month.unwrap_or_else(|| ctx.today()));
    let rows = ctx.store.verdicts(from, to, Some(id)).await?;
    let mut days = Vec::with_capacity(rows.len());
    for r in &rows {
        days.push(parse_verdict(
            &r.verdict,
            &format!("day_verdicts/{}/{}", r.employee_id, r.date),
        )?);
    }
    let ledger = ctx.store.ledger(from, to, Some(id)).await?;
    // Scores count the ledger's active entries (closed days only; an entry
    // voided on appeal no longer counts), as the API and exports do.
    let history = ctx.store.policy_history().await?;
    let data = crate::hr::month_data(ctx.store, ctx.policies(), from, |e| e.employee_id == id)
        .await
        .map_err(hr_error)?;
    let scores = data.scores;
    let label = data
        .policy_labels
        .first()
        .map_or(crate::policy::DEFAULT_GROUP, String::as_str);
    let mut line = Vec::with_capacity(1024);
    let labelled = ctx.policies().len() > 1;
    if !ctx.json {
        if labelled {
            render::table_header_labelled(out)?;
        } else {
            render::table_header(out)?;
        }
    }
    for v in &days {
        line.clear();
        if ctx.json {
            render::json_line(v, history.at(id, v.date), &mut line);
        } else if labelled {
            render::table_row_labelled(v, history.at(id, v.date), &mut line);
        } else {
            render::table_row(v, &mut line);
        }
        out.write_all(&line)?;
    }
    if !ctx.json {
        writeln!(out, "\nledger")?;
    }
    for e in &ledger {
        if ctx.json {
            writeln!(out, "{}", json!({"ledger": e}))?;
        } else {
            writeln!(
                out,
                "  #{:<6} {} {:<8} {:<12} {:<24} {:>6}{}",
                e.id,
                e.date,
                e.source,
                e.category,
                e.rule,
                format!(
                    "{}{}",
                    if e.bonus { "+" } else { "-" },
                    Points::from_hundredths(e.points)
                ),
                match &e.voided_at {
                    Some(t) => format!(
                        "  voided {} ({})",
                        t.to_rfc3339(),
                        e.void_cause.as_deref().unwrap_or("")
                    ),
                    None => String::new(),
                }
            )?;
        }
    }
    if !ctx.json {
        writeln!(out)?;
        render::score_header(policy, out)?;
    }
    for s in scores
        .iter()
        .filter(|s| s.month == from.format("%Y-%m").to_string())
    {
        line.clear();
        if ctx.json {
            render::score_json_line(s, label, &mut line);
        } else {
            render::score_row(policy, s, &mut line);
        }
        out.write_all(&line)?;
    }
    Ok(())
}

async fn month(ctx: &Ctx<'_>, month: Option<NaiveDate>, out: &mut dyn Write) -> CmdResult {
    let policy = ctx.policy();
    let (from, _) = month_bounds(month.unwrap_or_else(|| ctx.today()));
    // Scores count the ledger's active entries (closed days only; an entry
    // voided on appeal no longer counts), as the API and exports do.
    let data = crate::hr::month_scores_data(ctx.store, ctx.policies(), from, |_| true)
        .await
        .map_err(hr_error)?;
    // Several policies: the categories of all of them (policy.md).
    let mut shown = policy.clone();
    shown.categories = ctx.policies().category_union();
    let policy = &shown;
    if !ctx.json {
        render::score_header(policy, out)?;
    }
    let mut line = Vec::with_capacity(512);
    for (s, label) in data.scores.iter().zip(&data.policy_labels) {
        line.clear();
        if ctx.json {
            render::score_json_line(s, label, &mut line);
        } else {
            render::score_row(policy, s, &mut line);
        }
        out.write_all(&line)?;
    }
    Ok(())
}

fn hr_error(e: crate::hr::HrError) -> CmdError {
    match e {
        crate::hr::HrError::Store(s) => CmdError::Store(s),
        other => CmdError::Input(other.to_string()),
    }
}

async fn replay(
    ctx: &Ctx<'_>,
    all: bool,
    ids: Vec<i64>,
    source: Option<String>,
    out: &mut dyn Write,
) -> CmdResult {
    use crate::pipeline::replay::{Decodings, Selection};
    let decodings = Decodings::from_config(ctx.cfg).map_err(CmdError::Input)?;
    let selection = if all {
        Selection::All
    } else {
        Selection::Ids(ids)
    };
    let r = crate::pipeline::replay::replay(
        ctx.store,
        ctx.policies(),
        &decodings,
        &selection,
        source.as_deref(),
        &ctx.actor,
        ctx.now,
    )
    .await?;
    if ctx.json {
        writeln!(out, "{}", json!({"replay": r}))?;
    } else {
        writeln!(
            out,
            "replayed {} row(s): {} resolved, {} punch(es) stored, {} already stored, {} still unresolved, {} skipped; {} employee-day(s) re-classified",
            r.examined,
            r.resolved,
            r.stored,
            r.duplicates,
            r.unresolved.len(),
            r.skipped.len(),
            r.evaluated
        )?;
        for (id, why) in &r.unresolved {
            writeln!(out, "  {id}: unresolved: {why}")?;
        }
        for (id, why) in &r.skipped {
            writeln!(out, "  {id}: skipped: {why}")?;
        }
    }
    Ok(())
}

async fn supersede(
    ctx: &Ctx<'_>,
    device: &str,
    from: &str,
    to: &str,
    reason: &str,
    out: &mut dyn Write,
) -> CmdResult {
    let mut times = LocalTimes::new(ctx.policy().tz);
    let mut at = |flag: &str, s: &str| -> Result<DateTime<Utc>, CmdError> {
        let t = times
            .parse(s)
            .map_err(|e| CmdError::Input(format!("--{flag}: {e}")))?;
        let y = chrono::Datelike::year(&t);
        if !(2000..=2100).contains(&y) {
            return Err(CmdError::Input(format!(
                "--{flag}: {s:?} is outside 2000-01-01..2100-12-31"
            )));
        }
        Ok(t)
    };
    let (from_t, to_t) = (at("from", from)?, at("to", to)?);
    if from_t >= to_t {
        return Err(CmdError::Input("--from must be before --to".into()));
    }
    if reason.trim().is_empty() {
        return Err(CmdError::Input("--reason: must not be empty".into()));
    }
    let r = ctx
        .store
        .supersede_punches(device, from_t, to_t, reason.trim(), &ctx.actor, ctx.now)
        .await?;
    let mut evaluated = 0;
    if !r.superseded.is_empty() {
        let tz = ctx.policy().tz;
        let dates: Vec<NaiveDate> = r
            .superseded
            .iter()
            .map(|(_, _, t)| to_local(tz, *t).date_naive())
            .collect();
        let lo = dates.iter().min().copied().unwrap_or_default() - chrono::Days::new(1);
        let hi = dates.iter().max().copied().unwrap_or_default();
        let mut ids: Vec<String> = r.superseded.iter().map(|(_, e, _)| e.clone()).collect();
        ids.sort();
        ids.dedup();
        evaluated = ctx
            .store
            .recompute(
                ctx.policies(),
                Some(&ids),
                lo,
                hi,
                &format!("punches supersede: {}", reason.trim()),
                &ctx.actor,
                ctx.now,
            )
            .await?
            .evaluated;
    }
    if ctx.json {
        writeln!(
            out,
            "{}",
            json!({"superseded": r.superseded.iter().map(|(id, e, t)| json!({"id": id, "employee_id": e, "time": t.to_rfc3339()})).collect::<Vec<_>>(),
                   "already_superseded": r.already, "evaluated": evaluated})
        )?;
    } else {
        writeln!(
            out,
            "superseded {} punch(es) of {device} ({} already were); {evaluated} employee-day(s) re-classified",
            r.superseded.len(),
            r.already
        )?;
    }
    Ok(())
}

async fn quarantine(ctx: &Ctx<'_>, limit: i64, out: &mut dyn Write) -> CmdResult {
    let rows = ctx.store.quarantined(limit).await?;
    if !ctx.json {
        writeln!(
            out,
            "{:<6} {:<25} {:<24} {:>6}  reason / payload",
            "id", "received", "source", "bytes"
        )?;
    }
    for q in &rows {
        let text = String::from_utf8_lossy(&q.payload);
        if ctx.json {
            writeln!(
                out,
                "{}",
                json!({"id": q.id, "source": q.source, "reason": q.reason, "received_at": q.received_at.to_rfc3339(),
                       "payload_len": q.payload_len, "payload": text, "kind": q.kind,
                       "resolved_at": q.resolved.as_ref().map(|r| r.0.to_rfc3339())})
            )?;
        } else {
            let preview: String = text.chars().take(60).collect();
            writeln!(
                out,
                "{:<6} {:<25} {:<24} {:>6}  {} / {:?}",
                q.id,
                q.received_at.to_rfc3339(),
                q.source,
                q.payload_len,
                q.reason,
                preview
            )?;
        }
    }
    Ok(())
}

async fn adjustment(ctx: &Ctx<'_>, action: AdjustmentAction, out: &mut dyn Write) -> CmdResult {
    let not_pending = |e: StoreError| match e {
        StoreError::Corrupt { key, why } if key.starts_with("adjustments/") => {
            CmdError::Input(format!("{key}: {why}"))
        }
        e => CmdError::Store(e),
    };
    match action {
        AdjustmentAction::List { all } => {
            let rows = ctx.store.adjustments(!all).await?;
            if !ctx.json {
                writeln!(
                    out,
                    "{:<6} {:<10} {:<10} {:<10} {:<26} cause (actor)",
                    "id", "employee", "date", "status", "verdict change"
                )?;
            }
            let status_of = |v: Option<&str>| {
                v.and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
                    .and_then(|v| v["status"].as_str().map(String::from))
                    .unwrap_or_else(|| "-".into())
            };
            for a in rows {
                let old = status_of(a.old_verdict.as_deref());
                let new = status_of(Some(&a.new_verdict));
                if ctx.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"id": a.id, "employee_id": a.employee_id, "date": a.date,
                               "status": a.status, "old_status": old, "new_status": new,
                               "cause": a.cause, "actor": a.actor,
                               "created_at": a.created_at.to_rfc3339()})
                    )?;
                } else {
                    writeln!(
                        out,
                        "{:<6} {:<10} {:<10} {:<10} {:<26} {} ({})",
                        a.id,
                        a.employee_id,
                        a.date,
                        a.status,
                        format!("{old} -> {new}"),
                        a.cause,
                        a.actor
                    )?;
                }
            }
        }
        AdjustmentAction::Apply { id } => {
            let rep = ctx
                .store
                .apply_adjustment(ctx.policies(), id, &ctx.actor, ctx.now)
                .await
                .map_err(not_pending)?;
            ctx.emit(
                out,
                json!({"id": id, "applied": true, "ledger_added": rep.ledger_added,
                       "ledger_voided": rep.ledger_voided}),
                &format!(
                    "adjustment {id} applied: {} ledger entries added, {} voided",
                    rep.ledger_added, rep.ledger_voided
                ),
            )?;
        }
        AdjustmentAction::Dismiss { id, reason } => {
            ctx.store
                .dismiss_adjustment(id, &ctx.actor, &reason, ctx.now)
                .await
                .map_err(not_pending)?;
            ctx.emit(
                out,
                json!({"id": id, "dismissed": true}),
                &format!("adjustment {id} dismissed"),
            )?;
        }
    }
    Ok(())
}

async fn outbox(ctx: &Ctx<'_>, kind: Option<&str>, limit: i64, out: &mut dyn Write) -> CmdResult {
    let rows = ctx.store.outbox(kind, limit).await?;
    if !ctx.json {
        writeln!(
            out,
            "{:<36} {:<11} {:<25} {:>9}  last error",
            "id", "kind", "decided", "sent"
        )?;
    }
    for r in &rows {
        if ctx.json {
            writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default())?;
        } else {
            writeln!(
                out,
                "{:<36} {:<11} {:<25} {:>9}  {}",
                r.key,
                r.kind,
                r.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                format!("{}/{}", r.sent, r.sinks),
                r.last_error.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

async fn recompute_cmd(ctx: &Ctx<'_>, a: RecomputeArgs, out: &mut dyn Write) -> CmdResult {
    if a.from > a.to {
        return Err(CmdError::Input(format!(
            "--from {} is after --to {}",
            a.from, a.to
        )));
    }
    let emps = match &a.employee {
        Some(e) => {
            if !known_employees(ctx.store).await?.contains(e) {
                return Err(CmdError::Input(format!(
                    "employee {e:?} is not in the store"
                )));
            }
            Some(vec![e.clone()])
        }
        None => None,
    };
    let started = Instant::now();
    let progress = crate::progress::Progress::spinner(&format!("recomputing {}..{}", a.from, a.to));
    let rep = ctx
        .store
        .recompute(
            ctx.policies(),
            emps.as_deref(),
            a.from,
            a.to,
            "recompute",
            &ctx.actor,
            ctx.now,
        )
        .await?;
    progress.finish(&format!(
        "recomputed {}..{} in {:.1?}",
        a.from,
        a.to,
        started.elapsed()
    ));
    ctx.emit(out, report_json(&rep), &report_text(&rep))?;
    Ok(())
}

async fn publish(ctx: &Ctx<'_>, month: NaiveDate, out: &mut dyn Write) -> CmdResult {
    let label = month.format("%Y-%m").to_string();
    let done = crate::hr::publish(ctx.store, ctx.policies(), &label, &ctx.actor, ctx.now)
        .await
        .map_err(hr_error)?;
    ctx.emit(
        out,
        json!({"month": label, "published": done}),
        &if done {
            format!("{label} published")
        } else {
            format!("{label} was already published")
        },
    )?;
    Ok(())
}
