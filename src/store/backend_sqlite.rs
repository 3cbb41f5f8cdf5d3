//! The store's queries compiled for SQLite (the text is in `backend*.rs` and `hr_sql.rs`).

type Db = sqlx::Sqlite;

/// Write transactions take the write lock up front, so that a transaction
/// never fails half-way when another process holds it (`SQLITE_BUSY`
/// on a lock upgrade is not retried by the busy handler).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

// The query files are modules compiled once per engine (hence
// `duplicate_mod`): each takes `Db` and `BEGIN_WRITE` from here, and the
// store's types through `super::`, as the engine sees them. rustfmt skips
// them as it skipped them when they were included; formatting them is a
// change of its own.
use super::hr::{
    AnswerError, Appeal, Correction, DayPageRow, DayRow, DayTotal, NewCorrection, Terminal,
};
use super::*;

#[allow(clippy::duplicate_mod)]
#[rustfmt::skip]
#[path = "backend.rs"]
mod queries;
#[allow(clippy::duplicate_mod)]
#[rustfmt::skip]
#[path = "backend_outbox.rs"]
mod outbox_queries;
#[allow(clippy::duplicate_mod)]
#[rustfmt::skip]
#[path = "backend_pull.rs"]
mod pull_queries;
#[allow(clippy::duplicate_mod)]
#[rustfmt::skip]
#[path = "backend_recompute.rs"]
mod recompute_queries;
#[allow(clippy::duplicate_mod)]
#[rustfmt::skip]
#[path = "backend_start.rs"]
mod start_queries;
#[allow(clippy::duplicate_mod)]
#[rustfmt::skip]
#[path = "backend_policy.rs"]
mod policy_queries;
#[allow(clippy::duplicate_mod)]
#[rustfmt::skip]
#[path = "hr_sql.rs"]
pub(super) mod hr_queries;

pub(super) use {
    outbox_queries::*, policy_queries::*, pull_queries::*, queries::*, recompute_queries::*,
    start_queries::*,
};
