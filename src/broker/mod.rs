//! The embedded MQTT 3.1.1 broker behind `broker = "embedded"`: a terminal
//! gateway, not a general-purpose broker.
//!
//! Sites without a broker point their terminals at attendd's host; the
//! quick start uses it too. It owns one listening socket, the client
//! connections, a committer that feeds the pipeline, and, in memory, the
//! few sessions and retained messages that programs reading attendd's
//! outputs need.
//!
//! What it is for:
//!
//! - Terminals log in (`[[source.mqtt.terminals]]`; anonymous clients only
//!   with `allow_anonymous` on a loopback listen) and publish punches on the
//!   source's topics. A punch goes straight into the pipeline: there is no
//!   internal MQTT session in between that another client could take over.
//!   A QoS 1 (or 2) punch is acknowledged (PUBACK, PUBREC) only after the
//!   pipeline committed it to the store or quarantined it, in the order the
//!   terminal sent them; a SIGKILL at any moment loses no acknowledged
//!   punch, the terminal re-sends what was not acknowledged.
//! - A terminal's PUBLISH on any other topic (a vendor's heartbeat or
//!   online notice) is acknowledged and ignored, counted in
//!   `attendd_ignored_events_total`. A terminal may subscribe to topics
//!   without wildcards outside the output topics (a vendor's command or
//!   reply topic); attendd publishes nothing there.
//! - attendd's own `mqtt` sink publishes its alerts and summaries into the
//!   broker in-process ([`BrokerHandle::publish`]). Programs reading them log
//!   in as `[[source.mqtt.readers]]`: they may subscribe under the output
//!   topics (`PREFIX/alerts/…`, `PREFIX/summary/…`, `PREFIX/published/…`)
//!   and publish nothing.
//!
//! Hard limits ([`BrokerOptions`]): connections, packet size, punches
//! awaiting commit per connection, bytes awaiting commit (large packets
//! being read included) across the broker, deliveries queued per reader
//! session and in total, sessions, retained messages.
//!
//! What it does not do: persist sessions or retained messages (lost at a
//! restart; the outbox re-sends nothing already delivered), route terminal
//! messages to other clients, TLS, websockets, MQTT 5 or `$SYS`. A site
//! needing a general broker runs Mosquitto (deploy/mosquitto).

mod connection;
mod state;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{Publish, QoS};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::source::{Backoff, PunchSink, Received, commit_with_retry};
use connection::Shared;
use state::State;

/// What a logged-in user may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A terminal: publishes punches, subscribes to its own reply topics.
    Terminal,
    /// A program reading attendd's outputs: subscribes to them only.
    Reader,
    /// An anonymous client on a loopback listen (quick start, tests): both.
    Anonymous,
}

/// One user of the broker.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    /// User name presented at CONNECT.
    pub username: String,
    /// Its password.
    pub password: String,
    /// What it may do.
    pub role: Role,
    /// A terminal's own topics (MQTT filters such as `mqtt/face/1026731/#`):
    /// it may publish only there, so one terminal's password cannot
    /// publish as another terminal; empty: any punch topic.
    pub publish: Vec<String>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("username", &self.username)
            .field("role", &self.role)
            .field("publish", &self.publish)
            .finish_non_exhaustive()
    }
}

/// Limits, users and routes of an [`EmbeddedBroker`].
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// The source name punches are committed under, e.g. `mqtt[0]`.
    pub source: Arc<str>,
    /// Topic filters whose messages are punches (the source's `topics`;
    /// a `$share/group/` prefix is ignored).
    pub punch_topics: Vec<String>,
    /// Topic roots readers may subscribe under, e.g. `attendance/alerts`.
    pub output_roots: Vec<String>,
    /// Who may log in.
    pub users: Vec<User>,
    /// Let clients in without a user name (loopback listens only; the
    /// configuration check refuses it elsewhere).
    pub allow_anonymous: bool,
    /// Connections served at once; more are closed at accept. Default 256.
    pub max_connections: usize,
    /// Largest packet accepted from a client, in bytes (remaining length);
    /// a larger one closes that connection. Default 4 MiB: face terminals
    /// may attach a Base64 JPEG of up to ~1 MB to each recognition.
    pub max_packet_size: usize,
    /// Punches one connection may have awaiting commit; past it that
    /// connection is not read until the store catches up. Default 1000.
    pub max_pending_per_client: usize,
    /// Bytes of punches awaiting commit plus large packets being read,
    /// across the broker (each message counts its topic and payload plus
    /// 256 bytes); past it connections are not read until commits free
    /// room. Default 64 MiB.
    pub max_pending_bytes: usize,
    /// Deliveries waiting for one reader session; past it new ones for
    /// that session are dropped with a warning (the outbox keeps every
    /// message). Default 1000.
    pub max_queued_per_session: usize,
    /// Topic and payload bytes waiting for one reader session. Default
    /// 8 MiB.
    pub max_queued_bytes_per_session: usize,
    /// Topic and payload bytes waiting across all sessions. Default 64 MiB.
    pub max_queued_bytes_total: usize,
    /// Keep QoS 0 deliveries for an offline reader session. Default false,
    /// as Mosquitto's `queue_qos0_messages`.
    pub queue_qos0_offline: bool,
    /// QoS 1 deliveries sent to one session and not yet acknowledged.
    /// Default 100.
    pub max_inflight_per_session: u16,
    /// Sessions kept, connected or offline; the oldest offline one goes
    /// first. Default: `max_connections`.
    pub max_sessions: usize,
    /// Retained messages kept (the newest); default 1000, a few years of
    /// daily summaries.
    pub max_retained: usize,
    /// Topic and payload bytes of retained messages kept; default 32 MiB.
    pub max_retained_bytes: usize,
    /// Most punches committed in one batch. Default 512.
    pub batch_max: usize,
    /// Longest a received punch waits for its batch to fill. Default 5 ms.
    pub batch_wait: Duration,
    /// How long shutdown waits for punches received to be committed and
    /// acknowledged. Default 10 s.
    pub drain_timeout: Duration,
    /// Where ignored publishes are counted.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Default for BrokerOptions {
    fn default() -> BrokerOptions {
        BrokerOptions {
            source: Arc::from("mqtt[0]"),
            punch_topics: vec!["attendance/+/punch".into()],
            output_roots: Vec::new(),
            users: Vec::new(),
            allow_anonymous: false,
            max_connections: 256,
            max_packet_size: 4 * 1024 * 1024,
            max_pending_per_client: 1000,
            max_pending_bytes: 64 * 1024 * 1024,
            max_queued_per_session: 1000,
            max_queued_bytes_per_session: 8 * 1024 * 1024,
            max_queued_bytes_total: 64 * 1024 * 1024,
            queue_qos0_offline: false,
            max_inflight_per_session: 100,
            max_sessions: 256,
            max_retained: 1000,
            max_retained_bytes: 32 * 1024 * 1024,
            batch_max: 512,
            batch_wait: Duration::from_millis(5),
            drain_timeout: Duration::from_secs(10),
            metrics: None,
        }
    }
}

/// The output topic roots of a sink topic prefix: what readers may
/// subscribe under.
pub fn output_roots(prefix: &str) -> Vec<String> {
    let p = prefix.trim_end_matches('/');
    ["alerts", "summary", "published"]
        .iter()
        .map(|k| format!("{p}/{k}"))
        .collect()
}

/// Errors of the embedded broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The listen address could not be bound (port taken, address not on
    /// this host, privileged port).
    #[error("cannot listen on {addr}{}: {}", key_suffix(.config_key), bind_reason(.error))]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The config key that chose the address, when the caller added it
        /// with [`BrokerError::with_config_key`].
        config_key: Option<String>,
        /// What the operating system said.
        error: io::Error,
    },
    /// The bound socket could not be handed to the async runtime.
    #[error("cannot accept connections on {addr}: {error}")]
    Listen {
        /// The bound address.
        addr: SocketAddr,
        /// What went wrong.
        error: io::Error,
    },
}

impl BrokerError {
    /// Names the config key that chose the address, e.g.
    /// `source.mqtt[0].broker = "embedded"`, in a [`BrokerError::Bind`]
    /// message: `cannot listen on 127.0.0.1:1883 (source.mqtt[0].broker =
    /// "embedded"): address in use`.
    pub fn with_config_key(self, key: impl Into<String>) -> BrokerError {
        match self {
            BrokerError::Bind { addr, error, .. } => BrokerError::Bind {
                addr,
                config_key: Some(key.into()),
                error,
            },
            other => other,
        }
    }
}

fn key_suffix(key: &Option<String>) -> String {
    key.as_ref().map(|k| format!(" ({k})")).unwrap_or_default()
}

fn bind_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::AddrInUse => "address in use".into(),
        io::ErrorKind::AddrNotAvailable => "address not available on this host".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

/// The in-process side of an embedded broker: what attendd's own `mqtt`
/// sink publishes through. Cheap to clone; usable before the broker runs
/// (messages then wait in the sessions and retained store like any other).
#[derive(Clone)]
pub struct BrokerHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BrokerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerHandle")
            .field("source", &self.shared.options.source)
            .finish_non_exhaustive()
    }
}

impl PartialEq for BrokerHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl BrokerHandle {
    /// A broker's state with these options, not yet listening.
    pub fn new(options: BrokerOptions) -> BrokerHandle {
        let budget = options
            .max_pending_bytes
            .max(options.max_packet_size + 1024)
            .min(Semaphore::MAX_PERMITS);
        BrokerHandle {
            shared: Arc::new(Shared {
                state: Mutex::new(State::new(&options)),
                budget: Arc::new(Semaphore::new(budget)),
                options,
            }),
        }
    }

    /// Publishes at QoS 1 to every reader subscribed to `topic` (and keeps
    /// it as the topic's retained message with `retain`). Delivered to the
    /// broker once this returns, as a PUBACK from a broker would say.
    pub fn publish(&self, topic: &str, payload: Vec<u8>, retain: bool) {
        let mut p = Publish::new(topic, QoS::AtLeastOnce, payload);
        p.retain = retain;
        self.shared.state().publish(p);
    }

    /// Connections served now.
    pub fn connections(&self) -> usize {
        self.shared.state().connections()
    }
}

/// A bound, not yet running, embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    handle: BrokerHandle,
}

impl EmbeddedBroker {
    /// Binds the listening socket now, so that a taken port is reported at
    /// startup; connections are served once [`EmbeddedBroker::run`] is
    /// awaited. Needs no async runtime.
    pub fn bind(addr: SocketAddr, options: BrokerOptions) -> Result<EmbeddedBroker, BrokerError> {
        Self::bind_handle(addr, BrokerHandle::new(options))
    }

    /// [`EmbeddedBroker::bind`] for a handle made earlier (the sinks hold
    /// it before the broker listens).
    pub fn bind_handle(
        addr: SocketAddr,
        handle: BrokerHandle,
    ) -> Result<EmbeddedBroker, BrokerError> {
        let bind_error = |error| BrokerError::Bind {
            addr,
            config_key: None,
            error,
        };
        let listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        Ok(EmbeddedBroker {
            listener,
            local_addr,
            handle,
        })
    }

    /// The address actually bound (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The in-process handle.
    pub fn handle(&self) -> BrokerHandle {
        self.handle.clone()
    }

    /// Serves clients and commits their punches into `sink` until
    /// `shutdown` is cancelled; then reads nothing more, commits and
    /// acknowledges what was received (for at most
    /// [`BrokerOptions::drain_timeout`]), closes every connection and
    /// returns.
    pub async fn run<S: PunchSink>(
        self,
        sink: Arc<S>,
        shutdown: CancellationToken,
    ) -> Result<(), BrokerError> {
        let addr = self.local_addr;
        let listener = TcpListener::from_std(self.listener)
            .map_err(|error| BrokerError::Listen { addr, error })?;
        let shared = self.handle.shared;
        let options = &shared.options;
        let (submit, pending) = mpsc::unbounded_channel();
        let stop_commits = CancellationToken::new();
        let committer = tokio::spawn(commit_loop(
            options.clone(),
            pending,
            sink,
            stop_commits.clone(),
        ));
        let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
        tracing::info!(%addr, "embedded mqtt broker listening on {addr}");
        let connections = TaskTracker::new();
        let mut refusing = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let Ok(slot) = slots.clone().try_acquire_owned() else {
                            if !refusing {
                                tracing::warn!(%addr, %peer, "embedded mqtt broker on {addr}: {} connections (max_connections); closing new ones until some end", options.max_connections);
                                refusing = true;
                            }
                            drop(stream);
                            continue;
                        };
                        refusing = false;
                        // Punches are small; do not hold them back for Nagle.
                        let _ = stream.set_nodelay(true);
                        connections.spawn(connection::serve(
                            stream,
                            peer,
                            shared.clone(),
                            submit.clone(),
                            shutdown.clone(),
                            slot,
                        ));
                    }
                    Err(e) => {
                        // Typically out of file descriptors: back off instead
                        // of spinning, the clients already connected go on.
                        tracing::warn!(%addr, "embedded mqtt broker on {addr}: accept failed: {e}");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                        }
                    }
                },
            }
        }
        drop(listener);
        drop(submit);
        connections.close();
        // Connections read nothing more and wait for their last
        // acknowledgements; the committer ends once they all have.
        let drained = tokio::time::timeout(options.drain_timeout, async {
            connections.wait().await;
            let _ = committer.await;
        })
        .await;
        if drained.is_err() {
            tracing::warn!(%addr, "embedded mqtt broker on {addr}: drain timed out; terminals re-send what was not acknowledged");
            stop_commits.cancel();
        }
        tracing::info!(%addr, "embedded mqtt broker on {addr} stopped");
        Ok(())
    }
}

/// A punch received, waiting for its commit.
pub(crate) struct Pending {
    received: Received,
    /// Told once the punch is committed (the connection then sends its
    /// acknowledgement, in order).
    reply: Option<mpsc::UnboundedSender<()>>,
    /// Its share of [`BrokerOptions::max_pending_bytes`], given back once
    /// committed.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// Commits punches in batches, in arrival order, then sends each its
/// acknowledgement. Ends when every connection has ended and the queue is
/// empty, or when `stop` fires during a failing commit (nothing of that
/// batch is acknowledged).
async fn commit_loop<S: PunchSink>(
    o: BrokerOptions,
    mut rx: mpsc::UnboundedReceiver<Pending>,
    sink: Arc<S>,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    let batch_max = o.batch_max.max(1);
    let mut held: Vec<Pending> = Vec::with_capacity(batch_max);
    let mut batch: Vec<Received> = Vec::with_capacity(batch_max);
    while let Some(first) = rx.recv().await {
        held.clear();
        held.push(first);
        let deadline = tokio::time::Instant::now() + o.batch_wait;
        while held.len() < batch_max {
            match rx.try_recv() {
                Ok(p) => held.push(p),
                Err(mpsc::error::TryRecvError::Empty) => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(p)) => held.push(p),
                        _ => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        batch.clear();
        batch.extend(held.iter_mut().map(|p| Received {
            source: p.received.source.clone(),
            topic: p.received.topic.take(),
            payload: std::mem::take(&mut p.received.payload),
            received_at: p.received.received_at,
        }));
        if !commit_with_retry(&*sink, &batch, &mut backoff, &stop, &o.source).await {
            return;
        }
        for p in held.drain(..) {
            if let Some(tx) = &p.reply {
                // The connection may be gone: the terminal re-sends and the
                // store counts the duplicate.
                let _ = tx.send(());
            }
        }
    }
}

impl Pending {
    fn new(
        source: &Arc<str>,
        publish: Publish,
        reply: Option<mpsc::UnboundedSender<()>>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Pending {
        Pending {
            received: Received {
                source: source.clone(),
                topic: Some(publish.topic),
                payload: publish.payload.to_vec(),
                received_at: crate::clock::now(),
            },
            reply,
            _permit: permit,
        }
    }
}

impl crate::config::RawMqtt {
    /// The embedded broker's options for this source (`broker =
    /// "embedded"`): its users, punch topics, limits, and the output topics
    /// readers may subscribe to.
    pub fn broker_options(
        &self,
        name: &str,
        output_roots: Vec<String>,
        metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    ) -> BrokerOptions {
        let users = |list: &[crate::config::RawMqttUser], role: Role| -> Vec<User> {
            list.iter()
                .filter_map(|u| {
                    Some(User {
                        username: u.username.clone(),
                        password: u.password().filter(|p| !p.is_empty())?,
                        role,
                        publish: u.topics.clone(),
                    })
                })
                .collect()
        };
        let mut users_all = users(&self.terminals, Role::Terminal);
        users_all.extend(users(&self.readers, Role::Reader));
        let d = BrokerOptions::default();
        let max_connections = self.max_connections.unwrap_or(d.max_connections);
        BrokerOptions {
            source: std::sync::Arc::from(name),
            punch_topics: self.topics.clone(),
            output_roots,
            users: users_all,
            allow_anonymous: self.allow_anonymous,
            max_connections,
            max_sessions: max_connections,
            max_packet_size: self.max_packet_bytes.unwrap_or(d.max_packet_size),
            max_pending_bytes: self.max_pending_bytes.unwrap_or(d.max_pending_bytes),
            batch_max: self.batch_max,
            metrics,
            ..d
        }
    }
}
