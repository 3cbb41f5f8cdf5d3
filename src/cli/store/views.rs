//! The store commands that only read: `punches`, `day`, `summary`,
//! `employee` and `month`.

use std::collections::HashSet;
use std::io::Write;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde_json::json;

use super::{CmdError, CmdResult, Ctx, PunchesArgs, hr_error, known_employees};
use crate::domain::time::{resolve_local, to_local};
use crate::domain::types::DayVerdict;
use crate::domain::{Points, policy::Policy};
use crate::hr::before_start_note;
use crate::render;
use crate::store::{StoreError, month_bounds};

/// The instants a local date spans in the policy's zone.
fn day_span(policy: &Policy, d: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = d + Days::new(1);
    (
        resolve_local(policy.tz, d.and_hms_opt(0, 0, 0).unwrap_or_default()),
        resolve_local(policy.tz, next.and_hms_opt(0, 0, 0).unwrap_or_default()),
    )
}

pub(super) async fn punches(ctx: &Ctx<'_>, a: PunchesArgs, out: &mut dyn Write) -> CmdResult {
    let tz = ctx.policy().tz;
    let date = a
        .date
        .ok_or_else(|| CmdError::Input("--date YYYY-MM-DD is required".into()))?;
    let (from, to) = day_span(ctx.policy(), date);
    let rows = ctx.store.punches(from, to, a.employee.as_deref()).await?;
    if !ctx.json {
        writeln!(
            out,
            "{:<10} {:<25} {:<12} {:<10} source",
            "employee", "time", "device", "identity"
        )?;
    }
    for p in &rows {
        let local = to_local(tz, p.time);
        if ctx.json {
            writeln!(
                out,
                "{}",
                json!({"id": p.id, "employee_id": p.employee_id, "time": local.to_rfc3339(),
                       "device_id": p.device_id, "source": p.source, "event_id": p.event_id,
                       "identity": p.identity, "received_at": p.received_at.to_rfc3339()})
            )?;
        } else {
            writeln!(
                out,
                "{:<10} {:<25} {:<12} {:<10} {}",
                p.employee_id,
                local.to_rfc3339(),
                p.device_id.as_deref().unwrap_or("-"),
                p.identity,
                p.source
            )?;
        }
    }
    Ok(())
}

/// The classification start when `date` lies before it (policy.md, "Real
/// sites": such a date has no rows, only a note).
async fn before_start(ctx: &Ctx<'_>, date: NaiveDate) -> Result<Option<NaiveDate>, CmdError> {
    Ok(ctx
        .store
        .classify_from(ctx.cfg.ingest.classify_from)
        .await?
        .filter(|s| date < *s))
}

fn parse_verdict(json: &str, key: &str) -> Result<DayVerdict, CmdError> {
    serde_json::from_str(json).map_err(|e| {
        CmdError::Store(StoreError::Corrupt {
            key: key.to_string(),
            why: format!("stored verdict does not parse: {e}"),
        })
    })
}

pub(super) async fn day(
    ctx: &Ctx<'_>,
    date: Option<NaiveDate>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CmdResult {
    let date = date.unwrap_or_else(|| ctx.today());
    if let Some(start) = before_start(ctx, date).await? {
        if !ctx.json {
            render::table_header(out)?;
        }
        writeln!(err, "note: {}", before_start_note(date, start))?;
        return Ok(());
    }
    let rows = ctx.store.verdicts(date, date, None).await?;
    let history = ctx.store.policy_history().await?;
    let pending: HashSet<String> = ctx
        .store
        .adjustments(true)
        .await?
        .into_iter()
        .filter(|a| a.date == date)
        .map(|a| a.employee_id)
        .collect();
    // Several policies: a first `policy` column, as `evaluate` prints.
    let labelled = ctx.policies().len() > 1;
    if !ctx.json {
        if labelled {
            render::table_header_labelled(out)?;
        } else {
            render::table_header(out)?;
        }
    }
    let mut line = Vec::with_capacity(1024);
    for r in &rows {
        let v = parse_verdict(
            &r.verdict,
            &format!("day_verdicts/{}/{}", r.employee_id, r.date),
        )?;
        line.clear();
        if ctx.json {
            render::json_line(&v, history.at(&r.employee_id, r.date), &mut line);
        } else {
            if labelled {
                render::table_row_labelled(&v, history.at(&r.employee_id, r.date), &mut line);
            } else {
                render::table_row(&v, &mut line);
            }
            if pending.contains(&r.employee_id) || r.provisional {
                line.pop();
                if r.provisional {
                    line.extend_from_slice(b" provisional");
                }
                if pending.contains(&r.employee_id) {
                    line.extend_from_slice(b" adjustment_pending");
                }
                line.push(b'\n');
            }
        }
        out.write_all(&line)?;
    }
    if rows.is_empty() {
        writeln!(
            err,
            "note: no verdicts stored for {date} (attendd recompute --from {date} --to {date})"
        )?;
    }
    Ok(())
}

pub(super) async fn summary(
    ctx: &Ctx<'_>,
    date: Option<NaiveDate>,
    out: &mut dyn Write,
) -> CmdResult {
    let date = date.unwrap_or_else(|| ctx.today());
    if let Some(start) = before_start(ctx, date).await? {
        let note = before_start_note(date, start);
        if ctx.json {
            writeln!(
                out,
                "{}",
                json!({"date": date, "classify_from": start, "note": note, "rows": []})
            )?;
        } else {
            writeln!(out, "deduction summary {date}\nnote: {note}")?;
        }
        return Ok(());
    }
    let doc = crate::store::summary::daily_summary(ctx.store, ctx.policy(), date).await?;
    let provisional = doc["provisional"].as_bool().unwrap_or(false);
    let empty = Vec::new();
    let out_rows = doc["rows"].as_array().unwrap_or(&empty);
    if ctx.json {
        writeln!(out, "{doc}")?;
        return Ok(());
    }
    writeln!(
        out,
        "deduction summary {date}{}",
        if provisional { " (provisional)" } else { "" }
    )?;
    writeln!(
        out,
        "{:<10} {:<16} {:<12} {:<14} {:>6}  deductions",
        "employee", "name", "team", "status", "points"
    )?;
    for r in out_rows {
        let deds: Vec<String> = r["deductions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|d| format!("{}:-{}", d["rule"].as_str().unwrap_or(""), d["points"]))
                    .collect()
            })
            .unwrap_or_default();
        writeln!(
            out,
            "{:<10} {:<16} {:<12} {:<14} {:>6}  {}",
            r["employee_id"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or("-"),
            r["team"].as_str().unwrap_or("-"),
            r["status"].as_str().unwrap_or(""),
            r["points"],
            deds.join(" ")
        )?;
    }
    let totals = &doc["totals"];
    let counts: Vec<String> = totals["by_status"]
        .as_object()
        .map(|m| m.iter().map(|(s, n)| format!("{s} {n}")).collect())
        .unwrap_or_default();
    writeln!(
        out,
        "total: {} employee(s), {} point(s), {}",
        totals["employees"],
        totals["points"],
        counts.join(", ")
    )?;
    Ok(())
}

pub(super) async fn employee(
    ctx: &Ctx<'_>,
    id: &str,
    month: Option<NaiveDate>,
    out: &mut dyn Write,
) -> CmdResult {
    let policy = ctx.policy();
    let known = known_employees(ctx.store).await?;
    if !known.contains(id) {
        return Err(CmdError::Input(format!(
            "employee {id:?} is not in the store"
        )));
    }
    let (from, to) = month_bounds(month.unwrap_or_else(|| ctx.today()));
    let rows = ctx.store.verdicts(from, to, Some(id)).await?;
    let mut days = Vec::with_capacity(rows.len());
    for r in &rows {
        days.push(parse_verdict(
            &r.verdict,
            &format!("day_verdicts/{}/{}", r.employee_id, r.date),
        )?);
    }
    let ledger = ctx.store.ledger(from, to, Some(id)).await?;
    // Scores count the ledger's active entries (closed days only; an entry
    // voided on appeal no longer counts), as the API and exports do.
    let history = ctx.store.policy_history().await?;
    let data = crate::hr::month_data(ctx.store, ctx.policies(), from, |e| e.employee_id == id)
        .await
        .map_err(hr_error)?;
    let scores = data.scores;
    let label = data
        .policy_labels
        .first()
        .map_or(crate::policy_file::DEFAULT_GROUP, String::as_str);
    let mut line = Vec::with_capacity(1024);
    let labelled = ctx.policies().len() > 1;
    if !ctx.json {
        if labelled {
            render::table_header_labelled(out)?;
        } else {
            render::table_header(out)?;
        }
    }
    for v in &days {
        line.clear();
        if ctx.json {
            render::json_line(v, history.at(id, v.date), &mut line);
        } else if labelled {
            render::table_row_labelled(v, history.at(id, v.date), &mut line);
        } else {
            render::table_row(v, &mut line);
        }
        out.write_all(&line)?;
    }
    if !ctx.json {
        writeln!(out, "\nledger")?;
    }
    for e in &ledger {
        if ctx.json {
            writeln!(out, "{}", json!({"ledger": e}))?;
        } else {
            writeln!(
                out,
                "  #{:<6} {} {:<8} {:<12} {:<24} {:>6}{}",
                e.id,
                e.date,
                e.source,
                e.category,
                e.rule,
                format!(
                    "{}{}",
                    if e.bonus { "+" } else { "-" },
                    Points::from_hundredths(e.points)
                ),
                match &e.voided_at {
                    Some(t) => format!(
                        "  voided {} ({})",
                        t.to_rfc3339(),
                        e.void_cause.as_deref().unwrap_or("")
                    ),
                    None => String::new(),
                }
            )?;
        }
    }
    if !ctx.json {
        writeln!(out)?;
        render::score_header(policy, out)?;
    }
    for s in scores
        .iter()
        .filter(|s| s.month == from.format("%Y-%m").to_string())
    {
        line.clear();
        if ctx.json {
            render::score_json_line(s, label, &mut line);
        } else {
            render::score_row(policy, s, &mut line);
        }
        out.write_all(&line)?;
    }
    Ok(())
}

pub(super) async fn month(
    ctx: &Ctx<'_>,
    month: Option<NaiveDate>,
    out: &mut dyn Write,
) -> CmdResult {
    let policy = ctx.policy();
    let (from, _) = month_bounds(month.unwrap_or_else(|| ctx.today()));
    // Scores count the ledger's active entries (closed days only; an entry
    // voided on appeal no longer counts), as the API and exports do.
    let data = crate::hr::month_scores_data(ctx.store, ctx.policies(), from, |_| true)
        .await
        .map_err(hr_error)?;
    // Several policies: the categories of all of them (policy.md).
    let mut shown = policy.clone();
    shown.categories = ctx.policies().category_union();
    let policy = &shown;
    if !ctx.json {
        render::score_header(policy, out)?;
    }
    let mut line = Vec::with_capacity(512);
    for (s, label) in data.scores.iter().zip(&data.policy_labels) {
        line.clear();
        if ctx.json {
            render::score_json_line(s, label, &mut line);
        } else {
            render::score_row(policy, s, &mut line);
        }
        out.write_all(&line)?;
    }
    Ok(())
}
