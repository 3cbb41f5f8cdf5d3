//! The durable store: raw punches, quarantined payloads, HR data (employees
//! with aliases, roster, leaves, holidays), day verdicts, the scoring ledger,
//! the audit trail, published months, adjustments and appeals.
//!
//! One [`Store`] over two engines, chosen by the `[store] url` scheme:
//! SQLite (embedded, the default) and PostgreSQL. Queries are runtime
//! `sqlx::query` calls whose SQL text is shared by both engines (SQLite
//! accepts `$1` placeholders); the query code lives once, in `backend.rs`,
//! `backend_outbox.rs`, `backend_pull.rs`, `backend_start.rs` and
//! `hr_sql.rs`, each a `#[path]` module compiled for each engine
//! (`backend_sqlite.rs`, `backend_pg.rs`), and `dispatch!` picks the
//! engine. Only the migrations differ.
//!
//! The store is persistence only: no command line, configuration file,
//! CSV or printing (the test `layers::store_imports_no_interface_config_csv_or_printing`
//! keeps it so), and the instants it writes come from its callers (but
//! for the audit rows of a recompute, stamped with the wall clock).
//!
//! # Guarantees
//!
//! - Raw punches are append-only. No code path here updates or deletes one,
//!   and database triggers refuse `UPDATE` and `DELETE` on `punches` (and
//!   `DELETE` on `ledger`, any change to `audit`) from any client.
//! - A punch is identified by its dedupe key (`interfaces.md`): the device,
//!   event id, identity as sent and instant when the event id is known,
//!   else the identity as sent, the instant and the device. Inserting a
//!   stored key again, or the same employee at the same instant on the
//!   same device, reports [`Inserted::Duplicate`]; it is never an error.
//! - Ledger entries are voided, never deleted; every change to a verdict or
//!   a ledger entry writes an audit row (old value, new value, cause, actor).
//!   The first verdict of a day is a creation, not a change, and is not
//!   audited; its row carries `updated_at`.
//! - Retention: nothing in this module deletes a punch, ledger entry or
//!   audit row. A verdict is removed in one case only: an absence stored
//!   for a day before the classification start (policy.md, "Real sites"),
//!   with its old value in the audit trail and its ledger entries voided.
//!   There is no purge yet; when one is added it must refuse anything
//!   younger than [`RETENTION_FLOOR_DAYS`].
//!
//! # Durability (SQLite)
//!
//! The database runs in WAL mode with `synchronous=FULL`: a committed
//! transaction survives a power cut, not only a crash of the process
//! (`NORMAL` in WAL mode may lose the last commits on power loss, and a
//! terminal that was told "stored" would not resend them). Readers do not
//! block the writer and the writer does not block readers; a busy timeout
//! makes a second writer (another process) wait instead of failing, and
//! write transactions start with `BEGIN IMMEDIATE` so that they never fail
//! half-way on a lock upgrade.

mod backend_pg;
mod backend_sqlite;
mod days_page;
pub mod hr;
mod inputs;
mod lock;
pub mod outbox;
pub mod policy_groups;
mod pull;
mod push;
mod quarantine;
mod recompute;
mod records;
mod start;
pub mod summary;
mod unchanged;

pub use quarantine::{QuarantineKind, ReplayInfo, SupersedeReport};
pub use records::*;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use recompute::{RecomputeReport, month_bounds};

/// The youngest data a future purge may delete, in days (two years).
pub const RETENTION_FLOOR_DAYS: i64 = 731;

/// Largest quarantined payload kept, in bytes; longer payloads are cut and
/// their original length recorded.
pub const QUARANTINE_MAX_BYTES: usize = 64 * 1024;

/// SQLite's page cache per connection, in MiB, unless `[store]
/// sqlite_cache_mib` says otherwise: large enough that the indexes of a
/// large punches table stay in memory between batches. The pool has four
/// connections, so the store may hold four times this much.
pub const DEFAULT_SQLITE_CACHE_MIB: u32 = 64;

/// How long a SQLite connection waits for another writer before failing.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A store failure: connecting, migrating or a query.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither `sqlite://…` nor `postgres://…`, or does not parse.
    #[error("store url {url:?}: {why}")]
    Url {
        /// The URL (password hidden).
        url: String,
        /// Why.
        why: String,
    },
    /// Connecting failed.
    #[error("cannot open store {url}: {source}")]
    Connect {
        /// The URL (password hidden).
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Applying migrations failed.
    #[error("migrating store {url}: {source}")]
    Migrate {
        /// The URL (password hidden).
        url: String,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store query ({what}): {source}")]
    Query {
        /// The operation, e.g. `insert punches`.
        what: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A stored value could not be read back.
    #[error("store row {key}: {why}")]
    Corrupt {
        /// Table and key of the row.
        key: String,
        /// What is wrong with it.
        why: String,
    },
}

/// Adds the operation name to a driver error.
pub(crate) trait QueryContext<T> {
    /// Wraps the error as [`StoreError::Query`].
    fn ctx(self, what: &'static str) -> Result<T, StoreError>;
}

impl<T> QueryContext<T> for Result<T, sqlx::Error> {
    fn ctx(self, what: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query { what, source })
    }
}

/// The store: a pool over one of the two engines.
#[derive(Clone, Debug)]
pub enum Store {
    /// Embedded SQLite file.
    Sqlite(SqlitePool),
    /// PostgreSQL server.
    Postgres(PgPool),
}

/// Calls the same backend function on whichever engine the store uses.
/// `dispatch!(store, f(args))` calls a query of `backend.rs`,
/// `backend_outbox.rs`, `backend_pull.rs` or `backend_start.rs`;
/// `dispatch!(store, hr::f(args))` one of `hr_sql.rs`.
macro_rules! dispatch {
    ($self:expr, hr :: $f:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Sqlite(p) => backend_sqlite::hr_queries::$f(p $(, $arg)*).await,
            Store::Postgres(p) => backend_pg::hr_queries::$f(p $(, $arg)*).await,
        }
    };
    ($self:expr, $f:ident ( $($arg:expr),* )) => {
        match $self {
            Store::Sqlite(p) => backend_sqlite::$f(p $(, $arg)*).await,
            Store::Postgres(p) => backend_pg::$f(p $(, $arg)*).await,
        }
    };
}
pub(crate) use dispatch;

/// Whether an idle connection may be handed out: not when a transaction is
/// still open on it. A failed `COMMIT` (SQLite's `database or disk is
/// full`) can leave the driver counting an open transaction that SQLite
/// already rolled back; the `ROLLBACK` queued by the dropped transaction
/// then fails too, and every later `BEGIN` on that connection would be
/// refused ("attempted to call begin_with at non-zero transaction depth")
/// until a restart. Such a connection is closed instead and the pool opens
/// a fresh one. (The pool pings a connection when it is released and again
/// before this check, so a queued rollback has run by now.)
async fn fit_for_reuse<C: sqlx::Connection>(c: &mut C) -> Result<bool, sqlx::Error> {
    if c.is_in_transaction() {
        tracing::warn!("store: closing a connection left inside a failed transaction");
        return Ok(false);
    }
    Ok(true)
}

/// Hides the password of a URL for messages.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((cred, host)) = rest.split_once('@')
        && let Some((user, _)) = cred.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

impl Store {
    /// Opens the store named by `url` (`sqlite://PATH[?…]` or
    /// `postgres://…`) and applies any pending migrations. A SQLite file is
    /// created when missing.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with(url, DEFAULT_SQLITE_CACHE_MIB).await
    }

    /// [`Store::open`] with SQLite's page cache set to `sqlite_cache_mib`
    /// MiB per connection (`[store] sqlite_cache_mib`).
    pub async fn open_with(url: &str, sqlite_cache_mib: u32) -> Result<Store, StoreError> {
        let shown = redact_url(url);
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Url {
                    url: shown.clone(),
                    why: e.to_string(),
                })?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
                // Indexes of a large punches table stay in memory between
                // batches; checkpoints run every ~40 MiB of WAL instead of
                // every 4 MiB, so a stream of batches rewrites hot index
                // pages less often. Durability is unchanged (FULL).
                .pragma(
                    "cache_size",
                    format!("-{}", u64::from(sqlite_cache_mib.max(1)) * 1024),
                )
                .pragma("wal_autocheckpoint", "10000");
            if let Some(dir) = opts.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Url {
                    url: shown.clone(),
                    why: format!("cannot create {}: {e}", dir.display()),
                })?;
            }
            // All four connections stay open: no churn of descriptors and
            // caches as the load comes and goes.
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .min_connections(4)
                .idle_timeout(None)
                .before_acquire(|c, _| Box::pin(fit_for_reuse(c)))
                .connect_with(opts)
                .await
                .map_err(|source| StoreError::Connect {
                    url: shown.clone(),
                    source,
                })?;
            sqlx::migrate!("src/store/migrations/sqlite")
                .run(&pool)
                .await
                .map_err(|source| StoreError::Migrate { url: shown, source })?;
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::Url {
                url: shown.clone(),
                why: e.to_string(),
            })?;
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .before_acquire(|c, _| Box::pin(fit_for_reuse(c)))
                .connect_with(opts)
                .await
                .map_err(|source| StoreError::Connect {
                    url: shown.clone(),
                    source,
                })?;
            sqlx::migrate!("src/store/migrations/postgres")
                .run(&pool)
                .await
                .map_err(|source| StoreError::Migrate { url: shown, source })?;
            Ok(Store::Postgres(pool))
        } else {
            Err(StoreError::Url {
                url: shown,
                why: "expected sqlite://PATH or postgres://…".into(),
            })
        }
    }

    /// `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    /// Closes every connection (waits for queries in flight).
    pub async fn close(&self) {
        match self {
            Store::Sqlite(p) => p.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }

    /// Stores a batch of punches in one transaction and reports, for each,
    /// whether it was new or a duplicate of a stored punch (or of an
    /// earlier punch in the same batch). Durable when it returns.
    pub async fn insert_punches(
        &self,
        punches: &[NewPunch],
        now: DateTime<Utc>,
    ) -> Result<Vec<Inserted>, StoreError> {
        if punches.is_empty() {
            return Ok(Vec::new());
        }
        let mut keys: Vec<String> = punches.iter().map(NewPunch::dedupe_key).collect();
        // A key held by a superseded punch is free for the correct punch.
        self.rekey_superseded(&mut keys).await?;
        dispatch!(self, insert_punches(punches, &keys, now))
    }

    /// Stored punches with `from <= time < to`, optionally of one employee,
    /// ordered by employee then time.
    pub async fn punches(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        employee: Option<&str>,
    ) -> Result<Vec<StoredPunch>, StoreError> {
        dispatch!(self, punches(from, to, employee))
    }

    /// The number of stored punches.
    pub async fn punch_count(&self) -> Result<i64, StoreError> {
        dispatch!(self, punch_count())
    }

    /// Keeps an undecodable payload, cut to [`QUARANTINE_MAX_BYTES`].
    pub async fn quarantine(
        &self,
        q: &NewQuarantine,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        dispatch!(self, add_quarantine(q, now))
    }

    /// The most recent quarantined payloads, newest first.
    pub async fn quarantined(&self, limit: i64) -> Result<Vec<QuarantineRow>, StoreError> {
        self.quarantine_page(0, limit).await
    }

    /// Inserts or updates employees and replaces their aliases, in one
    /// transaction.
    pub async fn upsert_employees(
        &self,
        rows: &[EmployeeRecord],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, upsert_employees(rows, now))
    }

    /// Every employee with aliases, sorted by id.
    pub async fn employees(&self) -> Result<Vec<EmployeeRecord>, StoreError> {
        dispatch!(self, employees())
    }

    /// Inserts or updates roster rows in one transaction; returns the rows
    /// that are new or changed.
    pub async fn upsert_roster(
        &self,
        rows: &[RosterRecord],
        now: DateTime<Utc>,
    ) -> Result<Vec<RosterRecord>, StoreError> {
        dispatch!(self, upsert_roster(rows, now))
    }

    /// Roster rows with `from <= date <= to`.
    pub async fn roster(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<RosterRecord>, StoreError> {
        dispatch!(self, roster(from, to))
    }

    /// Inserts leave records or updates their status, in one transaction;
    /// returns the records that are new or changed.
    pub async fn upsert_leaves(
        &self,
        rows: &[LeaveRecord],
        now: DateTime<Utc>,
    ) -> Result<Vec<LeaveRecord>, StoreError> {
        dispatch!(self, upsert_leaves(rows, now))
    }

    /// Leave records overlapping `[from, to)`.
    pub async fn leaves(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<LeaveRecord>, StoreError> {
        dispatch!(self, leaves(from, to))
    }

    /// Inserts or updates holiday-calendar rows in one transaction; returns
    /// the rows that are new or changed.
    pub async fn upsert_holidays(
        &self,
        rows: &[HolidayRecord],
        now: DateTime<Utc>,
    ) -> Result<Vec<HolidayRecord>, StoreError> {
        dispatch!(self, upsert_holidays(rows, now))
    }

    /// The imported holiday calendar.
    pub async fn holidays(&self) -> Result<Vec<HolidayRecord>, StoreError> {
        dispatch!(self, holidays())
    }

    /// Stored verdicts with `from <= date <= to`, optionally of one
    /// employee, ordered by employee then date.
    pub async fn verdicts(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        employee: Option<&str>,
    ) -> Result<Vec<StoredVerdict>, StoreError> {
        dispatch!(self, verdicts(from, to, employee))
    }

    /// Ledger entries (voided ones included) with `from <= date <= to`,
    /// optionally of one employee, ordered by employee, date and id.
    pub async fn ledger(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        employee: Option<&str>,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        dispatch!(self, ledger(from, to, employee))
    }

    /// Records a manual ledger entry and audits it; returns its id.
    pub async fn add_manual_entry(
        &self,
        e: &NewManualEntry,
        cause: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        dispatch!(self, add_manual_entry(e, cause, now))
    }

    /// Published months, `YYYY-MM`, ascending.
    pub async fn published_months(&self) -> Result<Vec<String>, StoreError> {
        dispatch!(self, published_months())
    }

    /// Adjustments, newest first; only pending ones when `pending_only`.
    pub async fn adjustments(&self, pending_only: bool) -> Result<Vec<Adjustment>, StoreError> {
        dispatch!(self, adjustments(pending_only))
    }

    /// Audit rows of one table (all tables when `None`), oldest first.
    pub async fn audit(&self, table: Option<&str>) -> Result<Vec<AuditRow>, StoreError> {
        dispatch!(self, audit(table))
    }

    /// Rewrites one probe row in a write transaction: `Ok` when the store
    /// can write now (`/healthz` asks every few seconds).
    pub async fn probe_write(&self, now: DateTime<Utc>) -> Result<(), StoreError> {
        dispatch!(self, probe_write(now))
    }

    /// The earliest punch date (UTC) of any of these employees.
    pub async fn first_punch(
        &self,
        employees: &[String],
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        dispatch!(self, first_punch(employees))
    }
}
