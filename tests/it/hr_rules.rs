//! HR rules beyond the daily grading, with the seed's wording beside the
//! numbers: correction limits (补卡 rules, as DingTalk's 补卡规则), appeal
//! answers (坐席员考核细则 一(七)) and year results (一(九)(十)).

use std::sync::Arc;

use attendd::config::RawSchedule;
use attendd::domain::Points;
use attendd::domain::policy::Policy;
use attendd::hr::HrError;
use attendd::scheduler::{DriftBoard, Plan, Route, Scheduler};
use attendd::store::EmployeeRecord;
use axum::http::StatusCode;
use chrono::NaiveDate;
use serde_json::json;

use crate::hr_fixture::{HR, POLICY, SUP_A, call, fixture, sh};

/// seed-default with `extra` appended (a new table at the end) and
/// `pass_mark` replaced when `pass` is given.
fn seed_with(extra: &str, pass: Option<&str>) -> Policy {
    let mut text = std::fs::read_to_string(POLICY).unwrap();
    if let Some(p) = pass {
        let line = text
            .lines()
            .find(|l| l.starts_with("pass_mark"))
            .unwrap()
            .to_string();
        text = text.replace(&line, &format!("pass_mark = {p}"));
    }
    text.push_str(extra);
    attendd::policy_file::parse_str(&text, "test").unwrap()
}

fn date(s: &str) -> NaiveDate {
    crate::common::date(s)
}

// ---- Correction limits (补卡规则) ----

const LIMITS: &str = "\n[corrections]\nper_month = 2\nwithin_days = 3\n";

#[tokio::test]
async fn per_month_allows_n_and_refuses_n_plus_one_unless_hr_overrides() {
    let f = fixture().await;
    let policy = seed_with(LIMITS, None);
    let now = sh(2026, 11, 5, 12, 0, 0);
    let correct = |day: u32, over: Option<&'static str>| {
        let (store, policy) = (f.store.clone(), policy.clone());
        async move {
            attendd::hr::record_correction(
                &store,
                &policy,
                "E004",
                sh(2026, 11, day, 17, 40, 0),
                "terminal offline",
                "lead-A",
                over,
                now,
            )
            .await
        }
    };
    // per_month = 2: the 1st and 2nd correction of November are recorded …
    correct(2, None).await.unwrap();
    correct(3, None).await.unwrap();
    // … the 3rd is refused with the reason.
    let e = correct(4, None).await.unwrap_err();
    assert!(matches!(e, HrError::Conflict(_)), "{e}");
    let why = e.to_string();
    assert!(
        why.contains("per_month = 2") && why.contains("already has 2 correction(s) in 2026-11"),
        "{why}"
    );
    // An empty override is no reason.
    let e = correct(4, Some("  ")).await.unwrap_err();
    assert!(e.to_string().starts_with("override:"), "{e}");
    // HR overrides with a reason; the audit trail keeps it and the limit.
    let o = correct(4, Some("terminal broken all week")).await.unwrap();
    assert_eq!(
        o.override_reason.as_deref(),
        Some("terminal broken all week")
    );
    let audit = f.store.audit(Some("corrections")).await.unwrap();
    let last = audit.last().unwrap();
    assert!(
        last.cause
            .contains("override by lead-A: terminal broken all week")
            && last.cause.contains("per_month = 2"),
        "{}",
        last.cause
    );
    // Another month counts on its own.
    let dec = attendd::hr::record_correction(
        &f.store,
        &policy,
        "E004",
        sh(2026, 12, 1, 17, 40, 0),
        "terminal offline",
        "lead-A",
        None,
        sh(2026, 12, 2, 9, 0, 0),
    )
    .await;
    assert!(dec.is_ok(), "{dec:?}");
}

#[tokio::test]
async fn within_days_last_second_inside_first_outside() {
    let f = fixture().await;
    let policy = seed_with(LIMITS, None);
    // within_days = 3: a punch of 2026-11-02 may be corrected until the end
    // of 2026-11-05 (policy zone), like the appeal window.
    let at = |now| {
        let (store, policy) = (f.store.clone(), policy.clone());
        async move {
            attendd::hr::record_correction(
                &store,
                &policy,
                "E003",
                sh(2026, 11, 2, 17, 40, 0),
                "terminal offline",
                "hr",
                None,
                now,
            )
            .await
        }
    };
    let e = at(sh(2026, 11, 6, 0, 0, 0)).await.unwrap_err();
    assert!(matches!(e, HrError::Conflict(_)), "{e}");
    assert!(
        e.to_string().contains("within_days = 3")
            && e.to_string().contains("2026-11-06T00:00:00+08:00"),
        "{e}"
    );
    at(sh(2026, 11, 5, 23, 59, 59)).await.unwrap();
}

#[tokio::test]
async fn api_correction_limits_and_override_for_hr_only() {
    let mut f = fixture().await;
    f.policy = Arc::new(seed_with("\n[corrections]\nper_month = 1\n", None));
    let r = f.router();
    f.set_now(sh(2026, 11, 5, 12, 0, 0));
    let body = |day: u32, over: Option<&str>| {
        let mut b = json!({"employee_id": "E004", "time": format!("2026-11-0{day} 17:40"),
                           "reason": "terminal offline"});
        if let Some(o) = over {
            b["override"] = json!(o);
        }
        Some(b)
    };
    let ok = call(
        &r,
        "POST",
        "/api/v1/corrections",
        Some(SUP_A),
        body(2, None),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text());
    let no = call(
        &r,
        "POST",
        "/api/v1/corrections",
        Some(SUP_A),
        body(3, None),
    )
    .await;
    assert_eq!(no.status, StatusCode::CONFLICT);
    assert!(no.text().contains("per_month = 1"), "{}", no.text());
    // A supervisor may not override; HR may.
    let sup = call(
        &r,
        "POST",
        "/api/v1/corrections",
        Some(SUP_A),
        body(3, Some("x")),
    )
    .await;
    assert_eq!(sup.status, StatusCode::FORBIDDEN);
    let hr = call(
        &r,
        "POST",
        "/api/v1/corrections",
        Some(HR),
        body(3, Some("gate flooded")),
    )
    .await;
    assert_eq!(hr.status, StatusCode::CREATED, "{}", hr.text());
    assert_eq!(hr.json()["override"], "gate flooded");
}

#[test]
fn correction_keys_are_checked_with_their_names() {
    let text = std::fs::read_to_string(POLICY).unwrap()
        + "\n[corrections]\nper_month = 0\nwithin_days = 400\n";
    let e = attendd::policy_file::parse_str(&text, "p.toml").unwrap_err();
    let keys: Vec<&str> = e.issues.iter().map(|i| i.key.as_str()).collect();
    assert!(keys.contains(&"corrections.per_month"), "{e}");
    assert!(keys.contains(&"corrections.within_days"), "{e}");
    assert!(e.issues.iter().all(|i| i.line.is_some()), "{e}");
    let text = std::fs::read_to_string(POLICY)
        .unwrap()
        .replace("appeal_answer_days = 2", "appeal_answer_days = 0")
        .replace("pass_mark = 60", "pass_mark = 101");
    let e = attendd::policy_file::parse_str(&text, "p.toml").unwrap_err();
    for k in ["appeal_answer_days", "pass_mark"] {
        let is = e
            .issues
            .iter()
            .find(|i| i.key == k)
            .unwrap_or_else(|| panic!("{e}"));
        let line = text.lines().nth(is.line.unwrap() - 1).unwrap();
        assert!(line.starts_with(k), "{k}: line {line:?}");
    }
    let text = std::fs::read_to_string(POLICY).unwrap() + "\n[corrections]\nper_mnth = 2\n";
    let e = attendd::policy_file::parse_str(&text, "p.toml").unwrap_err();
    assert!(e.to_string().contains("per_mnth"), "{e}");
}

// ---- Appeal answers (坐席员考核细则 一(七)) ----

/// "工作人员对考核结果有异议的,须在考核结果公布2天内向考核领导小组提出申述,
/// 考核领导小组应在2天内作出答复": an appeal filed on 2026-12-02 must be
/// answered before 2026-12-05 00:00 (Asia/Shanghai); from then it is
/// overdue, listed as such and announced once to HR.
#[tokio::test]
async fn an_unanswered_appeal_is_overdue_from_the_end_of_the_2nd_day_after_filing() {
    let f = fixture().await;
    let r = f.router();
    assert_eq!(f.policy.hr.appeal_answer_days, 2);
    f.store
        .publish_month_at("2026-11", "hr", sh(2026, 12, 1, 10, 0, 0))
        .await
        .unwrap();
    let bob = f
        .store
        .ledger(date("2026-11-01"), date("2026-11-30"), Some("E002"))
        .await
        .unwrap();
    let a = attendd::hr::file_appeal(
        &f.store,
        &f.policy,
        bob[0].id,
        "bus strike",
        "E002",
        sh(2026, 12, 2, 15, 0, 0),
    )
    .await
    .unwrap();
    let inside = sh(2026, 12, 4, 23, 59, 59);
    let outside = sh(2026, 12, 5, 0, 0, 0);

    let list = attendd::hr::list_appeals(&f.store, &f.policy, None, inside)
        .await
        .unwrap();
    assert!(!list[0].overdue);
    assert_eq!(list[0].answer_due, outside);
    let list = attendd::hr::list_appeals(&f.store, &f.policy, Some("overdue"), outside)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert!(list[0].overdue);

    // The API: `overdue` on every appeal, `status=overdue` filters.
    f.set_now(inside);
    let j = call(&r, "GET", "/api/v1/appeals?status=overdue", Some(HR), None)
        .await
        .json();
    assert_eq!(j["items"].as_array().unwrap().len(), 0);
    f.set_now(outside);
    let j = call(&r, "GET", "/api/v1/appeals", Some(HR), None)
        .await
        .json();
    assert_eq!(j["items"][0]["overdue"], true);
    assert_eq!(j["items"][0]["answer_due"], "2026-12-04T16:00:00Z");

    // The scheduler announces it once, from the first tick at or after the
    // due time, to HR (no team).
    let sched = Scheduler::new(
        f.store.clone(),
        Plan {
            policy: f.policy.clone(),
            policies: None,
            schedule: RawSchedule {
                terminal_silent_minutes: 0,
                quarantine_spike: 0,
                ..RawSchedule::default()
            },
            routes: vec![Route {
                name: "hr-hook".into(),
                events: Some(vec!["appeal".into()]),
                teams: None,
            }],
        },
        Arc::new(DriftBoard::default()),
    );
    sched.tick(inside).await.unwrap();
    assert!(f.store.outbox(Some("appeal"), 10).await.unwrap().is_empty());
    sched.tick(outside).await.unwrap();
    sched.tick(sh(2026, 12, 5, 0, 1, 0)).await.unwrap();
    let rows = f.store.outbox(Some("appeal"), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].key, format!("appeal_overdue/{}", a.id));
    assert_eq!(rows[0].payload["answer_due"], "2026-12-05T00:00:00+08:00");
    assert_eq!(rows[0].sinks, 1);

    // Answered: no longer listed as overdue-open.
    attendd::hr::answer_appeal(&f.store, a.id, false, "seen", "hr", outside)
        .await
        .unwrap();
    let open = attendd::hr::list_appeals(&f.store, &f.policy, Some("overdue"), outside)
        .await
        .unwrap();
    assert!(open.is_empty());
}

// ---- Year results (坐席员考核细则 一(九)(十)) ----

fn emp(id: &str) -> EmployeeRecord {
    EmployeeRecord {
        employee_id: id.into(),
        name: format!("Name {id}"),
        team: "A".into(),
        supervisor: "lead".into(),
        shift: None,
        aliases: Vec::new(),
        start_date: None,
        end_date: None,
    }
}

/// "年终考核以月度考核为基础" (一(九)) and "连续两年考核不及格者予以辞退"
/// (一(十)): the year score is the mean of the months with a workday, to
/// two decimals; below pass_mark the year is failed; two failed years in a
/// row are flagged for HR.
#[tokio::test]
async fn year_score_pass_mark_and_two_failed_years() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("y.db").display());
    let store = attendd::store::Store::open(&url).await.unwrap();
    // Nobody ever punches: every month's discipline deductions reach the
    // cap of 20, so a month scores 80; pass_mark 80 for the test.
    let policy = seed_with("", Some("80"));
    store
        .upsert_employees(&[emp("E1"), emp("E2"), emp("E3")], chrono::Utc::now())
        .await
        .unwrap();
    let now = sh(2026, 4, 10, 12, 0, 0);
    for (from, to) in [("2025-06-01", "2025-06-30"), ("2026-01-01", "2026-03-31")] {
        store
            .recompute(&policy, None, date(from), date(to), "test", "test", now)
            .await
            .unwrap();
    }
    let deduct = |emp: &'static str, day: &'static str, hundredths: i64| {
        let (store, policy) = (store.clone(), policy.clone());
        async move {
            attendd::hr::record_manual(
                &store,
                &policy,
                &attendd::hr::ManualRequest {
                    employee_id: emp.into(),
                    date: date(day),
                    rule: "dress_code".into(),
                    points: Some(Points::from_hundredths(hundredths)),
                    note: "uniform".into(),
                    by: "hr".into(),
                    kind: attendd::hr::EntryKind::Deduction,
                },
            )
            .await
            .unwrap();
        }
    };
    // 2025: E1 and E3 score 78 in their only month (failed), E2 80.
    deduct("E1", "2025-06-10", 200).await;
    deduct("E3", "2025-06-10", 200).await;
    // 2026: E1 80, 80, 80 → 80.00, exactly the pass mark: passed.
    // E2 and E3 80, 80, 79.97 → 79.99: failed; E3 failed 2025 as well.
    deduct("E2", "2026-03-10", 3).await;
    deduct("E3", "2026-03-10", 3).await;

    let y = attendd::hr::year::year_results(&store, &policy, 2026)
        .await
        .unwrap();
    let by: std::collections::HashMap<&str, &attendd::hr::year::YearResult> =
        y.iter().map(|r| (r.employee_id.as_str(), r)).collect();
    let months: Vec<&str> = by["E1"].months.iter().map(|m| m.month.as_str()).collect();
    assert_eq!(months, ["2026-01", "2026-02", "2026-03"]);
    assert_eq!(by["E1"].months[0].score, Points::whole(80));
    assert_eq!(by["E1"].score, Some(Points::whole(80)));
    assert!(!by["E1"].failed);
    assert!(by["E1"].flags.is_empty());
    assert_eq!(by["E2"].score, Some(Points::from_hundredths(7999)));
    assert!(by["E2"].failed);
    assert!(by["E2"].flags.is_empty());
    assert!(by["E3"].failed);
    assert_eq!(by["E3"].flags, ["failed_two_consecutive_years"]);
    let y25 = attendd::hr::year::year_results(&store, &policy, 2025)
        .await
        .unwrap();
    assert_eq!(y25[0].score, Some(Points::whole(78)));
    assert!(y25[0].failed);
    // A year without any workday has no score and is not failed.
    let y24 = attendd::hr::year::year_results(&store, &policy, 2024)
        .await
        .unwrap();
    assert!(
        y24.iter()
            .all(|r| r.score.is_none() && !r.failed && r.months.is_empty())
    );
    let j = serde_json::to_value(&y[0]).unwrap();
    for k in ["employee_id", "months", "score", "failed", "flags"] {
        assert!(j.get(k).is_some(), "{k} missing: {j}");
    }
}

#[tokio::test]
async fn years_route_is_hr_only_and_checks_the_year() {
    let f = fixture().await;
    let r = f.router();
    let j = call(&r, "GET", "/api/v1/years/2026", Some(HR), None).await;
    assert_eq!(j.status, StatusCode::OK, "{}", j.text());
    let j = j.json();
    assert_eq!(j["pass_mark"], 60);
    let items = j["items"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["months"][0]["month"], "2026-11");
    let sup = call(&r, "GET", "/api/v1/years/2026", Some(SUP_A), None).await;
    assert_eq!(sup.status, StatusCode::FORBIDDEN);
    let pol = call(&r, "GET", "/api/v1/policy", Some(HR), None)
        .await
        .json();
    assert_eq!(
        (&pol["appeal_answer_days"], &pol["pass_mark"]),
        (&json!(2), &json!(60))
    );
    assert_eq!(pol["corrections"]["per_month"], serde_json::Value::Null);
    let bad = call(&r, "GET", "/api/v1/years/1999", Some(HR), None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("year"), "{}", bad.text());
}

/// `attendd year YYYY --json` and `attendd export --year YYYY --format
/// xlsx` on the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn year_command_and_year_workbook() {
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    let f = fixture().await;
    let cfg = f.dir.path().join("attendd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[policy]\nfile = {POLICY:?}\n\n[store]\nurl = {:?}\n",
            f.url
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_attendd"))
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["year", "2026", "--json"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0]["employee_id"], "E001");
    assert_eq!(rows[0]["failed"], false);
    let (code, _, err) = run(&["year", "1999"]);
    assert_eq!(code, 1);
    assert!(err.contains("year"), "{err}");

    let xlsx = f.dir.path().join("y.xlsx");
    let x = xlsx.to_str().unwrap();
    let (code, _, err) = run(&["export", "--year", "2026", "--format", "xlsx", "-o", x]);
    assert_eq!(code, 0, "{err}");
    let mut wb: Xlsx<_> =
        open_workbook_from_rs(std::io::Cursor::new(std::fs::read(&xlsx).unwrap())).unwrap();
    let sheet = wb.worksheet_range("Year results").unwrap();
    let head: Vec<String> = sheet
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(head[3], "2026-01");
    assert_eq!(head[15], "score");
    let e1 = sheet.rows().nth(1).unwrap();
    assert_eq!(e1[0], Data::String("E001".into()));
    assert!(matches!(e1[13], Data::Float(_)), "{:?}", e1[13]);
    let (code, _, err) = run(&["export", "--year", "2026", "--format", "csv", "-o", x]);
    assert_eq!(code, 1);
    assert!(err.contains("xlsx"), "{err}");
}

/// `attendd correct … --override REASON` on the real binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correct_command_refuses_beyond_per_month_and_takes_an_override() {
    let f = fixture().await;
    let pol = f.dir.path().join("limits.toml");
    std::fs::write(
        &pol,
        std::fs::read_to_string(POLICY).unwrap() + "\n[corrections]\nper_month = 1\n",
    )
    .unwrap();
    let cfg = f.dir.path().join("attendd.toml");
    std::fs::write(
        &cfg,
        format!("[policy]\nfile = {pol:?}\n\n[store]\nurl = {:?}\n", f.url),
    )
    .unwrap();
    let run = |time: &str, extra: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_attendd"))
            .args(["correct", "--employee", "E004", "--time", time])
            .args(["--reason", "terminal offline", "--json"])
            .args(extra)
            .arg("--config")
            .arg(&cfg)
            .env("USER", "hr-clerk")
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, _, err) = run("2026-11-02 17:40", &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run("2026-11-03 17:40", &[]);
    assert_eq!(code, 1);
    assert!(err.contains("per_month = 1"), "{err}");
    let (code, out, err) = run("2026-11-03 17:40", &["--override", "gate flooded"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["override"], "gate flooded");
}

/// `attendd appeal list` marks an appeal left unanswered past its due time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appeal_list_command_marks_overdue() {
    let f = fixture().await;
    f.store
        .publish_month_at("2026-11", "hr", sh(2026, 11, 3, 9, 0, 0))
        .await
        .unwrap();
    let bob = f
        .store
        .ledger(date("2026-11-01"), date("2026-11-30"), Some("E002"))
        .await
        .unwrap();
    // Filed 2026-11-03: due before 2026-11-06 00:00, long past on any
    // clock that runs these tests.
    attendd::hr::file_appeal(
        &f.store,
        &f.policy,
        bob[0].id,
        "bus strike",
        "E002",
        sh(2026, 11, 3, 10, 0, 0),
    )
    .await
    .unwrap();
    let cfg = f.dir.path().join("attendd.toml");
    std::fs::write(
        &cfg,
        format!(
            "[policy]\nfile = {POLICY:?}\n\n[store]\nurl = {:?}\n",
            f.url
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_attendd"))
            .args(args)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["appeal", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("OVERDUE (answer due 2026-11-06T00:00:00+08:00)"),
        "{out}"
    );
    let (code, out, err) = run(&["appeal", "list", "--status", "overdue", "--json"]);
    assert_eq!(code, 0, "{err}");
    let j: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(j["overdue"], true);
    assert_eq!(j["answer_due"], "2026-11-05T16:00:00Z");
    let (code, _, err) = run(&["appeal", "list", "--status", "late"]);
    assert_eq!(code, 1);
    assert!(err.contains("--status"), "{err}");
}
