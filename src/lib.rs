//! attendd: time and attendance for sites that clock staff in on
//! face-recognition terminals.
//!
//! # Layout
//!
//! Layers import downwards only (ARCHITECTURE.md; the test
//! `layers::top_level_modules_import_without_cycles` checks it).
//!
//! The pure core:
//! - [`domain`]: the pure policy engine. No clock reads, no I/O, no async:
//!   punches, a roster, leave and a holiday calendar go in, explained
//!   employee-day verdicts and points come out.
//!
//! Pure parsing and printing:
//! - [`policy_file`]: the policy file format (raw TOML mirror) and its validation
//!   into a [`domain::policy::Policy`].
//! - [`input`]: the CSV input files of `interfaces.md` (employees, punches,
//!   roster, leaves, holidays), parsed with file and line in every error.
//! - [`dates`]: dates, months and times typed by people, parsed and
//!   bounded to 2000-01-01 … 2100-12-31 for the CLI, the API and the CSVs.
//! - [`render`]: tables and JSON lines shared by every command.
//! - [`progress`]: progress bars of long commands on a terminal's stderr.
//! - [`ingest`]: terminal payload decoders (pure: bytes in, punches out),
//!   registered in one place ([`ingest::decode::Decoder`]).
//!
//! Persistence, configuration and plumbing:
//! - [`clock`]: the daemon's "now": the wall clock, or a test clock
//!   (`ATTENDD_FAULT_CLOCK`) that runs faster.
//! - [`store`]: the durable store (SQLite or PostgreSQL): punches, HR data,
//!   verdicts, the scoring ledger and its audit trail. Persistence only.
//! - [`config`]: the daemon's configuration file, raw and validated;
//!   [`config::token`]: API tokens resolved; [`config::push`],
//!   [`config::pull`]: the push and pull sources' sections.
//! - [`metrics`]: the counters and gauges of `/metrics`.
//! - [`health`]: component states for `/healthz`.
//! - [`tls`]: rustls client settings for `mqtts://` and `https://`.
//! - [`listener`]: serving a router on a listener with header, idle, body
//!   and connection limits (the API and the HTTP push sources).
//!
//! Use cases:
//! - [`source`]: MQTT, serial, HTTP push and pull sources (ack or cursor
//!   after commit).
//! - [`pipeline`]: decode → attribute → commit → quarantine → re-classify;
//!   [`pipeline::replay`]: quarantine replay.
//! - [`quarantine`]: what is quarantined (bounded per upload, photos
//!   stripped).
//! - [`scheduler`]: absence alerts, day close and revisions, terminal
//!   health.
//! - [`sinks`]: outbox delivery: MQTT, webhook, DingTalk, WeCom.
//! - [`hr`]: HR's operations (manual entries, corrections, publication,
//!   appeals, monthly scores from the ledger), shared by CLI and API.
//! - [`export`]: a month as CSV or an XLSX workbook.
//! - [`evaluate`]: the offline `attendd evaluate` command's engine run.
//! - [`simulate`]: the load generator (`attendd simulate`).
//!
//! Interfaces and wiring:
//! - [`broker`]: the embedded MQTT 3.1.1 terminal gateway (`broker =
//!   "embedded"`): terminals log in, punches go into the pipeline and are
//!   acknowledged after commit; readers get the outputs.
//! - [`http`]: health, metrics, the HR API with roles, the dashboard.
//! - [`app`]: the daemon's task tree, started and drained.
//! - [`service`]: systemd readiness, status and watchdog.
//! - [`signals`]: OS signals as shutdown and reload requests.
//! - [`telemetry`]: logging set-up.
//! - [`cli`]: command-line definitions and dispatch; [`cli::store`] the
//!   store commands (import, punches, day, …), [`cli::hr`] HR's commands.

#![forbid(unsafe_code)]

pub mod app;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dates;
pub mod domain;
pub mod evaluate;
pub mod export;
pub mod health;
pub mod hr;
pub mod http;
pub mod ingest;
pub mod input;
pub mod listener;
pub mod metrics;
pub mod pipeline;
pub mod policy_file;
pub mod progress;
pub mod quarantine;
pub mod render;
pub mod scheduler;
pub mod service;
pub mod signals;
pub mod simulate;
pub mod sinks;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod tls;
