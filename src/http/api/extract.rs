//! What a handler takes from its request, typed: who calls and whether
//! their role reaches the route, the values in the path, the list
//! parameters of the query string and JSON bodies.
//!
//! Axum runs extractors in argument order, and the first to fail answers.
//! The handlers list them so that the checks keep this order: the token
//! (401), the path's parameters decode (400), the role (403), the path's
//! values (400, the field named), the query's parameters (400) in the
//! order the handler lists them, then what needs the store. Query
//! parameters no route reads are ignored; a repeated one counts once, its
//! last value.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::IntoResponse;
use chrono::NaiveDate;

use super::{Api, ApiError, DEFAULT_LIMIT, MAX_LIMIT, parse_date, visible_employee};
use crate::hr;
use crate::http::auth::{Caller, Role, authenticate};
use crate::store::EmployeeRecord;

/// The caller of a bearer token; 401 without a known one. The first
/// extractor to ask keeps the answer in the request's extensions, so the
/// guards and [`Team`] of one request authenticate once.
impl FromRequestParts<Arc<Api>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        if let Some(c) = parts.extensions.get::<Caller>() {
            return Ok(c.clone());
        }
        let h = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let c = authenticate(&api.tokens(), h).ok_or(ApiError::Unauthorized)?;
        parts.extensions.insert(c.clone());
        Ok(c)
    }
}

/// A role guard: a [`Caller`] whose role the route admits, 403 otherwise.
pub trait Guard: Sized {
    /// Whether this role may call the route.
    fn admits(role: &Role) -> bool;

    /// The guard around a caller it admits.
    fn wrap(c: Caller) -> Self;

    /// The guard, or 403.
    fn admit(c: Caller) -> Result<Self, ApiError> {
        if Self::admits(&c.role) {
            Ok(Self::wrap(c))
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// HR only.
#[derive(Clone, Debug)]
pub struct Hr(pub Caller);

/// HR and supervisors: the routes about people (a supervisor's reach is
/// their team, checked by [`Team`] and [`visible_employee`]).
#[derive(Clone, Debug)]
pub struct People(pub Caller);

/// HR and terminal administrators: quarantine and terminals.
#[derive(Clone, Debug)]
pub struct TerminalAdmin(
    #[expect(dead_code, reason = "its routes answer alike whoever calls")] pub Caller,
);

impl Guard for Hr {
    fn admits(role: &Role) -> bool {
        *role == Role::Hr
    }
    fn wrap(c: Caller) -> Self {
        Hr(c)
    }
}

impl Guard for People {
    fn admits(role: &Role) -> bool {
        !matches!(role, Role::TerminalAdmin)
    }
    fn wrap(c: Caller) -> Self {
        People(c)
    }
}

impl Guard for TerminalAdmin {
    fn admits(role: &Role) -> bool {
        matches!(role, Role::Hr | Role::TerminalAdmin)
    }
    fn wrap(c: Caller) -> Self {
        TerminalAdmin(c)
    }
}

/// 400 with axum's own text when a path parameter is not UTF-8 once
/// percent-decoded. The guards run it between the token and the role,
/// where the handlers' `Path` extractor used to fail.
async fn path_decodes(parts: &mut Parts) -> Result<(), ApiError> {
    match Path::<Vec<String>>::from_request_parts(parts, &()).await {
        Err(e @ PathRejection::FailedToDeserializePathParams(_)) => {
            Err(ApiError::Rejected(Box::new(e.into_response())))
        }
        _ => Ok(()),
    }
}

/// The token (401), the path (400), the role (403).
async fn guard<G: Guard>(parts: &mut Parts, api: &Arc<Api>) -> Result<G, ApiError> {
    let c = Caller::from_request_parts(parts, api).await?;
    path_decodes(parts).await?;
    G::admit(c)
}

macro_rules! guard_extractor {
    ($($g:ty),*) => {$(
        impl FromRequestParts<Arc<Api>> for $g {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                api: &Arc<Api>,
            ) -> Result<Self, ApiError> {
                guard(parts, api).await
            }
        }
    )*};
}

guard_extractor!(Hr, People, TerminalAdmin);

/// The route's one path parameter, as sent.
async fn path_param(parts: &mut Parts) -> Result<String, ApiError> {
    Path::<String>::from_request_parts(parts, &())
        .await
        .map(|Path(s)| s)
        .map_err(|e| ApiError::Rejected(Box::new(e.into_response())))
}

/// The query string, name → value.
fn query(parts: &Parts) -> Result<HashMap<String, String>, ApiError> {
    Query::<HashMap<String, String>>::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .map_err(|e| ApiError::Rejected(Box::new(e.into_response())))
}

/// `{date}`: a date from 2000-01-01 to 2100-12-31; 400 `date: …`.
#[derive(Clone, Copy, Debug)]
pub struct DatePath(pub NaiveDate);

impl<S: Send + Sync> FromRequestParts<S> for DatePath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse_date("date", &path_param(parts).await?).map(DatePath)
    }
}

/// `{month}`: `YYYY-MM`, its first day; 400 `month: …`.
#[derive(Clone, Copy, Debug)]
pub struct MonthPath(pub NaiveDate);

impl<S: Send + Sync> FromRequestParts<S> for MonthPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(MonthPath(hr::parse_month(&path_param(parts).await?)?))
    }
}

/// `{year}`: `YYYY` from 2000 to 2100; 400 `year: …`.
#[derive(Clone, Copy, Debug)]
pub struct YearPath(pub i32);

impl<S: Send + Sync> FromRequestParts<S> for YearPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(YearPath(hr::year::parse_year(&path_param(parts).await?)?))
    }
}

/// `{id}` of an appeal; 400 `id: …`. Taken as a `Result` where the role
/// and the body are checked before it.
#[derive(Clone, Copy, Debug)]
pub struct AppealId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for AppealId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let id = path_param(parts).await?;
        id.parse()
            .map(AppealId)
            .map_err(|_| ApiError::BadRequest(format!("id: {id:?} is not an appeal id")))
    }
}

/// `{id}` of an employee the caller may see ([`visible_employee`]): 403
/// for a terminal administrator, and for a supervisor when the id is
/// unknown or of another team; 404 for HR when unknown.
#[derive(Clone, Debug)]
pub struct Visible(pub EmployeeRecord);

impl FromRequestParts<Arc<Api>> for Visible {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        let c = Caller::from_request_parts(parts, api).await?;
        let id = path_param(parts).await?;
        visible_employee(api, &c, &id).await.map(Visible)
    }
}

/// `limit` (default [`DEFAULT_LIMIT`], 1 to [`MAX_LIMIT`]) and `offset`
/// (default 0) of a list; 400 naming the one that is not a number in
/// range, `limit` first.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    /// Most items in the page.
    pub limit: usize,
    /// Items skipped before it.
    pub offset: usize,
}

impl Paging {
    fn from_query(q: &HashMap<String, String>) -> Result<Paging, ApiError> {
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
}

impl<S: Send + Sync> FromRequestParts<S> for Paging {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Paging::from_query(&query(parts)?)
    }
}

/// The team a list keeps: a supervisor's own (403 when `team` names
/// another), or HR's `team` parameter (none: every team).
#[derive(Clone, Debug)]
pub struct Team(pub Option<String>);

impl FromRequestParts<Arc<Api>> for Team {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        let c = Caller::from_request_parts(parts, api).await?;
        let asked = query(parts)?.remove("team");
        match (&c.role, asked) {
            (Role::Supervisor(t), Some(a)) if &a != t => Err(ApiError::Forbidden),
            (Role::Supervisor(t), _) => Ok(Team(Some(t.clone()))),
            (_, a) => Ok(Team(a)),
        }
    }
}

/// `status`, when given: the status a list keeps (checked, if at all, by
/// the list that reads it).
#[derive(Clone, Debug)]
pub struct Status(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for Status {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Ok(Status(query(parts)?.remove("status")))
    }
}

/// `date`, required: a date from 2000-01-01 to 2100-12-31; 400 `date: …`.
#[derive(Clone, Copy, Debug)]
pub struct DateQuery(pub NaiveDate);

impl<S: Send + Sync> FromRequestParts<S> for DateQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match query(parts)?.get("date") {
            Some(d) => parse_date("date", d).map(DateQuery),
            None => Err(ApiError::BadRequest("date: required (YYYY-MM-DD)".into())),
        }
    }
}

/// `employee`, when given and not empty (not looked up here).
#[derive(Clone, Debug)]
pub struct EmployeeQuery(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for EmployeeQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let e = query(parts)?.remove("employee").filter(|e| !e.is_empty());
        Ok(EmployeeQuery(e))
    }
}

/// `month`, when given: `YYYY-MM`, its first day; 400 `month: …`.
#[derive(Clone, Copy, Debug)]
pub struct MonthQuery(pub Option<NaiveDate>);

impl<S: Send + Sync> FromRequestParts<S> for MonthQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match query(parts)?.get("month") {
            Some(m) => Ok(MonthQuery(Some(hr::parse_month(m)?))),
            None => Ok(MonthQuery(None)),
        }
    }
}

/// `lang` of an export: `en` (default) or `zh`; 400 `lang: …`.
#[derive(Clone, Copy, Debug)]
pub struct Lang(pub crate::export::Lang);

impl<S: Send + Sync> FromRequestParts<S> for Lang {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match query(parts)?.get("lang").map(String::as_str) {
            None | Some("en") => Ok(Lang(crate::export::Lang::En)),
            Some("zh") => Ok(Lang(crate::export::Lang::Zh)),
            Some(o) => Err(ApiError::BadRequest(format!("lang: {o:?} is not en or zh"))),
        }
    }
}

/// `format` and `view` of an export, as sent: they are checked after the
/// month is read, and `view` only for CSV.
#[derive(Clone, Debug)]
pub struct ExportFormat {
    /// `csv` (default) or `xlsx`.
    pub format: Option<String>,
    /// CSV only: `days` (default), `deductions` or `scores`.
    pub view: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ExportFormat {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut q = query(parts)?;
        Ok(ExportFormat {
            format: q.remove("format"),
            view: q.remove("view"),
        })
    }
}

/// The body of a JSON route and its caller, admitted by the guard `G`.
/// Its `Content-Type` must be `application/json` (parameters such as
/// `charset` allowed) or an `application/…+json` type; anything else, or
/// none, is 415. Checked in this order: the token (401), the path (400),
/// the content type (415), reading the body (400), the role (403); the
/// handler parses the bytes ([`super::body`], 400 `body: …`).
pub struct JsonBody<G>(pub G, pub Bytes);

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

impl<G: Guard + Send> FromRequest<Arc<Api>> for JsonBody<G> {
    type Rejection = ApiError;

    async fn from_request(req: Request, api: &Arc<Api>) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let c = Caller::from_request_parts(&mut parts, api).await?;
        path_decodes(&mut parts).await?;
        let ct = parts
            .headers
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
        let b = Bytes::from_request(Request::from_parts(parts, body), api)
            .await
            .map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
        Ok(JsonBody(G::admit(c)?, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/json"));
        assert!(!is_json("application/x-www-form-urlencoded"));
        assert!(!is_json(""));
    }

    #[test]
    fn paging_defaults_and_bounds() {
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let p = Paging::from_query(&q(&[])).unwrap();
        assert_eq!((p.limit, p.offset), (DEFAULT_LIMIT, 0));
        let msg = |r: Result<Paging, ApiError>| match r {
            Err(ApiError::BadRequest(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            msg(Paging::from_query(&q(&[("limit", "x"), ("offset", "y")]))),
            "limit: \"x\" is not a non-negative integer"
        );
        assert_eq!(
            msg(Paging::from_query(&q(&[("limit", "0"), ("offset", "y")]))),
            "limit: 0 is not in 1..=10000"
        );
        assert_eq!(
            msg(Paging::from_query(&q(&[("offset", "-1")]))),
            "offset: \"-1\" is not a non-negative integer"
        );
    }
}
