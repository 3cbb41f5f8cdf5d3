//! Publication and appeals (rule set C, 坐席员考核细则 一(七)): appeals
//! open on publication and close at the end of the 2nd calendar day after
//! it in the policy's zone; both sides of the boundary; answers void or
//! keep the entry; everything audited.

use axum::http::StatusCode;
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
