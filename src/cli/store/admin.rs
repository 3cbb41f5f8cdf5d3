//! The store commands that act on stored data: `quarantine` (and its
//! replay), `punches supersede`, `adjustment`, `outbox`, `recompute` and
//! `publish`.

use std::io::Write;
use std::time::Instant;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::{
    AdjustmentAction, CmdError, CmdResult, Ctx, RecomputeArgs, hr_error, known_employees,
    report_json, report_text,
};
use crate::domain::time::to_local;
use crate::input::LocalTimes;
use crate::store::StoreError;

pub(super) async fn replay(
    ctx: &Ctx<'_>,
    all: bool,
    ids: Vec<i64>,
    source: Option<String>,
    out: &mut dyn Write,
) -> CmdResult {
    use crate::pipeline::replay::{Decodings, Selection};
    let decodings = Decodings::from_config(ctx.cfg).map_err(CmdError::Input)?;
    let selection = if all {
        Selection::All
    } else {
        Selection::Ids(ids)
    };
    let r = crate::pipeline::replay::replay(
        ctx.store,
        ctx.policies(),
        &decodings,
        &selection,
        source.as_deref(),
        &ctx.actor,
        ctx.now,
    )
    .await?;
    if ctx.json {
        writeln!(out, "{}", json!({"replay": r}))?;
    } else {
        writeln!(
            out,
            "replayed {} row(s): {} resolved, {} punch(es) stored, {} already stored, {} still unresolved, {} skipped; {} employee-day(s) re-classified",
            r.examined,
            r.resolved,
            r.stored,
            r.duplicates,
            r.unresolved.len(),
            r.skipped.len(),
            r.evaluated
        )?;
        for (id, why) in &r.unresolved {
            writeln!(out, "  {id}: unresolved: {why}")?;
        }
        for (id, why) in &r.skipped {
            writeln!(out, "  {id}: skipped: {why}")?;
        }
    }
    Ok(())
}

pub(super) async fn supersede(
    ctx: &Ctx<'_>,
    device: &str,
    from: &str,
    to: &str,
    reason: &str,
    out: &mut dyn Write,
) -> CmdResult {
    let mut times = LocalTimes::new(ctx.policy().tz);
    let mut at = |flag: &str, s: &str| -> Result<DateTime<Utc>, CmdError> {
        let t = times
            .parse(s)
            .map_err(|e| CmdError::Input(format!("--{flag}: {e}")))?;
        let y = chrono::Datelike::year(&t);
        if !(2000..=2100).contains(&y) {
            return Err(CmdError::Input(format!(
                "--{flag}: {s:?} is outside 2000-01-01..2100-12-31"
            )));
        }
        Ok(t)
    };
    let (from_t, to_t) = (at("from", from)?, at("to", to)?);
    if from_t >= to_t {
        return Err(CmdError::Input("--from must be before --to".into()));
    }
    if reason.trim().is_empty() {
        return Err(CmdError::Input("--reason: must not be empty".into()));
    }
    let r = ctx
        .store
        .supersede_punches(device, from_t, to_t, reason.trim(), &ctx.actor, ctx.now)
        .await?;
    let mut evaluated = 0;
    if !r.superseded.is_empty() {
        let tz = ctx.policy().tz;
        let dates: Vec<NaiveDate> = r
            .superseded
            .iter()
            .map(|(_, _, t)| to_local(tz, *t).date_naive())
            .collect();
        let lo = dates.iter().min().copied().unwrap_or_default() - chrono::Days::new(1);
        let hi = dates.iter().max().copied().unwrap_or_default();
        let mut ids: Vec<String> = r.superseded.iter().map(|(_, e, _)| e.clone()).collect();
        ids.sort();
        ids.dedup();
        evaluated = ctx
            .store
            .recompute(
                ctx.policies(),
                Some(&ids),
                lo,
                hi,
                &format!("punches supersede: {}", reason.trim()),
                &ctx.actor,
                ctx.now,
            )
            .await?
            .evaluated;
    }
    if ctx.json {
        writeln!(
            out,
            "{}",
            json!({"superseded": r.superseded.iter().map(|(id, e, t)| json!({"id": id, "employee_id": e, "time": t.to_rfc3339()})).collect::<Vec<_>>(),
                   "already_superseded": r.already, "evaluated": evaluated})
        )?;
    } else {
        writeln!(
            out,
            "superseded {} punch(es) of {device} ({} already were); {evaluated} employee-day(s) re-classified",
            r.superseded.len(),
            r.already
        )?;
    }
    Ok(())
}

pub(super) async fn quarantine(ctx: &Ctx<'_>, limit: i64, out: &mut dyn Write) -> CmdResult {
    let rows = ctx.store.quarantined(limit).await?;
    if !ctx.json {
        writeln!(
            out,
            "{:<6} {:<25} {:<24} {:>6}  reason / payload",
            "id", "received", "source", "bytes"
        )?;
    }
    for q in &rows {
        let text = String::from_utf8_lossy(&q.payload);
        if ctx.json {
            writeln!(
                out,
                "{}",
                json!({"id": q.id, "source": q.source, "reason": q.reason, "received_at": q.received_at.to_rfc3339(),
                       "payload_len": q.payload_len, "payload": text, "kind": q.kind,
                       "resolved_at": q.resolved.as_ref().map(|r| r.0.to_rfc3339())})
            )?;
        } else {
            let preview: String = text.chars().take(60).collect();
            writeln!(
                out,
                "{:<6} {:<25} {:<24} {:>6}  {} / {:?}",
                q.id,
                q.received_at.to_rfc3339(),
                q.source,
                q.payload_len,
                q.reason,
                preview
            )?;
        }
    }
    Ok(())
}

pub(super) async fn adjustment(
    ctx: &Ctx<'_>,
    action: AdjustmentAction,
    out: &mut dyn Write,
) -> CmdResult {
    let not_pending = |e: StoreError| match e {
        StoreError::Corrupt { key, why } if key.starts_with("adjustments/") => {
            CmdError::Input(format!("{key}: {why}"))
        }
        e => CmdError::Store(e),
    };
    match action {
        AdjustmentAction::List { all } => {
            let rows = ctx.store.adjustments(!all).await?;
            if !ctx.json {
                writeln!(
                    out,
                    "{:<6} {:<10} {:<10} {:<10} {:<26} cause (actor)",
                    "id", "employee", "date", "status", "verdict change"
                )?;
            }
            let status_of = |v: Option<&str>| {
                v.and_then(|v| serde_json::from_str::<serde_json::Value>(v).ok())
                    .and_then(|v| v["status"].as_str().map(String::from))
                    .unwrap_or_else(|| "-".into())
            };
            for a in rows {
                let old = status_of(a.old_verdict.as_deref());
                let new = status_of(Some(&a.new_verdict));
                if ctx.json {
                    writeln!(
                        out,
                        "{}",
                        json!({"id": a.id, "employee_id": a.employee_id, "date": a.date,
                               "status": a.status, "old_status": old, "new_status": new,
                               "cause": a.cause, "actor": a.actor,
                               "created_at": a.created_at.to_rfc3339()})
                    )?;
                } else {
                    writeln!(
                        out,
                        "{:<6} {:<10} {:<10} {:<10} {:<26} {} ({})",
                        a.id,
                        a.employee_id,
                        a.date,
                        a.status,
                        format!("{old} -> {new}"),
                        a.cause,
                        a.actor
                    )?;
                }
            }
        }
        AdjustmentAction::Apply { id } => {
            let rep = ctx
                .store
                .apply_adjustment(ctx.policies(), id, &ctx.actor, ctx.now)
                .await
                .map_err(not_pending)?;
            ctx.emit(
                out,
                json!({"id": id, "applied": true, "ledger_added": rep.ledger_added,
                       "ledger_voided": rep.ledger_voided}),
                &format!(
                    "adjustment {id} applied: {} ledger entries added, {} voided",
                    rep.ledger_added, rep.ledger_voided
                ),
            )?;
        }
        AdjustmentAction::Dismiss { id, reason } => {
            ctx.store
                .dismiss_adjustment(id, &ctx.actor, &reason, ctx.now)
                .await
                .map_err(not_pending)?;
            ctx.emit(
                out,
                json!({"id": id, "dismissed": true}),
                &format!("adjustment {id} dismissed"),
            )?;
        }
    }
    Ok(())
}

pub(super) async fn outbox(
    ctx: &Ctx<'_>,
    kind: Option<&str>,
    limit: i64,
    out: &mut dyn Write,
) -> CmdResult {
    let rows = ctx.store.outbox(kind, limit).await?;
    if !ctx.json {
        writeln!(
            out,
            "{:<36} {:<11} {:<25} {:>9}  last error",
            "id", "kind", "decided", "sent"
        )?;
    }
    for r in &rows {
        if ctx.json {
            writeln!(out, "{}", serde_json::to_string(r).unwrap_or_default())?;
        } else {
            writeln!(
                out,
                "{:<36} {:<11} {:<25} {:>9}  {}",
                r.key,
                r.kind,
                r.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                format!("{}/{}", r.sent, r.sinks),
                r.last_error.as_deref().unwrap_or("")
            )?;
        }
    }
    Ok(())
}

pub(super) async fn recompute_cmd(
    ctx: &Ctx<'_>,
    a: RecomputeArgs,
    out: &mut dyn Write,
) -> CmdResult {
    if a.from > a.to {
        return Err(CmdError::Input(format!(
            "--from {} is after --to {}",
            a.from, a.to
        )));
    }
    let emps = match &a.employee {
        Some(e) => {
            if !known_employees(ctx.store).await?.contains(e) {
                return Err(CmdError::Input(format!(
                    "employee {e:?} is not in the store"
                )));
            }
            Some(vec![e.clone()])
        }
        None => None,
    };
    let started = Instant::now();
    let progress = crate::progress::Progress::spinner(&format!("recomputing {}..{}", a.from, a.to));
    let rep = ctx
        .store
        .recompute(
            ctx.policies(),
            emps.as_deref(),
            a.from,
            a.to,
            "recompute",
            &ctx.actor,
            ctx.now,
        )
        .await?;
    progress.finish(&format!(
        "recomputed {}..{} in {:.1?}",
        a.from,
        a.to,
        started.elapsed()
    ));
    ctx.emit(out, report_json(&rep), &report_text(&rep))?;
    Ok(())
}

pub(super) async fn publish(ctx: &Ctx<'_>, month: NaiveDate, out: &mut dyn Write) -> CmdResult {
    let label = month.format("%Y-%m").to_string();
    let done = crate::hr::publish(ctx.store, ctx.policies(), &label, &ctx.actor, ctx.now)
        .await
        .map_err(hr_error)?;
    ctx.emit(
        out,
        json!({"month": label, "published": done}),
        &if done {
            format!("{label} published")
        } else {
            format!("{label} was already published")
        },
    )?;
    Ok(())
}
