//! The raw configuration of the pull sources (`[[source.zk_pull]]`,
//! `[[source.hik_pull]]`, `[[source.dahua_pull]]`) and its checks; the
//! sources themselves are in `source::zk_pull`, `source::hik_pull` and
//! `source::dahua_pull`.

use chrono_tz::Tz;
use serde::Deserialize;

/// Where a device answers: `http://host[:port][/prefix]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// Port (80 by default).
    pub port: u16,
    /// Path prefix without a trailing slash (usually empty).
    pub prefix: String,
}

impl Endpoint {
    /// Parses `url`; only `http://` (terminals serve plain HTTP on the LAN).
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?} must start with http://"))?;
        let (hostport, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{url:?}: {p:?} is not a port"))?,
            ),
            _ => (hostport, 80),
        };
        if host.is_empty() {
            return Err(format!("{url:?} has no host"));
        }
        Ok(Endpoint {
            host: host.trim_start_matches('[').trim_end_matches(']').into(),
            port,
            prefix: prefix.to_string(),
        })
    }
}

/// `[[source.zk_pull]]` as written. Its Debug hides the comm key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZkPull {
    /// `host:port` of the terminal (port 4370).
    pub address: String,
    /// The device's communication password (0 when none is set).
    #[serde(default)]
    pub comm_key: u32,
    /// Zone of the terminal's wall clock; default the policy's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Seconds between polls.
    #[serde(default = "zk_default_poll")]
    pub poll_seconds: u64,
    /// `tcp` (default, UDP when TCP is refused), `udp` or `tcp-only`.
    #[serde(default = "zk_default_transport")]
    pub transport: String,
    /// Seconds to wait for each answer.
    #[serde(default = "zk_default_timeout")]
    pub timeout_seconds: u64,
    /// First retry delay after a failure, in milliseconds (doubles up to
    /// five minutes, never below `poll_seconds`).
    #[serde(default = "zk_default_retry_ms")]
    pub retry_min_ms: u64,
}

fn zk_default_poll() -> u64 {
    30
}
fn zk_default_transport() -> String {
    "tcp".into()
}
fn zk_default_timeout() -> u64 {
    10
}
fn zk_default_retry_ms() -> u64 {
    1000
}

impl RawZkPull {
    /// Reports every problem through `push(key, why)`.
    pub fn check(&self, key: &str, push: &mut dyn FnMut(&str, String)) {
        if self
            .address
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
            .is_none()
        {
            push(
                &format!("{key}.address"),
                format!(
                    "{:?} is not host:port (the terminal listens on 4370)",
                    self.address
                ),
            );
        }
        if self.poll_seconds == 0 {
            push(&format!("{key}.poll_seconds"), "must be positive".into());
        }
        if self.timeout_seconds == 0 {
            push(&format!("{key}.timeout_seconds"), "must be positive".into());
        }
        if self.retry_min_ms == 0 {
            push(&format!("{key}.retry_min_ms"), "must be positive".into());
        }
        if !["tcp", "udp", "tcp-only"].contains(&self.transport.as_str()) {
            push(
                &format!("{key}.transport"),
                format!("{:?} is not tcp, udp or tcp-only", self.transport),
            );
        }
        if let Some(tz) = &self.timezone
            && tz.parse::<Tz>().is_err()
        {
            push(
                &format!("{key}.timezone"),
                format!("{tz:?} is not an IANA time zone"),
            );
        }
    }
}

/// `[[source.hik_pull]]` as written. Its Debug hides the password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHikPull {
    /// `http://host[:port]`.
    pub url: String,
    /// ISAPI user.
    pub username: String,
    /// The password (prefer `password_env`).
    #[serde(default)]
    pub password: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Zone of the terminal's clock (times without an offset); default the
    /// policy's zone.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Results per `AcsEvent` page (the devices cap it at 30 or so).
    #[serde(default = "hik_default_page")]
    pub page_size: u32,
    /// First retry delay after a failure, in milliseconds (doubles up to
    /// five minutes).
    #[serde(default = "hik_default_retry_ms")]
    pub retry_min_ms: u64,
    /// Seconds without a byte on the live stream (heartbeats included)
    /// before it is taken as dead and reopened.
    #[serde(default = "hik_default_idle")]
    pub idle_seconds: u64,
}

fn hik_default_page() -> u32 {
    30
}
fn hik_default_retry_ms() -> u64 {
    1000
}
fn hik_default_idle() -> u64 {
    90
}

/// Checks the shared keys of an HTTP pull source.
fn check_http(
    key: &str,
    url: &str,
    username: &str,
    password: &Option<String>,
    password_env: &Option<String>,
    timezone: &Option<String>,
    push: &mut dyn FnMut(&str, String),
) {
    if let Err(e) = Endpoint::parse(url) {
        push(&format!("{key}.url"), e);
    }
    if username.trim().is_empty() {
        push(&format!("{key}.username"), "must not be empty".into());
    }
    match (password, password_env) {
        (Some(_), Some(_)) => push(
            &format!("{key}.password"),
            "give password or password_env, not both".into(),
        ),
        (None, None) => push(
            &format!("{key}.password_env"),
            "required (or password)".into(),
        ),
        (None, Some(var)) if std::env::var(var).is_err() => push(
            &format!("{key}.password_env"),
            format!("environment variable {var} is not set"),
        ),
        _ => {}
    }
    if let Some(tz) = timezone
        && tz.parse::<Tz>().is_err()
    {
        push(
            &format!("{key}.timezone"),
            format!("{tz:?} is not an IANA time zone"),
        );
    }
}

impl RawHikPull {
    /// Reports every problem through `push(key, why)`.
    pub fn check(&self, key: &str, push: &mut dyn FnMut(&str, String)) {
        check_http(
            key,
            &self.url,
            &self.username,
            &self.password,
            &self.password_env,
            &self.timezone,
            push,
        );
        if !(1..=1000).contains(&self.page_size) {
            push(&format!("{key}.page_size"), "must be 1 … 1000".into());
        }
        if self.retry_min_ms == 0 {
            push(&format!("{key}.retry_min_ms"), "must be positive".into());
        }
        if self.idle_seconds == 0 {
            push(&format!("{key}.idle_seconds"), "must be positive".into());
        }
    }
}

/// `[[source.dahua_pull]]` as written. Its Debug hides the password.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDahuaPull {
    /// `http://host[:port]`.
    pub url: String,
    /// CGI user.
    pub username: String,
    /// The password (prefer `password_env`).
    #[serde(default)]
    pub password: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Zone of the terminal's clock (`LocaleTime`); default the policy's.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Records per `recordFinder` page.
    #[serde(default = "dahua_default_page")]
    pub page_size: u32,
    /// First retry delay after a failure, in milliseconds (doubles up to
    /// five minutes).
    #[serde(default = "dahua_default_retry_ms")]
    pub retry_min_ms: u64,
    /// Heartbeat interval asked of the device, in seconds; three missed
    /// ones reopen the stream.
    #[serde(default = "dahua_default_heartbeat")]
    pub heartbeat_seconds: u64,
}

fn dahua_default_page() -> u32 {
    100
}
fn dahua_default_retry_ms() -> u64 {
    1000
}
fn dahua_default_heartbeat() -> u64 {
    5
}

impl RawDahuaPull {
    /// Reports every problem through `push(key, why)`.
    pub fn check(&self, key: &str, push: &mut dyn FnMut(&str, String)) {
        check_http(
            key,
            &self.url,
            &self.username,
            &self.password,
            &self.password_env,
            &self.timezone,
            push,
        );
        if !(2..=1024).contains(&self.page_size) {
            push(&format!("{key}.page_size"), "must be 2 … 1024".into());
        }
        if self.retry_min_ms == 0 {
            push(&format!("{key}.retry_min_ms"), "must be positive".into());
        }
        if self.heartbeat_seconds == 0 {
            push(
                &format!("{key}.heartbeat_seconds"),
                "must be positive".into(),
            );
        }
    }
}

/// What a Debug print shows of a secret: whether it is set, never its value.
fn hidden<T>(secret: &Option<T>) -> &'static str {
    if secret.is_some() {
        "<hidden>"
    } else {
        "<none>"
    }
}

impl std::fmt::Debug for RawZkPull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawZkPull")
            .field("address", &self.address)
            .field("comm_key", &hidden(&(self.comm_key != 0).then_some(())))
            .field("timezone", &self.timezone)
            .field("poll_seconds", &self.poll_seconds)
            .field("transport", &self.transport)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("retry_min_ms", &self.retry_min_ms)
            .finish()
    }
}

impl std::fmt::Debug for RawHikPull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawHikPull")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("password_env", &self.password_env)
            .field("timezone", &self.timezone)
            .field("page_size", &self.page_size)
            .field("retry_min_ms", &self.retry_min_ms)
            .field("idle_seconds", &self.idle_seconds)
            .finish()
    }
}

impl std::fmt::Debug for RawDahuaPull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawDahuaPull")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("password_env", &self.password_env)
            .field("timezone", &self.timezone)
            .field("page_size", &self.page_size)
            .field("retry_min_ms", &self.retry_min_ms)
            .field("heartbeat_seconds", &self.heartbeat_seconds)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_prints_hide_passwords_and_comm_keys() {
        let hik: RawHikPull = toml::from_str(
            "url = \"http://10.0.0.2\"\nusername = \"admin\"\npassword = \"s3cret-hik\"",
        )
        .unwrap();
        let dahua: RawDahuaPull = toml::from_str(
            "url = \"http://10.0.0.3\"\nusername = \"admin\"\npassword = \"s3cret-dahua\"",
        )
        .unwrap();
        let zk: RawZkPull =
            toml::from_str("address = \"10.0.0.4:4370\"\ncomm_key = 918273").unwrap();
        let text = format!("{hik:?} {dahua:?} {zk:?}");
        for secret in ["s3cret-hik", "s3cret-dahua", "918273"] {
            assert!(!text.contains(secret), "{secret} printed in {text}");
        }
        assert!(
            text.contains("admin") && text.contains("<hidden>"),
            "{text}"
        );
    }
}
