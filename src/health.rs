//! What `/healthz` reports: the store and every source, each up or down
//! with the reason and since when.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The component name of the store.
pub const STORE: &str = "store";

/// One component's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ComponentState {
    /// Working.
    pub up: bool,
    /// Since when it has been in this state.
    pub since: DateTime<Utc>,
    /// Why it is down (or what it is connected to).
    pub detail: String,
}

/// Every component's state, shared by the components and the HTTP server.
#[derive(Debug, Default)]
pub struct Health {
    components: Mutex<BTreeMap<String, ComponentState>>,
}

impl Health {
    /// Records a component's state; `since` changes only when `up` does.
    pub fn set(&self, name: &str, up: bool, detail: impl Into<String>, now: DateTime<Utc>) {
        let mut m = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let detail = detail.into();
        match m.get_mut(name) {
            Some(c) if c.up == up => c.detail = detail,
            _ => {
                m.insert(
                    name.to_string(),
                    ComponentState {
                        up,
                        since: now,
                        detail,
                    },
                );
            }
        }
    }

    /// Records the outcome of a write to the store (`store`): a failed
    /// write marks it down with the driver's error (a full disk, a lost
    /// database server), the next successful one marks it up again.
    ///
    /// A change is logged once and told to systemd as the unit's STATUS
    /// line; the watchdog keeps being fed, since a restart would not free
    /// any space and writes resume by themselves when it returns.
    pub fn store_written(&self, result: Result<(), String>, engine: &str, now: DateTime<Utc>) {
        let was_up = self.store().is_none_or(|s| s.up);
        match result {
            Ok(()) => {
                self.set(STORE, true, engine, now);
                if !was_up {
                    tracing::info!("store: writes succeed again");
                    crate::service::status("running: the store writes again");
                }
            }
            Err(e) => {
                let detail = format!("cannot write: {e}");
                if was_up {
                    tracing::error!("store: {detail}");
                    crate::service::status(&format!("degraded: the store {detail}"));
                }
                self.set(STORE, false, detail, now);
            }
        }
    }

    /// The store's state, when it was ever recorded.
    pub fn store(&self) -> Option<ComponentState> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(STORE)
            .cloned()
    }

    /// A copy of every state.
    pub fn snapshot(&self) -> BTreeMap<String, ComponentState> {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// True when every component is up.
    pub fn all_up(&self) -> bool {
        self.components
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .all(|c| c.up)
    }
}
