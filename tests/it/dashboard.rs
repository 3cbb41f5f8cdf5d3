//! The dashboard at `/`: served in the language of `Accept-Language`, and
//! in a real browser (headless Chromium) against the running daemon
//! binary: today's absences and a person's explanations are on the page.
//! Without Chromium the browser test says it skips (a browser is not a
//! service CI must provide, so `ATTENDD_REQUIRE_SERVICES` does not change
//! that). A screenshot is kept under `target/test-artifacts/`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use attendd::store::{EmployeeRecord, LeaveRecord, NewPunch, RosterRecord, Store};
use axum::http::StatusCode;
use chrono::{Datelike, Days, Utc};

use crate::hr_fixture::{HR, POLICY, call, fixture};

const BIN: &str = env!("CARGO_BIN_EXE_attendd");
const SUP_B: &str = "sup-b-token-0123456789";

#[tokio::test]
async fn page_language_follows_accept_language() {
    use tower::ServiceExt;
    let f = fixture().await;
    let r = f.router();
    let en = call(&r, "GET", "/", None, None).await;
    assert_eq!(en.status, StatusCode::OK);
    assert!(en.content_type.starts_with("text/html"));
    assert!(en.text().contains("<html lang=\"en\">"));
    assert!(en.text().contains("const TODAY = \"2026-11-02\""));
    let req = axum::http::Request::builder()
        .uri("/")
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.5")
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = r.oneshot(req).await.unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let zh = String::from_utf8_lossy(&body);
    assert!(zh.contains("<html lang=\"zh\">"));
    assert!(zh.contains("迟到") && zh.contains("早退") && zh.contains("旷工"));
}

/// The page names CJK-capable font families, and its print stylesheet
/// leaves the token box and the buttons off paper.
#[tokio::test]
async fn page_names_cjk_fonts_and_prints_without_controls() {
    let f = fixture().await;
    let page = call(&f.router(), "GET", "/", None, None).await.text();
    for family in [
        "\"Noto Sans CJK SC\"",
        "\"Microsoft YaHei\"",
        "\"WenQuanYi Zen Hei\"",
        "\"PingFang SC\"",
    ] {
        assert!(page.contains(family), "{family}");
    }
    let print = &page[page.find("@media print").expect("a print stylesheet")..];
    let print = &print[..print.find("</style>").unwrap()];
    assert!(
        print.contains(".no-print") && print.contains("button"),
        "{print}"
    );
    assert!(page.contains("id=\"token-box\" class=\"no-print\""));
}

/// Every flag the engine raises (`attendd::domain::types::Flag`) has a
/// label in both languages; the id stays as a tooltip.
#[tokio::test]
async fn every_flag_has_a_label_in_both_languages() {
    let f = fixture().await;
    let page = call(&f.router(), "GET", "/", None, None).await.text();
    for id in [
        "missing_check_in",
        "missing_check_out",
        "partial_leave",
        "partial_field",
        "unpaired_punch",
        "leave_short_notice",
        "sick_leave_no_certificate",
        "sick_leave_needs_hospital_record",
        "possible_shift_swap",
    ] {
        assert_eq!(
            page.matches(&format!("{id}: \"")).count(),
            2,
            "{id}: one English and one Chinese label"
        );
    }
    assert!(page.contains("病假未提供病假证明") && page.contains("离岗"));
}

/// The month grid: one cell per employee-day aligned with the dates,
/// weekends and holidays marked, totals per person; supervisors get their
/// team only, other teams are 403, a bad month is 400.
#[tokio::test]
async fn month_grid_has_a_cell_per_employee_day() {
    use crate::hr_fixture::{SUP_A, TERM};
    let f = fixture().await;
    f.store
        .upsert_holidays(
            &[attendd::store::HolidayRecord {
                date: chrono::NaiveDate::from_ymd_opt(2026, 11, 3).unwrap(),
                kind: "holiday".into(),
            }],
            Utc::now(),
        )
        .await
        .unwrap();
    let r = f.router();
    let g = call(&r, "GET", "/api/v1/months/2026-11/grid", Some(HR), None).await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.text());
    let j = g.json();
    assert_eq!(j["month"], "2026-11");
    assert_eq!(j["timezone"], "Asia/Shanghai");
    assert_eq!(j["teams"], serde_json::json!(["A", "B"]));
    let dates = j["dates"].as_array().unwrap();
    assert_eq!(dates.len(), 30);
    assert_eq!(dates[0]["kind"], "weekend", "2026-11-01 is a Sunday");
    assert_eq!(dates[0]["weekday"], 7);
    assert_eq!(dates[1]["kind"], "workday");
    assert_eq!(dates[2]["kind"], "holiday", "imported holiday");
    assert_eq!(j["total"], 4);
    let items = j["items"].as_array().unwrap();
    let row = |id: &str| {
        items
            .iter()
            .find(|i| i["employee_id"] == id)
            .unwrap_or_else(|| panic!("{id} in {items:?}"))
    };
    for i in items {
        assert_eq!(i["days"].as_array().unwrap().len(), 30, "{i}");
        assert!(i["days"][10].is_null(), "no verdict after the 2nd: {i}");
    }
    assert_eq!(row("E001")["days"][1]["status"], "present");
    assert_eq!(row("E001")["name"], "Alice");
    assert_eq!(row("E002")["days"][1]["status"], "absent_half");
    assert_eq!(row("E003")["days"][1]["status"], "absent_full");
    assert_eq!(row("E003")["team"], "B");
    assert_eq!(row("E003")["totals"]["by_status"]["absent_full"], 1);
    assert_eq!(row("E003")["totals"]["absence_days"], 1);
    let dan = &row("E004")["days"][1];
    assert!(
        dan["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|x| x == "missing_check_out")),
        "{dan}"
    );
    assert_eq!(row("E004")["totals"]["flagged_days"], 1);
    assert!(row("E001")["totals"]["score"].is_number());

    let b = call(
        &r,
        "GET",
        "/api/v1/months/2026-11/grid?team=B",
        Some(HR),
        None,
    )
    .await
    .json();
    assert_eq!(b["total"], 1);
    assert_eq!(b["items"][0]["employee_id"], "E003");
    assert_eq!(
        b["teams"],
        serde_json::json!(["A", "B"]),
        "all teams offered"
    );
    let page = call(
        &r,
        "GET",
        "/api/v1/months/2026-11/grid?limit=1&offset=1",
        Some(HR),
        None,
    )
    .await
    .json();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_offset"], 2);

    let sup = call(&r, "GET", "/api/v1/months/2026-11/grid", Some(SUP_A), None)
        .await
        .json();
    assert_eq!(sup["total"], 3);
    assert_eq!(sup["teams"], serde_json::json!(["A"]));
    for (uri, tok, code) in [
        (
            "/api/v1/months/2026-11/grid?team=B",
            SUP_A,
            StatusCode::FORBIDDEN,
        ),
        ("/api/v1/months/2026-11/grid", TERM, StatusCode::FORBIDDEN),
        ("/api/v1/months/2026-13/grid", HR, StatusCode::BAD_REQUEST),
        (
            "/api/v1/months/2026-11/grid?limit=0",
            HR,
            StatusCode::BAD_REQUEST,
        ),
    ] {
        assert_eq!(
            call(&r, "GET", uri, Some(tok), None).await.status,
            code,
            "{uri}"
        );
    }
}

fn chromium() -> Option<PathBuf> {
    for c in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if Path::new(c).exists() {
            return Some(PathBuf::from(c));
        }
    }
    None
}

/// A child killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs Chromium headless with `args` and the URL; returns stdout.
fn browse(chrome: &Path, profile: &Path, lang: &str, args: &[&str], url: &str) -> String {
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--accept-lang={lang}"))
        .arg(format!("--lang={lang}"))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// The text from a section's id to its end.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{dom}"));
    let rest = &dom[start..];
    let end = rest.find("</section>").unwrap_or(rest.len());
    &rest[..end]
}

/// The class attributes of an employee's day cells in the month grid, in
/// date order.
fn grid_cells(dom: &str, id: &str) -> Vec<String> {
    let grid = section(dom, "grid");
    let start = grid
        .find(&format!("<tr data-id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no grid row for {id}:\n{grid}"));
    let row = &grid[start..];
    let row = &row[..row.find("</tr>").unwrap_or(row.len())];
    row.split("<td class=\"")
        .skip(1)
        .map(|c| c[..c.find('"').unwrap_or(0)].to_string())
        .filter(|c| c.starts_with("c "))
        .collect()
}

/// True when `text` shows a time with seconds and a fraction (an instant
/// as stored, not as people read it).
fn has_raw_instant(text: &str) -> bool {
    let b = text.as_bytes();
    b.windows(10).any(|w| {
        let d = |i: usize| w[i].is_ascii_digit();
        d(0) && d(1)
            && w[2] == b':'
            && d(3)
            && d(4)
            && w[5] == b':'
            && d(6)
            && d(7)
            && w[8] == b'.'
            && d(9)
    })
}

#[test]
fn browser_shows_todays_absences_and_explanations() {
    let Some(chrome) = chromium() else {
        eprintln!(
            "skipping dashboard browser test: chromium not found (apt-get install -y chromium)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("attendd.db");
    let url = format!("sqlite://{}", db.display());
    let policy = attendd::policy_file::load(Path::new(POLICY)).unwrap();
    let now = Utc::now();
    let local = attendd::domain::time::to_local(policy.tz, now);
    let today = local.date_naive();
    let yesterday = today - Days::new(1);
    // While the day shift's punch window (04:30–21:30) is open, Carol has
    // not arrived yet; once it has closed she is absent (policy.md, "Today").
    let window_open = (chrono::NaiveTime::from_hms_opt(4, 30, 0).unwrap()
        ..chrono::NaiveTime::from_hms_opt(21, 30, 0).unwrap())
        .contains(&local.time());
    // Before the shift starts (08:30) nobody is missing yet, and before the
    // window opens (04:30) today has no verdict to show: the checks below
    // are of a started day, so they wait for one.
    if local.time() < chrono::NaiveTime::from_hms_opt(8, 31, 0).unwrap() {
        eprintln!(
            "skipping dashboard browser test: today's shift has not started yet in {} ({}); it checks a started day",
            policy.tz,
            local.format("%H:%M")
        );
        return;
    }
    // Alice checked in at 08:20: a punch is a check-in only before the
    // shift's end (17:30), so "a minute ago" would leave her missing in the
    // evening.
    let alice_at = attendd::domain::time::resolve_local(
        policy.tz,
        today.and_hms_opt(8, 20, 0).expect("08:20 exists"),
    );

    // Today is a workday for everybody (a roster row), whatever the weekday.
    // Alice punched (see `alice_at`); Carol has no punch: she is missing.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        let emp = |id: &str, name: &str, team: &str| EmployeeRecord {
            employee_id: id.into(),
            name: name.into(),
            team: team.into(),
            supervisor: "lead".into(),
            shift: None,
            aliases: Vec::new(),
            start_date: None,
            end_date: None,
        };
        store
            .upsert_employees(
                &[
                    emp("E001", "Alice", "A"),
                    emp("E003", "Carol", "B"),
                    emp("E004", "Dave", "B"),
                ],
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        store
            .upsert_roster(
                &[
                    RosterRecord {
                        employee_id: "E001".into(),
                        date: today,
                        shift: "day".into(),
                    },
                    RosterRecord {
                        employee_id: "E003".into(),
                        date: today,
                        shift: "day".into(),
                    },
                    RosterRecord {
                        employee_id: "E004".into(),
                        date: yesterday,
                        shift: "day".into(),
                    },
                ],
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        // Dave was on sick leave yesterday and handed in no document.
        let midnight = |d: chrono::NaiveDate| {
            attendd::domain::time::resolve_local(policy.tz, d.and_hms_opt(0, 0, 0).unwrap())
        };
        store
            .upsert_leaves(
                &[LeaveRecord {
                    employee_id: "E004".into(),
                    start: midnight(yesterday),
                    end: midnight(today),
                    kind: "sick".into(),
                    status: "approved".into(),
                    requested_at: None,
                    document: Some(String::new()),
                }],
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        // An undecodable payload: its receipt time (stored to the
        // nanosecond, in UTC) is shown in the policy's zone to the minute.
        store
            .quarantine(
                &attendd::store::NewQuarantine {
                    source: "mqtt:attendance/x/punch".into(),
                    payload: b"garbage".to_vec(),
                    reason: "not JSON".into(),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap();
        store
            .insert_punches(
                &[NewPunch {
                    employee_id: "E001".into(),
                    identity: "E001".into(),
                    time: alice_at,
                    device_id: Some("gate-1".into()),
                    event_id: None,
                    source: "test".into(),
                    raw: None,
                    direction: None,
                }],
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        store
            .recompute(
                &policy,
                None,
                today - Days::new(1),
                today,
                "test",
                "test",
                now,
            )
            .await
            .unwrap();
        let v = store.verdicts(today, today, Some("E003")).await.unwrap();
        let expected = if window_open {
            "not_arrived"
        } else {
            "absent_full"
        };
        assert_eq!(v[0].status, expected);
        store.close().await;
    });

    // The day closes (and its verdicts become final) at the shift's end +
    // grace + close_delay_minutes: 240 keeps that after the window's end at
    // 21:30, so "not arrived" holds exactly while the window is open (with
    // the default 60 the day closed at 18:45 and Carol was absent).
    let config = dir.path().join("attendd.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nfile = {POLICY:?}\n\n[store]\nurl = {url:?}\n\n[http]\nlisten = \"127.0.0.1:0\"\n\n\
             [schedule]\nclose_delay_minutes = 240\n\n\
             [[http.tokens]]\nname = \"hr-office\"\ntoken_env = \"ATTENDD_TOKEN_HR\"\nrole = \"hr\"\n\n\
             [[http.tokens]]\nname = \"lead-b\"\ntoken_env = \"ATTENDD_TOKEN_SUP_B\"\nrole = \"supervisor:B\"\n"
        ),
    )
    .unwrap();
    let log_path = dir.path().join("run.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&config)
        .env("ATTENDD_TOKEN_HR", HR)
        .env("ATTENDD_TOKEN_SUP_B", SUP_B)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut daemon = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    let port = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if let Some(i) = text.find("http on 127.0.0.1:") {
            let rest = &text[i + "http on 127.0.0.1:".len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            break digits.parse::<u16>().unwrap();
        }
        if daemon.0.try_wait().unwrap().is_some() {
            panic!("daemon exited early:\n{text}");
        }
        assert!(Instant::now() < deadline, "daemon did not listen:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    let page = format!("http://127.0.0.1:{port}/#token={HR}&employee=E003");

    let profile = dir.path().join("chrome");
    let dom = browse(&chrome, &profile, "en-US", &["--dump-dom"], &page);
    let missing = section(&dom, "missing");
    assert!(
        missing.contains("Carol"),
        "Carol is missing today:\n{missing}"
    );
    assert!(!missing.contains("Alice"), "Alice punched:\n{missing}");
    let teams = section(&dom, "today");
    assert!(teams.contains(">B<"), "team B row:\n{teams}");
    let person = section(&dom, "person");
    assert!(person.contains("Carol"), "{person}");
    assert!(
        person.contains("no punch in the window"),
        "explanation shown:\n{person}"
    );
    if window_open {
        assert!(person.contains("not arrived yet"), "{person}");
    } else {
        assert!(
            person.contains("Absent all day (no punch)"),
            "rule label shown:\n{person}"
        );
    }
    assert!(section(&dom, "scores").contains("Alice"), "score table");
    let quarantine = section(&dom, "quarantine");
    assert!(
        !quarantine.contains("class=\"err\""),
        "quarantine loads for hr"
    );
    assert!(quarantine.contains("garbage"), "{quarantine}");
    assert!(
        quarantine.contains(&format!(">{} ", local.date_naive()))
            || quarantine.contains(&format!(">{} ", local.date_naive() + Days::new(1))),
        "receipt date in the policy's zone:\n{quarantine}"
    );
    assert!(!dom.contains(HR), "the token is not left in the page");

    // The month grid: a header per day of the month, weekends shaded, one
    // cell per employee-day; Carol's today is coloured by her status, and
    // the legend names every status.
    let first = today.with_day(1).unwrap();
    let days_in_month = first
        .iter_days()
        .take_while(|d| d.month() == first.month())
        .count();
    let weekends = first
        .iter_days()
        .take_while(|d| d.month() == first.month())
        .filter(|d| d.weekday().number_from_monday() >= 6)
        .count();
    let grid = section(&dom, "grid");
    assert_eq!(
        grid.matches("<th class=\"d d-").count(),
        days_in_month,
        "{grid}"
    );
    assert_eq!(
        grid.matches("<th class=\"d d-weekend\"").count(),
        weekends,
        "{grid}"
    );
    for id in ["E001", "E003", "E004"] {
        assert_eq!(grid_cells(&dom, id).len(), days_in_month, "{id}");
    }
    let expected = if window_open {
        "not_arrived"
    } else {
        "absent_full"
    };
    let carol = grid_cells(&dom, "E003");
    let cell = &carol[today.day0() as usize];
    assert!(
        cell.contains(&format!("st-{expected}")),
        "Carol today is {expected}: {cell}"
    );
    assert!(grid.contains(">Team B<"), "rows grouped by team:\n{grid}");
    for st in [
        "present",
        "late",
        "absent_half",
        "absent_full",
        "on_leave",
        "rest",
        "holiday",
    ] {
        assert!(
            section(&dom, "grid").contains(&format!("class=\"sw st-{st}\"")),
            "legend has {st}"
        );
    }
    assert!(
        grid.contains("Export (.xlsx)") && grid.contains("Print"),
        "{grid}"
    );
    // A supervisor: their team only, no export, no quarantine.
    let sup = format!("http://127.0.0.1:{port}/#token={SUP_B}");
    let sdom = browse(&chrome, &profile, "en-US", &["--dump-dom"], &sup);
    assert_eq!(grid_cells(&sdom, "E003").len(), days_in_month);
    assert!(
        !section(&sdom, "grid").contains("data-id=\"E001\""),
        "team A hidden"
    );
    assert!(sdom.contains("<option value=\"B\">") && !sdom.contains("<option value=\"A\">"));
    let tag = |dom: &str, id: &str| {
        let i = dom.find(&format!("id=\"{id}\"")).unwrap();
        let start = dom[..i].rfind('<').unwrap();
        dom[start..i + dom[i..].find('>').unwrap()].to_string()
    };
    assert!(
        tag(&sdom, "export-xlsx").contains("hidden"),
        "{}",
        tag(&sdom, "export-xlsx")
    );
    assert!(!tag(&dom, "export-xlsx").contains("hidden"), "HR exports");
    assert!(tag(&sdom, "quarantine").contains("hidden"));
    assert!(!sdom.contains(SUP_B), "the token is not left in the page");
    let trend = section(&dom, "trend");
    assert!(trend.contains("<svg class=\"trend\""), "{trend}");
    assert!(trend.contains("data-team=\"B\""), "team B's rate:\n{trend}");
    let main = &dom[dom.find("<main>").unwrap()..];
    assert!(
        !has_raw_instant(main),
        "a stored instant shown to people:\n{main}"
    );

    let zh = browse(&chrome, &profile, "zh-CN", &["--dump-dom"], &page);
    assert!(zh.contains("<html lang=\"zh\">"), "zh page");
    // The section lists who has no punch today under its translated
    // title, whether or not the window has closed (it shows shifts, not
    // statuses).
    let missing_zh = section(&zh, "missing");
    assert!(
        missing_zh.contains("当前未到") && missing_zh.contains("Carol"),
        "{missing_zh}"
    );
    assert!(section(&zh, "person").contains("打卡时段内无打卡"));

    // Yesterday's month for Dave: his flag by its label, and the overtime
    // column.
    let dave = format!(
        "http://127.0.0.1:{port}/#token={HR}&employee=E004&month={}",
        yesterday.format("%Y-%m")
    );
    let dom = browse(&chrome, &profile, "en-US", &["--dump-dom"], &dave);
    let person = section(&dom, "person");
    assert!(
        person.contains("sick leave without a certificate"),
        "flag label shown:\n{person}"
    );
    assert!(
        person.contains("title=\"sick_leave_no_certificate\""),
        "{person}"
    );
    assert!(person.contains("Overtime (min)"), "{person}");
    // Dave's sick day in the grid: on leave, flagged, the flag by its label.
    let dave_cells = grid_cells(&dom, "E004");
    let cell = &dave_cells[yesterday.day0() as usize];
    assert!(
        cell.contains("st-on_leave") && cell.contains(" fl"),
        "{cell}"
    );
    let grid = section(&dom, "grid");
    assert!(grid.contains("sick leave without a certificate"), "{grid}");
    assert!(
        !grid.contains("sick_leave_no_certificate"),
        "raw flag id:\n{grid}"
    );
    let zh = browse(&chrome, &profile, "zh-CN", &["--dump-dom"], &dave);
    assert!(
        section(&zh, "person").contains("病假未提供病假证明"),
        "{}",
        section(&zh, "person")
    );
    assert!(
        section(&zh, "grid").contains(">假<"),
        "zh sheet code for leave"
    );

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &chrome,
        &profile,
        "en-US",
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2200",
        ],
        &page,
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        png.len() > 10_000,
        "a page, not a blank: {} bytes",
        png.len()
    );
    eprintln!("dashboard screenshot: {}", shot.display());
    // The Chinese page of Dave's month, to look at CJK labels in the grid.
    let shot_zh = artifacts.join("dashboard-zh.png");
    let _ = std::fs::remove_file(&shot_zh);
    browse(
        &chrome,
        &profile,
        "zh-CN",
        &[
            &format!("--screenshot={}", shot_zh.display()),
            "--window-size=1400,2200",
        ],
        &dave,
    );
    let png = std::fs::read(&shot_zh).expect("zh screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a PNG");
    eprintln!("dashboard screenshot: {}", shot_zh.display());
    // The page as printed (the print stylesheet: no token box, no buttons).
    let pdf = artifacts.join("dashboard-print.pdf");
    let _ = std::fs::remove_file(&pdf);
    browse(
        &chrome,
        &profile,
        "en-US",
        &[
            &format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer",
        ],
        &page,
    );
    let doc = std::fs::read(&pdf).expect("printed page written");
    assert!(doc.starts_with(b"%PDF"), "a PDF");
    eprintln!("dashboard printed: {}", pdf.display());
    drop(daemon);
}
