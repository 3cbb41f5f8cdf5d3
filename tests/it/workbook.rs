//! Issue 17, "Exports a payroll clerk does not have to fix": the month's
//! workbook read back cell by cell (real dates and times, numbers, labels
//! in the chosen language, voided entries apart, totals per person), its
//! XML inspected (column widths, landscape fitted to one page wide,
//! repeated title rows and columns, autofilters), and, where LibreOffice
//! is installed, converted headless to PDF and CSV.

use std::io::{Cursor, Read};

use axum::http::StatusCode;
use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
use serde_json::json;

use crate::hr_fixture::{Fixture, HR, SUP_A, call, fixture, sh};

/// The fixture's month with a manual deduction (a note), and Bob's device
/// entry voided by an upheld appeal; returns the English and Chinese
/// workbooks.
async fn workbooks(f: &Fixture) -> (Vec<u8>, Vec<u8>) {
    let r = f.router();
    let manual = call(
        &r,
        "POST",
        "/api/v1/ledger",
        Some(HR),
        Some(json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":"jeans"})),
    )
    .await;
    assert_eq!(manual.status, StatusCode::CREATED, "{}", manual.text());
    let bob = f
        .store
        .ledger(
            crate::common::date("2026-11-01"),
            crate::common::date("2026-11-30"),
            Some("E002"),
        )
        .await
        .unwrap();
    f.set_now(sh(2026, 12, 1, 10, 0, 0));
    let p = call(&r, "POST", "/api/v1/months/2026-11/publish", Some(HR), None).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text());
    let a = call(
        &r,
        "POST",
        "/api/v1/appeals",
        Some(SUP_A),
        Some(json!({"ledger_id": bob[0].id, "reason": "bus strike"})),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.text());
    let up = call(
        &r,
        "POST",
        &format!("/api/v1/appeals/{}/answer", a.json()["id"]),
        Some(HR),
        Some(json!({"decision":"upheld","answer":"confirmed"})),
    )
    .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.text());
    let mut out = Vec::new();
    for lang in ["en", "zh"] {
        let x = call(
            &r,
            "GET",
            &format!("/api/v1/months/2026-11/export?format=xlsx&lang={lang}"),
            Some(HR),
            None,
        )
        .await;
        assert_eq!(x.status, StatusCode::OK);
        out.push(x.body.to_vec());
    }
    let zh = out.pop().unwrap();
    (out.pop().unwrap(), zh)
}

fn sheets(bytes: &[u8]) -> Vec<(String, Vec<Vec<Data>>)> {
    let mut wb: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes.to_vec())).unwrap();
    wb.sheet_names()
        .into_iter()
        .map(|n| {
            let rows = wb
                .worksheet_range(&n)
                .unwrap()
                .rows()
                .map(|r| r.to_vec())
                .collect();
            (n, rows)
        })
        .collect()
}

/// A part of the xlsx package (the zip) as text.
fn part(bytes: &[u8], name: &str) -> String {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
    let mut s = String::new();
    z.by_name(name)
        .unwrap_or_else(|e| panic!("{name}: {e}"))
        .read_to_string(&mut s)
        .unwrap();
    s
}

/// `<col min=.. max=.. width=..>` entries: (first, last, width), 1-based.
fn col_widths(xml: &str) -> Vec<(u32, u32, f64)> {
    let attr = |tag: &str, a: &str| -> Option<String> {
        let k = format!(" {a}=\"");
        let i = tag.find(&k)? + k.len();
        Some(tag[i..].split('"').next()?.to_string())
    };
    xml.split("<col ")
        .skip(1)
        .filter_map(|t| {
            let t = format!(" {}", t.split('>').next()?);
            Some((
                attr(&t, "min")?.parse().ok()?,
                attr(&t, "max")?.parse().ok()?,
                attr(&t, "width")?.parse().ok()?,
            ))
        })
        .collect()
}

fn width_of(cols: &[(u32, u32, f64)], col0: u32) -> f64 {
    cols.iter()
        .find(|(a, b, _)| (*a..=*b).contains(&(col0 + 1)))
        .map(|c| c.2)
        .unwrap_or_else(|| panic!("no width for column {col0}: {cols:?}"))
}

fn is_date(c: &Data) -> bool {
    matches!(c, Data::DateTime(d) if d.is_datetime())
}

fn has_latin_word(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| w.iter().all(u8::is_ascii_alphabetic))
}

#[tokio::test]
async fn issue17_workbook_cells_are_typed_and_labelled() {
    let f = fixture().await;
    let (en, zh) = workbooks(&f).await;

    for (bytes, lang) in [(&en, "en"), (&zh, "zh")] {
        let s = sheets(bytes);
        let names: Vec<&str> = s.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            names,
            if lang == "en" {
                ["Daily grid", "Deductions", "Scores"]
            } else {
                ["每日考勤", "扣分明细", "月度考核得分"]
            },
            "sheet names are fixed"
        );
        let (grid, deds, scores) = (&s[0].1, &s[1].1, &s[2].1);

        // Grid: 30 real dates from column 3, weekdays under them.
        let dates: Vec<&Data> = grid[0][3..33].iter().collect();
        assert!(dates.iter().all(|c| is_date(c)), "{lang}: {dates:?}");
        match dates[0] {
            Data::DateTime(d) => assert_eq!(d.as_f64(), 46327.0, "2026-11-01"),
            o => panic!("{o:?}"),
        }
        let sunday = if lang == "en" { "Sun" } else { "日" };
        assert_eq!(grid[1][3], Data::String(sunday.into()), "{lang}");
        // Totals after the dates: numbers for every person.
        let head: Vec<String> = grid[0].iter().map(|c| c.to_string()).collect();
        let absence = head
            .iter()
            .position(|h| {
                h == if lang == "en" {
                    "absence days"
                } else {
                    "旷工天数"
                }
            })
            .unwrap_or_else(|| panic!("{head:?}"));
        assert_eq!(absence, 33 + 4);
        let carol = grid
            .iter()
            .find(|r| r[0] == Data::String("E003".into()))
            .unwrap();
        assert_eq!(
            carol[absence],
            Data::Float(1.0),
            "{lang}: Carol absent 11-02"
        );
        let late_times = grid
            .iter()
            .skip(2)
            .take(4)
            .all(|r| matches!(r[33], Data::Float(_)));
        assert!(late_times, "{lang}: totals are numbers");
        // The legend under the grid names every status.
        let legend = if lang == "en" { "Legend" } else { "图例" };
        let at = grid
            .iter()
            .position(|r| r[0] == Data::String(legend.into()))
            .expect("legend");
        let shown: Vec<String> = grid[at].iter().map(|c| c.to_string()).collect();
        let absent = if lang == "en" { "absent" } else { "旷工" };
        assert!(shown.iter().any(|c| c == absent), "{shown:?}");

        // Deductions: the date a date, the points a number; live entries
        // first under the autofilter, the voided one apart after them.
        let live: Vec<&Vec<Data>> = deds[1..]
            .iter()
            .take_while(|r| r.iter().any(|c| *c != Data::Empty))
            .collect();
        assert_eq!(
            live.len(),
            3,
            "{lang}: Carol, Dan, Alice's manual: {deds:?}"
        );
        for r in &live {
            assert!(is_date(&r[3]), "{lang}: {r:?}");
            assert!(matches!(r[7], Data::Float(_)), "{lang}: {r:?}");
            assert_eq!(r[12], Data::Empty, "not voided");
        }
        let voided = deds
            .iter()
            .rev()
            .find(|r| r[1] == Data::String("E002".into()))
            .unwrap();
        assert!(is_date(&voided[12]), "{lang}: void time {voided:?}");
        let state = if lang == "en" { "voided" } else { "已撤销" };
        assert_eq!(voided[14], Data::String(state.into()));
        let pos = |r: &Vec<Data>| deds.iter().position(|x| x == r).unwrap();
        assert!(pos(voided) > live.len() + 1, "apart, after a gap");

        // Scores: the month a date, the score a number.
        assert!(is_date(&scores[1][3]), "{lang}: {:?}", scores[1]);
        assert!(matches!(scores[1][4], Data::Float(_)));

        if lang == "zh" {
            // Every label Chinese: statuses in the grid, and in the ledger
            // the category, clause, rule label, kind, source, evidence of
            // a device entry, void cause and status.
            for r in &grid[2..6] {
                for c in &r[3..33] {
                    if let Data::String(s) = c {
                        assert!(!has_latin_word(s), "grid {s:?}");
                    }
                }
            }
            for r in deds[1..].iter().filter(|r| r[1] != Data::Empty) {
                let device = r[9] == Data::String("考勤机".into());
                for c in [4, 5, 6, 8, 9, 13, 14]
                    .into_iter()
                    .chain(device.then_some(10))
                {
                    if let Data::String(s) = &r[c] {
                        assert!(!has_latin_word(s), "column {c}: {s:?} in {r:?}");
                    }
                }
            }
            let carol = deds
                .iter()
                .find(|r| r[1] == Data::String("E003".into()))
                .unwrap();
            assert_eq!(carol[10], Data::String("无打卡记录".into()));
            assert_eq!(voided[13], Data::String("申诉 #1 成立".into()));
        }
    }
}

#[tokio::test]
async fn issue17_workbook_prints_landscape_one_page_wide_with_filters() {
    let f = fixture().await;
    let (en, zh) = workbooks(&f).await;
    for bytes in [&en, &zh] {
        let book = part(bytes, "xl/workbook.xml");
        for sheet in 1..=3 {
            let xml = part(bytes, &format!("xl/worksheets/sheet{sheet}.xml"));
            assert!(xml.contains("<pageSetUpPr fitToPage=\"1\"/>"), "{xml}");
            let setup = xml
                .split("<pageSetup ")
                .nth(1)
                .and_then(|s| s.split("/>").next())
                .unwrap_or_else(|| panic!("sheet{sheet}: no pageSetup"));
            assert!(setup.contains("orientation=\"landscape\""), "{setup}");
            assert!(setup.contains("paperSize=\"9\""), "A4: {setup}");
            assert!(setup.contains("fitToHeight=\"0\""), "{setup}");
            assert!(
                !setup.contains("fitToWidth") || setup.contains("fitToWidth=\"1\""),
                "{setup}"
            );
            assert!(xml.contains("<autoFilter ref="), "sheet{sheet}");
            assert!(xml.contains("<cols>"), "sheet{sheet}");
        }
        // Title rows and columns repeated on every page of every sheet.
        assert_eq!(book.matches("_xlnm.Print_Titles").count(), 3, "{book}");
        assert!(
            book.contains("!$A:$C,"),
            "grid repeats ID, name, team: {book}"
        );
        assert!(
            book.contains("!$1:$2"),
            "grid repeats dates and weekdays: {book}"
        );

        // Widths: names and ids fit, a date column shows its date and a
        // two-line label; the grid's filter sits on the weekday row.
        let grid = part(bytes, "xl/worksheets/sheet1.xml");
        let cols = col_widths(&grid);
        assert!(width_of(&cols, 0) >= 6.0);
        assert!(width_of(&cols, 1) >= 7.0, "{cols:?}");
        for c in 3..33 {
            assert!(width_of(&cols, c) >= 6.0, "column {c}: {cols:?}");
        }
        assert!(grid.contains("<autoFilter ref=\"A2:AO6\"/>"), "{grid}");
        let deds = part(bytes, "xl/worksheets/sheet2.xml");
        let cols = col_widths(&deds);
        assert!(width_of(&cols, 3) >= 12.0, "a date fits: {cols:?}");
        assert!(width_of(&cols, 12) >= 21.0, "a date-time fits: {cols:?}");
        // Header, three live entries; the voided one is below the filter.
        assert!(deds.contains("<autoFilter ref=\"A1:O4\"/>"), "{deds}");
    }
}

/// Waits for a child, killing it after `limit` (a stuck office suite
/// fails the test instead of hanging the run).
fn finish_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> std::process::Output {
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("soffice did not finish within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// LibreOffice opens the workbooks and converts them (PDF, CSV); skipped,
/// visibly, where it is not installed.
#[tokio::test]
async fn issue17_workbook_converts_with_libreoffice() {
    let Some(soffice) = ["soffice", "libreoffice"].into_iter().find(|b| {
        std::process::Command::new(b)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        eprintln!("SKIP: libreoffice not installed (soffice --version failed)");
        return;
    };
    let f = fixture().await;
    let (en, zh) = workbooks(&f).await;
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [("en", &en), ("zh", &zh)] {
        let x = dir.path().join(format!("{name}.xlsx"));
        std::fs::write(&x, bytes).unwrap();
        for to in ["pdf", "csv"] {
            let child = std::process::Command::new(soffice)
                .arg(format!(
                    "-env:UserInstallation=file://{}/profile",
                    dir.path().display()
                ))
                .args(["--headless", "--convert-to", to, "--outdir"])
                .arg(dir.path())
                .arg(&x)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let o = finish_within(child, std::time::Duration::from_secs(180));
            let out = dir.path().join(format!("{name}.{to}"));
            assert!(
                o.status.success() && out.exists(),
                "{name} → {to}: {}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            let got = std::fs::read(&out).unwrap();
            if to == "csv" {
                // The first sheet, the grid: its header dates as dates.
                let text = String::from_utf8_lossy(&got);
                assert!(text.contains("11-02"), "{text}");
                assert!(text.contains("E003"), "{text}");
            } else {
                assert!(got.starts_with(b"%PDF"), "{name}.pdf");
                let pages = std::process::Command::new("pdfinfo")
                    .arg(&out)
                    .output()
                    .ok()
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                    .and_then(|s| {
                        s.lines()
                            .find(|l| l.starts_with("Pages:"))
                            .map(|l| l.trim_start_matches("Pages:").trim().to_string())
                    });
                eprintln!(
                    "{name}: {} bytes of xlsx, {} bytes of PDF, pages: {}",
                    bytes.len(),
                    got.len(),
                    pages.as_deref().unwrap_or("? (pdfinfo not installed)")
                );
            }
        }
    }
}
