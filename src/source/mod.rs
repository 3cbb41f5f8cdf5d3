//! Sources: the adapters that receive raw terminal messages (MQTT, serial,
//! HTTP push, and terminals pulled over their own protocols)
//! and hand them to a [`PunchSink`] that decodes and commits them.
//!
//! A source never decodes and never touches the store. Its one promise is
//! at-least-once delivery into the sink: a message is acknowledged to its
//! sender (MQTT PUBACK) only after [`PunchSink::commit`] returned `Ok` for it, so
//! a crash between receipt and commit makes the sender re-send. Doubles are
//! the store's job (every punch has a dedupe key).

pub mod dahua_pull;
pub mod digest;
pub mod hik_http;
pub mod hik_pull;
pub mod mqtt;
pub mod pull;
pub mod push;
pub mod serial;
pub mod zk_pull;
pub mod zk_push;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A message as a source received it, before decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Which configured source it came from, e.g. `mqtt[0]`.
    pub source: Arc<str>,
    /// MQTT topic, when the transport has one.
    pub topic: Option<String>,
    /// The bytes as received.
    pub payload: Vec<u8>,
    /// When attendd received it (the daemon's clock, read at the edge).
    pub received_at: DateTime<Utc>,
}

/// How one source's messages are decoded (the pipeline looks it up by
/// [`Received::source`]).
#[derive(Debug)]
pub struct SourceDecoding {
    /// The decoder.
    pub decoder: crate::ingest::decode::Decoder,
    /// Zone of the devices' local times.
    pub tz: chrono_tz::Tz,
    /// The decoder's options as configured (kept, as JSON, with quarantined payloads
    /// so that `attendd quarantine replay` decodes them the same way).
    pub options: toml::Table,
}

impl SourceDecoding {
    /// What a quarantine row of this source keeps for a replay.
    pub fn replay_info(
        &self,
        source: &str,
        topic: Option<&str>,
        device: Option<&str>,
    ) -> crate::store::ReplayInfo {
        crate::store::ReplayInfo {
            pipeline_source: source.to_string(),
            topic: topic.map(str::to_string),
            decoder: self.decoder.name().to_string(),
            decoder_options: serde_json::to_string(&self.options).unwrap_or_default(),
            device_id: device.map(str::to_string),
            timezone: self.tz.name().to_string(),
        }
    }
}

/// Why a batch could not be committed. The source retries the same batch
/// with backoff and acknowledges nothing until it succeeds.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Where sources deliver: decodes, quarantines what cannot be decoded, and
/// commits punches durably. `Ok` means every message in the batch is safe
/// (stored or quarantined) and may be acknowledged.
pub trait PunchSink: Send + Sync + 'static {
    /// Commits a batch, in order.
    fn commit(&self, batch: &[Received]) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Commits `batch`, retrying with `backoff` until the sink succeeds.
/// Returns false when `stop` fired first (nothing may be acknowledged).
pub async fn commit_with_retry<S: PunchSink>(
    sink: &S,
    batch: &[Received],
    backoff: &mut Backoff,
    stop: &tokio_util::sync::CancellationToken,
    name: &str,
) -> bool {
    loop {
        match sink.commit(batch).await {
            Ok(()) => {
                backoff.reset();
                return true;
            }
            Err(e) => {
                let d = backoff.next_delay();
                tracing::warn!(source = %name, "cannot commit {} message(s): {e}; retrying in {d:.1?}", batch.len());
                tokio::select! {
                    _ = stop.cancelled() => return false,
                    _ = tokio::time::sleep(d) => {}
                }
            }
        }
    }
}

/// Exponential backoff with jitter, for reconnects and commit retries.
#[derive(Clone, Debug)]
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
    seed: u64,
}

impl Backoff {
    /// Starts at `min`, doubles up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            min,
            max,
            seed: 0x2545_F491_4F6C_DD1D ^ (std::process::id() as u64),
        }
    }

    /// The next delay: the current step ±20 %, then the step doubles.
    pub fn next_delay(&mut self) -> Duration {
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = (self.seed % 401) as f64 / 1000.0 - 0.2; // -0.2 ..= 0.2
        base.mul_f64(1.0 + jitter)
    }

    /// Back to the first step (after a success).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let d: Vec<Duration> = (0..6).map(|_| b.next_delay()).collect();
        for (i, base) in [100u64, 200, 400, 800, 1000, 1000].iter().enumerate() {
            let lo = Duration::from_millis(base * 8 / 10);
            let hi = Duration::from_millis(base * 12 / 10);
            assert!(d[i] >= lo && d[i] <= hi, "step {i}: {:?}", d[i]);
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(120));
    }
}
