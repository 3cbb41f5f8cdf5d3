//! The daemon's task tree: sources, the HTTP server and the watchdog, all
//! under one shutdown token and one task tracker.
//!
//! [`run`] takes the sink (the pipeline into the store) and the shutdown
//! trigger as arguments, so tests run the whole daemon in-process.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::service::{self, Heartbeat};
use crate::source::Sink;

/// Shared pieces the daemon's tasks use.
#[derive(Clone, Debug, Default)]
pub struct Shared {
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Component states for `/healthz`.
    pub health: Arc<Health>,
    /// Heartbeats the watchdog requires to move.
    pub heartbeats: Vec<(String, Heartbeat)>,
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listen address is taken or not allowed.
    #[error("cannot listen on {addr} ({key}): {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The config key that names it.
        key: String,
        /// Why.
        source: std::io::Error,
    },
    /// Anything else that stops start-up.
    #[error("{0}")]
    Other(String),
}

/// How long shutdown waits for sources to commit and acknowledge.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs sources and the HTTP server until `shutdown` fires, then drains.
pub async fn run<S: Sink>(
    config: &Config,
    sink: Arc<S>,
    shared: Shared,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let tracker = TaskTracker::new();
    let mut listening = Vec::new();

    if let Some(addr) = config.http_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Listen {
                addr: addr.to_string(),
                key: "http.listen".into(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map_err(|e| StartError::Other(e.to_string()))?;
        listening.push(format!("http on {local}"));
        let router = crate::http::router(crate::http::AppState {
            metrics: shared.metrics.clone(),
            health: shared.health.clone(),
        });
        let token = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = crate::http::serve(listener, router, token).await {
                error!("http server failed: {e}");
            }
        });
    }

    for (i, m) in config.sources.mqtt.iter().enumerate() {
        let name = format!("mqtt[{i}]");
        if m.broker == "embedded" {
            return Err(StartError::Other(format!(
                "source.mqtt[{i}].broker = \"embedded\" is not available in this build"
            )));
        }
        let mut settings = m
            .settings(&name)
            .map_err(|e| StartError::Other(format!("source.mqtt[{i}].broker: {e}")))?;
        settings.health = Some(shared.health.clone());
        shared
            .health
            .set(&name, false, "connecting", chrono::Utc::now());
        tracker.spawn(crate::source::mqtt::run(
            settings,
            sink.clone(),
            shutdown.clone(),
        ));
    }
    for (i, s) in config.sources.serial.iter().enumerate() {
        let name = format!("serial[{i}]");
        let mut settings = s.settings(&name);
        settings.health = Some(shared.health.clone());
        shared
            .health
            .set(&name, false, "opening", chrono::Utc::now());
        tracker.spawn(crate::source::serial::run(
            settings,
            sink.clone(),
            shutdown.clone(),
        ));
    }
    tracker.spawn(service::watchdog(
        shared.heartbeats.clone(),
        shutdown.clone(),
    ));
    tracker.close();

    let status = format!(
        "running: {} mqtt, {} serial source(s){}",
        config.sources.mqtt.len(),
        config.sources.serial.len(),
        if listening.is_empty() {
            String::new()
        } else {
            format!("; {}", listening.join(", "))
        }
    );
    info!("{status}");
    service::ready(&status);

    shutdown.cancelled().await;
    service::stopping("draining: committing and acknowledging what was received");
    info!("shutting down: draining sources");
    if tokio::time::timeout(DRAIN_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            "drain did not finish within {DRAIN_TIMEOUT:?}; un-acknowledged messages will be re-delivered"
        );
    }
    Ok(())
}
