//! Publication and appeals (rule set C, 坐席员考核细则 一(七)): appeals
//! open on publication and close at the end of the 2nd calendar day after
//! it in the policy's zone; both sides of the boundary; answers void or
//! keep the entry; everything audited.

use axum::http::StatusCode;
use chrono::Utc;
use serde_json::json;

use crate::hr_fixture::{HR, SUP_A, call, fixture, sh};

/// Device entries of an employee in November.
async fn entries(f: &crate::hr_fixture::Fixture, emp: &str) -> Vec<attendd::store::LedgerEntry> {
    f.store
        .ledger(
            crate::common::date("2026-11-01"),
            crate::common::date("2026-11-30"),
            Some(emp),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn appeal_window_boundaries_and_answers() {
    let f = fixture().await;
    let r = f.router();
    let bob = entries(&f, "E002").await;
    let carol = entries(&f, "E003").await;
    let dan = entries(&f, "E004").await;
    assert_eq!((bob.len(), carol.len(), dan.len()), (1, 1, 1));

    // Before publication: refused.
    f.set_now(sh(2026, 11, 30, 12, 0, 0));
    let early = call(
        &r,
        "POST",
        "/api/v1/appeals",
        Some(SUP_A),
        Some(json!({"ledger_id": bob[0].id, "reason": "bus strike"})),
    )
    .await;
    assert_eq!(early.status, StatusCode::CONFLICT);
    assert!(early.text().contains("not published"), "{}", early.text());

    // Published 2026-12-01 10:00 Shanghai: the deadline is 2026-12-04 00:00.
    f.set_now(sh(2026, 12, 1, 10, 0, 0));
    let p = call(&r, "POST", "/api/v1/months/2026-11/publish", Some(HR), None).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.text());
    let p = p.json();
    assert_eq!(p["published"], true);
    assert_eq!(p["appeal_deadline"], "2026-12-04T00:00:00+08:00");
    let again = call(&r, "POST", "/api/v1/months/2026-11/publish", Some(HR), None)
        .await
        .json();
    assert_eq!(again["published"], false);

    // Frozen: no manual entries in a published month.
    let frozen = call(
        &r,
        "POST",
        "/api/v1/ledger",
        Some(HR),
        Some(json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":"x"})),
    )
    .await;
    assert_eq!(frozen.status, StatusCode::CONFLICT);

    // Last second of the window: accepted.
    f.set_now(sh(2026, 12, 3, 23, 59, 59));
    let a1 = call(
        &r,
        "POST",
        "/api/v1/appeals",
        Some(SUP_A),
        Some(json!({"ledger_id": bob[0].id, "reason": "bus strike"})),
    )
    .await;
    assert_eq!(a1.status, StatusCode::CREATED, "{}", a1.text());
    let a1 = a1.json();
    assert_eq!(a1["status"], "open");
    assert_eq!(a1["filed_by"], "sup-a");
    // The answer is the `Appeal` of the OpenAPI description: with when its
    // answer is due and whether it is overdue, as the list shows it.
    assert!(a1["answer_due"].is_string(), "{a1}");
    assert_eq!(a1["overdue"], false, "{a1}");
    let a2 = call(
        &r,
        "POST",
        "/api/v1/appeals",
        Some(HR),
        Some(json!({"ledger_id": dan[0].id, "reason": "forgot to punch out, was there"})),
    )
    .await;
    assert_eq!(a2.status, StatusCode::CREATED);
    let a2 = a2.json();
    // One open appeal per entry.
    let dup = call(
        &r,
        "POST",
        "/api/v1/appeals",
        Some(HR),
        Some(json!({"ledger_id": bob[0].id, "reason": "again"})),
    )
    .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    // Even past the check (two filings at once), the store keeps one open
    // appeal per entry.
    assert!(
        f.store
            .add_appeal(bob[0].id, "E002", "race", "hr", sh(2026, 12, 2, 9, 0, 0))
            .await
            .is_err()
    );
    // A supervisor cannot appeal another team's entry.
    let other = call(
        &r,
        "POST",
        "/api/v1/appeals",
        Some(SUP_A),
        Some(json!({"ledger_id": carol[0].id, "reason": "x"})),
    )
    .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);

    // First instant after the window: refused, with the deadline.
    f.set_now(sh(2026, 12, 4, 0, 0, 0));
    let late = call(
        &r,
        "POST",
        "/api/v1/appeals",
        Some(HR),
        Some(json!({"ledger_id": carol[0].id, "reason": "sick"})),
    )
    .await;
    assert_eq!(late.status, StatusCode::CONFLICT);
    let msg = late.json()["error"].as_str().unwrap().to_string();
    assert!(msg.contains("2026-12-04T00:00:00+08:00"), "{msg}");
    assert!(msg.contains("closed"), "{msg}");

    // Answers may come after the window. Only HR answers.
    let sup = call(
        &r,
        "POST",
        &format!("/api/v1/appeals/{}/answer", a1["id"]),
        Some(SUP_A),
        Some(json!({"decision":"upheld","answer":"ok"})),
    )
    .await;
    assert_eq!(sup.status, StatusCode::FORBIDDEN);
    let up = call(
        &r,
        "POST",
        &format!("/api/v1/appeals/{}/answer", a1["id"]),
        Some(HR),
        Some(json!({"decision":"upheld","answer":"city-wide bus strike confirmed"})),
    )
    .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.text());
    assert_eq!(up.json()["status"], "upheld");
    let rej = call(
        &r,
        "POST",
        &format!("/api/v1/appeals/{}/answer", a2["id"]),
        Some(HR),
        Some(json!({"decision":"rejected","answer":"no witness"})),
    )
    .await;
    assert_eq!(rej.json()["status"], "rejected");
    let twice = call(
        &r,
        "POST",
        &format!("/api/v1/appeals/{}/answer", a2["id"]),
        Some(HR),
        Some(json!({"decision":"upheld","answer":"changed mind"})),
    )
    .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    let missing = call(
        &r,
        "POST",
        "/api/v1/appeals/999/answer",
        Some(HR),
        Some(json!({"decision":"upheld","answer":"x"})),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad = call(
        &r,
        "POST",
        &format!("/api/v1/appeals/{}/answer", a2["id"]),
        Some(HR),
        Some(json!({"decision":"maybe","answer":"x"})),
    )
    .await;
    assert!(
        bad.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("decision")
    );

    // Upheld: Bob's entry is void and his score is whole again. Rejected:
    // Dan's entry stands.
    let bob_after = entries(&f, "E002").await;
    assert!(bob_after[0].voided_at.is_some());
    assert_eq!(bob_after[0].voided_by.as_deref(), Some("hr-office"));
    assert!(entries(&f, "E004").await[0].voided_at.is_none());
    let m = call(&r, "GET", "/api/v1/months/2026-11", Some(HR), None)
        .await
        .json();
    let score = |id: &str| {
        m["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["employee_id"] == id)
            .unwrap()["score"]
            .clone()
    };
    assert_eq!(score("E002"), 100);
    assert_eq!(score("E004"), 95);

    // Audit: filing, both answers, the void.
    let audit = f.store.audit(None).await.unwrap();
    let appeals: Vec<_> = audit.iter().filter(|a| a.table_name == "appeals").collect();
    assert_eq!(appeals.len(), 4, "two filed, two answered");
    assert!(audit.iter().any(|a| a.table_name == "ledger"
        && a.row_key == bob[0].id.to_string()
        && a.cause.contains("upheld")
        && a.actor == "hr-office"));
    assert!(
        audit
            .iter()
            .any(|a| a.table_name == "published_months" && a.actor == "hr-office")
    );

    let list = call(&r, "GET", "/api/v1/appeals?status=open", Some(HR), None)
        .await
        .json();
    assert_eq!(list["total"], 0);
    let mine = call(&r, "GET", "/api/v1/appeals", Some(SUP_A), None)
        .await
        .json();
    assert_eq!(mine["total"], 2, "both appeals concern team A");
}

#[tokio::test]
async fn late_evening_publication_still_gives_two_full_days() {
    let f = fixture().await;
    let r = f.router();
    let bob = entries(&f, "E002").await;
    // 23:30 local on 2026-12-01 is 15:30 UTC the same day; the deadline is
    // still the end of 2026-12-03 local.
    f.set_now(sh(2026, 12, 1, 23, 30, 0));
    let p = call(&r, "POST", "/api/v1/months/2026-11/publish", Some(HR), None)
        .await
        .json();
    assert_eq!(p["appeal_deadline"], "2026-12-04T00:00:00+08:00");
    f.set_now(sh(2026, 12, 3, 23, 59, 59));
    let ok = call(
        &r,
        "POST",
        "/api/v1/appeals",
        Some(HR),
        Some(json!({"ledger_id": bob[0].id, "reason": "x"})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED);
}

/// The HR store calls on PostgreSQL (the API tests above run on SQLite):
/// corrections, publication time, appeals and their answers, terminals,
/// day rows. Skips visibly without `TEST_POSTGRES_URL`, unless
/// `ATTENDD_REQUIRE_SERVICES=1`.
#[tokio::test]
async fn hr_store_calls_on_postgres() {
    use sqlx::Connection;
    let base = match std::env::var("TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ if crate::services::required() => {
            panic!("TEST_POSTGRES_URL is not set but ATTENDD_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!("skipping postgres: TEST_POSTGRES_URL not set (hr_store_calls_on_postgres)");
            return;
        }
    };
    let schema = format!(
        "hr_{}_{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default() % 1_000_000_000
    );
    let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut c)
        .await
        .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let store = attendd::store::Store::open(&format!("{base}{sep}options[search_path]={schema}"))
        .await
        .unwrap();
    let policy =
        attendd::policy_file::load(std::path::Path::new(crate::hr_fixture::POLICY)).unwrap();
    store
        .upsert_employees(
            &[attendd::store::EmployeeRecord {
                employee_id: "E001".into(),
                name: "Alice".into(),
                team: "A".into(),
                supervisor: "lead".into(),
                shift: None,
                aliases: Vec::new(),
                start_date: None,
                end_date: None,
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    store
        .insert_punches(
            &[attendd::store::NewPunch {
                employee_id: "E001".into(),
                identity: "E001".into(),
                time: sh(2026, 11, 2, 8, 20, 0),
                device_id: Some("gate-9".into()),
                event_id: None,
                source: "test".into(),
                raw: None,
                direction: None,
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let now = sh(2026, 11, 20, 12, 0, 0);
    let d = crate::common::date("2026-11-02");
    store
        .recompute(&policy, None, d, d, "test", "test", now)
        .await
        .unwrap();
    assert_eq!(store.day_rows(d).await.unwrap()[0].status, "absent_half");
    let out = attendd::hr::record_correction(
        &store,
        &policy,
        "E001",
        sh(2026, 11, 2, 17, 40, 0),
        "terminal offline",
        "lead",
        None,
        now,
    )
    .await
    .unwrap();
    assert_eq!(store.day_rows(d).await.unwrap()[0].status, "present");
    let totals = store.day_totals(d, Some("A")).await.unwrap();
    assert_eq!(
        (
            totals[0].team.as_str(),
            totals[0].employees,
            totals[0].points
        ),
        ("A", 1, 0)
    );
    let (n, rows) = store
        .day_page(d, Some("A"), Some("present"), 10, 0)
        .await
        .unwrap();
    assert_eq!((n, rows[0].name.as_deref()), (1, Some("Alice")));
    assert_eq!(
        store.day_page(d, Some("B"), None, 10, 0).await.unwrap().0,
        0
    );
    let cs = store
        .corrections(
            sh(2026, 11, 1, 0, 0, 0),
            sh(2026, 12, 1, 0, 0, 0),
            Some("E001"),
        )
        .await
        .unwrap();
    assert_eq!(cs[0].id, out.id);
    let e = attendd::hr::record_manual(
        &store,
        &policy,
        &attendd::hr::ManualRequest {
            employee_id: "E001".into(),
            date: d,
            rule: "dress_code".into(),
            points: None,
            note: "no badge".into(),
            by: "lead".into(),
            kind: attendd::hr::EntryKind::Deduction,
        },
    )
    .await
    .unwrap();
    assert!(
        attendd::hr::publish(&store, &policy, "2026-11", "hr", sh(2026, 12, 1, 10, 0, 0))
            .await
            .unwrap()
    );
    assert_eq!(
        store.published("2026-11").await.unwrap().unwrap().0,
        sh(2026, 12, 1, 10, 0, 0)
    );
    let late =
        attendd::hr::file_appeal(&store, &policy, e.id, "x", "lead", sh(2026, 12, 4, 0, 0, 0))
            .await;
    assert!(matches!(late, Err(attendd::hr::HrError::Conflict(_))));
    let a = attendd::hr::file_appeal(
        &store,
        &policy,
        e.id,
        "badge was on",
        "lead",
        sh(2026, 12, 3, 23, 59, 59),
    )
    .await
    .unwrap();
    let a = attendd::hr::answer_appeal(&store, a.id, true, "photo shows the badge", "hr", now)
        .await
        .unwrap();
    assert_eq!(a.status, "upheld");
    assert!(
        store
            .ledger_entry(e.id)
            .await
            .unwrap()
            .unwrap()
            .voided_at
            .is_some()
    );
    assert_eq!(store.terminals().await.unwrap()[0].device_id, "gate-9");
    store.close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut c)
        .await;
}
