//! The outbox: alerts and daily summaries on their way to sinks, and the
//! record of closed days.
//!
//! A message is stored once under a unique key (`absence/2026-03-02/E001`),
//! with one delivery row per sink configured when it was decided. The
//! deliverer marks a delivery sent only after the sink accepted it, so each
//! message reaches each sink at least once across restarts and outages,
//! and is recorded as sent once; every message carries its key as `id` for
//! receivers to dedupe.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{Store, StoreError, backend_pg, backend_sqlite, dispatch};

/// A message to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    /// Unique key; also the `id` receivers dedupe by.
    pub key: String,
    /// `absence`, `arrival`, `summary`, `terminal`.
    pub kind: String,
    /// The message as JSON.
    pub payload: serde_json::Value,
    /// Names of the sinks that should receive it.
    pub sinks: Vec<String>,
}

/// A delivery that is due.
#[derive(Clone, Debug, PartialEq)]
pub struct Due {
    /// Outbox row.
    pub outbox_id: i64,
    /// Sink name.
    pub sink: String,
    /// Attempts so far.
    pub attempts: u32,
    /// Message key.
    pub key: String,
    /// Message kind.
    pub kind: String,
    /// Message.
    pub payload: serde_json::Value,
}

/// A stored message with its delivery state, for `attendd outbox`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutboxRow {
    /// Row id.
    pub id: i64,
    /// Unique key.
    pub key: String,
    /// Kind.
    pub kind: String,
    /// The message.
    pub payload: serde_json::Value,
    /// When it was decided.
    pub created_at: DateTime<Utc>,
    /// Sinks it is addressed to.
    pub sinks: i64,
    /// Sinks that accepted it.
    pub sent: i64,
    /// The last error of a delivery still pending.
    pub last_error: Option<String>,
}

/// A closed day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayClose {
    /// The date.
    pub date: NaiveDate,
    /// 0 for the first close, +1 per correction.
    pub revision: u32,
    /// Hash of the published summary's content.
    pub summary_hash: String,
    /// When the day first closed.
    pub closed_at: DateTime<Utc>,
    /// When the summary was last published.
    pub updated_at: DateTime<Utc>,
}

impl Store {
    /// Stores a message unless one with its key exists. True when new.
    pub async fn enqueue(&self, msg: &NewMessage, now: DateTime<Utc>) -> Result<bool, StoreError> {
        dispatch!(self, enqueue(msg, None, now))
    }

    /// Stores several messages in one transaction (a scheduler tick's
    /// alerts: the deliverer sees all of them or none, so a robot gets them
    /// in one message per supervisor). True for each that is new.
    pub async fn enqueue_many(
        &self,
        msgs: &[NewMessage],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        dispatch!(self, enqueue_many(msgs, now))
    }

    /// Stores a day's summary message and its close record in one
    /// transaction. True when the message is new.
    pub async fn enqueue_summary(
        &self,
        msg: &NewMessage,
        close: &DayClose,
        summary: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        dispatch!(self, enqueue(msg, Some((close, summary)), now))
    }

    /// Which of `keys` are stored messages.
    pub async fn outbox_keys(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        dispatch!(self, outbox_keys(keys))
    }

    /// Claims up to `limit` deliveries due at `now` for this process until
    /// `lease_until` (their next attempt moves there), so that instances
    /// sharing the store do not send the same message twice. A claim
    /// ends with [`Store::outbox_sent`] or [`Store::outbox_failed`], or the
    /// lease runs out (the process died) and the delivery is due again.
    pub async fn outbox_claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<Due>, StoreError> {
        dispatch!(self, outbox_claim(now, lease_until, limit))
    }

    /// Records a delivery as sent at `at`.
    pub async fn outbox_sent(
        &self,
        outbox_id: i64,
        sink: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, outbox_mark(outbox_id, sink, Ok(at)))
    }

    /// Records a failed attempt and when to try again.
    pub async fn outbox_failed(
        &self,
        outbox_id: i64,
        sink: &str,
        next: DateTime<Utc>,
        why: &str,
    ) -> Result<(), StoreError> {
        dispatch!(self, outbox_mark(outbox_id, sink, Err((next, why))))
    }

    /// Moves a claimed delivery's next attempt to `next` without counting
    /// an attempt: the sink is pacing itself (a robot's rate limit), not
    /// failing.
    pub async fn outbox_defer(
        &self,
        outbox_id: i64,
        sink: &str,
        next: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        dispatch!(self, outbox_defer(outbox_id, sink, next))
    }

    /// The distinct times at which `sink` accepted deliveries at or after
    /// `since`: one per robot message (an aggregated message marks all
    /// its alerts sent at one instant), so a restarted daemon knows how
    /// much of a robot's rate the last minute used.
    pub async fn outbox_sent_since(
        &self,
        sink: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        dispatch!(self, outbox_sent_since(sink, since))
    }

    /// Sets each listed employee's `supervisor_contact` (`None` clears it).
    pub async fn set_supervisor_contacts(
        &self,
        rows: &[(String, Option<String>)],
    ) -> Result<(), StoreError> {
        dispatch!(self, set_supervisor_contacts(rows))
    }

    /// Employee id → the contact their supervisor's alerts @-mention.
    pub async fn supervisor_contacts(
        &self,
    ) -> Result<std::collections::HashMap<String, String>, StoreError> {
        dispatch!(self, supervisor_contacts())
    }

    /// Deliveries not yet accepted, per sink name.
    pub async fn outbox_pending(&self) -> Result<Vec<(String, i64)>, StoreError> {
        dispatch!(self, outbox_pending())
    }

    /// The latest messages, newest first, optionally of one kind.
    pub async fn outbox(
        &self,
        kind: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        dispatch!(self, outbox_list(kind, limit))
    }

    /// The close record of `date`, if it closed.
    pub async fn day_close(&self, date: NaiveDate) -> Result<Option<DayClose>, StoreError> {
        dispatch!(self, day_close(date))
    }

    /// Saves a close record with the summary as published, or with `None`
    /// only its `updated_at` (the last check).
    pub async fn save_day_close(
        &self,
        c: &DayClose,
        summary: Option<&str>,
    ) -> Result<(), StoreError> {
        dispatch!(self, save_day_close(c, summary))
    }

    /// How many verdicts of `date` changed after `since`.
    pub async fn verdicts_changed_since(
        &self,
        date: NaiveDate,
        since: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        dispatch!(self, verdicts_changed_since(date, since))
    }

    /// Each terminal with punches stamped after `since`, and when the last
    /// of them was received.
    pub async fn devices_last_seen(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        dispatch!(self, devices_last_seen(since))
    }

    /// Quarantines several payloads in one transaction.
    pub async fn quarantine_many(
        &self,
        rows: &[super::NewQuarantine],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        dispatch!(self, add_quarantine_many(rows, now))
    }

    /// Quarantined payloads received at or after `since`.
    pub async fn quarantine_since(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        dispatch!(self, quarantine_since(since))
    }
}
