//! A month and a year: an employee's month (`/employees/{id}/days`), the
//! month's scores, its attendance sheet, publication and export
//! (`/months/{month}…`), and the year's results (`/years/{year}`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::extract::{
    ExportFormat, Hr, Lang, MonthPath, MonthQuery, Paging, People, Team, Visible, YearPath,
};
use super::{Api, ApiError, ApiResult, ok, page};
use crate::domain::appeal::appeal_deadline;
use crate::domain::time::to_local;
use crate::hr;
use crate::http::grid;
use crate::http::openapi as doc;

/// The end of the appeal window of a month published at `published`
/// (RFC 3339, policy zone).
fn deadline_of(api: &Api, published: Option<DateTime<Utc>>) -> Option<String> {
    published.map(|p| {
        to_local(
            api.policy().tz,
            appeal_deadline(p, api.policy().tz, api.policy().appeal_days),
        )
        .to_rfc3339()
    })
}

#[utoipa::path(
    get,
    path = "/api/v1/employees/{id}/days",
    summary = "One person's month: verdicts with explanations, ledger, corrections, appeals, score",
    description = "Roles: hr; supervisor:{team} (403 for other teams and unknown ids)",
    params(doc::EmployeePath, doc::EmployeeMonthQuery),
    responses(
        (status = 200, description = "employee month", body = doc::EmployeeMonth),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 404, response = doc::NotFound),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn employee_days(
    State(api): State<Arc<Api>>,
    Visible(e): Visible,
    MonthQuery(month): MonthQuery,
) -> ApiResult {
    let first = month.unwrap_or_else(|| api.today());
    let data = hr::month_data(&api.store, &*api.policies(), first, |x| {
        x.employee_id == e.employee_id
    })
    .await?;
    let history = api.store.policy_history().await?;
    let days: Vec<serde_json::Value> = data
        .days
        .get(&e.employee_id)
        .map(|d| {
            d.iter()
                .map(|(v, prov)| {
                    let mut j = serde_json::to_value(v).unwrap_or_default();
                    j["provisional"] = json!(prov);
                    j["policy"] = json!(history.at(&e.employee_id, v.date));
                    j
                })
                .collect()
        })
        .unwrap_or_default();
    let (from, to) = data.bounds;
    let tz = api.policy().tz;
    let lo = crate::domain::time::resolve_local(tz, from.and_hms_opt(0, 0, 0).unwrap_or_default());
    let hi = crate::domain::time::resolve_local(
        tz,
        (to + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default(),
    );
    let corrections = api.store.corrections(lo, hi, Some(&e.employee_id)).await?;
    let ids: HashSet<i64> = data.ledger.iter().map(|l| l.id).collect();
    let policies = api.policies();
    let appeals: Vec<_> = api
        .store
        .appeals(None)
        .await?
        .into_iter()
        .filter(|a| ids.contains(&a.ledger_id))
        .map(|a| {
            let date = to_local(tz, a.filed_at).date_naive();
            let p = policies.get(history.index_at(&policies, &a.employee_id, date));
            hr::appeal_view(p, a, api.now())
        })
        .collect();
    ok(&json!({
        "employee": {"employee_id": e.employee_id, "name": e.name, "team": e.team, "supervisor": e.supervisor},
        "month": data.month,
        "published_at": data.published_at,
        "appeal_deadline": deadline_of(&api, data.published_at),
        "days": days,
        "ledger": data.ledger,
        "corrections": corrections,
        "appeals": appeals,
        "score": data.scores.first(),
        "policy": data.policy_labels.first(),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/months/{month}",
    summary = "Monthly 100-point scores by category (from the ledger's active entries)",
    description = "Roles: hr; supervisor:{team}",
    params(doc::MonthPath, doc::TeamQuery, doc::PageQuery),
    responses(
        (status = 200, description = "page of scores", body = doc::MonthPage),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn month(
    State(api): State<Arc<Api>>,
    _: People,
    MonthPath(first): MonthPath,
    p: Paging,
    Team(team): Team,
) -> ApiResult {
    let policies = api.policies();
    let data = hr::month_scores_data(&api.store, &*policies, first, |e| {
        team.as_ref().is_none_or(|t| &e.team == t)
    })
    .await?;
    let names: HashMap<&str, (&str, &str)> = data
        .employees
        .iter()
        .map(|e| (e.employee_id.as_str(), (e.name.as_str(), e.team.as_str())))
        .collect();
    let items: Vec<serde_json::Value> = data
        .scores
        .iter()
        .zip(&data.policy_labels)
        .map(|(s, label)| {
            let mut j = serde_json::to_value(s).unwrap_or_default();
            j["policy"] = json!(label);
            if let Some((n, t)) = names.get(s.employee_id.as_str()) {
                j["name"] = json!(n);
                j["team"] = json!(t);
            }
            j
        })
        .collect();
    // Several policies: the categories of all of them (policy.md).
    let categories: Vec<_> = policies
        .category_union()
        .iter()
        .map(|c| json!({"id": c.id, "zh": c.zh, "en": c.en, "cap": c.cap}))
        .collect();
    let mut out = serde_json::to_value(page(items, p))
        .map_err(|e| ApiError::Internal(format!("serialise month: {e}")))?;
    out["month"] = json!(data.month);
    out["published_at"] = json!(data.published_at);
    out["appeal_deadline"] = json!(deadline_of(&api, data.published_at));
    out["categories"] = json!(categories);
    ok(&out)
}

/// `GET /api/v1/months/{month}/grid`: the attendance sheet of a month,
/// employees × days (one status per cell, `null` without a verdict), the
/// calendar's weekends and holidays, each person's totals and score, and
/// the teams the caller may pick from. Paged by employee.
#[utoipa::path(
    get,
    path = "/api/v1/months/{month}/grid",
    summary = "The month's attendance sheet: employees × days, one status per cell, weekends and holidays, totals per person",
    description = "Roles: hr; supervisor:{team} (their team only). Read-only. Paged by employee; `days[i]` belongs to `dates[i]` and is null where no verdict is stored.",
    params(doc::MonthPath, doc::TeamQuery, doc::PageQuery),
    responses(
        (status = 200, description = "the grid", body = doc::MonthGrid),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn month_grid(
    State(api): State<Arc<Api>>,
    People(c): People,
    MonthPath(first): MonthPath,
    p: Paging,
    Team(team): Team,
) -> ApiResult {
    let policy = api.policy();
    // The teams the filter offers: every team the caller may see.
    let teams = grid::teams(
        api.store
            .employees()
            .await?
            .iter()
            .filter(|e| c.role.sees_team(&e.team)),
    );
    let data = hr::month_scores_data(&api.store, &policy, first, |e| {
        c.role.sees_team(&e.team) && team.as_ref().is_none_or(|t| &e.team == t)
    })
    .await?;
    let (from, to) = data.bounds;
    let dates = grid::dates(
        &policy,
        &grid::calendar(&policy, &api.store.holidays().await?),
        from,
        to,
    );
    let scores: HashMap<&str, &crate::domain::score::MonthScore> = data
        .scores
        .iter()
        .map(|s| (s.employee_id.as_str(), s))
        .collect();
    let chosen: Vec<_> = data.employees.iter().collect();
    let total = chosen.len();
    let shown: Vec<_> = chosen.into_iter().skip(p.offset).take(p.limit).collect();
    let verdicts = match shown.as_slice() {
        [one] => api.store.verdicts(from, to, Some(&one.employee_id)).await?,
        [] => Vec::new(),
        _ => api.store.verdicts(from, to, None).await?,
    };
    let items = grid::rows(&shown, &scores, &dates, &verdicts).map_err(ApiError::Internal)?;
    let end = p.offset.saturating_add(items.len());
    ok(&json!({
        "month": data.month,
        "timezone": policy.tz.name(),
        "published_at": data.published_at,
        "teams": teams,
        "team": team,
        "dates": dates,
        "items": items,
        "total": total,
        "offset": p.offset,
        "limit": p.limit,
        "next_offset": (end < total).then_some(end),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/months/{month}/publish",
    summary = "Publish a month: freezes it and opens the appeal window",
    description = "Roles: hr",
    params(doc::MonthPath),
    responses(
        (status = 200, description = "{month,published,published_at,appeal_deadline}", body = doc::Published),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 409, response = doc::Conflict),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn publish(
    State(api): State<Arc<Api>>,
    Hr(c): Hr,
    MonthPath(first): MonthPath,
) -> ApiResult {
    let label = hr::month_label(first);
    let done = hr::publish(&api.store, &*api.policies(), &label, &c.name, api.now()).await?;
    let at = api.store.published(&label).await?.map(|p| p.0);
    ok(&json!({
        "month": label,
        "published": done,
        "published_at": at,
        "appeal_deadline": deadline_of(&api, at),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/months/{month}/export",
    summary = "Export a month: CSV (one view) or XLSX (daily grid, deductions, scores)",
    description = "Roles: hr",
    params(doc::MonthPath, doc::ExportQuery),
    responses(
        (status = 200, description = "the file: CSV (UTF-8 with a byte-order mark) or an XLSX workbook, by `format`", content(
            (String = "text/csv; charset=utf-8"),
            (doc::Workbook = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn export(
    State(api): State<Arc<Api>>,
    _: Hr,
    MonthPath(first): MonthPath,
    Lang(lang): Lang,
    q: ExportFormat,
) -> ApiResult {
    let policies = api.policies();
    let data = hr::month_data(&api.store, &*policies, first, |_| true).await?;
    // Several policies: every group's categories and rules.
    let shown = policies.for_display();
    let label = data.month.clone();
    match q.format.as_deref().unwrap_or("csv") {
        "csv" => {
            let view = match &q.view {
                None => crate::export::View::Days,
                Some(v) => crate::export::View::parse(v)
                    .map_err(|e| ApiError::BadRequest(format!("view: {e}")))?,
            };
            let bytes = crate::export::csv(&shown, &data, view, lang)
                .map_err(|e| ApiError::Internal(format!("csv export: {e}")))?;
            Ok((
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"attendd-{label}.csv\""),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        "xlsx" => {
            let bytes = crate::export::xlsx(&shown, &data, lang)
                .map_err(|e| ApiError::Internal(format!("xlsx export: {e}")))?;
            Ok((
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_string(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"attendd-{label}.xlsx\""),
                    ),
                ],
                bytes,
            )
                .into_response())
        }
        o => Err(ApiError::BadRequest(format!(
            "format: {o:?} is not csv or xlsx"
        ))),
    }
}

/// `GET /api/v1/years/{YYYY}`: year results (坐席员考核细则 一(九)(十)).
#[utoipa::path(
    get,
    path = "/api/v1/years/{year}",
    summary = "Year results: per employee the monthly scores, the year score (mean of months with a workday, two decimals), failed against pass_mark, flags (failed_two_consecutive_years)",
    description = "Roles: hr",
    params(doc::YearPath),
    responses(
        (status = 200, description = "{year,pass_mark,items:[{employee_id,name,team,months:[{month,score,workdays}],score,failed,flags}]}", body = doc::YearResults),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn year(
    State(api): State<Arc<Api>>,
    _: Hr,
    YearPath(year): YearPath,
) -> ApiResult {
    let policy = api.policy();
    let items = hr::year::year_results(&api.store, &*api.policies(), year).await?;
    ok(&json!({
        "year": year,
        "pass_mark": policy.hr.pass_mark,
        "items": items,
    }))
}
