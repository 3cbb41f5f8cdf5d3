//! `attendd import punches`: a punch CSV (all-or-nothing, like the HR
//! files) or a terminal's attlog.dat (bad lines quarantined), parsed,
//! then stored in batches ([`store_punches`]), then the days they cover
//! re-derived.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;
use serde_json::json;

use super::super::{CmdError, CmdResult, Ctx, PunchFormat, report_json, report_text};
use super::{open, recompute_affected, refuse, table};
use crate::domain::time::to_local;
use crate::ingest::decode::zk_attlog as zk;
use crate::input::{self, LocalTimes};
use crate::store::{EmployeeRecord, Inserted, NewPunch, NewQuarantine, RecomputeReport};

/// Punches per transaction when importing a file.
const IMPORT_BATCH: usize = 5000;

/// `attendd import punches`: read the file's punches, store them, re-derive
/// the days they cover and report.
pub(super) async fn import_punches(
    ctx: &Ctx<'_>,
    file: &Path,
    format: PunchFormat,
    device: Option<String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CmdResult {
    let name = file.display().to_string();
    let pf = PunchFile {
        path: file,
        source: format!("import:{name}"),
        name,
        device,
        identities: Identities::of(&ctx.store.employees().await?),
    };
    let (punches, quarantined) = match format {
        PunchFormat::Csv => (read_csv_punches(ctx, &pf).await?, 0),
        PunchFormat::ZkAttlog => read_attlog_punches(ctx, &pf, err).await?,
    };
    let stored = store_punches(ctx, &punches).await?;
    let rep = recompute_affected(
        ctx,
        None,
        stored.covered.into_iter().flat_map(|(a, b)| [a, b]),
        stored.covered.map(|c| c.0),
        &format!("import punches {}", pf.name),
    )
    .await?;
    emit_punches(ctx, &pf.name, &stored, quarantined, &rep, out, err).await
}

/// A punch file being imported.
struct PunchFile<'a> {
    path: &'a Path,
    /// The file as messages name it.
    name: String,
    /// The source its punches are stored under, `import:FILE`.
    source: String,
    /// `--device`: for punches whose file does not name one.
    device: Option<String>,
    identities: Identities,
}

/// Ids and aliases of the stored employees → employee id.
struct Identities(HashMap<String, String>);

impl Identities {
    fn of(employees: &[EmployeeRecord]) -> Identities {
        let mut identity: HashMap<String, String> = HashMap::new();
        for e in employees {
            for a in &e.aliases {
                identity.insert(a.clone(), e.employee_id.clone());
                // An explicit hex card (`hex:27373963`) is also found under
                // its canonical number, as the daemon finds it (issue 11, 12).
                if a.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("hex:")) {
                    for k in crate::pipeline::alias_keys(a) {
                        identity.entry(k).or_insert_with(|| e.employee_id.clone());
                    }
                }
            }
        }
        for e in employees {
            identity.insert(e.employee_id.clone(), e.employee_id.clone());
        }
        Identities(identity)
    }

    /// The employee a file's id stands for; an id nobody has is kept as is.
    fn attribute(&self, id: &str) -> String {
        self.0.get(id).cloned().unwrap_or_else(|| id.to_string())
    }
}

/// A punch CSV: all-or-nothing, like the HR files.
async fn read_csv_punches(ctx: &Ctx<'_>, pf: &PunchFile<'_>) -> Result<Vec<NewPunch>, CmdError> {
    // Local times in the zone of each employee's policy.
    let history = ctx.store.policy_history().await?;
    let tz_of = |id: &str| {
        let id = pf.identities.attribute(id);
        ctx.policies()
            .get(history.index_at(ctx.policies(), &id, NaiveDate::MAX))
            .tz
    };
    let parsed = input::read_punches_by(table(pf.path)?, &pf.name, tz_of);
    refuse(&pf.name, parsed.errors)?;
    Ok(parsed
        .rows
        .into_iter()
        .map(|(_, r)| NewPunch {
            employee_id: pf.identities.attribute(&r.employee_id),
            time: r.time,
            device_id: r
                .device_id
                .map(|d| d.to_string())
                .or_else(|| pf.device.clone()),
            event_id: None,
            source: pf.source.clone(),
            raw: None,
            identity: r.employee_id,
            direction: None,
        })
        .collect())
}

/// A terminal's attlog.dat: a line that does not parse is quarantined
/// (with a warning) and the others are imported. Returns the punches and
/// the number of lines quarantined.
async fn read_attlog_punches(
    ctx: &Ctx<'_>,
    pf: &PunchFile<'_>,
    err: &mut dyn Write,
) -> Result<(Vec<NewPunch>, usize), CmdError> {
    let name = &pf.name;
    let mut punches = Vec::new();
    let mut quarantined = 0usize;
    let mut times = LocalTimes::new(ctx.policy().tz);
    let mut reader = open(pf.path)?;
    let mut buf = Vec::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| CmdError::Input(format!("{name}: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let decoded = std::str::from_utf8(&buf)
            .map_err(|_| "not UTF-8".to_string())
            .and_then(|s| {
                if s.trim().is_empty() {
                    Ok(None)
                } else {
                    zk::parse_line(s).map(|l| Some((s, l)))
                }
            });
        match decoded {
            Ok(None) => {}
            Ok(Some((text, l))) => punches.push(NewPunch {
                employee_id: pf.identities.attribute(&l.pin),
                time: l.at.unwrap_or_else(|| times.resolve(l.local)),
                device_id: pf.device.clone(),
                event_id: None,
                source: pf.source.clone(),
                raw: Some(text.trim_end_matches(['\r', '\n']).to_string()),
                direction: l.kind.state().map(String::from),
                identity: l.pin,
            }),
            Err(reason) => {
                ctx.store
                    .quarantine(
                        &NewQuarantine {
                            source: format!("{name}:{line_no}"),
                            payload: buf.clone(),
                            reason: reason.clone(),
                            ..Default::default()
                        },
                        chrono::Utc::now(),
                    )
                    .await?;
                writeln!(err, "warning: {name}:{line_no}: {reason}; quarantined")?;
                quarantined += 1;
            }
        }
    }
    Ok((punches, quarantined))
}

/// What storing a file's punches did.
#[derive(Default)]
struct StoredPunches {
    /// Punches stored now.
    new: usize,
    /// Punches that were already stored.
    dup: usize,
    /// The dates the file covers (its new punches): classified for every
    /// employee, so that those who never came are absent there too.
    covered: Option<(NaiveDate, NaiveDate)>,
    /// The date of each new punch.
    new_dates: Vec<NaiveDate>,
}

/// Stores the punches, [`IMPORT_BATCH`] per transaction, with a progress
/// bar; a punch already stored is counted, not doubled.
async fn store_punches(ctx: &Ctx<'_>, punches: &[NewPunch]) -> Result<StoredPunches, CmdError> {
    let tz = ctx.policy().tz;
    let progress = crate::progress::Progress::bar(punches.len() as u64, "punches stored");
    let started = Instant::now();
    let mut s = StoredPunches::default();
    for (b, batch) in punches.chunks(IMPORT_BATCH).enumerate() {
        let res = ctx.store.insert_punches(batch, chrono::Utc::now()).await?;
        for (p, r) in batch.iter().zip(res) {
            match r {
                Inserted::New(_) => {
                    s.new += 1;
                    let d = to_local(tz, p.time).date_naive();
                    s.new_dates.push(d);
                    let c = s.covered.get_or_insert((d, d));
                    c.0 = c.0.min(d);
                    c.1 = c.1.max(d);
                }
                Inserted::Duplicate => s.dup += 1,
            }
        }
        progress.set((b * IMPORT_BATCH + batch.len()) as u64);
    }
    progress.finish(&format!(
        "stored {} punches in {:.1?}",
        punches.len(),
        started.elapsed()
    ));
    Ok(s)
}

/// Prints what a punch import did, with a note on `err` for punches dated
/// before the classification start (stored, not classified).
async fn emit_punches(
    ctx: &Ctx<'_>,
    name: &str,
    stored: &StoredPunches,
    quarantined: usize,
    rep: &RecomputeReport,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> CmdResult {
    let (new, dup) = (stored.new, stored.dup);
    let start = ctx
        .store
        .classify_from(ctx.cfg.ingest.classify_from)
        .await?;
    let before = start.map_or(0, |s| stored.new_dates.iter().filter(|d| **d < s).count());
    if before > 0
        && let Some(s) = start
    {
        writeln!(
            err,
            "note: {before} punch(es) dated before the classification start {s} stored, not classified \
             (attendd recompute --from DATE classifies earlier days)"
        )?;
    }
    ctx.emit(
        out,
        json!({"imported": "punches", "file": name, "new": new, "duplicates": dup, "quarantined": quarantined,
               "before_classify_from": before, "classify_from": start,
               "recompute": report_json(rep)}),
        &format!(
            "{name}: {new} new, {dup} duplicates{}{}\n{}",
            if quarantined > 0 { format!(", {quarantined} quarantined") } else { String::new() },
            match start {
                Some(s) if before > 0 => format!(", {before} before the classification start {s}"),
                _ => String::new(),
            },
            report_text(rep)
        ),
    )?;
    Ok(())
}
