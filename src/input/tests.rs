use super::*;
use std::io;

#[test]
fn punches_with_bad_rows_keep_good_ones() {
    let csv = "employee_id,time,device_id,extra\nE1,2026-11-02 08:29:00,g1,x\nE2,yesterday,g1,x\n,2026-11-02 08:00:00\nE3,2026-11-02T08:29:00+08:00,,\n";
    let p = read_punches(csv.as_bytes(), "p.csv", chrono_tz::Asia::Shanghai);
    assert_eq!(p.rows.len(), 2);
    assert_eq!(p.rows[0].0, 2);
    assert_eq!(p.rows[0].1.time.to_rfc3339(), "2026-11-02T00:29:00+00:00");
    assert_eq!(p.rows[1].1.time, p.rows[0].1.time);
    assert_eq!(p.errors.len(), 2);
    assert_eq!(p.errors[0].line, 3);
    assert!(
        p.errors[0]
            .to_string()
            .starts_with("p.csv:3: time \"yesterday\"")
    );
    assert_eq!(p.errors[1].line, 4);
}

fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    (dir, p)
}

/// A spreadsheet program saves CSV with CRLF line ends: messages name
/// the file's own lines (they were one off).
#[test]
fn crlf_files_keep_their_line_numbers() {
    let csv = "employee_id,time\r\nE1,2026-11-02 08:29:00\r\nE2,yesterday\r\nE3,2026-11-02 08:31:00\r\nE4,noon\r\n";
    let (_d, p) = temp_file("p.csv", csv.as_bytes());
    let r = read_punches(
        io::Cursor::new(load(&p).unwrap()),
        "p.csv",
        chrono_tz::Asia::Shanghai,
    );
    assert_eq!(r.rows.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 4]);
    let lines: Vec<u64> = r.errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 5], "{:?}", r.errors);
}

/// "CSV" from a Chinese-locale spreadsheet program is GB18030: read,
/// not refused as invalid UTF-8.
#[test]
fn gb18030_files_are_read() {
    let text = "employee_id,name,team,supervisor\r\nE001,张敏,受理组,王伟\r\n";
    let (bytes, _, bad) = encoding_rs::GB18030.encode(text);
    assert!(!bad);
    assert!(std::str::from_utf8(&bytes).is_err());
    let (_d, p) = temp_file("employees.csv", &bytes);
    let policy = crate::policy_file::parse_str(
        include_str!("../../config/policies/seed-default.toml"),
        "seed-default.toml",
    )
    .unwrap();
    let r = read_employees(io::Cursor::new(load(&p).unwrap()), "employees.csv", &policy);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.rows[0].1.name, "张敏");
    assert_eq!(r.rows[0].1.team, "受理组");
}

/// HR's roster kept in a workbook: the first sheet, dates as date
/// cells or text, messages naming the sheet row.
#[test]
fn xlsx_rosters_are_read_by_extension() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let date = Format::new().set_num_format("yyyy-mm-dd");
    ws.write(0, 0, "employee_id").unwrap();
    ws.write(0, 1, "date").unwrap();
    ws.write(0, 2, "shift").unwrap();
    ws.write(1, 0, "E001").unwrap();
    ws.write_with_format(1, 1, ExcelDateTime::from_ymd(2026, 11, 3).unwrap(), &date)
        .unwrap();
    ws.write(1, 2, "rest").unwrap();
    ws.write(2, 0, 1002).unwrap();
    ws.write(2, 1, "2026-11-04").unwrap();
    ws.write(2, 2, "day").unwrap();
    ws.write(3, 0, "E003").unwrap();
    ws.write(3, 1, "someday").unwrap();
    ws.write(3, 2, "day").unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    let (_d, p) = temp_file("roster.xlsx", &bytes);
    let policy = crate::policy_file::parse_str(
        include_str!("../../config/policies/seed-default.toml"),
        "seed-default.toml",
    )
    .unwrap();
    let r = read_roster(io::Cursor::new(load(&p).unwrap()), "roster.xlsx", &policy);
    assert_eq!(r.rows.len(), 2, "{:?}", r.errors);
    assert_eq!(r.rows[0].1.employee_id, "E001");
    assert_eq!(r.rows[0].1.date.to_string(), "2026-11-03");
    assert_eq!(r.rows[0].1.entry, RosterEntry::Rest);
    assert_eq!(r.rows[1].1.employee_id, "1002");
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].line, 4, "{:?}", r.errors);
    // Punch times as date-time cells.
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    let dt = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    ws.write(0, 0, "employee_id").unwrap();
    ws.write(0, 1, "time").unwrap();
    ws.write(1, 0, "E001").unwrap();
    ws.write_with_format(
        1,
        1,
        ExcelDateTime::from_ymd(2026, 11, 3)
            .unwrap()
            .and_hms(8, 29, 13)
            .unwrap(),
        &dt,
    )
    .unwrap();
    let (_d2, p) = temp_file("punches.xlsx", &wb.save_to_buffer().unwrap());
    let r = read_punches(
        io::Cursor::new(load(&p).unwrap()),
        "punches.xlsx",
        chrono_tz::Asia::Shanghai,
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!(r.rows[0].1.time.to_rfc3339(), "2026-11-03T00:29:13+00:00");
}

#[test]
fn dates_outside_the_bounds_are_refused() {
    let csv = "employee_id,name,team,supervisor,start_date,end_date\nE1,a,b,c,1999-12-31,\nE2,a,b,c,2026-11-02,2026-11-01\nE3,a,b,c,2026-11-02,\n";
    let policy = crate::policy_file::parse_str(
        include_str!("../../config/policies/seed-default.toml"),
        "seed-default.toml",
    )
    .unwrap();
    let r = read_employees(csv.as_bytes(), "e.csv", &policy);
    assert_eq!(r.rows.len(), 1);
    assert_eq!(
        r.rows[0].1.start_date.map(|d| d.to_string()).as_deref(),
        Some("2026-11-02")
    );
    assert_eq!(r.errors.len(), 2);
    assert!(r.errors[0].message.contains("start_date"), "{:?}", r.errors);
    assert!(
        r.errors[1].message.contains("before start_date"),
        "{:?}",
        r.errors
    );
}

#[test]
fn missing_column_is_one_error_on_line_one() {
    let p = read_punches(
        "employee,when\nE1,x\n".as_bytes(),
        "p.csv",
        chrono_tz::Asia::Shanghai,
    );
    assert!(p.rows.is_empty());
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].line, 1);
    assert!(p.errors[0].message.contains("employee_id"));
}
