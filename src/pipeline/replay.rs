//! Quarantine replay: `attendd quarantine replay` and `POST
//! /api/v1/quarantine/replay` decode quarantined payloads again with
//! today's employees and aliases, store what now resolves (the store's
//! dedupe keys make it once), mark the row resolved with an audit row, and
//! re-classify the days touched. What a quarantine row keeps is
//! [`crate::quarantine`]'s.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;

use super::{Directory, SourceDecoding};
use crate::domain::time::to_local;
use crate::ingest::decode::{DecodeContext, Decoder};
use crate::store::{Inserted, NewPunch, QuarantineKind, QuarantineRow, Store, StoreError};

/// Which rows a replay takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every unresolved row.
    All,
    /// These rows.
    Ids(Vec<i64>),
}

/// What a replay did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayReport {
    /// Rows looked at.
    pub examined: usize,
    /// Rows whose content is now stored (or deliberately ignored); marked
    /// resolved, audited.
    pub resolved: usize,
    /// Punches stored now.
    pub stored: usize,
    /// Punches that were already stored.
    pub duplicates: usize,
    /// Rows that still do not resolve, with why.
    pub unresolved: Vec<(i64, String)>,
    /// Rows not replayed (already resolved, summaries, unknown ids), with why.
    pub skipped: Vec<(i64, String)>,
    /// Employee-days re-classified.
    pub evaluated: usize,
}

/// How to decode rows: the sources of the configuration (for rows kept
/// before replay information existed, with `--source NAME`).
#[derive(Debug, Default)]
pub struct Decodings {
    /// Source name → decoding.
    pub sources: HashMap<Arc<str>, SourceDecoding>,
    /// Source name → device id (ZKTeco push terminals).
    pub devices: HashMap<Arc<str>, String>,
}

impl Decodings {
    /// The decodings of every source of `config`.
    pub fn from_config(config: &crate::config::Config) -> Result<Decodings, String> {
        let empty = toml::Table::new();
        let tz_of = |tz: &Option<String>| {
            tz.as_deref()
                .and_then(|t| t.parse().ok())
                .unwrap_or(config.policy.tz)
        };
        let mut sources = HashMap::new();
        for (i, m) in config.sources.mqtt.iter().enumerate() {
            let options = m.decoder_options.clone().unwrap_or_default();
            let decoder = Decoder::with_options(&m.decoder, &options)
                .map_err(|e| format!("source.mqtt[{i}].decoder: {e}"))?;
            sources.insert(
                Arc::from(format!("mqtt[{i}]").as_str()),
                SourceDecoding {
                    decoder,
                    tz: tz_of(&m.timezone),
                    options,
                },
            );
        }
        for (i, s) in config.sources.serial.iter().enumerate() {
            let options = s.decoder_options.clone().unwrap_or_default();
            let decoder =
                Decoder::with_options(&s.decoder, s.decoder_options.as_ref().unwrap_or(&empty))
                    .map_err(|e| format!("source.serial[{i}].decoder: {e}"))?;
            sources.insert(
                Arc::from(format!("serial[{i}]").as_str()),
                SourceDecoding {
                    decoder,
                    tz: tz_of(&s.timezone),
                    options,
                },
            );
        }
        let (push, devices) = crate::source::push::decodings(&config.sources, config.policy.tz)?;
        sources.extend(push);
        Ok(Decodings { sources, devices })
    }
}

/// One row's decoding: the decoder, zone, device, topic and the pipeline
/// source name punches are stored under.
struct RowDecoding {
    decoder: Decoder,
    tz: chrono_tz::Tz,
    device: Option<String>,
    topic: Option<String>,
    source: String,
}

fn row_decoding(
    row: &QuarantineRow,
    fallback: Option<&str>,
    d: &Decodings,
) -> Result<RowDecoding, String> {
    if let Some(info) = &row.replay {
        let options: toml::Table = if info.decoder_options.trim().is_empty() {
            toml::Table::new()
        } else {
            serde_json::from_str(&info.decoder_options)
                .map_err(|e| format!("stored decoder options do not parse: {e}"))?
        };
        let decoder = Decoder::with_options(&info.decoder, &options).map_err(|e| e.to_string())?;
        let tz = info
            .timezone
            .parse()
            .map_err(|_| format!("stored zone {:?} is not an IANA zone", info.timezone))?;
        return Ok(RowDecoding {
            decoder,
            tz,
            device: info.device_id.clone(),
            topic: info.topic.clone(),
            source: info.pipeline_source.clone(),
        });
    }
    let Some(name) = fallback else {
        return Err(
            "kept before replay information was recorded: name its source with --source NAME (e.g. mqtt[0])"
                .into(),
        );
    };
    let src = d.sources.get(name).ok_or_else(|| {
        let mut known: Vec<&str> = d.sources.keys().map(|k| &**k).collect();
        known.sort_unstable();
        format!(
            "--source {name:?} is not a configured source ({})",
            known.join(", ")
        )
    })?;
    // Old rows name their origin `SOURCE[:TOPIC][ line N]`.
    let topic = row
        .source
        .strip_prefix(name)
        .and_then(|t| t.strip_prefix(':'))
        .map(|t| t.split(" line ").next().unwrap_or(t).to_string())
        .filter(|t| !t.is_empty());
    Ok(RowDecoding {
        decoder: src.decoder.clone(),
        tz: src.tz,
        device: d.devices.get(name).cloned(),
        topic,
        source: name.to_string(),
    })
}

/// Replays the selected rows (see the module doc). `fallback` names the
/// source of rows kept without replay information.
#[allow(clippy::too_many_arguments)]
pub async fn replay(
    store: &Store,
    policies: &(impl crate::policy_file::PolicySet + ?Sized),
    decodings: &Decodings,
    selection: &Selection,
    fallback: Option<&str>,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<ReplayReport, StoreError> {
    let policies = &*policies.as_policies();
    let run = Run {
        store,
        tz: policies.default_policy().tz,
        directory: Directory::new(&store.employees().await?),
        decodings,
        fallback,
        actor,
        now,
    };
    let mut report = ReplayReport::default();
    let mut touched = Touched::new();
    let mut after = 0i64;
    loop {
        let rows = next_rows(store, selection, after, &mut report).await?;
        let Some(last) = rows.last() else { break };
        after = last.id.max(1);
        for row in &rows {
            run.replay_row(row, &mut report, &mut touched).await?;
        }
        if matches!(selection, Selection::Ids(_)) {
            break;
        }
    }
    if !touched.is_empty() {
        let from = touched.values().map(|r| r.0).min().unwrap_or_default();
        let to = touched.values().map(|r| r.1).max().unwrap_or_default();
        let ids: Vec<String> = touched.keys().cloned().collect();
        report.evaluated = store
            .recompute(
                policies,
                Some(&ids),
                from,
                to,
                "quarantine replay",
                actor,
                now,
            )
            .await?
            .evaluated;
    }
    Ok(report)
}

/// Employee → the days (from, to) new punches touched.
type Touched = BTreeMap<String, (NaiveDate, NaiveDate)>;

/// The next page of rows after the row id `after`: every unresolved row
/// (500 at a time), or the selected ids once (ids that name no row are
/// reported skipped).
async fn next_rows(
    store: &Store,
    selection: &Selection,
    after: i64,
    report: &mut ReplayReport,
) -> Result<Vec<QuarantineRow>, StoreError> {
    Ok(match selection {
        Selection::All => store.quarantine_unresolved(after, 500).await?,
        Selection::Ids(ids) if after == 0 => {
            let rows = store.quarantine_rows(ids).await?;
            for id in ids {
                if !rows.iter().any(|r| r.id == *id) {
                    report.skipped.push((*id, "no such quarantine row".into()));
                }
            }
            rows
        }
        Selection::Ids(_) => Vec::new(),
    })
}

/// What one replay run works with.
struct Run<'a> {
    store: &'a Store,
    /// The default policy's zone: the dates of new punches.
    tz: chrono_tz::Tz,
    /// Today's employees and aliases.
    directory: Directory,
    decodings: &'a Decodings,
    fallback: Option<&'a str>,
    actor: &'a str,
    now: DateTime<Utc>,
}

/// A row decoded again: the punches that resolve now, the number of
/// ignored events, and why the row does not resolve yet (a bad line or an
/// unknown identity), if it does not.
struct Redecoded {
    punches: Vec<NewPunch>,
    ignored: usize,
    why: Option<String>,
}

impl Run<'_> {
    /// Replays one row: decodes it again, stores the punches that resolve
    /// and marks the row resolved when all of it did.
    async fn replay_row(
        &self,
        row: &QuarantineRow,
        report: &mut ReplayReport,
        touched: &mut Touched,
    ) -> Result<(), StoreError> {
        report.examined += 1;
        if let Some((at, by)) = &row.resolved {
            report.skipped.push((
                row.id,
                format!("already replayed {} by {by}", at.to_rfc3339()),
            ));
            return Ok(());
        }
        if row.kind == QuarantineKind::Summary {
            report
                .skipped
                .push((row.id, "a count of records that were not kept".into()));
            return Ok(());
        }
        let d = match self.redecode(row) {
            Ok(d) => d,
            Err(why) => {
                report.unresolved.push((row.id, why));
                return Ok(());
            }
        };
        let new = self.store_punches(&d.punches, touched).await?;
        report.stored += new;
        report.duplicates += d.punches.len() - new;
        if let Some(why) = d.why {
            report.unresolved.push((row.id, why));
            return Ok(());
        }
        let outcome = json!({
            "stored": new, "duplicates": d.punches.len() - new,
            "ignored": d.ignored, "punches": d.punches.len(),
        });
        if self
            .store
            .resolve_quarantine(row.id, &outcome, self.actor, self.now)
            .await?
        {
            report.resolved += 1;
        } else {
            report
                .skipped
                .push((row.id, "replayed meanwhile by another run".into()));
        }
        Ok(())
    }

    /// Decodes a row as its source did and attributes its punches with
    /// today's directory. `Err` when it cannot be decoded.
    fn redecode(&self, row: &QuarantineRow) -> Result<Redecoded, String> {
        let rd = row_decoding(row, self.fallback, self.decodings)?;
        let mut cx = DecodeContext::new(rd.tz, row.received_at);
        if let Some(t) = &rd.topic {
            cx = cx.with_topic(t);
        }
        if let Some(d) = &rd.device {
            cx = cx.with_device(d);
        }
        let decoded = rd
            .decoder
            .decode(&row.payload, &cx)
            .map_err(|e| format!("{}: {e}", rd.decoder.name()))?;
        let origin = match &rd.topic {
            Some(t) => format!("{}:{t}", rd.source),
            None => rd.source.clone(),
        };
        let raw: String = String::from_utf8_lossy(&row.payload)
            .chars()
            .take(2048)
            .collect();
        let mut punches = Vec::new();
        let mut why = decoded
            .line_errors
            .first()
            .map(|le| format!("line {}: {}", le.line, le.error));
        for p in &decoded.punches {
            match self.directory.resolve(&p.identity, p.device_id.as_deref()) {
                Ok(employee_id) => punches.push(NewPunch {
                    employee_id,
                    identity: p.identity.as_str().to_string(),
                    time: p.at,
                    device_id: p.device_id.clone(),
                    event_id: p.event_id.clone(),
                    source: origin.clone(),
                    raw: Some(raw.clone()),
                    direction: p.kind.state().map(String::from),
                }),
                Err(e) => why = why.or(Some(e)),
            }
        }
        Ok(Redecoded {
            punches,
            ignored: decoded.ignored.len(),
            why,
        })
    }

    /// Stores a row's punches (once: stored ones are recognised) and notes
    /// the days the new ones touch (the day before too: an overnight shift
    /// started then). Returns how many were new.
    async fn store_punches(
        &self,
        punches: &[NewPunch],
        touched: &mut Touched,
    ) -> Result<usize, StoreError> {
        let outcomes = self
            .store
            .insert_punches(punches, crate::clock::now())
            .await?;
        let mut new = 0usize;
        for (p, o) in punches.iter().zip(&outcomes) {
            if let Inserted::New(_) = o {
                new += 1;
                let d = to_local(self.tz, p.time).date_naive();
                let e = touched
                    .entry(p.employee_id.clone())
                    .or_insert((d - Days::new(1), d));
                e.0 = e.0.min(d - Days::new(1));
                e.1 = e.1.max(d);
            }
        }
        Ok(new)
    }
}
