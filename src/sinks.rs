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
//! - `dingtalk`: a DingTalk group robot's `markdown` message; with a
//!   secret, the URL is signed (`timestamp` + `sign` = Base64 of
//!   HMAC-SHA256 over `"{timestamp}\n{secret}"`, URL-encoded). The robot
//!   answers 200 with `errcode` 0 on success.
//! - `wecom`: a WeCom (企业微信) group robot's `markdown` message; success
//!   is `errcode` 0.
//!
//! Every message carries its outbox key as `id`, so a receiver can drop
//! the repeats that at-least-once delivery allows. Failures back off
//! exponentially per delivery (1 s doubling to 5 min).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::RawSink;
use crate::metrics::Metrics;
use crate::store::Store;

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
    },
    /// A WeCom group robot.
    WeCom {
        /// The robot URL with its key.
        url: Http,
    },
}

/// An HTTP(S) endpoint: the URL and, for `https://`, the TLS settings.
#[derive(Clone, Debug)]
pub struct Http {
    /// The URL.
    pub url: String,
    /// TLS client settings, for `https://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
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
        Ok(Http { url, tls })
    }
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
            },
            "wecom" => Sink::WeCom { url: url()? },
            k => return Err(format!("unknown sink kind {k:?}")),
        })
    }

    /// Delivers a batch of messages of one sink, in order. Returns, for
    /// each, whether it was accepted.
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
            http => {
                let mut out = Vec::with_capacity(msgs.len());
                // After a transport failure (refused, timed out, TLS) the rest
                // of the batch is not tried: one dead endpoint must not hold
                // the deliverer for a timeout per message.
                let mut down: Option<String> = None;
                for (kind, m) in msgs {
                    if let Some(e) = &down {
                        out.push(Err(format!("not tried: {e}")));
                        continue;
                    }
                    let (target, body, robot) = http.request(kind, m, now);
                    let r = post_json(&target, &body).await;
                    if let Err(e) = &r {
                        down = Some(e.clone());
                    }
                    out.push(if robot {
                        robot_ok(r)
                    } else {
                        r.and_then(|(code, body)| {
                            if (200..300).contains(&code) {
                                Ok(())
                            } else {
                                Err(format!("HTTP {code}: {}", truncate(&body)))
                            }
                        })
                    });
                }
                out
            }
        }
    }

    /// An HTTP sink's request for one message: where, what, and whether
    /// the answer is a robot's `errcode`.
    fn request(
        &self,
        kind: &str,
        m: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> (Http, serde_json::Value, bool) {
        match self {
            Sink::DingTalk { url, secret } => (
                Http {
                    url: match secret {
                        Some(s) => dingtalk_signed_url(&url.url, s, now.timestamp_millis()),
                        None => url.url.clone(),
                    },
                    tls: url.tls.clone(),
                },
                serde_json::json!({
                    "msgtype": "markdown",
                    "markdown": {"title": title(kind, m), "text": markdown(kind, m)},
                }),
                true,
            ),
            Sink::WeCom { url } => (
                url.clone(),
                serde_json::json!({
                    "msgtype": "markdown",
                    "markdown": {"content": markdown(kind, m)},
                }),
                true,
            ),
            Sink::Webhook { url } => (url.clone(), m.clone(), false),
            Sink::Mqtt { .. } | Sink::Embedded { .. } => {
                unreachable!("MQTT sinks publish, they do not post")
            }
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

/// DingTalk and WeCom answer 200 with `{"errcode":0,…}` on success.
fn robot_ok(r: Result<(u16, String), String>) -> Result<(), String> {
    let (code, body) = r?;
    if !(200..300).contains(&code) {
        return Err(format!("HTTP {code}: {}", truncate(&body)));
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    match v["errcode"].as_i64() {
        Some(0) => Ok(()),
        _ => Err(format!("robot refused: {}", truncate(&body))),
    }
}

/// The signed robot URL: `&timestamp=…&sign=…` appended
/// (`sign` = URL-encoded Base64 of HMAC-SHA256(secret, "{ts}\n{secret}")).
pub fn dingtalk_signed_url(url: &str, secret: &str, timestamp_ms: i64) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let to_sign = format!("{timestamp_ms}\n{secret}");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let enc = percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}timestamp={timestamp_ms}&sign={enc}")
}

fn title(kind: &str, m: &serde_json::Value) -> String {
    match kind {
        "absence" => format!(
            "缺勤提醒 absence: {}",
            m["employee_id"].as_str().unwrap_or("")
        ),
        "arrival" => format!(
            "已到岗 arrived: {}",
            m["employee_id"].as_str().unwrap_or("")
        ),
        "summary" => format!(
            "考勤日报 daily summary {}",
            m["date"].as_str().unwrap_or("")
        ),
        _ => "终端告警 terminal alert".to_string(),
    }
}

/// The markdown text for robots: a title line, the human text, and the id.
pub fn markdown(kind: &str, m: &serde_json::Value) -> String {
    let mut s = format!("### {}\n\n", title(kind, m));
    if kind == "summary" {
        let t = &m["totals"];
        s.push_str(&format!(
            "- employees: {}\n- deductions: {}\n- points: {}\n",
            t["employees"], t["deductions"], t["points"]
        ));
        if let Some(by) = t["by_status"].as_object() {
            for (k, v) in by {
                s.push_str(&format!("- {k}: {v}\n"));
            }
        }
        if m["revision"].as_u64().unwrap_or(0) > 0 {
            s.push_str(&format!("\n修订 revision {}\n", m["revision"]));
        }
    } else {
        s.push_str(m["text"].as_str().unwrap_or(""));
        s.push('\n');
        if let Some(sup) = m["supervisor"].as_str() {
            s.push_str(&format!("\n主管 supervisor: {sup}\n"));
        }
    }
    s.push_str(&format!("\n> id: {}", m["id"].as_str().unwrap_or("")));
    s
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

/// POSTs JSON over HTTP/1.1 (over TLS for https); returns the status and
/// body.
pub async fn post_json(to: &Http, body: &serde_json::Value) -> Result<(u16, String), String> {
    let url = to.url.as_str();
    let (host, port, path, https) = split_url(url)?;
    let fut = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("connect {host}:{port}: {e}"))?;
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(
                hyper::header::CONTENT_TYPE,
                "application/json; charset=utf-8",
            )
            .header(
                hyper::header::USER_AGENT,
                concat!("attendd/", env!("CARGO_PKG_VERSION")),
            )
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .map_err(|e| e.to_string())?;
        if https {
            let cfg = to
                .tls
                .clone()
                .ok_or_else(|| format!("{host}:{port}: no TLS settings"))?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("{host}: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS with {host}:{port}: {e}"))?;
            exchange(tls, req).await
        } else {
            exchange(tcp, req).await
        }
    };
    tokio::time::timeout(StdDuration::from_secs(15), fut)
        .await
        .map_err(|_| format!("{host}:{port}: no answer within 15 s"))?
}

async fn exchange<T>(
    io: T,
    req: hyper::Request<http_body_util::Full<bytes::Bytes>>,
) -> Result<(u16, String), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt as _;
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
        .await
        .map_err(|e| format!("http handshake: {e}"))?;
    tokio::spawn(conn);
    let resp = send
        .send_request(req)
        .await
        .map_err(|e| format!("http request: {e}"))?;
    let code = resp.status().as_u16();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("http body: {e}"))?
        .to_bytes();
    Ok((code, String::from_utf8_lossy(&bytes).into_owned()))
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
    let results = sink.deliver(name, &msgs, now).await;
    let mut ok = 0;
    for (d, r) in items.iter().zip(results) {
        match r {
            Ok(()) => {
                store.outbox_sent(d.outbox_id, name, Utc::now()).await?;
                metrics.add(
                    "attendd_alerts_total",
                    &[("sink", name), ("kind", &d.kind), ("outcome", "sent")],
                    1.0,
                );
                debug!(sink = name, id = %d.key, "delivered");
                ok += 1;
            }
            Err(e) => {
                let next = Utc::now() + retry_delay(d.attempts);
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
        if let Err(e) = deliver_due(&store, &sinks, &metrics, Utc::now()).await {
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
