//! The MQTT source: a persistent QoS 1 session that acknowledges a punch
//! only after it is committed.
//!
//! - `clean_session = false` with a stable client id, so the broker queues
//!   punches while attendd is down; subscriptions are re-sent on every
//!   CONNACK that reports no session (the broker lost it).
//! - Manual acknowledgements: PUBACKs go out, in the order the PUBLISHes
//!   arrived (MQTT 3.1.1 §4.6), after [`PunchSink::commit`] succeeded for them.
//! - Reconnects back off exponentially with jitter (rumqttc reconnects
//!   immediately on its own, which hammers a restarting broker).
//! - Shutdown drains: messages received before the token fired are
//!   committed and acknowledged; later ones stay un-acknowledged and the
//!   broker re-delivers them to the next session.
//!
//! The event loop runs in its own task and is raced only against the
//! shutdown token: rumqttc does not document `poll()` as cancel-safe.
//!
//! The queue between the poll loop and the committer is bounded by bytes
//! ([`MqttSettings::max_queue_bytes`]; each message counts its topic and
//! payload plus 256 bytes): with the store stalled, a flood (QoS 0 has no
//! in-flight window) stops being read once the budget is spent, TCP pushes
//! back, and the broker's own limits apply. Acknowledgements travel through
//! the event loop, so the committer must never wait for the poll loop: a
//! poll loop waiting for room while the committer waits to acknowledge
//! deadlocked when a restarted broker flushed a 10,000-message backlog at
//! once. So a message's budget is given back as soon as it is committed,
//! before its acknowledgement is sent, and acknowledgements are sent by a
//! task of their own: the poll loop waits only for commits, the committer
//! only for the store, and the acknowledger for the poll loop. (Waiting
//! acknowledgements are small, and their number is bounded by the broker's
//! QoS 1 in-flight window.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Backoff, PunchSink, Received, commit_with_retry};

/// Largest MQTT packet accepted or sent: room for a punch with a photo.
pub const MAX_PACKET_BYTES: usize = 4 * 1024 * 1024;

/// Default bytes of messages received and not yet committed (see
/// [`MqttSettings::max_queue_bytes`]).
pub const MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;

/// What a queued message costs beyond its topic and payload.
const QUEUE_OVERHEAD: usize = 256;

/// Settings for one `[[source.mqtt]]`.
#[derive(Clone, Debug)]
pub struct MqttSettings {
    /// Name used in logs and in [`Received::source`], e.g. `mqtt[0]`.
    pub name: Arc<str>,
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topic filters (shared subscriptions `$share/group/…` allowed).
    pub topics: Vec<String>,
    /// Stable client id: the broker keeps the session under it.
    pub client_id: String,
    /// Optional user name and password.
    pub credentials: Option<(String, String)>,
    /// Most messages committed in one batch.
    pub batch_max: usize,
    /// Longest a received message waits for its batch to fill. Zero (the
    /// default): a batch is what has arrived when the previous commit
    /// ended, so batches grow with the load without delaying a punch on a
    /// quiet line (the commit itself is the wait: its fsync dominates).
    pub batch_wait: Duration,
    /// Keep-alive interval.
    pub keep_alive: Duration,
    /// How long shutdown waits for the batch in hand to commit.
    pub drain_timeout: Duration,
    /// Where the connection state is reported for `/healthz`.
    pub health: Option<Arc<crate::health::Health>>,
    /// TLS client settings (`mqtts://`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Bytes of messages received and not yet committed (topic and
    /// payload plus 256 each); past it the broker is not read until commits
    /// free room. Default [`MAX_QUEUE_BYTES`]; never less than one largest
    /// packet.
    pub max_queue_bytes: usize,
}

impl MqttSettings {
    /// Settings with the defaults for a broker URL `mqtt://host[:port]`.
    pub fn from_url(
        name: &str,
        url: &str,
        topics: Vec<String>,
        client_id: &str,
    ) -> Result<Self, String> {
        let (rest, default_port) = match url.strip_prefix("mqtts://") {
            Some(r) => (r, 8883),
            None => (
                url.strip_prefix("mqtt://").ok_or_else(|| {
                    format!("{url:?} is not mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
                })?,
                1883,
            ),
        };
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("bad port in {url:?}"))?,
            ),
            None => (hostport, default_port),
        };
        if host.is_empty() {
            return Err(format!("no host in {url:?}"));
        }
        let credentials = userinfo.map(|u| match u.split_once(':') {
            Some((a, b)) => (a.to_string(), b.to_string()),
            None => (u.to_string(), String::new()),
        });
        Ok(MqttSettings {
            name: Arc::from(name),
            host: host.to_string(),
            port,
            topics,
            client_id: client_id.to_string(),
            credentials,
            batch_max: 512,
            batch_wait: Duration::ZERO,
            keep_alive: Duration::from_secs(30),
            drain_timeout: Duration::from_secs(10),
            health: None,
            tls: None,
            max_queue_bytes: MAX_QUEUE_BYTES,
        })
    }
}

/// Runs the source until `shutdown` fires, then drains and returns.
pub async fn run<S: PunchSink>(settings: MqttSettings, sink: Arc<S>, shutdown: CancellationToken) {
    let mut opts = MqttOptions::new(
        settings.client_id.clone(),
        settings.host.clone(),
        settings.port,
    );
    opts.set_keep_alive(settings.keep_alive)
        .set_clean_session(false)
        .set_manual_acks(true)
        .set_inflight(u16::MAX / 2)
        // rumqttc refuses incoming packets over 10 KiB by default; a face
        // terminal's RecPush carries a photo of several hundred KiB.
        .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
    if let Some((u, p)) = &settings.credentials {
        opts.set_credentials(u.clone(), p.clone());
    }
    if let Some(tls) = &settings.tls {
        opts.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls.clone()),
        ));
    }
    let (client, eventloop) = AsyncClient::new(opts, 4096);
    // Unbounded channel, bounded by the byte budget its messages hold.
    let (tx, rx) = mpsc::unbounded_channel::<Queued>();
    let budget = Arc::new(Semaphore::new(
        settings
            .max_queue_bytes
            .clamp(MAX_PACKET_BYTES + QUEUE_OVERHEAD, Semaphore::MAX_PERMITS),
    ));
    // Which broker session a message came in; bumped when one is lost.
    let session = Arc::new(AtomicU64::new(0));
    let stop_commits = CancellationToken::new();
    let committer = tokio::spawn(commit_loop(
        settings.clone(),
        client.clone(),
        rx,
        sink,
        stop_commits.clone(),
        session.clone(),
    ));
    poll_loop(
        &settings,
        client,
        eventloop,
        (tx, budget),
        shutdown,
        committer,
        stop_commits,
        session,
    )
    .await;
}

/// A message received, with the session it came in and its share of the
/// queue's byte budget.
type Queued = (u64, Publish, OwnedSemaphorePermit);

#[allow(clippy::too_many_arguments)]
async fn poll_loop(
    s: &MqttSettings,
    client: AsyncClient,
    mut eventloop: EventLoop,
    (tx, budget): (mpsc::UnboundedSender<Queued>, Arc<Semaphore>),
    shutdown: CancellationToken,
    committer: tokio::task::JoinHandle<()>,
    stop_commits: CancellationToken,
    session: Arc<AtomicU64>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    let mut down_since: Option<std::time::Instant> = None;
    let mut tx = Some(tx);
    // Set while the queue is full, so the warning is logged once per episode.
    let mut full = false;
    loop {
        let ev = tokio::select! {
            _ = shutdown.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                if let Some(h) = &s.health {
                    h.set(
                        &s.name,
                        true,
                        format!("connected to {}:{}", s.host, s.port),
                        crate::clock::now(),
                    );
                }
                match down_since.take() {
                    Some(t) => {
                        info!(source = %s.name, "connected to {}:{} again after {:.1?}", s.host, s.port, t.elapsed())
                    }
                    None => info!(source = %s.name, "connected to {}:{}", s.host, s.port),
                }
                if !ack.session_present {
                    // The broker kept nothing: acknowledgements still queued
                    // for the old session would name packet ids the new one
                    // reuses for other messages, so they are dropped (the
                    // broker re-sends what it still has).
                    session.fetch_add(1, Ordering::SeqCst);
                    let subs: Vec<_> = s
                        .topics
                        .iter()
                        .map(|t| rumqttc::SubscribeFilter::new(t.clone(), QoS::AtLeastOnce))
                        .collect();
                    // Sent from a task: the request queue may be full of
                    // acknowledgements that only this loop's polling drains.
                    let (c, name, topics) = (client.clone(), s.name.clone(), s.topics.join(", "));
                    tokio::spawn(async move {
                        match c.subscribe_many(subs).await {
                            Err(e) => warn!(source = %name, "cannot subscribe: {e}"),
                            Ok(()) => debug!(source = %name, "subscribed to {topics}"),
                        }
                    });
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let cost = u32::try_from(p.topic.len() + p.payload.len() + QUEUE_OVERHEAD)
                    .unwrap_or(u32::MAX);
                let permit = match budget.clone().try_acquire_many_owned(cost) {
                    Ok(permit) => permit,
                    Err(_) => {
                        if !full {
                            warn!(source = %s.name, "{} bytes of messages wait for the store (max_queue_bytes); not reading from {}:{} until commits free room", s.max_queue_bytes, s.host, s.port);
                            full = true;
                        }
                        // Waits for commits only, never for acknowledgements.
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            permit = budget.clone().acquire_many_owned(cost) => match permit {
                                Ok(permit) => permit,
                                Err(_) => break,
                            },
                        }
                    }
                };
                if budget.available_permits() > s.max_queue_bytes / 2 {
                    full = false;
                }
                if let Some(tx) = &tx
                    && tx
                        .send((session.load(Ordering::SeqCst), p, permit))
                        .is_err()
                {
                    break;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if let Some(h) = &s.health {
                    h.set(
                        &s.name,
                        false,
                        format!("{}:{}: {e}", s.host, s.port),
                        crate::clock::now(),
                    );
                }
                if down_since.is_none() {
                    warn!(source = %s.name, "connection to {}:{} lost or refused: {e}; retrying with backoff", s.host, s.port);
                    down_since = Some(std::time::Instant::now());
                }
                let d = backoff.next_delay();
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(d) => {}
                }
            }
        }
    }
    // Drain: no new messages; the committer finishes what it has and acks it.
    tx.take();
    let drain = async {
        let mut committer = committer;
        loop {
            tokio::select! {
                _ = &mut committer => break,
                ev = eventloop.poll() => if ev.is_err() { tokio::time::sleep(Duration::from_millis(50)).await },
            }
        }
        let _ = client.disconnect().await;
        // Flush the acknowledgements and the DISCONNECT.
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while eventloop.poll().await.is_ok() {}
        })
        .await;
    };
    if tokio::time::timeout(s.drain_timeout, drain).await.is_err() {
        warn!(source = %s.name, "drain timed out; un-acknowledged messages will be re-delivered");
        stop_commits.cancel();
    }
    info!(source = %s.name, "stopped");
}

async fn commit_loop<S: PunchSink>(
    s: MqttSettings,
    client: AsyncClient,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    sink: Arc<S>,
    stop: CancellationToken,
    session: Arc<AtomicU64>,
) {
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let acknowledger = tokio::spawn(ack_loop(client, ack_rx, session));
    let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    let mut pubs: Vec<Queued> = Vec::with_capacity(s.batch_max);
    let mut batch: Vec<Received> = Vec::with_capacity(s.batch_max);
    while let Some(first) = rx.recv().await {
        pubs.clear();
        pubs.push(first);
        // Group commit: the batch is what has arrived by now; what arrives
        // while it commits makes the next one. A batch grows with the load,
        // and a punch on a quiet line is committed at once instead of
        // waiting for company (`batch_wait`, zero by default).
        let deadline = tokio::time::Instant::now() + s.batch_wait;
        while pubs.len() < s.batch_max {
            match rx.try_recv() {
                Ok(p) => pubs.push(p),
                Err(mpsc::error::TryRecvError::Empty) if !s.batch_wait.is_zero() => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(p)) => pubs.push(p),
                        _ => break,
                    }
                }
                Err(_) => break,
            }
        }
        let now = crate::clock::now();
        batch.clear();
        batch.extend(pubs.iter().map(|(_, p, _)| Received {
            source: s.name.clone(),
            topic: Some(p.topic.clone()),
            payload: p.payload.to_vec(),
            received_at: now,
        }));
        if !commit_with_retry(&*sink, &batch, &mut backoff, &stop, &s.name).await {
            return;
        }
        batch.clear();
        // Committed: the budget goes back first (payloads dropped), then the
        // acknowledgements go to the acknowledger, never awaited here.
        for (from, p, permit) in pubs.drain(..) {
            drop(permit);
            if p.qos == QoS::AtMostOnce {
                continue;
            }
            let mut slim = Publish::new("", p.qos, Vec::new());
            slim.pkid = p.pkid;
            if ack_tx.send((from, slim)).is_err() {
                return;
            }
        }
    }
    drop(ack_tx);
    let _ = acknowledger.await;
}

/// Sends acknowledgements in commit order, through the event loop (which
/// the poll loop drives); skips those of a session the broker lost.
async fn ack_loop(
    client: AsyncClient,
    mut rx: mpsc::UnboundedReceiver<(u64, Publish)>,
    session: Arc<AtomicU64>,
) {
    while let Some((from, p)) = rx.recv().await {
        if from != session.load(Ordering::SeqCst) {
            continue;
        }
        if client.ack(&p).await.is_err() {
            return;
        }
    }
}

impl crate::config::RawMqtt {
    /// Source settings for the MQTT client (not for `broker = "embedded"`,
    /// whose address the embedded broker decides).
    pub fn settings(&self, name: &str) -> Result<MqttSettings, String> {
        let mut s =
            MqttSettings::from_url(name, &self.broker, self.topics.clone(), &self.client_id)?;
        s.batch_max = self.batch_max;
        if self.broker.starts_with("mqtts://") {
            let client = self
                .client_cert_file
                .as_deref()
                .zip(self.client_key_file.as_deref());
            s.tls = Some(crate::tls::client_config(self.ca_file.as_deref(), client)?);
        }
        if let Some(u) = &self.username {
            let p = match (&self.password, &self.password_env) {
                (Some(p), _) => p.clone(),
                (None, Some(var)) => std::env::var(var).unwrap_or_default(),
                (None, None) => String::new(),
            };
            s.credentials = Some((u.clone(), p));
        }
        Ok(s)
    }
}
