//! Several rule sets on one site (policy.md, "Several rule sets on one
//! site"): `attendd evaluate --group ID=FILE` and employees.csv's `policy`
//! column. The rule sets are the shipped seed-default (坐席员考核细则
//! 二(二)1: late up to half an hour −1) and outbound-call-centre (呼出中心考核标准
//! 二3: every late arrival −2).

use std::path::Path;
use std::process::{Command, Output};

use crate::common::root;

const SEED: &str = "config/policies/seed-default.toml";
const OUTBOUND: &str = "config/policies/outbound-call-centre.toml";

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

fn write(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p.to_str().unwrap().to_string()
}

/// Runs evaluate on 2026-11-03 (a Tuesday) with `extra` arguments.
fn evaluate(dir: &Path, employees: &str, punches: &str, extra: &[&str]) -> Output {
    let e = write(dir, "employees.csv", employees);
    let p = write(dir, "punches.csv", punches);
    let mut args = vec![
        "evaluate",
        "--policy",
        SEED,
        "--employees",
        &e,
        "--punches",
        &p,
        "--from",
        "2026-11-03",
        "--to",
        "2026-11-03",
    ];
    args.extend(extra);
    attendd(&args)
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn day<'a>(lines: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    lines
        .iter()
        .find(|l| l["employee_id"] == id && l.get("date").is_some())
        .unwrap_or_else(|| panic!("no day for {id}"))
}

const TWO: &str = "employee_id,name,team,supervisor,policy\n\
                   E1,Li Na,hotline,S01,\n\
                   E2,Wang Wei,outbound,S02,outbound\n";
const LATE_20: &str = "employee_id,time\n\
                       E1,2026-11-03 08:50:00\n\
                       E1,2026-11-03 17:31:00\n\
                       E2,2026-11-03 08:50:00\n\
                       E2,2026-11-03 17:31:00\n";

#[test]
fn each_employee_is_evaluated_with_its_own_policy() {
    let dir = tempfile::tempdir().unwrap();
    let o = evaluate(
        dir.path(),
        TWO,
        LATE_20,
        &[
            "--group",
            &format!("outbound={OUTBOUND}"),
            "--json",
            "--scores",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines = json_lines(&o);
    let a = day(&lines, "E1");
    assert_eq!(a["status"], "late");
    assert_eq!(a["late_minutes"], 20);
    assert_eq!(a["points"], 1);
    assert_eq!(a["policy"], "default");
    let b = day(&lines, "E2");
    assert_eq!(b["status"], "late");
    assert_eq!(b["late_minutes"], 20);
    assert_eq!(b["points"], 2);
    assert_eq!(b["policy"], "outbound");
    // Month scores follow each policy's categories and are labelled too.
    let score = |id: &str| {
        lines
            .iter()
            .find(|l| l["scores"]["employee_id"] == id)
            .unwrap_or_else(|| panic!("no score for {id}"))["scores"]
            .clone()
    };
    let (sa, sb) = (score("E1"), score("E2"));
    assert_eq!(sa["policy"], "default");
    assert_eq!(sa["categories"]["discipline"]["raw"], 1);
    assert_eq!(sb["policy"], "outbound");
    assert_eq!(sb["categories"]["attendance"]["raw"], 2);
    assert_eq!(sb["categories"]["attendance"]["cap"], 8);
}

#[test]
fn without_groups_every_record_says_default() {
    let dir = tempfile::tempdir().unwrap();
    let o = evaluate(
        dir.path(),
        "employee_id,name,team,supervisor\nE1,Li Na,hotline,S01\n",
        LATE_20,
        &["--json"],
    );
    // E2 is not in employees.csv: a warning, not an error.
    assert!(o.status.success(), "{}", text(&o.stderr));
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["policy"], "default");
    assert_eq!(lines[0]["points"], 1);
}

#[test]
fn an_unknown_group_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    // No --group at all: the column names a group nobody gave.
    let o = evaluate(dir.path(), TWO, LATE_20, &["--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("employees.csv:3:"), "{err}");
    assert!(err.contains("\"outbound\""), "{err}");
    // The well-formed row is still evaluated.
    let lines = json_lines(&o);
    assert_eq!(day(&lines, "E1")["points"], 1);
    assert!(lines.iter().all(|l| l["employee_id"] != "E2"));

    // A misspelt group on the command line: the same, listing the known ones.
    let o = evaluate(
        dir.path(),
        TWO,
        LATE_20,
        &["--group", &format!("outbond={OUTBOUND}"), "--json"],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains("employees.csv:3:"), "{err}");
    assert!(err.contains("default, outbond"), "{err}");
}

#[test]
fn group_ids_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            vec![
                "--group".to_string(),
                format!("outbound={OUTBOUND}"),
                "--group".into(),
                format!("outbound={SEED}"),
            ],
            "given twice",
        ),
        (
            vec!["--group".into(), format!("default={OUTBOUND}")],
            "reserved",
        ),
        (vec!["--group".into(), OUTBOUND.into()], "ID=FILE"),
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = evaluate(dir.path(), TWO, LATE_20, &a);
        assert!(!o.status.success(), "{args:?}");
        assert!(o.stdout.is_empty(), "{args:?}: nothing is evaluated");
        assert!(text(&o.stderr).contains(says), "{}", text(&o.stderr));
    }
    // A group file that does not validate is named.
    let bad = write(dir.path(), "bad.toml", "id = \"bad\"\n");
    let o = evaluate(
        dir.path(),
        TWO,
        LATE_20,
        &["--group", &format!("outbound={bad}")],
    );
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(text(&o.stderr).contains("bad.toml"), "{}", text(&o.stderr));
}

/// A copy of outbound-call-centre in another zone, whose one shift is
/// called `morning`.
fn berlin_outbound(dir: &Path) -> String {
    let text = std::fs::read_to_string(root().join(OUTBOUND))
        .unwrap()
        .replace(
            "timezone = \"Asia/Shanghai\"",
            "timezone = \"Europe/Berlin\"",
        )
        .replace("default_shift = \"day\"", "default_shift = \"morning\"")
        .replace("id = \"day\"", "id = \"morning\"");
    assert!(text.contains("Europe/Berlin") && text.contains("\"morning\""));
    write(dir, "berlin.toml", &text)
}

#[test]
fn times_and_shifts_are_read_in_the_employees_policy() {
    let dir = tempfile::tempdir().unwrap();
    let berlin = berlin_outbound(dir.path());
    let roster = write(
        dir.path(),
        "roster.csv",
        "employee_id,date,shift\n\
         E2,2026-11-03,morning\n\
         E1,2026-11-03,morning\n",
    );
    let o = evaluate(
        dir.path(),
        TWO,
        LATE_20,
        &[
            "--group",
            &format!("outbound={berlin}"),
            "--roster",
            &roster,
            "--json",
        ],
    );
    // E1's policy has no shift `morning`: that row (line 3) is refused.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("roster.csv:3:"), "{err}");
    assert!(!err.contains("roster.csv:2:"), "{err}");
    let lines = json_lines(&o);
    let b = day(&lines, "E2");
    // 08:50 is Berlin time (UTC+1 in November), not Shanghai time.
    assert_eq!(b["check_in"], "2026-11-03T08:50:00+01:00");
    assert_eq!(b["shift"], "morning");
    assert_eq!(b["points"], 2);
    assert_eq!(b["policy"], "outbound");
    let a = day(&lines, "E1");
    assert_eq!(a["check_in"], "2026-11-03T08:50:00+08:00");
    assert_eq!(a["shift"], "day");
}

#[test]
fn tables_name_each_rows_policy_and_the_union_of_categories() {
    let dir = tempfile::tempdir().unwrap();
    let o = evaluate(
        dir.path(),
        TWO,
        LATE_20,
        &["--group", &format!("outbound={OUTBOUND}"), "--scores"],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let header = out
        .lines()
        .find(|l| l.starts_with("employee") && l.contains("month"))
        .expect("score header");
    // seed-default's discipline and outbound-call-centre's attendance.
    assert!(header.contains("discipline(20)"), "{header}");
    assert!(header.contains("attendance(8)"), "{header}");
    // Day rows name their policy first.
    let days: Vec<&str> = out.lines().take_while(|l| !l.is_empty()).collect();
    assert!(days[0].starts_with("policy"), "{}", days[0]);
    assert!(
        days.iter()
            .any(|l| l.starts_with("default") && l.contains("E1")),
        "{out}"
    );
    assert!(
        days.iter()
            .any(|l| l.starts_with("outbound") && l.contains("E2")),
        "{out}"
    );
}
