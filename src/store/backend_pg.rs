//! The store's queries compiled for PostgreSQL (the text is in `backend*.rs` and `hr_sql.rs`).

type Db = sqlx::Postgres;

/// A plain transaction: PostgreSQL locks rows, not the database.
const BEGIN_WRITE: &str = "BEGIN";

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

/// Inserts `rows[i]` for each `i` of `todo` (keys in `keys`) and returns
/// the id and key of each row stored. A row is left out when its key is
/// stored, or when a punch of the same employee at the same instant on the
/// same device is (whatever its key): both checks run in the statement.
/// The rows travel as one array per column (`UNNEST`), so a batch of any
/// size is one statement with ten parameters, planned once.
pub(super) async fn insert_new_punches(
    tx: &mut queries::Tx,
    rows: &[NewPunch],
    keys: &[String],
    todo: &[usize],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(i64, String)>, StoreError> {
    use sqlx::Row;
    let mut out = Vec::with_capacity(todo.len());
    for chunk in todo.chunks(PG_ROWS_PER_STATEMENT) {
        let col = |f: fn(&NewPunch) -> Option<&str>| -> Vec<Option<&str>> {
            chunk.iter().map(|&i| f(&rows[i])).collect()
        };
        let times: Vec<chrono::DateTime<chrono::Utc>> =
            chunk.iter().map(|&i| rows[i].time).collect();
        let key: Vec<&str> = chunk.iter().map(|&i| keys[i].as_str()).collect();
        let got = sqlx::query(
            "INSERT INTO punches (employee_id, time, device_id, source, event_id, identity, raw, \
             received_at, dedupe_key, direction) \
             SELECT v.e, v.t, v.d, v.s, v.ev, v.i, v.r, $8, v.k, v.dir \
             FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], \
                         $6::text[], $7::text[], $9::text[], $10::text[]) \
                  AS v(e, t, d, s, ev, i, r, k, dir) \
             WHERE NOT EXISTS (SELECT 1 FROM punches p WHERE p.employee_id = v.e AND p.time = v.t \
                               AND COALESCE(p.device_id, '') = COALESCE(v.d, '')) \
             ON CONFLICT DO NOTHING RETURNING id, dedupe_key",
        )
        .bind(col(|p| Some(p.employee_id.as_str())))
        .bind(times)
        .bind(col(|p| p.device_id.as_deref()))
        .bind(col(|p| Some(p.source.as_str())))
        .bind(col(|p| p.event_id.as_deref()))
        .bind(col(|p| Some(p.identity.as_str())))
        .bind(col(|p| p.raw.as_deref()))
        .bind(now)
        .bind(key)
        .bind(col(|p| p.direction.as_deref()))
        .fetch_all(&mut **tx)
        .await
        .ctx("insert punches")?;
        for r in got {
            out.push((
                r.try_get(0).ctx("insert punches")?,
                r.try_get(1).ctx("insert punches")?,
            ));
        }
    }
    Ok(out)
}

/// Rows per `UNNEST` statement: one statement for a usual batch, bounded
/// so that a huge import does not build one huge message.
const PG_ROWS_PER_STATEMENT: usize = 10_000;
