//! Alert sinks and the deliverer that drains the store's outbox into them.
//!
//! - `mqtt`: absence alerts and follow-ups on `PREFIX/alerts/absence`,
//!   terminal alerts on `PREFIX/alerts/terminal`, daily summaries on
//!   `PREFIX/summary/daily/YYYY-MM-DD` (retained), all QoS 1; a message
//!   counts as delivered when the broker's PUBACK arrived. Without its
//!   own `broker`, when the first `[[source.mqtt]]` is the embedded
//!   broker, it publishes into that broker in-process (no network login)
//!   and counts as delivered once handed over.
//! - `webhook`: the message as JSON, `POST`ed; any 2xx is delivered.
//! - `dingtalk`: a DingTalk group robot's `markdown` message, the
//!   supervisor @-mentioned through `at.atMobiles` / `at.atUserIds`; with
//!   a secret, the URL is signed (`timestamp` + `sign` = Base64 of
//!   HMAC-SHA256 over `"{timestamp}\n{secret}"`, URL-encoded). The robot
//!   answers 200 with `errcode` 0 on success.
//! - `wecom`: a WeCom (企业微信) group robot's `markdown` message, the
//!   supervisor @-mentioned as `<@userid>`; for a mobile number a `text`
//!   message with `mentioned_mobile_list` (WeCom's markdown cannot mention
//!   by mobile). Success is `errcode` 0.
//!
//! Robots take at most 20 messages a minute each (DingTalk: 每个机器人每分钟
//! 最多发送20条, over it the robot is throttled for 10 minutes; WeCom: 每个
//! 机器人发送的消息不能超过20条/分钟). So a robot sink sends one message per
//! supervisor for the alerts due together (the absences and arrivals of a
//! scheduler tick), one per operations contact for terminal alerts, and
//! paces itself with [`Pace`]: what the rate does not allow now stays in the
//! outbox, due again when the robot has room, without counting as a failed
//! attempt. Each alert is marked sent only when the robot accepted the
//! message that carried it.
//!
//! Every message carries its outbox key as `id`, so a receiver can drop
//! the repeats that at-least-once delivery allows. Failures back off
//! exponentially per delivery (1 s doubling to 5 min).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::RawSink;
use crate::metrics::Metrics;
use crate::store::Store;

mod robot;

pub use robot::{Contact, Pace, ROBOT_PER_MINUTE, RobotMessage, dingtalk_signed_url};
use robot::{GroupKey, Style, render, robot_body, robot_ok, robot_pace, split_to_fit, truncate};

/// One configured sink.
#[derive(Clone, Debug, PartialEq)]
pub enum Sink {
    /// An MQTT broker.
    Mqtt {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Topic prefix, e.g. `attendance`.
        prefix: String,
        /// Optional user and password.
        credentials: Option<(String, String)>,
    },
    /// The embedded broker, in-process.
    Embedded {
        /// Topic prefix, e.g. `attendance`.
        prefix: String,
        /// The broker.
        broker: crate::broker::BrokerHandle,
    },
    /// A generic JSON webhook.
    Webhook {
        /// `http://…` or `https://…`.
        url: Http,
    },
    /// A DingTalk group robot.
    DingTalk {
        /// The robot URL with its access token.
        url: Http,
        /// The signing secret, when the robot has one.
        secret: Option<String>,
        /// The word keyword security requires in every message.
        keyword: Option<String>,
    },
    /// A WeCom group robot.
    WeCom {
        /// The robot URL with its key.
        url: Http,
        /// The word keyword security requires in every message.
        keyword: Option<String>,
    },
}

/// An HTTP(S) endpoint: the URL, for `https://` the TLS settings, and
/// its client (`reqwest`, connections kept and reused between deliveries).
#[derive(Clone, Debug)]
pub struct Http {
    /// The URL.
    pub url: String,
    /// TLS client settings, for `https://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    client: reqwest::Client,
}

impl PartialEq for Http {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url && self.tls.is_some() == other.tls.is_some()
    }
}

impl Http {
    /// An endpoint; `https://` trusts `ca_file` or the system's roots.
    pub fn new(url: String, ca_file: Option<&std::path::Path>) -> Result<Http, String> {
        let tls = if url.starts_with("https://") {
            Some(crate::tls::client_config(ca_file, None)?)
        } else {
            None
        };
        let client = http_client(tls.as_deref())?;
        Ok(Http { url, tls, client })
    }

    /// The same endpoint at another URL (a DingTalk URL with its signature).
    fn at(&self, url: String) -> Http {
        Http {
            url,
            ..self.clone()
        }
    }
}

/// Longest a delivery may take, connection included.
const HTTP_TIMEOUT: StdDuration = StdDuration::from_secs(15);
/// Most bytes of an answer read (robots answer a few dozen).
const MAX_ANSWER: usize = 64 * 1024;

/// A client with attendd's TLS settings, no redirects and the delivery
/// time limit.
fn http_client(tls: Option<&rustls::ClientConfig>) -> Result<reqwest::Client, String> {
    crate::tls::install_provider();
    let mut b = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .connect_timeout(StdDuration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("attendd/", env!("CARGO_PKG_VERSION")));
    if let Some(cfg) = tls {
        b = b.use_preconfigured_tls(cfg.clone());
    }
    b.build().map_err(|e| format!("HTTP client: {e}"))
}

impl Sink {
    /// Builds a sink from config; `default_broker` is the first MQTT
    /// source's broker URL and credentials, used by an `mqtt` sink that
    /// names no broker.
    pub fn from_config(
        s: &RawSink,
        default_broker: Option<&DefaultBroker>,
    ) -> Result<Sink, String> {
        let url = || {
            let u = s.url().ok_or_else(|| "url is required".to_string())?;
            Http::new(u, s.ca_file.as_deref())
        };
        Ok(match s.kind.as_str() {
            "mqtt"
                if s.broker.is_none() && default_broker.is_some_and(|d| d.embedded.is_some()) =>
            {
                Sink::Embedded {
                    prefix: s.topic_prefix.trim_end_matches('/').to_string(),
                    broker: default_broker
                        .and_then(|d| d.embedded.clone())
                        .ok_or("no embedded broker")?,
                }
            }
            "mqtt" => {
                let (url, default_credentials) = match (&s.broker, default_broker) {
                    (Some(b), _) => (b.as_str(), None),
                    (None, Some(d)) => (d.url.as_str(), d.credentials.clone()),
                    (None, None) => return Err("broker is required".into()),
                };
                if !url.starts_with("mqtt://") {
                    return Err(format!(
                        "{}: an mqtt sink publishes over mqtt:// only; name a plain listener in broker",
                        url.split('@').next_back().unwrap_or(url)
                    ));
                }
                let m = crate::source::mqtt::MqttSettings::from_url("sink", url, Vec::new(), "x")?;
                Sink::Mqtt {
                    host: m.host,
                    port: m.port,
                    prefix: s.topic_prefix.trim_end_matches('/').to_string(),
                    credentials: m.credentials.or(default_credentials),
                }
            }
            "webhook" => Sink::Webhook { url: url()? },
            "dingtalk" => Sink::DingTalk {
                url: url()?,
                secret: s.secret(),
                keyword: s.keyword.clone(),
            },
            "wecom" => Sink::WeCom {
                url: url()?,
                keyword: s.keyword.clone(),
            },
            k => return Err(format!("unknown sink kind {k:?}")),
        })
    }

    /// Delivers a batch of messages of one sink, in order. Returns, for
    /// each, whether it was accepted. Robots aggregate the batch (see the
    /// module doc) but are not paced here; the deliverer paces them.
    pub async fn deliver(
        &self,
        name: &str,
        msgs: &[(&str, &serde_json::Value)],
        now: DateTime<Utc>,
    ) -> Vec<Result<(), String>> {
        match self {
            Sink::Mqtt {
                host,
                port,
                prefix,
                credentials,
            } => {
                let r = mqtt_publish(name, host, *port, credentials.as_ref(), prefix, msgs).await;
                msgs.iter().map(|_| r.clone()).collect()
            }
            Sink::Embedded { prefix, broker } => msgs
                .iter()
                .map(|(kind, m)| {
                    let (topic, retain) = mqtt_topic(prefix, kind, m);
                    broker.publish(&topic, m.to_string().into_bytes(), retain);
                    Ok(())
                })
                .collect(),
            Sink::Webhook { url } => {
                let mut out = Vec::with_capacity(msgs.len());
                // After a transport failure (refused, timed out, TLS) the rest
                // of the batch is not tried: one dead endpoint must not hold
                // the deliverer for a timeout per message.
                let mut down: Option<String> = None;
                for (_, m) in msgs {
                    if let Some(e) = &down {
                        out.push(Err(format!("not tried: {e}")));
                        continue;
                    }
                    let r = post_json(url, m).await;
                    if let Err(e) = &r {
                        down = Some(e.clone());
                    }
                    out.push(r.and_then(|(code, body)| {
                        if (200..300).contains(&code) {
                            Ok(())
                        } else {
                            Err(format!("HTTP {code}: {}", truncate(&body)))
                        }
                    }));
                }
                out
            }
            Sink::DingTalk { .. } | Sink::WeCom { .. } => {
                let mut unpaced = Pace::new(usize::MAX, Duration::minutes(1));
                self.deliver_robot(msgs, now, &mut unpaced)
                    .await
                    .into_iter()
                    .map(|o| match o {
                        Outcome::Sent(_) => Ok(()),
                        Outcome::Failed(e) => Err(e),
                        Outcome::Deferred(t) => Err(format!("deferred to {t}")),
                    })
                    .collect()
            }
        }
    }

    /// True for the group robots, which aggregate and pace.
    pub fn is_robot(&self) -> bool {
        matches!(self, Sink::DingTalk { .. } | Sink::WeCom { .. })
    }

    /// A robot's identity for its rate: the URL without signature.
    fn robot_url(&self) -> Option<&str> {
        match self {
            Sink::DingTalk { url, .. } | Sink::WeCom { url, .. } => Some(&url.url),
            _ => None,
        }
    }

    /// Sends a batch to a robot as aggregated messages within `pace`; one
    /// outcome per message of the batch.
    pub async fn deliver_robot(
        &self,
        msgs: &[(&str, &serde_json::Value)],
        now: DateTime<Utc>,
        pace: &mut Pace,
    ) -> Vec<Outcome> {
        let mut out: Vec<Outcome> = msgs
            .iter()
            .map(|_| Outcome::Failed("not aggregated".into()))
            .collect();
        let mut down: Option<String> = None;
        // Each message gets its own instant (a millisecond apart within a
        // round): the store's distinct sent times then count the robot
        // messages, which is how a restart seeds the pace.
        let mut stamp = now;
        for rm in self.robot_messages(msgs) {
            let outcome = if let Some(e) = &down {
                Outcome::Failed(format!("not tried: {e}"))
            } else if let Some(at) = pace.next_free(now) {
                Outcome::Deferred(at)
            } else {
                let target = match self {
                    Sink::DingTalk {
                        url,
                        secret: Some(s),
                        ..
                    } => url.at(dingtalk_signed_url(&url.url, s, now.timestamp_millis())),
                    Sink::DingTalk { url, .. } | Sink::WeCom { url, .. } => url.clone(),
                    _ => return out,
                };
                let r = post_json(&target, &rm.body).await;
                match &r {
                    // The robot counts what reached it, accepted or not.
                    Ok(_) => {
                        pace.record(stamp);
                        stamp += Duration::milliseconds(1);
                    }
                    Err(e) => down = Some(e.clone()),
                }
                match robot_ok(r) {
                    Ok(()) => Outcome::Sent(stamp - Duration::milliseconds(1)),
                    Err(e) => Outcome::Failed(e),
                }
            };
            for i in rm.members {
                out[i] = outcome.clone();
            }
        }
        out
    }

    /// The robot messages for a batch: alerts grouped per supervisor (and
    /// contact), terminal alerts per operations contact, the rest one by
    /// one; a group too long for one message is split.
    pub fn robot_messages(&self, msgs: &[(&str, &serde_json::Value)]) -> Vec<RobotMessage> {
        let mut groups: Vec<(GroupKey, Vec<usize>)> = Vec::new();
        for (i, (kind, m)) in msgs.iter().enumerate() {
            let key = match *kind {
                "absence" | "arrival" => GroupKey::Supervisor(
                    m["supervisor"].as_str().unwrap_or("").to_string(),
                    m["supervisor_contact"].as_str().map(String::from),
                ),
                "terminal" => GroupKey::Operations(m["to"].as_str().unwrap_or("").to_string()),
                _ => GroupKey::Alone(i),
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let (keyword, dingtalk) = match self {
            Sink::DingTalk { keyword, .. } => (keyword.as_deref(), true),
            Sink::WeCom { keyword, .. } => (keyword.as_deref(), false),
            _ => return Vec::new(),
        };
        let mut out = Vec::new();
        for (key, members) in groups {
            let contact = match &key {
                GroupKey::Supervisor(_, c) => c.as_deref().map(Contact::parse),
                _ => None,
            };
            let style = match (dingtalk, &contact) {
                (true, _) => Style::DingTalk,
                (false, Some(Contact::Mobile(_))) => Style::WeComText,
                (false, _) => Style::WeComMarkdown,
            };
            for chunk in split_to_fit(&key, &members, msgs, style, keyword, contact.as_ref()) {
                let (title, text) = render(&key, &chunk, msgs, style, keyword, contact.as_ref());
                out.push(RobotMessage {
                    body: robot_body(style, &title, &text, contact.as_ref()),
                    members: chunk,
                });
            }
        }
        out
    }
}

/// What became of one message handed to a paced sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The sink accepted it at this instant.
    Sent(DateTime<Utc>),
    /// The attempt failed; retried with backoff.
    Failed(String),
    /// Not tried: the robot's rate allows the next message at this
    /// instant. Not a failure.
    Deferred(DateTime<Utc>),
}

/// Splits `http[s]://host[:port]/path?query`; true for https.
fn split_url(url: &str) -> Result<(String, u16, String, bool), String> {
    let (rest, tls) = match url.strip_prefix("https://") {
        Some(r) => (r, true),
        None => (
            url.strip_prefix("http://")
                .ok_or_else(|| "not an http:// or https:// URL".to_string())?,
            false,
        ),
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("bad port in the URL of {h}"))?,
        ),
        None => (hostport, if tls { 443 } else { 80 }),
    };
    Ok((host.to_string(), port, path.to_string(), tls))
}

/// POSTs JSON (over TLS for https); returns the status and the first
/// 64 KiB of the answer.
pub async fn post_json(to: &Http, body: &serde_json::Value) -> Result<(u16, String), String> {
    let (host, port, _, _) = split_url(&to.url)?;
    let shown = format!("{host}:{port}");
    let mut resp = to
        .client
        .post(&to.url)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| describe(&shown, &e))?;
    let code = resp.status().as_u16();
    let mut got = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&shown, &e))? {
        let room = MAX_ANSWER.saturating_sub(got.len());
        got.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if got.len() >= MAX_ANSWER {
            break;
        }
    }
    Ok((code, String::from_utf8_lossy(&got).into_owned()))
}

/// A delivery error with where it went and why, without the URL's query
/// (robot tokens live there).
fn describe(shown: &str, e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        format!("no answer within {} s", HTTP_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "connect failed".to_string()
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed".to_string()
    } else {
        "request failed".to_string()
    };
    let mut cause = std::error::Error::source(e);
    let mut detail = String::new();
    let mut tls = false;
    while let Some(c) = cause {
        detail = c.to_string();
        // hyper-rustls hands rustls' verdicts on as I/O errors' text.
        tls |= c.is::<rustls::Error>()
            || c.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<rustls::Error>())
            || detail.contains("certificate")
            || detail.contains("handshake");
        cause = c.source();
    }
    if tls {
        format!("TLS with {shown}: {detail}")
    } else if detail.is_empty() {
        format!("{shown}: {what}")
    } else {
        format!("{shown}: {what}: {detail}")
    }
}

/// Publishes a batch at QoS 1 on one short-lived connection and waits for
/// every PUBACK.
async fn mqtt_publish(
    name: &str,
    host: &str,
    port: u16,
    credentials: Option<&(String, String)>,
    prefix: &str,
    msgs: &[(&str, &serde_json::Value)],
) -> Result<(), String> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
    let id = format!(
        "attendd-sink-{}-{}",
        std::process::id(),
        name.replace(['[', ']'], "-")
    );
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_clean_session(true)
        .set_keep_alive(StdDuration::from_secs(15))
        .set_max_packet_size(
            crate::source::mqtt::MAX_PACKET_BYTES,
            crate::source::mqtt::MAX_PACKET_BYTES,
        );
    if let Some((u, p)) = credentials {
        opts.set_credentials(u.clone(), p.clone());
    }
    let (client, mut ev) = AsyncClient::new(opts, msgs.len() + 8);
    for (kind, m) in msgs {
        let (topic, retain) = mqtt_topic(prefix, kind, m);
        client
            .publish(topic, QoS::AtLeastOnce, retain, m.to_string().into_bytes())
            .await
            .map_err(|e| e.to_string())?;
    }
    let want = msgs.len();
    let fut = async {
        let mut acked = 0;
        while acked < want {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => return Err(format!("mqtt {host}:{port}: {e}")),
            }
        }
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(StdDuration::from_secs(1), async {
            while ev.poll().await.is_ok() {}
        })
        .await;
        Ok(())
    };
    tokio::time::timeout(StdDuration::from_secs(15), fut)
        .await
        .map_err(|_| format!("mqtt {host}:{port}: no PUBACK within 15 s"))?
}

/// The topic of a message of `kind` and whether it is retained.
fn mqtt_topic(prefix: &str, kind: &str, m: &serde_json::Value) -> (String, bool) {
    match kind {
        "summary" => (
            format!(
                "{prefix}/summary/daily/{}",
                m["date"].as_str().unwrap_or("unknown")
            ),
            true,
        ),
        "terminal" => (format!("{prefix}/alerts/terminal"), false),
        "appeal" => (format!("{prefix}/alerts/appeal"), false),
        "publication" => (
            format!(
                "{prefix}/published/{}",
                m["month"].as_str().unwrap_or("unknown")
            ),
            true,
        ),
        _ => (format!("{prefix}/alerts/absence"), false),
    }
}

/// The broker an `mqtt` sink without `broker` uses: the first MQTT
/// source's, with its credentials, or the embedded broker in-process.
#[derive(Clone, Debug, Default)]
pub struct DefaultBroker {
    /// `mqtt://HOST:PORT`.
    pub url: String,
    /// The source's user name and password.
    pub credentials: Option<(String, String)>,
    /// The embedded broker, when the first source is one.
    pub embedded: Option<crate::broker::BrokerHandle>,
}

/// The configured sinks by name; swapped as a whole on reload.
pub type SinkTable = Arc<RwLock<HashMap<String, Sink>>>;

/// Builds the sink table from config.
pub fn table(
    sinks: &[RawSink],
    default_broker: Option<&DefaultBroker>,
) -> Result<HashMap<String, Sink>, String> {
    sinks
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Sink::from_config(s, default_broker)
                .map(|k| (s.name(i), k))
                .map_err(|e| format!("sink[{i}]: {e}"))
        })
        .collect()
}

/// The delay before attempt `attempts + 1`: 1 s doubling, at most 5 min.
pub fn retry_delay(attempts: u32) -> Duration {
    Duration::seconds(1i64 << attempts.min(9)).min(Duration::minutes(5))
}

/// How long a claimed delivery stays this process's: longer than a batch
/// can take (15 s per message, and a dead endpoint fails the rest at once).
const LEASE: Duration = Duration::minutes(5);

/// Claims what is due and delivers it, each sink in its own task (a slow
/// one does not hold the others up); returns how many deliveries
/// succeeded.
pub async fn deliver_due(
    store: &Store,
    sinks: &SinkTable,
    metrics: &Arc<Metrics>,
    now: DateTime<Utc>,
) -> Result<usize, crate::store::StoreError> {
    let due = store.outbox_claim(now, now + LEASE, 200).await?;
    let table = sinks.read().unwrap_or_else(|e| e.into_inner()).clone();
    let mut by_sink: HashMap<String, Vec<crate::store::outbox::Due>> = HashMap::new();
    for d in due {
        by_sink.entry(d.sink.clone()).or_default().push(d);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (name, items) in by_sink {
        let sink = table.get(&name).cloned();
        let store = store.clone();
        let metrics = metrics.clone();
        tasks.spawn(async move { deliver_one(&store, &name, sink, &items, &metrics, now).await });
    }
    let mut ok = 0;
    let mut first_err = None;
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(n)) => ok += n,
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(e) => warn!("a sink's delivery task failed: {e}"),
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(ok),
    }
}

async fn deliver_one(
    store: &Store,
    name: &str,
    sink: Option<Sink>,
    items: &[crate::store::outbox::Due],
    metrics: &Metrics,
    now: DateTime<Utc>,
) -> Result<usize, crate::store::StoreError> {
    let Some(sink) = sink else {
        // A sink removed from the config: keep the rows, look again later.
        for d in items {
            store
                .outbox_failed(d.outbox_id, name, now + LEASE, "sink not configured")
                .await?;
        }
        return Ok(0);
    };
    let msgs: Vec<(&str, &serde_json::Value)> = items
        .iter()
        .map(|d| (d.kind.as_str(), &d.payload))
        .collect();
    let results: Vec<Outcome> = match sink.robot_url() {
        Some(url) => {
            let pace = robot_pace(store, name, url, now).await?;
            let mut pace = pace.lock().await;
            sink.deliver_robot(&msgs, now, &mut pace).await
        }
        None => sink
            .deliver(name, &msgs, now)
            .await
            .into_iter()
            .map(|r| match r {
                Ok(()) => Outcome::Sent(crate::clock::now()),
                Err(e) => Outcome::Failed(e),
            })
            .collect(),
    };
    let mut ok = 0;
    for (d, r) in items.iter().zip(results) {
        match r {
            Outcome::Deferred(at) => {
                debug!(sink = name, id = %d.key, "robot rate reached; due again at {at}");
                store.outbox_defer(d.outbox_id, name, at).await?;
            }
            // A robot's deliveries are marked sent at the instant its pace
            // counted, which is what a restart reads back to seed the pace.
            Outcome::Sent(at) => {
                store.outbox_sent(d.outbox_id, name, at).await?;
                metrics.add(
                    "attendd_alerts_total",
                    &[("sink", name), ("kind", &d.kind), ("outcome", "sent")],
                    1.0,
                );
                debug!(sink = name, id = %d.key, "delivered");
                ok += 1;
            }
            Outcome::Failed(e) => {
                let next = if sink.is_robot() {
                    now
                } else {
                    crate::clock::now()
                } + retry_delay(d.attempts);
                metrics.add(
                    "attendd_alerts_total",
                    &[("sink", name), ("kind", &d.kind), ("outcome", "failed")],
                    1.0,
                );
                warn!(sink = name, id = %d.key, attempt = d.attempts + 1, "delivery failed: {e}; retrying at {next}");
                store.outbox_failed(d.outbox_id, name, next, &e).await?;
            }
        }
    }
    Ok(ok)
}

/// Delivers due messages every `every` (and at once when `wake` fires)
/// until `shutdown`.
pub async fn run(
    store: Store,
    sinks: SinkTable,
    metrics: Arc<Metrics>,
    every: StdDuration,
    wake: Arc<tokio::sync::Notify>,
    shutdown: CancellationToken,
) {
    loop {
        if let Err(e) = deliver_due(&store, &sinks, &metrics, crate::clock::now()).await {
            warn!("outbox: {e}; retrying");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from DingTalk's robot documentation's algorithm, checked
    /// against an independent HMAC-SHA256 (Python's hmac module).
    #[test]
    fn dingtalk_signature_matches_an_independent_implementation() {
        let url = dingtalk_signed_url(
            "http://robot.example/robot/send?access_token=abc",
            "SECtest",
            1_700_000_000_000,
        );
        assert!(url.starts_with(
            "http://robot.example/robot/send?access_token=abc&timestamp=1700000000000&sign="
        ));
        // python3 -c 'import hmac,hashlib,base64,urllib.parse;
        //   s=b"SECtest"; m=b"1700000000000\nSECtest";
        //   print(urllib.parse.quote_plus(base64.b64encode(hmac.new(s,m,hashlib.sha256).digest())))'
        let sign = url.rsplit_once("sign=").unwrap().1;
        assert_eq!(sign, EXPECTED_SIGN);
    }

    const EXPECTED_SIGN: &str = "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g%3D";

    #[test]
    fn retry_delay_doubles_and_caps() {
        assert_eq!(retry_delay(0), Duration::seconds(1));
        assert_eq!(retry_delay(3), Duration::seconds(8));
        assert_eq!(retry_delay(20), Duration::minutes(5));
    }

    #[test]
    fn urls_split_with_default_ports() {
        assert_eq!(
            split_url("http://127.0.0.1:9000/hook?x=1").unwrap(),
            ("127.0.0.1".into(), 9000, "/hook?x=1".into(), false)
        );
        assert_eq!(
            split_url("https://oapi.dingtalk.com/robot/send?access_token=t").unwrap(),
            (
                "oapi.dingtalk.com".into(),
                443,
                "/robot/send?access_token=t".into(),
                true
            )
        );
        assert!(split_url("ftp://x").is_err());
    }
}
