//! One site, two attendd instances: a shared PostgreSQL store and an MQTT
//! shared subscription (`$share/attendd/…`) on Mosquitto split the load;
//! every punch is stored once and both instances take part.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::{Kill, free_port};
use sqlx::Connection;

const BIN: &str = env!("CARGO_BIN_EXE_attendd");

fn metric(port: u16, name: &str) -> f64 {
    let Some((_, b)) = crate::proc::http_get(port, "/metrics") else {
        return 0.0;
    };
    b.lines()
        .filter(|l| l.starts_with(name) && l.contains("outcome=\"new\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn two_instances_share_one_subscription_and_one_postgres_store() {
    let Some(mosq) = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        assert!(!crate::services::required(), "mosquitto binary not found");
        eprintln!("skipping two_instances_share…: no mosquitto binary");
        return;
    };
    let base = match std::env::var("TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(!crate::services::required(), "TEST_POSTGRES_URL not set");
            eprintln!("skipping two_instances_share…: TEST_POSTGRES_URL not set");
            return;
        }
    };
    let schema = crate::services::unique("scale").replace('-', "_");
    {
        let mut c = match sqlx::PgConnection::connect(&base).await {
            Ok(c) => c,
            Err(e) => {
                assert!(!crate::services::required(), "{base}: {e}");
                eprintln!("skipping two_instances_share…: {base}: {e}");
                return;
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut c)
            .await
            .unwrap();
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\nuser root\n"
        ),
    )
    .unwrap();
    let _broker = Kill(
        Command::new(mosq)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    let policy = crate::common::root().join("config/policies/seed-default.toml");
    let mut daemons = Vec::new();
    let mut https = Vec::new();
    for i in 0..2 {
        let http = free_port();
        let cfg = dir.path().join(format!("attendd-{i}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "[policy]\nfile = {policy:?}\n[store]\nurl = {url:?}\n\
                 [[source.mqtt]]\nbroker = \"mqtt://127.0.0.1:{port}\"\n\
                 topics = [\"$share/attendd/scale/+/punch\"]\ndecoder = \"json\"\n\
                 client_id = \"attendd-scale-{i}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join(format!("run-{i}.log"))).unwrap();
        daemons.push(Kill(
            Command::new(BIN)
                .args(["run", "--config"])
                .arg(&cfg)
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        ));
        https.push((http, cfg));
    }
    // Both subscribed (healthz 200 means connected).
    for (http, _) in &https {
        let t0 = Instant::now();
        loop {
            if crate::proc::healthz(*http) == Some(200) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "instance on {http} not up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let sim = Command::new(BIN)
        .args([
            "simulate",
            "--employees",
            "400",
            "--date",
            "2026-03-02",
            "--topic-prefix",
            "scale",
            "--duplicates",
            "0.1",
            "--json",
        ])
        .arg("--broker")
        .arg(format!("mqtt://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(sim.status.success());
    let rep: serde_json::Value =
        serde_json::from_slice(sim.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let want = rep["distinct"].as_u64().unwrap();
    let t0 = Instant::now();
    let stored = loop {
        let out = Command::new(BIN)
            .args(["punches", "--date", "2026-03-02", "--json", "--config"])
            .arg(&https[0].1)
            .output()
            .unwrap();
        let n = out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        if n >= want || t0.elapsed() > Duration::from_secs(60) {
            break n;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(stored, want, "every distinct punch exactly once");
    let a = metric(https[0].0, "attendd_punches_total");
    let b = metric(https[1].0, "attendd_punches_total");
    assert!(a > 0.0 && b > 0.0, "both instances took part: {a} + {b}");
    assert_eq!((a + b) as u64, want, "new punches split between the two");
    drop(daemons);
    if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut c)
            .await;
    }
}
