//! A small HR store and the API router over it, for the API, appeal,
//! export and dashboard tests.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use attendd::domain::policy::Policy;
use attendd::http::api::Api;
use attendd::http::auth::{ApiToken, Role};
use attendd::store::{EmployeeRecord, NewPunch, Store};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, TimeZone, Utc};
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/policies/seed-default.toml"
);

pub const HR: &str = "hr-token-0123456789";
pub const SUP_A: &str = "sup-a-token-0123456789";
pub const TERM: &str = "term-token-0123456789";

/// A local time in Asia/Shanghai.
pub fn sh(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(y, m, d, h, mi, s)
        .unwrap()
        .with_timezone(&Utc)
}

pub fn tokens() -> Vec<ApiToken> {
    vec![
        ApiToken {
            name: "hr-office".into(),
            secret: HR.into(),
            role: Role::Hr,
        },
        ApiToken {
            name: "sup-a".into(),
            secret: SUP_A.into(),
            role: Role::Supervisor("A".into()),
        },
        ApiToken {
            name: "gatekeeper".into(),
            secret: TERM.into(),
            role: Role::TerminalAdmin,
        },
    ]
}

fn emp(id: &str, name: &str, team: &str) -> EmployeeRecord {
    EmployeeRecord {
        employee_id: id.into(),
        name: name.into(),
        team: team.into(),
        supervisor: format!("lead-{team}"),
        shift: None,
        aliases: Vec::new(),
        start_date: None,
        end_date: None,
    }
}

pub fn punch(emp: &str, at: DateTime<Utc>) -> NewPunch {
    NewPunch {
        employee_id: emp.into(),
        identity: emp.into(),
        time: at,
        device_id: Some("gate-1".into()),
        event_id: None,
        source: "test".into(),
        raw: None,
        direction: None,
    }
}

/// The store, policy and a settable clock.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub store: Store,
    pub policy: Arc<Policy>,
    pub clock: Arc<AtomicI64>,
}

impl Fixture {
    /// Sets the API's "now".
    pub fn set_now(&self, at: DateTime<Utc>) {
        self.clock.store(at.timestamp(), Ordering::SeqCst);
    }

    /// The whole router (health, metrics, API, dashboard).
    pub fn router(&self) -> axum::Router {
        let clock = self.clock.clone();
        let api = Api::with_live(
            self.store.clone(),
            attendd::http::api::live(self.policy.clone(), tokens()),
        )
        .with_clock(Arc::new(move || {
            DateTime::from_timestamp(clock.load(Ordering::SeqCst), 0).unwrap()
        }));
        attendd::http::router(attendd::http::AppState {
            metrics: Default::default(),
            health: Default::default(),
            api: Some(Arc::new(api)),
        })
    }
}

/// Team A: E001 Alice (on time 2026-11-02), E002 Bob (09:01: half-day
/// absence), E004 Dan (08:20 only: missing check-out). Team B: E003 Carol
/// (no punch: absent). November 2026 classified as of 2026-11-20.
pub async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("attendd.db").display());
    let store = Store::open(&url).await.unwrap();
    let policy = Arc::new(attendd::policy_file::load(Path::new(POLICY)).unwrap());
    store
        .upsert_employees(
            &[
                emp("E001", "Alice", "A"),
                emp("E002", "Bob", "A"),
                emp("E003", "Carol", "B"),
                emp("E004", "Dan", "A"),
            ],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store
        .insert_punches(
            &[
                punch("E001", sh(2026, 11, 2, 8, 29, 0)),
                punch("E001", sh(2026, 11, 2, 17, 31, 0)),
                punch("E002", sh(2026, 11, 2, 9, 1, 0)),
                punch("E002", sh(2026, 11, 2, 17, 30, 0)),
                punch("E004", sh(2026, 11, 2, 8, 20, 0)),
            ],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let now = sh(2026, 11, 2, 23, 0, 0);
    store
        .recompute(
            &policy,
            None,
            chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
            "test",
            "test",
            now,
        )
        .await
        .unwrap();
    Fixture {
        dir,
        url,
        store,
        policy,
        clock: Arc::new(AtomicI64::new(now.timestamp())),
    }
}

/// A response: status, content type, body.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Reply {
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request through the router.
pub async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string()))
            .unwrap(),
        None => req.body(Body::empty()).unwrap(),
    };
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        content_type,
        body,
    }
}
