// The outbox's and day closes' SQL, shared by both engines like
// `backend.rs` (included after it, so it uses full paths instead of `use`
// lines that would clash with backend.rs's).

pub(super) async fn enqueue(
    pool: &Pool<Db>,
    msg: &super::outbox::NewMessage,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = begin(pool).await?;
    let id: Option<i64> = sqlx::query(
        "INSERT INTO outbox (key, kind, payload, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key) DO NOTHING RETURNING id",
    )
    .bind(msg.key.as_str())
    .bind(msg.kind.as_str())
    .bind(msg.payload.to_string())
    .bind(now)
    .fetch_optional(&mut *tx)
    .await
    .and_then(|r| r.map(|r| r.try_get(0)).transpose())
    .ctx("insert outbox")?;
    let Some(id) = id else {
        return Ok(false);
    };
    for sink in &msg.sinks {
        sqlx::query(
            "INSERT INTO outbox_deliveries (outbox_id, sink, attempts, next_attempt_at) VALUES ($1, $2, 0, $3)",
        )
        .bind(id)
        .bind(sink.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .ctx("insert outbox delivery")?;
    }
    tx.commit().await.ctx("commit outbox")?;
    Ok(true)
}

pub(super) async fn outbox_keys(
    pool: &Pool<Db>,
    prefix: &str,
) -> Result<std::collections::HashSet<String>, StoreError> {
    // A range instead of LIKE: exact (case-sensitive) and uses the index.
    let upper = format!("{prefix}\u{10FFFF}");
    let rows = sqlx::query("SELECT key FROM outbox WHERE key >= $1 AND key < $2")
        .bind(prefix)
        .bind(upper)
        .fetch_all(pool)
        .await
        .ctx("select outbox keys")?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read outbox keys")
}

pub(super) async fn outbox_due(
    pool: &Pool<Db>,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<super::outbox::Due>, StoreError> {
    let rows = sqlx::query(
        "SELECT d.outbox_id, d.sink, d.attempts, o.key, o.kind, o.payload FROM outbox_deliveries d \
         JOIN outbox o ON o.id = d.outbox_id \
         WHERE d.sent_at IS NULL AND d.next_attempt_at <= $1 \
         ORDER BY d.next_attempt_at, d.outbox_id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await
    .ctx("select due deliveries")?;
    rows.iter()
        .map(|r| {
            let payload: String = r.try_get(5)?;
            Ok(super::outbox::Due {
                outbox_id: r.try_get(0)?,
                sink: r.try_get(1)?,
                attempts: r.try_get::<i32, _>(2)? as u32,
                key: r.try_get(3)?,
                kind: r.try_get(4)?,
                payload: serde_json::from_str(&payload).unwrap_or(serde_json::Value::String(payload)),
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read due deliveries")
}

pub(super) async fn outbox_mark(
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

pub(super) async fn outbox_list(
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

pub(super) async fn day_close(
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

pub(super) async fn save_day_close(
    pool: &Pool<Db>,
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
    .execute(pool)
    .await
    .ctx("upsert day close")?;
    Ok(())
}

pub(super) async fn verdicts_changed_since(
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

pub(super) async fn devices_last_seen(
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

pub(super) async fn quarantine_since(
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

pub(super) async fn closed_dates(
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

pub(super) async fn add_quarantine_many(
    pool: &Pool<Db>,
    rows: &[NewQuarantine],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    // 5 columns: far under either engine's bound-parameter limit.
    for chunk in rows.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO quarantine (source, payload, payload_len, reason, received_at) ",
        );
        qb.push_values(chunk, |mut b, q| {
            b.push_bind(q.source.as_str())
                .push_bind(&q.payload[..q.payload.len().min(QUARANTINE_MAX_BYTES)])
                .push_bind(q.payload.len() as i64)
                .push_bind(q.reason.as_str())
                .push_bind(now);
        });
        qb.build()
            .execute(&mut *tx)
            .await
            .ctx("insert quarantine")?;
    }
    tx.commit().await.ctx("commit quarantine")?;
    Ok(())
}

pub(super) async fn set_adjustment_status(
    pool: &Pool<Db>,
    id: i64,
    status: &str,
    actor: &str,
    cause: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    sqlx::query("UPDATE adjustments SET status = $2 WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .bind(status)
        .execute(&mut *tx)
        .await
        .ctx("update adjustment")?;
    sqlx::query(
        "INSERT INTO audit (at, table_name, row_key, old_value, new_value, cause, actor) \
         VALUES ($1, 'adjustments', $2, 'pending', $3, $4, $5)",
    )
    .bind(now)
    .bind(id.to_string())
    .bind(status)
    .bind(cause)
    .bind(actor)
    .execute(&mut *tx)
    .await
    .ctx("audit adjustment")?;
    tx.commit().await.ctx("commit adjustment")?;
    Ok(())
}
