//! The ledger: manual deductions and bonuses (`/ledger`), confirmed
//! forgotten punches (`/corrections`) and appeals (`/appeals…`).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use serde::Deserialize;

use super::extract::{AppealId, Guard, Hr, JsonBody, Paging, People, Status};
use super::{Api, ApiError, ApiResult, body, created, ok, page, parse_date, visible_employee};
use crate::domain::Points;
use crate::hr::{self, EntryKind, ManualRequest};
use crate::http::auth::Role;
use crate::http::openapi as doc;

/// `POST /api/v1/ledger`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EntryBody {
    #[schema(example = "E001")]
    employee_id: String,
    /// from 2000-01-01 to 2100-12-31
    #[schema(
        pattern = "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        example = "2026-11-02"
    )]
    date: String,
    /// rule id from the policy catalogue
    #[schema(example = "dress_code")]
    rule: String,
    /// default: the rule's points; more than 0 and at most the policy's score_base
    #[serde(default)]
    #[schema(value_type = Option<f64>, exclusive_minimum = 0)]
    points: Option<Points>,
    #[schema(example = "uniform")]
    note: String,
    /// `deduction` (default) or `bonus`.
    #[serde(default)]
    #[schema(value_type = Option<doc::EntryKind>)]
    kind: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/ledger",
    summary = "Record a manual deduction or bonus from the policy's catalogue",
    description = "Roles: hr; supervisor:{team}",
    request_body = EntryBody,
    responses(
        (status = 201, description = "the ledger entry", body = doc::LedgerEntry),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn add_entry(
    State(api): State<Arc<Api>>,
    JsonBody(People(c), b): JsonBody<People>,
) -> ApiResult {
    let b: EntryBody = body(&b)?;
    let kind = match b.kind.as_deref() {
        None | Some("deduction") => EntryKind::Deduction,
        Some("bonus") => EntryKind::Bonus,
        Some(o) => {
            return Err(ApiError::BadRequest(format!(
                "kind: {o:?} is not deduction or bonus"
            )));
        }
    };
    let date = parse_date("date", &b.date)?;
    visible_employee(&api, &c, &b.employee_id).await?;
    let entry = hr::record_manual(
        &api.store,
        &*api.policies(),
        &ManualRequest {
            employee_id: b.employee_id,
            date,
            rule: b.rule,
            points: b.points,
            note: b.note,
            by: c.name.clone(),
            kind,
        },
    )
    .await?;
    created(&entry)
}

/// `POST /api/v1/corrections`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CorrectionBody {
    #[schema(example = "E001")]
    employee_id: String,
    /// RFC 3339, or `YYYY-MM-DD HH:MM[:SS]` in the policy's zone, on a
    /// date from 2000-01-01 to 2100-12-31.
    #[schema(
        pattern = "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$",
        example = "2026-11-03 08:25:00"
    )]
    time: String,
    #[schema(example = "forgot to punch")]
    reason: String,
    /// HR only: why the correction is recorded beyond the policy's
    /// `[corrections]` limits (audited).
    #[serde(default, rename = "override")]
    override_reason: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/corrections",
    summary = "Record a confirmed forgotten punch (补卡); recomputes the employee's days",
    description = "Roles: hr; supervisor:{team}. Beyond the policy's [corrections] limits (per_month, within_days) refused with 409 and the reason, unless HR gives `override` (audited)",
    request_body = CorrectionBody,
    responses(
        (status = 201, description = "{id,date,evaluated,changed,adjustments,override?}", body = doc::CorrectionOutcome),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn add_correction(
    State(api): State<Arc<Api>>,
    JsonBody(People(c), b): JsonBody<People>,
) -> ApiResult {
    let b: CorrectionBody = body(&b)?;
    if b.override_reason.is_some() && !Hr::admits(&c.role) {
        // 补卡 limits are HR's to override, not a supervisor's.
        return Err(ApiError::Forbidden);
    }
    let time = crate::input::LocalTimes::new(api.policy().tz)
        .parse(&b.time)
        .map_err(|e| ApiError::BadRequest(format!("time: {e}")))?;
    visible_employee(&api, &c, &b.employee_id).await?;
    let out = hr::record_correction(
        &api.store,
        &api.policies(),
        &b.employee_id,
        time,
        &b.reason,
        &c.name,
        b.override_reason.as_deref(),
        api.now(),
    )
    .await?;
    created(&out)
}

#[utoipa::path(
    get,
    path = "/api/v1/appeals",
    summary = "Appeals",
    description = "Roles: hr; supervisor:{team}",
    params(doc::AppealsQuery, doc::PageQuery),
    responses(
        (status = 200, description = "page of appeals, each with answer_due and overdue", body = doc::AppealsPage),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn appeals(
    State(api): State<Arc<Api>>,
    People(c): People,
    p: Paging,
    Status(status): Status,
) -> ApiResult {
    let mut rows =
        hr::list_appeals(&api.store, &*api.policies(), status.as_deref(), api.now()).await?;
    if let Role::Supervisor(t) = &c.role {
        let mine: HashSet<String> = api
            .store
            .employees()
            .await?
            .into_iter()
            .filter(|e| &e.team == t)
            .map(|e| e.employee_id)
            .collect();
        rows.retain(|a| mine.contains(&a.appeal.employee_id));
    }
    ok(&page(rows, p))
}

/// `POST /api/v1/appeals`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AppealBody {
    ledger_id: i64,
    reason: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/appeals",
    summary = "Appeal a ledger entry of a published month, until the end of the 2nd calendar day after publication (policy zone)",
    description = "Roles: hr; supervisor:{team}",
    request_body = AppealBody,
    responses(
        (status = 201, description = "the appeal", body = doc::Appeal),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn file_appeal(
    State(api): State<Arc<Api>>,
    JsonBody(People(c), b): JsonBody<People>,
) -> ApiResult {
    let b: AppealBody = body(&b)?;
    let entry = api.store.ledger_entry(b.ledger_id).await?;
    match &entry {
        Some(e) => {
            visible_employee(&api, &c, &e.employee_id).await?;
        }
        None if c.role == Role::Hr => {
            return Err(ApiError::NotFound(format!(
                "ledger entry {} does not exist",
                b.ledger_id
            )));
        }
        None => return Err(ApiError::Forbidden),
    }
    let a = hr::file_appeal(
        &api.store,
        &*api.policies(),
        b.ledger_id,
        &b.reason,
        &c.name,
        api.now(),
    )
    .await?;
    // As the list shows it: with answer_due and overdue (the OpenAPI
    // description's `Appeal`).
    created(&hr::view_appeal(&api.store, &*api.policies(), a, api.now()).await?)
}

/// `POST /api/v1/appeals/{id}/answer`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    /// `upheld` or `rejected`.
    #[schema(value_type = doc::Decision)]
    decision: String,
    answer: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/appeals/{id}/answer",
    summary = "Answer an appeal: upheld voids the entry, rejected keeps it",
    description = "Roles: hr",
    params(doc::AppealPath),
    request_body = AnswerBody,
    responses(
        (status = 200, description = "the appeal", body = doc::Appeal),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 409, response = doc::Conflict),
        (status = 415, response = doc::UnsupportedMediaType),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn answer_appeal(
    State(api): State<Arc<Api>>,
    id: Result<AppealId, ApiError>,
    JsonBody(Hr(c), b): JsonBody<Hr>,
) -> ApiResult {
    // The id is checked after the role, the body after the id.
    let AppealId(id) = id?;
    let b: AnswerBody = body(&b)?;
    let upheld = match b.decision.as_str() {
        "upheld" => true,
        "rejected" => false,
        o => {
            return Err(ApiError::BadRequest(format!(
                "decision: {o:?} is not upheld or rejected"
            )));
        }
    };
    let a = hr::answer_appeal(&api.store, id, upheld, &b.answer, &c.name, api.now()).await?;
    ok(&hr::view_appeal(&api.store, &*api.policies(), a, api.now()).await?)
}
