//! Protocol emulators for the pull tests: terminals that only answer when
//! asked, served on 127.0.0.1 from threads.
//!
//! Hikvision ISAPI, shaped after real exchanges:
//! - `GET /ISAPI/System/deviceInfo` answers a `DeviceInfo` XML document
//!   (pergolafabio/Hikvision-Addons issue #148, a DS-K1T341AM's answer:
//!   `deviceName`, `model`, `serialNumber`, `macAddress`, …);
//! - `POST /ISAPI/AccessControl/AcsEvent?format=json` takes an
//!   `AcsEventCond` and answers `{"AcsEvent":{"searchID","responseStatusStrg":
//!   "MORE","numOfMatches","totalMatches","InfoList":[{"major":5,"minor":38,
//!   "time":…,"cardType":1,"name":…,"cardReaderNo":1,…}]}}`
//!   (pergolafabio/Hikvision-Addons issue #177, a DS-K1T502DBFWX-C queried
//!   with `curl --digest`);
//! - `GET /ISAPI/Event/notification/alertStream` is a never-ending
//!   `multipart/mixed; boundary=MIME_boundary` body of JSON parts, each with
//!   its own `Content-Length`, and heartbeat parts (`eventType: heartBeat`),
//!   as the issue threads of the same repository and of
//!   maciej-or/hikvision_next show;
//! - every route needs digest authentication (`WWW-Authenticate: Digest
//!   qop="auth", realm=…, nonce=…, stale="FALSE"`), which the emulator
//!   checks with the RFC 2617 computation.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use attendd::source::digest::{Challenge, response};
use chrono::{DateTime, FixedOffset};
use serde_json::{Value, json};

pub const HIK_NONCE: &str = "4e5468694e7a42694e7a4d364f4449334f5441354f513d3d";
pub const HIK_REALM: &str = "DS-K1T671M";

/// One request as read off the socket.
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn read_req(s: &mut BufReader<TcpStream>) -> Option<Req> {
    let mut line = String::new();
    if s.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut it = line.split_whitespace();
    let method = it.next()?.to_string();
    let path = it.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        s.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    s.read_exact(&mut body).ok()?;
    Some(Req {
        method,
        path,
        headers,
        body,
    })
}

/// Checks a digest `Authorization` header against `user`/`password`.
pub fn digest_ok(
    auth: Option<&str>,
    method: &str,
    user: &str,
    password: &str,
    realm: &str,
    nonce: &str,
) -> bool {
    let Some(a) = auth.and_then(|a| a.strip_prefix("Digest ")) else {
        return false;
    };
    let get = |k: &str| {
        a.split(", ").find_map(|p| {
            let (pk, pv) = p.split_once('=')?;
            (pk.trim() == k).then(|| pv.trim_matches('"').to_string())
        })
    };
    let c = Challenge {
        realm: realm.into(),
        nonce: nonce.into(),
        opaque: None,
        qop_auth: true,
        algorithm: "MD5".into(),
        stale: false,
    };
    let (Some(u), Some(uri), Some(nc), Some(cnonce), Some(resp)) = (
        get("username"),
        get("uri"),
        get("nc"),
        get("cnonce"),
        get("response"),
    ) else {
        return false;
    };
    let Ok(nc) = u32::from_str_radix(&nc, 16) else {
        return false;
    };
    u == user
        && get("nonce").as_deref() == Some(nonce)
        && response(&c, user, password, method, &uri, nc, &cnonce) == resp
}

pub fn challenge_401(s: &mut TcpStream, realm: &str, nonce: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest qop=\"auth\", realm=\"{realm}\", nonce=\"{nonce}\", stale=\"FALSE\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

pub fn reply(s: &mut TcpStream, ctype: &str, body: &[u8]) {
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(body);
}

/// An access event as the terminal keeps it.
#[derive(Clone, Debug)]
pub struct HikEvent {
    pub serial_no: i64,
    pub minor: i64,
    pub time: String,
    pub employee: String,
}

impl HikEvent {
    fn time(&self) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(&self.time).unwrap()
    }

    /// The `AcsEvent.InfoList` form.
    fn search(&self) -> Value {
        json!({"major":5,"minor":self.minor,"time":self.time,"cardType":1,"name":"Worker",
               "cardReaderNo":1,"doorNo":1,"employeeNoString":self.employee,
               "serialNo":self.serial_no,"userType":"normal",
               "currentVerifyMode":"faceOrFpOrCardOrPw","mask":"no",
               "attendanceStatus":"undefined"})
    }

    /// The alertStream part body (also what the terminal POSTs in
    /// listening mode).
    pub fn live(&self) -> Value {
        json!({"ipAddress":"127.0.0.1","portNo":80,"protocol":"HTTP",
               "macAddress":"24:0f:9b:4e:aa:10","channelID":1,"dateTime":self.time,
               "activePostCount":1,"eventType":"AccessControllerEvent","eventState":"active",
               "eventDescription":"Access Controller Event",
               "AccessControllerEvent":{"deviceName":"Access Controller","majorEventType":5,
               "subEventType":self.minor,"name":"Worker","cardReaderNo":1,
               "employeeNoString":self.employee,"serialNo":self.serial_no,"userType":"normal",
               "currentVerifyMode":"faceOrFpOrCardOrPw","currentEvent":true,
               "frontSerialNo":self.serial_no - 1,"attendanceStatus":"undefined",
               "mask":"no","purePwdVerifyEnable":true}})
    }
}

/// A Hikvision terminal with a log, an event search and an alert stream.
#[derive(Default)]
pub struct HikState {
    pub serial: String,
    pub password: String,
    pub log: Vec<HikEvent>,
    /// Live events waiting to be written to the open stream.
    pub pending: Vec<HikEvent>,
    /// Write the next pending event only half, then close the stream.
    pub cut_next: bool,
    /// Delay before answering each search page.
    pub page_delay: Duration,
    /// Do not let the stream carry the events (they reach the log only).
    pub stream_silent: bool,
    /// The search leaves out the newest this many events (its index lags
    /// the stream).
    pub search_lag: usize,
}

pub struct HikEmu {
    pub port: u16,
    pub state: Arc<Mutex<HikState>>,
    pub unauthorized: Arc<AtomicUsize>,
    pub searches: Arc<AtomicUsize>,
    pub streams: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for HikEmu {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl HikEmu {
    pub fn start(state: HikState) -> HikEmu {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let emu = HikEmu {
            port,
            state: Arc::new(Mutex::new(state)),
            unauthorized: Arc::default(),
            searches: Arc::default(),
            streams: Arc::default(),
            stop: Arc::default(),
        };
        let (st, un, se, sr, stop) = (
            emu.state.clone(),
            emu.unauthorized.clone(),
            emu.searches.clone(),
            emu.streams.clone(),
            emu.stop.clone(),
        );
        std::thread::spawn(move || {
            for c in l.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(c) = c else { continue };
                let (st, un, se, sr, stop) =
                    (st.clone(), un.clone(), se.clone(), sr.clone(), stop.clone());
                std::thread::spawn(move || serve_hik(c, st, un, se, sr, stop));
            }
        });
        emu
    }

    /// The terminal records an event; it also goes out on the stream.
    pub fn punch(&self, ev: HikEvent) {
        let mut s = self.state.lock().unwrap();
        s.log.push(ev.clone());
        if !s.stream_silent {
            s.pending.push(ev);
        }
    }
}

fn serve_hik(
    c: TcpStream,
    st: Arc<Mutex<HikState>>,
    unauthorized: Arc<AtomicUsize>,
    searches: Arc<AtomicUsize>,
    streams: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    let Some(req) = read_req(&mut r) else { return };
    let password = st.lock().unwrap().password.clone();
    if !digest_ok(
        req.header("Authorization"),
        &req.method,
        "admin",
        &password,
        HIK_REALM,
        HIK_NONCE,
    ) {
        if req.header("Authorization").is_some() {
            unauthorized.fetch_add(1, Ordering::SeqCst);
        }
        challenge_401(&mut w, HIK_REALM, HIK_NONCE);
        return;
    }
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/ISAPI/System/deviceInfo") => {
            let serial = st.lock().unwrap().serial.clone();
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DeviceInfo version=\"2.0\" xmlns=\"http://www.isapi.org/ver20/XMLSchema\">\n<deviceName>Access Controller</deviceName>\n<deviceID>255</deviceID>\n<model>DS-K1T671M</model>\n<serialNumber>{serial}</serialNumber>\n<macAddress>24:0f:9b:4e:aa:10</macAddress>\n<firmwareVersion>V3.2.30</firmwareVersion>\n<deviceType>ACS</deviceType>\n<manufacturer>hikvision</manufacturer>\n</DeviceInfo>\n"
            );
            reply(&mut w, "application/xml", xml.as_bytes());
        }
        ("POST", "/ISAPI/AccessControl/AcsEvent?format=json") => {
            searches.fetch_add(1, Ordering::SeqCst);
            let v: Value = serde_json::from_slice(&req.body).unwrap();
            let c = &v["AcsEventCond"];
            let start = DateTime::parse_from_rfc3339(c["startTime"].as_str().unwrap()).unwrap();
            let end = DateTime::parse_from_rfc3339(c["endTime"].as_str().unwrap()).unwrap();
            let pos = c["searchResultPosition"].as_u64().unwrap() as usize;
            let max = c["maxResults"].as_u64().unwrap() as usize;
            let (matches, delay) = {
                let s = st.lock().unwrap();
                let m: Vec<HikEvent> = s
                    .log
                    .iter()
                    .take(s.log.len().saturating_sub(s.search_lag))
                    .filter(|e| e.time() >= start && e.time() <= end)
                    .cloned()
                    .collect();
                (m, s.page_delay)
            };
            std::thread::sleep(delay);
            let page: Vec<Value> = matches
                .iter()
                .skip(pos)
                .take(max)
                .map(HikEvent::search)
                .collect();
            let more = pos + page.len() < matches.len();
            let status = if matches.is_empty() {
                "NO MATCH"
            } else if more {
                "MORE"
            } else {
                "OK"
            };
            let body = json!({"AcsEvent":{"searchID":c["searchID"],"responseStatusStrg":status,
                "numOfMatches":page.len(),"totalMatches":matches.len(),"InfoList":page}});
            reply(&mut w, "application/json", body.to_string().as_bytes());
        }
        ("GET", "/ISAPI/Event/notification/alertStream") => {
            // The terminal serves one stream: a newer one replaces it (a
            // write to a dead peer may not fail at once).
            let mine = streams.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary=MIME_boundary\r\nConnection: close\r\n\r\n"
            );
            let mut beat = std::time::Instant::now() - Duration::from_secs(10);
            while !stop.load(Ordering::SeqCst) && streams.load(Ordering::SeqCst) == mine {
                let (next, cut) = {
                    let mut s = st.lock().unwrap();
                    if s.pending.is_empty() {
                        (None, false)
                    } else {
                        let cut = std::mem::take(&mut s.cut_next);
                        (Some(s.pending.remove(0)), cut)
                    }
                };
                let part = match next {
                    Some(ev) => ev.live().to_string(),
                    None if beat.elapsed() > Duration::from_secs(1) => {
                        beat = std::time::Instant::now();
                        json!({"ipAddress":"127.0.0.1","portNo":80,"protocol":"HTTP",
                               "dateTime":"2026-11-02T08:00:00+08:00","activePostCount":1,
                               "eventType":"heartBeat","eventState":"active",
                               "eventDescription":"heartBeat"})
                        .to_string()
                    }
                    None => {
                        std::thread::sleep(Duration::from_millis(30));
                        continue;
                    }
                };
                let head = format!(
                    "--MIME_boundary\r\nContent-Type: application/json; charset=\"UTF-8\"\r\nContent-Length: {}\r\n\r\n",
                    part.len()
                );
                if cut {
                    let _ = w.write_all(head.as_bytes());
                    let _ = w.write_all(&part.as_bytes()[..part.len() / 2]);
                    let _ = w.flush();
                    let _ = w.shutdown(std::net::Shutdown::Both);
                    return;
                }
                if w.write_all(head.as_bytes()).is_err()
                    || w.write_all(part.as_bytes()).is_err()
                    || w.write_all(b"\r\n").is_err()
                {
                    return;
                }
                let _ = w.flush();
            }
        }
        _ => {
            let _ = write!(w, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

/// `n` face-pass events from `first_serial` on, one minute apart from
/// `start` (RFC 3339), each followed by a door-open event (minor 21) that
/// is not a punch.
pub fn hik_history(first_serial: i64, start: &str, n: usize) -> Vec<HikEvent> {
    let t0 = DateTime::parse_from_rfc3339(start).unwrap();
    let mut out = Vec::new();
    let mut sn = first_serial;
    for i in 0..n {
        let t = t0 + chrono::Duration::minutes(i as i64);
        out.push(HikEvent {
            serial_no: sn,
            minor: 75,
            time: t.to_rfc3339(),
            employee: format!("E{:03}", i % 40 + 1),
        });
        out.push(HikEvent {
            serial_no: sn + 1,
            minor: 21,
            time: (t + chrono::Duration::seconds(1)).to_rfc3339(),
            employee: String::new(),
        });
        sn += 2;
    }
    out
}

// ---------------------------------------------------------------------------
// ZKTeco standalone protocol on port 4370, after pyzk (fananimi/pyzk:
// `zk/const.py` for the command codes, `zk/base.py` for the exchanges:
// `connect` → CMD_CONNECT, CMD_ACK_UNAUTH, CMD_AUTH with `make_commkey`;
// `read_sizes` → CMD_GET_FREE_SIZES, 20 little-endian ints with users at
// index 4 and records at 8; `read_with_buffer` → _CMD_PREPARE_BUFFER
// answered CMD_ACK_OK with the size at bytes 1..5, then _CMD_READ_BUFFER
// chunks answered CMD_PREPARE_DATA, CMD_DATA, CMD_ACK_OK; attendance
// records of 40 bytes `<H24sB4sB8s`, users of 72 bytes `<HB8s24sIx7sx24s`,
// times in pyzk's 31-day-month encoding). TCP frames start `50 50 82 7d`
// and a 32-bit length; UDP datagrams carry the bare packet.

use attendd::source::zk_pull::{cmd, encode_time, make_commkey, packet};
use chrono::NaiveDateTime;

/// One record of the device's attendance log.
#[derive(Clone, Debug)]
pub struct ZkRec {
    pub user_id: String,
    pub time: NaiveDateTime,
    pub status: u8,
    pub punch: u8,
}

#[derive(Default)]
pub struct ZkState {
    pub serial: String,
    pub comm_key: u32,
    pub log: Vec<ZkRec>,
    /// (user_id, name, card)
    pub users: Vec<(String, String, u32)>,
    /// How far the device clock runs ahead of the real one.
    pub clock_ahead_seconds: i64,
    /// Zone of the device clock.
    pub tz: Option<chrono_tz::Tz>,
    /// Commands the device received, in order.
    pub commands: Vec<u16>,
}

pub struct ZkEmu {
    pub port: u16,
    pub state: Arc<Mutex<ZkState>>,
    pub refused: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for ZkEmu {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

struct ZkConn {
    session: u16,
    authed: bool,
    buffer: Vec<u8>,
}

/// The commands a reader may send; anything else changes the device.
pub const ZK_READ_ONLY: &[u16] = &[
    cmd::CONNECT,
    cmd::EXIT,
    cmd::AUTH,
    cmd::OPTIONS_RRQ,
    cmd::GET_TIME,
    cmd::GET_FREE_SIZES,
    cmd::PREPARE_BUFFER,
    cmd::READ_BUFFER,
    cmd::FREE_DATA,
];

fn zk_handle(
    st: &Mutex<ZkState>,
    refused: &AtomicUsize,
    c: &mut ZkConn,
    code: u16,
    data: &[u8],
) -> Vec<(u16, Vec<u8>)> {
    let mut s = st.lock().unwrap();
    s.commands.push(code);
    let ok = |d: Vec<u8>| vec![(cmd::ACK_OK, d)];
    if code == cmd::CONNECT {
        c.session = 0x3a5c;
        c.authed = s.comm_key == 0;
        return vec![(
            if c.authed {
                cmd::ACK_OK
            } else {
                cmd::ACK_UNAUTH
            },
            vec![],
        )];
    }
    if code == cmd::AUTH {
        c.authed = data == make_commkey(s.comm_key, c.session, 50);
        if !c.authed {
            refused.fetch_add(1, Ordering::SeqCst);
        }
        return vec![(
            if c.authed {
                cmd::ACK_OK
            } else {
                cmd::ACK_UNAUTH
            },
            vec![],
        )];
    }
    if !c.authed {
        return vec![(cmd::ACK_UNAUTH, vec![])];
    }
    match code {
        cmd::EXIT | cmd::FREE_DATA => ok(vec![]),
        cmd::OPTIONS_RRQ => {
            let mut d = format!("~SerialNumber={}", s.serial).into_bytes();
            d.push(0);
            ok(d)
        }
        cmd::GET_TIME => {
            let tz = s.tz.unwrap_or(chrono_tz::UTC);
            let now = chrono::Utc::now().with_timezone(&tz).naive_local()
                + chrono::Duration::seconds(s.clock_ahead_seconds);
            ok(encode_time(now).to_le_bytes().to_vec())
        }
        cmd::GET_FREE_SIZES => {
            let mut f = [0i32; 20];
            f[4] = s.users.len() as i32;
            f[8] = s.log.len() as i32;
            ok(f.iter().flat_map(|v| v.to_le_bytes()).collect())
        }
        cmd::PREPARE_BUFFER => {
            let table = i16::from_le_bytes([data[1], data[2]]) as u16;
            let mut body = Vec::new();
            if table == cmd::ATTLOG_RRQ {
                for (i, r) in s.log.iter().enumerate() {
                    let mut b = vec![0u8; 40];
                    b[..2].copy_from_slice(&(i as u16 + 1).to_le_bytes());
                    b[2..2 + r.user_id.len()].copy_from_slice(r.user_id.as_bytes());
                    b[26] = r.status;
                    b[27..31].copy_from_slice(&encode_time(r.time).to_le_bytes());
                    b[31] = r.punch;
                    body.extend_from_slice(&b);
                }
            } else if table == cmd::USERTEMP_RRQ {
                for (i, (id, name, card)) in s.users.iter().enumerate() {
                    let mut b = vec![0u8; 72];
                    b[..2].copy_from_slice(&(i as u16 + 1).to_le_bytes());
                    b[11..11 + name.len()].copy_from_slice(name.as_bytes());
                    b[35..39].copy_from_slice(&card.to_le_bytes());
                    b[48..48 + id.len()].copy_from_slice(id.as_bytes());
                    body.extend_from_slice(&b);
                }
            } else {
                return vec![(cmd::ACK_ERROR, vec![])];
            }
            let mut buf = (body.len() as u32).to_le_bytes().to_vec();
            buf.extend_from_slice(&body);
            c.buffer = buf;
            let mut d = vec![0u8];
            d.extend_from_slice(&(c.buffer.len() as u32).to_le_bytes());
            ok(d)
        }
        cmd::READ_BUFFER => {
            let start = i32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
            let size = i32::from_le_bytes([data[4], data[5], data[6], data[7]]) as usize;
            let end = (start + size).min(c.buffer.len());
            let chunk = c.buffer[start.min(end)..end].to_vec();
            vec![
                (
                    cmd::PREPARE_DATA,
                    (chunk.len() as u32).to_le_bytes().to_vec(),
                ),
                (cmd::DATA, chunk),
                (cmd::ACK_OK, vec![]),
            ]
        }
        _ => vec![(cmd::ACK_ERROR, vec![])],
    }
}

impl ZkEmu {
    /// Listens on TCP (and, with `udp_only`, only on UDP: TCP refused).
    pub fn start(state: ZkState, udp_only: bool) -> ZkEmu {
        let stop: Arc<AtomicBool> = Arc::default();
        let refused: Arc<AtomicUsize> = Arc::default();
        let state = Arc::new(Mutex::new(state));
        let port;
        if udp_only {
            let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            port = sock.local_addr().unwrap().port();
            sock.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let (st, rf, stop) = (state.clone(), refused.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut conn = ZkConn {
                    session: 0,
                    authed: false,
                    buffer: Vec::new(),
                };
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::SeqCst) {
                    let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                        continue;
                    };
                    if n < 8 {
                        continue;
                    }
                    let code = u16::from_le_bytes([buf[0], buf[1]]);
                    let reply = u16::from_le_bytes([buf[6], buf[7]]);
                    for (c, d) in zk_handle(&st, &rf, &mut conn, code, &buf[8..n]) {
                        let p = packet(c, conn.session, reply, &d);
                        let _ = sock.send_to(&p, peer);
                    }
                }
            });
        } else {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            port = l.local_addr().unwrap().port();
            let (st, rf, stop) = (state.clone(), refused.clone(), stop.clone());
            std::thread::spawn(move || {
                for s in l.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(mut s) = s else { continue };
                    let (st, rf) = (st.clone(), rf.clone());
                    std::thread::spawn(move || {
                        let mut conn = ZkConn {
                            session: 0,
                            authed: false,
                            buffer: Vec::new(),
                        };
                        loop {
                            let mut top = [0u8; 8];
                            if s.read_exact(&mut top).is_err() {
                                return;
                            }
                            assert_eq!(top[..4], [0x50, 0x50, 0x82, 0x7d]);
                            let n = u32::from_le_bytes([top[4], top[5], top[6], top[7]]) as usize;
                            let mut p = vec![0u8; n];
                            if s.read_exact(&mut p).is_err() {
                                return;
                            }
                            let code = u16::from_le_bytes([p[0], p[1]]);
                            let reply = u16::from_le_bytes([p[6], p[7]]);
                            for (c, d) in zk_handle(&st, &rf, &mut conn, code, &p[8..]) {
                                let q = packet(c, conn.session, reply, &d);
                                let mut f = vec![0x50, 0x50, 0x82, 0x7d];
                                f.extend_from_slice(&(q.len() as u32).to_le_bytes());
                                f.extend_from_slice(&q);
                                if s.write_all(&f).is_err() {
                                    return;
                                }
                            }
                            if code == cmd::EXIT {
                                return;
                            }
                        }
                    });
                }
            });
        }
        ZkEmu {
            port,
            state,
            refused,
            stop,
        }
    }
}

/// `n` records one minute apart from `start` (local wall time), users
/// `0001` … cycling over 30.
pub fn zk_history(start: &str, n: usize) -> Vec<ZkRec> {
    let t0 = NaiveDateTime::parse_from_str(start, "%Y-%m-%d %H:%M:%S").unwrap();
    (0..n)
        .map(|i| ZkRec {
            user_id: format!("{:04}", i % 30 + 1),
            time: t0 + chrono::Duration::minutes(i as i64),
            status: (i % 2) as u8,
            punch: 15,
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Dahua access controller CGI, shaped after the Home Assistant Dahua
// integration (rroller/dahua) and dahua-watch style event listeners:
// `magicBox.cgi?action=getSerialNo` answers `sn=…`; `recordFinder.cgi?
// action=find&name=AccessControlCardRec&StartTime=…&EndTime=…&count=N`
// answers `found=N` then `records[i].Key=Value` lines (CreateTime in epoch
// seconds, RecNo, UserID, Status, Method, Type); `eventManager.cgi?action=
// attach&codes=[AccessControl]` is a `multipart/x-mixed-replace;
// boundary=myboundary` stream of `text/plain` parts with Content-Length:
// `Code=AccessControl;action=Pulse;index=0;data={…}` and `Heartbeat`.
// Digest authentication on every route.

/// One access record of the controller.
#[derive(Clone, Debug)]
pub struct DahuaRec {
    pub rec_no: i64,
    pub utc: i64,
    pub user: String,
    /// 1 granted, 0 refused.
    pub status: i64,
}

impl DahuaRec {
    fn lines(&self, i: usize) -> String {
        format!(
            "records[{i}].AttendanceState=0\r\nrecords[{i}].CardName=\r\nrecords[{i}].CardNo=\r\nrecords[{i}].CardType=0\r\nrecords[{i}].CreateTime={}\r\nrecords[{i}].Door=0\r\nrecords[{i}].ErrorCode=0\r\nrecords[{i}].Method=15\r\nrecords[{i}].Password=\r\nrecords[{i}].ReaderID=1\r\nrecords[{i}].RecNo={}\r\nrecords[{i}].RoomNumber=\r\nrecords[{i}].Status={}\r\nrecords[{i}].Type=Entry\r\nrecords[{i}].URL=\r\nrecords[{i}].UserID={}\r\n",
            self.utc, self.rec_no, self.status, self.user
        )
    }

    fn part(&self) -> String {
        format!(
            "Code=AccessControl;action=Pulse;index=0;data={{\n   \"CardNo\" : \"\",\n   \"CardType\" : null,\n   \"ErrorCode\" : 0,\n   \"Method\" : 15,\n   \"Name\" : \"Face\",\n   \"Password\" : \"\",\n   \"ReaderID\" : \"1\",\n   \"RecNo\" : {},\n   \"SnapURL\" : \"\",\n   \"Status\" : {},\n   \"Type\" : \"Entry\",\n   \"UTC\" : {},\n   \"UserID\" : \"{}\",\n   \"UserType\" : null\n}}\n",
            self.rec_no, self.status, self.utc, self.user
        )
    }
}

#[derive(Default)]
pub struct DahuaState {
    pub serial: String,
    pub password: String,
    pub log: Vec<DahuaRec>,
    pub pending: Vec<DahuaRec>,
    pub stream_silent: bool,
    /// How long each `recordFinder` answer takes (a slow controller).
    pub page_delay: Duration,
}

pub struct DahuaEmu {
    pub port: u16,
    pub state: Arc<Mutex<DahuaState>>,
    pub finds: Arc<AtomicUsize>,
    pub streams: Arc<AtomicUsize>,
    pub unauthorized: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for DahuaEmu {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

const DAHUA_REALM: &str = "Login to 4L0AB12PAJ00123";
const DAHUA_NONCE: &str = "1874590187";

impl DahuaEmu {
    pub fn start(state: DahuaState) -> DahuaEmu {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let emu = DahuaEmu {
            port: l.local_addr().unwrap().port(),
            state: Arc::new(Mutex::new(state)),
            finds: Arc::default(),
            streams: Arc::default(),
            unauthorized: Arc::default(),
            stop: Arc::default(),
        };
        let (st, fi, sr, un, stop) = (
            emu.state.clone(),
            emu.finds.clone(),
            emu.streams.clone(),
            emu.unauthorized.clone(),
            emu.stop.clone(),
        );
        std::thread::spawn(move || {
            for c in l.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(c) = c else { continue };
                let (st, fi, sr, un, stop) =
                    (st.clone(), fi.clone(), sr.clone(), un.clone(), stop.clone());
                std::thread::spawn(move || serve_dahua(c, st, fi, sr, un, stop));
            }
        });
        emu
    }

    pub fn punch(&self, r: DahuaRec) {
        let mut s = self.state.lock().unwrap();
        s.log.push(r.clone());
        if !s.stream_silent {
            s.pending.push(r);
        }
    }
}

fn query<'q>(path: &'q str, key: &str) -> Option<&'q str> {
    path.split_once('?')?
        .1
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

fn serve_dahua(
    c: TcpStream,
    st: Arc<Mutex<DahuaState>>,
    finds: Arc<AtomicUsize>,
    streams: Arc<AtomicUsize>,
    unauthorized: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
) {
    let mut w = c.try_clone().unwrap();
    let mut r = BufReader::new(c);
    let Some(req) = read_req(&mut r) else { return };
    let password = st.lock().unwrap().password.clone();
    if !digest_ok(
        req.header("Authorization"),
        &req.method,
        "admin",
        &password,
        DAHUA_REALM,
        DAHUA_NONCE,
    ) {
        if req.header("Authorization").is_some() {
            unauthorized.fetch_add(1, Ordering::SeqCst);
        }
        challenge_401(&mut w, DAHUA_REALM, DAHUA_NONCE);
        return;
    }
    let route = req.path.split('?').next().unwrap_or("");
    match route {
        "/cgi-bin/magicBox.cgi" => {
            let sn = st.lock().unwrap().serial.clone();
            reply(&mut w, "text/plain", format!("sn={sn}\r\n").as_bytes());
        }
        "/cgi-bin/recordFinder.cgi" => {
            finds.fetch_add(1, Ordering::SeqCst);
            assert_eq!(query(&req.path, "name"), Some("AccessControlCardRec"));
            let start: i64 = query(&req.path, "StartTime").unwrap().parse().unwrap();
            let end: i64 = query(&req.path, "EndTime").unwrap().parse().unwrap();
            let count: usize = query(&req.path, "count").unwrap_or("1024").parse().unwrap();
            let delay = st.lock().unwrap().page_delay;
            std::thread::sleep(delay);
            let s = st.lock().unwrap();
            let m: Vec<&DahuaRec> = s
                .log
                .iter()
                .filter(|r| r.utc >= start && r.utc <= end)
                .take(count)
                .collect();
            let mut body = format!("found={}\r\n", m.len());
            for (i, r) in m.iter().enumerate() {
                body.push_str(&r.lines(i));
            }
            reply(&mut w, "text/plain", body.as_bytes());
        }
        "/cgi-bin/eventManager.cgi" => {
            assert_eq!(query(&req.path, "action"), Some("attach"));
            let mine = streams.fetch_add(1, Ordering::SeqCst) + 1;
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=myboundary\r\nConnection: close\r\n\r\n"
            );
            let mut beat = std::time::Instant::now() - Duration::from_secs(10);
            while !stop.load(Ordering::SeqCst) && streams.load(Ordering::SeqCst) == mine {
                let next = {
                    let mut s = st.lock().unwrap();
                    (!s.pending.is_empty()).then(|| s.pending.remove(0))
                };
                let part = match next {
                    Some(r) => r.part(),
                    None if beat.elapsed() > Duration::from_secs(1) => {
                        beat = std::time::Instant::now();
                        "Heartbeat".to_string()
                    }
                    None => {
                        std::thread::sleep(Duration::from_millis(30));
                        continue;
                    }
                };
                let msg = format!(
                    "--myboundary\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{part}\r\n",
                    part.len()
                );
                if w.write_all(msg.as_bytes()).is_err() {
                    return;
                }
                let _ = w.flush();
            }
        }
        _ => {
            let _ = write!(w, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

/// `n` granted records from RecNo `first`, one minute apart from epoch
/// `t0`, users `1` … `25`; every fifth is refused (Status 0, not a punch).
pub fn dahua_history(first: i64, t0: i64, n: usize) -> Vec<DahuaRec> {
    (0..n)
        .map(|i| DahuaRec {
            rec_no: first + i as i64,
            utc: t0 + 60 * i as i64,
            user: format!("{}", i % 25 + 1),
            status: i64::from(i % 5 != 4),
        })
        .collect()
}
