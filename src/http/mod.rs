//! The daemon's HTTP server: `/healthz`, `/metrics`, the HR API under
//! `/api/v1/` ([`api`], roles in [`auth`], its description in [`openapi`],
//! the month's attendance sheet built in [`grid`]) and the dashboard at
//! `/` ([`dashboard`]).
//!
//! [`router`] builds the routes from shared state and is what tests call;
//! [`serve`] binds nothing itself and runs until the shutdown token fires,
//! with the header, idle and connection limits of [`listener`].

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod grid;
pub mod openapi;

pub use crate::listener;
pub use crate::listener::{DEFAULT_MAX_CONNECTIONS, Limits};

// The configuration's default for `[http] max_connections` is the listener's.
const _: () = assert!(DEFAULT_MAX_CONNECTIONS == crate::config::DEFAULT_MAX_CONNECTIONS);

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use crate::health::Health;
use crate::metrics::Metrics;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Component states for `/healthz`.
    pub health: Arc<Health>,
    /// The HR API and dashboard, when the daemon has a store.
    pub api: Option<Arc<api::Api>>,
}

/// Longest a handler may take before the request is answered 503 (a
/// year's export of a large site takes seconds, not minutes).
pub const HANDLER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Workbooks are zip files already: not compressed again.
const XLSX_PREFIX: &str = "application/vnd.openxmlformats";

/// The routes, with `tower-http`'s layers: gzip for clients that accept it
/// (a day of 10,000 verdicts is megabytes of JSON), the handler time limit
/// and a `tower_http` debug span per request.
pub fn router(state: AppState) -> Router {
    let api = state.api.clone();
    let base = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(state);
    let routes = match api {
        Some(api) => base
            .merge(api::router(api.clone()))
            .merge(dashboard::router(api)),
        None => base,
    };
    routes
        .layer(
            tower_http::compression::CompressionLayer::new().compress_when(
                DefaultPredicate::new()
                    .and(NotForContentType::const_new(XLSX_PREFIX))
                    .and(NotForContentType::const_new("image/")),
            ),
        )
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            HANDLER_TIMEOUT,
        ))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// Serves `router` on an already bound listener with the default
/// [`Limits`] until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    listener::serve(listener, router, Limits::default(), shutdown).await
}

async fn healthz(State(s): State<AppState>) -> Response {
    let up = s.health.all_up();
    let body = serde_json::json!({
        "status": if up { "ok" } else { "degraded" },
        "components": s.health.snapshot(),
    });
    let code = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn metrics(State(s): State<AppState>) -> Response {
    if let Some(api) = &s.api {
        // Undelivered outbox messages per sink, counted now (bounded wait:
        // a store that hangs must not hang the scrape).
        if let Ok(Ok(pending)) = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            api.store.outbox_pending(),
        )
        .await
        {
            s.metrics.set_outbox_pending(&pending);
        }
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        s.metrics.render(),
    )
        .into_response()
}
