//! The Debian package's parts that need no release build: completions,
//! man page, the packaged configuration, the asset list and the maintainer
//! scripts. `.ci/package.sh` builds and installs the package itself.

use std::path::Path;
use std::process::{Command, Output};

use crate::common::root;

fn attendd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_attendd"))
        .args(args)
        .current_dir(root())
        .env_remove("ATTENDD_CONFIG")
        .output()
        .expect("run attendd")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The visible commands, as completions and the man page must list them.
const COMMANDS: &[&str] = &[
    "run",
    "evaluate",
    "check-config",
    "simulate",
    "import",
    "recompute",
    "export",
    "completions",
];

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, head) in [
        ("bash", "_attendd()"),
        ("zsh", "#compdef attendd"),
        ("fish", "complete -c attendd"),
    ] {
        let o = attendd(&["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", text(&o.stderr));
        let s = text(&o.stdout);
        assert!(s.contains(head), "{shell}: {s}");
        for c in COMMANDS {
            assert!(s.contains(c), "{shell} completion lacks {c}");
        }
        assert!(s.contains("log-format"), "{shell}: run's flags");
    }
    // The script is valid bash (where bash is there to say so).
    let o = attendd(&["completions", "bash"]);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("attendd.bash");
    std::fs::write(&f, &o.stdout).unwrap();
    if let Ok(c) = Command::new("bash").arg("-n").arg(&f).output() {
        assert!(c.status.success(), "bash -n: {}", text(&c.stderr));
    }
    // A shell it does not know is a usage error naming the choices.
    let o = attendd(&["completions", "tcsh"]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("bash") && e.contains("zsh") && e.contains("fish"),
        "{e}"
    );
}

#[test]
fn man_page_has_every_command() {
    let o = attendd(&["manpage"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let s = text(&o.stdout);
    assert!(s.starts_with(".ie") || s.contains(".TH attendd 8"), "{s}");
    assert!(s.contains(".TH attendd 8"), "{s}");
    for c in COMMANDS {
        assert!(
            s.contains(&format!(".SH \"ATTENDD {}\"", c.to_uppercase())),
            "man page lacks {c}"
        );
    }
    assert!(s.contains("\\-\\-config"), "options rendered");
    assert!(s.contains(".SH FILES") && s.contains("/etc/attendd/attendd.toml"));
    assert!(s.contains(".SH ENVIRONMENT") && s.contains("JOURNAL_STREAM"));
}

/// The packaged /etc/attendd/attendd.toml, laid out as installed (the
/// policies beside it), passes check-config: SQLite under /var/lib/attendd,
/// listeners on loopback only.
#[test]
fn packaged_configuration_passes_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path();
    std::fs::copy(root().join("deploy/attendd.toml"), etc.join("attendd.toml")).unwrap();
    std::fs::create_dir(etc.join("policies")).unwrap();
    for e in std::fs::read_dir(root().join("config/policies")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, etc.join("policies").join(p.file_name().unwrap())).unwrap();
    }
    let config = etc.join("attendd.toml");
    let o = attendd(&["check-config", "--config", config.to_str().unwrap()]);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    assert!(
        out.contains("store: sqlite:///var/lib/attendd/attendd.db"),
        "{out}"
    );
    assert!(out.contains("http: 127.0.0.1:8080"), "{out}");
    let raw = std::fs::read_to_string(&config).unwrap();
    for line in raw.lines().filter(|l| !l.trim_start().starts_with('#')) {
        if let Some(v) = line.trim().strip_prefix("listen") {
            assert!(v.contains("\"127.0.0.1:"), "not loopback: {line}");
        }
        if let Some(v) = line.trim().strip_prefix("broker") {
            assert!(v.contains("127.0.0.1"), "not loopback: {line}");
        }
    }
    // The quick-start configuration stays as it was (its own store path).
    let q = std::fs::read_to_string(root().join("config/attendd.toml")).unwrap();
    assert!(q.contains("sqlite://../var/attendd.db"));
}

/// Every file `[package.metadata.deb]` packs from the repository exists,
/// the generated ones come from target/release/pkg/, and the conffiles
/// cover the configuration and the policies (all under /etc).
#[test]
fn deb_assets_exist() {
    let cargo: toml::Value =
        toml::from_str(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap()).unwrap();
    let deb = &cargo["package"]["metadata"]["deb"];
    assert_eq!(deb["recommends"].as_str(), Some("mosquitto"));
    assert_eq!(deb["separate-debug-symbols"].as_bool(), Some(true));
    let assets = deb["assets"].as_array().unwrap();
    let mut dests = Vec::new();
    for a in assets {
        let a = a.as_array().unwrap();
        let (src, dest) = (a[0].as_str().unwrap(), a[1].as_str().unwrap());
        dests.push(dest.to_string());
        if src.starts_with("target/release/") {
            continue;
        }
        match src.split_once('*') {
            Some((dir, _)) => {
                let n = std::fs::read_dir(root().join(dir)).unwrap().count();
                assert!(n > 0, "{src} matches nothing");
            }
            None => assert!(root().join(src).is_file(), "{src} missing"),
        }
    }
    for want in [
        "usr/bin/",
        "usr/lib/systemd/system/attendd.service",
        "usr/lib/sysusers.d/attendd.conf",
        "usr/lib/tmpfiles.d/attendd.conf",
        "etc/attendd/attendd.toml",
        "etc/attendd/policies/",
        "usr/share/man/man8/attendd.8.gz",
        "usr/share/bash-completion/completions/attendd",
        "usr/share/zsh/vendor-completions/_attendd",
        "usr/share/fish/vendor_completions.d/attendd.fish",
    ] {
        assert!(dests.iter().any(|d| d == want), "{want} not packed");
    }
    // The unit's paths are where the package puts them.
    let unit = std::fs::read_to_string(root().join("deploy/attendd.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/attendd run"));
    assert!(unit.contains("Environment=ATTENDD_CONFIG=/etc/attendd/attendd.toml"));
}

/// The maintainer scripts are valid sh, honour DPKG_ROOT, and start
/// nothing: the configuration must be edited first.
#[test]
fn maintainer_scripts_start_nothing() {
    let dir = root().join("deploy/debian");
    for name in ["postinst", "prerm", "postrm"] {
        let p = dir.join(name);
        let all = std::fs::read_to_string(&p).unwrap();
        assert!(all.starts_with("#!/bin/sh\n"), "{name}");
        let s: String = all
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') || l.starts_with("#DEBHELPER#"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(s.contains("#DEBHELPER#"), "{name}");
        assert!(!s.contains("systemctl start"), "{name} starts the service");
        assert!(
            !s.contains("systemctl enable"),
            "{name} enables the service"
        );
        if let Ok(o) = Command::new("sh").arg("-n").arg(&p).output() {
            assert!(o.status.success(), "{name}: {}", text(&o.stderr));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o111, 0o111, "{name} not executable");
        }
    }
    let post = std::fs::read_to_string(dir.join("postinst")).unwrap();
    assert!(post.contains("systemd-sysusers --root="));
    assert!(post.contains("systemd-tmpfiles --root="));
    assert!(post.contains("daemon-reload"));
    assert!(Path::new(&root().join(".ci/package.sh")).is_file());
}

/// The daemon as systemd runs it (`JOURNAL_STREAM` set): its log lines
/// carry syslog priorities, and its `/metrics` passes
/// `promtool check metrics` with the outbox gauge for the configured sink,
/// build info and process metrics. promtool comes from Debian's
/// `prometheus` package; without it that part skips, saying so.
#[test]
fn daemon_under_journald_logs_priorities_and_serves_valid_metrics() {
    use std::io::Write as _;
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("policies")).unwrap();
    std::fs::create_dir_all(dir.path().join("var")).unwrap();
    std::fs::copy(
        root().join("config/policies/seed-default.toml"),
        etc.join("policies/seed-default.toml"),
    )
    .unwrap();
    let (http, mqtt) = (crate::proc::free_port(), crate::proc::free_port());
    let config = std::fs::read_to_string(root().join("config/attendd.toml"))
        .unwrap()
        .replace("127.0.0.1:18830", &format!("127.0.0.1:{mqtt}"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{http}"));
    std::fs::write(etc.join("attendd.toml"), config).unwrap();
    let log = dir.path().join("log");
    let child = Command::new(env!("CARGO_BIN_EXE_attendd"))
        .args(["run", "--config"])
        .arg(etc.join("attendd.toml"))
        .env("JOURNAL_STREAM", "8:12345")
        .env("RUST_LOG", "info")
        .env_remove("ATTENDD_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _kill = crate::proc::Kill(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while crate::proc::healthz(http) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (code, response) = crate::proc::http_get(http, "/metrics").unwrap();
    assert_eq!(code, 200, "{response}");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        body.contains("attendd_outbox_pending{sink=\"site-mqtt\"} 0\n"),
        "{body}"
    );
    assert!(body.contains("attendd_build_info{"), "{body}");
    assert!(body.contains("# TYPE process_open_fds gauge"), "{body}");
    let logs = std::fs::read_to_string(&log).unwrap();
    let first = logs.lines().next().unwrap_or_default();
    assert!(first.starts_with("<6>"), "{logs}");
    assert!(
        logs.lines()
            .all(|l| l.len() > 3 && l.starts_with('<') && l.as_bytes()[2] == b'>'),
        "{logs}"
    );
    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(mut p) => {
            p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
            let o = p.wait_with_output().unwrap();
            assert!(
                o.status.success(),
                "promtool: {}{}\n{body}",
                text(&o.stdout),
                text(&o.stderr)
            );
        }
        Err(e) => {
            assert!(
                !crate::services::required(),
                "promtool is required under CI: {e}"
            );
            eprintln!("SKIPPED promtool check of the daemon's /metrics: {e}");
        }
    }
}
