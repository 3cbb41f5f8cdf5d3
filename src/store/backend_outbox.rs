// The outbox's and day closes' SQL, shared by both engines like
// `backend.rs` (a module of each engine beside it).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Pool, QueryBuilder, Row};

use super::queries::{CHUNK, Tx, begin};
use super::{Db, NewQuarantine, QUARANTINE_MAX_BYTES, QueryContext, StoreError};

pub(crate) async fn enqueue(
    pool: &Pool<Db>,
    msg: &super::outbox::NewMessage,
    close: Option<(&super::outbox::DayClose, &str)>,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = begin(pool).await?;
    let new = enqueue_tx(&mut tx, msg, now).await?;
    // A day's close record is saved with its summary message, in the same
    // transaction: a crash cannot record a summary as published that was
    // not queued, nor queue one twice.
    if let Some((c, summary)) = close {
        save_day_close_tx(&mut tx, c, summary).await?;
    }
    tx.commit().await.ctx("commit outbox")?;
    Ok(new)
}

pub(crate) async fn enqueue_many(
    pool: &Pool<Db>,
    msgs: &[super::outbox::NewMessage],
    now: DateTime<Utc>,
) -> Result<Vec<bool>, StoreError> {
    let mut tx = begin(pool).await?;
    let mut out = Vec::with_capacity(msgs.len());
    for m in msgs {
        out.push(enqueue_tx(&mut tx, m, now).await?);
    }
    tx.commit().await.ctx("commit outbox")?;
    Ok(out)
}

async fn enqueue_tx(
    tx: &mut Tx,
    msg: &super::outbox::NewMessage,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let id: Option<i64> = sqlx::query(
        "INSERT INTO outbox (key, kind, payload, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO NOTHING RETURNING id",
    )
    .bind(msg.key.as_str())
    .bind(msg.kind.as_str())
    .bind(msg.payload.to_string())
    .bind(now)
    .fetch_optional(&mut **tx)
    .await
    .and_then(|r| r.map(|r| r.try_get(0)).transpose())
    .ctx("insert outbox")?;
    if let Some(id) = id {
        for sink in &msg.sinks {
            sqlx::query(
                "INSERT INTO outbox_deliveries (outbox_id, sink, attempts, next_attempt_at) VALUES ($1, $2, 0, $3)",
            )
            .bind(id)
            .bind(sink.as_str())
            .bind(now)
            .execute(&mut **tx)
            .await
            .ctx("insert outbox delivery")?;
        }
    }
    Ok(id.is_some())
}

pub(crate) async fn outbox_keys(
    pool: &Pool<Db>,
    keys: &[String],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let mut found = std::collections::HashSet::new();
    for chunk in keys.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new("SELECT key FROM outbox WHERE key IN (");
        let mut sep = qb.separated(", ");
        for k in chunk {
            sep.push_bind(k.as_str());
        }
        qb.push(")");
        for r in qb.build().persistent(chunk.len() == CHUNK).fetch_all(pool).await.ctx("select outbox keys")? {
            found.insert(r.try_get::<String, _>(0).ctx("read outbox keys")?);
        }
    }
    Ok(found)
}

pub(crate) async fn outbox_claim(
    pool: &Pool<Db>,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<super::outbox::Due>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.outbox_id, d.sink, d.attempts, o.key, o.kind, o.payload, d.next_attempt_at \
         FROM outbox_deliveries d JOIN outbox o ON o.id = d.outbox_id \
         WHERE d.sent_at IS NULL AND d.next_attempt_at <= $1 \
         ORDER BY d.next_attempt_at, d.outbox_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
    .ctx("select due deliveries")?;
    // Claim each row by moving its next attempt to the end of a lease,
    // compare-and-set on the value read: of several instances sharing the
    // store, one wins each delivery; if it dies, the lease runs out and
    // another retries.
    let mut claimed = Vec::with_capacity(rows.len());
    let mut tx = begin(pool).await?;
    for r in &rows {
        let due = (|| {
            let payload: String = r.try_get(5)?;
            Ok::<_, sqlx::Error>((
                super::outbox::Due {
                    outbox_id: r.try_get(0)?,
                    sink: r.try_get(1)?,
                    attempts: r.try_get::<i32, _>(2)? as u32,
                    key: r.try_get(3)?,
                    kind: r.try_get(4)?,
                    payload: serde_json::from_str(&payload)
                        .unwrap_or(serde_json::Value::String(payload)),
                },
                r.try_get::<DateTime<Utc>, _>(6)?,
            ))
        })()
        .ctx("read due deliveries")?;
        let won = sqlx::query(
            "UPDATE outbox_deliveries SET next_attempt_at = $1 \
             WHERE outbox_id = $2 AND sink = $3 AND sent_at IS NULL AND next_attempt_at = $4",
        )
        .bind(lease_until)
        .bind(due.0.outbox_id)
        .bind(due.0.sink.as_str())
        .bind(due.1)
        .execute(&mut *tx)
        .await
        .ctx("claim delivery")?
        .rows_affected()
            == 1;
        if won {
            claimed.push(due.0);
        }
    }
    tx.commit().await.ctx("commit claims")?;
    Ok(claimed)
}

pub(crate) async fn outbox_mark(
    pool: &Pool<Db>,
    outbox_id: i64,
    sink: &str,
    outcome: Result<DateTime<Utc>, (DateTime<Utc>, &str)>,
) -> Result<(), StoreError> {
    let q = match outcome {
        Ok(sent_at) => sqlx::query(
            "UPDATE outbox_deliveries SET sent_at = $3, attempts = attempts + 1, last_error = NULL \
             WHERE outbox_id = $1 AND sink = $2",
        )
        .bind(outbox_id)
        .bind(sink)
        .bind(sent_at),
        Err((next, why)) => sqlx::query(
            "UPDATE outbox_deliveries SET next_attempt_at = $3, attempts = attempts + 1, last_error = $4 \
             WHERE outbox_id = $1 AND sink = $2",
        )
        .bind(outbox_id)
        .bind(sink)
        .bind(next)
        .bind(why.to_string()),
    };
    q.execute(pool).await.ctx("update outbox delivery")?;
    Ok(())
}

pub(crate) async fn outbox_pending(pool: &Pool<Db>) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT sink, COUNT(*) FROM outbox_deliveries WHERE sent_at IS NULL GROUP BY sink ORDER BY sink",
    )
    .fetch_all(pool)
    .await
    .ctx("count pending outbox deliveries")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .ctx("read pending outbox deliveries")
}

pub(crate) async fn outbox_list(
    pool: &Pool<Db>,
    kind: Option<&str>,
    limit: i64,
) -> Result<Vec<super::outbox::OutboxRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT o.id, o.key, o.kind, o.payload, o.created_at, \
         (SELECT COUNT(*) FROM outbox_deliveries d WHERE d.outbox_id = o.id) AS sinks, \
         (SELECT COUNT(*) FROM outbox_deliveries d WHERE d.outbox_id = o.id AND d.sent_at IS NOT NULL) AS sent, \
         (SELECT MAX(d.last_error) FROM outbox_deliveries d WHERE d.outbox_id = o.id AND d.sent_at IS NULL) AS last_error \
         FROM outbox o WHERE ($1 IS NULL OR o.kind = $1) ORDER BY o.id DESC LIMIT $2",
    )
    .bind(kind)
    .bind(limit)
    .fetch_all(pool)
    .await
    .ctx("select outbox")?;
    rows.iter()
        .map(|r| {
            let payload: String = r.try_get(3)?;
            Ok(super::outbox::OutboxRow {
                id: r.try_get(0)?,
                key: r.try_get(1)?,
                kind: r.try_get(2)?,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
                created_at: r.try_get(4)?,
                sinks: r.try_get(5)?,
                sent: r.try_get(6)?,
                last_error: r.try_get(7)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read outbox")
}

pub(crate) async fn day_close(
    pool: &Pool<Db>,
    date: NaiveDate,
) -> Result<Option<super::outbox::DayClose>, StoreError> {
    let row = sqlx::query(
        "SELECT revision, summary_hash, closed_at, updated_at FROM day_closes WHERE date = $1",
    )
    .bind(date)
    .fetch_optional(pool)
    .await
    .ctx("select day close")?;
    row.map(|r| {
        Ok(super::outbox::DayClose {
            date,
            revision: r.try_get::<i32, _>(0)? as u32,
            summary_hash: r.try_get(1)?,
            closed_at: r.try_get(2)?,
            updated_at: r.try_get(3)?,
        })
    })
    .transpose()
    .ctx("read day close")
}

pub(crate) async fn save_day_close(
    pool: &Pool<Db>,
    c: &super::outbox::DayClose,
    summary: Option<&str>,
) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    match summary {
        Some(s) => save_day_close_tx(&mut tx, c, s).await?,
        // Only the check time moves; the published summary stays.
        None => {
            sqlx::query("UPDATE day_closes SET updated_at = $2 WHERE date = $1")
                .bind(c.date)
                .bind(c.updated_at)
                .execute(&mut *tx)
                .await
                .ctx("touch day close")?;
        }
    }
    tx.commit().await.ctx("commit day close")?;
    Ok(())
}

async fn save_day_close_tx(
    tx: &mut Tx,
    c: &super::outbox::DayClose,
    summary: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO day_closes (date, revision, summary, summary_hash, closed_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (date) DO UPDATE SET revision = excluded.revision, \
         summary = excluded.summary, summary_hash = excluded.summary_hash, updated_at = excluded.updated_at",
    )
    .bind(c.date)
    .bind(c.revision as i32)
    .bind(summary)
    .bind(c.summary_hash.as_str())
    .bind(c.closed_at)
    .bind(c.updated_at)
    .execute(&mut **tx)
    .await
    .ctx("upsert day close")?;
    Ok(())
}

pub(crate) async fn verdicts_changed_since(
    pool: &Pool<Db>,
    date: NaiveDate,
    since: DateTime<Utc>,
) -> Result<i64, StoreError> {
    sqlx::query("SELECT COUNT(*) FROM day_verdicts WHERE date = $1 AND updated_at > $2")
        .bind(date)
        .bind(since)
        .fetch_one(pool)
        .await
        .and_then(|r| r.try_get(0))
        .ctx("count changed verdicts")
}

pub(crate) async fn devices_last_seen(
    pool: &Pool<Db>,
    since: DateTime<Utc>,
) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
    let rows = sqlx::query(
        "SELECT device_id, MAX(received_at) FROM punches WHERE time >= $1 AND device_id IS NOT NULL GROUP BY device_id",
    )
    .bind(since)
    .fetch_all(pool)
    .await
    .ctx("select devices last seen")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read devices last seen")
}

pub(crate) async fn quarantine_since(
    pool: &Pool<Db>,
    since: DateTime<Utc>,
) -> Result<i64, StoreError> {
    sqlx::query("SELECT COUNT(*) FROM quarantine WHERE received_at >= $1")
        .bind(since)
        .fetch_one(pool)
        .await
        .and_then(|r| r.try_get(0))
        .ctx("count quarantine")
}

pub(crate) async fn closed_dates(
    pool: &Pool<Db>,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<NaiveDate>, StoreError> {
    let rows = sqlx::query("SELECT date FROM day_closes WHERE date >= $1 AND date <= $2")
        .bind(from)
        .bind(to)
        .fetch_all(pool)
        .await
        .ctx("select closed dates")?;
    rows.iter()
        .map(|r| r.try_get::<NaiveDate, _>(0))
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read closed dates")
}

pub(crate) async fn add_quarantine_many(
    pool: &Pool<Db>,
    rows: &[NewQuarantine],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    add_quarantine_in(&mut tx, rows, now).await?;
    tx.commit().await.ctx("commit quarantine")?;
    Ok(())
}

/// Inserts quarantine rows inside the caller's transaction.
pub(crate) async fn add_quarantine_in(
    tx: &mut Tx,
    rows: &[NewQuarantine],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // 12 columns: far under either engine's bound-parameter limit.
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO quarantine (source, payload, payload_len, reason, received_at, kind, \
             pipeline_source, topic, decoder, decoder_options, device_id, timezone) ",
        );
        qb.push_values(chunk, |mut b, q| {
            let r = q.replay.as_ref();
            b.push_bind(q.source.as_str())
                .push_bind(&q.payload[..q.payload.len().min(QUARANTINE_MAX_BYTES)])
                .push_bind(q.payload.len() as i64)
                .push_bind(q.reason.as_str())
                .push_bind(q.received_at.unwrap_or(now))
                .push_bind(q.kind.as_str())
                .push_bind(r.map(|r| r.pipeline_source.as_str()))
                .push_bind(r.and_then(|r| r.topic.as_deref()))
                .push_bind(r.map(|r| r.decoder.as_str()))
                .push_bind(r.map(|r| r.decoder_options.as_str()))
                .push_bind(r.and_then(|r| r.device_id.as_deref()))
                .push_bind(r.map(|r| r.timezone.as_str()));
        });
        qb.build().persistent(chunk.len() == CHUNK)
            .execute(&mut **tx)
            .await
            .ctx("insert quarantine")?;
    }
    Ok(())
}

pub(crate) async fn set_adjustment_status(
    pool: &Pool<Db>,
    id: i64,
    from: &str,
    status: &str,
    actor: &str,
    cause: &str,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = begin(pool).await?;
    let n = sqlx::query("UPDATE adjustments SET status = $2 WHERE id = $1 AND status = $3")
        .bind(id)
        .bind(status)
        .bind(from)
        .execute(&mut *tx)
        .await
        .ctx("update adjustment")?
        .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO audit (at, table_name, row_key, old_value, new_value, cause, actor) \
         VALUES ($1, 'adjustments', $2, $6, $3, $4, $5)",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(status)
    .bind(cause)
    .bind(actor)
    .bind(from)
    .execute(&mut *tx)
    .await
    .ctx("audit adjustment")?;
    tx.commit().await.ctx("commit adjustment")?;
    Ok(true)
}

/// Rewrites the probe row in a write transaction: fails as any write would.
pub(crate) async fn probe_write(pool: &Pool<Db>, now: DateTime<Utc>) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    sqlx::query(
        "INSERT INTO store_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
    )
    .bind(now)
    .execute(&mut *tx)
    .await
    .ctx("write probe")?;
    tx.commit().await.ctx("commit probe")
}

pub(crate) async fn set_supervisor_contacts(
    pool: &Pool<Db>,
    rows: &[(String, Option<String>)],
) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    for (employee, contact) in rows {
        sqlx::query("UPDATE employees SET supervisor_contact = $2 WHERE employee_id = $1")
            .bind(employee.as_str())
            .bind(contact.as_deref())
            .execute(&mut *tx)
            .await
            .ctx("update supervisor contact")?;
    }
    tx.commit().await.ctx("commit supervisor contacts")
}

pub(crate) async fn supervisor_contacts(
    pool: &Pool<Db>,
) -> Result<std::collections::HashMap<String, String>, StoreError> {
    let rows = sqlx::query(
        "SELECT employee_id, supervisor_contact FROM employees WHERE supervisor_contact IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .ctx("select supervisor contacts")?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read supervisor contacts")
}

pub(crate) async fn outbox_defer(
    pool: &Pool<Db>,
    outbox_id: i64,
    sink: &str,
    next: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE outbox_deliveries SET next_attempt_at = $3 \
         WHERE outbox_id = $1 AND sink = $2 AND sent_at IS NULL",
    )
    .bind(outbox_id)
    .bind(sink)
    .bind(next)
    .execute(pool)
    .await
    .ctx("defer outbox delivery")?;
    Ok(())
}

pub(crate) async fn outbox_sent_since(
    pool: &Pool<Db>,
    sink: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    let rows = sqlx::query(
        "SELECT DISTINCT sent_at FROM outbox_deliveries \
         WHERE sink = $1 AND sent_at IS NOT NULL AND sent_at >= $2 ORDER BY sent_at",
    )
    .bind(sink)
    .bind(since)
    .fetch_all(pool)
    .await
    .ctx("select recent deliveries")?;
    rows.iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read recent deliveries")
}
