//! A real site's store (policy.md, "Real sites"): where classification
//! starts, per-employee recompute ranges, every scheduled employee on every
//! past day, roster and holiday conflicts, and HR's spreadsheet files
//! (interfaces.md, "CSV inputs").

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use attendd::source::{PunchSink, Received};
use attendd::store::Store;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");
const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/policies/seed-default.toml"
);
const CITY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/policies/city-management-24h.toml"
);

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A SQLite store in a temporary folder and a config file for it.
struct Site {
    dir: tempfile::TempDir,
    url: String,
    config: PathBuf,
}

fn site(extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("attendd.db").display());
    let config = dir.path().join("attendd.toml");
    std::fs::write(
        &config,
        format!("[policy]\nfile = {POLICY:?}\n\n[store]\nurl = {url:?}\n{extra}"),
    )
    .unwrap();
    Site { dir, url, config }
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

    async fn store(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }
}

const EMPLOYEES: &str = "employee_id,name,team,supervisor\nE001,Li Na,hotline,S01\nE002,Wang Wei,hotline,S01\nE003,Zhang Min,dispatch,S02\n";

fn json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `attendd import punches` then `summary` / `day` of a past date: the
/// employees who never came are there, `absent_full` (issue: only the
/// punching employees were listed).
#[test]
fn past_day_lists_every_scheduled_employee_after_a_punch_import() {
    let s = site("");
    s.ok(&["import", "employees", &s.file("employees.csv", EMPLOYEES)]);
    let punches = s.file(
        "punches.csv",
        "employee_id,time,device_id\nE001,2026-11-02 08:29:13,gate-1\nE001,2026-11-02 17:31:02,gate-1\n",
    );
    s.ok(&["import", "punches", &punches]);
    let doc: serde_json::Value =
        serde_json::from_str(&s.ok(&["summary", "2026-11-02", "--json"])).unwrap();
    let rows = doc["rows"].as_array().unwrap();
    let status: HashMap<&str, &str> = rows
        .iter()
        .map(|r| {
            (
                r["employee_id"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(status.len(), 3, "{doc}");
    assert_eq!(status["E001"], "present");
    assert_eq!(status["E002"], "absent_full");
    assert_eq!(status["E003"], "absent_full");
    let day = json_lines(&s.ok(&["day", "2026-11-02", "--json"]));
    assert_eq!(day.len(), 3);
}

/// One backlog punch from 2015 in a store that started on 2026-11-02 is
/// stored and counted, never classified: no absences for the years between
/// (issue: 2,881 absences for one employee), and the day says why.
#[test]
fn an_old_punch_before_the_classification_start_is_stored_not_classified() {
    let s = site("");
    s.ok(&["import", "employees", &s.file("employees.csv", EMPLOYEES)]);
    s.ok(&[
        "import",
        "punches",
        &s.file(
            "nov.csv",
            "employee_id,time\nE001,2026-11-02 08:29:13\nE001,2026-11-02 17:31:02\n",
        ),
    ]);
    let out = s.ok(&[
        "import",
        "punches",
        &s.file("old.csv", "employee_id,time\nE002,2015-03-02 08:31:00\n"),
        "--json",
    ]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["new"], 1, "{r}");
    assert_eq!(r["before_classify_from"], 1, "{r}");
    assert_eq!(r["classify_from"], "2026-11-02", "{r}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = s.store().await;
        let old = store
            .verdicts(d("2015-01-01"), d("2026-11-01"), None)
            .await
            .unwrap();
        assert!(old.is_empty(), "{} verdicts before the start", old.len());
        let ledger = store
            .ledger(d("2015-01-01"), d("2026-11-01"), None)
            .await
            .unwrap();
        assert!(ledger.is_empty());
        // The punch itself is kept.
        let p = store
            .punches(
                Utc.with_ymd_and_hms(2015, 3, 1, 0, 0, 0).unwrap(),
                Utc.with_ymd_and_hms(2015, 3, 3, 0, 0, 0).unwrap(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(p.len(), 1);
    });
    let o = s.cli(&["day", "2015-03-02", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).trim().is_empty(), "{}", text(&o.stdout));
    assert!(
        text(&o.stderr).contains("before classification starts (2026-11-02)"),
        "{}",
        text(&o.stderr)
    );
    let sum: serde_json::Value =
        serde_json::from_str(&s.ok(&["summary", "2015-03-02", "--json"])).unwrap();
    assert_eq!(sum["rows"].as_array().unwrap().len(), 0);
    assert!(
        sum["note"]
            .as_str()
            .unwrap()
            .contains("before classification")
    );
}

/// `[ingest] classify_from` set on a store that already holds absences
/// before it: the first automatic recompute voids them, audited.
#[test]
fn absences_stored_before_a_configured_start_are_voided_and_audited() {
    voided_before_start(&site(""));
}

/// The same on PostgreSQL, when `TEST_POSTGRES_URL` names a server.
#[test]
fn absences_stored_before_a_configured_start_are_voided_on_postgres() {
    let Ok(base) = std::env::var("TEST_POSTGRES_URL") else {
        eprintln!("skipping postgres: TEST_POSTGRES_URL not set");
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let schema = format!(
        "rs_{}_{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or(0) % 1_000_000_000
    );
    let connected = rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&base).await.ok()?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut c)
            .await
            .ok()?;
        Some(())
    });
    if connected.is_none() {
        assert!(
            std::env::var("ATTENDD_REQUIRE_SERVICES").as_deref() != Ok("1"),
            "PostgreSQL at {base} unreachable"
        );
        eprintln!("skipping postgres: {base} unreachable");
        return;
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options[search_path]={schema}");
    let mut s = site("");
    s.url = url.clone();
    std::fs::write(
        &s.config,
        format!("[policy]\nfile = {POLICY:?}\n\n[store]\nurl = {url:?}\n"),
    )
    .unwrap();
    voided_before_start(&s);
    rt.block_on(async {
        use sqlx::Connection;
        if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&mut c)
                .await;
        }
    });
}

fn voided_before_start(s: &Site) {
    s.ok(&["import", "employees", &s.file("employees.csv", EMPLOYEES)]);
    let punches = s.file(
        "punches.csv",
        "employee_id,time\nE001,2026-11-02 08:29:13\nE001,2026-11-02 17:31:02\nE001,2026-11-03 08:29:13\nE001,2026-11-03 17:31:02\n",
    );
    s.ok(&["import", "punches", &punches]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let active = |from: &str, to: &str| {
        rt.block_on(async {
            let store = s.store().await;
            store
                .ledger(d(from), d(to), Some("E002"))
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.voided_at.is_none())
                .count()
        })
    };
    assert_eq!(active("2026-11-02", "2026-11-02"), 1, "absent on 11-02");

    // The site says it started on 11-03.
    std::fs::write(
        &s.config,
        format!(
            "[policy]\nfile = {POLICY:?}\n\n[store]\nurl = {:?}\n\n[ingest]\nclassify_from = \"2026-11-03\"\n",
            s.url
        ),
    )
    .unwrap();
    s.ok(&[
        "import",
        "punches",
        &s.file("more.csv", "employee_id,time\nE001,2026-11-04 08:29:13\n"),
    ]);
    assert_eq!(active("2026-11-02", "2026-11-02"), 0, "voided");
    assert_eq!(active("2026-11-03", "2026-11-03"), 1, "kept from the start");
    rt.block_on(async {
        let store = s.store().await;
        let audit = store.audit(None).await.unwrap();
        assert!(
            audit.iter().any(|a| a.table_name == "day_verdicts"
                && a.row_key == "E002/2026-11-02"
                && a.new_value.is_none()
                && a.cause.contains("2026-11-03")),
            "{audit:?}"
        );
        assert!(
            audit
                .iter()
                .any(|a| a.table_name == "ledger" && a.cause.contains("2026-11-03"))
        );
    });
    let o = s.cli(&["day", "2026-11-02"]);
    assert!(text(&o.stderr).contains("before classification starts"));
}

fn json_punch(emp: &str, local: &str) -> Received {
    Received {
        source: Arc::from("mqtt[0]"),
        topic: Some("attendance/gate-1/punch".into()),
        payload: format!(
            r#"{{"employee_id":"{emp}","time":"{local}+08:00","device_id":"gate-1"}}"#
        )
        .into_bytes(),
        received_at: Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0).unwrap(),
    }
}

/// A new punch re-classifies only its own employee's days: from the day
/// before to the end of its month (the ladder), never another employee's
/// days because they punched in the same round (issue: ranges were merged
/// across employees).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_punch_reclassifies_only_its_own_employees_days() {
    let s = site("");
    s.ok(&["import", "employees", &s.file("employees.csv", EMPLOYEES)]);
    let store = s.store().await;
    let policy = Arc::new(attendd::policy_file::load(Path::new(POLICY)).unwrap());
    let mut sources = HashMap::new();
    sources.insert(
        Arc::from("mqtt[0]"),
        attendd::pipeline::SourceDecoding {
            decoder: attendd::ingest::decode::Decoder::with_options("json", &toml::Table::new())
                .unwrap(),
            tz: chrono_tz::Asia::Shanghai,
            options: toml::Table::new(),
        },
    );
    let pipeline = attendd::pipeline::Pipeline::new(
        store.clone(),
        policy,
        sources,
        Arc::new(attendd::metrics::Metrics::default()),
        chrono::Duration::seconds(300),
    )
    .await
    .unwrap()
    .with_classify_from(Some(d("2026-11-01")));
    pipeline
        .commit(&[
            json_punch("E001", "2026-11-10T08:29:00"),
            json_punch("E002", "2026-11-25T08:29:00"),
        ])
        .await
        .unwrap();
    let now: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 26, 2, 0, 0).unwrap();
    pipeline.recompute_dirty(now).await.unwrap();
    let v = store
        .verdicts(d("2026-11-01"), d("2026-11-30"), None)
        .await
        .unwrap();
    let dates = |e: &str| -> Vec<NaiveDate> {
        v.iter()
            .filter(|r| r.employee_id == e)
            .map(|r| r.date)
            .collect()
    };
    let e1 = dates("E001");
    let e2 = dates("E002");
    assert_eq!(e1.first(), Some(&d("2026-11-09")), "{e1:?}");
    // The rest of E001's month up to today (the ladder counts per month).
    assert_eq!(e1.last(), Some(&d("2026-11-26")), "{e1:?}");
    assert_eq!(e2.first(), Some(&d("2026-11-24")), "{e2:?}");
    assert!(dates("E003").is_empty(), "nobody else: {:?}", dates("E003"));
}

fn evaluate(s: &Site, policy: &str, extra: &[&str]) -> Output {
    Command::new(BIN)
        .args(["evaluate", "--policy", policy])
        .args(["--employees", &s.file("e.csv", EMPLOYEES)])
        .args([
            "--punches",
            &s.file("p.csv", "employee_id,time\nE001,2026-11-02 08:29:13\n"),
        ])
        .args(extra)
        .args(["--from", "2026-11-02", "--to", "2026-11-04", "--json"])
        .output()
        .unwrap()
}

/// `evaluate` refuses what `import` refuses: two roster rows for one
/// employee and date (the last one silently won), two holiday rows for one
/// date, and overlapping rostered shifts; each with its line.
#[test]
fn evaluate_refuses_conflicting_roster_and_holiday_rows() {
    let s = site("");
    let roster = s.file(
        "roster.csv",
        "employee_id,date,shift\nE001,2026-11-03,day\nE002,2026-11-03,rest\nE001,2026-11-03,rest\n",
    );
    let o = evaluate(&s, POLICY, &["--roster", &roster]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("roster.csv:4:") && text(&o.stderr).contains("line 2"),
        "{}",
        text(&o.stderr)
    );
    assert!(text(&o.stdout).is_empty(), "refused, not evaluated");

    let holidays = s.file(
        "holidays.csv",
        "date,kind\n2026-11-03,holiday\n2026-11-03,workday\n",
    );
    let o = evaluate(&s, POLICY, &["--holidays", &holidays]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("holidays.csv:3:"),
        "{}",
        text(&o.stderr)
    );

    // A night (18:00–08:00) and the next morning (08:00–12:00) touch:
    // no overlap.
    let ok_roster = s.file(
        "ok.csv",
        "employee_id,date,shift\nE001,2026-11-02,night\nE001,2026-11-03,morning\n",
    );
    let o = evaluate(&s, CITY, &["--roster", &ok_roster]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "touching shifts are fine: {}",
        text(&o.stderr)
    );
}

/// Two rostered shifts of one employee that overlap in time are refused,
/// by `evaluate` and by `import roster`, naming the line.
#[test]
fn overlapping_rostered_shifts_are_refused() {
    let s = site("");
    let policy = s.file(
        "long.toml",
        &std::fs::read_to_string(CITY).unwrap().replace(
            "id = \"night\"          # 晚班, counted on the date it starts\nstart = \"18:00\"\nend = \"08:00\"",
            "id = \"night\"          # 晚班, counted on the date it starts\nstart = \"18:00\"\nend = \"09:00\"",
        ),
    );
    let roster = s.file(
        "roster.csv",
        "employee_id,date,shift\nE001,2026-11-02,night\nE001,2026-11-03,morning\n",
    );
    let o = evaluate(&s, &policy, &["--roster", &roster]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("roster.csv:3:") && err.contains("overlaps") && err.contains("line 2"),
        "{err}"
    );

    let s2 = site("");
    std::fs::write(
        &s2.config,
        format!(
            "[policy]\nfile = {policy:?}\n\n[store]\nurl = {:?}\n",
            s2.url
        ),
    )
    .unwrap();
    s2.ok(&["import", "employees", &s2.file("employees.csv", EMPLOYEES)]);
    let o = s2.cli(&["import", "roster", &roster]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("roster.csv:3:"),
        "{}",
        text(&o.stderr)
    );
    // Against the stored roster too.
    s2.ok(&[
        "import",
        "roster",
        &s2.file("a.csv", "employee_id,date,shift\nE001,2026-11-02,night\n"),
    ]);
    let o = s2.cli(&[
        "import",
        "roster",
        &s2.file("b.csv", "employee_id,date,shift\nE001,2026-11-03,morning\n"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("b.csv:2:") && text(&o.stderr).contains("stored roster"),
        "{}",
        text(&o.stderr)
    );
}

/// `attendd simulate` for today sends the morning's punches, not the
/// afternoon's: a terminal does not stamp the future (the quick start's
/// punches raised clock-skew warnings).
#[test]
fn simulate_never_stamps_the_future() {
    use attendd::simulate::{Format, Plan, Target, future_count, schedule};
    let tz = chrono_tz::Asia::Shanghai;
    let noon = tz
        .with_ymd_and_hms(2026, 11, 26, 12, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let mut plan = Plan {
        target: Target::Serial {
            path: PathBuf::from("/dev/null"),
            baud: 9600,
        },
        topic_prefix: "attendance".into(),
        date: d("2026-11-26"),
        employees: 50,
        terminals: 2,
        rate: 0,
        seed: 7,
        duplicates: 0.0,
        format: Format::Json,
        tz,
        not_after: None,
    };
    let all = schedule(&plan).len();
    plan.not_after = Some(noon);
    let sent = schedule(&plan);
    assert!(!sent.is_empty());
    assert!(sent.len() < all);
    for (p, _) in &sent {
        assert!(p.local.time() <= chrono::NaiveTime::from_hms_opt(12, 0, 0).unwrap());
    }
    assert_eq!(future_count(&plan) as usize, all - sent.len());
}

/// A month is published only after the last punch window of its last day
/// has closed (issue: November was published on the 30th at noon, and a
/// later correction made an adjustment for a day not yet over).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_is_published_only_after_its_last_window_closed() {
    let s = site("");
    let store = s.store().await;
    let policy = attendd::policy_file::load(Path::new(POLICY)).unwrap();
    let tz = chrono_tz::Asia::Shanghai;
    let at = |h: u32, m: u32| {
        tz.with_ymd_and_hms(2026, 11, 30, h, m, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    // 17:30 end + the 240-minute margin: 21:30.
    let e = attendd::hr::publish(&store, &policy, "2026-11", "hr", at(12, 0))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("2026-11-30T21:30:00+08:00"), "{e}");
    assert!(
        attendd::hr::publish(&store, &policy, "2026-11", "hr", at(21, 29))
            .await
            .is_err()
    );
    assert!(store.published("2026-11").await.unwrap().is_none());
    assert!(
        attendd::hr::publish(&store, &policy, "2026-11", "hr", at(21, 30))
            .await
            .unwrap()
    );
}

/// The dashboard's "Missing right now" comes from the schedule and the
/// punches as absence alerts decide it, not from stored verdicts (issue: at
/// 11:25 it listed 1 person while 55 had not punched); a past date lists
/// that day's absentees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_now_uses_the_schedule_and_the_punches() {
    use crate::hr_fixture::{HR, SUP_A, call, fixture, punch, sh};
    let f = fixture().await;
    f.store
        .insert_punches(
            &[punch("E001", sh(2026, 11, 3, 8, 29, 0))],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    // Nothing classified 11-03 yet: no stored verdict says anyone is absent.
    assert!(
        f.store
            .verdicts(d("2026-11-03"), d("2026-11-03"), None)
            .await
            .unwrap()
            .is_empty()
    );
    f.set_now(sh(2026, 11, 3, 11, 25, 0));
    let r = f.router();
    let m = call(&r, "GET", "/api/v1/missing/2026-11-03", Some(HR), None)
        .await
        .json();
    let ids: Vec<&str> = m["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["employee_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["E002", "E003", "E004"], "{m}");
    assert_eq!(m["items"][0]["minutes_since_start"], 175);
    assert_eq!(m["as_of"], "2026-11-03T11:25:00+08:00");
    // A supervisor sees their own team.
    let m = call(&r, "GET", "/api/v1/missing/2026-11-03", Some(SUP_A), None)
        .await
        .json();
    assert_eq!(m["total"], 2, "{m}");
    // A past date: who never came that day.
    let m = call(&r, "GET", "/api/v1/missing/2026-11-02", Some(HR), None)
        .await
        .json();
    let ids: Vec<&str> = m["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["employee_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["E003"], "{m}");
    assert!(m["as_of"].is_null());
    // Before classification starts (here the store's earliest verdict,
    // 2026-11-01): no rows, one note, in every view of the day.
    for path in [
        "/api/v1/days/2026-10-30",
        "/api/v1/summaries/2026-10-30",
        "/api/v1/missing/2026-10-30",
    ] {
        let j = call(&r, "GET", path, Some(HR), None).await.json();
        assert_eq!(j["total"], 0, "{path}: {j}");
        assert_eq!(j["classify_from"], "2026-11-01", "{path}: {j}");
    }
    let j = call(&r, "GET", "/api/v1/summaries/2026-10-30", Some(HR), None)
        .await
        .json();
    assert!(
        j["note"]
            .as_str()
            .unwrap()
            .contains("before classification starts")
    );
    assert_eq!(j["rows"], serde_json::json!([]));
    // The page titles a past date's list for that date.
    let page = call(&r, "GET", "/", None, None).await.text();
    assert!(page.contains("/api/v1/missing/"));
    assert!(page.contains("T.absent_on + \" \" + date"));
}

/// employees.csv's `start_date` and `end_date` are stored (migration 0006)
/// and a change of them re-classifies that person's days since the
/// classification start; bad dates are refused with the line.
#[test]
fn employment_dates_are_stored_and_their_change_reclassifies() {
    let s = site("");
    s.ok(&["import", "employees", &s.file("employees.csv", EMPLOYEES)]);
    s.ok(&[
        "import",
        "punches",
        &s.file(
            "p.csv",
            "employee_id,time\nE001,2026-11-02 08:29:13\nE001,2026-11-02 17:31:02\n",
        ),
    ]);
    let dated = "employee_id,name,team,supervisor,start_date,end_date\nE001,Li Na,hotline,S01,,\nE002,Wang Wei,hotline,S01,2026-11-03,\nE003,Zhang Min,dispatch,S02,,2026-11-02\n";
    let out = s.ok(&["import", "employees", &s.file("dated.csv", dated), "--json"]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(r["new_or_changed"], 2, "{r}");
    assert!(
        r["recompute"]["evaluated"].as_u64().unwrap() > 0,
        "the two people's days are re-derived: {r}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let e = s.store().await.employees().await.unwrap();
        let by: HashMap<&str, _> = e
            .iter()
            .map(|e| (e.employee_id.as_str(), (e.start_date, e.end_date)))
            .collect();
        assert_eq!(by["E001"], (None, None));
        assert_eq!(by["E002"], (Some(d("2026-11-03")), None));
        assert_eq!(by["E003"], (None, Some(d("2026-11-02"))));
    });
    let o = s.cli(&[
        "import",
        "employees",
        &s.file(
            "bad.csv",
            "employee_id,name,team,supervisor,start_date,end_date\nE001,a,b,c,2026-11-05,2026-11-01\nE002,a,b,c,1999-01-01,\n",
        ),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("bad.csv:2:") && err.contains("bad.csv:3:"),
        "{err}"
    );
}

/// README's quick start as a newcomer follows it: the example daemon
/// configuration, the simulator's employees imported, today's punches
/// simulated (none stamped after now), `attendd day` lists the classified
/// employees, and the documented local token opens the API the dashboard
/// uses.
#[test]
fn the_quick_start_shows_classified_days_and_opens_the_dashboard() {
    use crate::proc::{Guard, free_port, healthz};
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (broker, http) = (free_port(), free_port());
    let example = std::fs::read_to_string(root.join("config/attendd.toml")).unwrap();
    assert!(example.contains("token = \"local-quick-start-hr\""));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains("#token=local-quick-start-hr"));
    let config_text = example
        .replace(
            "file = \"policies/seed-default.toml\"",
            &format!(
                "file = {:?}",
                root.join("config/policies/seed-default.toml")
            ),
        )
        .replace(
            "url = \"sqlite://../var/attendd.db\"",
            &format!(
                "url = \"sqlite://{}\"",
                dir.path().join("attendd.db").display()
            ),
        )
        .replace("127.0.0.1:18830", &format!("127.0.0.1:{broker}"))
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{http}"));
    let config = dir.path().join("attendd.toml");
    std::fs::write(&config, config_text).unwrap();
    let log = std::fs::File::create(dir.path().join("run.log")).unwrap();
    let _daemon = Guard(Some(
        Command::new(BIN)
            .args(["run", "--config"])
            .arg(&config)
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    ));
    let logs = || std::fs::read_to_string(dir.path().join("run.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    while healthz(http).is_none() {
        assert!(Instant::now() < deadline, "{}", logs());
        std::thread::sleep(Duration::from_millis(100));
    }
    let run = |args: &[&str]| -> String {
        let o = Command::new(BIN).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    let emps = dir.path().join("sim-employees.csv");
    run(&[
        "simulate",
        "--employees",
        "5",
        "--write-employees",
        emps.to_str().unwrap(),
    ]);
    let cfg = config.to_str().unwrap();
    run(&[
        "import",
        "employees",
        emps.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    let tz = chrono_tz::Asia::Shanghai;
    let today = Utc::now().with_timezone(&tz).date_naive().to_string();
    let rep: serde_json::Value = serde_json::from_str(
        run(&[
            "simulate",
            "--broker",
            &format!("mqtt://127.0.0.1:{broker}"),
            "--date",
            &today,
            "--employees",
            "5",
            "--duplicates",
            "0.1",
            "--json",
        ])
        .trim(),
    )
    .unwrap();
    let sent = rep["distinct"].as_u64().unwrap();
    // Every employee is classified today, punches or not yet.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = json_lines(&run(&["day", "--json", "--config", cfg]));
        let punches = json_lines(&run(&[
            "punches", "--date", &today, "--json", "--config", cfg,
        ]));
        if rows.len() == 5 && punches.len() as u64 == sent {
            break rows;
        }
        assert!(Instant::now() < deadline, "{rows:?}\n{}", logs());
        std::thread::sleep(Duration::from_millis(250));
    };
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["employee_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["E00000", "E00001", "E00002", "E00003", "E00004"]);
    let now = Utc::now();
    for p in json_lines(&run(&[
        "punches", "--date", &today, "--json", "--config", cfg,
    ])) {
        let t = DateTime::parse_from_rfc3339(p["time"].as_str().unwrap()).unwrap();
        assert!(t <= now, "{p} stamped in the future");
    }
    assert!(!logs().contains("in the future"), "{}", logs());
    // The dashboard's first call with the documented token.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
    write!(
        s,
        "GET /api/v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer local-quick-start-hr\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    assert!(resp.contains("\"hr\""), "{resp}");
}

/// A workbook saved by Excel itself (pyexcel/pyexcel-xlsxr,
/// tests/fixtures/date_field.xlsx): date cells read as `YYYY-MM-DD`, time
/// cells as `HH:MM:SS` (the stored values carry seconds: 11:11:11), and
/// serial 0, Excel's "1900-01-00", as a time of day, never a date.
#[test]
fn an_excel_saved_workbook_reads_its_date_and_time_cells() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/date_field.xlsx");
    let csv = text(&attendd::input::load(&p).unwrap());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines,
        [
            "Date,Time",
            "2014-12-25,11:11:11",
            "2014-12-26,12:12:12",
            "2015-01-01,13:13:13",
            "00:00:00,00:00:00"
        ],
        "{csv}"
    );
}

/// HR's files through the commands: a GB18030 employees.csv with CRLF
/// line ends and an `.xlsx` roster are imported; a CRLF file's bad row is
/// named by its own line in `import` and in `evaluate`.
#[test]
fn spreadsheet_files_through_import_and_evaluate() {
    let s = site("");
    let gbk = encoding_rs::GB18030
        .encode("employee_id,name,team,supervisor\r\nE001,李娜,受理组,王伟\r\nE002,王伟,受理组,王伟\r\nE003,张敏,调度组,王伟\r\n")
        .0
        .into_owned();
    let emp = s.dir.path().join("employees.csv");
    std::fs::write(&emp, &gbk).unwrap();
    s.ok(&["import", "employees", emp.to_str().unwrap()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let names: Vec<String> = rt.block_on(async {
        s.store()
            .await
            .employees()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    });
    assert_eq!(names, ["李娜", "王伟", "张敏"]);

    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (r, row) in [
        ["employee_id", "date", "shift"],
        ["E001", "2026-11-03", "rest"],
        ["E002", "2026-11-03", "day"],
    ]
    .iter()
    .enumerate()
    {
        for (c, v) in row.iter().enumerate() {
            ws.write(r as u32, c as u16, *v).unwrap();
        }
    }
    let xlsx = s.dir.path().join("roster.xlsx");
    std::fs::write(&xlsx, wb.save_to_buffer().unwrap()).unwrap();
    let out = s.ok(&["import", "roster", xlsx.to_str().unwrap(), "--json"]);
    assert!(out.contains("\"rows\":2"), "{out}");

    let bad = s.file(
        "roster-crlf.csv",
        "employee_id,date,shift\r\nE001,2026-11-04,rest\r\nE002,2026-11-04,nightmare\r\n",
    );
    let o = s.cli(&["import", "roster", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("roster-crlf.csv:3:"),
        "{}",
        text(&o.stderr)
    );
    let o = evaluate(&s, POLICY, &["--roster", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("roster-crlf.csv:3:"),
        "{}",
        text(&o.stderr)
    );
}

/// A day the daemon ran on closes for every employee even when the daemon
/// was down when it ended: the next start closes it (issue: the absentee
/// was missing from the day's summary unless the daemon happened to close
/// that day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_day_that_ended_while_the_daemon_was_down_closes_on_restart() {
    use attendd::scheduler::{Plan, Scheduler};
    let s = site("");
    s.ok(&["import", "employees", &s.file("employees.csv", EMPLOYEES)]);
    let store = s.store().await;
    let policy = Arc::new(attendd::policy_file::load(Path::new(POLICY)).unwrap());
    let tz = chrono_tz::Asia::Shanghai;
    let at = |day: u32, h: u32| {
        tz.with_ymd_and_hms(2026, 11, day, h, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    // The daemon first ran on Monday 11-02 at 08:00 and stopped at noon,
    // after E001 came; it starts again on Wednesday 11-04.
    store
        .classification_start(None, Some(d("2026-11-02")), at(2, 8))
        .await
        .unwrap();
    store
        .note_first_run(d("2026-11-02"), at(2, 8))
        .await
        .unwrap();
    store
        .insert_punches(
            &[attendd::store::NewPunch {
                employee_id: "E001".into(),
                identity: "E001".into(),
                time: at(2, 8) + chrono::Duration::minutes(25),
                device_id: Some("gate-1".into()),
                event_id: None,
                source: "mqtt[0]".into(),
                raw: None,
                direction: None,
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let sched = Scheduler::new(
        store.clone(),
        Plan {
            policy,
            policies: None,
            schedule: attendd::config::RawSchedule {
                terminal_silent_minutes: 0,
                quarantine_spike: 0,
                ..Default::default()
            },
            routes: vec![],
        },
        Default::default(),
    );
    sched.tick(at(2, 12)).await.unwrap();
    let r = sched.tick(at(4, 9)).await.unwrap();
    assert_eq!(r.closed, [d("2026-11-02"), d("2026-11-03")]);
    let v = store
        .verdicts(d("2026-11-02"), d("2026-11-02"), None)
        .await
        .unwrap();
    let st: Vec<(&str, &str)> = v
        .iter()
        .map(|v| (v.employee_id.as_str(), v.status.as_str()))
        .collect();
    assert_eq!(st.len(), 3, "{st:?}");
    assert!(st.contains(&("E002", "absent_full")), "{st:?}");
    assert!(st.contains(&("E003", "absent_full")), "{st:?}");
}

/// Ledger points are points, not hundredths, in `POST ledger`'s answer and
/// in a person's month (issue: 0.5 answered 50, 10 read 1000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_points_are_numbers_in_the_api() {
    use crate::hr_fixture::{HR, call, fixture};
    let f = fixture().await;
    let r = f.router();
    let e = call(
        &r,
        "POST",
        "/api/v1/ledger",
        Some(HR),
        Some(serde_json::json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":"no badge","points":0.5})),
    )
    .await;
    assert_eq!(e.status.as_u16(), 201, "{}", e.text());
    assert_eq!(e.json()["points"], 0.5);
    let m = call(
        &r,
        "GET",
        "/api/v1/employees/E003/days?month=2026-11",
        Some(HR),
        None,
    )
    .await
    .json();
    // Carol's absence on 11-02: 10 points in seed-default.
    let absent = m["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["date"] == "2026-11-02")
        .unwrap();
    assert_eq!(absent["points"], 10, "{absent}");
    assert_eq!(
        m["days"].as_array().unwrap()[1]["points"],
        absent["points"],
        "the day and its ledger entry say the same"
    );
}

/// An employees.csv row naming a policy group the configuration does not
/// define (policy.md, "Several rule sets on one site") is refused with its
/// line, never stored under the default policy unnoticed; an empty
/// `policy` cell is the default.
#[test]
fn import_refuses_a_policy_group_the_site_does_not_have() {
    let s = site("");
    let file = s.file(
        "employees.csv",
        "employee_id,name,team,supervisor,policy\nE001,Li Na,hotline,S01,\nE002,Wang Wei,outbound,S02,outbound\n",
    );
    let o = s.cli(&["import", "employees", &file]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("employees.csv:3:"), "{err}");
    assert!(err.contains("\"outbound\""), "{err}");
    let file = s.file(
        "employees.csv",
        "employee_id,name,team,supervisor,policy\nE001,Li Na,hotline,S01,\n",
    );
    s.ok(&["import", "employees", &file]);
}
