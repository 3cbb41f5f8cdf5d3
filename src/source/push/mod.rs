//! What the HTTP push sources share (`[[source.zk_push]]`,
//! `[[source.hik_http]]`): the group committer that turns many concurrent
//! uploads into few store transactions ([`commit`]), per-terminal rate
//! limits ([`limit`]), request authentication ([`auth`]), body reading and
//! inflation ([`body`]), binding and serving the listeners ([`mod@start`]), and
//! the sources' names and decodings. Their raw configuration is
//! [`crate::config::push`], re-exported here.
//!
//! The one promise of a push source is the one of every source: a terminal
//! hears "stored" (HTTP 200, `OK`) only after
//! [`PunchSink::commit`](super::PunchSink::commit) returned `Ok` for what it sent.
//! Everything else (a full queue, a failed commit, a rate limit) is an
//! HTTP error, after which the terminal keeps its records and sends them
//! again.

pub mod auth;
pub mod body;
pub mod commit;
pub mod limit;
pub mod start;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use self::auth::{Auth, base64};
pub use self::body::{inflate, read_body};
pub use self::commit::{Committer, Stamp};
pub use self::limit::{MAX_RATE_KEYS, RateLimiter, peer_key};
pub use self::start::{ListenError, PushShared, start};
pub use crate::config::push::{
    DEFAULT_MAX_BODY, HIK_HTTP_DECODERS, RawHikHttp, RawListener, RawZkPush, RawZkTerminal,
};

/// The environment variable that delays every push commit by that many
/// milliseconds. Fault injection for tests (kill the daemon between
/// receipt and commit); never set it in production.
pub const COMMIT_DELAY_ENV: &str = "ATTENDD_FAULT_PUSH_COMMIT_DELAY_MS";

/// Pairs of (what a label would say, what it says instead).
pub type Renames = Vec<(String, String)>;

/// What `/metrics` shows for the configured push terminals: (device id,
/// name) and (source name, `zk_push[I]:NAME`, or `zk_push[I].terminals[J]`
/// without a name), so that no serial number appears in a label.
pub fn metric_names(sources: &crate::config::RawSources) -> (Renames, Renames) {
    let mut devices = Vec::new();
    let mut names = Vec::new();
    for (i, z) in sources.zk_push.iter().enumerate() {
        for (j, t) in z.terminals.iter().enumerate() {
            let label = t.label(i, j);
            devices.push((t.sn.clone(), label.clone()));
            let shown = match &t.name {
                Some(_) => super::zk_push::source_name(i, &label),
                None => label.clone(),
            };
            // The serial number is the terminal's only credential: it is
            // never shown on /metrics, for attendance or access-control
            // (rtlog) uploads alike.
            names.push((
                super::zk_push::rtlog_source_name(i, &t.sn),
                format!("{shown}:rtlog"),
            ));
            names.push((super::zk_push::source_name(i, &t.sn), shown));
        }
    }
    (devices, names)
}

/// Remembers which refused keys were already logged, so a misconfigured
/// terminal polling every few seconds logs once, not forever.
#[derive(Debug, Default)]
pub struct LogOnce {
    seen: Mutex<std::collections::HashSet<String>>,
}

impl LogOnce {
    /// True the first time `key` is seen (up to 4096 keys are kept).
    pub fn first(&self, key: &str) -> bool {
        let mut s = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if s.contains(key) || s.len() >= 4096 {
            return false;
        }
        s.insert(key.to_string())
    }
}

/// Source names with their decoding, and source names with their device id.
pub type PushDecodings = (
    Vec<(Arc<str>, super::SourceDecoding)>,
    HashMap<Arc<str>, String>,
);

/// The pipeline decodings of the push sources, and the device id of each
/// ZKTeco terminal's source name (its serial number).
pub fn decodings(
    sources: &crate::config::RawSources,
    default_tz: chrono_tz::Tz,
) -> Result<PushDecodings, String> {
    use crate::ingest::decode::{Decoder, ZkLayout, ZkOptions};
    let zone = |tz: &Option<String>| {
        tz.as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(default_tz)
    };
    let mut out = Vec::new();
    let mut devices = HashMap::new();
    for (i, z) in sources.zk_push.iter().enumerate() {
        for t in &z.terminals {
            let name: Arc<str> = Arc::from(super::zk_push::source_name(i, &t.sn).as_str());
            let mut options = toml::Table::new();
            options.insert("layout".into(), toml::Value::String("push".into()));
            out.push((
                name.clone(),
                super::SourceDecoding {
                    decoder: Decoder::ZkAttlog(ZkOptions {
                        layout: ZkLayout::Push,
                    }),
                    tz: zone(&t.timezone),
                    options,
                },
            ));
            devices.insert(name, t.sn.clone());
            // Access-control firmware's `table=rtlog` uploads.
            let rtlog: Arc<str> = Arc::from(super::zk_push::rtlog_source_name(i, &t.sn).as_str());
            out.push((
                rtlog.clone(),
                super::SourceDecoding {
                    decoder: Decoder::ZkRtlog(Default::default()),
                    tz: zone(&t.timezone),
                    options: toml::Table::new(),
                },
            ));
            devices.insert(rtlog, t.sn.clone());
        }
    }
    for (i, h) in sources.hik_http.iter().enumerate() {
        let decoder = Decoder::with_options(
            &h.decoder,
            h.decoder_options.as_ref().unwrap_or(&toml::Table::new()),
        )
        .map_err(|e| format!("source.hik_http[{i}].decoder: {e}"))?;
        out.push((
            Arc::from(super::hik_http::source_name(i).as_str()),
            super::SourceDecoding {
                decoder,
                tz: zone(&h.timezone),
                options: h.decoder_options.clone().unwrap_or_default(),
            },
        ));
    }
    Ok((out, devices))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 13: a terminal's serial number (its only credential) never
    /// reaches /metrics, for access-control (rtlog) uploads too.
    #[test]
    fn metric_names_hide_serial_numbers_of_every_upload_kind() {
        let sources: crate::config::RawSources = toml::from_str(
            "[[zk_push]]\nlisten = \"127.0.0.1:0\"\n[[zk_push.terminals]]\nsn = \"CQZ7231460021\"\nname = \"front-door\"\n",
        )
        .unwrap();
        let (_, names) = metric_names(&sources);
        for source in [
            super::super::zk_push::source_name(0, "CQZ7231460021"),
            super::super::zk_push::rtlog_source_name(0, "CQZ7231460021"),
        ] {
            let shown = names
                .iter()
                .find(|(from, _)| *from == source)
                .map(|(_, to)| to.clone());
            let shown = shown.unwrap_or_else(|| panic!("{source} has no shown name"));
            assert!(!shown.contains("CQZ7231460021"), "{shown}");
        }
    }
}
