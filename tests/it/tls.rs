//! TLS: the daemon reads from an `mqtts://` Mosquitto listener, and sinks
//! post to an `https://` receiver, both trusting a CA made for the test
//! with the openssl command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proc::{Kill, free_port};
use attendd::sinks::{Http, post_json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");

struct Pki {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A CA and a server certificate for 127.0.0.1, or `None` (said why) when
/// the openssl command is missing.
fn pki(dir: &Path, test: &str) -> Option<Pki> {
    if Command::new("openssl").arg("version").output().is_err() {
        assert!(
            !crate::services::required(),
            "openssl not found but ATTENDD_REQUIRE_SERVICES=1"
        );
        eprintln!("skipping {test}: no openssl command to make test certificates");
        return None;
    }
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut a = vec!["req", "-x509"];
    a.extend(ec);
    a.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=attendd test CA",
    ]);
    run(&a);
    let mut b = vec!["req"];
    b.extend(ec);
    b.extend([
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&b);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "srv.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    Some(Pki {
        ca: dir.join("ca.pem"),
        cert: dir.join("srv.pem"),
        key: dir.join("srv.key"),
    })
}

#[test]
fn daemon_ingests_from_an_mqtts_broker() {
    let Some(mosq) = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        assert!(
            !crate::services::required(),
            "mosquitto binary not found but ATTENDD_REQUIRE_SERVICES=1"
        );
        eprintln!("skipping daemon_ingests_from_an_mqtts_broker: no mosquitto binary");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = pki(dir.path(), "daemon_ingests_from_an_mqtts_broker") else {
        return;
    };
    let (plain, tls) = (free_port(), free_port());
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "per_listener_settings false\nallow_anonymous true\nuser root\n\
             listener {plain} 127.0.0.1\n\
             listener {tls} 127.0.0.1\ncafile {}\ncertfile {}\nkeyfile {}\n",
            pki.ca.display(),
            pki.cert.display(),
            pki.key.display()
        ),
    )
    .unwrap();
    let _broker = Kill(
        Command::new(mosq)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let http = free_port();
    let config = dir.path().join("attendd.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nfile = \"{}\"\n[store]\nurl = \"sqlite://attendd.db\"\n\
             [[source.mqtt]]\nbroker = \"mqtts://127.0.0.1:{tls}\"\nca_file = \"ca.pem\"\n\
             topics = [\"tls/+/punch\"]\ndecoder = \"json\"\nclient_id = \"attendd-tls\"\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\n",
            crate::common::root()
                .join("config/policies/seed-default.toml")
                .display()
        ),
    )
    .unwrap();
    let check = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let log = std::fs::File::create(dir.path().join("run.log")).unwrap();
    let mut daemon = Kill(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let logs = || std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default();
    // Wait for the TLS session (healthz turns 200 once connected).
    let t0 = Instant::now();
    loop {
        if crate::proc::healthz(http) == Some(200) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no TLS session:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sim = Command::new(BIN)
        .args([
            "simulate",
            "--employees",
            "50",
            "--date",
            "2026-03-02",
            "--topic-prefix",
            "tls",
            "--json",
        ])
        .arg("--broker")
        .arg(format!("mqtt://127.0.0.1:{plain}"))
        .output()
        .unwrap();
    assert!(
        sim.status.success(),
        "{}",
        String::from_utf8_lossy(&sim.stderr)
    );
    let rep: serde_json::Value =
        serde_json::from_slice(sim.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    let want = rep["distinct"].as_u64().unwrap();
    assert!(want > 50);
    let t0 = Instant::now();
    loop {
        let out = Command::new(BIN)
            .args(["punches", "--date", "2026-03-02", "--json", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let n = out
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count() as u64;
        if n == want {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{n} of {want}:\n{}",
            logs()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.0.id().to_string()])
        .status();
    assert!(daemon.0.wait().unwrap().success());
}

/// An HTTPS receiver on 127.0.0.1 that answers 200 and records request
/// lines and bodies.
async fn https_receiver(pki: &Pki) -> (u16, Arc<Mutex<Vec<String>>>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    attendd::tls::install_provider();
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let cfg = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = l.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let seen = s2.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then Content-Length bytes of body.
                loop {
                    let n = tls.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(i) = text.find("\r\n\r\n") {
                        let len = text
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= i + 4 + len {
                            break;
                        }
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 27\r\nConnection: close\r\n\r\n{\"errcode\":0,\"errmsg\":\"ok\"}")
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn https_sinks_verify_the_server_and_dingtalk_urls_are_signed() {
    let dir = tempfile::tempdir().unwrap();
    let Some(pki) = pki(dir.path(), "https_sinks_verify_the_server") else {
        return;
    };
    let (port, seen) = https_receiver(&pki).await;
    let body = serde_json::json!({"id": "absence/2026-03-02/E1", "kind": "absence"});
    let url = format!("https://127.0.0.1:{port}/hook");
    let ok = Http::new(url.clone(), Some(&pki.ca)).unwrap();
    let (code, _) = post_json(&ok, &body).await.unwrap();
    assert_eq!(code, 200);
    let got = seen.lock().unwrap().clone();
    assert!(got[0].starts_with("POST /hook HTTP/1.1"), "{got:?}");
    assert!(got[0].ends_with(&body.to_string()), "{got:?}");

    // Trusting only the system roots, the test CA's certificate is refused.
    if let Ok(system) = Http::new(url, None) {
        let e = post_json(&system, &body).await.unwrap_err();
        assert!(e.contains("TLS"), "{e}");
    }

    // A DingTalk robot over HTTPS: markdown, and a signed URL.
    let sink = attendd::sinks::Sink::DingTalk {
        url: Http::new(
            format!("https://127.0.0.1:{port}/robot/send?access_token=tok"),
            Some(&pki.ca),
        )
        .unwrap(),
        secret: Some("SECtest".into()),
        keyword: None,
    };
    let now = chrono::Utc::now();
    let r = sink.deliver("dingtalk", &[("absence", &body)], now).await;
    assert_eq!(r, [Ok(())]);
    let req = seen.lock().unwrap().last().unwrap().clone();
    let line = req.lines().next().unwrap();
    let target = line.split(' ').nth(1).unwrap();
    let want = attendd::sinks::dingtalk_signed_url(
        "/robot/send?access_token=tok",
        "SECtest",
        now.timestamp_millis(),
    );
    assert_eq!(target, want);
    assert!(req.contains("\"msgtype\":\"markdown\""), "{req}");
    assert!(req.contains("absence/2026-03-02/E1"), "{req}");
}
