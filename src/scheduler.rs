//! The scheduler: absence alerts, day close with the daily deduction
//! summary (and its revisions), and terminal health.
//!
//! [`Scheduler::tick`] takes "now" as an argument and decides everything
//! from the store, so tests drive it on any clock and a restart in the
//! middle of a day decides nothing twice: every alert and summary goes
//! into the store's outbox under a unique key, and what is already there
//! is not decided again. The decisions themselves are the pure functions
//! of [`crate::domain::alerting`]; this module only loads, asks and stores.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Days, Duration, NaiveDate, NaiveTime, SecondsFormat, Utc};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{RawSchedule, RawSink};
use crate::domain::alerting::{AlertDecision, AlertState, absence_decision, close_time};
use crate::domain::calendar::{ShiftClock, shift_on};
use crate::domain::classify::EmployeeDays;
use crate::domain::policy::Policy;
use crate::domain::time::{resolve_local, to_local};
use crate::domain::types::{EmployeeId, Holidays};
use crate::store::outbox::{DayClose, NewMessage};
use crate::store::summary::{daily_summary, summary_hash};
use crate::store::{EmployeeRecord, Store, StoreError};

pub use crate::pipeline::DriftBoard;

/// Where messages of a kind and team go.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    /// Sink name.
    pub name: String,
    /// Kinds it takes (`None`: all).
    pub events: Option<Vec<String>>,
    /// Teams it takes alerts for (`None`: all).
    pub teams: Option<Vec<String>>,
}

impl Route {
    /// Routes for the configured sinks.
    pub fn from_config(sinks: &[RawSink]) -> Vec<Route> {
        sinks
            .iter()
            .enumerate()
            .map(|(i, s)| Route {
                name: s.name(i),
                events: s.events.clone(),
                teams: s.teams.clone(),
            })
            .collect()
    }

    fn takes(&self, kind: &str, team: Option<&str>) -> bool {
        self.events
            .as_ref()
            .is_none_or(|e| e.iter().any(|k| k == kind))
            && match (&self.teams, team) {
                (None, _) => true,
                (Some(ts), Some(t)) => ts.iter().any(|x| x == t),
                // Summaries (every team's people), terminal alerts and
                // publications belong to no team: a team's sink gets them
                // only when its `events` name them.
                (Some(_), None) => self
                    .events
                    .as_ref()
                    .is_some_and(|e| e.iter().any(|k| k == kind)),
            }
    }
}

/// What the scheduler runs on; swapped as a whole on reload.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The policy.
    pub policy: Arc<Policy>,
    /// `policy` with the `[[policy.group]]`s (policy.md, "Several rule sets
    /// on one site"); `None`: `policy` alone.
    pub policies: Option<Arc<crate::policy_file::Policies>>,
    /// `[schedule]`.
    pub schedule: RawSchedule,
    /// One route per sink.
    pub routes: Vec<Route>,
}

/// What one tick did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Absence alerts decided.
    pub absences: usize,
    /// Follow-ups decided.
    pub arrivals: usize,
    /// Dates closed.
    pub closed: Vec<NaiveDate>,
    /// Dates whose summary was revised.
    pub revised: Vec<NaiveDate>,
    /// Terminal-health alerts decided.
    pub terminal: usize,
    /// Month publications announced.
    pub publications: usize,
}

/// One policy group's employees and their days, as an absence alert
/// decision needs them.
#[derive(Clone, Copy)]
struct GroupDays<'a> {
    policy: &'a Policy,
    clock: &'a ShiftClock<'a>,
    holidays: &'a Holidays,
    emps: &'a [EmployeeRecord],
    days: &'a [EmployeeDays<'a>],
    alert_after: Duration,
}

/// The scheduler. Cheap to share.
#[derive(Debug)]
pub struct Scheduler {
    store: Store,
    plan: RwLock<Arc<Plan>>,
    drift: Arc<DriftBoard>,
}

impl Scheduler {
    /// A scheduler over `store`.
    pub fn new(store: Store, plan: Plan, drift: Arc<DriftBoard>) -> Self {
        Scheduler {
            store,
            plan: RwLock::new(Arc::new(plan)),
            drift,
        }
    }

    /// Replaces policy, settings and routes (SIGHUP).
    pub fn swap(&self, plan: Plan) {
        *self.plan.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(plan);
    }

    fn plan(&self) -> Arc<Plan> {
        self.plan.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Decides and stores everything due at `now`.
    pub async fn tick(&self, now: DateTime<Utc>) -> Result<TickReport, StoreError> {
        let plan = self.plan();
        let mut report = TickReport::default();
        let today = to_local(plan.policy.tz, now).date_naive();

        self.appeals_overdue(&plan, now).await?;

        let (open, closed, first) = self.open_and_closed(&plan, today).await?;
        let Some((alerts, close_at)) = self.decide_groups(&plan, now, today, first, &open).await?
        else {
            // No employees yet: terminals and publications still count.
            report.terminal = self.terminal_health(&plan, now, today).await?;
            report.publications = self.publications(&plan, now).await?;
            return Ok(report);
        };
        // One transaction: the deliverer never sees half a tick, so a robot
        // gets the tick's alerts as one message per supervisor.
        let new = self.store.enqueue_many(&alerts, now).await?;
        for (m, new) in alerts.iter().zip(new) {
            match (new, m.kind.as_str()) {
                (false, _) => {}
                (true, "absence") => report.absences += 1,
                (true, _) => report.arrivals += 1,
            }
        }

        self.close_due(&plan, open, &close_at, now, &mut report)
            .await?;
        self.revise_closed(&plan, closed, now, &mut report).await?;

        report.terminal = self.terminal_health(&plan, now, today).await?;
        report.publications = self.publications(&plan, now).await?;
        Ok(report)
    }

    /// The dates within the revision window not closed yet (from the
    /// first one that may close), the closed ones, and the first date
    /// whose inputs a tick loads.
    async fn open_and_closed(
        &self,
        plan: &Plan,
        today: NaiveDate,
    ) -> Result<(Vec<NaiveDate>, Vec<DayClose>, NaiveDate), StoreError> {
        let oldest = today - Days::new(plan.schedule.revision_days.max(1) as u64);
        // Dates not closed yet within the revision window, and closed ones.
        // A store that never closed a day starts with yesterday: days
        // before attendd ran are not announced as if they had just closed.
        let mut open = Vec::new();
        let mut closed = Vec::new();
        let mut d = oldest;
        while d <= today {
            match self.store.day_close(d).await? {
                Some(c) => closed.push(c),
                None => open.push(d),
            }
            d = d + Days::new(1);
        }
        // Once the daemon has run on the store, every day from the day
        // before its first run closes, even one that ended while it was
        // down (policy.md, "Every employee, every day"); never a day before
        // the classification start: such days are not classified
        // automatically (policy.md, "Real sites").
        let classify_from = self.store.classify_from_fixed().await?;
        let start = match (self.store.first_run().await?, closed.first()) {
            (Some(f), _) => f - Days::new(1),
            (None, Some(c)) => c.date,
            (None, None) => today - Days::new(1),
        };
        open.retain(|d| *d >= start && classify_from.is_none_or(|c| *d >= c));
        let first = open
            .first()
            .copied()
            .unwrap_or(today)
            .min(today - Days::new(1));
        Ok((open, closed, first))
    }

    /// Every policy group's absence alerts and follow-ups, and when each
    /// open date closes; `None` when there are no employees yet.
    #[allow(clippy::type_complexity)]
    async fn decide_groups(
        &self,
        plan: &Plan,
        now: DateTime<Utc>,
        today: NaiveDate,
        first: NaiveDate,
        open: &[NaiveDate],
    ) -> Result<Option<(Vec<NewMessage>, HashMap<NaiveDate, DateTime<Utc>>)>, StoreError> {
        let policy = &*plan.policy;
        // Each policy group's employees with their own shifts, zone and
        // holidays (policy.md, "Several rule sets on one site").
        let all = match &plan.policies {
            Some(all) => all.clone(),
            None => Arc::new(crate::policy_file::Policies::single(policy.clone())),
        };
        let groups = self.store.employees_by_group(&all, today).await?;
        let alert_after = Duration::minutes(plan.schedule.alert_after_minutes);
        let close_delay = Duration::minutes(plan.schedule.close_delay_minutes);
        // Read once, and only when some alert is decided.
        let mut contacts: Option<HashMap<String, String>> = None;
        // The tick's alerts, stored together at the end.
        let mut alerts: Vec<NewMessage> = Vec::new();
        // When each open date closes: the latest over the groups.
        let mut close_at: HashMap<NaiveDate, DateTime<Utc>> = HashMap::new();
        let mut anyone = false;
        for (g, wanted) in groups {
            let policy = all.get(g);
            let wanted: Option<std::collections::HashSet<&str>> = wanted
                .as_ref()
                .map(|w| w.iter().map(String::as_str).collect());
            let margin = Duration::seconds(policy.window_before_secs + policy.window_after_secs);
            let lo =
                resolve_local(policy.tz, (first - Days::new(1)).and_time(NaiveTime::MIN)) - margin;
            let hi =
                resolve_local(policy.tz, (today + Days::new(2)).and_time(NaiveTime::MIN)) + margin;
            let Some(inputs) = self
                .store
                .load_inputs(
                    policy,
                    wanted.as_ref(),
                    first - Days::new(1),
                    today + Days::new(1),
                    lo,
                    hi,
                )
                .await?
            else {
                continue;
            };
            anyone = true;
            let clock = ShiftClock::new(policy, first - Days::new(1), today + Days::new(1));
            let ids: Vec<EmployeeId> = inputs
                .emps
                .iter()
                .map(|e| EmployeeId::from(e.employee_id.as_str()))
                .collect();
            let days: Vec<EmployeeDays<'_>> = inputs
                .emps
                .iter()
                .enumerate()
                .map(|(i, e)| EmployeeDays {
                    employee: &ids[i],
                    default_shift: e.shift.as_deref().and_then(|s| policy.shift_by_id(s)),
                    punches: &inputs.punches[i],
                    roster: Some(&inputs.roster[i]),
                    leaves: &inputs.leaves[i],
                    start_date: e.start_date,
                    end_date: e.end_date,
                })
                .collect();

            // Absence alerts and follow-ups: yesterday (overnight shifts) and today.
            let g = GroupDays {
                policy,
                clock: &clock,
                holidays: &inputs.holidays,
                emps: &inputs.emps,
                days: &days,
                alert_after,
            };
            for date in [today - Days::new(1), today] {
                self.absence_alerts(plan, &g, date, now, &mut contacts, &mut alerts)
                    .await?;
            }
            for &date in open {
                let at = close_time(&clock, &inputs.holidays, &days, date, close_delay);
                let e = close_at.entry(date).or_insert(at);
                *e = (*e).max(at);
            }
        }
        if !anyone {
            return Ok(None);
        }
        Ok(Some((alerts, close_at)))
    }

    /// One group's absence alerts and follow-ups for `date`, pushed onto
    /// `alerts`.
    async fn absence_alerts(
        &self,
        plan: &Plan,
        g: &GroupDays<'_>,
        date: NaiveDate,
        now: DateTime<Utc>,
        contacts: &mut Option<HashMap<String, String>>,
        alerts: &mut Vec<NewMessage>,
    ) -> Result<(), StoreError> {
        let GroupDays {
            policy,
            clock,
            holidays,
            emps,
            days,
            alert_after,
        } = *g;
        let wanted: Vec<String> = emps
            .iter()
            .flat_map(|e| {
                [
                    format!("absence/{date}/{}", e.employee_id),
                    format!("arrival/{date}/{}", e.employee_id),
                ]
            })
            .collect();
        let sent = self.store.outbox_keys(&wanted).await?;
        for (i, e) in emps.iter().enumerate() {
            let ka = format!("absence/{date}/{}", e.employee_id);
            let kr = format!("arrival/{date}/{}", e.employee_id);
            let state = AlertState {
                absence_sent: sent.contains(&ka),
                arrival_sent: sent.contains(&kr),
            };
            let decision =
                absence_decision(clock, holidays, &days[i], date, alert_after, now, state);
            let (key, kind, detail) = match decision {
                AlertDecision::Nothing => continue,
                AlertDecision::Absent {
                    shift_start,
                    minutes_late,
                } => (
                    ka,
                    "absence",
                    json!({
                        "shift_start": local_rfc3339(policy, shift_start),
                        "minutes_late": minutes_late,
                        "text": format!(
                            "{} {} has no punch {} min after the shift start {} — 未打卡",
                            e.employee_id, e.name, minutes_late,
                            to_local(policy.tz, shift_start).format("%H:%M")
                        ),
                    }),
                ),
                AlertDecision::Arrived { at, minutes_late } => (
                    kr,
                    "arrival",
                    json!({
                        "arrived_at": local_rfc3339(policy, at),
                        "minutes_late": minutes_late,
                        "follow_up_of": ka,
                        "text": format!(
                            "{} {} arrived at {}, {} min after the shift start — 已到岗",
                            e.employee_id, e.name,
                            to_local(policy.tz, at).format("%H:%M"), minutes_late
                        ),
                    }),
                ),
            };
            let shift = shift_on(
                policy,
                holidays,
                days[i].roster,
                days[i].default_shift,
                date,
            )
            .0
            .map(|s| policy.shifts[s.0 as usize].id.to_string());
            if contacts.is_none() {
                *contacts = Some(self.store.supervisor_contacts().await?);
            }
            let contact = contacts
                .as_ref()
                .and_then(|c| c.get(&e.employee_id))
                .cloned();
            let mut payload = json!({
                "schema": schema_id(kind),
                "id": key,
                "kind": kind,
                "date": date,
                "employee_id": e.employee_id,
                "name": e.name,
                "team": e.team,
                "supervisor": e.supervisor,
                "supervisor_contact": contact,
                "shift": shift,
                "decided_at": local_rfc3339(policy, now),
            });
            merge(&mut payload, detail);
            alerts.push(self.message(plan, key, kind, payload, Some(&e.team)));
        }
        Ok(())
    }

    /// Day close: the last shift end + grace + close_delay has passed.
    async fn close_due(
        &self,
        plan: &Plan,
        open: Vec<NaiveDate>,
        close_at: &HashMap<NaiveDate, DateTime<Utc>>,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let policy = &*plan.policy;
        for date in open {
            if close_at.get(&date).is_none_or(|at| now < *at) {
                continue;
            }
            let started = std::time::Instant::now();
            match &plan.policies {
                Some(all) => self.store.recompute_closing(all, date, now).await?,
                None => self.store.recompute_closing(policy, date, now).await?,
            };
            let summary = daily_summary(&self.store, policy, date).await?;
            let hash = summary_hash(&summary);
            let close = DayClose {
                date,
                revision: 0,
                summary_hash: hash,
                closed_at: now,
                updated_at: now,
            };
            self.publish_summary(plan, &close, summary, now).await?;
            info!(
                %date,
                seconds = started.elapsed().as_secs_f64(),
                "day closed; daily deduction summary published"
            );
            report.closed.push(date);
        }
        Ok(())
    }

    /// Revisions: late data changed a closed day's verdicts.
    async fn revise_closed(
        &self,
        plan: &Plan,
        closed: Vec<DayClose>,
        now: DateTime<Utc>,
        report: &mut TickReport,
    ) -> Result<(), StoreError> {
        let policy = &*plan.policy;
        for c in closed {
            if self
                .store
                .verdicts_changed_since(c.date, c.updated_at)
                .await?
                == 0
            {
                continue;
            }
            let summary = daily_summary(&self.store, policy, c.date).await?;
            let hash = summary_hash(&summary);
            let mut next = c.clone();
            next.updated_at = now;
            if hash != c.summary_hash {
                next.revision += 1;
                next.summary_hash = hash;
                self.publish_summary(plan, &next, summary, now).await?;
                info!(date = %c.date, revision = next.revision, "closed day changed after late data; corrected summary published");
                report.revised.push(c.date);
            } else {
                self.store.save_day_close(&next, None).await?;
            }
        }
        Ok(())
    }

    async fn publish_summary(
        &self,
        plan: &Plan,
        close: &DayClose,
        mut summary: serde_json::Value,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let key = format!("summary/{}/r{}", close.date, close.revision);
        merge(
            &mut summary,
            json!({
                "schema": schema_id("summary"),
                "id": key,
                "kind": "summary",
                "revision": close.revision,
                "revises": (close.revision > 0)
                    .then(|| format!("summary/{}/r{}", close.date, close.revision - 1)),
                "closed_at": local_rfc3339(&plan.policy, close.closed_at),
            }),
        );
        let text = summary.to_string();
        let msg = self.message(plan, key, "summary", summary, None);
        self.store.enqueue_summary(&msg, close, &text, now).await?;
        Ok(())
    }

    /// A message addressed to the sinks whose routes take it.
    fn message(
        &self,
        plan: &Plan,
        key: String,
        kind: &str,
        payload: serde_json::Value,
        team: Option<&str>,
    ) -> NewMessage {
        let sinks: Vec<String> = plan
            .routes
            .iter()
            .filter(|r| r.takes(kind, team))
            .map(|r| r.name.clone())
            .collect();
        NewMessage {
            key,
            kind: kind.to_string(),
            payload,
            sinks,
        }
    }

    async fn enqueue(
        &self,
        plan: &Plan,
        key: String,
        kind: &str,
        payload: serde_json::Value,
        team: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let msg = self.message(plan, key, kind, payload, team);
        self.store.enqueue(&msg, now).await
    }

    /// Announces each month published (from the CLI or the API) within the
    /// last `revision_days`, once: the scores are final and the appeal
    /// window is open until the deadline in the message
    /// (坐席员考核细则 一(七): 公布2天内提出申述).
    async fn publications(&self, plan: &Plan, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let policy = &*plan.policy;
        let recent = Duration::days(plan.schedule.revision_days.max(1));
        let mut count = 0;
        for month in self.store.published_months().await? {
            let key = format!("publication/{month}");
            let Some((at, by)) = self.store.published(&month).await? else {
                continue;
            };
            if now - at > recent {
                continue;
            }
            // The deadline is the first refused instant; people read a
            // deadline as the last allowed one, so the message states that
            // (a month published on 11-30 with 2 days: 12-02 23:59:59).
            let deadline =
                crate::domain::appeal::appeal_deadline(at, policy.tz, policy.appeal_days);
            let last = deadline - Duration::seconds(1);
            let until = to_local(policy.tz, last).format("%Y-%m-%d %H:%M:%S");
            let payload = json!({
                "schema": schema_id("publication"),
                "id": key,
                "kind": "publication",
                "month": month,
                "published_at": local_rfc3339(policy, at),
                "published_by": by,
                "appeals_until": local_rfc3339(policy, last),
                "text": format!(
                    "{month} scores published by {by}; appeals until {until} inclusive — 考核结果已公布，申诉截止 {until}"
                ),
            });
            if self
                .enqueue(plan, key, "publication", payload, None, now)
                .await?
            {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Silent terminals (during working hours), clocks running ahead, and
    /// quarantine spikes, each alerted once per device and day (spikes once
    /// per hour).
    async fn terminal_health(
        &self,
        plan: &Plan,
        now: DateTime<Utc>,
        today: NaiveDate,
    ) -> Result<usize, StoreError> {
        let s = &plan.schedule;
        let policy = &*plan.policy;
        let local = to_local(policy.tz, now);
        let mut alerts: Vec<(String, serde_json::Value)> = Vec::new();
        let ops = s.operations_contact.as_str();
        if s.terminal_silent_minutes > 0
            && let Some((from, to)) = s.working_hours()
            && local.time() >= from
            && local.time() < to
        {
            let silent = Duration::minutes(s.terminal_silent_minutes);
            for (device, last) in self
                .store
                .devices_last_seen(now - Duration::days(7))
                .await?
            {
                if now - last >= silent {
                    alerts.push((
                        format!("terminal/silent/{today}/{device}"),
                        json!({
                            "problem": "silent",
                            "device_id": device,
                            "last_seen": local_rfc3339(policy, last),
                            "text": format!(
                                "terminal {device} silent since {} ({} min) — 终端无数据",
                                to_local(policy.tz, last).format("%Y-%m-%d %H:%M"),
                                (now - last).num_minutes()
                            ),
                        }),
                    ));
                }
            }
        }
        for (device, at, skew) in self.drift.since(now - Duration::hours(1)) {
            alerts.push((
                format!("terminal/clock/{today}/{device}"),
                json!({
                    "problem": "clock_ahead",
                    "device_id": device,
                    "seen_at": local_rfc3339(policy, at),
                    "skew_seconds": skew,
                    "text": format!("terminal {device} clock runs {skew} s ahead — 终端时钟偏差"),
                }),
            ));
        }
        if s.quarantine_spike > 0 {
            let n = self
                .store
                .quarantine_since(now - Duration::minutes(10))
                .await?;
            if n > s.quarantine_spike {
                alerts.push((
                    format!("terminal/quarantine/{}", local.format("%Y-%m-%dT%H")),
                    json!({
                        "problem": "quarantine_spike",
                        "count": n,
                        "text": format!("{n} undecodable payloads in the last 10 min — 数据异常"),
                    }),
                ));
            }
        }
        let mut count = 0;
        for (key, mut payload) in alerts {
            merge(
                &mut payload,
                json!({
                    "schema": schema_id("terminal"),
                    "id": key,
                    "kind": "terminal",
                    "to": ops,
                    "decided_at": local_rfc3339(policy, now),
                }),
            );
            if self
                .enqueue(plan, key, "terminal", payload, None, now)
                .await?
            {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Ticks every `every` until `shutdown`, logging failures and retrying
    /// on the next tick.
    pub async fn run(self: Arc<Self>, every: StdDuration, shutdown: CancellationToken) {
        loop {
            match self.tick(crate::clock::now()).await {
                Ok(r) => {
                    if r != TickReport::default() {
                        info!(
                            absences = r.absences,
                            arrivals = r.arrivals,
                            closed = r.closed.len(),
                            revised = r.revised.len(),
                            terminal = r.terminal,
                            publications = r.publications,
                            "scheduler decided"
                        );
                    }
                }
                Err(e) => warn!("scheduler: {e}; retrying next tick"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                // On a test clock (`ATTENDD_FAULT_CLOCK`) the tick follows
                // it: `every` of its time, not of the wall clock.
                _ = tokio::time::sleep(crate::clock::scaled(every)) => {}
            }
        }
    }
}

/// The `schema` field of an output message of `kind`: names its JSON
/// Schema, `config/schemas/KIND.v1.json` (whose `$id` it is). A change
/// that breaks readers gets a new version.
pub fn schema_id(kind: &str) -> String {
    format!("attendd/{kind}/v1")
}

/// Every time in an output message: RFC 3339 with the site's offset.
fn local_rfc3339(policy: &Policy, at: DateTime<Utc>) -> String {
    to_local(policy.tz, at).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
    if let (Some(a), serde_json::Value::Object(b)) = (into.as_object_mut(), from) {
        for (k, v) in b {
            a.insert(k, v);
        }
    }
}

impl Scheduler {
    /// Announces to HR, once each, the appeals not answered within the
    /// policy's `appeal_answer_days` (坐席员考核细则 一(七)); returns how
    /// many were new.
    async fn appeals_overdue(&self, plan: &Plan, now: DateTime<Utc>) -> Result<usize, StoreError> {
        let due = match &plan.policies {
            Some(all) => crate::hr::overdue_announcements(&self.store, &**all, now).await,
            None => crate::hr::overdue_announcements(&self.store, &*plan.policy, now).await,
        }
        .map_err(|e| match e {
            crate::hr::HrError::Store(s) => s,
            other => StoreError::Corrupt {
                key: "appeals".into(),
                why: other.to_string(),
            },
        })?;
        let mut count = 0;
        for (key, payload) in due {
            if self
                .enqueue(plan, key, "appeal", payload, None, now)
                .await?
            {
                count += 1;
            }
        }
        Ok(count)
    }
}
