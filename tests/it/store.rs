//! Store contract tests. Every `store_test!` body runs twice: on a fresh
//! SQLite file and on PostgreSQL (its own schema, so tests run in
//! parallel) when `TEST_POSTGRES_URL` is set. Without it the PostgreSQL
//! half says it skips, unless `ATTENDD_REQUIRE_SERVICES=1` (CI), where a
//! missing or unreachable server fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

use attendd::domain::policy::Policy;
use attendd::store::{Inserted, NewPunch, Store};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use sqlx::Connection;

const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/policies/seed-default.toml"
);
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/examples");
const BIN: &str = env!("CARGO_BIN_EXE_attendd");

/// Which engine a test body runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh, migrated store plus a daemon config file pointing at it.
struct TestDb {
    engine: Engine,
    url: String,
    store: Store,
    dir: tempfile::TempDir,
    config: PathBuf,
    policy: Policy,
    /// PostgreSQL: base URL and schema to drop afterwards.
    pg_schema: Option<(String, String)>,
}

fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        t % 1_000_000_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn required() -> bool {
    std::env::var("ATTENDD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The PostgreSQL URL, or `None` after saying why the test skips.
fn pg_url(test: &str) -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if required() => {
            panic!("{test}: TEST_POSTGRES_URL is not set but ATTENDD_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!("skipping postgres: TEST_POSTGRES_URL not set ({test})");
            None
        }
    }
}

async fn setup(engine: Engine, test: &str) -> Option<TestDb> {
    let dir = tempfile::tempdir().unwrap();
    let (url, pg_schema) = match engine {
        Engine::Sqlite => (
            format!("sqlite://{}", dir.path().join("attendd.db").display()),
            None,
        ),
        Engine::Postgres => {
            let base = pg_url(test)?;
            let schema = unique("t");
            match sqlx::PgConnection::connect(&base).await {
                Ok(mut c) => {
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                        .execute(&mut c)
                        .await
                        .unwrap();
                    let _ = c.close().await;
                }
                Err(e) if required() => panic!("{test}: PostgreSQL at {base} unreachable: {e}"),
                Err(e) => {
                    eprintln!("skipping postgres: {base} unreachable: {e} ({test})");
                    return None;
                }
            }
            let sep = if base.contains('?') { '&' } else { '?' };
            (
                format!("{base}{sep}options[search_path]={schema}"),
                Some((base, schema)),
            )
        }
    };
    let store = Store::open(&url).await.unwrap();
    let config = dir.path().join("attendd.toml");
    std::fs::write(
        &config,
        format!("[policy]\nfile = {POLICY:?}\n\n[store]\nurl = {url:?}\n"),
    )
    .unwrap();
    let policy = attendd::policy_file::load(Path::new(POLICY)).unwrap();
    Some(TestDb {
        engine,
        url,
        store,
        dir,
        config,
        policy,
        pg_schema,
    })
}

async fn teardown(db: TestDb) {
    db.store.close().await;
    if let Some((base, schema)) = db.pg_schema
        && let Ok(mut c) = sqlx::PgConnection::connect(&base).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
            .execute(&mut c)
            .await;
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs one async body on SQLite and, when available, on PostgreSQL.
macro_rules! store_test {
    ($name:ident) => {
        mod $name {
            #[test]
            fn sqlite() {
                super::rt().block_on(async {
                    let db = super::setup(super::Engine::Sqlite, stringify!($name))
                        .await
                        .unwrap();
                    super::$name(&db).await;
                    super::teardown(db).await;
                });
            }
            #[test]
            fn postgres() {
                super::rt().block_on(async {
                    let Some(db) = super::setup(super::Engine::Postgres, stringify!($name)).await
                    else {
                        return;
                    };
                    super::$name(&db).await;
                    super::teardown(db).await;
                });
            }
        }
    };
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// "Now" for recomputes: long after November 2026 closed.
fn later() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 15, 0, 0, 0).unwrap()
}

fn punch(emp: &str, time: &str) -> NewPunch {
    NewPunch {
        employee_id: emp.into(),
        identity: emp.into(),
        time: at(time),
        device_id: Some("gate-1".into()),
        event_id: None,
        source: "test".into(),
        raw: None,
        direction: None,
    }
}

fn cli(db: &TestDb, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(&db.config)
        .env_remove("ATTENDD_STORE_URL")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn one_employee(db: &TestDb, id: &str) {
    db.store
        .upsert_employees(
            &[attendd::store::EmployeeRecord {
                employee_id: id.into(),
                name: "Li Na".into(),
                team: "hotline".into(),
                supervisor: "S01".into(),
                shift: None,
                aliases: vec![format!("card-{id}")],
                start_date: None,
                end_date: None,
            }],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------

async fn duplicate_punch_is_stored_once(db: &TestDb) {
    let p = punch("E001", "2026-11-02T08:29:13+08:00");
    let r = db
        .store
        .insert_punches(&[p.clone(), p.clone()], chrono::Utc::now())
        .await
        .unwrap();
    assert!(matches!(r[0], Inserted::New(_)), "{r:?}");
    assert_eq!(r[1], Inserted::Duplicate);
    assert_eq!(
        db.store
            .insert_punches(std::slice::from_ref(&p), chrono::Utc::now())
            .await
            .unwrap(),
        vec![Inserted::Duplicate]
    );
    // Another device at the same instant is another punch.
    let mut other = p.clone();
    other.device_id = Some("gate-2".into());
    assert!(matches!(
        db.store
            .insert_punches(&[other], chrono::Utc::now())
            .await
            .unwrap()[0],
        Inserted::New(_)
    ));
    // With an event id, (device, event, identity, time) is the key: a
    // re-sent record is a duplicate; the same record number at another
    // time is another punch (a device counter that restarted; issue 11,
    // defect 3 changed this, it used to be a duplicate).
    let mut ev = punch("E001", "2026-11-02T09:00:00+08:00");
    ev.event_id = Some("gate-1-000123".into());
    let mut reused = ev.clone();
    reused.time = at("2026-11-02T09:00:05+08:00");
    let r = db
        .store
        .insert_punches(&[ev.clone()], chrono::Utc::now())
        .await
        .unwrap();
    assert!(matches!(r[0], Inserted::New(_)));
    assert_eq!(
        db.store
            .insert_punches(&[ev], chrono::Utc::now())
            .await
            .unwrap(),
        vec![Inserted::Duplicate]
    );
    assert!(matches!(
        db.store
            .insert_punches(&[reused], chrono::Utc::now())
            .await
            .unwrap()[0],
        Inserted::New(_)
    ));
    assert_eq!(db.store.punch_count().await.unwrap(), 4);
    let day = db
        .store
        .punches(
            at("2026-11-02T00:00:00+08:00"),
            at("2026-11-03T00:00:00+08:00"),
            Some("E001"),
        )
        .await
        .unwrap();
    assert_eq!(day.len(), 4);
    assert_eq!(day[0].time, at("2026-11-02T08:29:13+08:00"));
}
store_test!(duplicate_punch_is_stored_once);

/// Issue 11, defect 3: a per-device record counter is never a key alone.
async fn record_counters_are_not_keys_alone(db: &TestDb) {
    // Hikvision `serialNo` reused after a reset: another employee, another
    // time, same device and number.
    let mut a = punch("E001", "2026-11-02T08:29:13+08:00");
    a.event_id = Some("48211".into());
    let mut b = punch("E002", "2026-11-20T08:31:02+08:00");
    b.event_id = Some("48211".into());
    // Dahua `Code=AccessControl` uploads name no device: two terminals'
    // records with one `RecNo`.
    let mut c = punch("E003", "2026-11-02T08:29:13+08:00");
    c.device_id = None;
    c.event_id = Some("5521".into());
    let mut d = punch("E004", "2026-11-02T08:40:00+08:00");
    d.device_id = None;
    d.event_id = Some("5521".into());
    let r = db
        .store
        .insert_punches(&[a, b, c, d], chrono::Utc::now())
        .await
        .unwrap();
    assert!(r.iter().all(|o| matches!(o, Inserted::New(_))), "{r:?}");
}
store_test!(record_counters_are_not_keys_alone);

/// Issue 11, defect 3, upgrade: a punch stored under the old key recipe
/// (device and record number only) is recognised when the terminal
/// re-sends its backlog, by device, employee and instant.
async fn backlog_stored_under_the_old_key_is_not_stored_twice(db: &TestDb) {
    let t = at("2026-11-02T08:29:13+08:00");
    let sql = "INSERT INTO punches (employee_id, time, device_id, source, event_id, identity, received_at, dedupe_key) \
               VALUES ($1, $2, 'gate-1', 'hik_http[0]', '48211', $1, $2, $3)";
    let old_key = "e\u{1f}gate-1\u{1f}48211";
    match &db.store {
        Store::Sqlite(p) => sqlx::query(sql)
            .bind("E001")
            .bind(t)
            .bind(old_key)
            .execute(p)
            .await
            .map(|_| ()),
        Store::Postgres(p) => sqlx::query(sql)
            .bind("E001")
            .bind(t)
            .bind(old_key)
            .execute(p)
            .await
            .map(|_| ()),
    }
    .unwrap();
    let mut resent = punch("E001", "2026-11-02T08:29:13+08:00");
    resent.event_id = Some("48211".into());
    // Twice in one batch too.
    assert_eq!(
        db.store
            .insert_punches(&[resent.clone(), resent.clone()], chrono::Utc::now())
            .await
            .unwrap(),
        vec![Inserted::Duplicate, Inserted::Duplicate]
    );
    // Another device at that instant is another punch; so is the same
    // device a second later.
    let mut other = resent.clone();
    other.device_id = Some("gate-2".into());
    let mut later = resent.clone();
    later.time = at("2026-11-02T08:29:14+08:00");
    let r = db
        .store
        .insert_punches(&[other, later], chrono::Utc::now())
        .await
        .unwrap();
    assert!(r.iter().all(|o| matches!(o, Inserted::New(_))), "{r:?}");
    assert_eq!(db.store.punch_count().await.unwrap(), 3);
}
store_test!(backlog_stored_under_the_old_key_is_not_stored_twice);

async fn late_punch_changes_verdict_and_ledger_with_audit(db: &TestDb) {
    one_employee(db, "E001").await;
    db.store
        .insert_punches(
            &[punch("E001", "2026-11-02T08:29:13+08:00")],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let day = d("2026-11-02");
    let r = db
        .store
        .recompute(&db.policy, None, day, day, "test", "tester", later())
        .await
        .unwrap();
    assert_eq!((r.created, r.changed), (1, 0), "{r:?}");
    let v = db.store.verdicts(day, day, None).await.unwrap();
    assert_eq!(v[0].status, "absent_half", "one punch: missing check-out");
    assert!(!v[0].provisional);
    let before = db.store.ledger(day, day, Some("E001")).await.unwrap();
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(before[0].voided_at.is_none());
    assert_eq!(before[0].source, "device");

    // Recomputing unchanged data writes nothing.
    let r = db
        .store
        .recompute(&db.policy, None, day, day, "test", "tester", later())
        .await
        .unwrap();
    assert_eq!(
        (r.created, r.changed, r.ledger_added, r.ledger_voided),
        (0, 0, 0, 0)
    );

    // The check-out arrives late.
    db.store
        .insert_punches(
            &[punch("E001", "2026-11-02T17:31:02+08:00")],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let r = db
        .store
        .recompute(
            &db.policy,
            Some(&["E001".to_string()]),
            day,
            day,
            "late punch",
            "ingest",
            later(),
        )
        .await
        .unwrap();
    assert_eq!(
        (r.changed, r.ledger_voided, r.ledger_added),
        (1, 1, 0),
        "{r:?}"
    );
    let v = db.store.verdicts(day, day, None).await.unwrap();
    assert_eq!(v[0].status, "present");
    let after = db.store.ledger(day, day, Some("E001")).await.unwrap();
    assert_eq!(after.len(), 1, "voided, not deleted");
    assert!(after[0].voided_at.is_some());
    assert_eq!(after[0].void_cause.as_deref(), Some("late punch"));

    let audit = db.store.audit(None).await.unwrap();
    let verdict_rows: Vec<_> = audit
        .iter()
        .filter(|a| a.table_name == "day_verdicts")
        .collect();
    assert_eq!(verdict_rows.len(), 1, "{audit:?}");
    assert_eq!(verdict_rows[0].row_key, "E001/2026-11-02");
    assert!(
        verdict_rows[0]
            .old_value
            .as_deref()
            .unwrap()
            .contains("absent_half")
    );
    assert!(
        verdict_rows[0]
            .new_value
            .as_deref()
            .unwrap()
            .contains("\"present\"")
    );
    assert_eq!(verdict_rows[0].cause, "late punch");
    assert_eq!(verdict_rows[0].actor, "ingest");
    let ledger_rows: Vec<_> = audit.iter().filter(|a| a.table_name == "ledger").collect();
    assert_eq!(ledger_rows.len(), 1);
    assert_eq!(ledger_rows[0].row_key, after[0].id.to_string());
    assert!(
        ledger_rows[0]
            .new_value
            .as_deref()
            .unwrap()
            .contains("voided_at")
    );
}
store_test!(late_punch_changes_verdict_and_ledger_with_audit);

async fn published_month_gets_adjustment_not_edit(db: &TestDb) {
    one_employee(db, "E001").await;
    db.store
        .insert_punches(
            &[punch("E001", "2026-11-03T08:46:10+08:00")],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let (from, to) = (d("2026-11-01"), d("2026-11-30"));
    db.store
        .recompute(&db.policy, None, from, to, "test", "tester", later())
        .await
        .unwrap();
    let day = d("2026-11-03");
    let published = db.store.verdicts(day, day, None).await.unwrap();
    let ledger_before = db.store.ledger(from, to, None).await.unwrap();
    assert!(
        db.store
            .publish_month_at("2026-11", "hr", chrono::Utc::now())
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .publish_month_at("2026-11", "hr", chrono::Utc::now())
            .await
            .unwrap()
    );

    db.store
        .insert_punches(
            &[punch("E001", "2026-11-03T17:30:40+08:00")],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let r = db
        .store
        .recompute(&db.policy, None, from, to, "late punch", "ingest", later())
        .await
        .unwrap();
    assert_eq!((r.changed, r.adjustments), (0, 1), "{r:?}");
    assert_eq!(
        db.store.verdicts(day, day, None).await.unwrap(),
        published,
        "published day unchanged"
    );
    assert_eq!(
        db.store.ledger(from, to, None).await.unwrap(),
        ledger_before,
        "ledger unchanged"
    );
    let adj = db.store.adjustments(true).await.unwrap();
    assert_eq!(adj.len(), 1);
    assert_eq!((adj[0].employee_id.as_str(), adj[0].date), ("E001", day));
    assert!(
        adj[0].new_verdict.contains("\"late\""),
        "{}",
        adj[0].new_verdict
    );
    assert_eq!(
        adj[0].old_verdict.as_deref(),
        Some(published[0].verdict.as_str())
    );
    // The same data again: no second adjustment.
    let r = db
        .store
        .recompute(&db.policy, None, from, to, "again", "ingest", later())
        .await
        .unwrap();
    assert_eq!(r.adjustments, 0);
    assert_eq!(db.store.adjustments(false).await.unwrap().len(), 1);
    assert!(db.store.audit(Some("adjustments")).await.unwrap().len() == 1);

    // HR applies it: the new verdict and its ledger difference are written
    // for that day only, the adjustment is applied, and it is audited.
    let id = adj[0].id;
    let r = db
        .store
        .apply_adjustment(&db.policy, id, "hr", later())
        .await
        .unwrap();
    assert_eq!(r.changed, 1, "{r:?}");
    let now = db.store.verdicts(day, day, None).await.unwrap();
    assert_eq!(now[0].verdict, adj[0].new_verdict);
    assert_ne!(
        db.store.ledger(from, to, None).await.unwrap(),
        ledger_before
    );
    let after = db.store.adjustments(false).await.unwrap();
    assert_eq!(after[0].status, "applied");
    assert!(db.store.adjustments(true).await.unwrap().is_empty());
    assert!(
        db.store
            .apply_adjustment(&db.policy, id, "hr", later())
            .await
            .unwrap_err()
            .to_string()
            .contains("not pending"),
        "applied twice"
    );
    assert!(
        db.store
            .dismiss_adjustment(id + 100, "hr", "x", later())
            .await
            .is_err()
    );
    let audit = db.store.audit(Some("adjustments")).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.new_value.as_deref() == Some("applied"))
    );
    // The commands HR uses.
    let o = cli(db, &["adjustment", "list", "--all", "--json"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let row: serde_json::Value =
        serde_json::from_str(text(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(
        (row["status"].as_str(), row["new_status"].as_str()),
        (Some("applied"), Some("late"))
    );
    let o = cli(
        db,
        &["adjustment", "dismiss", &id.to_string(), "--reason", "x"],
    );
    assert_eq!(o.status.code(), Some(1), "not pending is bad input");
    assert!(
        text(&o.stderr).contains("not pending"),
        "{}",
        text(&o.stderr)
    );
}
store_test!(published_month_gets_adjustment_not_edit);

async fn punches_refuse_update_and_delete(db: &TestDb) {
    db.store
        .insert_punches(
            &[punch("E001", "2026-11-02T08:29:13+08:00")],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    for sql in [
        "UPDATE punches SET device_id = 'forged'",
        "UPDATE punches SET time = received_at",
        "DELETE FROM punches",
    ] {
        let res = match &db.store {
            Store::Sqlite(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
            Store::Postgres(p) => sqlx::query(sql).execute(p).await.map(|_| ()),
        };
        let e = res.expect_err(sql).to_string();
        assert!(e.contains("append-only"), "{sql}: {e}");
    }
    let p = db
        .store
        .punches(at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"), None)
        .await
        .unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].device_id.as_deref(), Some("gate-1"));
    // Ledger entries are voided, never deleted.
    let del = match &db.store {
        Store::Sqlite(p) => sqlx::query("DELETE FROM ledger")
            .execute(p)
            .await
            .map(|_| ()),
        Store::Postgres(p) => sqlx::query("DELETE FROM ledger")
            .execute(p)
            .await
            .map(|_| ()),
    };
    // An empty table has no row to refuse on PostgreSQL (row trigger); add
    // one and try again.
    if del.is_ok() {
        one_employee(db, "E001").await;
        db.store
            .recompute(
                &db.policy,
                None,
                d("2026-11-03"),
                d("2026-11-03"),
                "t",
                "t",
                later(),
            )
            .await
            .unwrap();
        let del = match &db.store {
            Store::Sqlite(p) => sqlx::query("DELETE FROM ledger")
                .execute(p)
                .await
                .map(|_| ()),
            Store::Postgres(p) => sqlx::query("DELETE FROM ledger")
                .execute(p)
                .await
                .map(|_| ()),
        };
        assert!(del.is_err(), "ledger delete must be refused");
    }
}
store_test!(punches_refuse_update_and_delete);

async fn imports_are_all_or_nothing_with_lines(db: &TestDb) {
    let dir = db.dir.path();
    let bad = dir.join("employees.csv");
    std::fs::write(
        &bad,
        "employee_id,name,team,supervisor,shift\nE001,Li Na,hotline,S01,\nE002,Wang Wei,hotline,S01,nightshift\nE003,Zhang Min,hotline,S01,\n,No Id,hotline,S01,\n",
    )
    .unwrap();
    let o = cli(db, &["import", "employees", bad.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("employees.csv:3:") && err.contains("nightshift"),
        "{err}"
    );
    assert!(err.contains("employees.csv:5:"), "{err}");
    assert!(err.contains("nothing imported"), "{err}");
    assert!(
        db.store.employees().await.unwrap().is_empty(),
        "a bad file imports nothing"
    );

    let o = cli(
        db,
        &["import", "employees", &format!("{EXAMPLES}/employees.csv")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(db.store.employees().await.unwrap().len(), 5);

    let roster = dir.join("roster.csv");
    std::fs::write(
        &roster,
        "employee_id,date,shift\nE001,2026-11-04,rest\nE999,2026-11-04,day\nE002,2026-11-31,day\nE003,2026-11-04,rest\n",
    )
    .unwrap();
    let o = cli(db, &["import", "roster", roster.to_str().unwrap()]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("roster.csv:3:") && err.contains("E999"),
        "{err}"
    );
    assert!(err.contains("roster.csv:4:"), "{err}");
    assert!(!err.contains("roster.csv:2:"), "{err}");
    assert!(
        db.store
            .roster(d("2026-11-01"), d("2026-11-30"))
            .await
            .unwrap()
            .is_empty()
    );

    let leaves = dir.join("leaves.csv");
    std::fs::write(
        &leaves,
        "employee_id,start,end,kind,status\nE004,2026-11-03 08:30:00,2026-11-03 17:30:00,annual,approved\nE004,2026-11-04 08:30:00,2026-11-04 13:30:00,sick,maybe\n",
    )
    .unwrap();
    let o = cli(db, &["import", "leaves", leaves.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("leaves.csv:3:"),
        "{}",
        text(&o.stderr)
    );
    assert!(
        db.store
            .leaves(at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
            .await
            .unwrap()
            .is_empty()
    );

    let holidays = dir.join("holidays.csv");
    std::fs::write(
        &holidays,
        "date,kind\n2026-11-07,workday\n2026-11-08,party\n",
    )
    .unwrap();
    let o = cli(db, &["import", "holidays", holidays.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("holidays.csv:3:"),
        "{}",
        text(&o.stderr)
    );
    assert!(db.store.holidays().await.unwrap().is_empty());
}
store_test!(imports_are_all_or_nothing_with_lines);

async fn reimport_adds_nothing_and_day_matches_evaluate(db: &TestDb) {
    for k in ["employees", "holidays", "roster", "leaves"] {
        let o = cli(db, &["import", k, &format!("{EXAMPLES}/{k}.csv")]);
        assert_eq!(o.status.code(), Some(0), "{k}: {}", text(&o.stderr));
    }
    let file = format!("{EXAMPLES}/punches.csv");
    let o = cli(db, &["import", "punches", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("42 new, 0 duplicates"),
        "{}",
        text(&o.stdout)
    );
    let o = cli(db, &["import", "punches", &file]);
    assert!(
        text(&o.stdout).contains("0 new, 42 duplicates"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(db.store.punch_count().await.unwrap(), 42);

    // A terminal's USB export: a bad line is quarantined, not dropped.
    let att = db.dir.path().join("attlog.dat");
    std::fs::write(
        &att,
        "   E001\t2026-11-05 08:20:00\t0\t1\t0\nnot a record\n",
    )
    .unwrap();
    let o = cli(
        db,
        &[
            "import",
            "punches",
            att.to_str().unwrap(),
            "--format",
            "zk-attlog",
            "--device",
            "zk-1",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("1 new, 0 duplicates, 1 quarantined"),
        "{}",
        text(&o.stdout)
    );
    let o = cli(
        db,
        &[
            "import",
            "punches",
            att.to_str().unwrap(),
            "--format",
            "zk-attlog",
            "--device",
            "zk-1",
        ],
    );
    assert!(
        text(&o.stdout).contains("0 new, 1 duplicates"),
        "{}",
        text(&o.stdout)
    );
    let o = cli(db, &["quarantine", "--json"]);
    let q = text(&o.stdout);
    assert_eq!(q.lines().count(), 2, "{q}");
    assert!(
        q.contains("attlog.dat:2") && q.contains("not a record"),
        "{q}"
    );

    // `day --json` prints what `evaluate --json` prints for the same data
    // (the attlog punch on 11-05 is also in the CSV within the repeat window
    // or else changes that day, so compare 11-02..11-04).
    let o = Command::new(BIN)
        .args(["evaluate", "--policy", POLICY])
        .args(["--employees", &format!("{EXAMPLES}/employees.csv")])
        .args(["--punches", &file])
        .args(["--roster", &format!("{EXAMPLES}/roster.csv")])
        .args(["--leaves", &format!("{EXAMPLES}/leaves.csv")])
        .args(["--holidays", &format!("{EXAMPLES}/holidays.csv")])
        .args(["--from", "2026-11-02", "--to", "2026-11-04", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut expected: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
    let mut got: Vec<String> = Vec::new();
    for day in ["2026-11-02", "2026-11-03", "2026-11-04"] {
        let o = cli(db, &["day", day, "--json"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        got.extend(text(&o.stdout).lines().map(String::from));
    }
    expected.sort();
    got.sort();
    assert_eq!(got.len(), 15);
    assert_eq!(got, expected);

    let o = cli(
        db,
        &[
            "punches",
            "--date",
            "2026-11-03",
            "--employee",
            "E001",
            "--json",
        ],
    );
    let lines: Vec<serde_json::Value> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["time"], "2026-11-03T08:46:10+08:00");
    assert_eq!(lines[0]["device_id"], "gate-1");
    assert_eq!(lines[0]["employee_id"], "E001");

    let o = cli(db, &["summary", "2026-11-03", "--json"]);
    let s: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(s["totals"]["employees"], 5);
    assert_eq!(s["rows"].as_array().unwrap().len(), 5);
    let o = cli(db, &["month", "2026-11", "--json"]);
    assert_eq!(text(&o.stdout).lines().count(), 5);
    assert!(text(&o.stdout).starts_with("{\"scores\":{"));
    let o = cli(db, &["employee", "E001", "--month", "2026-11", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("\"scores\""));
    let o = cli(db, &["employee", "E404"]);
    assert_eq!(o.status.code(), Some(1));
}
store_test!(reimport_adds_nothing_and_day_matches_evaluate);

async fn store_failure_exits_2(db: &TestDb) {
    let cfg = db.dir.path().join("broken.toml");
    let url = match db.engine {
        Engine::Sqlite => "sqlite:///proc/attendd-cannot-be-here/x.db".to_string(),
        Engine::Postgres => "postgres://postgres@127.0.0.1:1/none".to_string(),
    };
    std::fs::write(
        &cfg,
        format!("[policy]\nfile = {POLICY:?}\n[store]\nurl = {url:?}\n"),
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["day", "2026-11-03", "--config"])
        .arg(&cfg)
        .env_remove("ATTENDD_STORE_URL")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let _ = &db.url;
}
store_test!(store_failure_exits_2);

/// SQLite only: query commands read while another connection holds the
/// write lock, and while another process imports.
#[test]
fn sqlite_readable_while_another_process_writes() {
    rt().block_on(async {
        let db = setup(Engine::Sqlite, "sqlite_readable").await.unwrap();
        for k in ["employees", "holidays", "roster", "leaves", "punches"] {
            let o = cli(&db, &["import", k, &format!("{EXAMPLES}/{k}.csv")]);
            assert_eq!(o.status.code(), Some(0), "{k}: {}", text(&o.stderr));
        }
        // A writer holding the write lock in an open transaction.
        let Store::Sqlite(pool) = &db.store else { unreachable!() };
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query(
            "INSERT INTO punches (employee_id, time, source, identity, received_at, dedupe_key) \
             VALUES ('E001', '2026-11-03T01:00:00+00:00', 'test', 'E001', '2026-11-03T01:00:00+00:00', 'held')",
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        let started = std::time::Instant::now();
        for args in [&["day", "2026-11-03", "--json"][..], &["punches", "--date", "2026-11-03"][..]] {
            let o = cli(&db, args);
            assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
            assert!(!o.stdout.is_empty());
        }
        assert!(started.elapsed().as_secs() < 10, "readers waited for the writer");
        tx.commit().await.unwrap();

        // Another process importing many punches while we query.
        let big = db.dir.path().join("big.csv");
        let mut s = String::from("employee_id,time,device_id\n");
        for i in 0..60_000 {
            s.push_str(&format!("X{:05},2026-11-{:02} 08:{:02}:{:02},bulk\n", i % 5000, 2 + i / 5000 % 20, i / 60 % 60, i % 60));
        }
        std::fs::write(&big, s).unwrap();
        let mut child = Command::new(BIN)
            .args(["import", "punches", big.to_str().unwrap(), "--config"])
            .arg(&db.config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reads = 0;
        loop {
            let o = cli(&db, &["day", "2026-11-03", "--json"]);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
            assert_eq!(text(&o.stdout).lines().count(), 5);
            reads += 1;
            if child.try_wait().unwrap().is_some() {
                break;
            }
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains("60000 new"), "{}", text(&out.stdout));
        assert!(reads >= 1);
        teardown(db).await;
    });
}

/// The outbox stores a message once per key, hands out due deliveries,
/// and records sends and failures; quarantine takes batches; day closes
/// round-trip. Same on both engines.
async fn outbox_and_day_closes(db: &TestDb) {
    use attendd::store::NewQuarantine;
    use attendd::store::outbox::{DayClose, NewMessage};
    let t = at("2026-11-02T09:00:00+08:00");
    let msg = NewMessage {
        key: "absence/2026-11-02/E001".into(),
        kind: "absence".into(),
        payload: serde_json::json!({"id": "absence/2026-11-02/E001"}),
        sinks: vec!["a".into(), "b".into()],
    };
    assert!(db.store.enqueue(&msg, t).await.unwrap());
    assert!(!db.store.enqueue(&msg, t).await.unwrap(), "same key twice");
    // attendd_outbox_pending: undelivered messages per sink.
    assert_eq!(
        db.store.outbox_pending().await.unwrap(),
        vec![("a".to_string(), 1), ("b".to_string(), 1)]
    );
    let asked = [
        "absence/2026-11-02/E001".to_string(),
        "absence/2026-11-03/E001".to_string(),
    ];
    let keys = db.store.outbox_keys(&asked).await.unwrap();
    assert!(keys.contains("absence/2026-11-02/E001") && keys.len() == 1);
    // Two instances claim at once: each delivery goes to one of them.
    let lease = t + chrono::Duration::minutes(5);
    let other = Store::open(&db.url).await.unwrap();
    let (a, b) = tokio::join!(
        db.store.outbox_claim(t, lease, 10),
        other.outbox_claim(t, lease, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 2, "{a:?} {b:?}");
    other.close().await;
    let due: Vec<_> = a.into_iter().chain(b).collect();
    assert!(
        db.store
            .outbox_claim(t, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "claimed"
    );
    db.store
        .outbox_sent(due[0].outbox_id, &due[0].sink, t)
        .await
        .unwrap();
    let later = t + chrono::Duration::seconds(30);
    db.store
        .outbox_failed(due[1].outbox_id, &due[1].sink, later, "HTTP 500")
        .await
        .unwrap();
    assert_eq!(
        db.store.outbox_pending().await.unwrap(),
        vec![(due[1].sink.clone(), 1)],
        "the sent one is no longer pending, the failed one is"
    );
    assert!(
        db.store
            .outbox_claim(t, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = db.store.outbox_claim(later, lease, 10).await.unwrap();
    assert_eq!((again.len(), again[0].attempts), (1, 1));
    // A claim that is never finished (the process died) is due again once
    // its lease is over.
    let after_lease = lease + chrono::Duration::seconds(1);
    assert_eq!(
        db.store
            .outbox_claim(after_lease, after_lease + chrono::Duration::minutes(5), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    let rows = db.store.outbox(Some("absence"), 10).await.unwrap();
    assert_eq!((rows[0].sinks, rows[0].sent), (2, 1));
    assert_eq!(rows[0].last_error.as_deref(), Some("HTTP 500"));

    let q: Vec<NewQuarantine> = (0..1500)
        .map(|i| NewQuarantine {
            source: "mqtt[0]".into(),
            payload: format!("bad {i}").into_bytes(),
            reason: "test".into(),
            ..Default::default()
        })
        .collect();
    db.store
        .quarantine_many(&q, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(db.store.quarantined(5000).await.unwrap().len(), 1500);

    let d = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap();
    assert!(db.store.day_close(d).await.unwrap().is_none());
    let c = DayClose {
        date: d,
        revision: 0,
        summary_hash: "abc".into(),
        closed_at: t,
        updated_at: t,
    };
    db.store.save_day_close(&c, Some("{}")).await.unwrap();
    let c2 = DayClose {
        revision: 1,
        summary_hash: "def".into(),
        updated_at: later,
        ..c.clone()
    };
    db.store.save_day_close(&c2, Some("{}")).await.unwrap();
    assert_eq!(db.store.day_close(d).await.unwrap(), Some(c2));
}
store_test!(outbox_and_day_closes);

/// Two recomputes of the same days at once (two daemons on one store, or a
/// daemon and `attendd recompute`) add each ledger entry once.
async fn concurrent_recomputes_do_not_double_the_ledger(db: &TestDb) {
    // Enough employees that the read-and-compare phases overlap.
    let ids: Vec<String> = (0..300).map(|i| format!("E{i:03}")).collect();
    let emps: Vec<attendd::store::EmployeeRecord> = ids
        .iter()
        .map(|id| attendd::store::EmployeeRecord {
            employee_id: id.clone(),
            name: id.clone(),
            team: "T".into(),
            supervisor: "S".into(),
            shift: None,
            aliases: vec![],
            start_date: None,
            end_date: None,
        })
        .collect();
    db.store
        .upsert_employees(&emps, chrono::Utc::now())
        .await
        .unwrap();
    let punches: Vec<NewPunch> = ids
        .iter()
        .map(|e| punch(e, "2026-11-02T09:29:13+08:00"))
        .collect();
    db.store
        .insert_punches(&punches, chrono::Utc::now())
        .await
        .unwrap();
    let day = d("2026-11-02");
    let other = Store::open(&db.url).await.unwrap();
    let third = Store::open(&db.url).await.unwrap();
    let (a, b, c) = tokio::join!(
        db.store
            .recompute(&db.policy, None, day, day, "a", "tester", later()),
        other.recompute(&db.policy, None, day, day, "b", "tester", later()),
        third.recompute(&db.policy, None, day, day, "c", "tester", later()),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a.created + b.created + c.created, 300, "{a:?} {b:?} {c:?}");
    let ledger = db.store.ledger(day, day, None).await.unwrap();
    let live = ledger.iter().filter(|e| e.voided_at.is_none()).count();
    assert_eq!(live, a.ledger_added + b.ledger_added + c.ledger_added);
    // Late and missing check-out: two entries each, once.
    assert_eq!(live, 600);
    other.close().await;
    third.close().await;
}
store_test!(concurrent_recomputes_do_not_double_the_ledger);

/// Issue 12 defect 3: a recompute at noon stores today's verdict as
/// provisional `in_progress` with no ledger entry; once the window has
/// closed (or the day is closed) the missing check-out is charged.
async fn today_is_stored_provisional_without_ledger(db: &TestDb) {
    one_employee(db, "E001").await;
    db.store
        .insert_punches(
            &[
                punch("E001", "2026-11-02T08:20:00+08:00"),
                punch("E001", "2026-11-03T08:20:00+08:00"),
            ],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let day = d("2026-11-02");
    let noon = at("2026-11-02T12:00:00+08:00");
    db.store
        .recompute(&db.policy, None, day, day, "test", "tester", noon)
        .await
        .unwrap();
    let v = db.store.verdicts(day, day, None).await.unwrap();
    assert_eq!(v[0].status, "in_progress");
    assert!(v[0].provisional);
    assert_eq!(v[0].points, 0);
    assert!(
        db.store
            .ledger(day, day, Some("E001"))
            .await
            .unwrap()
            .is_empty()
    );
    db.store
        .recompute(
            &db.policy,
            None,
            day,
            day,
            "test",
            "tester",
            at("2026-11-02T21:31:00+08:00"),
        )
        .await
        .unwrap();
    let v = db.store.verdicts(day, day, None).await.unwrap();
    assert_eq!(v[0].status, "absent_half");
    assert!(!v[0].provisional);
    assert_eq!(
        db.store.ledger(day, day, Some("E001")).await.unwrap().len(),
        1
    );

    // The day close at 18:30 makes the next day final while its window is
    // still open.
    let next = d("2026-11-03");
    db.store
        .recompute_closing(&db.policy, next, at("2026-11-03T18:30:00+08:00"))
        .await
        .unwrap();
    let v = db.store.verdicts(next, next, None).await.unwrap();
    assert_eq!(v[0].status, "absent_half");
    assert!(!v[0].provisional);
    assert_eq!(
        db.store
            .ledger(next, next, Some("E001"))
            .await
            .unwrap()
            .len(),
        1
    );
}
store_test!(today_is_stored_provisional_without_ledger);

// ---------------------------------------------------------------------------
// Issue 11 (supersede) and issue 13 (bounded quarantine).

async fn superseded_punch_leaves_classification_and_the_resent_one_counts(db: &TestDb) {
    one_employee(db, "E001").await;
    // A check-in shifted by a misread time offset (08:29 became 11:29)
    // and a correct check-out.
    let mut shifted = punch("E001", "2026-11-02T11:29:13+08:00");
    shifted.device_id = Some("CQZ7231460021".into());
    // ZKTeco ATTLOG's key is the PIN and the wall time as written: the
    // correct re-sent punch carries the same one.
    shifted.event_id = Some("E001 2026-11-02 08:29:13".into());
    db.store
        .insert_punches(
            &[shifted, punch("E001", "2026-11-02T17:31:02+08:00")],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let day = d("2026-11-02");
    db.store
        .recompute(&db.policy, None, day, day, "test", "tester", later())
        .await
        .unwrap();
    let status = |v: Vec<attendd::store::StoredVerdict>| v[0].status.clone();
    assert_ne!(
        status(db.store.verdicts(day, day, None).await.unwrap()),
        "present"
    );

    let out = cli(
        db,
        &[
            "punches",
            "supersede",
            "--device",
            "CQZ7231460021",
            "--from",
            "2026-11-02 00:00",
            "--to",
            "2026-11-03 00:00",
            "--reason",
            "TimeOffset read as a record counter",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["superseded"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    // Applying it again supersedes nothing more.
    let again = cli(
        db,
        &[
            "punches",
            "supersede",
            "--device",
            "CQZ7231460021",
            "--from",
            "2026-11-02 00:00",
            "--to",
            "2026-11-03 00:00",
            "--reason",
            "again",
            "--json",
        ],
    );
    let again: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["already_superseded"], 1, "{again}");
    // The punch is still stored (append-only), but not classified.
    assert_eq!(db.store.punch_count().await.unwrap(), 2);
    // The terminal re-sends the correct punch.
    let mut correct = punch("E001", "2026-11-02T08:29:13+08:00");
    correct.device_id = Some("CQZ7231460021".into());
    correct.event_id = Some("E001 2026-11-02 08:29:13".into());
    let r = db
        .store
        .insert_punches(std::slice::from_ref(&correct), chrono::Utc::now())
        .await
        .unwrap();
    assert!(matches!(r[0], Inserted::New(_)), "{r:?}");
    // Sent once more: now a duplicate of the correct punch.
    assert_eq!(
        db.store
            .insert_punches(&[correct], chrono::Utc::now())
            .await
            .unwrap(),
        vec![Inserted::Duplicate]
    );
    db.store
        .recompute(&db.policy, None, day, day, "resent", "ingest", later())
        .await
        .unwrap();
    assert_eq!(
        status(db.store.verdicts(day, day, None).await.unwrap()),
        "present"
    );
    let audit = db.store.audit(Some("punch_supersedes")).await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0].cause.contains("TimeOffset"), "{audit:?}");
    // Bad ranges are input errors naming the flag.
    let bad = cli(
        db,
        &[
            "punches",
            "supersede",
            "--device",
            "X",
            "--from",
            "1970-01-01 00:00",
            "--to",
            "2026-11-03 00:00",
            "--reason",
            "r",
        ],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("--from"),
        "{}",
        text(&bad.stderr)
    );
}
store_test!(superseded_punch_leaves_classification_and_the_resent_one_counts);

async fn quarantine_prunes_garbage_never_unknown_employees_and_pages_in_sql(db: &TestDb) {
    use attendd::store::{NewQuarantine, QuarantineKind};
    let now = later();
    let old = now - chrono::Duration::days(120);
    let row = |kind, at, reason: &str| NewQuarantine {
        source: "zk_push[0]:A".into(),
        payload: reason.as_bytes().to_vec(),
        reason: reason.into(),
        kind,
        replay: None,
        received_at: Some(at),
    };
    db.store
        .quarantine_many(
            &[
                row(QuarantineKind::Undecodable, old, "old garbage"),
                row(QuarantineKind::Summary, old, "old summary"),
                row(QuarantineKind::Unknown, old, "old unknown employee"),
                row(QuarantineKind::Undecodable, now, "new garbage"),
            ],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let n = db
        .store
        .prune_quarantine(now - chrono::Duration::days(90))
        .await
        .unwrap();
    assert_eq!(n, 2);
    let left: Vec<String> = db
        .store
        .quarantined(10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.reason)
        .collect();
    assert_eq!(left, vec!["new garbage", "old unknown employee"]);
    // Pages come from SQL: an offset past the end is an empty page.
    assert_eq!(db.store.quarantine_page(1, 5).await.unwrap().len(), 1);
    assert!(
        db.store
            .quarantine_page(4_000_000, 5)
            .await
            .unwrap()
            .is_empty()
    );
}
store_test!(quarantine_prunes_garbage_never_unknown_employees_and_pages_in_sql);

/// Issue 11 item 6: RecPush `personId` is a per-terminal counter; an alias
/// scoped to a device (`device:ID:personId`) resolves it on that terminal
/// only. Through the daemon's pipeline (decode, attribute, commit).
async fn device_scoped_recpush_aliases_through_the_pipeline(db: &TestDb) {
    use attendd::ingest::decode::Decoder;
    use attendd::pipeline::{Pipeline, SourceDecoding};
    use attendd::source::{PunchSink, Received};
    use std::sync::Arc;
    db.store
        .upsert_employees(
            &[
                attendd::store::EmployeeRecord {
                    employee_id: "E001".into(),
                    name: "Leyla".into(),
                    team: "gate".into(),
                    supervisor: "S01".into(),
                    shift: None,
                    aliases: vec!["device:1026731:57".into()],
                    start_date: None,
                    end_date: None,
                },
                attendd::store::EmployeeRecord {
                    employee_id: "E002".into(),
                    name: "Deniz".into(),
                    team: "gate".into(),
                    supervisor: "S01".into(),
                    shift: None,
                    aliases: vec!["device:1026732:57".into()],
                    start_date: None,
                    end_date: None,
                },
            ],
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let mut sources = std::collections::HashMap::new();
    sources.insert(
        Arc::<str>::from("mqtt[0]"),
        SourceDecoding {
            decoder: Decoder::RecPush,
            tz: chrono_tz::Europe::Istanbul,
            options: Default::default(),
        },
    );
    let pipeline = Pipeline::new(
        db.store.clone(),
        Arc::new(db.policy.clone()),
        sources,
        Arc::new(attendd::metrics::Metrics::default()),
        chrono::Duration::minutes(5),
    )
    .await
    .unwrap();
    // A terminal enrolled from its own screen: customId empty, personId 57
    // (layout of the vendor's RecPush document, devices.md §4.1).
    let rec = |dev: &str, record: u32| {
        Received {
        source: Arc::from("mqtt[0]"),
        topic: Some(format!("mqtt/face/{dev}/Rec")),
        payload: format!(
            r#"{{"operator":"RecPush","info":{{"customId":"","personId":"57","RecordID":"{record}","VerifyStatus":"1","similarity1":"91.0","Sendintime":1,"facesluiceId":"{dev}","time":"2026-11-02 08:29:13"}}}}"#
        )
        .into_bytes(),
        received_at: at("2026-11-02T05:29:20Z"),
    }
    };
    pipeline
        .commit(&[rec("1026731", 1), rec("1026732", 1), rec("1026733", 1)])
        .await
        .unwrap();
    let from = at("2026-11-02T00:00:00Z");
    let p = db
        .store
        .punches(from, from + chrono::Duration::days(1), None)
        .await
        .unwrap();
    let who: Vec<(&str, Option<&str>)> = p
        .iter()
        .map(|p| (p.employee_id.as_str(), p.device_id.as_deref()))
        .collect();
    assert_eq!(
        who,
        vec![("E001", Some("1026731")), ("E002", Some("1026732"))]
    );
    let q = db.store.quarantined(10).await.unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert!(
        q[0].reason.starts_with("unknown alias \"57\""),
        "{}",
        q[0].reason
    );
    assert_eq!(q[0].kind, attendd::store::QuarantineKind::Unknown);
    let info = q[0].replay.as_ref().unwrap();
    assert_eq!(info.topic.as_deref(), Some("mqtt/face/1026733/Rec"));
    assert_eq!(info.decoder, "recpush");

    // Issue 13: the daemon prunes undecodable payloads past the retention
    // (here 30 days) as it re-classifies, never unknown-person punches.
    let pipeline = pipeline.with_quarantine_retention(30);
    pipeline
        .commit(&[Received {
            source: Arc::from("mqtt[0]"),
            topic: Some("mqtt/face/1026731/Rec".into()),
            payload: b"\x00garbage".to_vec(),
            received_at: at("2026-11-02T05:29:20Z"),
        }])
        .await
        .unwrap();
    assert_eq!(db.store.quarantined(10).await.unwrap().len(), 2);
    pipeline
        .recompute_dirty(at("2026-12-15T00:00:00Z"))
        .await
        .unwrap();
    let left = db.store.quarantined(10).await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].kind, attendd::store::QuarantineKind::Unknown);
}
store_test!(device_scoped_recpush_aliases_through_the_pipeline);

/// Issue 13 (bounded memory): a payload of many punches for people nobody
/// holds (a form-encoded ZKTeco upload of 2 MiB is one message) keeps the
/// payload once, in one quarantine row naming the first id and how many
/// more; before, every unknown punch kept its own copy of the whole upload
/// (≈77,000 copies of 2 MiB). A replay re-decodes the whole payload.
async fn unknown_punches_of_one_payload_keep_it_once(db: &TestDb) {
    use attendd::ingest::decode::Decoder;
    use attendd::pipeline::{Pipeline, SourceDecoding};
    use attendd::source::{PunchSink, Received};
    use std::sync::Arc;
    one_employee(db, "E001").await;
    let mut sources = std::collections::HashMap::new();
    sources.insert(
        Arc::<str>::from("serial[0]"),
        SourceDecoding {
            decoder: Decoder::from_name("zk-attlog").unwrap(),
            tz: chrono_tz::Asia::Shanghai,
            options: Default::default(),
        },
    );
    let pipeline = Pipeline::new(
        db.store.clone(),
        Arc::new(db.policy.clone()),
        sources,
        Arc::new(attendd::metrics::Metrics::default()),
        chrono::Duration::minutes(5),
    )
    .await
    .unwrap();
    let body: String = (0..300)
        .map(|i| format!("X{i:04}\t2026-11-02 08:{:02}:{:02}\t0\t1\n", i / 60, i % 60))
        .chain(std::iter::once(
            "E001\t2026-11-02 08:29:13\t0\t1\n".to_string(),
        ))
        .collect();
    pipeline
        .commit(&[Received {
            source: Arc::from("serial[0]"),
            topic: None,
            payload: body.clone().into_bytes(),
            received_at: at("2026-11-02T00:30:00Z"),
        }])
        .await
        .unwrap();
    let q = db.store.quarantined(1000).await.unwrap();
    assert_eq!(q.len(), 1, "one row for the payload, not one per punch");
    assert_eq!(q[0].kind, attendd::store::QuarantineKind::Unknown);
    assert!(
        q[0].reason.contains("X0000") && q[0].reason.contains("and 299 more"),
        "{}",
        q[0].reason
    );
    assert_eq!(q[0].payload.len(), body.len());
    let from = at("2026-11-02T00:00:00Z");
    let stored = db
        .store
        .punches(from, from + chrono::Duration::days(1), None)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "the known employee's punch is stored");
}
store_test!(unknown_punches_of_one_payload_keep_it_once);

/// 坐席考勤管理制度 三3, 三4: a leaves.csv with `requested_at` and `document`
/// imported into the store flags the days as `evaluate` does on the same file,
/// and a later file without those columns keeps what is stored.
async fn leave_rule_columns_are_stored_and_flag_as_evaluate_does(db: &TestDb) {
    let o = cli(
        db,
        &["import", "employees", &format!("{EXAMPLES}/employees.csv")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let dir = db.dir.path();
    // A punch import fixes where classification starts; later imports
    // recompute from there.
    let punches = dir.join("punches.csv");
    std::fs::write(&punches, "employee_id,time\nE005,2026-11-02 08:25:00\n").unwrap();
    let o = cli(db, &["import", "punches", punches.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let leaves = dir.join("leaves.csv");
    std::fs::write(
        &leaves,
        "employee_id,start,end,kind,status,requested_at,document\n\
         E001,2026-11-03 08:30:00,2026-11-03 17:30:00,annual,approved,2026-11-02 08:31:00,\n\
         E002,2026-11-02 00:00:00,2026-11-05 17:30:00,sick,approved,2026-10-30 09:00:00,certificate\n\
         E003,2026-11-04 08:30:00,2026-11-04 17:30:00,sick,approved,,\n",
    )
    .unwrap();
    let o = cli(db, &["import", "leaves", leaves.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let stored = db
        .store
        .leaves(at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
        .await
        .unwrap();
    let e002 = stored.iter().find(|l| l.employee_id == "E002").unwrap();
    assert_eq!(e002.requested_at, Some(at("2026-10-30T09:00:00+08:00")));
    assert_eq!(e002.document.as_deref(), Some("certificate"));
    let e003 = stored.iter().find(|l| l.employee_id == "E003").unwrap();
    assert_eq!(
        (e003.requested_at, e003.document.as_deref()),
        (None, Some(""))
    );

    let o = Command::new(BIN)
        .args(["evaluate", "--policy", POLICY])
        .args(["--employees", &format!("{EXAMPLES}/employees.csv")])
        .args(["--punches", punches.to_str().unwrap()])
        .args(["--leaves", leaves.to_str().unwrap()])
        .args(["--from", "2026-11-02", "--to", "2026-11-05", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut expected: Vec<String> = text(&o.stdout).lines().map(String::from).collect();
    let store_days = || {
        let mut got: Vec<String> = Vec::new();
        for day in ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"] {
            let o = cli(db, &["day", day, "--json"]);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
            got.extend(text(&o.stdout).lines().map(String::from));
        }
        got.sort();
        got
    };
    let got = store_days();
    expected.sort();
    assert_eq!(got.len(), 20);
    assert_eq!(got, expected);
    let flags = |got: &[String], emp: &str, day: &str| -> serde_json::Value {
        got.iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["employee_id"] == emp && v["date"] == day)
            .unwrap()["flags"]
            .clone()
    };
    assert_eq!(
        flags(&got, "E001", "2026-11-03"),
        serde_json::json!(["leave_short_notice"])
    );
    for day in ["2026-11-02", "2026-11-05"] {
        assert_eq!(
            flags(&got, "E002", day),
            serde_json::json!(["sick_leave_needs_hospital_record"]),
            "{day}"
        );
    }
    assert_eq!(
        flags(&got, "E003", "2026-11-04"),
        serde_json::json!(["sick_leave_no_certificate"])
    );

    // A status-only file (no requested_at, no document column) keeps them.
    std::fs::write(
        &leaves,
        "employee_id,start,end,kind,status\n\
         E001,2026-11-03 08:30:00,2026-11-03 17:30:00,annual,approved\n\
         E003,2026-11-04 08:30:00,2026-11-04 17:30:00,sick,approved\n",
    )
    .unwrap();
    let o = cli(db, &["import", "leaves", leaves.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(store_days(), got);
    // A document handed in later clears the flag.
    std::fs::write(
        &leaves,
        "employee_id,start,end,kind,status,document\n\
         E003,2026-11-04 08:30:00,2026-11-04 17:30:00,sick,approved,Certificate\n",
    )
    .unwrap();
    let o = cli(db, &["import", "leaves", leaves.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(
        flags(&store_days(), "E003", "2026-11-04"),
        serde_json::json!([])
    );
}
store_test!(leave_rule_columns_are_stored_and_flag_as_evaluate_does);

/// 坐席员考核细则 二(二)3 with `[leaving_post] trust_direction = true`: the
/// ZKTeco status column of an ATTLOG import (2 break-out, 3 break-in) is
/// stored with each punch and decides the time away. A double tap of
/// break-out (09:00, 09:05) is one leave returning at 09:40: 40 minutes,
/// half a day; pairing in order would have made it 5 minutes and an
/// unpaired punch.
async fn direction_codes_are_stored_and_decide_time_away(db: &TestDb) {
    let dir = db.dir.path();
    let policy = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/policies/city-management-24h.toml"
    ))
    .unwrap();
    assert!(policy.contains("trust_direction = false"));
    let policy_file = dir.join("city.toml");
    std::fs::write(
        &policy_file,
        policy.replace("trust_direction = false", "trust_direction = true"),
    )
    .unwrap();
    let config = dir.join("city-attendd.toml");
    std::fs::write(
        &config,
        format!(
            "[policy]\nfile = {:?}\n\n[store]\nurl = {:?}\n",
            policy_file.display().to_string(),
            db.url
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let o = Command::new(BIN)
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("ATTENDD_STORE_URL")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    };
    run(&["import", "employees", &format!("{EXAMPLES}/employees.csv")]);
    let roster = dir.join("roster.csv");
    std::fs::write(&roster, "employee_id,date,shift\nE001,2026-11-02,morning\n").unwrap();
    run(&["import", "roster", roster.to_str().unwrap()]);
    // attlog.dat lines: PIN, time, status, verify, workcode (ZKTeco
    // "Attendance Log" USB export, as in the reimport test above).
    let att = dir.join("attlog.dat");
    std::fs::write(
        &att,
        "   E001\t2026-11-02 07:58:00\t0\t1\t0\n\
         \x20  E001\t2026-11-02 09:00:00\t2\t1\t0\n\
         \x20  E001\t2026-11-02 09:05:00\t2\t1\t0\n\
         \x20  E001\t2026-11-02 09:40:00\t3\t1\t0\n\
         \x20  E001\t2026-11-02 12:01:00\t1\t1\t0\n",
    )
    .unwrap();
    let out = run(&[
        "import",
        "punches",
        att.to_str().unwrap(),
        "--format",
        "zk-attlog",
        "--device",
        "zk-1",
    ]);
    assert!(out.contains("5 new"), "{out}");
    let day = run(&["day", "2026-11-02", "--json"]);
    let v: serde_json::Value = day
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["employee_id"] == "E001")
        .unwrap_or_else(|| panic!("{day}"));
    assert_eq!(v["explanation"]["away"]["minutes"], 40, "{v}");
    assert_eq!(
        v["deductions"],
        serde_json::json!([{"rule": "leaving_post_half_day", "category": "discipline", "points": 5}]),
        "{v}"
    );
    assert_eq!(v["flags"], serde_json::json!([]), "{v}");
}
store_test!(direction_codes_are_stored_and_decide_time_away);

store_test!(unchanged_employees_are_left_alone_and_every_change_is_seen);
/// A month recompute leaves alone the employees whose inputs are those of
/// the last recompute of the month, and sees each kind of change: a late
/// punch, a roster row, a leave, a holiday. What it writes is what a store
/// that never skipped holds.
async fn unchanged_employees_are_left_alone_and_every_change_is_seen(db: &TestDb) {
    use attendd::store::{HolidayRecord, LeaveRecord, RosterRecord};
    for e in ["E1", "E2", "E3"] {
        one_employee(db, e).await;
    }
    let mut ps = Vec::new();
    for day in 19..=23 {
        for e in ["E1", "E2", "E3"] {
            ps.push(punch(e, &format!("2026-10-{day:02}T00:25:00Z")));
            ps.push(punch(e, &format!("2026-10-{day:02}T09:35:00Z")));
        }
    }
    db.store.insert_punches(&ps, later()).await.unwrap();
    let (from, to) = (d("2026-10-01"), d("2026-10-31"));
    let run = |cause: &'static str| {
        db.store
            .recompute(&db.policy, None, from, to, cause, "tester", later())
    };
    let first = run("first").await.unwrap();
    assert_eq!((first.created, first.unchanged), (93, 0), "{first:?}");
    let again = run("again").await.unwrap();
    assert_eq!((again.unchanged, again.evaluated), (3, 93), "{again:?}");
    assert_eq!(
        again.created + again.changed + again.touched,
        0,
        "{again:?}"
    );

    // E1 punches on the 26th after all: that day is no longer absent.
    db.store
        .insert_punches(
            &[
                punch("E1", "2026-10-26T00:20:00Z"),
                punch("E1", "2026-10-26T09:40:00Z"),
            ],
            later(),
        )
        .await
        .unwrap();
    let r = run("late punch").await.unwrap();
    assert_eq!((r.unchanged, r.changed), (2, 1), "{r:?}");
    // E2 rests on the 19th; E3 has approved leave on the 20th.
    db.store
        .upsert_roster(
            &[RosterRecord {
                employee_id: "E2".into(),
                date: d("2026-10-19"),
                shift: "rest".into(),
            }],
            later(),
        )
        .await
        .unwrap();
    db.store
        .upsert_leaves(
            &[LeaveRecord {
                employee_id: "E3".into(),
                start: at("2026-10-20T00:30:00Z"),
                end: at("2026-10-20T09:30:00Z"),
                kind: "annual".into(),
                status: "approved".into(),
                requested_at: None,
                document: None,
            }],
            later(),
        )
        .await
        .unwrap();
    let r = run("roster and leave").await.unwrap();
    assert_eq!((r.unchanged, r.changed), (1, 2), "{r:?}");
    // The 27th becomes a holiday: everyone's day changes.
    db.store
        .upsert_holidays(
            &[HolidayRecord {
                date: d("2026-10-27"),
                kind: "holiday".into(),
            }],
            later(),
        )
        .await
        .unwrap();
    let r = run("holiday").await.unwrap();
    assert_eq!((r.unchanged, r.changed), (0, 3), "{r:?}");
    let r = run("settled").await.unwrap();
    assert_eq!(r.unchanged, 3, "{r:?}");

    // The same inputs in a store that classifies them once give the same
    // verdicts.
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = Store::open(&format!(
        "sqlite://{}",
        fresh_dir.path().join("f.db").display()
    ))
    .await
    .unwrap();
    fresh
        .upsert_employees(&db.store.employees().await.unwrap(), later())
        .await
        .unwrap();
    let all = db
        .store
        .punches(at("2026-09-01T00:00:00Z"), at("2026-12-01T00:00:00Z"), None)
        .await
        .unwrap();
    let again: Vec<NewPunch> = all
        .iter()
        .map(|p| punch(&p.employee_id, &p.time.to_rfc3339()))
        .collect();
    fresh.insert_punches(&again, later()).await.unwrap();
    fresh
        .upsert_roster(&db.store.roster(from, to).await.unwrap(), later())
        .await
        .unwrap();
    fresh
        .upsert_leaves(
            &db.store
                .leaves(at("2026-09-01T00:00:00Z"), at("2026-12-01T00:00:00Z"))
                .await
                .unwrap(),
            later(),
        )
        .await
        .unwrap();
    fresh
        .upsert_holidays(&db.store.holidays().await.unwrap(), later())
        .await
        .unwrap();
    fresh
        .recompute(&db.policy, None, from, to, "once", "tester", later())
        .await
        .unwrap();
    let texts = |v: Vec<attendd::store::StoredVerdict>| -> Vec<(String, NaiveDate, String)> {
        v.into_iter()
            .map(|v| (v.employee_id, v.date, v.verdict))
            .collect()
    };
    assert_eq!(
        texts(db.store.verdicts(from, to, None).await.unwrap()),
        texts(fresh.verdicts(from, to, None).await.unwrap())
    );
    fresh.close().await;

    // A superseded punch and a correction are seen too (the stored
    // punches enter the fingerprint by their counts and highest ids).
    let late = db
        .store
        .supersede_punches(
            "gate-1",
            at("2026-10-26T00:00:00Z"),
            at("2026-10-26T00:30:00Z"),
            "clock was wrong",
            "tester",
            later(),
        )
        .await
        .unwrap();
    assert_eq!(late.superseded.len(), 1, "{late:?}");
    let r = run("supersede").await.unwrap();
    assert_eq!((r.unchanged, r.changed), (2, 1), "{r:?}");
    db.store
        .add_correction(
            &attendd::store::hr::NewCorrection {
                employee_id: "E1".into(),
                time: at("2026-10-26T00:20:00Z"),
                reason: "terminal missed it".into(),
                confirmed_by: "supervisor".into(),
            },
            "correction",
            later(),
        )
        .await
        .unwrap();
    let r = run("correction").await.unwrap();
    assert_eq!((r.unchanged, r.changed), (2, 1), "{r:?}");
    let r = run("settled again").await.unwrap();
    assert_eq!(r.unchanged, 3, "{r:?}");
}

store_test!(day_revisions_rise_with_each_change_a_page_shows);
/// The counters a kept page of the daily table is checked against: the
/// date's rise when its verdicts change (and not for other dates), the
/// employees' when an employee is written; a recompute that changes
/// nothing leaves them.
async fn day_revisions_rise_with_each_change_a_page_shows(db: &TestDb) {
    one_employee(db, "E1").await;
    one_employee(db, "E2").await;
    let (day, other) = (d("2026-10-20"), d("2026-10-21"));
    let at_start = db.store.day_revision(day).await.unwrap();
    db.store
        .insert_punches(
            &[
                punch("E1", "2026-10-20T00:25:00Z"),
                punch("E1", "2026-10-20T09:35:00Z"),
            ],
            later(),
        )
        .await
        .unwrap();
    let recompute = |cause: &'static str| {
        db.store
            .recompute(&db.policy, None, day, other, cause, "tester", later())
    };
    recompute("first").await.unwrap();
    let first = db.store.day_revision(day).await.unwrap();
    assert!(first.0 > at_start.0, "{at_start:?} → {first:?}");
    let other_first = db.store.day_revision(other).await.unwrap();
    let r = recompute("again").await.unwrap();
    assert_eq!(r.created + r.changed + r.touched, 0, "{r:?}");
    assert_eq!(db.store.day_revision(day).await.unwrap(), first);

    // E2 punches on the 20th after all: that date's counter rises, the
    // 21st's does not.
    db.store
        .insert_punches(
            &[
                punch("E2", "2026-10-20T00:20:00Z"),
                punch("E2", "2026-10-20T09:40:00Z"),
            ],
            later(),
        )
        .await
        .unwrap();
    recompute("late punch").await.unwrap();
    let second = db.store.day_revision(day).await.unwrap();
    assert!(second.0 > first.0, "{first:?} → {second:?}");
    assert_eq!(second.1, first.1);
    assert_eq!(db.store.day_revision(other).await.unwrap(), other_first);

    // A renamed employee changes every page.
    db.store
        .upsert_employees(
            &[attendd::store::EmployeeRecord {
                employee_id: "E1".into(),
                name: "Li Na (hotline lead)".into(),
                team: "hotline".into(),
                supervisor: "S01".into(),
                shift: None,
                aliases: vec![],
                start_date: None,
                end_date: None,
            }],
            later(),
        )
        .await
        .unwrap();
    let third = db.store.day_revision(day).await.unwrap();
    assert_eq!(third.0, second.0);
    assert!(third.1 > second.1, "{second:?} → {third:?}");
    assert!(db.store.day_revision(other).await.unwrap().1 > second.1);
}
