//! The daemon's time source: "now" for everything on the run path (the
//! scheduler's ticks and day closes, alerts, the pipeline's `received_at`,
//! the API's "today", the health probe, HR's operations, the store's
//! recompute audit rows).
//!
//! [`now`] is the wall clock. For tests and the soak benchmark only, the
//! environment variable [`FAULT_CLOCK_ENV`] (`START_RFC3339,SPEED`, read
//! once at start by [`init`]) makes it `START + SPEED × elapsed wall time`,
//! so a simulated day passes in minutes; [`scaled`] shortens the timers
//! that decide when something is due by the same factor.
//!
//! The domain never reads it: the domain takes `now` as an argument.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

/// Test-only: `START_RFC3339,SPEED` (e.g. `2026-03-02T06:00:00+08:00,480`)
/// starts the daemon's clock at START and runs it SPEED times faster than
/// the wall clock.
pub const FAULT_CLOCK_ENV: &str = "ATTENDD_FAULT_CLOCK";

/// Fastest clock allowed: a day in under a second.
pub const MAX_SPEED: f64 = 100_000.0;

/// Shortest timer [`scaled`] returns, so a very fast clock does not spin.
const MIN_SCALED: Duration = Duration::from_millis(20);

/// A clock started at `start` running `speed` times the wall clock.
#[derive(Clone, Copy, Debug)]
struct Fake {
    start: DateTime<Utc>,
    speed: f64,
    epoch: Instant,
}

static CLOCK: OnceLock<Option<Fake>> = OnceLock::new();

/// Parses a [`FAULT_CLOCK_ENV`] value: `START_RFC3339,SPEED`, START between
/// 2000 and 2100, SPEED a finite number in (0, [`MAX_SPEED`]].
fn parse(v: &str) -> Result<(DateTime<Utc>, f64), String> {
    let bad = |why: &str| format!("{FAULT_CLOCK_ENV}={v:?}: {why} (expected START_RFC3339,SPEED)");
    let (start, speed) = v.split_once(',').ok_or_else(|| bad("no comma"))?;
    let start = DateTime::parse_from_rfc3339(start.trim())
        .map_err(|e| bad(&format!("start: {e}")))?
        .with_timezone(&Utc);
    let year = chrono::Datelike::year(&start);
    if !(2000..=2100).contains(&year) {
        return Err(bad("start outside 2000 … 2100"));
    }
    let speed: f64 = speed
        .trim()
        .parse()
        .map_err(|_| bad("speed is not a number"))?;
    if !speed.is_finite() || speed <= 0.0 || speed > MAX_SPEED {
        return Err(bad(&format!("speed outside (0, {MAX_SPEED}]")));
    }
    Ok((start, speed))
}

fn from_env() -> Result<Option<Fake>, String> {
    match std::env::var(FAULT_CLOCK_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{FAULT_CLOCK_ENV}: not UTF-8")),
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => parse(&v).map(|(start, speed)| {
            Some(Fake {
                start,
                speed,
                epoch: Instant::now(),
            })
        }),
    }
}

fn fake() -> Option<Fake> {
    // A bad value stops the daemon in [`init`]; anything reading the clock
    // without it (a command, a test) gets the wall clock.
    *CLOCK.get_or_init(|| from_env().ok().flatten())
}

/// Reads [`FAULT_CLOCK_ENV`] once; an error names the variable. Later calls
/// keep the clock of the first.
pub fn init() -> Result<(), String> {
    if CLOCK.get().is_some() {
        return Ok(());
    }
    let f = from_env()?;
    let _ = CLOCK.set(f);
    if let Some(f) = fake() {
        tracing::warn!(
            start = %f.start.to_rfc3339(),
            speed = f.speed,
            "{FAULT_CLOCK_ENV} is set: the daemon runs on a test clock"
        );
    }
    Ok(())
}

/// Now: the wall clock, or the test clock of [`FAULT_CLOCK_ENV`].
pub fn now() -> DateTime<Utc> {
    match fake() {
        None => Utc::now(),
        Some(f) => {
            let real = f.epoch.elapsed().as_secs_f64() * f.speed;
            // Bounded: MAX_SPEED × a century of uptime still fits.
            let micros = (real * 1e6).min(i64::MAX as f64 / 2.0) as i64;
            f.start + chrono::Duration::microseconds(micros)
        }
    }
}

/// How many times faster than the wall clock [`now`] runs (1 unless a test
/// clock is set).
pub fn speed() -> f64 {
    fake().map_or(1.0, |f| f.speed)
}

/// A timer of `d` on [`now`]'s clock, in wall time: `d` itself on the
/// wall clock, `d / SPEED` (at least 20 ms) on a test clock.
pub fn scaled(d: Duration) -> Duration {
    match fake() {
        None => d,
        Some(f) => d.div_f64(f.speed).max(MIN_SCALED.min(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start_and_speed() {
        let (s, k) = parse("2026-03-02T06:00:00+08:00,480").unwrap();
        assert_eq!(s.to_rfc3339(), "2026-03-01T22:00:00+00:00");
        assert_eq!(k, 480.0);
        assert_eq!(parse(" 2026-03-02T00:00:00Z , 0.5 ").unwrap().1, 0.5);
    }

    #[test]
    fn rejects_bad_values_naming_the_variable() {
        for v in [
            "",
            "2026-03-02T06:00:00Z",
            "yesterday,2",
            "2026-03-02T06:00:00Z,fast",
            "2026-03-02T06:00:00Z,0",
            "2026-03-02T06:00:00Z,-3",
            "2026-03-02T06:00:00Z,NaN",
            "2026-03-02T06:00:00Z,inf",
            "2026-03-02T06:00:00Z,1000000",
            "1900-01-01T00:00:00Z,2",
        ] {
            let e = parse(v).unwrap_err();
            assert!(e.contains(FAULT_CLOCK_ENV), "{v}: {e}");
        }
    }

    #[test]
    fn wall_clock_without_the_variable() {
        // The unit tests never set the variable.
        let before = Utc::now();
        let n = now();
        assert!(n >= before && n <= Utc::now());
        assert_eq!(scaled(Duration::from_secs(60)), Duration::from_secs(60));
        assert_eq!(speed(), 1.0);
    }
}
