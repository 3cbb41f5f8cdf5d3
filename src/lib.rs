//! attendd: time and attendance for sites that clock staff in on
//! face-recognition terminals.
//!
//! # Layout
//!
//! - [`domain`]: the pure policy engine. No clock reads, no I/O, no async:
//!   punches, a roster, leave and a holiday calendar go in, explained
//!   employee-day verdicts and points come out.
//! - [`policy`]: the policy file format (raw TOML mirror) and its validation
//!   into a [`domain::policy::Policy`].
//! - [`dates`]: dates, months and times typed by people, parsed and
//!   bounded to 2000-01-01 … 2100-12-31 for the CLI, the API and the CSVs.
//! - [`input`]: the CSV input files of `interfaces.md` (employees, punches,
//!   roster, leaves, holidays), parsed with file and line in every error.
//! - [`evaluate`]: the offline `attendd evaluate` command built on the above.
//! - [`store`]: the durable store (SQLite or PostgreSQL): punches, HR data,
//!   verdicts, the scoring ledger and its audit trail, and the commands that
//!   import into it and query it.
//! - [`ingest`]: terminal payload decoders (pure: bytes in, punches out).
//! - [`quarantine`]: what is quarantined (bounded per upload, photos
//!   stripped) and `attendd quarantine replay`.
//! - [`cli`]: command-line definitions and dispatch.
//! - [`broker`]: the embedded MQTT 3.1.1 terminal gateway (`broker =
//!   "embedded"`): terminals log in, punches go into the pipeline and are
//!   acknowledged after commit; readers get the outputs.
//! - [`hr`]: HR's operations (manual entries, corrections, publication,
//!   appeals, monthly scores from the ledger), shared by CLI and API.
//! - [`export`]: a month as CSV or an XLSX workbook.
//! - [`http`]: health, metrics, the HR API with roles, the dashboard.

#![forbid(unsafe_code)]

pub mod app;
pub mod broker;
pub mod cli;
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
pub mod metrics;
pub mod pipeline;
pub mod policy;
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
