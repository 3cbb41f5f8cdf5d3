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
    /// The store, for the HR API; without it only health and metrics are
    /// served.
    pub store: Option<crate::store::Store>,
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

/// Opens the store, builds the pipeline and runs the daemon until
/// `shutdown` fires. Exit code to use on failure: 1 for configuration and
/// listen errors, 2 for the store.
pub async fn run_daemon(config: Config, shutdown: CancellationToken) -> Result<(), (u8, String)> {
    use std::collections::HashMap;
    let store = crate::store::Store::open(&config.store_url)
        .await
        .map_err(|e| {
            (
                2,
                format!("store {}: {e}", crate::store::redact_url(&config.store_url)),
            )
        })?;
    let policy = Arc::new(config.policy.clone());
    let mut sources = HashMap::new();
    let tz_of = |tz: &Option<String>| {
        tz.as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(policy.tz)
    };
    let empty = toml::Table::new();
    for (i, m) in config.sources.mqtt.iter().enumerate() {
        let decoder = crate::ingest::decode::Decoder::with_options(
            &m.decoder,
            m.decoder_options.as_ref().unwrap_or(&empty),
        )
        .map_err(|e| (1, format!("source.mqtt[{i}].decoder: {e}")))?;
        sources.insert(
            Arc::from(format!("mqtt[{i}]").as_str()),
            crate::pipeline::SourceDecoding {
                decoder,
                tz: tz_of(&m.timezone),
            },
        );
    }
    for (i, s) in config.sources.serial.iter().enumerate() {
        let decoder = crate::ingest::decode::Decoder::with_options(
            &s.decoder,
            s.decoder_options.as_ref().unwrap_or(&empty),
        )
        .map_err(|e| (1, format!("source.serial[{i}].decoder: {e}")))?;
        sources.insert(
            Arc::from(format!("serial[{i}]").as_str()),
            crate::pipeline::SourceDecoding {
                decoder,
                tz: tz_of(&s.timezone),
            },
        );
    }
    let metrics = Arc::new(Metrics::default());
    let pipeline = Arc::new(
        crate::pipeline::Pipeline::new(
            store.clone(),
            policy,
            sources,
            metrics.clone(),
            chrono::Duration::seconds(config.ingest.max_future_skew_seconds),
        )
        .await
        .map_err(|e| (2, format!("store: {e}")))?,
    );
    let health = Arc::new(Health::default());
    health.set("store", true, store.engine(), chrono::Utc::now());
    let shared = Shared {
        metrics,
        health,
        heartbeats: vec![("pipeline".into(), pipeline.heartbeat())],
        store: Some(store.clone()),
    };
    let recompute_stop = CancellationToken::new();
    let recompute = tokio::spawn(pipeline.clone().recompute_loop(
        Duration::from_secs(config.ingest.recompute_interval_seconds.max(1)),
        recompute_stop.clone(),
    ));
    let result = run(&config, pipeline, shared, shutdown).await;
    recompute_stop.cancel();
    let _ = recompute.await;
    store.close().await;
    result.map_err(|e| (1, e.to_string()))
}

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
            api: shared.store.clone().map(|s| {
                Arc::new(crate::http::api::Api::new(
                    s,
                    Arc::new(config.policy.clone()),
                    config.http_tokens.clone(),
                ))
            }),
        });
        let token = shutdown.clone();
        tracker.spawn(async move {
            if let Err(e) = crate::http::serve(listener, router, token).await {
                error!("http server failed: {e}");
            }
        });
    }

    // Embedded brokers stop after the sources drained, so the last
    // acknowledgements reach them.
    let broker_stop = CancellationToken::new();
    let brokers = TaskTracker::new();
    for (i, m) in config.sources.mqtt.iter().enumerate() {
        let name = format!("mqtt[{i}]");
        let mut settings = if m.broker == "embedded" {
            let listen = m.listen.as_deref().unwrap_or("127.0.0.1:1883");
            let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
                StartError::Other(format!(
                    "source.mqtt[{i}].listen: {listen:?} is not an address"
                ))
            })?;
            let broker =
                crate::broker::EmbeddedBroker::bind(addr, crate::broker::BrokerOptions::default())
                    .map_err(|e| {
                        StartError::Other(
                            e.with_config_key(format!("source.mqtt[{i}].broker = \"embedded\""))
                                .to_string(),
                        )
                    })?;
            let local = broker.local_addr();
            listening.push(format!("embedded broker on {local}"));
            let token = broker_stop.clone();
            brokers.spawn(async move {
                if let Err(e) = broker.run(token).await {
                    error!("embedded broker failed: {e}");
                }
            });
            let mut s = crate::source::mqtt::MqttSettings::from_url(
                &name,
                &format!("mqtt://{local}"),
                m.topics.clone(),
                &m.client_id,
            )
            .map_err(StartError::Other)?;
            s.batch_max = m.batch_max;
            s
        } else {
            m.settings(&name)
                .map_err(|e| StartError::Other(format!("source.mqtt[{i}].broker: {e}")))?
        };
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
