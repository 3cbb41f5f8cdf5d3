// HR's SQL, shared by both engines: a module of `backend_sqlite.rs` and of
// `backend_pg.rs`, which define `Db` and `BEGIN_WRITE`.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Pool, QueryBuilder, Row};

use super::{BEGIN_WRITE, Db, ledger_from_row};

use super::{AnswerError, Appeal, Correction, NewCorrection, Terminal};
use crate::store::{EmployeeRecord, LedgerEntry, QueryContext, StoreError};

type Tx = sqlx::Transaction<'static, Db>;

async fn begin(pool: &Pool<Db>) -> Result<Tx, StoreError> {
    pool.begin_with(BEGIN_WRITE).await.ctx("begin transaction")
}

#[allow(clippy::too_many_arguments)]
async fn audit(
    tx: &mut Tx,
    table: &str,
    key: &str,
    old: Option<String>,
    new: Option<String>,
    cause: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit (at, table_name, row_key, old_value, new_value, cause, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(now)
    .bind(table)
    .bind(key)
    .bind(old)
    .bind(new)
    .bind(cause)
    .bind(actor)
    .execute(&mut **tx)
    .await
    .ctx("insert audit")?;
    Ok(())
}

pub(crate) async fn correction_times(
    pool: &Pool<Db>,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    employee: Option<&str>,
) -> Result<Vec<(String, DateTime<Utc>, Option<String>)>, StoreError> {
    let mut qb =
        QueryBuilder::<Db>::new("SELECT employee_id, time, id FROM corrections WHERE voided_at IS NULL AND time >= ");
    qb.push_bind(lo).push(" AND time < ").push_bind(hi);
    if let Some(e) = employee {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    let rows = qb.build().fetch_all(pool).await.ctx("select correction times")?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get(2)?;
            Ok((r.try_get(0)?, r.try_get(1)?, Some(format!("correction:{id}"))))
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read correction times")
}

pub(crate) async fn add_correction(
    pool: &Pool<Db>,
    c: &NewCorrection,
    cause: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let mut tx = begin(pool).await?;
    let id: i64 = sqlx::query(
        "INSERT INTO corrections (employee_id, time, reason, confirmed_by, recorded_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(c.employee_id.as_str())
    .bind(c.time)
    .bind(c.reason.as_str())
    .bind(c.confirmed_by.as_str())
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .and_then(|r| r.try_get(0))
    .ctx("insert correction")?;
    let row = Correction {
        id,
        employee_id: c.employee_id.clone(),
        time: c.time,
        reason: c.reason.clone(),
        confirmed_by: c.confirmed_by.clone(),
        recorded_at: now,
    };
    audit(
        &mut tx,
        "corrections",
        &id.to_string(),
        None,
        serde_json::to_string(&row).ok(),
        cause,
        &c.confirmed_by,
        now,
    )
    .await?;
    tx.commit().await.ctx("commit correction")?;
    Ok(id)
}

pub(crate) async fn corrections(
    pool: &Pool<Db>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    employee: Option<&str>,
) -> Result<Vec<Correction>, StoreError> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT id, employee_id, time, reason, confirmed_by, recorded_at FROM corrections \
         WHERE voided_at IS NULL AND time >= ",
    );
    qb.push_bind(from).push(" AND time < ").push_bind(to);
    if let Some(e) = employee {
        qb.push(" AND employee_id = ").push_bind(e);
    }
    qb.push(" ORDER BY employee_id, time, id");
    let rows = qb.build().fetch_all(pool).await.ctx("select corrections")?;
    rows.iter()
        .map(|r| {
            Ok(Correction {
                id: r.try_get(0)?,
                employee_id: r.try_get(1)?,
                time: r.try_get(2)?,
                reason: r.try_get(3)?,
                confirmed_by: r.try_get(4)?,
                recorded_at: r.try_get(5)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read corrections")
}

pub(crate) async fn employee(pool: &Pool<Db>, id: &str) -> Result<Option<EmployeeRecord>, StoreError> {
    let Some(r) = sqlx::query(
        "SELECT employee_id, name, team, supervisor, shift, start_date, end_date FROM employees WHERE employee_id = $1",
    )
        .bind(id)
        .fetch_optional(pool)
        .await
        .ctx("select employee")?
    else {
        return Ok(None);
    };
    let mut e = EmployeeRecord {
        employee_id: r.try_get(0).ctx("read employee")?,
        name: r.try_get(1).ctx("read employee")?,
        team: r.try_get(2).ctx("read employee")?,
        supervisor: r.try_get(3).ctx("read employee")?,
        shift: r.try_get(4).ctx("read employee")?,
        aliases: Vec::new(),
        start_date: r.try_get(5).ctx("read employee")?,
        end_date: r.try_get(6).ctx("read employee")?,
    };
    for a in sqlx::query("SELECT alias FROM employee_aliases WHERE employee_id = $1 ORDER BY alias")
        .bind(id)
        .fetch_all(pool)
        .await
        .ctx("select aliases")?
    {
        e.aliases.push(a.try_get(0).ctx("read aliases")?);
    }
    Ok(Some(e))
}

pub(crate) async fn published(pool: &Pool<Db>, month: &str) -> Result<Option<(DateTime<Utc>, String)>, StoreError> {
    let r = sqlx::query("SELECT published_at, published_by FROM published_months WHERE month = $1")
        .bind(month)
        .fetch_optional(pool)
        .await
        .ctx("select published month")?;
    match r {
        None => Ok(None),
        Some(r) => Ok(Some((
            r.try_get(0).ctx("read published month")?,
            r.try_get(1).ctx("read published month")?,
        ))),
    }
}

const LEDGER_COLUMNS: &str = "SELECT id, employee_id, date, category, rule, points, bonus, source, evidence, \
     recorded_by, recorded_at, voided_at, voided_by, void_cause FROM ledger WHERE id = $1";

pub(crate) async fn ledger_entry(pool: &Pool<Db>, id: i64) -> Result<Option<LedgerEntry>, StoreError> {
    let r = sqlx::query(LEDGER_COLUMNS)
        .bind(id)
        .fetch_optional(pool)
        .await
        .ctx("select ledger entry")?;
    r.as_ref().map(ledger_from_row).transpose().ctx("read ledger entry")
}

pub(crate) async fn add_appeal(
    pool: &Pool<Db>,
    ledger_id: i64,
    employee_id: &str,
    reason: &str,
    filed_by: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let mut tx = begin(pool).await?;
    let id: i64 = sqlx::query(
        "INSERT INTO appeals (ledger_id, employee_id, filed_at, reason, status, filed_by) \
         VALUES ($1, $2, $3, $4, 'open', $5) RETURNING id",
    )
    .bind(ledger_id)
    .bind(employee_id)
    .bind(now)
    .bind(reason)
    .bind(filed_by)
    .fetch_one(&mut *tx)
    .await
    .and_then(|r| r.try_get(0))
    .ctx("insert appeal")?;
    let row = Appeal {
        id,
        ledger_id,
        employee_id: employee_id.to_string(),
        filed_at: now,
        filed_by: filed_by.to_string(),
        reason: reason.to_string(),
        status: "open".into(),
        decided_at: None,
        decided_by: None,
        answer: None,
    };
    audit(
        &mut tx,
        "appeals",
        &id.to_string(),
        None,
        serde_json::to_string(&row).ok(),
        &format!("appeal against ledger entry {ledger_id}"),
        filed_by,
        now,
    )
    .await?;
    tx.commit().await.ctx("commit appeal")?;
    Ok(id)
}

const APPEAL_COLUMNS: &str =
    "SELECT id, ledger_id, employee_id, filed_at, filed_by, reason, status, decided_at, decided_by, answer FROM appeals";

fn appeal_from_row(r: &<Db as sqlx::Database>::Row) -> Result<Appeal, sqlx::Error> {
    Ok(Appeal {
        id: r.try_get(0)?,
        ledger_id: r.try_get(1)?,
        employee_id: r.try_get(2)?,
        filed_at: r.try_get(3)?,
        filed_by: r.try_get(4)?,
        reason: r.try_get(5)?,
        status: r.try_get(6)?,
        decided_at: r.try_get(7)?,
        decided_by: r.try_get(8)?,
        answer: r.try_get(9)?,
    })
}

pub(crate) async fn appeal(pool: &Pool<Db>, id: i64) -> Result<Option<Appeal>, StoreError> {
    let r = sqlx::query(sqlx::AssertSqlSafe(format!("{APPEAL_COLUMNS} WHERE id = $1")))
        .bind(id)
        .fetch_optional(pool)
        .await
        .ctx("select appeal")?;
    r.as_ref().map(appeal_from_row).transpose().ctx("read appeal")
}

pub(crate) async fn appeals(pool: &Pool<Db>, status: Option<&str>) -> Result<Vec<Appeal>, StoreError> {
    let mut qb = QueryBuilder::<Db>::new(APPEAL_COLUMNS);
    if let Some(s) = status {
        qb.push(" WHERE status = ").push_bind(s);
    }
    qb.push(" ORDER BY id");
    let rows = qb.build().fetch_all(pool).await.ctx("select appeals")?;
    rows.iter()
        .map(appeal_from_row)
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read appeals")
}

pub(crate) async fn answer_appeal(
    pool: &Pool<Db>,
    id: i64,
    upheld: bool,
    answer: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Appeal, AnswerError> {
    let mut tx = begin(pool).await?;
    let old = sqlx::query(sqlx::AssertSqlSafe(format!("{APPEAL_COLUMNS} WHERE id = $1")))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .ctx("select appeal")?
        .as_ref()
        .map(appeal_from_row)
        .transpose()
        .ctx("read appeal")?
        .ok_or(AnswerError::NotFound(id))?;
    if old.status != "open" {
        return Err(AnswerError::Decided {
            id,
            status: old.status,
        });
    }
    let status = if upheld { "upheld" } else { "rejected" };
    sqlx::query("UPDATE appeals SET status = $1, decided_at = $2, decided_by = $3, answer = $4 WHERE id = $5")
        .bind(status)
        .bind(now)
        .bind(by)
        .bind(answer)
        .bind(id)
        .execute(&mut *tx)
        .await
        .ctx("answer appeal")?;
    let mut new = old.clone();
    new.status = status.into();
    new.decided_at = Some(now);
    new.decided_by = Some(by.to_string());
    new.answer = Some(answer.to_string());
    let cause = format!("appeal {id} {status}");
    audit(
        &mut tx,
        "appeals",
        &id.to_string(),
        serde_json::to_string(&old).ok(),
        serde_json::to_string(&new).ok(),
        &cause,
        by,
        now,
    )
    .await?;
    if upheld {
        let entry = sqlx::query(LEDGER_COLUMNS)
            .bind(old.ledger_id)
            .fetch_optional(&mut *tx)
            .await
            .ctx("select ledger entry")?
            .as_ref()
            .map(ledger_from_row)
            .transpose()
            .ctx("read ledger entry")?;
        if let Some(entry) = entry.filter(|e| e.voided_at.is_none()) {
            sqlx::query("UPDATE ledger SET voided_at = $1, voided_by = $2, void_cause = $3 WHERE id = $4")
                .bind(now)
                .bind(by)
                .bind(cause.as_str())
                .bind(entry.id)
                .execute(&mut *tx)
                .await
                .ctx("void ledger entry")?;
            let mut voided = entry.clone();
            voided.voided_at = Some(now);
            voided.voided_by = Some(by.to_string());
            voided.void_cause = Some(cause.clone());
            audit(
                &mut tx,
                "ledger",
                &entry.id.to_string(),
                serde_json::to_string(&entry).ok(),
                serde_json::to_string(&voided).ok(),
                &cause,
                by,
                now,
            )
            .await?;
        }
    }
    tx.commit().await.ctx("commit appeal answer")?;
    Ok(new)
}

pub(crate) async fn terminals(pool: &Pool<Db>) -> Result<Vec<Terminal>, StoreError> {
    let rows = sqlx::query(
        "SELECT device_id, COUNT(*), MAX(time) FROM punches WHERE device_id IS NOT NULL \
         GROUP BY device_id ORDER BY device_id",
    )
    .fetch_all(pool)
    .await
    .ctx("select terminals")?;
    rows.iter()
        .map(|r| {
            Ok(Terminal {
                device_id: r.try_get(0)?,
                punches: r.try_get(1)?,
                last_punch: r.try_get(2)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read terminals")
}

pub(crate) async fn day_rows(
    pool: &Pool<Db>,
    date: NaiveDate,
) -> Result<Vec<super::DayRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT employee_id, status, verdict, provisional FROM day_verdicts WHERE date = $1 ORDER BY employee_id",
    )
    .bind(date)
    .fetch_all(pool)
    .await
    .ctx("select day verdicts")?;
    rows.iter()
        .map(|r| {
            Ok(super::DayRow {
                employee_id: r.try_get(0)?,
                status: r.try_get(1)?,
                verdict: r.try_get(2)?,
                provisional: r.try_get(3)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read day verdicts")
}

pub(crate) async fn day_page(
    pool: &Pool<Db>,
    date: NaiveDate,
    team: Option<&str>,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(i64, Vec<super::DayPageRow>), StoreError> {
    let filter = |qb: &mut QueryBuilder<Db>| {
        qb.push(" WHERE d.date = ").push_bind(date);
        if let Some(t) = team {
            qb.push(" AND e.team = ").push_bind(t.to_string());
        }
        if let Some(s) = status {
            qb.push(" AND d.status = ").push_bind(s.to_string());
        }
    };
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT COUNT(*) FROM day_verdicts d LEFT JOIN employees e ON e.employee_id = d.employee_id",
    );
    filter(&mut qb);
    let total: i64 = qb
        .build()
        .fetch_one(pool)
        .await
        .and_then(|r| r.try_get(0))
        .ctx("count day verdicts")?;
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT d.employee_id, e.name, e.team, d.status, d.provisional, d.verdict \
         FROM day_verdicts d LEFT JOIN employees e ON e.employee_id = d.employee_id",
    );
    filter(&mut qb);
    qb.push(" ORDER BY d.employee_id LIMIT ")
        .push_bind(limit)
        .push(" OFFSET ")
        .push_bind(offset);
    let rows = qb.build().fetch_all(pool).await.ctx("select day verdicts")?;
    let rows = rows
        .iter()
        .map(|r| {
            Ok(super::DayPageRow {
                employee_id: r.try_get(0)?,
                name: r.try_get(1)?,
                team: r.try_get(2)?,
                status: r.try_get(3)?,
                provisional: r.try_get(4)?,
                verdict: r.try_get(5)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read day verdicts")?;
    Ok((total, rows))
}

pub(crate) async fn day_totals(
    pool: &Pool<Db>,
    date: NaiveDate,
    team: Option<&str>,
) -> Result<Vec<super::DayTotal>, StoreError> {
    let mut qb = QueryBuilder::<Db>::new(
        "SELECT COALESCE(e.team, ''), d.status, d.provisional, COUNT(*), CAST(SUM(d.points) AS BIGINT) \
         FROM day_verdicts d LEFT JOIN employees e ON e.employee_id = d.employee_id WHERE d.date = ",
    );
    qb.push_bind(date);
    if let Some(t) = team {
        qb.push(" AND e.team = ").push_bind(t.to_string());
    }
    qb.push(" GROUP BY COALESCE(e.team, ''), d.status, d.provisional");
    let rows = qb.build().fetch_all(pool).await.ctx("sum day verdicts")?;
    rows.iter()
        .map(|r| {
            Ok(super::DayTotal {
                team: r.try_get(0)?,
                status: r.try_get(1)?,
                provisional: r.try_get(2)?,
                employees: r.try_get(3)?,
                points: r.try_get(4)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .ctx("read day totals")
}
