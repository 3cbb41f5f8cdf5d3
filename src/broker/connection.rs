//! One client connection: CONNECT, then packets in and deliveries out until
//! the client leaves, breaks the protocol, goes silent past its keep-alive,
//! is taken over, or the broker shuts down.
//!
//! The connection owns the socket and nothing else; what a packet means for
//! sessions and subscribers is decided in [`super::state`].

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rumqttc::mqttbytes::{Error as CodecError, valid_topic};
use rumqttc::{
    ConnAck, Connect, ConnectReturnCode, LastWill, Packet, Protocol, PubAck, PubComp, PubRec,
    Publish, QoS, SubAck, UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::BrokerOptions;
use super::state::State;

/// How long a new connection may take to send CONNECT.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Deliveries are taken from the session while less than this waits to be
/// written, so a slow reader's messages wait in its session queue (where the
/// limits apply) rather than in the socket buffer.
const TAKE_BYTES: usize = 64 * 1024;

/// Above this much waiting to be written, the client's packets are not read.
const WRITE_HIGH_WATER: usize = 1024 * 1024;

/// How long a closing connection may take to write its last replies.
const LAST_REPLIES_TIMEOUT: Duration = Duration::from_secs(1);

/// What the accept loop shares with every connection.
pub(super) struct Shared {
    pub state: Mutex<State>,
    pub options: BrokerOptions,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // The daemon aborts on panic; elsewhere (tests) a panicking
        // connection must not take the broker down with a poisoned lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a connection ended; decides whether the will is published.
enum End {
    /// The client sent DISCONNECT: no will.
    Disconnect,
    /// The broker is shutting down: no will.
    Shutdown,
    /// Any other end (taken over, closed, timed out, broken): the will goes out.
    Lost,
}

/// Serves one accepted socket until it ends. Never fails: problems are logged
/// with the peer address and end this connection only.
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut conn = Connection {
        stream,
        peer,
        read_buf: BytesMut::with_capacity(4096),
        write_buf: BytesMut::with_capacity(4096),
        max_packet_size: shared.options.max_packet_size,
    };
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
    let Some(client_id) = conn.accept(&connect, &shared).await else {
        return;
    };
    let cancel = shutdown.child_token();
    let attach = shared
        .state()
        .connect(&client_id, connect.clean_session, cancel.clone());
    tracing::debug!(
        %peer, client_id, clean_session = connect.clean_session,
        session_present = attach.session_present, "mqtt client connected"
    );
    let ack = ConnAck::new(ConnectReturnCode::Success, attach.session_present);
    conn.queue(Packet::ConnAck(ack));

    let mut session = SessionLoop {
        conn,
        shared: &shared,
        client_id: &client_id,
        conn_id: attach.conn_id,
        awaiting_release: HashSet::new(),
    };
    let keep_alive = Duration::from_millis(u64::from(connect.keep_alive) * 1500);
    let end = match session.run(&attach.wake, &cancel, keep_alive).await {
        End::Lost if shutdown.is_cancelled() => End::Shutdown,
        end => end,
    };
    if let (End::Lost, Some(will)) = (end, connect.last_will) {
        shared.state().publish(will_message(will));
    }
    shared.state().disconnect(&client_id, attach.conn_id);
}

struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    read_buf: BytesMut,
    write_buf: BytesMut,
    max_packet_size: usize,
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
            Ok(packet) => Ok(Some(packet)),
            Err(CodecError::InsufficientBytes(missing)) => {
                // Room for the rest, so a large packet is read in few calls.
                self.read_buf.reserve(missing);
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

    /// Checks CONNECT and answers a refusal itself; returns the client id to
    /// use when the connection is accepted.
    async fn accept(&mut self, connect: &Connect, shared: &Shared) -> Option<String> {
        let peer = self.peer;
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
        } else if !credentials_ok(connect, &shared.options) {
            Some((
                ConnectReturnCode::BadUserNamePassword,
                "bad user name or password",
            ))
        } else if connect
            .last_will
            .as_ref()
            .is_some_and(|w| !valid_publish_topic(&w.topic))
        {
            Some((ConnectReturnCode::ServiceUnavailable, "invalid will topic"))
        } else {
            None
        };
        if let Some((code, why)) = refusal {
            tracing::warn!(%peer, client_id = connect.client_id, "mqtt client {peer} refused: {why}");
            self.queue(Packet::ConnAck(ConnAck::new(code, false)));
            // Best effort: the connection closes either way.
            let _ = self.flush(&CancellationToken::new()).await;
            return None;
        }
        if connect.client_id.is_empty() {
            Some(format!("anonymous-{peer}"))
        } else {
            Some(connect.client_id.clone())
        }
    }
}

struct SessionLoop<'a> {
    conn: Connection,
    shared: &'a Shared,
    client_id: &'a str,
    conn_id: u64,
    /// Incoming QoS 2 packet ids routed and waiting for PUBREL, so a
    /// re-sent PUBLISH is not routed twice within this connection.
    awaiting_release: HashSet<u16>,
}

impl SessionLoop<'_> {
    async fn run(
        &mut self,
        wake: &tokio::sync::Notify,
        cancel: &CancellationToken,
        keep_alive: Duration,
    ) -> End {
        let peer = self.conn.peer;
        let client_id = self.client_id;
        let mut last_heard = Instant::now();
        let mut outgoing = Vec::new();
        loop {
            // Whole packets already buffered first: a client may send CONNECT
            // and its first packets in one segment.
            loop {
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
            if self.conn.write_buf.len() < TAKE_BYTES {
                let budget = TAKE_BYTES - self.conn.write_buf.len();
                self.shared
                    .state()
                    .take_outgoing(client_id, self.conn_id, budget, &mut outgoing);
                for publish in outgoing.drain(..) {
                    self.conn.queue(Packet::Publish(publish));
                }
            }
            let deadline = last_heard + keep_alive;
            // Reads and writes proceed together, so a client busy writing to
            // us is never blocked by our writes to it, and the other way round.
            // A client that does not read gets no more packets read from it
            // once a megabyte of replies waits for it.
            let Connection {
                stream,
                read_buf,
                write_buf,
                ..
            } = &mut self.conn;
            let (mut reader, mut writer) = stream.split();
            let reading = write_buf.len() < WRITE_HIGH_WATER;
            tokio::select! {
                _ = cancel.cancelled() => {
                    tracing::debug!(%peer, client_id, "mqtt connection of {client_id} ({peer}) closed by the broker (takeover or shutdown)");
                    return End::Lost;
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
                _ = wake.notified() => {}
                _ = sleep_until(deadline), if !keep_alive.is_zero() => {
                    tracing::info!(%peer, client_id, "mqtt client {client_id} ({peer}) silent past 1.5 x keep-alive; closing");
                    return End::Lost;
                }
            }
        }
    }

    /// Best effort, briefly: the acknowledgements of packets handled before
    /// the one that ends the connection, so the client need not re-send them.
    async fn flush_last_replies(&mut self, cancel: &CancellationToken) {
        let _ = timeout(LAST_REPLIES_TIMEOUT, self.conn.flush(cancel)).await;
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
                let pkid = publish.pkid;
                match publish.qos {
                    QoS::AtMostOnce => self.shared.state().publish(publish),
                    QoS::AtLeastOnce => {
                        self.shared.state().publish(publish);
                        self.conn.queue(Packet::PubAck(PubAck::new(pkid)));
                    }
                    QoS::ExactlyOnce => {
                        if self.awaiting_release.insert(pkid) {
                            self.shared.state().publish(publish);
                        }
                        self.conn.queue(Packet::PubRec(PubRec::new(pkid)));
                    }
                }
            }
            Packet::PubRel(rel) => {
                self.awaiting_release.remove(&rel.pkid);
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
                let codes = self
                    .shared
                    .state()
                    .subscribe(client_id, conn_id, &subscribe.filters);
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

fn credentials_ok(connect: &Connect, options: &BrokerOptions) -> bool {
    match (&options.credentials, &connect.login) {
        (None, _) => true,
        (Some((user, password)), Some(login)) => login.validate(user, password),
        (Some(_), None) => false,
    }
}

fn valid_publish_topic(topic: &str) -> bool {
    !topic.is_empty() && valid_topic(topic)
}

fn will_message(will: LastWill) -> Publish {
    let mut publish = Publish::from_bytes(will.topic, will.qos, will.message);
    publish.retain = will.retain;
    publish
}
