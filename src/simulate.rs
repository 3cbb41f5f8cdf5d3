//! `attendd simulate`: a load generator that publishes a realistic day of
//! punches, for the quick start, the tests and the benchmarks.
//!
//! Every employee gets a check-in around 08:30 and a check-out around 17:30
//! (a few late, early, missing or absent), each on one of M terminals, in
//! time order. Events carry `event_id = "{terminal}-{YYYYMMDD}-{seq}"` (see
//! [`SimPunch::event_id`]), so a re-published duplicate has the same dedupe
//! key as its original and different days never collide. The
//! generator is deterministic for a given seed.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// One generated punch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimPunch {
    /// Employee id (`E00042`).
    pub employee_id: String,
    /// Local wall-clock time.
    pub local: NaiveDateTime,
    /// Terminal id (`gate-3`).
    pub device_id: String,
    /// Per-terminal sequence number, the natural dedupe key.
    pub seq: u64,
}

impl SimPunch {
    /// The terminal's event id: unique per terminal across days, as a real
    /// terminal's record number is, so runs for different dates never share
    /// a dedupe key.
    pub fn event_id(&self) -> String {
        format!(
            "{}-{}-{:06}",
            self.device_id,
            self.local.format("%Y%m%d"),
            self.seq
        )
    }
}

/// A small deterministic generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (0 is replaced by a constant).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A day of punches for `employees` people over `terminals` terminals.
pub fn generate_day(
    date: NaiveDate,
    employees: usize,
    terminals: usize,
    seed: u64,
) -> Vec<SimPunch> {
    let mut rng = Rng::new(seed);
    let terminals = terminals.max(1);
    let mut raw: Vec<(u32, usize, usize)> = Vec::with_capacity(employees * 2);
    let arrive = 8 * 3600 + 30 * 60;
    let leave = 17 * 3600 + 30 * 60;
    for e in 0..employees {
        let t = (rng.below(terminals as u64)) as usize;
        let r = rng.below(100);
        let times: Vec<u32> = match r {
            0..=1 => vec![],
            2..=3 => vec![arrive - 600 + rng.below(600) as u32],
            _ => {
                let a = if r < 12 {
                    arrive + 600 + rng.below(3600) as u32
                } else {
                    arrive - 1500 + rng.below(1500) as u32
                };
                let b = if r > 94 {
                    leave - 2400 + rng.below(1200) as u32
                } else {
                    leave + rng.below(1800) as u32
                };
                vec![a, b]
            }
        };
        for s in times {
            raw.push((s, e, t));
        }
    }
    raw.sort_unstable();
    let mut seq = vec![0u64; terminals];
    raw.into_iter()
        .map(|(s, e, t)| {
            seq[t] += 1;
            SimPunch {
                employee_id: format!("E{e:05}"),
                local: date.and_time(
                    NaiveTime::from_num_seconds_from_midnight_opt(s, 0).unwrap_or(NaiveTime::MIN),
                ),
                device_id: format!("gate-{}", t + 1),
                seq: seq[t],
            }
        })
        .collect()
}

/// Payload formats the generator can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The generic JSON payload of interfaces.md.
    Json,
    /// ZKTeco ATTLOG tab-separated lines.
    ZkAttlog,
}

/// Topic and payload for one punch.
pub fn encode(p: &SimPunch, format: Format, topic_prefix: &str) -> (String, Vec<u8>) {
    let topic = format!("{topic_prefix}/{}/punch", p.device_id);
    let time = p.local.format("%Y-%m-%d %H:%M:%S");
    let payload = match format {
        Format::Json => format!(
            "{{\"employee_id\":\"{}\",\"time\":\"{time}\",\"device_id\":\"{}\",\"event_id\":\"{}\"}}",
            p.employee_id,
            p.device_id,
            p.event_id()
        ),
        Format::ZkAttlog => format!("{}\t{time}\t0\t15\t0\t0\t0\n", p.employee_id),
    };
    (topic, payload.into_bytes())
}

/// What `simulate` should do.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// Topic prefix (`attendance`).
    pub topic_prefix: String,
    /// The day.
    pub date: NaiveDate,
    /// Employees.
    pub employees: usize,
    /// Terminals.
    pub terminals: usize,
    /// Messages per second; 0 for as fast as the broker takes them.
    pub rate: u32,
    /// Seed of the generator.
    pub seed: u64,
    /// Share of punches published twice, 0.0 … 1.0.
    pub duplicates: f64,
    /// Payload format.
    pub format: Format,
}

/// What was published.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Report {
    /// Distinct punches.
    pub distinct: u64,
    /// Extra copies of already published punches.
    pub duplicates: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// Publishes the plan's punches to an MQTT broker with QoS 1 and waits for
/// every PUBACK.
pub async fn publish(plan: &Plan) -> Result<Report, String> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let punches = generate_day(plan.date, plan.employees, plan.terminals, plan.seed);
    let mut rng = Rng::new(plan.seed ^ 0xA5A5);
    let mut opts = MqttOptions::new(
        format!("attendd-simulate-{}", std::process::id()),
        plan.host.clone(),
        plan.port,
    );
    opts.set_keep_alive(Duration::from_secs(30))
        .set_inflight(1000);
    let (client, mut el) = AsyncClient::new(opts, 10_000);
    let total = punches.len();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let acked2 = acked.clone();
    let (err_tx, mut err_rx) = tokio::sync::mpsc::channel::<String>(1);
    let poller = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    acked2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = err_tx.send(e.to_string()).await;
                    return;
                }
            }
        }
    });
    let started = Instant::now();
    let progress = std::io::stderr().is_terminal();
    let mut last = Instant::now();
    let mut sent = 0u64;
    let mut report = Report::default();
    for (i, p) in punches.iter().enumerate() {
        let copies = if rng.below(10_000) < (plan.duplicates * 10_000.0) as u64 {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let (topic, payload) = encode(p, plan.format, &plan.topic_prefix);
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| format!("publish: {e}"))?;
            sent += 1;
            if plan.rate > 0 {
                let due = started + Duration::from_secs_f64(sent as f64 / plan.rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
        }
        report.distinct += 1;
        report.duplicates += copies - 1;
        if let Ok(e) = err_rx.try_recv() {
            return Err(format!("broker {}:{}: {e}", plan.host, plan.port));
        }
        if progress && last.elapsed() >= Duration::from_millis(200) {
            last = Instant::now();
            eprint!("\rpublished {}/{total} punches", i + 1);
        }
    }
    let wait = async {
        while acked.load(std::sync::atomic::Ordering::Relaxed) < sent {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        _ = wait => {}
        e = err_rx.recv() => return Err(format!("broker {}:{}: {}", plan.host, plan.port, e.unwrap_or_default())),
    }
    let _ = client.disconnect().await;
    poller.abort();
    report.seconds = started.elapsed().as_secs_f64();
    if progress {
        eprintln!("\rpublished {total}/{total} punches");
    }
    let _ = std::io::stderr().flush();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_deterministic_sorted_and_realistic() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let a = generate_day(d, 1000, 8, 42);
        assert_eq!(a, generate_day(d, 1000, 8, 42));
        assert_ne!(a, generate_day(d, 1000, 8, 43));
        assert!(a.windows(2).all(|w| w[0].local <= w[1].local));
        assert!(a.len() > 1800 && a.len() < 2000, "{}", a.len());
        // Sequence numbers are unique per terminal.
        let mut keys: Vec<(String, u64)> = a.iter().map(|p| (p.device_id.clone(), p.seq)).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), a.len());
    }

    #[test]
    fn json_payload_has_the_contract_fields() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let p = &generate_day(d, 10, 2, 1)[0];
        let (topic, payload) = encode(p, Format::Json, "attendance");
        assert_eq!(topic, format!("attendance/{}/punch", p.device_id));
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["employee_id"], p.employee_id.as_str());
        assert_eq!(v["event_id"], p.event_id());
    }
}
