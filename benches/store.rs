//! Store benchmark (`cargo bench --bench store`).
//!
//! 1. Bulk-inserts 1,000,000 punches through `Store::insert_punches` in
//!    durable batches (one committed transaction per batch) into SQLite and,
//!    when `TEST_POSTGRES_URL` is set, PostgreSQL; and, in the same run,
//!    loads the same rows into an identical fresh table with the engine's
//!    own bulk tool (`sqlite3 .import`, `psql \copy` = `COPY`). Prints
//!    rows/s and the ratio.
//! 2. Recomputes one month (October 2026) for 10,000 employees from each
//!    store: first classification, then a recompute that finds nothing
//!    changed.
//!
//! `BENCH_PUNCHES` and `BENCH_EMPLOYEES` shrink the run for a quick check;
//! `BENCH_BATCH` sets the punches per committed transaction (10,000).

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use attendd::store::{EmployeeRecord, NewPunch, Store};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use sqlx::Connection;

const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/policies/seed-default.toml"
);
/// Punches per committed transaction (`BENCH_BATCH` overrides).
fn batch() -> usize {
    env_usize("BENCH_BATCH", 10_000)
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Deterministic punches: every employee punches in and out on each
/// weekday of September and October 2026 (Shanghai time), a few seconds to
/// minutes around 08:30 and 17:30; a lunch punch fills up to `n`.
fn punches(employees: usize, n: usize) -> Vec<NewPunch> {
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rnd = move |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    let days: Vec<NaiveDate> = (0..61)
        .map(|i| NaiveDate::from_ymd_opt(2026, 9, 1).unwrap() + chrono::Days::new(i))
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun))
        .collect();
    let local = |d: NaiveDate, secs: u64| -> DateTime<Utc> {
        chrono_tz::Asia::Shanghai
            .from_local_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
            + chrono::Duration::seconds(secs as i64)
    };
    let mut out = Vec::with_capacity(n);
    let mut extra = 0u64;
    'outer: for pass in 0..3 {
        for d in &days {
            for e in 0..employees {
                if out.len() >= n {
                    break 'outer;
                }
                let secs = match pass {
                    0 => 8 * 3600 + 1200 + rnd(1500),
                    1 => 17 * 3600 + 1800 + rnd(1200),
                    _ => {
                        extra += 1;
                        12 * 3600 + rnd(1800)
                    }
                };
                let id = format!("E{e:05}");
                out.push(NewPunch {
                    employee_id: id.clone(),
                    identity: id,
                    time: local(*d, secs),
                    device_id: Some(format!("gate-{}", e % 8)),
                    event_id: None,
                    source: "bench".into(),
                    raw: None,
                    direction: None,
                });
            }
        }
    }
    let _ = extra;
    out
}

/// The rows as CSV for the bulk tools, with the same values the store
/// writes (ids included so that SQLite's `.import` maps every column).
fn write_csv(path: &Path, rows: &[NewPunch], with_id: bool) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
    if with_id {
        write!(f, "id,").unwrap();
    }
    // `.import` fills the table's columns in order: with the id comes the
    // whole row, `direction` (migration 0009) last and empty.
    let tail = if with_id { ",direction" } else { "" };
    writeln!(
        f,
        "employee_id,time,device_id,source,event_id,identity,raw,received_at,dedupe_key{tail}"
    )
    .unwrap();
    let tail = if with_id { "," } else { "" };
    for (i, p) in rows.iter().enumerate() {
        if with_id {
            write!(f, "{},", i + 1).unwrap();
        }
        writeln!(
            f,
            "{},{},{},{},,{},,{},\"{}\"{tail}",
            p.employee_id,
            p.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
            p.device_id.as_deref().unwrap_or(""),
            p.source,
            p.identity,
            now,
            p.dedupe_key().replace('\u{1f}', "|")
        )
        .unwrap();
    }
    f.flush().unwrap();
}

async fn insert_all(store: &Store, rows: &[NewPunch]) -> f64 {
    let t = Instant::now();
    let mut new = 0;
    for b in rows.chunks(batch()) {
        new += store
            .insert_punches(b, chrono::Utc::now())
            .await
            .unwrap()
            .iter()
            .filter(|r| matches!(r, attendd::store::Inserted::New(_)))
            .count();
    }
    assert_eq!(new, rows.len(), "every bench punch is new");
    t.elapsed().as_secs_f64()
}

fn report(engine: &str, n: usize, ours: f64, base: Option<f64>, tool: &str) {
    let r = n as f64 / ours;
    let batch = batch();
    print!(
        "{engine}: insert_punches {n} rows in {ours:.2} s = {r:.0} rows/s (batches of {batch}, durable commits)"
    );
    match base {
        Some(b) => {
            let br = n as f64 / b;
            println!("; {tool} {b:.2} s = {br:.0} rows/s; ratio {:.2}", r / br);
        }
        None => println!("; {tool} baseline not run"),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let n = env_usize("BENCH_PUNCHES", 1_000_000);
    let employees = env_usize("BENCH_EMPLOYEES", 10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rows = punches(employees, n);
    let n = rows.len();
    println!("{n} punches of {employees} employees");

    // SQLite: ours, then sqlite3 .import into an identical fresh database.
    let db = dir.path().join("bench.db");
    let url = format!("sqlite://{}", db.display());
    let store = rt.block_on(Store::open(&url)).unwrap();
    let ours = rt.block_on(insert_all(&store, &rows));
    let base_db = dir.path().join("baseline.db");
    rt.block_on(async {
        let s = Store::open(&format!("sqlite://{}", base_db.display()))
            .await
            .unwrap();
        s.close().await;
    });
    let csv = dir.path().join("punches-id.csv");
    write_csv(&csv, &rows, true);
    let t = Instant::now();
    let base = Command::new("sqlite3")
        .arg(&base_db)
        .arg(".import --csv --skip 1 ".to_string() + csv.to_str().unwrap() + " punches")
        .status()
        .ok()
        .filter(|s| s.success())
        .map(|_| t.elapsed().as_secs_f64());
    report("sqlite", n, ours, base, "sqlite3 .import");

    // PostgreSQL, when a server is given.
    if let Ok(pg) = std::env::var("TEST_POSTGRES_URL") {
        let csv = dir.path().join("punches.csv");
        write_csv(&csv, &rows, false);
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&pg).await.unwrap();
            for s in ["bench_ours", "bench_copy"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {s} CASCADE")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {s}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
            let sep = if pg.contains('?') { '&' } else { '?' };
            let ours_store = Store::open(&format!("{pg}{sep}options[search_path]=bench_ours"))
                .await
                .unwrap();
            let ours = insert_all(&ours_store, &rows).await;
            let copy_store = Store::open(&format!("{pg}{sep}options[search_path]=bench_copy"))
                .await
                .unwrap();
            copy_store.close().await;
            let t = Instant::now();
            let base = Command::new("psql")
                .arg(&pg)
                .env("PGOPTIONS", "-c search_path=bench_copy")
                .arg("-q")
                .arg("-v")
                .arg("ON_ERROR_STOP=1")
                .arg("-c")
                .arg(format!(
                    "\\copy punches (employee_id,time,device_id,source,event_id,identity,raw,received_at,dedupe_key) FROM '{}' CSV HEADER",
                    csv.display()
                ))
                .status()
                .ok()
                .filter(|s| s.success())
                .map(|_| t.elapsed().as_secs_f64());
            report("postgres", n, ours, base, "psql \\copy (COPY)");
            let policy = attendd::policy_file::load(Path::new(POLICY)).unwrap();
            recompute_twice(&ours_store, "postgres", &policy, employees).await;
            ours_store.close().await;
            for s in ["bench_ours", "bench_copy"] {
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {s} CASCADE")))
                    .execute(&mut c)
                    .await
                    .unwrap();
            }
        });
    } else {
        println!("postgres: skipped (TEST_POSTGRES_URL not set)");
    }

    // Recompute October 2026 for every employee, from the SQLite store.
    let policy = attendd::policy_file::load(Path::new(POLICY)).unwrap();
    rt.block_on(async {
        recompute_twice(&store, "sqlite", &policy, employees).await;
        store.close().await;
    });
}

/// Recomputes October 2026 for `employees` employees twice: the first
/// classification, then with nothing changed.
async fn recompute_twice(
    store: &Store,
    engine: &str,
    policy: &attendd::domain::policy::Policy,
    employees: usize,
) {
    let emps: Vec<EmployeeRecord> = (0..employees)
        .map(|e| EmployeeRecord {
            employee_id: format!("E{e:05}"),
            name: format!("Employee {e}"),
            team: format!("team-{}", e % 50),
            supervisor: format!("S{:02}", e % 50),
            shift: None,
            aliases: Vec::new(),
            start_date: None,
            end_date: None,
        })
        .collect();
    store
        .upsert_employees(&emps, chrono::Utc::now())
        .await
        .unwrap();
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 0, 0, 0).unwrap();
    let (from, to) = (
        NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
    );
    for label in ["first classification", "nothing changed"] {
        let t = Instant::now();
        let r = store
            .recompute(policy, None, from, to, "bench", "bench", now)
            .await
            .unwrap();
        println!(
            "{engine}: recompute {from}..{to} for {employees} employees ({label}): {:.2} s; {} days evaluated, {} written, ledger +{}, {} employees unchanged",
            t.elapsed().as_secs_f64(),
            r.evaluated,
            r.created + r.changed + r.touched,
            r.ledger_added,
            r.unchanged
        );
    }
}
