//! HTTP push terminals against the real binary: a test plays a ZKTeco ADMS
//! terminal, a Hikvision terminal in listening mode and a Dahua terminal
//! uploading events, over 127.0.0.1, and checks the store afterwards.
//!
//! The stamp table is also checked on both store engines.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::{Guard, free_port};
use attendd::store::{QuarantineRow, Store, StoredPunch};
use chrono::{DateTime, Utc};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");
const SN: &str = "CQZ7231460021";
const SN_KOLKATA: &str = "CQZ7231460022";
const DAHUA_PASSWORD_ENV: &str = "ATTENDD_TEST_DAHUA_PASSWORD";
const DAHUA_PASSWORD: &str = "door-s3cret";

/// One daemon's files and ports.
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
    http: u16,
    zk: u16,
    hik: u16,
    dahua: u16,
    unv: u16,
    starts: usize,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (http, zk, hik, dahua) = (free_port(), free_port(), free_port(), free_port());
        let unv = free_port();
        let policy = crate::common::root().join("config/policies/seed-default.toml");
        let db = dir.path().join("attendd.db");
        let text = format!(
            "[policy]\nfile = {policy:?}\n\n[store]\nurl = \"sqlite://{db}\"\n\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\n\
             [[source.zk_push]]\nlisten = \"127.0.0.1:{zk}\"\ndelay_seconds = 10\n\
             [[source.zk_push.terminals]]\nsn = \"{SN}\"\ntimezone = \"Europe/Istanbul\"\n\
             [[source.zk_push.terminals]]\nsn = \"{SN_KOLKATA}\"\ntimezone = \"Asia/Kolkata\"\n\n\
             [[source.hik_http]]\nlisten = \"127.0.0.1:{hik}\"\ntimezone = \"Europe/Istanbul\"\n\n\
             [[source.hik_http]]\nlisten = \"127.0.0.1:{dahua}\"\ndecoder = \"dahua\"\n\
             timezone = \"Europe/Istanbul\"\nmax_body_bytes = 4096\nusername = \"dahua\"\n\
             password_env = \"{DAHUA_PASSWORD_ENV}\"\n\n\
             [[source.hik_http]]\nlisten = \"127.0.0.1:{unv}\"\ndecoder = \"uniview\"\n",
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
            zk,
            hik,
            dahua,
            unv,
            starts: 0,
        }
    }

    /// Starts `attendd run` with extra environment and waits for
    /// `/healthz` 200.
    fn start_with(&mut self, env: &[(&str, &str)]) -> Guard {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path(self.starts)).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["run", "--config"])
            .arg(&self.config)
            .env(DAHUA_PASSWORD_ENV, DAHUA_PASSWORD)
            .env_remove(attendd::source::push::COMMIT_DELAY_ENV)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut g = Guard(Some(cmd.spawn().unwrap()));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if request(self.http, "GET", "/healthz", &[], b"").is_some_and(|r| r.0 == 200) {
                return g;
            }
            assert!(g.running(), "daemon exited early:\n{}", self.logs());
            assert!(
                Instant::now() < deadline,
                "no /healthz 200 within 30 s:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn start(&mut self) -> Guard {
        self.start_with(&[])
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

    fn url(&self) -> String {
        format!("sqlite://{}", self.db.display())
    }

    /// Every stored punch, read straight from the store.
    fn punches(&self) -> Vec<StoredPunch> {
        self.with_store(|s| {
            Box::pin(async move {
                let from = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc);
                s.punches(from, from + chrono::Duration::days(365 * 100), None)
                    .await
                    .unwrap()
            })
        })
    }

    fn quarantine(&self) -> Vec<QuarantineRow> {
        self.with_store(|s| Box::pin(async move { s.quarantined(1000).await.unwrap() }))
    }

    /// Counts rows matching a SQL condition on `punches` (e.g. on `raw`).
    fn count_where(&self, cond: &'static str) -> i64 {
        self.with_store(|s| {
            Box::pin(async move {
                let Store::Sqlite(p) = s else { unreachable!() };
                let sql = format!("SELECT count(*) FROM punches WHERE {cond}");
                let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_one(p)
                    .await
                    .unwrap();
                n
            })
        })
    }

    fn with_store<T>(
        &self,
        f: impl for<'a> FnOnce(
            &'a Store,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>,
    ) -> T {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let s = Store::open(&self.url()).await.unwrap();
            let out = f(&s).await;
            s.close().await;
            out
        })
    }

    /// `attendd ARGS --config …` (with the test's environment), which
    /// must succeed; its stdout.
    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env(DAHUA_PASSWORD_ENV, DAHUA_PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "attendd {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn metrics(&self) -> String {
        request(self.http, "GET", "/metrics", &[], b"").unwrap().1
    }
}

/// One HTTP/1.1 request with `Connection: close`; (status, body), or `None`
/// when nothing answered.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = send(port, method, path, headers, body)?;
    read_response(&mut s)
}

fn send(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<TcpStream> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    Some(s)
}

fn read_response(s: &mut TcpStream) -> Option<(u16, String)> {
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((code, body.to_string()))
}

/// Polls until `f` is true or 30 s pass.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn zk_post(site: &Site, sn: &str, table: &str, stamp: &str, body: &str) -> (u16, String) {
    request(
        site.zk,
        "POST",
        &format!("/iclock/cdata?SN={sn}&table={table}&Stamp={stamp}"),
        &[("Content-Type", "text/plain")],
        body.as_bytes(),
    )
    .expect("daemon answers")
}

fn handshake(site: &Site, sn: &str) -> (u16, String) {
    request(
        site.zk,
        "GET",
        &format!("/iclock/cdata?SN={sn}&options=all&pushver=2.4.1"),
        &[],
        b"",
    )
    .expect("daemon answers")
}

fn option<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

const BATCH: &str = "1043\t2025-03-04 08:57:12\t0\t15\t0\t0\t0\n\
                     0217\t2025-03-04 09:04:40\t0\t1\t0\t0\t0\n\
                     1043\t2025-03-04 18:02:05\t1\t15\t0\t0\t0\t0\t36.4\t36.4\t+10800\t\n";

#[test]
fn zk_handshake_upload_malformed_line_resume_and_unknown_serial() {
    let mut site = Site::new();
    let mut d = site.start();

    // Handshake: options with stamp 0 (nothing stored yet) and the zone.
    let (code, body) = handshake(&site, SN);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.starts_with(&format!("GET OPTION FROM: {SN}\n")),
        "{body}"
    );
    assert_eq!(option(&body, "ATTLOGStamp"), Some("0"), "{body}");
    assert_eq!(option(&body, "OPERLOGStamp"), Some("0"), "{body}");
    assert_eq!(option(&body, "ATTPHOTOStamp"), Some("0"), "{body}");
    assert_eq!(option(&body, "TimeZone"), Some("3"), "{body}");
    assert_eq!(option(&body, "Realtime"), Some("1"), "{body}");
    assert_eq!(option(&body, "Delay"), Some("10"), "{body}");
    assert!(
        option(&body, "TransFlag").is_some_and(|f| f.contains("AttLog")),
        "{body}"
    );
    let (_, kolkata) = handshake(&site, SN_KOLKATA);
    assert_eq!(option(&kolkata, "TimeZone"), Some("330"), "{kolkata}");

    // A batch: OK:3 and three punches from this terminal.
    assert_eq!(
        zk_post(&site, SN, "ATTLOG", "9999", BATCH),
        (200, "OK:3".into())
    );
    let p = site.punches();
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p.iter().all(|p| p.device_id.as_deref() == Some(SN)));
    let times: Vec<String> = p.iter().map(|p| p.time.to_rfc3339()).collect();
    assert!(
        times.contains(&"2025-03-04T05:57:12+00:00".to_string()),
        "{times:?}"
    );
    assert!(
        times.contains(&"2025-03-04T15:02:05+00:00".to_string()),
        "{times:?}"
    );
    assert!(
        p.iter().any(|p| p.employee_id == "0217"),
        "leading zero kept"
    );
    // The ATTLOG status column (0 check-in, 1 check-out) is kept with each
    // punch for `[leaving_post] trust_direction`.
    assert_eq!(site.count_where("direction = 'check_in'"), 2);
    assert_eq!(
        site.count_where("direction = 'check_out' AND employee_id = '1043'"),
        1
    );

    // A malformed line in the middle: the good lines are stored, the bad
    // one quarantined, and the batch is acknowledged.
    let mixed = "0300\t2025-03-05 08:00:00\t0\t1\t0\t0\t0\r\n\
                 0301\t2025-13-05 08:01:00\t0\t1\t0\t0\t0\r\n\
                 0302\t2025-03-05 08:02:00\t0\t1\t0\t0\t0";
    assert_eq!(
        zk_post(&site, SN, "ATTLOG", "10002", mixed),
        (200, "OK:3".into())
    );
    assert_eq!(site.punches().len(), 5);
    let q = site.quarantine();
    assert_eq!(q.len(), 1, "{q:#?}");
    assert!(q[0].source.contains(SN), "{q:#?}");
    assert!(q[0].reason.contains("2025-13-05"), "{q:#?}");
    assert!(String::from_utf8_lossy(&q[0].payload).contains("0301"));

    // A form-encoded body (some firmware), from the terminal in Kolkata.
    let form = "0500%092025-03-05+09%3A00%3A00%090%091%090%090%090%0A\
                0501%092025-03-05+09%3A01%3A00%090%091%090%090%090%0A";
    assert_eq!(
        zk_post(&site, SN_KOLKATA, "ATTLOG", "3", form),
        (200, "OK:2".into())
    );
    let p = site.punches();
    let k: Vec<_> = p
        .iter()
        .filter(|p| p.device_id.as_deref() == Some(SN_KOLKATA))
        .map(|p| p.time.to_rfc3339())
        .collect();
    assert_eq!(
        k,
        ["2025-03-05T03:30:00+00:00", "2025-03-05T03:31:00+00:00"]
    );
    let m = site.metrics();
    // Issue 13: labels name terminals by their place in the configuration
    // (or their `name`), never by serial number.
    for (j, sn, n) in [(0, SN, 5), (1, SN_KOLKATA, 2)] {
        let line = format!(
            "attendd_punches_total{{outcome=\"new\",source=\"zk_push[0].terminals[{j}]\"}} {n}"
        );
        assert!(m.contains(&line), "{line} not in\n{m}");
        assert!(!m.contains(sn), "{sn} in\n{m}");
    }

    // Other tables and endpoints are acknowledged and ignored.
    assert_eq!(
        zk_post(
            &site,
            SN,
            "OPERLOG",
            "77",
            "OPLOG 4\t0\t2025-03-05 08:03:00\t0\t0\t0\t0\n"
        ),
        // Issue 11 item 9: OPERLOG is answered with its record count.
        (200, "OK:1".into())
    );
    let photo = request(
        site.zk,
        "POST",
        &format!("/iclock/cdata?SN={SN}&table=ATTPHOTO&Stamp=5"),
        &[],
        b"PIN=1043\nSN=x\nsize=4\nCMD=uploadphoto\n\0\xFF\xD8\xFF\xE0",
    )
    .unwrap();
    assert_eq!(photo, (200, "OK".into()));
    for path in ["/iclock/getrequest", "/iclock/ping"] {
        let r = request(site.zk, "GET", &format!("{path}?SN={SN}"), &[], b"").unwrap();
        assert_eq!(r, (200, "OK".into()), "{path}");
    }
    assert_eq!(site.punches().len(), 7);

    // An unknown serial number: refused, nothing stored, logged once.
    let (code, body) = handshake(&site, "EVIL0000001");
    assert_eq!(code, 403);
    assert!(!body.contains(SN) && !body.contains("EVIL"), "{body}");
    let (code, _) = zk_post(&site, "EVIL0000001", "ATTLOG", "1", BATCH);
    assert_eq!(code, 403);
    assert_eq!(site.punches().len(), 7);

    // Restart: the handshake hands back the last committed stamps.
    d.signal_and_wait("TERM", Duration::from_secs(30));
    let logs = site.logs();
    assert_eq!(
        logs.matches("refused terminal with serial number \"EVIL0000001\"")
            .count(),
        1,
        "{logs}"
    );
    let _d = site.start();
    let (code, body) = handshake(&site, SN);
    assert_eq!(code, 200);
    assert_eq!(option(&body, "ATTLOGStamp"), Some("10002"), "{body}");
    assert_eq!(option(&body, "Stamp"), Some("10002"), "{body}");
    assert_eq!(option(&body, "OPERLOGStamp"), Some("77"), "{body}");
    assert_eq!(option(&body, "ATTPHOTOStamp"), Some("5"), "{body}");
    let (_, other) = handshake(&site, SN_KOLKATA);
    assert_eq!(option(&other, "ATTLOGStamp"), Some("3"), "{other}");
}

#[test]
fn zk_ok_only_after_commit_and_resend_is_stored_once() {
    let mut site = Site::new();
    let mut d = site.start_with(&[(attendd::source::push::COMMIT_DELAY_ENV, "60000")]);
    // The terminal sends a batch; the daemon receives it but dies before
    // the commit, so the terminal never hears OK.
    let mut s = send(
        site.zk,
        "POST",
        &format!("/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=9999"),
        &[],
        BATCH.as_bytes(),
    )
    .unwrap();
    wait_for("the upload to reach the commit", || {
        site.logs().contains("commit delayed")
    });
    d.kill();
    let answer = read_response(&mut s);
    assert!(answer.as_ref().is_none_or(|(c, _)| *c != 200), "{answer:?}");
    assert_eq!(site.punches().len(), 0);

    // Restarted, the handshake still says 0, and the terminal re-sends.
    let _d = site.start();
    let (_, body) = handshake(&site, SN);
    assert_eq!(option(&body, "ATTLOGStamp"), Some("0"), "{body}");
    assert_eq!(
        zk_post(&site, SN, "ATTLOG", "9999", BATCH),
        (200, "OK:3".into())
    );
    // An OK lost on the way back: the terminal sends the batch once more.
    assert_eq!(
        zk_post(&site, SN, "ATTLOG", "9999", BATCH),
        (200, "OK:3".into())
    );
    let p = site.punches();
    assert_eq!(p.len(), 3, "{p:#?}");
    let (_, body) = handshake(&site, SN);
    assert_eq!(option(&body, "ATTLOGStamp"), Some("9999"), "{body}");
}

fn hik_json(serial: u64, minor: u32, employee: &str, current: bool, time: &str) -> String {
    format!(
        r#"{{"ipAddress":"10.20.1.31","portNo":80,"macAddress":"24:0f:9b:4e:aa:10","dateTime":"{time}","activePostCount":1,"eventType":"AccessControllerEvent","eventState":"active","eventDescription":"Access Controller Event","AccessControllerEvent":{{"deviceName":"Lobby","majorEventType":5,"subEventType":{minor},"name":"Leyla Aydin","employeeNoString":"{employee}","cardReaderNo":1,"doorNo":1,"userType":"normal","currentVerifyMode":"cardOrFace","attendanceStatus":"checkIn","label":"Check In","serialNo":{serial},"currentEvent":{current},"mask":"no","picturesNumber":1}}}}"#
    )
}

fn hik_post(site: &Site, content_type: &str, body: &[u8]) -> (u16, String) {
    request(
        site.hik,
        "POST",
        "/events",
        &[("Content-Type", content_type)],
        body,
    )
    .expect("daemon answers")
}

#[test]
fn hikvision_json_xml_multipart_duplicates_history_and_door_events() {
    let mut site = Site::new();
    let _d = site.start();
    let json = "application/json";

    // Bare JSON.
    let live = hik_json(48211, 75, "1043", true, "2025-03-04T08:57:12+03:00");
    assert_eq!(hik_post(&site, json, live.as_bytes()), (200, "OK".into()));
    // The same serialNo again (a re-send): stored once.
    assert_eq!(hik_post(&site, json, live.as_bytes()), (200, "OK".into()));

    // XML.
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EventNotificationAlert version=\"2.0\">\n\
               <ipAddress>10.20.1.31</ipAddress>\n<macAddress>24:0f:9b:4e:aa:10</macAddress>\n\
               <dateTime>2025-03-04T09:04:40+03:00</dateTime>\n<eventType>AccessControllerEvent</eventType>\n\
               <AccessControllerEvent>\n<majorEventType>5</majorEventType>\n<subEventType>75</subEventType>\n\
               <employeeNoString>0217</employeeNoString>\n<attendanceStatus>checkIn</attendanceStatus>\n\
               <serialNo>48212</serialNo>\n<currentEvent>true</currentEvent>\n</AccessControllerEvent>\n\
               </EventNotificationAlert>\n";
    assert_eq!(
        hik_post(&site, "application/xml", xml.as_bytes()),
        (200, "OK".into())
    );

    // Multipart with the JSON part and a JPEG (which holds braces).
    let event = hik_json(48213, 75, "0300", true, "2025-03-04T09:10:00+03:00");
    let mut mp = Vec::new();
    mp.extend_from_slice(
        b"--MIME_boundary\r\nContent-Disposition: form-data; name=\"event_log\"\r\n\
          Content-Type: application/json\r\nContent-Length: ",
    );
    mp.extend_from_slice(format!("{}\r\n\r\n{event}\r\n", event.len()).as_bytes());
    mp.extend_from_slice(
        b"--MIME_boundary\r\nContent-Disposition: form-data; name=\"Picture\"; filename=\"face.jpg\"\r\n\
          Content-Type: image/jpeg\r\n\r\n\xFF\xD8\xFF\xE0\x00\x10JFIF\x00{\"not\":\"json\"}\xFF\xD9\r\n\
          --MIME_boundary--\r\n",
    );
    assert_eq!(
        hik_post(&site, "multipart/form-data; boundary=MIME_boundary", &mp),
        (200, "OK".into())
    );

    // History replay (currentEvent false): a punch, late.
    let history = hik_json(48100, 75, "1043", false, "2025-03-03T18:02:05+03:00");
    assert_eq!(
        hik_post(&site, json, history.as_bytes()),
        (200, "OK".into())
    );

    // Door and lock events, and a heartbeat: answered, not stored.
    for (serial, minor) in [(48214, 21), (48215, 22), (48216, 25)] {
        let door = hik_json(serial, minor, "", true, "2025-03-04T09:10:01+03:00");
        assert_eq!(hik_post(&site, json, door.as_bytes()), (200, "OK".into()));
    }
    let beat = r#"{"ipAddress":"10.20.1.31","dateTime":"2025-03-04T09:10:02+03:00","eventType":"heartBeat"}"#;
    assert_eq!(hik_post(&site, json, beat.as_bytes()), (200, "OK".into()));

    let p = site.punches();
    assert_eq!(p.len(), 4, "{p:#?}");
    let mut ids: Vec<(&str, &str)> = p
        .iter()
        .map(|p| (p.employee_id.as_str(), p.event_id.as_deref().unwrap_or("")))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            ("0217", "48212"),
            ("0300", "48213"),
            ("1043", "48100"),
            ("1043", "48211")
        ]
    );
    assert!(
        p.iter()
            .all(|p| p.device_id.as_deref() == Some("24:0f:9b:4e:aa:10"))
    );
    assert_eq!(site.count_where("raw LIKE '%JFIF%'"), 0, "image stored");
    assert!(site.quarantine().is_empty(), "{:#?}", site.quarantine());

    // A jump in serialNo: events possibly lost, counted per terminal.
    let after_gap = hik_json(48220, 75, "1043", true, "2025-03-04T12:00:00+03:00");
    assert_eq!(
        hik_post(&site, json, after_gap.as_bytes()),
        (200, "OK".into())
    );
    let m = site.metrics();
    assert!(
        m.contains("attendd_push_lost_events_total{device=\"24:0f:9b:4e:aa:10\"} 3"),
        "{m}"
    );
    assert!(site.logs().contains("3 event(s) possibly lost"));
}

fn deflate(bytes: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(bytes).unwrap();
    z.finish().unwrap()
}

#[test]
fn dahua_text_envelope_deflate_auth_and_size_limit() {
    let mut site = Site::new();
    let _d = site.start();
    let auth = format!(
        "Basic {}",
        attendd::source::push::base64(format!("dahua:{DAHUA_PASSWORD}").as_bytes())
    );
    let post = |ct: &str, extra: &[(&str, &str)], body: &[u8]| {
        let mut h = vec![("Content-Type", ct), ("Authorization", auth.as_str())];
        h.extend_from_slice(extra);
        request(site.dahua, "POST", "/dahua/event", &h, body).unwrap()
    };

    // Without credentials: 401, nothing stored.
    let text_part = "--myboundary\r\nContent-Type: text/plain\r\n\r\n\
        Code=AccessControl;action=Pulse;index=0;data={\n\
        \"CardNo\":\"\",\"Door\":0,\"ErrorCode\":0,\"LocaleTime\":\"2025-03-04 08:57:12\",\"Method\":15,\"ReaderID\":\"1\",\n\
        \"RecNo\":5521,\"Status\":1,\"Type\":\"Entry\",\"UTC\":1741067832,\"UserID\":\"1043\",\"UserType\":0}\r\n\
        --myboundary\r\nContent-Type: text/plain\r\n\r\nHeartbeat\r\n--myboundary--\r\n";
    let ct = "multipart/x-mixed-replace; boundary=myboundary";
    let r = request(
        site.dahua,
        "POST",
        "/dahua/event",
        &[("Content-Type", ct)],
        text_part.as_bytes(),
    )
    .unwrap();
    assert_eq!(r.0, 401);

    // Text part (JSON spanning lines) with a heartbeat part.
    assert_eq!(post(ct, &[], text_part.as_bytes()), (200, "OK".into()));
    // The same RecNo again: stored once.
    assert_eq!(post(ct, &[], text_part.as_bytes()), (200, "OK".into()));

    // The Events envelope; the second event has UTC written as local wall
    // time (the trap): LocaleTime in the site zone wins.
    let envelope = r#"{"Events":[
        {"Code":"AccessControl","Action":"Pulse","Index":0,"Data":{"UserID":"0217","RecNo":5522,"Status":1,"Type":"Exit","Method":15,"UTC":1741100525,"LocaleTime":"2025-03-04 18:02:05"}},
        {"Code":"AccessControl","Action":"Pulse","Index":0,"Data":{"UserID":"0300","RecNo":5523,"Status":1,"Type":"Entry","Method":1,"UTC":1741078632,"LocaleTime":"2025-03-04 08:57:12"}},
        {"Code":"AccessControl","Action":"Pulse","Index":0,"Data":{"UserID":"","RecNo":5524,"Status":1,"Type":"Entry","Method":5,"UTC":1741078700,"LocaleTime":"2025-03-04 08:58:20"}}]}"#;
    assert_eq!(
        post("application/json", &[], envelope.as_bytes()),
        (200, "OK".into())
    );

    // Deflate-compressed envelope.
    let compressed = r#"{"Events":[{"Code":"AccessControl","Action":"Pulse","Index":0,"Data":{"UserID":"0400","RecNo":5525,"Status":1,"Type":"Entry","Method":15,"RealUTC":1741068000,"UTC":1741078800,"LocaleTime":"2025-03-04 09:00:00"}}]}"#;
    assert_eq!(
        post(
            "application/json",
            &[("Content-Encoding", "deflate")],
            &deflate(compressed.as_bytes())
        ),
        (200, "OK".into())
    );

    let p = site.punches();
    let mut got: Vec<(String, String, String)> = p
        .iter()
        .map(|p| {
            (
                p.employee_id.clone(),
                p.event_id.clone().unwrap_or_default(),
                p.time.to_rfc3339(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "0217".into(),
                "5522".into(),
                "2025-03-04T15:02:05+00:00".into()
            ),
            (
                "0300".into(),
                "5523".into(),
                "2025-03-04T05:57:12+00:00".into()
            ),
            (
                "0400".into(),
                "5525".into(),
                "2025-03-04T06:00:00+00:00".into()
            ),
            (
                "1043".into(),
                "5521".into(),
                "2025-03-04T05:57:12+00:00".into()
            ),
        ],
        "{p:#?}"
    );
    assert!(site.quarantine().is_empty(), "{:#?}", site.quarantine());

    // Bodies over max_body_bytes (4096), as sent or once inflated: 413.
    let big = vec![b' '; 8192];
    assert_eq!(post("application/json", &[], &big).0, 413);
    assert_eq!(
        post(
            "application/json",
            &[("Content-Encoding", "deflate")],
            &deflate(&big)
        )
        .0,
        413
    );
    assert_eq!(site.punches().len(), 4);
}

/// The stamp table on both engines.
mod stamps {
    use super::*;

    async fn roundtrip(store: &Store) {
        let t = Utc::now();
        assert!(store.push_stamps("SN1").await.unwrap().is_empty());
        store
            .save_push_stamp("SN1", "ATTLOG", "9999", t)
            .await
            .unwrap();
        store
            .save_push_stamp("SN1", "OPERLOG", "5", t)
            .await
            .unwrap();
        store
            .save_push_stamp("SN1", "ATTLOG", "10002", t)
            .await
            .unwrap();
        store
            .save_push_stamp("SN2", "ATTLOG", "1", t)
            .await
            .unwrap();
        assert_eq!(
            store.push_stamps("SN1").await.unwrap(),
            [
                ("ATTLOG".to_string(), "10002".to_string()),
                ("OPERLOG".to_string(), "5".to_string())
            ]
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
            let url = format!("sqlite://{}", dir.path().join("a.db").display());
            let s = Store::open(&url).await.unwrap();
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
                panic!("push stamps: TEST_POSTGRES_URL is not set but ATTENDD_REQUIRE_SERVICES=1")
            }
            _ => {
                eprintln!("skipping postgres: TEST_POSTGRES_URL not set (push stamps)");
                return;
            }
        };
        rt().block_on(async {
            let schema = crate::services::unique("push").replace('-', "_");
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
fn check_config_lists_push_sources_and_names_bad_keys() {
    let site = Site::new();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&site.config)
        .env(DAHUA_PASSWORD_ENV, DAHUA_PASSWORD)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "source zk_push: 127.0.0.1:{} terminals {SN},{SN_KOLKATA}",
            site.zk
        )),
        "{text}"
    );
    assert!(text.contains("decoder dahua"), "{text}");

    let bad = site.dir.path().join("bad.toml");
    let good = std::fs::read_to_string(&site.config).unwrap();
    std::fs::write(
        &bad,
        good.replace("timezone = \"Asia/Kolkata\"", "timezone = \"Mars/Olympus\"")
            .replace("decoder = \"dahua\"", "decoder = \"json\""),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for key in [
        "source.zk_push[0].terminals[1].timezone",
        "source.hik_http[1].decoder",
        "source.hik_http[1].password_env",
    ] {
        assert!(err.contains(key), "{key} not named in:\n{err}");
    }
}

#[test]
fn a_taken_push_port_is_a_start_error_naming_the_key() {
    let site = Site::new();
    let taken = TcpListener::bind(("127.0.0.1", site.zk)).unwrap();
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&site.config)
        .env(DAHUA_PASSWORD_ENV, DAHUA_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    drop(taken);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("source.zk_push[0].listen"), "{err}");
}

#[test]
fn path_secret_guards_every_url() {
    let mut site = Site::new();
    let secret = "k3y-0f-the-site_123";
    let text = std::fs::read_to_string(&site.config).unwrap();
    let text = text
        .replace(
            &format!("listen = \"127.0.0.1:{}\"\n", site.zk),
            &format!(
                "listen = \"127.0.0.1:{}\"\npath_secret_env = \"ATTENDD_TEST_PUSH_SECRET\"\n",
                site.zk
            ),
        )
        .replace(
            &format!("listen = \"127.0.0.1:{}\"\n", site.hik),
            &format!(
                "listen = \"127.0.0.1:{}\"\npath_secret_env = \"ATTENDD_TEST_PUSH_SECRET\"\n",
                site.hik
            ),
        );
    std::fs::write(&site.config, text).unwrap();
    let _d = site.start_with(&[("ATTENDD_TEST_PUSH_SECRET", secret)]);

    let (code, _) = handshake(&site, SN);
    assert_eq!(code, 404);
    let r = request(
        site.zk,
        "GET",
        &format!("/{secret}/iclock/cdata?SN={SN}&options=all"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(r.0, 200, "{r:?}");
    let r = request(
        site.zk,
        "POST",
        &format!("/{secret}/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=1"),
        &[],
        BATCH.as_bytes(),
    )
    .unwrap();
    assert_eq!(r, (200, "OK:3".into()));

    let live = hik_json(1, 75, "1043", true, "2025-03-04T08:57:12+03:00");
    let r = hik_post(&site, "application/json", live.as_bytes());
    assert_eq!(r.0, 404, "{r:?}");
    let r = request(
        site.hik,
        "POST",
        &format!("/{secret}/ISAPI/events"),
        &[("Content-Type", "application/json")],
        live.as_bytes(),
    )
    .unwrap();
    assert_eq!(r, (200, "OK".into()));
    assert_eq!(site.punches().len(), 4);
}

#[test]
fn a_terminal_over_its_rate_gets_429_and_others_are_unaffected() {
    let mut site = Site::new();
    let text = std::fs::read_to_string(&site.config).unwrap().replace(
        "delay_seconds = 10\n",
        "delay_seconds = 10\nrate_per_second = 0.01\nburst = 2\n",
    );
    std::fs::write(&site.config, text).unwrap();
    let _d = site.start();
    let poll = |sn: &str| {
        request(
            site.zk,
            "GET",
            &format!("/iclock/getrequest?SN={sn}"),
            &[],
            b"",
        )
        .unwrap()
        .0
    };
    assert_eq!(poll(SN), 200);
    assert_eq!(poll(SN), 200);
    assert_eq!(poll(SN), 429);
    assert_eq!(poll(SN_KOLKATA), 200);
    let m = site.metrics();
    assert!(
        m.contains("attendd_push_requests_total{outcome=\"rate_limited\",source=\"zk_push[0]\"} 1"),
        "{m}"
    );
}

// ---------------------------------------------------------------------------
// Issue 11: access-control firmware, OPERLOG, compression, Uniview, unknown
// employees and the quarantine replay; issue 13: bounded quarantine.

/// A SpeedFace-V3L's `table=rtlog` upload, as quoted ("Trama real enviada
/// por el SpeedFace-V3L", SN CRJP230860129) in the test suite of a public
/// Node.js ZKTeco ADMS server (`accPushService` / `cdataController`
/// tests): a verified pass (event 0) and an unregistered person (event 27,
/// pin 0). The serial number is replaced by the test terminal's.
const RTLOG: &str = "time=2026-09-28 11:40:45\tpin=41235478\tcardno=0\teventaddr=1\tevent=0\tinoutstatus=0\tverifytype=1\tindex=13355\tsitecode=0\tlinkid=0\tmaskflag=0\ttemperature=0\tconvtemperature=0\n\
time=2026-09-28 11:45:56\tpin=0\tcardno=0\teventaddr=1\tevent=27\tinoutstatus=1\tverifytype=1\tindex=13357\tsitecode=0\tlinkid=0\tmaskflag=0\ttemperature=0\tconvtemperature=0\n";

/// A Uniview face terminal's `PersonVerification` notification (device
/// 210235C3R0320B000985), as kept in a public Go tool that masks the
/// photos of such notifications (`replaceDataReg`, `replaceFeatureReg`);
/// photo data shortened.
const UNIVIEW: &str = r#"{"Reference":"","Seq":9,"DeviceCode":"210235C3R0320B000985","Timestamp":1624364137,"NotificationType":0,"FaceInfoNum":1,"FaceInfoList":[{"ID":9,"Timestamp":1624364136,"CapSrc":1,"FeatureNum":0,"FeatureList":[{"FeatureVersion":"","Feature":"QAAAQABAAD/2wDFABsSFBcUERsXFhceHB"}],"Temperature":0,"MaskFlag":0,"PanoImage":{"Name":"1624364136_1_93.jpg","Size":134884,"Data":"/9j/4AAQSkZJRgABAQAAAQABAAD/2wDFABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdAY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2N+mRJbiARSuJMfdYjkU0SSN/q4SfwzR5V22Moye5OKAGRGewfbKhaBu4521fBBAKkFSMg+tUnsnmQpLcsqnrs61PbW0VpAIYixVe7HJoAmooo70AGaQ/NnNHel4FADo5OiP17GpKgPIp6SfwOeexoAkopKWgAooooAKM0UlAC0UUlAC0UlFAC0lFGaACikozQAtJRmj86AP/9k="},"FaceArea":{"LeftTopX":2555,"LeftTopY":5390,"RightBottomX":4620,"RightBottomY":6531}}],"CardInfoNum":0,"CardInfoList":[],"GateInfoNum":0,"GateInfoList":[],"LibMatInfoNum":1,"LibMatInfoList":[{"ID":9,"LibID":3,"LibType":3,"MatchStatus":1,"MatchPersonID":111,"MatchFaceID":1,"MatchPersonInfo":{"PersonCode":"111","PersonName":"\u4f4f\u62371","Gender":0,"CardID":"","IdentityNo":""}}]}"#;

fn count_metric(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn zk_access_control_firmware_registers_and_its_verified_rtlog_events_are_punches() {
    let mut site = Site::new();
    let mut d = site.start();
    let (code, body) = request(
        site.zk,
        "GET",
        &format!("/iclock/cdata?SN={SN}&options=all&pushver=3.1.2&DeviceType=acc"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("registry=ok\n"), "{body}");
    let reg = option(&body, "RegistryCode")
        .expect("RegistryCode")
        .to_string();
    let (code, body) = request(
        site.zk,
        "POST",
        &format!("/iclock/registry?SN={SN}"),
        &[],
        b"DeviceType=acc,~DeviceName=SpeedFace-V3L,FirmVer=ZAM180-NF-Ver1.0.0",
    )
    .unwrap();
    assert_eq!(
        (code, body.trim()),
        (200, format!("RegistryCode={reg}").as_str())
    );
    let (code, body) =
        request(site.zk, "POST", &format!("/iclock/push?SN={SN}"), &[], b"").unwrap();
    assert_eq!(code, 200, "{body}");
    assert_eq!(option(&body, "Realtime"), Some("1"), "{body}");
    let (code, body) = request(
        site.zk,
        "GET",
        &format!("/iclock/rtdata?SN={SN}&type=time"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.starts_with("DateTime=") && body.contains(",ServerTZ=+0300"),
        "{body}"
    );
    // Unknown serial numbers stay refused on the new routes too.
    let (code, _) = request(site.zk, "POST", "/iclock/registry?SN=NOPE", &[], b"").unwrap();
    assert_eq!(code, 403);

    let rtlog = |body: &str| {
        request(
            site.zk,
            "POST",
            &format!("/iclock/cdata?SN={SN}&table=rtlog"),
            &[("Content-Type", "text/plain")],
            body.as_bytes(),
        )
        .unwrap()
    };
    assert_eq!(rtlog(RTLOG), (200, "OK".to_string()));
    let p = site.punches();
    assert_eq!(p.len(), 1, "{p:?}\n{}", site.logs());
    assert_eq!(p[0].employee_id, "41235478");
    assert_eq!(p[0].device_id.as_deref(), Some(SN));
    // Istanbul (+03:00) wall time.
    assert_eq!(p[0].time.to_rfc3339(), "2026-09-28T08:40:45+00:00");
    assert!(site.quarantine().is_empty(), "{:?}", site.quarantine());
    // The door event is counted as ignored, by kind.
    let m = site.metrics();
    assert_eq!(
        count_metric(
            &m,
            "attendd_ignored_events_total{",
            "kind=\"rtlog event N is not a verified pass\""
        ),
        1.0,
        "{m}"
    );
    // Re-sent after a lost answer: stored once.
    assert_eq!(rtlog(RTLOG).0, 200);
    assert_eq!(site.punches().len(), 1);
    // A garbage line is quarantined with its own text.
    assert_eq!(rtlog("not an event at all\n").0, 200);
    let q = site.quarantine();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(
        String::from_utf8_lossy(&q[0].payload),
        "not an event at all"
    );
    d.kill();
}

#[test]
fn zk_operlog_is_answered_ok_n_with_its_opstamp_kept_and_remote_att_gets_its_own_answer() {
    let mut site = Site::new();
    let mut d = site.start();
    let oplog = "OPLOG 4\t0\t2025-03-04 08:50:01\t0\t0\t0\t0\nUSER PIN=1043\tName=Leyla\tPri=0\tPasswd=\tCard=\tGrp=1\tTZ=0000000100000000\n";
    let (code, body) = request(
        site.zk,
        "POST",
        &format!("/iclock/cdata?SN={SN}&table=OPERLOG&OpStamp=7765"),
        &[("Content-Type", "text/plain")],
        oplog.as_bytes(),
    )
    .unwrap();
    assert_eq!((code, body.as_str()), (200, "OK:2"));
    let (_, hs) = handshake(&site, SN);
    assert_eq!(option(&hs, "OPERLOGStamp"), Some("7765"), "{hs}");
    assert_eq!(option(&hs, "OpStamp"), Some("7765"), "{hs}");
    let (code, body) = request(
        site.zk,
        "GET",
        &format!("/iclock/cdata?SN={SN}&table=RemoteAtt&PIN=1043"),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!(code, 200);
    assert!(!body.contains("GET OPTION FROM"), "{body}");
    assert!(site.punches().is_empty());
    d.kill();
}

#[test]
fn zk_gzip_and_deflate_uploads_are_inflated_within_the_body_limit() {
    use flate2::Compression;
    use flate2::write::GzEncoder;
    let mut site = Site::new();
    let mut d = site.start();
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(b"1043\t2025-03-04 08:57:12\t0\t15\t0\t0\t0\n")
        .unwrap();
    let gz = gz.finish().unwrap();
    let (code, body) = request(
        site.zk,
        "POST",
        &format!("/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=1"),
        &[("Content-Encoding", "gzip")],
        &gz,
    )
    .unwrap();
    assert_eq!((code, body.as_str()), (200, "OK:1"));
    let (code, body) = request(
        site.zk,
        "POST",
        &format!("/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=2"),
        &[("Content-Encoding", "deflate")],
        &deflate(b"0217\t2025-03-04 09:04:40\t0\t1\t0\t0\t0\n"),
    )
    .unwrap();
    assert_eq!((code, body.as_str()), (200, "OK:1"));
    let p = site.punches();
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(site.quarantine().is_empty(), "{:?}", site.quarantine());
    // A bomb is refused, not inflated without bound.
    let mut bomb = GzEncoder::new(Vec::new(), Compression::best());
    bomb.write_all(&vec![b'1'; 8 * 1024 * 1024]).unwrap();
    let bomb = bomb.finish().unwrap();
    let (code, _) = request(
        site.zk,
        "POST",
        &format!("/iclock/cdata?SN={SN}&table=ATTLOG&Stamp=3"),
        &[("Content-Encoding", "gzip")],
        &bomb,
    )
    .unwrap();
    assert_eq!(code, 413);
    d.kill();
}

#[test]
fn uniview_person_verification_is_a_punch_answered_in_lapi_json_and_photos_never_kept() {
    let mut site = Site::new();
    let mut d = site.start();
    let path = "/LAPI/V1.0/System/Event/Notification/PersonVerification";
    let (code, body) = request(
        site.unv,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        UNIVIEW.as_bytes(),
    )
    .unwrap();
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("a JSON answer");
    assert_eq!(v["Response"]["StatusCode"], 0, "{body}");
    assert_eq!(v["Response"]["ResponseURL"], path, "{body}");
    let p = site.punches();
    assert_eq!(p.len(), 1, "{p:?}\n{}", site.logs());
    assert_eq!(p[0].employee_id, "111");
    assert_eq!(p[0].device_id.as_deref(), Some("210235C3R0320B000985"));
    assert_eq!(p[0].time.to_rfc3339(), "2021-06-22T12:15:37+00:00");
    // The punch's raw text keeps no photo either.
    assert_eq!(
        site.count_where("raw LIKE '%/9j/4AAQSkZJRgABAQAAAQABAAD%'"),
        0
    );
    // A notification that cannot be read, with a large photo: quarantined
    // without it.
    let photo = "/9j/".to_string() + &"QUFB".repeat(2000);
    let bad = UNIVIEW
        .replace("\"PersonCode\":\"111\"", "\"PersonCode\":\"\"")
        .replace("\"MatchPersonID\":111", "\"MatchPersonID\":0")
        .replace(
            "\"Size\":134884,\"Data\":\"/9j/",
            &format!("\"Size\":134884,\"Data\":\"{photo}"),
        );
    let (code, body) = request(site.unv, "POST", path, &[], bad.as_bytes()).unwrap();
    assert_eq!(code, 200, "{body}");
    let q = site.quarantine();
    assert_eq!(q.len(), 1, "{q:?}");
    let kept = String::from_utf8_lossy(&q[0].payload);
    assert!(!kept.contains("QUFBQUFB"), "photo kept: {kept}");
    assert!(kept.contains("photo removed"), "{kept}");
    assert!(q[0].reason.starts_with("uniview:"), "{}", q[0].reason);
    d.kill();
}

#[test]
fn an_upload_of_garbage_keeps_100_bad_records_and_one_summary() {
    let mut site = Site::new();
    let mut d = site.start();
    let body: String = (0..1000).map(|i| format!("garbage line {i}\n")).collect();
    let (code, answer) = zk_post(&site, SN, "ATTLOG", "5", &body);
    assert_eq!((code, answer.as_str()), (200, "OK:1000"));
    let q = site.with_store(|s| Box::pin(async move { s.quarantined(5000).await.unwrap() }));
    assert_eq!(q.len(), 101, "{}", q.len());
    let summaries: Vec<_> = q
        .iter()
        .filter(|r| r.kind == attendd::store::QuarantineKind::Summary)
        .collect();
    assert_eq!(summaries.len(), 1);
    assert!(
        summaries[0].reason.starts_with("900 further"),
        "{}",
        summaries[0].reason
    );
    // The kept ones are replayable: they know their decoder and terminal.
    let kept = q
        .iter()
        .find(|r| r.kind != attendd::store::QuarantineKind::Summary)
        .unwrap();
    let info = kept.replay.as_ref().expect("replay information");
    assert_eq!(info.decoder, "zk-attlog");
    assert_eq!(info.device_id.as_deref(), Some(SN));
    assert_eq!(info.timezone, "Europe/Istanbul");
    d.kill();
}

#[test]
fn unknown_employees_are_quarantined_and_replayed_once_after_import() {
    let mut site = Site::new();
    let employees = site.dir.path().join("employees.csv");
    std::fs::write(
        &employees,
        "employee_id,name,team,supervisor\n1043,Leyla Aydin,gate,S1\n",
    )
    .unwrap();
    site.cli(&["import", "employees", employees.to_str().unwrap()]);
    let mut d = site.start();
    let body = "1043\t2025-03-04 08:57:12\t0\t15\t0\t0\t0\n\
                &xxe;\t2025-03-04 08:58:00\t0\t15\t0\t0\t0\n\
                2001\t2025-03-04 09:01:00\t0\t1\t0\t0\t0\n";
    assert_eq!(
        zk_post(&site, SN, "ATTLOG", "9", body),
        (200, "OK:3".to_string())
    );
    let p = site.punches();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].employee_id, "1043");
    let q = site.quarantine();
    assert_eq!(q.len(), 2, "{q:?}");
    for r in &q {
        assert_eq!(r.kind, attendd::store::QuarantineKind::Unknown, "{r:?}");
        assert!(r.reason.starts_with("unknown employee"), "{}", r.reason);
        assert!(r.reason.contains("quarantine replay"), "{}", r.reason);
    }
    // HR imports the new hire; the replay stores that punch, once.
    std::fs::write(
        &employees,
        "employee_id,name,team,supervisor\n1043,Leyla Aydin,gate,S1\n2001,Deniz Kaya,gate,S1\n",
    )
    .unwrap();
    site.cli(&["import", "employees", employees.to_str().unwrap()]);
    let out = site.cli(&["quarantine", "replay", "--all", "--json"]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["replay"]["stored"], 1, "{out}");
    assert_eq!(r["replay"]["resolved"], 1, "{out}");
    assert_eq!(
        r["replay"]["unresolved"].as_array().unwrap().len(),
        1,
        "{out}"
    );
    let ids: Vec<String> = site.punches().into_iter().map(|p| p.employee_id).collect();
    assert_eq!(ids.iter().filter(|i| *i == "2001").count(), 1, "{ids:?}");
    // Again: nothing more is stored; the resolved row is skipped by id.
    let resolved = site
        .quarantine()
        .into_iter()
        .find(|r| r.resolved.is_some())
        .expect("a resolved row");
    let out = site.cli(&["quarantine", "replay", &resolved.id.to_string(), "--json"]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["replay"]["stored"], 0, "{out}");
    assert_eq!(r["replay"]["skipped"].as_array().unwrap().len(), 1, "{out}");
    let out = site.cli(&["quarantine", "replay", "--all", "--json"]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["replay"]["stored"], 0, "{out}");
    assert_eq!(site.punches().len(), 2);
    // The forged id was never stored and is still waiting.
    assert_eq!(site.count_where("identity = '&xxe;'"), 0);
    let audit =
        site.with_store(|s| Box::pin(async move { s.audit(Some("quarantine")).await.unwrap() }));
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0].cause, "quarantine replay");
    assert_eq!(audit[0].row_key, resolved.id.to_string());
    d.kill();
}

#[test]
fn rows_kept_before_replay_information_replay_with_their_source_named() {
    let mut site = Site::new();
    let mut d = site.start();
    // A row as kept before migration 0005: source and payload only.
    let id = site.with_store(|s| {
        Box::pin(async move {
            s.quarantine(
                &attendd::store::NewQuarantine {
                    source: format!("zk_push[0]:{SN} line 1"),
                    payload: b"1043\t2025-03-04 08:57:12\t0\t15\t0\t0\t0".to_vec(),
                    reason: "unknown alias \"1043\"".into(),
                    ..Default::default()
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap()
        })
    });
    let id = id.to_string();
    let out = site.cli(&["quarantine", "replay", &id, "--json"]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["replay"]["stored"], 0, "{out}");
    assert!(
        r["replay"]["unresolved"][0][1]
            .as_str()
            .unwrap()
            .contains("--source"),
        "{out}"
    );
    let source = format!("zk_push[0]:{SN}");
    let out = site.cli(&["quarantine", "replay", &id, "--source", &source, "--json"]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["replay"]["stored"], 1, "{out}");
    let p = site.punches();
    assert_eq!(p.len(), 1, "{p:?}");
    // Decoded as the terminal's: its serial number and zone.
    assert_eq!(p[0].device_id.as_deref(), Some(SN));
    assert_eq!(p[0].time.to_rfc3339(), "2025-03-04T05:57:12+00:00");
    d.kill();
}

/// A request whose head is sent without its body: refused at once when the
/// client is not admitted (unknown serial number, no credentials), instead
/// of holding the connection while the handler waits for the body.
#[test]
fn refused_requests_are_answered_before_their_body_arrives() {
    let mut site = Site::new();
    let _d = site.start();
    let head_only = |port: u16, path: &str| -> (u16, Duration) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let t = Instant::now();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
             Content-Length: 100000\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap_or(0);
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        (code, t.elapsed())
    };
    let (code, took) = head_only(
        site.zk,
        "/iclock/cdata?SN=NOT-A-TERMINAL&table=ATTLOG&Stamp=1",
    );
    assert_eq!(code, 403, "unknown terminal");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let (code, took) = head_only(site.zk, "/iclock/cdata?table=ATTLOG&Stamp=1");
    assert_eq!(code, 400, "no serial number");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let (code, took) = head_only(site.dahua, "/cgi-bin/api/AccessControl/event");
    assert_eq!(code, 401, "no credentials");
    assert!(took < Duration::from_secs(10), "{took:?}");
}
