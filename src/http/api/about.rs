//! What the API says about itself and its caller: the OpenAPI
//! description, `whoami` and the policy in force.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

use super::{Api, ApiError, ApiResult, ok};
use crate::http::auth::Caller;
use crate::http::openapi as doc;
use crate::policy_file::Policies;

/// The OpenAPI description ([`super::openapi::ApiDoc`]), public.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    summary = "This description",
    responses(
        (status = 200, description = "OpenAPI 3.1 JSON", body = Object),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn openapi() -> ApiResult {
    let json = doc::json().map_err(|e| ApiError::Internal(format!("openapi: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], json).into_response())
}

#[utoipa::path(
    get,
    path = "/api/v1/whoami",
    summary = "The caller's token name and role",
    description = "Roles: any token",
    responses(
        (status = 200, description = "name, role, team", body = doc::WhoAmI),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn whoami(c: Caller) -> ApiResult {
    ok(&json!({"name": c.name, "role": c.role.to_string(), "team": c.role.team()}))
}

/// Labels and knobs of the policy the daemon runs: categories, the rule
/// catalogue, ladder actions, zone and appeal window.
#[utoipa::path(
    get,
    path = "/api/v1/policy",
    summary = "The running (default) policy: categories, rule catalogue with labels, ladder actions, time zone, today, appeal window; groups: each [[policy.group]] in force (id, policy, version, timezone)",
    description = "Roles: any token",
    responses(
        (status = 200, description = "policy", body = doc::PolicyView),
        (status = 401, response = doc::Unauthorized),
    )
)]
pub(crate) async fn policy(State(api): State<Arc<Api>>, _c: Caller) -> ApiResult {
    let p = api.policy();
    let rules: BTreeMap<&str, serde_json::Value> = p
        .rules
        .values()
        .map(|r| {
            (
                r.id.as_ref(),
                json!({"category": r.category, "zh": r.zh, "en": r.en, "seed": r.seed,
                       "points": r.points,
                       "kind": if r.kind == crate::domain::policy::RuleKind::Bonus { "bonus" } else { "deduction" }}),
            )
        })
        .collect();
    let actions: BTreeMap<&str, serde_json::Value> = p
        .actions
        .iter()
        .map(|(k, v)| (k.as_ref(), json!({"zh": v.zh, "en": v.en})))
        .collect();
    ok(&json!({
        "id": p.id,
        "version": p.version,
        "name": p.name,
        "timezone": p.tz.name(),
        "today": api.today(),
        "appeal_days": p.appeal_days,
        "appeal_answer_days": p.hr.appeal_answer_days,
        "pass_mark": p.hr.pass_mark,
        "corrections": {"per_month": p.hr.corrections_per_month, "within_days": p.hr.corrections_within_days},
        "categories": p.categories.iter().map(|c| json!({"id": c.id, "zh": c.zh, "en": c.en, "cap": c.cap})).collect::<Vec<_>>(),
        "rules": rules,
        "actions": actions,
        "groups": groups(&api.policies()),
    }))
}

/// The `[[policy.group]]`s in force (policy.md, "Several rule sets on one
/// site"): id, policy id, version and zone of each.
fn groups(all: &Policies) -> Vec<serde_json::Value> {
    (1..all.len())
        .map(|i| {
            let g = all.get(i);
            json!({"id": all.label(i), "policy": g.id, "version": g.version,
                   "timezone": g.tz.name()})
        })
        .collect()
}
