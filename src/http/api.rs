//! The HR API under `/api/v1/` (`interfaces.md`): days, summaries, an
//! employee's month, monthly scores, punches; manual ledger entries,
//! corrections, publication, appeals and exports; quarantine and
//! terminals for terminal administrators; and its OpenAPI description.
//!
//! Every route but `openapi.json` needs a bearer token ([`super::auth`]).
//! Supervisors see their own team only: another team's employee, or an
//! unknown one, is 403 for them (so ids cannot be probed), 404 for HR.
//! Store failures are logged and answered 500 without detail. Lists take
//! `limit` (default 500, at most 10000) and `offset`.

// Over 800 lines: one handler per route, each with the `#[utoipa::path]`
// attribute that describes it, beside the router that lists them all.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{ApiToken, Caller, Role, authenticate};
use super::openapi as doc;
use crate::domain::Points;
use crate::domain::appeal::appeal_deadline;
use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::domain::types::DayVerdict;
use crate::hr::{self, EntryKind, HrError, ManualRequest};
use crate::policy::{Policies, PolicySet};
use crate::store::{EmployeeRecord, Store, StoreError};

/// Default page size.
pub const DEFAULT_LIMIT: usize = 500;
/// Largest page size.
pub const MAX_LIMIT: usize = 10_000;

/// The clock the API reads "now" from (tests pass a fixed one).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The policies (timezone, catalogue, appeal window; the default and each
/// `[[policy.group]]`) and the accepted bearer tokens in force; SIGHUP
/// swaps them as a whole.
pub type Live = Arc<std::sync::RwLock<(Arc<Policies>, Arc<Vec<ApiToken>>)>>;

/// A [`Live`] handle holding `policies` and `tokens`.
pub fn live(policies: impl PolicySet, tokens: Vec<ApiToken>) -> Live {
    Arc::new(std::sync::RwLock::new((
        Arc::new(policies.as_policies().into_owned()),
        Arc::new(tokens),
    )))
}

/// What the API handlers share.
#[derive(Clone)]
pub struct Api {
    /// The store.
    pub store: Store,
    /// Policy and tokens in force.
    pub live: Live,
    /// "Now".
    pub clock: Clock,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("store", &self.store.engine())
            .field("policy", &self.policy().id)
            .field("tokens", &self.tokens().len())
            .finish()
    }
}

impl Api {
    /// An API over a store with the wall clock.
    pub fn new(store: Store, policies: impl PolicySet, tokens: Vec<ApiToken>) -> Api {
        Api::with_live(store, live(policies, tokens))
    }

    /// An API over a store whose policy and tokens `live` holds.
    pub fn with_live(store: Store, live: Live) -> Api {
        Api {
            store,
            live,
            clock: Arc::new(crate::clock::now),
        }
    }

    /// The default policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policies().default_arc()
    }

    /// The site's policies in force (the default and the groups).
    pub fn policies(&self) -> Arc<Policies> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// The accepted tokens.
    pub fn tokens(&self) -> Arc<Vec<ApiToken>> {
        self.live
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn today(&self) -> NaiveDate {
        to_local(self.policy().tz, self.now()).date_naive()
    }
}

/// An API failure and its status. Internal errors are logged, not sent.
#[derive(Debug)]
pub enum ApiError {
    /// 401: no or unknown token.
    Unauthorized,
    /// 403: the token's role or team does not reach this.
    Forbidden,
    /// 400: a malformed parameter or body; the message names the field.
    BadRequest(String),
    /// 404.
    NotFound(String),
    /// 409: conflicts with the state (published month, deadline passed).
    Conflict(String),
    /// 415: a JSON route was sent a body that does not say it is JSON.
    UnsupportedMediaType(String),
    /// 500: logged with this text, answered without it.
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<HrError> for ApiError {
    fn from(e: HrError) -> Self {
        match e {
            HrError::Invalid { .. } => ApiError::BadRequest(e.to_string()),
            HrError::NotFound(m) => ApiError::NotFound(m),
            HrError::Conflict(m) => ApiError::Conflict(m),
            HrError::Store(s) => ApiError::Internal(s.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, msg) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "missing or unknown bearer token".to_string(),
            ),
            ApiError::Forbidden => (
                StatusCode::FORBIDDEN,
                "not allowed for this token".to_string(),
            ),
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, m),
            ApiError::UnsupportedMediaType(m) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, m),
            ApiError::Internal(m) => {
                tracing::error!("api: {m}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error (logged)".to_string(),
                )
            }
        };
        let mut r = (code, axum::Json(json!({ "error": msg }))).into_response();
        if code == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

type ApiResult = Result<Response, ApiError>;

impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        let h = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        authenticate(&api.tokens(), h).ok_or(ApiError::Unauthorized)
    }
}

/// HR and supervisors.
fn people(c: &Caller) -> Result<(), ApiError> {
    match c.role {
        Role::TerminalAdmin => Err(ApiError::Forbidden),
        _ => Ok(()),
    }
}

fn hr_only(c: &Caller) -> Result<(), ApiError> {
    match c.role {
        Role::Hr => Ok(()),
        _ => Err(ApiError::Forbidden),
    }
}

fn terminals_role(c: &Caller) -> Result<(), ApiError> {
    match c.role {
        Role::Hr | Role::TerminalAdmin => Ok(()),
        Role::Supervisor(_) => Err(ApiError::Forbidden),
    }
}

/// The employee, when the caller may see them: 404 for HR when unknown,
/// 403 for a supervisor when unknown or of another team.
async fn visible_employee(api: &Api, c: &Caller, id: &str) -> Result<EmployeeRecord, ApiError> {
    people(c)?;
    match api.store.employee(id).await? {
        Some(e) if c.role.sees_team(&e.team) => Ok(e),
        Some(_) => Err(ApiError::Forbidden),
        None if c.role == Role::Hr => Err(ApiError::NotFound(format!(
            "employee {id:?} is not in the store"
        ))),
        None => Err(ApiError::Forbidden),
    }
}

fn parse_date(field: &str, s: &str) -> Result<NaiveDate, ApiError> {
    crate::dates::parse_date(s).map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}

fn parse_month(s: &str) -> Result<NaiveDate, ApiError> {
    hr::parse_month(s).map_err(ApiError::from)
}

/// Paging parameters.
#[derive(Clone, Copy, Debug)]
struct Paging {
    limit: usize,
    offset: usize,
}

fn paging(q: &HashMap<String, String>) -> Result<Paging, ApiError> {
    let num = |k: &str, d: usize| -> Result<usize, ApiError> {
        match q.get(k) {
            None => Ok(d),
            Some(v) => v.parse::<usize>().map_err(|_| {
                ApiError::BadRequest(format!("{k}: {v:?} is not a non-negative integer"))
            }),
        }
    };
    let limit = num("limit", DEFAULT_LIMIT)?;
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::BadRequest(format!(
            "limit: {limit} is not in 1..={MAX_LIMIT}"
        )));
    }
    Ok(Paging {
        limit,
        offset: num("offset", 0)?,
    })
}

/// A page of a list.
#[derive(Serialize)]
struct Page<T: Serialize> {
    items: Vec<T>,
    total: usize,
    offset: usize,
    limit: usize,
    next_offset: Option<usize>,
}

fn page<T: Serialize>(all: Vec<T>, p: Paging) -> Page<T> {
    let total = all.len();
    let items: Vec<T> = all.into_iter().skip(p.offset).take(p.limit).collect();
    let end = p.offset.saturating_add(items.len());
    Page {
        items,
        total,
        offset: p.offset,
        limit: p.limit,
        next_offset: (end < total).then_some(end),
    }
}

fn ok<T: Serialize>(v: &T) -> ApiResult {
    Ok(axum::Json(v).into_response())
}

fn created<T: Serialize>(v: &T) -> ApiResult {
    Ok((StatusCode::CREATED, axum::Json(v)).into_response())
}

/// The body of a JSON route. Its `Content-Type` must be
/// `application/json` (parameters such as `charset` allowed) or an
/// `application/…+json` type; anything else, or none, is 415.
struct JsonBody(Bytes);

/// True for `application/json` and `application/…+json`, any parameters.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|s| s.ends_with("+json"))
}

impl axum::extract::FromRequest<Arc<Api>> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &Arc<Api>) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or("?").to_string());
        match ct {
            Some(ct) if is_json(&ct) => {}
            Some(ct) => {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "content-type: {ct:?} is not application/json"
                )));
            }
            None => {
                return Err(ApiError::UnsupportedMediaType(
                    "content-type: missing; send application/json".into(),
                ));
            }
        }
        let b = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
        Ok(JsonBody(b))
    }
}

fn body<T: for<'de> Deserialize<'de>>(b: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(b).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

/// The API routes, under `/api/v1/`.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/policy", get(policy))
        .route("/api/v1/days/{date}", get(days))
        .route("/api/v1/summaries/{date}", get(summary))
        .route("/api/v1/missing/{date}", get(missing))
        .route("/api/v1/employees/{id}/days", get(employee_days))
        .route("/api/v1/months/{month}", get(month))
        .route("/api/v1/months/{month}/publish", post(publish))
        .route("/api/v1/months/{month}/export", get(export))
        .route("/api/v1/months/{month}/grid", get(month_grid))
        .route("/api/v1/years/{year}", get(year))
        .route("/api/v1/punches", get(punches))
        .route("/api/v1/ledger", post(add_entry))
        .route("/api/v1/corrections", post(add_correction))
        .route("/api/v1/appeals", get(appeals).post(file_appeal))
        .route("/api/v1/appeals/{id}/answer", post(answer_appeal))
        .route("/api/v1/quarantine", get(quarantine))
        .route("/api/v1/quarantine/replay", post(replay_quarantine))
        .route("/api/v1/terminals", get(terminals))
        .with_state(api)
}

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
async fn openapi() -> ApiResult {
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
async fn whoami(c: Caller) -> ApiResult {
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
async fn policy(State(api): State<Arc<Api>>, _c: Caller) -> ApiResult {
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

#[utoipa::path(
    get,
    path = "/api/v1/days/{date}",
    summary = "Daily attendance table: one item per employee with the stored verdict (status, punches, explanation)",
    description = "Roles: hr; supervisor:{team} (own team)",
    params(doc::DatePath, doc::TeamQuery, doc::StatusQuery, doc::PageQuery),
    responses(
        (status = 200, description = "page of {employee_id,name,team,status,provisional,verdict}", body = doc::DaysPage),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
async fn days(
    State(api): State<Arc<Api>>,
    c: Caller,
    Path(date): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    people(&c)?;
    let date = parse_date("date", &date)?;
    let p = paging(&q)?;
    let team = team_filter(&c, &q)?;
    let status = q.get("status").map(String::as_str);
    if let Some(doc) = before_start(&api, date, p, "items").await? {
        return ok(&doc);
    }
    // Filtering and paging happen in the database: only the page's
    // verdicts are read, and they are sent as stored.
    let (total, rows) = api
        .store
        .day_page_read(
            date,
            team.as_deref(),
            status,
            i64::try_from(p.limit).unwrap_or(i64::MAX),
            i64::try_from(p.offset).unwrap_or(i64::MAX),
        )
        .await?;
    let total = usize::try_from(total).unwrap_or(0);
    let end = p.offset.saturating_add(rows.len());
    let body = days_json(date, &rows, total, p, (end < total).then_some(end))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The answer for a date before classification starts (policy.md, "Real
/// sites"): no rows, one note.
async fn before_start(
    api: &Api,
    date: NaiveDate,
    p: Paging,
    rows: &str,
) -> Result<Option<serde_json::Value>, ApiError> {
    let Some(start) = api.store.classify_from(None).await?.filter(|s| date < *s) else {
        return Ok(None);
    };
    let mut doc = json!({
        "date": date,
        "classify_from": start,
        "note": crate::hr::before_start_note(date, start),
        "total": 0,
        "offset": p.offset,
        "limit": p.limit,
        "next_offset": null,
    });
    doc[rows] = json!([]);
    if rows == "rows" {
        doc["totals"] = json!({"employees": 0, "points": 0, "by_status": {}, "by_team": {}});
    }
    Ok(Some(doc))
}

/// Writes a page of the daily table. The stored verdicts are our own
/// serialiser's output and are copied as they are, not parsed again: for
/// 10,000 employees that is most of the request's time. Only their outer
/// braces are checked.
fn days_json(
    date: NaiveDate,
    rows: &[crate::store::hr::DayPageRow],
    total: usize,
    p: Paging,
    next: Option<usize>,
) -> Result<Vec<u8>, ApiError> {
    let cap: usize = rows.iter().map(|r| r.verdict.len() + 128).sum::<usize>() + 256;
    let mut out = Vec::with_capacity(cap);
    out.extend_from_slice(b"{\"date\":");
    ser(&mut out, &date)?;
    out.extend_from_slice(b",\"items\":[");
    for (i, r) in rows.iter().enumerate() {
        let v = r.verdict.trim();
        if !(v.starts_with('{') && v.ends_with('}')) {
            return Err(ApiError::Internal(format!(
                "day_verdicts/{}/{date}: stored verdict is not a JSON object",
                r.employee_id
            )));
        }
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"employee_id\":");
        ser(&mut out, &r.employee_id)?;
        out.extend_from_slice(b",\"name\":");
        ser(&mut out, &r.name)?;
        out.extend_from_slice(b",\"team\":");
        ser(&mut out, &r.team)?;
        out.extend_from_slice(b",\"status\":");
        ser(&mut out, &r.status)?;
        out.extend_from_slice(if r.provisional {
            b",\"provisional\":true,\"verdict\":"
        } else {
            b",\"provisional\":false,\"verdict\":"
        });
        out.extend_from_slice(v.as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"total\":");
    ser(&mut out, &total)?;
    out.extend_from_slice(b",\"offset\":");
    ser(&mut out, &p.offset)?;
    out.extend_from_slice(b",\"limit\":");
    ser(&mut out, &p.limit)?;
    out.extend_from_slice(b",\"next_offset\":");
    ser(&mut out, &next)?;
    out.push(b'}');
    Ok(out)
}

/// Appends a value's JSON to `out`.
fn ser<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<(), ApiError> {
    serde_json::to_writer(out, v).map_err(|e| ApiError::Internal(format!("serialise days: {e}")))
}

/// A supervisor's team, or the `team` query parameter for HR; 403 when a
/// supervisor asks for another team.
fn team_filter(c: &Caller, q: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    let asked = q.get("team").cloned();
    match (&c.role, asked) {
        (Role::Supervisor(t), Some(a)) if &a != t => Err(ApiError::Forbidden),
        (Role::Supervisor(t), _) => Ok(Some(t.clone())),
        (_, a) => Ok(a),
    }
}

fn parse_verdict(emp: &str, date: NaiveDate, json: &str) -> Result<DayVerdict, ApiError> {
    serde_json::from_str(json)
        .map_err(|e| ApiError::Internal(format!("day_verdicts/{emp}/{date}: {e}")))
}

#[utoipa::path(
    get,
    path = "/api/v1/summaries/{date}",
    summary = "Daily deduction summary: totals by status and team, a row per employee",
    description = "Roles: hr; supervisor:{team}",
    params(doc::DatePath, doc::TeamQuery, doc::PageQuery),
    responses(
        (status = 200, description = "summary", body = doc::Summary),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
async fn summary(
    State(api): State<Arc<Api>>,
    c: Caller,
    Path(date): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    people(&c)?;
    let date = parse_date("date", &date)?;
    let p = paging(&q)?;
    let team = team_filter(&c, &q)?;
    if let Some(doc) = before_start(&api, date, p, "rows").await? {
        return ok(&doc);
    }
    // Totals are counted in the database; only the page's rows are read.
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_team: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut points = 0i64;
    let mut employees = 0i64;
    let mut provisional = false;
    for t in api.store.day_totals(date, team.as_deref()).await? {
        *by_status.entry(t.status.clone()).or_default() += t.employees;
        *by_team
            .entry(t.team.clone())
            .or_default()
            .entry(t.status.clone())
            .or_default() += t.employees;
        points += t.points;
        employees += t.employees;
        provisional |= t.provisional;
    }
    let (total, page_rows) = api
        .store
        .day_page(
            date,
            team.as_deref(),
            None,
            i64::try_from(p.limit).unwrap_or(i64::MAX),
            i64::try_from(p.offset).unwrap_or(i64::MAX),
        )
        .await?;
    let total = usize::try_from(total).unwrap_or(0);
    let history = api.store.policy_history().await?;
    let mut rows = Vec::with_capacity(page_rows.len());
    for r in &page_rows {
        let v = parse_verdict(&r.employee_id, date, &r.verdict)?;
        rows.push(json!({
            "employee_id": v.employee_id,
            "policy": history.at(&r.employee_id, date),
            "name": r.name,
            "team": r.team.as_deref().unwrap_or(""),
            "status": v.status,
            "provisional": r.provisional,
            "points": v.points,
            "deductions": v.deductions,
            "actions": v.actions,
        }));
    }
    let end = p.offset.saturating_add(rows.len());
    ok(&json!({
        "date": date,
        "policy": {"id": api.policy().id, "version": api.policy().version},
        "provisional": provisional,
        "totals": {"employees": employees, "points": Points::from_hundredths(points),
                   "by_status": by_status, "by_team": by_team},
        "rows": rows,
        "total": total,
        "offset": p.offset,
        "limit": p.limit,
        "next_offset": (end < total).then_some(end),
    }))
}

/// `GET /api/v1/missing/{date}`: who is missing, from the schedule and
/// the punches as absence alerts decide it (not from stored verdicts, which
/// lag behind the punches): scheduled, the shift started, no approved leave
/// at its start, no punch in its window so far. For today "so far" is now
/// (the dashboard's "Missing right now"); for a past date it is the shift's
/// end (that day's absentees).
#[utoipa::path(
    get,
    path = "/api/v1/missing/{date}",
    summary = "Who is missing: scheduled, the shift started, no approved leave at its start and no punch in its window (today: so far, as absence alerts decide; a past date: that day's absentees)",
    description = "Roles: hr; supervisor:{team} (own team)",
    params(doc::DatePath, doc::TeamQuery),
    responses(
        (status = 200, description = "{date, as_of (today only), items: [{employee_id,name,team,shift,shift_start,minutes_since_start}], total}", body = doc::Missing),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
async fn missing(
    State(api): State<Arc<Api>>,
    c: Caller,
    Path(date): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    use crate::domain::alerting::{AlertDecision, AlertState, absence_decision};
    use crate::domain::calendar::{ShiftClock, shift_on};
    use crate::domain::classify::EmployeeDays;
    use crate::domain::types::EmployeeId;
    people(&c)?;
    let date = parse_date("date", &date)?;
    let team = team_filter(&c, &q)?;
    let policy = api.policy();
    let now = api.now();
    let today = api.today();
    let mut items = Vec::new();
    let before = api.store.classify_from(None).await?.filter(|s| date < *s);
    if date <= today && before.is_none() {
        let first = date - chrono::Days::new(1);
        let last = date + chrono::Days::new(1);
        // Each policy group with its own shifts and zone (policy.md,
        // "Several rule sets on one site").
        let all = api.policies();
        for (g, wanted) in api.store.employees_by_group(&all, date).await? {
            let policy = all.get(g);
            let wanted: Option<HashSet<&str>> = wanted
                .as_ref()
                .map(|w| w.iter().map(String::as_str).collect());
            let margin =
                chrono::Duration::seconds(policy.window_before_secs + policy.window_after_secs);
            let lo = crate::domain::time::resolve_local(
                policy.tz,
                first.and_time(chrono::NaiveTime::MIN),
            ) - margin;
            let hi = crate::domain::time::resolve_local(
                policy.tz,
                (last + chrono::Days::new(1)).and_time(chrono::NaiveTime::MIN),
            ) + margin;
            if let Some(inputs) = api
                .store
                .load_inputs(policy, wanted.as_ref(), first, last, lo, hi)
                .await?
            {
                let clock = ShiftClock::new(policy, first, last);
                for (i, e) in inputs.emps.iter().enumerate() {
                    if team.as_deref().is_some_and(|t| t != e.team) {
                        continue;
                    }
                    let id = EmployeeId::from(e.employee_id.as_str());
                    let default_shift = e.shift.as_deref().and_then(|s| policy.shift_by_id(s));
                    let (Some(shift), _) = shift_on(
                        policy,
                        &inputs.holidays,
                        Some(&inputs.roster[i]),
                        default_shift,
                        date,
                    ) else {
                        continue;
                    };
                    let t = clock.times(date, shift);
                    // The alert rule holds while the shift runs: a past day is
                    // judged at its last second.
                    let at = now.min(t.end - chrono::Duration::seconds(1));
                    let days = EmployeeDays {
                        employee: &id,
                        default_shift,
                        punches: &inputs.punches[i],
                        roster: Some(&inputs.roster[i]),
                        leaves: &inputs.leaves[i],
                        start_date: e.start_date,
                        end_date: e.end_date,
                    };
                    let state = AlertState {
                        absence_sent: false,
                        arrival_sent: false,
                    };
                    if let AlertDecision::Absent {
                        shift_start,
                        minutes_late,
                    } = absence_decision(
                        &clock,
                        &inputs.holidays,
                        &days,
                        date,
                        chrono::Duration::zero(),
                        at,
                        state,
                    ) {
                        items.push(json!({
                            "employee_id": e.employee_id,
                            "policy": all.label(g),
                            "name": e.name,
                            "team": e.team,
                            "shift": policy.shift(shift).id.to_string(),
                            "shift_start": to_local(policy.tz, shift_start).to_rfc3339(),
                            "minutes_since_start": minutes_late,
                        }));
                    }
                }
            }
        }
    }
    if api.policies().len() > 1 {
        // Groups were listed one after the other: in employee order again.
        items.sort_by(|a, b| a["employee_id"].as_str().cmp(&b["employee_id"].as_str()));
    }
    ok(&json!({
        "date": date,
        "as_of": if date == today { Some(to_local(policy.tz, now).to_rfc3339()) } else { None },
        "classify_from": before,
        "items": items,
        "total": items.len(),
    }))
}

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
async fn employee_days(
    State(api): State<Arc<Api>>,
    c: Caller,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    let e = visible_employee(&api, &c, &id).await?;
    let first = match q.get("month") {
        Some(m) => parse_month(m)?,
        None => api.today(),
    };
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
async fn month(
    State(api): State<Arc<Api>>,
    c: Caller,
    Path(m): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    people(&c)?;
    let first = parse_month(&m)?;
    let p = paging(&q)?;
    let team = team_filter(&c, &q)?;
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
async fn month_grid(
    State(api): State<Arc<Api>>,
    c: Caller,
    Path(m): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    use super::grid;
    people(&c)?;
    let first = parse_month(&m)?;
    let p = paging(&q)?;
    let team = team_filter(&c, &q)?;
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
async fn publish(State(api): State<Arc<Api>>, c: Caller, Path(m): Path<String>) -> ApiResult {
    hr_only(&c)?;
    let first = parse_month(&m)?;
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
async fn export(
    State(api): State<Arc<Api>>,
    c: Caller,
    Path(m): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    hr_only(&c)?;
    let first = parse_month(&m)?;
    let lang = match q.get("lang").map(String::as_str) {
        None | Some("en") => crate::export::Lang::En,
        Some("zh") => crate::export::Lang::Zh,
        Some(o) => return Err(ApiError::BadRequest(format!("lang: {o:?} is not en or zh"))),
    };
    let policies = api.policies();
    let data = hr::month_data(&api.store, &*policies, first, |_| true).await?;
    // Several policies: every group's categories and rules.
    let shown = policies.for_display();
    let label = data.month.clone();
    match q.get("format").map(String::as_str).unwrap_or("csv") {
        "csv" => {
            let view = match q.get("view") {
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
async fn punches(
    State(api): State<Arc<Api>>,
    c: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    people(&c)?;
    let p = paging(&q)?;
    let date = match q.get("date") {
        Some(d) => parse_date("date", d)?,
        None => return Err(ApiError::BadRequest("date: required (YYYY-MM-DD)".into())),
    };
    let employee = q.get("employee").filter(|e| !e.is_empty());
    if let Some(e) = employee {
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
    let mut rows = api
        .store
        .punches(lo, hi, employee.map(String::as_str))
        .await?;
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
async fn add_entry(State(api): State<Arc<Api>>, c: Caller, JsonBody(b): JsonBody) -> ApiResult {
    people(&c)?;
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
async fn add_correction(
    State(api): State<Arc<Api>>,
    c: Caller,
    JsonBody(b): JsonBody,
) -> ApiResult {
    people(&c)?;
    let b: CorrectionBody = body(&b)?;
    if b.override_reason.is_some() {
        // 补卡 limits are HR's to override, not a supervisor's.
        hr_only(&c)?;
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
async fn appeals(
    State(api): State<Arc<Api>>,
    c: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    people(&c)?;
    let p = paging(&q)?;
    let status = q.get("status").map(String::as_str);
    let mut rows = hr::list_appeals(&api.store, &*api.policies(), status, api.now()).await?;
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
async fn file_appeal(State(api): State<Arc<Api>>, c: Caller, JsonBody(b): JsonBody) -> ApiResult {
    people(&c)?;
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
    created(&a)
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
async fn answer_appeal(
    State(api): State<Arc<Api>>,
    c: Caller,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> ApiResult {
    hr_only(&c)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("id: {id:?} is not an appeal id")))?;
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
    ok(&a)
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
async fn year(State(api): State<Arc<Api>>, c: Caller, Path(y): Path<String>) -> ApiResult {
    hr_only(&c)?;
    let year = hr::year::parse_year(&y)?;
    let policy = api.policy();
    let items = hr::year::year_results(&api.store, &*api.policies(), year).await?;
    ok(&json!({
        "year": year,
        "pass_mark": policy.hr.pass_mark,
        "items": items,
    }))
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
async fn quarantine(
    State(api): State<Arc<Api>>,
    c: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult {
    terminals_role(&c)?;
    let p = paging(&q)?;
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
async fn replay_quarantine(
    State(api): State<Arc<Api>>,
    c: Caller,
    JsonBody(b): JsonBody,
) -> ApiResult {
    hr_only(&c)?;
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
async fn terminals(State(api): State<Arc<Api>>, c: Caller) -> ApiResult {
    terminals_role(&c)?;
    let rows = api.store.terminals().await?;
    ok(&json!({"items": rows}))
}
