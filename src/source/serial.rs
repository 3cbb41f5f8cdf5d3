//! The serial source: card readers and terminals on a UART.
//!
//! Reads bytes, cuts them into frames ([`Framer`]: lines, or STX…ETX), and
//! hands each batch of frames to the sink with its arrival time. Nothing on
//! a serial line can be re-sent, so a frame is committed before the next
//! read; a crash loses at most the bytes in the kernel's buffer.
//!
//! Unplugging (read error, end of file, or the device vanishing) is logged
//! once; the port is reopened with backoff and reading resumes without a
//! restart. A partial frame cut off by the unplug is dropped with a log line.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio_serial::SerialPortBuilderExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Backoff, PunchSink, Received, commit_with_retry};

/// How bytes are cut into frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// One frame per line; CR, LF and CRLF all end a line.
    Lines,
    /// A frame runs from STX (0x02) to ETX (0x03), both kept; bytes
    /// outside a frame are skipped.
    StxEtx,
}

/// Longest frame kept; longer input is cut and handed on as its own frame
/// (it will be quarantined by the decoder), so noise cannot grow memory.
pub const MAX_FRAME: usize = 4096;

/// Cuts a byte stream into frames, across arbitrary read boundaries.
#[derive(Clone, Debug)]
pub struct Framer {
    framing: Framing,
    buf: Vec<u8>,
    in_frame: bool,
}

impl Framer {
    /// A framer for `framing`.
    pub fn new(framing: Framing) -> Self {
        Framer {
            framing,
            buf: Vec::new(),
            in_frame: false,
        }
    }

    /// Feeds bytes; complete frames are appended to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Vec<u8>>) {
        for &b in bytes {
            match self.framing {
                Framing::Lines => {
                    if b == b'\n' || b == b'\r' {
                        if !self.buf.is_empty() {
                            out.push(std::mem::take(&mut self.buf));
                        }
                    } else {
                        self.buf.push(b);
                    }
                }
                Framing::StxEtx => {
                    if b == 0x02 {
                        if self.in_frame && !self.buf.is_empty() {
                            // A frame without its ETX: hand it on to be quarantined.
                            out.push(std::mem::take(&mut self.buf));
                        }
                        self.in_frame = true;
                        self.buf.clear();
                        self.buf.push(b);
                    } else if self.in_frame {
                        self.buf.push(b);
                        if b == 0x03 {
                            out.push(std::mem::take(&mut self.buf));
                            self.in_frame = false;
                        }
                    }
                }
            }
            if self.buf.len() >= MAX_FRAME {
                out.push(std::mem::take(&mut self.buf));
                self.in_frame = false;
            }
        }
    }

    /// Drops a partial frame (after an unplug); returns its length.
    pub fn reset(&mut self) -> usize {
        self.in_frame = false;
        std::mem::take(&mut self.buf).len()
    }
}

/// Settings for one `[[source.serial]]`.
#[derive(Clone, Debug)]
pub struct SerialSettings {
    /// Name in logs and in [`Received::source`], e.g. `serial[0]`.
    pub name: Arc<str>,
    /// Device path.
    pub path: String,
    /// Baud rate.
    pub baud: u32,
    /// Data bits, 5 … 8.
    pub data_bits: tokio_serial::DataBits,
    /// Parity.
    pub parity: tokio_serial::Parity,
    /// Stop bits.
    pub stop_bits: tokio_serial::StopBits,
    /// Framing.
    pub framing: Framing,
    /// First reopen delay after an unplug (doubles up to 30 s).
    pub retry_min: Duration,
    /// Where the port state is reported for `/healthz`.
    pub health: Option<Arc<crate::health::Health>>,
}

impl SerialSettings {
    /// 8N1 line-framed settings for `path` at `baud`.
    pub fn new(name: &str, path: &str, baud: u32) -> Self {
        SerialSettings {
            name: Arc::from(name),
            path: path.to_string(),
            baud,
            data_bits: tokio_serial::DataBits::Eight,
            parity: tokio_serial::Parity::None,
            stop_bits: tokio_serial::StopBits::One,
            framing: Framing::Lines,
            retry_min: Duration::from_millis(500),
            health: None,
        }
    }
}

/// Reads the port until `shutdown` fires, reopening it after unplugs.
pub async fn run<S: PunchSink>(s: SerialSettings, sink: Arc<S>, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(s.retry_min, Duration::from_secs(30));
    let mut commit_backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
    let mut framer = Framer::new(s.framing);
    let mut unplugged_logged = false;
    let mut buf = vec![0u8; 4096];
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut batch: Vec<Received> = Vec::new();
    'reopen: loop {
        let opened = tokio_serial::new(&s.path, s.baud)
            .data_bits(s.data_bits)
            .parity(s.parity)
            .stop_bits(s.stop_bits)
            .open_native_async();
        let mut port = match opened {
            Ok(p) => p,
            Err(e) => {
                if let Some(h) = &s.health {
                    h.set(
                        &s.name,
                        false,
                        format!("{}: {e}", s.path),
                        crate::clock::now(),
                    );
                }
                if !unplugged_logged {
                    warn!(source = %s.name, "cannot open {}: {e}; retrying with backoff", s.path);
                    unplugged_logged = true;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff.next_delay()) => continue 'reopen,
                }
            }
        };
        if let Some(h) = &s.health {
            h.set(
                &s.name,
                true,
                format!("reading {}", s.path),
                crate::clock::now(),
            );
        }
        if unplugged_logged {
            info!(source = %s.name, "{} is back; reading resumes", s.path);
        } else {
            info!(source = %s.name, "reading {} at {} baud", s.path, s.baud);
        }
        backoff.reset();
        loop {
            let n = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = port.read(&mut buf) => r,
            };
            let n = match n {
                Ok(0) | Err(_) => {
                    if let Some(h) = &s.health {
                        h.set(
                            &s.name,
                            false,
                            format!("{} unplugged", s.path),
                            crate::clock::now(),
                        );
                    }
                    let lost = framer.reset();
                    warn!(
                        source = %s.name,
                        "{} was unplugged or failed{}; reopening with backoff",
                        s.path,
                        if lost > 0 { format!(" ({lost} bytes of a partial frame dropped)") } else { String::new() }
                    );
                    unplugged_logged = true;
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_delay()) => continue 'reopen,
                    }
                }
                Ok(n) => n,
            };
            frames.clear();
            framer.push(&buf[..n], &mut frames);
            if frames.is_empty() {
                continue;
            }
            let now = crate::clock::now();
            batch.clear();
            batch.extend(frames.drain(..).map(|f| Received {
                source: s.name.clone(),
                topic: None,
                payload: f,
                received_at: now,
            }));
            if !commit_with_retry(&*sink, &batch, &mut commit_backoff, &shutdown, &s.name).await {
                warn!(source = %s.name, "shutting down with {} uncommitted frame(s)", batch.len());
                return;
            }
        }
    }
}

impl crate::config::RawSerial {
    /// Source settings for the port.
    pub fn settings(&self, name: &str) -> crate::source::serial::SerialSettings {
        let mut s = SerialSettings::new(name, &self.path.display().to_string(), self.baud);
        s.data_bits = match self.data_bits {
            5 => tokio_serial::DataBits::Five,
            6 => tokio_serial::DataBits::Six,
            7 => tokio_serial::DataBits::Seven,
            _ => tokio_serial::DataBits::Eight,
        };
        s.parity = match self.parity.as_str() {
            "odd" => tokio_serial::Parity::Odd,
            "even" => tokio_serial::Parity::Even,
            _ => tokio_serial::Parity::None,
        };
        s.stop_bits = if self.stop_bits == 2 {
            tokio_serial::StopBits::Two
        } else {
            tokio_serial::StopBits::One
        };
        s.framing = if self.framing == "stx-etx" {
            Framing::StxEtx
        } else {
            Framing::Lines
        };
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_read_boundaries() {
        let mut f = Framer::new(Framing::Lines);
        let mut out = Vec::new();
        for chunk in [
            &b"104"[..],
            b"3\t2025-03-04 08:57:12\t0\r",
            b"\n0217\t",
            b"x\n\n0C8707\r",
        ] {
            f.push(chunk, &mut out);
        }
        assert_eq!(
            out,
            vec![
                b"1043\t2025-03-04 08:57:12\t0".to_vec(),
                b"0217\tx".to_vec(),
                b"0C8707".to_vec()
            ]
        );
    }

    #[test]
    fn stx_etx_frames_skip_noise_and_survive_splits() {
        let mut f = Framer::new(Framing::StxEtx);
        let mut out = Vec::new();
        let frame = b"\x020A00BC614E99\x03";
        let mut stream = b"noise".to_vec();
        stream.extend_from_slice(frame);
        stream.extend_from_slice(b"\x020A00");
        stream.extend_from_slice(frame);
        for b in stream.chunks(3) {
            f.push(b, &mut out);
        }
        assert_eq!(
            out,
            vec![frame.to_vec(), b"\x020A00".to_vec(), frame.to_vec()]
        );
    }

    #[test]
    fn overlong_input_is_cut() {
        let mut f = Framer::new(Framing::Lines);
        let mut out = Vec::new();
        f.push(&vec![b'a'; MAX_FRAME + 10], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), MAX_FRAME);
        assert_eq!(f.reset(), 10);
    }
}
