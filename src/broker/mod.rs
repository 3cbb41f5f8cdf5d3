//! The embedded MQTT 3.1.1 broker behind `broker = "embedded"`.
//!
//! Sites without a broker point their terminals at attendd's host; the quick
//! start and the tests on a machine without Mosquitto use it too. It owns one
//! listening socket, the client connections and, in memory, the sessions,
//! subscriptions and retained messages:
//!
//! - CONNECT with clean or persistent sessions (`session_present` set when a
//!   persistent session is resumed), optional user name and password, last
//!   will, keep-alive (silent for 1.5 x keep-alive means disconnected), and a
//!   new connection with a client id in use taking that session over.
//! - SUBSCRIBE / UNSUBSCRIBE with `+` and `#`, and shared subscriptions
//!   `$share/{group}/{filter}`: each message goes to one member, connected
//!   members taking turns.
//! - QoS 0 and 1. A QoS 1 PUBLISH is answered with PUBACK once it is queued
//!   for every subscriber. Subscribers get min(publish QoS, granted QoS); an
//!   offline persistent session keeps its messages (QoS 0 ones too, unless
//!   [`BrokerOptions::queue_qos0_offline`] is off) and on reconnect gets its
//!   unacknowledged deliveries again first, in order, flagged DUP.
//! - Retained messages: the last per topic, sent on subscribe, cleared by an
//!   empty retained payload.
//!
//! What it does not do:
//!
//! - Persistence: sessions, queued messages and retained messages live in
//!   memory and are lost when attendd stops. A terminal's QoS 1 punch is
//!   acknowledged once queued here, so a punch not yet committed by attendd
//!   (queued or in flight to its MQTT source) is lost if the process is
//!   killed (on a clean shutdown, stop the broker after the sources have
//!   drained, see [`EmbeddedBroker::run`]). Where a crash must
//!   lose nothing, run a real broker with persistence (Mosquitto with
//!   `persistence true`) outside attendd.
//! - QoS 2 is downgraded: a QoS 2 PUBLISH gets the full PUBREC / PUBREL /
//!   PUBCOMP exchange but is delivered at most at QoS 1, a QoS 2 subscription
//!   is granted QoS 1, and a QoS 2 message re-sent on a new connection may be
//!   delivered twice (at-least-once, which attendd's dedupe absorbs).
//! - No TLS, websockets, MQTT 5 or `$SYS` topics: put a TLS-terminating
//!   proxy in front, or use a real broker.
//! - Shared subscriptions get no retained messages (as in MQTT 5).

mod connection;
mod state;

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use connection::Shared;
use state::State;

/// Limits and credentials of an [`EmbeddedBroker`].
#[derive(Clone, Debug)]
pub struct BrokerOptions {
    /// Messages held per session waiting to be sent (offline, or behind the
    /// in-flight limit); past it new messages for that session are dropped
    /// with a warning. Default 100,000: Mosquitto's `max_queued_messages`
    /// defaults to 1000, which silently drops punches once a subscriber has
    /// been away for a busy few minutes. A plain punch is a few hundred
    /// bytes, so 100,000 of them fit in tens of megabytes.
    pub max_queued_per_session: usize,
    /// Topic and payload bytes held per session waiting to be sent; past it
    /// new messages for that session are dropped with a warning. Default
    /// 256 MiB: face terminals may attach a ~1 MB photo to every event, and
    /// the message count alone would then not bound memory.
    pub max_queued_bytes_per_session: usize,
    /// QoS 1 messages sent to one session and not yet acknowledged; the rest
    /// wait in the queue. Default 1000: attendd acknowledges after a batch is
    /// committed, so a small window would stall ingest on commit latency.
    pub max_inflight_per_session: u16,
    /// Keep QoS 0 messages for a persistent session while it is offline, as
    /// the protocol allows. Default true, unlike Mosquitto's
    /// `queue_qos0_messages false`: many face terminals publish punches at
    /// QoS 0 only, and attendd's own subscriber is persistent, so a punch
    /// sent while it reconnects would otherwise be lost.
    pub queue_qos0_offline: bool,
    /// `(user name, password)` every client must present; `None` lets any
    /// client in.
    pub credentials: Option<(String, String)>,
    /// Largest packet accepted from a client, in bytes (remaining length);
    /// a larger one closes that connection. Default 4 MiB: face terminals
    /// may attach a Base64 JPEG of up to ~1 MB to each recognition.
    pub max_packet_size: usize,
}

impl Default for BrokerOptions {
    fn default() -> BrokerOptions {
        BrokerOptions {
            max_queued_per_session: 100_000,
            max_queued_bytes_per_session: 256 * 1024 * 1024,
            max_inflight_per_session: 1000,
            queue_qos0_offline: true,
            credentials: None,
            max_packet_size: 4 * 1024 * 1024,
        }
    }
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

/// A bound, not yet running, embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    options: BrokerOptions,
}

impl EmbeddedBroker {
    /// Binds the listening socket now, so that a taken port is reported at
    /// startup; connections are served once [`EmbeddedBroker::run`] is
    /// awaited. Needs no async runtime.
    pub fn bind(addr: SocketAddr, options: BrokerOptions) -> Result<EmbeddedBroker, BrokerError> {
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
            options,
        })
    }

    /// The address actually bound (the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves clients until `shutdown` is cancelled, then closes every client
    /// connection and returns once all of them have ended. Whatever is still
    /// queued is dropped then, so cancel this token only after the MQTT
    /// sources reading from this broker have drained.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), BrokerError> {
        let addr = self.local_addr;
        let listener = TcpListener::from_std(self.listener)
            .map_err(|error| BrokerError::Listen { addr, error })?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::new(&self.options)),
            options: self.options,
        });
        tracing::info!(%addr, "embedded mqtt broker listening on {addr}");
        let connections = TaskTracker::new();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        // Punches are small; do not hold them back for Nagle.
                        let _ = stream.set_nodelay(true);
                        connections.spawn(connection::serve(
                            stream,
                            peer,
                            shared.clone(),
                            shutdown.clone(),
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
        connections.close();
        connections.wait().await;
        tracing::info!(%addr, "embedded mqtt broker on {addr} stopped");
        Ok(())
    }
}
