//! The raw configuration of the HTTP push sources (`[[source.zk_push]]`,
//! `[[source.hik_http]]`) and its checks; the listeners themselves are
//! in `source::push`, `source::zk_push` and `source::hik_http`.

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

/// Default largest request body: 2 MiB, room for a Hikvision multipart post
/// with its face photo, or a ZKTeco batch of some 30,000 ATTLOG lines.
pub const DEFAULT_MAX_BODY: usize = 2 * 1024 * 1024;

/// The environment variable that delays every push commit by that many
/// milliseconds. Fault injection for tests (kill the daemon between
/// receipt and commit); never set it in production.
pub const COMMIT_DELAY_ENV: &str = "ATTENDD_FAULT_PUSH_COMMIT_DELAY_MS";

/// Settings every HTTP push listener has.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    /// Address to listen on, e.g. `0.0.0.0:8081` (or `127.0.0.1:8081`
    /// behind a reverse proxy).
    pub listen: String,
    /// Largest request body accepted, in bytes (after inflating a deflate
    /// body too); default 2 MiB. Larger requests get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Requests per second one terminal may make on average; 0 turns the
    /// limit off. Default 20. Over the limit a request gets 429 and the
    /// terminal retries later.
    #[serde(default = "default_rate")]
    pub rate_per_second: f64,
    /// Requests a terminal may make at once above the average; default 40.
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// HTTP basic auth user name; with it every request must carry
    /// `Authorization: Basic …` with this name and the password.
    #[serde(default)]
    pub username: Option<String>,
    /// Environment variable holding the basic auth password (it stays out
    /// of this file).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Environment variable holding a shared secret; with it, every URL
    /// must start with `/<secret>/` (for terminals that cannot send basic
    /// auth: configure the server path as `…/<secret>`).
    #[serde(default)]
    pub path_secret_env: Option<String>,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed
    /// (for per-address rate limits); from any other peer the header is
    /// ignored, so a terminal cannot pick a fresh address per request.
    /// Default none.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Most connections open at once on this listener; default 1024. One
    /// more waits until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_max_connections() -> usize {
    super::DEFAULT_MAX_CONNECTIONS
}

fn default_max_body() -> usize {
    DEFAULT_MAX_BODY
}
fn default_rate() -> f64 {
    20.0
}
fn default_burst() -> u32 {
    40
}

/// One terminal allowed on a `[[source.zk_push]]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZkTerminal {
    /// The serial number the terminal sends as `SN=`.
    pub sn: String,
    /// What `/metrics` calls the terminal (`gate-1`): its serial number is
    /// its only credential and is never shown there. Default
    /// `zk_push[I].terminals[J]`, its place in this file.
    #[serde(default)]
    pub name: Option<String>,
    /// IANA zone of the terminal's wall clock; default the policy's zone.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// `[[source.zk_push]]`: ZKTeco PUSH/ADMS terminals (`/iclock/…`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZkPush {
    /// Listener settings.
    #[serde(flatten)]
    pub listener: RawListener,
    /// Seconds between a terminal's polls (`Delay` in the handshake);
    /// default 30.
    #[serde(default = "default_delay")]
    pub delay_seconds: u32,
    /// Ask terminals to push each punch at once (`Realtime=1`); default true.
    #[serde(default = "default_true")]
    pub realtime: bool,
    /// The terminals allowed; any other serial number is refused.
    #[serde(default)]
    pub terminals: Vec<RawZkTerminal>,
}

fn default_delay() -> u32 {
    30
}
fn default_true() -> bool {
    true
}

/// `[[source.hik_http]]`: Hikvision listening mode (or Dahua uploads with
/// `decoder = "dahua"`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHikHttp {
    /// Listener settings.
    #[serde(flatten)]
    pub listener: RawListener,
    /// `hik-isapi` (default), `dahua` or `uniview`.
    #[serde(default = "default_hik")]
    pub decoder: String,
    /// Zone of the terminals' local times (Dahua `LocaleTime`); default the
    /// policy's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Decoder options.
    #[serde(default)]
    pub decoder_options: Option<toml::Table>,
}

fn default_hik() -> String {
    "hik-isapi".into()
}

/// Decoders a `[[source.hik_http]]` may use.
pub const HIK_HTTP_DECODERS: &[&str] = &["hik-isapi", "dahua", "uniview"];

fn check_zone(key: &str, tz: &Option<String>, push: &mut dyn FnMut(&str, String)) {
    if let Some(tz) = tz
        && tz.parse::<chrono_tz::Tz>().is_err()
    {
        push(
            &format!("{key}.timezone"),
            format!("{tz:?} is not an IANA time zone"),
        );
    }
}

impl RawListener {
    /// Reports every problem through `push(key, why)`.
    pub fn check(&self, key: &str, push: &mut dyn FnMut(&str, String)) {
        if self.listen.parse::<SocketAddr>().is_err() {
            push(
                &format!("{key}.listen"),
                format!("{:?} is not an address such as 0.0.0.0:8081", self.listen),
            );
        }
        if self.max_body_bytes < 1024 {
            push(
                &format!("{key}.max_body_bytes"),
                format!("{} is below 1024", self.max_body_bytes),
            );
        }
        if !(self.rate_per_second >= 0.0 && self.rate_per_second.is_finite()) {
            push(
                &format!("{key}.rate_per_second"),
                "must be 0 (off) or a positive number".into(),
            );
        }
        if self.rate_per_second > 0.0 && self.burst == 0 {
            push(&format!("{key}.burst"), "must be positive".into());
        }
        for (j, p) in self.trusted_proxies.iter().enumerate() {
            if p.trim().parse::<IpAddr>().is_err() {
                push(
                    &format!("{key}.trusted_proxies[{j}]"),
                    format!("{p:?} is not an IP address such as 127.0.0.1"),
                );
            }
        }
        if self.max_connections == 0 {
            push(&format!("{key}.max_connections"), "must be positive".into());
        }
        match (&self.username, &self.password_env) {
            (Some(_), None) => push(
                &format!("{key}.password_env"),
                "required with username".into(),
            ),
            (None, Some(_)) => push(
                &format!("{key}.username"),
                "required with password_env".into(),
            ),
            _ => {}
        }
        for (k, var) in [
            ("password_env", &self.password_env),
            ("path_secret_env", &self.path_secret_env),
        ] {
            if let Some(var) = var {
                match std::env::var(var) {
                    Err(_) => push(
                        &format!("{key}.{k}"),
                        format!("environment variable {var} is not set"),
                    ),
                    Ok(v) if k == "path_secret_env" && !path_safe(&v) => push(
                        &format!("{key}.{k}"),
                        format!(
                            "the value of {var} must be 8 to 128 letters, digits, '-' or '_' (it is a URL path segment)"
                        ),
                    ),
                    Ok(_) => {}
                }
            }
        }
    }

    /// The proxies whose `X-Forwarded-For` is believed.
    pub fn proxies(&self) -> Vec<IpAddr> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| p.trim().parse().ok())
            .collect()
    }
}

/// True when `s` may be a URL path segment secret: 8 to 128 letters,
/// digits, `-` or `_`.
pub(crate) fn path_safe(s: &str) -> bool {
    (8..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl RawZkTerminal {
    /// The terminal's name in metrics: `name`, else its place in the
    /// configuration (`zk_push[0].terminals[1]`).
    pub fn label(&self, source: usize, index: usize) -> String {
        match &self.name {
            Some(n) => n.trim().to_string(),
            None => format!("zk_push[{source}].terminals[{index}]"),
        }
    }
}

impl RawZkPush {
    /// Reports every problem through `push(key, why)`.
    pub fn check(&self, key: &str, push: &mut dyn FnMut(&str, String)) {
        self.listener.check(key, push);
        let mut names = std::collections::HashSet::new();
        for (j, t) in self.terminals.iter().enumerate() {
            let Some(n) = &t.name else { continue };
            let nk = format!("{key}.terminals[{j}].name");
            if n.trim().is_empty() || n.len() > 64 || n.chars().any(char::is_control) {
                push(
                    &nk,
                    format!("{n:?} is not a name of 1 to 64 printable characters"),
                );
            } else if n.trim() == t.sn.trim() {
                push(
                    &nk,
                    "is the serial number; /metrics is open and the serial number is the terminal's credential".into(),
                );
            } else if !names.insert(n.trim()) {
                push(&nk, format!("{n:?} is used twice"));
            }
        }
        if self.terminals.is_empty() {
            push(
                &format!("{key}.terminals"),
                "at least one terminal (sn, timezone) is required: unknown serial numbers are refused".into(),
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (j, t) in self.terminals.iter().enumerate() {
            let tk = format!("{key}.terminals[{j}]");
            if t.sn.trim().is_empty() || t.sn.len() > 64 || t.sn.chars().any(char::is_control) {
                push(
                    &format!("{tk}.sn"),
                    format!("{:?} is not a serial number", t.sn),
                );
            }
            if !seen.insert(t.sn.as_str()) {
                push(&format!("{tk}.sn"), format!("{:?} is listed twice", t.sn));
            }
            check_zone(&tk, &t.timezone, push);
        }
        if self.delay_seconds == 0 {
            push(&format!("{key}.delay_seconds"), "must be positive".into());
        }
    }
}

impl RawHikHttp {
    /// Reports every problem through `push(key, why)`.
    pub fn check(&self, key: &str, push: &mut dyn FnMut(&str, String)) {
        self.listener.check(key, push);
        if !HIK_HTTP_DECODERS.contains(&self.decoder.as_str()) {
            push(
                &format!("{key}.decoder"),
                format!(
                    "{:?} is not one of {}",
                    self.decoder,
                    HIK_HTTP_DECODERS.join(", ")
                ),
            );
        } else if let Err(e) = crate::ingest::decode::Decoder::with_options(
            &self.decoder,
            self.decoder_options.as_ref().unwrap_or(&toml::Table::new()),
        ) {
            push(&format!("{key}.decoder_options"), e.to_string());
        }
        check_zone(key, &self.timezone, push);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattened_listener_keys_and_unknown_keys() {
        let z: RawZkPush = toml::from_str(
            "listen = \"127.0.0.1:0\"\nrate_per_second = 5\n[[terminals]]\nsn = \"A1\"\ntimezone = \"Europe/Istanbul\"\n",
        )
        .unwrap();
        assert_eq!(z.listener.rate_per_second, 5.0);
        assert_eq!(z.listener.max_body_bytes, DEFAULT_MAX_BODY);
        assert_eq!(z.terminals[0].sn, "A1");
        let e = toml::from_str::<RawZkPush>("listen = \"127.0.0.1:0\"\nlisen = 1\n").unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
        let e = toml::from_str::<RawHikHttp>("listen = \"127.0.0.1:0\"\ncolour = 1\n").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let mut problems = Vec::new();
        z.check("source.zk_push[0]", &mut |k, w| {
            problems.push(format!("{k}: {w}"))
        });
        assert!(problems.is_empty(), "{problems:?}");
        let bad: RawHikHttp = toml::from_str("listen = \"nowhere\"\ndecoder = \"json\"\n").unwrap();
        bad.check("source.hik_http[0]", &mut |k, w| {
            problems.push(format!("{k}: {w}"))
        });
        assert_eq!(problems.len(), 2, "{problems:?}");
    }
}
