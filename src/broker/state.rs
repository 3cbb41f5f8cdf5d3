//! Sessions, subscriptions and retained messages: the broker's state with no
//! socket in sight. Only readers (and attendd's in-process publisher) use
//! it for deliveries; punches never pass through it.
//!
//! Connections call into [`State`] under one lock, passing the connection id
//! they were given by [`State::connect`]; a call from a connection that has
//! been taken over changes nothing. Every delivery goes through the session's
//! queue, connected or not, so order is kept and a reconnect resumes where the
//! last connection stopped. A connected session is woken through its
//! [`Notify`] when its queue grows.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use rumqttc::mqttbytes::valid_filter;
use rumqttc::{Publish, QoS, SubscribeFilter, SubscribeReasonCode};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::BrokerOptions;

/// What a connection gets back from [`State::connect`].
pub(super) struct Attach {
    /// Passed back on every later call, so a connection that was taken over
    /// cannot act on the session it lost.
    pub conn_id: u64,
    /// The CONNACK flag: a persistent session was resumed.
    pub session_present: bool,
    /// Woken when the session's queue grows.
    pub wake: Arc<Notify>,
}

/// All sessions and retained messages of one broker.
pub(super) struct State {
    /// Sessions by client id. A BTreeMap so that shared-subscription members
    /// come in a stable order and round robin is fair.
    sessions: BTreeMap<String, Session>,
    /// The last retained message of each topic (never an empty payload),
    /// with the order it was stored in (the oldest goes first when full).
    retained: BTreeMap<String, (u64, Publish)>,
    retained_bytes: usize,
    max_retained: usize,
    max_retained_bytes: usize,
    /// Topic and payload bytes queued across all sessions.
    queued_bytes_total: usize,
    max_queued_bytes_total: usize,
    max_sessions: usize,
    next_seq: u64,
    /// Round-robin position of each shared subscription (`$share/g/f`).
    shared_cursor: HashMap<String, usize>,
    max_queued: usize,
    max_queued_bytes: usize,
    queue_qos0_offline: bool,
    max_inflight: usize,
    next_conn_id: u64,
}

struct Session {
    /// Kept after the connection ends (CONNECT with clean_session = false).
    persistent: bool,
    /// The user that owns the client id (`None`: anonymous); another user
    /// cannot take it over.
    owner: Option<String>,
    /// When it was last attached (for dropping the oldest offline session).
    last_attached: u64,
    /// Granted QoS by filter, as subscribed (shared ones keep `$share/g/`).
    subscriptions: BTreeMap<String, QoS>,
    /// Waiting to be written. QoS 1 entries with a non-zero pkid are
    /// deliveries being re-sent after a reconnect.
    queue: VecDeque<Publish>,
    /// Topic and payload bytes in `queue`.
    queued_bytes: usize,
    /// Written at QoS 1 and not yet acknowledged, in the order sent.
    inflight: VecDeque<Publish>,
    next_pkid: u16,
    conn: Option<Attached>,
    /// Set while messages are being dropped for a full queue, so the warning
    /// is logged once per episode rather than once per message.
    dropping: bool,
}

struct Attached {
    id: u64,
    wake: Arc<Notify>,
    /// Cancelled when another connection takes the client id over.
    cancel: CancellationToken,
}

impl State {
    pub fn new(options: &BrokerOptions) -> State {
        State {
            sessions: BTreeMap::new(),
            retained: BTreeMap::new(),
            retained_bytes: 0,
            max_retained: options.max_retained,
            max_retained_bytes: options.max_retained_bytes,
            queued_bytes_total: 0,
            max_queued_bytes_total: options.max_queued_bytes_total,
            max_sessions: options.max_sessions.max(options.max_connections).max(1),
            next_seq: 0,
            shared_cursor: HashMap::new(),
            max_queued: options.max_queued_per_session,
            max_queued_bytes: options.max_queued_bytes_per_session,
            queue_qos0_offline: options.queue_qos0_offline,
            max_inflight: usize::from(options.max_inflight_per_session.max(1)),
            next_conn_id: 0,
        }
    }

    /// Connections attached now.
    pub fn connections(&self) -> usize {
        self.sessions.values().filter(|s| s.conn.is_some()).count()
    }

    /// Attaches a new connection to `client_id`'s session, taking over (and
    /// cancelling) any connection that holds it. A persistent session is
    /// resumed unless `clean`; its unacknowledged deliveries are queued first,
    /// in their original order, flagged DUP. `None` when the client id
    /// belongs to another user.
    pub fn connect(
        &mut self,
        client_id: &str,
        owner: Option<&str>,
        clean: bool,
        cancel: CancellationToken,
    ) -> Option<Attach> {
        if let Some(s) = self.sessions.get(client_id)
            && s.owner.as_deref() != owner
        {
            return None;
        }
        self.next_conn_id += 1;
        let previous = self.sessions.remove(client_id);
        if let Some(conn) = previous.as_ref().and_then(|s| s.conn.as_ref()) {
            conn.cancel.cancel();
        }
        if let Some(p) = &previous {
            self.queued_bytes_total -= p.queued_bytes;
        }
        let resumed = previous.filter(|s| s.persistent && !clean);
        let session_present = resumed.is_some();
        if resumed.is_none() {
            self.make_room_for_a_session();
        }
        let mut session = resumed.unwrap_or_else(|| Session {
            persistent: false,
            owner: owner.map(str::to_owned),
            last_attached: 0,
            subscriptions: BTreeMap::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            inflight: VecDeque::new(),
            next_pkid: 1,
            conn: None,
            dropping: false,
        });
        session.persistent = !clean;
        session.last_attached = self.next_conn_id;
        while let Some(mut publish) = session.inflight.pop_back() {
            publish.dup = true;
            session.queued_bytes += size(&publish);
            session.queue.push_front(publish);
        }
        self.queued_bytes_total += session.queued_bytes;
        let wake = Arc::new(Notify::new());
        session.conn = Some(Attached {
            id: self.next_conn_id,
            wake: wake.clone(),
            cancel,
        });
        self.sessions.insert(client_id.to_owned(), session);
        Some(Attach {
            conn_id: self.next_conn_id,
            session_present,
            wake,
        })
    }

    /// Drops the offline session attached longest ago while the session
    /// limit is reached.
    fn make_room_for_a_session(&mut self) {
        while self.sessions.len() >= self.max_sessions {
            let oldest = self
                .sessions
                .iter()
                .filter(|(_, s)| s.conn.is_none())
                .min_by_key(|(_, s)| s.last_attached)
                .map(|(id, _)| id.clone());
            let Some(id) = oldest else { return };
            if let Some(s) = self.sessions.remove(&id) {
                self.queued_bytes_total -= s.queued_bytes;
                tracing::warn!(
                    client_id = id,
                    "mqtt session limit reached: dropping the offline session of {id}"
                );
            }
        }
    }

    /// Detaches a connection that ended. A persistent session stays, keeping
    /// its queued messages (QoS 0 ones only with `queue_qos0_offline`); any
    /// other is removed with its subscriptions.
    pub fn disconnect(&mut self, client_id: &str, conn_id: u64) {
        let keep_qos0 = self.queue_qos0_offline;
        let Some(session) = self
            .sessions
            .get_mut(client_id)
            .filter(|s| s.conn.as_ref().is_some_and(|c| c.id == conn_id))
        else {
            return;
        };
        if session.persistent {
            session.conn = None;
            if !keep_qos0 {
                let before = session.queued_bytes;
                session.queue.retain(|p| p.qos != QoS::AtMostOnce);
                session.queued_bytes = session.queue.iter().map(size).sum();
                self.queued_bytes_total -= before - session.queued_bytes;
            }
        } else if let Some(s) = self.sessions.remove(client_id) {
            self.queued_bytes_total -= s.queued_bytes;
        }
    }

    /// Adds or replaces subscriptions and queues the retained messages they
    /// match. QoS 2 is granted as QoS 1; an invalid filter, or one
    /// `allowed` refuses (it gets the filter without `$share/group/`), is
    /// refused.
    pub fn subscribe(
        &mut self,
        client_id: &str,
        conn_id: u64,
        filters: &[SubscribeFilter],
        allowed: impl Fn(&str) -> bool,
    ) -> Vec<SubscribeReasonCode> {
        let mut codes = Vec::with_capacity(filters.len());
        let mut retained = Vec::new();
        let Some(session) = self.session(client_id, conn_id) else {
            return codes;
        };
        for filter in filters {
            let plain = match split_shared(&filter.path) {
                Some((group, inner)) if valid_group(group) => inner,
                Some(_) => {
                    codes.push(SubscribeReasonCode::Failure);
                    continue;
                }
                None => &filter.path,
            };
            if !valid_filter(plain) || !allowed(plain) {
                codes.push(SubscribeReasonCode::Failure);
                continue;
            }
            let granted = min_qos(filter.qos, QoS::AtLeastOnce);
            session.subscriptions.insert(filter.path.clone(), granted);
            codes.push(SubscribeReasonCode::Success(granted));
            // Shared subscriptions get no retained messages (as in MQTT 5):
            // one group member would get a stale copy on every join.
            if split_shared(&filter.path).is_none() {
                retained.push((filter.path.clone(), granted));
            }
        }
        for (filter, granted) in retained {
            let matching: Vec<Publish> = self
                .retained
                .iter()
                .filter(|(topic, _)| matches(topic, &filter))
                .map(|(_, (_, p))| p.clone())
                .collect();
            for mut publish in matching {
                publish.qos = min_qos(publish.qos, granted);
                self.enqueue(client_id, publish);
            }
        }
        codes
    }

    /// Removes subscriptions (unknown filters are ignored, as the protocol
    /// asks).
    pub fn unsubscribe(&mut self, client_id: &str, conn_id: u64, filters: &[String]) {
        if let Some(session) = self.session(client_id, conn_id) {
            for filter in filters {
                session.subscriptions.remove(filter);
            }
        }
    }

    /// Routes a message to every matching session (once per session, at the
    /// highest matching QoS) and to one member of each matching shared
    /// subscription, and updates the retained store.
    pub fn publish(&mut self, publish: Publish) {
        if publish.retain {
            if let Some((_, old)) = self.retained.remove(&publish.topic) {
                self.retained_bytes -= size(&old);
            }
            if !publish.payload.is_empty() {
                let mut stored = publish.clone();
                stored.dup = false;
                stored.pkid = 0;
                self.next_seq += 1;
                self.retained_bytes += size(&stored);
                self.retained
                    .insert(publish.topic.clone(), (self.next_seq, stored));
                while self.retained.len() > self.max_retained
                    || self.retained_bytes > self.max_retained_bytes
                {
                    let Some(oldest) = self
                        .retained
                        .iter()
                        .min_by_key(|(_, (seq, _))| *seq)
                        .map(|(t, _)| t.clone())
                    else {
                        break;
                    };
                    if let Some((_, p)) = self.retained.remove(&oldest) {
                        self.retained_bytes -= size(&p);
                    }
                }
            }
        }
        let topic = publish.topic.as_str();
        let mut targets: Vec<(String, QoS)> = Vec::new();
        // Shared subscription -> members (client id, granted QoS, connected).
        let mut groups: BTreeMap<&str, Vec<(&str, QoS, bool)>> = BTreeMap::new();
        for (client_id, session) in &self.sessions {
            let mut best: Option<QoS> = None;
            for (filter, &granted) in &session.subscriptions {
                match split_shared(filter) {
                    Some((_, inner)) if matches(topic, inner) => {
                        let member = (client_id.as_str(), granted, session.conn.is_some());
                        groups.entry(filter).or_default().push(member);
                    }
                    Some(_) => {}
                    None if matches(topic, filter) => {
                        best = Some(best.map_or(granted, |b| max_qos(b, granted)));
                    }
                    None => {}
                }
            }
            if let Some(qos) = best {
                targets.push((client_id.clone(), qos));
            }
        }
        for (filter, members) in groups {
            // Connected members take turns; with none connected the message
            // waits in a persistent member's session.
            let connected: Vec<_> = members.iter().filter(|m| m.2).collect();
            let pool: Vec<_> = if connected.is_empty() {
                members.iter().collect()
            } else {
                connected
            };
            let cursor = self.shared_cursor.entry(filter.to_owned()).or_default();
            let (client_id, granted, _) = pool[*cursor % pool.len()];
            *cursor = cursor.wrapping_add(1);
            targets.push(((*client_id).to_owned(), *granted));
        }
        for (client_id, granted) in targets {
            let mut delivery = publish.clone();
            delivery.qos = min_qos(publish.qos, granted);
            delivery.retain = false;
            delivery.dup = false;
            delivery.pkid = 0;
            self.enqueue(&client_id, delivery);
        }
    }

    /// Forgets an acknowledged delivery. False if `pkid` was not in flight.
    pub fn acknowledge(&mut self, client_id: &str, conn_id: u64, pkid: u16) -> bool {
        let Some(session) = self.session(client_id, conn_id) else {
            return false;
        };
        match session.inflight.iter().position(|p| p.pkid == pkid) {
            Some(at) => {
                session.inflight.remove(at);
                true
            }
            None => false,
        }
    }

    /// Moves what may be written now from the queue to `out`, QoS 1 messages
    /// getting a packet id and a place in the in-flight list. Stops at the
    /// first QoS 1 message that would pass the in-flight limit (so order is
    /// kept), or once about `max_bytes` of topic and payload are taken.
    pub fn take_outgoing(
        &mut self,
        client_id: &str,
        conn_id: u64,
        max_bytes: usize,
        out: &mut Vec<Publish>,
    ) {
        let max_inflight = self.max_inflight;
        let Some(session) = self
            .sessions
            .get_mut(client_id)
            .filter(|s| s.conn.as_ref().is_some_and(|c| c.id == conn_id))
        else {
            return;
        };
        let mut taken = 0;
        while let Some(front) = session.queue.front() {
            if taken >= max_bytes {
                break;
            }
            let qos1 = front.qos != QoS::AtMostOnce;
            if qos1 && front.pkid == 0 && session.inflight.len() >= max_inflight {
                break;
            }
            let Some(mut publish) = session.queue.pop_front() else {
                break;
            };
            session.queued_bytes -= size(&publish);
            self.queued_bytes_total -= size(&publish);
            taken += size(&publish);
            if qos1 {
                if publish.pkid == 0 {
                    publish.pkid = session.free_pkid();
                }
                session.inflight.push_back(publish.clone());
            }
            out.push(publish);
        }
        if !out.is_empty() {
            session.dropping = false;
        }
    }

    fn session(&mut self, client_id: &str, conn_id: u64) -> Option<&mut Session> {
        self.sessions
            .get_mut(client_id)
            .filter(|s| s.conn.as_ref().is_some_and(|c| c.id == conn_id))
    }

    fn enqueue(&mut self, client_id: &str, publish: Publish) {
        let Some(session) = self.sessions.get_mut(client_id) else {
            return;
        };
        if publish.qos == QoS::AtMostOnce && session.conn.is_none() && !self.queue_qos0_offline {
            return;
        }
        let bytes = size(&publish);
        if session.queue.len() >= self.max_queued
            || session.queued_bytes + bytes > self.max_queued_bytes
            || self.queued_bytes_total + bytes > self.max_queued_bytes_total
        {
            if !session.dropping {
                tracing::warn!(
                    client_id,
                    queued = session.queue.len(),
                    queued_bytes = session.queued_bytes,
                    "mqtt session queue of {client_id} is full; dropping new messages until it drains"
                );
                session.dropping = true;
            }
            return;
        }
        session.queued_bytes += bytes;
        self.queued_bytes_total += bytes;
        session.queue.push_back(publish);
        if let Some(conn) = &session.conn {
            conn.wake.notify_one();
        }
    }
}

impl Session {
    /// The next packet id not in flight (there are fewer than 65,535 in
    /// flight, so one is always free).
    fn free_pkid(&mut self) -> u16 {
        loop {
            let pkid = self.next_pkid;
            self.next_pkid = self.next_pkid.checked_add(1).unwrap_or(1);
            if !self.inflight.iter().any(|p| p.pkid == pkid) {
                return pkid;
            }
        }
    }
}

/// What a queued message counts against `max_queued_bytes_per_session`.
fn size(publish: &Publish) -> usize {
    publish.topic.len() + publish.payload.len()
}

/// Splits `$share/{group}/{filter}` into its group and filter.
fn split_shared(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

fn valid_group(group: &str) -> bool {
    !group.is_empty() && !group.contains(['+', '#'])
}

/// Whether `topic` matches `filter` (MQTT 3.1.1 section 4.7): `+` is one
/// level, a final `#` is any number of levels including none, and topics
/// starting with `$` are not matched by a filter starting with a wildcard.
pub(super) fn matches(topic: &str, filter: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match levels.next() {
            Some(level) if f == "+" || f == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

fn min_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) <= (b as u8) { a } else { b }
}

fn max_qos(a: QoS, b: QoS) -> QoS {
    if (a as u8) >= (b as u8) { a } else { b }
}

#[cfg(test)]
mod tests;
