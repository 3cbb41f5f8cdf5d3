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

mod load;
pub use load::{load, load_for_commands};

use crate::domain::policy::Policy;
use crate::policy_file::PolicyError;

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
    /// SQLite's page cache per connection, in MiB (four connections);
    /// default 64. Ignored for PostgreSQL.
    #[serde(default = "default_sqlite_cache_mib")]
    pub sqlite_cache_mib: u32,
}

/// `[store] quarantine_retention_days` when unset.
pub const DEFAULT_QUARANTINE_RETENTION_DAYS: u32 = 90;

fn default_quarantine_retention() -> u32 {
    DEFAULT_QUARANTINE_RETENTION_DAYS
}

fn default_sqlite_cache_mib() -> u32 {
    crate::store::DEFAULT_SQLITE_CACHE_MIB
}

fn default_store_url() -> String {
    "sqlite:///var/lib/attendd/attendd.db".into()
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            url: default_store_url(),
            quarantine_retention_days: DEFAULT_QUARANTINE_RETENTION_DAYS,
            sqlite_cache_mib: default_sqlite_cache_mib(),
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
    /// MiB of built pages of the daily table kept for the next request
    /// while the day's verdicts and the employees are unchanged (0–1024;
    /// 0 keeps none); default 32.
    #[serde(default = "default_page_cache_mib")]
    pub page_cache_mib: u32,
}

/// `[http] page_cache_mib` when not set.
pub const DEFAULT_PAGE_CACHE_MIB: u32 = 32;

fn default_page_cache_mib() -> u32 {
    DEFAULT_PAGE_CACHE_MIB
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
    pub policies: crate::policy_file::Policies,
    /// Each group's id and policy file, in configuration order.
    pub group_paths: Vec<(String, PathBuf)>,
    /// Store URL with relative SQLite paths made absolute.
    pub store_url: String,
    /// `[store] quarantine_retention_days`.
    pub quarantine_retention_days: u32,
    /// `[store] sqlite_cache_mib`.
    pub sqlite_cache_mib: u32,
    /// The raw sources (validated).
    pub sources: RawSources,
    /// HTTP listen address, when enabled.
    pub http_listen: Option<SocketAddr>,
    /// API bearer tokens, secrets resolved from the environment.
    pub http_tokens: Vec<token::ApiToken>,
    /// `[http] max_connections`.
    pub http_max_connections: usize,
    /// `[http] page_cache_mib`.
    pub http_page_cache_mib: u32,
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
