//! `[[source.zk_pull]]`: ZKTeco standalone terminals read over their own
//! protocol on port 4370 (TCP, with UDP as the fallback), as pyzk speaks it
//! (github.com/fananimi/pyzk, `zk/base.py` and `zk/const.py`).
//!
//! Each poll connects (`CMD_CONNECT`, then `CMD_AUTH` with the comm key
//! when the device answers `CMD_ACK_UNAUTH`), asks the serial number
//! (`CMD_OPTIONS_RRQ "~SerialNumber"`: the device id of every punch), the
//! clock (`CMD_GET_TIME`: more than 60 s off ours is reported), the record
//! count (`CMD_GET_FREE_SIZES`) and the attendance log
//! (`_CMD_PREPARE_BUFFER` of `CMD_ATTLOG_RRQ`, read in chunks with
//! `_CMD_READ_BUFFER`, then `CMD_FREE_DATA`), and says goodbye
//! (`CMD_EXIT`). It never disables, clears or writes anything, so another
//! puller can run beside attendd.
//!
//! The device keeps no cursor for its readers: attendd stores the time of
//! the last record read and how many records carried that time, in the
//! same transaction as the punches, and skips what is at or before it. The
//! records become ATTLOG lines for the `zk-attlog` decoder, whose event id
//! (PIN and local time) is the one the PUSH listener uses for the same
//! terminal, so nothing is stored twice.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use chrono_tz::Tz;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Backoff;
use super::pull::{Cursor, PullCtx};
pub use crate::config::pull::RawZkPull;

/// Command codes (pyzk `zk/const.py`).
pub mod cmd {
    /// Open a session.
    pub const CONNECT: u16 = 1000;
    /// Close it.
    pub const EXIT: u16 = 1001;
    /// Answer the comm key.
    pub const AUTH: u16 = 1102;
    /// Data follows in `DATA` packets.
    pub const PREPARE_DATA: u16 = 1500;
    /// Data.
    pub const DATA: u16 = 1501;
    /// Release the device's read buffer.
    pub const FREE_DATA: u16 = 1502;
    /// Ask the device to buffer a table.
    pub const PREPARE_BUFFER: u16 = 1503;
    /// Read a chunk of the buffer.
    pub const READ_BUFFER: u16 = 1504;
    /// The attendance log.
    pub const ATTLOG_RRQ: u16 = 13;
    /// The user table.
    pub const USERTEMP_RRQ: u16 = 9;
    /// An option (`~SerialNumber`).
    pub const OPTIONS_RRQ: u16 = 11;
    /// Record and user counts.
    pub const GET_FREE_SIZES: u16 = 50;
    /// The device clock.
    pub const GET_TIME: u16 = 201;
    /// Success.
    pub const ACK_OK: u16 = 2000;
    /// Failure.
    pub const ACK_ERROR: u16 = 2001;
    /// Success with data.
    pub const ACK_DATA: u16 = 2002;
    /// A comm key is needed (or was wrong).
    pub const ACK_UNAUTH: u16 = 2005;
    /// `FCT_USER`: the user table's function code.
    pub const FCT_USER: i32 = 5;
}

const USHRT_MAX: u32 = 65535;
/// The TCP frame's magic (`MACHINE_PREPARE_DATA_1/2`).
pub const TCP_MAGIC: [u8; 4] = [0x50, 0x50, 0x82, 0x7d];
const MAX_CHUNK_TCP: u32 = 0xFFC0;
const MAX_CHUNK_UDP: u32 = 16 * 1024;
/// Largest answer accepted (a full log of 100 000 40-byte records is 4 MB).
const MAX_DATA: u32 = 64 << 20;

/// The name of the `i`th source in logs, health and metrics.
pub fn source_name(i: usize) -> String {
    format!("zk_pull[{i}]")
}

/// pyzk `create_checksum`: the one's complement of the 16-bit sum, folded
/// the way the firmware does it.
pub fn checksum(p: &[u8]) -> u16 {
    let mut sum: i64 = 0;
    let mut chunks = p.chunks_exact(2);
    for c in &mut chunks {
        sum += i64::from(u16::from_le_bytes([c[0], c[1]]));
        if sum > i64::from(USHRT_MAX) {
            sum -= i64::from(USHRT_MAX);
        }
    }
    if let [last] = chunks.remainder() {
        sum += i64::from(*last);
    }
    while sum > i64::from(USHRT_MAX) {
        sum -= i64::from(USHRT_MAX);
    }
    let mut c = !sum;
    while c < 0 {
        c += i64::from(USHRT_MAX);
    }
    c as u16
}

/// One packet (without the TCP frame): command, checksum, session, reply
/// id, data. As pyzk's `__create_header`, the checksum is computed with the
/// previous reply id and the packet carries the next one (`prev + 1`,
/// wrapping at 65535).
pub fn packet(command: u16, session: u16, prev_reply: u16, data: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + data.len());
    p.extend_from_slice(&command.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&session.to_le_bytes());
    p.extend_from_slice(&prev_reply.to_le_bytes());
    p.extend_from_slice(data);
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_le_bytes());
    let next = ((u32::from(prev_reply) + 1) % USHRT_MAX) as u16;
    p[6..8].copy_from_slice(&next.to_le_bytes());
    p
}

/// pyzk `make_commkey`: the comm key scrambled with the session id.
pub fn make_commkey(key: u32, session: u16, ticks: u8) -> [u8; 4] {
    let mut k: u32 = 0;
    for i in 0..32 {
        k = if key & (1 << i) != 0 {
            (k << 1) | 1
        } else {
            k << 1
        };
    }
    let k = k.wrapping_add(u32::from(session)).to_le_bytes();
    let x = [k[0] ^ b'Z', k[1] ^ b'K', k[2] ^ b'S', k[3] ^ b'O'];
    // Swap the two 16-bit halves.
    let s = [x[2], x[3], x[0], x[1]];
    [s[0] ^ ticks, s[1] ^ ticks, ticks, s[3] ^ ticks]
}

/// pyzk `__decode_time`: seconds in a calendar of 31-day months.
pub fn decode_time(t: u32) -> Option<NaiveDateTime> {
    let second = t % 60;
    let t = t / 60;
    let minute = t % 60;
    let t = t / 60;
    let hour = t % 24;
    let t = t / 24;
    let day = t % 31 + 1;
    let t = t / 31;
    let month = t % 12 + 1;
    let year = t / 12 + 2000;
    let year = i32::try_from(year).ok().filter(|y| *y <= 2100)?;
    NaiveDate::from_ymd_opt(year, month, day)?.and_hms_opt(hour, minute, second)
}

/// The inverse of [`decode_time`] (for emulators and tests).
pub fn encode_time(t: NaiveDateTime) -> u32 {
    let y = u32::try_from(t.year() - 2000).unwrap_or(0);
    ((y * 12 * 31 + (t.month() - 1) * 31 + t.day() - 1) * 24 * 60 * 60)
        + (t.hour() * 60 + t.minute()) * 60
        + t.second()
}

/// One attendance record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttRecord {
    /// The user id (PIN) as the device keeps it.
    pub user_id: String,
    /// Local wall time.
    pub time: NaiveDateTime,
    /// Status (check in/out …).
    pub status: u8,
    /// Punch (verify method).
    pub punch: u8,
}

fn c_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).trim().to_string()
}

/// Parses the attendance buffer (4-byte size, then records of 8, 16 or 40
/// bytes, the size being `total / records` as pyzk computes it). Records
/// with an impossible time are returned in the error list.
pub fn parse_attlog(data: &[u8], records: u32) -> (Vec<AttRecord>, Vec<String>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    if data.len() < 4 || records == 0 {
        return (out, bad);
    }
    let total = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let body = &data[4..data.len().min(4 + total)];
    let size = total / records as usize;
    let size = match size {
        8 | 16 => size,
        _ => 40,
    };
    for r in body.chunks(size) {
        if r.len() < size.min(r.len().max(1)) || r.len() < 8 {
            break;
        }
        let (user_id, ts, status, punch) = match size {
            8 => (
                u16::from_le_bytes([r[0], r[1]]).to_string(),
                [r[3], r[4], r[5], r[6]],
                r[2],
                r[7],
            ),
            16 => {
                if r.len() < 16 {
                    break;
                }
                (
                    u32::from_le_bytes([r[0], r[1], r[2], r[3]]).to_string(),
                    [r[4], r[5], r[6], r[7]],
                    r[8],
                    r[9],
                )
            }
            _ => {
                let mut full = [0u8; 40];
                full[..r.len().min(40)].copy_from_slice(&r[..r.len().min(40)]);
                (
                    c_str(&full[2..26]),
                    [full[27], full[28], full[29], full[30]],
                    full[26],
                    full[31],
                )
            }
        };
        match decode_time(u32::from_le_bytes(ts)) {
            Some(time) => out.push(AttRecord {
                user_id,
                time,
                status,
                punch,
            }),
            None => bad.push(format!("user {user_id}: time {:?} out of range", ts)),
        }
    }
    (out, bad)
}

/// One user of the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkUser {
    /// Internal slot.
    pub uid: u16,
    /// The user id (PIN) punches carry.
    pub user_id: String,
    /// Name.
    pub name: String,
    /// Card number (0 when none).
    pub card: u32,
    /// Privilege (0 user, 14 admin).
    pub privilege: u8,
}

/// Parses the user buffer (records of 28 or 72 bytes).
pub fn parse_users(data: &[u8], users: u32) -> Vec<ZkUser> {
    let mut out = Vec::new();
    if data.len() < 4 || users == 0 {
        return out;
    }
    let total = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let body = &data[4..data.len().min(4 + total)];
    let size = if total / users as usize == 28 { 28 } else { 72 };
    for r in body.chunks_exact(size) {
        let uid = u16::from_le_bytes([r[0], r[1]]);
        if size == 28 {
            // <HB5s8sIxBhI
            out.push(ZkUser {
                uid,
                privilege: r[2],
                name: c_str(&r[8..16]),
                card: u32::from_le_bytes([r[16], r[17], r[18], r[19]]),
                user_id: u32::from_le_bytes([r[24], r[25], r[26], r[27]]).to_string(),
            });
        } else {
            // <HB8s24sIx7sx24s
            out.push(ZkUser {
                uid,
                privilege: r[2],
                name: c_str(&r[11..35]),
                card: u32::from_le_bytes([r[35], r[36], r[37], r[38]]),
                user_id: c_str(&r[48..72]),
            });
        }
    }
    out
}

/// Why a poll failed.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// The comm key was refused.
    #[error("the device refused comm_key: wrong communication password (CMD_ACK_UNAUTH)")]
    Unauthorized,
    /// The device answered something else than expected.
    #[error("{0}")]
    Protocol(String),
    /// Network.
    #[error("{0}")]
    Io(String),
}

enum Link {
    Tcp(TcpStream),
    Udp(UdpSocket),
}

/// A session with one terminal.
pub struct Session {
    link: Link,
    session: u16,
    reply: u16,
    timeout: Duration,
}

fn io(what: &str) -> impl Fn(std::io::Error) -> ZkError + '_ {
    move |e| ZkError::Io(format!("{what}: {e}"))
}

impl Session {
    /// Connects over TCP (or UDP) and opens a session with `comm_key`.
    pub async fn open(
        address: &str,
        transport: &str,
        comm_key: u32,
        timeout: Duration,
    ) -> Result<Session, ZkError> {
        let tcp = if transport == "udp" {
            None
        } else {
            match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
                Ok(Ok(s)) => Some(s),
                Ok(Err(e)) if transport == "tcp-only" => {
                    return Err(ZkError::Io(format!("connect {address}: {e}")));
                }
                Err(_) if transport == "tcp-only" => {
                    return Err(ZkError::Io(format!("connect {address}: timed out")));
                }
                _ => None,
            }
        };
        let link = match tcp {
            Some(s) => Link::Tcp(s),
            None => {
                let sock = UdpSocket::bind(if address.starts_with('[') {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                })
                .await
                .map_err(io("udp bind"))?;
                sock.connect(address).await.map_err(io("udp connect"))?;
                Link::Udp(sock)
            }
        };
        let mut s = Session {
            link,
            session: 0,
            reply: (USHRT_MAX - 1) as u16,
            timeout,
        };
        let (code, _) = s.command(cmd::CONNECT, &[]).await?;
        if code == cmd::ACK_UNAUTH {
            let key = make_commkey(comm_key, s.session, 50);
            let (code, _) = s.command(cmd::AUTH, &key).await?;
            if code != cmd::ACK_OK {
                return Err(ZkError::Unauthorized);
            }
        } else if code != cmd::ACK_OK {
            return Err(ZkError::Protocol(format!("CMD_CONNECT answered {code}")));
        }
        Ok(s)
    }

    async fn send(&mut self, command: u16, data: &[u8]) -> Result<(), ZkError> {
        let p = packet(command, self.session, self.reply, data);
        self.reply = u16::from_le_bytes([p[6], p[7]]);
        match &mut self.link {
            Link::Tcp(s) => {
                let mut f = Vec::with_capacity(8 + p.len());
                f.extend_from_slice(&TCP_MAGIC);
                f.extend_from_slice(&(p.len() as u32).to_le_bytes());
                f.extend_from_slice(&p);
                s.write_all(&f).await.map_err(io("send"))
            }
            Link::Udp(s) => s.send(&p).await.map(|_| ()).map_err(io("send")),
        }
    }

    async fn recv(&mut self) -> Result<(u16, Vec<u8>), ZkError> {
        let t = self.timeout;
        let p = tokio::time::timeout(t, async {
            match &mut self.link {
                Link::Tcp(s) => {
                    let mut top = [0u8; 8];
                    s.read_exact(&mut top).await.map_err(io("receive"))?;
                    if top[..4] != TCP_MAGIC {
                        return Err(ZkError::Protocol(
                            "answer without the 5050827d frame".into(),
                        ));
                    }
                    let n = u32::from_le_bytes([top[4], top[5], top[6], top[7]]);
                    if !(8..=MAX_DATA).contains(&n) {
                        return Err(ZkError::Protocol(format!("frame of {n} bytes")));
                    }
                    let mut p = vec![0u8; n as usize];
                    s.read_exact(&mut p).await.map_err(io("receive"))?;
                    Ok(p)
                }
                Link::Udp(s) => {
                    let mut p = vec![0u8; 65536];
                    let n = s.recv(&mut p).await.map_err(io("receive"))?;
                    p.truncate(n);
                    if n < 8 {
                        return Err(ZkError::Protocol(format!("packet of {n} bytes")));
                    }
                    Ok(p)
                }
            }
        })
        .await
        .map_err(|_| ZkError::Io(format!("no answer within {t:?}")))??;
        let code = u16::from_le_bytes([p[0], p[1]]);
        self.session = u16::from_le_bytes([p[4], p[5]]);
        Ok((code, p[8..].to_vec()))
    }

    /// Sends a command and reads one answer: (code, data).
    pub async fn command(&mut self, command: u16, data: &[u8]) -> Result<(u16, Vec<u8>), ZkError> {
        self.send(command, data).await?;
        let (code, d) = self.recv().await?;
        if code == cmd::ACK_UNAUTH && command != cmd::CONNECT {
            return Err(ZkError::Unauthorized);
        }
        Ok((code, d))
    }

    fn max_chunk(&self) -> u32 {
        match self.link {
            Link::Tcp(_) => MAX_CHUNK_TCP,
            Link::Udp(_) => MAX_CHUNK_UDP,
        }
    }

    /// The device's serial number (`~SerialNumber`).
    pub async fn serial_number(&mut self) -> Result<String, ZkError> {
        let (code, d) = self.command(cmd::OPTIONS_RRQ, b"~SerialNumber\0").await?;
        if code != cmd::ACK_OK {
            return Err(ZkError::Protocol(format!("~SerialNumber answered {code}")));
        }
        let v = c_str(&d);
        let v = v.split_once('=').map(|(_, v)| v.to_string()).unwrap_or(v);
        let v = v.trim().to_string();
        if v.is_empty() {
            return Err(ZkError::Protocol(
                "the device reports no serial number".into(),
            ));
        }
        Ok(v)
    }

    /// The device clock (local wall time).
    pub async fn time(&mut self) -> Result<Option<NaiveDateTime>, ZkError> {
        let (code, d) = self.command(cmd::GET_TIME, &[]).await?;
        if code != cmd::ACK_OK || d.len() < 4 {
            return Ok(None);
        }
        Ok(decode_time(u32::from_le_bytes([d[0], d[1], d[2], d[3]])))
    }

    /// (users, records) counts.
    pub async fn sizes(&mut self) -> Result<(u32, u32), ZkError> {
        let (code, d) = self.command(cmd::GET_FREE_SIZES, &[]).await?;
        if code != cmd::ACK_OK || d.len() < 80 {
            return Err(ZkError::Protocol(format!(
                "CMD_GET_FREE_SIZES answered {code} with {} bytes",
                d.len()
            )));
        }
        let f = |i: usize| i32::from_le_bytes([d[i * 4], d[i * 4 + 1], d[i * 4 + 2], d[i * 4 + 3]]);
        Ok((f(4).max(0) as u32, f(8).max(0) as u32))
    }

    /// pyzk `read_with_buffer`: the whole table `command` (with `fct`).
    pub async fn read_buffer(&mut self, command: u16, fct: i32) -> Result<Vec<u8>, ZkError> {
        let mut arg = vec![1u8];
        arg.extend_from_slice(&(command as i16).to_le_bytes());
        arg.extend_from_slice(&fct.to_le_bytes());
        arg.extend_from_slice(&0i32.to_le_bytes());
        let (code, d) = self.command(cmd::PREPARE_BUFFER, &arg).await?;
        if code == cmd::DATA {
            return Ok(d);
        }
        if code != cmd::ACK_OK || d.len() < 5 {
            return Err(ZkError::Protocol(format!(
                "_CMD_PREPARE_BUFFER answered {code}"
            )));
        }
        let size = u32::from_le_bytes([d[1], d[2], d[3], d[4]]);
        if size > MAX_DATA {
            return Err(ZkError::Protocol(format!("buffer of {size} bytes")));
        }
        let mut out = Vec::with_capacity(size as usize);
        let chunk = self.max_chunk();
        let mut start = 0u32;
        while start < size {
            let n = chunk.min(size - start);
            let got = self.read_chunk(start, n).await?;
            if got.is_empty() {
                return Err(ZkError::Protocol(format!("empty chunk at {start}")));
            }
            start += got.len() as u32;
            out.extend_from_slice(&got);
        }
        let _ = self.command(cmd::FREE_DATA, &[]).await?;
        Ok(out)
    }

    async fn read_chunk(&mut self, start: u32, size: u32) -> Result<Vec<u8>, ZkError> {
        let mut arg = Vec::with_capacity(8);
        arg.extend_from_slice(&(start as i32).to_le_bytes());
        arg.extend_from_slice(&(size as i32).to_le_bytes());
        let (code, d) = self.command(cmd::READ_BUFFER, &arg).await?;
        match code {
            cmd::DATA => Ok(d),
            cmd::PREPARE_DATA => {
                let want = d
                    .get(..4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .unwrap_or(size)
                    .min(MAX_DATA) as usize;
                let mut out = Vec::with_capacity(want);
                while out.len() < want {
                    let (c, d) = self.recv().await?;
                    match c {
                        cmd::DATA => out.extend_from_slice(&d),
                        cmd::ACK_OK => break,
                        c => return Err(ZkError::Protocol(format!("chunk answered {c}"))),
                    }
                }
                if out.len() >= want {
                    // The closing ACK_OK.
                    let (c, _) = self.recv().await?;
                    if c != cmd::ACK_OK {
                        return Err(ZkError::Protocol(format!("chunk closed with {c}")));
                    }
                }
                Ok(out)
            }
            c => Err(ZkError::Protocol(format!("_CMD_READ_BUFFER answered {c}"))),
        }
    }

    /// The attendance log.
    pub async fn attendance(&mut self) -> Result<(Vec<AttRecord>, Vec<String>), ZkError> {
        let (_, records) = self.sizes().await?;
        if records == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        let d = self.read_buffer(cmd::ATTLOG_RRQ, 0).await?;
        Ok(parse_attlog(&d, records))
    }

    /// The user table.
    pub async fn users(&mut self) -> Result<Vec<ZkUser>, ZkError> {
        let (users, _) = self.sizes().await?;
        if users == 0 {
            return Ok(Vec::new());
        }
        let d = self.read_buffer(cmd::USERTEMP_RRQ, cmd::FCT_USER).await?;
        Ok(parse_users(&d, users))
    }

    /// Ends the session.
    pub async fn close(mut self) {
        let _ = self.command(cmd::EXIT, &[]).await;
    }
}

/// The records after `cursor`, in time order, each with the cursor after
/// it. The log is sorted by time (stably: the device's order within one
/// second is kept); records before the cursor's time, and the first
/// `cursor.count` records at its time, were read before.
pub fn after_cursor(
    mut log: Vec<AttRecord>,
    tz: Tz,
    cursor: &Cursor,
) -> Vec<(AttRecord, DateTime<Utc>, i64)> {
    log.sort_by_key(|r| r.time);
    let mut out = Vec::new();
    let mut same: i64 = 0;
    let mut prev: Option<NaiveDateTime> = None;
    for r in log {
        if prev != Some(r.time) {
            same = 0;
            prev = Some(r.time);
        }
        same += 1;
        let at = crate::domain::time::resolve_local(tz, r.time);
        let old = match cursor.time {
            Some(t) => at < t || (at == t && same <= cursor.count),
            None => false,
        };
        if !old {
            out.push((r, at, same));
        }
    }
    out
}

/// How far past our clock a record may lie and still move the cursor: a
/// record stamped days ahead (a terminal whose clock was once set to
/// 2099) is stored or quarantined like any other, but the cursor stays
/// before it, or every later record of the real present would look
/// already read and never be collected.
pub const MAX_AHEAD_SECONDS: i64 = 24 * 3600;

/// The cursor after committing `chunk` (records in time order, from
/// [`after_cursor`]): the last record no later than `ahead`, else
/// `previous`.
pub fn cursor_after(
    chunk: &[(AttRecord, DateTime<Utc>, i64)],
    previous: &Cursor,
    ahead: DateTime<Utc>,
) -> Cursor {
    match chunk.iter().rev().find(|(_, at, _)| *at <= ahead) {
        Some((_, at, count)) => Cursor {
            time: Some(*at),
            count: *count,
            epoch: 0,
        },
        None => previous.clone(),
    }
}

/// An ATTLOG line (PUSH layout) for the `zk-attlog` decoder.
pub fn attlog_line(r: &AttRecord) -> String {
    format!(
        "{}\t{}\t{}\t{}\t0\t0\t0",
        r.user_id,
        r.time.format("%Y-%m-%d %H:%M:%S"),
        r.status,
        r.punch
    )
}

/// Records per commit.
const BATCH: usize = 500;

/// Polls the terminal every `poll_seconds` until `stop` fires.
pub async fn run(raw: RawZkPull, tz: Tz, cx: PullCtx, stop: CancellationToken) {
    let poll = Duration::from_secs(raw.poll_seconds);
    let mut backoff = Backoff::new(
        Duration::from_millis(raw.retry_min_ms),
        Duration::from_secs(300),
    );
    cx.state(false, "connecting");
    loop {
        let wait = match poll_once(&raw, tz, &cx, &stop).await {
            Ok(None) => return,
            Ok(Some(detail)) => {
                backoff.reset();
                cx.state(true, detail);
                poll
            }
            Err(e) => {
                cx.error(match e {
                    ZkError::Unauthorized => "auth",
                    ZkError::Protocol(_) => "protocol",
                    ZkError::Io(_) => "connection",
                });
                let d = backoff.next_delay();
                let msg = format!("{}: {}: {e}; retrying in {d:.1?}", cx.name, raw.address);
                warn!(source = %cx.name, "{msg}");
                cx.state(false, msg);
                d
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One poll: `Ok(None)` when stopped, else the state to report.
async fn poll_once(
    raw: &RawZkPull,
    tz: Tz,
    cx: &PullCtx,
    stop: &CancellationToken,
) -> Result<Option<String>, ZkError> {
    let timeout = Duration::from_secs(raw.timeout_seconds);
    let mut s = Session::open(&raw.address, &raw.transport, raw.comm_key, timeout).await?;
    let serial = s.serial_number().await?;
    let mut detail = format!("device {serial}: polled");
    if let Some(dev) = s.time().await? {
        let ours = crate::clock::now().with_timezone(&tz).naive_local();
        let off = (dev - ours).num_seconds();
        if let Some(m) = &cx.metrics {
            m.set(
                "attendd_pull_clock_offset_seconds",
                &[("source", &cx.name), ("device", &serial)],
                off as f64,
            );
        }
        if off.abs() > 60 {
            warn!(source = %cx.name, "device {serial}: its clock is {off} s off ours ({dev} against {ours} in {tz}); punches are stored as stamped");
            detail = format!("device {serial}: polled; clock {off} s off");
        }
    }
    let (log, bad) = s.attendance().await?;
    s.close().await;
    for b in &bad {
        warn!(source = %cx.name, "device {serial}: record skipped: {b}");
    }
    let mut cursor = cx.cursor(&serial).await.map_err(ZkError::Io)?;
    let new = after_cursor(log, tz, &cursor);
    let n = new.len();
    let ahead = crate::clock::now() + chrono::Duration::seconds(MAX_AHEAD_SECONDS);
    for chunk in new.chunks(BATCH) {
        if chunk.is_empty() {
            continue;
        }
        let text: String = chunk
            .iter()
            .map(|(r, _, _)| attlog_line(r) + "\n")
            .collect();
        cursor = cursor_after(chunk, &cursor, ahead);
        if !cx
            .commit(&serial, vec![text.into_bytes()], &cursor, stop)
            .await
        {
            return Ok(None);
        }
    }
    cx.caught_up(n);
    if n > 0 {
        info!(source = %cx.name, "device {serial}: {n} new record(s)");
    }
    Ok(Some(detail))
}

/// Starts every `[[source.zk_pull]]`.
pub fn spawn_all(
    sources: &[RawZkPull],
    default_tz: Tz,
    make: impl Fn(&str) -> PullCtx,
    tracker: &tokio_util::task::TaskTracker,
    stop: &CancellationToken,
) {
    for (i, raw) in sources.iter().enumerate() {
        let tz = raw
            .timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(default_tz);
        tracker.spawn(run(raw.clone(), tz, make(&source_name(i)), stop.clone()));
    }
}

/// The pipeline decoding of a `[[source.zk_pull]]`.
pub fn decoding(tz: Tz) -> super::SourceDecoding {
    use crate::ingest::decode::{Decoder, ZkLayout, ZkOptions};
    super::SourceDecoding {
        decoder: Decoder::ZkAttlog(ZkOptions {
            layout: ZkLayout::Push,
        }),
        tz,
        // What a quarantine replay decodes with: the same layout.
        options: toml::Table::from_iter([("layout".to_string(), toml::Value::from("push"))]),
    }
}

/// `attendd terminal users SOURCE`: reads the user table of the
/// `[[source.zk_pull]]` named `SOURCE` (`zk_pull[0]`, or its address).
pub async fn read_users(raw: &RawZkPull) -> Result<(String, Vec<ZkUser>), ZkError> {
    let timeout = Duration::from_secs(raw.timeout_seconds);
    let mut s = Session::open(&raw.address, &raw.transport, raw.comm_key, timeout).await?;
    let serial = s.serial_number().await?;
    let users = s.users().await?;
    s.close().await;
    Ok((serial, users))
}

#[cfg(test)]
mod tests;
