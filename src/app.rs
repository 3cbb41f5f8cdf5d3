//! The daemon's task tree: sources, the HTTP server and the watchdog, all
//! under one shutdown token and one task tracker.
//!
//! [`run`] takes the sink (the pipeline into the store) and the shutdown
//! trigger as arguments, so tests run the whole daemon in-process.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::service::{self, Heartbeat};
use crate::source::PunchSink;

/// Shared pieces the daemon's tasks use.
#[derive(Clone, Debug, Default)]
pub struct Shared {
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Component states for `/healthz`.
    pub health: Arc<Health>,
    /// Heartbeats the watchdog requires to move.
    pub heartbeats: Vec<(String, Heartbeat)>,
    /// The store: for sources that keep state in it (push stamps) and for
    /// the HR API (without it only health and metrics are served).
    pub store: Option<crate::store::Store>,
    /// The API's policy and tokens, when the daemon can reload them;
    /// otherwise the API takes them from the configuration.
    pub api_live: Option<crate::http::api::Live>,
    /// Embedded brokers made before they listen (the sinks publish into
    /// them), by `[[source.mqtt]]` index; [`run`] makes any missing one.
    pub brokers: std::collections::HashMap<usize, crate::broker::BrokerHandle>,
    /// Catch-up requests from push listeners to the pulls reading the same
    /// terminal, by device id.
    pub catch_up: Arc<crate::source::pull::CatchUpSignals>,
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

impl From<crate::source::push::ListenError> for StartError {
    fn from(e: crate::source::push::ListenError) -> Self {
        use crate::source::push::ListenError;
        match e {
            ListenError::Listen { addr, key, source } => StartError::Listen { addr, key, source },
            ListenError::Other(why) => StartError::Other(why),
        }
    }
}

/// How long shutdown waits for sources to commit and acknowledge.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Opens the store, builds the pipeline and runs the daemon until
/// `shutdown` fires. Exit code to use on failure: 1 for configuration and
/// listen errors, 2 for the store.
pub async fn run_daemon(
    config: Config,
    shutdown: CancellationToken,
    reloads: tokio::sync::mpsc::UnboundedReceiver<()>,
) -> Result<(), (u8, String)> {
    crate::clock::init().map_err(|e| (1, e))?;
    let store = open_store(&config).await?;
    let (sources, push_devices) = source_decodings(&config)?;
    let metrics: Arc<Metrics> = Arc::new(Metrics::default());
    let health = Arc::new(Health::default());
    health.set(
        crate::health::STORE,
        true,
        store.engine(),
        crate::clock::now(),
    );
    let pipeline = Arc::new(
        crate::pipeline::Pipeline::new(
            store.clone(),
            Arc::new(config.policies.clone()),
            sources,
            metrics.clone(),
            chrono::Duration::seconds(config.ingest.max_future_skew_seconds),
        )
        .await
        .map_err(|e| (2, format!("store: {e}")))?
        .with_devices(push_devices)
        .with_health(health.clone())
        .with_classify_from(config.ingest.classify_from)
        .with_quarantine_retention(config.quarantine_retention_days),
    );
    note_first_run(&config, &store).await?;
    let shared = Shared {
        health,
        heartbeats: vec![("pipeline".into(), pipeline.heartbeat())],
        brokers: embedded_brokers(&config, &metrics),
        metrics,
        store: Some(store.clone()),
        api_live: Some(crate::http::api::live(
            config.policies.clone(),
            config.http_tokens.clone(),
        )),
        catch_up: Arc::default(),
    };
    let recompute_stop = CancellationToken::new();
    let recompute = tokio::spawn(pipeline.clone().recompute_loop(
        Duration::from_secs(config.ingest.recompute_interval_seconds.max(1)),
        recompute_stop.clone(),
    ));
    let background = start_background(
        &config,
        &store,
        &pipeline,
        &shared,
        reloads,
        &recompute_stop,
        &shutdown,
    )?;
    let result = run(&config, pipeline, shared, shutdown).await;
    recompute_stop.cancel();
    let _ = recompute.await;
    // A delivery in flight may wait on a slow sink; its claim runs out and
    // the next start retries it.
    if tokio::time::timeout(DRAIN_TIMEOUT, background.wait())
        .await
        .is_err()
    {
        warn!("scheduler or deliverer still busy after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    store.close().await;
    result.map_err(|e| (1, e.to_string()))
}

/// Opens the configured store (exit code 2 when it cannot).
async fn open_store(config: &Config) -> Result<crate::store::Store, (u8, String)> {
    crate::store::Store::open_with(&config.store_url, config.sqlite_cache_mib)
        .await
        .map_err(|e| {
            (
                2,
                format!("store {}: {e}", crate::store::redact_url(&config.store_url)),
            )
        })
}

/// How the pipeline decodes each source (by name), and the device id of
/// the push sources that stand for one terminal.
type Decodings = (
    HashMap<Arc<str>, crate::pipeline::SourceDecoding>,
    HashMap<Arc<str>, String>,
);

/// How the pipeline decodes each configured source, and the device id of
/// the push sources that stand for one terminal.
fn source_decodings(config: &Config) -> Result<Decodings, (u8, String)> {
    let policy = &config.policy;
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
                options: m.decoder_options.clone().unwrap_or_default(),
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
                options: s.decoder_options.clone().unwrap_or_default(),
            },
        );
    }
    let (push_sources, push_devices) =
        crate::source::push::decodings(&config.sources, policy.tz).map_err(|e| (1, e))?;
    sources.extend(push_sources);
    sources.extend(crate::source::pull::decodings(&config.sources, policy.tz));
    Ok((sources, push_devices))
}

/// The day the daemon first runs on a store is where it starts
/// classifying, unless configured or already fixed (policy.md). Warns
/// about employees whose policy group is no longer configured.
async fn note_first_run(config: &Config, store: &crate::store::Store) -> Result<(), (u8, String)> {
    let now = crate::clock::now();
    let today = crate::domain::time::to_local(config.policy.tz, now).date_naive();
    store
        .classification_start(config.ingest.classify_from, Some(today), now)
        .await
        .map_err(|e| (2, format!("store: {e}")))?;
    store
        .note_first_run(today, now)
        .await
        .map_err(|e| (2, format!("store: {e}")))?;
    let history = store
        .policy_history()
        .await
        .map_err(|e| (2, format!("store: {e}")))?;
    let unknown = history.unknown_groups(&config.policies);
    if !unknown.is_empty() {
        warn!(
            "employees follow policy groups that no [[policy.group]] defines ({}); \
             their days are classified with the default policy until the groups \
             are configured again or the employees are imported with another group",
            unknown.join(", ")
        );
    }
    Ok(())
}

/// Starts what runs beside the sources until `stop`: the scheduler, the
/// store probe, outbox delivery, the reload loop, and the pull sources
/// (these until `shutdown`). The tracker returned is closed.
fn start_background(
    config: &Config,
    store: &crate::store::Store,
    pipeline: &Arc<crate::pipeline::Pipeline>,
    shared: &Shared,
    reloads: tokio::sync::mpsc::UnboundedReceiver<()>,
    stop: &CancellationToken,
    shutdown: &CancellationToken,
) -> Result<TaskTracker, (u8, String)> {
    let embedded = shared.brokers.get(&0).cloned();
    let default_broker = default_sink_broker(config, embedded.as_ref());
    let sinks: crate::sinks::SinkTable = Arc::new(std::sync::RwLock::new(
        crate::sinks::table(&config.sinks, default_broker.as_ref()).map_err(|e| (1, e))?,
    ));
    // attendd_outbox_pending shows every configured sink from the start
    // (0 until /metrics counts the store's outbox).
    if let Ok(t) = sinks.read() {
        let names: Vec<(String, i64)> = t.keys().map(|k| (k.clone(), 0)).collect();
        shared.metrics.set_outbox_pending(&names);
    }
    let scheduler = Arc::new(crate::scheduler::Scheduler::new(
        store.clone(),
        plan(config),
        pipeline.drift(),
    ));
    let wake = Arc::new(tokio::sync::Notify::new());
    let background = TaskTracker::new();
    background.spawn(scheduler.clone().run(
        Duration::from_secs(config.schedule.tick_seconds.max(1)),
        stop.clone(),
    ));
    background.spawn(probe_store(
        store.clone(),
        shared.health.clone(),
        stop.clone(),
    ));
    background.spawn(crate::sinks::run(
        store.clone(),
        sinks.clone(),
        shared.metrics.clone(),
        Duration::from_secs(1),
        wake,
        stop.clone(),
    ));
    background.spawn(reload_loop(
        config.path.clone(),
        describe_restart_only(config),
        reloads,
        Reloadable {
            embedded,
            pipeline: pipeline.clone(),
            scheduler,
            sinks,
            api: shared.api_live.clone(),
        },
        stop.clone(),
    ));
    crate::source::pull::spawn(
        &config.sources,
        config.policy.tz,
        &crate::source::pull::PullShared {
            sink: pipeline.clone(),
            health: shared.health.clone(),
            metrics: shared.metrics.clone(),
            catch_up: shared.catch_up.clone(),
        },
        &background,
        shutdown,
    );
    background.close();
    Ok(background)
}

/// What the scheduler runs on, from a configuration.
fn plan(config: &Config) -> crate::scheduler::Plan {
    crate::scheduler::Plan {
        policy: Arc::new(config.policy.clone()),
        policies: Some(Arc::new(config.policies.clone())),
        schedule: config.schedule.clone(),
        routes: crate::scheduler::Route::from_config(&config.sinks),
    }
}

/// The embedded brokers' in-process handles, by source index. The first
/// source's broker lets readers subscribe to the topics of the `mqtt`
/// sinks that publish into it (those naming no broker).
fn embedded_brokers(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> std::collections::HashMap<usize, crate::broker::BrokerHandle> {
    let mut out = std::collections::HashMap::new();
    for (i, m) in config.sources.mqtt.iter().enumerate() {
        if m.broker != "embedded" {
            continue;
        }
        let roots = if i == 0 {
            config
                .sinks
                .iter()
                .filter(|k| k.kind == "mqtt" && k.broker.is_none())
                .flat_map(|k| crate::broker::output_roots(&k.topic_prefix))
                .collect()
        } else {
            Vec::new()
        };
        let options = m.broker_options(&format!("mqtt[{i}]"), roots, Some(metrics.clone()));
        out.insert(i, crate::broker::BrokerHandle::new(options));
    }
    out
}

/// The broker an `mqtt` sink without `broker` publishes to: the first MQTT
/// source's (the embedded broker in-process when embedded).
fn default_sink_broker(
    config: &Config,
    embedded: Option<&crate::broker::BrokerHandle>,
) -> Option<crate::sinks::DefaultBroker> {
    config.sources.mqtt.first().map(|m| {
        if m.broker == "embedded" {
            crate::sinks::DefaultBroker {
                url: format!("mqtt://{}", m.listen.as_deref().unwrap_or("127.0.0.1:1883")),
                credentials: None,
                embedded: embedded.cloned(),
            }
        } else {
            crate::sinks::DefaultBroker {
                url: m.broker.clone(),
                credentials: m.settings("sink").ok().and_then(|s| s.credentials),
                embedded: None,
            }
        }
    })
}

/// The parts of a configuration a reload cannot apply (they need a
/// restart), as text to compare.
fn describe_restart_only(config: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("[store]", config.store_url.clone()),
        ("[[source.*]]", format!("{:?}", config.sources)),
        ("[http]", format!("{:?}", config.http_listen)),
        ("[ingest]", format!("{:?}", config.ingest)),
    ]
}

/// What SIGHUP swaps.
struct Reloadable {
    /// The first source's embedded broker, which `mqtt` sinks publish into.
    embedded: Option<crate::broker::BrokerHandle>,
    pipeline: Arc<crate::pipeline::Pipeline>,
    scheduler: Arc<crate::scheduler::Scheduler>,
    sinks: crate::sinks::SinkTable,
    api: Option<crate::http::api::Live>,
}

/// SIGHUP: re-reads config and policy, validates them, and swaps the policy
/// (pipeline, scheduler, API), the schedule, the sinks and the API tokens;
/// an invalid file changes nothing and says why.
async fn reload_loop(
    path: std::path::PathBuf,
    running: Vec<(&'static str, String)>,
    mut reloads: tokio::sync::mpsc::UnboundedReceiver<()>,
    to: Reloadable,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            r = reloads.recv() => if r.is_none() { return },
        }
        service::reloading();
        let path2 = path.clone();
        let loaded = tokio::task::spawn_blocking(move || crate::config::load(&path2))
            .await
            .map_err(|e| crate::config::ConfigError {
                problems: vec![e.to_string()],
            })
            .and_then(|r| r);
        let outcome = match loaded {
            Err(e) => {
                error!("reload refused, still running the previous configuration and policy:\n{e}");
                "reload refused (invalid configuration); running the previous one".to_string()
            }
            Ok(new) => match crate::sinks::table(
                &new.sinks,
                default_sink_broker(&new, to.embedded.as_ref()).as_ref(),
            ) {
                Err(e) => {
                    error!("reload refused, still running the previous configuration: {e}");
                    "reload refused (invalid sink); running the previous one".to_string()
                }
                Ok(table) => {
                    for ((what, old), (_, now)) in running.iter().zip(describe_restart_only(&new)) {
                        if *old != now {
                            warn!("reload: changes to {what} take effect after a restart");
                        }
                    }
                    // The default and every group at once: `load` refused
                    // the whole file if any of them was invalid.
                    let policies = Arc::new(new.policies.clone());
                    to.pipeline.swap_policy(policies.clone());
                    to.scheduler.swap(plan(&new));
                    *to.sinks.write().unwrap_or_else(|e| e.into_inner()) = table;
                    if let Some(api) = &to.api {
                        *api.write().unwrap_or_else(|e| e.into_inner()) =
                            (policies, Arc::new(new.http_tokens.clone()));
                    }
                    info!(
                        policy = %format!("{} {}", new.policy.id, new.policy.version),
                        "reloaded configuration and policy from {}",
                        path.display()
                    );
                    let mut done =
                        format!("reloaded: policy {} {}", new.policy.id, new.policy.version);
                    for (i, (id, _)) in new.group_paths.iter().enumerate() {
                        let g = new.policies.get(i + 1);
                        done.push_str(&format!("; group {id}: {} {}", g.id, g.version));
                    }
                    done
                }
            },
        };
        service::ready(&outcome);
    }
}

/// How often the store is asked to write while it can.
const PROBE_EVERY: Duration = Duration::from_secs(10);
/// How often while it cannot, to notice soon that space came back.
const PROBE_EVERY_DOWN: Duration = Duration::from_secs(2);

/// Writes the store's probe row now and then, so that `/healthz` shows a
/// store that cannot write (a full disk) even when no punch arrives, and
/// shows it writing again once it can.
async fn probe_store(store: crate::store::Store, health: Arc<Health>, stop: CancellationToken) {
    loop {
        let up = health.store().is_none_or(|s| s.up);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(if up { PROBE_EVERY } else { PROBE_EVERY_DOWN }) => {}
        }
        let r = store.probe_write(crate::clock::now()).await;
        health.store_written(
            r.map_err(|e| e.to_string()),
            store.engine(),
            crate::clock::now(),
        );
    }
}

/// Runs sources and the HTTP server until `shutdown` fires, then drains.
pub async fn run<S: PunchSink>(
    config: &Config,
    sink: Arc<S>,
    shared: Shared,
    shutdown: CancellationToken,
) -> Result<(), StartError> {
    let tracker = TaskTracker::new();
    let mut listening = Vec::new();
    if let Some(addr) = config.http_listen {
        start_http(config, addr, &shared, &tracker, &shutdown, &mut listening).await?;
    }
    let push = crate::source::push::PushShared {
        metrics: shared.metrics.clone(),
        health: shared.health.clone(),
        store: shared.store.clone(),
        catch_up: shared.catch_up.clone(),
    };
    crate::source::push::start(
        config,
        sink.clone(),
        &push,
        &tracker,
        &shutdown,
        &mut listening,
    )
    .await?;
    start_mqtt(config, &sink, &shared, &tracker, &shutdown, &mut listening)?;
    start_serial(config, &sink, &shared, &tracker, &shutdown);
    tracker.spawn(service::watchdog(
        shared.heartbeats.clone(),
        shutdown.clone(),
    ));
    tracker.close();
    announce_ready(config, &listening);
    drain(&shutdown, &tracker).await;
    Ok(())
}

/// Binds the HTTP listener (health, metrics, and the HR API when there is a
/// store) and serves it until `shutdown`.
async fn start_http(
    config: &Config,
    addr: std::net::SocketAddr,
    shared: &Shared,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    listening: &mut Vec<String>,
) -> Result<(), StartError> {
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
            let live = shared.api_live.clone().unwrap_or_else(|| {
                crate::http::api::live(config.policies.clone(), config.http_tokens.clone())
            });
            Arc::new(
                crate::http::api::Api::with_live(s, live)
                    .with_page_cache(config.http_page_cache_mib),
            )
        }),
    });
    let token = shutdown.clone();
    let max_connections = config.http_max_connections;
    tracker.spawn(async move {
        let limits = crate::http::Limits::with_max_connections(max_connections);
        if let Err(e) = crate::http::listener::serve(listener, router, limits, token).await {
            error!("http server failed: {e}");
        }
    });
    Ok(())
}

/// Starts the MQTT sources: an embedded broker listening for terminals, or
/// a client of an external broker.
fn start_mqtt<S: PunchSink>(
    config: &Config,
    sink: &Arc<S>,
    shared: &Shared,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    listening: &mut Vec<String>,
) -> Result<(), StartError> {
    for (i, m) in config.sources.mqtt.iter().enumerate() {
        let name = format!("mqtt[{i}]");
        if m.broker == "embedded" {
            start_embedded_broker(i, m, sink, shared, tracker, shutdown, listening)?;
            continue;
        }
        let mut settings = m
            .settings(&name)
            .map_err(|e| StartError::Other(format!("source.mqtt[{i}].broker: {e}")))?;
        settings.health = Some(shared.health.clone());
        shared
            .health
            .set(&name, false, "connecting", crate::clock::now());
        tracker.spawn(crate::source::mqtt::run(
            settings,
            sink.clone(),
            shutdown.clone(),
        ));
    }
    Ok(())
}

/// Starts the embedded broker of `[[source.mqtt]]` number `i`: terminals
/// publish into the pipeline directly, with no MQTT session in between.
fn start_embedded_broker<S: PunchSink>(
    i: usize,
    m: &crate::config::RawMqtt,
    sink: &Arc<S>,
    shared: &Shared,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
    listening: &mut Vec<String>,
) -> Result<(), StartError> {
    let name = format!("mqtt[{i}]");
    let listen = m.listen.as_deref().unwrap_or("127.0.0.1:1883");
    let addr: std::net::SocketAddr = listen.parse().map_err(|_| {
        StartError::Other(format!(
            "source.mqtt[{i}].listen: {listen:?} is not an address"
        ))
    })?;
    let handle = shared.brokers.get(&i).cloned().unwrap_or_else(|| {
        crate::broker::BrokerHandle::new(m.broker_options(
            &name,
            Vec::new(),
            Some(shared.metrics.clone()),
        ))
    });
    let broker = crate::broker::EmbeddedBroker::bind_handle(addr, handle).map_err(|e| {
        StartError::Other(
            e.with_config_key(format!("source.mqtt[{i}].broker = \"embedded\""))
                .to_string(),
        )
    })?;
    let local = broker.local_addr();
    listening.push(format!("embedded broker on {local}"));
    shared.health.set(
        &name,
        true,
        format!("embedded broker listening on {local}"),
        crate::clock::now(),
    );
    let (sink, token) = (sink.clone(), shutdown.clone());
    tracker.spawn(async move {
        if let Err(e) = broker.run(sink, token).await {
            error!("embedded broker failed: {e}");
        }
    });
    Ok(())
}

/// Starts the serial sources.
fn start_serial<S: PunchSink>(
    config: &Config,
    sink: &Arc<S>,
    shared: &Shared,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) {
    for (i, s) in config.sources.serial.iter().enumerate() {
        let name = format!("serial[{i}]");
        let mut settings = s.settings(&name);
        settings.health = Some(shared.health.clone());
        shared
            .health
            .set(&name, false, "opening", crate::clock::now());
        tracker.spawn(crate::source::serial::run(
            settings,
            sink.clone(),
            shutdown.clone(),
        ));
    }
}

/// Logs what runs and tells systemd the daemon is ready.
fn announce_ready(config: &Config, listening: &[String]) {
    let status = format!(
        "running: {} mqtt, {} serial, {} http push source(s){}",
        config.sources.mqtt.len(),
        config.sources.serial.len(),
        config.sources.zk_push.len() + config.sources.hik_http.len(),
        if listening.is_empty() {
            String::new()
        } else {
            format!("; {}", listening.join(", "))
        }
    );
    info!("{status}");
    service::ready(&status);
}

/// Waits for `shutdown`, then for the sources to commit and acknowledge
/// what they received, at most [`DRAIN_TIMEOUT`].
async fn drain(shutdown: &CancellationToken, tracker: &TaskTracker) {
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
}
