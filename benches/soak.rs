//! A simulated site for a compressed day, against the real binary on
//! SQLite: does the daemon's memory and descriptor count stay flat?
//!
//! `cargo bench --bench soak` imports 2,000 employees rostered over every
//! shift of `config/policies/city-management-24h.toml` (morning, midday,
//! afternoon and the overnight shift, which also ran the night before),
//! starts `attendd run` on a test clock (`ATTENDD_FAULT_CLOCK`, SPEED times
//! the wall clock; default 600, `SOAK_SPEED`) and plays the site's punches
//! at their simulated times from 100 terminals: 60 publishing JSON on
//! Mosquitto (`TEST_MQTT_URL`, default mqtt://127.0.0.1:1883; skipped with
//! a message when it is unreachable) and 40 ZKTeco ADMS terminals pushing
//! over HTTP. About 5 % arrive late, 3 % leave early, 2 % do not come (the
//! absence alerts go to a webhook on 127.0.0.1), one MQTT terminal is off
//! the network for two hours and one ZK terminal for three (their backlogs
//! arrive afterwards, the ZK one after yesterday's day close, so that day
//! is revised), 1 % of MQTT messages arrive twice and 2 % of ZK uploads are
//! re-sent (a lost `OK`).
//!
//! Simulated time runs from 06:00 of day 1 to 09:30 of day 2: the 24 hours
//! plus the end of the night shift and the day close after it (day 0 closes
//! at 09:00 of day 1, day 1 at 09:00 of day 2). Every simulated hour it
//! samples the daemon's VmRSS, its open descriptors (/proc/PID/fd) and the
//! store's size (database, WAL and shared memory). It prints them, the
//! slowest day close (the daemon logs each close with its duration) and the
//! messages delivered, and exits 1 when RSS grows more than 10 % between
//! simulated hour 2 and hour 24, when descriptors grow, when fewer than two
//! days closed or when no absence alert was delivered. The daemon runs with
//! the allocator settings of deploy/attendd.service (its `Environment=MALLOC_…`
//! lines), as at a site.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use rumqttc::{AsyncClient, MqttOptions, QoS};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");
const EMPLOYEES: usize = 2_000;
const MQTT_TERMINALS: usize = 60;
const ZK_TERMINALS: usize = 40;
const TERMINALS: usize = MQTT_TERMINALS + ZK_TERMINALS;
/// Simulated hours from 06:00 of day 1 (to 09:30 of day 2).
const SIM_HOURS: f64 = 27.5;
/// The MQTT terminal off the network 09:00–11:00 of day 1.
const MQTT_OFFLINE: usize = 7;
/// The ZK terminal off the network 07:30–10:30 of day 1.
const ZK_OFFLINE: usize = MQTT_TERMINALS + 5;

const TZ: chrono_tz::Tz = chrono_tz::Asia::Shanghai;

/// An hour and minute.
type Hm = (u32, u32);

/// (id, start, end) of the policy's shifts; the night one ends next day.
const SHIFTS: [(&str, Hm, Hm); 4] = [
    ("morning", (8, 0), (12, 0)),
    ("midday", (12, 0), (14, 30)),
    ("afternoon", (14, 30), (18, 0)),
    ("night", (18, 0), (8, 0)),
];

fn broker() -> (String, u16) {
    let url = std::env::var("TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into());
    let rest = url.trim_start_matches("mqtt://").trim_end_matches('/');
    let (h, p) = rest.rsplit_once(':').unwrap_or((rest, "1883"));
    (h.to_string(), p.parse().unwrap_or(1883))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The allocator settings the systemd unit gives the daemon
/// (`Environment=MALLOC_…` lines of deploy/attendd.service), so that the
/// soak runs it as a site does; `SOAK_UNIT_ENV=0` leaves them out.
fn unit_malloc_env() -> Vec<(String, String)> {
    if std::env::var("SOAK_UNIT_ENV").is_ok_and(|v| v == "0") {
        println!("soak: without the unit's MALLOC_ settings");
        return Vec::new();
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/attendd.service"
    ))
    .unwrap();
    let vars: Vec<(String, String)> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| k.starts_with("MALLOC_"))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let shown: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("soak: the unit's allocator settings: {}", shown.join(" "));
    vars
}

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A stable pseudo-random number per (employee, salt).
fn mix(i: usize, salt: u64) -> u64 {
    let mut x =
        (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 29)
}

fn emp_id(i: usize) -> String {
    format!("{}", 10_001 + i)
}

/// Employee `i`'s shift: 25 % morning, 20 % midday, 25 % afternoon, 30 % night.
fn shift_of(i: usize) -> usize {
    match i % 20 {
        0..=4 => 0,
        5..=8 => 1,
        9..=13 => 2,
        _ => 3,
    }
}

fn local(d: NaiveDate, (h, m): Hm) -> DateTime<Utc> {
    TZ.from_local_datetime(&d.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap()))
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// One punch: when the terminal delivers it, its time, who, where, in or out.
#[derive(Clone, Debug)]
struct Punch {
    deliver: DateTime<Utc>,
    at: DateTime<Utc>,
    emp: usize,
    terminal: usize,
    out: bool,
}

/// Every punch of the simulated site, ordered by delivery; and how many
/// people are absent on day 1 (no punch at all).
fn site(day0: NaiveDate, start: DateTime<Utc>) -> (Vec<Punch>, usize) {
    let day1 = day0 + Days::new(1);
    let mut punches = Vec::new();
    let mut absent = 0;
    for i in 0..EMPLOYEES {
        let s = shift_of(i);
        let terminal = i % TERMINALS;
        // Day 0: the night shift only (its end falls on day 1); day 1: everyone.
        let mut dates = vec![(day1, 1u64)];
        if s == 3 {
            dates.insert(0, (day0, 0));
        }
        for (date, salt) in dates {
            let r = mix(i, salt);
            if salt == 1 && r.is_multiple_of(50) {
                absent += 1;
                continue;
            }
            let (_, st, en) = SHIFTS[s];
            let begin = local(date, st);
            let end_date = if s == 3 { date + Days::new(1) } else { date };
            let end = local(end_date, en);
            let r2 = r >> 8;
            let arrive = if r2 % 20 == 1 {
                begin + chrono::Duration::seconds(60 + (r2 >> 8) as i64 % 2_400)
            } else {
                begin - chrono::Duration::seconds(60 + (r2 >> 8) as i64 % 900)
            };
            let r3 = r >> 24;
            let leave = if r3 % 33 == 2 {
                end - chrono::Duration::seconds(60 + (r3 >> 8) as i64 % 1_800)
            } else {
                end + chrono::Duration::seconds((r3 >> 8) as i64 % 1_200)
            };
            for (at, out) in [(arrive, false), (leave, true)] {
                let mut deliver = at.max(start);
                let lt = at.with_timezone(&TZ).naive_local();
                let hm = |h, m| day1.and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap());
                if terminal == MQTT_OFFLINE && lt >= hm(9, 0) && lt < hm(11, 0) {
                    deliver = local(day1, (11, 0));
                }
                if terminal == ZK_OFFLINE && lt >= hm(7, 30) && lt < hm(10, 30) {
                    deliver = local(day1, (10, 30));
                }
                punches.push(Punch {
                    deliver,
                    at,
                    emp: i,
                    terminal,
                    out,
                });
            }
        }
    }
    punches.sort_by_key(|p| (p.deliver, p.at));
    (punches, absent)
}

fn write_inputs(
    dir: &std::path::Path,
    day0: NaiveDate,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let day1 = day0 + Days::new(1);
    let mut emps = String::from("employee_id,name,team,supervisor\n");
    let mut roster = String::from("employee_id,date,shift\n");
    for i in 0..EMPLOYEES {
        let team = format!("T{:02}", i / 100);
        emps.push_str(&format!("{},Agent {i},{team},lead-{team}\n", emp_id(i)));
        let s = SHIFTS[shift_of(i)].0;
        if shift_of(i) == 3 {
            roster.push_str(&format!("{},{day0},{s}\n", emp_id(i)));
        }
        roster.push_str(&format!("{},{day1},{s}\n", emp_id(i)));
    }
    let (e, r) = (dir.join("employees.csv"), dir.join("roster.csv"));
    std::fs::write(&e, emps).unwrap();
    std::fs::write(&r, roster).unwrap();
    (e, r)
}

/// One request with `Connection: close`; (status, body).
fn request(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
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
    format!("SOAK{t:06}")
}

/// A ZK terminal: shakes hands, then uploads each batch it is handed until
/// acknowledged; `true` with a batch sends it twice (the first `OK` lost).
fn zk_terminal(port: u16, t: usize, rx: mpsc::Receiver<(Vec<u8>, usize, bool)>) {
    let sn = sn(t);
    let path = format!("/iclock/cdata?SN={sn}&options=all");
    let mut tries = 0;
    while !request(port, "GET", &path, b"").is_ok_and(|r| r.0 == 200) {
        tries += 1;
        assert!(tries < 100, "{sn}: handshake refused");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut stamp = 0;
    while let Ok((body, lines, twice)) = rx.recv() {
        stamp += lines;
        let path = format!("/iclock/cdata?SN={sn}&table=ATTLOG&Stamp={stamp}");
        let want = format!("OK:{lines}");
        for _ in 0..if twice { 2 } else { 1 } {
            let mut attempt = 0;
            loop {
                match request(port, "POST", &path, &body) {
                    Ok((200, b)) if b == want => break,
                    other => {
                        attempt += 1;
                        assert!(attempt < 50, "{sn}: upload never acknowledged: {other:?}");
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            }
        }
    }
}

/// What the webhook received, by message kind; summaries by date.
#[derive(Default)]
struct Received {
    kinds: BTreeMap<String, usize>,
    summaries: Vec<String>,
}

/// A webhook receiver on 127.0.0.1: answers 200 to every POST, keeps
/// connections open.
fn webhook() -> (u16, Arc<Mutex<Received>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Received::default()));
    let g = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().flatten() {
            let g = g.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end();
                        if l.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = l.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) {
                        let kind = v["kind"].as_str().unwrap_or("?").to_string();
                        let mut g = g.lock().unwrap();
                        if kind == "summary" {
                            g.summaries
                                .push(v["id"].as_str().unwrap_or("?").to_string());
                        }
                        *g.kinds.entry(kind).or_default() += 1;
                    }
                    if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (port, got)
}

/// One hourly sample of the daemon.
#[derive(Clone, Copy, Debug)]
struct Sample {
    rss_kib: u64,
    fds: usize,
    store_bytes: u64,
}

fn sample(pid: u32, db: &std::path::Path) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
    let store_bytes = ["", "-wal", "-shm"]
        .iter()
        .filter_map(|s| std::fs::metadata(format!("{}{s}", db.display())).ok())
        .map(|m| m.len())
        .sum();
    Sample {
        rss_kib,
        fds,
        store_bytes,
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / 1024.0 / 1024.0
}

/// The day closes the daemon logged: (date, seconds).
fn closes(log: &std::path::Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|l| l.contains("day closed"))
        .filter_map(|l| {
            // Text logs may carry ANSI colours around field names.
            let plain: String = {
                let mut out = String::new();
                let mut esc = false;
                for c in l.chars() {
                    match (esc, c) {
                        (false, '\u{1b}') => esc = true,
                        (true, 'm') => esc = false,
                        (true, _) => {}
                        (false, c) => out.push(c),
                    }
                }
                out
            };
            let field = |k: &str| {
                let rest = &plain[plain.find(&format!("{k}="))? + k.len() + 1..];
                Some(rest.split_whitespace().next()?.to_string())
            };
            Some((field("date")?, field("seconds")?.parse().ok()?))
        })
        .collect()
}

fn mqtt_payload(p: &Punch, seq: usize) -> Vec<u8> {
    format!(
        "{{\"employee_id\":\"{}\",\"time\":\"{}\",\"device_id\":\"mq-{:02}\",\"event_id\":\"{seq}\"}}",
        emp_id(p.emp),
        p.at.with_timezone(&TZ).format("%Y-%m-%d %H:%M:%S"),
        p.terminal
    )
    .into_bytes()
}

fn zk_line(p: &Punch) -> String {
    format!(
        "{}\t{}\t{}\t15\t0\t0\t0\n",
        emp_id(p.emp),
        p.at.with_timezone(&TZ).format("%Y-%m-%d %H:%M:%S"),
        u8::from(p.out)
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().any(|a| a == "--test") {
        return;
    }
    let speed: f64 = std::env::var("SOAK_SPEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &f64| *s >= 1.0 && *s <= 10_000.0)
        .unwrap_or(600.0);
    let (bh, bp) = broker();
    if TcpStream::connect((bh.as_str(), bp)).is_err() {
        println!("skipping soak benchmark: no MQTT broker at {bh}:{bp} (set TEST_MQTT_URL)");
        return;
    }

    // Day 1 is tomorrow in the site's zone: the imports (stamped with the
    // wall clock) come before anything the simulated day decides.
    let day1 = Utc::now().with_timezone(&TZ).date_naive() + Days::new(1);
    let day0 = day1 - Days::new(1);
    let start = local(day1, (6, 0));
    let end = start + chrono::Duration::seconds((SIM_HOURS * 3600.0) as i64);
    let (punches, absent) = site(day0, start);

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("attendd.db");
    let (http, zk) = (free_port(), free_port());
    let (hook, received) = webhook();
    let tag = format!("{}-{}", std::process::id(), Utc::now().timestamp_millis());
    let prefix = format!("soak{tag}");
    let policy = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/policies/city-management-24h.toml");
    // `SOAK_SQLITE_CACHE_MIB` runs the daemon with another SQLite page
    // cache per connection (default the daemon's, 64 MiB).
    let cache_mib: u32 = std::env::var("SOAK_SQLITE_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(attendd::store::DEFAULT_SQLITE_CACHE_MIB);
    println!("soak: SQLite page cache {cache_mib} MiB per connection");
    let mut cfg = format!(
        "[policy]\nfile = {:?}\n\n[store]\nurl = \"sqlite://{}\"\nsqlite_cache_mib = {cache_mib}\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n\
         [ingest]\nclassify_from = \"{day0}\"\nrecompute_interval_seconds = 2\n\n\
         [schedule]\ntick_seconds = 300\n\n\
         [[sink]]\nname = \"hr-hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook}/attendance\"\n\n\
         [[source.mqtt]]\nbroker = \"mqtt://{bh}:{bp}\"\ntopics = [\"{prefix}/+/punch\"]\ndecoder = \"json\"\n\
         client_id = \"attendd-soak-{tag}\"\n\n\
         [[source.zk_push]]\nlisten = \"127.0.0.1:{zk}\"\n",
        policy.display().to_string(),
        db.display()
    );
    for t in MQTT_TERMINALS..TERMINALS {
        cfg.push_str(&format!(
            "[[source.zk_push.terminals]]\nsn = \"{}\"\ntimezone = \"Asia/Shanghai\"\n",
            sn(t)
        ));
    }
    let config = dir.path().join("attendd.toml");
    std::fs::write(&config, cfg).unwrap();
    let (emps, roster) = write_inputs(dir.path(), day0);
    for (what, file) in [("employees", &emps), ("roster", &roster)] {
        let out = Command::new(BIN)
            .args(["import", what])
            .arg(file)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "import {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    println!(
        "soak: {EMPLOYEES} employees over the 4 shifts of city-management-24h, {MQTT_TERMINALS} MQTT + \
         {ZK_TERMINALS} ZK push terminals, {} punches, {absent} absent; simulated {} 06:00 to {} 09:30 \
         (Asia/Shanghai) at {speed:.0}x (about {:.0} s)",
        punches.len(),
        day1,
        day1 + Days::new(1),
        SIM_HOURS * 3600.0 / speed
    );

    let log_path = dir.path().join("run.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let daemon = Daemon(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env(
                "ATTENDD_FAULT_CLOCK",
                format!("{},{speed}", start.to_rfc3339()),
            )
            .env("RUST_LOG", "warn,attendd::scheduler=info")
            .envs(unit_malloc_env())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let pid = daemon.0.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !request(http, "GET", "/healthz", b"").is_ok_and(|r| r.0 == 200) {
        assert!(Instant::now() < deadline, "daemon did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The daemon's clock started before it answered: ours, started now,
    // runs slightly behind it, so no punch is from its future.
    let epoch = Instant::now();
    let sim_now = || {
        start
            + chrono::Duration::milliseconds(
                (epoch.elapsed().as_secs_f64() * speed * 1000.0) as i64,
            )
    };

    let mut mqtt = Vec::with_capacity(MQTT_TERMINALS);
    for t in 0..MQTT_TERMINALS {
        let mut o = MqttOptions::new(format!("soak-mq-{t:02}-{tag}"), bh.as_str(), bp);
        o.set_keep_alive(Duration::from_secs(30));
        let (c, mut el) = AsyncClient::new(o, 1_000);
        tokio::spawn(async move { while el.poll().await.is_ok() {} });
        mqtt.push(c);
    }
    let zk_tx: Vec<mpsc::Sender<(Vec<u8>, usize, bool)>> = (MQTT_TERMINALS..TERMINALS)
        .map(|t| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || zk_terminal(zk, t, rx));
            tx
        })
        .collect();

    let mut samples: BTreeMap<u32, Sample> = BTreeMap::new();
    samples.insert(0, sample(pid, &db));
    let mut next = 0usize;
    let mut seq = 0usize;
    let mut uploads = 0usize;
    let mut resent = 0usize;
    let mut twice = 0usize;
    let wall_limit = Instant::now() + Duration::from_secs_f64(SIM_HOURS * 3600.0 / speed + 600.0);
    loop {
        let now = sim_now();
        // Due punches: MQTT ones published one by one, ZK ones as one
        // upload per terminal.
        let mut zk_batch: HashMap<usize, Vec<&Punch>> = HashMap::new();
        while next < punches.len() && punches[next].deliver <= now {
            let p = &punches[next];
            next += 1;
            if p.terminal < MQTT_TERMINALS {
                seq += 1;
                let topic = format!("{prefix}/mq-{:02}/punch", p.terminal);
                let copies = if mix(seq, 7).is_multiple_of(100) {
                    2
                } else {
                    1
                };
                twice += copies - 1;
                for _ in 0..copies {
                    mqtt[p.terminal]
                        .publish(&topic, QoS::AtLeastOnce, false, mqtt_payload(p, seq))
                        .await
                        .unwrap();
                }
            } else {
                zk_batch.entry(p.terminal).or_default().push(p);
            }
        }
        for (t, ps) in zk_batch {
            uploads += 1;
            let again = mix(uploads, 11).is_multiple_of(50);
            resent += usize::from(again);
            let body: String = ps.iter().map(|p| zk_line(p)).collect();
            let _ = zk_tx[t - MQTT_TERMINALS].send((body.into_bytes(), ps.len(), again));
        }
        let hour = ((now - start).num_seconds() / 3600) as u32;
        if let std::collections::btree_map::Entry::Vacant(e) = samples.entry(hour) {
            let s = sample(pid, &db);
            println!(
                "soak: hour {hour:2}: RSS {:.1} MiB, {} fds, store {:.1} MiB",
                s.rss_kib as f64 / 1024.0,
                s.fds,
                mib(s.store_bytes)
            );
            e.insert(s);
        }
        let closed = closes(&log_path);
        if now >= end && closed.iter().any(|(d, _)| *d == day1.to_string()) {
            break;
        }
        if Instant::now() > wall_limit {
            println!("soak: day {day1} did not close by simulated {now}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Outbox delivery runs every second.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let last = sample(pid, &db);
    drop(zk_tx);
    drop(daemon);

    let first = samples[&0];
    let h2 = samples.get(&2).copied().unwrap_or(first);
    let h24 = samples.get(&24).copied().unwrap_or(last);
    let growth = (h24.rss_kib as f64 / h2.rss_kib.max(1) as f64 - 1.0) * 100.0;
    println!(
        "soak: RSS at start {:.1} MiB, at hour 2 {:.1} MiB, at hour 24 {:.1} MiB ({growth:+.1} %), at the end {:.1} MiB",
        first.rss_kib as f64 / 1024.0,
        h2.rss_kib as f64 / 1024.0,
        h24.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0
    );
    let fd_max_early = samples
        .range(1..=2)
        .map(|(_, s)| s.fds)
        .max()
        .unwrap_or(first.fds);
    println!(
        "soak: open fds at start {}, at hour 2 {}, at hour 24 {}, at the end {}",
        first.fds, h2.fds, h24.fds, last.fds
    );
    println!(
        "soak: store {:.1} MiB at start, {:.1} MiB at hour 24, {:.1} MiB at the end",
        mib(first.store_bytes),
        mib(h24.store_bytes),
        mib(last.store_bytes)
    );
    let closed = closes(&log_path);
    let slowest = closed
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned()
        .unwrap_or_default();
    println!(
        "soak: {} day closes, slowest day close {:.2} s ({})",
        closed.len(),
        slowest.1,
        slowest.0
    );
    let got = received.lock().unwrap();
    let kinds: Vec<String> = got.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "soak: webhook received {} ({absent} absent on {day1}); summaries {:?}; \
         {twice} MQTT messages sent twice, {resent} of {uploads} ZK uploads re-sent",
        kinds.join(", "),
        got.summaries
    );

    let mut failed = Vec::new();
    if growth > 10.0 {
        failed.push(format!(
            "RSS grew {growth:.1} % between simulated hour 2 and hour 24 (limit 10 %)"
        ));
    }
    if h24.fds > fd_max_early {
        failed.push(format!(
            "open descriptors grew from {fd_max_early} (hours 1-2) to {} (hour 24)",
            h24.fds
        ));
    }
    if closed.len() < 2 {
        failed.push(format!("{} day closes, expected 2", closed.len()));
    }
    if got.kinds.get("absence").copied().unwrap_or(0) == 0 {
        failed.push("no absence alert delivered".into());
    }
    if !failed.is_empty() {
        for f in failed {
            println!("soak: FAILED: {f}");
        }
        std::process::exit(1);
    }
}
