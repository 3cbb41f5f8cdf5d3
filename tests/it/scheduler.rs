//! The scheduler on a real SQLite store, with "now" as an argument: every
//! tick is a chosen instant, so these tests run on paused time.

use std::sync::Arc;

use attendd::config::RawSchedule;
use attendd::domain::policy::Policy;
use attendd::scheduler::{DriftBoard, Plan, Route, Scheduler, TickReport};
use attendd::store::outbox::OutboxRow;
use attendd::store::{EmployeeRecord, LeaveRecord, NewPunch, RosterRecord, Store};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;

fn policy(name: &str) -> Policy {
    let p = crate::common::root().join(format!("config/policies/{name}.toml"));
    attendd::policy_file::load(&p).unwrap()
}

/// Local Shanghai time on 2026-03-02 (a Monday) or another date.
fn at(date: &str, hm: &str) -> DateTime<Utc> {
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    let t = chrono::NaiveTime::parse_from_str(hm, "%H:%M").unwrap();
    Shanghai
        .from_local_datetime(&d.and_time(t))
        .unwrap()
        .with_timezone(&Utc)
}

struct Site {
    _dir: tempfile::TempDir,
    store: Store,
    sched: Scheduler,
    policy: Arc<Policy>,
}

async fn site(policy_name: &str, employees: &[(&str, &str, Option<&str>)]) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let store = Store::open(&url).await.unwrap();
    let rows: Vec<EmployeeRecord> = employees
        .iter()
        .map(|(id, team, shift)| EmployeeRecord {
            employee_id: id.to_string(),
            name: format!("Name {id}"),
            team: team.to_string(),
            supervisor: format!("boss-{team}"),
            shift: shift.map(String::from),
            aliases: vec![],
            start_date: None,
            end_date: None,
        })
        .collect();
    store
        .upsert_employees(&rows, chrono::Utc::now())
        .await
        .unwrap();
    let policy = Arc::new(policy(policy_name));
    let schedule = RawSchedule {
        // Terminal health has its own test; keep it quiet elsewhere.
        terminal_silent_minutes: 0,
        quarantine_spike: 0,
        ..RawSchedule::default()
    };
    let sched = Scheduler::new(
        store.clone(),
        Plan {
            policy: policy.clone(),
            policies: None,
            schedule,
            routes: vec![
                Route {
                    name: "hook".into(),
                    events: None,
                    teams: None,
                },
                Route {
                    name: "team-b-only".into(),
                    events: Some(vec!["absence".into(), "arrival".into()]),
                    teams: Some(vec!["B".into()]),
                },
            ],
        },
        Arc::new(DriftBoard::default()),
    );
    Site {
        _dir: dir,
        store,
        sched,
        policy,
    }
}

impl Site {
    async fn punch(&self, emp: &str, t: DateTime<Utc>) {
        self.store
            .insert_punches(
                &[NewPunch {
                    employee_id: emp.into(),
                    identity: emp.into(),
                    time: t,
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
    }

    async fn tick(&self, t: DateTime<Utc>) -> TickReport {
        self.sched.tick(t).await.unwrap()
    }

    async fn outbox(&self) -> Vec<OutboxRow> {
        let mut v = self.store.outbox(None, 1000).await.unwrap();
        v.reverse();
        v
    }

    /// Alert keys in decision order (summaries of closed days left out).
    async fn keys(&self) -> Vec<String> {
        self.alerts().await.into_iter().map(|r| r.key).collect()
    }

    async fn alerts(&self) -> Vec<OutboxRow> {
        let mut v = self.outbox().await;
        v.retain(|r| r.kind != "summary");
        v
    }
}

const D: &str = "2026-03-02";

#[tokio::test]
async fn on_time_arrival_raises_no_alert() {
    let s = site("seed-default", &[("E1", "A", None)]).await;
    s.punch("E1", at(D, "08:25")).await;
    for hm in ["08:30", "09:00", "09:01", "12:00", "17:00"] {
        s.tick(at(D, hm)).await;
    }
    assert!(s.keys().await.is_empty(), "{:?}", s.keys().await);
}

#[tokio::test]
async fn absence_raises_exactly_one_alert_after_alert_after() {
    let s = site("seed-default", &[("E1", "A", None), ("E2", "B", None)]).await;
    s.punch("E2", at(D, "08:20")).await;
    assert_eq!(
        s.tick(at(D, "08:59")).await.absences,
        0,
        "29 min: too early"
    );
    let r = s.tick(at(D, "09:00")).await;
    assert_eq!(r.absences, 1);
    for hm in ["09:01", "09:30", "12:00"] {
        assert_eq!(s.tick(at(D, hm)).await.absences, 0);
    }
    let rows = s.alerts().await;
    assert_eq!(rows.len(), 1);
    let a = &rows[0];
    assert_eq!(a.key, format!("absence/{D}/E1"));
    assert_eq!(a.payload["id"], a.key);
    assert_eq!(a.payload["supervisor"], "boss-A");
    assert_eq!(a.payload["shift"], "day");
    assert_eq!(a.payload["minutes_late"], 30);
    assert_eq!(a.payload["shift_start"], "2026-03-02T08:30:00+08:00");
    // Team A: the all-teams sink only.
    assert_eq!(a.sinks, 1);
}

#[tokio::test]
async fn late_arrival_after_the_alert_sends_one_follow_up() {
    let s = site("seed-default", &[("E1", "B", None)]).await;
    s.tick(at(D, "09:05")).await;
    s.punch("E1", at(D, "09:40")).await;
    let r = s.tick(at(D, "09:41")).await;
    assert_eq!((r.absences, r.arrivals), (0, 1));
    assert_eq!(s.tick(at(D, "10:00")).await.arrivals, 0);
    let rows = s.alerts().await;
    assert_eq!(
        rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        [format!("absence/{D}/E1"), format!("arrival/{D}/E1")]
    );
    let f = &rows[1].payload;
    assert_eq!(f["minutes_late"], 70);
    assert_eq!(f["follow_up_of"], format!("absence/{D}/E1"));
    // Team B: both sinks.
    assert_eq!(rows[1].sinks, 2);
}

#[tokio::test]
async fn approved_leave_holds_the_alert_back_and_pending_leave_does_not() {
    let s = site("seed-default", &[("E1", "A", None), ("E2", "A", None)]).await;
    let leave = |e: &str, status: &str| LeaveRecord {
        employee_id: e.into(),
        start: at(D, "00:00"),
        end: at("2026-03-03", "00:00"),
        kind: "annual".into(),
        status: status.into(),
        requested_at: None,
        document: None,
    };
    s.store
        .upsert_leaves(
            &[leave("E1", "approved"), leave("E2", "pending")],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    s.tick(at(D, "09:30")).await;
    assert_eq!(s.keys().await, [format!("absence/{D}/E2")]);
}

#[tokio::test]
async fn overnight_shift_alerts_after_midnight_boundaries_correctly() {
    let s = site("city-management-24h", &[("N1", "night", None)]).await;
    s.store
        .upsert_roster(
            &[RosterRecord {
                employee_id: "N1".into(),
                date: NaiveDate::parse_from_str(D, "%Y-%m-%d").unwrap(),
                shift: "night".into(),
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    // The night shift starts 18:00; grace 0 in this policy, alert at 18:30.
    assert_eq!(s.tick(at(D, "18:29")).await.absences, 0);
    assert_eq!(s.tick(at(D, "18:30")).await.absences, 1);
    // After midnight the shift (dated the day it starts) is still running:
    // a punch at 00:10 is the arrival, decided on the next date's tick.
    s.punch("N1", at("2026-03-03", "00:10")).await;
    let r = s.tick(at("2026-03-03", "00:11")).await;
    assert_eq!(r.arrivals, 1);
    assert_eq!(
        s.keys().await,
        [format!("absence/{D}/N1"), format!("arrival/{D}/N1")]
    );
}

#[tokio::test]
async fn a_restart_in_the_middle_decides_nothing_twice() {
    let s = site("seed-default", &[("E1", "A", None), ("E2", "A", None)]).await;
    s.tick(at(D, "09:10")).await;
    assert_eq!(s.keys().await.len(), 2);
    // A new scheduler over the same store: what the old one decided is in
    // the outbox, so the new one adds nothing.
    let again = Scheduler::new(
        s.store.clone(),
        Plan {
            policy: s.policy.clone(),
            policies: None,
            schedule: RawSchedule::default(),
            routes: vec![],
        },
        Arc::new(DriftBoard::default()),
    );
    let r = again.tick(at(D, "09:11")).await.unwrap();
    assert_eq!((r.absences, r.arrivals), (0, 0));
    assert_eq!(s.keys().await.len(), 2);
}

#[tokio::test]
async fn day_close_publishes_the_summary_and_late_data_publishes_a_revision() {
    let s = site("seed-default", &[("E1", "A", None), ("E2", "A", None)]).await;
    s.punch("E1", at(D, "08:20")).await;
    s.punch("E1", at(D, "17:40")).await;
    let d = NaiveDate::parse_from_str(D, "%Y-%m-%d").unwrap();
    // 17:30 + 15 min grace + 60 min delay = 18:45. (The first tick also
    // closes yesterday, the one day before attendd started it announces.)
    assert!(!s.tick(at(D, "18:44")).await.closed.contains(&d));
    let r = s.tick(at(D, "18:45")).await;
    assert_eq!(r.closed, [d]);
    assert!(
        s.tick(at(D, "19:00")).await.closed.is_empty(),
        "closes once"
    );
    let rows = s.outbox().await;
    let sum = rows
        .iter()
        .find(|r| r.key == format!("summary/{D}/r0"))
        .unwrap();
    assert_eq!(sum.payload["revision"], 0);
    assert_eq!(sum.payload["provisional"], false);
    assert_eq!(sum.payload["totals"]["employees"], 2);
    let e2 = sum.payload["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["employee_id"] == "E2")
        .unwrap();
    assert_eq!(e2["status"], "absent_full");

    // A late upload: E2 did work that day. The ingest path re-classifies
    // the day; the next tick publishes a corrected summary.
    s.punch("E2", at(D, "08:25")).await;
    s.punch("E2", at(D, "17:35")).await;
    s.store
        .recompute(
            &s.policy,
            Some(&["E2".to_string()]),
            NaiveDate::parse_from_str(D, "%Y-%m-%d").unwrap(),
            NaiveDate::parse_from_str(D, "%Y-%m-%d").unwrap(),
            "punches received",
            "ingest",
            at("2026-03-03", "10:00"),
        )
        .await
        .unwrap();
    let r = s.tick(at("2026-03-03", "10:01")).await;
    assert_eq!(r.revised.len(), 1);
    assert!(s.tick(at("2026-03-03", "10:02")).await.revised.is_empty());
    let rows = s.outbox().await;
    let rev = rows
        .iter()
        .find(|r| r.key == format!("summary/{D}/r1"))
        .unwrap();
    assert_eq!(rev.payload["revision"], 1);
    assert_eq!(rev.payload["revises"], format!("summary/{D}/r0"));
    let e2 = rev.payload["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["employee_id"] == "E2")
        .unwrap();
    assert_eq!(e2["status"], "present");
    let close = s
        .store
        .day_close(NaiveDate::parse_from_str(D, "%Y-%m-%d").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(close.revision, 1);
}

#[tokio::test]
async fn silent_terminals_and_clocks_ahead_alert_the_operations_contact_once_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("a.db").display()))
        .await
        .unwrap();
    store
        .upsert_employees(
            &[EmployeeRecord {
                employee_id: "E1".into(),
                name: "n".into(),
                team: "A".into(),
                supervisor: "s".into(),
                shift: None,
                aliases: vec![],
                start_date: None,
                end_date: None,
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    // The punch's received_at is the real clock; tick two hours later.
    let now = Utc::now();
    store
        .insert_punches(
            &[NewPunch {
                employee_id: "E1".into(),
                identity: "E1".into(),
                time: now,
                device_id: Some("gate-7".into()),
                event_id: None,
                source: "test".into(),
                raw: None,
                direction: None,
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let drift = Arc::new(DriftBoard::default());
    drift.flag("gate-9", now + chrono::Duration::minutes(30), 900);
    let sched = Scheduler::new(
        store.clone(),
        Plan {
            policy: Arc::new(policy("seed-default")),
            policies: None,
            schedule: RawSchedule {
                terminal_silent_minutes: 60,
                working_hours: "00:00-23:59".into(),
                ..RawSchedule::default()
            },
            routes: vec![],
        },
        drift,
    );
    let later = now + chrono::Duration::minutes(61);
    let r = sched.tick(later).await.unwrap();
    assert_eq!(r.terminal, 2, "{r:?}");
    assert_eq!(sched.tick(later).await.unwrap().terminal, 0);
    let rows = store.outbox(Some("terminal"), 10).await.unwrap();
    for r in &rows {
        validate("terminal", &r.payload);
    }
    let problems: Vec<&str> = rows
        .iter()
        .map(|r| r.payload["problem"].as_str().unwrap())
        .collect();
    assert!(problems.contains(&"silent") && problems.contains(&"clock_ahead"));
    assert!(rows.iter().all(|r| r.payload["to"] == "operations"));
}

#[tokio::test]
async fn a_published_month_is_announced_once_with_its_appeal_deadline() {
    let s = site("seed-default", &[("E1", "A", None)]).await;
    let published = at("2026-04-01", "10:00");
    s.store
        .publish_month_at("2026-03", "hr-office", published)
        .await
        .unwrap();
    let r = s.tick(at("2026-04-01", "10:01")).await;
    assert_eq!(r.publications, 1);
    assert_eq!(s.tick(at("2026-04-01", "10:02")).await.publications, 0);
    let rows = s.store.outbox(Some("publication"), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    let p = &rows[0].payload;
    assert_eq!(p["id"], "publication/2026-03");
    assert_eq!(p["published_by"], "hr-office");
    // 坐席员考核细则 一(七): appeals within 2 days of publication — until the
    // end of the 2nd calendar day after it. Issue 17: the message states the
    // last moment (inclusive), not the first refused instant.
    assert_eq!(p["appeals_until"], "2026-04-03T23:59:59+08:00");
    assert!(
        p["text"].as_str().unwrap().contains("2026-04-03 23:59:59"),
        "{p}"
    );
    validate("publication", p);
}

/// Checks `m` against `config/schemas/KIND.v1.json` by hand: `type`,
/// `const`, `enum`, `required`, `properties`, `items`,
/// `additionalProperties`, `minimum`, `minLength`, `format` (`date-time`:
/// RFC 3339 with an offset; `date`) and `allOf` of `if`/`then`. (The
/// `jsonschema` crate pulls in an HTTP client and a regex engine for this
/// one test; patterns are checked by Python's `jsonschema` in
/// [`validate`] where it is installed.)
fn check(schema: &serde_json::Value, v: &serde_json::Value, at: &str) -> Vec<String> {
    use serde_json::Value;
    let mut errs = Vec::new();
    if let Some(c) = schema.get("const")
        && c != v
    {
        errs.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v} not in {e:?}"));
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            errs.push(format!("{at}: {v} is not {types:?}"));
        }
    }
    if let (Some(f), Some(s)) = (schema.get("format").and_then(Value::as_str), v.as_str()) {
        let ok = match f {
            "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok() && !s.ends_with('Z'),
            "date" => NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            _ => true,
        };
        if !ok {
            errs.push(format!("{at}: {s:?} is not a {f}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64())
        && n < min
    {
        errs.push(format!("{at}: {n} < {min}"));
    }
    if let (Some(min), Some(s)) = (schema.get("minLength").and_then(Value::as_u64), v.as_str())
        && (s.chars().count() as u64) < min
    {
        errs.push(format!("{at}: {s:?} shorter than {min}"));
    }
    if let Some(o) = v.as_object() {
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !o.contains_key(r) {
                errs.push(format!("{at}: `{r}` is missing"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => errs.extend(check(ps, x, &format!("{at}.{k}"))),
                None => {
                    if let Some(ap) = schema.get("additionalProperties") {
                        errs.extend(check(ap, x, &format!("{at}.{k}")));
                    }
                }
            }
        }
    }
    if let (Some(items), Some(a)) = (schema.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            errs.extend(check(items, x, &format!("{at}[{i}]")));
        }
    }
    for sub in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let (Some(cond), Some(then)) = (sub.get("if"), sub.get("then")) {
            if check(cond, v, at).is_empty() {
                errs.extend(check(then, v, at));
            }
        } else {
            errs.extend(check(sub, v, at));
        }
    }
    errs
}

/// Asserts that `m` is a valid `kind` message: the hand check above, and
/// Python's `jsonschema` (Draft 2020-12, patterns included) when present.
pub(crate) fn validate(kind: &str, m: &serde_json::Value) {
    let path = crate::common::root().join(format!("config/schemas/{kind}.v1.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(m["schema"], schema["$id"], "{m}");
    let errs = check(&schema, m, kind);
    assert!(errs.is_empty(), "{kind}: {errs:#?}\n{m:#}");
    let py = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,jsonschema\n\
             s=json.load(open(sys.argv[1])); m=json.loads(sys.argv[2])\n\
             jsonschema.Draft202012Validator(s, format_checker=jsonschema.FormatChecker()).validate(m)",
        ])
        .arg(&path)
        .arg(m.to_string())
        .output();
    match py {
        Ok(o) if o.status.success() => {}
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named") => {
            eprintln!("python3 jsonschema not installed: {kind} checked by hand only");
        }
        Ok(o) => panic!(
            "{kind}: python jsonschema: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("no python3: {kind} checked by hand only"),
    }
}

/// Issue 17: every output message names its schema and validates against
/// it; times are RFC 3339 with the site's offset; absences carry the
/// supervisor's contact from employees.csv.
#[tokio::test]
async fn every_output_message_validates_against_its_schema() {
    let s = site("seed-default", &[("E1", "A", None), ("E2", "B", None)]).await;
    s.store
        .set_supervisor_contacts(&[("E1".into(), Some("13800001111".into()))])
        .await
        .unwrap();
    assert_eq!(s.tick(at(D, "09:05")).await.absences, 2);
    s.punch("E1", at(D, "09:40")).await;
    assert_eq!(s.tick(at(D, "09:41")).await.arrivals, 1);
    s.punch("E1", at(D, "17:40")).await;
    s.tick(at(D, "18:45")).await;
    s.store
        .publish_month_at("2026-02", "hr-office", at(D, "19:00"))
        .await
        .unwrap();
    s.tick(at(D, "19:01")).await;
    let rows = s.outbox().await;
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.kind.as_str()).collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["absence", "arrival", "publication", "summary"]);
    for r in &rows {
        validate(&r.kind, &r.payload);
    }
    let a1 = &rows
        .iter()
        .find(|r| r.key == format!("absence/{D}/E1"))
        .unwrap()
        .payload;
    assert_eq!(a1["supervisor_contact"], "13800001111");
    assert_eq!(a1["decided_at"], "2026-03-02T09:05:00+08:00");
    let a2 = &rows
        .iter()
        .find(|r| r.key == format!("absence/{D}/E2"))
        .unwrap()
        .payload;
    assert!(a2["supervisor_contact"].is_null());
    let sum = rows.iter().find(|r| r.kind == "summary").unwrap();
    assert!(
        sum.payload["closed_at"]
            .as_str()
            .unwrap()
            .ends_with("+08:00")
    );
}
