// The store's SQL, shared by both engines. A module of `backend_sqlite.rs`
// and of `backend_pg.rs`, each of which defines `Db` and `BEGIN_WRITE`;
// everything here must compile (and run) on both. Dialect differences are
// confined to the migrations.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Pool, QueryBuilder, Row};

use super::{BEGIN_WRITE, Db};

use super::recompute::PunchTime;
use super::{
    EmployeeRecord, HolidayRecord, Inserted, LeaveRecord, LedgerEntry,
    NewManualEntry, NewPunch, NewQuarantine, QUARANTINE_MAX_BYTES, QueryContext,
    RosterRecord, StoreError, StoredPunch, StoredVerdict, VerdictMeta,
};

/// Rows per multi-row statement. Kept well under SQLite's 32766 bound
/// parameters (the widest row here has 10 columns).
///
/// A multi-row statement (`VALUES` or `IN` lists) is kept in the
/// connection's statement cache only at this full size
/// (`.persistent(chunk.len() == CHUNK)`); other sizes are prepared for one
/// use. Cached, every batch size would stay prepared on every connection
/// (a 1,000-row statement holds hundreds of KiB of SQLite memory): the
/// daemon's memory grew by the batch sizes it had seen (heap profile of
/// the soak bench: 15 MiB of 33 MiB live in prepared statements). The
/// punch insert on SQLite, run for every terminal's batch, instead splits
/// a batch into a few sizes that all stay prepared
/// (`backend_sqlite::statement_sizes`).
pub(super) const CHUNK: usize = 1000;

pub(super) type Tx = sqlx::Transaction<'static, Db>;

pub(super) async fn begin(pool: &Pool<Db>) -> Result<Tx, StoreError> {
    pool.begin_with(BEGIN_WRITE).await.ctx("begin transaction")
}

pub(crate) async fn insert_punches(
    pool: &Pool<Db>,
    rows: &[NewPunch],
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<Inserted>, StoreError> {
    let mut tx = begin(pool).await?;
    let out = insert_punches_in(&mut tx, rows, keys, now).await?;
    tx.commit().await.ctx("commit punches")?;
    Ok(out)
}

/// [`insert_punches`] inside a transaction the caller commits (a pull
/// source's cursor goes in the same one).
pub(super) async fn insert_punches_in(
    tx: &mut Tx,
    rows: &[NewPunch],
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<Inserted>, StoreError> {
    let mut out = vec![Inserted::Duplicate; rows.len()];
    // The first occurrence of each key in the batch is the one inserted; so
    // is the first of each (device, employee, instant), see below.
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut same_instant: HashSet<(&str, DateTime<Utc>, &str)> = HashSet::with_capacity(rows.len());
    let mut todo: Vec<usize> = Vec::with_capacity(rows.len());
    for (i, k) in keys.iter().enumerate() {
        let p = &rows[i];
        let at = (p.employee_id.as_str(), p.time, p.device_id.as_deref().unwrap_or(""));
        if let std::collections::hash_map::Entry::Vacant(v) = first.entry(k.as_str())
            && same_instant.insert(at)
        {
            v.insert(i);
            todo.push(i);
        }
    }
    // Index order within the batch: each B-tree page is visited once.
    todo.sort_unstable_by(|&a, &b| {
        (rows[a].employee_id.as_str(), rows[a].time).cmp(&(rows[b].employee_id.as_str(), rows[b].time))
    });
    // A punch of the same employee at the same instant on the same device
    // is already stored: a duplicate whatever its key says. Keys changed
    // recipe (issue 11, defect 3: a device's record counter alone is no
    // longer a key), and a backlog re-sent after an upgrade must not be
    // stored twice. The engine's statement checks both in one pass.
    for (id, key) in super::insert_new_punches(tx, rows, keys, &todo, now).await? {
        if let Some(&i) = first.get(key.as_str()) {
            out[i] = Inserted::New(id);
        }
    }
    Ok(out)
}

pub(crate) async fn punches(
    pool: &Pool<Db>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    employee: Option<&str>,
) -> Result<Vec<StoredPunch>, StoreError> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT id, employee_id, time, device_id, source, event_id, identity, received_at FROM punches WHERE time >= ",
    );
    qb.push_bind(from).push(" AND time < ").push_bind(to);
    if let Some(e) = employee {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    qb.push(" ORDER BY employee_id, time, id");
    let rows = qb.build().fetch_all(pool).await.ctx("select punches")?;
    rows.iter()
        .map(|r| {
            Ok(StoredPunch {
                id: r.try_get("id")?,
                employee_id: r.try_get("employee_id")?,
                time: r.try_get("time")?,
                device_id: r.try_get("device_id")?,
                source: r.try_get("source")?,
                event_id: r.try_get("event_id")?,
                identity: r.try_get("identity")?,
                received_at: r.try_get("received_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read punches")
}

/// Punch instants and devices only, for the engine, ordered by employee
/// then time.
pub(crate) async fn punch_times(
    pool: &Pool<Db>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    employee: Option<&str>,
) -> Result<Vec<PunchTime>, StoreError> {
    let mut qb =
        QueryBuilder::<Db>::new("SELECT employee_id, time, device_id, direction FROM punches WHERE time >= ");
    qb.push_bind(from).push(" AND time < ").push_bind(to);
    // A superseded punch (`attendd punches supersede`) is not classified.
    qb.push(" AND NOT EXISTS (SELECT 1 FROM punch_supersedes s WHERE s.punch_id = punches.id)");
    if let Some(e) = employee {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    qb.push(" ORDER BY employee_id, time");
    let rows = qb.build().fetch_all(pool).await.ctx("select punch times")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read punch times")
}

pub(crate) async fn punch_count(pool: &Pool<Db>) -> Result<i64, StoreError> {
    sqlx::query("SELECT COUNT(*) FROM punches")
        .fetch_one(pool)
        .await
        .and_then(|r| r.try_get(0))
        .ctx("count punches")
}

pub(crate) async fn first_punch(
    pool: &Pool<Db>,
    employees: &[String],
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let mut best: Option<DateTime<Utc>> = None;
    for e in employees {
        let r = sqlx::query("SELECT time FROM punches WHERE employee_id = $1 ORDER BY time LIMIT 1")
            .bind(e.as_str())
            .fetch_optional(pool)
            .await
            .ctx("first punch")?;
        if let Some(r) = r {
            let t: DateTime<Utc> = r.try_get(0).ctx("first punch")?;
            best = Some(best.map_or(t, |b| b.min(t)));
        }
    }
    Ok(best)
}

pub(crate) async fn add_quarantine(
    pool: &Pool<Db>,
    q: &NewQuarantine,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let kept = &q.payload[..q.payload.len().min(QUARANTINE_MAX_BYTES)];
    let r = q.replay.as_ref();
    sqlx::query(
        "INSERT INTO quarantine (source, payload, payload_len, reason, received_at, kind, pipeline_source, topic, \
         decoder, decoder_options, device_id, timezone) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
    )
    .bind(q.source.as_str())
    .bind(kept)
    .bind(q.payload.len() as i64)
    .bind(q.reason.as_str())
    .bind(q.received_at.unwrap_or(now))
    .bind(q.kind.as_str())
    .bind(r.map(|r| r.pipeline_source.as_str()))
    .bind(r.and_then(|r| r.topic.as_deref()))
    .bind(r.map(|r| r.decoder.as_str()))
    .bind(r.map(|r| r.decoder_options.as_str()))
    .bind(r.and_then(|r| r.device_id.as_deref()))
    .bind(r.map(|r| r.timezone.as_str()))
    .fetch_one(pool)
    .await
    .and_then(|r| r.try_get(0))
    .ctx("insert quarantine")
}

/// Raises the counters of `keys` in table `day_revisions` (a date as
/// `YYYY-MM-DD`, or `*` for the employees) in the writer's transaction, so
/// that a kept page of the daily table is built again
/// (`http::api::page_cache`). Once per key, however many rows changed.
pub(crate) async fn raise_revisions(tx: &mut Tx, keys: &std::collections::BTreeSet<String>) -> Result<(), StoreError> {
    for key in keys {
        sqlx::query(
            "INSERT INTO day_revisions (key, revision) VALUES ($1, 1) \
             ON CONFLICT (key) DO UPDATE SET revision = day_revisions.revision + 1",
        )
        .bind(key.as_str())
        .execute(&mut **tx)
        .await
        .ctx("raise day revisions")?;
    }
    Ok(())
}

/// The counters of `date` and of the employees in `day_revisions` (0 when
/// never raised).
pub(crate) async fn day_revision(pool: &Pool<Db>, date: chrono::NaiveDate) -> Result<(i64, i64), StoreError> {
    sqlx::query(
        "SELECT COALESCE((SELECT revision FROM day_revisions WHERE key = $1), 0), \
         COALESCE((SELECT revision FROM day_revisions WHERE key = '*'), 0)",
    )
    .bind(revision_key(date))
    .fetch_one(pool)
    .await
    .and_then(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
    .ctx("read day revisions")
}

/// The `day_revisions` key of a date.
pub(crate) fn revision_key(date: chrono::NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

pub(crate) async fn upsert_employees(
    pool: &Pool<Db>,
    rows: &[EmployeeRecord],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO employees (employee_id, name, team, supervisor, shift, start_date, end_date, updated_at) ",
        );
        qb.push_values(chunk, |mut b, e| {
            b.push_bind(e.employee_id.as_str())
                .push_bind(e.name.as_str())
                .push_bind(e.team.as_str())
                .push_bind(e.supervisor.as_str())
                .push_bind(e.shift.as_deref())
                .push_bind(e.start_date)
                .push_bind(e.end_date)
                .push_bind(now);
        });
        qb.push(
            " ON CONFLICT (employee_id) DO UPDATE SET name = excluded.name, team = excluded.team, \
             supervisor = excluded.supervisor, shift = excluded.shift, start_date = excluded.start_date, \
             end_date = excluded.end_date, updated_at = excluded.updated_at",
        );
        qb.build().persistent(chunk.len() == CHUNK).execute(&mut *tx).await.ctx("upsert employees")?;
    }
    raise_revisions(&mut tx, &std::collections::BTreeSet::from(["*".to_string()])).await?;
    for e in rows {
        sqlx::query("DELETE FROM employee_aliases WHERE employee_id = $1")
            .bind(e.employee_id.as_str())
            .execute(&mut *tx)
            .await
            .ctx("replace aliases")?;
    }
    let aliases: Vec<(&str, &str)> = rows
        .iter()
        .flat_map(|e| e.aliases.iter().map(move |a| (a.as_str(), e.employee_id.as_str())))
        .collect();
    for chunk in aliases.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("INSERT INTO employee_aliases (alias, employee_id) ");
        qb.push_values(chunk, |mut b, (a, e)| {
            b.push_bind(*a).push_bind(*e);
        });
        qb.push(" ON CONFLICT (alias) DO UPDATE SET employee_id = excluded.employee_id");
        qb.build().persistent(chunk.len() == CHUNK).execute(&mut *tx).await.ctx("insert aliases")?;
    }
    tx.commit().await.ctx("commit employees")
}

pub(crate) async fn employees(pool: &Pool<Db>) -> Result<Vec<EmployeeRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT employee_id, name, team, supervisor, shift, start_date, end_date FROM employees ORDER BY employee_id",
    )
        .fetch_all(pool)
        .await
        .ctx("select employees")?;
    let mut out: Vec<EmployeeRecord> = rows
        .iter()
        .map(|r| {
            Ok(EmployeeRecord {
                employee_id: r.try_get(0)?,
                name: r.try_get(1)?,
                team: r.try_get(2)?,
                supervisor: r.try_get(3)?,
                shift: r.try_get(4)?,
                aliases: Vec::new(),
                start_date: r.try_get(5)?,
                end_date: r.try_get(6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read employees")?;
    let idx: HashMap<String, usize> = out
        .iter()
        .enumerate()
        .map(|(i, e)| (e.employee_id.clone(), i))
        .collect();
    let aliases = sqlx::query("SELECT alias, employee_id FROM employee_aliases ORDER BY alias")
        .fetch_all(pool)
        .await
        .ctx("select aliases")?;
    for r in &aliases {
        let alias: String = r.try_get(0).ctx("read aliases")?;
        let emp: String = r.try_get(1).ctx("read aliases")?;
        if let Some(&i) = idx.get(&emp) {
            out[i].aliases.push(alias);
        }
    }
    Ok(out)
}

pub(crate) async fn upsert_roster(
    pool: &Pool<Db>,
    rows: &[RosterRecord],
    now: DateTime<Utc>,
) -> Result<Vec<RosterRecord>, StoreError> {
    // One row per key (the last wins): a statement may not touch a row twice.
    let mut seen: HashSet<(&str, NaiveDate)> = HashSet::new();
    let mut uniq: Vec<&RosterRecord> = Vec::with_capacity(rows.len());
    for r in rows.iter().rev() {
        if seen.insert((r.employee_id.as_str(), r.date)) {
            uniq.push(r);
        }
    }
    let mut changed = Vec::new();
    let mut tx = begin(pool).await?;
    for chunk in uniq.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("INSERT INTO roster (employee_id, date, shift, updated_at) ");
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.employee_id.as_str())
                .push_bind(r.date)
                .push_bind(r.shift.as_str())
                .push_bind(now);
        });
        qb.push(
            " ON CONFLICT (employee_id, date) DO UPDATE SET shift = excluded.shift, updated_at = excluded.updated_at \
             WHERE roster.shift <> excluded.shift RETURNING employee_id, date, shift",
        );
        for r in qb.build().persistent(chunk.len() == CHUNK).fetch_all(&mut *tx).await.ctx("upsert roster")? {
            changed.push(RosterRecord {
                employee_id: r.try_get(0).ctx("upsert roster")?,
                date: r.try_get(1).ctx("upsert roster")?,
                shift: r.try_get(2).ctx("upsert roster")?,
            });
        }
    }
    tx.commit().await.ctx("commit roster")?;
    Ok(changed)
}

pub(crate) async fn roster(
    pool: &Pool<Db>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<RosterRecord>, StoreError> {
    let rows = sqlx::query("SELECT employee_id, date, shift FROM roster WHERE date >= $1 AND date <= $2")
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
        .ctx("select roster")?;
    rows.iter()
        .map(|r| {
            Ok(RosterRecord {
                employee_id: r.try_get(0)?,
                date: r.try_get(1)?,
                shift: r.try_get(2)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read roster")
}

fn leave_from_row(r: &<Db as sqlx::Database>::Row) -> Result<LeaveRecord, sqlx::Error> {
    Ok(LeaveRecord {
        employee_id: r.try_get("employee_id")?,
        start: r.try_get("start_at")?,
        end: r.try_get("end_at")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        requested_at: r.try_get("requested_at")?,
        document: r.try_get("document")?,
    })
}

pub(crate) async fn upsert_leaves(
    pool: &Pool<Db>,
    rows: &[LeaveRecord],
    now: DateTime<Utc>,
) -> Result<Vec<LeaveRecord>, StoreError> {
    let mut seen: HashSet<(&str, DateTime<Utc>, DateTime<Utc>, &str)> = HashSet::new();
    let mut uniq: Vec<&LeaveRecord> = Vec::with_capacity(rows.len());
    for r in rows.iter().rev() {
        if seen.insert((r.employee_id.as_str(), r.start, r.end, r.kind.as_str())) {
            uniq.push(r);
        }
    }
    let mut changed = Vec::new();
    let mut tx = begin(pool).await?;
    for chunk in uniq.chunks(CHUNK) {
        let mut qb =
            QueryBuilder::<Db>::new(
                "INSERT INTO leaves (employee_id, start_at, end_at, kind, status, requested_at, document, updated_at) ",
            );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.employee_id.as_str())
                .push_bind(r.start)
                .push_bind(r.end)
                .push_bind(r.kind.as_str())
                .push_bind(r.status.as_str())
                .push_bind(r.requested_at)
                .push_bind(r.document.as_deref())
                .push_bind(now);
        });
        // A file that does not say when a leave was asked for, or which
        // document came with it (no such column), keeps what is stored.
        qb.push(
            " ON CONFLICT (employee_id, start_at, end_at, kind) DO UPDATE SET status = excluded.status, \
             requested_at = COALESCE(excluded.requested_at, leaves.requested_at), \
             document = COALESCE(excluded.document, leaves.document), \
             updated_at = excluded.updated_at \
             WHERE leaves.status <> excluded.status \
             OR (excluded.requested_at IS NOT NULL AND excluded.requested_at IS DISTINCT FROM leaves.requested_at) \
             OR (excluded.document IS NOT NULL AND excluded.document IS DISTINCT FROM leaves.document) \
             RETURNING employee_id, start_at, end_at, kind, status, requested_at, document",
        );
        for r in qb.build().persistent(chunk.len() == CHUNK).fetch_all(&mut *tx).await.ctx("upsert leaves")? {
            changed.push(leave_from_row(&r).ctx("upsert leaves")?);
        }
    }
    tx.commit().await.ctx("commit leaves")?;
    Ok(changed)
}

pub(crate) async fn leaves(
    pool: &Pool<Db>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<LeaveRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT employee_id, start_at, end_at, kind, status, requested_at, document FROM leaves WHERE end_at > $1 AND start_at < $2 \
         ORDER BY employee_id, start_at",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
    .ctx("select leaves")?;
    rows.iter()
        .map(leave_from_row)
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read leaves")
}

pub(crate) async fn upsert_holidays(
    pool: &Pool<Db>,
    rows: &[HolidayRecord],
    now: DateTime<Utc>,
) -> Result<Vec<HolidayRecord>, StoreError> {
    let mut seen: HashSet<NaiveDate> = HashSet::new();
    let uniq: Vec<&HolidayRecord> = rows.iter().rev().filter(|r| seen.insert(r.date)).collect();
    let mut changed = Vec::new();
    let mut tx = begin(pool).await?;
    for chunk in uniq.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("INSERT INTO holidays (date, kind, updated_at) ");
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(r.date).push_bind(r.kind.as_str()).push_bind(now);
        });
        qb.push(
            " ON CONFLICT (date) DO UPDATE SET kind = excluded.kind, updated_at = excluded.updated_at \
             WHERE holidays.kind <> excluded.kind RETURNING date, kind",
        );
        for r in qb.build().persistent(chunk.len() == CHUNK).fetch_all(&mut *tx).await.ctx("upsert holidays")? {
            changed.push(HolidayRecord {
                date: r.try_get(0).ctx("upsert holidays")?,
                kind: r.try_get(1).ctx("upsert holidays")?,
            });
        }
    }
    tx.commit().await.ctx("commit holidays")?;
    Ok(changed)
}

pub(crate) async fn holidays(pool: &Pool<Db>) -> Result<Vec<HolidayRecord>, StoreError> {
    let rows = sqlx::query("SELECT date, kind FROM holidays ORDER BY date")
        .fetch_all(pool)
        .await
        .ctx("select holidays")?;
    rows.iter()
        .map(|r| {
            Ok(HolidayRecord {
                date: r.try_get(0)?,
                kind: r.try_get(1)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read holidays")
}

pub(crate) async fn verdicts(
    pool: &Pool<Db>,
    from: NaiveDate,
    to: NaiveDate,
    employee: Option<&str>,
) -> Result<Vec<StoredVerdict>, StoreError> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT employee_id, date, policy_id, policy_version, status, points, verdict, provisional, updated_at \
         FROM day_verdicts WHERE date >= ",
    );
    qb.push_bind(from).push(" AND date <= ").push_bind(to);
    if let Some(e) = employee {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    qb.push(" ORDER BY employee_id, date");
    let rows = qb.build().fetch_all(pool).await.ctx("select verdicts")?;
    rows.iter()
        .map(|r| {
            Ok(StoredVerdict {
                employee_id: r.try_get(0)?,
                date: r.try_get(1)?,
                policy_id: r.try_get(2)?,
                policy_version: r.try_get(3)?,
                status: r.try_get(4)?,
                points: r.try_get(5)?,
                verdict: r.try_get(6)?,
                provisional: r.try_get(7)?,
                updated_at: r.try_get(8)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read verdicts")
}

pub(crate) async fn verdict_meta(
    pool: &Pool<Db>,
    from: NaiveDate,
    to: NaiveDate,
    employee: Option<&str>,
) -> Result<Vec<VerdictMeta>, StoreError> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT employee_id, date, verdict_hash, provisional, policy_id, policy_version FROM day_verdicts WHERE date >= ",
    );
    qb.push_bind(from).push(" AND date <= ").push_bind(to);
    if let Some(e) = employee {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    let rows = qb.build().fetch_all(pool).await.ctx("select verdict hashes")?;
    rows.iter()
        .map(|r| {
            Ok(VerdictMeta {
                employee_id: r.try_get(0)?,
                date: r.try_get(1)?,
                hash: r.try_get(2)?,
                provisional: r.try_get(3)?,
                policy_id: r.try_get(4)?,
                policy_version: r.try_get(5)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read verdict hashes")
}

pub(crate) async fn ledger(
    pool: &Pool<Db>,
    from: NaiveDate,
    to: NaiveDate,
    employee: Option<&str>,
) -> Result<Vec<LedgerEntry>, StoreError> {
    ledger_rows(pool, from, to, employee, false).await
}

/// Ledger rows in a date range; only active device-derived ones when
/// `active_device_only` (what a recompute compares against).
pub(crate) async fn ledger_rows(
    pool: &Pool<Db>,
    from: NaiveDate,
    to: NaiveDate,
    employee: Option<&str>,
    active_device_only: bool,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT id, employee_id, date, category, rule, points, bonus, source, evidence, recorded_by, recorded_at, \
         voided_at, voided_by, void_cause FROM ledger WHERE date >= ",
    );
    qb.push_bind(from).push(" AND date <= ").push_bind(to);
    if let Some(e) = employee {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    if active_device_only {
        qb.push(" AND source = 'device' AND voided_at IS NULL");
    }
    qb.push(" ORDER BY employee_id, date, id");
    let rows = qb.build().fetch_all(pool).await.ctx("select ledger")?;
    rows.iter()
        .map(ledger_from_row)
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read ledger")
}

/// A ledger row selected as `id, employee_id, date, category, rule, points,
/// bonus, source, evidence, recorded_by, recorded_at, voided_at, voided_by,
/// void_cause`.
pub(crate) fn ledger_from_row(r: &<Db as sqlx::Database>::Row) -> Result<LedgerEntry, sqlx::Error> {
    Ok(LedgerEntry {
        id: r.try_get(0)?,
        employee_id: r.try_get(1)?,
        date: r.try_get(2)?,
        category: r.try_get(3)?,
        rule: r.try_get(4)?,
        points: r.try_get(5)?,
        bonus: r.try_get(6)?,
        source: r.try_get(7)?,
        evidence: r.try_get(8)?,
        recorded_by: r.try_get(9)?,
        recorded_at: r.try_get(10)?,
        voided_at: r.try_get(11)?,
        voided_by: r.try_get(12)?,
        void_cause: r.try_get(13)?,
    })
}

pub(super) async fn insert_audit(
    tx: &mut Tx,
    rows: &[(String, String, Option<String>, Option<String>)],
    cause: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(CHUNK) {
        let mut qb =
            QueryBuilder::<Db>::new("INSERT INTO audit (at, table_name, row_key, old_value, new_value, cause, actor) ");
        qb.push_values(chunk, |mut b, (table, key, old, new)| {
            b.push_bind(now)
                .push_bind(table.as_str())
                .push_bind(key.as_str())
                .push_bind(old.as_deref())
                .push_bind(new.as_deref())
                .push_bind(cause)
                .push_bind(actor);
        });
        qb.build().persistent(chunk.len() == CHUNK).execute(&mut **tx).await.ctx("insert audit")?;
    }
    Ok(())
}

pub(crate) async fn add_manual_entry(
    pool: &Pool<Db>,
    e: &NewManualEntry,
    cause: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let mut tx = begin(pool).await?;
    let id: i64 = sqlx::query(
        "INSERT INTO ledger (employee_id, date, category, rule, points, bonus, source, evidence, recorded_by, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'manual', $7, $8, $9) RETURNING id",
    )
    .bind(e.employee_id.as_str())
    .bind(e.date)
    .bind(e.category.as_str())
    .bind(e.rule.as_str())
    .bind(e.points)
    .bind(e.bonus)
    .bind(e.evidence.as_deref())
    .bind(e.recorded_by.as_str())
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .and_then(|r| r.try_get(0))
    .ctx("insert manual entry")?;
    let entry = LedgerEntry {
        id,
        employee_id: e.employee_id.clone(),
        date: e.date,
        category: e.category.clone(),
        rule: e.rule.clone(),
        points: e.points,
        bonus: e.bonus,
        source: "manual".into(),
        evidence: e.evidence.clone(),
        recorded_by: e.recorded_by.clone(),
        recorded_at: now,
        voided_at: None,
        voided_by: None,
        void_cause: None,
    };
    let json = serde_json::to_string(&entry).ok();
    insert_audit(&mut tx, &[("ledger".into(), id.to_string(), None, json)], cause, &e.recorded_by, now).await?;
    tx.commit().await.ctx("commit manual entry")?;
    Ok(id)
}

pub(crate) async fn publish_month(
    pool: &Pool<Db>,
    month: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = begin(pool).await?;
    let done = sqlx::query(
        "INSERT INTO published_months (month, published_at, published_by) VALUES ($1, $2, $3) \
         ON CONFLICT (month) DO NOTHING",
    )
    .bind(month)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await
    .ctx("publish month")?
    .rows_affected()
        == 1;
    if done {
        insert_audit(
            &mut tx,
            &[("published_months".into(), month.to_string(), None, Some(format!("{{\"month\":\"{month}\"}}")))],
            "publish",
            actor,
            now,
        )
        .await?;
    }
    tx.commit().await.ctx("commit publish")?;
    Ok(done)
}

pub(crate) async fn published_months(pool: &Pool<Db>) -> Result<Vec<String>, StoreError> {
    let rows = sqlx::query("SELECT month FROM published_months ORDER BY month")
        .fetch_all(pool)
        .await
        .ctx("select published months")?;
    rows.iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read published months")
}
