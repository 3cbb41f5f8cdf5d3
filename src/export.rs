//! HR exports of a month (`attendd export`, `GET /api/v1/months/{m}/export`):
//! CSV, one view per file, and an XLSX workbook with one sheet per view:
//! the daily grid (employees × dates, a status label per cell), the
//! deductions (every ledger entry, voided ones marked) and the scores.
//! Headers and every label (statuses, flags, rules, sources, evidence,
//! void causes) in English or Chinese (`--lang zh`). The workbook itself
//! (typed dates, widths, print setup, colours, totals) is in [`workbook`].

use chrono::{NaiveDate, NaiveDateTime, SecondsFormat};

use crate::domain::Points;
use crate::domain::policy::Policy;
use crate::domain::time::to_local;
use crate::hr::MonthData;

mod workbook;

pub use workbook::{xlsx, year_xlsx};

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

/// The label of a flag (缺签到卡 …); the dashboard shows the same labels
/// (its `FLAGS` table; a unit test keeps the two equal).
pub fn flag_label(flag: &str, lang: Lang) -> &str {
    let (en, zh) = match flag {
        "missing_check_in" => ("missing check-in", "缺签到卡"),
        "missing_check_out" => ("missing check-out", "缺签退卡"),
        "partial_leave" => ("on leave for part of the shift", "部分时段请假"),
        "partial_field" => ("field work for part of the shift", "部分时段外出"),
        "unpaired_punch" => (
            "mid-shift punch without its partner (left or returned)",
            "离岗/返岗打卡不成对",
        ),
        "leave_short_notice" => ("leave asked less than a day ahead", "未提前一天请假"),
        "sick_leave_no_certificate" => ("sick leave without a certificate", "病假未提供病假证明"),
        "sick_leave_needs_hospital_record" => (
            "long sick leave without a hospital record",
            "病假超过规定天数未提供医院病历证明",
        ),
        "possible_shift_swap" => (
            "possible shift swap: punches fit another shift",
            "疑似擅自换班(打卡符合其他班次)",
        ),
        "failed_two_consecutive_years" => ("failed two consecutive years", "连续两年考核不及格"),
        other => (other, other),
    };
    lang.pick(en, zh)
}

/// A policy group's id for the export: the default group is named in the
/// export's language; a site's own group ids are kept as written.
fn group_label(id: &str, lang: Lang) -> &str {
    match (id, lang) {
        (crate::policy_file::DEFAULT_GROUP, Lang::Zh) => "默认",
        (other, _) => other,
    }
}

/// The label of a ledger entry's source (`device`, `manual`).
pub fn source_label(source: &str, lang: Lang) -> &str {
    match (source, lang) {
        ("device", Lang::Zh) => "考勤机",
        ("manual", Lang::Zh) => "人工录入",
        (other, _) => other,
    }
}

/// A device entry's evidence (`punches 2026-11-02T08:46:10+08:00,…` or
/// `no punch`) as the clerk reads it: the punch times of the day
/// (`08:46:10, 17:31:02`; a punch on another day keeps its date). A manual
/// entry's evidence is the note, kept as written.
fn evidence_label(source: &str, evidence: &str, date: NaiveDate, lang: Lang) -> String {
    if source != "device" {
        return evidence.to_string();
    }
    if evidence == "no punch" {
        return lang.pick("no punch", "无打卡记录").to_string();
    }
    let Some(list) = evidence.strip_prefix("punches ") else {
        return evidence.to_string();
    };
    let times: Vec<String> = list
        .split(',')
        .map(|p| match chrono::DateTime::parse_from_rfc3339(p.trim()) {
            Ok(t) if t.date_naive() == date => t.format("%H:%M:%S").to_string(),
            Ok(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            Err(_) => p.trim().to_string(),
        })
        .collect();
    format!("{} {}", lang.pick("punches", "打卡"), times.join(", "))
}

/// Why an entry was voided, in the workbook's language: the causes the
/// daemon writes (`appeal 3 upheld`, `correction (补卡) for E003`,
/// `day close`, …) with their words translated and their ids kept.
fn cause_label(cause: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return cause.to_string();
    }
    const WORDS: [(&str, &str); 14] = [
        ("correction (补卡) for ", "补卡: "),
        ("correction ", "补卡 #"),
        ("; override by ", "; 超限批准: "),
        ("(beyond: ", "(超出: "),
        ("(within the limits)", "(未超限)"),
        ("appeal against ledger entry ", "申诉扣分记录 #"),
        ("upheld", "成立"),
        ("appeal ", "申诉 #"),
        ("punches received", "收到新打卡"),
        ("punches supersede: ", "打卡被更正: "),
        ("quarantine replay", "隔离打卡重放"),
        ("adjustment ", "调整 #"),
        ("day close", "日结"),
        ("recompute", "重新计算"),
    ];
    let mut out = cause.to_string();
    for (en, zh) in WORDS {
        out = out.replace(en, zh);
    }
    out.replace(" applied", " 已生效")
}

/// The seed clauses a rule's `seed` cites (`坐席员考核细则 二(二)2`), for
/// the Chinese workbook: the policy's English remarks in parentheses and
/// the text after a `:` are left out; `None` when nothing Chinese is left.
fn clause(seed: &str) -> Option<String> {
    let mut plain = String::new();
    let mut group: Option<String> = None;
    for c in seed.chars() {
        match (c, &mut group) {
            ('(', None) => group = Some(String::from("(")),
            (')', Some(g)) => {
                g.push(')');
                if !g.chars().any(|x| x.is_ascii_alphabetic()) {
                    plain.push_str(g);
                }
                group = None;
            }
            (c, Some(g)) => g.push(c),
            (c, None) => plain.push(c),
        }
    }
    let parts: Vec<&str> = plain
        .split(';')
        .map(|p| p.split(':').next().unwrap_or_default().trim())
        .filter(|p| !p.is_empty() && !p.chars().any(|x| x.is_ascii_alphabetic()))
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A cell: text, a number, or a date or time that the CSV writes as text
/// (as it always has) and the workbook as a real date.
#[derive(Clone, Debug, PartialEq)]
enum Cell {
    Text(String),
    Num(f64),
    /// A calendar date (`2026-11-02` in the CSV).
    Date(NaiveDate),
    /// A local time; `text` is the CSV's RFC 3339 form.
    Stamp {
        text: String,
        at: NaiveDateTime,
    },
    /// A month (`2026-11` in the CSV), its first day in the workbook.
    Month {
        text: String,
        first: NaiveDate,
    },
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Date(d) => d.to_string(),
            Cell::Stamp { text, .. } | Cell::Month { text, .. } => text.clone(),
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
    match view {
        View::Days => days_table(d, lang),
        View::Deductions => deductions_table(policy, d, lang),
        View::Scores => scores_table(policy, d, lang),
    }
}

/// One row per employee-day.
fn days_table(d: &MonthData, lang: Lang) -> (Vec<String>, Vec<Vec<Cell>>) {
    let l = |en: &str, zh: &str| lang.pick(en, zh).to_string();
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
                    .map(|f| match lang {
                        // English keeps the ids (what scripts match).
                        Lang::En => f.as_str(),
                        Lang::Zh => flag_label(f.as_str(), lang),
                    })
                    .collect::<Vec<_>>()
                    .join(lang.pick(" ", "、"))),
                t(group_label(
                    d.policy_history.at(&e.employee_id, v.date),
                    lang,
                )),
            ]);
        }
    }
    (head, rows)
}

/// One row per ledger entry, voided ones included.
fn deductions_table(policy: &Policy, d: &MonthData, lang: Lang) -> (Vec<String>, Vec<Vec<Cell>>) {
    let l = |en: &str, zh: &str| lang.pick(en, zh).to_string();
    let who = names(d);
    let head = vec![
        l("entry", "编号"),
        l("employee_id", "工号"),
        l("name", "姓名"),
        l("date", "日期"),
        l("category", "类别"),
        l("rule", "条款"),
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
                Cell::Date(e.date),
                t(cat.map_or(e.category.clone(), |c| lang.pick(&c.en, &c.zh).to_string())),
                // Chinese: the seed clause the rule encodes (or its
                // label), never the English id.
                t(match (lang, rule) {
                    (Lang::En, _) | (Lang::Zh, None) => e.rule.clone(),
                    (Lang::Zh, Some(r)) => clause(&r.seed).unwrap_or_else(|| r.zh.clone()),
                }),
                t(rule.map_or(String::new(), |r| lang.pick(&r.en, &r.zh).to_string())),
                n(Points::from_hundredths(e.points)),
                t(if e.bonus {
                    lang.pick("bonus", "加分")
                } else {
                    lang.pick("deduction", "扣分")
                }),
                t(source_label(&e.source, lang)),
                t(evidence_label(
                    &e.source,
                    e.evidence.as_deref().unwrap_or_default(),
                    e.date,
                    lang,
                )),
                t(&e.recorded_by),
                match e.voided_at {
                    Some(x) => {
                        let local = to_local(policy.tz, x);
                        Cell::Stamp {
                            text: local.to_rfc3339_opts(SecondsFormat::Secs, false),
                            at: local.naive_local(),
                        }
                    }
                    None => t(""),
                },
                t(cause_label(
                    e.void_cause.as_deref().unwrap_or_default(),
                    lang,
                )),
            ]
        })
        .collect();
    (head, rows)
}

/// One row per employee's month.
fn scores_table(policy: &Policy, d: &MonthData, lang: Lang) -> (Vec<String>, Vec<Vec<Cell>>) {
    let l = |en: &str, zh: &str| lang.pick(en, zh).to_string();
    let who = names(d);
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
                match NaiveDate::parse_from_str(&format!("{}-01", s.month), "%Y-%m-%d") {
                    Ok(first) => Cell::Month {
                        text: s.month.clone(),
                        first,
                    },
                    Err(_) => t(&s.month),
                },
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
                t(group_label(label, lang)),
            ]);
            r
        })
        .collect();
    (head, rows)
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

    /// Issue 17: the Chinese workbook cites the seed clause, without the
    /// policy's English remarks.
    #[test]
    fn clauses_leave_english_remarks_out() {
        for (seed, want) in [
            (
                "坐席员考核细则 二(二)2 (policy.md step 4)",
                Some("坐席员考核细则 二(二)2"),
            ),
            (
                "坐席员考核细则 二(二)1; 坐席考勤管理制度 五1",
                Some("坐席员考核细则 二(二)1; 坐席考勤管理制度 五1"),
            ),
            (
                "衡水项目部 受理员考核细则 (一)4: 扣3-5分; 3 by default, --points up to 5",
                Some("衡水项目部 受理员考核细则 (一)4"),
            ),
            (
                "坐席员考核细则 二(二)4 (吸烟者另扣除当月奖金: pay, outside attendd)",
                Some("坐席员考核细则 二(二)4"),
            ),
            ("policy.md step 4", None),
            ("", None),
        ] {
            assert_eq!(clause(seed).as_deref(), want, "{seed}");
        }
    }

    /// Issue 17: void causes and device evidence read in Chinese.
    #[test]
    fn causes_and_evidence_in_chinese() {
        assert_eq!(cause_label("appeal 3 upheld", Lang::Zh), "申诉 #3 成立");
        assert_eq!(
            cause_label("correction (补卡) for E003", Lang::Zh),
            "补卡: E003"
        );
        assert_eq!(cause_label("day close", Lang::Zh), "日结");
        assert_eq!(cause_label("appeal 3 upheld", Lang::En), "appeal 3 upheld");
        let d = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
        assert_eq!(
            evidence_label(
                "device",
                "punches 2026-11-02T08:46:10+08:00,2026-11-03T01:02:03+08:00",
                d,
                Lang::Zh
            ),
            "打卡 08:46:10, 2026-11-03 01:02:03"
        );
        assert_eq!(
            evidence_label("device", "no punch", d, Lang::Zh),
            "无打卡记录"
        );
        assert_eq!(evidence_label("manual", "jeans", d, Lang::Zh), "jeans");
        assert_eq!(source_label("device", Lang::Zh), "考勤机");
    }

    /// The dashboard's status and flag labels (its `STATUS` and `FLAGS`
    /// tables) are the export's: one wording wherever HR reads them.
    #[test]
    fn dashboard_labels_match_the_exports() {
        let page = include_str!("http/dashboard.html");
        let flags = [
            "missing_check_in",
            "missing_check_out",
            "partial_leave",
            "partial_field",
            "unpaired_punch",
            "leave_short_notice",
            "sick_leave_no_certificate",
            "sick_leave_needs_hospital_record",
            "possible_shift_swap",
        ];
        for f in flags {
            for lang in [Lang::En, Lang::Zh] {
                let want = format!("{f}: \"{}\"", flag_label(f, lang));
                assert!(page.contains(&want), "dashboard lacks {want}");
            }
        }
        for s in [
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
        ] {
            for lang in [Lang::En, Lang::Zh] {
                let want = format!("{s}: \"{}\"", status_label(s, lang));
                assert!(page.contains(&want), "dashboard lacks {want}");
            }
        }
    }
}
