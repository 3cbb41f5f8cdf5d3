//! The embedded broker driven by the rumqttc client (and raw bytes for
//! protocol errors), on 127.0.0.1 port 0, with a sink standing for the
//! store that a test can stall; and the real daemon with its broker killed
//! while the store is stalled.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attendd::broker::{BrokerHandle, BrokerOptions, EmbeddedBroker, Role, User};
use attendd::source::{PunchSink, Received, SinkError};
use rumqttc::{AsyncClient, ConnAck, Event, MqttOptions, Packet, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Upper bound for any single expected event.
const WAIT: Duration = Duration::from_secs(10);

/// Stands for the store: keeps what was committed; while `stalled`, a
/// commit waits (as a slow or locked store makes it).
#[derive(Default)]
struct Store {
    committed: Mutex<Vec<Received>>,
    stalled: AtomicBool,
    /// Messages that reached `commit` (stalled or not).
    offered: AtomicUsize,
}

impl PunchSink for Store {
    async fn commit(&self, batch: &[Received]) -> Result<(), SinkError> {
        self.offered.fetch_add(batch.len(), Ordering::SeqCst);
        while self.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.committed.lock().unwrap().extend_from_slice(batch);
        Ok(())
    }
}

impl Store {
    fn payloads(&self) -> Vec<String> {
        self.committed
            .lock()
            .unwrap()
            .iter()
            .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
            .collect()
    }

    fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }
}

struct Broker {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
    handle: BrokerHandle,
    store: Arc<Store>,
}

/// Options for the tests: anonymous clients allowed (loopback), punches on
/// `site/+/punch`, outputs under `out/`.
fn open() -> BrokerOptions {
    BrokerOptions {
        allow_anonymous: true,
        punch_topics: vec!["site/+/punch".into()],
        output_roots: vec!["out".into()],
        ..BrokerOptions::default()
    }
}

/// Options with two terminals and a reader, no anonymous clients.
fn with_users() -> BrokerOptions {
    let user = |name: &str, password: &str, role| User {
        username: name.into(),
        password: password.into(),
        role,
        publish: vec![],
    };
    BrokerOptions {
        allow_anonymous: false,
        users: vec![
            user("gate-1", "s3cret-1", Role::Terminal),
            user("gate-2", "s3cret-2", Role::Terminal),
            user("hr-board", "r3ader", Role::Reader),
        ],
        output_roots: attendd::broker::output_roots("attendance"),
        punch_topics: vec!["attendance/+/punch".into()],
        ..BrokerOptions::default()
    }
}

impl Broker {
    fn start(options: BrokerOptions) -> Broker {
        let broker = EmbeddedBroker::bind("127.0.0.1:0".parse().unwrap(), options).unwrap();
        let addr = broker.local_addr();
        let handle = broker.handle();
        let stop = CancellationToken::new();
        let store = Arc::new(Store::default());
        let task = tokio::spawn(broker.run(store.clone(), stop.clone()));
        let task = tokio::spawn(async move { task.await.unwrap().unwrap() });
        Broker {
            addr,
            stop,
            task,
            handle,
            store,
        }
    }

    /// Publishes in-process, as attendd's own sink does.
    fn publish(&self, topic: &str, payload: &str, retain: bool) {
        self.handle
            .publish(topic, payload.as_bytes().to_vec(), retain);
    }

    /// Waits until the store holds `n` messages.
    async fn committed(&self, n: usize) -> Vec<String> {
        timeout(WAIT, async {
            loop {
                let got = self.store.payloads();
                if got.len() >= n {
                    return got;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{} of {n} committed", self.store.payloads().len()))
    }
}

/// What a test client's event loop saw.
#[derive(Debug)]
enum Seen {
    Packet(Packet),
    Closed(String),
}

struct Client {
    client: AsyncClient,
    seen: mpsc::UnboundedReceiver<Seen>,
    task: JoinHandle<()>,
}

fn options(addr: SocketAddr, id: &str, clean: bool) -> MqttOptions {
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_clean_session(clean);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

fn login(addr: SocketAddr, id: &str, user: &str, password: &str) -> MqttOptions {
    let mut o = options(addr, id, true);
    o.set_credentials(user, password);
    o
}

/// Connects and polls until the first error (no automatic reconnect).
fn connect(o: MqttOptions) -> Client {
    let (client, mut events) = AsyncClient::new(o, 1000);
    let (tx, seen) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::PingResp)) | Ok(Event::Outgoing(_)) => {}
                Ok(Event::Incoming(p)) => {
                    if tx.send(Seen::Packet(p)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Seen::Closed(e.to_string()));
                    return;
                }
            }
        }
    });
    Client { client, seen, task }
}

impl Client {
    async fn next(&mut self) -> Seen {
        timeout(WAIT, self.seen.recv())
            .await
            .expect("no event in time")
            .expect("event loop gone")
    }

    /// The next event, if one comes within `d`.
    async fn within(&mut self, d: Duration) -> Option<Seen> {
        timeout(d, self.seen.recv()).await.ok().flatten()
    }

    async fn packet(&mut self) -> Packet {
        match self.next().await {
            Seen::Packet(p) => p,
            Seen::Closed(e) => panic!("connection closed: {e}"),
        }
    }

    async fn connack(&mut self) -> ConnAck {
        match self.packet().await {
            Packet::ConnAck(ack) => ack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// The refusal of a CONNECT, as rumqttc reports it.
    async fn refused(&mut self) -> String {
        match self.next().await {
            Seen::Closed(e) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    async fn publish(&mut self) -> Publish {
        match self.packet().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    async fn puback(&mut self) -> u16 {
        match self.packet().await {
            Packet::PubAck(a) => a.pkid,
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }

    /// Subscribes and waits for the SUBACK, returning the granted codes.
    async fn subscribe(&mut self, filter: &str, qos: QoS) -> Vec<rumqttc::SubscribeReasonCode> {
        self.client.subscribe(filter, qos).await.unwrap();
        match self.packet().await {
            Packet::SubAck(ack) => ack.return_codes,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes and, for QoS 1, waits for the PUBACK.
    async fn send(&mut self, topic: &str, qos: QoS, payload: &str) {
        self.client
            .publish(topic, qos, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => assert!(matches!(self.packet().await, Packet::PubAck(_))),
            QoS::ExactlyOnce => {
                assert!(matches!(self.packet().await, Packet::PubRec(_)));
                assert!(matches!(self.packet().await, Packet::PubComp(_)));
            }
        }
    }

    /// Drops the connection without DISCONNECT and without acknowledging.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn started(addr: SocketAddr, id: &str, clean: bool) -> Client {
    let mut c = connect(options(addr, id, clean));
    let ack = c.connack().await;
    assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
    c
}

fn text(p: &Publish) -> &str {
    std::str::from_utf8(&p.payload).unwrap()
}

const GRANTED_1: rumqttc::SubscribeReasonCode =
    rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce);

// --- Who gets in -----------------------------------------------------------

#[tokio::test]
async fn an_anonymous_client_is_refused_at_connect() {
    let broker = Broker::start(with_users());
    let mut anonymous = connect(options(broker.addr, "anyone", true));
    let e = anonymous.refused().await;
    assert!(e.contains("NotAuthorized"), "{e}");
    broker.stop.cancel();
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_refused_and_each_terminal_logs_in_with_its_own() {
    let broker = Broker::start(with_users());
    for (user, password) in [
        ("gate-1", "s3cret-2"),
        ("gate-1", ""),
        ("gate-1", "s3cret-1x"),
        ("nobody", "s3cret-1"),
    ] {
        let mut c = connect(login(broker.addr, "c", user, password));
        let e = c.refused().await;
        assert!(e.contains("BadUserNamePassword"), "{user}/{password}: {e}");
    }
    for (user, password) in [("gate-1", "s3cret-1"), ("gate-2", "s3cret-2")] {
        let mut c = connect(login(broker.addr, user, user, password));
        assert_eq!(c.connack().await.code, rumqttc::ConnectReturnCode::Success);
    }
    assert!(broker.store.payloads().is_empty());
    broker.stop.cancel();
}

#[tokio::test]
async fn another_user_cannot_take_a_terminals_client_id_over() {
    let broker = Broker::start(with_users());
    let mut gate1 = connect(login(broker.addr, "gate-1", "gate-1", "s3cret-1"));
    gate1.connack().await;
    let mut thief = connect(login(broker.addr, "gate-1", "gate-2", "s3cret-2"));
    let e = thief.refused().await;
    assert!(e.contains("NotAuthorized"), "{e}");
    gate1
        .send("attendance/gate-1/punch", QoS::AtLeastOnce, "still here")
        .await;
    assert_eq!(broker.committed(1).await, ["still here"]);
    broker.stop.cancel();
}

#[tokio::test]
async fn a_reader_subscribes_to_the_outputs_only_and_may_not_publish() {
    let broker = Broker::start(with_users());
    let mut reader = connect(login(broker.addr, "board", "hr-board", "r3ader"));
    reader.connack().await;
    use rumqttc::SubscribeReasonCode::Failure;
    assert_eq!(
        reader
            .subscribe("attendance/alerts/#", QoS::AtLeastOnce)
            .await,
        [GRANTED_1]
    );
    assert_eq!(
        reader
            .subscribe("attendance/summary/daily/+", QoS::AtLeastOnce)
            .await,
        [GRANTED_1]
    );
    for denied in ["#", "attendance/#", "attendance/+/punch", "mqtt/face/1"] {
        assert_eq!(
            reader.subscribe(denied, QoS::AtLeastOnce).await,
            [Failure],
            "{denied}"
        );
    }
    broker.publish(
        "attendance/alerts/absence",
        r#"{"employee_id":"E001"}"#,
        false,
    );
    let got = reader.publish().await;
    assert_eq!(got.topic, "attendance/alerts/absence");

    // A terminal may not read the outputs, only its own topic.
    let mut gate = connect(login(broker.addr, "gate-1", "gate-1", "s3cret-1"));
    gate.connack().await;
    assert_eq!(
        gate.subscribe("attendance/alerts/#", QoS::AtLeastOnce)
            .await,
        [Failure]
    );
    assert_eq!(gate.subscribe("#", QoS::AtLeastOnce).await, [Failure]);
    assert_eq!(
        gate.subscribe("mqtt/face/gate-1", QoS::AtLeastOnce).await,
        [GRANTED_1]
    );

    // A reader publishing (a forged punch) is cut off; nothing is stored.
    reader
        .client
        .publish(
            "attendance/gate-1/punch",
            QoS::AtLeastOnce,
            false,
            b"forged".to_vec(),
        )
        .await
        .unwrap();
    assert!(matches!(reader.next().await, Seen::Closed(_)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(broker.store.payloads().is_empty());
    broker.stop.cancel();
}

/// A terminal bound to its own topics cannot publish as another terminal:
/// it is cut off and nothing is stored; on its own topic it is served.
#[tokio::test]
async fn a_terminal_bound_to_its_topics_cannot_publish_as_another() {
    let mut o = with_users();
    for u in &mut o.users {
        if u.username == "gate-1" {
            u.publish = vec!["attendance/gate-1/#".into()];
        }
    }
    let broker = Broker::start(o);
    let mut gate = connect(login(broker.addr, "gate-1", "gate-1", "s3cret-1"));
    gate.connack().await;
    gate.send("attendance/gate-1/punch", QoS::AtLeastOnce, "own")
        .await;
    assert_eq!(broker.committed(1).await, ["own"]);
    gate.client
        .publish(
            "attendance/gate-2/punch",
            QoS::AtLeastOnce,
            false,
            b"impostor".to_vec(),
        )
        .await
        .unwrap();
    assert!(matches!(gate.next().await, Seen::Closed(_)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(broker.store.payloads(), ["own"]);
    // An unbound terminal still publishes on any punch topic.
    let mut other = connect(login(broker.addr, "gate-2", "gate-2", "s3cret-2"));
    other.connack().await;
    other
        .send("attendance/gate-9/punch", QoS::AtLeastOnce, "any")
        .await;
    assert_eq!(broker.committed(2).await, ["own", "any"]);
    broker.stop.cancel();
}

// --- Acknowledged after commit -----------------------------------------------

#[tokio::test]
async fn a_punch_is_acknowledged_only_once_committed_and_acknowledgements_keep_their_order() {
    let broker = Broker::start(open());
    let mut gate = started(broker.addr, "gate-1", true).await;
    broker.store.stall(true);
    gate.client
        .publish("site/gate-1/punch", QoS::AtLeastOnce, false, b"p1".to_vec())
        .await
        .unwrap();
    // A vendor heartbeat behind it: ignored, but acknowledged after p1.
    gate.client
        .publish(
            "mqtt/face/heartbeat",
            QoS::AtLeastOnce,
            false,
            b"hb".to_vec(),
        )
        .await
        .unwrap();
    assert!(
        gate.within(Duration::from_millis(500)).await.is_none(),
        "nothing is acknowledged while the store has not committed"
    );
    broker.store.stall(false);
    let first = gate.puback().await;
    let second = gate.puback().await;
    assert!(first < second, "PUBACKs in the order of the PUBLISHes");
    assert_eq!(
        broker.store.payloads(),
        ["p1"],
        "the heartbeat is not a punch"
    );
    broker.stop.cancel();
}

#[tokio::test]
async fn taking_a_client_id_over_with_a_clean_session_wipes_no_punch() {
    let broker = Broker::start(open());
    let gate = started(broker.addr, "attendd-site1", false).await;
    broker.store.stall(true);
    // Within the client's in-flight window (100), so all are sent.
    for i in 0..80 {
        gate.client
            .publish(
                "site/gate-1/punch",
                QoS::AtLeastOnce,
                false,
                format!("p{i}").into_bytes(),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Someone reuses the client id (attendd's own, or a terminal's) with a
    // clean session while the punches wait for the store.
    let mut intruder = connect(options(broker.addr, "attendd-site1", true));
    assert!(!intruder.connack().await.session_present);
    broker.store.stall(false);
    let got = broker.committed(80).await;
    let want: Vec<String> = (0..80).map(|i| format!("p{i}")).collect();
    assert_eq!(got, want, "every punch received is committed, in order");
    broker.stop.cancel();
}

#[tokio::test]
async fn qos_0_and_2_punches_are_committed_too() {
    let broker = Broker::start(open());
    let mut gate = started(broker.addr, "gate", true).await;
    gate.send("site/g/punch", QoS::AtMostOnce, "zero").await;
    gate.send("site/g/punch", QoS::ExactlyOnce, "two").await;
    assert_eq!(broker.committed(2).await, ["zero", "two"]);
    broker.stop.cancel();
}

#[tokio::test]
async fn shutdown_commits_and_acknowledges_what_was_received() {
    let broker = Broker::start(open());
    // Raw bytes: the PUBACK arrives together with the close, which some
    // clients report as the close alone.
    let mut raw = TcpStream::connect(broker.addr).await.unwrap();
    raw.write_all(&raw_connect(60)).await.unwrap();
    let mut connack = [0u8; 4];
    timeout(WAIT, raw.read_exact(&mut connack))
        .await
        .unwrap()
        .unwrap();
    broker.store.stall(true);
    let mut publish = vec![0x32, 20, 0, 12];
    publish.extend_from_slice(b"site/g/punch");
    publish.extend_from_slice(&[0, 7]);
    publish.extend_from_slice(b"last");
    raw.write_all(&publish).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    broker.stop.cancel();
    tokio::time::sleep(Duration::from_millis(100)).await;
    broker.store.stall(false);
    assert_eq!(
        read_until_closed(&mut raw).await,
        [0x40, 2, 0, 7],
        "PUBACK, then closed"
    );
    timeout(WAIT, broker.task).await.unwrap().unwrap();
    assert_eq!(broker.store.payloads(), ["last"]);
}

// --- Limits ------------------------------------------------------------------

#[tokio::test]
async fn bytes_awaiting_commit_are_bounded_and_nothing_is_lost() {
    let broker = Broker::start(BrokerOptions {
        max_packet_size: 2048,
        max_pending_bytes: 4096,
        ..open()
    });
    let mut gate = started(broker.addr, "gate", true).await;
    broker.store.stall(true);
    let payload = |i: usize| format!("{i:04}{}", "x".repeat(496));
    for i in 0..100 {
        gate.client
            .publish(
                "site/g/punch",
                QoS::AtLeastOnce,
                false,
                payload(i).into_bytes(),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Each costs its 500-byte payload + topic + 256: at most 6 fit in the
    // budget (4096, raised to one largest packet + 1024 = 3072 at least).
    let offered = broker.store.offered.load(Ordering::SeqCst);
    assert!(offered <= 6, "{offered} messages held for the store");
    broker.store.stall(false);
    let mut acked = 0;
    while acked < 100 {
        gate.puback().await;
        acked += 1;
    }
    let want: Vec<String> = (0..100).map(payload).collect();
    assert_eq!(broker.committed(100).await, want);
    broker.stop.cancel();
}

#[tokio::test]
async fn punches_awaiting_commit_are_bounded_per_connection() {
    let broker = Broker::start(BrokerOptions {
        max_pending_per_client: 3,
        ..open()
    });
    let gate = started(broker.addr, "gate", true).await;
    broker.store.stall(true);
    for i in 0..50 {
        gate.client
            .publish(
                "site/g/punch",
                QoS::AtMostOnce,
                false,
                format!("{i}").into_bytes(),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let offered = broker.store.offered.load(Ordering::SeqCst);
    assert!(offered <= 3, "{offered}");
    broker.store.stall(false);
    assert_eq!(broker.committed(50).await.len(), 50);
    broker.stop.cancel();
}

#[tokio::test]
async fn connections_past_the_limit_are_closed_until_one_leaves() {
    let broker = Broker::start(BrokerOptions {
        max_connections: 2,
        ..open()
    });
    let a = started(broker.addr, "a", true).await;
    let _b = started(broker.addr, "b", true).await;
    let mut c = connect(options(broker.addr, "c", true));
    assert!(matches!(c.next().await, Seen::Closed(_)));
    a.client.disconnect().await.unwrap();
    a.kill().await;
    let mut admitted = false;
    for _ in 0..50 {
        let mut d = connect(options(broker.addr, "d", true));
        if let Seen::Packet(Packet::ConnAck(_)) = d.next().await {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "a place freed is taken again");
    broker.stop.cancel();
}

#[tokio::test]
async fn a_face_photo_passes_but_a_packet_over_the_limit_closes_its_connection() {
    let broker = Broker::start(BrokerOptions {
        max_packet_size: 2 * 1024 * 1024,
        punch_topics: vec!["mqtt/face/+/Rec".into()],
        ..open()
    });
    let big = |id: &str| {
        let mut o = options(broker.addr, id, true);
        o.set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
        o
    };
    let mut terminal = connect(big("terminal"));
    terminal.connack().await;
    let photo: String = (0..1_400_000)
        .map(|i| (b'A' + (i % 26) as u8) as char)
        .collect();
    terminal
        .send("mqtt/face/57/Rec", QoS::AtLeastOnce, &photo)
        .await;
    assert!(broker.committed(1).await[0] == photo);

    let oversized = "x".repeat(3 * 1024 * 1024);
    terminal
        .client
        .publish("mqtt/face/57/Rec", QoS::AtLeastOnce, false, oversized)
        .await
        .unwrap();
    assert!(matches!(terminal.next().await, Seen::Closed(_)));
    let mut other = started(broker.addr, "other", true).await;
    other
        .send("mqtt/face/58/Rec", QoS::AtLeastOnce, "small")
        .await;
    assert_eq!(broker.committed(2).await[1], "small");
    broker.stop.cancel();
}

// --- Outputs to readers ------------------------------------------------------

#[tokio::test]
async fn outputs_reach_readers_at_the_lower_of_publish_and_subscription_qos() {
    let broker = Broker::start(open());
    let mut sub = started(broker.addr, "sub", true).await;
    sub.subscribe("out/q0", QoS::AtMostOnce).await;
    let granted = sub.subscribe("out/q1", QoS::ExactlyOnce).await;
    assert_eq!(granted, [GRANTED_1]);
    broker.publish("out/q1", "one", false);
    broker.publish("out/q0", "zero", false);
    let got: Vec<(String, QoS)> = [sub.publish().await, sub.publish().await]
        .iter()
        .map(|p| (text(p).to_owned(), p.qos))
        .collect();
    assert_eq!(
        got,
        [
            ("one".into(), QoS::AtLeastOnce),
            ("zero".into(), QoS::AtMostOnce)
        ]
    );
    broker.stop.cancel();
}

#[tokio::test]
async fn wildcards_select_the_matching_topics() {
    let broker = Broker::start(open());
    let mut sub = started(broker.addr, "sub", true).await;
    sub.subscribe("out/a/+/c", QoS::AtLeastOnce).await;
    sub.subscribe("out/x/#", QoS::AtLeastOnce).await;
    for topic in [
        "out/a/b/c",
        "out/a/b/d",
        "out/a/b/c/d",
        "out/x",
        "out/x/y/z",
        "out/y/x",
        "out/a/z/c",
    ] {
        broker.publish(topic, topic, false);
    }
    let mut topics = Vec::new();
    for _ in 0..4 {
        topics.push(sub.publish().await.topic);
    }
    assert_eq!(topics, ["out/a/b/c", "out/x", "out/x/y/z", "out/a/z/c"]);
    broker.stop.cancel();
}

#[tokio::test]
async fn unsubscribe_stops_deliveries() {
    let broker = Broker::start(open());
    let mut sub = started(broker.addr, "sub", true).await;
    sub.subscribe("out/u/+", QoS::AtLeastOnce).await;
    sub.subscribe("out/marker", QoS::AtLeastOnce).await;
    sub.client.unsubscribe("out/u/+").await.unwrap();
    assert!(matches!(sub.packet().await, Packet::UnsubAck(_)));
    broker.publish("out/u/1", "gone", false);
    broker.publish("out/marker", "marker", false);
    assert_eq!(text(&sub.publish().await), "marker");
    broker.stop.cancel();
}

#[tokio::test]
async fn retained_messages_reach_later_subscribers_until_cleared() {
    let broker = Broker::start(open());
    broker.publish("out/r/a", "a1", true);
    broker.publish("out/r/b", "b1", true);
    broker.publish("out/r/b", "b2", true);
    broker.publish("out/r/a", "", true);

    let mut sub = started(broker.addr, "sub", true).await;
    sub.subscribe("out/r/#", QoS::AtLeastOnce).await;
    let first = sub.publish().await;
    assert_eq!((first.topic.as_str(), text(&first)), ("out/r/b", "b2"));
    assert!(first.retain);
    broker.publish("out/r/c", "live", true);
    let live = sub.publish().await;
    assert_eq!(text(&live), "live");
    assert!(!live.retain, "a live delivery carries no retain flag");
    broker.stop.cancel();
}

#[tokio::test]
async fn a_persistent_session_receives_what_was_published_while_offline() {
    let broker = Broker::start(open());
    let mut sub = started(broker.addr, "board", false).await;
    sub.subscribe("out/alerts/+", QoS::AtLeastOnce).await;
    sub.client.disconnect().await.unwrap();
    assert!(matches!(sub.next().await, Seen::Closed(_)));
    for i in 0..5 {
        broker.publish("out/alerts/absence", &format!("a{i}"), false);
    }
    let mut again = connect(options(broker.addr, "board", false));
    assert!(again.connack().await.session_present);
    let mut got = Vec::new();
    for _ in 0..5 {
        got.push(text(&again.publish().await).to_owned());
    }
    assert_eq!(got, ["a0", "a1", "a2", "a3", "a4"]);
    // A clean session forgets all of it.
    again.kill().await;
    let mut clean = connect(options(broker.addr, "board", true));
    assert!(!clean.connack().await.session_present);
    broker.stop.cancel();
}

#[tokio::test]
async fn unacknowledged_qos_1_is_redelivered_in_order_after_reconnect() {
    let broker = Broker::start(open());
    let manual = |clean| {
        let mut o = options(broker.addr, "slow", clean);
        o.set_manual_acks(true);
        o
    };
    let mut sub = connect(manual(false));
    sub.connack().await;
    sub.subscribe("out/t/#", QoS::AtLeastOnce).await;
    for m in ["m1", "m2", "m3"] {
        broker.publish("out/t/x", m, false);
    }
    for m in ["m1", "m2", "m3"] {
        let p = sub.publish().await;
        assert_eq!((text(&p), p.dup), (m, false));
    }
    sub.kill().await;

    let mut sub = connect(manual(false));
    assert!(sub.connack().await.session_present);
    let mut again = Vec::new();
    for m in ["m1", "m2", "m3"] {
        let p = sub.publish().await;
        assert_eq!((text(&p), p.dup), (m, true), "re-sent in order with DUP");
        again.push(p);
    }
    for p in &again {
        sub.client.ack(p).await.unwrap();
    }
    // The SUBACK goes out after the acknowledgements are processed.
    sub.subscribe("out/sync", QoS::AtLeastOnce).await;
    broker.publish("out/t/marker", "marker", false);
    assert_eq!(text(&sub.publish().await), "marker");
    sub.kill().await;

    let mut sub = connect(manual(false));
    assert!(sub.connack().await.session_present);
    let p = sub.publish().await;
    assert_eq!(
        (text(&p), p.dup),
        ("marker", true),
        "only the unacknowledged marker comes back"
    );
    broker.stop.cancel();
}

#[tokio::test]
async fn a_shared_subscription_gives_each_message_to_exactly_one_member() {
    let broker = Broker::start(open());
    let mut a = started(broker.addr, "worker-a", false).await;
    let mut b = started(broker.addr, "worker-b", false).await;
    a.subscribe("$share/g/out/+/x", QoS::AtLeastOnce).await;
    b.subscribe("$share/g/out/+/x", QoS::AtLeastOnce).await;
    for i in 0..10 {
        broker.publish("out/g/x", &i.to_string(), false);
    }
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        got_a.push(text(&a.publish().await).parse::<u32>().unwrap());
        got_b.push(text(&b.publish().await).parse::<u32>().unwrap());
    }
    let mut all: Vec<u32> = got_a.iter().chain(&got_b).copied().collect();
    all.sort();
    assert_eq!(
        all,
        (0..10).collect::<Vec<_>>(),
        "each message exactly once"
    );
    assert_eq!(got_a, [0, 2, 4, 6, 8], "members take turns");
    broker.stop.cancel();
}

#[tokio::test]
async fn a_thousand_messages_pass_a_small_inflight_window_in_order() {
    let broker = Broker::start(BrokerOptions {
        max_inflight_per_session: 10,
        ..open()
    });
    let mut sub = started(broker.addr, "sub", false).await;
    sub.subscribe("out/load/+", QoS::AtLeastOnce).await;
    for i in 0..1000 {
        broker.publish("out/load/x", &i.to_string(), false);
    }
    for i in 0..1000 {
        let p = sub.publish().await;
        assert_eq!(text(&p), i.to_string());
    }
    broker.stop.cancel();
}

#[tokio::test]
async fn a_new_connection_with_the_same_client_id_takes_over() {
    let broker = Broker::start(open());
    let mut first = started(broker.addr, "terminal-7", false).await;
    first.subscribe("out/cmd", QoS::AtLeastOnce).await;
    let mut second = connect(options(broker.addr, "terminal-7", false));
    assert!(second.connack().await.session_present);
    assert!(matches!(first.next().await, Seen::Closed(_)));
    broker.publish("out/cmd", "open", false);
    assert_eq!(text(&second.publish().await), "open");
    broker.stop.cancel();
}

/// Binding needs no runtime, so a taken port is reported before one starts.
#[test]
fn a_port_in_use_is_an_error_naming_the_address_and_key() {
    let options = BrokerOptions::default;
    let first = EmbeddedBroker::bind("127.0.0.1:0".parse().unwrap(), options()).unwrap();
    let addr = first.local_addr();
    let err = EmbeddedBroker::bind(addr, options()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot listen on {addr}: address in use")
    );
    let err = err.with_config_key(r#"source.mqtt[0].broker = "embedded""#);
    assert_eq!(
        err.to_string(),
        format!(r#"cannot listen on {addr} (source.mqtt[0].broker = "embedded"): address in use"#)
    );
}

/// CONNECT for client id "raw", MQTT 3.1.1, clean session, keep-alive `secs`.
fn raw_connect(secs: u8) -> Vec<u8> {
    let mut packet = vec![0x10, 15, 0, 4];
    packet.extend_from_slice(b"MQTT");
    packet.extend_from_slice(&[4, 0b10, 0, secs, 0, 3]);
    packet.extend_from_slice(b"raw");
    packet
}

/// Reads until the broker closes the connection; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    timeout(WAIT, async {
        let mut buf = [0u8; 64];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("broker did not close the connection");
    got
}

#[tokio::test]
async fn malformed_packets_close_that_connection_only() {
    let broker = Broker::start(open());
    let mut healthy = started(broker.addr, "healthy", true).await;
    healthy.subscribe("out/still/+", QoS::AtLeastOnce).await;

    // Garbage instead of CONNECT.
    let mut garbage = TcpStream::connect(broker.addr).await.unwrap();
    garbage
        .write_all(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x01])
        .await
        .unwrap();
    assert!(read_until_closed(&mut garbage).await.is_empty());

    // A valid CONNECT, then a QoS 1 PUBLISH with packet id 0.
    let mut broken = TcpStream::connect(broker.addr).await.unwrap();
    broken.write_all(&raw_connect(60)).await.unwrap();
    broken
        .write_all(&[0x32, 5, 0, 1, b'a', 0, 0])
        .await
        .unwrap();
    assert_eq!(read_until_closed(&mut broken).await, [0x20, 2, 0, 0]);

    broker.publish("out/still/here", "ok", false);
    assert_eq!(text(&healthy.publish().await), "ok");
    broker.stop.cancel();
}

#[tokio::test]
async fn pingreq_is_answered_and_disconnect_closes() {
    let broker = Broker::start(open());
    let mut raw = TcpStream::connect(broker.addr).await.unwrap();
    raw.write_all(&raw_connect(60)).await.unwrap();
    raw.write_all(&[0xC0, 0]).await.unwrap(); // PINGREQ
    let mut got = [0u8; 6];
    timeout(WAIT, raw.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, [0x20, 2, 0, 0, 0xD0, 0], "CONNACK then PINGRESP");
    raw.write_all(&[0xE0, 0]).await.unwrap(); // DISCONNECT
    assert!(read_until_closed(&mut raw).await.is_empty());
    broker.stop.cancel();
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_one_and_a_half_keep_alives() {
    let broker = Broker::start(open());
    let mut silent = TcpStream::connect(broker.addr).await.unwrap();
    let start = tokio::time::Instant::now();
    silent.write_all(&raw_connect(1)).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, [0x20, 2, 0, 0]);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    broker.stop.cancel();
}

#[tokio::test]
async fn cancelling_the_token_ends_run_and_closes_clients() {
    let broker = Broker::start(open());
    let mut client = started(broker.addr, "c", false).await;
    broker.stop.cancel();
    timeout(WAIT, broker.task)
        .await
        .expect("run did not return")
        .unwrap();
    assert!(matches!(client.next().await, Seen::Closed(_)));
}

// --- The real daemon ---------------------------------------------------------

mod daemon {
    //! `attendd run` with its embedded broker (or a private Mosquitto),
    //! driven by a raw MQTT publisher that records what was acknowledged,
    //! with the store stalled through `ATTENDD_FAULT_STORE_STALL_FILE`.

    use std::collections::{BTreeSet, HashMap};
    use std::io::{ErrorKind, Read, Write};
    use std::net::TcpStream;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use crate::proc::{Guard, free_port, healthz};

    const BIN: &str = env!("CARGO_BIN_EXE_attendd");
    const STALL_ENV: &str = "ATTENDD_FAULT_STORE_STALL_FILE";

    /// A daemon's folder: config, store, logs, and the stall file.
    pub(super) struct Site {
        pub dir: tempfile::TempDir,
        pub config: PathBuf,
        pub http: u16,
        starts: usize,
    }

    impl Site {
        /// `source` is the `[[source.mqtt]]` table's text.
        pub fn new(source: &str) -> Site {
            let dir = tempfile::tempdir().unwrap();
            let http = free_port();
            let policy = crate::common::root().join("config/policies/seed-default.toml");
            let text = format!(
                "[policy]\nfile = {policy:?}\n\n[store]\nurl = \"sqlite://{db}\"\n\n\
                 {source}\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
                policy = policy.display().to_string(),
                db = dir.path().join("attendd.db").display(),
            );
            let config = dir.path().join("attendd.toml");
            std::fs::write(&config, text).unwrap();
            Site {
                dir,
                config,
                http,
                starts: 0,
            }
        }

        pub fn stall_file(&self) -> PathBuf {
            self.dir.path().join("stall")
        }

        pub fn stall(&self, on: bool) {
            if on {
                std::fs::write(self.stall_file(), b"").unwrap();
            } else {
                let _ = std::fs::remove_file(self.stall_file());
            }
        }

        /// Starts `attendd run` with the stall fault armed and waits for
        /// `/healthz` 200.
        pub fn start(&mut self) -> Guard {
            self.starts += 1;
            let log = std::fs::File::create(self.log(self.starts)).unwrap();
            let child = Command::new(BIN)
                .args(["run", "--config"])
                .arg(&self.config)
                .env(STALL_ENV, self.stall_file())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut g = Guard(Some(child));
            let deadline = Instant::now() + Duration::from_secs(30);
            while healthz(self.http) != Some(200) {
                assert!(g.running(), "daemon exited early:\n{}", self.logs());
                assert!(
                    Instant::now() < deadline,
                    "no /healthz 200:\n{}",
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            g
        }

        fn log(&self, i: usize) -> PathBuf {
            self.dir.path().join(format!("run-{i}.log"))
        }

        pub fn logs(&self) -> String {
            let mut s = String::new();
            for i in 1..=self.starts {
                let t = std::fs::read_to_string(self.log(i)).unwrap_or_default();
                let tail: Vec<&str> = t.lines().rev().take(20).collect();
                s.push_str(&format!("--- run {i} ---\n"));
                for l in tail.into_iter().rev() {
                    s.push_str(l);
                    s.push('\n');
                }
            }
            s
        }

        /// Event ids of the punches stored for `date`.
        pub fn stored(&self, date: &str) -> BTreeSet<String> {
            let out = crate::proc::attendd_ok(&self.config, &["punches", "--date", date, "--json"]);
            out.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    let v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v["event_id"].as_str().unwrap_or_default().to_owned()
                })
                .collect()
        }
    }

    /// Resident and peak resident memory of a process, in bytes.
    pub fn memory(pid: u32) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn varint(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let mut b = (n % 128) as u8;
            n /= 128;
            if n > 0 {
                b |= 0x80;
            }
            out.push(b);
            if n == 0 {
                return;
            }
        }
    }

    fn string(s: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&(s.len() as u16).to_be_bytes());
        out.extend_from_slice(s);
    }

    /// CONNECT (MQTT 3.1.1, clean session, keep-alive 60 s).
    pub fn connect_packet(client_id: &str, login: Option<(&str, &str)>) -> Vec<u8> {
        let mut body = Vec::new();
        string(b"MQTT", &mut body);
        body.push(4);
        body.push(if login.is_some() { 0xC2 } else { 0x02 });
        body.extend_from_slice(&[0, 60]);
        string(client_id.as_bytes(), &mut body);
        if let Some((u, p)) = login {
            string(u.as_bytes(), &mut body);
            string(p.as_bytes(), &mut body);
        }
        let mut out = vec![0x10];
        varint(body.len(), &mut out);
        out.extend(body);
        out
    }

    /// PUBLISH at QoS 0 (`pkid` None) or 1.
    pub fn publish_packet(topic: &str, pkid: Option<u16>, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        string(topic.as_bytes(), &mut body);
        if let Some(id) = pkid {
            body.extend_from_slice(&id.to_be_bytes());
        }
        body.extend_from_slice(payload);
        let mut out = vec![if pkid.is_some() { 0x32 } else { 0x30 }];
        varint(body.len(), &mut out);
        out.extend(body);
        out
    }

    /// A raw MQTT publisher: one connection at a time, PUBACKs read as they
    /// come and matched to what was published under that packet id.
    pub struct Publisher {
        stream: TcpStream,
        buf: Vec<u8>,
        in_flight: HashMap<u16, String>,
        pub acked: BTreeSet<String>,
        next: u16,
    }

    impl Publisher {
        /// Connects; `None` when refused or unreachable.
        pub fn connect(port: u16, id: &str, login: Option<(&str, &str)>) -> Option<Publisher> {
            let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
            stream.set_nodelay(true).ok()?;
            stream.write_all(&connect_packet(id, login)).ok()?;
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
            let mut ack = [0u8; 4];
            stream.read_exact(&mut ack).ok()?;
            if ack != [0x20, 2, 0, 0] {
                return None;
            }
            stream
                .set_read_timeout(Some(Duration::from_millis(1)))
                .ok()?;
            Some(Publisher {
                stream,
                buf: Vec::new(),
                in_flight: HashMap::new(),
                acked: BTreeSet::new(),
                next: 1,
            })
        }

        /// Publishes `key`'s punch at QoS 1; false once the connection broke.
        pub fn publish(&mut self, topic: &str, key: &str, payload: &[u8]) -> bool {
            let pkid = self.next;
            self.next = self.next % 60_000 + 1;
            self.in_flight.insert(pkid, key.to_owned());
            self.stream
                .write_all(&publish_packet(topic, Some(pkid), payload))
                .is_ok()
                && self.poll()
        }

        pub fn publish_qos0(&mut self, topic: &str, payload: &[u8]) -> bool {
            self.stream
                .write_all(&publish_packet(topic, None, payload))
                .is_ok()
        }

        /// Reads what has arrived; false once the connection broke.
        pub fn poll(&mut self) -> bool {
            let mut chunk = [0u8; 4096];
            loop {
                match self.stream.read(&mut chunk) {
                    Ok(0) => return false,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break;
                    }
                    Err(_) => return false,
                }
            }
            // PUBACKs (and anything else, skipped).
            while self.buf.len() >= 2 {
                let (mut len, mut shift, mut i) = (0usize, 0, 1);
                while i < self.buf.len() && self.buf[i] & 0x80 != 0 {
                    len |= ((self.buf[i] & 0x7f) as usize) << shift;
                    shift += 7;
                    i += 1;
                }
                if i >= self.buf.len() {
                    break;
                }
                len |= ((self.buf[i] & 0x7f) as usize) << shift;
                let end = i + 1 + len;
                if self.buf.len() < end {
                    break;
                }
                if self.buf[0] == 0x40 && len == 2 {
                    let pkid = u16::from_be_bytes([self.buf[i + 1], self.buf[i + 2]]);
                    if let Some(key) = self.in_flight.remove(&pkid) {
                        self.acked.insert(key);
                    }
                }
                self.buf.drain(..end);
            }
            true
        }
    }

    fn punch(n: usize) -> (String, Vec<u8>) {
        let key = format!("g1-{n:06}");
        let (h, m, s) = (7 + n / 3600 % 10, n / 60 % 60, n % 60);
        let payload = format!(
            r#"{{"employee_id":"E{:04}","time":"2026-03-02T{h:02}:{m:02}:{s:02}+08:00","device_id":"gate-1","event_id":"{key}"}}"#,
            n % 1000
        );
        (key, payload.into_bytes())
    }

    /// SIGKILL twice while a terminal publishes and the store stalls on and
    /// off: every punch the broker acknowledged is in the store.
    #[test]
    fn embedded_broker_sigkill_twice_with_the_store_stalled_loses_no_acknowledged_punch() {
        let port = free_port();
        let mut site = Site::new(&format!(
            "[[source.mqtt]]\nbroker = \"embedded\"\nlisten = \"127.0.0.1:{port}\"\n\
             topics = [\"crash/+/punch\"]\ndecoder = \"json\"\nclient_id = \"attendd-crash\"\n\
             timezone = \"Asia/Shanghai\"\n\
             [[source.mqtt.terminals]]\nusername = \"gate-1\"\npassword = \"pw-gate-1\"\n"
        ));
        site.stall(true);
        let mut daemon = site.start();
        let stop = Arc::new(AtomicBool::new(false));
        // The store stalls for 150 ms out of every 250 ms.
        let toggler = {
            let (stop, file) = (stop.clone(), site.stall_file());
            std::thread::spawn(move || {
                let mut on = true;
                while !stop.load(Ordering::SeqCst) {
                    if on {
                        let _ = std::fs::write(&file, b"");
                    } else {
                        let _ = std::fs::remove_file(&file);
                    }
                    std::thread::sleep(Duration::from_millis(if on { 150 } else { 100 }));
                    on = !on;
                }
                let _ = std::fs::remove_file(&file);
            })
        };
        let acked = Arc::new(Mutex::new(BTreeSet::new()));
        let sent = Arc::new(Mutex::new(0usize));
        let publisher = {
            let (stop, acked, sent) = (stop.clone(), acked.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let Some(mut p) =
                        Publisher::connect(port, "gate-1", Some(("gate-1", "pw-gate-1")))
                    else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    while !stop.load(Ordering::SeqCst) {
                        let (key, payload) = punch(n);
                        n += 1;
                        if !p.publish("crash/gate-1/punch", &key, &payload) {
                            break;
                        }
                        if n % 20 == 0 {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                    }
                    // Whatever arrived before the connection broke.
                    p.poll();
                    acked.lock().unwrap().extend(p.acked);
                }
                *sent.lock().unwrap() = n;
            })
        };
        for _ in 0..2 {
            std::thread::sleep(Duration::from_millis(1200));
            daemon.kill();
            daemon = site.start();
        }
        std::thread::sleep(Duration::from_millis(1000));
        stop.store(true, Ordering::SeqCst);
        publisher.join().unwrap();
        toggler.join().unwrap();
        site.stall(false);
        let acked = acked.lock().unwrap().clone();
        let sent = *sent.lock().unwrap();
        assert!(
            acked.len() > 100,
            "only {} of {sent} acknowledged",
            acked.len()
        );
        // The daemon goes on committing what it holds; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(30);
        let missing = loop {
            let stored = site.stored("2026-03-02");
            let missing: Vec<&String> = acked.difference(&stored).collect();
            if missing.is_empty() || Instant::now() > deadline {
                break missing.len();
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        assert_eq!(
            missing,
            0,
            "{missing} of {} acknowledged punches are not stored ({sent} sent)\n{}",
            acked.len(),
            site.logs()
        );
        assert!(daemon.running());
        eprintln!("{} of {sent} punches acknowledged, all stored", acked.len());
    }

    /// A QoS 0 flood from an external broker while the store is stalled:
    /// the daemon stops reading instead of holding it all, and the QoS 1
    /// punches behind the flood are stored once the store moves again.
    #[test]
    fn a_qos_0_flood_with_the_store_stalled_keeps_memory_bounded_and_loses_nothing() {
        if !crate::daemon::have_mosquitto("a_qos_0_flood_with_the_store_stalled") {
            return;
        }
        let mdir = tempfile::tempdir().unwrap();
        let mosq = crate::daemon::Mosquitto::start(mdir.path(), free_port());
        let mut site = Site::new(&format!(
            "[[source.mqtt]]\nbroker = \"mqtt://127.0.0.1:{}\"\ntopics = [\"flood/+/punch\"]\n\
             decoder = \"json\"\nclient_id = \"{}\"\ntimezone = \"Asia/Shanghai\"\n",
            mosq.port,
            crate::services::unique("attendd-flood")
        ));
        site.stall(true);
        let daemon = site.start();
        let pid = daemon.pid();
        let (baseline, _) = memory(pid);
        // 320 MB of 40 kB messages: duplicates of one punch, padded.
        let pad = "x".repeat(40_000);
        let flood = format!(
            r#"{{"employee_id":"E9999","time":"2026-03-02T09:00:00+08:00","device_id":"gate-9","pad":"{pad}"}}"#
        );
        let mut p = Publisher::connect(mosq.port, "flooder", None).expect("mosquitto");
        for _ in 0..8_000 {
            assert!(p.publish_qos0("flood/gate-9/punch", flood.as_bytes()));
        }
        let mut keys = BTreeSet::new();
        for n in 0..50 {
            let (key, payload) = punch(n);
            assert!(p.publish("flood/gate-1/punch", &key, &payload));
            keys.insert(key);
        }
        // Let the daemon read what it will while the store is stalled.
        let mut peak = 0;
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(200));
            peak = peak.max(memory(pid).0);
        }
        let (_, hwm) = memory(pid);
        let grew = hwm.max(peak).saturating_sub(baseline);
        eprintln!(
            "daemon RSS: {} MB at start, peak {} MB during a 320 MB flood",
            baseline >> 20,
            hwm.max(peak) >> 20
        );
        assert!(
            grew < 160 << 20,
            "RSS grew by {} MB with the store stalled\n{}",
            grew >> 20,
            site.logs()
        );
        site.stall(false);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let stored = site.stored("2026-03-02");
            let missing = keys.iter().filter(|k| !stored.contains(*k)).count();
            if missing == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{missing} of 50 QoS 1 punches not stored\n{}",
                site.logs()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
        drop(daemon);
        drop(mosq);
    }

    fn check_config(dir: &Path, source: &str) -> (bool, String) {
        let path = dir.join("attendd.toml");
        let policy = crate::common::root().join("config/policies/seed-default.toml");
        std::fs::write(
            &path,
            format!(
                "[policy]\nfile = {:?}\n\n[store]\nurl = \"sqlite://{}\"\n\n{source}",
                policy.display().to_string(),
                dir.join("a.db").display()
            ),
        )
        .unwrap();
        let out = Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&path)
            .env_remove("ATTENDD_MQTT_NOT_SET")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout),
        )
    }

    #[test]
    fn check_config_refuses_anonymous_clients_off_loopback_and_a_broker_nobody_may_use() {
        let dir = tempfile::tempdir().unwrap();
        let head = "[[source.mqtt]]\nbroker = \"embedded\"\nclient_id = \"a\"\n";
        let (ok, text) = check_config(
            dir.path(),
            &format!(
                "{head}listen = \"0.0.0.0:1883\"\nallow_anonymous = true\n[[source.mqtt.terminals]]\nusername = \"gate-1\"\npassword = \"x\"\n"
            ),
        );
        assert!(
            !ok && text.contains("key `source.mqtt[0].allow_anonymous`"),
            "{text}"
        );
        assert!(text.contains("loopback"), "{text}");

        let (ok, text) = check_config(dir.path(), &format!("{head}listen = \"0.0.0.0:1883\"\n"));
        assert!(
            !ok && text.contains("key `source.mqtt[0].terminals`"),
            "{text}"
        );

        let (ok, text) = check_config(
            dir.path(),
            &format!(
                "{head}listen = \"0.0.0.0:1883\"\n[[source.mqtt.terminals]]\nusername = \"gate-1\"\npassword_env = \"ATTENDD_MQTT_NOT_SET\"\n[[source.mqtt.terminals]]\nusername = \"gate-1\"\npassword = \"y\"\n"
            ),
        );
        assert!(!ok, "{text}");
        assert!(text.contains("key `source.mqtt[0].terminals[0].password_env`: environment variable ATTENDD_MQTT_NOT_SET is not set"), "{text}");
        assert!(
            text.contains("key `source.mqtt[0].terminals[1].username`: \"gate-1\" is used twice"),
            "{text}"
        );

        let (ok, text) = check_config(
            dir.path(),
            &format!(
                "{head}listen = \"0.0.0.0:1883\"\n[[source.mqtt.terminals]]\nusername = \"gate-1\"\npassword = \"x\"\n"
            ),
        );
        assert!(ok, "{text}");
        let (ok, text) = check_config(
            dir.path(),
            &format!("{head}listen = \"127.0.0.1:1883\"\nallow_anonymous = true\n"),
        );
        assert!(ok, "{text}");
    }
}

/// `attendd simulate --username/--password` logs in as a terminal; without
/// them the broker refuses it.
#[tokio::test]
async fn simulate_logs_in_with_a_terminals_user_name_and_password() {
    let broker = Broker::start(with_users());
    let url = format!("mqtt://{}", broker.addr);
    let run = |login: bool| {
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_attendd"));
            c.args(["simulate", "--broker", &url, "--date", "2026-03-02"])
                .args(["--employees", "3", "--terminals", "1", "--json"]);
            if login {
                c.args(["--username", "gate-1", "--password", "s3cret-1"]);
            }
            c.env_remove("ATTENDD_SIMULATE_PASSWORD").output().unwrap()
        })
    };
    let refused = run(false).await.unwrap();
    assert!(!refused.status.success());
    let e = String::from_utf8_lossy(&refused.stderr);
    assert!(e.contains("NotAuthorized"), "{e}");
    let ok = run(true).await.unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    let sent = v["distinct"].as_u64().unwrap() + v["duplicates"].as_u64().unwrap();
    assert!(sent > 0);
    assert_eq!(broker.committed(sent as usize).await.len() as u64, sent);
    broker.stop.cancel();
}

/// attendd's own `mqtt` sink, with no broker of its own and the embedded
/// broker first among the sources, publishes into it in-process: a reader
/// logged in gets the summary, retained.
#[tokio::test]
async fn the_mqtt_sink_publishes_into_the_embedded_broker_in_process() {
    let broker = Broker::start(with_users());
    let raw: attendd::config::RawSink =
        toml::from_str("name = \"site-mqtt\"\nkind = \"mqtt\"\n").unwrap();
    let default = attendd::sinks::DefaultBroker {
        url: format!("mqtt://{}", broker.addr),
        credentials: None,
        embedded: Some(broker.handle.clone()),
    };
    let sink = attendd::sinks::Sink::from_config(&raw, Some(&default)).unwrap();
    assert!(matches!(sink, attendd::sinks::Sink::Embedded { .. }));
    let summary = serde_json::json!({"date": "2026-03-02", "rows": []});
    let results = sink
        .deliver("site-mqtt", &[("summary", &summary)], chrono::Utc::now())
        .await;
    assert_eq!(results, [Ok(())]);

    let mut reader = connect(login(broker.addr, "board", "hr-board", "r3ader"));
    reader.connack().await;
    reader
        .subscribe("attendance/summary/#", QoS::AtLeastOnce)
        .await;
    let got = reader.publish().await;
    assert_eq!(got.topic, "attendance/summary/daily/2026-03-02");
    assert!(got.retain);
    let v: serde_json::Value = serde_json::from_slice(&got.payload).unwrap();
    assert_eq!(v, summary);
    broker.stop.cancel();
}
