//! The store's queries compiled for SQLite (the text is in `backend.rs`).

type Db = sqlx::Sqlite;

/// Write transactions take the write lock up front, so that a transaction
/// never fails half-way when another process holds it (`SQLITE_BUSY`
/// on a lock upgrade is not retried by the busy handler).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

include!("backend.rs");
include!("backend_outbox.rs");
include!("backend_start.rs");
