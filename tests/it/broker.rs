//! The embedded broker driven by the rumqttc client (and raw bytes for
//! protocol errors), on 127.0.0.1 port 0.

use std::net::SocketAddr;
use std::time::Duration;

use attendd::broker::{BrokerOptions, EmbeddedBroker};
use rumqttc::{AsyncClient, ConnAck, Event, MqttOptions, Packet, Publish, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

/// Upper bound for any single expected event.
const WAIT: Duration = Duration::from_secs(10);

struct Broker {
    addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Broker {
    fn start(options: BrokerOptions) -> Broker {
        let broker = EmbeddedBroker::bind("127.0.0.1:0".parse().unwrap(), options).unwrap();
        let addr = broker.local_addr();
        let stop = CancellationToken::new();
        let task = tokio::spawn(broker.run(stop.clone()));
        let task = tokio::spawn(async move { task.await.unwrap().unwrap() });
        Broker { addr, stop, task }
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

/// Connects and polls until the first error (no automatic reconnect).
fn connect(o: MqttOptions) -> Client {
    let (client, mut events) = AsyncClient::new(o, 100);
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

    async fn publish(&mut self) -> Publish {
        match self.packet().await {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
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
    async fn send(&mut self, topic: &str, qos: QoS, retain: bool, payload: &str) {
        self.client
            .publish(topic, qos, retain, payload.as_bytes().to_vec())
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

#[tokio::test]
async fn qos_0_and_1_are_delivered_at_the_lower_of_publish_and_subscription() {
    let broker = Broker::start(BrokerOptions::default());
    let mut sub = started(broker.addr, "sub", true).await;
    let mut publ = started(broker.addr, "pub", true).await;
    sub.subscribe("q/0", QoS::AtMostOnce).await;
    let granted = sub.subscribe("q/1", QoS::ExactlyOnce).await;
    assert_eq!(
        granted,
        [rumqttc::SubscribeReasonCode::Success(QoS::AtLeastOnce)]
    );

    publ.send("q/1", QoS::AtLeastOnce, false, "one").await;
    publ.send("q/0", QoS::AtLeastOnce, false, "zero").await;
    publ.send("q/1", QoS::AtMostOnce, false, "zero again").await;
    publ.send("q/1", QoS::ExactlyOnce, false, "two").await;
    let got: Vec<(String, QoS)> = [
        sub.publish().await,
        sub.publish().await,
        sub.publish().await,
        sub.publish().await,
    ]
    .iter()
    .map(|p| (text(p).to_owned(), p.qos))
    .collect();
    assert_eq!(
        got,
        [
            ("one".into(), QoS::AtLeastOnce),
            ("zero".into(), QoS::AtMostOnce),
            ("zero again".into(), QoS::AtMostOnce),
            ("two".into(), QoS::AtLeastOnce),
        ]
    );
    broker.stop.cancel();
}

#[tokio::test]
async fn wildcards_select_the_matching_topics() {
    let broker = Broker::start(BrokerOptions::default());
    let mut sub = started(broker.addr, "sub", true).await;
    let mut publ = started(broker.addr, "pub", true).await;
    sub.subscribe("a/+/c", QoS::AtLeastOnce).await;
    sub.subscribe("x/#", QoS::AtLeastOnce).await;
    for topic in ["a/b/c", "a/b/d", "a/b/c/d", "x", "x/y/z", "y/x", "a/z/c"] {
        publ.send(topic, QoS::AtLeastOnce, false, topic).await;
    }
    let mut topics = Vec::new();
    for _ in 0..4 {
        topics.push(sub.publish().await.topic);
    }
    assert_eq!(topics, ["a/b/c", "x", "x/y/z", "a/z/c"]);
    broker.stop.cancel();
}

#[tokio::test]
async fn unsubscribe_stops_deliveries() {
    let broker = Broker::start(BrokerOptions::default());
    let mut sub = started(broker.addr, "sub", true).await;
    sub.subscribe("u/+", QoS::AtLeastOnce).await;
    sub.subscribe("marker", QoS::AtLeastOnce).await;
    sub.client.unsubscribe("u/+").await.unwrap();
    assert!(matches!(sub.packet().await, Packet::UnsubAck(_)));
    let mut publ = started(broker.addr, "pub", true).await;
    publ.send("u/1", QoS::AtLeastOnce, false, "gone").await;
    publ.send("marker", QoS::AtLeastOnce, false, "marker").await;
    assert_eq!(text(&sub.publish().await), "marker");
    broker.stop.cancel();
}

#[tokio::test]
async fn retained_messages_reach_later_subscribers_until_cleared() {
    let broker = Broker::start(BrokerOptions::default());
    let mut publ = started(broker.addr, "pub", true).await;
    publ.send("r/a", QoS::AtLeastOnce, true, "a1").await;
    publ.send("r/b", QoS::AtLeastOnce, true, "b1").await;
    publ.send("r/b", QoS::AtLeastOnce, true, "b2").await;
    publ.send("r/a", QoS::AtLeastOnce, true, "").await;

    let mut sub = started(broker.addr, "sub", true).await;
    sub.subscribe("r/#", QoS::AtLeastOnce).await;
    let first = sub.publish().await;
    assert_eq!((first.topic.as_str(), text(&first)), ("r/b", "b2"));
    assert!(first.retain);
    publ.send("r/c", QoS::AtLeastOnce, true, "live").await;
    let live = sub.publish().await;
    assert_eq!(text(&live), "live");
    assert!(!live.retain, "a live delivery carries no retain flag");
    broker.stop.cancel();
}

#[tokio::test]
async fn a_persistent_session_receives_what_was_published_while_offline() {
    let broker = Broker::start(BrokerOptions::default());
    let mut sub = started(broker.addr, "attendd", false).await;
    sub.subscribe("site/+/punch", QoS::AtLeastOnce).await;
    sub.client.disconnect().await.unwrap();
    assert!(matches!(sub.next().await, Seen::Closed(_)));

    let mut publ = started(broker.addr, "gate", true).await;
    for i in 0..5 {
        publ.send(
            "site/gate-1/punch",
            QoS::AtLeastOnce,
            false,
            &format!("p{i}"),
        )
        .await;
    }
    publ.send(
        "site/gate-1/punch",
        QoS::AtMostOnce,
        false,
        "qos 0 waits too",
    )
    .await;

    let mut again = connect(options(broker.addr, "attendd", false));
    assert!(again.connack().await.session_present);
    let mut got = Vec::new();
    for _ in 0..6 {
        got.push(text(&again.publish().await).to_owned());
    }
    assert_eq!(got, ["p0", "p1", "p2", "p3", "p4", "qos 0 waits too"]);

    // A clean session forgets all of it.
    again.kill().await;
    let mut clean = connect(options(broker.addr, "attendd", true));
    assert!(!clean.connack().await.session_present);
    broker.stop.cancel();
}

#[tokio::test]
async fn unacknowledged_qos_1_is_redelivered_in_order_after_reconnect() {
    let broker = Broker::start(BrokerOptions::default());
    let manual = |clean| {
        let mut o = options(broker.addr, "slow", clean);
        o.set_manual_acks(true);
        o
    };
    let mut sub = connect(manual(false));
    sub.connack().await;
    sub.subscribe("t/#", QoS::AtLeastOnce).await;
    let mut publ = started(broker.addr, "pub", true).await;
    for m in ["m1", "m2", "m3"] {
        publ.send("t/x", QoS::AtLeastOnce, false, m).await;
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
    // The marker goes out on the same connection after the acks, so once it
    // comes back the broker has processed them.
    sub.client
        .publish("t/marker", QoS::AtLeastOnce, false, b"marker".to_vec())
        .await
        .unwrap();
    loop {
        match sub.packet().await {
            Packet::PubAck(_) => {}
            Packet::Publish(p) => {
                assert_eq!(text(&p), "marker");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
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
    let broker = Broker::start(BrokerOptions::default());
    let mut a = started(broker.addr, "worker-a", false).await;
    let mut b = started(broker.addr, "worker-b", false).await;
    a.subscribe("$share/attendd/site/+/punch", QoS::AtLeastOnce)
        .await;
    b.subscribe("$share/attendd/site/+/punch", QoS::AtLeastOnce)
        .await;
    let mut publ = started(broker.addr, "gate", true).await;
    for i in 0..10 {
        publ.send("site/g/punch", QoS::AtLeastOnce, false, &i.to_string())
            .await;
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
        ..BrokerOptions::default()
    });
    let mut sub = started(broker.addr, "sub", false).await;
    sub.subscribe("load/+", QoS::AtLeastOnce).await;
    let publ = started(broker.addr, "pub", true).await;
    let sender = tokio::spawn(async move {
        for i in 0..1000 {
            let payload = i.to_string().into_bytes();
            publ.client
                .publish("load/x", QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
        publ
    });
    for i in 0..1000 {
        let p = sub.publish().await;
        assert_eq!(text(&p), i.to_string());
    }
    sender.await.unwrap();
    broker.stop.cancel();
}

#[tokio::test]
async fn a_face_photo_passes_but_a_packet_over_the_limit_closes_its_connection() {
    let broker = Broker::start(BrokerOptions {
        max_packet_size: 2 * 1024 * 1024,
        ..BrokerOptions::default()
    });
    let big = |id: &str| {
        let mut o = options(broker.addr, id, true);
        o.set_max_packet_size(8 * 1024 * 1024, 8 * 1024 * 1024);
        o
    };
    let mut sub = connect(big("sub"));
    sub.connack().await;
    sub.subscribe("mqtt/face/+/Rec", QoS::AtLeastOnce).await;
    let mut publ = connect(big("terminal"));
    publ.connack().await;
    let photo: String = (0..1_400_000)
        .map(|i| (b'A' + (i % 26) as u8) as char)
        .collect();
    publ.send("mqtt/face/57/Rec", QoS::AtLeastOnce, false, &photo)
        .await;
    assert!(sub.publish().await.payload == photo.as_bytes());

    let oversized = "x".repeat(3 * 1024 * 1024);
    publ.client
        .publish("mqtt/face/57/Rec", QoS::AtLeastOnce, false, oversized)
        .await
        .unwrap();
    assert!(matches!(publ.next().await, Seen::Closed(_)));
    let mut other = started(broker.addr, "other", true).await;
    other
        .send("mqtt/face/58/Rec", QoS::AtLeastOnce, false, "small")
        .await;
    assert_eq!(text(&sub.publish().await), "small");
    broker.stop.cancel();
}

#[tokio::test]
async fn the_will_is_published_when_a_client_is_lost_but_not_on_disconnect() {
    let broker = Broker::start(BrokerOptions::default());
    let mut watcher = started(broker.addr, "watcher", true).await;
    watcher.subscribe("status/+", QoS::AtLeastOnce).await;
    let with_will = |id: &str| {
        let mut o = options(broker.addr, id, true);
        let will = format!("status/{id}");
        o.set_last_will(rumqttc::LastWill::new(
            will,
            "offline",
            QoS::AtLeastOnce,
            false,
        ));
        o
    };
    let mut polite = connect(with_will("polite"));
    polite.connack().await;
    polite.client.disconnect().await.unwrap();
    assert!(matches!(polite.next().await, Seen::Closed(_)));
    let mut lost = connect(with_will("lost"));
    lost.connack().await;
    lost.kill().await;
    let will = watcher.publish().await;
    assert_eq!(
        (will.topic.as_str(), text(&will)),
        ("status/lost", "offline")
    );
    broker.stop.cancel();
}

#[tokio::test]
async fn a_new_connection_with_the_same_client_id_takes_over() {
    let broker = Broker::start(BrokerOptions::default());
    let mut first = started(broker.addr, "terminal-7", false).await;
    first.subscribe("cmd", QoS::AtLeastOnce).await;
    let mut second = connect(options(broker.addr, "terminal-7", false));
    assert!(second.connack().await.session_present);
    assert!(matches!(first.next().await, Seen::Closed(_)));
    let mut publ = started(broker.addr, "pub", true).await;
    publ.send("cmd", QoS::AtLeastOnce, false, "open").await;
    assert_eq!(text(&second.publish().await), "open");
    broker.stop.cancel();
}

#[tokio::test]
async fn credentials_are_checked_when_configured() {
    let broker = Broker::start(BrokerOptions {
        credentials: Some(("site".into(), "s3cret".into())),
        ..BrokerOptions::default()
    });
    let mut wrong = connect(options(broker.addr, "a", true));
    match wrong.next().await {
        Seen::Closed(e) => assert!(e.contains("BadUserNamePassword"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut o = options(broker.addr, "b", true);
    o.set_credentials("site", "s3cret");
    assert!(connect(o).connack().await.code == rumqttc::ConnectReturnCode::Success);
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
    let broker = Broker::start(BrokerOptions::default());
    let mut healthy = started(broker.addr, "healthy", true).await;
    healthy.subscribe("still/+", QoS::AtLeastOnce).await;

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

    let mut publ = started(broker.addr, "pub", true).await;
    publ.send("still/here", QoS::AtLeastOnce, false, "ok").await;
    assert_eq!(text(&healthy.publish().await), "ok");
    broker.stop.cancel();
}

#[tokio::test]
async fn pingreq_is_answered_and_disconnect_closes() {
    let broker = Broker::start(BrokerOptions::default());
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
    let broker = Broker::start(BrokerOptions::default());
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
    let broker = Broker::start(BrokerOptions::default());
    let mut client = started(broker.addr, "c", false).await;
    broker.stop.cancel();
    timeout(WAIT, broker.task)
        .await
        .expect("run did not return")
        .unwrap();
    assert!(matches!(client.next().await, Seen::Closed(_)));
}
