//! HR's commands on the real binary: `deduct`, `bonus`, `correct`,
//! `appeal`, `export` (CSV and an XLSX workbook read back with calamine).

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};

use crate::hr_fixture::{Fixture, POLICY, fixture};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");

fn config(f: &Fixture, policy: &str, name: &str) -> PathBuf {
    let p = f.dir.path().join(name);
    std::fs::write(
        &p,
        format!(
            "[policy]\nfile = {policy:?}\n\n[store]\nurl = {:?}\n",
            f.url
        ),
    )
    .unwrap();
    p
}

/// Runs the binary; returns (exit code, stdout, stderr).
fn run(cfg: &Path, args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(cfg)
        .env("USER", "hr-clerk")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deduct_bonus_correct_appeal_export() {
    let f = fixture().await;
    let cfg = config(&f, POLICY, "attendd.toml");

    // deduct: default points from the catalogue, $USER as the actor.
    let (code, out, err) = run(
        &cfg,
        &[
            "deduct",
            "--employee",
            "E001",
            "--date",
            "2026-11-02",
            "--rule",
            "shift_swap",
            "--note",
            "swapped with E002 unannounced",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let e: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(e["rule"], "shift_swap");
    assert_eq!(e["points"], 2);
    assert_eq!(e["recorded_by"], "hr-clerk");
    let (code, _, err) = run(
        &cfg,
        &[
            "deduct",
            "--employee",
            "E001",
            "--date",
            "2026-11-02",
            "--rule",
            "training_absence",
            "--points",
            "3",
            "--note",
            "missed the Friday session",
            "--by",
            "lead-A",
        ],
    );
    assert_eq!(code, 0, "{err}");

    // Bad input names the field and exits 1.
    let (code, _, err) = run(
        &cfg,
        &[
            "deduct",
            "--employee",
            "E001",
            "--date",
            "2026-11-02",
            "--rule",
            "nap",
            "--note",
            "x",
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("rule: \"nap\" is not in the catalogue"),
        "{err}"
    );
    assert!(err.contains("dress_code"), "known rules listed: {err}");
    let (code, _, err) = run(
        &cfg,
        &[
            "bonus",
            "--employee",
            "E001",
            "--date",
            "2026-11-02",
            "--rule",
            "dress_code",
            "--note",
            "x",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("deduction rule"), "{err}");
    // A bonus under the policy that has bonus rules (rule set D).
    let hengshui = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/policies/hengshui-acceptance.toml"
    );
    let cfg_d = config(&f, hengshui, "hengshui.toml");
    let (code, out, err) = run(
        &cfg_d,
        &[
            "bonus",
            "--employee",
            "E002",
            "--date",
            "2026-11-03",
            "--rule",
            "top_rated",
            "--note",
            "first in the post rating",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+3"), "{out}");

    // correct: Dan's forgotten check-out; the day is recomputed.
    let (code, out, err) = run(
        &cfg,
        &[
            "correct",
            "--employee",
            "E004",
            "--time",
            "2026-11-02 17:32",
            "--reason",
            "face terminal offline",
            "--by",
            "lead-A",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let c: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(c["date"], "2026-11-02");
    let d = f
        .store
        .verdicts(
            crate::common::date("2026-11-02"),
            crate::common::date("2026-11-02"),
            Some("E004"),
        )
        .await
        .unwrap();
    assert_eq!(d[0].status, "present");
    let (code, _, err) = run(
        &cfg,
        &[
            "correct",
            "--employee",
            "E004",
            "--time",
            "soon",
            "--reason",
            "x",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("--time"), "{err}");

    // appeal before publication is refused (exit 1); after, filed and
    // answered.
    let carol = f
        .store
        .ledger(
            crate::common::date("2026-11-01"),
            crate::common::date("2026-11-30"),
            Some("E003"),
        )
        .await
        .unwrap();
    let id = carol[0].id.to_string();
    let (code, _, err) = run(
        &cfg,
        &["appeal", "file", "--entry", &id, "--reason", "was sick"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("not published"), "{err}");
    // A month is published only once its last day's last punch window has
    // closed (2026-11-30 21:30 Shanghai here); before that the command
    // refuses, and the month is published as HR would the next morning.
    let policy = attendd::policy_file::load(Path::new(POLICY)).unwrap();
    let closes = attendd::hr::month_closes_at(&policy, crate::common::date("2026-11-01"));
    assert_eq!(closes.to_rfc3339(), "2026-11-30T13:30:00+00:00");
    let (code, _, err) = run(&cfg, &["publish", "2026-11"]);
    if chrono::Utc::now() < closes {
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("cannot be published before"), "{err}");
        let next_morning = chrono::DateTime::parse_from_rfc3339("2026-12-01T10:00:00+08:00")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert!(
            attendd::hr::publish(&f.store, &policy, "2026-11", "hr-clerk", next_morning)
                .await
                .unwrap()
        );
    } else {
        assert_eq!(code, 0, "{err}");
    }
    let (code, out, err) = run(
        &cfg,
        &[
            "appeal",
            "file",
            "--entry",
            &id,
            "--reason",
            "was sick, certificate attached",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let a: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let aid = a["id"].to_string();
    let (code, out, err) = run(
        &cfg,
        &[
            "appeal",
            "answer",
            &aid,
            "--decision",
            "upheld",
            "--answer",
            "certificate accepted",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("voided"), "{out}");
    // `attendd month` counts the ledger: the voided absence no longer costs.
    let (code, out, err) = run(&cfg, &["month", "2026-11", "--json"]);
    assert_eq!(code, 0, "{err}");
    let carol: serde_json::Value = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["scores"]["employee_id"] == "E003")
        .unwrap();
    assert_eq!(carol["scores"]["score"], 100, "{out}");
    let (code, out, _) = run(&cfg, &["appeal", "list", "--status", "upheld", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1);

    // export CSV (English and Chinese) and XLSX.
    let csv_path = f.dir.path().join("nov.csv");
    let (code, _, err) = run(
        &cfg,
        &[
            "export",
            "--month",
            "2026-11",
            "--format",
            "csv",
            "-o",
            csv_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let csv = csv.trim_start_matches('\u{feff}');
    assert!(
        csv.starts_with("employee_id,name,team,date,status"),
        "{csv}"
    );
    assert!(csv.contains("E003,Carol,B,2026-11-02,absent,"), "{csv}");
    let zh_path = f.dir.path().join("nov-zh.csv");
    let (code, _, err) = run(
        &cfg,
        &[
            "export",
            "--month",
            "2026-11",
            "--format",
            "csv",
            "--lang",
            "zh",
            "--view",
            "scores",
            "-o",
            zh_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let zh = std::fs::read_to_string(&zh_path).unwrap();
    assert!(zh.contains("工号,姓名,班组,月份,得分"), "{zh}");

    let xlsx_path = f.dir.path().join("nov.xlsx");
    let (code, _, err) = run(
        &cfg,
        &[
            "export",
            "--month",
            "2026-11",
            "--format",
            "xlsx",
            "--lang",
            "zh",
            "-o",
            xlsx_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let bytes = std::fs::read(&xlsx_path).unwrap();
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).unwrap();
    assert_eq!(wb.sheet_names(), ["每日考勤", "扣分明细", "月度考核得分"]);

    let grid = wb.worksheet_range("每日考勤").unwrap();
    let cell = |r: &calamine::Range<Data>, row: u32, col: u32| {
        r.get_value((row, col)).cloned().unwrap_or(Data::Empty)
    };
    assert_eq!(cell(&grid, 0, 0), Data::String("工号".into()));
    // The date header is a real date (issue 17): serial 46328 is
    // 2026-11-02; the row under it names the weekday.
    assert!(
        matches!(cell(&grid, 0, 4), Data::DateTime(d) if d.as_f64() == 46328.0),
        "{:?}",
        cell(&grid, 0, 4)
    );
    assert_eq!(cell(&grid, 1, 4), Data::String("一".into()));
    // Rows: E001, E002, E003, E004 from row 2; 2026-11-02 is column 3 + 1.
    assert_eq!(cell(&grid, 3, 0), Data::String("E002".into()));
    assert_eq!(cell(&grid, 3, 4), Data::String("旷工半天".into()));
    assert_eq!(cell(&grid, 4, 4), Data::String("旷工".into()));
    assert_eq!(cell(&grid, 5, 4), Data::String("出勤".into()), "corrected");
    assert_eq!(
        cell(&grid, 2, 3),
        Data::String("休息".into()),
        "2026-11-01 is a Sunday"
    );

    let deds = wb.worksheet_range("扣分明细").unwrap();
    let rows: Vec<Vec<Data>> = deds.rows().map(|r| r.to_vec()).collect();
    // The Chinese workbook names the seed clause, not the English rule id
    // (issue 17).
    let swap = rows
        .iter()
        .find(|r| r[6] == Data::String("擅自换班".into()))
        .expect("shift_swap row");
    assert_eq!(swap[5], Data::String("坐席员考核细则 二(一)7".into()));
    assert_eq!(swap[7], Data::Float(2.0));
    let carol_row = rows
        .iter()
        .find(|r| r[1] == Data::String("E003".into()))
        .unwrap();
    // The void time is a real date-time (issue 17), and the entry sits
    // apart from the live ones, marked 已撤销.
    assert!(
        matches!(&carol_row[12], Data::DateTime(d) if d.as_f64() > 46327.0),
        "voided by the appeal: {carol_row:?}"
    );
    assert_eq!(
        carol_row[14],
        Data::String("已撤销".into()),
        "{carol_row:?}"
    );

    let scores = wb.worksheet_range("月度考核得分").unwrap();
    let rows: Vec<Vec<Data>> = scores.rows().map(|r| r.to_vec()).collect();
    let score_of = |id: &str| {
        rows.iter()
            .find(|r| r[0] == Data::String(id.into()))
            .unwrap()[4]
            .clone()
    };
    assert_eq!(
        score_of("E001"),
        Data::Float(95.0),
        "shift swap 2 + training 3"
    );
    assert_eq!(
        score_of("E003"),
        Data::Float(100.0),
        "absence voided on appeal"
    );
    assert_eq!(score_of("E002"), Data::Float(98.0), "half day 5 - bonus 3");

    // A bad -o path is bad input.
    let (code, _, err) = run(
        &cfg,
        &[
            "export",
            "--month",
            "2026-11",
            "--format",
            "xlsx",
            "-o",
            "/nonexistent/dir/x.xlsx",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("-o /nonexistent/dir/x.xlsx"), "{err}");
}

#[test]
fn check_config_validates_api_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("attendd.toml");
    let db = dir.path().join("a.db");
    std::fs::write(
        &cfg,
        format!(
            "[policy]\nfile = {POLICY:?}\n\n[store]\nurl = \"sqlite://{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
             [[http.tokens]]\ntoken = \"long-enough-secret-1\"\nrole = \"boss\"\n\n\
             [[http.tokens]]\ntoken_env = \"ATTENDD_TEST_TOKEN_UNSET\"\nrole = \"hr\"\n\n\
             [[http.tokens]]\ntoken = \"short\"\nrole = \"supervisor:A\"\n\n\
             [[http.tokens]]\ntoken_env = \"ATTENDD_TEST_TOKEN_SET\"\nrole = \"supervisor:A\"\n",
            db.display()
        ),
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env_remove("ATTENDD_TEST_TOKEN_UNSET")
        .env("ATTENDD_TEST_TOKEN_SET", "a-long-enough-secret-value")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("http.tokens[0].role"), "{err}");
    assert!(err.contains("http.tokens[1].token_env"), "{err}");
    assert!(err.contains("ATTENDD_TEST_TOKEN_UNSET"), "{err}");
    assert!(err.contains("http.tokens[2].token"), "{err}");
    assert!(!err.contains("http.tokens[3]"), "{err}");
    assert!(
        !err.contains("a-long-enough-secret-value"),
        "no secret in messages: {err}"
    );
}

#[test]
fn check_config_lists_token_names_and_roles_not_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("attendd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[policy]\nfile = {POLICY:?}\n\n[store]\nurl = \"sqlite://{}\"\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
             [[http.tokens]]\nname = \"hr-office\"\ntoken_env = \"ATTENDD_TEST_TOKEN_HR\"\nrole = \"hr\"\n",
            dir.path().join("a.db").display()
        ),
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&cfg)
        .env("ATTENDD_TEST_TOKEN_HR", "the-secret-value-123")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("api tokens: hr-office (hr)"), "{out}");
    assert!(!out.contains("the-secret-value-123"));
}
