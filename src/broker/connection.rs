//! One client connection: CONNECT, then packets in and replies out until
//! the client leaves, breaks the protocol, goes silent past its keep-alive,
//! is taken over, or the broker shuts down.
//!
//! The connection owns the socket and the order of its acknowledgements: a
//! punch is handed to the committer and its PUBACK written once the commit
//! reply comes back, and every acknowledgement (of a punch or of an ignored
//! message) goes out in the order the PUBLISHes came in (MQTT 3.1.1 §4.6).
//! What a packet means for reader sessions is decided in [`super::state`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::{Error as CodecError, valid_topic};
use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, Packet, Protocol, PubAck, PubComp, PubRec, Publish, QoS,
    SubAck, UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::state::{State, matches};
use super::{BrokerOptions, Pending, Role};

/// How long a new connection may take to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries are taken from the session while less than this waits to be
/// written, so a slow reader's messages wait in its session queue (where the
/// limits apply) rather than in the socket buffer.
const TAKE_BYTES: usize = 64 * 1024;

/// Above this much waiting to be written, the client's packets are not read.
const WRITE_HIGH_WATER: usize = 256 * 1024;

/// A packet larger than this is read only with a share of the broker's
/// byte budget, so many connections sending large packets at once cannot
/// pass the memory limit.
const SMALL_PACKET: usize = 64 * 1024;

/// What a message awaiting commit costs against the byte budget beyond its
/// topic and payload.
const PENDING_OVERHEAD: usize = 256;

/// How long a closing connection may take to write its last replies.
const LAST_REPLIES_TIMEOUT: Duration = Duration::from_secs(1);

/// What the accept loop shares with every connection and with the
/// in-process publisher.
pub(super) struct Shared {
    pub state: Mutex<State>,
    /// Bytes of punches awaiting commit and of large packets being read.
    pub budget: Arc<Semaphore>,
    pub options: BrokerOptions,
}

impl Shared {
    pub(super) fn state(&self) -> MutexGuard<'_, State> {
        // The daemon aborts on panic; elsewhere (tests) a panicking
        // connection must not take the broker down with a poisoned lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The acknowledgement a PUBLISH gets, once it may be sent.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reply {
    /// QoS 0: nothing is sent.
    Nothing,
    /// QoS 1.
    PubAck(u16),
    /// QoS 2 (then PUBREL / PUBCOMP).
    PubRec(u16),
}

/// Why a connection ended.
enum End {
    /// The client sent DISCONNECT.
    Disconnect,
    /// The broker is shutting down.
    Shutdown,
    /// Any other end (taken over, closed, timed out, broken).
    Lost,
}

/// Serves one accepted socket until it ends. Never fails: problems are logged
/// with the peer address and end this connection only.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    submit: mpsc::UnboundedSender<Pending>,
    shutdown: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let mut conn = Connection {
        stream,
        peer,
        read_buf: BytesMut::with_capacity(4096),
        write_buf: BytesMut::with_capacity(4096),
        max_packet_size: shared.options.max_packet_size,
        large: None,
        needs_budget: None,
    };
    // CONNECT itself may be at most a small packet: nobody is logged in yet.
    conn.max_packet_size = conn.max_packet_size.min(SMALL_PACKET);
    let connect = tokio::select! {
        _ = shutdown.cancelled() => return,
        first = timeout(CONNECT_TIMEOUT, conn.next_packet()) => match first {
            Ok(Ok(Some(Packet::Connect(connect)))) => connect,
            Ok(Ok(Some(other))) => {
                tracing::warn!(%peer, "mqtt client {peer} sent {other:?} before CONNECT; closing");
                return;
            }
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::warn!(%peer, "mqtt client {peer}: {e}; closing the connection");
                return;
            }
            Err(_) => {
                tracing::warn!(%peer, "mqtt client {peer} sent no CONNECT within {CONNECT_TIMEOUT:?}; closing");
                return;
            }
        },
    };
    conn.max_packet_size = shared.options.max_packet_size;
    let Some((client_id, role, owner)) = conn.accept(&connect, &shared).await else {
        return;
    };
    let cancel = shutdown.child_token();
    let attach = shared.state().connect(
        &client_id,
        owner.as_deref(),
        connect.clean_session,
        cancel.clone(),
    );
    let Some(attach) = attach else {
        tracing::warn!(%peer, client_id, "mqtt client {peer} refused: client id {client_id} belongs to another user");
        conn.refuse(ConnectReturnCode::NotAuthorized).await;
        return;
    };
    tracing::debug!(
        %peer, client_id, ?role, clean_session = connect.clean_session,
        session_present = attach.session_present, "mqtt client connected"
    );
    let ack = ConnAck::new(ConnectReturnCode::Success, attach.session_present);
    conn.queue(Packet::ConnAck(ack));

    let (replies_tx, replies) = mpsc::unbounded_channel();
    let mut session = SessionLoop {
        conn,
        shared: &shared,
        client_id: &client_id,
        conn_id: attach.conn_id,
        role,
        publish: owner
            .as_ref()
            .and_then(|o| shared.options.users.iter().find(|u| &u.username == o))
            .map(|u| u.publish.clone())
            .unwrap_or_default(),
        submit,
        replies_tx,
        replies,
        acks: VecDeque::new(),
        waiting: None,
        draining: false,
        warned_ignored: false,
    };
    let keep_alive = Duration::from_millis(u64::from(connect.keep_alive) * 1500);
    let end = session
        .run(&attach.wake, &cancel, &shutdown, keep_alive)
        .await;
    if let End::Lost = end
        && !session.acks.is_empty()
    {
        tracing::debug!(%peer, client_id, "mqtt client {client_id} ({peer}) left with {} message(s) not yet acknowledged; they are committed, and re-sent ones counted as duplicates", session.acks.len());
    }
    shared.state().disconnect(&client_id, attach.conn_id);
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    read_buf: BytesMut,
    write_buf: BytesMut,
    max_packet_size: usize,
    /// The budget held while a packet larger than [`SMALL_PACKET`] is read.
    large: Option<OwnedSemaphorePermit>,
    /// Size of the large packet being read, while its budget is not held.
    needs_budget: Option<usize>,
}

impl Connection {
    /// The next whole packet, reading as needed; `None` at a clean EOF.
    /// Cancel safe: partial data stays in `read_buf`.
    async fn next_packet(&mut self) -> Result<Option<Packet>, String> {
        loop {
            if let Some(packet) = self.parse()? {
                return Ok(Some(packet));
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Reads more bytes; false at a clean EOF (no partial packet pending).
    async fn fill(&mut self) -> Result<bool, String> {
        match self.stream.read_buf(&mut self.read_buf).await {
            Ok(0) if self.read_buf.is_empty() => Ok(false),
            Ok(0) => Err("connection closed in the middle of a packet".into()),
            Ok(_) => Ok(true),
            Err(e) => Err(format!("read failed: {e}")),
        }
    }

    /// One whole packet from `read_buf`, if there is one.
    fn parse(&mut self) -> Result<Option<Packet>, String> {
        match Packet::read(&mut self.read_buf, self.max_packet_size) {
            Ok(packet) => {
                self.large = None;
                self.needs_budget = None;
                Ok(Some(packet))
            }
            Err(CodecError::InsufficientBytes(missing)) => {
                let total = self.read_buf.len() + missing;
                if total > SMALL_PACKET && self.large.is_none() {
                    // Read on once the budget for it is held.
                    self.needs_budget = Some(total);
                } else {
                    // Room for the rest, so a large packet is read in few calls.
                    self.read_buf.reserve(missing);
                }
                Ok(None)
            }
            Err(CodecError::PayloadSizeLimitExceeded(size)) => Err(format!(
                "packet of {size} bytes exceeds max_packet_size {}",
                self.max_packet_size
            )),
            Err(e) => Err(format!("malformed packet ({e})")),
        }
    }

    fn queue(&mut self, packet: Packet) {
        // Only the size check can fail, and the limit here is usize::MAX.
        let _ = packet.write(&mut self.write_buf, usize::MAX);
    }

    /// Writes what is queued, unless `cancel` fires first.
    async fn flush(&mut self, cancel: &CancellationToken) -> Result<(), String> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        tokio::select! {
            r = self.stream.write_all(&self.write_buf) => {
                r.map_err(|e| format!("write failed: {e}"))?;
            }
            _ = cancel.cancelled() => return Err("cancelled".into()),
        }
        self.write_buf.clear();
        Ok(())
    }

    /// Answers a refused CONNECT (best effort: the connection closes either
    /// way).
    async fn refuse(&mut self, code: ConnectReturnCode) {
        self.queue(Packet::ConnAck(ConnAck::new(code, false)));
        let _ = timeout(LAST_REPLIES_TIMEOUT, self.flush(&CancellationToken::new())).await;
    }

    /// Checks CONNECT and answers a refusal itself; returns the client id,
    /// the role and the user name when the connection is accepted.
    async fn accept(
        &mut self,
        connect: &Connect,
        shared: &Shared,
    ) -> Option<(String, Role, Option<String>)> {
        let peer = self.peer;
        let login = login(connect, &shared.options);
        let refusal = if connect.protocol != Protocol::V4 {
            Some((
                ConnectReturnCode::RefusedProtocolVersion,
                "protocol is not MQTT 3.1.1",
            ))
        } else if connect.client_id.is_empty() && !connect.clean_session {
            Some((
                ConnectReturnCode::BadClientId,
                "empty client id with clean_session = false",
            ))
        } else if let Err((code, why)) = login {
            Some((code, why))
        } else {
            None
        };
        if let Some((code, why)) = refusal {
            let user = connect.login.as_ref().map(|l| l.username.as_str());
            tracing::warn!(%peer, client_id = connect.client_id, user, "mqtt client {peer} refused: {why}");
            self.refuse(code).await;
            return None;
        }
        let (role, owner) = login.ok()?;
        let client_id = if connect.client_id.is_empty() {
            format!("anonymous-{peer}")
        } else {
            connect.client_id.clone()
        };
        Some((client_id, role, owner))
    }
}

struct SessionLoop<'a> {
    conn: Connection,
    shared: &'a Shared,
    client_id: &'a str,
    conn_id: u64,
    role: Role,
    /// The user's own topics, when it is bound to some.
    publish: Vec<String>,
    /// Into the committer.
    submit: mpsc::UnboundedSender<Pending>,
    /// Given to each submitted punch; the committer answers on it once the
    /// punch is committed (in submission order).
    replies_tx: mpsc::UnboundedSender<()>,
    replies: mpsc::UnboundedReceiver<()>,
    /// Acknowledgements in the order the PUBLISHes came in, each with
    /// whether it may be sent yet (a punch: once committed).
    acks: VecDeque<(Reply, bool)>,
    /// A punch read while the byte budget was spent, with its cost; nothing
    /// more is read until it is submitted.
    waiting: Option<(Publish, Reply, usize)>,
    /// The broker is shutting down: read nothing more, send the last
    /// acknowledgements, then close.
    draining: bool,
    /// Ignored publishes are logged once per connection.
    warned_ignored: bool,
}

impl SessionLoop<'_> {
    async fn run(
        &mut self,
        wake: &tokio::sync::Notify,
        cancel: &CancellationToken,
        shutdown: &CancellationToken,
        keep_alive: Duration,
    ) -> End {
        let peer = self.conn.peer;
        let client_id = self.client_id;
        let max_pending = self.shared.options.max_pending_per_client.max(1);
        let mut last_heard = Instant::now();
        let mut outgoing = Vec::new();
        loop {
            // Whole packets already buffered first: a client may send CONNECT
            // and its first packets in one segment.
            while !self.draining && self.waiting.is_none() && self.acks.len() < max_pending {
                match self.conn.parse() {
                    Ok(Some(packet)) => {
                        if let Some(end) = self.handle(packet) {
                            self.flush_last_replies(cancel).await;
                            return end;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(%peer, client_id, "mqtt client {client_id} ({peer}): {e}; closing the connection");
                        self.flush_last_replies(cancel).await;
                        return End::Lost;
                    }
                }
            }
            if self.draining && self.acks.is_empty() {
                self.flush_last_replies(cancel).await;
                return End::Shutdown;
            }
            if self.conn.write_buf.len() < TAKE_BYTES {
                let budget = TAKE_BYTES - self.conn.write_buf.len();
                self.shared
                    .state()
                    .take_outgoing(client_id, self.conn_id, budget, &mut outgoing);
                for publish in outgoing.drain(..) {
                    self.conn.queue(Packet::Publish(publish));
                }
            }
            let waiting_cost = self.waiting.as_ref().map(|w| w.2);
            let needs_budget = self.conn.needs_budget.filter(|_| self.conn.large.is_none());
            let budget = self.shared.budget.clone();
            // Reads and writes proceed together, so a client busy writing to
            // us is never blocked by our writes to it, and the other way round.
            // A client that does not read gets no more packets read from it
            // once its replies pile up; one whose punches wait for the store
            // or for the byte budget gets none read either (TCP pushes back).
            let reading = !self.draining
                && self.waiting.is_none()
                && needs_budget.is_none()
                && self.acks.len() < max_pending
                && self.conn.write_buf.len() < WRITE_HIGH_WATER;
            if !reading {
                // Its pings are not read while we hold it back: the
                // keep-alive counts from when reading resumes.
                last_heard = Instant::now();
            }
            let deadline = last_heard + keep_alive;
            let Connection {
                stream,
                read_buf,
                write_buf,
                ..
            } = &mut self.conn;
            let (mut reader, mut writer) = stream.split();
            tokio::select! {
                _ = cancel.cancelled(), if !self.draining => {
                    if !shutdown.is_cancelled() {
                        tracing::info!(%peer, client_id, "mqtt connection of {client_id} ({peer}) taken over by a new connection with the same client id");
                        return End::Lost;
                    }
                    self.draining = true;
                    self.waiting = None;
                }
                read = reader.read_buf(read_buf), if reading => match read {
                    Ok(0) if read_buf.is_empty() => {
                        tracing::debug!(%peer, client_id, "mqtt client {client_id} ({peer}) closed the connection");
                        return End::Lost;
                    }
                    Ok(0) => {
                        tracing::warn!(%peer, client_id, "mqtt client {client_id} ({peer}) closed the connection in the middle of a packet");
                        return End::Lost;
                    }
                    Ok(_) => last_heard = Instant::now(),
                    Err(e) => {
                        tracing::debug!(%peer, client_id, "mqtt client {client_id} ({peer}): read failed: {e}");
                        return End::Lost;
                    }
                },
                written = writer.write(write_buf), if !write_buf.is_empty() => match written {
                    Ok(n) if n > 0 => write_buf.advance(n),
                    Ok(_) => return End::Lost,
                    Err(e) => {
                        tracing::debug!(%peer, client_id, "mqtt client {client_id} ({peer}): write failed: {e}");
                        return End::Lost;
                    }
                },
                Some(()) = self.replies.recv() => self.committed(),
                permit = budget.clone().acquire_many_owned(permits(waiting_cost.unwrap_or(0))), if waiting_cost.is_some() => {
                    if let (Ok(permit), Some((publish, ack, _))) = (permit, self.waiting.take()) {
                        self.submit(publish, ack, permit);
                    }
                }
                permit = budget.acquire_many_owned(permits(needs_budget.unwrap_or(0))), if needs_budget.is_some() => {
                    if let Ok(permit) = permit {
                        self.conn.large = Some(permit);
                        self.conn.needs_budget = None;
                        if let Some(n) = needs_budget {
                            self.conn.read_buf.reserve(n.saturating_sub(self.conn.read_buf.len()));
                        }
                    }
                }
                _ = wake.notified() => {}
                _ = sleep_until(deadline), if !keep_alive.is_zero() && reading => {
                    tracing::info!(%peer, client_id, "mqtt client {client_id} ({peer}) silent past 1.5 x keep-alive; closing");
                    return End::Lost;
                }
            }
        }
    }

    /// Best effort, briefly: the acknowledgements of packets handled before
    /// the one that ends the connection, so the client need not re-send them.
    /// Also on shutdown, when `cancel` has fired: the time limit bounds it.
    async fn flush_last_replies(&mut self, _cancel: &CancellationToken) {
        let never = CancellationToken::new();
        let _ = timeout(LAST_REPLIES_TIMEOUT, self.conn.flush(&never)).await;
    }

    /// The oldest punch awaiting commit is committed: send every
    /// acknowledgement now due, in order.
    fn committed(&mut self) {
        if let Some(slot) = self.acks.iter_mut().find(|(_, ready)| !*ready) {
            slot.1 = true;
        }
        while let Some(&(ack, true)) = self.acks.front() {
            self.acks.pop_front();
            self.send_ack(ack);
        }
    }

    fn send_ack(&mut self, ack: Reply) {
        match ack {
            Reply::Nothing => {}
            Reply::PubAck(pkid) => self.conn.queue(Packet::PubAck(PubAck::new(pkid))),
            Reply::PubRec(pkid) => self.conn.queue(Packet::PubRec(PubRec::new(pkid))),
        }
    }

    /// An acknowledgement that needs no commit, sent after those before it.
    fn ack_now(&mut self, ack: Reply) {
        if self.acks.is_empty() {
            self.send_ack(ack);
        } else {
            self.acks.push_back((ack, true));
        }
    }

    /// Hands a punch to the committer; its acknowledgement waits for the
    /// commit.
    fn submit(&mut self, publish: Publish, ack: Reply, permit: OwnedSemaphorePermit) {
        let pending = Pending::new(
            &self.shared.options.source,
            publish,
            Some(self.replies_tx.clone()),
            permit,
        );
        if self.submit.send(pending).is_ok() {
            self.acks.push_back((ack, false));
        }
    }

    /// Applies one packet, queueing any reply; `Some` ends the connection.
    fn handle(&mut self, packet: Packet) -> Option<End> {
        let (peer, client_id, conn_id) = (self.conn.peer, self.client_id, self.conn_id);
        match packet {
            Packet::Publish(publish) => {
                if !valid_publish_topic(&publish.topic) {
                    tracing::warn!(%peer, client_id, topic = publish.topic, "mqtt client {client_id} ({peer}) published to an invalid topic; closing");
                    return Some(End::Lost);
                }
                if self.role == Role::Reader {
                    tracing::warn!(%peer, client_id, topic = publish.topic, "mqtt client {client_id} ({peer}) is a reader and may not publish; closing");
                    return Some(End::Lost);
                }
                if !self.publish.is_empty()
                    && !self
                        .publish
                        .iter()
                        .any(|f| matches(&publish.topic, plain_filter(f)))
                {
                    tracing::warn!(%peer, client_id, topic = publish.topic, "mqtt client {client_id} ({peer}) published on {}, outside its user's topics {:?}; closing", publish.topic, self.publish);
                    return Some(End::Lost);
                }
                let ack = match publish.qos {
                    QoS::AtMostOnce => Reply::Nothing,
                    QoS::AtLeastOnce => Reply::PubAck(publish.pkid),
                    QoS::ExactlyOnce => Reply::PubRec(publish.pkid),
                };
                let options = &self.shared.options;
                if !options
                    .punch_topics
                    .iter()
                    .any(|f| matches(&publish.topic, plain_filter(f)))
                {
                    if let Some(m) = &options.metrics {
                        m.add(
                            "attendd_ignored_events_total",
                            &[("source", &options.source)],
                            1.0,
                        );
                    }
                    if !self.warned_ignored {
                        tracing::info!(%peer, client_id, topic = publish.topic, "mqtt client {client_id} ({peer}) published on {}, not a punch topic: acknowledged and ignored (counted in attendd_ignored_events_total)", publish.topic);
                        self.warned_ignored = true;
                    }
                    self.ack_now(ack);
                    return None;
                }
                let cost = publish.topic.len() + publish.payload.len() + PENDING_OVERHEAD;
                match self
                    .shared
                    .budget
                    .clone()
                    .try_acquire_many_owned(permits(cost))
                {
                    Ok(permit) => self.submit(publish, ack, permit),
                    Err(_) => self.waiting = Some((publish, ack, cost)),
                }
            }
            Packet::PubRel(rel) => {
                self.conn.queue(Packet::PubComp(PubComp::new(rel.pkid)));
            }
            Packet::PubAck(ack) => {
                if !self
                    .shared
                    .state()
                    .acknowledge(client_id, conn_id, ack.pkid)
                {
                    tracing::debug!(%peer, client_id, pkid = ack.pkid, "mqtt PUBACK for a packet id not in flight");
                }
            }
            Packet::Subscribe(subscribe) => {
                let role = self.role;
                let roots = &self.shared.options.output_roots;
                let codes =
                    self.shared
                        .state()
                        .subscribe(client_id, conn_id, &subscribe.filters, |f| {
                            may_subscribe(role, roots, f)
                        });
                if codes.contains(&rumqttc::SubscribeReasonCode::Failure) {
                    let filters: Vec<&str> =
                        subscribe.filters.iter().map(|f| f.path.as_str()).collect();
                    tracing::warn!(%peer, client_id, ?role, "mqtt client {client_id} ({peer}) refused a subscription (not allowed for its user, or invalid): {filters:?}");
                }
                self.conn
                    .queue(Packet::SubAck(SubAck::new(subscribe.pkid, codes)));
            }
            Packet::Unsubscribe(unsubscribe) => {
                self.shared
                    .state()
                    .unsubscribe(client_id, conn_id, &unsubscribe.topics);
                self.conn
                    .queue(Packet::UnsubAck(UnsubAck::new(unsubscribe.pkid)));
            }
            Packet::PingReq => self.conn.queue(Packet::PingResp),
            Packet::Disconnect => {
                tracing::debug!(%peer, client_id, "mqtt client {client_id} ({peer}) disconnected");
                return Some(End::Disconnect);
            }
            other => {
                tracing::warn!(%peer, client_id, "mqtt client {client_id} ({peer}) sent {other:?}, which a client may not send here; closing");
                return Some(End::Lost);
            }
        }
        None
    }
}

/// Semaphore permits for `bytes` (the budget is never more than
/// `u32::MAX` for one message: packets are capped far below).
fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX)
}

/// Who the CONNECT is: the role and user name, or why it is refused.
fn login(
    connect: &Connect,
    options: &BrokerOptions,
) -> Result<(Role, Option<String>), (ConnectReturnCode, &'static str)> {
    match &connect.login {
        Some(l) => options
            .users
            .iter()
            .find(|u| u.username == l.username && same_secret(&u.password, &l.password))
            .map(|u| (u.role, Some(u.username.clone())))
            .ok_or((
                ConnectReturnCode::BadUserNamePassword,
                "bad user name or password",
            )),
        None if options.allow_anonymous => Ok((Role::Anonymous, None)),
        None => Err((
            ConnectReturnCode::NotAuthorized,
            "no user name (anonymous clients are not allowed)",
        )),
    }
}

/// Compares two secrets in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(!x));
    }
    diff == 0
}

/// Whether `role` may subscribe to `filter` (without `$share/group/`):
/// readers under the output topics only; terminals to topics without
/// wildcards outside them (their own command or reply topics); anonymous
/// clients (loopback only) both.
fn may_subscribe(role: Role, roots: &[String], filter: &str) -> bool {
    let output = roots.iter().any(|r| {
        filter == r
            || filter
                .strip_prefix(r.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    });
    let own = !filter.contains(['+', '#']) && !output;
    match role {
        Role::Reader => output,
        Role::Terminal => own,
        Role::Anonymous => output || own,
    }
}

/// A topic filter without its `$share/{group}/` prefix.
fn plain_filter(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|r| r.split_once('/'))
        .map_or(filter, |(_, f)| f)
}

fn valid_publish_topic(topic: &str) -> bool {
    !topic.is_empty() && valid_topic(topic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_subscribe_under_the_outputs_and_terminals_to_their_own_topics() {
        let roots = crate::broker::output_roots("attendance");
        let cases = [
            (Role::Reader, "attendance/alerts/#", true),
            (Role::Reader, "attendance/summary/daily/+", true),
            (Role::Reader, "attendance/alerts", true),
            (Role::Reader, "attendance/#", false),
            (Role::Reader, "#", false),
            (Role::Reader, "attendance/gate-1/punch", false),
            (Role::Reader, "attendance/alertsx/#", false),
            (Role::Terminal, "mqtt/face/1234567", true),
            (Role::Terminal, "mqtt/face/+", false),
            (Role::Terminal, "attendance/+/punch", false),
            (Role::Terminal, "attendance/alerts/absence", false),
            (Role::Anonymous, "attendance/alerts/#", true),
            (Role::Anonymous, "mqtt/face/1", true),
            (Role::Anonymous, "#", false),
        ];
        for (role, filter, want) in cases {
            assert_eq!(
                may_subscribe(role, &roots, filter),
                want,
                "{role:?} {filter}"
            );
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3cre"));
        assert!(!same_secret("s3cret", "s3cret!"));
        assert!(!same_secret("", "x"));
        assert!(same_secret("", ""));
    }

    #[test]
    fn shared_prefixes_are_stripped_from_punch_topics() {
        assert_eq!(
            plain_filter("$share/g/attendance/+/punch"),
            "attendance/+/punch"
        );
        assert_eq!(plain_filter("attendance/+/punch"), "attendance/+/punch");
    }
}
