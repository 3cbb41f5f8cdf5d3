//! One month of a site, four ways and every view: `attendd evaluate`,
//! `attendd import` + the queries, the daemon's day close (the scheduler
//! closing each day as it ends) and the API give the same verdicts for the
//! same inputs; the CLI, the API, the dashboard's data, the XLSX workbook
//! and the CSV exports agree field by field.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use attendd::scheduler::{Plan, Scheduler};
use attendd::store::Store;
use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use chrono::{Datelike, NaiveDate, TimeZone, Utc, Weekday};
use serde_json::Value;

use crate::hr_fixture::{HR, call};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");
const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/policies/seed-default.toml"
);
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/examples");

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The example files' first week, then three more weeks in which E002 is
/// late by a different amount each day (the ladder climbs), E003 misses
/// every fifth day and E004 leaves early every third.
fn punches_csv() -> String {
    let mut s = std::fs::read_to_string(format!("{EXAMPLES}/punches.csv")).unwrap();
    let mut day = d("2026-11-09");
    while day <= d("2026-11-27") {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            let n = day.day();
            let mut add = |emp: &str, hm: (u32, u32)| {
                s.push_str(&format!("{emp},{day} {:02}:{:02}:00,gate-1\n", hm.0, hm.1));
            };
            add("E001", (8, 25));
            add("E001", (17, 35));
            let late = 35 + (n % 4) * 12;
            add("E002", (8 + late / 60, late % 60));
            add("E002", (17, 40));
            if !n.is_multiple_of(5) {
                add("E003", (8, 20));
                add("E003", (17, 31));
            }
            add("E004", (8, 28));
            add(
                "E004",
                if n.is_multiple_of(3) {
                    (17, 0)
                } else {
                    (17, 33)
                },
            );
        }
        day = day.succ_opt().unwrap();
    }
    s
}

/// The fields every view of a verdict shows.
fn key_fields(v: &Value) -> Value {
    serde_json::json!({
        "status": v["status"],
        "shift": v["shift"],
        "check_in": v["check_in"],
        "check_out": v["check_out"],
        "late_minutes": v["late_minutes"],
        "early_minutes": v["early_minutes"],
        "absence_days": v["absence_days"],
        "points": v["points"],
        "actions": v["actions"],
        "deductions": v["deductions"],
    })
}

type Days = BTreeMap<(String, NaiveDate), Value>;

fn put(days: &mut Days, v: &Value) {
    let k = (
        v["employee_id"].as_str().unwrap().to_string(),
        d(v["date"].as_str().unwrap()),
    );
    assert!(
        days.insert(k.clone(), key_fields(v)).is_none(),
        "{k:?} twice"
    );
}

struct Site {
    dir: tempfile::TempDir,
    url: String,
    config: std::path::PathBuf,
}

fn site(name: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}",
        dir.path().join(format!("{name}.db")).display()
    );
    let config = dir.path().join("attendd.toml");
    std::fs::write(
        &config,
        format!("[policy]\nfile = {POLICY:?}\n\n[store]\nurl = {url:?}\n"),
    )
    .unwrap();
    Site { dir, url, config }
}

impl Site {
    fn cli(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("ATTENDD_STORE_URL")
            .env_remove("ATTENDD_CONFIG")
            .env("USER", "hr-clerk")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.cli(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    fn hr_files(&self) {
        for k in ["employees", "holidays", "roster", "leaves"] {
            self.ok(&["import", k, &format!("{EXAMPLES}/{k}.csv")]);
        }
    }
}

fn dates() -> Vec<NaiveDate> {
    let mut v = Vec::new();
    let mut day = d("2026-11-02");
    while day <= d("2026-11-27") {
        v.push(day);
        day = day.succ_opt().unwrap();
    }
    v
}

fn api_router(store: Store) -> axum::Router {
    let policy = Arc::new(attendd::policy_file::load(Path::new(POLICY)).unwrap());
    let now = chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 12, 1, 10, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let api = attendd::http::api::Api::with_live(
        store,
        attendd::http::api::live(policy, crate::hr_fixture::tokens()),
    )
    .with_clock(Arc::new(move || now));
    attendd::http::router(attendd::http::AppState {
        metrics: Default::default(),
        health: Default::default(),
        api: Some(Arc::new(api)),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_import_day_close_and_api_agree_on_a_month() {
    let a = site("import");
    let punches = a.dir.path().join("punches.csv");
    std::fs::write(&punches, punches_csv()).unwrap();

    // 1. evaluate.
    let o = Command::new(BIN)
        .args(["evaluate", "--policy", POLICY])
        .args(["--employees", &format!("{EXAMPLES}/employees.csv")])
        .args(["--punches", punches.to_str().unwrap()])
        .args(["--roster", &format!("{EXAMPLES}/roster.csv")])
        .args(["--leaves", &format!("{EXAMPLES}/leaves.csv")])
        .args(["--holidays", &format!("{EXAMPLES}/holidays.csv")])
        .args(["--from", "2026-11-02", "--to", "2026-11-27", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut evaluated = Days::new();
    for l in text(&o.stdout).lines() {
        put(&mut evaluated, &serde_json::from_str(l).unwrap());
    }
    assert_eq!(evaluated.len(), 5 * 26);
    let statuses: std::collections::BTreeSet<&str> = evaluated
        .values()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert!(statuses.len() >= 5, "a varied month: {statuses:?}");

    // 2. import + `attendd day` for every date.
    a.hr_files();
    a.ok(&["import", "punches", punches.to_str().unwrap()]);
    let mut imported = Days::new();
    for day in dates() {
        for l in a.ok(&["day", &day.to_string(), "--json"]).lines() {
            put(&mut imported, &serde_json::from_str(l).unwrap());
        }
    }
    assert_eq!(imported, evaluated, "import + day vs evaluate");

    // 3. The daemon's day close: the scheduler closes each day once it has
    // ended, on a store that received the same punches as they came.
    let b = site("daemon");
    b.hr_files();
    let store = Store::open(&b.url).await.unwrap();
    let policy = Arc::new(attendd::policy_file::load(Path::new(POLICY)).unwrap());
    let parsed = attendd::input::read_punches(
        std::fs::read(&punches).unwrap().as_slice(),
        "punches.csv",
        policy.tz,
    );
    let rows: Vec<attendd::store::NewPunch> = parsed
        .rows
        .into_iter()
        .map(|(_, p)| attendd::store::NewPunch {
            employee_id: p.employee_id.clone(),
            identity: p.employee_id,
            time: p.time,
            device_id: p.device_id.map(|x| x.to_string()),
            event_id: None,
            source: "mqtt[0]".into(),
            raw: None,
            direction: None,
        })
        .collect();
    store
        .insert_punches(&rows, chrono::Utc::now())
        .await
        .unwrap();
    let first_run = chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 11, 2, 7, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    store
        .classification_start(None, Some(d("2026-11-02")), first_run)
        .await
        .unwrap();
    let sched = Scheduler::new(
        store.clone(),
        Plan {
            policy: policy.clone(),
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
    for day in dates() {
        let evening = chrono_tz::Asia::Shanghai
            .from_local_datetime(&day.and_hms_opt(23, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc);
        sched.tick(evening).await.unwrap();
    }
    let mut closed = Days::new();
    for v in store
        .verdicts(d("2026-11-02"), d("2026-11-27"), None)
        .await
        .unwrap()
    {
        put(&mut closed, &serde_json::from_str(&v.verdict).unwrap());
    }
    assert_eq!(closed, evaluated, "day close vs evaluate");

    // 4. The API over the imported store.
    let r = api_router(Store::open(&a.url).await.unwrap());
    let mut api = Days::new();
    for day in dates() {
        let page = call(
            &r,
            "GET",
            &format!("/api/v1/days/{day}?limit=10000"),
            Some(HR),
            None,
        )
        .await
        .json();
        for i in page["items"].as_array().unwrap() {
            put(&mut api, &i["verdict"]);
        }
    }
    assert_eq!(api, evaluated, "API vs evaluate");
}

/// The first sheet named `name` of a workbook, as rows of cells.
fn sheet(bytes: &[u8], name: &str) -> Vec<Vec<Data>> {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    let names = wb.sheet_names();
    let n = names
        .iter()
        .find(|s| s.to_lowercase().contains(name))
        .unwrap_or_else(|| panic!("no sheet {name} in {names:?}"))
        .clone();
    wb.worksheet_range(&n)
        .unwrap()
        .rows()
        .map(|r| r.to_vec())
        .collect()
}

fn cell_num(c: &Data) -> f64 {
    match c {
        Data::Float(f) => *f,
        Data::Int(i) => *i as f64,
        Data::String(s) => s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")),
        other => panic!("not a number: {other:?}"),
    }
}

/// A header cell's text; a date as `YYYY-MM-DD`.
fn header_text(c: &Data) -> String {
    match c {
        Data::DateTime(d) => {
            let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30).unwrap();
            (epoch + chrono::Days::new(d.as_f64() as u64)).to_string()
        }
        other => cell_text(other),
    }
}

fn cell_text(c: &Data) -> String {
    match c {
        Data::String(s) => s.clone(),
        Data::Empty => String::new(),
        other => other.to_string(),
    }
}

/// Rows of a CSV export keyed by header.
fn csv_rows(bytes: &[u8]) -> Vec<BTreeMap<String, String>> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let mut r = csv::Reader::from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    let head: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    r.records()
        .map(|rec| {
            head.iter()
                .cloned()
                .zip(rec.unwrap().iter().map(String::from))
                .collect()
        })
        .collect()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// One month built through the CLI, then every view of it compared field
/// by field: CLI (`employee`, `month`), API (`employees/{id}/days`,
/// `months/{m}`), the dashboard's data (the same API calls the page makes),
/// the XLSX workbook (days grid and scores sheet) and the CSV exports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_of_a_month_agrees() {
    let a = site("views");
    let punches = a.dir.path().join("punches.csv");
    std::fs::write(&punches, punches_csv()).unwrap();
    a.hr_files();
    a.ok(&["import", "punches", punches.to_str().unwrap()]);
    a.ok(&[
        "deduct",
        "--employee",
        "E001",
        "--date",
        "2026-11-12",
        "--rule",
        "shift_swap",
        "--note",
        "swapped without asking",
    ]);
    let xlsx = a.dir.path().join("m.xlsx");
    a.ok(&[
        "export",
        "--month",
        "2026-11",
        "--format",
        "xlsx",
        "-o",
        xlsx.to_str().unwrap(),
    ]);
    let wb = std::fs::read(&xlsx).unwrap();
    let mut csvs = BTreeMap::new();
    for view in ["days", "scores"] {
        let p = a.dir.path().join(format!("{view}.csv"));
        a.ok(&[
            "export",
            "--month",
            "2026-11",
            "--format",
            "csv",
            "--view",
            view,
            "-o",
            p.to_str().unwrap(),
        ]);
        csvs.insert(view, csv_rows(&std::fs::read(&p).unwrap()));
    }
    let r = api_router(Store::open(&a.url).await.unwrap());
    let month = call(
        &r,
        "GET",
        "/api/v1/months/2026-11?limit=10000",
        Some(HR),
        None,
    )
    .await
    .json();
    let sheet_api = call(&r, "GET", "/api/v1/months/2026-11/grid", Some(HR), None)
        .await
        .json();
    assert_eq!(
        sheet_api["dates"][6]["kind"], "make_up_workday",
        "2026-11-07: {}",
        sheet_api["dates"][6]
    );
    let cli_month: Vec<Value> = a
        .ok(&["month", "2026-11", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    // The daily grid: one row per employee, one column per date, the
    // status label in each cell.
    let grid = sheet(&wb, "daily");
    // Date headers are real dates (issue 17): named here as YYYY-MM-DD.
    let ghead: Vec<String> = grid[0].iter().map(header_text).collect();
    let ndates = grid[0]
        .iter()
        .filter(|c| matches!(c, Data::DateTime(_)))
        .count();
    let gcol = |n: &str| {
        ghead
            .iter()
            .position(|h| h == n)
            .unwrap_or_else(|| panic!("{n} in {ghead:?}"))
    };
    let label = |st: &str| attendd::export::status_label(st, attendd::export::Lang::En).to_string();
    let scores = sheet(&wb, "score");
    let shead: Vec<String> = scores[0].iter().map(cell_text).collect();
    let scol = |n: &str| {
        shead
            .iter()
            .position(|h| h == n)
            .unwrap_or_else(|| panic!("{n} in {shead:?}"))
    };

    for emp in ["E001", "E002", "E003", "E004", "E005"] {
        // Days: CLI `employee --json`, API, XLSX grid, CSV days.
        let cli_days: Vec<Value> = a
            .ok(&["employee", emp, "--month", "2026-11", "--json"])
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v.get("date").is_some() && v.get("status").is_some())
            .collect();
        let person = call(
            &r,
            "GET",
            &format!("/api/v1/employees/{emp}/days?month=2026-11"),
            Some(HR),
            None,
        )
        .await
        .json();
        let api_days = person["days"].as_array().unwrap();
        assert_eq!(cli_days.len(), api_days.len(), "{emp}");
        let grow = grid[1..]
            .iter()
            .find(|r| cell_text(&r[0]) == emp)
            .unwrap_or_else(|| panic!("{emp} in the grid"));
        let csv_days: Vec<&BTreeMap<String, String>> = csvs["days"]
            .iter()
            .filter(|r| r["employee_id"] == emp)
            .collect();
        assert_eq!(csv_days.len(), api_days.len(), "{emp}: csv rows");
        let filled = grow[3..3 + ndates]
            .iter()
            .filter(|c| !cell_text(c).is_empty())
            .count();
        assert_eq!(filled, api_days.len(), "{emp}: grid cells");
        for (i, v) in api_days.iter().enumerate() {
            let c = &cli_days[i];
            let date = v["date"].as_str().unwrap();
            assert_eq!(key_fields(c), key_fields(v), "{emp} {date}: CLI vs API");
            let st = label(v["status"].as_str().unwrap());
            assert_eq!(cell_text(&grow[gcol(date)]), st, "{emp} {date}: grid");
            let cd = csv_days[i];
            assert_eq!(cd["date"], date);
            assert_eq!(cd["status"], st, "{emp} {date}: CSV");
            assert_eq!(
                cd["points"].parse::<f64>().unwrap(),
                num(&v["points"]),
                "{emp} {date}"
            );
            assert_eq!(
                cd["absence_days"].parse::<f64>().unwrap(),
                num(&v["absence_days"])
            );
            assert_eq!(
                cd["late_minutes"].parse::<f64>().unwrap(),
                num(&v["late_minutes"])
            );
            assert_eq!(
                cd["early_minutes"].parse::<f64>().unwrap(),
                num(&v["early_minutes"])
            );
        }
        // The dashboard's sheet: the same statuses on the same dates.
        let srow = sheet_api["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["employee_id"] == emp)
            .unwrap_or_else(|| panic!("{emp} in the API grid"));
        let sheet_days: Vec<(&str, &str)> = srow["days"]
            .as_array()
            .unwrap()
            .iter()
            .zip(sheet_api["dates"].as_array().unwrap())
            .filter(|(c, _)| !c.is_null())
            .map(|(c, d)| (d["date"].as_str().unwrap(), c["status"].as_str().unwrap()))
            .collect();
        let want: Vec<(&str, &str)> = api_days
            .iter()
            .map(|v| (v["date"].as_str().unwrap(), v["status"].as_str().unwrap()))
            .collect();
        assert_eq!(sheet_days, want, "{emp}: API grid vs days");
        // The grid's own totals, as HR counts them.
        let cells: Vec<String> = grow[3..3 + ndates]
            .iter()
            .map(cell_text)
            .filter(|c| !c.is_empty())
            .collect();
        let workdays = cells
            .iter()
            .filter(|c| **c != label("rest") && **c != label("holiday"))
            .count() as f64;
        let absences: f64 = cells
            .iter()
            .map(|c| {
                if *c == label("absent_full") {
                    1.0
                } else if *c == label("absent_half") {
                    0.5
                } else {
                    0.0
                }
            })
            .sum();

        // Scores: API month, CLI month, XLSX scores sheet, CSV scores, the
        // person's month.
        let api_s = month["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["employee_id"] == emp)
            .unwrap();
        let cli_s = cli_month
            .iter()
            .find(|s| s["employee_id"] == emp || s["scores"]["employee_id"] == emp)
            .unwrap_or_else(|| panic!("{emp} in {cli_month:?}"));
        let cli_s = if cli_s.get("scores").is_some() {
            &cli_s["scores"]
        } else {
            cli_s
        };
        let x = scores[1..]
            .iter()
            .find(|r| cell_text(&r[scol("employee_id")]) == emp)
            .unwrap();
        let cs = csvs["scores"]
            .iter()
            .find(|r| r["employee_id"] == emp)
            .unwrap();
        for (field, col) in [
            ("score", "score"),
            ("workdays", "workdays"),
            ("absence_days", "absence_days"),
            ("leave_days", "leave_days"),
            ("attendance_days", "attendance_days"),
        ] {
            let want = num(&api_s[field]);
            assert_eq!(num(&cli_s[field]), want, "{emp} {field}: CLI");
            assert_eq!(cell_num(&x[scol(col)]), want, "{emp} {field}: XLSX");
            assert_eq!(cs[col].parse::<f64>().unwrap(), want, "{emp} {field}: CSV");
            assert_eq!(num(&person["score"][field]), want, "{emp} {field}: person");
            assert_eq!(num(&srow["totals"][field]), want, "{emp} {field}: API grid");
        }
        assert_eq!(
            cell_num(&x[scol("workdays")]),
            workdays,
            "{emp}: workdays vs grid"
        );
        assert_eq!(
            cell_num(&x[scol("absence_days")]),
            absences,
            "{emp}: absences vs grid"
        );
    }
    // November 2026: 21 weekdays, and 11-07 is a make-up workday.
    let e1 = scores[1..]
        .iter()
        .find(|r| cell_text(&r[scol("employee_id")]) == "E001")
        .unwrap();
    assert_eq!(cell_num(&e1[scol("workdays")]), 22.0);
}
