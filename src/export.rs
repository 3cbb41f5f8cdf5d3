//! HR exports of a month (`attendd export`, `GET /api/v1/months/{m}/export`):
//! CSV, one view per file, and an XLSX workbook with one sheet per view:
//! the daily grid (employees × dates, a status label per cell), the
//! deductions (every ledger entry, voided ones marked) and the scores.
//! Headers and status labels in English or Chinese (`--lang zh`).

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use crate::domain::Points;
use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::hr::MonthData;

/// Header language.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Chinese.
    Zh,
}

impl Lang {
    /// Parses `en` or `zh`.
    pub fn parse(s: &str) -> Result<Lang, String> {
        match s {
            "en" => Ok(Lang::En),
            "zh" => Ok(Lang::Zh),
            o => Err(format!("{o:?} is not en or zh")),
        }
    }

    fn pick<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }
}

/// One table of the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// One row per employee-day.
    Days,
    /// One row per ledger entry.
    Deductions,
    /// One row per employee: the monthly score.
    Scores,
}

impl View {
    /// Parses `days`, `deductions` or `scores`.
    pub fn parse(s: &str) -> Result<View, String> {
        match s {
            "days" => Ok(View::Days),
            "deductions" => Ok(View::Deductions),
            "scores" => Ok(View::Scores),
            o => Err(format!("{o:?} is not days, deductions or scores")),
        }
    }
}

/// The label of a status (迟到, 早退, 旷工 …).
pub fn status_label(status: &str, lang: Lang) -> &str {
    let (en, zh) = match status {
        "present" => ("present", "出勤"),
        "late" => ("late", "迟到"),
        "early_leave" => ("early leave", "早退"),
        "late_and_early" => ("late and early", "迟到早退"),
        "absent_half" => ("absent half day", "旷工半天"),
        "absent_full" => ("absent", "旷工"),
        "on_leave" => ("on leave", "请假"),
        "field" => ("field work", "外出"),
        "rest" => ("rest", "休息"),
        "holiday" => ("holiday", "节假日"),
        "not_employed" => ("not employed", "未在职"),
        "not_arrived" => ("not arrived yet", "尚未到岗"),
        "in_progress" => ("in progress", "在岗"),
        other => (other, other),
    };
    lang.pick(en, zh)
}

/// A cell: text or a number.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Text(String),
    Num(f64),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Num(n) => {
                if n.fract() == 0.0 {
                    format!("{n:.0}")
                } else {
                    format!("{n}")
                }
            }
        }
    }
}

fn t(s: impl Into<String>) -> Cell {
    Cell::Text(neutralise(s.into()))
}

/// Text a spreadsheet program would read as a formula (it starts with `=`,
/// `+`, `-`, `@`, a tab or a carriage return) gets a leading `'`, so that
/// a note such as `=HYPERLINK(…)` is shown, never run (OWASP "CSV
/// Injection"). Used for every text cell of the CSV and the workbook.
fn neutralise(s: String) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s
    }
}

fn n(p: Points) -> Cell {
    Cell::Num(p.as_f64())
}

fn names(d: &MonthData) -> std::collections::HashMap<&str, (&str, &str)> {
    d.employees
        .iter()
        .map(|e| (e.employee_id.as_str(), (e.name.as_str(), e.team.as_str())))
        .collect()
}

/// Header and rows of a view.
fn table(policy: &Policy, d: &MonthData, view: View, lang: Lang) -> (Vec<String>, Vec<Vec<Cell>>) {
    let l = |en: &str, zh: &str| lang.pick(en, zh).to_string();
    let who = names(d);
    match view {
        View::Days => {
            let head = vec![
                l("employee_id", "工号"),
                l("name", "姓名"),
                l("team", "班组"),
                l("date", "日期"),
                l("status", "状态"),
                l("check_in", "签到"),
                l("check_out", "签退"),
                l("late_minutes", "迟到分钟"),
                l("early_minutes", "早退分钟"),
                l("absence_days", "旷工天数"),
                l("points", "扣分"),
                l("provisional", "未结算"),
                l("overtime_minutes", "加班分钟"),
                l("flags", "提示"),
                l("policy", "考勤组"),
            ];
            let mut rows = Vec::new();
            for e in &d.employees {
                for (v, prov) in d.days.get(&e.employee_id).into_iter().flatten() {
                    rows.push(vec![
                        t(&e.employee_id),
                        t(&e.name),
                        t(&e.team),
                        t(v.date.to_string()),
                        t(status_label(v.status.as_str(), lang)),
                        t(v.check_in.map(|x| x.to_rfc3339()).unwrap_or_default()),
                        t(v.check_out.map(|x| x.to_rfc3339()).unwrap_or_default()),
                        Cell::Num(v.late_minutes as f64),
                        Cell::Num(v.early_minutes as f64),
                        n(v.absence_days),
                        n(v.points),
                        t(if *prov { lang.pick("yes", "是") } else { "" }),
                        Cell::Num(v.overtime_minutes as f64),
                        t(v.flags
                            .iter()
                            .map(|f| f.as_str())
                            .collect::<Vec<_>>()
                            .join(" ")),
                        t(d.policy_history.at(&e.employee_id, v.date)),
                    ]);
                }
            }
            (head, rows)
        }
        View::Deductions => {
            let head = vec![
                l("entry", "编号"),
                l("employee_id", "工号"),
                l("name", "姓名"),
                l("date", "日期"),
                l("category", "类别"),
                l("rule", "规则"),
                l("rule_label", "规则说明"),
                l("points", "分值"),
                l("kind", "类型"),
                l("source", "来源"),
                l("evidence", "依据"),
                l("recorded_by", "记录人"),
                l("voided", "已撤销"),
                l("void_cause", "撤销原因"),
            ];
            let rows = d
                .ledger
                .iter()
                .map(|e| {
                    let rule = policy.rules.get(e.rule.as_str());
                    let cat = policy.categories.iter().find(|c| *c.id == *e.category);
                    vec![
                        Cell::Num(e.id as f64),
                        t(&e.employee_id),
                        t(who.get(e.employee_id.as_str()).map_or("", |x| x.0)),
                        t(e.date.to_string()),
                        t(cat.map_or(e.category.clone(), |c| lang.pick(&c.en, &c.zh).to_string())),
                        t(&e.rule),
                        t(rule.map_or(String::new(), |r| lang.pick(&r.en, &r.zh).to_string())),
                        n(Points::from_hundredths(e.points)),
                        t(if e.bonus {
                            lang.pick("bonus", "加分")
                        } else {
                            lang.pick("deduction", "扣分")
                        }),
                        t(&e.source),
                        t(e.evidence.clone().unwrap_or_default()),
                        t(&e.recorded_by),
                        t(e.voided_at
                            .map(|x| to_local(policy.tz, x).to_rfc3339())
                            .unwrap_or_default()),
                        t(e.void_cause.clone().unwrap_or_default()),
                    ]
                })
                .collect();
            (head, rows)
        }
        View::Scores => {
            let mut head = vec![
                l("employee_id", "工号"),
                l("name", "姓名"),
                l("team", "班组"),
                l("month", "月份"),
                l("score", "得分"),
            ];
            for c in &policy.categories {
                head.push(format!(
                    "{} ({})",
                    lang.pick(&c.en, &c.zh),
                    l("deducted", "扣分")
                ));
            }
            head.extend([
                l("bonuses", "加分"),
                l("workdays", "应出勤天数"),
                l("absence_days", "旷工天数"),
                l("leave_days", "请假天数"),
                l("attendance_days", "实际出勤天数"),
                l("overtime_minutes", "加班分钟"),
                l("policy", "考勤组"),
            ]);
            let rows = d
                .scores
                .iter()
                .zip(&d.policy_labels)
                .map(|(s, label)| {
                    let (name, team) = who.get(s.employee_id.as_str()).copied().unwrap_or(("", ""));
                    let mut r = vec![
                        t(s.employee_id.as_str()),
                        t(name),
                        t(team),
                        t(&s.month),
                        n(s.score),
                    ];
                    for c in &policy.categories {
                        r.push(n(s
                            .categories
                            .get(&c.id)
                            .map_or(Points::ZERO, |x| x.capped)));
                    }
                    r.extend([
                        n(s.bonuses),
                        Cell::Num(f64::from(s.workdays)),
                        n(s.absence_days),
                        n(s.leave_days),
                        n(s.attendance_days),
                        Cell::Num(s.overtime_minutes as f64),
                        t(label),
                    ]);
                    r
                })
                .collect();
            (head, rows)
        }
    }
}

/// One view as CSV (UTF-8 with a byte-order mark, so spreadsheet programs
/// read the Chinese labels right).
pub fn csv(policy: &Policy, d: &MonthData, view: View, lang: Lang) -> Result<Vec<u8>, csv::Error> {
    let (head, rows) = table(policy, d, view, lang);
    let mut buf = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = csv::Writer::from_writer(&mut buf);
        w.write_record(&head)?;
        for r in rows {
            w.write_record(r.iter().map(Cell::text))?;
        }
        w.flush()?;
    }
    Ok(buf)
}

/// Sheet names.
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

/// The workbook: daily grid (employees × dates), deductions, scores.
pub fn xlsx(policy: &Policy, d: &MonthData, lang: Lang) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();

    // Daily grid.
    let ws = wb.add_worksheet();
    ws.set_name(sheet_name(View::Days, lang))?;
    let (from, to) = d.bounds;
    let fixed = [
        lang.pick("employee_id", "工号"),
        lang.pick("name", "姓名"),
        lang.pick("team", "班组"),
    ];
    for (c, h) in fixed.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    let dates: Vec<chrono::NaiveDate> = from.iter_days().take_while(|x| *x <= to).collect();
    for (i, day) in dates.iter().enumerate() {
        ws.write_string_with_format(0, (3 + i) as u16, day.to_string(), &bold)?;
    }
    for (r, e) in d.employees.iter().enumerate() {
        let row = (r + 1) as u32;
        ws.write_string(row, 0, neutralise(e.employee_id.clone()))?;
        ws.write_string(row, 1, neutralise(e.name.clone()))?;
        ws.write_string(row, 2, neutralise(e.team.clone()))?;
        for (v, _) in d.days.get(&e.employee_id).into_iter().flatten() {
            if let Some(i) = dates.iter().position(|x| *x == v.date) {
                ws.write_string(row, (3 + i) as u16, status_label(v.status.as_str(), lang))?;
            }
        }
    }
    ws.set_freeze_panes(1, 3)?;

    for view in [View::Deductions, View::Scores] {
        let (head, rows) = table(policy, d, view, lang);
        let ws = wb.add_worksheet();
        ws.set_name(sheet_name(view, lang))?;
        for (c, h) in head.iter().enumerate() {
            ws.write_string_with_format(0, c as u16, h, &bold)?;
        }
        for (r, cells) in rows.iter().enumerate() {
            for (c, cell) in cells.iter().enumerate() {
                match cell {
                    Cell::Text(s) => ws.write_string((r + 1) as u32, c as u16, s)?,
                    Cell::Num(x) => ws.write_number((r + 1) as u32, c as u16, *x)?,
                };
            }
        }
        ws.set_freeze_panes(1, 0)?;
    }
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
    let bold = Format::new().set_bold();
    let ws = wb.add_worksheet();
    ws.set_name(lang.pick("Year results", "年度考核"))?;
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
    for (c, h) in head.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, h, &bold)?;
    }
    for (r, y) in rows.iter().enumerate() {
        let row = (r + 1) as u32;
        ws.write_string(row, 0, neutralise(y.employee_id.clone()))?;
        ws.write_string(row, 1, neutralise(y.name.clone()))?;
        ws.write_string(row, 2, neutralise(y.team.clone()))?;
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
        ws.write_string(row, c + 2, y.flags.join(";"))?;
    }
    ws.set_freeze_panes(1, 3)?;
    wb.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: a note starting with `=`, `+`, `-` or `@` was written raw.
    #[test]
    fn formulas_are_neutralised() {
        for (raw, want) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1+1", "'+1+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("jeans", "jeans"),
            ("a=b", "a=b"),
        ] {
            assert_eq!(t(raw), Cell::Text(want.into()), "{raw}");
        }
    }
}
