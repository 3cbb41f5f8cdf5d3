//! The month's and the year's workbooks, made to be printed and filtered
//! without fixing anything by hand (issue 17): real dates and times, column
//! widths that fit their text (Chinese characters count double), landscape
//! A4 fitted to one page wide with the header rows and the ID and name
//! columns repeated on every page, an autofilter over each table, status
//! colours with a legend, a weekday row, weekends and holidays shaded,
//! totals per person, and every label in the workbook's language.
//!
//! The month's sheets keep their names and first columns (interfaces.md,
//! "HR export"); new columns are appended.

use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Weekday};
use rust_xlsxwriter::{Color, Format, FormatAlign, FormatBorder, Workbook, Worksheet, XlsxError};

use super::{Cell, Lang, View, neutralise, status_label, table};
use crate::domain::Points;
use crate::domain::policy::Policy;
use crate::hr::MonthData;

/// Sheet names (fixed: scripts open the sheets by name).
fn sheet_name(view: View, lang: Lang) -> &'static str {
    match (view, lang) {
        (View::Days, Lang::En) => "Daily grid",
        (View::Days, Lang::Zh) => "每日考勤",
        (View::Deductions, Lang::En) => "Deductions",
        (View::Deductions, Lang::Zh) => "扣分明细",
        (View::Scores, Lang::En) => "Scores",
        (View::Scores, Lang::Zh) => "月度考核得分",
    }
}

/// Paper size 9: A4 (the ECMA-376 numbering `rust_xlsxwriter` takes).
const A4: u8 = 9;

/// Excel's day 0 (1899-12-30, so that serial 61 is 1900-03-01).
fn excel_epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1899, 12, 30).unwrap_or_default()
}

/// A date or time as an Excel serial number, `None` outside what Excel
/// shows as a date (before 1900-03-01 or after 9999-12-31); such a value
/// is written as text instead.
fn serial(at: NaiveDateTime) -> Option<f64> {
    let d = at.signed_duration_since(excel_epoch().and_hms_opt(0, 0, 0)?);
    let days = d.num_seconds() as f64 / 86_400.0;
    (61.0..2_958_466.0).contains(&days).then_some(days)
}

fn serial_date(d: NaiveDate) -> Option<f64> {
    serial(d.and_hms_opt(0, 0, 0)?)
}

/// Width of a text in Excel's column units: a Chinese, Japanese or Korean
/// character (or a full-width form) counts two.
fn text_width(s: &str) -> f64 {
    s.lines()
        .map(|l| {
            l.chars()
                .map(|c| if (c as u32) >= 0x2E80 { 2.0 } else { 1.0 })
                .sum::<f64>()
        })
        .fold(0.0, f64::max)
}

/// Column widths that fit the widest cell, within `[min, max]` (longer
/// text wraps).
#[derive(Default)]
struct Widths(Vec<f64>);

impl Widths {
    fn see(&mut self, col: usize, text: &str) {
        if self.0.len() <= col {
            self.0.resize(col + 1, 0.0);
        }
        self.0[col] = self.0[col].max(text_width(text));
    }

    fn apply(&self, ws: &mut Worksheet, min: f64, max: f64) -> Result<(), XlsxError> {
        for (c, w) in self.0.iter().enumerate() {
            ws.set_column_width(c as u16, (w + 2.0).clamp(min, max))?;
        }
        Ok(())
    }
}

/// The shared print setup: A4 landscape, one page wide (as many pages
/// tall as needed), `rows` and `cols` repeated on every page, gridlines,
/// a title and page numbers.
fn print_setup(
    ws: &mut Worksheet,
    title: &str,
    rows: (u32, u32),
    cols: Option<(u16, u16)>,
    lang: Lang,
) -> Result<(), XlsxError> {
    ws.set_paper_size(A4)
        .set_landscape()
        .set_print_fit_to_pages(1, 0)
        .set_print_gridlines(true)
        .set_print_center_horizontally(true)
        .set_margins(0.4, 0.4, 0.6, 0.6, 0.3, 0.3);
    ws.set_repeat_rows(rows.0, rows.1)?;
    if let Some((a, b)) = cols {
        ws.set_repeat_columns(a, b)?;
    }
    // `&` starts a code in a header; the title is the daemon's own text.
    ws.set_header(format!("&L&\"-,Bold\"{}", title.replace('&', "&&")));
    ws.set_footer(lang.pick("&CPage &P of &N", "&C第 &P 页，共 &N 页"));
    Ok(())
}

/// Formats shared by the sheets.
struct Formats {
    head: Format,
    date: Format,
    stamp: Format,
    month: Format,
    wrap: Format,
    section: Format,
}

impl Formats {
    fn new() -> Formats {
        let head = Format::new()
            .set_bold()
            .set_text_wrap()
            .set_align(FormatAlign::Center)
            .set_align(FormatAlign::VerticalCenter)
            .set_background_color(Color::RGB(0xD9E1F2))
            .set_border(FormatBorder::Thin);
        Formats {
            head,
            date: Format::new().set_num_format("yyyy-mm-dd"),
            stamp: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            month: Format::new().set_num_format("yyyy-mm"),
            wrap: Format::new().set_text_wrap().set_align(FormatAlign::Top),
            section: Format::new().set_bold().set_font_size(12),
        }
    }
}

/// Writes a cell of a table; returns the text its width is measured by.
fn put(
    ws: &mut Worksheet,
    f: &Formats,
    row: u32,
    col: u16,
    cell: &Cell,
    wrap: bool,
) -> Result<String, XlsxError> {
    Ok(match cell {
        Cell::Text(s) => {
            if wrap {
                ws.write_string_with_format(row, col, s, &f.wrap)?;
            } else {
                ws.write_string(row, col, s)?;
            }
            s.clone()
        }
        Cell::Num(x) => {
            ws.write_number(row, col, *x)?;
            cell.text()
        }
        Cell::Date(d) => match serial_date(*d) {
            Some(x) => {
                ws.write_number_with_format(row, col, x, &f.date)?;
                "2026-11-02".into()
            }
            None => {
                ws.write_string(row, col, d.to_string())?;
                d.to_string()
            }
        },
        Cell::Stamp { text, at } => match serial(*at) {
            Some(x) => {
                ws.write_number_with_format(row, col, x, &f.stamp)?;
                "2026-11-02 08:00:00".into()
            }
            None => {
                ws.write_string(row, col, text)?;
                text.clone()
            }
        },
        Cell::Month { text, first } => match serial_date(*first) {
            Some(x) => {
                ws.write_number_with_format(row, col, x, &f.month)?;
                "2026-11".into()
            }
            None => {
                ws.write_string(row, col, text)?;
                text.clone()
            }
        },
    })
}

/// Fill colour of a status in the grid and the legend.
fn status_colour(status: &str) -> Option<u32> {
    Some(match status {
        "present" => 0xE2EFDA,
        "late" | "early_leave" => 0xFFE699,
        "late_and_early" => 0xF4B183,
        "absent_half" => 0xF8CBAD,
        "absent_full" => 0xFF7C80,
        "on_leave" => 0xDDEBF7,
        "field" => 0xB4DEC8,
        "rest" => 0xEDEDED,
        "holiday" => 0xE4DFEC,
        "not_employed" => 0xBFBFBF,
        "not_arrived" | "in_progress" => 0xFFFFFF,
        _ => return None,
    })
}

/// Every status, in the legend's order.
const STATUSES: [&str; 13] = [
    "present",
    "late",
    "early_leave",
    "late_and_early",
    "absent_half",
    "absent_full",
    "on_leave",
    "field",
    "rest",
    "holiday",
    "not_employed",
    "not_arrived",
    "in_progress",
];

/// Header shading of a date column.
const WEEKEND: u32 = 0xBFBFBF;
const HOLIDAY: u32 = 0xC9B8E0;
const MAKE_UP: u32 = 0xFCE4D6;

fn weekday_label(d: NaiveDate, lang: Lang) -> &'static str {
    let (en, zh) = match d.weekday() {
        Weekday::Mon => ("Mon", "一"),
        Weekday::Tue => ("Tue", "二"),
        Weekday::Wed => ("Wed", "三"),
        Weekday::Thu => ("Thu", "四"),
        Weekday::Fri => ("Fri", "五"),
        Weekday::Sat => ("Sat", "六"),
        Weekday::Sun => ("Sun", "日"),
    };
    lang.pick(en, zh)
}

/// What a date is for the site, from the verdicts of that date: a holiday
/// when anyone's day is a holiday, a make-up workday when a Saturday or
/// Sunday is worked by a shift, else a weekend or a workday.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DayKind {
    Workday,
    Weekend,
    Holiday,
    MakeUp,
}

fn day_kinds(d: &MonthData, dates: &[NaiveDate]) -> Vec<DayKind> {
    dates
        .iter()
        .map(|date| {
            let statuses: BTreeSet<&str> = d
                .days
                .values()
                .flatten()
                .filter(|(v, _)| v.date == *date)
                .map(|(v, _)| v.status.as_str())
                .collect();
            let weekend = matches!(date.weekday(), Weekday::Sat | Weekday::Sun);
            let worked = statuses
                .iter()
                .any(|s| !matches!(*s, "rest" | "holiday" | "not_employed"));
            if statuses.contains("holiday") {
                DayKind::Holiday
            } else if weekend && worked {
                DayKind::MakeUp
            } else if weekend {
                DayKind::Weekend
            } else {
                DayKind::Workday
            }
        })
        .collect()
}

/// Totals per person in the grid, from the days it shows.
#[derive(Default)]
struct Totals {
    late: u32,
    late_minutes: i64,
    early: u32,
    early_minutes: i64,
    absence_days: Points,
    leave_days: Points,
    overtime_minutes: i64,
    points: Points,
}

fn total_heads(lang: Lang) -> [&'static str; 8] {
    [
        lang.pick("late (times)", "迟到次数"),
        lang.pick("late minutes", "迟到分钟"),
        lang.pick("early leave (times)", "早退次数"),
        lang.pick("early minutes", "早退分钟"),
        lang.pick("absence days", "旷工天数"),
        lang.pick("leave days", "请假天数"),
        lang.pick("overtime minutes", "加班分钟"),
        lang.pick("attendance points", "考勤扣分"),
    ]
}

impl Totals {
    fn values(&self) -> [f64; 8] {
        [
            f64::from(self.late),
            self.late_minutes as f64,
            f64::from(self.early),
            self.early_minutes as f64,
            self.absence_days.as_f64(),
            self.leave_days.as_f64(),
            self.overtime_minutes as f64,
            self.points.as_f64(),
        ]
    }
}

/// The daily grid: employees × dates, a coloured status label per cell, a
/// weekday row under the dates, weekends and holidays shaded in the
/// header, the person's totals after the dates, and the legend below.
fn grid(wb: &mut Workbook, f: &Formats, d: &MonthData, lang: Lang) -> Result<(), XlsxError> {
    let ws = wb.add_worksheet();
    ws.set_name(sheet_name(View::Days, lang))?;
    let (from, to) = d.bounds;
    let dates: Vec<NaiveDate> = from.iter_days().take_while(|x| *x <= to).collect();
    let kinds = day_kinds(d, &dates);
    let fixed = [
        lang.pick("employee_id", "工号"),
        lang.pick("name", "姓名"),
        lang.pick("team", "班组"),
    ];
    let first_date: u16 = 3;
    let first_total = first_date + dates.len() as u16;
    let totals_head = total_heads(lang);
    let last_col = first_total + totals_head.len() as u16 - 1;

    let head_of = |kind: DayKind| day_head(f, kind);

    // Header: fixed labels, real dates (shown as month-day), totals.
    let mut widths = Widths::default();
    for (c, h) in fixed.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &f.head)?;
        ws.write_blank(1, c as u16, &f.head)?;
        widths.see(c, h);
    }
    for (i, (day, kind)) in dates.iter().zip(&kinds).enumerate() {
        let col = first_date + i as u16;
        let head = head_of(*kind);
        match serial_date(*day) {
            Some(x) => {
                ws.write_number_with_format(0, col, x, &head.clone().set_num_format("mm-dd"))?
            }
            None => ws.write_string_with_format(0, col, day.to_string(), &head)?,
        };
        ws.write_string_with_format(1, col, weekday_label(*day, lang), &head)?;
    }
    for (i, h) in totals_head.iter().enumerate() {
        ws.write_string_with_format(0, first_total + i as u16, *h, &f.head)?;
        ws.write_blank(1, first_total + i as u16, &f.head)?;
    }

    let cell_format = status_format;
    let middle = Format::new().set_align(FormatAlign::VerticalCenter);
    // The widest label the month uses: one line when it is short (the
    // Chinese labels), else two lines (`absent half day`).
    let label_width = d
        .days
        .values()
        .flatten()
        .map(|(v, _)| text_width(status_label(v.status.as_str(), lang)))
        .fold(4.0, f64::max);
    let one_line = label_width <= 9.0;
    let (date_width, row_height) = if one_line {
        (label_width + 1.0, 18.0)
    } else {
        ((label_width / 2.0).ceil() + 3.0, 30.0)
    };
    let first_row: u32 = 2;
    for (r, e) in d.employees.iter().enumerate() {
        let row = first_row + r as u32;
        for (c, s) in [&e.employee_id, &e.name, &e.team].into_iter().enumerate() {
            let s = neutralise(s.clone());
            widths.see(c, &s);
            ws.write_string_with_format(row, c as u16, s, &middle)?;
        }
        let mut tot = Totals::default();
        for (v, _) in d.days.get(&e.employee_id).into_iter().flatten() {
            let st = v.status.as_str();
            if matches!(st, "late" | "late_and_early") {
                tot.late += 1;
            }
            if matches!(st, "early_leave" | "late_and_early") {
                tot.early += 1;
            }
            tot.late_minutes += v.late_minutes;
            tot.early_minutes += v.early_minutes;
            tot.absence_days += v.absence_days;
            tot.leave_days += v.leave_days;
            tot.overtime_minutes += v.overtime_minutes;
            tot.points += v.points;
            if let Some(i) = dates.iter().position(|x| *x == v.date) {
                let label = status_label(st, lang);
                ws.write_string_with_format(row, first_date + i as u16, label, &cell_format(st))?;
            }
        }
        for (i, x) in tot.values().into_iter().enumerate() {
            ws.write_number_with_format(row, first_total + i as u16, x, &middle)?;
        }
        ws.set_row_height(row, row_height)?;
    }
    let last_row = first_row + d.employees.len().max(1) as u32 - 1;

    // Widths: names and ids fit; a date column fits its longest label;
    // totals fit their header on two lines.
    widths.apply(ws, 6.0, 30.0)?;
    for i in 0..dates.len() {
        ws.set_column_width(first_date + i as u16, date_width.max(6.0))?;
    }
    for (i, h) in totals_head.iter().enumerate() {
        let w = (text_width(h) / 2.0).ceil() + 2.0;
        ws.set_column_width(first_total + i as u16, w.max(7.0))?;
    }
    ws.set_row_height(0, 30)?;

    grid_legend(ws, f, lang, last_row + 2, first_date, dates.len().max(1))?;

    ws.set_freeze_panes(first_row, first_date)?;
    ws.autofilter(1, 0, last_row, last_col)?;
    let title = format!("{} {}", lang.pick("Attendance", "考勤表"), d.month);
    print_setup(ws, &title, (0, 1), Some((0, 2)), lang)?;
    Ok(())
}

/// A header cell's format for a day of `kind`: weekends, holidays and
/// make-up workdays shaded.
fn day_head(f: &Formats, kind: DayKind) -> Format {
    let shade = match kind {
        DayKind::Workday => None,
        DayKind::Weekend => Some(WEEKEND),
        DayKind::Holiday => Some(HOLIDAY),
        DayKind::MakeUp => Some(MAKE_UP),
    };
    match shade {
        Some(c) => f.head.clone().set_background_color(Color::RGB(c)),
        None => f.head.clone(),
    }
}

/// One format per status: its colour, centred, wrapped; provisional ones
/// in italics.
fn status_format(status: &str) -> Format {
    let base = Format::new()
        .set_text_wrap()
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
        .set_border(FormatBorder::Thin)
        .set_border_color(Color::RGB(0xA6A6A6));
    let base = if matches!(status, "not_arrived" | "in_progress") {
        base.set_italic()
    } else {
        base
    };
    match status_colour(status) {
        Some(c) => base.set_background_color(Color::RGB(c)),
        None => base,
    }
}

/// The grid's legend from `legend_row` on, `per_row` items a row from the
/// first date column: the status colours, then the header shades; a note
/// on the totals below.
fn grid_legend(
    ws: &mut Worksheet,
    f: &Formats,
    lang: Lang,
    legend_row: u32,
    first_date: u16,
    per_row: usize,
) -> Result<(), XlsxError> {
    // Legend, under the grid: the status colours, then the header shades.
    ws.write_string_with_format(legend_row, 0, lang.pick("Legend", "图例"), &f.section)?;
    let mut items: Vec<(String, Format)> = STATUSES
        .iter()
        .map(|s| (status_label(s, lang).to_string(), status_format(s)))
        .collect();
    for (kind, en, zh) in [
        (DayKind::Weekend, "weekend (header)", "周末(表头)"),
        (DayKind::Holiday, "holiday (header)", "节假日(表头)"),
        (
            DayKind::MakeUp,
            "make-up workday (header)",
            "调休上班(表头)",
        ),
    ] {
        items.push((lang.pick(en, zh).to_string(), day_head(f, kind)));
    }
    for (i, (label, fmt)) in items.iter().enumerate() {
        let row = legend_row + (i / per_row) as u32;
        let col = first_date + (i % per_row) as u16;
        ws.write_string_with_format(row, col, label, fmt)?;
        ws.set_row_height(row, 30.0)?;
    }
    let notes_row = legend_row + items.len().div_ceil(per_row) as u32 + 1;
    ws.write_string(
        notes_row,
        0,
        lang.pick(
            "Totals count the days shown in the grid (closed and provisional); the score is on the Scores sheet.",
            "合计按本表所列日期统计(含未结算日)；月度得分见“月度考核得分”表。",
        ),
    )?;

    Ok(())
}

/// A table sheet (deductions, scores): typed cells, widths, autofilter,
/// print setup. `split` puts the rows it picks after the others, apart,
/// under its title (voided ledger entries), and names each row's state in
/// an appended column.
struct TableSheet<'a> {
    view: View,
    head: Vec<String>,
    rows: Vec<Vec<Cell>>,
    /// Columns whose text wraps (clause, evidence, cause), up to 40 wide.
    wrap: &'a [usize],
    /// Columns repeated on every printed page.
    title_cols: (u16, u16),
    split: Option<Split>,
}

struct Split {
    /// Per row: true when it goes apart.
    apart: Vec<bool>,
    title: String,
    status_head: String,
    live: String,
    gone: String,
}

fn table_sheet(
    wb: &mut Workbook,
    f: &Formats,
    t: TableSheet<'_>,
    month: &str,
    lang: Lang,
) -> Result<(), XlsxError> {
    let ws = wb.add_worksheet();
    let name = sheet_name(t.view, lang);
    ws.set_name(name)?;
    let mut head = t.head;
    if let Some(s) = &t.split {
        head.push(s.status_head.clone());
    }
    let mut widths = Widths::default();
    for (c, h) in head.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &f.head)?;
        // A header wraps over two lines at most.
        widths.see(
            c,
            &h.chars()
                .take(h.chars().count().div_ceil(2) + 1)
                .collect::<String>(),
        );
    }
    let mut order: Vec<(usize, bool)> = (0..t.rows.len())
        .map(|i| {
            (
                i,
                t.split
                    .as_ref()
                    .is_some_and(|s| s.apart.get(i) == Some(&true)),
            )
        })
        .collect();
    order.sort_by_key(|(i, apart)| (*apart, *i));
    let live = order.iter().filter(|(_, a)| !a).count() as u32;
    let mut row: u32 = 1;
    let mut wrote_title = false;
    for (i, apart) in order {
        if apart && !wrote_title {
            if let Some(s) = &t.split {
                row += 1;
                ws.write_string_with_format(row, 0, &s.title, &f.section)?;
                row += 1;
            }
            wrote_title = true;
        }
        let cells = &t.rows[i];
        for (c, cell) in cells.iter().enumerate() {
            let text = put(ws, f, row, c as u16, cell, t.wrap.contains(&c))?;
            widths.see(c, &text);
        }
        if let Some(s) = &t.split {
            let state = if apart { &s.gone } else { &s.live };
            ws.write_string(row, cells.len() as u16, state)?;
            widths.see(cells.len(), state);
        }
        row += 1;
    }
    widths.apply(ws, 6.0, 24.0)?;
    for c in t.wrap {
        let w = widths.0.get(*c).copied().unwrap_or(0.0);
        ws.set_column_width(*c as u16, (w + 2.0).clamp(10.0, 40.0))?;
    }
    ws.set_row_height(0, 30)?;
    ws.set_freeze_panes(1, 0)?;
    let last_col = head.len().max(1) as u16 - 1;
    ws.autofilter(0, 0, live.max(1), last_col)?;
    let title = format!("{name} {month}");
    print_setup(ws, &title, (0, 0), Some(t.title_cols), lang)?;
    Ok(())
}

/// The month's workbook: daily grid, deductions (voided entries apart,
/// after the live ones), scores.
pub fn xlsx(policy: &Policy, d: &MonthData, lang: Lang) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let f = Formats::new();
    grid(&mut wb, &f, d, lang)?;

    let (head, rows) = table(policy, d, View::Deductions, lang);
    let apart = d.ledger.iter().map(|e| e.voided_at.is_some()).collect();
    table_sheet(
        &mut wb,
        &f,
        TableSheet {
            view: View::Deductions,
            head,
            rows,
            wrap: &[5, 10, 13],
            title_cols: (0, 2),
            split: Some(Split {
                apart,
                title: lang
                    .pick(
                        "Voided entries (not counted in the scores)",
                        "已撤销的记录(不计入得分)",
                    )
                    .into(),
                status_head: lang.pick("status", "状态").into(),
                live: lang.pick("counted", "有效").into(),
                gone: lang.pick("voided", "已撤销").into(),
            }),
        },
        &d.month,
        lang,
    )?;

    let (head, rows) = table(policy, d, View::Scores, lang);
    table_sheet(
        &mut wb,
        &f,
        TableSheet {
            view: View::Scores,
            head,
            rows,
            wrap: &[],
            title_cols: (0, 1),
            split: None,
        },
        &d.month,
        lang,
    )?;
    wb.save_to_buffer()
}

/// A year's results as a workbook (`attendd export --year`): one row per
/// employee with each month's score (blank for a month without workdays),
/// the year score, failed, and flags (坐席员考核细则 一(九)(十)).
pub fn year_xlsx(
    policy: &Policy,
    year: i32,
    rows: &[crate::hr::year::YearResult],
    lang: Lang,
) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let f = Formats::new();
    let ws = wb.add_worksheet();
    let name = lang.pick("Year results", "年度考核");
    ws.set_name(name)?;
    let mut head: Vec<String> = [
        lang.pick("employee_id", "工号"),
        lang.pick("name", "姓名"),
        lang.pick("team", "班组"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let months: Vec<String> = (1..=12).map(|m| format!("{year:04}-{m:02}")).collect();
    head.extend(months.iter().cloned());
    head.push(lang.pick("score", "年度得分").into());
    head.push(format!(
        "{} ({})",
        lang.pick("failed", "不及格"),
        policy.hr.pass_mark
    ));
    head.push(lang.pick("flags", "标记").into());
    let mut widths = Widths::default();
    for (c, h) in head.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &f.head)?;
        widths.see(c, h);
    }
    for (r, y) in rows.iter().enumerate() {
        let row = (r + 1) as u32;
        for (c, s) in [&y.employee_id, &y.name, &y.team].into_iter().enumerate() {
            let s = neutralise(s.clone());
            widths.see(c, &s);
            ws.write_string(row, c as u16, s)?;
        }
        for m in &y.months {
            if let Some(i) = months.iter().position(|x| *x == m.month) {
                ws.write_number(row, (3 + i) as u16, m.score.as_f64())?;
            }
        }
        let c = 3 + months.len() as u16;
        if let Some(s) = y.score {
            ws.write_number(row, c, s.as_f64())?;
        }
        ws.write_string(
            row,
            c + 1,
            if y.failed {
                lang.pick("yes", "是")
            } else {
                lang.pick("no", "否")
            },
        )?;
        let flags = y
            .flags
            .iter()
            .map(|x| super::flag_label(x, lang))
            .collect::<Vec<_>>()
            .join(lang.pick(";", "、"));
        widths.see(c as usize + 2, &flags);
        ws.write_string(row, c + 2, flags)?;
    }
    widths.apply(ws, 8.0, 40.0)?;
    ws.set_row_height(0, 30)?;
    ws.set_freeze_panes(1, 3)?;
    ws.autofilter(0, 0, rows.len().max(1) as u32, head.len() as u16 - 1)?;
    print_setup(ws, &format!("{name} {year}"), (0, 0), Some((0, 2)), lang)?;
    wb.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/policies/seed-default.toml"
        );
        crate::policy_file::load(std::path::Path::new(p)).expect("seed policy")
    }

    fn month(first: NaiveDate, last: NaiveDate) -> MonthData {
        MonthData {
            month: first.format("%Y-%m").to_string(),
            bounds: (first, last),
            employees: Vec::new(),
            days: Default::default(),
            ledger: Vec::new(),
            scores: Vec::new(),
            policy_labels: Vec::new(),
            policy_history: Default::default(),
            published_at: None,
        }
    }

    /// A month without anyone still makes a workbook, in both languages,
    /// and so does a month Excel cannot show as dates (written as text).
    #[test]
    fn empty_and_out_of_range_months_make_workbooks() {
        let p = policy();
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default();
        for m in [
            month(d(2026, 2, 1), d(2026, 2, 28)),
            month(d(1800, 1, 1), d(1800, 1, 31)),
        ] {
            for lang in [Lang::En, Lang::Zh] {
                let x = xlsx(&p, &m, lang);
                assert!(x.is_ok(), "{}: {x:?}", m.month);
            }
        }
        assert_eq!(serial_date(d(1800, 1, 1)), None);
        assert_eq!(serial_date(d(2026, 11, 2)), Some(46328.0));
        assert_eq!(
            serial(d(2026, 11, 2).and_hms_opt(12, 0, 0).unwrap_or_default()),
            Some(46328.5)
        );
    }

    #[test]
    fn chinese_characters_count_double() {
        assert_eq!(text_width("E001"), 4.0);
        assert_eq!(text_width("旷工半天"), 8.0);
        assert_eq!(text_width("周末(表头)"), 10.0);
    }
}
