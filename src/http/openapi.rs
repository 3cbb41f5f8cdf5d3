//! The OpenAPI description of the HR API, served at
//! `GET /api/v1/openapi.json`: derived from the `#[utoipa::path]`
//! attributes of the handlers in [`super::api`], their request bodies, the
//! parameters and errors below and the answers of [`answers`].
//!
//! The parameter and error types only describe what the handlers read and
//! write (their extractors in `api/extract.rs` parse the query string by
//! hand, and errors are answered `{"error": …}`); they are never
//! constructed.

// Descriptions of JSON, never built or read.
#![allow(dead_code)]

use std::sync::LazyLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoParams, Modify, OpenApi, ToResponse, ToSchema};

use super::api;

pub mod answers;
pub use answers::*;

/// The description as a whole.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "attendd HR API",
        version = "1",
        description = "Bearer tokens from [[http.tokens]], each with a role: hr, supervisor:{team}, terminal-admin. 401: missing or unknown token; 403: outside the role or team (also for unknown employee ids asked by a supervisor). Internal errors are logged and answered without detail.",
    ),
    paths(
        api::about::openapi,
        api::about::whoami,
        api::about::policy,
        api::days::days,
        api::days::summary,
        api::days::missing,
        api::months::employee_days,
        api::months::month,
        api::months::publish,
        api::months::export,
        api::months::month_grid,
        api::months::year,
        api::terminals::punches,
        api::ledger::add_entry,
        api::ledger::add_correction,
        api::ledger::appeals,
        api::ledger::file_appeal,
        api::ledger::answer_appeal,
        api::terminals::quarantine,
        api::terminals::replay_quarantine,
        api::terminals::terminals,
    ),
    components(
        schemas(Error, Page),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            Internal,
            UnsupportedMediaType
        )
    ),
    security(("bearer" = [])),
    modifiers(&Bearer),
)]
pub struct ApiDoc;

/// The `bearer` security scheme; `openapi.json` itself needs none.
struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        if let Some(op) = doc
            .paths
            .paths
            .get_mut("/api/v1/openapi.json")
            .and_then(|item| item.get.as_mut())
        {
            op.security = Some(Vec::new());
        }
        // The handlers' module is no grouping a reader needs.
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                op.tags = None;
            }
        }
    }
}

/// The description as JSON, built once.
pub fn json() -> Result<&'static str, &'static str> {
    static DOC: LazyLock<Result<String, String>> =
        LazyLock::new(|| ApiDoc::openapi().to_json().map_err(|e| e.to_string()));
    DOC.as_deref().map_err(String::as_str)
}

// ---- Errors ----

/// Every error answer: `{"error": "…"}`.
#[derive(ToSchema)]
pub struct Error {
    /// What went wrong; for 400 it starts with the field's name.
    pub error: String,
}

/// a parameter or body field is malformed; the message starts with its name
#[derive(ToResponse)]
pub struct BadRequest(Error);

/// missing or unknown bearer token
#[derive(ToResponse)]
#[response(headers(("WWW-Authenticate" = String, description = "Bearer")))]
pub struct Unauthorized(Error);

/// not allowed for this token
#[derive(ToResponse)]
pub struct Forbidden(Error);

/// not found (hr only)
#[derive(ToResponse)]
pub struct NotFound(Error);

/// published month, month not yet closed, appeal window closed, appeal already answered, correction limits reached
#[derive(ToResponse)]
pub struct Conflict(Error);

/// internal error, logged
#[derive(ToResponse)]
pub struct Internal(Error);

/// the body's Content-Type is not application/json
#[derive(ToResponse)]
pub struct UnsupportedMediaType(Error);

// ---- Parameters ----

/// A local date in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DatePath {
    /// YYYY-MM-DD, from 2000-01-01 to 2100-12-31
    #[param(
        pattern = "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        example = "2026-11-02"
    )]
    pub date: String,
}

/// A month in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MonthPath {
    /// YYYY-MM, from 2000-01 to 2100-12
    #[param(pattern = "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$", example = "2026-11")]
    pub month: String,
}

/// A year in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct YearPath {
    /// YYYY, from 2000 to 2100
    #[param(pattern = "^(20[0-9]{2}|2100)$", example = "2026")]
    pub year: String,
}

/// An employee in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EmployeePath {
    /// employee id
    #[param(example = "E001")]
    pub id: String,
}

/// An appeal in the path.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AppealPath {
    /// appeal id
    #[param(pattern = "^[0-9]{1,18}$", example = "1")]
    pub id: String,
}

/// `team` of the people lists.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TeamQuery {
    /// only this team (a supervisor may name only their own)
    pub team: Option<String>,
}

/// `status` of the daily table.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    /// only this status
    pub status: Option<String>,
}

/// Paging of the lists (`limit` default 500, at most 10000).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// page size, 1..=10000, default 500
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<u32>,
    /// items to skip, default 0
    #[param(minimum = 0)]
    pub offset: Option<u32>,
}

/// `month` of an employee's month.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmployeeMonthQuery {
    /// YYYY-MM, from 2000-01 to 2100-12, default this month
    #[param(pattern = "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])$", example = "2026-11")]
    pub month: Option<String>,
}

/// What an export holds.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// csv (default) or xlsx
    #[param(inline)]
    pub format: Option<ExportFormat>,
    /// en (default) or zh
    #[param(inline)]
    pub lang: Option<ExportLang>,
    /// csv only: days (default), deductions or scores
    #[param(inline)]
    pub view: Option<ExportView>,
}

/// Export file format.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportFormat {
    Csv,
    Xlsx,
}

/// Export language.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportLang {
    En,
    Zh,
}

/// CSV export view.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportView {
    Days,
    Deductions,
    Scores,
}

/// The punches' date and employee.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PunchesQuery {
    /// YYYY-MM-DD, from 2000-01-01 to 2100-12-31, required
    #[param(
        pattern = "^(20[0-9]{2}|2100)-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$",
        example = "2026-11-02"
    )]
    pub date: String,
    /// employee id
    pub employee: Option<String>,
}

/// `status` of the appeals list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AppealsQuery {
    /// open, overdue (open and not answered within the policy's appeal_answer_days), upheld or rejected
    pub status: Option<String>,
}

// ---- Values of request bodies (the bodies are in [`super::api`]) ----

/// Deduction or bonus.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum EntryKind {
    Deduction,
    Bonus,
}

/// An appeal's answer.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Decision {
    Upheld,
    Rejected,
}
