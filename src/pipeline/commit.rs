//! The commit path: a batch is decoded, attributed and sorted into
//! punches, quarantine rows and ignored events ([`Pipeline::prepare`]),
//! then written in one transaction ([`Pipeline::store_prepared`]); only
//! then are metrics counted and the days touched marked for
//! re-classification.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use super::{Pipeline, PullAck, STALL_FILE_ENV, SourceDecoding};
use crate::ingest::decode::{DecodeContext, Decoded, DecodedPunch};
use crate::source::{PunchSink, Received, SinkError};
use crate::store::{Inserted, NewPunch, NewQuarantine, QuarantineKind};

/// Ignored events of one commit, counted by (source, kind) and logged
/// once per (device, kind): a 2 MiB upload of header lines costs a few map
/// updates per line, not a metric and a log lookup each.
#[derive(Default)]
struct IgnoredTally<'a> {
    kinds: HashMap<String, String>,
    counts: BTreeMap<(&'a str, String), f64>,
    first: BTreeMap<(String, String), (&'a str, String)>,
}

impl<'a> IgnoredTally<'a> {
    fn add(
        &mut self,
        source: &'a str,
        device: Option<&str>,
        ignored: &[crate::ingest::decode::Ignored],
    ) {
        for i in ignored {
            let kind = match self.kinds.get(&i.reason) {
                Some(k) => k.clone(),
                None => {
                    let k = crate::quarantine::ignored_kind(&i.reason);
                    if self.kinds.len() < 1024 {
                        self.kinds.insert(i.reason.clone(), k.clone());
                    }
                    k
                }
            };
            let key = (device.unwrap_or("-").to_string(), kind.clone());
            if self.first.len() < 1024 && !self.first.contains_key(&key) {
                self.first.insert(key, (source, i.reason.clone()));
            }
            *self.counts.entry((source, kind)).or_default() += 1.0;
        }
    }
}

impl Pipeline {
    /// Counts ignored events by kind and logs the first of each kind per
    /// device.
    fn count_ignored(&self, tally: IgnoredTally<'_>) {
        for ((source, kind), n) in tally.counts {
            self.metrics.add(
                "attendd_ignored_events_total",
                &[("source", source), ("kind", &kind)],
                n,
            );
        }
        for ((dev, kind), (source, reason)) in tally.first {
            if self.ignored_logged.first(&format!("{dev}\u{1f}{kind}")) {
                info!(
                    source = %source,
                    device = %dev,
                    "ignored an event that is not a punch: {reason} (counted in attendd_ignored_events_total{{kind={kind:?}}}; logged once per device and kind)",
                );
            }
        }
    }
}

/// A batch decoded and attributed, ready to store.
struct Prepared<'b> {
    punches: Vec<NewPunch>,
    /// The source of each punch: a batch may mix sources (HTTP push).
    punch_sources: Vec<&'b str>,
    quarantine: Vec<NewQuarantine>,
    last_seen: HashMap<String, DateTime<Utc>>,
    /// Ignored events, counted once the batch is committed (a failed
    /// commit is read or sent again and would count them twice).
    ignored: IgnoredTally<'b>,
}

/// A batch being prepared: [`Prepared`] with the quarantine rows still
/// bounded per upload.
struct Preparing<'b> {
    punches: Vec<NewPunch>,
    punch_sources: Vec<&'b str>,
    quarantine: crate::quarantine::Bounded,
    last_seen: HashMap<String, DateTime<Utc>>,
    ignored: IgnoredTally<'b>,
}

/// One message of a batch (`'b`, the batch's lifetime), with what its
/// quarantine rows need.
struct Message<'b, 's> {
    r: &'b Received,
    /// Its source's decoding.
    src: &'s SourceDecoding,
    /// `SOURCE[:TOPIC]`, the origin its punches and rows are stored under.
    origin: String,
    /// The device: the pull's, else the one the source stands for.
    device: Option<&'s str>,
    /// The upload it belongs to (quarantine rows are bounded per upload).
    upload: crate::quarantine::Upload,
}

impl Message<'_, '_> {
    /// A quarantine row for (part of) the message, with what a replay
    /// needs; built only for rows that are kept.
    fn quarantined(
        &self,
        label: String,
        payload: &[u8],
        reason: String,
        kind: QuarantineKind,
    ) -> NewQuarantine {
        NewQuarantine {
            source: label,
            payload: crate::quarantine::strip_photos(payload),
            reason,
            kind,
            replay: Some(self.src.replay_info(
                &self.r.source,
                self.r.topic.as_deref(),
                self.device,
            )),
            received_at: Some(self.r.received_at),
        }
    }
}

impl Pipeline {
    /// Commits a pull source's batch and its cursor in one transaction
    /// (quarantined parts first: re-quarantining on a retry is harmless,
    /// losing them is not). `Ok` means the punches and the cursor are
    /// durable.
    pub async fn commit_pull(
        &self,
        batch: &[Received],
        ack: &PullAck<'_>,
    ) -> Result<(), SinkError> {
        self.wait_stall(batch.len()).await;
        let prepared = self.prepare(batch, Some(ack.device), ack.event_suffix);
        self.store_prepared(batch, prepared, Some(ack)).await
    }

    /// The stored cursor of a pull source on a terminal.
    pub async fn pull_cursor(
        &self,
        source: &str,
        device: &str,
    ) -> Result<Option<String>, SinkError> {
        self.store
            .pull_cursor(source, device)
            .await
            .map_err(|e| SinkError(e.to_string()))
    }

    async fn wait_stall(&self, n: usize) {
        if let Some(f) = &self.stall_file {
            let mut logged = false;
            while f.exists() {
                if !logged {
                    warn!(
                        "fault injection ({STALL_FILE_ENV}): commit of {n} message(s) stalled while {} exists",
                        f.display()
                    );
                    logged = true;
                }
                self.heartbeat.beat();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// Decodes and attributes a batch: every message ends as punches,
    /// quarantine rows or ignored events.
    fn prepare<'b>(
        &self,
        batch: &'b [Received],
        device: Option<&str>,
        event_suffix: Option<&str>,
    ) -> Prepared<'b> {
        let mut acc = Preparing {
            punches: Vec::with_capacity(batch.len()),
            punch_sources: Vec::with_capacity(batch.len()),
            quarantine: crate::quarantine::Bounded::default(),
            ignored: IgnoredTally::default(),
            last_seen: HashMap::new(),
        };
        for (i, r) in batch.iter().enumerate() {
            self.prepare_message(i, r, device, event_suffix, &mut acc);
        }
        Prepared {
            punches: acc.punches,
            punch_sources: acc.punch_sources,
            quarantine: acc.quarantine.finish(),
            last_seen: acc.last_seen,
            ignored: acc.ignored,
        }
    }

    /// One message of a batch (the `i`th): decoded with its source's
    /// decoder, bad records quarantined, ignored events tallied, punches
    /// attributed.
    fn prepare_message<'b>(
        &self,
        i: usize,
        r: &'b Received,
        device: Option<&str>,
        event_suffix: Option<&str>,
        acc: &mut Preparing<'b>,
    ) {
        // The lines of one HTTP upload (or serial read) share their
        // source and arrival time; an MQTT message stands alone. At
        // most 100 bad records of one upload are kept one by one.
        let upload = (r.source.clone(), r.received_at, r.topic.as_ref().map(|_| i));
        let Some(src) = self.sources.get(&r.source) else {
            acc.quarantine.push(&upload, || NewQuarantine {
                source: r.source.to_string(),
                payload: crate::quarantine::strip_photos(&r.payload),
                reason: "no decoder configured for this source".into(),
                received_at: Some(r.received_at),
                ..Default::default()
            });
            return;
        };
        let m = Message {
            r,
            src,
            origin: match &r.topic {
                Some(t) => format!("{}:{t}", r.source),
                None => r.source.to_string(),
            },
            device: device.or_else(|| self.devices.get(&r.source).map(String::as_str)),
            upload,
        };
        let Some(decoded) = self.decode(&m, &mut acc.quarantine) else {
            return;
        };
        // The device, as far as it is known: the payload's, the
        // source's, else the MQTT topic it came on.
        let payload_device = decoded
            .punches
            .first()
            .and_then(|p| p.device_id.as_deref())
            .or(m.device)
            .or(r.topic.as_deref());
        acc.ignored.add(&r.source, payload_device, &decoded.ignored);
        for w in &decoded.warnings {
            warn!(source = %r.source, "{w}");
        }
        self.attribute(&m, decoded.punches, event_suffix, acc);
    }

    /// Decodes a message; an undecodable payload, and each bad record of
    /// one that decodes, is quarantined.
    fn decode(
        &self,
        m: &Message<'_, '_>,
        quarantine: &mut crate::quarantine::Bounded,
    ) -> Option<Decoded> {
        let (r, src) = (m.r, m.src);
        let mut cx = DecodeContext::new(src.tz, r.received_at);
        if let Some(t) = &r.topic {
            cx = cx.with_topic(t);
        }
        if let Some(d) = m.device {
            cx = cx.with_device(d);
        }
        let decoded = match src.decoder.decode(&r.payload, &cx) {
            Ok(d) => d,
            Err(e) => {
                self.metrics
                    .add("attendd_quarantined_total", &[("source", &r.source)], 1.0);
                quarantine.push(&m.upload, || {
                    m.quarantined(
                        m.origin.clone(),
                        &r.payload,
                        format!("{}: {e}", src.decoder.name()),
                        QuarantineKind::Undecodable,
                    )
                });
                return None;
            }
        };
        for le in &decoded.line_errors {
            self.metrics
                .add("attendd_quarantined_total", &[("source", &r.source)], 1.0);
            quarantine.push(&m.upload, || {
                m.quarantined(
                    format!("{} line {}", m.origin, le.line),
                    le.text.as_bytes(),
                    format!("{}: {}", src.decoder.name(), le.error),
                    QuarantineKind::Undecodable,
                )
            });
        }
        Some(decoded)
    }

    /// Attributes a message's punches to employees. Unknown identities
    /// leave one quarantine row that holds the payload once (a replay
    /// re-decodes all of it), however many of its punches wait for HR.
    fn attribute<'b>(
        &self,
        m: &Message<'b, '_>,
        punches: Vec<DecodedPunch>,
        event_suffix: Option<&str>,
        acc: &mut Preparing<'b>,
    ) {
        let r = m.r;
        // The raw text punches keep (photos stripped), only when there
        // are punches.
        let raw = if punches.is_empty() {
            String::new()
        } else {
            String::from_utf8_lossy(&crate::quarantine::strip_photos(
                &r.payload[..r.payload.len().min(64 * 1024)],
            ))
            .chars()
            .take(2048)
            .collect::<String>()
        };
        let mut unknown: Option<(String, usize)> = None;
        for p in punches {
            if let Some(d) = &p.device_id {
                acc.last_seen.insert(d.clone(), r.received_at);
            }
            self.check_clock_skew(&p, r.received_at);
            let employee_id = match self.resolve(&p.identity, p.device_id.as_deref()) {
                Ok(e) => e,
                Err(why) => {
                    self.metrics.add(
                        "attendd_punches_total",
                        &[("source", &r.source), ("outcome", "unknown_employee")],
                        1.0,
                    );
                    match &mut unknown {
                        Some((_, more)) => *more += 1,
                        None => unknown = Some((why, 0)),
                    }
                    continue;
                }
            };
            acc.punch_sources.push(&r.source);
            let event_id = match (p.event_id, event_suffix) {
                (Some(e), Some(sfx)) => Some(format!("{e}{sfx}")),
                (e, _) => e,
            };
            acc.punches.push(NewPunch {
                employee_id,
                identity: p.identity.as_str().to_string(),
                time: p.at,
                device_id: p.device_id,
                event_id,
                source: m.origin.clone(),
                raw: Some(raw.clone()),
                direction: p.kind.state().map(String::from),
            });
        }
        if let Some((why, more)) = unknown {
            let why = if more == 0 {
                why
            } else {
                format!("{why} (and {more} more unknown in this payload)")
            };
            // Unknown people are punches waiting for HR: never cut
            // short by the per-upload bound.
            acc.quarantine.push_always(m.quarantined(
                m.origin.clone(),
                &r.payload,
                why,
                QuarantineKind::Unknown,
            ));
        }
    }

    /// A punch stamped further ahead of its arrival than allowed: the
    /// terminal's clock runs ahead. Counted, flagged for the scheduler and
    /// logged; the punch is stored as stamped.
    fn check_clock_skew(&self, p: &DecodedPunch, received_at: DateTime<Utc>) {
        if let Some(skew) = p.clock_skew(received_at)
            && skew > self.max_future_skew
        {
            let dev = p.device_id.clone().unwrap_or_default();
            self.metrics
                .add("attendd_clock_skew_flags_total", &[("device", &dev)], 1.0);
            self.drift.flag(&dev, received_at, skew.num_seconds());
            warn!(
                device = %dev,
                "punch stamped {}s in the future: the terminal's clock runs ahead (stored as stamped)",
                skew.num_seconds()
            );
        }
    }

    async fn store_prepared(
        &self,
        batch: &[Received],
        prepared: Prepared<'_>,
        pull: Option<&PullAck<'_>>,
    ) -> Result<(), SinkError> {
        let Prepared {
            punches,
            punch_sources,
            quarantine,
            last_seen,
            ignored,
        } = prepared;
        let started = std::time::Instant::now();
        let written = async {
            if let Some(ack) = pull {
                self.store
                    .store_pull_read(
                        &punches,
                        &quarantine,
                        ack.source,
                        ack.device,
                        ack.cursor,
                        crate::clock::now(),
                    )
                    .await
            } else {
                let outcomes = if punches.is_empty() {
                    Vec::new()
                } else {
                    self.store
                        .insert_punches(&punches, crate::clock::now())
                        .await?
                };
                self.store
                    .quarantine_many(&quarantine, crate::clock::now())
                    .await?;
                Ok::<_, crate::store::StoreError>(outcomes)
            }
        }
        .await;
        if let Some(h) = &self.health {
            h.store_written(
                written.as_ref().map(|_| ()).map_err(|e| e.to_string()),
                self.store.engine(),
                crate::clock::now(),
            );
        }
        let outcomes = written.map_err(|e| {
            self.metrics.add("attendd_store_errors_total", &[], 1.0);
            SinkError(e.to_string())
        })?;
        self.count_ignored(ignored);
        self.metrics.observe_commit(started.elapsed().as_secs_f64());
        self.metrics.add("attendd_store_commits_total", &[], 1.0);
        let mut counts: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for ((p, o), src) in punches.iter().zip(&outcomes).zip(&punch_sources) {
            let c = counts.entry(src).or_default();
            if let Inserted::New(_) = o {
                c.0 += 1.0;
                self.mark_dirty(&p.employee_id, p.time);
            } else {
                c.1 += 1.0;
            }
        }
        if counts.is_empty()
            && let Some(r) = batch.first()
        {
            counts.insert(&r.source, (0.0, 0.0));
        }
        for (src, (new, duplicate)) in counts {
            self.metrics.add(
                "attendd_punches_total",
                &[("source", src), ("outcome", "new")],
                new,
            );
            self.metrics.add(
                "attendd_punches_total",
                &[("source", src), ("outcome", "duplicate")],
                duplicate,
            );
        }
        for (d, t) in last_seen {
            self.metrics.set(
                "attendd_terminal_last_seen_seconds",
                &[("device", &d)],
                t.timestamp() as f64,
            );
        }
        self.heartbeat.beat();
        Ok(())
    }
}

impl crate::source::pull::PullSink for Pipeline {
    fn commit_pull<'a>(
        &'a self,
        batch: &'a [Received],
        ack: &'a PullAck<'a>,
    ) -> crate::source::pull::BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(Pipeline::commit_pull(self, batch, ack))
    }

    fn pull_cursor<'a>(
        &'a self,
        source: &'a str,
        device: &'a str,
    ) -> crate::source::pull::BoxFuture<'a, Result<Option<String>, SinkError>> {
        Box::pin(Pipeline::pull_cursor(self, source, device))
    }
}

impl PunchSink for Pipeline {
    async fn commit(&self, batch: &[Received]) -> Result<(), SinkError> {
        self.wait_stall(batch.len()).await;
        let prepared = self.prepare(batch, None, None);
        self.store_prepared(batch, prepared, None).await
    }
}
