//! The MQTT source against a real broker: at-least-once into the sink,
//! acknowledgement only after commit, persistent sessions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attendd::source::mqtt::{MqttSettings, run};
use attendd::source::{PunchSink, Received, SinkError};
use rumqttc::{AsyncClient, MqttOptions, QoS};
use tokio_util::sync::CancellationToken;

use crate::services::{host_port, mqtt_url, unique};

/// Records what it commits; fails the first `fail_first` calls, or every
/// call while `broken` is set (fault injection).
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<Vec<u8>>>,
    calls: AtomicUsize,
    fail_first: usize,
    broken: std::sync::atomic::AtomicBool,
}

impl PunchSink for Recorder {
    async fn commit(&self, batch: &[Received]) -> Result<(), SinkError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first || self.broken.load(Ordering::SeqCst) {
            return Err(SinkError("injected failure".into()));
        }
        self.got
            .lock()
            .unwrap()
            .extend(batch.iter().map(|r| r.payload.clone()));
        Ok(())
    }
}

impl Recorder {
    fn count(&self) -> usize {
        self.got.lock().unwrap().len()
    }
}

fn settings(url: &str, topic: &str, client_id: &str) -> MqttSettings {
    let mut s = MqttSettings::from_url("mqtt[0]", url, vec![format!("{topic}/+/punch")], client_id)
        .unwrap();
    s.drain_timeout = Duration::from_millis(500);
    s
}

async fn publisher(url: &str) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let (h, p) = host_port(url);
    let mut o = MqttOptions::new(unique("pub"), h, p);
    o.set_keep_alive(Duration::from_secs(10));
    let (c, mut el) = AsyncClient::new(o, 1000);
    let task = tokio::spawn(async move { while el.poll().await.is_ok() {} });
    (c, task)
}

async fn wait_for(rec: &Recorder, n: usize) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while rec.count() < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} messages arrived", rec.count()));
}

/// Starts the source and waits until it is subscribed (a probe message
/// comes through).
async fn start(
    url: &str,
    topic: &str,
    client: &str,
    rec: Arc<Recorder>,
    pubc: &AsyncClient,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(settings(url, topic, client), rec.clone(), stop.clone()));
    let before = rec.count();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            pubc.publish(
                format!("{topic}/probe/punch"),
                QoS::AtLeastOnce,
                false,
                b"probe".to_vec(),
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            if rec.count() > before {
                break;
            }
        }
    })
    .await
    .expect("source subscribed");
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_every_message_in_order_and_retries_failed_commits() {
    let Some(url) = mqtt_url("mqtt_source::commits_every_message") else {
        return;
    };
    let topic = unique("t");
    let (pubc, _p) = publisher(&url).await;
    let rec = Arc::new(Recorder {
        fail_first: 0,
        ..Default::default()
    });
    let (stop, task) = start(&url, &topic, &unique("attendd"), rec.clone(), &pubc).await;
    rec.broken.store(true, Ordering::SeqCst);
    for i in 0..500 {
        pubc.publish(
            format!("{topic}/gate-1/punch"),
            QoS::AtLeastOnce,
            false,
            format!("m{i:04}").into_bytes(),
        )
        .await
        .unwrap();
    }
    // Nothing is committed while the sink fails; then it recovers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    rec.broken.store(false, Ordering::SeqCst);
    wait_for(&rec, 1 + 500).await;
    let got: Vec<String> = rec
        .got
        .lock()
        .unwrap()
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let msgs: Vec<&String> = got.iter().filter(|m| m.starts_with('m')).collect();
    let mut sorted = msgs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 500, "every message at least once");
    assert_eq!(msgs, sorted, "in publish order");
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_wait_in_the_session_while_attendd_is_down() {
    let Some(url) = mqtt_url("mqtt_source::persistent_session") else {
        return;
    };
    let topic = unique("t");
    let client_id = unique("attendd");
    let (pubc, _p) = publisher(&url).await;
    let rec = Arc::new(Recorder::default());
    let (stop, task) = start(&url, &topic, &client_id, rec.clone(), &pubc).await;
    stop.cancel();
    task.await.unwrap();
    let before = rec.count();
    for i in 0..100 {
        pubc.publish(
            format!("{topic}/gate-2/punch"),
            QoS::AtLeastOnce,
            false,
            format!("offline{i}").into_bytes(),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(
        settings(&url, &topic, &client_id),
        rec.clone(),
        stop.clone(),
    ));
    wait_for(&rec, before + 100).await;
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uncommitted_messages_are_redelivered_to_the_next_session() {
    let Some(url) = mqtt_url("mqtt_source::redelivery") else {
        return;
    };
    let topic = unique("t");
    let client_id = unique("attendd");
    let (pubc, _p) = publisher(&url).await;
    let rec = Arc::new(Recorder::default());
    let (stop, task) = start(&url, &topic, &client_id, rec.clone(), &pubc).await;
    // The store "fails" from now on: nothing may be acknowledged.
    rec.broken.store(true, Ordering::SeqCst);
    for i in 0..50 {
        pubc.publish(
            format!("{topic}/gate-3/punch"),
            QoS::AtLeastOnce,
            false,
            format!("r{i:02}").into_bytes(),
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    task.await.unwrap();
    let before = rec.count();
    rec.broken.store(false, Ordering::SeqCst);
    let stop = CancellationToken::new();
    let task = tokio::spawn(run(
        settings(&url, &topic, &client_id),
        rec.clone(),
        stop.clone(),
    ));
    wait_for(&rec, before + 50).await;
    let got = rec.got.lock().unwrap().clone();
    for i in 0..50 {
        let m = format!("r{i:02}").into_bytes();
        assert!(got.contains(&m), "r{i:02} was lost");
    }
    stop.cancel();
    task.await.unwrap();
}
