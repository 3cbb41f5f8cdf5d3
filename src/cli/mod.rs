//! The command line: `attendd <command>`, parsed with clap and dispatched.
//!
//! Exit codes (`interfaces.md`): 0 success, 1 bad input or configuration
//! (the message says what and where), 2 store or network failure.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand};

use crate::evaluate::{self, EvaluateError, Outcome};

pub mod hr;
pub mod store;

/// attendd: time and attendance for face-recognition terminals.
#[derive(Debug, Parser)]
#[command(name = "attendd", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: sources → store → engine, and the HTTP server, until
    /// SIGTERM or SIGINT; then commit and acknowledge what was received.
    Run(RunArgs),
    /// Classify employee-days from CSV files, offline (no store, no network).
    ///
    /// Prints one record per employee and date in [--from, --to], sorted by
    /// employee id then date: a table, or JSON lines with --json. Malformed
    /// rows are reported on stderr with file and line; the good rows are
    /// still evaluated and the exit code is 1.
    Evaluate(EvaluateArgs),
    /// Validate a daemon configuration (and the policy it names), or a
    /// single policy file with --policy. Lists every problem with file, key
    /// and reason; exits 1 when there is any.
    CheckConfig(CheckConfigArgs),
    /// Publish a realistic day of punches to an MQTT broker or a serial
    /// line (load generator).
    ///
    /// Each employee checks in around 08:30 and out around 17:30 (some
    /// late, early, missing or absent) on one of the terminals, in time
    /// order, with QoS 1 (or written to --serial), in any decoder format.
    /// Deterministic for a seed. Progress on a terminal; a one-line summary
    /// (JSON with --json) at the end. --write-employees writes the matching
    /// employees.csv (card aliases) and exits.
    Simulate(SimulateArgs),
    /// The store commands: import, punches, day, summary, employee, month,
    /// quarantine, recompute, publish.
    #[command(flatten)]
    Store(store::StoreCommand),
    /// HR's commands: deduct, bonus, correct, appeal, export.
    #[command(flatten)]
    Hr(hr::HrCommand),
    /// Ask a pulled terminal directly (its user list).
    #[command(subcommand)]
    Terminal(crate::source::pull::TerminalCommand),
    /// Print a shell completion script for bash, zsh or fish to stdout.
    ///
    /// bash: `attendd completions bash > /etc/bash_completion.d/attendd`;
    /// the Debian package installs all three.
    Completions(CompletionsArgs),
    /// Print the manual page (roff, section 8) to stdout; the Debian
    /// package installs it as attendd(8).
    #[command(hide = true)]
    Manpage,
}

/// `attendd completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells `attendd completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    /// bash (bash-completion).
    Bash,
    /// zsh (`#compdef attendd`).
    Zsh,
    /// fish.
    Fish,
}

/// Writes the completion script for `shell` (generated from the same
/// definition clap parses with, so it cannot drift from the commands).
pub fn write_completions(shell: CompletionShell, out: &mut dyn Write) {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let shell = match shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut Cli::command(), "attendd", out);
}

/// Writes the manual page, attendd(8): the top-level page with every
/// command and its options as sections.
pub fn write_manpage(out: &mut dyn Write) -> io::Result<()> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone()).section("8");
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        writeln!(out, ".SH \"ATTENDD {}\"", name.to_uppercase())?;
        let sub = sub.clone().bin_name(format!("attendd {name}"));
        let page = clap_mangen::Man::new(sub);
        page.render_synopsis_section(out)?;
        page.render_description_section(out)?;
        page.render_options_section(out)?;
    }
    out.write_all(
        b".SH FILES\n\
.TP\n/etc/attendd/attendd.toml\nThe configuration (\\fBattendd check\\-config\\fR validates it; \\fBATTENDD_CONFIG\\fR names another).\n\
.TP\n/etc/attendd/policies/\nAttendance policies the configuration names.\n\
.TP\n/etc/attendd/attendd.env\nSecrets read by the systemd unit (store URL, broker passwords, API tokens).\n\
.TP\n/var/lib/attendd/\nThe SQLite store.\n\
.SH ENVIRONMENT\n\
.TP\nRUST_LOG\nLog level (default info).\n\
.TP\nATTENDD_LOG_FORMAT\ntext or json, as \\fB\\-\\-log\\-format\\fR.\n\
.TP\nJOURNAL_STREAM\nSet by systemd: log lines start with their syslog priority.\n",
    )?;
    man.render_version_section(out)?;
    Ok(())
}

/// `attendd simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Broker URL, mqtt://HOST[:PORT].
    #[arg(
        long,
        default_value = "mqtt://127.0.0.1:1883",
        conflicts_with = "serial"
    )]
    pub broker: String,
    /// User name to log in to the broker with (a terminal's, for the
    /// embedded broker).
    #[arg(long, conflicts_with = "serial", requires = "password")]
    pub username: Option<String>,
    /// Its password (or set ATTENDD_SIMULATE_PASSWORD).
    #[arg(
        long,
        env = "ATTENDD_SIMULATE_PASSWORD",
        hide_env_values = true,
        requires = "username"
    )]
    pub password: Option<String>,
    /// Write the payloads to this serial device or pseudo-terminal instead
    /// of a broker (lines for text formats, raw frames for stx-etx).
    #[arg(long, value_name = "PATH")]
    pub serial: Option<PathBuf>,
    /// Baud rate of --serial.
    #[arg(long, default_value_t = 9600, requires = "serial")]
    pub baud: u32,
    /// Number of employees (E00000, E00001, …).
    #[arg(long, default_value_t = 100)]
    pub employees: usize,
    /// Number of terminals (gate-1, gate-2, …).
    #[arg(long, default_value_t = 4)]
    pub terminals: usize,
    /// The day, YYYY-MM-DD (local times in the terminals' zone).
    #[arg(
        long,
        value_name = "YYYY-MM-DD",
        value_parser = crate::dates::parse_date,
        required_unless_present = "write_employees"
    )]
    pub date: Option<NaiveDate>,
    /// Messages per second; 0 sends as fast as the target accepts.
    #[arg(long, default_value_t = 0)]
    pub rate: u32,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Share of punches published a second time (a terminal re-sending), 0 … 1.
    #[arg(long, default_value_t = 0.0)]
    pub duplicates: f64,
    /// Payload format: the name of the decoder that reads it.
    #[arg(long, value_enum, default_value = "json")]
    pub format: crate::simulate::Format,
    /// IANA zone of the terminals' local times; formats with an offset or
    /// UTC encode the same instant.
    #[arg(long, default_value = "Asia/Shanghai")]
    pub timezone: chrono_tz::Tz,
    /// Topic prefix: messages go to PREFIX/{terminal}/punch.
    #[arg(long, default_value = "attendance")]
    pub topic_prefix: String,
    /// Write an employees.csv for --employees (card number and lower-case
    /// id as aliases, for the card and face formats) to FILE and exit;
    /// `attendd import employees FILE` loads it.
    #[arg(long, value_name = "FILE")]
    pub write_employees: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `attendd evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// Policy file (TOML), e.g. config/policies/seed-default.toml.
    #[arg(long, value_name = "POLICY.toml")]
    pub policy: PathBuf,
    /// employees.csv: employee_id,name,team,supervisor[,shift][,alias][,policy].
    #[arg(long, value_name = "FILE")]
    pub employees: PathBuf,
    /// punches.csv: employee_id,time[,device_id].
    #[arg(long, value_name = "FILE")]
    pub punches: PathBuf,
    /// roster.csv: employee_id,date,shift (a shift id or `rest`).
    #[arg(long, value_name = "FILE")]
    pub roster: Option<PathBuf>,
    /// leaves.csv: employee_id,start,end,kind,status[,requested_at][,document].
    #[arg(long, value_name = "FILE")]
    pub leaves: Option<PathBuf>,
    /// holidays.csv: date,kind (holiday or workday).
    #[arg(long, value_name = "FILE")]
    pub holidays: Option<PathBuf>,
    /// First date, YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::dates::parse_date)]
    pub from: NaiveDate,
    /// Last date (inclusive), YYYY-MM-DD.
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = crate::dates::parse_date)]
    pub to: NaiveDate,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// After the days, print each employee's monthly score per month.
    #[arg(long)]
    pub scores: bool,
    /// A further policy, ID=POLICY.toml, for the employees whose
    /// employees.csv `policy` column says ID (repeatable).
    #[arg(long = "group", value_name = "ID=FILE", value_parser = parse_group)]
    pub groups: Vec<(String, PathBuf)>,
}

/// `--group ID=FILE`.
fn parse_group(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((id, file)) if !id.trim().is_empty() && !file.is_empty() => {
            Ok((id.trim().to_string(), PathBuf::from(file)))
        }
        _ => Err(format!("{s:?} is not ID=FILE")),
    }
}

/// `attendd run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Daemon configuration; default $ATTENDD_CONFIG, else /etc/attendd/attendd.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines as text, or as one JSON object per line for log shippers.
    #[arg(long, value_enum, env = "ATTENDD_LOG_FORMAT", default_value = "text")]
    pub log_format: crate::telemetry::LogFormat,
}

/// `attendd check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// Daemon configuration; default $ATTENDD_CONFIG, else /etc/attendd/attendd.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Check this policy file alone instead of a daemon configuration.
    #[arg(long, value_name = "POLICY.toml", conflicts_with = "config")]
    pub policy: Option<PathBuf>,
}

/// Runs the parsed command line and returns the process exit code.
pub fn run(cli: Cli) -> ExitCode {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut err = io::stderr();
    let code = match cli.command {
        Command::Run(a) => run_daemon(a, &mut err),
        Command::Evaluate(a) => run_evaluate(a, &mut out, &mut err),
        Command::CheckConfig(a) => run_check_config(a, &mut out, &mut err),
        Command::Simulate(a) => run_simulate(a, &mut out, &mut err),
        Command::Store(c) => store::run(c, &mut out, &mut err),
        Command::Hr(c) => hr::run(c, &mut out, &mut err),
        Command::Terminal(c) => crate::source::pull::run_terminal(c, &mut out, &mut err),
        Command::Completions(a) => {
            write_completions(a.shell, &mut out);
            ExitCode::SUCCESS
        }
        Command::Manpage => match write_manpage(&mut out) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let _ = writeln!(err, "error: writing output: {e}");
                ExitCode::from(2)
            }
        },
    };
    if let Err(e) = out.flush()
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        let _ = writeln!(err, "error: writing output: {e}");
        return ExitCode::from(2);
    }
    code
}

fn run_evaluate(a: EvaluateArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    let req = evaluate::Request {
        policy: a.policy,
        groups: a.groups,
        employees: a.employees,
        punches: a.punches,
        roster: a.roster,
        leaves: a.leaves,
        holidays: a.holidays,
        from: a.from,
        to: a.to,
        json: a.json,
        scores: a.scores,
        now: chrono::Utc::now(),
    };
    match evaluate::run(&req, out, err) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::BadRows(n)) => {
            let _ = writeln!(
                err,
                "error: {n} malformed row(s) skipped; the other rows were evaluated"
            );
            ExitCode::from(1)
        }
        // A closed pipe (`| head`) is the reader's choice, not a failure.
        Err(EvaluateError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(EvaluateError::Output(e)) => {
            let _ = writeln!(err, "error: writing output: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            let _ = writeln!(err, "{}", prefix_lines("error: ", &e.to_string()));
            ExitCode::from(1)
        }
    }
}

fn run_daemon(a: RunArgs, err: &mut dyn Write) -> ExitCode {
    crate::telemetry::init(a.log_format);
    let path = crate::config::config_path(a.config.as_deref());
    let config = match crate::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "{}", prefix_lines("error: ", &e.to_string()));
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut controls = crate::signals::listen()
            .map_err(|e| (2u8, format!("cannot listen for signals: {e}")))?;
        let token = shutdown.clone();
        let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(c) = controls.recv().await {
                match c {
                    crate::signals::Control::Shutdown => token.cancel(),
                    crate::signals::Control::Reload => {
                        tracing::info!("SIGHUP: reloading configuration and policy");
                        let _ = reload_tx.send(());
                    }
                }
            }
        });
        crate::app::run_daemon(config, shutdown, reload_rx).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            tracing::error!("{msg}");
            let _ = writeln!(err, "error: {msg}");
            ExitCode::from(code)
        }
    }
}

fn run_simulate(a: SimulateArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    if let Some(file) = &a.write_employees {
        let written = std::fs::File::create(file).and_then(|f| {
            let mut w = io::BufWriter::new(f);
            crate::simulate::write_employees(&mut w, a.employees)?;
            w.flush()
        });
        return match written {
            Ok(()) => {
                let _ = writeln!(out, "wrote {} employees to {}", a.employees, file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                let _ = writeln!(err, "error: --write-employees {}: {e}", file.display());
                ExitCode::from(1)
            }
        };
    }
    let Some(date) = a.date else {
        let _ = writeln!(err, "error: --date is required");
        return ExitCode::from(1);
    };
    let target = match a.serial {
        Some(path) => crate::simulate::Target::Serial { path, baud: a.baud },
        None => match crate::source::mqtt::MqttSettings::from_url(
            "simulate",
            &a.broker,
            vec![],
            "simulate",
        ) {
            Ok(s) => crate::simulate::Target::Mqtt {
                host: s.host,
                port: s.port,
                credentials: a.username.zip(a.password).or(s.credentials),
            },
            Err(e) => {
                let _ = writeln!(err, "error: --broker: {e}");
                return ExitCode::from(1);
            }
        },
    };
    if !(0.0..=1.0).contains(&a.duplicates) {
        let _ = writeln!(err, "error: --duplicates {} is outside 0 … 1", a.duplicates);
        return ExitCode::from(1);
    }
    let plan = crate::simulate::Plan {
        target,
        topic_prefix: a.topic_prefix,
        date,
        employees: a.employees,
        terminals: a.terminals,
        rate: a.rate,
        seed: a.seed,
        duplicates: a.duplicates,
        format: a.format,
        tz: a.timezone,
        not_after: Some(chrono::Utc::now()),
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(crate::simulate::publish(&plan)) {
        Ok(mut r) => {
            r.future = crate::simulate::future_count(&plan);
            if a.json {
                let _ = writeln!(out, "{}", serde_json::to_string(&r).unwrap_or_default());
            } else {
                let _ = writeln!(
                    out,
                    "published {} punches ({} distinct, {} duplicates) in {:.2} s{}",
                    r.distinct + r.duplicates,
                    r.distinct,
                    r.duplicates,
                    r.seconds,
                    if r.future > 0 {
                        format!(
                            "; {} later in the day not sent (not stamped in the future)",
                            r.future
                        )
                    } else {
                        String::new()
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            ExitCode::from(2)
        }
    }
}

fn prefix_lines(prefix: &str, text: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_check_config(a: CheckConfigArgs, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    if let Some(p) = a.policy {
        return match crate::policy_file::load(&p) {
            Ok(pol) => {
                let _ = writeln!(out, "{}: ok", p.display());
                let _ = describe_policy(&pol, out);
                ExitCode::SUCCESS
            }
            Err(e) => {
                let _ = writeln!(err, "{}", prefix_lines("error: ", &e.to_string()));
                ExitCode::from(1)
            }
        };
    }
    let path = crate::config::config_path(a.config.as_deref());
    match crate::config::load(&path) {
        Ok(c) => {
            let _ = writeln!(out, "{}: ok", path.display());
            let _ = writeln!(out, "policy: {}", c.policy_path.display());
            let _ = describe_policy(&c.policy, out);
            for (i, (id, file)) in c.group_paths.iter().enumerate() {
                let _ = writeln!(out, "policy group {id}: {}", file.display());
                let _ = describe_policy(c.policies.get(i + 1), out);
            }
            let _ = writeln!(out, "store: {}", redact(&c.store_url));
            for m in &c.sources.mqtt {
                let _ = writeln!(
                    out,
                    "source mqtt: {} topics {} decoder {} client_id {}",
                    m.broker,
                    m.topics.join(","),
                    m.decoder,
                    m.client_id
                );
            }
            for s in &c.sources.serial {
                let _ = writeln!(
                    out,
                    "source serial: {} {} baud decoder {}",
                    s.path.display(),
                    s.baud,
                    s.decoder
                );
            }
            for z in &c.sources.zk_push {
                let sns: Vec<&str> = z.terminals.iter().map(|t| t.sn.as_str()).collect();
                let _ = writeln!(
                    out,
                    "source zk_push: {} terminals {}",
                    z.listener.listen,
                    sns.join(",")
                );
            }
            for h in &c.sources.hik_http {
                let _ = writeln!(
                    out,
                    "source hik_http: {} decoder {}",
                    h.listener.listen, h.decoder
                );
            }
            for line in crate::source::pull::describe(&c.sources) {
                let _ = writeln!(out, "{line}");
            }
            if let Some(h) = c.http_listen {
                let _ = writeln!(out, "http: {h}");
                let roles: Vec<String> = c
                    .http_tokens
                    .iter()
                    .map(|t| format!("{} ({})", t.name, t.role))
                    .collect();
                let _ = writeln!(
                    out,
                    "api tokens: {}",
                    if roles.is_empty() {
                        "none (every API request is refused)".to_string()
                    } else {
                        roles.join(", ")
                    }
                );
            }
            let sc = &c.schedule;
            let _ = writeln!(
                out,
                "schedule: absence alert {} min after shift start; day close {} min after the last shift end + grace; revisions for {} days; terminal silent {} min in {}; quarantine spike > {} / 10 min",
                sc.alert_after_minutes,
                sc.close_delay_minutes,
                sc.revision_days,
                sc.terminal_silent_minutes,
                sc.working_hours,
                sc.quarantine_spike
            );
            for (i, k) in c.sinks.iter().enumerate() {
                let target = match k.kind.as_str() {
                    "mqtt" => k
                        .broker
                        .clone()
                        .unwrap_or_else(|| "first [[source.mqtt]] broker".into()),
                    _ => k.url().map(|u| redact_query(&u)).unwrap_or_default(),
                };
                let _ = writeln!(
                    out,
                    "sink {}: {} {} events {}{}",
                    k.name(i),
                    k.kind,
                    target,
                    k.events.as_ref().map_or("all".into(), |e| e.join(",")),
                    k.teams
                        .as_ref()
                        .map_or(String::new(), |t| format!(" teams {}", t.join(",")))
                );
            }
            if c.sinks.is_empty() {
                let _ = writeln!(
                    out,
                    "sinks: none (alerts and summaries are kept in the store's outbox only)"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(err, "{}", prefix_lines("error: ", &e.to_string()));
            ExitCode::from(1)
        }
    }
}

/// Hides a robot URL's access token (its query) before printing it.
fn redact_query(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?***"),
        None => url.to_string(),
    }
}

/// Hides a password in a URL before printing it.
fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((cred, host)) = rest.split_once('@')
        && let Some((user, _)) = cred.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

fn describe_policy(p: &crate::domain::policy::Policy, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "policy {} version {} ({}), zone {}",
        p.id, p.version, p.name, p.tz
    )?;
    for s in &p.shifts {
        let mut own = String::new();
        if s.before_secs != p.window_before_secs || s.after_secs != p.window_after_secs {
            own.push_str(&format!(
                "; window −{}/+{} min",
                s.before_secs / 60,
                s.after_secs / 60
            ));
        }
        if let Some(g) = s.grace_minutes {
            own.push_str(&format!("; grace {g} min"));
        }
        writeln!(
            out,
            "  shift {}: {}–{}{}{own}",
            s.id,
            s.start.format("%H:%M"),
            s.end.format("%H:%M"),
            if s.overnight { " (next day)" } else { "" }
        )?;
    }
    writeln!(
        out,
        "  window: −{}/+{} min, repeats within {} s, one visit within {} min",
        p.window_before_secs / 60,
        p.window_after_secs / 60,
        p.dedupe_secs,
        p.visit_secs / 60
    )?;
    if let Some(rule) = &p.hours.rule {
        writeln!(
            out,
            "  hours: half day below {}, absent below {} (rule {rule})",
            p.hours
                .half_day_below
                .map_or("-".into(), |m| format!("{m} min")),
            p.hours
                .absent_below
                .map_or("-".into(), |m| format!("{m} min")),
        )?;
    }
    if let Some(lp) = &p.leaving_post {
        let breaks: Vec<String> = lp
            .allowed_breaks
            .iter()
            .map(|(a, b)| format!("{}-{}", a.format("%H:%M"), b.format("%H:%M")))
            .collect();
        writeln!(
            out,
            "  leaving post: grace {} min, allowed breaks {}",
            lp.grading.grace_minutes,
            if breaks.is_empty() {
                "none".into()
            } else {
                breaks.join(", ")
            }
        )?;
    }
    if let Some(ot) = &p.overtime {
        writeln!(out, "  overtime: from {} min", ot.min_minutes)?;
    }
    if let Some(l) = &p.leave {
        writeln!(
            out,
            "  leave: notice {} h, hospital record beyond {} sick days",
            l.notice_hours, l.sick_days_need_hospital_record
        )?;
    }
    writeln!(
        out,
        "  grace: late {} min, early {} min; day cap {}",
        p.lateness.grace_minutes,
        p.earliness.grace_minutes,
        p.absence.day_cap.map_or("none".into(), |c| c.to_string())
    )?;
    for c in &p.categories {
        writeln!(
            out,
            "  category {} {} / {}: cap {}",
            c.id,
            c.zh,
            c.en,
            c.cap.map_or("none".into(), |c| c.to_string())
        )?;
    }
    Ok(())
}
