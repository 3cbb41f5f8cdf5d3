// Employees' policy groups (policy.md, "Several rule sets on one site"),
// shared by both engines like `backend.rs` (a module of each engine beside
// it).

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{Pool, Row};

use super::queries::begin;
use super::{Db, QueryContext, StoreError};
use crate::store::policy_groups::PolicyChange;

pub(crate) async fn employee_policy_rows(
    pool: &Pool<Db>,
) -> Result<Vec<(String, NaiveDate, String)>, StoreError> {
    sqlx::query(
        "SELECT employee_id, valid_from, policy FROM employee_policy \
         ORDER BY employee_id, valid_from",
    )
    .fetch_all(pool)
    .await
    .ctx("select employee policies")?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
    .collect::<Result<_, sqlx::Error>>()
    .ctx("read employee policies")
}

pub(crate) async fn set_employee_policies(
    pool: &Pool<Db>,
    changes: &[PolicyChange],
    cause: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = begin(pool).await?;
    for c in changes {
        sqlx::query(
            "INSERT INTO employee_policy (employee_id, valid_from, policy, recorded_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (employee_id, valid_from) \
             DO UPDATE SET policy = excluded.policy, recorded_at = excluded.recorded_at",
        )
        .bind(c.employee_id.as_str())
        .bind(c.valid_from)
        .bind(c.policy.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await
        .ctx("upsert employee policy")?;
        sqlx::query(
            "INSERT INTO audit (at, table_name, row_key, old_value, new_value, cause, actor) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now)
        .bind("employee_policy")
        .bind(format!("{}/{}", c.employee_id, c.valid_from))
        .bind(None::<String>)
        .bind(c.policy.as_str())
        .bind(cause)
        .bind(actor)
        .execute(&mut *tx)
        .await
        .ctx("insert audit")?;
    }
    tx.commit().await.ctx("commit employee policies")
}
