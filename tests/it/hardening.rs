//! Issue 13, inputs and limits: dates outside 2000-01-01 … 2100-12-31 are
//! refused with the field named (they aborted the daemon), manual points are
//! bounded by the policy's `score_base`, bearer schemes are
//! case-insensitive, JSON routes want a JSON body, exports neutralise
//! formulas, store commands start without the daemon's secrets, HTTP
//! listeners close half-sent requests, and a full disk does not poison the
//! store.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

use crate::hr_fixture::{Fixture, HR, POLICY, SUP_A, call, fixture};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");

/// A request with exactly these headers; (status, body).
async fn raw(
    r: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = r
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&b).into_owned())
}

/// Issue 13: each of these aborted the daemon (`panic = "abort"`); the
/// correction was committed before the panic.
#[tokio::test]
async fn issue13_dates_out_of_range_are_400_naming_the_field() {
    let f = fixture().await;
    let r = f.router();
    let audit_before = f.store.audit(None).await.unwrap().len();
    for (tok, m, uri, body, field) in [
        (
            SUP_A,
            "GET",
            "/api/v1/punches?date=-262143-01-01",
            None,
            "date",
        ),
        (
            SUP_A,
            "GET",
            "/api/v1/employees/E001/days?month=-262143-01",
            None,
            "month",
        ),
        (
            SUP_A,
            "POST",
            "/api/v1/corrections",
            Some(json!({"employee_id":"E001","time":"-262143-01-02 12:00:00","reason":"forgot"})),
            "time",
        ),
        (
            HR,
            "POST",
            "/api/v1/corrections",
            Some(json!({"employee_id":"E001","time":"2101-01-01T12:00:00+08:00","reason":"x"})),
            "time",
        ),
        (HR, "GET", "/api/v1/days/-262143-01-01", None, "date"),
        (HR, "GET", "/api/v1/summaries/1999-12-31", None, "date"),
        (HR, "GET", "/api/v1/months/2101-01", None, "month"),
        (
            HR,
            "POST",
            "/api/v1/months/-262143-01/publish",
            None,
            "month",
        ),
        (
            HR,
            "GET",
            "/api/v1/months/+262142-12/export?format=csv",
            None,
            "month",
        ),
        (
            HR,
            "POST",
            "/api/v1/ledger",
            Some(
                json!({"employee_id":"E001","date":"-262143-01-01","rule":"dress_code","note":"x"}),
            ),
            "date",
        ),
    ] {
        let rep = call(&r, m, uri, Some(tok), body).await;
        assert_eq!(
            rep.status,
            StatusCode::BAD_REQUEST,
            "{m} {uri}: {}",
            rep.text()
        );
        let e = rep.json()["error"].as_str().unwrap_or("").to_string();
        assert!(e.starts_with(field), "{m} {uri}: {e}");
        assert!(e.contains("outside"), "{m} {uri}: {e}");
    }
    assert_eq!(
        f.store.audit(None).await.unwrap().len(),
        audit_before,
        "nothing was written"
    );
    // The bounds themselves are dates like any other.
    let rep = call(&r, "GET", "/api/v1/punches?date=2000-01-01", Some(HR), None).await;
    assert_eq!(rep.status, StatusCode::OK, "{}", rep.text());
    let rep = call(&r, "GET", "/api/v1/days/2100-12-31", Some(HR), None).await;
    assert_eq!(rep.status, StatusCode::OK, "{}", rep.text());
}

/// Issue 13: 1e9 and 92233720368547758 points were accepted (the second
/// overflowed a month's score to 100.16).
#[tokio::test]
async fn issue13_manual_points_are_bounded_by_score_base() {
    let f = fixture().await;
    let r = f.router();
    for p in [
        json!(1_000_000_000),
        json!(92_233_720_368_547_758_i64),
        json!(100.01),
        json!(0),
        json!(-1),
    ] {
        let rep = call(
            &r,
            "POST",
            "/api/v1/ledger",
            Some(HR),
            Some(
                json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","points":p,"note":"jeans"}),
            ),
        )
        .await;
        assert_eq!(rep.status, StatusCode::BAD_REQUEST, "{p}: {}", rep.text());
        let e = rep.json()["error"].as_str().unwrap_or("").to_string();
        assert!(e.contains("points"), "{p}: {e}");
    }
    // score_base itself (100 in the seed policy) is the largest accepted.
    let rep = call(
        &r,
        "POST",
        "/api/v1/ledger",
        Some(HR),
        Some(
            json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","points":100,"note":"jeans"}),
        ),
    )
    .await;
    assert_eq!(rep.status, StatusCode::CREATED, "{}", rep.text());
}

/// Issue 13: `Authorization: bearer …` was refused; any Content-Type was
/// accepted on JSON routes.
#[tokio::test]
async fn issue13_bearer_scheme_any_case_and_415_for_non_json() {
    let f = fixture().await;
    let r = f.router();
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (s, b) = raw(
            &r,
            "GET",
            "/api/v1/whoami",
            &[("authorization", &format!("{scheme} {HR}"))],
            "",
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{scheme}: {b}");
    }
    let auth = format!("Bearer {HR}");
    let entry =
        json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":"jeans"})
            .to_string();
    for (ct, want) in [
        (Some("text/plain"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (
            Some("application/x-www-form-urlencoded"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (None, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        (Some("application/json; charset=utf-8"), StatusCode::CREATED),
        (Some("Application/JSON"), StatusCode::CREATED),
    ] {
        let mut h = vec![("authorization", auth.as_str())];
        if let Some(ct) = ct {
            h.push(("content-type", ct));
        }
        let (s, b) = raw(&r, "POST", "/api/v1/ledger", &h, &entry).await;
        assert_eq!(s, want, "{ct:?}: {b}");
        if want == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            let j: serde_json::Value = serde_json::from_str(&b).unwrap();
            assert!(j["error"].as_str().unwrap().contains("content-type"), "{b}");
        }
    }
    for uri in [
        "/api/v1/corrections",
        "/api/v1/appeals",
        "/api/v1/appeals/1/answer",
    ] {
        let (s, b) = raw(
            &r,
            "POST",
            uri,
            &[("authorization", &auth), ("content-type", "text/xml")],
            "{}",
        )
        .await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{uri}: {b}");
    }
    // Authentication still comes first.
    let (s, _) = raw(
        &r,
        "POST",
        "/api/v1/ledger",
        &[("content-type", "text/plain")],
        &entry,
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// Issue 13: a note starting with `=`, `+`, `-` or `@` was written raw into
/// CSV and XLSX exports.
#[tokio::test]
async fn issue13_exports_neutralise_formulas() {
    let f = fixture().await;
    let r = f.router();
    let notes = [
        "=HYPERLINK(\"http://evil.example/\",\"click\")",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
    ];
    for n in notes {
        let rep = call(
            &r,
            "POST",
            "/api/v1/ledger",
            Some(HR),
            Some(json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":n})),
        )
        .await;
        assert_eq!(rep.status, StatusCode::CREATED, "{}", rep.text());
    }
    let rep = call(
        &r,
        "GET",
        "/api/v1/months/2026-11/export?format=csv&view=deductions",
        Some(HR),
        None,
    )
    .await;
    assert_eq!(rep.status, StatusCode::OK);
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(rep.body.as_slice());
    let cells: Vec<String> = rd
        .records()
        .flat_map(|r| r.unwrap().iter().map(String::from).collect::<Vec<_>>())
        .collect();
    for n in notes {
        assert!(
            cells.iter().any(|c| *c == format!("'{n}")),
            "{n} not neutralised in {cells:?}"
        );
    }
    assert!(
        !cells.iter().any(|c| c.starts_with(['=', '+', '-', '@'])),
        "{cells:?}"
    );

    let rep = call(
        &r,
        "GET",
        "/api/v1/months/2026-11/export?format=xlsx",
        Some(HR),
        None,
    )
    .await;
    assert_eq!(rep.status, StatusCode::OK);
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(rep.body.clone())).unwrap();
    let mut texts = Vec::new();
    for name in wb.sheet_names() {
        let range = wb.worksheet_range(&name).unwrap();
        for row in range.rows() {
            for c in row {
                if let Data::String(s) = c {
                    texts.push(s.clone());
                }
            }
        }
    }
    for n in notes {
        assert!(
            texts.iter().any(|c| *c == format!("'{n}")),
            "{n}: {texts:?}"
        );
    }
    assert!(!texts.iter().any(|c| c.starts_with(['=', '+', '-', '@'])));
}

fn config(f: &Fixture, extra: &str) -> PathBuf {
    let p = f.dir.path().join("attendd.toml");
    std::fs::write(
        &p,
        format!(
            "[policy]\nfile = {POLICY:?}\n\n[store]\nurl = {:?}\n{extra}",
            f.url
        ),
    )
    .unwrap();
    p
}

/// Runs the binary; (exit code, stdout, stderr).
fn run(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env_remove("ATTENDD_T13_WEBHOOK_URL")
        .env_remove("ATTENDD_T13_DING_SECRET")
        .env_remove("ATTENDD_T13_TOKEN")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Issue 13: out-of-range dates on the command line exit 1 naming the flag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_cli_dates_out_of_range_exit_1_naming_the_flag() {
    let f = fixture().await;
    let cfg = config(&f, "");
    for (args, flag) in [
        (&["punches", "--date=-262143-01-01"][..], "--date"),
        (&["day", "1999-12-31"][..], "YYYY-MM-DD"),
        (&["employee", "E001", "--month=-262143-01"][..], "--month"),
        (&["month", "2101-01"][..], "YYYY-MM"),
        (
            &["recompute", "--from", "2026-11-01", "--to=+262142-01-01"][..],
            "--to",
        ),
        (
            &[
                "deduct",
                "--employee",
                "E001",
                "--date=-262143-01-01",
                "--rule",
                "dress_code",
                "--note",
                "x",
            ][..],
            "--date",
        ),
        (
            &[
                "correct",
                "--employee",
                "E001",
                "--time=-262143-01-02 12:00:00",
                "--reason",
                "x",
            ][..],
            "--time",
        ),
    ] {
        let (code, _, err) = run(&cfg, args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
        assert!(err.contains("outside"), "{args:?}: {err}");
    }
    let (code, _, err) = run(&cfg, &["punches", "--date", "2026-11-02"]);
    assert_eq!(code, 0, "{err}");
    // Points beyond the policy's score_base.
    let (code, _, err) = run(
        &cfg,
        &[
            "deduct",
            "--employee",
            "E001",
            "--date",
            "2026-11-02",
            "--rule",
            "dress_code",
            "--points",
            "92233720368547758",
            "--note",
            "x",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("points"), "{err}");
}

/// Issue 13: store commands refused to start when a sink's `url_env` or
/// `secret_env` (or a token's `token_env`) was unset; only the daemon
/// needs them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_store_commands_start_without_the_daemons_secrets() {
    let f = fixture().await;
    let cfg = config(
        &f,
        "\n[http]\nlisten = \"127.0.0.1:0\"\n[[http.tokens]]\ntoken_env = \"ATTENDD_T13_TOKEN\"\nrole = \"hr\"\n\n\
         [[sink]]\nkind = \"webhook\"\nurl_env = \"ATTENDD_T13_WEBHOOK_URL\"\n\n\
         [[sink]]\nkind = \"dingtalk\"\nurl = \"https://oapi.dingtalk.com/robot/send?access_token=x\"\nsecret_env = \"ATTENDD_T13_DING_SECRET\"\n",
    );
    for args in [
        &["punches", "--date", "2026-11-02"][..],
        &["quarantine"][..],
        &["day", "2026-11-02"][..],
        &["month", "2026-11"][..],
        &["appeal", "list"][..],
    ] {
        let (code, _, err) = run(&cfg, args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }
    // The daemon's own check still wants them, naming each.
    let (code, out, err) = run(&cfg, &["check-config"]);
    assert_eq!(code, 1, "{out}{err}");
    for var in [
        "ATTENDD_T13_WEBHOOK_URL",
        "ATTENDD_T13_DING_SECRET",
        "ATTENDD_T13_TOKEN",
    ] {
        assert!(err.contains(var) || out.contains(var), "{var}: {out}{err}");
    }
}

/// A tmpfs of `size` mounted on `dir`, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !o.status.success() {
            return Err(String::from_utf8_lossy(&o.stderr).trim().to_string());
        }
        Ok(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

fn punch_payload(i: usize) -> Vec<u8> {
    // Each punch at its own instant: the store takes one device, employee
    // and instant as one punch whatever the record number.
    let time = chrono::DateTime::parse_from_rfc3339("2026-11-26T08:29:13+08:00").unwrap()
        + chrono::Duration::seconds(i as i64);
    json!({"employee_id":"E001","time":time.to_rfc3339(),
           "device_id":"gate-1","event_id":format!("gate-1-{i}"),
           "pad": "x".repeat(4000)})
    .to_string()
    .into_bytes()
}

/// Issue 13: after one `database or disk is full`, every later write failed
/// with "attempted to call begin_with at non-zero transaction depth" until
/// a restart, while `/healthz` said the store was up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_full_disk_does_not_poison_the_store_and_healthz_tells() {
    use std::collections::HashMap;
    use std::sync::Arc;

    use attendd::source::{PunchSink, Received};
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    let _fs = match Tmpfs::mount(&mnt, "3m") {
        Ok(m) => m,
        Err(e) => {
            eprintln!("SKIPPED issue13_full_disk: cannot mount a tmpfs ({e}); run as root to test");
            return;
        }
    };
    let url = format!("sqlite://{}", mnt.join("attendd.db").display());
    let store = attendd::store::Store::open(&url).await.unwrap();
    store
        .upsert_employees(
            &[attendd::store::EmployeeRecord {
                employee_id: "E001".into(),
                name: "Alice".into(),
                team: "A".into(),
                supervisor: "lead".into(),
                shift: None,
                aliases: Vec::new(),
                start_date: None,
                end_date: None,
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let policy = Arc::new(attendd::policy_file::load(Path::new(POLICY)).unwrap());
    let mut sources = HashMap::new();
    sources.insert(
        Arc::from("mqtt[0]"),
        attendd::pipeline::SourceDecoding {
            decoder: attendd::ingest::decode::Decoder::with_options("json", &toml::Table::new())
                .unwrap(),
            tz: policy.tz,
            options: toml::Table::new(),
        },
    );
    let health = Arc::new(attendd::health::Health::default());
    health.set("store", true, "sqlite", chrono::Utc::now());
    let pipeline = attendd::pipeline::Pipeline::new(
        store.clone(),
        policy,
        sources,
        Default::default(),
        chrono::Duration::minutes(5),
    )
    .await
    .unwrap()
    .with_health(health.clone());
    let app = attendd::http::router(attendd::http::AppState {
        metrics: Default::default(),
        health: health.clone(),
        api: None,
    });
    let healthz = || async {
        let (s, b) = raw(&app, "GET", "/healthz", &[], "").await;
        (s, b)
    };
    let mut n = 0;
    let mut batch = || {
        n += 1;
        (0..20)
            .map(|j| Received {
                source: Arc::from("mqtt[0]"),
                topic: Some("attendance/gate-1/punch".into()),
                payload: punch_payload(n * 100 + j),
                received_at: chrono::Utc::now(),
            })
            .collect::<Vec<_>>()
    };

    pipeline.commit(&batch()).await.unwrap();
    assert_eq!(healthz().await.0, StatusCode::OK);

    // Fill the disk, then write until the store says so.
    let filler = mnt.join("filler");
    fill(&filler);
    let mut first = None;
    for _ in 0..200 {
        if let Err(e) = pipeline.commit(&batch()).await {
            first = Some(e.0);
            break;
        }
    }
    let first = first.expect("a write failed on a full disk");
    assert!(first.contains("full"), "{first}");
    let (s, b) = healthz().await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert!(b.contains("cannot write") && b.contains("full"), "{b}");
    assert!(store.probe_write(chrono::Utc::now()).await.is_err());

    // Still full: every write fails for that reason, not a poisoned
    // connection.
    for _ in 0..8 {
        let e = pipeline.commit(&batch()).await.unwrap_err().0;
        assert!(!e.contains("transaction depth"), "{e}");
    }

    // Space comes back: writes resume on every pooled connection.
    std::fs::remove_file(&filler).unwrap();
    for i in 0..12 {
        if let Err(e) = pipeline.commit(&batch()).await {
            panic!("write {i} after space returned: {}", e.0);
        }
    }
    store.probe_write(chrono::Utc::now()).await.unwrap();
    let (s, b) = healthz().await;
    assert_eq!(s, StatusCode::OK, "{b}");
    store.close().await;
}

/// Issue 13: 500 half-sent requests stayed open forever; with the default
/// file limit, 1,100 connections made every listener time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue13_half_sent_requests_are_closed_and_do_not_block_a_request() {
    use std::time::{Duration, Instant};

    use attendd::http::Limits;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    }
    let start = |limits: Limits| async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let router = axum::Router::new().route("/x", axum::routing::get(|| async { "ok" }));
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(attendd::http::listener::serve(
            l,
            router,
            limits,
            stop.clone(),
        ));
        (addr, stop.drop_guard())
    };
    async fn half_sent(addr: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
        let mut v = Vec::new();
        for _ in 0..n {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nX-Slow: ")
                .await
                .unwrap();
            v.push(s);
        }
        v
    }
    /// True when the server closed the connection within `within`.
    async fn closed(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
        let mut b = [0u8; 256];
        matches!(
            tokio::time::timeout(within, s.read(&mut b)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }

    // At the connection cap, half-sent requests make way for a request.
    let (addr, _stop) = start(Limits {
        max_connections: 16,
        ..Limits::default()
    })
    .await;
    let _held = half_sent(addr, 64).await;
    let t = Instant::now();
    let rep = tokio::time::timeout(Duration::from_secs(10), get(addr))
        .await
        .expect("a request waited behind half-sent ones");
    assert!(rep.starts_with("HTTP/1.1 200"), "{rep}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A head that does not complete in time is closed; so is a connection
    // that stays silent; a keep-alive connection is not cut at the header
    // timeout while idle.
    let (addr, _stop2) = start(Limits {
        header_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(1500),
        max_connections: 1024,
        ..Limits::default()
    })
    .await;
    let mut slow = half_sent(addr, 20).await;
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut keep = tokio::net::TcpStream::connect(addr).await.unwrap();
    keep.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut b = [0u8; 512];
    let n = keep.read(&mut b).await.unwrap();
    assert!(b[..n].starts_with(b"HTTP/1.1 200"));
    for s in &mut slow {
        assert!(
            closed(s, Duration::from_secs(5)).await,
            "half-sent request kept open"
        );
    }
    // The idle keep-alive connection outlives the header timeout …
    assert!(!closed(&mut keep, Duration::from_millis(300)).await);
    keep.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let n = keep.read(&mut b).await.unwrap();
    assert!(b[..n].starts_with(b"HTTP/1.1 200"), "keep-alive cut early");
    // … and both it and the silent one close after the idle timeout.
    assert!(closed(&mut keep, Duration::from_secs(5)).await);
    assert!(closed(&mut silent, Duration::from_secs(5)).await);
}

/// A request that sends its head and then not all of its body cannot keep
/// its handler (and its connection slot) waiting: the body fails after
/// the listener's body timeout and the request is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_is_given_up_after_the_body_timeout() {
    use std::time::{Duration, Instant};

    use attendd::http::Limits;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let router = axum::Router::new().route(
        "/x",
        axum::routing::post(|b: axum::body::Bytes| async move { format!("{}", b.len()) }),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    tokio::spawn(attendd::http::listener::serve(
        l,
        router,
        Limits {
            body_timeout: Duration::from_millis(400),
            ..Limits::default()
        },
        stop,
    ));
    // A whole body is read as before.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(
        out.starts_with("HTTP/1.1 200") && out.ends_with("\r\n\r\n3"),
        "{out}"
    );

    // Half a body: answered with an error soon after the timeout, and the
    // connection is closed.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nabc")
        .await
        .unwrap();
    let t = Instant::now();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("the connection was held past the body timeout")
        .unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(
        t.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t.elapsed()
    );
}

/// Issue 13: `/metrics` published push terminals' serial numbers (their
/// only credential) in labels; configured terminals are shown by name.
#[test]
fn issue13_metrics_name_push_terminals_instead_of_serial_numbers() {
    let raw: attendd::config::RawSources = toml::from_str(
        "[[zk_push]]\nlisten = \"127.0.0.1:0\"\n\
         [[zk_push.terminals]]\nsn = \"CQZ7231460021\"\nname = \"gate-1\"\n\
         [[zk_push.terminals]]\nsn = \"A8N5230560123\"\n",
    )
    .unwrap();
    let (devices, sources) = attendd::source::push::metric_names(&raw);
    let m = attendd::metrics::Metrics::default();
    m.name_devices(devices);
    m.name_sources(sources);
    for sn in ["CQZ7231460021", "A8N5230560123"] {
        m.set("attendd_terminal_last_seen_seconds", &[("device", sn)], 1.0);
        m.add(
            "attendd_punches_total",
            &[("source", &format!("zk_push[0]:{sn}")), ("outcome", "new")],
            1.0,
        );
    }
    let t = m.render();
    assert!(
        !t.contains("CQZ7231460021") && !t.contains("A8N5230560123"),
        "{t}"
    );
    assert!(t.contains("device=\"gate-1\""), "{t}");
    assert!(t.contains("device=\"zk_push[0].terminals[1]\""), "{t}");
    assert!(t.contains("source=\"zk_push[0]:gate-1\""), "{t}");
    assert!(t.contains("source=\"zk_push[0].terminals[1]\""), "{t}");

    // A name must not be the serial number, nor used twice.
    for (terminals, key) in [
        ("sn = \"A1B2C3\"\nname = \"A1B2C3\"", "terminals[0].name"),
        (
            "sn = \"A1\"\nname = \"gate\"\n[[terminals]]\nsn = \"A2\"\nname = \"gate\"",
            "terminals[1].name",
        ),
    ] {
        let z: attendd::source::push::RawZkPush = toml::from_str(&format!(
            "listen = \"127.0.0.1:0\"\n[[terminals]]\n{terminals}\n"
        ))
        .unwrap();
        let mut problems = Vec::new();
        z.check("source.zk_push[0]", &mut |k, w| {
            problems.push(format!("{k}: {w}"))
        });
        assert!(
            problems.iter().any(|p| p.contains(key)),
            "{terminals}: {problems:?}"
        );
    }
}

/// Issue 13: `X-Forwarded-For` was believed from any loopback peer;
/// `trusted_proxies` must be addresses; connection caps positive.
#[test]
fn issue13_trusted_proxies_and_connection_caps_are_checked() {
    let z: attendd::source::push::RawHikHttp = toml::from_str(
        "listen = \"127.0.0.1:0\"\ntrusted_proxies = [\"127.0.0.1\", \"::1\", \"proxy.local\"]\nmax_connections = 0\n",
    )
    .unwrap();
    let mut problems = Vec::new();
    z.check("source.hik_http[0]", &mut |k, w| {
        problems.push(format!("{k}: {w}"))
    });
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("source.hik_http[0].trusted_proxies[2]")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("source.hik_http[0].max_connections")),
        "{problems:?}"
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(z.listener.proxies().len(), 2);
}

/// Issue 13: with the default limit of 1,024 descriptors, 1,100
/// connections made every listener time out. The unit raises it above
/// what the listeners may hold.
#[test]
fn issue13_unit_raises_the_file_limit() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/attendd.service"),
    )
    .unwrap();
    let n: u64 = unit
        .lines()
        .find_map(|l| l.trim().strip_prefix("LimitNOFILE="))
        .expect("LimitNOFILE= in deploy/attendd.service")
        .trim()
        .parse()
        .unwrap();
    assert!(
        n >= 8 * attendd::http::DEFAULT_MAX_CONNECTIONS as u64,
        "LimitNOFILE={n}"
    );
}

/// Issue 13, the daemon on a full disk: `/healthz` and the unit's STATUS
/// line say the store cannot write (the watchdog keeps being fed: a
/// restart frees no space), and both recover by themselves when space
/// returns.
#[test]
fn issue13_daemon_on_a_full_disk_says_so_and_recovers() {
    use std::os::unix::net::UnixDatagram;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use crate::proc::{Kill, free_port, http_get};

    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    let _fs = match Tmpfs::mount(&mnt, "3m") {
        Ok(m) => m,
        Err(e) => {
            eprintln!(
                "SKIPPED issue13_daemon_on_a_full_disk: cannot mount a tmpfs ({e}); run as root to test"
            );
            return;
        }
    };
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let http = free_port();
    let config = dir.path().join("attendd.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nfile = {POLICY:?}\n[store]\nurl = \"sqlite://{}\"\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
            mnt.join("attendd.db").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let logf = std::fs::File::create(&log).unwrap();
    let _child = Kill(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "2000000")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap(),
    );
    let mut seen: Vec<String> = Vec::new();
    let mut wait_for = |pred: &dyn Fn(&str) -> bool, bound: Duration| -> bool {
        let deadline = Instant::now() + bound;
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline {
            if let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.lines().any(pred);
                seen.push(msg);
                if hit {
                    return true;
                }
            }
        }
        false
    };
    let logs = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_for(&|l| l == "READY=1", Duration::from_secs(30)),
        "{}",
        logs()
    );
    assert_eq!(http_get(http, "/healthz").map(|r| r.0), Some(200));

    let filler = mnt.join("filler");
    fill(&filler);
    assert!(
        wait_for(
            &|l| l.starts_with("STATUS=degraded: the store cannot write") && l.contains("full"),
            Duration::from_secs(20)
        ),
        "{seen:?}\n{}",
        logs()
    );
    // The probe retries every 2 s while down; on a loaded machine a retry
    // can squeeze into the space a checkpoint freed, so look for the
    // degraded answer for a while rather than once.
    let mut last = (0, String::new());
    for _ in 0..100 {
        last = http_get(http, "/healthz").unwrap();
        if last.0 == 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, body) = last;
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("cannot write"), "{body}");
    // Still fed while degraded.
    assert!(
        // Generous: under a loaded machine a ping can be seconds late.
        wait_for(&|l| l == "WATCHDOG=1", Duration::from_secs(15)),
        "{seen:?}"
    );

    std::fs::remove_file(&filler).unwrap();
    assert!(
        wait_for(
            &|l| l == "STATUS=running: the store writes again",
            Duration::from_secs(10)
        ),
        "{seen:?}\n{}",
        logs()
    );
    assert_eq!(http_get(http, "/healthz").map(|r| r.0), Some(200));
    assert!(!logs().contains("transaction depth"), "{}", logs());
}
