//! Many ZKTeco ADMS terminals catching up at once, against the real binary
//! on SQLite.
//!
//! `cargo bench --bench push` starts `attendd run` with one
//! `[[source.zk_push]]` listener, then N simulated terminals (default 200,
//! `PUSH_BENCH_TERMINALS`) each shake hands and upload a backlog of R
//! records (default 10,000, `PUSH_BENCH_RECORDS`) in POSTs of B lines
//! (default 500, `PUSH_BENCH_BATCH`), all at once, each terminal sending its
//! next POST only after the `OK` of the previous one, as real terminals do.
//! Every terminal also re-sends its first batch once (a lost `OK`).
//!
//! Reports records/s and the time until every terminal is caught up (its
//! last `OK` received, which the daemon answers only after the commit), and
//! checks that the store holds exactly N × R punches (none lost, none
//! doubled) and nothing in quarantine, and that a handshake hands back the
//! last stamp. A quick run: `PUSH_BENCH_TERMINALS=20 PUSH_BENCH_RECORDS=1000`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use attendd::store::Store;

const BIN: &str = env!("CARGO_BIN_EXE_attendd");

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(default)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request with `Connection: close`; (status, body).
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(300)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP response"))?;
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    Ok((code, body.to_string()))
}

fn sn(t: usize) -> String {
    format!("BENCH{t:06}")
}

/// Record `k` of terminal `t`: 2,000 employees, one punch every 37 s per
/// terminal, spread over the days before the run.
fn line(t: usize, k: usize) -> String {
    let secs = 1_793_000_000i64 + (t as i64) * 11 + (k as i64) * 37;
    let at = chrono::DateTime::from_timestamp(secs, 0)
        .unwrap()
        .naive_utc();
    format!(
        "{:04}\t{}\t{}\t15\t0\t0\t0\n",
        (t * 7 + k) % 2000,
        at.format("%Y-%m-%d %H:%M:%S"),
        k % 2
    )
}

/// Sends one POST until it is acknowledged (a terminal retries).
fn upload(port: u16, sn: &str, stamp: usize, body: &[u8], lines: usize) {
    let path = format!("/iclock/cdata?SN={sn}&table=ATTLOG&Stamp={stamp}");
    let want = format!("OK:{lines}");
    for attempt in 0.. {
        match request(port, "POST", &path, body) {
            Ok((200, b)) if b == want => return,
            other => {
                assert!(attempt < 50, "{sn}: upload never acknowledged: {other:?}");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

fn main() {
    let terminals = env_or("PUSH_BENCH_TERMINALS", 200);
    let records = env_or("PUSH_BENCH_RECORDS", 10_000);
    let batch = env_or("PUSH_BENCH_BATCH", 500);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("attendd.db");
    let (http, zk) = (free_port(), free_port());
    let policy =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policies/seed-default.toml");
    let mut cfg = format!(
        "[policy]\nfile = {:?}\n\n[store]\nurl = \"sqlite://{}\"\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n\
         [[source.zk_push]]\nlisten = \"127.0.0.1:{zk}\"\n",
        policy.display().to_string(),
        db.display()
    );
    for t in 0..terminals {
        cfg.push_str(&format!(
            "[[source.zk_push.terminals]]\nsn = \"{}\"\ntimezone = \"Europe/Istanbul\"\n",
            sn(t)
        ));
    }
    let config = dir.path().join("attendd.toml");
    std::fs::write(&config, cfg).unwrap();
    let log = std::fs::File::create(dir.path().join("run.log")).unwrap();
    let _daemon = Daemon(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !request(http, "GET", "/healthz", b"").is_ok_and(|r| r.0 == 200) {
        assert!(Instant::now() < deadline, "daemon did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Bodies are built before the clock starts.
    let bodies: Vec<Vec<(usize, Vec<u8>, usize)>> = (0..terminals)
        .map(|t| {
            (0..records)
                .step_by(batch)
                .map(|from| {
                    let to = (from + batch).min(records);
                    let body: String = (from..to).map(|k| line(t, k)).collect();
                    (to, body.into_bytes(), to - from)
                })
                .collect()
        })
        .collect();
    println!(
        "push: {terminals} ZKTeco terminals x {records} records in POSTs of {batch} lines ({} punches)",
        terminals * records
    );
    let started = Instant::now();
    let threads: Vec<_> = bodies
        .into_iter()
        .enumerate()
        .map(|(t, posts)| {
            std::thread::spawn(move || {
                let sn = sn(t);
                let (code, hs) = request(
                    zk,
                    "GET",
                    &format!("/iclock/cdata?SN={sn}&options=all"),
                    b"",
                )
                .unwrap();
                assert_eq!(code, 200, "{hs}");
                assert!(hs.contains("ATTLOGStamp=0\n"), "{hs}");
                for (i, (stamp, body, n)) in posts.iter().enumerate() {
                    upload(zk, &sn, *stamp, body, *n);
                    if i == 0 {
                        // The OK got lost: the terminal sends it again.
                        upload(zk, &sn, *stamp, body, *n);
                    }
                }
                started.elapsed()
            })
        })
        .collect();
    let mut caught_up = Vec::with_capacity(terminals);
    for th in threads {
        caught_up.push(th.join().expect("terminal thread"));
    }
    let all = started.elapsed();
    caught_up.sort();
    let total = terminals * records;
    println!(
        "push: all {terminals} terminals caught up in {:.1} s: {:.0} records/s committed \
         (median terminal {:.1} s, first {:.1} s)",
        all.as_secs_f64(),
        total as f64 / all.as_secs_f64(),
        caught_up[caught_up.len() / 2].as_secs_f64(),
        caught_up[0].as_secs_f64(),
    );

    // Nothing lost, nothing doubled, nothing quarantined; stamps resume.
    let (_, hs) = request(
        zk,
        "GET",
        &format!("/iclock/cdata?SN={}&options=all", sn(0)),
        b"",
    )
    .unwrap();
    assert!(hs.contains(&format!("ATTLOGStamp={records}\n")), "{hs}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stored, quarantined) = rt.block_on(async {
        let s = Store::open(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        let n = s.punch_count().await.unwrap();
        let q = s.quarantined(10).await.unwrap().len();
        s.close().await;
        (n, q)
    });
    assert_eq!(stored as usize, total, "punches lost or doubled");
    assert_eq!(quarantined, 0, "records quarantined");
    println!("push: verified {stored} punches stored once each, 0 quarantined");
}
