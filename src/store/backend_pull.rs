// Pull sources' cursors, shared by both engines (included after
// `backend.rs`, whose `begin`, `CHUNK` and imports it uses).

/// Stores `rows` (keys in `keys`, as [`insert_punches`]) and the cursor of
/// `(source, device)` in one transaction: the cursor never runs ahead of
/// the punches it covers, nor behind them.
pub(super) async fn insert_punches_cursor(
    pool: &Pool<Db>,
    rows: &[NewPunch],
    keys: &[String],
    cursor: (&str, &str, &str),
    now: DateTime<Utc>,
) -> Result<Vec<Inserted>, StoreError> {
    let mut out = vec![Inserted::Duplicate; rows.len()];
    let mut first: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut todo: Vec<usize> = Vec::with_capacity(rows.len());
    for (i, k) in keys.iter().enumerate() {
        if let std::collections::hash_map::Entry::Vacant(v) = first.entry(k.as_str()) {
            v.insert(i);
            todo.push(i);
        }
    }
    let mut tx = begin(pool).await?;
    for chunk in todo.chunks(CHUNK) {
        let mut qb = QueryBuilder::<Db>::new(
            "INSERT INTO punches (employee_id, time, device_id, source, event_id, identity, raw, received_at, dedupe_key) ",
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
                .push_bind(keys[i].as_str());
        });
        qb.push(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING id, dedupe_key");
        let got = qb.build().fetch_all(&mut *tx).await.ctx("insert punches")?;
        for r in got {
            let id: i64 = r.try_get(0).ctx("insert punches")?;
            let key: String = r.try_get(1).ctx("insert punches")?;
            if let Some(&i) = first.get(key.as_str()) {
                out[i] = Inserted::New(id);
            }
        }
    }
    let (source, device, value) = cursor;
    sqlx::query(
        "INSERT INTO pull_cursors (source, device_id, cursor, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (source, device_id) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at",
    )
    .bind(source)
    .bind(device)
    .bind(value)
    .bind(now)
    .execute(&mut *tx)
    .await
    .ctx("save pull cursor")?;
    tx.commit().await.ctx("commit punches and pull cursor")?;
    Ok(out)
}

pub(super) async fn pull_cursor(
    pool: &Pool<Db>,
    source: &str,
    device: &str,
) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar::<_, String>(
        "SELECT cursor FROM pull_cursors WHERE source = $1 AND device_id = $2",
    )
    .bind(source)
    .bind(device)
    .fetch_optional(pool)
    .await
    .ctx("select pull cursor")
}
