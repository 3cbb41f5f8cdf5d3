//! Pull sources against the real binary: a test plays terminals that only
//! answer when asked (emulators in `pull_emu.rs`, built after real
//! exchanges named there) and checks the store, `/healthz` and `/metrics`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::{Guard, free_port, http_get};
use crate::pull_emu::{HikEmu, HikEvent, HikState, hik_history};
use attendd::store::{Store, StoredPunch};
use chrono::{DateTime, Utc};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");
const HIK_SERIAL: &str = "DS-K1T671M20230811V030200ENAB1234567";
const PASSWORD_ENV: &str = "ATTENDD_TEST_HIK_PASSWORD";

struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
    http: u16,
    starts: usize,
}

impl Site {
    fn new(sources: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let http = free_port();
        let policy = crate::common::root().join("config/policies/seed-default.toml");
        let db = dir.path().join("attendd.db");
        let text = format!(
            "[policy]\nfile = {policy:?}\n\n[store]\nurl = \"sqlite://{db}\"\n\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\n{sources}",
            policy = policy.display().to_string(),
            db = db.display(),
        );
        let config = dir.path().join("attendd.toml");
        std::fs::write(&config, text).unwrap();
        Site {
            dir,
            config,
            db,
            http,
            starts: 0,
        }
    }

    fn hik(port: u16, extra: &str) -> Site {
        Site::new(&format!(
            "[[source.hik_pull]]\nurl = \"http://127.0.0.1:{port}\"\nusername = \"admin\"\n\
             password_env = \"{PASSWORD_ENV}\"\ntimezone = \"Asia/Shanghai\"\npage_size = 10\n\
             retry_min_ms = 200\nidle_seconds = 5\n{extra}"
        ))
    }

    /// Starts `attendd run` and waits until its HTTP server answers.
    fn start(&mut self, password: &str) -> Guard {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--config"])
            .arg(&self.config)
            .env(PASSWORD_ENV, password)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let mut g = Guard(Some(cmd.spawn().unwrap()));
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(self.http, "/healthz").is_none() {
            assert!(g.running(), "daemon exited early:\n{}", self.logs());
            assert!(
                Instant::now() < deadline,
                "no HTTP within 30 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        g
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("run-{n}.log"))
    }

    fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| std::fs::read_to_string(self.log_path(i)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    }

    fn punches(&self) -> Vec<StoredPunch> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = Store::open(&format!("sqlite://{}", self.db.display()))
                .await
                .unwrap();
            let from = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&Utc);
            let out = s
                .punches(from, from + chrono::Duration::days(365 * 100), None)
                .await
                .unwrap();
            s.close().await;
            out
        })
    }

    /// Waits until the store holds `n` punches (and no more appear soon).
    fn wait_punches(&self, n: usize, within: Duration) -> Vec<StoredPunch> {
        let deadline = Instant::now() + within;
        loop {
            let p = self.punches();
            if p.len() >= n {
                std::thread::sleep(Duration::from_millis(300));
                return self.punches();
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} punches after {within:?}:\n{}",
                p.len(),
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn get(&self, path: &str) -> String {
        http_get(self.http, path).map(|r| r.1).unwrap_or_default()
    }
}

/// Every punch is one of `expected` (by employee and time), once.
fn assert_exactly(punches: &[StoredPunch], expected: &[HikEvent]) {
    let pass: Vec<&HikEvent> = expected.iter().filter(|e| e.minor == 75).collect();
    let mut got: Vec<(String, DateTime<Utc>)> = punches
        .iter()
        .map(|p| (p.employee_id.clone(), p.time))
        .collect();
    got.sort();
    let mut want: Vec<(String, DateTime<Utc>)> = pass
        .iter()
        .map(|e| {
            (
                e.employee.clone(),
                DateTime::parse_from_rfc3339(&e.time)
                    .unwrap()
                    .with_timezone(&Utc),
            )
        })
        .collect();
    want.sort();
    assert_eq!(got, want);
}

fn hik_state(log: Vec<HikEvent>) -> HikState {
    HikState {
        serial: HIK_SERIAL.into(),
        password: "gate-s3cret".into(),
        log,
        ..HikState::default()
    }
}

#[test]
fn hik_pull_catches_up_history_then_follows_live_events() {
    let history = hik_history(1000, "2026-11-02T08:00:00+08:00", 25);
    let emu = HikEmu::start(hik_state(history.clone()));
    let mut site = Site::hik(emu.port, "");
    let _d = site.start("gate-s3cret");
    // 25 face passes over 50 events, in pages of 10: five MORE pages.
    let p = site.wait_punches(25, Duration::from_secs(30));
    assert_exactly(&p, &history);
    assert!(p.iter().all(|p| p.device_id.as_deref() == Some(HIK_SERIAL)));
    assert!(emu.searches.load(std::sync::atomic::Ordering::SeqCst) >= 5);
    // Live events arrive over the alertStream.
    let deadline = Instant::now() + Duration::from_secs(20);
    while emu.streams.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "{}", site.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let searches_before = emu.searches.load(std::sync::atomic::Ordering::SeqCst);
    let live = [
        HikEvent {
            serial_no: 1050,
            minor: 75,
            time: "2026-11-02T17:31:02+08:00".into(),
            employee: "E007".into(),
        },
        HikEvent {
            serial_no: 1051,
            minor: 75,
            time: "2026-11-02T17:32:40+08:00".into(),
            employee: "E008".into(),
        },
    ];
    for e in &live {
        emu.punch(e.clone());
    }
    let p = site.wait_punches(27, Duration::from_secs(20));
    let mut all = history.clone();
    all.extend(live.iter().cloned());
    assert_exactly(&p, &all);
    // Consecutive serial numbers: no catch-up was needed.
    assert_eq!(
        emu.searches.load(std::sync::atomic::Ordering::SeqCst),
        searches_before
    );
    let health = site.get("/healthz");
    assert!(health.contains("hik_pull[0]"), "{health}");
    assert!(health.contains(HIK_SERIAL), "{health}");
    let metrics = site.get("/metrics");
    assert!(
        metrics.contains("attendd_pull_up{source=\"hik_pull[0]\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("attendd_pull_records_total{path=\"live\",source=\"hik_pull[0]\"} 2")
            || metrics
                .contains("attendd_pull_records_total{source=\"hik_pull[0]\",path=\"live\"} 2"),
        "{metrics}"
    );
}

#[test]
fn hik_pull_fills_a_serial_gap_and_a_stream_cut_mid_part() {
    let history = hik_history(1, "2026-11-02T08:00:00+08:00", 3);
    let emu = HikEmu::start(hik_state(history.clone()));
    let mut site = Site::hik(emu.port, "");
    let _d = site.start("gate-s3cret");
    site.wait_punches(3, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    while emu.streams.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "{}", site.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut all = history.clone();
    // A stream cut in the middle of a part: the half part is not a punch;
    // the reconnect's catch-up reads the event from the log.
    let cut = HikEvent {
        serial_no: 7,
        minor: 75,
        time: "2026-11-02T09:00:00+08:00".into(),
        employee: "E020".into(),
    };
    emu.state.lock().unwrap().cut_next = true;
    emu.punch(cut.clone());
    all.push(cut);
    let p = site.wait_punches(4, Duration::from_secs(20));
    assert_exactly(&p, &all);
    assert!(emu.streams.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    // Events the stream never carried (the push was lost): the next live
    // event's serialNo shows the gap, and the search fills it.
    let missed = [
        HikEvent {
            serial_no: 8,
            minor: 75,
            time: "2026-11-02T09:10:00+08:00".into(),
            employee: "E021".into(),
        },
        HikEvent {
            serial_no: 9,
            minor: 75,
            time: "2026-11-02T09:11:00+08:00".into(),
            employee: "E022".into(),
        },
    ];
    emu.state.lock().unwrap().stream_silent = true;
    for e in &missed {
        emu.punch(e.clone());
        all.push(e.clone());
    }
    emu.state.lock().unwrap().stream_silent = false;
    let next = HikEvent {
        serial_no: 10,
        minor: 75,
        time: "2026-11-02T09:12:00+08:00".into(),
        employee: "E023".into(),
    };
    emu.punch(next.clone());
    all.push(next);
    let p = site.wait_punches(7, Duration::from_secs(20));
    assert_exactly(&p, &all);
}

/// The live event that shows a gap is stored even when the device's
/// search does not list it yet (its index lags the stream).
#[test]
fn hik_live_event_that_shows_a_gap_is_stored_when_the_search_lags() {
    let history = hik_history(1, "2026-11-02T08:00:00+08:00", 2);
    let emu = HikEmu::start(hik_state(history.clone()));
    let mut site = Site::hik(emu.port, "");
    let _d = site.start("gate-s3cret");
    site.wait_punches(2, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    while emu.streams.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "{}", site.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut all = history.clone();
    let missed = HikEvent {
        serial_no: 5,
        minor: 75,
        time: "2026-11-02T09:10:00+08:00".into(),
        employee: "E021".into(),
    };
    emu.state.lock().unwrap().stream_silent = true;
    emu.punch(missed.clone());
    all.push(missed);
    {
        let mut s = emu.state.lock().unwrap();
        s.stream_silent = false;
        s.search_lag = 1;
    }
    let live = HikEvent {
        serial_no: 6,
        minor: 75,
        time: "2026-11-02T09:12:00+08:00".into(),
        employee: "E023".into(),
    };
    emu.punch(live.clone());
    all.push(live);
    let p = site.wait_punches(4, Duration::from_secs(20));
    assert_exactly(&p, &all);
}

#[test]
fn hik_pull_survives_a_device_that_restarts_its_numbering() {
    let history = hik_history(1, "2026-11-02T08:00:00+08:00", 4);
    let emu = HikEmu::start(hik_state(history.clone()));
    let mut site = Site::hik(emu.port, "");
    let mut d = site.start("gate-s3cret");
    site.wait_punches(4, Duration::from_secs(30));
    d.kill();
    // The terminal is reset: log cleared, numbering from 1 again, while
    // attendd is down.
    let after = hik_history(1, "2026-11-03T08:00:00+08:00", 3);
    emu.state.lock().unwrap().log = after.clone();
    let _d = site.start("gate-s3cret");
    let p = site.wait_punches(7, Duration::from_secs(30));
    let mut all = history.clone();
    all.extend(after.iter().cloned());
    assert_exactly(&p, &all);
    // Serial numbers 1, 3, 5 were read again after the reset, for other
    // events: none taken for a duplicate, nothing stalled.
    let live = HikEvent {
        serial_no: 7,
        minor: 75,
        time: "2026-11-03T09:00:00+08:00".into(),
        employee: "E030".into(),
    };
    emu.punch(live.clone());
    all.push(live);
    let p = site.wait_punches(8, Duration::from_secs(20));
    assert_exactly(&p, &all);
}

#[test]
fn hik_pull_wrong_password_names_the_source_and_backs_off() {
    let emu = HikEmu::start(hik_state(hik_history(1, "2026-11-02T08:00:00+08:00", 2)));
    let mut site = Site::hik(emu.port, "");
    let mut d = site.start("not-the-password");
    std::thread::sleep(Duration::from_secs(4));
    let refused = emu.unauthorized.load(std::sync::atomic::Ordering::SeqCst);
    // Backoff from 200 ms doubling: 200+400+800+1600 ms fit in 4 s, so a
    // handful of attempts, not a tight loop.
    assert!((1..=8).contains(&refused), "{refused} refused attempts");
    let (code, health) = http_get(site.http, "/healthz").unwrap();
    assert_eq!(code, 503, "{health}");
    assert!(health.contains("hik_pull[0]"), "{health}");
    assert!(health.contains("wrong username or password"), "{health}");
    assert!(site.punches().is_empty());
    let metrics = site.get("/metrics");
    assert!(metrics.contains("attendd_pull_errors_total"), "{metrics}");
    d.kill();
    let logs = site.logs();
    assert!(
        logs.contains("hik_pull[0]") && logs.contains("wrong username or password"),
        "{logs}"
    );
    // With the right password it reads the log.
    let _d = site.start("gate-s3cret");
    site.wait_punches(2, Duration::from_secs(30));
}

#[test]
fn hik_pull_sigkill_during_catch_up_loses_and_doubles_nothing() {
    let history = hik_history(1, "2026-11-02T07:00:00+08:00", 150);
    let mut state = hik_state(history.clone());
    state.page_delay = Duration::from_millis(60);
    let emu = HikEmu::start(state);
    let mut site = Site::hik(emu.port, "");
    let mut d = site.start("gate-s3cret");
    // 300 events in pages of 10 at 60 ms a page: kill it part-way.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = site.punches().len();
        if n >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", site.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    d.kill();
    let part = site.punches().len();
    assert!(
        part < 150,
        "the kill came too late to test anything ({part})"
    );
    let _d = site.start("gate-s3cret");
    let p = site.wait_punches(150, Duration::from_secs(60));
    assert_exactly(&p, &history);
}

/// `POST /` of `body` as JSON to 127.0.0.1:`port`; the status code.
fn http_post_json(port: u16, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /ISAPI/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn hik_push_gap_asks_the_pull_of_the_same_terminal_to_fill_it() {
    let history = hik_history(1, "2026-11-02T08:00:00+08:00", 3);
    let emu = HikEmu::start(hik_state(history.clone()));
    let push = free_port();
    // The terminal posts in listening mode to attendd and is also read by
    // the pull; its events carry only the MAC, mapped to its serial number.
    let mut site = Site::hik(
        emu.port,
        &format!(
            "\n[[source.hik_http]]\nlisten = \"127.0.0.1:{push}\"\n\
             [source.hik_http.decoder_options.serial_numbers]\n\
             \"24:0F:9B:4E:AA:10\" = \"{HIK_SERIAL}\"\n"
        ),
    );
    let _d = site.start("gate-s3cret");
    site.wait_punches(3, Duration::from_secs(30));
    let deadline = Instant::now() + Duration::from_secs(20);
    while emu.streams.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "{}", site.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    // The pull's own stream carries nothing from here: only the push
    // listener hears live events, and only some of them.
    emu.state.lock().unwrap().stream_silent = true;
    let ev = |sn: i64, min: u32, emp: &str| HikEvent {
        serial_no: sn,
        minor: 75,
        time: format!("2026-11-02T09:{min:02}:00+08:00"),
        employee: emp.into(),
    };
    let mut all = history.clone();
    let first = ev(7, 0, "E020");
    emu.punch(first.clone());
    assert_eq!(http_post_json(push, &first.live().to_string()), 200);
    all.push(first);
    site.wait_punches(4, Duration::from_secs(20));
    // Two events the push never delivered (attendd's listener was
    // unreachable), then one it did: serialNo 7 → 10.
    for e in [ev(8, 1, "E021"), ev(9, 2, "E022")] {
        emu.punch(e.clone());
        all.push(e);
    }
    let last = ev(10, 3, "E023");
    emu.punch(last.clone());
    assert_eq!(http_post_json(push, &last.live().to_string()), 200);
    all.push(last);
    let p = site.wait_punches(7, Duration::from_secs(20));
    // Nothing doubled: the search re-reads 7 and 10 under the same device
    // id the pushes were stored with.
    std::thread::sleep(Duration::from_millis(700));
    let p2 = site.punches();
    assert_eq!(p.len(), p2.len(), "{}", site.logs());
    assert_exactly(&p2, &all);
    for x in &p2 {
        assert_eq!(x.device_id.as_deref(), Some(HIK_SERIAL), "{x:?}");
    }
    let by_source = |s: &str| p2.iter().filter(|x| x.source == s).count();
    assert_eq!(by_source("hik_http[0]"), 2, "{p2:?}");
    let logs = site.logs();
    assert!(logs.contains("push listener saw a serialNo gap"), "{logs}");
}

// --- ZKTeco 4370 ------------------------------------------------------------

use crate::pull_emu::{ZK_READ_ONLY, ZkEmu, ZkRec, ZkState, zk_history};

const ZK_SERIAL: &str = "CKJF203960712";

fn zk_site(port: u16, comm_key: u32, extra: &str) -> Site {
    Site::new(&format!(
        "[[source.zk_pull]]\naddress = \"127.0.0.1:{port}\"\ncomm_key = {comm_key}\n\
         timezone = \"Asia/Shanghai\"\npoll_seconds = 1\ntimeout_seconds = 3\nretry_min_ms = 200\n{extra}"
    ))
}

fn zk_state(log: Vec<ZkRec>, comm_key: u32) -> ZkState {
    ZkState {
        serial: ZK_SERIAL.into(),
        comm_key,
        log,
        tz: Some(chrono_tz::Asia::Shanghai),
        ..ZkState::default()
    }
}

/// Every punch is one of the records (PIN and local time), once.
fn assert_zk_exactly(punches: &[StoredPunch], log: &[ZkRec]) {
    use chrono::TimeZone;
    let mut got: Vec<(String, DateTime<Utc>)> = punches
        .iter()
        .map(|p| (p.employee_id.clone(), p.time))
        .collect();
    got.sort();
    let mut want: Vec<(String, DateTime<Utc>)> = log
        .iter()
        .map(|r| {
            (
                r.user_id.clone(),
                chrono_tz::Asia::Shanghai
                    .from_local_datetime(&r.time)
                    .unwrap()
                    .with_timezone(&Utc),
            )
        })
        .collect();
    want.sort();
    want.dedup();
    assert_eq!(got, want);
}

#[test]
fn zk_pull_reads_the_log_with_a_comm_key_then_only_new_records() {
    let history = zk_history("2026-11-02 08:00:00", 60);
    let emu = ZkEmu::start(zk_state(history.clone(), 123456), false);
    let mut site = zk_site(emu.port, 123456, "");
    let _d = site.start("");
    let p = site.wait_punches(60, Duration::from_secs(30));
    assert_zk_exactly(&p, &history);
    assert!(p.iter().all(|p| p.device_id.as_deref() == Some(ZK_SERIAL)));
    // Two records in the same second as the last one, and one later: the
    // cursor (time, how many carried it) takes exactly the new ones.
    let last = history.last().unwrap().time;
    let more = vec![
        ZkRec {
            user_id: "0100".into(),
            time: last,
            status: 0,
            punch: 1,
        },
        ZkRec {
            user_id: "0101".into(),
            time: last,
            status: 0,
            punch: 1,
        },
        ZkRec {
            user_id: "0102".into(),
            time: last + chrono::Duration::minutes(5),
            status: 1,
            punch: 1,
        },
    ];
    emu.state.lock().unwrap().log.extend(more.iter().cloned());
    let p = site.wait_punches(63, Duration::from_secs(20));
    let mut all = history.clone();
    all.extend(more);
    assert_zk_exactly(&p, &all);
    // Only reads: never disabled, cleared or written.
    let cmds = emu.state.lock().unwrap().commands.clone();
    assert!(
        cmds.iter().all(|c| ZK_READ_ONLY.contains(c)),
        "commands sent: {cmds:?}"
    );
    let health = site.get("/healthz");
    assert!(
        health.contains("zk_pull[0]") && health.contains(ZK_SERIAL),
        "{health}"
    );
    let metrics = site.get("/metrics");
    assert!(
        metrics.contains("attendd_pull_up{source=\"zk_pull[0]\"} 1"),
        "{metrics}"
    );
}

#[test]
fn zk_pull_survives_a_cleared_log_and_sigkill() {
    let history = zk_history("2026-11-02 08:00:00", 40);
    let emu = ZkEmu::start(zk_state(history.clone(), 0), false);
    let mut site = zk_site(emu.port, 0, "");
    let mut d = site.start("");
    site.wait_punches(40, Duration::from_secs(30));
    d.kill();
    // Cleared by an administrator while attendd was down (or by another
    // program); new records follow.
    let after = zk_history("2026-11-03 08:00:00", 5);
    emu.state.lock().unwrap().log = after.clone();
    let _d = site.start("");
    let p = site.wait_punches(45, Duration::from_secs(30));
    let mut all = history.clone();
    all.extend(after);
    assert_zk_exactly(&p, &all);
}

#[test]
fn zk_pull_wrong_comm_key_names_the_source_and_backs_off() {
    let emu = ZkEmu::start(zk_state(zk_history("2026-11-02 08:00:00", 3), 4321), false);
    let mut site = zk_site(emu.port, 1234, "");
    let _d = site.start("");
    std::thread::sleep(Duration::from_secs(4));
    let refused = emu.refused.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=8).contains(&refused), "{refused} refused attempts");
    let (code, health) = http_get(site.http, "/healthz").unwrap();
    assert_eq!(code, 503, "{health}");
    assert!(
        health.contains("zk_pull[0]") && health.contains("wrong communication password"),
        "{health}"
    );
    assert!(site.punches().is_empty());
}

#[test]
fn zk_pull_falls_back_to_udp_and_reports_a_clock_off() {
    let mut state = zk_state(zk_history("2026-11-02 08:00:00", 12), 0);
    state.clock_ahead_seconds = 300;
    let emu = ZkEmu::start(state, true);
    let mut site = zk_site(emu.port, 0, "");
    let _d = site.start("");
    let p = site.wait_punches(12, Duration::from_secs(30));
    assert_zk_exactly(&p, &zk_history("2026-11-02 08:00:00", 12));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = site.get("/healthz");
        if health.contains("s off") {
            break;
        }
        assert!(Instant::now() < deadline, "{health}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics = site.get("/metrics");
    let line = metrics
        .lines()
        .find(|l| l.starts_with("attendd_pull_clock_offset_seconds{"))
        .unwrap_or_else(|| panic!("{metrics}"));
    let off: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((295.0..=305.0).contains(&off), "{line}");
    assert!(site.logs().contains("clock is"), "{}", site.logs());
}

#[test]
fn terminal_users_lists_a_zk_terminal_and_writes_employees() {
    let mut state = zk_state(Vec::new(), 99);
    state.users = vec![
        ("0001".into(), "Leyla Aydin".into(), 820999),
        ("0217".into(), "Wang Fang".into(), 0),
    ];
    let emu = ZkEmu::start(state, false);
    let site = zk_site(emu.port, 99, "");
    let csv = site.dir.path().join("employees.csv");
    let out = crate::proc::attendd_ok(
        &site.config,
        &[
            "terminal",
            "users",
            "zk_pull[0]",
            "--json",
            "--write-employees",
            csv.to_str().unwrap(),
        ],
    );
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["user_id"], "0001");
    assert_eq!(rows[0]["card"], 820999);
    assert_eq!(rows[1]["name"], "Wang Fang");
    assert_eq!(rows[0]["device_id"], ZK_SERIAL);
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        text,
        "employee_id,name,team,supervisor,alias\n0001,Leyla Aydin,,,820999\n0217,Wang Fang,,,\n"
    );
    // Nothing but reads.
    let cmds = emu.state.lock().unwrap().commands.clone();
    assert!(cmds.iter().all(|c| ZK_READ_ONLY.contains(c)), "{cmds:?}");
    // An unknown source is a clear error.
    let o = Command::new(BIN)
        .args(["terminal", "users", "zk_pull[7]", "--config"])
        .arg(&site.config)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("zk_pull[7]"));
}

// --- Dahua ------------------------------------------------------------------

use crate::pull_emu::{DahuaEmu, DahuaRec, DahuaState, dahua_history};

const DAHUA_SERIAL: &str = "4L0AB12PAJ00123";

fn dahua_site(port: u16) -> Site {
    Site::new(&format!(
        "[[source.dahua_pull]]\nurl = \"http://127.0.0.1:{port}\"\nusername = \"admin\"\n\
         password_env = \"{PASSWORD_ENV}\"\ntimezone = \"Asia/Shanghai\"\npage_size = 20\n\
         retry_min_ms = 200\nheartbeat_seconds = 1\n"
    ))
}

fn assert_dahua_exactly(punches: &[StoredPunch], recs: &[DahuaRec]) {
    let mut got: Vec<(String, i64)> = punches
        .iter()
        .map(|p| (p.employee_id.clone(), p.time.timestamp()))
        .collect();
    got.sort();
    let mut want: Vec<(String, i64)> = recs
        .iter()
        .filter(|r| r.status == 1)
        .map(|r| (r.user.clone(), r.utc))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

const T0: i64 = 1_793_664_000; // 2026-11-02T00:00:00Z

#[test]
fn dahua_pull_catches_up_pages_then_live_and_fills_gaps() {
    let history = dahua_history(1, T0, 70); // 56 granted, in pages of 20
    let emu = DahuaEmu::start(DahuaState {
        serial: DAHUA_SERIAL.into(),
        password: "door-s3cret".into(),
        log: history.clone(),
        ..DahuaState::default()
    });
    let mut site = dahua_site(emu.port);
    let _d = site.start("door-s3cret");
    let p = site.wait_punches(56, Duration::from_secs(30));
    assert_dahua_exactly(&p, &history);
    assert!(
        p.iter()
            .all(|p| p.device_id.as_deref() == Some(DAHUA_SERIAL))
    );
    assert!(emu.finds.load(std::sync::atomic::Ordering::SeqCst) >= 4);
    let deadline = Instant::now() + Duration::from_secs(20);
    while emu.streams.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "{}", site.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut all = history.clone();
    // Live.
    let live = DahuaRec {
        rec_no: 71,
        utc: T0 + 86_400,
        user: "9".into(),
        status: 1,
    };
    emu.punch(live.clone());
    all.push(live);
    site.wait_punches(57, Duration::from_secs(20));
    // Two records the stream never carried, then one it did: the RecNo gap
    // is filled from recordFinder.
    emu.state.lock().unwrap().stream_silent = true;
    for (no, user) in [(72, "10"), (73, "11")] {
        let r = DahuaRec {
            rec_no: no,
            utc: T0 + 86_400 + 60 * (no - 71),
            user: user.into(),
            status: 1,
        };
        emu.punch(r.clone());
        all.push(r);
    }
    emu.state.lock().unwrap().stream_silent = false;
    let r = DahuaRec {
        rec_no: 74,
        utc: T0 + 86_400 + 300,
        user: "12".into(),
        status: 1,
    };
    emu.punch(r.clone());
    all.push(r);
    let p = site.wait_punches(60, Duration::from_secs(20));
    assert_dahua_exactly(&p, &all);
    let health = site.get("/healthz");
    assert!(
        health.contains("dahua_pull[0]") && health.contains(DAHUA_SERIAL),
        "{health}"
    );
}

#[test]
fn dahua_pull_cleared_log_wrong_password_and_sigkill() {
    let history = dahua_history(1, T0, 10);
    let emu = DahuaEmu::start(DahuaState {
        serial: DAHUA_SERIAL.into(),
        password: "door-s3cret".into(),
        log: history.clone(),
        ..DahuaState::default()
    });
    let mut site = dahua_site(emu.port);
    // Wrong password: named, backed off, nothing stored.
    let mut d = site.start("wrong");
    std::thread::sleep(Duration::from_secs(3));
    let refused = emu.unauthorized.load(std::sync::atomic::Ordering::SeqCst);
    assert!((1..=8).contains(&refused), "{refused}");
    let health = site.get("/healthz");
    assert!(
        health.contains("dahua_pull[0]") && health.contains("wrong username or password"),
        "{health}"
    );
    d.kill();
    let mut d = site.start("door-s3cret");
    site.wait_punches(8, Duration::from_secs(30));
    d.kill();
    // The log is cleared and numbering restarts while attendd is down: the
    // reused RecNo values are new records, not duplicates.
    let after = dahua_history(1, T0 + 86_400, 5);
    emu.state.lock().unwrap().log = after.clone();
    let _d = site.start("door-s3cret");
    let p = site.wait_punches(12, Duration::from_secs(30));
    let mut all = history.clone();
    all.extend(after);
    assert_dahua_exactly(&p, &all);
}

#[test]
fn dahua_pull_sigkill_during_catch_up_loses_and_doubles_nothing() {
    // 200 records (160 granted) in pages of 20 at 80 ms a page: SIGKILL
    // lands between two pages of one catch-up, not between phases. Three
    // records share each second, so page edges fall inside a second (the
    // next page re-reads that second).
    let history: Vec<DahuaRec> = dahua_history(1, T0, 200)
        .into_iter()
        .enumerate()
        .map(|(i, r)| DahuaRec {
            utc: T0 + (i / 3) as i64,
            ..r
        })
        .collect();
    let emu = DahuaEmu::start(DahuaState {
        serial: DAHUA_SERIAL.into(),
        password: "door-s3cret".into(),
        log: history.clone(),
        page_delay: Duration::from_millis(80),
        ..DahuaState::default()
    });
    let mut site = dahua_site(emu.port);
    let mut d = site.start("door-s3cret");
    let deadline = Instant::now() + Duration::from_secs(30);
    while site.punches().len() < 20 {
        assert!(Instant::now() < deadline, "{}", site.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    d.kill();
    let part = site.punches().len();
    assert!(
        part < 160,
        "the kill came too late to test anything ({part})"
    );
    assert!(emu.finds.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    assert_eq!(
        emu.streams.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the kill is meant to land during the catch-up"
    );
    let _d = site.start("door-s3cret");
    let p = site.wait_punches(160, Duration::from_secs(60));
    assert_dahua_exactly(&p, &history);
}

/// The cursor goes in with the punches, on both engines; a batch that is
/// all duplicates still moves it; reading it back gives the last one.
mod cursor_store {
    use attendd::store::{Inserted, NewPunch, Store};
    use chrono::{DateTime, Utc};

    fn punch(emp: &str, t: &str, ev: &str) -> NewPunch {
        NewPunch {
            employee_id: emp.into(),
            identity: emp.into(),
            time: DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc),
            device_id: Some("DEV1".into()),
            event_id: Some(ev.into()),
            source: "hik_pull[0]".into(),
            raw: None,
            direction: None,
        }
    }

    async fn roundtrip(s: &Store) {
        assert_eq!(s.pull_cursor("hik_pull[0]", "DEV1").await.unwrap(), None);
        let a = [
            punch("E1", "2026-11-02T08:00:00+08:00", "1"),
            punch("E2", "2026-11-02T08:01:00+08:00", "3"),
        ];
        let r = s
            .insert_punches_with_cursor(&a, "hik_pull[0]", "DEV1", "c1", chrono::Utc::now())
            .await
            .unwrap();
        assert!(r.iter().all(|o| matches!(o, Inserted::New(_))));
        let r = s
            .insert_punches_with_cursor(&a[1..], "hik_pull[0]", "DEV1", "c2", chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(r, vec![Inserted::Duplicate]);
        s.insert_punches_with_cursor(&[], "hik_pull[0]", "DEV2", "other", chrono::Utc::now())
            .await
            .unwrap();
        assert_eq!(
            s.pull_cursor("hik_pull[0]", "DEV1")
                .await
                .unwrap()
                .as_deref(),
            Some("c2")
        );
        assert_eq!(
            s.pull_cursor("hik_pull[0]", "DEV2")
                .await
                .unwrap()
                .as_deref(),
            Some("other")
        );
        assert_eq!(s.punch_count().await.unwrap(), 2);

        // One read with a bad record: its quarantine row goes in with the
        // punches and the cursor, in the same transaction.
        let bad = attendd::store::NewQuarantine {
            source: "hik_pull[0]:DEV1".into(),
            payload: b"not an event".to_vec(),
            reason: "not JSON".into(),
            ..Default::default()
        };
        let before = s.quarantined(100).await.unwrap().len();
        s.store_pull_read(
            &[punch("E3", "2026-11-02T08:02:00+08:00", "5")],
            std::slice::from_ref(&bad),
            "hik_pull[0]",
            "DEV1",
            "c3",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(s.quarantined(100).await.unwrap().len(), before + 1);
        assert_eq!(s.punch_count().await.unwrap(), 3);
        assert_eq!(
            s.pull_cursor("hik_pull[0]", "DEV1")
                .await
                .unwrap()
                .as_deref(),
            Some("c3")
        );
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let s = Store::open(&format!("sqlite://{}", dir.path().join("a.db").display()))
                .await
                .unwrap();
            roundtrip(&s).await;
            s.close().await;
        });
    }

    #[test]
    fn postgres() {
        use sqlx::Connection;
        let base = match std::env::var("TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => u,
            _ if crate::services::required() => {
                panic!("pull cursors: TEST_POSTGRES_URL is not set but ATTENDD_REQUIRE_SERVICES=1")
            }
            _ => {
                eprintln!("skipping postgres: TEST_POSTGRES_URL not set (pull cursors)");
                return;
            }
        };
        rt().block_on(async {
            let schema = crate::services::unique("pull").replace('-', "_");
            let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut c)
                .await
                .unwrap();
            let sep = if base.contains('?') { '&' } else { '?' };
            let s = Store::open(&format!("{base}{sep}options[search_path]={schema}"))
                .await
                .unwrap();
            roundtrip(&s).await;
            s.close().await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut c)
                .await;
        });
    }
}

#[test]
fn check_config_lists_pull_sources_and_names_bad_keys() {
    let site = Site::new(&format!(
        "[[source.zk_pull]]\naddress = \"10.0.0.23:4370\"\ncomm_key = 0\ntimezone = \"Asia/Shanghai\"\npoll_seconds = 30\n\n\
         [[source.hik_pull]]\nurl = \"http://10.0.0.21\"\nusername = \"admin\"\npassword_env = \"{PASSWORD_ENV}\"\ntimezone = \"Asia/Shanghai\"\n\n\
         [[source.dahua_pull]]\nurl = \"http://10.0.0.22\"\nusername = \"admin\"\npassword_env = \"{PASSWORD_ENV}\"\ntimezone = \"Asia/Shanghai\"\n"
    ));
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&site.config)
        .env(PASSWORD_ENV, "x")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "source zk_pull: 10.0.0.23:4370",
        "source hik_pull: http://10.0.0.21 as admin",
        "source dahua_pull: http://10.0.0.22 as admin",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }
    // Missing password variable, bad address, bad zone: each named.
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&site.config)
        .env_remove(PASSWORD_ENV)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("source.hik_pull[0].password_env"), "{err}");
    assert!(err.contains("source.dahua_pull[0].password_env"), "{err}");
    let bad = site.dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&site.config)
            .unwrap()
            .replace("10.0.0.23:4370", "10.0.0.23")
            .replace("http://10.0.0.22", "https://10.0.0.22"),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&bad)
        .env(PASSWORD_ENV, "x")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("source.zk_pull[0].address"), "{err}");
    assert!(err.contains("source.dahua_pull[0].url"), "{err}");
}

#[test]
fn zk_pull_sigkill_with_a_read_log_not_yet_committed_loses_and_doubles_nothing() {
    // 1 200 records: three commits of 500, 500 and 200, each with its cursor.
    let history = zk_history("2026-11-01 06:00:00", 1200);
    let emu = ZkEmu::start(zk_state(history.clone(), 0), false);
    let mut site = zk_site(emu.port, 0, "");
    let stall = site.dir.path().join("stall");
    std::fs::write(&stall, b"").unwrap();
    // The store stalls: the log is read, its first commit waits.
    site.starts += 1;
    let log = std::fs::File::create(site.log_path(site.starts)).unwrap();
    let mut d = Guard(Some(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&site.config)
            .env(attendd::pipeline::STALL_FILE_ENV, &stall)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !site.logs().contains("stalled") {
        assert!(Instant::now() < deadline, "{}", site.logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    d.kill();
    assert!(site.punches().is_empty());
    std::fs::remove_file(&stall).unwrap();
    let _d = site.start("");
    let p = site.wait_punches(1200, Duration::from_secs(60));
    assert_zk_exactly(&p, &history);
}
