//! The store's queries compiled for PostgreSQL (the text is in `backend.rs`).

type Db = sqlx::Postgres;

/// A plain transaction: PostgreSQL locks rows, not the database.
const BEGIN_WRITE: &str = "BEGIN";

include!("backend.rs");
include!("backend_outbox.rs");
include!("backend_start.rs");
