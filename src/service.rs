//! Telling systemd the truth (`Type=notify`): READY once start-up is
//! complete, STATUS lines a person can read, WATCHDOG pings only while the
//! pipeline shows signs of life, RELOADING and STOPPING around reloads and
//! shutdown. Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::warn;

fn send(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!("cannot notify systemd: {e}");
    }
}

/// Start-up is complete: the store is migrated, sources are running and the
/// HTTP listener is bound.
pub fn ready(status: &str) {
    send(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// A status line for `systemctl status`.
pub fn status(status: &str) {
    send(&[sd_notify::NotifyState::Status(status)]);
}

/// A reload starts; call [`ready`] when it is done (or failed).
pub fn reloading() {
    let mut states = vec![sd_notify::NotifyState::Reloading];
    if let Ok(now) = sd_notify::NotifyState::monotonic_usec_now() {
        states.push(now);
    }
    send(&states);
}

/// Shutdown has begun.
pub fn stopping(status: &str) {
    send(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// A liveness counter that a working loop bumps; the watchdog pings systemd
/// only when it moved since the last check.
#[derive(Clone, Debug, Default)]
pub struct Heartbeat(Arc<AtomicU64>);

impl Heartbeat {
    /// A new counter.
    pub fn new() -> Self {
        Heartbeat::default()
    }

    /// Records a sign of life.
    pub fn beat(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Pings the systemd watchdog at half its interval while every heartbeat
/// keeps moving; stops pinging (so systemd restarts the service) when one
/// stalls. Returns at once when the unit has no `WatchdogSec=`.
pub async fn watchdog(beats: Vec<(String, Heartbeat)>, shutdown: CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = (interval / 2).max(Duration::from_millis(100));
    let mut last: Vec<u64> = beats.iter().map(|(_, b)| b.count()).collect();
    let mut moved_at = vec![std::time::Instant::now(); beats.len()];
    let mut stalled_logged = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let t = std::time::Instant::now();
        for (i, (_, b)) in beats.iter().enumerate() {
            let c = b.count();
            if c != last[i] {
                last[i] = c;
                moved_at[i] = t;
            }
        }
        // Stalled: no sign of life for a whole watchdog interval.
        let stalled: Vec<&str> = beats
            .iter()
            .zip(&moved_at)
            .filter(|(_, at)| t.duration_since(**at) > interval)
            .map(|((n, _), _)| n.as_str())
            .collect();
        if stalled.is_empty() {
            send(&[sd_notify::NotifyState::Watchdog]);
            stalled_logged = false;
        } else if !stalled_logged {
            warn!(
                "no heartbeat from {} for {interval:?}; withholding the watchdog ping",
                stalled.join(", ")
            );
            stalled_logged = true;
        }
    }
}
