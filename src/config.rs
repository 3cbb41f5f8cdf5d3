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

use serde::Deserialize;

use crate::domain::policy::Policy;
use crate::policy::PolicyError;

/// Where the configuration is read from when `--config` is not given:
/// `$ATTENDD_CONFIG`, else this path.
pub const DEFAULT_CONFIG: &str = "/etc/attendd/attendd.toml";

/// The decoders `[[source.*]] decoder` may name (`interfaces.md`).
pub const DECODERS: &[&str] = &[
    "json",
    "recpush",
    "hik-isapi",
    "double-take",
    "zk-attlog",
    "dahua",
    "card-line",
    "stx-etx",
];

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
}

/// `[policy]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicyRef {
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
}

fn default_store_url() -> String {
    "sqlite:///var/lib/attendd/attendd.db".into()
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            url: default_store_url(),
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
    /// Store URL with relative SQLite paths made absolute.
    pub store_url: String,
    /// The raw sources (validated).
    pub sources: RawSources,
    /// HTTP listen address, when enabled.
    pub http_listen: Option<SocketAddr>,
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

/// Reads and validates a configuration and the policy it names.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let one = |m: String| ConfigError { problems: vec![m] };
    let text =
        std::fs::read_to_string(path).map_err(|e| one(format!("{file}: cannot read: {e}")))?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| {
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
    let mut push = |key: &str, why: String| problems.push(format!("{file}: key `{key}`: {why}"));

    let policy_path = base.join(&raw.policy.file);
    let policy = crate::policy::load(&policy_path);

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
    let policy = match policy {
        Ok(p) => Some(p),
        Err(e) => {
            problems.extend(e.to_string().lines().map(String::from));
            None
        }
    };
    match policy {
        Some(policy) if problems.is_empty() => Ok(Config {
            path: path.to_path_buf(),
            policy_path,
            policy,
            store_url,
            sources: raw.source,
            http_listen,
        }),
        _ => Err(ConfigError { problems }),
    }
}
