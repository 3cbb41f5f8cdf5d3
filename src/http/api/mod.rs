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
//!
//! This file holds the shared state ([`Api`]), the errors ([`ApiError`]),
//! the router and the helpers of the answers; the handlers are in a file
//! per concern, each beside its `#[utoipa::path]`:
//!
//! - `about`: the description, `whoami`, the policy in force;
//! - `days`: a day's table, its summary and who is missing;
//! - `months`: an employee's month, a month's scores, sheet,
//!   publication and export, and a year's results;
//! - `ledger`: manual entries, corrections and appeals;
//! - `terminals`: punches, quarantine and its replay, terminals;
//! - `page_cache`: built pages of the daily table, kept while current.
//!
//! What a handler takes from the request (role guards, path values, list
//! parameters, JSON bodies) is typed in `extract`, which also says the
//! order the checks run in.

pub(super) mod about;
pub(super) mod days;
mod extract;
pub(super) mod ledger;
pub(super) mod months;
pub(crate) mod page_cache;
pub(super) mod terminals;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::auth::{ApiToken, Caller, Role};
use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::hr::HrError;
use crate::policy_file::{Policies, PolicySet};
use crate::store::{EmployeeRecord, Store, StoreError};

use extract::{Guard, Paging, People};

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
    /// Built pages of the daily table (`[http] page_cache_mib`).
    pub(crate) pages: Arc<page_cache::PageCache>,
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
            pages: Arc::new(page_cache::PageCache::new(
                crate::config::DEFAULT_PAGE_CACHE_MIB as usize * 1024 * 1024,
            )),
        }
    }

    /// The same API with another "now" (tests, simulations).
    pub fn with_clock(mut self, clock: Clock) -> Api {
        self.clock = clock;
        self
    }

    /// Keeps up to `mib` MiB of built daily-table pages (0: none).
    pub fn with_page_cache(mut self, mib: u32) -> Api {
        self.pages = Arc::new(page_cache::PageCache::new(mib as usize * 1024 * 1024));
        self
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

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub(crate) fn today(&self) -> NaiveDate {
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
    /// An axum extractor's own answer, sent as it is (400 for a path
    /// parameter that is not UTF-8).
    Rejected(Box<Response>),
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
            ApiError::Rejected(r) => return *r,
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

/// The employee, when the caller may see them: 404 for HR when unknown,
/// 403 for a supervisor when unknown or of another team.
async fn visible_employee(api: &Api, c: &Caller, id: &str) -> Result<EmployeeRecord, ApiError> {
    if !People::admits(&c.role) {
        return Err(ApiError::Forbidden);
    }
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

/// A JSON body of type `T`; 400 `body: …` when it is not one.
fn body<T: for<'de> Deserialize<'de>>(b: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(b).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

/// The API routes, under `/api/v1/`.
pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(about::openapi))
        .route("/api/v1/whoami", get(about::whoami))
        .route("/api/v1/policy", get(about::policy))
        .route("/api/v1/days/{date}", get(days::days))
        .route("/api/v1/summaries/{date}", get(days::summary))
        .route("/api/v1/missing/{date}", get(days::missing))
        .route("/api/v1/employees/{id}/days", get(months::employee_days))
        .route("/api/v1/months/{month}", get(months::month))
        .route("/api/v1/months/{month}/publish", post(months::publish))
        .route("/api/v1/months/{month}/export", get(months::export))
        .route("/api/v1/months/{month}/grid", get(months::month_grid))
        .route("/api/v1/years/{year}", get(months::year))
        .route("/api/v1/punches", get(terminals::punches))
        .route("/api/v1/ledger", post(ledger::add_entry))
        .route("/api/v1/corrections", post(ledger::add_correction))
        .route(
            "/api/v1/appeals",
            get(ledger::appeals).post(ledger::file_appeal),
        )
        .route("/api/v1/appeals/{id}/answer", post(ledger::answer_appeal))
        .route("/api/v1/quarantine", get(terminals::quarantine))
        .route(
            "/api/v1/quarantine/replay",
            post(terminals::replay_quarantine),
        )
        .route("/api/v1/terminals", get(terminals::terminals))
        .with_state(api)
}
