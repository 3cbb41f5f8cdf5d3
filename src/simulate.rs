//! `attendd simulate`: a load generator that publishes a realistic day of
//! punches, for the quick start, the tests and the benchmarks.
//!
//! Every employee gets a check-in around 08:30 and a check-out around 17:30
//! (a few late, early, missing or absent), each on one of M terminals, in
//! time order. Events carry `event_id = "{terminal}-{YYYYMMDD}-{seq}"` (see
//! [`SimPunch::event_id`]), so a re-published duplicate has the same dedupe
//! key as its original and different days never collide. The
//! generator is deterministic for a given seed.
//!
//! # Formats
//!
//! Each punch becomes one payload in one of the decoder formats
//! ([`Format`]), readable by the decoder of the same name. Times are the
//! generator's local wall times in the terminals' zone (`--timezone`,
//! default Asia/Shanghai); formats that carry an offset or UTC encode the
//! same instant. What each decoder then sees as device and record key is
//! [`wire_device`] and [`wire_event_id`]:
//!
//! | format | identity | time | device | record key |
//! |---|---|---|---|---|
//! | `json` | `employee_id` | local | `device_id` | [`SimPunch::event_id`] |
//! | `zk-attlog` | PIN | local | none | PIN + time |
//! | `recpush` | `customId` | local `time` | `facesluiceId` | `RecordID` = [`SimPunch::record_no`] |
//! | `hik-isapi` | `employeeNoString` | `dateTime` with offset | `macAddress` = [`terminal_mac`] | `serialNo` = record number |
//! | `dahua` | `UserID` | `RealUTC` and `LocaleTime` | none | `RecNo` = record number |
//! | `double-take` | match name = lower-case employee id (an alias) | UTC `Z` | `camera` | `id` = event id |
//! | `card-line` | 8 hex digits of the card | arrival | none | none |
//! | `stx-etx` | EM4100 frame of the card as tag | arrival | none | none |
//!
//! The vendor record numbers are numeric, as on the devices, and unique
//! across days: `YYYYMMDD` followed by the six-digit per-terminal sequence
//! number (`20261126000042`).
//!
//! # Cards and aliases
//!
//! Employee `i` (`E{i:05}`) holds card number [`card_number`]`(i)` =
//! 1 000 000 000 + `i`, printed as ten decimal digits (`1000000042`); a
//! `card-line` reader writes it as eight hex digits (`3B9ACA2A`), an
//! `stx-etx` reader as the tag of an EM4100 frame (version `01`).
//! [`write_employees`] writes the employees.csv whose `alias` column holds
//! the card number and the lower-case id (the Double Take match name), so
//! `attendd import employees FILE` resolves every card and face.
//!
//! Card readers send no time and no record key: the daemon stamps each
//! card on arrival, so the day's times are not replayed, a `--duplicates`
//! copy is a second read of the card (stored again unless it arrives in
//! the same read as the first), and cards should be paced with `--rate`.
//!
//! # Targets
//!
//! Payloads go to an MQTT broker with QoS 1 on `{prefix}/{terminal}/punch`,
//! or are written to a serial device or pseudo-terminal (`--serial`),
//! framed as the serial source reads them: text formats one per line
//! (CR LF; `card-line` ends with CR as the readers do), `stx-etx` as raw
//! frames.

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

/// Payload formats the generator can write, one per decoder of the same
/// name (see the module docs for what each carries).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The generic JSON payload of interfaces.md.
    Json,
    /// ZKTeco ATTLOG tab-separated lines.
    ZkAttlog,
    /// OEM face terminals' RecPush JSON.
    #[value(name = "recpush")]
    RecPush,
    /// Hikvision ISAPI AccessControllerEvent JSON (face pass).
    HikIsapi,
    /// Dahua AccessControl event in the `{"Events":[…]}` upload envelope.
    Dahua,
    /// Double Take match messages (the identity is an alias).
    DoubleTake,
    /// One card number per line, 8 hex digits (the identity is a card).
    CardLine,
    /// EM4100 STX/ETX frames (the identity is a card).
    StxEtx,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 8] = [
        Format::Json,
        Format::ZkAttlog,
        Format::RecPush,
        Format::HikIsapi,
        Format::Dahua,
        Format::DoubleTake,
        Format::CardLine,
        Format::StxEtx,
    ];

    /// The name of the decoder that reads it.
    pub fn decoder_name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::ZkAttlog => "zk-attlog",
            Format::RecPush => "recpush",
            Format::HikIsapi => "hik-isapi",
            Format::Dahua => "dahua",
            Format::DoubleTake => "double-take",
            Format::CardLine => "card-line",
            Format::StxEtx => "stx-etx",
        }
    }

    /// True when the payload names a card rather than an employee, so the
    /// employees need [`write_employees`]' aliases.
    pub fn is_card(self) -> bool {
        matches!(self, Format::CardLine | Format::StxEtx)
    }

    /// True when the payload carries no time: the punch is stamped on
    /// arrival.
    pub fn stamped_on_arrival(self) -> bool {
        self.is_card()
    }
}

/// The first card number; employee `i` holds `CARD_BASE + i`.
pub const CARD_BASE: u64 = 1_000_000_000;

/// The employee id of employee `i`: `E00042`.
pub fn employee_id(index: usize) -> String {
    format!("E{index:05}")
}

/// The card number employee `i` holds (`1000000042`): ten decimal digits,
/// and at most 32 bits so a hex reader and an EM4100 tag can carry it.
pub fn card_number(index: usize) -> u64 {
    CARD_BASE + index as u64
}

/// A locally administered MAC address for terminal `gate-N`, the device id
/// a Hikvision payload carries (`02:00:00:00:00:03` for `gate-3`).
pub fn terminal_mac(device_id: &str) -> String {
    let n: u32 = device_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let b = n.to_be_bytes();
    format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3])
}

impl SimPunch {
    /// The employee's index (`E00042` → 42).
    pub fn employee_index(&self) -> usize {
        self.employee_id
            .trim_start_matches('E')
            .parse()
            .unwrap_or(0)
    }

    /// The employee's card number, [`card_number`].
    pub fn card(&self) -> u64 {
        card_number(self.employee_index())
    }

    /// The numeric record number of vendor formats: `YYYYMMDD` and the
    /// six-digit sequence number, unique per terminal across days.
    pub fn record_no(&self) -> u64 {
        let d: u64 = self.local.format("%Y%m%d").to_string().parse().unwrap_or(0);
        d * 1_000_000 + self.seq
    }
}

/// The device id the decoder of `format` finds in the payload, when the
/// payload names one (over a serial line or MQTT, without a configured
/// device id).
pub fn wire_device(p: &SimPunch, format: Format) -> Option<String> {
    match format {
        Format::Json | Format::RecPush | Format::DoubleTake => Some(p.device_id.clone()),
        Format::HikIsapi => Some(terminal_mac(&p.device_id)),
        Format::ZkAttlog | Format::Dahua | Format::CardLine | Format::StxEtx => None,
    }
}

/// The record key the decoder of `format` reads from the payload.
pub fn wire_event_id(p: &SimPunch, format: Format) -> Option<String> {
    match format {
        Format::Json | Format::DoubleTake => Some(p.event_id()),
        Format::ZkAttlog => Some(format!(
            "{} {}",
            p.employee_id,
            p.local.format("%Y-%m-%d %H:%M:%S")
        )),
        Format::RecPush | Format::HikIsapi | Format::Dahua => Some(p.record_no().to_string()),
        Format::CardLine | Format::StxEtx => None,
    }
}

/// An EM4100 reader frame for a 32-bit tag: STX, version `01`, eight hex
/// digits, the XOR of the five data bytes in hex, ETX.
pub fn em4100_frame(tag: u32) -> Vec<u8> {
    let version = 0x01u8;
    let mut check = version;
    for b in tag.to_be_bytes() {
        check ^= b;
    }
    let mut f = vec![0x02];
    f.extend_from_slice(format!("{version:02X}{tag:08X}{check:02X}").as_bytes());
    f.push(0x03);
    f
}

/// Topic and payload for one punch; `tz` is the zone of the generator's
/// local times.
pub fn encode(
    p: &SimPunch,
    format: Format,
    topic_prefix: &str,
    tz: chrono_tz::Tz,
) -> (String, Vec<u8>) {
    let topic = format!("{topic_prefix}/{}/punch", p.device_id);
    let time = p.local.format("%Y-%m-%d %H:%M:%S");
    let instant = crate::domain::time::resolve_local(tz, p.local);
    let json = |v: serde_json::Value| v.to_string();
    let payload = match format {
        Format::Json => format!(
            "{{\"employee_id\":\"{}\",\"time\":\"{time}\",\"device_id\":\"{}\",\"event_id\":\"{}\"}}",
            p.employee_id,
            p.device_id,
            p.event_id()
        ),
        Format::ZkAttlog => format!("{}\t{time}\t0\t15\t0\t0\t0\n", p.employee_id),
        Format::RecPush => json(serde_json::json!({
            "operator": "RecPush",
            "info": {
                "customId": p.employee_id,
                "personId": p.employee_index().to_string(),
                "RecordID": p.record_no().to_string(),
                "VerifyStatus": "1",
                "PersonType": "0",
                "similarity1": "93.000000",
                "Sendintime": 1,
                "personName": format!("Employee {}", p.employee_id),
                "facesluiceId": p.device_id,
                "time": time.to_string(),
                "PushType": 0,
            }
        })),
        Format::HikIsapi => json(serde_json::json!({
            "ipAddress": "127.0.0.1",
            "portNo": 80,
            "macAddress": terminal_mac(&p.device_id),
            "dateTime": instant.with_timezone(&tz).format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
            "activePostCount": 1,
            "eventType": "AccessControllerEvent",
            "eventState": "active",
            "eventDescription": "Access Controller Event",
            "AccessControllerEvent": {
                "deviceName": p.device_id,
                "majorEventType": 5,
                "subEventType": 75,
                "employeeNoString": p.employee_id,
                "cardReaderNo": 1,
                "doorNo": 1,
                "currentVerifyMode": "cardOrFace",
                "attendanceStatus": "undefined",
                "serialNo": p.record_no(),
                "currentEvent": true,
            }
        })),
        Format::Dahua => json(serde_json::json!({
            "Events": [{
                "Code": "AccessControl",
                "Action": "Pulse",
                "Index": 0,
                "Data": {
                    "UserID": p.employee_id,
                    "CardNo": "",
                    "RecNo": p.record_no(),
                    "Status": 1,
                    "Method": 15,
                    "LocaleTime": time.to_string(),
                    "RealUTC": instant.timestamp(),
                }
            }]
        })),
        Format::DoubleTake => json(serde_json::json!({
            "id": p.event_id(),
            "duration": 0.5,
            "timestamp": instant.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "attempts": 1,
            "camera": p.device_id,
            "zones": [],
            "match": {
                "name": p.employee_id.to_lowercase(),
                "confidence": 95.0,
                "match": true,
                "type": "latest",
                "detector": "compreface",
            }
        })),
        Format::CardLine => format!("{:08X}\r", p.card()),
        Format::StxEtx => {
            return (
                topic,
                em4100_frame(u32::try_from(p.card()).unwrap_or(u32::MAX)),
            );
        }
    };
    (topic, payload.into_bytes())
}

/// The bytes one payload takes on a serial line: text formats end with a
/// line end (CR LF unless they already end with CR or LF), frames are
/// written as they are.
pub fn serial_bytes(format: Format, mut payload: Vec<u8>) -> Vec<u8> {
    if format != Format::StxEtx && !matches!(payload.last(), Some(b'\r' | b'\n')) {
        payload.extend_from_slice(b"\r\n");
    }
    payload
}

/// Writes an employees.csv for `employees` people: id, a name, a team of
/// ten, a supervisor, and as alias their card number and lower-case id
/// (`E00042,Employee 00042,team-4,S004,1000000042;e00042`).
pub fn write_employees(w: &mut dyn Write, employees: usize) -> std::io::Result<()> {
    writeln!(w, "employee_id,name,team,supervisor,alias")?;
    for i in 0..employees {
        let id = employee_id(i);
        writeln!(
            w,
            "{id},Employee {i:05},team-{},S{:03},{};{}",
            i / 10,
            i / 10,
            card_number(i),
            id.to_lowercase()
        )?;
    }
    Ok(())
}

/// Where the payloads go.
#[derive(Clone, Debug)]
pub enum Target {
    /// An MQTT broker.
    Mqtt {
        /// Broker host.
        host: String,
        /// Broker port.
        port: u16,
        /// User name and password to log in with.
        credentials: Option<(String, String)>,
    },
    /// A serial device or pseudo-terminal.
    Serial {
        /// Its path.
        path: std::path::PathBuf,
        /// Baud rate.
        baud: u32,
    },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Mqtt { host, port, .. } => write!(f, "broker {host}:{port}"),
            Target::Serial { path, .. } => write!(f, "{}", path.display()),
        }
    }
}

/// What `simulate` should do.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Broker or serial line.
    pub target: Target,
    /// Topic prefix (`attendance`).
    pub topic_prefix: String,
    /// The day.
    pub date: NaiveDate,
    /// Employees.
    pub employees: usize,
    /// Terminals.
    pub terminals: usize,
    /// Messages per second; 0 for as fast as the target takes them.
    pub rate: u32,
    /// Seed of the generator.
    pub seed: u64,
    /// Share of punches published twice, 0.0 … 1.0.
    pub duplicates: f64,
    /// Payload format.
    pub format: Format,
    /// Zone of the local times.
    pub tz: chrono_tz::Tz,
    /// Punches stamped after this instant are not sent: a terminal does not
    /// stamp the future (`attendd simulate` passes its clock's now, so
    /// "today" holds the morning's punches, not the afternoon's).
    pub not_after: Option<chrono::DateTime<chrono::Utc>>,
}

/// True when `p` is stamped after the plan's `not_after`.
fn in_future(plan: &Plan, p: &SimPunch) -> bool {
    plan.not_after
        .is_some_and(|n| crate::domain::time::resolve_local(plan.tz, p.local) > n)
}

/// How many of the day's punches lie after the plan's `not_after`.
pub fn future_count(plan: &Plan) -> u64 {
    generate_day(plan.date, plan.employees, plan.terminals, plan.seed)
        .iter()
        .filter(|p| in_future(plan, p))
        .count() as u64
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
    /// Payload format (decoder name).
    pub format: String,
    /// Punches of the day not sent because they lie after `not_after`.
    pub future: u64,
}

/// The day's punches, each with how many times it is sent (1, or 2 for a
/// duplicate), as [`publish`] sends them.
pub fn schedule(plan: &Plan) -> Vec<(SimPunch, u64)> {
    let punches = generate_day(plan.date, plan.employees, plan.terminals, plan.seed);
    let mut rng = Rng::new(plan.seed ^ 0xA5A5);
    punches
        .into_iter()
        .filter(|p| !in_future(plan, p))
        .map(|p| {
            let copies = if rng.below(10_000) < (plan.duplicates * 10_000.0) as u64 {
                2
            } else {
                1
            };
            (p, copies)
        })
        .collect()
}

/// Sleeps until message `sent` is due at `rate` per second.
async fn pace(started: Instant, sent: u64, rate: u32) {
    if rate > 0 {
        let due = started + Duration::from_secs_f64(sent as f64 / rate as f64);
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Sends the plan's punches to its target.
pub async fn publish(plan: &Plan) -> Result<Report, String> {
    let mut report = match &plan.target {
        Target::Mqtt {
            host,
            port,
            credentials,
        } => publish_mqtt(plan, host, *port, credentials.as_ref()).await?,
        Target::Serial { path, baud } => write_serial(plan, path, *baud).await?,
    };
    report.format = plan.format.decoder_name().to_string();
    Ok(report)
}

/// An open serial line, or a plain file, FIFO or character device that is
/// not a terminal (`/dev/null`, a capture file).
enum Line {
    Port(tokio_serial::SerialStream),
    File(std::fs::File),
}

impl Line {
    fn open(path: &std::path::Path, baud: u32) -> Result<Line, String> {
        use tokio_serial::SerialPortBuilderExt;
        let shown = path.display();
        match tokio_serial::new(path.to_string_lossy(), baud).open_native_async() {
            Ok(p) => Ok(Line::Port(p)),
            Err(e) => {
                // Not a terminal: write the bytes as they are.
                let is_tty = std::fs::File::options()
                    .write(true)
                    .open(path)
                    .map(|f| f.is_terminal());
                match is_tty {
                    Ok(false) => std::fs::File::options()
                        .append(true)
                        .open(path)
                        .map(Line::File)
                        .map_err(|e| format!("cannot open {shown}: {e}")),
                    _ => Err(format!("cannot open {shown}: {e}")),
                }
            }
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt;
        match self {
            Line::Port(p) => {
                AsyncWriteExt::write_all(p, bytes).await?;
                AsyncWriteExt::flush(p).await
            }
            Line::File(f) => f.write_all(bytes),
        }
    }
}

/// Writes the plan's punches to a serial device or pseudo-terminal, one
/// payload per write, framed by [`serial_bytes`].
async fn write_serial(plan: &Plan, path: &std::path::Path, baud: u32) -> Result<Report, String> {
    let shown = path.display();
    let mut line = Line::open(path, baud)?;
    let schedule = schedule(plan);
    let progress = crate::progress::Progress::bar(schedule.len() as u64, "punches published");
    let started = Instant::now();
    let mut sent = 0u64;
    let mut report = Report::default();
    for (i, (p, copies)) in schedule.iter().enumerate() {
        for _ in 0..*copies {
            let (_, payload) = encode(p, plan.format, &plan.topic_prefix, plan.tz);
            line.write_all(&serial_bytes(plan.format, payload))
                .await
                .map_err(|e| format!("writing {shown}: {e}"))?;
            sent += 1;
            pace(started, sent, plan.rate).await;
        }
        report.distinct += 1;
        report.duplicates += copies - 1;
        progress.set(i as u64 + 1);
    }
    report.seconds = started.elapsed().as_secs_f64();
    progress.finish(&format!("published {} punches", schedule.len()));
    Ok(report)
}

/// Publishes the plan's punches to an MQTT broker with QoS 1 and waits for
/// every PUBACK.
async fn publish_mqtt(
    plan: &Plan,
    host: &str,
    port: u16,
    credentials: Option<&(String, String)>,
) -> Result<Report, String> {
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    let schedule = schedule(plan);
    let mut opts = MqttOptions::new(
        format!("attendd-simulate-{}", std::process::id()),
        host.to_string(),
        port,
    );
    opts.set_keep_alive(Duration::from_secs(30))
        .set_inflight(1000);
    if let Some((u, p)) = credentials {
        opts.set_credentials(u.clone(), p.clone());
    }
    let (client, mut el) = AsyncClient::new(opts, 10_000);
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
    let progress = crate::progress::Progress::bar(schedule.len() as u64, "punches published");
    let mut sent = 0u64;
    let mut report = Report::default();
    for (i, (p, copies)) in schedule.iter().enumerate() {
        for _ in 0..*copies {
            let (topic, payload) = encode(p, plan.format, &plan.topic_prefix, plan.tz);
            client
                .publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| format!("publish: {e}"))?;
            sent += 1;
            pace(started, sent, plan.rate).await;
        }
        report.distinct += 1;
        report.duplicates += copies - 1;
        if let Ok(e) = err_rx.try_recv() {
            return Err(format!("broker {host}:{port}: {e}"));
        }
        progress.set(i as u64 + 1);
    }
    let wait = async {
        while acked.load(std::sync::atomic::Ordering::Relaxed) < sent {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::select! {
        _ = wait => {}
        e = err_rx.recv() => return Err(format!("broker {host}:{port}: {}", e.unwrap_or_default())),
    }
    let _ = client.disconnect().await;
    poller.abort();
    report.seconds = started.elapsed().as_secs_f64();
    progress.finish(&format!("published {} punches", schedule.len()));
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
        let (topic, payload) = encode(p, Format::Json, "attendance", chrono_tz::Asia::Shanghai);
        assert_eq!(topic, format!("attendance/{}/punch", p.device_id));
        let v: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["employee_id"], p.employee_id.as_str());
        assert_eq!(v["event_id"], p.event_id());
    }

    #[test]
    fn record_numbers_and_macs_are_stable_and_distinct_across_days() {
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let d2 = d1.succ_opt().unwrap();
        let a = &generate_day(d1, 10, 2, 1)[0];
        let b = &generate_day(d2, 10, 2, 1)[0];
        assert_eq!(a.seq, b.seq);
        assert_eq!(a.record_no(), 20_261_126_000_000 + a.seq);
        assert_ne!(a.record_no(), b.record_no());
        assert_eq!(terminal_mac("gate-3"), "02:00:00:00:00:03");
        assert_eq!(card_number(7), 1_000_000_007);
        let mut csv = Vec::new();
        write_employees(&mut csv, 2).unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "employee_id,name,team,supervisor,alias\n\
             E00000,Employee 00000,team-0,S000,1000000000;e00000\n\
             E00001,Employee 00001,team-0,S000,1000000001;e00001\n"
        );
    }
}
