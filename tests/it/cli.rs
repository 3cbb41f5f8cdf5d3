//! The built binary, run as a user would.

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

const EXAMPLE: &[&str] = &[
    "evaluate",
    "--policy",
    "config/policies/seed-default.toml",
    "--employees",
    "config/examples/employees.csv",
    "--punches",
    "config/examples/punches.csv",
    "--leaves",
    "config/examples/leaves.csv",
    "--holidays",
    "config/examples/holidays.csv",
    "--roster",
    "config/examples/roster.csv",
    "--from",
    "2026-11-02",
    "--to",
    "2026-11-08",
];

#[test]
fn evaluate_the_shipped_example_as_json() {
    let mut args = EXAMPLE.to_vec();
    args.extend(["--json", "--scores"]);
    let out = attendd(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let days: Vec<&serde_json::Value> = lines.iter().filter(|l| l.get("date").is_some()).collect();
    let scores: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.get("scores").is_some()).collect();
    assert_eq!(days.len(), 5 * 7);
    assert_eq!(scores.len(), 5);
    // Sorted by employee then date.
    let keys: Vec<(String, String)> = days
        .iter()
        .map(|d| {
            (
                d["employee_id"].as_str().unwrap().into(),
                d["date"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // E001 on 2026-11-03: 08:46:10 → 16 minutes late, 1 point, first reminder.
    let d = days
        .iter()
        .find(|d| d["employee_id"] == "E001" && d["date"] == "2026-11-03")
        .unwrap();
    assert_eq!(d["status"], "late");
    assert_eq!(d["shift"], "day");
    assert_eq!(d["check_in"], "2026-11-03T08:46:10+08:00");
    assert_eq!(d["late_minutes"], 16);
    assert_eq!(d["early_minutes"], 0);
    assert_eq!(d["absence_days"], 0);
    assert_eq!(d["points"], 1);
    assert_eq!(d["actions"], serde_json::json!(["verbal_reminder"]));
    assert_eq!(
        d["deductions"],
        serde_json::json!([{"rule": "late", "category": "discipline", "points": 1}])
    );
    // A half day is a JSON decimal.
    let d = days
        .iter()
        .find(|d| d["employee_id"] == "E002" && d["date"] == "2026-11-04")
        .unwrap();
    assert_eq!(d["absence_days"], 0.5);
    assert!(d["check_out"].is_null());
    // Rest days have no shift.
    let d = days.iter().find(|d| d["date"] == "2026-11-08").unwrap();
    assert_eq!(d["status"], "rest");
    assert!(d["shift"].is_null());
    let s = scores
        .iter()
        .find(|s| s["scores"]["employee_id"] == "E002")
        .unwrap();
    assert_eq!(s["scores"]["month"], "2026-11");
    assert_eq!(s["scores"]["categories"]["discipline"]["raw"], 22);
    assert_eq!(s["scores"]["categories"]["discipline"]["capped"], 20);
    assert_eq!(s["scores"]["categories"]["discipline"]["cap"], 20);
    assert_eq!(s["scores"]["score"], 80);
}

#[test]
fn evaluate_prints_a_table_without_json() {
    let out = attendd(EXAMPLE);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let first = s.lines().next().unwrap();
    assert!(
        first.starts_with("employee") && first.contains("status"),
        "{first}"
    );
    assert!(
        s.lines()
            .any(|l| l.starts_with("E002") && l.contains("late_and_early"))
    );
    assert_eq!(s.lines().count(), 1 + 35);
}

#[test]
fn malformed_rows_are_reported_and_good_rows_still_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let punches = dir.path().join("punches.csv");
    std::fs::write(
        &punches,
        "employee_id,time,device_id\nE001,2026-11-02 08:29:00,g\nE001,2026-11-02 25:00:00,g\nE001,2026-11-02 17:31:00,g\n",
    )
    .unwrap();
    let employees = dir.path().join("employees.csv");
    std::fs::write(
        &employees,
        "employee_id,name,team,supervisor\nE001,A,t,s\nE002,B,t,s,extra\n",
    )
    .unwrap();
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let (pp, ep) = (p(&punches), p(&employees));
    let out = attendd(&[
        "evaluate",
        "--policy",
        "config/policies/seed-default.toml",
        "--employees",
        &ep,
        "--punches",
        &pp,
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-02",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains(&format!("{pp}:3:")), "{err}");
    assert!(err.contains("25:00:00"), "{err}");
    let days: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(days.len(), 2);
    assert_eq!(days[0]["status"], "present");
    assert_eq!(days[1]["status"], "absent_full");
}

#[test]
fn check_config_names_the_broken_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let text_ok =
        std::fs::read_to_string(root().join("config/policies/seed-default.toml")).unwrap();
    std::fs::write(
        &bad,
        text_ok.replace("rule = \"late_full_day\"", "rule = \"late_whole_day\""),
    )
    .unwrap();
    let out = attendd(&["check-config", "--policy", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("lateness.steps[2].rule"), "{err}");
    assert!(err.contains("late_whole_day"), "{err}");

    let out = attendd(&[
        "check-config",
        "--policy",
        "config/policies/city-management-24h.toml",
    ]);
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("night: 18:00–08:00 (next day)"));
}

#[test]
fn check_config_validates_the_example_config() {
    let out = attendd(&["check-config", "--config", "config/attendd.toml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("attendd.toml");
    std::fs::write(
        &cfg,
        "[policy]\nfile = \"nowhere.toml\"\n[store]\nurl = \"mysql://x\"\n[[source.mqtt]]\nbroker = \"tcp://x\"\ndecoder = \"nope\"\nclient_id = \"a\"\n",
    )
    .unwrap();
    let out = attendd(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for k in [
        "store.url",
        "source.mqtt[0].broker",
        "source.mqtt[0].decoder",
        "nowhere.toml",
    ] {
        assert!(err.contains(k), "{k} not in {err}");
    }
}

#[test]
fn help_describes_the_commands() {
    let out = attendd(&["evaluate", "--help"]);
    assert!(out.status.success());
    let h = text(&out.stdout);
    assert!(
        h.contains("--policy") && h.contains("--scores") && h.contains("employee_id,time"),
        "{h}"
    );
}

/// `[store] sqlite_cache_mib`: out of range is refused naming the key; a
/// value in range sets each SQLite connection's page cache.
#[test]
fn sqlite_cache_size_is_configured_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("attendd.toml");
    let policy = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/policies/seed-default.toml"
    );
    std::fs::write(
        &cfg,
        format!(
            "[policy]\nfile = {policy:?}\n[store]\nurl = \"sqlite://a.db\"\nsqlite_cache_mib = 0\n"
        ),
    )
    .unwrap();
    let out = attendd(&["check-config", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("store.sqlite_cache_mib"),
        "{}",
        text(&out.stderr)
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let store = attendd::store::Store::open_with(&url, 8).await.unwrap();
        let attendd::store::Store::Sqlite(pool) = &store else {
            panic!("a SQLite store")
        };
        let n: i64 = sqlx::query_scalar("PRAGMA cache_size")
            .fetch_one(pool)
            .await
            .unwrap();
        assert_eq!(n, -8 * 1024);
        store.close().await;
    });
}
