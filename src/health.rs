//! What `/healthz` reports: the store and every source, each up or down
//! with the reason and since when.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

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
