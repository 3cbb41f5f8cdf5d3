//! The real binary under a fake systemd: the test binds `NOTIFY_SOCKET`
//! and reads what the daemon tells the service manager; a local webhook
//! receiver fails its first two requests to prove the outbox retries.

use crate::proc::{Kill, free_port, healthz};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");

/// A webhook receiver: answers 500 to the first `fail` requests, then 200;
/// keeps every body it was sent.
/// What the receiver answered and the body it got, in arrival order.
type Seen = Arc<Mutex<Vec<(u16, String)>>>;

fn webhook(fail: usize) -> (u16, Seen) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for (n, conn) in l.incoming().enumerate() {
            let Ok(mut c) = conn else { continue };
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.to_ascii_lowercase();
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let code = if n < fail { 500 } else { 200 };
            s2.lock()
                .unwrap()
                .push((code, String::from_utf8_lossy(&body).into_owned()));
            let _ = write!(
                c,
                "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
            );
        }
    });
    (port, seen)
}

fn recv_until(sock: &UnixDatagram, what: &str, bound: Duration, log: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + bound;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l == what);
            log.push(msg);
            if hit {
                return true;
            }
        }
    }
    false
}

#[test]
fn ready_watchdog_reload_and_stopping_under_a_fake_systemd() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::copy(
        crate::common::root().join("config/policies/seed-default.toml"),
        &policy,
    )
    .unwrap();
    let http = free_port();
    let broker = free_port();
    let (hook, seen) = webhook(2);
    // A daemon classifies from the day it first runs on a store; this site
    // says it started yesterday, so that yesterday closes on the first tick.
    let yesterday = (chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai)
        - chrono::Duration::days(1))
    .date_naive();
    let config = dir.path().join("attendd.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nfile = \"policy.toml\"\n[store]\nurl = \"sqlite://attendd.db\"\n\
             [[source.mqtt]]\nbroker = \"embedded\"\nlisten = \"127.0.0.1:{broker}\"\nallow_anonymous = true\n\
             topics = [\"t/+/punch\"]\ndecoder = \"json\"\nclient_id = \"attendd-sd\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n\
             [[http.tokens]]\nname = \"hr\"\ntoken = \"old-token-0123456789\"\nrole = \"hr\"\n\
             [ingest]\nclassify_from = \"{yesterday}\"\n\
             [schedule]\ntick_seconds = 1\n\
             [[sink]]\nname = \"hr-hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{hook}/attendance\"\n"
        ),
    )
    .unwrap();
    // One employee, so that yesterday's close has a row to summarise.
    let emps = dir.path().join("employees.csv");
    std::fs::write(&emps, "employee_id,name,team,supervisor\nE1,One,A,boss\n").unwrap();
    let st = Command::new(BIN)
        .args(["import", "employees"])
        .arg(&emps)
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    let logf = std::fs::File::create(dir.path().join("run.log")).unwrap();
    let mut child = Kill(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("WATCHDOG_USEC", "3000000")
            .env_remove("WATCHDOG_PID")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap(),
    );
    let logs = || std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default();
    let mut got = Vec::new();

    // READY only once the store is migrated, the sources started and the
    // HTTP listener bound: /healthz answers at the moment READY arrives
    // (503 while the MQTT session is still connecting is fine).
    assert!(
        recv_until(&sock, "READY=1", Duration::from_secs(30), &mut got),
        "no READY: {got:?}\n{}",
        logs()
    );
    assert!(healthz(http).is_some(), "{}", logs());
    assert!(got.iter().any(|m| m.contains("STATUS=running")), "{got:?}");

    // Watchdog pings every half interval while the pipeline is alive.
    let mut pings = 0;
    let t0 = Instant::now();
    while pings < 3 && t0.elapsed() < Duration::from_secs(15) {
        if recv_until(&sock, "WATCHDOG=1", Duration::from_secs(2), &mut got) {
            pings += 1;
        }
    }
    assert_eq!(pings, 3, "{got:?}");

    // Yesterday closed on the first tick (and, depending on the hour, E1
    // may be alerted absent): the first message reaches the webhook after
    // two refused requests, retried with backoff under the same id.
    let id_of = |b: &str| {
        serde_json::from_str::<serde_json::Value>(b).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let t0 = Instant::now();
    let first = loop {
        let s = seen.lock().unwrap().clone();
        if let Some((_, b)) = s.first() {
            let id = id_of(b);
            if s.iter().any(|(c, b)| *c == 200 && id_of(b) == id) {
                break s;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "{s:?}\n{}", logs());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!((first[0].0, first[1].0), (500, 500), "{first:?}");
    let kinds: Vec<String> = first
        .iter()
        .map(|(_, b)| serde_json::from_str::<serde_json::Value>(b).unwrap()["kind"].to_string())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "\"summary\""),
        "yesterday's summary: {kinds:?}"
    );

    // `attendd outbox` shows what was decided and that the sink took it.
    let t0 = Instant::now();
    loop {
        let o = Command::new(BIN)
            .args(["outbox", "--json", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let done = rows
            .iter()
            .any(|r| r["kind"] == "summary" && r["sent"] == 1 && r["sinks"] == 1);
        if done {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{rows:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // SIGHUP with a broken policy: RELOADING, then READY again, the old
    // policy kept, the daemon alive and healthy.
    std::fs::write(&policy, "id = \"broken\"\n[[shift]]\nid = 3\n").unwrap();
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        recv_until(&sock, "RELOADING=1", Duration::from_secs(10), &mut got),
        "{got:?}"
    );
    assert!(
        recv_until(&sock, "READY=1", Duration::from_secs(10), &mut got),
        "{got:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "daemon died\n{}",
        logs()
    );
    assert_eq!(healthz(http), Some(200));
    let l = logs();
    assert!(l.contains("reload refused"), "{l}");
    assert!(l.contains("policy.toml"), "the refusal names the file: {l}");

    // A good SIGHUP swaps the API's tokens (and policy) without a restart.
    let whoami = |token: &str| {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
        write!(
            c,
            "GET /api/v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut b = String::new();
        let _ = c.read_to_string(&mut b);
        b.get(9..12).and_then(|c| c.parse::<u16>().ok())
    };
    assert_eq!(whoami("old-token-0123456789"), Some(200));
    std::fs::copy(
        crate::common::root().join("config/policies/seed-default.toml"),
        &policy,
    )
    .unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("old-token-0123456789", "new-token-0123456789");
    std::fs::write(&config, text).unwrap();
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(recv_until(
        &sock,
        "RELOADING=1",
        Duration::from_secs(10),
        &mut got
    ));
    assert!(recv_until(
        &sock,
        "READY=1",
        Duration::from_secs(10),
        &mut got
    ));
    assert_eq!(whoami("new-token-0123456789"), Some(200), "{}", logs());
    assert_eq!(whoami("old-token-0123456789"), Some(401));
    assert!(logs().contains("reloaded configuration and policy"));

    // SIGTERM: STOPPING, then a clean exit.
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        recv_until(&sock, "STOPPING=1", Duration::from_secs(10), &mut got),
        "{got:?}"
    );
    let t0 = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(25),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{}", logs());
}
