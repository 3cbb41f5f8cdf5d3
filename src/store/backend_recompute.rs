// What a recompute writes (verdicts, ledger, adjustments, audit) and the
// adjustments and audit rows it leaves for HR. A module of
// `backend_sqlite.rs` and of `backend_pg.rs`, like `backend.rs`.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{Pool, QueryBuilder, Row};

use super::Db;
use super::queries::{CHUNK, Tx, begin, insert_audit};

use super::recompute::{Change, ChangeKind};
use super::{Adjustment, AuditRow, LedgerEntry, QueryContext, StoreError};

pub(crate) async fn adjustments(pool: &Pool<Db>, pending_only: bool) -> Result<Vec<Adjustment>, StoreError> {
    let sql = if pending_only {
        "SELECT id, employee_id, date, old_verdict, new_verdict, status, cause, actor, created_at FROM adjustments \
         WHERE status = 'pending' ORDER BY id DESC"
    } else {
        "SELECT id, employee_id, date, old_verdict, new_verdict, status, cause, actor, created_at FROM adjustments \
         ORDER BY id DESC"
    };
    let rows = sqlx::query(sql).fetch_all(pool).await.ctx("select adjustments")?;
    rows.iter()
        .map(|r| {
            Ok(Adjustment {
                id: r.try_get(0)?,
                employee_id: r.try_get(1)?,
                date: r.try_get(2)?,
                old_verdict: r.try_get(3)?,
                new_verdict: r.try_get(4)?,
                status: r.try_get(5)?,
                cause: r.try_get(6)?,
                actor: r.try_get(7)?,
                created_at: r.try_get(8)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read adjustments")
}

pub(crate) async fn audit(pool: &Pool<Db>, table: Option<&str>) -> Result<Vec<AuditRow>, StoreError> {
    let mut qb =
        QueryBuilder::<Db>::new("SELECT id, at, table_name, row_key, old_value, new_value, cause, actor FROM audit");
    if let Some(t) = table {
        qb.push(" WHERE table_name = ").push_bind(t);
    }
    qb.push(" ORDER BY id");
    let rows = qb.build().fetch_all(pool).await.ctx("select audit")?;
    rows.iter()
        .map(|r| {
            Ok(AuditRow {
                id: r.try_get(0)?,
                at: r.try_get(1)?,
                table_name: r.try_get(2)?,
                row_key: r.try_get(3)?,
                old_value: r.try_get(4)?,
                new_value: r.try_get(5)?,
                cause: r.try_get(6)?,
                actor: r.try_get(7)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read audit")
}

/// Writes the outcome of a recompute in one transaction: verdict rows,
/// ledger voids and additions, adjustments for published months, and the
/// audit rows for every change. Returns the number of adjustments written
/// (an identical pending adjustment is not written twice).
pub(crate) async fn apply_changes(
    pool: &Pool<Db>,
    changes: &[Change],
    policy_id: &str,
    policy_version: &str,
    cause: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let mut tx = begin(pool).await?;
    let mut audit: Vec<(String, String, Option<String>, Option<String>)> = Vec::new();

    // The texts being replaced, for the audit trail and adjustments (the
    // comparison itself used hashes).
    let mut olds: HashMap<usize, String> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        if matches!(c.kind, ChangeKind::Update | ChangeKind::Adjust)
            && let Some(r) = sqlx::query("SELECT verdict FROM day_verdicts WHERE employee_id = $1 AND date = $2")
                .bind(c.employee_id.as_str())
                .bind(c.date)
                .fetch_optional(&mut *tx)
                .await
                .ctx("select replaced verdict")?
        {
            olds.insert(i, r.try_get(0).ctx("read replaced verdict")?);
        }
    }

    // Verdict rows.
    let rows: Vec<&Change> = changes.iter().filter(|c| c.kind != ChangeKind::Adjust).collect();
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO day_verdicts (employee_id, date, policy_id, policy_version, status, points, verdict, verdict_hash, provisional, updated_at) ",
        );
        qb.push_values(chunk, |mut b, c| {
            b.push_bind(c.employee_id.as_str())
                .push_bind(c.date)
                .push_bind(policy_id)
                .push_bind(policy_version)
                .push_bind(c.status)
                .push_bind(c.points)
                .push_bind(c.verdict.as_str())
                .push_bind(c.hash)
                .push_bind(c.provisional)
                .push_bind(now);
        });
        qb.push(
            " ON CONFLICT (employee_id, date) DO UPDATE SET policy_id = excluded.policy_id, \
             policy_version = excluded.policy_version, status = excluded.status, points = excluded.points, \
             verdict = excluded.verdict, verdict_hash = excluded.verdict_hash, provisional = excluded.provisional, updated_at = excluded.updated_at",
        );
        qb.build().persistent(chunk.len() == CHUNK).execute(&mut *tx).await.ctx("upsert verdicts")?;
    }
    let dates: std::collections::BTreeSet<String> = rows.iter().map(|c| super::queries::revision_key(c.date)).collect();
    super::queries::raise_revisions(&mut tx, &dates).await?;
    for (i, c) in changes.iter().enumerate().filter(|(_, c)| c.kind == ChangeKind::Update) {
        audit.push((
            "day_verdicts".into(),
            format!("{}/{}", c.employee_id, c.date),
            olds.get(&i).cloned(),
            Some(c.verdict.clone()),
        ));
    }

    // Ledger: void what the new verdict no longer says.
    for c in changes.iter().filter(|c| c.kind != ChangeKind::Adjust) {
        for old in &c.void {
            sqlx::query(
                "UPDATE ledger SET voided_at = $1, voided_by = $2, void_cause = $3 WHERE id = $4 AND voided_at IS NULL",
            )
            .bind(now)
            .bind(actor)
            .bind(cause)
            .bind(old.id)
            .execute(&mut *tx)
            .await
            .ctx("void ledger entry")?;
            let mut new = old.clone();
            new.voided_at = Some(now);
            new.voided_by = Some(actor.to_string());
            new.void_cause = Some(cause.to_string());
            audit.push((
                "ledger".into(),
                old.id.to_string(),
                serde_json::to_string(old).ok(),
                serde_json::to_string(&new).ok(),
            ));
        }
    }

    add_ledger(&mut tx, changes, actor, now, &mut audit).await?;

    let adjusted = add_adjustments(&mut tx, changes, &olds, cause, actor, now, &mut audit).await?;

    insert_audit(&mut tx, &audit, cause, actor, now).await?;
    tx.commit().await.ctx("commit recompute")?;
    Ok(adjusted)
}

/// The ledger entries of a recompute's new verdicts, with their audit rows
/// (part of [`apply_changes`]'s transaction).
async fn add_ledger(
    tx: &mut Tx,
    changes: &[Change],
    actor: &str,
    now: DateTime<Utc>,
    audit: &mut Vec<(String, String, Option<String>, Option<String>)>,
) -> Result<(), StoreError> {
    // Ledger: add what it says now. A first classification adds its
    // entries in bulk; a change adds them one by one to audit each id.
    let creates: Vec<(&Change, &super::recompute::NewDeduction)> = changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Create)
        .flat_map(|c| c.add.iter().map(move |d| (c, d)))
        .collect();
    for chunk in creates.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO ledger (employee_id, date, category, rule, points, bonus, source, evidence, recorded_by, recorded_at) ",
        );
        qb.push_values(chunk, |mut b, (c, d)| {
            b.push_bind(c.employee_id.as_str())
                .push_bind(c.date)
                .push_bind(d.category.as_str())
                .push_bind(d.rule.as_str())
                .push_bind(d.points)
                .push_bind(false)
                .push_bind("device")
                .push_bind(d.evidence.as_str())
                .push_bind(actor)
                .push_bind(now);
        });
        qb.build().persistent(chunk.len() == CHUNK).execute(&mut **tx).await.ctx("insert ledger entries")?;
    }
    for c in changes.iter().filter(|c| c.kind == ChangeKind::Update) {
        for d in &c.add {
            let id: i64 = sqlx::query(
                "INSERT INTO ledger (employee_id, date, category, rule, points, bonus, source, evidence, recorded_by, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'device', $7, $8, $9) RETURNING id",
            )
            .bind(c.employee_id.as_str())
            .bind(c.date)
            .bind(d.category.as_str())
            .bind(d.rule.as_str())
            .bind(d.points)
            .bind(false)
            .bind(d.evidence.as_str())
            .bind(actor)
            .bind(now)
            .fetch_one(&mut **tx)
            .await
            .and_then(|r| r.try_get(0))
            .ctx("insert ledger entry")?;
            let entry = LedgerEntry {
                id,
                employee_id: c.employee_id.clone(),
                date: c.date,
                category: d.category.clone(),
                rule: d.rule.clone(),
                points: d.points,
                bonus: false,
                source: "device".into(),
                evidence: Some(d.evidence.clone()),
                recorded_by: actor.to_string(),
                recorded_at: now,
                voided_at: None,
                voided_by: None,
                void_cause: None,
            };
            audit.push(("ledger".into(), id.to_string(), None, serde_json::to_string(&entry).ok()));
        }
    }
    Ok(())
}

/// The adjustments of a recompute's changes to published months, with
/// their audit rows (part of [`apply_changes`]'s transaction). Returns
/// how many were written.
async fn add_adjustments(
    tx: &mut Tx,
    changes: &[Change],
    olds: &HashMap<usize, String>,
    cause: &str,
    actor: &str,
    now: DateTime<Utc>,
    audit: &mut Vec<(String, String, Option<String>, Option<String>)>,
) -> Result<usize, StoreError> {
    // Published months: the new verdict waits for HR as an adjustment.
    let mut adjusted = 0;
    for (i, c) in changes.iter().enumerate().filter(|(_, c)| c.kind == ChangeKind::Adjust) {
        let pending = sqlx::query(
            "SELECT id, new_verdict FROM adjustments WHERE employee_id = $1 AND date = $2 AND status = 'pending'",
        )
        .bind(c.employee_id.as_str())
        .bind(c.date)
        .fetch_all(&mut **tx)
        .await
        .ctx("select pending adjustments")?;
        let mut same = false;
        for r in &pending {
            let id: i64 = r.try_get(0).ctx("read adjustment")?;
            let v: String = r.try_get(1).ctx("read adjustment")?;
            if v == c.verdict {
                same = true;
            } else {
                sqlx::query("UPDATE adjustments SET status = 'superseded' WHERE id = $1")
                    .bind(id)
                    .execute(&mut **tx)
                    .await
                    .ctx("supersede adjustment")?;
            }
        }
        if same {
            continue;
        }
        let id: i64 = sqlx::query(
            "INSERT INTO adjustments (employee_id, date, old_verdict, new_verdict, status, cause, actor, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7) RETURNING id",
        )
        .bind(c.employee_id.as_str())
        .bind(c.date)
        .bind(olds.get(&i).map(String::as_str))
        .bind(c.verdict.as_str())
        .bind(cause)
        .bind(actor)
        .bind(now)
        .fetch_one(&mut **tx)
        .await
        .and_then(|r| r.try_get(0))
        .ctx("insert adjustment")?;
        audit.push((
            "adjustments".into(),
            format!("{id}:{}/{}", c.employee_id, c.date),
            olds.get(&i).cloned(),
            Some(c.verdict.clone()),
        ));
        adjusted += 1;
    }
    Ok(adjusted)
}

/// The recorded input fingerprints of the range `[from, to]`:
/// `(employee, fingerprint, verdicts)` (see `store::unchanged`).
pub(crate) async fn input_fingerprints(
    pool: &Pool<Db>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Vec<(String, i64, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT employee_id, fingerprint, days FROM recompute_inputs WHERE from_date = $1 AND to_date = $2",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await
    .ctx("select input fingerprints")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get::<i32, _>(2)? as i64)))
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read input fingerprints")
}

/// Records input fingerprints of `[from, to]` and deletes those of ranges
/// that ended before `prune_before`, in one transaction.
pub(crate) async fn record_fingerprints(
    pool: &Pool<Db>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    rows: &[(String, i64, i64)],
    prune_before: chrono::NaiveDate,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    sqlx::query("DELETE FROM recompute_inputs WHERE to_date < $1")
        .bind(prune_before)
        .execute(&mut *tx)
        .await
        .ctx("prune input fingerprints")?;
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO recompute_inputs (employee_id, from_date, to_date, fingerprint, days, recorded_at) ",
        );
        qb.push_values(chunk, |mut b, (e, f, n)| {
            b.push_bind(e.as_str())
                .push_bind(from)
                .push_bind(to)
                .push_bind(*f)
                .push_bind(i32::try_from(*n).unwrap_or(i32::MAX))
                .push_bind(now);
        });
        qb.push(
            " ON CONFLICT (employee_id, from_date, to_date) DO UPDATE SET fingerprint = excluded.fingerprint, \
             days = excluded.days, recorded_at = excluded.recorded_at",
        );
        qb.build().persistent(chunk.len() == CHUNK).execute(&mut *tx).await.ctx("record input fingerprints")?;
    }
    tx.commit().await.ctx("commit input fingerprints")
}

/// Per employee, the number of verdicts of `[from, to]` that are final
/// and made under the policy version given.
pub(crate) async fn settled_counts(
    pool: &Pool<Db>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    policy_id: &str,
    policy_version: &str,
    employee: Option<&str>,
) -> Result<Vec<(String, i64)>, StoreError> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT employee_id, COUNT(*) FROM day_verdicts WHERE date >= ",
    );
    qb.push_bind(from)
        .push(" AND date <= ")
        .push_bind(to)
        .push(" AND provisional = ")
        .push_bind(false)
        .push(" AND policy_id = ")
        .push_bind(policy_id)
        .push(" AND policy_version = ")
        .push_bind(policy_version);
    if let Some(e) = employee {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    qb.push(" GROUP BY employee_id");
    let rows = qb
        .build()
        .fetch_all(pool)
    .await
    .ctx("count settled verdicts")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read settled verdicts")
}

/// Per employee with punches within `lo..hi`: the number of those punches
/// and their highest id, and the number and highest id of their supersedes
/// (see `Store::raw_punch_stats`).
pub(crate) async fn punch_stats(
    pool: &Pool<Db>,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    employee: Option<&str>,
) -> Result<Vec<(String, super::inputs::PunchStats)>, StoreError> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT p.employee_id, COUNT(*), MAX(p.id), COUNT(s.id), COALESCE(MAX(s.id), 0) \
         FROM punches p LEFT JOIN punch_supersedes s ON s.punch_id = p.id WHERE p.time >= ",
    );
    qb.push_bind(lo).push(" AND p.time < ").push_bind(hi);
    if let Some(e) = employee {
        qb.push(" AND p.employee_id = ").push_bind(e);
    }
    qb.push(" GROUP BY p.employee_id");
    let rows = qb.build().fetch_all(pool).await.ctx("count punches per employee")?;
    rows.iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                super::inputs::PunchStats(r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read punches per employee")
}
