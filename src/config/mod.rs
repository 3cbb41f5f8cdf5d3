//! The daemon's configuration file (`interfaces.md`, "Configuration keys
//! that are fixed"), read in two stages like the policy: a raw serde mirror
//! that rejects unknown keys, then [`Config`], validated with every problem
//! collected.
//!
//! Relative paths in the file are relative to the file's own folder, so a
//! configuration directory can be moved as a whole.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;

pub mod pull;
pub mod push;
pub mod token;

use crate::domain::policy::Policy;
use crate::policy::PolicyError;

/// Where the configuration is read from when `--config` is not given:
/// `$ATTENDD_CONFIG`, else this path.
pub const DEFAULT_CONFIG: &str = "/etc/attendd/attendd.toml";

/// The decoders `[[source.*]] decoder` may name (`interfaces.md`): those
/// registered in [`crate::ingest::decode::Decoder`].
pub const DECODERS: &[&str] = crate::ingest::decode::Decoder::NAMES;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[policy]`.
    pub policy: RawPolicyRef,
    /// `[store]`.
    #[serde(default)]
    pub store: RawStore,
    /// `[[source.mqtt]]`, `[[source.serial]]`.
    #[serde(default)]
    pub source: RawSources,
    /// `[http]`.
    #[serde(default)]
    pub http: Option<RawHttp>,
    /// `[ingest]`.
    #[serde(default)]
    pub ingest: RawIngest,
    /// `[schedule]`: absence alerts, day close, terminal health.
    #[serde(default)]
    pub schedule: RawSchedule,
    /// `[[sink]]`: where alerts and summaries are delivered.
    #[serde(default)]
    pub sink: Vec<RawSink>,
}

/// `[schedule]`: when the daemon alerts and closes days.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSchedule {
    /// Absence alert this long past shift start (`interfaces.md`: default 30).
    pub alert_after_minutes: i64,
    /// A day closes at its last shift end + earliness grace + this.
    pub close_delay_minutes: i64,
    /// How often the scheduler looks; default 30 s.
    pub tick_seconds: u64,
    /// Closed days younger than this are re-checked for late data and
    /// re-published as revisions; default 7.
    pub revision_days: i64,
    /// A terminal silent this long during working hours raises an alert;
    /// 0 turns the check off. Default 120.
    pub terminal_silent_minutes: i64,
    /// Working hours for the silence check, local `HH:MM-HH:MM`.
    pub working_hours: String,
    /// More quarantined payloads than this within 10 minutes raise an
    /// alert; 0 turns the check off. Default 50.
    pub quarantine_spike: i64,
    /// Who receives terminal-health alerts (named in the message).
    pub operations_contact: String,
}

impl Default for RawSchedule {
    fn default() -> Self {
        RawSchedule {
            alert_after_minutes: 30,
            close_delay_minutes: 60,
            tick_seconds: 30,
            revision_days: 7,
            terminal_silent_minutes: 120,
            working_hours: "08:00-18:00".into(),
            quarantine_spike: 50,
            operations_contact: "operations".into(),
        }
    }
}

impl RawSchedule {
    /// The working hours as two local times (validated by [`load`]).
    pub fn working_hours(&self) -> Option<(chrono::NaiveTime, chrono::NaiveTime)> {
        let (a, b) = self.working_hours.split_once('-')?;
        let t = |s: &str| chrono::NaiveTime::parse_from_str(s.trim(), "%H:%M").ok();
        Some((t(a)?, t(b)?))
    }
}

/// The kinds of `[[sink]]`.
pub const SINK_KINDS: &[&str] = &["mqtt", "webhook", "dingtalk", "wecom"];

/// The message kinds a sink can subscribe to.
pub const EVENT_KINDS: &[&str] = &[
    "absence",
    "arrival",
    "summary",
    "terminal",
    "publication",
    "appeal",
];

/// `[[sink]]`: one destination for alerts and summaries.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSink {
    /// Unique name (logs, metrics, the outbox); default `KIND[i]`.
    #[serde(default)]
    pub name: Option<String>,
    /// `mqtt`, `webhook`, `dingtalk` or `wecom`.
    pub kind: String,
    /// Webhook / robot URL (`webhook`, `dingtalk`, `wecom`).
    #[serde(default)]
    pub url: Option<String>,
    /// Environment variable holding the URL instead (robot URLs carry an
    /// access token).
    #[serde(default)]
    pub url_env: Option<String>,
    /// DingTalk signing secret (`SEC…`), or the variable holding it.
    #[serde(default)]
    pub secret: Option<String>,
    /// Environment variable holding the secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// `https://`: CA certificate(s) to trust (PEM); default the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `mqtt`: broker URL; default the first `[[source.mqtt]]` broker.
    #[serde(default)]
    pub broker: Option<String>,
    /// `mqtt`: topic prefix; default `attendance`.
    #[serde(default = "default_topic_prefix")]
    pub topic_prefix: String,
    /// Message kinds to deliver; default all.
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Only employees of these teams (alerts); default all.
    #[serde(default)]
    pub teams: Option<Vec<String>>,
    /// `dingtalk`, `wecom`: the word a robot with keyword security
    /// requires in every message; default none.
    #[serde(default)]
    pub keyword: Option<String>,
}

fn default_topic_prefix() -> String {
    "attendance".into()
}

impl RawSink {
    /// The sink's name: `name`, else `KIND[i]`.
    pub fn name(&self, i: usize) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}[{i}]", self.kind))
    }

    /// The URL from `url` or `url_env`.
    pub fn url(&self) -> Option<String> {
        self.url
            .clone()
            .or_else(|| self.url_env.as_ref().and_then(|v| std::env::var(v).ok()))
    }

    /// The secret from `secret` or `secret_env`.
    pub fn secret(&self) -> Option<String> {
        self.secret
            .clone()
            .or_else(|| self.secret_env.as_ref().and_then(|v| std::env::var(v).ok()))
    }

    /// Whether messages of `kind` go to this sink.
    pub fn wants(&self, kind: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|e| e.iter().any(|k| k == kind))
    }
}

/// `[ingest]`: what happens between a source and the store.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIngest {
    /// A punch stamped further than this in the future (device clock ahead)
    /// is flagged in logs and metrics; default 300 s. It is still stored.
    #[serde(default = "default_skew")]
    pub max_future_skew_seconds: i64,
    /// How often days touched by new punches are re-classified; default 5 s.
    #[serde(default = "default_recompute")]
    pub recompute_interval_seconds: u64,
    /// The first date classified automatically (policy.md, "Real sites").
    /// Unset: fixed in the store the first time it is needed.
    #[serde(default)]
    pub classify_from: Option<NaiveDate>,
}

fn default_skew() -> i64 {
    300
}
fn default_recompute() -> u64 {
    5
}

impl Default for RawIngest {
    fn default() -> Self {
        RawIngest {
            max_future_skew_seconds: default_skew(),
            recompute_interval_seconds: default_recompute(),
            classify_from: None,
        }
    }
}

/// `[policy]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicyRef {
    /// Policy file; relative to the config file's folder.
    pub file: PathBuf,
    /// `[[policy.group]]`: further policies employees.csv's `policy`
    /// column picks by id (policy.md, "Several rule sets on one site").
    #[serde(default)]
    pub group: Vec<RawPolicyGroup>,
}

/// `[[policy.group]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicyGroup {
    /// The id employees.csv's `policy` column names.
    pub id: String,
    /// Policy file; relative to the config file's folder.
    pub file: PathBuf,
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `sqlite://PATH` (relative to the config file's folder) or
    /// `postgres://…`. `ATTENDD_STORE_URL` overrides it.
    #[serde(default = "default_store_url")]
    pub url: String,
    /// Days an undecodable quarantined payload is kept before it is
    /// pruned; default 90. Unknown-employee punches are never pruned.
    #[serde(default = "default_quarantine_retention")]
    pub quarantine_retention_days: u32,
}

/// `[store] quarantine_retention_days` when unset.
pub const DEFAULT_QUARANTINE_RETENTION_DAYS: u32 = 90;

fn default_quarantine_retention() -> u32 {
    DEFAULT_QUARANTINE_RETENTION_DAYS
}

fn default_store_url() -> String {
    "sqlite:///var/lib/attendd/attendd.db".into()
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            url: default_store_url(),
            quarantine_retention_days: DEFAULT_QUARANTINE_RETENTION_DAYS,
        }
    }
}

/// `[source]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSources {
    /// MQTT brokers.
    #[serde(default)]
    pub mqtt: Vec<RawMqtt>,
    /// Serial ports.
    #[serde(default)]
    pub serial: Vec<RawSerial>,
    /// ZKTeco PUSH/ADMS listeners.
    #[serde(default)]
    pub zk_push: Vec<push::RawZkPush>,
    /// Hikvision/Dahua event upload listeners.
    #[serde(default)]
    pub hik_http: Vec<push::RawHikHttp>,
    /// ZKTeco terminals read over their own protocol (port 4370).
    #[serde(default)]
    pub zk_pull: Vec<pull::RawZkPull>,
    /// Hikvision terminals read over ISAPI.
    #[serde(default)]
    pub hik_pull: Vec<pull::RawHikPull>,
    /// Dahua access controllers read over their CGI.
    #[serde(default)]
    pub dahua_pull: Vec<pull::RawDahuaPull>,
}

/// `[[source.mqtt]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqtt {
    /// `mqtt://host:port`, `mqtts://host:port` or `embedded`.
    pub broker: String,
    /// Topic filters; default `attendance/+/punch`.
    #[serde(default = "default_topics")]
    pub topics: Vec<String>,
    /// Decoder name.
    #[serde(default = "default_decoder_json")]
    pub decoder: String,
    /// Stable client id for the persistent session.
    pub client_id: String,
    /// User name; the password comes from `password` or from the
    /// environment variable named by `password_env`.
    #[serde(default)]
    pub username: Option<String>,
    /// Password (prefer `password_env` so it stays out of this file).
    #[serde(default)]
    pub password: Option<String>,
    /// Environment variable holding the password, e.g.
    /// `ATTENDD_MQTT_PASSWORD`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Zone of the terminals' local times; default the policy's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Most messages committed per transaction; default 512.
    #[serde(default = "default_batch")]
    pub batch_max: usize,
    /// With `broker = "embedded"`: where the embedded broker listens;
    /// default `127.0.0.1:1883`.
    #[serde(default)]
    pub listen: Option<String>,
    /// With `broker = "embedded"`: let clients in without a user name
    /// (publishing punches and reading the outputs). Accepted only on a
    /// loopback `listen`; default false.
    #[serde(default)]
    pub allow_anonymous: bool,
    /// With `broker = "embedded"`: the terminals that may log in and
    /// publish punches (and subscribe to their own reply topics).
    #[serde(default)]
    pub terminals: Vec<RawMqttUser>,
    /// With `broker = "embedded"`: programs that may log in to subscribe
    /// to attendd's outputs (alerts, summaries), and do nothing else.
    #[serde(default)]
    pub readers: Vec<RawMqttUser>,
    /// With `broker = "embedded"`: connections served at once; default 256.
    #[serde(default)]
    pub max_connections: Option<usize>,
    /// With `broker = "embedded"`: largest packet accepted, in bytes;
    /// default 4194304 (4 MiB, a punch with a face photo).
    #[serde(default)]
    pub max_packet_bytes: Option<usize>,
    /// With `broker = "embedded"`: bytes of punches awaiting commit across
    /// all terminals (past it terminals are not read until the store
    /// catches up); default 67108864 (64 MiB).
    #[serde(default)]
    pub max_pending_bytes: Option<usize>,
    /// Decoder options (field paths for `json`, thresholds, …).
    #[serde(default)]
    pub decoder_options: Option<toml::Table>,
    /// `mqtts://`: CA certificate(s) to trust (PEM); default the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// `mqtts://`: client certificate chain (PEM), with `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// `mqtts://`: the client certificate's private key (PEM).
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

fn default_batch() -> usize {
    512
}

/// `[[source.mqtt.terminals]]` and `[[source.mqtt.readers]]`: a user of
/// the embedded broker.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMqttUser {
    /// User name presented at CONNECT.
    pub username: String,
    /// Password (prefer `password_env`, so it stays out of this file).
    #[serde(default)]
    pub password: Option<String>,
    /// Environment variable holding the password, e.g.
    /// `ATTENDD_MQTT_GATE_1`.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Terminals only: the topics (MQTT filters) this terminal may publish
    /// to, e.g. `["mqtt/face/1026731/#"]`, so that one terminal's password
    /// cannot publish as another; default any punch topic.
    #[serde(default)]
    pub topics: Vec<String>,
}

impl std::fmt::Debug for RawMqttUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMqttUser")
            .field("username", &self.username)
            .field("password_env", &self.password_env)
            .finish_non_exhaustive()
    }
}

impl RawMqttUser {
    /// The password from `password` or `password_env`.
    pub fn password(&self) -> Option<String> {
        self.password.clone().or_else(|| {
            self.password_env
                .as_ref()
                .and_then(|v| std::env::var(v).ok())
        })
    }

    fn check(
        &self,
        key: &str,
        names: &mut std::collections::HashSet<String>,
        push: &mut impl FnMut(&str, String),
    ) {
        if self.username.is_empty() {
            push(&format!("{key}.username"), "must not be empty".into());
        } else if !names.insert(self.username.clone()) {
            push(
                &format!("{key}.username"),
                format!("{:?} is used twice", self.username),
            );
        }
        match (&self.password, &self.password_env) {
            (Some(_), Some(_)) => push(
                &format!("{key}.password"),
                "set password or password_env, not both".into(),
            ),
            (None, None) => push(
                &format!("{key}.password_env"),
                "required (or password)".into(),
            ),
            (Some(p), None) if p.is_empty() => {
                push(&format!("{key}.password"), "must not be empty".into())
            }
            (None, Some(v)) => match std::env::var(v) {
                Err(_) => push(
                    &format!("{key}.password_env"),
                    format!("environment variable {v} is not set"),
                ),
                Ok(p) if p.is_empty() => push(
                    &format!("{key}.password_env"),
                    format!("environment variable {v} is empty"),
                ),
                Ok(_) => {}
            },
            _ => {}
        }
    }
}

fn default_topics() -> Vec<String> {
    vec!["attendance/+/punch".into()]
}
fn default_decoder_json() -> String {
    "json".into()
}

/// `[[source.serial]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSerial {
    /// Device path.
    pub path: PathBuf,
    /// Baud rate; default 9600.
    #[serde(default = "default_baud")]
    pub baud: u32,
    /// Decoder name; default `zk-attlog`.
    #[serde(default = "default_decoder_zk")]
    pub decoder: String,
    /// Data bits, 5 … 8; default 8.
    #[serde(default = "default_data_bits")]
    pub data_bits: u8,
    /// `none` (default), `odd` or `even`.
    #[serde(default = "default_parity")]
    pub parity: String,
    /// 1 (default) or 2.
    #[serde(default = "default_stop_bits")]
    pub stop_bits: u8,
    /// `lines` (default) or `stx-etx`.
    #[serde(default = "default_framing")]
    pub framing: String,
    /// Zone of the device's local times; default the policy's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Decoder options.
    #[serde(default)]
    pub decoder_options: Option<toml::Table>,
}

fn default_data_bits() -> u8 {
    8
}
fn default_parity() -> String {
    "none".into()
}
fn default_stop_bits() -> u8 {
    1
}
fn default_framing() -> String {
    "lines".into()
}

fn default_baud() -> u32 {
    9600
}
fn default_decoder_zk() -> String {
    "zk-attlog".into()
}

/// `[http]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Listen address, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// `[[http.tokens]]`: bearer tokens for the API, each with a role.
    /// Without any, every API request is refused (401).
    #[serde(default)]
    pub tokens: Vec<RawToken>,
    /// Most connections open at once on the API listener; default 1024.
    /// At the cap a new connection closes the longest-idle one (or a
    /// half-sent request), else waits. Request heads must arrive within
    /// 30 s of their first byte; idle connections close after 60 s.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

/// `[http] max_connections` when not set (the listener's own default,
/// [`crate::http::DEFAULT_MAX_CONNECTIONS`], is the same number).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

fn default_max_connections() -> usize {
    DEFAULT_MAX_CONNECTIONS
}

/// `[[http.tokens]]`: one API bearer token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// A name for logs and audit rows (`recorded_by`); default: the role.
    pub name: Option<String>,
    /// The secret itself (at least 16 characters). Prefer `token_env`.
    pub token: Option<String>,
    /// The environment variable holding the secret, e.g.
    /// `ATTENDD_TOKEN_HR`, so a systemd `EnvironmentFile` keeps it out of
    /// the TOML.
    pub token_env: Option<String>,
    /// `hr` (everything), `supervisor:{team}` (one team) or
    /// `terminal-admin` (quarantine and terminals).
    pub role: String,
}

/// A validated configuration with its policy loaded.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The policy file.
    pub policy_path: PathBuf,
    /// The validated policy.
    pub policy: Policy,
    /// The default policy (again) and each `[[policy.group]]`, by id.
    pub policies: crate::policy::Policies,
    /// Each group's id and policy file, in configuration order.
    pub group_paths: Vec<(String, PathBuf)>,
    /// Store URL with relative SQLite paths made absolute.
    pub store_url: String,
    /// `[store] quarantine_retention_days`.
    pub quarantine_retention_days: u32,
    /// The raw sources (validated).
    pub sources: RawSources,
    /// HTTP listen address, when enabled.
    pub http_listen: Option<SocketAddr>,
    /// API bearer tokens, secrets resolved from the environment.
    pub http_tokens: Vec<token::ApiToken>,
    /// `[http] max_connections`.
    pub http_max_connections: usize,
    /// `[ingest]` settings.
    pub ingest: RawIngest,
    /// `[schedule]` settings.
    pub schedule: RawSchedule,
    /// `[[sink]]`s (validated).
    pub sinks: Vec<RawSink>,
}

/// Everything wrong with a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// One line per problem: `file[:line]: key `k`: why`.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problems.join("\n"))
    }
}

impl From<PolicyError> for ConfigError {
    fn from(e: PolicyError) -> Self {
        ConfigError {
            problems: e.to_string().lines().map(String::from).collect(),
        }
    }
}

/// The config path: `--config`, else `$ATTENDD_CONFIG`, else the default.
pub fn config_path(arg: Option<&Path>) -> PathBuf {
    match arg {
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("ATTENDD_CONFIG")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
    }
}

/// The embedded broker's keys: who may log in, and its limits.
fn check_embedded(key: &str, m: &RawMqtt, push: &mut impl FnMut(&str, String)) {
    if m.broker != "embedded" {
        let set = [
            ("allow_anonymous", m.allow_anonymous),
            ("terminals", !m.terminals.is_empty()),
            ("readers", !m.readers.is_empty()),
            ("max_connections", m.max_connections.is_some()),
            ("max_packet_bytes", m.max_packet_bytes.is_some()),
            ("max_pending_bytes", m.max_pending_bytes.is_some()),
        ];
        for (k, _) in set.iter().filter(|(_, on)| *on) {
            push(
                &format!("{key}.{k}"),
                "only used with broker = \"embedded\"".into(),
            );
        }
        return;
    }
    for k in [
        ("username", m.username.is_some()),
        ("password", m.password.is_some()),
        ("password_env", m.password_env.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| k)
    {
        push(
            &format!("{key}.{k}"),
            "not used with broker = \"embedded\": terminals log in with [[source.mqtt.terminals]] username and password_env".into(),
        );
    }
    let listen = m.listen.as_deref().unwrap_or("127.0.0.1:1883");
    if m.allow_anonymous
        && let Ok(addr) = listen.parse::<SocketAddr>()
        && !addr.ip().is_loopback()
    {
        push(
            &format!("{key}.allow_anonymous"),
            format!(
                "true only on a loopback listen; listen = {listen:?} is reachable from other hosts, so give each terminal a user in [[source.mqtt.terminals]]"
            ),
        );
    }
    if !m.allow_anonymous && m.terminals.is_empty() {
        push(
            &format!("{key}.terminals"),
            "no terminal may log in: add [[source.mqtt.terminals]] (username, password_env), or allow_anonymous = true on a loopback listen".into(),
        );
    }
    let mut names = std::collections::HashSet::new();
    for (j, u) in m.terminals.iter().enumerate() {
        u.check(&format!("{key}.terminals[{j}]"), &mut names, push);
    }
    for (j, u) in m.readers.iter().enumerate() {
        u.check(&format!("{key}.readers[{j}]"), &mut names, push);
        if !u.topics.is_empty() {
            push(
                &format!("{key}.readers[{j}].topics"),
                "readers publish nothing: topics is for terminals".into(),
            );
        }
    }
    for (j, u) in m.terminals.iter().enumerate() {
        for (t, f) in u.topics.iter().enumerate() {
            if f.is_empty() || f.starts_with("$share/") || f.contains('\0') {
                push(
                    &format!("{key}.terminals[{j}].topics[{t}]"),
                    format!("{f:?} is not an MQTT topic filter"),
                );
            }
        }
    }
    if m.max_connections == Some(0) {
        push(&format!("{key}.max_connections"), "must be positive".into());
    }
    let packet = m.max_packet_bytes.unwrap_or(4 * 1024 * 1024);
    if !(1024..=256 * 1024 * 1024).contains(&packet) {
        push(
            &format!("{key}.max_packet_bytes"),
            format!("{packet} is not between 1024 and 268435456"),
        );
    }
    if let Some(p) = m.max_pending_bytes
        && p < packet
    {
        push(
            &format!("{key}.max_pending_bytes"),
            format!("{p} is less than max_packet_bytes ({packet})"),
        );
    }
}

fn check_schedule(s: &RawSchedule, push: &mut impl FnMut(&str, String)) {
    for (key, v) in [
        ("schedule.alert_after_minutes", s.alert_after_minutes),
        ("schedule.close_delay_minutes", s.close_delay_minutes),
        ("schedule.revision_days", s.revision_days),
        (
            "schedule.terminal_silent_minutes",
            s.terminal_silent_minutes,
        ),
        ("schedule.quarantine_spike", s.quarantine_spike),
    ] {
        if v < 0 {
            push(key, format!("{v} is negative"));
        }
    }
    if s.tick_seconds == 0 {
        push("schedule.tick_seconds", "must be at least 1".into());
    }
    if s.working_hours().is_none() {
        push(
            "schedule.working_hours",
            format!("{:?} is not HH:MM-HH:MM", s.working_hours),
        );
    }
}

fn check_sink(
    i: usize,
    k: &RawSink,
    sources: &RawSources,
    names: &mut std::collections::HashSet<String>,
    push: &mut impl FnMut(&str, String),
) {
    let key = format!("sink[{i}]");
    if !SINK_KINDS.contains(&k.kind.as_str()) {
        push(
            &format!("{key}.kind"),
            format!(
                "unknown sink {:?} (one of {})",
                k.kind,
                SINK_KINDS.join(", ")
            ),
        );
        return;
    }
    if !names.insert(k.name(i)) {
        push(
            &format!("{key}.name"),
            format!("{:?} is used twice", k.name(i)),
        );
    }
    for e in k.events.iter().flatten() {
        if !EVENT_KINDS.contains(&e.as_str()) {
            push(
                &format!("{key}.events"),
                format!("unknown event {e:?} (one of {})", EVENT_KINDS.join(", ")),
            );
        }
    }
    match &k.keyword {
        Some(w) if !matches!(k.kind.as_str(), "dingtalk" | "wecom") => push(
            &format!("{key}.keyword"),
            format!("{w:?}: only dingtalk and wecom robots take a keyword"),
        ),
        Some(w) if w.trim().is_empty() => {
            push(&format!("{key}.keyword"), "is empty".into());
        }
        _ => {}
    }
    if k.kind == "mqtt" {
        let broker = k.broker.clone().or_else(|| {
            sources.mqtt.first().map(|m| {
                if m.broker == "embedded" {
                    format!("mqtt://{}", m.listen.as_deref().unwrap_or("127.0.0.1:1883"))
                } else {
                    m.broker.clone()
                }
            })
        });
        match broker {
            None => push(
                &format!("{key}.broker"),
                "required: there is no [[source.mqtt]] to default to".into(),
            ),
            Some(b) if !b.starts_with("mqtt://") => push(
                &format!("{key}.broker"),
                format!("{b:?} is not mqtt://HOST:PORT"),
            ),
            Some(_) => {}
        }
        return;
    }
    match k.url() {
        None => push(
            &format!("{key}.url"),
            match &k.url_env {
                Some(v) => format!("environment variable {v} (url_env) is not set"),
                None => "required for this sink (or url_env)".into(),
            },
        ),
        Some(u) if !u.starts_with("http://") && !u.starts_with("https://") => push(
            &format!("{key}.url"),
            format!("{u:?} is not an http:// or https:// URL"),
        ),
        Some(u) if u.starts_with("https://") => {
            if let Err(e) = crate::tls::client_config(k.ca_file.as_deref(), None) {
                push(&format!("{key}.ca_file"), e);
            }
        }
        Some(_) => {}
    }
    if k.secret_env
        .as_ref()
        .is_some_and(|v| std::env::var(v).is_err())
    {
        push(
            &format!("{key}.secret_env"),
            format!(
                "environment variable {} is not set",
                k.secret_env.as_deref().unwrap_or_default()
            ),
        );
    }
}

/// Each `[[policy.group]]`'s id and policy file.
type GroupPaths = Vec<(String, PathBuf)>;

/// Loads each `[[policy.group]]`'s policy (its file relative to the
/// configuration's folder); every problem names the group's id and file.
/// Duplicate and reserved ids are refused by [`crate::policy::Policies::new`].
fn load_groups(
    raw: &[RawPolicyGroup],
    base: &Path,
    problems: &mut Vec<String>,
) -> (Vec<(String, Policy)>, GroupPaths) {
    let mut groups = Vec::new();
    let mut paths = Vec::new();
    for (i, g) in raw.iter().enumerate() {
        let path = base.join(&g.file);
        match crate::policy::load(&path) {
            Ok(p) => groups.push((g.id.clone(), p)),
            Err(e) => problems.extend(
                e.to_string()
                    .lines()
                    .map(|l| format!("policy group {:?} (policy.group[{i}]): {l}", g.id)),
            ),
        }
        paths.push((g.id.clone(), path));
    }
    (groups, paths)
}

/// Reads and validates a configuration and the policy it names, for the
/// daemon: every secret it names in the environment must be set.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_for(path, Purpose::Daemon)
}

/// Reads and validates a configuration for a command that only reads or
/// writes the store (`punches`, `day`, `quarantine`, `deduct`, …): secrets
/// named by `url_env`, `secret_env`, `password_env`, `path_secret_env` or
/// `token_env` may be unset, since only the daemon sends alerts, serves
/// terminals and answers the API. Everything else is checked as for the
/// daemon.
pub fn load_for_commands(path: &Path) -> Result<Config, ConfigError> {
    load_for(path, Purpose::Commands)
}

/// Who reads the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// `attendd run` and `check-config`: everything must be in place.
    Daemon,
    /// Store commands: secrets in the environment are not needed.
    Commands,
}

/// True for a problem that says a secret's environment variable is unset,
/// which only the daemon cares about.
fn is_unset_secret(key: &str, why: &str) -> bool {
    let secret_key = key.ends_with("_env") || (key.starts_with("sink[") && key.ends_with(".url"));
    secret_key && why.starts_with("environment variable ")
}

fn load_for(path: &Path, purpose: Purpose) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let one = |m: String| ConfigError { problems: vec![m] };
    let text =
        std::fs::read_to_string(path).map_err(|e| one(format!("{file}: cannot read: {e}")))?;
    let mut raw: RawConfig = toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        one(match line {
            Some(l) => format!("{file}:{l}: {}", e.message().trim()),
            None => format!("{file}: {}", e.message().trim()),
        })
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut problems = Vec::new();

    let policy_path = base.join(&raw.policy.file);
    for k in &mut raw.sink {
        if let Some(p) = &mut k.ca_file {
            *p = base.join(&*p);
        }
    }
    for m in &mut raw.source.mqtt {
        for p in [
            &mut m.ca_file,
            &mut m.client_cert_file,
            &mut m.client_key_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = base.join(&*p);
        }
    }
    let policy = crate::policy::load(&policy_path);
    let (groups, group_paths) = load_groups(&raw.policy.group, base, &mut problems);
    let mut push = |key: &str, why: String| {
        if purpose == Purpose::Commands && is_unset_secret(key, &why) {
            return;
        }
        problems.push(format!("{file}: key `{key}`: {why}"))
    };
    if let Some(d) = raw.ingest.classify_from {
        let lo = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
        let hi = NaiveDate::from_ymd_opt(2100, 12, 31).unwrap_or_default();
        if d < lo || d > hi {
            push(
                "ingest.classify_from",
                format!("{d} lies outside 2000-01-01..2100-12-31"),
            );
        }
    }

    let url = std::env::var("ATTENDD_STORE_URL").unwrap_or(raw.store.url.clone());
    let store_url = if let Some(p) = url.strip_prefix("sqlite://") {
        let (p, q) = p.split_once('?').map_or((p, None), |(a, b)| (a, Some(b)));
        let abs = if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            base.join(p)
        };
        match q {
            Some(q) => format!("sqlite://{}?{q}", abs.display()),
            None => format!("sqlite://{}", abs.display()),
        }
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        url
    } else {
        push(
            "store.url",
            format!("{url:?} is neither sqlite://PATH nor postgres://…"),
        );
        url
    };
    if raw.store.quarantine_retention_days == 0 {
        push(
            "store.quarantine_retention_days",
            "must be at least 1 (days an undecodable payload is kept)".into(),
        );
    }

    for (i, m) in raw.source.mqtt.iter().enumerate() {
        let key = format!("source.mqtt[{i}]");
        if m.broker != "embedded"
            && !m.broker.starts_with("mqtt://")
            && !m.broker.starts_with("mqtts://")
        {
            push(
                &format!("{key}.broker"),
                format!(
                    "{:?} is not mqtt://HOST:PORT, mqtts://HOST:PORT or \"embedded\"",
                    m.broker
                ),
            );
        }
        if m.topics.is_empty() {
            push(
                &format!("{key}.topics"),
                "at least one topic is required".into(),
            );
        }
        if !DECODERS.contains(&m.decoder.as_str()) {
            push(
                &format!("{key}.decoder"),
                format!(
                    "unknown decoder {:?} (one of {})",
                    m.decoder,
                    DECODERS.join(", ")
                ),
            );
        }
        if m.broker.starts_with("mqtts://") {
            let client = match (&m.client_cert_file, &m.client_key_file) {
                (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
                (None, None) => None,
                _ => {
                    push(
                        &format!("{key}.client_cert_file"),
                        "client_cert_file and client_key_file go together".into(),
                    );
                    None
                }
            };
            if let Err(e) = crate::tls::client_config(m.ca_file.as_deref(), client) {
                push(&format!("{key}.ca_file"), e);
            }
        } else if m.ca_file.is_some() || m.client_cert_file.is_some() {
            push(
                &format!("{key}.ca_file"),
                "TLS files are only used with broker = \"mqtts://…\"".into(),
            );
        }
        if let Some(tz) = &m.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            push(
                &format!("{key}.timezone"),
                format!("{tz:?} is not an IANA time zone"),
            );
        }
        if let Some(var) = &m.password_env
            && std::env::var_os(var).is_none()
        {
            push(
                &format!("{key}.password_env"),
                format!("environment variable {var} is not set"),
            );
        }
        if let Some(l) = &m.listen
            && l.parse::<SocketAddr>().is_err()
        {
            push(
                &format!("{key}.listen"),
                format!("{l:?} is not an address such as 127.0.0.1:1883"),
            );
        }
        check_embedded(&key, m, &mut push);
        if let Err(e) = crate::ingest::decode::Decoder::with_options(
            &m.decoder,
            m.decoder_options.as_ref().unwrap_or(&toml::Table::new()),
        ) && DECODERS.contains(&m.decoder.as_str())
        {
            push(&format!("{key}.decoder_options"), e.to_string());
        }
        if m.batch_max == 0 {
            push(&format!("{key}.batch_max"), "must be positive".into());
        }
        if m.client_id.trim().is_empty() {
            push(
                &format!("{key}.client_id"),
                "must not be empty (the broker keeps the session under it)".into(),
            );
        }
    }
    for (i, s) in raw.source.serial.iter().enumerate() {
        let key = format!("source.serial[{i}]");
        if !DECODERS.contains(&s.decoder.as_str()) {
            push(
                &format!("{key}.decoder"),
                format!(
                    "unknown decoder {:?} (one of {})",
                    s.decoder,
                    DECODERS.join(", ")
                ),
            );
        }
        if s.baud == 0 {
            push(&format!("{key}.baud"), "must be positive".into());
        }
        if !(5..=8).contains(&s.data_bits) {
            push(
                &format!("{key}.data_bits"),
                format!("{} is not 5, 6, 7 or 8", s.data_bits),
            );
        }
        if !["none", "odd", "even"].contains(&s.parity.as_str()) {
            push(
                &format!("{key}.parity"),
                format!("{:?} is not none, odd or even", s.parity),
            );
        }
        if !(1..=2).contains(&s.stop_bits) {
            push(
                &format!("{key}.stop_bits"),
                format!("{} is not 1 or 2", s.stop_bits),
            );
        }
        if !["lines", "stx-etx"].contains(&s.framing.as_str()) {
            push(
                &format!("{key}.framing"),
                format!("{:?} is not lines or stx-etx", s.framing),
            );
        }
        if let Some(tz) = &s.timezone
            && tz.parse::<chrono_tz::Tz>().is_err()
        {
            push(
                &format!("{key}.timezone"),
                format!("{tz:?} is not an IANA time zone"),
            );
        }
    }
    for (i, z) in raw.source.zk_push.iter().enumerate() {
        z.check(&format!("source.zk_push[{i}]"), &mut push);
    }
    for (i, h) in raw.source.hik_http.iter().enumerate() {
        h.check(&format!("source.hik_http[{i}]"), &mut push);
    }
    for (i, z) in raw.source.zk_pull.iter().enumerate() {
        z.check(&format!("source.zk_pull[{i}]"), &mut push);
    }
    for (i, h) in raw.source.hik_pull.iter().enumerate() {
        h.check(&format!("source.hik_pull[{i}]"), &mut push);
    }
    for (i, d) in raw.source.dahua_pull.iter().enumerate() {
        d.check(&format!("source.dahua_pull[{i}]"), &mut push);
    }
    let http_listen = match &raw.http {
        Some(h) => match h.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                push(
                    "http.listen",
                    format!("{:?} is not an address such as 127.0.0.1:8080", h.listen),
                );
                None
            }
        },
        None => None,
    };
    if raw.http.as_ref().is_some_and(|h| h.max_connections == 0) {
        push("http.max_connections", "must be positive".into());
    }
    check_schedule(&raw.schedule, &mut push);
    let mut names = std::collections::HashSet::new();
    for (i, k) in raw.sink.iter().enumerate() {
        check_sink(i, k, &raw.source, &mut names, &mut push);
    }
    let mut http_tokens = Vec::new();
    for (i, t) in raw.http.iter().flat_map(|h| h.tokens.iter()).enumerate() {
        let key = format!("http.tokens[{i}]");
        match token::ApiToken::resolve(t, |v| std::env::var(v).ok()) {
            Ok(tok) => http_tokens.push(tok),
            Err((field, why)) => push(&format!("{key}.{field}"), why),
        }
    }
    let policy = match policy {
        Ok(p) => Some(p),
        Err(e) => {
            problems.extend(e.to_string().lines().map(String::from));
            None
        }
    };
    let policies = policy.as_ref().map(|p| {
        crate::policy::Policies::new(p.clone(), groups)
            .map_err(|e| problems.push(format!("{file}: key `policy.group`: {e}")))
    });
    match (policy, policies) {
        (Some(policy), Some(Ok(policies))) if problems.is_empty() => Ok(Config {
            path: path.to_path_buf(),
            policy_path,
            policy,
            policies,
            group_paths,
            store_url,
            quarantine_retention_days: raw.store.quarantine_retention_days,
            sources: raw.source,
            http_listen,
            http_tokens,
            http_max_connections: raw
                .http
                .as_ref()
                .map_or(DEFAULT_MAX_CONNECTIONS, |h| h.max_connections),
            ingest: raw.ingest,
            schedule: raw.schedule,
            sinks: raw.sink,
        }),
        _ => Err(ConfigError { problems }),
    }
}
