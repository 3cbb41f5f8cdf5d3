//! Group robots: bodies in the robots' documented formats, one message per
//! supervisor for the alerts due together, @-mentions from
//! `supervisor_contact`, keywords, and at most 20 messages a minute per
//! robot against a local receiver that enforces that limit on a simulated
//! clock (so the test takes no minutes).
//!
//! The formats and limits, from the robots' documentation:
//! - DingTalk custom robot (open.dingtalk.com/document/group/custom-robot-access,
//!   as quoted at http://zhuoqun.info/article/182 and
//!   https://blog.csdn.net/qq_23564667/article/details/119456301):
//!   `{"msgtype":"markdown","markdown":{"title":…,"text":…},"at":{"atMobiles":[…],
//!   "atUserIds":[…],"isAtAll":false}}`; to @ someone in markdown the text
//!   must contain `@mobile` / `@userId`; "每个机器人每分钟最多发送20条。如果超过
//!   20条，会限流10分钟" (over the limit the robot answers errcode 130101,
//!   "send too fast").
//! - WeCom group robot (developer.work.weixin.qq.com/document/path/91770,
//!   as quoted in wangtengda0310/my-alert src/my_alert/wxEnterpriseRobot.clj
//!   and https://037163.com/service/2020-06-18/1078.html):
//!   `{"msgtype":"text","text":{"content":…,"mentioned_list":[…],
//!   "mentioned_mobile_list":[…]}}` with content at most 2048 bytes;
//!   `{"msgtype":"markdown","markdown":{"content":…}}` at most 4096 bytes;
//!   "机器人的text/markdown类型消息支持在content中使用<@userid>扩展语法来@群成员";
//!   "每个机器人发送的消息不能超过20条/分钟" (over it: errcode 45009).

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use attendd::config::RawSink;
use attendd::metrics::Metrics;
use attendd::sinks::{Contact, Pace, Sink};
use attendd::store::Store;
use attendd::store::outbox::NewMessage;
use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn raw_sink(toml_text: &str) -> RawSink {
    toml::from_str(toml_text).unwrap()
}

fn robot(kind: &str, url: &str, keyword: Option<&str>) -> Sink {
    let kw = keyword.map_or(String::new(), |k| format!("keyword = {k:?}\n"));
    Sink::from_config(
        &raw_sink(&format!("kind = {kind:?}\nurl = {url:?}\n{kw}")),
        None,
    )
    .unwrap()
}

/// An absence alert as the scheduler writes it.
fn absence(emp: &str, supervisor: &str, contact: Option<&str>) -> Value {
    json!({
        "schema": "attendd/absence/v1",
        "id": format!("absence/2026-03-02/{emp}"),
        "kind": "absence",
        "date": "2026-03-02",
        "employee_id": emp,
        "name": format!("Name {emp}"),
        "team": "A",
        "supervisor": supervisor,
        "supervisor_contact": contact,
        "shift": "day",
        "decided_at": "2026-03-02T09:00:00+08:00",
        "shift_start": "2026-03-02T08:30:00+08:00",
        "minutes_late": 30,
        "text": format!("{emp} Name {emp} has no punch 30 min after the shift start 08:30 — 未打卡"),
    })
}

/// The documented shape of a DingTalk markdown message; returns the text.
fn check_dingtalk(b: &Value) -> Result<String, String> {
    if b["msgtype"] != "markdown" {
        return Err(format!("msgtype {}", b["msgtype"]));
    }
    let title = b["markdown"]["title"].as_str().ok_or("markdown.title")?;
    let text = b["markdown"]["text"].as_str().ok_or("markdown.text")?;
    if title.is_empty() || text.is_empty() {
        return Err("empty title or text".into());
    }
    let at = &b["at"];
    for k in ["atMobiles", "atUserIds"] {
        if !at[k]
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
        {
            return Err(format!("at.{k} is not a list of strings"));
        }
    }
    if !at["isAtAll"].is_boolean() {
        return Err("at.isAtAll".into());
    }
    // A mention shows only when the text names the person.
    for who in at["atMobiles"]
        .as_array()
        .unwrap()
        .iter()
        .chain(at["atUserIds"].as_array().unwrap())
    {
        if !text.contains(&format!("@{}", who.as_str().unwrap())) {
            return Err(format!("text does not contain @{who}"));
        }
    }
    Ok(text.to_string())
}

/// The documented shape of a WeCom text or markdown message; returns the
/// content.
fn check_wecom(b: &Value) -> Result<String, String> {
    match b["msgtype"].as_str() {
        Some("markdown") => {
            let c = b["markdown"]["content"]
                .as_str()
                .ok_or("markdown.content")?;
            if c.len() > 4096 {
                return Err(format!("markdown content of {} bytes", c.len()));
            }
            // WeCom's markdown does not render `- ` lists.
            if c.lines().any(|l| l.trim_start().starts_with("- ")) {
                return Err("a `- ` list in WeCom markdown".into());
            }
            Ok(c.to_string())
        }
        Some("text") => {
            let c = b["text"]["content"].as_str().ok_or("text.content")?;
            if c.len() > 2048 {
                return Err(format!("text content of {} bytes", c.len()));
            }
            for k in ["mentioned_list", "mentioned_mobile_list"] {
                if !b["text"][k].is_null()
                    && !b["text"][k]
                        .as_array()
                        .is_some_and(|a| a.iter().all(Value::is_string))
                {
                    return Err(format!("text.{k} is not a list of strings"));
                }
            }
            Ok(c.to_string())
        }
        other => Err(format!("msgtype {other:?}")),
    }
}

#[test]
fn contacts_are_mobiles_or_user_ids() {
    assert_eq!(
        Contact::parse("13800001111"),
        Contact::Mobile("13800001111".into())
    );
    assert_eq!(
        Contact::parse("+86-13800001111"),
        Contact::Mobile("+86-13800001111".into())
    );
    assert_eq!(Contact::parse("lisi"), Contact::UserId("lisi".into()));
    assert_eq!(
        Contact::parse("manager4220"),
        Contact::UserId("manager4220".into())
    );
}

#[test]
fn dingtalk_bodies_aggregate_per_supervisor_and_at_mention() {
    let sink = robot(
        "dingtalk",
        "http://127.0.0.1:9/robot/send?access_token=t",
        None,
    );
    let a = absence("E1", "Li Si", Some("13800001111"));
    let b = absence("E2", "Li Si", Some("13800001111"));
    let c = absence("E3", "Wang Wu", Some("wangwu"));
    let mut d = absence("E4", "Li Si", Some("13800001111"));
    d["kind"] = json!("arrival");
    d["id"] = json!("arrival/2026-03-02/E4");
    let batch = [
        ("absence", &a),
        ("absence", &b),
        ("absence", &c),
        ("arrival", &d),
    ];
    let out = sink.robot_messages(&batch);
    assert_eq!(out.len(), 2, "one message per supervisor: {out:#?}");
    assert_eq!(out[0].members, [0, 1, 3]);
    assert_eq!(out[1].members, [2]);
    let text = check_dingtalk(&out[0].body).unwrap();
    assert_eq!(out[0].body["at"]["atMobiles"], json!(["13800001111"]));
    assert_eq!(out[0].body["at"]["atUserIds"], json!([]));
    assert!(text.contains("未打卡 absent (2)"), "{text}");
    assert!(text.contains("已到岗 arrived (1)"), "{text}");
    for id in [
        "absence/2026-03-02/E1",
        "absence/2026-03-02/E2",
        "arrival/2026-03-02/E4",
    ] {
        assert!(text.contains(id), "{text}");
    }
    check_dingtalk(&out[1].body).unwrap();
    assert_eq!(out[1].body["at"]["atUserIds"], json!(["wangwu"]));
    assert_eq!(out[1].body["at"]["atMobiles"], json!([]));
}

#[test]
fn wecom_mentions_user_ids_in_markdown_and_mobiles_in_text() {
    let sink = robot(
        "wecom",
        "http://127.0.0.1:9/cgi-bin/webhook/send?key=k",
        Some("考勤"),
    );
    let a = absence("E1", "Li Si", Some("13800001111"));
    let c = absence("E3", "Wang Wu", Some("wangwu"));
    let n = absence("E5", "Zhao Liu", None);
    let out = sink.robot_messages(&[("absence", &a), ("absence", &c), ("absence", &n)]);
    assert_eq!(out.len(), 3);
    // A mobile: a text message with mentioned_mobile_list.
    assert_eq!(out[0].body["msgtype"], "text");
    assert_eq!(
        out[0].body["text"]["mentioned_mobile_list"],
        json!(["13800001111"])
    );
    let t = check_wecom(&out[0].body).unwrap();
    assert!(t.starts_with("考勤 "), "keyword first: {t}");
    // A user id: markdown with <@userid>.
    assert_eq!(out[1].body["msgtype"], "markdown");
    let m = check_wecom(&out[1].body).unwrap();
    assert!(m.contains("<@wangwu>"), "{m}");
    assert!(m.contains("考勤"), "{m}");
    // No contact: markdown naming the supervisor, no mention.
    let m = check_wecom(&out[2].body).unwrap();
    assert!(m.contains("Zhao Liu") && !m.contains("<@"), "{m}");
}

#[test]
fn a_long_group_is_split_within_the_documented_sizes() {
    let sink = robot("wecom", "http://127.0.0.1:9/send?key=k", None);
    let alerts: Vec<Value> = (0..120)
        .map(|i| absence(&format!("E{i:04}"), "Li Si", Some("lisi")))
        .collect();
    let batch: Vec<(&str, &Value)> = alerts.iter().map(|a| ("absence", a)).collect();
    let out = sink.robot_messages(&batch);
    assert!(out.len() > 1, "120 alerts do not fit 4096 bytes");
    let mut members: Vec<usize> = out.iter().flat_map(|m| m.members.clone()).collect();
    members.sort();
    assert_eq!(members, (0..120).collect::<Vec<_>>(), "each alert once");
    for m in &out {
        let c = check_wecom(&m.body).unwrap();
        assert!(c.contains("<@lisi>"), "every part mentions: {c}");
    }
    // The same in text messages for a mobile (2048 bytes).
    let alerts: Vec<Value> = (0..120)
        .map(|i| absence(&format!("E{i:04}"), "Li Si", Some("13800001111")))
        .collect();
    let batch: Vec<(&str, &Value)> = alerts.iter().map(|a| ("absence", a)).collect();
    for m in sink.robot_messages(&batch) {
        check_wecom(&m.body).unwrap();
    }
}

#[test]
fn the_pace_allows_a_burst_of_20_and_never_21_in_a_minute() {
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
    let mut p = Pace::new(20, Duration::minutes(1));
    let mut sent = Vec::new();
    let mut t = t0;
    // 25 messages want to go every half second: far more than the rate.
    while t < t0 + Duration::minutes(5) {
        for _ in 0..25 {
            if p.next_free(t).is_none() {
                p.record(t);
                sent.push(t);
            }
        }
        t += Duration::milliseconds(500);
    }
    assert_eq!(&sent[..20], &[t0; 20][..], "a burst of 20 at once");
    for (i, s) in sent.iter().enumerate() {
        let in_window = sent[..=i]
            .iter()
            .filter(|x| **x > *s - Duration::minutes(1))
            .count();
        assert!(in_window <= 20, "{in_window} within the minute before {s}");
    }
    assert_eq!(sent.len(), 100, "20 a minute over 5 minutes");
    // Room comes when the oldest leaves the window.
    let mut p = Pace::seeded(20, Duration::minutes(1), &[t0; 20]);
    assert_eq!(p.next_free(t0), Some(t0 + Duration::minutes(1)));
    assert_eq!(p.next_free(t0 + Duration::minutes(1)), None);
}

/// Bodies a receiver accepted, with the simulated instant.
type Log = Arc<Mutex<Vec<(DateTime<Utc>, Value)>>>;

/// A robot on 127.0.0.1: answers like the real one, on a simulated clock.
struct Receiver {
    url: String,
    /// Accepted bodies with the simulated instant.
    accepted: Log,
    /// Refused: (why, body).
    refused: Arc<Mutex<Vec<(String, Value)>>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    DingTalk,
    WeCom,
}

async fn receiver(kind: Kind, clock: Arc<AtomicI64>, keyword: Option<&'static str>) -> Receiver {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let accepted: Log = Arc::default();
    let refused: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let (acc, refd) = (accepted.clone(), refused.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = l.accept().await else {
                return;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let body = loop {
                let n = tcp.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= i + 4 + len {
                        break Some(buf[i + 4..i + 4 + len].to_vec());
                    }
                }
            };
            let Some(body) = body else { continue };
            let v: Value = serde_json::from_slice(&body).unwrap_or_default();
            let now = Utc
                .timestamp_millis_opt(clock.load(Ordering::SeqCst))
                .unwrap();
            let checked = match kind {
                Kind::DingTalk => check_dingtalk(&v),
                Kind::WeCom => check_wecom(&v),
            };
            let (limited, bad, nokey) = match kind {
                Kind::DingTalk => (130101, 40035, 310000),
                Kind::WeCom => (45009, 40035, 93000),
            };
            let window = acc
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, _)| *t > now - Duration::minutes(1))
                .count();
            let answer = match checked {
                Err(e) => Err((bad, e)),
                Ok(_) if window >= 20 => Err((limited, "send too fast".to_string())),
                Ok(text) if keyword.is_some_and(|k| !text.contains(k)) => {
                    Err((nokey, "keywords not in content".to_string()))
                }
                Ok(_) => Ok(()),
            };
            let reply = match answer {
                Ok(()) => {
                    acc.lock().unwrap().push((now, v));
                    r#"{"errcode":0,"errmsg":"ok"}"#.to_string()
                }
                Err((code, why)) => {
                    refd.lock().unwrap().push((why.clone(), v));
                    json!({"errcode": code, "errmsg": why}).to_string()
                }
            };
            let _ = tcp
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                        reply.len()
                    )
                    .as_bytes(),
                )
                .await;
            let _ = tcp.shutdown().await;
        }
    });
    let url = match kind {
        Kind::DingTalk => format!("http://127.0.0.1:{port}/robot/send?access_token=t"),
        Kind::WeCom => format!("http://127.0.0.1:{port}/cgi-bin/webhook/send?key=k"),
    };
    Receiver {
        url,
        accepted,
        refused,
    }
}

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    (dir, Store::open(&url).await.unwrap())
}

/// PostgreSQL schemas a test made: (server URL, schema).
type Schemas = Vec<(String, String)>;

/// Drops the PostgreSQL schemas a test made.
async fn drop_schemas(list: Schemas) {
    use sqlx::Connection as _;
    for (base, schema) in list {
        if let Ok(mut c) = sqlx::PgConnection::connect(&base).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&mut c)
            .await;
            let _ = c.close().await;
        }
    }
}

/// A SQLite store, and a PostgreSQL one in a fresh schema when
/// `TEST_POSTGRES_URL` is set (said on stderr when not).
async fn stores(test: &str) -> (tempfile::TempDir, Vec<Store>, Schemas) {
    use sqlx::Connection as _;
    let (dir, sqlite) = store().await;
    let mut v = vec![sqlite];
    let mut made = Schemas::new();
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(base) if !base.is_empty() => {
            let schema = format!(
                "robots_{}_{}",
                std::process::id(),
                Utc::now().timestamp_nanos_opt().unwrap_or(0) % 1_000_000_000
            );
            let mut c = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut c)
                .await
                .unwrap();
            let _ = c.close().await;
            let sep = if base.contains('?') { '&' } else { '?' };
            let url = format!("{base}{sep}options[search_path]={schema}");
            v.push(Store::open(&url).await.unwrap());
            made.push((base, schema));
        }
        _ => eprintln!("skipping postgres: TEST_POSTGRES_URL not set ({test})"),
    }
    (dir, v, made)
}

/// Enqueues an absence alert for each (employee, supervisor, contact),
/// addressed to `sinks`.
async fn enqueue(
    store: &Store,
    alerts: &[(String, String, String)],
    sinks: &[&str],
    at: DateTime<Utc>,
) {
    for (emp, sup, contact) in alerts {
        let payload = absence(emp, sup, Some(contact));
        store
            .enqueue(
                &NewMessage {
                    key: payload["id"].as_str().unwrap().to_string(),
                    kind: "absence".into(),
                    payload,
                    sinks: sinks.iter().map(|s| s.to_string()).collect(),
                },
                at,
            )
            .await
            .unwrap();
    }
}

/// Runs the deliverer on the simulated clock, one round a second, until
/// every delivery is sent or `limit` has passed; returns the instant.
async fn deliver_until_sent(
    store: &Store,
    sinks: &attendd::sinks::SinkTable,
    clock: &AtomicI64,
    from: DateTime<Utc>,
    limit: Duration,
) -> DateTime<Utc> {
    let metrics = Arc::new(Metrics::default());
    let mut now = from;
    while now < from + limit {
        clock.store(now.timestamp_millis(), Ordering::SeqCst);
        attendd::sinks::deliver_due(store, sinks, &metrics, now)
            .await
            .unwrap();
        let rows = store.outbox(None, 10_000).await.unwrap();
        if rows.iter().all(|r| r.sent == r.sinks) {
            return now;
        }
        now += Duration::seconds(1);
    }
    now
}

/// 30 supervisors with two absent people each, through a DingTalk and a
/// WeCom robot: 30 messages each (not 60), at most 20 in any minute, none
/// refused, every alert sent. (Before, 60 alerts were 60 posts within a
/// fraction of a second: 40 refused by each robot.)
#[tokio::test]
async fn robots_get_one_message_per_supervisor_and_at_most_20_a_minute() {
    let (_dir, store) = store().await;
    let clock = Arc::new(AtomicI64::new(0));
    let ding = receiver(Kind::DingTalk, clock.clone(), None).await;
    let wecom = receiver(Kind::WeCom, clock.clone(), None).await;
    let table: HashMap<String, Sink> = [
        ("ding".to_string(), robot("dingtalk", &ding.url, None)),
        ("wecom".to_string(), robot("wecom", &wecom.url, None)),
    ]
    .into();
    let sinks = Arc::new(RwLock::new(table));
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
    let alerts: Vec<(String, String, String)> = (0..60)
        .map(|i| {
            let s = i / 2;
            // Even supervisors by mobile, odd ones by user id.
            let contact = if s % 2 == 0 {
                format!("138{s:08}")
            } else {
                format!("boss{s}")
            };
            (format!("E{i:03}"), format!("Sup {s}"), contact)
        })
        .collect();
    enqueue(&store, &alerts, &["ding", "wecom"], t0).await;

    let done = deliver_until_sent(&store, &sinks, &clock, t0, Duration::minutes(5)).await;
    for (name, r) in [("dingtalk", &ding), ("wecom", &wecom)] {
        let refused = r.refused.lock().unwrap().clone();
        assert!(refused.is_empty(), "{name} refused {refused:#?}");
        let got = r.accepted.lock().unwrap().clone();
        assert_eq!(got.len(), 30, "{name}: one message per supervisor");
        for (i, (t, _)) in got.iter().enumerate() {
            let n = got[..=i]
                .iter()
                .filter(|(x, _)| *x > *t - Duration::minutes(1))
                .count();
            assert!(n <= 20, "{name}: {n} messages within the minute before {t}");
        }
        // 20 at once, the other 10 when the minute has passed.
        assert_eq!(got.iter().filter(|(t, _)| *t == t0).count(), 20, "{name}");
        assert!(got[20].0 >= t0 + Duration::minutes(1), "{name}");
    }
    assert!(done >= t0 + Duration::minutes(1) && done < t0 + Duration::minutes(2));

    // Each supervisor's message carries both of their people and mentions them.
    for (_, b) in ding.accepted.lock().unwrap().iter() {
        let text = check_dingtalk(b).unwrap();
        let mentioned: Vec<&Value> = b["at"]["atMobiles"]
            .as_array()
            .unwrap()
            .iter()
            .chain(b["at"]["atUserIds"].as_array().unwrap())
            .collect();
        assert_eq!(mentioned.len(), 1, "{b}");
        let contact = mentioned[0].as_str().unwrap();
        let mine: Vec<&String> = alerts
            .iter()
            .filter(|(_, _, c)| c == contact)
            .map(|(e, _, _)| e)
            .collect();
        assert_eq!(mine.len(), 2);
        for e in mine {
            assert!(text.contains(&format!("absence/2026-03-02/{e}")), "{text}");
        }
    }
    for (_, b) in wecom.accepted.lock().unwrap().iter() {
        match b["msgtype"].as_str().unwrap() {
            "text" => assert_eq!(
                b["text"]["mentioned_mobile_list"].as_array().unwrap().len(),
                1
            ),
            _ => assert!(
                b["markdown"]["content"]
                    .as_str()
                    .unwrap()
                    .contains("<@boss")
            ),
        }
    }
    // Deferring is not failing: no attempt was counted beyond the one that
    // went through.
    let rows = store.outbox(None, 1000).await.unwrap();
    assert!(rows.iter().all(|r| r.last_error.is_none()));
}

/// A restarted daemon does not grant the robot a fresh minute: the pace is
/// seeded from the deliveries the store recorded as sent in the last
/// minute. (Simulated by a robot URL new to the process under the same
/// sink name, which is what a restart looks like to the pace.)
#[tokio::test]
async fn after_a_restart_the_last_minutes_messages_still_count() {
    let (_dir, stores, made) = stores("after_a_restart").await;
    for store in stores {
        restart_case(store).await;
    }
    drop_schemas(made).await;
}

async fn restart_case(store: Store) {
    let clock = Arc::new(AtomicI64::new(0));
    let ding = receiver(Kind::DingTalk, clock.clone(), None).await;
    let sinks = Arc::new(RwLock::new(HashMap::from([(
        "ding".to_string(),
        robot("dingtalk", &ding.url, None),
    )])));
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
    let first: Vec<(String, String, String)> = (0..20)
        .map(|i| (format!("E{i:03}"), format!("Sup {i}"), format!("boss{i}")))
        .collect();
    enqueue(&store, &first, &["ding"], t0).await;
    deliver_until_sent(&store, &sinks, &clock, t0, Duration::seconds(5)).await;
    assert_eq!(ding.accepted.lock().unwrap().len(), 20);

    // "Restart" 10 s later; 5 more supervisors' alerts.
    let restarted = format!("{}&restart=1", ding.url);
    sinks
        .write()
        .unwrap()
        .insert("ding".into(), robot("dingtalk", &restarted, None));
    let t1 = t0 + Duration::seconds(10);
    let more: Vec<(String, String, String)> = (20..25)
        .map(|i| (format!("E{i:03}"), format!("Sup {i}"), format!("boss{i}")))
        .collect();
    enqueue(&store, &more, &["ding"], t1).await;
    let done = deliver_until_sent(&store, &sinks, &clock, t1, Duration::minutes(3)).await;
    assert!(ding.refused.lock().unwrap().is_empty());
    assert_eq!(ding.accepted.lock().unwrap().len(), 25);
    assert!(
        done >= t0 + Duration::minutes(1) && done <= t0 + Duration::seconds(62),
        "held until the minute passed: {done}"
    );
}

/// A robot with keyword security refuses messages without the keyword:
/// they are not marked sent, and go once the sink names the keyword.
#[tokio::test]
async fn a_refused_message_is_not_marked_sent_and_the_keyword_gets_it_through() {
    let (_dir, store) = store().await;
    let clock = Arc::new(AtomicI64::new(0));
    let wecom = receiver(Kind::WeCom, clock.clone(), Some("考勤")).await;
    let sinks = Arc::new(RwLock::new(HashMap::from([(
        "wecom".to_string(),
        robot("wecom", &wecom.url, None),
    )])));
    // The summary title already carries 考勤; an alert group's does too.
    // A terminal alert's does not.
    let t0 = Utc.with_ymd_and_hms(2026, 3, 2, 1, 0, 0).unwrap();
    let payload = json!({
        "schema": "attendd/terminal/v1",
        "id": "terminal/silent/2026-03-02/gate-1",
        "kind": "terminal", "to": "operations", "problem": "silent",
        "device_id": "gate-1", "decided_at": "2026-03-02T09:00:00+08:00",
        "text": "terminal gate-1 silent since 2026-03-02 07:00 (120 min) — 终端无数据",
    });
    store
        .enqueue(
            &NewMessage {
                key: "terminal/silent/2026-03-02/gate-1".into(),
                kind: "terminal".into(),
                payload,
                sinks: vec!["wecom".into()],
            },
            t0,
        )
        .await
        .unwrap();
    let metrics = Arc::new(Metrics::default());
    clock.store(t0.timestamp_millis(), Ordering::SeqCst);
    attendd::sinks::deliver_due(&store, &sinks, &metrics, t0)
        .await
        .unwrap();
    assert_eq!(wecom.refused.lock().unwrap().len(), 1);
    let rows = store.outbox(None, 10).await.unwrap();
    assert_eq!(rows[0].sent, 0, "refused is not sent");
    assert!(rows[0].last_error.as_deref().unwrap().contains("93000"));

    sinks
        .write()
        .unwrap()
        .insert("wecom".into(), robot("wecom", &wecom.url, Some("考勤")));
    let done = deliver_until_sent(
        &store,
        &sinks,
        &clock,
        t0 + Duration::seconds(1),
        Duration::minutes(1),
    )
    .await;
    assert!(done < t0 + Duration::minutes(1));
    assert_eq!(store.outbox(None, 10).await.unwrap()[0].sent, 1);
    let got = wecom.accepted.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(check_wecom(&got[0].1).unwrap().starts_with("### 考勤 "));
}

/// employees.csv's `supervisor_contact` is read, stored with the employee
/// by `attendd import employees`, replaced by the next import, and a cell
/// that is not one word is reported with its line.
#[tokio::test]
async fn import_stores_the_supervisor_contact() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("a.db").display());
    let policy = crate::common::root().join("config/policies/seed-default.toml");
    let config = dir.path().join("attendd.toml");
    std::fs::write(
        &config,
        format!("[policy]\nfile = {policy:?}\n[store]\nurl = {url:?}\n"),
    )
    .unwrap();
    let import = |csv: &str| {
        let f = dir.path().join("employees.csv");
        std::fs::write(&f, csv).unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_attendd"))
            .args(["import", "employees"])
            .arg(&f)
            .arg("--config")
            .arg(&config)
            .env_remove("ATTENDD_STORE_URL")
            .output()
            .unwrap()
    };
    let o = import(
        "employee_id,name,team,supervisor,supervisor_contact\n\
         E1,Li Na,A,Wang Wu,13800001111\nE2,Zhang Min,A,Wang Wu,wangwu\nE3,Liu Yang,B,Zhao Liu,\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let store = Store::open(&url).await.unwrap();
    let c = store.supervisor_contacts().await.unwrap();
    assert_eq!(c.get("E1").map(String::as_str), Some("13800001111"));
    assert_eq!(c.get("E2").map(String::as_str), Some("wangwu"));
    assert!(!c.contains_key("E3"));

    // A file without the column clears it; a bad cell names its line.
    let o = import("employee_id,name,team,supervisor\nE1,Li Na,A,Wang Wu\n");
    assert!(o.status.success());
    assert!(
        !store
            .supervisor_contacts()
            .await
            .unwrap()
            .contains_key("E1")
    );
    let o = import(
        "employee_id,name,team,supervisor,supervisor_contact\nE1,Li Na,A,Wang Wu,138 0000 1111\n",
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("employees.csv:2") && err.contains("supervisor_contact"),
        "{err}"
    );
}

/// From the scheduler to the robot: a tick that finds five people absent
/// under two supervisors gives the robot two messages, each @-mentioning
/// the contact imported with the employees.
#[tokio::test]
async fn a_ticks_absences_reach_the_robot_as_one_message_per_supervisor() {
    let (_dir, stores, made) = stores("a_ticks_absences").await;
    for store in stores {
        tick_to_robot_case(store).await;
    }
    drop_schemas(made).await;
}

async fn tick_to_robot_case(store: Store) {
    use attendd::config::RawSchedule;
    use attendd::scheduler::{DriftBoard, Plan, Route, Scheduler};
    use attendd::store::EmployeeRecord;
    let emps: Vec<EmployeeRecord> = (1..=5)
        .map(|i| EmployeeRecord {
            employee_id: format!("E{i}"),
            name: format!("Name {i}"),
            team: "A".into(),
            supervisor: if i <= 3 { "Wang Wu" } else { "Zhao Liu" }.into(),
            shift: None,
            aliases: vec![],
            start_date: None,
            end_date: None,
        })
        .collect();
    store
        .upsert_employees(&emps, chrono::Utc::now())
        .await
        .unwrap();
    let contacts: Vec<(String, Option<String>)> = (1..=5)
        .map(|i| {
            let c = if i <= 3 { "13800001111" } else { "zhaoliu" };
            (format!("E{i}"), Some(c.to_string()))
        })
        .collect();
    store.set_supervisor_contacts(&contacts).await.unwrap();
    let policy = attendd::policy_file::load(
        &crate::common::root().join("config/policies/seed-default.toml"),
    )
    .unwrap();
    let sched = Scheduler::new(
        store.clone(),
        Plan {
            policy: Arc::new(policy),
            policies: None,
            schedule: RawSchedule {
                terminal_silent_minutes: 0,
                quarantine_spike: 0,
                ..RawSchedule::default()
            },
            routes: vec![Route {
                name: "ding".into(),
                events: Some(vec!["absence".into(), "arrival".into()]),
                teams: None,
            }],
        },
        Arc::new(DriftBoard::default()),
    );
    // 2026-03-02 is a Monday; the day shift starts 08:30 Shanghai.
    let t = chrono_tz::Asia::Shanghai
        .with_ymd_and_hms(2026, 3, 2, 9, 5, 0)
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(sched.tick(t).await.unwrap().absences, 5);

    let clock = Arc::new(AtomicI64::new(0));
    let ding = receiver(Kind::DingTalk, clock.clone(), None).await;
    let sinks = Arc::new(RwLock::new(HashMap::from([(
        "ding".to_string(),
        robot("dingtalk", &ding.url, None),
    )])));
    deliver_until_sent(&store, &sinks, &clock, t, Duration::seconds(5)).await;
    let got = ding.accepted.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "{got:#?}");
    assert_eq!(got[0].1["at"]["atMobiles"], json!(["13800001111"]));
    let text = check_dingtalk(&got[0].1).unwrap();
    assert!(text.contains("未打卡 absent (3)"), "{text}");
    assert_eq!(got[1].1["at"]["atUserIds"], json!(["zhaoliu"]));
    assert!(check_dingtalk(&got[1].1).unwrap().contains("absent (2)"));
}
