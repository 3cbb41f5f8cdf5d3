//! `attendd simulate` in every decoder format: each payload read back by the
//! decoder of the same name gives the generated punch, and the real binary
//! fed through a pseudo-terminal stores exactly the distinct punches.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::{Guard, free_port, healthz};
use attendd::domain::time::resolve_local;
use attendd::ingest::decode::{DecodeContext, Decoder, Identity};
use attendd::pipeline::alias_keys;
use attendd::simulate::{
    Format, Plan, Target, encode, schedule, serial_bytes, wire_device, wire_event_id,
    write_employees,
};
use attendd::source::serial::{Framer, Framing};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

const BIN: &str = env!("CARGO_BIN_EXE_attendd");

fn plan(format: Format, tz: Tz, employees: usize, duplicates: f64) -> Plan {
    Plan {
        target: Target::Serial {
            path: PathBuf::from("/dev/null"),
            baud: 9600,
        },
        topic_prefix: "attendance".into(),
        date: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
        employees,
        terminals: 3,
        rate: 0,
        seed: 7,
        duplicates,
        format,
        tz,
        not_after: None,
    }
}

/// Alias → employee, as the pipeline resolves it, from the written
/// employees.csv.
fn aliases(employees: usize) -> HashMap<String, String> {
    let mut csv = Vec::new();
    write_employees(&mut csv, employees).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("employee_id,name,team,supervisor,alias"));
    let mut m = HashMap::new();
    for l in lines {
        let cols: Vec<&str> = l.split(',').collect();
        assert_eq!(cols.len(), 5, "{l}");
        for a in cols[4].split(';') {
            for k in alias_keys(a) {
                assert!(m.insert(k, cols[0].to_string()).is_none(), "{a} twice");
            }
        }
    }
    m
}

type Row = (String, DateTime<Utc>, Option<String>, Option<String>);

#[test]
fn every_format_decodes_to_the_generated_punches() {
    let received = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    for tz in [chrono_tz::Asia::Shanghai, chrono_tz::America::New_York] {
        for format in Format::ALL {
            let plan = plan(format, tz, 40, 0.0);
            let names = aliases(plan.employees);
            let decoder = Decoder::with_options(format.decoder_name(), &toml::Table::new())
                .unwrap_or_else(|e| panic!("{format:?}: {e}"));
            let mut want: BTreeSet<Row> = BTreeSet::new();
            let mut got: BTreeSet<Row> = BTreeSet::new();
            let sched = schedule(&plan);
            assert!(sched.len() > 70, "{}", sched.len());
            for (p, _) in &sched {
                let instant = resolve_local(tz, p.local);
                want.insert((
                    p.employee_id.clone(),
                    instant,
                    wire_device(p, format),
                    wire_event_id(p, format),
                ));
                let (topic, payload) = encode(p, format, &plan.topic_prefix, tz);
                assert_eq!(topic, format!("attendance/{}/punch", p.device_id));
                // Formats without a time are stamped on arrival; the others
                // must carry the instant themselves.
                let arrival = if format.stamped_on_arrival() {
                    instant
                } else {
                    received
                };
                let cx = DecodeContext::new(tz, arrival).with_topic(&topic);
                let d = decoder
                    .decode(&payload, &cx)
                    .unwrap_or_else(|e| panic!("{format:?}: {e}: {payload:?}"));
                assert!(
                    d.ignored.is_empty() && d.line_errors.is_empty() && d.warnings.is_empty(),
                    "{format:?}: {d:?}"
                );
                assert_eq!(d.punches.len(), 1, "{format:?}: {d:?}");
                let q = &d.punches[0];
                let employee = match &q.identity {
                    Identity::Employee(e) => e.clone(),
                    Identity::Alias(a) => alias_keys(a)
                        .iter()
                        .find_map(|k| names.get(k).cloned())
                        .unwrap_or_else(|| panic!("{format:?}: alias {a} unknown")),
                };
                assert!(!q.replay, "{format:?}");
                got.insert((employee, q.at, q.device_id.clone(), q.event_id.clone()));
            }
            assert_eq!(got.len(), sched.len(), "{format:?} in {tz}: keys collide");
            assert_eq!(got, want, "{format:?} in {tz}");
        }
    }
}

#[test]
fn serial_framing_gives_back_each_payload() {
    for format in Format::ALL {
        let plan = plan(format, chrono_tz::Asia::Shanghai, 20, 0.3);
        let mut stream = Vec::new();
        let mut want = Vec::new();
        let mut copies = 0;
        for (p, n) in schedule(&plan) {
            copies += n - 1;
            for _ in 0..n {
                let (_, payload) = encode(&p, format, "attendance", plan.tz);
                let bytes = serial_bytes(format, payload.clone());
                let trimmed: Vec<u8> = if format == Format::StxEtx {
                    payload
                } else {
                    String::from_utf8(payload)
                        .unwrap()
                        .trim_end()
                        .as_bytes()
                        .to_vec()
                };
                want.push(trimmed);
                stream.extend_from_slice(&bytes);
            }
        }
        assert!(copies > 0, "the duplicates option sends copies");
        let framing = if format == Format::StxEtx {
            Framing::StxEtx
        } else {
            Framing::Lines
        };
        let mut framer = Framer::new(framing);
        let mut got = Vec::new();
        // Odd read sizes, as a UART delivers them.
        for chunk in stream.chunks(7) {
            framer.push(chunk, &mut got);
        }
        assert_eq!(got, want, "{format:?}");
    }
}

#[test]
fn card_numbers_are_stable_and_fit_every_card_format() {
    assert_eq!(attendd::simulate::card_number(0), 1_000_000_000);
    assert_eq!(attendd::simulate::card_number(42), 1_000_000_042);
    // 00BC614E is the tag 12345678; the checksum is the XOR of the 5 bytes.
    assert_eq!(
        attendd::simulate::em4100_frame(0x00BC_614E),
        b"\x020100BC614E92\x03".to_vec()
    );
    assert_eq!(attendd::simulate::employee_id(42), "E00042".to_string());
    let m = aliases(100_000);
    assert_eq!(m.get("1000099999").map(String::as_str), Some("E99999"));
    assert_eq!(m.get("e00007").map(String::as_str), Some("E00007"));
}

// ---- end to end through pseudo-terminals ----

/// Two pseudo-terminals joined like a null-modem cable: what is written to
/// `sim` (a slave path) comes out of `daemon` (another slave path). The
/// copy runs on its own runtime until dropped.
struct Cable {
    sim: String,
    daemon: String,
    rt: Option<tokio::runtime::Runtime>,
}

impl Cable {
    /// `None` (after saying why) when this machine cannot open PTYs.
    fn open(test: &str) -> Option<Cable> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let pair = || {
            let _g = rt.enter();
            let (master, slave) = tokio_serial::SerialStream::pair()?;
            let name = tokio_serial::SerialPort::name(&slave).ok_or_else(|| {
                tokio_serial::Error::new(tokio_serial::ErrorKind::NoDevice, "no slave path")
            })?;
            drop(slave);
            Ok::<_, tokio_serial::Error>((master, name))
        };
        let ((mut from, sim), (mut to, daemon)) = match (pair(), pair()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => {
                assert!(
                    !crate::services::required(),
                    "cannot open a pseudo-terminal ({e}) but ATTENDD_REQUIRE_SERVICES=1"
                );
                eprintln!("skipping {test}: cannot open a pseudo-terminal: {e}");
                return None;
            }
        };
        rt.spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = vec![0u8; 4096];
            loop {
                match AsyncReadExt::read(&mut from, &mut buf).await {
                    Ok(n) if n > 0 => {
                        if AsyncWriteExt::write_all(&mut to, &buf[..n]).await.is_err() {
                            return;
                        }
                        let _ = AsyncWriteExt::flush(&mut to).await;
                    }
                    // No writer on the other side yet (EIO): wait for one.
                    _ => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        Some(Cable {
            sim,
            daemon,
            rt: Some(rt),
        })
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

/// A daemon reading one serial port, with its files in a tempdir.
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
    http: u16,
}

impl Site {
    fn new(port: &str, decoder: &str, framing: &str) -> Site {
        Site::with_source(&format!(
            "[[source.serial]]\npath = {port:?}\ndecoder = \"{decoder}\"\nframing = \"{framing}\"\n\
             timezone = \"Asia/Shanghai\"\n"
        ))
    }

    /// A daemon with the embedded broker on `port`, reading
    /// `{prefix}/+/punch` with `decoder`.
    fn mqtt(port: u16, prefix: &str, decoder: &str) -> Site {
        Site::with_source(&format!(
            "[[source.mqtt]]\nbroker = \"embedded\"\nlisten = \"127.0.0.1:{port}\"\nallow_anonymous = true\n\
             topics = [\"{prefix}/+/punch\"]\ndecoder = \"{decoder}\"\n\
             client_id = \"{client}\"\ntimezone = \"Asia/Shanghai\"\n",
            client = crate::services::unique("attendd"),
        ))
    }

    fn with_source(source: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let http = free_port();
        let policy = crate::common::root().join("config/policies/seed-default.toml");
        let text = format!(
            "[policy]\nfile = {policy:?}\n\n[store]\nurl = \"sqlite://{db}\"\n\n\
             {source}\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
            policy = policy.display().to_string(),
            db = dir.path().join("attendd.db").display(),
        );
        let config = dir.path().join("attendd.toml");
        std::fs::write(&config, text).unwrap();
        Site { dir, config, http }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("run.log")).unwrap_or_default()
    }

    /// Starts `attendd run` and waits for `/healthz` 200 (the port is open).
    fn start(&self) -> Guard {
        let log = std::fs::File::create(self.dir.path().join("run.log")).unwrap();
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
        while healthz(self.http) != Some(200) {
            if let Some(st) = g.0.as_mut().unwrap().try_wait().unwrap() {
                panic!("daemon exited early ({st}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "no /healthz 200 within 30 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        g
    }

    fn cli(&self, args: &[&str]) -> String {
        crate::proc::attendd_ok(&self.config, args)
    }

    fn punches(&self, dates: &[NaiveDate]) -> Vec<serde_json::Value> {
        let mut v = Vec::new();
        for d in dates {
            let out = self.cli(&["punches", "--date", &d.to_string(), "--json"]);
            for l in out.lines().filter(|l| !l.trim().is_empty()) {
                v.push(serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")));
            }
        }
        v
    }
}

/// Runs `attendd simulate --serial PATH …` and returns its JSON report.
fn simulate(args: &[&str]) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("simulate")
        .args(args)
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "simulate {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "progress is quiet when piped");
    let text = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Polls the store until it holds `n` rows (or 30 s pass), then once more
/// after a pause so late extras show.
fn settle(site: &Site, dates: &[NaiveDate], n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while site.punches(dates).len() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    std::thread::sleep(Duration::from_millis(700));
    site.punches(dates)
}

#[test]
fn zk_attlog_over_a_pseudo_terminal_stores_exactly_the_distinct_punches() {
    let Some(cable) = Cable::open("zk_attlog_over_a_pseudo_terminal") else {
        return;
    };
    let site = Site::new(&cable.daemon, "zk-attlog", "lines");
    let _daemon = site.start();
    let r = simulate(&[
        "--serial",
        &cable.sim,
        "--format",
        "zk-attlog",
        "--date",
        "2026-11-26",
        "--employees",
        "30",
        "--terminals",
        "3",
        "--seed",
        "11",
        "--duplicates",
        "0.2",
        "--rate",
        "200",
    ]);
    assert!(r["duplicates"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["format"], "zk-attlog");
    let date = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let want: BTreeSet<(String, String)> = attendd::simulate::generate_day(date, 30, 3, 11)
        .iter()
        .map(|p| {
            (
                p.employee_id.clone(),
                p.local.format("%Y-%m-%dT%H:%M:%S").to_string(),
            )
        })
        .collect();
    assert_eq!(want.len() as u64, r["distinct"].as_u64().unwrap());
    let rows = settle(&site, &[date], want.len());
    let got: BTreeSet<(String, String)> = rows
        .iter()
        .map(|v| {
            let time = v["time"].as_str().unwrap_or_default();
            (
                v["employee_id"].as_str().unwrap_or_default().to_string(),
                time.get(..19).unwrap_or(time).to_string(),
            )
        })
        .collect();
    assert_eq!(
        (rows.len(), &got),
        (want.len(), &want),
        "stored rows vs the distinct punches\n{}",
        site.log()
    );
}

#[test]
fn stx_etx_cards_over_a_pseudo_terminal_resolve_to_every_employee() {
    let Some(cable) = Cable::open("stx_etx_cards_over_a_pseudo_terminal") else {
        return;
    };
    let site = Site::new(&cable.daemon, "stx-etx", "stx-etx");
    let employees = site.dir.path().join("employees.csv");
    let out = Command::new(BIN)
        .args(["simulate", "--employees", "12", "--write-employees"])
        .arg(&employees)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    site.cli(&["import", "employees", employees.to_str().unwrap()]);
    let _daemon = site.start();
    let tz = chrono_tz::Asia::Shanghai;
    let today = || Utc::now().with_timezone(&tz).date_naive();
    let first = today();
    // Cards carry no time: each frame is stamped on arrival, so they are
    // paced apart and the check is who punched, and how often.
    let r = simulate(&[
        "--serial",
        &cable.sim,
        "--format",
        "stx-etx",
        "--date",
        "2026-11-26",
        "--employees",
        "12",
        "--terminals",
        "2",
        "--seed",
        "5",
        "--rate",
        "10",
    ]);
    let mut dates = vec![first];
    if today() != first {
        dates.push(today());
    }
    let date = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for p in attendd::simulate::generate_day(date, 12, 2, 5) {
        *want.entry(p.employee_id).or_default() += 1;
    }
    let n: usize = want.values().sum();
    // Frames read together share an arrival time, and the same card at
    // the same time is one punch: at 10/s, a person's two cards are at
    // least 300 ms apart for this seed.
    let order: Vec<String> = attendd::simulate::generate_day(date, 12, 2, 5)
        .into_iter()
        .map(|p| p.employee_id)
        .collect();
    let closest = order
        .iter()
        .enumerate()
        .filter_map(|(i, e)| order[i + 1..].iter().position(|f| f == e).map(|d| d + 1))
        .min();
    assert!(closest >= Some(3), "{closest:?}");
    assert_eq!(n as u64, r["distinct"].as_u64().unwrap());
    let rows = settle(&site, &dates, n);
    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    for v in &rows {
        *got.entry(v["employee_id"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let quarantined = site.cli(&["quarantine", "--json"]);
    assert_eq!(
        got,
        want,
        "stored punches per employee\nquarantine: {quarantined}\n{}",
        site.log()
    );
    assert!(quarantined.trim().is_empty(), "{quarantined}");
}

/// Over MQTT, the vendor formats keep their record keys: re-sent copies are
/// stored once, and face names resolve through the imported aliases.
#[test]
fn vendor_formats_over_mqtt_store_exactly_the_distinct_punches() {
    let date = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
    for format in [Format::HikIsapi, Format::DoubleTake] {
        let port = free_port();
        let prefix = crate::services::unique("sim");
        let site = Site::mqtt(port, &prefix, format.decoder_name());
        let employees = site.dir.path().join("employees.csv");
        let out = Command::new(BIN)
            .args(["simulate", "--employees", "50", "--write-employees"])
            .arg(&employees)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        site.cli(&["import", "employees", employees.to_str().unwrap()]);
        let _daemon = site.start();
        let r = simulate(&[
            "--broker",
            &format!("mqtt://127.0.0.1:{port}"),
            "--topic-prefix",
            &prefix,
            "--format",
            format.decoder_name(),
            "--date",
            "2026-11-26",
            "--employees",
            "50",
            "--terminals",
            "3",
            "--seed",
            "3",
            "--duplicates",
            "0.2",
        ]);
        assert!(r["duplicates"].as_u64().unwrap() > 0, "{r}");
        let want: BTreeSet<(String, String, String, String)> =
            attendd::simulate::generate_day(date, 50, 3, 3)
                .iter()
                .map(|p| {
                    (
                        p.employee_id.clone(),
                        p.local.format("%Y-%m-%dT%H:%M:%S").to_string(),
                        wire_device(p, format).unwrap_or_default(),
                        wire_event_id(p, format).unwrap_or_default(),
                    )
                })
                .collect();
        assert_eq!(want.len() as u64, r["distinct"].as_u64().unwrap());
        let rows = settle(&site, &[date], want.len());
        let got: BTreeSet<(String, String, String, String)> = rows
            .iter()
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
                let time = s("time");
                (
                    s("employee_id"),
                    time.get(..19).unwrap_or(&time).to_string(),
                    s("device_id"),
                    s("event_id"),
                )
            })
            .collect();
        assert_eq!(
            (rows.len(), &got),
            (want.len(), &want),
            "{format:?}: stored rows vs the distinct punches\n{}",
            site.log()
        );
    }
}
