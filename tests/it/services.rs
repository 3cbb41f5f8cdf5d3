//! Access to the external services some tests need (PostgreSQL, an MQTT
//! broker). Without them those tests skip with a visible message, unless
//! `ATTENDD_REQUIRE_SERVICES=1` (CI), where a missing service fails.

/// The broker URL from `TEST_MQTT_URL`, or `None` (after saying so) when
/// unset and not required.
#[track_caller]
pub fn mqtt_url(test: &str) -> Option<String> {
    match std::env::var("TEST_MQTT_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if required() => {
            panic!("{test}: TEST_MQTT_URL is not set but ATTENDD_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!("skipping {test}: TEST_MQTT_URL not set (e.g. mqtt://127.0.0.1:1883)");
            None
        }
    }
}

/// True when missing services must fail the run.
pub fn required() -> bool {
    std::env::var("ATTENDD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// `host`, `port` of an `mqtt://host:port` URL.
pub fn host_port(url: &str) -> (String, u16) {
    let rest = url.trim_start_matches("mqtt://").trim_end_matches('/');
    let (h, p) = rest.rsplit_once(':').unwrap_or((rest, "1883"));
    (h.to_string(), p.parse().unwrap())
}

/// A name unlikely to collide with another test run on the same broker.
pub fn unique(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{n}", std::process::id())
}
