//! A day: its table of verdicts (`/days/{date}`), its summary
//! (`/summaries/{date}`) and who is missing (`/missing/{date}`).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use chrono::NaiveDate;
use serde::Serialize;
use serde_json::json;

use super::extract::{DatePath, Paging, People, Status, Team};
use super::page_cache::PageKey;
use super::{Api, ApiError, ApiResult, ok};
use crate::domain::Points;
use crate::domain::time::to_local;
use crate::domain::types::DayVerdict;
use crate::http::openapi as doc;

#[utoipa::path(
    get,
    path = "/api/v1/days/{date}",
    summary = "Daily attendance table: one item per employee with the stored verdict (status, punches, explanation)",
    description = "Roles: hr; supervisor:{team} (own team)",
    params(doc::DatePath, doc::TeamQuery, doc::StatusQuery, doc::PageQuery),
    responses(
        (status = 200, description = "page of {employee_id,name,team,status,provisional,verdict}", body = doc::DaysPage),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn days(
    State(api): State<Arc<Api>>,
    _: People,
    DatePath(date): DatePath,
    p: Paging,
    Team(team): Team,
    Status(status): Status,
) -> ApiResult {
    if let Some(doc) = before_start(&api, date, p, "items").await? {
        return ok(&doc);
    }
    // A page built before under the same counters is sent again (see
    // `page_cache`); the counters are read before the page.
    let key = PageKey {
        date,
        team,
        status,
        limit: p.limit,
        offset: p.offset,
    };
    let revision = if api.pages.enabled() {
        let revision = api.store.day_revision(date).await?;
        if let Some(body) = api.pages.get(&key, revision) {
            return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
        Some(revision)
    } else {
        None
    };
    let body = Bytes::from(build_page(&api, &key, p).await?);
    if let Some(revision) = revision {
        api.pages.put(key, revision, body.clone());
    }
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A page of the daily table, read from the store.
async fn build_page(api: &Api, key: &PageKey, p: Paging) -> Result<Vec<u8>, ApiError> {
    let (date, team, status) = (key.date, key.team.as_deref(), key.status.as_deref());
    // Filtering and paging happen in the database: only the page's
    // verdicts are read, and they are sent as stored. SQLite writes the
    // page's items itself.
    let limit = i64::try_from(p.limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(p.offset).unwrap_or(i64::MAX);
    if let Some((total, n, items)) = api
        .store
        .day_page_items(date, team, status, limit, offset)
        .await?
    {
        let total = usize::try_from(total).unwrap_or(0);
        let end = p.offset.saturating_add(n);
        return page_doc(
            date,
            items.as_bytes(),
            total,
            p,
            (end < total).then_some(end),
        );
    }
    let (total, rows) = api
        .store
        .day_page_read(date, team, status, limit, offset)
        .await?;
    let total = usize::try_from(total).unwrap_or(0);
    let end = p.offset.saturating_add(rows.len());
    days_json(date, &rows, total, p, (end < total).then_some(end))
}

/// The answer for a date before classification starts (policy.md, "Real
/// sites"): no rows, one note.
async fn before_start(
    api: &Api,
    date: NaiveDate,
    p: Paging,
    rows: &str,
) -> Result<Option<serde_json::Value>, ApiError> {
    let Some(start) = api.store.classify_from(None).await?.filter(|s| date < *s) else {
        return Ok(None);
    };
    let mut doc = json!({
        "date": date,
        "classify_from": start,
        "note": crate::hr::before_start_note(date, start),
        "total": 0,
        "offset": p.offset,
        "limit": p.limit,
        "next_offset": null,
    });
    doc[rows] = json!([]);
    if rows == "rows" {
        doc["totals"] = json!({"employees": 0, "points": 0, "by_status": {}, "by_team": {}});
    }
    Ok(Some(doc))
}

/// Writes a page of the daily table. The stored verdicts are our own
/// serialiser's output and are copied as they are, not parsed again: for
/// 10,000 employees that is most of the request's time. Only their outer
/// braces are checked.
fn days_json(
    date: NaiveDate,
    rows: &[crate::store::hr::DayPageRow],
    total: usize,
    p: Paging,
    next: Option<usize>,
) -> Result<Vec<u8>, ApiError> {
    let cap: usize = rows.iter().map(|r| r.verdict.len() + 128).sum::<usize>();
    let mut out = Vec::with_capacity(cap);
    for (i, r) in rows.iter().enumerate() {
        let v = r.verdict.trim();
        if !(v.starts_with('{') && v.ends_with('}')) {
            return Err(ApiError::Internal(format!(
                "day_verdicts/{}/{date}: stored verdict is not a JSON object",
                r.employee_id
            )));
        }
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"employee_id\":");
        ser(&mut out, &r.employee_id)?;
        out.extend_from_slice(b",\"name\":");
        ser(&mut out, &r.name)?;
        out.extend_from_slice(b",\"team\":");
        ser(&mut out, &r.team)?;
        out.extend_from_slice(b",\"status\":");
        ser(&mut out, &r.status)?;
        out.extend_from_slice(if r.provisional {
            b",\"provisional\":true,\"verdict\":"
        } else {
            b",\"provisional\":false,\"verdict\":"
        });
        out.extend_from_slice(v.as_bytes());
        out.push(b'}');
    }
    page_doc(date, &out, total, p, next)
}

/// The daily table's page around its items (written by [`days_json`] or
/// by the database).
fn page_doc(
    date: NaiveDate,
    items: &[u8],
    total: usize,
    p: Paging,
    next: Option<usize>,
) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(items.len() + 256);
    out.extend_from_slice(b"{\"date\":");
    ser(&mut out, &date)?;
    out.extend_from_slice(b",\"items\":[");
    out.extend_from_slice(items);
    out.extend_from_slice(b"],\"total\":");
    ser(&mut out, &total)?;
    out.extend_from_slice(b",\"offset\":");
    ser(&mut out, &p.offset)?;
    out.extend_from_slice(b",\"limit\":");
    ser(&mut out, &p.limit)?;
    out.extend_from_slice(b",\"next_offset\":");
    ser(&mut out, &next)?;
    out.push(b'}');
    Ok(out)
}

/// Appends a value's JSON to `out`.
fn ser<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> Result<(), ApiError> {
    serde_json::to_writer(out, v).map_err(|e| ApiError::Internal(format!("serialise days: {e}")))
}

fn parse_verdict(emp: &str, date: NaiveDate, json: &str) -> Result<DayVerdict, ApiError> {
    serde_json::from_str(json)
        .map_err(|e| ApiError::Internal(format!("day_verdicts/{emp}/{date}: {e}")))
}

#[utoipa::path(
    get,
    path = "/api/v1/summaries/{date}",
    summary = "Daily deduction summary: totals by status and team, a row per employee",
    description = "Roles: hr; supervisor:{team}",
    params(doc::DatePath, doc::TeamQuery, doc::PageQuery),
    responses(
        (status = 200, description = "summary", body = doc::Summary),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn summary(
    State(api): State<Arc<Api>>,
    _: People,
    DatePath(date): DatePath,
    p: Paging,
    Team(team): Team,
) -> ApiResult {
    if let Some(doc) = before_start(&api, date, p, "rows").await? {
        return ok(&doc);
    }
    // Totals are counted in the database; only the page's rows are read.
    let mut by_status: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_team: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    let mut points = 0i64;
    let mut employees = 0i64;
    let mut provisional = false;
    for t in api.store.day_totals(date, team.as_deref()).await? {
        *by_status.entry(t.status.clone()).or_default() += t.employees;
        *by_team
            .entry(t.team.clone())
            .or_default()
            .entry(t.status.clone())
            .or_default() += t.employees;
        points += t.points;
        employees += t.employees;
        provisional |= t.provisional;
    }
    let (total, page_rows) = api
        .store
        .day_page(
            date,
            team.as_deref(),
            None,
            i64::try_from(p.limit).unwrap_or(i64::MAX),
            i64::try_from(p.offset).unwrap_or(i64::MAX),
        )
        .await?;
    let total = usize::try_from(total).unwrap_or(0);
    let history = api.store.policy_history().await?;
    let mut rows = Vec::with_capacity(page_rows.len());
    for r in &page_rows {
        let v = parse_verdict(&r.employee_id, date, &r.verdict)?;
        rows.push(json!({
            "employee_id": v.employee_id,
            "policy": history.at(&r.employee_id, date),
            "name": r.name,
            "team": r.team.as_deref().unwrap_or(""),
            "status": v.status,
            "provisional": r.provisional,
            "points": v.points,
            "deductions": v.deductions,
            "actions": v.actions,
        }));
    }
    let end = p.offset.saturating_add(rows.len());
    ok(&json!({
        "date": date,
        "policy": {"id": api.policy().id, "version": api.policy().version},
        "provisional": provisional,
        "totals": {"employees": employees, "points": Points::from_hundredths(points),
                   "by_status": by_status, "by_team": by_team},
        "rows": rows,
        "total": total,
        "offset": p.offset,
        "limit": p.limit,
        "next_offset": (end < total).then_some(end),
    }))
}

/// `GET /api/v1/missing/{date}`: who is missing, from the schedule and
/// the punches as absence alerts decide it (not from stored verdicts, which
/// lag behind the punches): scheduled, the shift started, no approved leave
/// at its start, no punch in its window so far. For today "so far" is now
/// (the dashboard's "Missing right now"); for a past date it is the shift's
/// end (that day's absentees).
#[utoipa::path(
    get,
    path = "/api/v1/missing/{date}",
    summary = "Who is missing: scheduled, the shift started, no approved leave at its start and no punch in its window (today: so far, as absence alerts decide; a past date: that day's absentees)",
    description = "Roles: hr; supervisor:{team} (own team)",
    params(doc::DatePath, doc::TeamQuery),
    responses(
        (status = 200, description = "{date, as_of (today only), items: [{employee_id,name,team,shift,shift_start,minutes_since_start}], total}", body = doc::Missing),
        (status = 400, response = doc::BadRequest),
        (status = 401, response = doc::Unauthorized),
        (status = 403, response = doc::Forbidden),
        (status = 500, response = doc::Internal),
    )
)]
pub(crate) async fn missing(
    State(api): State<Arc<Api>>,
    _: People,
    DatePath(date): DatePath,
    Team(team): Team,
) -> ApiResult {
    use crate::domain::alerting::{AlertDecision, AlertState, absence_decision};
    use crate::domain::calendar::{ShiftClock, shift_on};
    use crate::domain::classify::EmployeeDays;
    use crate::domain::types::EmployeeId;
    let policy = api.policy();
    let now = api.now();
    let today = api.today();
    let mut items = Vec::new();
    let before = api.store.classify_from(None).await?.filter(|s| date < *s);
    if date <= today && before.is_none() {
        let first = date - chrono::Days::new(1);
        let last = date + chrono::Days::new(1);
        // Each policy group with its own shifts and zone (policy.md,
        // "Several rule sets on one site").
        let all = api.policies();
        for (g, wanted) in api.store.employees_by_group(&all, date).await? {
            let policy = all.get(g);
            let wanted: Option<HashSet<&str>> = wanted
                .as_ref()
                .map(|w| w.iter().map(String::as_str).collect());
            let margin =
                chrono::Duration::seconds(policy.window_before_secs + policy.window_after_secs);
            let lo = crate::domain::time::resolve_local(
                policy.tz,
                first.and_time(chrono::NaiveTime::MIN),
            ) - margin;
            let hi = crate::domain::time::resolve_local(
                policy.tz,
                (last + chrono::Days::new(1)).and_time(chrono::NaiveTime::MIN),
            ) + margin;
            if let Some(inputs) = api
                .store
                .load_inputs(policy, wanted.as_ref(), first, last, lo, hi)
                .await?
            {
                let clock = ShiftClock::new(policy, first, last);
                for (i, e) in inputs.emps.iter().enumerate() {
                    if team.as_deref().is_some_and(|t| t != e.team) {
                        continue;
                    }
                    let id = EmployeeId::from(e.employee_id.as_str());
                    let default_shift = e.shift.as_deref().and_then(|s| policy.shift_by_id(s));
                    let (Some(shift), _) = shift_on(
                        policy,
                        &inputs.holidays,
                        Some(&inputs.roster[i]),
                        default_shift,
                        date,
                    ) else {
                        continue;
                    };
                    let t = clock.times(date, shift);
                    // The alert rule holds while the shift runs: a past day is
                    // judged at its last second.
                    let at = now.min(t.end - chrono::Duration::seconds(1));
                    let days = EmployeeDays {
                        employee: &id,
                        default_shift,
                        punches: &inputs.punches[i],
                        roster: Some(&inputs.roster[i]),
                        leaves: &inputs.leaves[i],
                        start_date: e.start_date,
                        end_date: e.end_date,
                    };
                    let state = AlertState {
                        absence_sent: false,
                        arrival_sent: false,
                    };
                    if let AlertDecision::Absent {
                        shift_start,
                        minutes_late,
                    } = absence_decision(
                        &clock,
                        &inputs.holidays,
                        &days,
                        date,
                        chrono::Duration::zero(),
                        at,
                        state,
                    ) {
                        items.push(json!({
                            "employee_id": e.employee_id,
                            "policy": all.label(g),
                            "name": e.name,
                            "team": e.team,
                            "shift": policy.shift(shift).id.to_string(),
                            "shift_start": to_local(policy.tz, shift_start).to_rfc3339(),
                            "minutes_since_start": minutes_late,
                        }));
                    }
                }
            }
        }
    }
    if api.policies().len() > 1 {
        // Groups were listed one after the other: in employee order again.
        items.sort_by(|a, b| a["employee_id"].as_str().cmp(&b["employee_id"].as_str()));
    }
    ok(&json!({
        "date": date,
        "as_of": if date == today { Some(to_local(policy.tz, now).to_rfc3339()) } else { None },
        "classify_from": before,
        "items": items,
        "total": items.len(),
    }))
}
