//! HR API latency (`cargo bench --bench api`).
//!
//! A SQLite store with 10,000 employees (50 teams) and one classified
//! workday (2026-11-02: most on time, some late, some absent). The real
//! router is served on 127.0.0.1 (port 0) and requested over TCP, one
//! connection per request, as a browser or script would:
//!
//! 1. `GET /api/v1/days/2026-11-02?limit=10000` as HR: every employee's
//!    verdict in one page, uncompressed (target p99 < 20 ms), served as
//!    the daemon serves it (a built page kept while the day and the
//!    employees are unchanged, `[http] page_cache_mib`) and, beside it,
//!    built for every request (`page_cache_mib = 0`);
//! 2. the same with the default page size (500);
//! 3. as a supervisor of one team (200 employees);
//! 4. case 1 with `Accept-Encoding: gzip`, measured on its own.
//!
//! Prints p50, p99 and max per case, the response size and the time of
//! the case's first request (which builds the page).
//! `BENCH_EMPLOYEES` and `BENCH_REQUESTS` shrink the run for a quick check.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use attendd::http::api::Api;
use attendd::http::auth::{ApiToken, Role};
use attendd::store::{EmployeeRecord, NewPunch, Store};
use chrono::{NaiveDate, TimeZone, Utc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/policies/seed-default.toml"
);
const HR: &str = "bench-hr-token-0123456789";
const SUP: &str = "bench-sup-token-0123456789";

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One GET over a fresh connection; returns (status line, body length).
/// With `gzip` the request accepts a gzip body (the length is then the
/// compressed one). The body is read into a reused buffer and only
/// counted: the figure is the server's, not the cost of keeping the body.
async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    token: &str,
    gzip: bool,
    buf: &mut Vec<u8>,
) -> (String, usize) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let accept = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n{accept}Connection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    buf.resize(1 << 20, 0);
    let mut head: Vec<u8> = Vec::new();
    let mut head_len = None;
    let mut total = 0;
    loop {
        let n = s.read(buf).await.unwrap();
        if n == 0 {
            break;
        }
        if head_len.is_none() {
            head.extend_from_slice(&buf[..n]);
            head_len = head
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|p| p + 4);
        }
        total += n;
    }
    let head_end = head_len.unwrap_or(total);
    let status =
        String::from_utf8_lossy(&head[..head.iter().position(|&b| b == b'\r').unwrap_or(0)])
            .into_owned();
    (status, total - head_end)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let employees = env_usize("BENCH_EMPLOYEES", 10_000);
    let requests = env_usize("BENCH_REQUESTS", 200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let policy = Arc::new(attendd::policy_file::load(Path::new(POLICY)).unwrap());
    let date = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        let emps: Vec<EmployeeRecord> = (0..employees)
            .map(|i| EmployeeRecord {
                employee_id: format!("E{i:05}"),
                name: format!("Employee {i}"),
                team: format!("T{:02}", i % 50),
                supervisor: format!("lead-{:02}", i % 50),
                shift: None,
                aliases: Vec::new(),
                start_date: None,
                end_date: None,
            })
            .collect();
        store.upsert_employees(&emps, chrono::Utc::now()).await.unwrap();
        let tz = policy.tz;
        let at = |h: u32, m: u32, s: u32| {
            tz.with_ymd_and_hms(2026, 11, 2, h, m, s)
                .unwrap()
                .with_timezone(&Utc)
        };
        let mut punches = Vec::new();
        for (i, e) in emps.iter().enumerate() {
            let (inn, out) = match i % 20 {
                0 => continue,                              // absent
                1 => (Some(at(8, 50, 0)), Some(at(17, 31, 0))), // late
                2 => (Some(at(9, 40, 0)), Some(at(17, 31, 0))), // half day
                3 => (Some(at(8, 20, 0)), None),                // missing punch
                _ => (Some(at(8, 10 + (i % 19) as u32, 7)), Some(at(17, 30 + (i % 29) as u32, 3))),
            };
            for t in [inn, out].into_iter().flatten() {
                punches.push(NewPunch {
                    employee_id: e.employee_id.clone(),
                    identity: e.employee_id.clone(),
                    time: t,
                    device_id: Some(format!("gate-{}", i % 4)),
                    event_id: None,
                    source: "bench".into(),
                    raw: None,
                    direction: None,
                });
            }
        }
        store.insert_punches(&punches, chrono::Utc::now()).await.unwrap();
        let t = Instant::now();
        let rep = store
            .recompute(
                &policy,
                None,
                date,
                date,
                "bench",
                "bench",
                at(23, 0, 0) + chrono::Duration::days(1),
            )
            .await
            .unwrap();
        println!(
            "{employees} employees, {} punches; classified {} employee-days in {:.1?}",
            punches.len(),
            rep.evaluated,
            t.elapsed()
        );

        let tokens = vec![
            ApiToken {
                name: "hr".into(),
                secret: HR.into(),
                role: Role::Hr,
            },
            ApiToken {
                name: "sup".into(),
                secret: SUP.into(),
                role: Role::Supervisor("T07".into()),
            },
        ];
        // The daemon's API (built pages kept, `[http] page_cache_mib`
        // default) and one that builds every page (`page_cache_mib = 0`).
        let stop = tokio_util::sync::CancellationToken::new();
        let mut servers = Vec::new();
        let mut addrs = Vec::new();
        for mib in [attendd::config::DEFAULT_PAGE_CACHE_MIB, 0] {
            let api = Api::new(store.clone(), policy.clone(), tokens.clone()).with_page_cache(mib);
            let router = attendd::http::router(attendd::http::AppState {
                metrics: Default::default(),
                health: Default::default(),
                api: Some(Arc::new(api)),
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(listener.local_addr().unwrap());
            servers.push(tokio::spawn(attendd::http::serve(listener, router, stop.clone())));
        }
        let (kept, plain) = (addrs[0], addrs[1]);

        let cases = [
            ("days, all employees (limit=10000), hr", format!("/api/v1/days/{date}?limit=10000"), HR, false, kept),
            ("days, all employees (limit=10000), hr, pages not kept", format!("/api/v1/days/{date}?limit=10000"), HR, false, plain),
            ("days, default page (500), hr", format!("/api/v1/days/{date}"), HR, false, kept),
            ("days, one team, supervisor", format!("/api/v1/days/{date}?limit=10000"), SUP, false, kept),
            ("days, all employees (limit=10000), hr, gzip", format!("/api/v1/days/{date}?limit=10000"), HR, true, kept),
        ];
        let mut buf = Vec::new();
        for (name, path, token, gzip, addr) in cases {
            // The first request builds the page (kept for the next ones
            // on the daemon's API).
            let t = Instant::now();
            get(addr, &path, token, gzip, &mut buf).await;
            let first = t.elapsed();
            for _ in 0..9 {
                get(addr, &path, token, gzip, &mut buf).await;
            }
            let mut times = Vec::with_capacity(requests);
            let mut size = 0;
            for _ in 0..requests {
                let t = Instant::now();
                let (status, n) = get(addr, &path, token, gzip, &mut buf).await;
                times.push(t.elapsed());
                assert!(status.contains(" 200 "), "{path}: {status}");
                size = n;
            }
            times.sort();
            println!(
                "{name}: {requests} requests, p50 {:.1?}, p99 {:.1?}, max {:.1?}, {:.1} KiB per response (first request {first:.1?})",
                pct(&times, 0.50),
                pct(&times, 0.99),
                times[times.len() - 1],
                size as f64 / 1024.0
            );
        }
        stop.cancel();
        for server in servers {
            let _ = server.await;
        }
        store.close().await;
    });
}
