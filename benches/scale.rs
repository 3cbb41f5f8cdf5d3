//! Scaling out: one and then two `attendd run` instances on one PostgreSQL
//! database, sharing the punches through an MQTT shared subscription
//! (`$share/attendd/…`) on Mosquitto.
//!
//! Run with `cargo bench --bench scale`. Needs PostgreSQL at
//! `TEST_POSTGRES_URL` (each run gets a fresh schema, dropped at the end)
//! and a broker: a private Mosquitto with the queue and in-flight settings
//! of `deploy/mosquitto/attendd.conf` when the mosquitto binary is
//! installed, else the broker at `TEST_MQTT_URL` (default
//! mqtt://127.0.0.1:1883). Skips, saying why, when either is unreachable.
//!
//! For one instance and then for two, on an empty schema each time,
//! 50,000 distinct QoS 1 punches are published as fast as the broker takes
//! them; the rate is published → committed in PostgreSQL (the sum of the
//! instances' `attendd_punches_total{outcome="new"}` counters), and the
//! punches table is checked to hold every punch exactly once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, MqttOptions, QoS};
use sqlx::Connection;

const N: usize = 50_000;

/// Mosquitto's per-client in-flight window, as in deploy/mosquitto.
const INFLIGHT: u32 = 100;

fn broker() -> (String, u16) {
    let url = std::env::var("TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    let rest = url.trim_start_matches("mqtt://").trim_end_matches('/');
    let (h, p) = rest.rsplit_once(':').unwrap_or((rest, "1883"));
    (h.to_string(), p.parse().unwrap_or(1883))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
        "{}_{}",
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

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One run's figures.
struct Run {
    rate: f64,
    /// New punches committed by each instance.
    split: Vec<usize>,
    /// Rows in the punches table, and distinct dedupe keys among them.
    stored: (i64, i64),
    /// Bytes of the punches table with its indexes.
    bytes: i64,
}

/// Starts `instances` daemons on `schema`, publishes N punches and waits
/// until all are committed.
async fn run(
    instances: usize,
    base: &str,
    schema: &str,
    (h, p): (&str, u16),
    dir: &std::path::Path,
) -> Run {
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let prefix = format!("scale{schema}");
    let policy = format!(
        "{}/config/policies/seed-default.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut daemons = Vec::new();
    let mut ports = Vec::new();
    for i in 0..instances {
        let http = free_port();
        let cfg = dir.join(format!("attendd-{schema}-{i}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[policy]\nfile = {policy:?}\n[store]\nurl = {url:?}\n\
                 [[source.mqtt]]\nbroker = \"mqtt://{h}:{p}\"\n\
                 topics = [\"$share/attendd/{prefix}/+/punch\"]\ndecoder = \"json\"\n\
                 client_id = \"attendd-scale-{schema}-{i}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
                 [ingest]\nrecompute_interval_seconds = 3600\n"
            ),
        )
        .unwrap();
        daemons.push(Kill(
            Command::new(env!("CARGO_BIN_EXE_attendd"))
                .args(["run", "--config"])
                .arg(&cfg)
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap(),
        ));
        ports.push(http);
    }
    for &http in &ports {
        let t0 = Instant::now();
        while !http_get(http, "/healthz").is_some_and(|b| b.starts_with("HTTP/1.1 200")) {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "instance on {http} did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut o = MqttOptions::new(format!("bench-scale-pub-{}", tag()), h, p);
    o.set_keep_alive(Duration::from_secs(30)).set_inflight(1000);
    let (pubc, mut el) = AsyncClient::new(o, 10_000);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    let total = |ports: &[u16]| ports.iter().map(|&p| committed(p)).sum::<usize>();
    let start = Instant::now();
    tokio::spawn(async move {
        for i in 0..N {
            pubc.publish(
                format!("{prefix}/gate-{}/punch", i % 8),
                QoS::AtLeastOnce,
                false,
                payload(i),
            )
            .await
            .unwrap();
        }
    });
    while total(&ports) < N {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "only {} committed",
            total(&ports)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = N as f64 / start.elapsed().as_secs_f64();
    let split = ports.iter().map(|&p| committed(p)).collect();
    drop(daemons);
    let mut c = sqlx::PgConnection::connect(base).await.unwrap();
    let stored: (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT count(*), count(DISTINCT dedupe_key) FROM {schema}.punches"
    )))
    .fetch_one(&mut c)
    .await
    .unwrap();
    let bytes: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT pg_total_relation_size('{schema}.punches')"
    )))
    .fetch_one(&mut c)
    .await
    .unwrap();
    Run {
        rate,
        split,
        stored,
        bytes,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let base = match std::env::var("TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            println!("skipping scale benchmark: TEST_POSTGRES_URL not set");
            return;
        }
    };
    let mut admin = match sqlx::PgConnection::connect(&base).await {
        Ok(c) => c,
        Err(e) => {
            println!("skipping scale benchmark: PostgreSQL at {base} unreachable: {e}");
            return;
        }
    };
    let mosq_dir = tempfile::tempdir().unwrap();
    let _mosquitto;
    let (h, p) = match private_mosquitto(mosq_dir.path()) {
        Some((child, port)) => {
            _mosquitto = Kill(child);
            println!(
                "broker: private Mosquitto on 127.0.0.1:{port} (max_queued_messages 0, max_inflight_messages {INFLIGHT})"
            );
            ("127.0.0.1".to_string(), port)
        }
        None => broker(),
    };
    if TcpStream::connect((h.as_str(), p)).is_err() {
        println!("skipping scale benchmark: no broker at {h}:{p} (set TEST_MQTT_URL)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let t = tag();
    let schemas = [format!("scale_one_{t}"), format!("scale_two_{t}")];
    for s in &schemas {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {s}")))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let runs = [
        run(1, &base, &schemas[0], (&h, p), dir.path()).await,
        run(2, &base, &schemas[1], (&h, p), dir.path()).await,
    ];
    for s in &schemas {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {s} CASCADE")))
            .execute(&mut admin)
            .await;
    }
    for (n, r) in runs.iter().enumerate() {
        assert_eq!(
            r.stored,
            (N as i64, N as i64),
            "{} instance(s): every punch stored exactly once",
            n + 1
        );
        assert_eq!(r.split.iter().sum::<usize>(), N);
    }
    let split = |r: &Run| {
        r.split
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(" + ")
    };
    println!(
        "attendd durable ingest into PostgreSQL over $share, {N} punches: one instance {:.0} punches/s, two instances {:.0} punches/s ({}); ratio two/one {:.2}",
        runs[0].rate,
        runs[1].rate,
        split(&runs[1]),
        runs[1].rate / runs[0].rate
    );
    println!(
        "stored exactly once: one instance {} rows, two instances {} rows; punches table with indexes {:.0} bytes per punch",
        runs[0].stored.0,
        runs[1].stored.0,
        runs[1].bytes as f64 / N as f64
    );
}
