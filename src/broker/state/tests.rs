use super::*;

fn state(max_queued: usize, max_inflight: u16) -> State {
    State::new(&BrokerOptions {
        max_queued_per_session: max_queued,
        max_inflight_per_session: max_inflight,
        ..BrokerOptions::default()
    })
}

fn sub(path: &str, qos: QoS) -> SubscribeFilter {
    SubscribeFilter::new(path.to_owned(), qos)
}

fn publish(topic: &str, qos: QoS, payload: &str) -> Publish {
    Publish::new(topic, qos, payload.as_bytes().to_vec())
}

fn drain(state: &mut State, id: &str, attach: &Attach) -> Vec<Publish> {
    let mut out = Vec::new();
    state.take_outgoing(id, attach.conn_id, usize::MAX, &mut out);
    out
}

fn payloads(out: &[Publish]) -> Vec<&[u8]> {
    out.iter().map(|p| p.payload.as_ref()).collect()
}

#[test]
fn topic_filters_match_as_the_protocol_says() {
    let cases = [
        ("a/b/c", "a/b/c", true),
        ("a/b/c", "a/+/c", true),
        ("a/b/c", "a/+", false),
        ("a/b/c", "a/#", true),
        ("a", "a/#", true),
        ("a/b", "+/+", true),
        ("a/b", "+", false),
        ("/a", "+/a", true),
        ("a/b/c", "#", true),
        ("a/b/c", "a/b/c/d", false),
        ("a/b/c/d", "a/b/c", false),
        ("$SYS/x", "#", false),
        ("$SYS/x", "+/x", false),
        ("$SYS/x", "$SYS/#", true),
    ];
    for (topic, filter, want) in cases {
        assert_eq!(matches(topic, filter), want, "{topic} vs {filter}");
    }
}

#[test]
fn session_present_only_for_a_resumed_persistent_session() {
    let mut s = state(10, 10);
    let a = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    assert!(!a.session_present);
    s.disconnect("c", a.conn_id);
    let b = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    assert!(b.session_present);
    s.disconnect("c", b.conn_id);
    let c = s
        .connect("c", None, true, CancellationToken::new())
        .unwrap();
    assert!(!c.session_present, "clean_session discards the old session");
    s.disconnect("c", c.conn_id);
    let d = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    assert!(!d.session_present, "a clean session is not kept");
}

#[test]
fn takeover_cancels_the_old_connection_which_then_changes_nothing() {
    let mut s = state(10, 10);
    let old_token = CancellationToken::new();
    let old = s.connect("c", None, false, old_token.clone()).unwrap();
    s.subscribe("c", old.conn_id, &[sub("t", QoS::AtLeastOnce)], |_| true);
    let new = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    assert!(old_token.is_cancelled());
    assert!(new.session_present);
    s.disconnect("c", old.conn_id);
    s.publish(publish("t", QoS::AtLeastOnce, "m"));
    assert!(drain(&mut s, "c", &old).is_empty());
    assert_eq!(payloads(&drain(&mut s, "c", &new)), [b"m"]);
}

#[test]
fn unacknowledged_deliveries_come_back_first_in_order_flagged_dup() {
    let mut s = state(10, 2);
    let a = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    s.subscribe("c", a.conn_id, &[sub("t/#", QoS::AtLeastOnce)], |_| true);
    for m in ["m1", "m2", "m3"] {
        s.publish(publish("t/x", QoS::AtLeastOnce, m));
    }
    let sent = drain(&mut s, "c", &a);
    assert_eq!(payloads(&sent), [b"m1", b"m2"], "in-flight limit of 2");
    assert!(s.acknowledge("c", a.conn_id, sent[0].pkid));
    s.disconnect("c", a.conn_id);
    s.publish(publish("t/x", QoS::AtLeastOnce, "m4"));
    s.publish(publish("t/x", QoS::AtMostOnce, "q0"));
    let b = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    let again = drain(&mut s, "c", &b);
    assert_eq!(payloads(&again), [b"m2", b"m3"]);
    assert!(again[0].dup && again[0].pkid == sent[1].pkid);
    assert!(!again[1].dup);
    assert!(s.acknowledge("c", b.conn_id, again[0].pkid));
    assert!(!s.acknowledge("c", b.conn_id, again[0].pkid));
    // QoS 0 waits for no offline reader (queue_qos0_offline is off).
    assert_eq!(payloads(&drain(&mut s, "c", &b)), [b"m4"]);
}

#[test]
fn qos_0_waits_for_an_offline_session_only_when_asked() {
    for keep in [true, false] {
        let mut s = State::new(&BrokerOptions {
            queue_qos0_offline: keep,
            ..BrokerOptions::default()
        });
        let a = s
            .connect("c", None, false, CancellationToken::new())
            .unwrap();
        s.subscribe("c", a.conn_id, &[sub("t", QoS::AtLeastOnce)], |_| true);
        s.publish(publish("t", QoS::AtMostOnce, "while connected"));
        s.disconnect("c", a.conn_id);
        s.publish(publish("t", QoS::AtMostOnce, "while offline"));
        let b = s
            .connect("c", None, false, CancellationToken::new())
            .unwrap();
        let got = drain(&mut s, "c", &b);
        let want: &[&[u8]] = if keep {
            &[b"while connected", b"while offline"]
        } else {
            &[]
        };
        assert_eq!(payloads(&got), want, "queue_qos0_offline = {keep}");
    }
}

#[test]
fn shared_subscription_takes_turns_among_connected_members() {
    let mut s = state(10, 10);
    let mut attached = Vec::new();
    for id in ["a", "b", "c"] {
        let at = s
            .connect(id, None, false, CancellationToken::new())
            .unwrap();
        s.subscribe(
            id,
            at.conn_id,
            &[sub("$share/g/p/+", QoS::AtLeastOnce)],
            |_| true,
        );
        attached.push((id, at));
    }
    let (_, c) = attached.pop().unwrap();
    s.disconnect("c", c.conn_id);
    for i in 0..6 {
        s.publish(publish(&format!("p/{i}"), QoS::AtLeastOnce, &i.to_string()));
    }
    let got_a = drain(&mut s, "a", &attached[0].1);
    let got_b = drain(&mut s, "b", &attached[1].1);
    assert_eq!(payloads(&got_a), [b"0", b"2", b"4"]);
    assert_eq!(payloads(&got_b), [b"1", b"3", b"5"]);
    let c = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    assert!(
        drain(&mut s, "c", &c).is_empty(),
        "offline member got nothing"
    );
}

#[test]
fn shared_subscription_with_no_member_connected_queues_in_one_session() {
    let mut s = state(10, 10);
    for id in ["a", "b"] {
        let at = s
            .connect(id, None, false, CancellationToken::new())
            .unwrap();
        s.subscribe(
            id,
            at.conn_id,
            &[sub("$share/g/p", QoS::AtLeastOnce)],
            |_| true,
        );
        s.disconnect(id, at.conn_id);
    }
    s.publish(publish("p", QoS::AtLeastOnce, "x"));
    let a = s
        .connect("a", None, false, CancellationToken::new())
        .unwrap();
    let b = s
        .connect("b", None, false, CancellationToken::new())
        .unwrap();
    let total = drain(&mut s, "a", &a).len() + drain(&mut s, "b", &b).len();
    assert_eq!(total, 1);
}

#[test]
fn retained_messages_are_replaced_cleared_and_sent_on_subscribe() {
    let mut s = state(10, 10);
    let mut keep = |topic: &str, payload: &str| {
        let mut p = publish(topic, QoS::AtLeastOnce, payload);
        p.retain = true;
        s.publish(p);
    };
    keep("r/a", "old");
    keep("r/a", "new");
    keep("r/b", "gone");
    keep("r/b", "");
    let a = s
        .connect("c", None, true, CancellationToken::new())
        .unwrap();
    let codes = s.subscribe("c", a.conn_id, &[sub("r/#", QoS::AtMostOnce)], |_| true);
    assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtMostOnce)]);
    let got = drain(&mut s, "c", &a);
    assert_eq!(payloads(&got), [b"new"]);
    assert!(got[0].retain);
    assert_eq!(got[0].qos, QoS::AtMostOnce, "min(publish, subscription)");
}

#[test]
fn subscribe_grants_at_most_qos_1_and_refuses_bad_filters() {
    let mut s = state(10, 10);
    let a = s
        .connect("c", None, true, CancellationToken::new())
        .unwrap();
    let codes = s.subscribe(
        "c",
        a.conn_id,
        &[
            sub("a/#", QoS::ExactlyOnce),
            sub("a/#/b", QoS::AtLeastOnce),
            sub("$share/g+/a", QoS::AtLeastOnce),
            sub("$share/g/a/+", QoS::AtMostOnce),
        ],
        |_| true,
    );
    use SubscribeReasonCode::{Failure, Success};
    assert_eq!(
        codes,
        [
            Success(QoS::AtLeastOnce),
            Failure,
            Failure,
            Success(QoS::AtMostOnce)
        ]
    );
}

#[test]
fn overlapping_subscriptions_deliver_once_at_the_highest_qos() {
    let mut s = state(10, 10);
    let a = s
        .connect("c", None, true, CancellationToken::new())
        .unwrap();
    s.subscribe(
        "c",
        a.conn_id,
        &[sub("a/+", QoS::AtMostOnce), sub("a/#", QoS::AtLeastOnce)],
        |_| true,
    );
    s.publish(publish("a/b", QoS::AtLeastOnce, "x"));
    let got = drain(&mut s, "c", &a);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
}

#[test]
fn the_byte_budget_drops_what_does_not_fit() {
    let mut s = State::new(&BrokerOptions {
        max_queued_bytes_per_session: 10,
        ..BrokerOptions::default()
    });
    let a = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    s.subscribe("c", a.conn_id, &[sub("t", QoS::AtLeastOnce)], |_| true);
    s.disconnect("c", a.conn_id);
    for m in ["1234", "56789", "0"] {
        s.publish(publish("t", QoS::AtLeastOnce, m));
    }
    let b = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    assert_eq!(payloads(&drain(&mut s, "c", &b)), [&b"1234"[..], b"0"]);
}

#[test]
fn a_full_queue_drops_new_messages_and_recovers() {
    let mut s = state(2, 1);
    let a = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    s.subscribe("c", a.conn_id, &[sub("t", QoS::AtLeastOnce)], |_| true);
    s.disconnect("c", a.conn_id);
    for m in ["1", "2", "3"] {
        s.publish(publish("t", QoS::AtLeastOnce, m));
    }
    let b = s
        .connect("c", None, false, CancellationToken::new())
        .unwrap();
    let first = drain(&mut s, "c", &b);
    assert_eq!(payloads(&first), [b"1"], "in-flight limit of 1");
    s.acknowledge("c", b.conn_id, first[0].pkid);
    s.publish(publish("t", QoS::AtLeastOnce, "4"));
    assert_eq!(payloads(&drain(&mut s, "c", &b)), [b"2"]);
    s.acknowledge("c", b.conn_id, 2);
    assert_eq!(payloads(&drain(&mut s, "c", &b)), [b"4"]);
}

#[test]
fn another_user_cannot_take_a_client_id_over() {
    let mut s = state(10, 10);
    let token = CancellationToken::new();
    s.connect("gate-1", Some("gate-1"), false, token.clone())
        .unwrap();
    assert!(
        s.connect("gate-1", Some("gate-2"), true, CancellationToken::new())
            .is_none()
    );
    assert!(
        s.connect("gate-1", None, true, CancellationToken::new())
            .is_none()
    );
    assert!(!token.is_cancelled(), "the owner stays connected");
}

#[test]
fn retained_messages_are_bounded_the_oldest_going_first() {
    let mut s = State::new(&BrokerOptions {
        max_retained: 2,
        ..BrokerOptions::default()
    });
    for (topic, payload) in [("r/1", "a"), ("r/2", "b"), ("r/3", "c"), ("r/2", "d")] {
        let mut p = publish(topic, QoS::AtLeastOnce, payload);
        p.retain = true;
        s.publish(p);
    }
    let a = s
        .connect("c", None, true, CancellationToken::new())
        .unwrap();
    s.subscribe("c", a.conn_id, &[sub("r/#", QoS::AtLeastOnce)], |_| true);
    let mut got: Vec<_> = drain(&mut s, "c", &a)
        .iter()
        .map(|p| (p.topic.clone(), text(p)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [("r/2".into(), "d".into()), ("r/3".into(), "c".into())]
    );
}

#[test]
fn the_total_queue_budget_holds_across_sessions_and_sessions_are_bounded() {
    let mut s = State::new(&BrokerOptions {
        max_queued_bytes_total: 10,
        max_sessions: 2,
        max_connections: 2,
        ..BrokerOptions::default()
    });
    for id in ["a", "b"] {
        let at = s
            .connect(id, None, false, CancellationToken::new())
            .unwrap();
        s.subscribe(id, at.conn_id, &[sub("t", QoS::AtLeastOnce)], |_| true);
        s.disconnect(id, at.conn_id);
    }
    s.publish(publish("t", QoS::AtLeastOnce, "1234"));
    s.publish(publish("t", QoS::AtLeastOnce, "5678"));
    assert_eq!(
        s.queued_bytes_total, 10,
        "the second message fits in no session"
    );
    // A third session drops the oldest offline one, and its bytes.
    s.connect("c", None, true, CancellationToken::new())
        .unwrap();
    assert_eq!(s.sessions.len(), 2);
    assert!(!s.sessions.contains_key("a"));
    assert!(s.queued_bytes_total <= 5);
}

fn text(p: &Publish) -> String {
    String::from_utf8_lossy(&p.payload).into_owned()
}
