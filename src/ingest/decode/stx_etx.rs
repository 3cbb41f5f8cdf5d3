//! `stx-etx`: 125 kHz EM4100 reader modules (RDM6300, Grove) on a serial
//! line (`devices.md` §5): 14-byte frames `STX(0x02)`, 10 ASCII hex
//! characters (2 version + 8 tag), 2 ASCII hex checksum = XOR of the 5 data
//! bytes, `ETX(0x03)`.
//!
//! A frame whose checksum does not match is an error (quarantined, never a
//! punch). The identity is the 32-bit tag in [`super::canonical_card`] form
//! (tag `00BC614E`, printed `0012345678`, is `12345678`); the version byte is
//! not part of it. The time is the arrival time. [`FrameSplitter`] cuts a
//! byte stream into frames whatever the read boundaries; the reader repeats
//! frames while the tag is in the field, so callers run a
//! [`super::Debounce`].

use super::value::{cap, invalid};
use super::{
    DecodeContext, DecodeError, Decoded, DecodedPunch, Identity, Ignored, LineError, PunchKind,
    Verify, canonical_card,
};

/// Start of frame.
pub const STX: u8 = 0x02;
/// End of frame.
pub const ETX: u8 = 0x03;
/// Longest frame kept (with STX and ETX); longer runs without ETX are
/// noise and dropped, so a stuck line cannot grow the buffer.
pub const MAX_FRAME: usize = 32;

/// Reassembles STX…ETX frames from reads of any size: a frame may straddle
/// reads and a read may hold several frames. Bytes outside frames are
/// dropped and counted; an STX inside an unfinished frame starts over.
#[derive(Clone, Debug, Default)]
pub struct FrameSplitter {
    buf: Vec<u8>,
    discarded: u64,
}

impl FrameSplitter {
    /// Feeds one read; returns the frames it completed, each with its STX
    /// and ETX.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for &b in bytes {
            let in_frame = !self.buf.is_empty();
            match b {
                STX => {
                    self.discarded += self.buf.len() as u64;
                    self.buf.clear();
                    self.buf.push(STX);
                }
                ETX if in_frame => {
                    self.buf.push(ETX);
                    frames.push(std::mem::take(&mut self.buf));
                }
                _ if in_frame && self.buf.len() + 1 < MAX_FRAME => self.buf.push(b),
                _ if in_frame => {
                    self.discarded += self.buf.len() as u64 + 1;
                    self.buf.clear();
                }
                _ => self.discarded += 1,
            }
        }
        frames
    }

    /// Bytes of an unfinished frame waiting for more input.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Bytes dropped so far as noise outside frames.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }
}

fn hex_byte(s: &[u8]) -> Option<u8> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|h| u8::from_str_radix(h, 16).ok())
}

/// The canonical tag of one frame (with STX and ETX), checksum verified.
pub fn frame_tag(frame: &[u8]) -> Result<String, DecodeError> {
    let inner = frame
        .strip_prefix(&[STX])
        .and_then(|f| f.strip_suffix(&[ETX]))
        .unwrap_or(frame);
    let shown = String::from_utf8_lossy(inner);
    if inner.len() != 12 || !inner.iter().all(u8::is_ascii_hexdigit) {
        return Err(invalid(
            "frame",
            &shown,
            "is not 10 hex characters and a 2-character checksum",
        ));
    }
    let mut computed = 0u8;
    for pair in inner[..10].chunks(2) {
        computed ^= hex_byte(pair).unwrap_or(0);
    }
    let found = hex_byte(&inner[10..]).unwrap_or(0);
    if found != computed {
        return Err(DecodeError::Checksum {
            frame: cap(&shown),
            found,
            computed,
        });
    }
    // inner[2..10] are ASCII hex digits, so the tag always parses.
    let tag = std::str::from_utf8(&inner[2..10]).unwrap_or("");
    canonical_card(tag, 16).ok_or_else(|| invalid("frame", &shown, "has no tag"))
}

/// Decodes the complete frames in `bytes` (one read, or a frame from
/// [`FrameSplitter`]), read at `cx.received_at`.
pub fn decode(bytes: &[u8], cx: &DecodeContext) -> Result<Decoded, DecodeError> {
    let mut splitter = FrameSplitter::default();
    let frames = splitter.push(bytes);
    let mut out = Decoded::default();
    for (i, frame) in frames.iter().enumerate() {
        let n = i + 1;
        match frame_tag(frame) {
            Ok(tag) => out.punches.push(DecodedPunch {
                identity: Identity::Alias(tag),
                at: cx.received_at,
                device_local: None,
                device_id: cx.device_id.map(str::to_string),
                event_id: None,
                kind: PunchKind::Unspecified,
                verify: Verify::Card,
                replay: false,
            }),
            Err(error) => out.line_errors.push(LineError {
                line: n,
                text: cap(&String::from_utf8_lossy(frame)),
                error,
            }),
        }
    }
    if splitter.pending() > 0 {
        out.ignored.push(Ignored {
            line: Some(frames.len() + 1),
            reason: "unfinished frame (no ETX)".into(),
        });
    }
    if frames.is_empty() {
        return Err(DecodeError::Unrecognised("no STX…ETX frame".into()));
    }
    out.or_first_error()
}

/// Composed payloads for the fuzz corpus.
#[cfg(test)]
pub(crate) const SAMPLES: &[&[u8]] = &[
    b"\x020A00BC614E99\x03",
    b"\x020A00BC614E99\x03\x020A00BC614E99\x03",
];

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn em4100_frame() {
        let c = cx(IST).with_device("door-rfid");
        let d = decode(SAMPLES[0], &c).unwrap();
        let p = one(&d);
        assert_eq!(p.identity, Identity::Alias("12345678".into()));
        assert_eq!(p.at, c.received_at);
        assert_eq!(p.verify, Verify::Card);
        assert_eq!(p.device_id.as_deref(), Some("door-rfid"));
    }

    #[test]
    fn bad_checksum_is_an_error() {
        let e = decode(b"\x020A00BC614E98\x03", &cx(IST)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: frame \"0A00BC614E98\": checksum 98 but the data XOR is 99"
        );
        let d = decode(b"\x020A00BC614E98\x03\x020A00BC614E99\x03", &cx(IST)).unwrap();
        assert_eq!(d.punches.len(), 1);
        assert!(matches!(
            d.line_errors[0].error,
            DecodeError::Checksum {
                found: 0x98,
                computed: 0x99,
                ..
            }
        ));
        let e = decode(b"\x020A00BC61\x03", &cx(IST)).unwrap_err();
        assert!(e.to_string().contains("is not 10 hex characters"), "{e}");
        assert!(matches!(
            decode(b"0A00BC614E99", &cx(IST)),
            Err(DecodeError::Unrecognised(_))
        ));
    }

    #[test]
    fn straddling_reads_are_reassembled() {
        let mut s = FrameSplitter::default();
        assert!(s.push(b"\x00\xff\x020A00B").is_empty());
        assert_eq!(s.pending(), 6);
        let frames = s.push(b"C614E99\x03\x020A0");
        assert_eq!(frames, vec![SAMPLES[0].to_vec()]);
        let frames = s.push(b"0BC614E99\x03");
        assert_eq!(frames.len(), 1);
        assert_eq!(frame_tag(&frames[0]).unwrap(), "12345678");
        assert_eq!(s.discarded(), 2);
        assert_eq!(s.pending(), 0);
    }

    #[test]
    fn resync_on_stx_and_overlong_noise() {
        let mut s = FrameSplitter::default();
        let frames = s.push(b"\x02123\x020A00BC614E99\x03");
        assert_eq!(frames, vec![SAMPLES[0].to_vec()]);
        let mut s = FrameSplitter::default();
        let mut junk = vec![STX];
        junk.extend(std::iter::repeat_n(b'A', 100));
        assert!(s.push(&junk).is_empty());
        assert_eq!(s.pending(), 0);
        assert_eq!(s.push(SAMPLES[0]).len(), 1);
    }

    proptest! {
        #[test]
        fn any_read_boundaries_give_the_same_frames(
            cuts in proptest::collection::vec(0usize..60, 0..10),
            noise in proptest::collection::vec(4u8..=255, 0..5),
        ) {
            let mut stream = noise.clone();
            stream.extend_from_slice(SAMPLES[1]);
            stream.extend_from_slice(&noise);
            stream.extend_from_slice(SAMPLES[0]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(stream.len())).collect();
            cuts.sort_unstable();
            let mut s = FrameSplitter::default();
            let mut frames = Vec::new();
            let mut from = 0;
            for c in cuts.into_iter().chain([stream.len()]) {
                frames.extend(s.push(&stream[from..c]));
                from = c;
            }
            prop_assert_eq!(frames.len(), 3);
            for f in &frames {
                prop_assert_eq!(frame_tag(f).unwrap(), "12345678");
            }
        }
    }
}
