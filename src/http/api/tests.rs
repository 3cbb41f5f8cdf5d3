//! Which error wins when a request has several: the token, the path, the
//! role, the parameters and the body are checked in this order, and the
//! answers keep their status and message.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::http::api::{Api, router};
use crate::http::auth::{ApiToken, Role};

const HR: &str = "hr-secret-0123456789";
const SUP: &str = "sup-secret-0123456789";
const TERM: &str = "term-secret-0123456789";

/// A fresh SQLite store in a temporary folder and the seed's policy.
async fn store_and_policy() -> (
    crate::store::Store,
    crate::domain::policy::Policy,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = crate::store::Store::open(&url).await.unwrap();
    let policy = crate::policy_file::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/policies/seed-default.toml"
    )))
    .unwrap();
    (store, policy, dir)
}

async fn app() -> (axum::Router, tempfile::TempDir) {
    let (store, policy, dir) = store_and_policy().await;
    let token = |name: &str, secret: &str, role| ApiToken {
        name: name.into(),
        secret: secret.into(),
        role,
    };
    let tokens = vec![
        token("hr", HR, Role::Hr),
        token("sup", SUP, Role::Supervisor("A".into())),
        token("term", TERM, Role::TerminalAdmin),
    ];
    (router(Arc::new(Api::new(store, policy, tokens))), dir)
}

/// Status and body text of one request.
async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, String) {
    let mut r = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    let resp = app
        .clone()
        .oneshot(r.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn get(app: &axum::Router, uri: &str, token: Option<&str>) -> (StatusCode, String) {
    call(app, "GET", uri, token, None, "").await
}

#[track_caller]
fn expect(got: (StatusCode, String), status: u16, starts: &str) {
    assert_eq!(got.0.as_u16(), status, "{}", got.1);
    let msg = serde_json::from_str::<serde_json::Value>(&got.1)
        .ok()
        .and_then(|v| v["error"].as_str().map(String::from))
        .unwrap_or(got.1.clone());
    assert!(
        msg.starts_with(starts),
        "{msg:?} does not start with {starts:?}"
    );
}

#[tokio::test]
async fn token_then_path_then_role_then_parameters() {
    let (app, _dir) = app().await;
    expect(
        get(&app, "/api/v1/days/2026-13-01?limit=x", None).await,
        401,
        "missing or unknown",
    );
    expect(
        get(&app, "/api/v1/days/%FF", None).await,
        401,
        "missing or unknown",
    );
    // A path that is not UTF-8 is refused before the role is looked at.
    expect(
        get(&app, "/api/v1/days/%FF", Some(TERM)).await,
        400,
        "Invalid URL: Invalid UTF-8 in `date`",
    );
    expect(
        get(&app, "/api/v1/days/bad?limit=x", Some(TERM)).await,
        403,
        "not allowed",
    );
    expect(
        get(&app, "/api/v1/days/bad?limit=x", Some(HR)).await,
        400,
        "date: ",
    );
    expect(
        get(
            &app,
            "/api/v1/days/2026-01-05?limit=x&offset=y&team=B",
            Some(SUP),
        )
        .await,
        400,
        "limit: \"x\" is not a non-negative integer",
    );
    expect(
        get(
            &app,
            "/api/v1/summaries/2026-01-05?limit=0&offset=y",
            Some(HR),
        )
        .await,
        400,
        "limit: 0 is not in 1..=10000",
    );
    expect(
        get(&app, "/api/v1/months/2026-01?offset=-1", Some(HR)).await,
        400,
        "offset: \"-1\" is not a non-negative integer",
    );
    expect(
        get(&app, "/api/v1/missing/2026-01-05?team=B", Some(SUP)).await,
        403,
        "not allowed",
    );
    expect(
        get(&app, "/api/v1/months/2026-13/grid", Some(TERM)).await,
        403,
        "not allowed",
    );
    expect(
        get(&app, "/api/v1/months/2026-13/grid?team=B", Some(SUP)).await,
        400,
        "month: ",
    );
    expect(
        get(&app, "/api/v1/years/19", Some(SUP)).await,
        403,
        "not allowed",
    );
    expect(get(&app, "/api/v1/years/19", Some(HR)).await, 400, "year: ");
    expect(
        get(&app, "/api/v1/quarantine?limit=x", Some(SUP)).await,
        403,
        "not allowed",
    );
    expect(
        get(&app, "/api/v1/quarantine?limit=x", Some(TERM)).await,
        400,
        "limit: ",
    );
    expect(
        get(&app, "/api/v1/terminals", Some(SUP)).await,
        403,
        "not allowed",
    );
}

#[tokio::test]
async fn unknown_and_repeated_parameters() {
    let (app, _dir) = app().await;
    // Names no route reads are ignored; a repeated one counts its last value.
    expect(
        get(&app, "/api/v1/days/2026-01-05?bogus=1", Some(HR)).await,
        200,
        "{",
    );
    expect(
        get(&app, "/api/v1/days/2026-01-05?limit=x&limit=5", Some(HR)).await,
        200,
        "{",
    );
    expect(
        get(&app, "/api/v1/appeals?status=open&bogus=x", Some(SUP)).await,
        200,
        "{",
    );
}

#[tokio::test]
async fn employees_are_looked_up_before_the_month_is_read() {
    let (app, _dir) = app().await;
    let uri = "/api/v1/employees/NOPE/days?month=bad";
    expect(get(&app, uri, Some(HR)).await, 404, "employee \"NOPE\"");
    expect(get(&app, uri, Some(SUP)).await, 403, "not allowed");
    expect(get(&app, uri, Some(TERM)).await, 403, "not allowed");
    expect(
        get(&app, "/api/v1/punches?limit=x", Some(HR)).await,
        400,
        "limit: ",
    );
    expect(
        get(&app, "/api/v1/punches", Some(HR)).await,
        400,
        "date: required",
    );
    expect(
        get(&app, "/api/v1/punches", Some(TERM)).await,
        403,
        "not allowed",
    );
    expect(
        get(
            &app,
            "/api/v1/punches?date=2026-01-05&employee=NOPE",
            Some(HR),
        )
        .await,
        404,
        "employee \"NOPE\"",
    );
}

#[tokio::test]
async fn exports_check_lang_first_and_format_after_the_month() {
    let (app, _dir) = app().await;
    let base = "/api/v1/months/2026-01/export";
    expect(
        get(&app, &format!("{base}?lang=xx&format=bad"), Some(SUP)).await,
        403,
        "not allowed",
    );
    expect(
        get(&app, &format!("{base}?lang=xx&format=bad"), Some(HR)).await,
        400,
        "lang: ",
    );
    expect(
        get(&app, &format!("{base}?format=bad&view=bad"), Some(HR)).await,
        400,
        "format: ",
    );
    expect(
        get(&app, &format!("{base}?view=bad"), Some(HR)).await,
        400,
        "view: ",
    );
    // `view` is read for CSV only.
    let (status, _) = get(&app, &format!("{base}?format=xlsx&view=bad"), Some(HR)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bodies_are_read_before_the_role_and_parsed_after_it() {
    let (app, _dir) = app().await;
    let json = Some("application/json");
    let text = Some("text/plain");
    let answer = "/api/v1/appeals/abc/answer";
    expect(
        call(&app, "POST", answer, None, text, "x").await,
        401,
        "missing or unknown",
    );
    expect(
        call(&app, "POST", answer, Some(SUP), text, "x").await,
        415,
        "content-type: ",
    );
    expect(
        call(&app, "POST", answer, Some(SUP), None, "x").await,
        415,
        "content-type: missing",
    );
    expect(
        call(&app, "POST", answer, Some(SUP), json, "x").await,
        403,
        "not allowed",
    );
    expect(
        call(&app, "POST", answer, Some(HR), json, "x").await,
        400,
        "id: \"abc\"",
    );
    let answer = "/api/v1/appeals/7/answer";
    expect(
        call(&app, "POST", answer, Some(HR), json, "x").await,
        400,
        "body: ",
    );
    expect(
        call(
            &app,
            "POST",
            answer,
            Some(HR),
            json,
            r#"{"decision":"maybe","answer":""}"#,
        )
        .await,
        400,
        "decision: ",
    );
    for uri in ["/api/v1/ledger", "/api/v1/corrections", "/api/v1/appeals"] {
        expect(
            call(&app, "POST", uri, Some(TERM), text, "x").await,
            415,
            "content-type: ",
        );
        expect(
            call(&app, "POST", uri, Some(TERM), json, "x").await,
            403,
            "not allowed",
        );
        expect(
            call(&app, "POST", uri, Some(SUP), json, "x").await,
            400,
            "body: ",
        );
    }
    let replay = "/api/v1/quarantine/replay";
    expect(
        call(&app, "POST", replay, Some(TERM), text, "x").await,
        415,
        "content-type: ",
    );
    expect(
        call(&app, "POST", replay, Some(TERM), json, "x").await,
        403,
        "not allowed",
    );
    expect(
        call(&app, "POST", replay, Some(HR), json, "{}").await,
        400,
        "body: give either",
    );
    let correction = r#"{"employee_id":"NOPE","time":"bad","reason":"r","override":"x"}"#;
    expect(
        call(
            &app,
            "POST",
            "/api/v1/corrections",
            Some(SUP),
            json,
            correction,
        )
        .await,
        403,
        "not allowed",
    );
    expect(
        call(
            &app,
            "POST",
            "/api/v1/corrections",
            Some(HR),
            json,
            correction,
        )
        .await,
        400,
        "time: ",
    );
    let appeal = r#"{"ledger_id":99,"reason":"r"}"#;
    expect(
        call(&app, "POST", "/api/v1/appeals", Some(SUP), json, appeal).await,
        403,
        "not allowed",
    );
    expect(
        call(&app, "POST", "/api/v1/appeals", Some(HR), json, appeal).await,
        404,
        "ledger entry 99",
    );
}

/// A page of the daily table is served again while the day's verdicts and
/// the employees are unchanged, and built anew after either changes.
#[tokio::test]
async fn a_kept_daily_page_follows_every_change() {
    use chrono::TimeZone;
    let (store, policy, _dir) = store_and_policy().await;
    let tokens = vec![ApiToken {
        name: "hr".into(),
        secret: HR.into(),
        role: Role::Hr,
    }];
    let api = Arc::new(Api::new(store.clone(), policy.clone(), tokens));
    let app = router(api.clone());
    let later = chrono::Utc.with_ymd_and_hms(2026, 12, 15, 0, 0, 0).unwrap();
    let employee = |name: &str| crate::store::EmployeeRecord {
        employee_id: "E1".into(),
        name: name.into(),
        team: "A".into(),
        supervisor: "S".into(),
        shift: None,
        aliases: vec![],
        start_date: None,
        end_date: None,
    };
    store
        .upsert_employees(&[employee("Li Na")], later)
        .await
        .unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 10, 20).unwrap();
    let recompute = || store.recompute(&policy, None, day, day, "test", "tester", later);
    recompute().await.unwrap();
    let uri = "/api/v1/days/2026-10-20";
    let page = |body: &str| -> (String, String) {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let item = &v["items"][0];
        (
            item["name"].as_str().unwrap().to_string(),
            item["status"].as_str().unwrap().to_string(),
        )
    };
    let first = get(&app, uri, Some(HR)).await;
    assert_eq!(first.0, StatusCode::OK, "{}", first.1);
    assert_eq!(page(&first.1), ("Li Na".into(), "absent_full".into()));
    assert_eq!(get(&app, uri, Some(HR)).await.1, first.1);
    assert_eq!(api.pages.size().0, 1, "one page kept");

    // The employee punched after all.
    let punch = |t: &str| crate::store::NewPunch {
        employee_id: "E1".into(),
        identity: "E1".into(),
        time: chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc(),
        device_id: Some("gate-1".into()),
        event_id: None,
        source: "test".into(),
        raw: None,
        direction: None,
    };
    store
        .insert_punches(
            &[punch("2026-10-20T00:25:00Z"), punch("2026-10-20T09:35:00Z")],
            later,
        )
        .await
        .unwrap();
    recompute().await.unwrap();
    let second = get(&app, uri, Some(HR)).await;
    assert_eq!(page(&second.1), ("Li Na".into(), "present".into()));

    // Renamed.
    store
        .upsert_employees(&[employee("Li Na (lead)")], later)
        .await
        .unwrap();
    let third = get(&app, uri, Some(HR)).await;
    assert_eq!(page(&third.1), ("Li Na (lead)".into(), "present".into()));
    assert_eq!(api.pages.size().0, 1, "the stale pages were dropped");

    // Without kept pages the answer is the same.
    let tokens = vec![ApiToken {
        name: "hr".into(),
        secret: HR.into(),
        role: Role::Hr,
    }];
    let plain = Arc::new(Api::new(store.clone(), policy, tokens).with_page_cache(0));
    assert_eq!(get(&router(plain.clone()), uri, Some(HR)).await.1, third.1);
    assert_eq!(plain.pages.size(), (0, 0));
}
