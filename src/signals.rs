//! Operating-system signals as one stream of [`Control`] requests.
//!
//! SIGTERM and SIGINT ask for a draining shutdown; SIGHUP asks to re-read
//! the configuration and policy. A second SIGTERM/SIGINT while draining is
//! still a shutdown request; the drain itself is bounded in time.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// What a signal asks the daemon to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Stop: commit what was received, acknowledge it, exit.
    Shutdown,
    /// Re-read configuration and policy; keep the old ones if invalid.
    Reload,
}

/// Starts listening for signals. Fails only when the runtime cannot
/// register the handlers.
pub fn listen() -> std::io::Result<mpsc::Receiver<Control>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let c = tokio::select! {
                _ = term.recv() => Control::Shutdown,
                _ = int.recv() => Control::Shutdown,
                _ = hup.recv() => Control::Reload,
            };
            if tx.send(c).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
