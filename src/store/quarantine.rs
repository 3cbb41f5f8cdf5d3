//! Quarantine rows beyond insertion: paging in SQL, what a replay reads
//! and marks, pruning of undecodable payloads, and punch supersedes.
//!
//! A quarantine row is one of three kinds ([`QuarantineKind`]): a payload
//! that could not be decoded (pruned after `[store]
//! quarantine_retention_days`), a punch for an employee or alias nobody
//! holds (a punch: never pruned here, kept as long as punches), or the
//! summary of an upload's bad records beyond the first 100. A replay marks
//! a row resolved once what it held is stored, in the same transaction as
//! its audit row, so a second replay skips it.
//!
//! A supersede takes a stored punch out of classification (punches are
//! append-only and never edited); it is itself append-only and audited.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;

use super::{QuarantineRow, QueryContext, Store, StoreError};

/// What kind of quarantine row it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuarantineKind {
    /// Bytes a decoder could not read: pruned after the retention.
    #[default]
    Undecodable,
    /// A punch for an employee id or alias nobody holds: a punch, kept as
    /// long as punches, replayable once HR imports the person.
    Unknown,
    /// How many bad records of one upload were not kept individually.
    Summary,
}

impl QuarantineKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuarantineKind::Undecodable => "undecodable",
            QuarantineKind::Unknown => "unknown",
            QuarantineKind::Summary => "summary",
        }
    }

    fn parse(s: &str) -> QuarantineKind {
        match s {
            "unknown" => QuarantineKind::Unknown,
            "summary" => QuarantineKind::Summary,
            _ => QuarantineKind::Undecodable,
        }
    }
}

/// What a replay needs to decode a quarantined payload again.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReplayInfo {
    /// The pipeline source that received it, e.g. `mqtt[0]`,
    /// `zk_push[0]:CQZ7231460021`.
    pub pipeline_source: String,
    /// The MQTT topic, when it came over MQTT.
    pub topic: Option<String>,
    /// The decoder name.
    pub decoder: String,
    /// The decoder's options as a JSON object (empty: defaults).
    pub decoder_options: String,
    /// The device id the source knew.
    pub device_id: Option<String>,
    /// The IANA zone it was decoded in.
    pub timezone: String,
}

/// What `supersede_punches` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SupersedeReport {
    /// Punches superseded now: (id, employee, time).
    pub superseded: Vec<(i64, String, DateTime<Utc>)>,
    /// Punches in the range that were superseded before.
    pub already: usize,
}

const COLUMNS: &str = "id, source, payload, payload_len, reason, received_at, kind, pipeline_source, \
     topic, decoder, decoder_options, device_id, timezone, resolved_at, resolved_by";

fn row<R: Row>(r: &R) -> Result<QuarantineRow, sqlx::Error>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    DateTime<Utc>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let decoder: Option<String> = r.try_get("decoder")?;
    let replay = match (r.try_get::<Option<String>, _>("pipeline_source")?, decoder) {
        (Some(pipeline_source), Some(decoder)) => Some(ReplayInfo {
            pipeline_source,
            topic: r.try_get("topic")?,
            decoder,
            decoder_options: r
                .try_get::<Option<String>, _>("decoder_options")?
                .unwrap_or_default(),
            device_id: r.try_get("device_id")?,
            timezone: r
                .try_get::<Option<String>, _>("timezone")?
                .unwrap_or_default(),
        }),
        _ => None,
    };
    let resolved = match (
        r.try_get::<Option<DateTime<Utc>>, _>("resolved_at")?,
        r.try_get::<Option<String>, _>("resolved_by")?,
    ) {
        (Some(at), by) => Some((at, by.unwrap_or_default())),
        _ => None,
    };
    Ok(QuarantineRow {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        payload: r.try_get("payload")?,
        payload_len: r.try_get("payload_len")?,
        reason: r.try_get("reason")?,
        received_at: r.try_get("received_at")?,
        kind: QuarantineKind::parse(&r.try_get::<String, _>("kind")?),
        replay,
        resolved,
    })
}

/// Runs the same block on whichever pool the store has (`$p` is bound to
/// it); the SQL text is shared by both engines.
macro_rules! on_pool {
    ($self:expr, $p:ident => $body:expr) => {
        match $self {
            Store::Sqlite($p) => $body,
            Store::Postgres($p) => $body,
        }
    };
}

impl Store {
    /// One page of quarantined payloads, newest first, paged in SQL.
    pub async fn quarantine_page(
        &self,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<QuarantineRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM quarantine ORDER BY id DESC LIMIT $1 OFFSET $2");
        on_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(limit.max(0))
                .bind(offset.max(0))
                .fetch_all(p)
                .await
                .ctx("select quarantine")?;
            rows.iter().map(row).collect::<Result<Vec<_>, _>>().ctx("read quarantine")
        })
    }

    /// The rows with these ids (those that exist), oldest first.
    pub async fn quarantine_rows(&self, ids: &[i64]) -> Result<Vec<QuarantineRow>, StoreError> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let sql = format!("SELECT {COLUMNS} FROM quarantine WHERE id IN ({list}) ORDER BY id");
            let part = on_pool!(self, p => {
                // The ids are in the text: prepared for this one use, not
                // cached per connection.
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .persistent(false)
                    .fetch_all(p)
                    .await
                    .ctx("select quarantine rows")?;
                rows.iter().map(row).collect::<Result<Vec<_>, _>>().ctx("read quarantine rows")
            })?;
            out.extend(part);
        }
        Ok(out)
    }

    /// Up to `limit` unresolved, replayable rows (not summaries) with an id
    /// above `after`, oldest first.
    pub async fn quarantine_unresolved(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<QuarantineRow>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM quarantine WHERE id > $1 AND resolved_at IS NULL \
             AND kind <> 'summary' ORDER BY id LIMIT $2"
        );
        on_pool!(self, p => {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(after)
                .bind(limit)
                .fetch_all(p)
                .await
                .ctx("select unresolved quarantine")?;
            rows.iter().map(row).collect::<Result<Vec<_>, _>>().ctx("read quarantine")
        })
    }

    /// Marks row `id` resolved by a replay and audits it, in one
    /// transaction. False when it was already resolved (a concurrent
    /// replay): nothing is written then.
    pub async fn resolve_quarantine(
        &self,
        id: i64,
        outcome: &serde_json::Value,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let outcome = outcome.to_string();
        on_pool!(self, p => {
            let mut tx = p.begin().await.ctx("begin transaction")?;
            let n = sqlx::query(
                "UPDATE quarantine SET resolved_at = $1, resolved_by = $2 WHERE id = $3 AND resolved_at IS NULL",
            )
            .bind(now)
            .bind(actor)
            .bind(id)
            .execute(&mut *tx)
            .await
            .ctx("resolve quarantine")?
            .rows_affected();
            if n == 0 {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO audit (at, table_name, row_key, old_value, new_value, cause, actor) \
                 VALUES ($1, 'quarantine', $2, NULL, $3, 'quarantine replay', $4)",
            )
            .bind(now)
            .bind(id.to_string())
            .bind(&outcome)
            .bind(actor)
            .execute(&mut *tx)
            .await
            .ctx("audit quarantine replay")?;
            tx.commit().await.ctx("commit quarantine replay")?;
            Ok(true)
        })
    }

    /// Deletes undecodable payloads and summaries received before `cutoff`;
    /// never rows of kind `unknown` (they are punches). Returns how many.
    pub async fn prune_quarantine(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        on_pool!(self, p => {
            sqlx::query("DELETE FROM quarantine WHERE kind IN ('undecodable', 'summary') AND received_at < $1")
                .bind(cutoff)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
                .ctx("prune quarantine")
        })
    }

    /// Takes every punch of `device` with `from <= time < to` out of
    /// classification, with an audit row each, in one transaction.
    pub async fn supersede_punches(
        &self,
        device: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        reason: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<SupersedeReport, StoreError> {
        on_pool!(self, p => {
            let mut tx = p.begin().await.ctx("begin transaction")?;
            let rows = sqlx::query(
                "SELECT id, employee_id, time, \
                 EXISTS (SELECT 1 FROM punch_supersedes s WHERE s.punch_id = punches.id) \
                 FROM punches WHERE device_id = $1 AND time >= $2 AND time < $3 ORDER BY time, id",
            )
            .bind(device)
            .bind(from)
            .bind(to)
            .fetch_all(&mut *tx)
            .await
            .ctx("select punches to supersede")?;
            let mut report = SupersedeReport::default();
            for r in &rows {
                let id: i64 = r.try_get(0).ctx("read punches to supersede")?;
                let employee: String = r.try_get(1).ctx("read punches to supersede")?;
                let time: DateTime<Utc> = r.try_get(2).ctx("read punches to supersede")?;
                let done: bool = r.try_get(3).ctx("read punches to supersede")?;
                if done {
                    report.already += 1;
                    continue;
                }
                sqlx::query("INSERT INTO punch_supersedes (punch_id, reason, actor, at) VALUES ($1, $2, $3, $4)")
                    .bind(id)
                    .bind(reason)
                    .bind(actor)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .ctx("insert punch supersede")?;
                let value = serde_json::json!({
                    "punch_id": id, "employee_id": employee, "device_id": device,
                    "time": time.to_rfc3339(), "superseded": true, "reason": reason,
                })
                .to_string();
                sqlx::query(
                    "INSERT INTO audit (at, table_name, row_key, old_value, new_value, cause, actor) \
                     VALUES ($1, 'punch_supersedes', $2, NULL, $3, $4, $5)",
                )
                .bind(now)
                .bind(id.to_string())
                .bind(value)
                .bind(format!("punches supersede: {reason}"))
                .bind(actor)
                .execute(&mut *tx)
                .await
                .ctx("audit punch supersede")?;
                report.superseded.push((id, employee, time));
            }
            tx.commit().await.ctx("commit punch supersedes")?;
            Ok(report)
        })
    }

    /// Rewrites the dedupe keys of a batch so that a key held by a
    /// superseded punch does not make the correct, re-sent punch a
    /// duplicate: such a key `K` becomes `K␟r1` (`K␟r2` after a second
    /// supersede, up to 9), or stays on the chain's punch that is not
    /// superseded, so re-sending the correct punch again is still a
    /// duplicate. One cheap query per batch while nothing was ever
    /// superseded.
    pub(crate) async fn rekey_superseded(&self, keys: &mut [String]) -> Result<(), StoreError> {
        let any: Option<i64> = on_pool!(self, p => {
            sqlx::query_scalar("SELECT punch_id FROM punch_supersedes LIMIT 1")
                .fetch_optional(p)
                .await
                .ctx("select punch supersedes")?
        });
        if any.is_none() {
            return Ok(());
        }
        let mut held: std::collections::HashSet<String> = Default::default();
        let uniq: Vec<String> = {
            let mut v = keys.to_vec();
            v.sort();
            v.dedup();
            v
        };
        for chunk in uniq.chunks(500) {
            let found: Vec<String> = on_pool!(self, p => {
                let mut qb = sqlx::QueryBuilder::<_>::new(
                    "SELECT p.dedupe_key FROM punches p JOIN punch_supersedes s ON s.punch_id = p.id WHERE p.dedupe_key IN (",
                );
                let mut sep = qb.separated(", ");
                for k in chunk {
                    sep.push_bind(k.as_str());
                }
                qb.push(")");
                qb.build_query_scalar::<String>()
                    .persistent(chunk.len() == 500)
                    .fetch_all(p)
                    .await
                    .ctx("select superseded keys")?
            });
            held.extend(found);
        }
        for key in keys.iter_mut() {
            if !held.contains(key.as_str()) {
                continue;
            }
            let chain: Vec<String> = (1..=9).map(|n| format!("{key}\u{1f}r{n}")).collect();
            let rows: Vec<(String, bool)> = on_pool!(self, p => {
                let mut qb = sqlx::QueryBuilder::<_>::new(
                    "SELECT p.dedupe_key, EXISTS (SELECT 1 FROM punch_supersedes s WHERE s.punch_id = p.id) \
                     FROM punches p WHERE p.dedupe_key IN (",
                );
                let mut sep = qb.separated(", ");
                for k in &chain {
                    sep.push_bind(k.as_str());
                }
                qb.push(")");
                qb.build_query_as::<(String, bool)>()
                    .fetch_all(p)
                    .await
                    .ctx("select superseded key chain")?
            });
            let live = chain
                .iter()
                .find(|k| rows.iter().any(|(rk, sup)| rk == *k && !sup));
            let next = chain.iter().find(|k| !rows.iter().any(|(rk, _)| rk == *k));
            if let Some(k) = live.or(next) {
                *key = k.clone();
            }
        }
        Ok(())
    }

    /// Ids of superseded punches among `from <= time < to`.
    pub async fn superseded_punches(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<i64>, StoreError> {
        on_pool!(self, p => {
            sqlx::query_scalar::<_, i64>(
                "SELECT s.punch_id FROM punch_supersedes s JOIN punches ON punches.id = s.punch_id \
                 WHERE punches.time >= $1 AND punches.time < $2 ORDER BY s.punch_id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(p)
            .await
            .ctx("select superseded punches")
        })
    }
}
