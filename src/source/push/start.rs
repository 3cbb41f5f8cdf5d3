//! Binding and serving the push listeners: every `[[source.zk_push]]` and
//! `[[source.hik_http]]` bound before any is served (a taken address stops
//! the start-up), one [`Committer`] for all of them.

use std::net::SocketAddr;
use std::sync::Arc;

use super::commit::Committer;
use super::metric_names;
use crate::health::Health;
use crate::metrics::Metrics;
use crate::source::PunchSink;
use crate::source::pull::CatchUpSignals;

/// Why the push listeners could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
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

/// What the push listeners take from the daemon.
#[derive(Clone, Debug)]
pub struct PushShared {
    /// `/metrics`: the terminals' names, the listeners' counters.
    pub metrics: Arc<Metrics>,
    /// `/healthz`: one component per listener.
    pub health: Arc<Health>,
    /// The store, for the ZKTeco resume stamps (none in some tests).
    pub store: Option<crate::store::Store>,
    /// Catch-up requests to the pulls reading the same terminals.
    pub catch_up: Arc<CatchUpSignals>,
}

async fn bind(
    listen: &str,
    key: String,
) -> Result<(tokio::net::TcpListener, SocketAddr), ListenError> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| ListenError::Other(format!("{key}: {listen:?} is not an address")))?;
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Listen {
            addr: addr.to_string(),
            key: key.clone(),
            source,
        })?;
    let local = l
        .local_addr()
        .map_err(|e| ListenError::Other(format!("{key}: {e}")))?;
    Ok((l, local))
}

/// Binds every `[[source.zk_push]]` and `[[source.hik_http]]` listener and
/// spawns it, with one [`Committer`] for all, under `tracker`. A listen
/// address that cannot be bound is a [`ListenError::Listen`]
/// naming its config key.
pub async fn start<S: PunchSink>(
    config: &crate::config::Config,
    sink: Arc<S>,
    shared: &PushShared,
    tracker: &tokio_util::task::TaskTracker,
    shutdown: &tokio_util::sync::CancellationToken,
    listening: &mut Vec<String>,
) -> Result<(), ListenError> {
    let sources = &config.sources;
    if sources.zk_push.is_empty() && sources.hik_http.is_empty() {
        return Ok(());
    }
    let mut bound = Vec::new();
    for (i, z) in sources.zk_push.iter().enumerate() {
        let (l, local) = bind(&z.listener.listen, format!("source.zk_push[{i}].listen")).await?;
        bound.push((l, local));
    }
    for (i, h) in sources.hik_http.iter().enumerate() {
        let (l, local) = bind(&h.listener.listen, format!("source.hik_http[{i}].listen")).await?;
        bound.push((l, local));
    }
    let (devices, names) = metric_names(sources);
    shared.metrics.name_devices(devices);
    shared.metrics.name_sources(names);
    let (committer, task) = Committer::new(sink, shared.store.clone());
    tracker.spawn(task);
    let mut bound = bound.into_iter();
    let now = crate::clock::now();
    let serve = |l: tokio::net::TcpListener, router: axum::Router, name: String, max: usize| {
        let token = shutdown.clone();
        tracker.spawn(async move {
            let limits = crate::listener::Limits::with_max_connections(max);
            if let Err(e) = crate::listener::serve(l, router, limits, token).await {
                tracing::error!("{name}: http push listener failed: {e}");
            }
        });
    };
    for (i, z) in sources.zk_push.iter().enumerate() {
        let Some((l, local)) = bound.next() else {
            break;
        };
        let name = format!("zk_push[{i}]");
        let router = crate::source::zk_push::ZkPush::new(
            i,
            z,
            config.policy.tz,
            committer.clone(),
            shared.store.clone(),
            shared.metrics.clone(),
        )
        .router(z.listener.max_body_bytes);
        crate::source::zk_push::announce(i, local, z.terminals.len());
        listening.push(format!("{name} on {local}"));
        shared
            .health
            .set(&name, true, format!("listening on {local}"), now);
        serve(l, router, name, z.listener.max_connections);
    }
    for (i, h) in sources.hik_http.iter().enumerate() {
        let Some((l, local)) = bound.next() else {
            break;
        };
        let name = crate::source::hik_http::source_name(i);
        let router =
            crate::source::hik_http::HikHttp::new(i, h, committer.clone(), shared.metrics.clone())
                .with_catch_up(shared.catch_up.clone())
                .router();
        crate::source::hik_http::announce(i, local, &h.decoder);
        listening.push(format!("{name} on {local}"));
        shared
            .health
            .set(&name, true, format!("listening on {local}"), now);
        serve(l, router, name, h.listener.max_connections);
    }
    Ok(())
}
