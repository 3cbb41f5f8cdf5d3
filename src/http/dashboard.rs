//! The HR dashboard at `/`: one static page (no front-end build) that
//! calls the API with a bearer token entered in the page and kept in
//! `sessionStorage` (or passed once as `#token=…` in the address, which
//! browsers do not send to the server). Labels are Chinese or English,
//! chosen from `Accept-Language` when the page is served.
//!
//! The page shows today by team (refreshed every minute), who is missing,
//! the month's attendance sheet (employees × days from
//! `GET /api/v1/months/{month}/grid`, with a legend, a team filter, the
//! export and a print stylesheet without the token box and buttons), a
//! per-team attendance-rate chart drawn as inline SVG (no library), a
//! person's month, the scores and the quarantine. Times are shown in the
//! policy's zone to the minute.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::api::Api;
use crate::domain::time::to_local;

const PAGE: &str = include_str!("dashboard.html");

/// `zh` when the first language the client names is Chinese, else `en`.
pub fn pick_lang(accept: Option<&str>) -> &'static str {
    let first = accept
        .unwrap_or("")
        .split(',')
        .map(|p| {
            p.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .find(|p| !p.is_empty())
        .unwrap_or_default();
    if first.starts_with("zh") { "zh" } else { "en" }
}

/// The dashboard route.
pub fn router(api: Arc<Api>) -> Router {
    Router::new().route("/", get(page)).with_state(api)
}

async fn page(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let lang = pick_lang(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let today = to_local(api.policy().tz, (api.clock)())
        .date_naive()
        .to_string();
    let html = PAGE.replace("__LANG__", lang).replace("__TODAY__", &today);
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            // The page loads nothing from elsewhere and talks only to its
            // own origin; it may not be framed.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::pick_lang;

    #[test]
    fn language_from_accept_language() {
        assert_eq!(pick_lang(Some("zh-CN,zh;q=0.9,en;q=0.8")), "zh");
        assert_eq!(pick_lang(Some("en-US,en;q=0.9,zh;q=0.5")), "en");
        assert_eq!(pick_lang(None), "en");
    }
}
