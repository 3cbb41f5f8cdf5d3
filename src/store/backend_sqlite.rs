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

/// Statement sizes for `n` rows: full [`queries::CHUNK`]s, then the rest
/// as powers of two, largest first (500 rows are 256 + 128 + 64 + 32 +
/// 16 + 4). Eleven shapes serve every batch size, so each stays prepared
/// on its connection: an insert of a terminal's batch is not parsed and
/// planned anew, and the statement cache does not fill with one statement
/// per batch size.
fn statement_sizes(n: usize) -> impl Iterator<Item = usize> {
    let full = n / queries::CHUNK;
    let rest = n % queries::CHUNK;
    std::iter::repeat_n(queries::CHUNK, full).chain(
        (0..usize::BITS)
            .rev()
            .map(|b| 1usize << b)
            .filter(move |p| rest & p != 0),
    )
}

/// Inserts `rows[i]` for each `i` of `todo` (keys in `keys`) and returns
/// the id and key of each row stored. A row is left out when its key is
/// stored, or when a punch of the same employee at the same instant on the
/// same device is (whatever its key): both checks run in the statement,
/// through the unique key index and the (employee, time) index. Up to
/// [`queries::CHUNK`] rows per statement (10 parameters each, well under
/// SQLite's 32,766), in the sizes of [`statement_sizes`].
pub(super) async fn insert_new_punches(
    tx: &mut queries::Tx,
    rows: &[NewPunch],
    keys: &[String],
    todo: &[usize],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(i64, String)>, StoreError> {
    use sqlx::Row;
    let mut out = Vec::with_capacity(todo.len());
    let mut left = todo;
    for size in statement_sizes(todo.len()) {
        let Some((chunk, rest)) = left.split_at_checked(size) else {
            break;
        };
        left = rest;
        let mut qb = sqlx::QueryBuilder::<Db>::new(
            "INSERT INTO punches (employee_id, time, device_id, source, event_id, identity, raw, \
             received_at, dedupe_key, direction) SELECT * FROM (",
        );
        qb.push_values(chunk, |mut b, &i| {
            let p = &rows[i];
            b.push_bind(p.employee_id.as_str())
                .push_bind(p.time)
                .push_bind(p.device_id.as_deref())
                .push_bind(p.source.as_str())
                .push_bind(p.event_id.as_deref())
                .push_bind(p.identity.as_str())
                .push_bind(p.raw.as_deref())
                .push_bind(now)
                .push_bind(keys[i].as_str())
                .push_bind(p.direction.as_deref());
        });
        // `WHERE` also keeps `ON CONFLICT` from being read as a join's `ON`.
        qb.push(
            ") AS v WHERE NOT EXISTS (SELECT 1 FROM punches p WHERE p.employee_id = v.column1 \
             AND p.time = v.column2 AND COALESCE(p.device_id, '') = COALESCE(v.column3, '')) \
             ON CONFLICT DO NOTHING RETURNING id, dedupe_key",
        );
        for r in qb
            .build()
            .fetch_all(&mut **tx)
            .await
            .ctx("insert punches")?
        {
            out.push((
                r.try_get(0).ctx("insert punches")?,
                r.try_get(1).ctx("insert punches")?,
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::statement_sizes;

    #[test]
    fn statement_sizes_cover_every_row_in_few_shapes() {
        let mut shapes = std::collections::BTreeSet::new();
        for n in 0..5_000 {
            let sizes: Vec<usize> = statement_sizes(n).collect();
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}: {sizes:?}");
            assert!(sizes.iter().all(|&s| s > 0));
            shapes.extend(sizes);
        }
        assert_eq!(
            statement_sizes(500).collect::<Vec<_>>(),
            [256, 128, 64, 32, 16, 4]
        );
        assert_eq!(shapes.len(), 11, "{shapes:?}");
    }
}
