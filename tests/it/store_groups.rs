//! Several rule sets on one site in the daemon and its store (policy.md,
//! "Several rule sets on one site"): `[[policy.group]]` in the daemon's
//! configuration, employees.csv's `policy` column stored with its history,
//! every employee-day classified with its employee's policy of that date,
//! `check-config` and SIGHUP over all the policies. The rule sets are the
//! shipped seed-default (坐席员考核细则 二(二)1: late up to half an hour −1)
//! and outbound-call-centre (呼出中心考核标准 二3: every late arrival −2).

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use attendd::store::Store;
use attendd::store::policy_groups::PolicyChange;
use chrono::{NaiveDate, TimeZone, Utc};

use crate::proc::{Kill, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");
const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/policies/seed-default.toml"
);
const OUTBOUND: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/policies/outbound-call-centre.toml"
);

/// E1 follows the default policy, E2 the `outbound` group.
const TWO: &str = "employee_id,name,team,supervisor,policy\n\
                   E1,Li Na,hotline,S01,\n\
                   E2,Wang Wei,outbound,S02,outbound\n";
/// Both arrive 20 minutes late on Tuesday 3 and Wednesday 4 November.
const LATE_20: &str = "employee_id,time\n\
                       E1,2026-11-03 08:50:00\n\
                       E1,2026-11-03 17:31:00\n\
                       E2,2026-11-03 08:50:00\n\
                       E2,2026-11-03 17:31:00\n\
                       E1,2026-11-04 08:50:00\n\
                       E1,2026-11-04 17:31:00\n\
                       E2,2026-11-04 08:50:00\n\
                       E2,2026-11-04 17:31:00\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A site with the `outbound` group (its file relative to the
/// configuration), on SQLite or on PostgreSQL (a fresh schema).
struct Site {
    dir: tempfile::TempDir,
    config: PathBuf,
    url: String,
    pg_schema: Option<(String, String)>,
}

/// The PostgreSQL URL of the test server, or `None` after saying why the
/// test skips.
fn pg_base(test: &str) -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("ATTENDD_REQUIRE_SERVICES").is_ok_and(|v| v == "1") => {
            panic!("{test}: TEST_POSTGRES_URL is not set but ATTENDD_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!("skipping postgres: TEST_POSTGRES_URL not set ({test})");
            None
        }
    }
}

async fn site(postgres: bool, test: &str, extra: &str) -> Option<Site> {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::copy(OUTBOUND, dir.path().join("policies/outbound.toml")).unwrap();
    let (url, pg_schema) = if postgres {
        let base = pg_base(test)?;
        let schema = format!(
            "g_{}_{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default() % 1_000_000_000
        );
        match sqlx::PgConnection::connect(&base).await {
            Ok(mut c) => {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                let _ = c.close().await;
            }
            Err(e) => {
                eprintln!("skipping postgres: {base} unreachable: {e} ({test})");
                return None;
            }
        }
        let sep = if base.contains('?') { '&' } else { '?' };
        (
            format!("{base}{sep}options[search_path]={schema}"),
            Some((base, schema)),
        )
    } else {
        (
            format!("sqlite://{}", dir.path().join("attendd.db").display()),
            None,
        )
    };
    let config = dir.path().join("attendd.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nfile = {SEED:?}\n\n[[policy.group]]\nid = \"outbound\"\n\
             file = \"policies/outbound.toml\"\n\n[store]\nurl = {url:?}\n{extra}"
        ),
    )
    .unwrap();
    Some(Site {
        dir,
        config,
        url,
        pg_schema,
    })
}

impl Site {
    fn file(&self, name: &str, body: &str) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.display().to_string()
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("ATTENDD_STORE_URL")
            .env_remove("ATTENDD_CONFIG")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    /// `attendd day DATE --json`, by employee id.
    fn day(&self, date: &str, id: &str) -> serde_json::Value {
        json_lines(&self.ok(&["day", date, "--json"]))
            .into_iter()
            .find(|v| v["employee_id"] == id)
            .unwrap_or_else(|| panic!("no {id} on {date}"))
    }

    async fn store(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }

    async fn drop_schema(self) {
        use sqlx::Connection;
        if let Some((base, schema)) = &self.pg_schema
            && let Ok(mut c) = sqlx::PgConnection::connect(base).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut c)
                .await;
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs one async body on SQLite and, when available, on PostgreSQL.
macro_rules! both_engines {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::rt().block_on(async {
                    let s = super::site(false, stringify!($name), "").await.unwrap();
                    super::$name(&s).await;
                });
            }
            #[test]
            fn postgres() {
                super::rt().block_on(async {
                    let Some(s) = super::site(true, stringify!($name), "").await else {
                        return;
                    };
                    super::$name(&s).await;
                    s.drop_schema().await;
                });
            }
        }
    };
}

/// The same punches, two verdicts: E1 (default policy) loses 1 point for
/// 20 minutes late, E2 (`outbound`) 2; every day record, month score and
/// summary row says which policy it followed.
async fn same_punches_give_each_group_its_own_verdict(s: &Site) {
    s.ok(&["import", "employees", &s.file("employees.csv", TWO)]);
    s.ok(&["import", "punches", &s.file("punches.csv", LATE_20)]);

    let a = s.day("2026-11-03", "E1");
    assert_eq!(
        (a["status"].as_str(), a["late_minutes"].as_i64()),
        (Some("late"), Some(20))
    );
    assert_eq!(a["points"], 1, "{a}");
    assert_eq!(a["policy"], "default");
    let b = s.day("2026-11-03", "E2");
    assert_eq!(
        (b["status"].as_str(), b["late_minutes"].as_i64()),
        (Some("late"), Some(20))
    );
    assert_eq!(b["points"], 2, "{b}");
    assert_eq!(b["policy"], "outbound");

    // The day table gains a first `policy` column.
    let table = s.ok(&["day", "2026-11-03"]);
    assert!(table.starts_with("policy "), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("outbound ") && l.contains("E2")),
        "{table}"
    );

    // Month scores follow each policy's categories.
    let month = json_lines(&s.ok(&["month", "2026-11", "--json"]));
    let score = |id: &str| {
        month
            .iter()
            .find(|l| l["scores"]["employee_id"] == id)
            .unwrap_or_else(|| panic!("no score for {id}"))["scores"]
            .clone()
    };
    let (sa, sb) = (score("E1"), score("E2"));
    // (Both were absent on November's other workdays.)
    assert_eq!(sa["policy"], "default");
    assert_eq!(sa["categories"]["discipline"]["cap"], 20, "{sa}");
    assert!(sa["categories"].get("attendance").is_none(), "{sa}");
    assert_eq!(sb["policy"], "outbound");
    assert_eq!(sb["categories"]["attendance"]["cap"], 8, "{sb}");
    assert_eq!(sb["categories"]["attendance"]["capped"], 8, "{sb}");

    // The employee view and the daily summary label their rows too.
    let e2 = json_lines(&s.ok(&["employee", "E2", "--month", "2026-11", "--json"]));
    assert!(
        e2.iter()
            .filter(|l| l.get("date").is_some())
            .all(|l| l["policy"] == "outbound"),
        "{e2:?}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&s.ok(&["summary", "2026-11-03", "--json"])).unwrap();
    let rows = summary["rows"].as_array().unwrap();
    let row = |id: &str| rows.iter().find(|r| r["employee_id"] == id).unwrap();
    assert_eq!(row("E1")["policy"], "default", "{summary}");
    assert_eq!(row("E2")["policy"], "outbound", "{summary}");

    // Year results name the policy whose pass mark applies.
    let year = json_lines(&s.ok(&["year", "2026", "--json"]));
    let of = |id: &str| {
        year.iter()
            .find(|l| l["employee_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(of("E1")["policy"], "default");
    assert_eq!(of("E2")["policy"], "outbound");

    // A new employee's group covers all their days.
    let store = s.store().await;
    let h = store.policy_history().await.unwrap();
    assert_eq!(h.at("E2", d("2026-11-03")), "outbound");
    assert_eq!(h.at("E1", d("2026-11-03")), "default");
    store.close().await;
}
both_engines!(same_punches_give_each_group_its_own_verdict);

/// A known employee moved to another group follows it from the date of the
/// import that moved them: the days before keep the old policy's verdicts.
async fn a_change_of_group_applies_from_its_import_date(s: &Site) {
    let before = TWO.replace("outbound,S02,outbound", "outbound,S02,");
    s.ok(&["import", "employees", &s.file("employees.csv", &before)]);
    s.ok(&["import", "punches", &s.file("punches.csv", LATE_20)]);
    assert_eq!(s.day("2026-11-03", "E2")["points"], 1);

    // Moved today: the stored history says so, November's past days stay.
    s.ok(&["import", "employees", &s.file("employees.csv", TWO)]);
    let today = Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive();
    let store = s.store().await;
    let h = store.policy_history().await.unwrap();
    assert_eq!(h.at("E2", today), "outbound");
    assert_eq!(h.at("E2", today.pred_opt().unwrap()), "default");
    assert_eq!(h.at("E1", today), "default");
    let b = s.day("2026-11-03", "E2");
    assert_eq!(
        (b["points"].as_i64(), b["policy"].as_str()),
        (Some(1), Some("default"))
    );
    // Importing the same file again changes nothing.
    s.ok(&["import", "employees", &s.file("employees.csv", TWO)]);
    let again = store.policy_history().await.unwrap();
    assert_eq!(again.at("E2", today.pred_opt().unwrap()), "default");

    // Had the import run on 4 November, the 3rd would keep the default
    // policy and the 4th follow outbound's.
    store
        .set_employee_policies(
            &[PolicyChange {
                employee_id: "E2".into(),
                policy: "outbound".into(),
                valid_from: d("2026-11-04"),
            }],
            "test",
            "tester",
            Utc::now(),
        )
        .await
        .unwrap();
    let cfg = attendd::config::load_for_commands(&s.config).unwrap();
    let later = Utc.with_ymd_and_hms(2026, 12, 15, 0, 0, 0).unwrap();
    store
        .recompute(
            &cfg.policies,
            None,
            d("2026-11-01"),
            d("2026-11-30"),
            "test",
            "tester",
            later,
        )
        .await
        .unwrap();
    store.close().await;
    let b3 = s.day("2026-11-03", "E2");
    assert_eq!(
        (b3["points"].as_i64(), b3["policy"].as_str()),
        (Some(1), Some("default")),
        "{b3}"
    );
    let b4 = s.day("2026-11-04", "E2");
    assert_eq!(
        (b4["points"].as_i64(), b4["policy"].as_str()),
        (Some(2), Some("outbound")),
        "{b4}"
    );
    // E1 never moved.
    assert_eq!(s.day("2026-11-04", "E1")["points"], 1);
}
both_engines!(a_change_of_group_applies_from_its_import_date);

/// A manual deduction takes its rule from the catalogue of the employee's
/// own policy: 不能按规定登录 (呼出中心考核标准 二1) exists for outbound only.
async fn manual_entries_use_the_employees_catalogue(s: &Site) {
    s.ok(&["import", "employees", &s.file("employees.csv", TWO)]);
    let deduct = |who: &str| {
        s.cli(&[
            "deduct",
            "--employee",
            who,
            "--date",
            "2026-11-05",
            "--rule",
            "not_logged_in",
            "--note",
            "logged in at 09:10",
            "--by",
            "lead",
            "--json",
        ])
    };
    let o = deduct("E2");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let e: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(e["category"], "attendance", "{e}");
    let o = deduct("E1");
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("seed-default"), "{err}");
}
both_engines!(manual_entries_use_the_employees_catalogue);

/// Shift ids are those of the employee's own policy: an `evening` shift
/// that only the group defines is accepted in employees.csv and roster.csv
/// for its employees, refused (with the line) for the others, and the
/// stored roster classifies the group's days.
async fn shifts_are_read_in_each_employees_policy(s: &Site) {
    let evening = std::fs::read_to_string(OUTBOUND)
        .unwrap()
        .replace("default_shift = \"day\"", "default_shift = \"evening\"")
        .replace(
            "id = \"day\"\nstart = \"08:30\"\nend = \"17:30\"",
            "id = \"evening\"\nstart = \"13:00\"\nend = \"22:00\"",
        );
    assert!(evening.contains("id = \"evening\""));
    std::fs::write(s.dir.path().join("policies/outbound.toml"), evening).unwrap();
    let emps = "employee_id,name,team,supervisor,shift,policy\n\
                E1,Li Na,hotline,S01,day,\n\
                E2,Wang Wei,outbound,S02,evening,outbound\n";
    s.ok(&["import", "employees", &s.file("employees.csv", emps)]);
    let bad = s.file(
        "roster.csv",
        "employee_id,date,shift\nE2,2026-11-05,evening\nE1,2026-11-05,evening\n",
    );
    let o = s.cli(&["import", "roster", &bad]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("roster.csv:3:"),
        "{}",
        text(&o.stderr)
    );
    s.ok(&[
        "import",
        "roster",
        &s.file(
            "roster.csv",
            "employee_id,date,shift\nE2,2026-11-05,evening\nE1,2026-11-05,day\n",
        ),
    ]);
    s.ok(&[
        "import",
        "punches",
        &s.file(
            "punches.csv",
            "employee_id,time\nE2,2026-11-05 13:20:00\nE2,2026-11-05 22:01:00\n",
        ),
    ]);
    let b = s.day("2026-11-05", "E2");
    assert_eq!(b["shift"], "evening", "{b}");
    assert_eq!(
        (b["late_minutes"].as_i64(), b["points"].as_i64()),
        (Some(20), Some(2)),
        "{b}"
    );
    assert_eq!(b["policy"], "outbound");
}
both_engines!(shifts_are_read_in_each_employees_policy);

/// The appeal window is that of the employee's own policy: with an
/// `outbound` group that allows 5 days, E2 may still appeal on the 3rd day
/// after publication, E1 (the default's 2 days) no longer.
async fn appeal_windows_follow_each_group(s: &Site) {
    let five = std::fs::read_to_string(OUTBOUND)
        .unwrap()
        .replace("appeal_days = 2\n", "appeal_days = 5\n");
    assert!(five.contains("appeal_days = 5"));
    std::fs::write(s.dir.path().join("policies/outbound.toml"), five).unwrap();
    s.ok(&["import", "employees", &s.file("employees.csv", TWO)]);
    s.ok(&["import", "punches", &s.file("punches.csv", LATE_20)]);
    let cfg = attendd::config::load_for_commands(&s.config).unwrap();
    let store = s.store().await;
    let sh = |d: u32, h: u32| {
        chrono_tz::Asia::Shanghai
            .with_ymd_and_hms(2026, 12, d, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    assert!(
        attendd::hr::publish(&store, &cfg.policies, "2026-11", "hr", sh(1, 10))
            .await
            .unwrap()
    );
    let entry = |id: &'static str| {
        let store = store.clone();
        async move {
            store
                .ledger(d("2026-11-03"), d("2026-11-03"), Some(id))
                .await
                .unwrap()
                .into_iter()
                .find(|e| e.rule == "late")
                .unwrap_or_else(|| panic!("no late entry for {id}"))
                .id
        }
    };
    let (e1, e2) = (entry("E1").await, entry("E2").await);
    let e = attendd::hr::file_appeal(&store, &cfg.policies, e1, "traffic", "E1", sh(4, 12))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("appeal window"), "{e}");
    attendd::hr::file_appeal(&store, &cfg.policies, e2, "traffic", "E2", sh(4, 12))
        .await
        .unwrap();
    store.close().await;
}
both_engines!(appeal_windows_follow_each_group);

/// A group in another time zone: its employees' punches.csv times are read
/// in that zone and their days are classified there (08:50 in Tokyo is 20
/// minutes late on Tokyo's 08:30 shift).
async fn a_group_in_another_zone_reads_and_classifies_there(s: &Site) {
    let tokyo = std::fs::read_to_string(OUTBOUND)
        .unwrap()
        .replace("timezone = \"Asia/Shanghai\"", "timezone = \"Asia/Tokyo\"");
    assert!(tokyo.contains("Asia/Tokyo"));
    std::fs::write(s.dir.path().join("policies/outbound.toml"), tokyo).unwrap();
    s.ok(&["import", "employees", &s.file("employees.csv", TWO)]);
    s.ok(&["import", "punches", &s.file("punches.csv", LATE_20)]);
    let b = s.day("2026-11-03", "E2");
    assert_eq!(b["check_in"], "2026-11-03T08:50:00+09:00", "{b}");
    assert_eq!(
        (b["late_minutes"].as_i64(), b["points"].as_i64()),
        (Some(20), Some(2)),
        "{b}"
    );
    let a = s.day("2026-11-03", "E1");
    assert_eq!(a["check_in"], "2026-11-03T08:50:00+08:00", "{a}");
}
both_engines!(a_group_in_another_zone_reads_and_classifies_there);

/// `check-config` loads every group's policy: each problem names the
/// group's id and file (and the key when there is one); duplicate ids, the
/// id `default` and unknown keys are refused. A good configuration lists
/// each group.
#[test]
fn check_config_validates_every_group() {
    let dir = tempfile::tempdir().unwrap();
    let bad = std::fs::read_to_string(OUTBOUND)
        .unwrap()
        .replace("default_shift = \"day\"", "default_shift = \"night\"");
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    std::fs::copy(OUTBOUND, dir.path().join("outbound.toml")).unwrap();
    let check = |groups: &str| {
        let config = dir.path().join("attendd.toml");
        std::fs::write(
            &config,
            format!("[policy]\nfile = {SEED:?}\n{groups}\n[store]\nurl = \"sqlite://a.db\"\n"),
        )
        .unwrap();
        Command::new(BIN)
            .args(["check-config", "--config"])
            .arg(&config)
            .env_remove("ATTENDD_STORE_URL")
            .output()
            .unwrap()
    };
    let group = |id: &str, file: &str| format!("[[policy.group]]\nid = {id:?}\nfile = {file:?}\n");
    for (groups, says) in [
        (
            group("outbound", "missing.toml"),
            vec!["\"outbound\"", "missing.toml"],
        ),
        (
            group("outbound", "bad.toml"),
            vec!["\"outbound\"", "bad.toml", "default_shift"],
        ),
        (
            group("outbound", "outbound.toml") + &group("outbound", "outbound.toml"),
            vec!["\"outbound\"", "given twice"],
        ),
        (group("default", "outbound.toml"), vec!["reserved"]),
        (
            "[[policy.group]]\nid = \"outbound\"\npath = \"outbound.toml\"\n".to_string(),
            vec!["path"],
        ),
    ] {
        let o = check(&groups);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{groups}: {err}");
        for s in says {
            assert!(err.contains(s), "{groups}: {s} in {err}");
        }
    }
    let o = check(&group("outbound", "outbound.toml"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("policy group outbound: "), "{out}");
    assert!(out.contains("policy outbound-call-centre version"), "{out}");
}

/// `GET path` with a bearer token: status and body.
fn get(port: u16, path: &str, token: &str) -> Option<(u16, serde_json::Value)> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut b = String::new();
    let _ = c.read_to_string(&mut b);
    let code = b.get(9..12)?.parse().ok()?;
    let body = b.split_once("\r\n\r\n")?.1;
    Some((code, serde_json::from_str(body).unwrap_or_default()))
}

fn recv_until(
    sock: &std::os::unix::net::UnixDatagram,
    what: &str,
    bound: Duration,
    log: &mut Vec<String>,
) -> bool {
    let deadline = Instant::now() + bound;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.lines().any(|l| l.starts_with(what));
            log.push(msg);
            if hit {
                return true;
            }
        }
    }
    false
}

/// SIGHUP reloads the group policies with the default one, all at once: a
/// broken group file refuses the whole reload (the previous policies stay
/// in force), a good one is in force at once (the API shows its version).
#[test]
fn sighup_reloads_every_group_or_none() {
    let http = free_port();
    let token = "hr-token-0123456789";
    let s = rt()
        .block_on(site(
            false,
            "sighup",
            &format!(
                "[http]\nlisten = \"127.0.0.1:{http}\"\n\
                 [[http.tokens]]\nname = \"hr\"\ntoken = \"{token}\"\nrole = \"hr\"\n"
            ),
        ))
        .unwrap();
    let group_file = s.dir.path().join("policies/outbound.toml");
    let sock_path = s.dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let log_path = s.dir.path().join("run.log");
    let logf = std::fs::File::create(&log_path).unwrap();
    let child = Kill(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&s.config)
            .env("NOTIFY_SOCKET", &sock_path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("ATTENDD_STORE_URL")
            .stdin(Stdio::null())
            .stdout(logf.try_clone().unwrap())
            .stderr(logf)
            .spawn()
            .unwrap(),
    );
    let logs = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let mut got = Vec::new();
    assert!(
        recv_until(&sock, "READY=1", Duration::from_secs(30), &mut got),
        "no READY: {got:?}\n{}",
        logs()
    );
    let version = || {
        let (code, p) = get(http, "/api/v1/policy", token).unwrap();
        assert_eq!(code, 200, "{p}");
        p["groups"][0]["version"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(version(), "2026.11.1");
    let pid = child.0.id().to_string();
    let hup = || {
        assert!(
            Command::new("kill")
                .args(["-HUP", &pid])
                .status()
                .unwrap()
                .success()
        )
    };

    // A broken group file: nothing is reloaded.
    let good = std::fs::read_to_string(&group_file).unwrap();
    std::fs::write(
        &group_file,
        good.replace("default_shift = \"day\"", "default_shift = \"night\""),
    )
    .unwrap();
    hup();
    assert!(
        recv_until(&sock, "RELOADING=1", Duration::from_secs(10), &mut got),
        "{got:?}"
    );
    assert!(
        recv_until(&sock, "READY=1", Duration::from_secs(10), &mut got),
        "{got:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let l = logs();
    assert!(l.contains("reload refused"), "{l}");
    assert!(l.contains("policy group \"outbound\""), "{l}");
    assert_eq!(version(), "2026.11.1");

    // A good one, with a new version: in force at once.
    std::fs::write(
        &group_file,
        good.replace("version = \"2026.11.1\"", "version = \"2026.11.2\""),
    )
    .unwrap();
    hup();
    assert!(
        recv_until(&sock, "RELOADING=1", Duration::from_secs(10), &mut got),
        "{got:?}"
    );
    assert!(
        recv_until(&sock, "READY=1", Duration::from_secs(10), &mut got),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|m| m.contains("group outbound: outbound-call-centre 2026.11.2")),
        "{got:?}"
    );
    assert_eq!(version(), "2026.11.2", "{}", logs());
    drop(child);
}

/// Absence alerts and the day close follow each employee's policy: at
/// 10:00 the default policy's day shift (08:30) is 90 minutes late, while an
/// `evening` group's shift (13:00–22:00) has not begun, so only E1 is
/// alerted; the day closes only after the evening shift has ended.
#[tokio::test]
async fn absence_alerts_and_day_close_follow_each_group() {
    use attendd::scheduler::{DriftBoard, Plan, Scheduler};
    use std::sync::Arc;
    let s = site(false, "alerts", "").await.unwrap();
    let evening = std::fs::read_to_string(OUTBOUND).unwrap().replace(
        "start = \"08:30\"\nend = \"17:30\"",
        "start = \"13:00\"\nend = \"22:00\"",
    );
    assert!(evening.contains("13:00"));
    std::fs::write(s.dir.path().join("policies/outbound.toml"), evening).unwrap();
    s.ok(&["import", "employees", &s.file("employees.csv", TWO)]);
    let cfg = attendd::config::load_for_commands(&s.config).unwrap();
    let store = s.store().await;
    let sched = Scheduler::new(
        store.clone(),
        Plan {
            policy: Arc::new(cfg.policy.clone()),
            policies: Some(Arc::new(cfg.policies.clone())),
            schedule: attendd::config::RawSchedule {
                terminal_silent_minutes: 0,
                quarantine_spike: 0,
                ..Default::default()
            },
            routes: vec![],
        },
        Arc::new(DriftBoard::default()),
    );
    let local = |d: &str, hm: &str| {
        chrono_tz::Asia::Shanghai
            .from_local_datetime(
                &NaiveDate::parse_from_str(d, "%Y-%m-%d")
                    .unwrap()
                    .and_time(chrono::NaiveTime::parse_from_str(hm, "%H:%M").unwrap()),
            )
            .unwrap()
            .with_timezone(&Utc)
    };
    // Monday 2 March 2026.
    sched.tick(local("2026-03-02", "10:00")).await.unwrap();
    let keys: Vec<String> = store
        .outbox(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "absence")
        .map(|r| r.key)
        .collect();
    assert_eq!(keys, vec!["absence/2026-03-02/E1".to_string()]);
    // At 14:30 the evening shift is 90 minutes old: E2 too.
    sched.tick(local("2026-03-02", "14:30")).await.unwrap();
    let mut keys: Vec<String> = store
        .outbox(None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.kind == "absence")
        .map(|r| r.key)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "absence/2026-03-02/E1".to_string(),
            "absence/2026-03-02/E2".to_string()
        ]
    );
    // 19:00: the day shift is over, the evening one is not: still open.
    let r = sched.tick(local("2026-03-02", "19:00")).await.unwrap();
    assert!(!r.closed.contains(&d("2026-03-02")), "{r:?}");
    let r = sched.tick(local("2026-03-03", "01:00")).await.unwrap();
    assert!(r.closed.contains(&d("2026-03-02")), "{r:?}");
    // Publishing March waits for the evening group's last window too.
    let at_23 = local("2026-03-31", "23:00");
    assert!(attendd::hr::month_closes_at(&cfg.policy, d("2026-03-01")) < at_23);
    let e = attendd::hr::publish(&store, &cfg.policies, "2026-03", "hr", at_23)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot be published before"), "{e}");
    assert!(
        attendd::hr::publish(
            &store,
            &cfg.policies,
            "2026-03",
            "hr",
            local("2026-04-01", "03:00")
        )
        .await
        .unwrap()
    );
    store.close().await;
}
