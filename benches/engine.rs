//! Benchmarks of the policy engine alone and of `attendd evaluate` end to
//! end, on 10,000 employees × 31 days of generated punches.
//!
//! Run with `cargo bench --bench engine`. Prints employee-days per second
//! and peak resident memory. Data is generated here, deterministically.
//!
//! `ENGINE_BENCH_EMPLOYEES=N` runs the engine part alone on N employees
//! with one timed pass, for `valgrind --tool=callgrind` on the bench
//! binary (instruction counts repeat exactly for the same N).

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use attendd::domain::calendar::ShiftClock;
use attendd::domain::classify::{EmployeeDays, evaluate_employee};
use attendd::domain::types::{EmployeeId, Punch, Roster};
use attendd::simulate::Rng;
use chrono::{Datelike, NaiveDate, TimeZone, Utc, Weekday};

const EMPLOYEES: usize = 10_000;
const FROM: (i32, u32, u32) = (2026, 10, 1);
const DAYS: u32 = 31;

/// Punches (local naive times as seconds from midnight) for one employee-day:
/// mostly on time, some late or early, a few missing or absent.
fn day_punches(rng: &mut Rng) -> Vec<u32> {
    let r = rng.below(100);
    let arrive = 8 * 3600 + 30 * 60;
    let leave = 17 * 3600 + 30 * 60;
    match r {
        0..=1 => vec![],
        2..=3 => vec![arrive - 600 + rng.below(600) as u32],
        _ => {
            let a = if r < 12 {
                arrive + 600 + rng.below(3600) as u32
            } else {
                arrive - 1200 + rng.below(1200) as u32
            };
            let b = if r > 94 {
                leave - 2400 + rng.below(1200) as u32
            } else {
                leave + rng.below(1800) as u32
            };
            let mut v = vec![a, b];
            if r.is_multiple_of(7) {
                v.push(a + 20); // a repeat
            }
            v
        }
    }
}

fn dates() -> Vec<NaiveDate> {
    let first = NaiveDate::from_ymd_opt(FROM.0, FROM.1, FROM.2).unwrap();
    (0..DAYS)
        .map(|d| first + chrono::Days::new(d as u64))
        .collect()
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn engine_alone(employees: usize, passes: usize) {
    let policy = attendd::policy_file::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/policies/seed-default.toml"
    )))
    .unwrap();
    let dates = dates();
    let mut rng = Rng::new(0x9E37_79B9_7F4A_7C15);
    let ids: Vec<EmployeeId> = (0..employees)
        .map(|i| EmployeeId::from(format!("E{i:05}").as_str()))
        .collect();
    let device: std::sync::Arc<str> = "gate-1".into();
    let punches: Vec<Vec<Punch>> = (0..employees)
        .map(|_| {
            let mut v = Vec::new();
            for d in &dates {
                if matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                    continue;
                }
                let midnight = Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap())
                    - chrono::Duration::hours(8);
                for s in day_punches(&mut rng) {
                    v.push(Punch {
                        at: midnight + chrono::Duration::seconds(s as i64),
                        device: Some(device.clone()),
                        direction: None,
                    });
                }
            }
            v
        })
        .collect();
    let roster = Roster::new();
    let (from, to) = (dates[0], *dates.last().unwrap());
    let clock = ShiftClock::new(
        &policy,
        from - chrono::Days::new(3),
        to + chrono::Days::new(3),
    );
    let holidays = policy.holidays.clone();
    // Warm up once, then time the best of three runs.
    let mut best = Duration::MAX;
    let mut checksum = 0i64;
    for _ in 0..passes {
        let t = Instant::now();
        let mut days = 0usize;
        for (i, id) in ids.iter().enumerate() {
            let v = evaluate_employee(
                &clock,
                &holidays,
                &EmployeeDays {
                    employee: id,
                    default_shift: None,
                    punches: &punches[i],
                    roster: Some(&roster),
                    leaves: &[],
                    start_date: None,
                    end_date: None,
                },
                from,
                to,
                chrono::DateTime::<Utc>::MAX_UTC,
            );
            days += v.len();
            checksum += v.iter().map(|d| d.points.hundredths()).sum::<i64>();
        }
        let e = t.elapsed();
        assert_eq!(days, employees * DAYS as usize);
        best = best.min(e);
    }
    let n = (employees * DAYS as usize) as f64;
    println!(
        "engine alone: {} employee-days in {:.3} s (best of {}, one core) = {:.0} employee-days/s; peak RSS {} MiB (checksum {checksum})",
        employees * DAYS as usize,
        best.as_secs_f64(),
        passes.saturating_sub(1).max(1),
        n / best.as_secs_f64(),
        peak_rss_kib() / 1024,
    );
}

fn end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let dates = dates();
    let mut rng = Rng::new(0xD1B5_4A32_D192_ED03);
    let mut emp = String::from("employee_id,name,team,supervisor\n");
    let mut pun = String::from("employee_id,time,device_id\n");
    for i in 0..EMPLOYEES {
        let _ = writeln!(emp, "E{i:05},Person {i},team{},S{:03}", i % 50, i % 50);
        for d in &dates {
            if matches!(d.weekday(), Weekday::Sat | Weekday::Sun) {
                continue;
            }
            for s in day_punches(&mut rng) {
                let _ = writeln!(
                    pun,
                    "E{i:05},{} {:02}:{:02}:{:02},gate-{}",
                    d,
                    s / 3600,
                    s / 60 % 60,
                    s % 60,
                    i % 8
                );
            }
        }
    }
    let ep = dir.path().join("employees.csv");
    let pp = dir.path().join("punches.csv");
    std::fs::write(&ep, emp).unwrap();
    std::fs::write(&pp, &pun).unwrap();
    let rows = pun.lines().count() - 1;
    let policy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/policies/seed-default.toml"
    );
    let from = dates[0].to_string();
    let to = dates.last().unwrap().to_string();
    for json in [true, false] {
        let mut best = Duration::MAX;
        let mut peak = 0;
        for _ in 0..3 {
            let t = Instant::now();
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_attendd"));
            cmd.args(["evaluate", "--policy", policy, "--employees"])
                .arg(&ep)
                .arg("--punches")
                .arg(&pp)
                .args(["--from", &from, "--to", &to, "--scores"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if json {
                cmd.arg("--json");
            }
            let mut child = cmd.spawn().unwrap();
            let pid = child.id();
            let mut hwm = 0u64;
            loop {
                if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
                    && let Some(v) = s
                        .lines()
                        .find(|l| l.starts_with("VmHWM:"))
                        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                {
                    hwm = hwm.max(v);
                }
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(status.success());
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            best = best.min(t.elapsed());
            peak = peak.max(hwm);
        }
        println!(
            "attendd evaluate{} end to end: {} employees × {} days ({} punch rows) in {:.3} s (best of 3) = {:.0} employee-days/s; peak RSS {} MiB",
            if json {
                " --json --scores"
            } else {
                " --scores (table)"
            },
            EMPLOYEES,
            DAYS,
            rows,
            best.as_secs_f64(),
            (EMPLOYEES * DAYS as usize) as f64 / best.as_secs_f64(),
            peak / 1024
        );
    }
    std::io::stdout().flush().unwrap();
}

fn main() {
    // `cargo test --benches` passes --bench-less args; run only under `cargo bench`.
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    if let Some(n) = std::env::var("ENGINE_BENCH_EMPLOYEES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        engine_alone(n, 1);
        return;
    }
    engine_alone(EMPLOYEES, 4);
    end_to_end();
}
