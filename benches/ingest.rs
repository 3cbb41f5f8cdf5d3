//! End-to-end durable ingest with the real binary and a real broker.
//!
//! Run with `cargo bench --bench ingest`. It starts a private Mosquitto
//! with the queue and in-flight settings of `deploy/mosquitto/attendd.conf`
//! (the machine's broker keeps Mosquitto's default of 1,000 queued
//! messages, which drops punches whenever the daemon lags behind a fast
//! publisher); without the mosquitto binary it uses the broker at
//! `TEST_MQTT_URL` (default mqtt://127.0.0.1:1883). Measures, in one run:
//!
//! 1. the broker's pass-through rate to a bare QoS 1 subscriber (the
//!    ceiling);
//! 2. attendd's durable ingest rate: published → committed in SQLite
//!    (read from the daemon's own `attendd_punches_total` counter);
//! 3. publish-to-commit latency at 1,000 punches/s: the counter is polled
//!    over HTTP continuously; a punch counts as committed at the first poll
//!    that shows the counter at or past its position (so the figure
//!    includes up to one poll interval, about a millisecond);
//! 4. the daemon's resident memory (VmRSS and VmHWM) after the runs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const N: usize = 100_000;

fn broker() -> (String, u16) {
    let url = std::env::var("TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    let rest = url.trim_start_matches("mqtt://").trim_end_matches('/');
    let (h, p) = rest.rsplit_once(':').unwrap_or((rest, "1883"));
    (h.to_string(), p.parse().unwrap())
}

/// Mosquitto's per-client in-flight window, as in deploy/mosquitto.
const INFLIGHT: u32 = 100;

/// Starts Mosquitto on a free port with deploy/mosquitto's queue settings.
fn private_mosquitto(dir: &std::path::Path) -> Option<(Child, u16)> {
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|b| std::path::Path::new(b).exists())?;
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\n\
             max_inflight_messages {INFLIGHT}\nuser root\n"
        ),
    )
    .ok()?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(10) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((child, port))
}

fn tag() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    )
}

fn payload(i: usize) -> Vec<u8> {
    let s = i % 86_400;
    format!(
        "{{\"employee_id\":\"E{:05}\",\"time\":\"2026-11-26 {:02}:{:02}:{:02}\",\"device_id\":\"gate-{}\",\"event_id\":\"{i}\"}}",
        i % 10_000,
        s / 3600,
        s / 60 % 60,
        s % 60,
        i % 8
    )
    .into_bytes()
}

async fn publisher(h: &str, p: u16) -> AsyncClient {
    let mut o = MqttOptions::new(format!("bench-pub-{}", tag()), h, p);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(1000);
    let (c, mut el) = AsyncClient::new(o, 10_000);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    c
}

async fn passthrough(h: &str, p: u16) -> f64 {
    let topic = format!("bench/{}/punch", tag());
    let mut o = MqttOptions::new(format!("bench-sub-{}", tag()), h, p);
    o.set_keep_alive(Duration::from_secs(30));
    let (sub, mut el) = AsyncClient::new(o, 10_000);
    sub.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Ok(Event::Incoming(Packet::SubAck(_))) = el.poll().await {
            break;
        }
    }
    let pubc = publisher(h, p).await;
    let t = topic.clone();
    let start = Instant::now();
    tokio::spawn(async move {
        for i in 0..N {
            pubc.publish(&t, QoS::AtLeastOnce, false, payload(i))
                .await
                .unwrap();
        }
    });
    let mut got = 0;
    while got < N {
        if let Ok(Event::Incoming(Packet::Publish(_))) = el.poll().await {
            got += 1;
        }
    }
    N as f64 / start.elapsed().as_secs_f64()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut b = String::new();
    s.read_to_string(&mut b).ok()?;
    Some(b)
}

fn committed(port: u16) -> usize {
    http_get(port, "/metrics")
        .and_then(|b| {
            b.lines()
                .find(|l| l.starts_with("attendd_punches_total{") && l.contains("outcome=\"new\""))
                .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        })
        .map_or(0, |v| v as usize)
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let f = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (f("VmRSS:"), f("VmHWM:"))
}

struct Daemon(Child);
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let mosq_dir = tempfile::tempdir().unwrap();
    let _mosquitto;
    let (h, p) = match private_mosquitto(mosq_dir.path()) {
        Some((child, port)) => {
            _mosquitto = Daemon(child);
            println!(
                "broker: private Mosquitto on 127.0.0.1:{port} (max_queued_messages 0, max_inflight_messages {INFLIGHT})"
            );
            ("127.0.0.1".to_string(), port)
        }
        None => broker(),
    };
    if TcpStream::connect((h.as_str(), p)).is_err() {
        println!("skipping ingest benchmark: no broker at {h}:{p} (set TEST_MQTT_URL)");
        return;
    }
    let ceiling = passthrough(&h, p).await;
    println!("broker pass-through to a bare QoS 1 subscriber: {ceiling:.0} msg/s ({N} messages)");

    let dir = tempfile::tempdir().unwrap();
    let http = free_port();
    let prefix = format!("bench{}", tag());
    let cfg = dir.path().join("attendd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[policy]\nfile = \"{}/config/policies/seed-default.toml\"\n[store]\nurl = \"sqlite://attendd.db\"\n[[source.mqtt]]\nbroker = \"mqtt://{h}:{p}\"\ntopics = [\"{prefix}/+/punch\"]\ndecoder = \"json\"\nclient_id = \"attendd-bench-{}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n[ingest]\nrecompute_interval_seconds = 3600\n",
            env!("CARGO_MANIFEST_DIR"),
            tag()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_attendd"))
        .args(["run", "--config"])
        .arg(&cfg)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let daemon = Daemon(child);
    let pid = daemon.0.id();
    let t0 = Instant::now();
    while !http_get(http, "/healthz").is_some_and(|b| b.starts_with("HTTP/1.1 200")) {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "daemon did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // 1. Sustained durable ingest.
    let pubc = publisher(&h, p).await;
    let start = Instant::now();
    let pc = pubc.clone();
    let pf = prefix.clone();
    tokio::spawn(async move {
        for i in 0..N {
            pc.publish(
                format!("{pf}/gate-{}/punch", i % 8),
                QoS::AtLeastOnce,
                false,
                payload(i),
            )
            .await
            .unwrap();
        }
    });
    while committed(http) < N {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "only {} committed",
            committed(http)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = N as f64 / start.elapsed().as_secs_f64();
    println!(
        "attendd durable ingest into SQLite: {rate:.0} punches/s ({N} punches); ratio to the broker ceiling {:.2}",
        rate / ceiling
    );

    // 2. Latency at 1,000 punches/s for 10 s.
    const L: usize = 10_000;
    let base = committed(http);
    let mut sent_at = Vec::with_capacity(L);
    let poll = tokio::task::spawn_blocking(move || {
        let mut seen: Vec<(Instant, usize)> = Vec::new();
        let until = Instant::now() + Duration::from_secs(40);
        loop {
            let c = committed(http).saturating_sub(base);
            seen.push((Instant::now(), c));
            if c >= L || Instant::now() > until {
                return seen;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    });
    let start = Instant::now();
    for i in 0..L {
        let due = start + Duration::from_micros(1000 * i as u64);
        tokio::time::sleep_until(due.into()).await;
        sent_at.push(Instant::now());
        pubc.publish(
            format!("{prefix}/gate-{}/punch", i % 8),
            QoS::AtLeastOnce,
            false,
            payload(N + i),
        )
        .await
        .unwrap();
    }
    let seen = poll.await.unwrap();
    let mut lat: Vec<f64> = sent_at
        .iter()
        .enumerate()
        .filter_map(|(i, t)| {
            seen.iter()
                .find(|(_, c)| *c > i)
                .map(|(at, _)| at.saturating_duration_since(*t).as_secs_f64() * 1000.0)
        })
        .collect();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)];
    println!(
        "publish-to-commit latency at 1,000 punches/s ({} punches): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        q(0.5),
        q(0.99),
        lat.last().unwrap()
    );
    let (rss, hwm) = rss_kib(pid);
    println!(
        "daemon resident memory after the runs: VmRSS {} MiB, peak VmHWM {} MiB",
        rss / 1024,
        hwm / 1024
    );
}
