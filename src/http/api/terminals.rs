//! The terminals' side: raw punches (`/punches`), the quarantine of
//! payloads that did not decode and its replay (`/quarantine…`), and the
//! terminals seen (`/terminals`).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

use super::extract::{DateQuery, EmployeeQuery, Hr, JsonBody, Paging, People, TerminalAdmin};
use super::{Api, ApiError, ApiResult, body, ok, page, visible_employee};
use crate::domain::time::to_local;
use crate::http::auth::Role;
use crate::http::openapi as doc;

#[utoipa::path(
    get,
    path = "/api/v1/punches",
    summary = "Raw punches of a local date",
    description = "Roles: hr; supervisor:{team}",
    params(doc::PunchesQuery, doc::PageQuery),
    responses(
        (status = 200, description = "page of punches", body = doc::PunchesPage),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn punches(
    State(api): State<Arc<Api>>,
    People(c): People,
    p: Paging,
    DateQuery(date): DateQuery,
    EmployeeQuery(employee): EmployeeQuery,
) -> ApiResult {
    if let Some(e) = &employee {
        visible_employee(&api, &c, e).await?;
    }
    let tz = api.policy().tz;
    let lo = crate::domain::time::resolve_local(tz, date.and_hms_opt(0, 0, 0).unwrap_or_default());
    let hi = crate::domain::time::resolve_local(
        tz,
        (date + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default(),
    );
    let mut rows = api.store.punches(lo, hi, employee.as_deref()).await?;
    if let Role::Supervisor(t) = &c.role {
        let mine: HashSet<String> = api
            .store
            .employees()
            .await?
            .into_iter()
            .filter(|e| &e.team == t)
            .map(|e| e.employee_id)
            .collect();
        rows.retain(|r| mine.contains(&r.employee_id));
    }
    let items: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({"id": r.id, "employee_id": r.employee_id, "time": to_local(tz, r.time).to_rfc3339(),
                   "device_id": r.device_id, "source": r.source, "event_id": r.event_id,
                   "identity": r.identity, "received_at": r.received_at.to_rfc3339()})
        })
        .collect();
    let mut out = serde_json::to_value(page(items, p))
        .map_err(|e| ApiError::Internal(format!("serialise punches: {e}")))?;
    out["date"] = json!(date);
    ok(&out)
}

#[utoipa::path(
    get,
    path = "/api/v1/quarantine",
    summary = "Payloads that could not be decoded, newest first",
    description = "Roles: hr; terminal-admin",
    params(doc::PageQuery),
    responses(
        (status = 200, description = "items, next_offset", body = doc::QuarantinePage),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn quarantine(
    State(api): State<Arc<Api>>,
    _: TerminalAdmin,
    p: Paging,
) -> ApiResult {
    // Newest first, paged in SQL; one more than the page tells whether
    // there is a next.
    let mut rows = api
        .store
        .quarantine_page(
            i64::try_from(p.offset).unwrap_or(i64::MAX),
            i64::try_from(p.limit.saturating_add(1)).unwrap_or(i64::MAX),
        )
        .await?;
    let more = rows.len() > p.limit;
    rows.truncate(p.limit);
    let items: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({"id": r.id, "source": r.source, "reason": r.reason,
                   "received_at": r.received_at.to_rfc3339(), "payload_len": r.payload_len,
                   "payload": String::from_utf8_lossy(&r.payload), "kind": r.kind,
                   "resolved_at": r.resolved.as_ref().map(|x| x.0.to_rfc3339())})
        })
        .collect();
    let n = items.len();
    ok(&json!({
        "items": items,
        "offset": p.offset,
        "limit": p.limit,
        "next_offset": more.then_some(p.offset + n),
    }))
}

/// `POST /api/v1/quarantine/replay` body: `{"all": true}` or
/// `{"ids": [..]}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    /// every unresolved row
    #[serde(default)]
    all: bool,
    /// these rows
    #[serde(default)]
    #[schema(max_items = 10000)]
    ids: Vec<i64>,
}

#[utoipa::path(
    post,
    path = "/api/v1/quarantine/replay",
    summary = "Replay quarantined payloads with today's employees and aliases; stores what now resolves, once, audited",
    description = "Roles: hr",
    request_body = ReplayBody,
    responses(
        (status = 200, description = "examined, resolved, stored, duplicates, unresolved [[id, why]], skipped [[id, why]], evaluated", body = doc::ReplayReport),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn replay_quarantine(
    State(api): State<Arc<Api>>,
    JsonBody(Hr(c), b): JsonBody<Hr>,
) -> ApiResult {
    let b: ReplayBody = body(&b)?;
    let selection = match (b.all, b.ids.is_empty()) {
        (true, true) => crate::pipeline::replay::Selection::All,
        (false, false) if b.ids.len() <= 10_000 => crate::pipeline::replay::Selection::Ids(b.ids),
        _ => {
            return Err(ApiError::BadRequest(
                "body: give either \"all\": true or \"ids\": [1 to 10000 row ids]".into(),
            ));
        }
    };
    // Rows from before replay information was recorded need the CLI's
    // `--source NAME`; they are reported as unresolved here.
    let r = crate::pipeline::replay::replay(
        &api.store,
        &*api.policies(),
        &crate::pipeline::replay::Decodings::default(),
        &selection,
        None,
        &c.name,
        api.now(),
    )
    .await?;
    ok(&r)
}

#[utoipa::path(
    get,
    path = "/api/v1/terminals",
    summary = "Terminals seen in the punches",
    description = "Roles: hr; terminal-admin",
    responses(
        (status = 200, description = "items", body = doc::Terminals),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn terminals(State(api): State<Arc<Api>>, _: TerminalAdmin) -> ApiResult {
    let rows = api.store.terminals().await?;
    ok(&json!({"items": rows}))
}
