//! End-to-end tests of the real binary: `attendd run` fed by `attendd
//! simulate` (or a raw MQTT client), checked through `attendd punches` and
//! `attendd quarantine`. The daemon is killed, restarted, its broker
//! restarted, and the store must still hold every distinct punch once.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use attendd::simulate::generate_day;
use chrono::NaiveDate;

use crate::proc::{Guard, free_port, healthz};
use crate::services::{required, unique};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");

/// One daemon's files: a tempdir with config, store and logs.
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
    http: u16,
    starts: usize,
}

impl Site {
    /// `broker` is `"embedded"` (then `listen` is set) or an `mqtt://` URL.
    fn new(broker: &str, listen: Option<u16>, prefix: &str, client_id: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let http = free_port();
        let policy = crate::common::root().join("config/policies/seed-default.toml");
        let listen = listen
            .map(|p| format!("listen = \"127.0.0.1:{p}\"\nallow_anonymous = true\n"))
            .unwrap_or_default();
        let text = format!(
            "[policy]\nfile = {policy:?}\n\n[store]\nurl = \"sqlite://{db}\"\n\n\
             [[source.mqtt]]\nbroker = \"{broker}\"\n{listen}topics = [\"{prefix}/+/punch\"]\n\
             decoder = \"json\"\nclient_id = \"{client_id}\"\ntimezone = \"Asia/Shanghai\"\n\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n",
            policy = policy.display().to_string(),
            db = dir.path().join("attendd.db").display(),
        );
        let config = dir.path().join("attendd.toml");
        std::fs::write(&config, text).unwrap();
        Site {
            dir,
            config,
            http,
            starts: 0,
        }
    }

    /// Starts `attendd run`, logging to a file in the tempdir, and waits for
    /// `/healthz` 200.
    fn start(&mut self) -> Guard {
        self.starts += 1;
        let log = std::fs::File::create(self.dir.path().join(format!("run-{}.log", self.starts)))
            .unwrap();
        let child = Command::new(BIN)
            .args(["run", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut g = Guard(Some(child));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if healthz(self.http) == Some(200) {
                return g;
            }
            if !g.running() {
                panic!("daemon exited early:\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "no /healthz 200 within 30 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for i in 1..=self.starts {
            let p = self.dir.path().join(format!("run-{i}.log"));
            let t = std::fs::read_to_string(&p).unwrap_or_default();
            let tail: Vec<&str> = t.lines().rev().take(30).collect();
            s.push_str(&format!("--- run {i} (last lines) ---\n"));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// The stored punches of a date, as JSON objects.
    fn punches(&self, date: &str) -> Vec<serde_json::Value> {
        json_lines(&self.cli(&["punches", "--date", date, "--json"]))
    }

    /// The quarantine entries (up to `limit`).
    fn quarantine(&self, limit: usize) -> Vec<serde_json::Value> {
        json_lines(&self.cli(&["quarantine", "--limit", &limit.to_string(), "--json"]))
    }

    fn cli(&self, args: &[&str]) -> String {
        crate::proc::attendd_ok(&self.config, args)
    }
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// `attendd simulate --json`, returning (distinct, duplicates).
fn simulate(url: &str, date: &str, employees: usize, seed: u64, prefix: &str, rate: u32) -> Child {
    Command::new(BIN)
        .args(["simulate", "--broker", url, "--date", date])
        .args(["--employees", &employees.to_string(), "--terminals", "8"])
        .args(["--duplicates", "0.1", "--seed", &seed.to_string()])
        .args([
            "--topic-prefix",
            prefix,
            "--rate",
            &rate.to_string(),
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a `simulate` run and returns its report's (distinct, duplicates).
fn simulate_report(child: Child) -> (u64, u64) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let v: serde_json::Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("simulate --json output {text:?}: {e}"));
    (
        v["distinct"].as_u64().expect("distinct"),
        v["duplicates"].as_u64().expect("duplicates"),
    )
}

/// Polls until `f` returns true or `bound` passes; returns whether it did.
fn poll(bound: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + bound;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

type Key = (String, String, String, String);

/// What the generator publishes for (date, employees, seed): one key per
/// distinct punch (employee, device, event id, local time).
fn expected(runs: &[(&str, usize, u64)]) -> BTreeSet<Key> {
    let mut set = BTreeSet::new();
    for &(d, n, seed) in runs {
        let date = NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap();
        for p in generate_day(date, n, 8, seed) {
            set.insert((
                p.employee_id.clone(),
                p.device_id.clone(),
                p.event_id(),
                p.local.format("%Y-%m-%dT%H:%M:%S").to_string(),
            ));
        }
    }
    set
}

/// The stored punches of `dates` as keys, and how many rows there were.
fn stored(site: &Site, dates: &[&str]) -> (BTreeSet<Key>, usize) {
    let mut set = BTreeSet::new();
    let mut rows = 0;
    for d in dates {
        for v in site.punches(d) {
            rows += 1;
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let time = s("time");
            set.insert((
                s("employee_id"),
                s("device_id"),
                s("event_id"),
                time.get(..19).unwrap_or(&time).to_string(),
            ));
        }
    }
    (set, rows)
}

/// Polls until the store holds exactly `want` (no row twice); panics with a
/// diff summary otherwise.
#[track_caller]
fn assert_exactly(site: &Site, dates: &[&str], want: &BTreeSet<Key>, bound: Duration) {
    let mut last = (BTreeSet::new(), 0);
    let ok = poll(bound, || {
        last = stored(site, dates);
        last.1 >= want.len()
    });
    // One more look after a pause: nothing more may arrive.
    if ok {
        std::thread::sleep(Duration::from_millis(500));
        last = stored(site, dates);
    }
    let (got, rows) = last;
    let missing = want.difference(&got).count();
    let extra = got.difference(want).count();
    assert!(
        ok && rows == want.len() && missing == 0 && extra == 0,
        "store: {rows} rows, {} distinct; want {} — {missing} missing, {extra} unexpected, {} doubled\n{}",
        got.len(),
        want.len(),
        rows - got.len(),
        site.logs()
    );
}

#[test]
fn fresh_machine_embedded_broker_end_to_end() {
    let t0 = Instant::now();
    let port = free_port();
    let prefix = unique("e2e");
    let mut site = Site::new("embedded", Some(port), &prefix, &unique("attendd"));
    let mut daemon = site.start();
    let url = format!("mqtt://127.0.0.1:{port}");
    let date = "2026-03-02";
    let (distinct, dups) = simulate_report(simulate(&url, date, 500, 7, &prefix, 0));
    assert!(
        distinct > 900 && dups > 0,
        "{distinct} distinct, {dups} dups"
    );
    let want = expected(&[(date, 500, 7)]);
    assert_eq!(want.len() as u64, distinct);
    assert_exactly(&site, &[date], &want, Duration::from_secs(60));
    let st = daemon.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(st.success(), "daemon exit status {st:?}\n{}", site.logs());
    eprintln!("fresh_machine e2e took {:?}", t0.elapsed());
}

// Runs against a private Mosquitto with `max_queued_messages 0`: the
// machine's broker keeps Mosquitto's default of 1,000 queued messages per
// client, and at 10,000 messages/s a daemon down for a third of a second
// overflows it (the broker then drops punches by design; deploy/mosquitto
// ships the setting that prevents it).
#[test]
fn sigkill_three_times_during_50k_punches_loses_and_doubles_nothing() {
    if !have_mosquitto("sigkill_three_times_during_50k_punches") {
        return;
    }
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mosq = Mosquitto::start(dir.path(), free_port());
    let url = format!("mqtt://127.0.0.1:{}", mosq.port);
    let prefix = unique("crash");
    let client = unique("attendd-crash");
    let mut site = Site::new(&url, None, &prefix, &client);
    let mut daemon = site.start();
    // Two days of 13,000 employees: about 50,400 distinct punches, ~10 %
    // re-published duplicates, at 5,000 messages/s per publisher.
    let runs = [("2026-03-02", 13_000, 11), ("2026-03-03", 13_000, 12)];
    let want = expected(&runs);
    assert!(want.len() >= 50_000, "{}", want.len());
    let pubs: Vec<Child> = runs
        .iter()
        .map(|&(d, n, s)| simulate(&url, d, n, s, &prefix, 5_000))
        .collect();
    for at in [4u64, 9, 14] {
        while t0.elapsed() < Duration::from_secs(at) {
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon.kill();
        std::thread::sleep(Duration::from_millis(300));
        daemon = site.start();
    }
    let mut distinct = 0;
    for p in pubs {
        distinct += simulate_report(p).0;
    }
    assert_eq!(distinct, want.len() as u64);
    let dates: Vec<&str> = runs.iter().map(|r| r.0).collect();
    assert_exactly(&site, &dates, &want, Duration::from_secs(150));
    assert!(daemon.running());
    let st = daemon.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(st.success(), "daemon exit status {st:?}");
    eprintln!("crash test took {:?}", t0.elapsed());
}

/// Whether the Mosquitto binary is installed; says so when a test skips.
pub(crate) fn have_mosquitto(test: &str) -> bool {
    if Mosquitto::binary().is_some() {
        return true;
    }
    assert!(
        !required(),
        "mosquitto binary not found but ATTENDD_REQUIRE_SERVICES=1"
    );
    eprintln!("skipping {test}: no mosquitto binary (install Debian's mosquitto to run it)");
    false
}

/// A private Mosquitto with persistence, so the test can stop and restart it.
pub(crate) struct Mosquitto {
    conf: PathBuf,
    pub(crate) port: u16,
    guard: Guard,
}

impl Mosquitto {
    fn binary() -> Option<&'static str> {
        [
            "/usr/sbin/mosquitto",
            "/usr/bin/mosquitto",
            "/usr/local/sbin/mosquitto",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
    }

    pub(crate) fn start(dir: &Path, port: u16) -> Mosquitto {
        let conf = dir.join("mosquitto.conf");
        let data = dir.join("mosq-data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nmax_queued_messages 0\n\
                 # Started as root, Mosquitto drops to the `mosquitto` user, who\n\
                 # cannot write this private folder; as anyone else it is ignored.\n\
                 user root\n",
                data.display()
            ),
        )
        .unwrap();
        let guard = Self::spawn(&conf, port);
        Mosquitto { conf, port, guard }
    }

    fn spawn(conf: &Path, port: u16) -> Guard {
        let child = Command::new(Self::binary().unwrap())
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let g = Guard(Some(child));
        let ok = poll(Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(ok, "mosquitto did not listen on {port}");
        g
    }

    /// SIGTERM (Mosquitto writes its persistence file on a clean exit) and
    /// start again on the same port from the same file.
    fn restart(&mut self) {
        let st = self.guard.signal_and_wait("TERM", Duration::from_secs(10));
        assert!(st.success(), "mosquitto exit {st:?}");
        self.guard = Self::spawn(&self.conf, self.port);
    }
}

/// Mosquitto restarts (SIGTERM, persistence on) while the daemon is
/// connected; the second half is published to the restarted broker.
#[test]
fn broker_restart_mid_stream_loses_and_doubles_nothing() {
    if !have_mosquitto("broker_restart_mid_stream") {
        return;
    }
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let mut mosq = Mosquitto::start(dir.path(), free_port());
    let url = format!("mqtt://127.0.0.1:{}", mosq.port);
    let prefix = unique("brk");
    let mut site = Site::new(&url, None, &prefix, &unique("attendd-brk"));
    let mut daemon = site.start();
    let runs = [("2026-03-02", 3_000, 21), ("2026-03-03", 3_000, 22)];
    let want = expected(&runs);
    // First half: fully accepted by the broker, then the broker stops while
    // the daemon is still working through its queue.
    let (d1, _) = simulate_report(simulate(&url, runs[0].0, runs[0].1, runs[0].2, &prefix, 0));
    mosq.restart();
    let (d2, _) = simulate_report(simulate(&url, runs[1].0, runs[1].1, runs[1].2, &prefix, 0));
    assert_eq!(d1 + d2, want.len() as u64);
    let dates: Vec<&str> = runs.iter().map(|r| r.0).collect();
    assert_exactly(&site, &dates, &want, Duration::from_secs(90));
    assert!(daemon.running(), "daemon died\n{}", site.logs());
    assert_eq!(healthz(site.http), Some(200));
    let st = daemon.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(st.success(), "daemon exit status {st:?}");
    eprintln!("broker restart test took {:?}", t0.elapsed());
}

#[test]
fn ten_thousand_malformed_messages_interleaved_with_valid_ones() {
    let t0 = Instant::now();
    let port = free_port();
    let prefix = unique("bad");
    let mut site = Site::new("embedded", Some(port), &prefix, &unique("attendd-bad"));
    let mut daemon = site.start();
    const BAD: usize = 10_000;
    let date = "2026-03-02";
    let mut valid = BTreeSet::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
        let mut o = MqttOptions::new(unique("pub"), "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(30)).set_inflight(500);
        let (c, mut el) = AsyncClient::new(o, 1000);
        let total = BAD * 2;
        let poller = tokio::spawn(async move {
            let mut acked = 0;
            while acked < total {
                match el.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                    Ok(_) => {}
                    Err(e) => panic!("publisher: {e}"),
                }
            }
        });
        let mut rng = attendd::simulate::Rng::new(99);
        for i in 0..BAD {
            let topic = format!("{prefix}/gate-{}/punch", i % 4 + 1);
            let bad: Vec<u8> = match i % 3 {
                0 => (0..1 + rng.below(64)).map(|_| rng.next_u64() as u8).collect(),
                1 => format!("{{\"employee_id\":\"E{i:05}\",\"time\":\"2026-03-")
                    .into_bytes(),
                _ => format!(
                    "{{\"employee_id\":\"E{i:05}\",\"time\":\"2026-13-45 99:61:00\",\"device_id\":\"gate-1\",\"event_id\":\"bad-{i}\"}}"
                )
                .into_bytes(),
            };
            c.publish(&topic, QoS::AtLeastOnce, false, bad).await.unwrap();
            let secs = 8 * 3600 + (i as u32 % 36_000);
            let time = format!("{date} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
            let ev = format!("ok-{i:06}");
            let good = format!(
                "{{\"employee_id\":\"E{i:05}\",\"time\":\"{time}\",\"device_id\":\"gate-1\",\"event_id\":\"{ev}\"}}"
            );
            valid.insert((
                format!("E{i:05}"),
                "gate-1".to_string(),
                ev,
                time.replace(' ', "T"),
            ));
            c.publish(&topic, QoS::AtLeastOnce, false, good).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(60), poller)
            .await
            .expect("every publish acknowledged within 60 s")
            .unwrap();
        let _ = c.disconnect().await;
    });
    eprintln!("published {} messages in {:?}", BAD * 2, t0.elapsed());
    assert_exactly(&site, &[date], &valid, Duration::from_secs(60));
    let mut q = 0;
    let ok = poll(Duration::from_secs(60), || {
        q = site.quarantine(BAD * 2).len();
        q >= BAD
    });
    assert!(
        ok && q == BAD,
        "{q} quarantined, want {BAD}\n{}",
        site.logs()
    );
    assert!(daemon.running(), "daemon died\n{}", site.logs());
    assert_eq!(healthz(site.http), Some(200));
    let st = daemon.signal_and_wait("TERM", Duration::from_secs(15));
    assert!(st.success(), "daemon exit status {st:?}");
    eprintln!("malformed test took {:?}", t0.elapsed());
}
