//! The HR API in-process (`router(...).oneshot`): every endpoint with
//! every role, 401 and 403 without detail, paging, field-named errors,
//! manual entries and corrections.

use axum::http::StatusCode;
use serde_json::json;

use crate::hr_fixture::{HR, SUP_A, TERM, call, fixture};

/// Every route with a method and a body where it needs one.
fn endpoints() -> Vec<(&'static str, &'static str, Option<serde_json::Value>)> {
    vec![
        ("GET", "/api/v1/whoami", None),
        ("GET", "/api/v1/policy", None),
        ("GET", "/api/v1/days/2026-11-02", None),
        ("GET", "/api/v1/summaries/2026-11-02", None),
        ("GET", "/api/v1/employees/E001/days?month=2026-11", None),
        ("GET", "/api/v1/months/2026-11", None),
        ("POST", "/api/v1/months/2026-11/publish", None),
        ("GET", "/api/v1/months/2026-11/export?format=csv", None),
        ("GET", "/api/v1/months/2026-11/grid", None),
        ("GET", "/api/v1/punches?date=2026-11-02", None),
        (
            "POST",
            "/api/v1/ledger",
            Some(
                json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":"jeans"}),
            ),
        ),
        (
            "POST",
            "/api/v1/corrections",
            Some(
                json!({"employee_id":"E004","time":"2026-11-02 17:35:00","reason":"terminal down"}),
            ),
        ),
        ("GET", "/api/v1/appeals", None),
        (
            "POST",
            "/api/v1/appeals",
            Some(json!({"ledger_id":1,"reason":"was there"})),
        ),
        (
            "POST",
            "/api/v1/appeals/1/answer",
            Some(json!({"decision":"rejected","answer":"no"})),
        ),
        ("GET", "/api/v1/quarantine", None),
        (
            "POST",
            "/api/v1/quarantine/replay",
            Some(json!({"all": true})),
        ),
        ("GET", "/api/v1/terminals", None),
    ]
}

#[tokio::test]
async fn missing_or_wrong_token_is_401_without_detail() {
    let f = fixture().await;
    let r = f.router();
    for (m, uri, body) in endpoints() {
        for tok in [None, Some("wrong-token-0123456789"), Some("")] {
            let rep = call(&r, m, uri, tok, body.clone()).await;
            assert_eq!(rep.status, StatusCode::UNAUTHORIZED, "{m} {uri} {tok:?}");
            let j = rep.json();
            assert_eq!(j["error"], "missing or unknown bearer token", "{m} {uri}");
        }
    }
    // Not a bearer scheme.
    let rep = axum_basic(&r).await;
    assert_eq!(rep, StatusCode::UNAUTHORIZED);
}

async fn axum_basic(r: &axum::Router) -> StatusCode {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .uri("/api/v1/whoami")
        .header("authorization", format!("Basic {HR}"))
        .body(axum::body::Body::empty())
        .unwrap();
    r.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test]
async fn openapi_is_public_and_lists_every_route() {
    let f = fixture().await;
    let r = f.router();
    let rep = call(&r, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(rep.status, StatusCode::OK);
    assert_eq!(rep.content_type, "application/json");
    let j = rep.json();
    assert_eq!(j["openapi"].as_str().unwrap().chars().next(), Some('3'));
    let paths = j["paths"].as_object().unwrap();
    for (m, uri, _) in endpoints() {
        let path = uri.split('?').next().unwrap();
        let templ = path
            .replace("2026-11-02", "{date}")
            .replace("/E001/", "/{id}/")
            .replace("/months/2026-11", "/months/{month}")
            .replace("/appeals/1/", "/appeals/{id}/");
        let p = paths
            .get(&templ)
            .unwrap_or_else(|| panic!("{templ} not in openapi.json"));
        assert!(
            p.get(m.to_ascii_lowercase()).is_some(),
            "{m} {templ} not in openapi.json"
        );
    }
}

/// The served description: OpenAPI 3 (generated, 3.1), every `$ref`
/// resolves, operation ids are unique; every documented operation is
/// routed (401 without a token, not 404/405) and documents its success
/// status and 401 (except the public description itself, which has no
/// security). The document is written to `target/tmp/openapi.json` for
/// reviewers.
#[tokio::test]
async fn openapi_is_valid_and_every_operation_documents_401_and_success() {
    let f = fixture().await;
    let r = f.router();
    let rep = call(&r, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(rep.status, StatusCode::OK);
    let j = rep.json();
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("openapi.json"),
        serde_json::to_string_pretty(&j).unwrap(),
    )
    .unwrap();

    assert!(
        j["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        j["openapi"]
    );
    assert!(j["info"]["title"].is_string() && j["info"]["version"].is_string());
    assert_eq!(j["security"], json!([{"bearer": []}]));
    assert_eq!(
        j["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer"})
    );
    for name in ["Error", "Page"] {
        assert!(
            j["components"]["schemas"][name].is_object(),
            "schema {name}"
        );
    }
    for name in [
        "BadRequest",
        "Unauthorized",
        "Forbidden",
        "NotFound",
        "Conflict",
        "Internal",
        "UnsupportedMediaType",
    ] {
        assert!(
            j["components"]["responses"][name].is_object(),
            "response {name}"
        );
    }

    // Every reference points at a component that exists.
    fn refs<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("$ref", serde_json::Value::String(s)) => out.push(s),
                        _ => refs(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&j, &mut all);
    assert!(!all.is_empty());
    for rf in all {
        let ptr = rf
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external $ref {rf}"));
        assert!(j.pointer(ptr).is_some(), "dangling $ref {rf}");
    }

    let mut ids = std::collections::HashSet::new();
    let mut operations = 0;
    for (path, item) in j["paths"].as_object().unwrap() {
        assert!(path.starts_with("/api/v1/"), "{path}");
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let id = op["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            assert!(op["summary"].is_string(), "{method} {path}: summary");
            let responses = op["responses"].as_object().unwrap();
            let success = match (method.as_str(), path.as_str()) {
                ("post", "/api/v1/ledger" | "/api/v1/corrections" | "/api/v1/appeals") => "201",
                _ => "200",
            };
            assert!(
                responses.contains_key(success),
                "{method} {path}: no {success}"
            );
            // Path parameters are documented and in the path.
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["in"] == "path" {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: {name}"
                    );
                    assert_eq!(p["required"], true, "{method} {path}: {name}");
                }
            }
            let uri = path
                .replace("{date}", "2026-11-02")
                .replace("{month}", "2026-11")
                .replace("{year}", "2026")
                .replace("/employees/{id}/", "/employees/E001/")
                .replace("{id}", "1");
            assert!(!uri.contains('{'), "{method} {path}: unknown parameter");
            let rep = call(&r, &method.to_ascii_uppercase(), &uri, None, None).await;
            if path == "/api/v1/openapi.json" {
                assert_eq!(op["security"], json!([]), "the description is public");
                assert_eq!(rep.status, StatusCode::OK);
                continue;
            }
            assert_eq!(
                rep.status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} is not routed"
            );
            assert_eq!(
                responses["401"]["$ref"], "#/components/responses/Unauthorized",
                "{method} {path}: 401"
            );
        }
    }
    assert!(operations > endpoints().len(), "{operations} operations");
}

/// What HR gets from every route of the fixture (and a second time, for
/// the answers of a changed state) has a status the description lists for
/// that operation, and its JSON fits the documented schema (types,
/// required and enumerated fields; formats and patterns are not checked).
#[tokio::test]
async fn hr_answers_fit_the_openapi_schemas() {
    let f = fixture().await;
    let r = f.router();
    let doc = call(&r, "GET", "/api/v1/openapi.json", None, None)
        .await
        .json();
    let mut uris = endpoints();
    uris.push(("GET", "/api/v1/missing/2026-11-02", None));
    uris.push(("GET", "/api/v1/years/2026", None));
    uris.push(("GET", "/api/v1/days/1999-01-01", None));
    uris.push(("GET", "/api/v1/summaries/2026-11-02?limit=1", None));
    let mut checked = 0;
    for round in 0..2 {
        for (m, uri, body) in uris.clone() {
            let rep = call(&r, m, uri, Some(HR), body).await;
            let path = uri.split('?').next().unwrap();
            let templ = doc["paths"]
                .as_object()
                .unwrap()
                .keys()
                .find(|t| template_matches(t, path))
                .unwrap_or_else(|| panic!("{path} not documented"));
            let op = &doc["paths"][templ][m.to_ascii_lowercase()];
            let code = rep.status.as_str().to_string();
            let mut resp = &op["responses"][&code];
            assert!(
                resp.is_object(),
                "{m} {uri}: {code} not documented (round {round})"
            );
            if let Some(rf) = resp["$ref"].as_str() {
                resp = doc.pointer(&rf[1..]).unwrap();
            }
            if !rep.content_type.starts_with("application/json") {
                continue;
            }
            let schema = &resp["content"]["application/json"]["schema"];
            let errors = fits(&doc, schema, &rep.json(), "$");
            assert!(errors.is_empty(), "{m} {uri} {code}: {errors:#?}");
            checked += 1;
        }
    }
    assert!(checked > 30, "{checked} answers checked");
}

/// True when a concrete path fits an OpenAPI path template.
fn template_matches(templ: &str, path: &str) -> bool {
    let (t, p): (Vec<_>, Vec<_>) = (templ.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter()
            .zip(&p)
            .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')))
}

/// Where `v` does not fit `schema` (a small JSON Schema subset: `$ref`,
/// `oneOf`, `type`, `enum`, `properties`, `required`, `items`,
/// `additionalProperties`).
fn fits(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
) -> Vec<String> {
    use serde_json::Value as V;
    if let Some(rf) = schema["$ref"].as_str() {
        return fits(doc, doc.pointer(&rf[1..]).unwrap(), v, at);
    }
    if let Some(alts) = schema["oneOf"].as_array() {
        if alts.iter().any(|s| fits(doc, s, v, at).is_empty()) {
            return vec![];
        }
        return vec![format!("{at}: {v} fits no oneOf alternative")];
    }
    let types: Vec<&str> = match &schema["type"] {
        V::String(t) => vec![t.as_str()],
        V::Array(a) => a.iter().filter_map(V::as_str).collect(),
        _ => vec![],
    };
    let type_ok = types.is_empty()
        || types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "string" => v.is_string(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => false,
        });
    if !type_ok {
        return vec![format!("{at}: {v} is not {types:?}")];
    }
    let mut out = Vec::new();
    if let Some(e) = schema["enum"].as_array()
        && !v.is_null()
        && !e.contains(v)
    {
        out.push(format!("{at}: {v} not in {e:?}"));
    }
    if let V::Object(o) = v {
        for req in schema["required"].as_array().into_iter().flatten() {
            let k = req.as_str().unwrap();
            if !o.contains_key(k) {
                out.push(format!("{at}: required {k} missing"));
            }
        }
        for (k, x) in o {
            let sub = format!("{at}.{k}");
            match (&schema["properties"][k], &schema["additionalProperties"]) {
                (p, _) if p.is_object() => out.extend(fits(doc, p, x, &sub)),
                (_, V::Bool(false)) => out.push(format!("{sub}: not documented")),
                (_, a) if a.is_object() => out.extend(fits(doc, a, x, &sub)),
                _ => {}
            }
        }
    }
    if let (V::Array(a), items) = (v, &schema["items"])
        && items.is_object()
    {
        for (i, x) in a.iter().enumerate() {
            out.extend(fits(doc, items, x, &format!("{at}[{i}]")));
        }
    }
    out
}

#[tokio::test]
async fn hr_reads_everything() {
    let f = fixture().await;
    let r = f.router();
    let who = call(&r, "GET", "/api/v1/whoami", Some(HR), None)
        .await
        .json();
    assert_eq!(who["role"], "hr");
    let pol = call(&r, "GET", "/api/v1/policy", Some(SUP_A), None)
        .await
        .json();
    assert_eq!(pol["rules"]["dress_code"]["zh"], "未按规定着装");
    assert_eq!(pol["appeal_days"], 2);
    assert_eq!(pol["timezone"], "Asia/Shanghai");

    let days = call(&r, "GET", "/api/v1/days/2026-11-02", Some(HR), None).await;
    assert_eq!(days.status, StatusCode::OK);
    let j = days.json();
    assert_eq!(j["total"], 4);
    let status: Vec<(&str, &str)> = j["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["employee_id"].as_str().unwrap(),
                i["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("E001", "present"),
            ("E002", "absent_half"),
            ("E003", "absent_full"),
            ("E004", "absent_half")
        ]
    );
    assert_eq!(j["items"][2]["name"], "Carol");
    assert!(j["items"][2]["verdict"]["explanation"].is_object());

    let s = call(&r, "GET", "/api/v1/summaries/2026-11-02", Some(HR), None)
        .await
        .json();
    assert_eq!(s["totals"]["employees"], 4);
    assert_eq!(s["totals"]["by_team"]["B"]["absent_full"], 1);
    assert_eq!(s["totals"]["points"], 20);

    let e = call(
        &r,
        "GET",
        "/api/v1/employees/E003/days?month=2026-11",
        Some(HR),
        None,
    )
    .await;
    assert_eq!(e.status, StatusCode::OK);
    let e = e.json();
    assert_eq!(e["employee"]["name"], "Carol");
    assert_eq!(e["days"].as_array().unwrap().len(), 2);
    assert_eq!(e["score"]["score"], 90);

    let m = call(&r, "GET", "/api/v1/months/2026-11", Some(HR), None)
        .await
        .json();
    assert_eq!(m["total"], 4);
    assert_eq!(m["categories"].as_array().unwrap().len(), 3);
    let carol = m["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["employee_id"] == "E003")
        .unwrap();
    assert_eq!(carol["score"], 90);

    let p = call(&r, "GET", "/api/v1/punches?date=2026-11-02", Some(HR), None)
        .await
        .json();
    assert_eq!(p["total"], 5);
    assert_eq!(p["items"][0]["time"], "2026-11-02T08:29:00+08:00");
    let p = call(
        &r,
        "GET",
        "/api/v1/punches?date=2026-11-02&employee=E002",
        Some(HR),
        None,
    )
    .await
    .json();
    assert_eq!(p["total"], 2);

    for uri in ["/api/v1/quarantine", "/api/v1/terminals", "/api/v1/appeals"] {
        assert_eq!(
            call(&r, "GET", uri, Some(HR), None).await.status,
            StatusCode::OK,
            "{uri}"
        );
    }
    let t = call(&r, "GET", "/api/v1/terminals", Some(HR), None)
        .await
        .json();
    assert_eq!(t["items"][0]["device_id"], "gate-1");
    assert_eq!(t["items"][0]["punches"], 5);

    let unknown = call(&r, "GET", "/api/v1/employees/E999/days", Some(HR), None).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn supervisor_sees_own_team_only() {
    let f = fixture().await;
    let r = f.router();
    let who = call(&r, "GET", "/api/v1/whoami", Some(SUP_A), None)
        .await
        .json();
    assert_eq!(who["team"], "A");

    let days = call(&r, "GET", "/api/v1/days/2026-11-02", Some(SUP_A), None)
        .await
        .json();
    let ids: Vec<&str> = days["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["employee_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["E001", "E002", "E004"]);
    let s = call(&r, "GET", "/api/v1/summaries/2026-11-02", Some(SUP_A), None)
        .await
        .json();
    assert_eq!(s["totals"]["employees"], 3);
    assert!(s["totals"]["by_team"].get("B").is_none());
    let m = call(&r, "GET", "/api/v1/months/2026-11", Some(SUP_A), None)
        .await
        .json();
    assert_eq!(m["total"], 3);
    let p = call(
        &r,
        "GET",
        "/api/v1/punches?date=2026-11-02",
        Some(SUP_A),
        None,
    )
    .await
    .json();
    assert_eq!(p["total"], 5, "team B has no punches that day");
    assert_eq!(
        call(&r, "GET", "/api/v1/employees/E001/days", Some(SUP_A), None)
            .await
            .status,
        StatusCode::OK
    );

    // Another team's employee by id, an unknown id, another team by name:
    // all 403 with the same body, so nothing is learnt.
    let forbidden = [
        ("GET", "/api/v1/employees/E003/days?month=2026-11", None),
        ("GET", "/api/v1/employees/E999/days", None),
        ("GET", "/api/v1/days/2026-11-02?team=B", None),
        ("GET", "/api/v1/months/2026-11?team=B", None),
        ("GET", "/api/v1/summaries/2026-11-02?team=B", None),
        ("GET", "/api/v1/punches?date=2026-11-02&employee=E003", None),
        (
            "POST",
            "/api/v1/ledger",
            Some(json!({"employee_id":"E003","date":"2026-11-02","rule":"dress_code","note":"x"})),
        ),
        (
            "POST",
            "/api/v1/corrections",
            Some(json!({"employee_id":"E003","time":"2026-11-02 08:30","reason":"x"})),
        ),
        ("POST", "/api/v1/months/2026-11/publish", None),
        ("GET", "/api/v1/months/2026-11/export?format=xlsx", None),
        (
            "POST",
            "/api/v1/appeals/1/answer",
            Some(json!({"decision":"upheld","answer":"ok"})),
        ),
        ("GET", "/api/v1/quarantine", None),
        ("GET", "/api/v1/terminals", None),
    ];
    let mut bodies = std::collections::HashSet::new();
    for (m, uri, body) in forbidden {
        let rep = call(&r, m, uri, Some(SUP_A), body).await;
        assert_eq!(
            rep.status,
            StatusCode::FORBIDDEN,
            "{m} {uri}: {}",
            rep.text()
        );
        bodies.insert(rep.text());
    }
    assert_eq!(bodies.len(), 1, "403 bodies differ: {bodies:?}");
    // Nothing was written by the refused calls.
    let carol = f
        .store
        .ledger(
            crate::common::date("2026-11-01"),
            crate::common::date("2026-11-30"),
            Some("E003"),
        )
        .await
        .unwrap();
    assert!(carol.iter().all(|e| e.source == "device"));
}

#[tokio::test]
async fn terminal_admin_sees_quarantine_and_terminals_only() {
    let f = fixture().await;
    f.store
        .quarantine(
            &attendd::store::NewQuarantine {
                source: "mqtt:attendance/x/punch".into(),
                payload: b"garbage".to_vec(),
                reason: "not JSON".into(),
                ..Default::default()
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let r = f.router();
    let q = call(&r, "GET", "/api/v1/quarantine", Some(TERM), None).await;
    assert_eq!(q.status, StatusCode::OK);
    assert_eq!(q.json()["items"][0]["payload"], "garbage");
    assert_eq!(
        call(&r, "GET", "/api/v1/terminals", Some(TERM), None)
            .await
            .status,
        StatusCode::OK
    );
    for (m, uri, body) in endpoints() {
        if ["quarantine", "terminals", "whoami", "policy"]
            .iter()
            .any(|x| uri.contains(x))
        {
            continue;
        }
        let rep = call(&r, m, uri, Some(TERM), body).await;
        assert_eq!(rep.status, StatusCode::FORBIDDEN, "{m} {uri}");
    }
}

#[tokio::test]
async fn paging_and_field_named_errors() {
    let f = fixture().await;
    let r = f.router();
    let p1 = call(&r, "GET", "/api/v1/days/2026-11-02?limit=3", Some(HR), None)
        .await
        .json();
    assert_eq!(p1["items"].as_array().unwrap().len(), 3);
    assert_eq!(p1["next_offset"], 3);
    let p2 = call(
        &r,
        "GET",
        "/api/v1/days/2026-11-02?limit=3&offset=3",
        Some(HR),
        None,
    )
    .await
    .json();
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert!(p2["next_offset"].is_null());
    let st = call(
        &r,
        "GET",
        "/api/v1/days/2026-11-02?status=absent_half",
        Some(HR),
        None,
    )
    .await
    .json();
    assert_eq!(st["total"], 2);

    for (uri, field) in [
        ("/api/v1/days/2026-13-01", "date"),
        ("/api/v1/days/2026-11-02?limit=0", "limit"),
        ("/api/v1/days/2026-11-02?limit=x", "limit"),
        ("/api/v1/days/2026-11-02?offset=-1", "offset"),
        ("/api/v1/punches", "date"),
        ("/api/v1/months/2026-1x", "month"),
        ("/api/v1/employees/E001/days?month=11-2026", "month"),
        ("/api/v1/months/2026-11/export?format=pdf", "format"),
        ("/api/v1/months/2026-11/export?lang=fr", "lang"),
        ("/api/v1/appeals?status=maybe", "status"),
    ] {
        let rep = call(&r, "GET", uri, Some(HR), None).await;
        assert_eq!(rep.status, StatusCode::BAD_REQUEST, "{uri}");
        let msg = rep.json()["error"].as_str().unwrap().to_string();
        assert!(msg.starts_with(field), "{uri}: {msg}");
    }
}

#[tokio::test]
async fn manual_entries_validate_against_the_catalogue() {
    let f = fixture().await;
    let r = f.router();
    let ok = call(
        &r,
        "POST",
        "/api/v1/ledger",
        Some(SUP_A),
        Some(json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":"no uniform"})),
    )
    .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text());
    let e = ok.json();
    assert_eq!(e["source"], "manual");
    assert_eq!(e["category"], "internal");
    assert_eq!(
        e["points"], 2,
        "points as a number: the rule's default 2 points"
    );
    assert_eq!(e["recorded_by"], "sup-a");
    assert_eq!(e["evidence"], "no uniform");

    let m = call(
        &r,
        "GET",
        "/api/v1/employees/E001/days?month=2026-11",
        Some(HR),
        None,
    )
    .await
    .json();
    assert_eq!(m["score"]["score"], 98);
    assert_eq!(m["score"]["categories"]["internal"]["raw"], 2);
    let entry = m["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["rule"] == "dress_code")
        .unwrap();
    assert_eq!(
        entry["points"], 2,
        "ledger points as numbers, not hundredths"
    );

    let audit = f.store.audit(Some("ledger")).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.actor == "sup-a" && a.cause == "deduct dress_code")
    );

    for (body, field) in [
        (
            json!({"employee_id":"E001","date":"2026-11-02","rule":"smoking","note":"x"}),
            "rule",
        ),
        (
            json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":"x","kind":"bonus"}),
            "rule",
        ),
        (
            json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":"x","points":-1}),
            "points",
        ),
        (
            json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":" "}),
            "note",
        ),
        (
            json!({"employee_id":"E001","date":"2026-11-31","rule":"dress_code","note":"x"}),
            "date",
        ),
        (
            json!({"employee_id":"E001","date":"2026-11-02","rule":"dress_code","note":"x","kind":"fine"}),
            "kind",
        ),
        (
            json!({"employee_id":"E001","rule":"dress_code","note":"x"}),
            "body",
        ),
    ] {
        let rep = call(&r, "POST", "/api/v1/ledger", Some(HR), Some(body.clone())).await;
        assert_eq!(rep.status, StatusCode::BAD_REQUEST, "{body}");
        let msg = rep.json()["error"].as_str().unwrap().to_string();
        assert!(msg.starts_with(field), "{body}: {msg}");
    }
    let unknown = call(
        &r,
        "POST",
        "/api/v1/ledger",
        Some(HR),
        Some(json!({"employee_id":"E999","date":"2026-11-02","rule":"dress_code","note":"x"})),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn correction_recomputes_the_day_and_is_audited() {
    let f = fixture().await;
    let r = f.router();
    let before = call(
        &r,
        "GET",
        "/api/v1/employees/E004/days?month=2026-11",
        Some(HR),
        None,
    )
    .await
    .json();
    let day = |j: &serde_json::Value| {
        j["days"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["date"] == "2026-11-02")
            .unwrap()
            .clone()
    };
    assert_eq!(day(&before)["status"], "absent_half");

    let rep = call(
        &r,
        "POST",
        "/api/v1/corrections",
        Some(SUP_A),
        Some(json!({"employee_id":"E004","time":"2026-11-02 17:35:00","reason":"terminal was down at 17:35"})),
    )
    .await;
    assert_eq!(rep.status, StatusCode::CREATED, "{}", rep.text());
    let out = rep.json();
    assert_eq!(out["date"], "2026-11-02");
    assert!(out["changed"].as_u64().unwrap() >= 1);

    let after = call(
        &r,
        "GET",
        "/api/v1/employees/E004/days?month=2026-11",
        Some(HR),
        None,
    )
    .await
    .json();
    let d = day(&after);
    assert_eq!(d["status"], "present");
    assert_eq!(d["check_out"], "2026-11-02T17:35:00+08:00");
    assert!(d.to_string().contains(&format!("correction:{}", out["id"])));
    assert_eq!(after["corrections"][0]["confirmed_by"], "sup-a");
    assert_eq!(after["score"]["score"], 100);
    // The device deduction was voided by the recompute, not deleted.
    let voided: Vec<_> = after["ledger"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| !e["voided_at"].is_null())
        .collect();
    assert_eq!(voided.len(), 1);

    // Raw punches are untouched.
    let p = call(
        &r,
        "GET",
        "/api/v1/punches?date=2026-11-02&employee=E004",
        Some(HR),
        None,
    )
    .await
    .json();
    assert_eq!(p["total"], 1);
    let audit = f.store.audit(Some("corrections")).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "sup-a");

    for (body, field) in [
        (
            json!({"employee_id":"E004","time":"yesterday","reason":"x"}),
            "time",
        ),
        (
            json!({"employee_id":"E004","time":"2026-11-02 17:35","reason":""}),
            "reason",
        ),
        (
            json!({"employee_id":"E004","time":"2027-01-01 08:00","reason":"x"}),
            "time",
        ),
    ] {
        let rep = call(
            &r,
            "POST",
            "/api/v1/corrections",
            Some(HR),
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            rep.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            rep.text()
        );
        assert!(
            rep.json()["error"].as_str().unwrap().starts_with(field),
            "{body}"
        );
    }
}

#[tokio::test]
async fn store_failure_is_500_without_detail() {
    let f = fixture().await;
    let r = f.router();
    f.store.close().await;
    let rep = call(&r, "GET", "/api/v1/days/2026-11-02", Some(HR), None).await;
    assert_eq!(rep.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(rep.json(), json!({"error": "internal error (logged)"}));
}

#[tokio::test]
async fn hr_exports_csv_and_xlsx_over_the_api() {
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    let f = fixture().await;
    let r = f.router();
    let csv = call(
        &r,
        "GET",
        "/api/v1/months/2026-11/export?format=csv&view=deductions",
        Some(HR),
        None,
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.content_type.starts_with("text/csv"));
    let text = csv.text();
    assert!(
        text.trim_start_matches('\u{feff}')
            .starts_with("entry,employee_id,name,date,category,rule"),
        "{text}"
    );
    assert!(text.contains("E003,Carol,2026-11-02,Conduct and discipline,absent,Absent all day (no punch),10,deduction,device"), "{text}");

    let x = call(
        &r,
        "GET",
        "/api/v1/months/2026-11/export?format=xlsx",
        Some(HR),
        None,
    )
    .await;
    assert_eq!(x.status, StatusCode::OK);
    assert_eq!(
        x.content_type,
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let mut wb: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(x.body)).unwrap();
    assert_eq!(wb.sheet_names(), ["Daily grid", "Deductions", "Scores"]);
    let grid = wb.worksheet_range("Daily grid").unwrap();
    // Row 0 dates, row 1 weekdays (issue 17), then E001, E002, E003.
    assert_eq!(grid.get_value((4, 0)), Some(&Data::String("E003".into())));
    assert_eq!(grid.get_value((4, 4)), Some(&Data::String("absent".into())));
    let scores = wb.worksheet_range("Scores").unwrap();
    assert_eq!(
        scores.get_value((0, 4)),
        Some(&Data::String("score".into()))
    );
    assert_eq!(scores.get_value((3, 4)), Some(&Data::Float(90.0)));
}

#[tokio::test]
async fn quarantine_replay_is_hr_only_stores_once_and_pages_past_the_end() {
    use attendd::store::{NewQuarantine, QuarantineKind, ReplayInfo};
    let f = fixture().await;
    // A punch for an employee not imported when it arrived, kept with what
    // a replay needs.
    let id = f
        .store
        .quarantine(&NewQuarantine {
            source: "mqtt[0]:attendance/gate-1/punch".into(),
            payload: br#"{"employee_id":"E004","time":"2026-11-03T08:20:00+08:00","device_id":"gate-1","event_id":"g1-77"}"#.to_vec(),
            reason: "unknown employee \"E004\"".into(),
            kind: QuarantineKind::Unknown,
            replay: Some(ReplayInfo {
                pipeline_source: "mqtt[0]".into(),
                topic: Some("attendance/gate-1/punch".into()),
                decoder: "json".into(),
                decoder_options: String::new(),
                device_id: None,
                timezone: "Asia/Shanghai".into(),
            }),
            received_at: None,
        }, chrono::Utc::now())
        .await
        .unwrap();
    let r = f.router();
    let body = Some(json!({"ids": [id]}));
    for tok in [SUP_A, TERM] {
        let rep = call(
            &r,
            "POST",
            "/api/v1/quarantine/replay",
            Some(tok),
            body.clone(),
        )
        .await;
        assert_eq!(rep.status, StatusCode::FORBIDDEN);
    }
    let bad = call(
        &r,
        "POST",
        "/api/v1/quarantine/replay",
        Some(HR),
        Some(json!({})),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let rep = call(
        &r,
        "POST",
        "/api/v1/quarantine/replay",
        Some(HR),
        body.clone(),
    )
    .await;
    assert_eq!(rep.status, StatusCode::OK);
    let j = rep.json();
    assert_eq!(
        (j["stored"].as_i64(), j["resolved"].as_i64()),
        (Some(1), Some(1)),
        "{j}"
    );
    let again = call(&r, "POST", "/api/v1/quarantine/replay", Some(HR), body)
        .await
        .json();
    assert_eq!(again["stored"], 0, "{again}");
    let from = chrono::DateTime::parse_from_rfc3339("2026-11-03T00:00:00+08:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let p = f
        .store
        .punches(from, from + chrono::Duration::days(1), Some("E004"))
        .await
        .unwrap();
    assert_eq!(p.len(), 1, "{p:?}");
    let audit = f.store.audit(Some("quarantine")).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "hr-office");
    let far = call(
        &r,
        "GET",
        "/api/v1/quarantine?offset=4000000",
        Some(HR),
        None,
    )
    .await;
    assert_eq!(far.status, StatusCode::OK);
    let far = far.json();
    assert!(far["items"].as_array().unwrap().is_empty(), "{far}");
    assert!(far["next_offset"].is_null());
    let listed = call(&r, "GET", "/api/v1/quarantine", Some(HR), None)
        .await
        .json();
    assert_eq!(listed["items"][0]["kind"], "unknown", "{listed}");
    assert!(listed["items"][0]["resolved_at"].is_string(), "{listed}");
}

/// Clients that accept gzip get big answers compressed (the same JSON);
/// others get them as before; workbooks are not compressed twice.
#[tokio::test]
async fn big_answers_are_gzipped_for_clients_that_accept_it() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use std::io::Read;
    use tower::ServiceExt;
    let f = fixture().await;
    let r = f.router();
    let get = |uri: &'static str, gzip: bool| {
        let r = r.clone();
        async move {
            let mut req = axum::http::Request::builder()
                .uri(uri)
                .header("authorization", format!("Bearer {HR}"));
            if gzip {
                req = req.header("accept-encoding", "gzip");
            }
            let resp = r.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            let enc = resp
                .headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap().to_string());
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            (enc, body)
        }
    };
    let (plain_enc, plain) = get("/api/v1/days/2026-11-02", false).await;
    assert_eq!(plain_enc, None);
    let (enc, zipped) = get("/api/v1/days/2026-11-02", true).await;
    assert_eq!(enc.as_deref(), Some("gzip"));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plain.to_vec());
    let (enc, _) = get("/api/v1/months/2026-11/export?format=xlsx", true).await;
    assert_eq!(enc, None, "a workbook is a zip already");
}
