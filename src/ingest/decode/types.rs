//! The types every decoder shares: the context, the decoded punch, what a
//! payload decodes to and why it cannot be decoded.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// What a decoder knows besides the bytes: where they came from and when.
#[derive(Clone, Copy, Debug)]
pub struct DecodeContext<'a> {
    /// The device's configured IANA zone; local wall times on the wire are
    /// read in it (`devices.md` §6 "Timezone").
    pub device_tz: Tz,
    /// When the bytes arrived; the punch time of formats that carry none
    /// (serial card readers).
    pub received_at: DateTime<Utc>,
    /// The MQTT topic the payload came on, when it came over MQTT.
    pub topic: Option<&'a str>,
    /// The device id the source knows (a ZKTeco serial number from the
    /// query string, a serial port's or import's configured id). It wins
    /// over what a vendor payload or topic implies (MAC address, camera,
    /// `facesluiceId`, `attlog.dat` machine number, topic level); only the
    /// generic `json` payload's own `device_id` field wins over it.
    pub device_id: Option<&'a str>,
}

impl<'a> DecodeContext<'a> {
    /// A context with no topic and no device id.
    pub fn new(device_tz: Tz, received_at: DateTime<Utc>) -> Self {
        DecodeContext {
            device_tz,
            received_at,
            topic: None,
            device_id: None,
        }
    }

    /// The same context with an MQTT topic.
    pub fn with_topic(self, topic: &'a str) -> Self {
        DecodeContext {
            topic: Some(topic),
            ..self
        }
    }

    /// The same context with a known device id.
    pub fn with_device(self, device_id: &'a str) -> Self {
        DecodeContext {
            device_id: Some(device_id),
            ..self
        }
    }
}

/// Who punched, as the terminal names them.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    /// An employee id as HR writes it (always text, leading zeros kept).
    Employee(String),
    /// A card number in [`canonical_card`] form, a face-match name or a
    /// device-local person id; resolved later through employee aliases.
    Alias(String),
}

impl Identity {
    /// The id or alias text.
    pub fn as_str(&self) -> &str {
        match self {
            Identity::Employee(s) | Identity::Alias(s) => s,
        }
    }
}

/// The punch state a terminal reports (`devices.md` §6 "Punch state codes").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PunchKind {
    /// Start of work.
    CheckIn,
    /// End of work.
    CheckOut,
    /// Start of a break.
    BreakOut,
    /// End of a break.
    BreakIn,
    /// Start of overtime.
    OtIn,
    /// End of overtime.
    OtOut,
    /// The terminal did not say (the common case): the engine infers
    /// first-in / last-out.
    #[default]
    Unspecified,
}

impl PunchKind {
    /// The name stored with a punch (`punches.direction`), `None` for
    /// [`PunchKind::Unspecified`].
    pub fn state(self) -> Option<&'static str> {
        match self {
            PunchKind::CheckIn => Some("check_in"),
            PunchKind::CheckOut => Some("check_out"),
            PunchKind::BreakOut => Some("break_out"),
            PunchKind::BreakIn => Some("break_in"),
            PunchKind::OtIn => Some("ot_in"),
            PunchKind::OtOut => Some("ot_out"),
            PunchKind::Unspecified => None,
        }
    }
}

/// How the person was verified (`devices.md` §6 "Verify method ≠
/// configured mode"). Vendor codes that have no arm here are kept raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verify {
    /// The payload does not say.
    Unknown,
    /// Any/automatic (ZKTeco 0).
    Any,
    /// Fingerprint.
    Fingerprint,
    /// User id typed on the keypad.
    UserId,
    /// Password.
    Password,
    /// Card.
    Card,
    /// Face.
    Face,
    /// Palm.
    Palm,
    /// QR code.
    Qr,
    /// A vendor code without an arm here (ZKTeco `Verify`, Hikvision minor,
    /// Dahua `Method`), kept as sent.
    Other(u32),
}

/// One punch read from the wire, not yet attributed to an employee.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedPunch {
    /// Who.
    pub identity: Identity,
    /// When, as an instant.
    pub at: DateTime<Utc>,
    /// The wall-clock time the device wrote, when it wrote one (kept beside
    /// `at` so a wrong zone can be found and fixed later).
    pub device_local: Option<NaiveDateTime>,
    /// The terminal, when known.
    pub device_id: Option<String>,
    /// The natural per-device key, when the format has one.
    pub event_id: Option<String>,
    /// Punch state.
    pub kind: PunchKind,
    /// Verification method.
    pub verify: Verify,
    /// True for history dumps and re-sent records (late, possibly already
    /// stored); they are still punches.
    pub replay: bool,
}

/// The key the store dedupes a punch on (`interfaces.md`, "MQTT
/// (terminals → daemon)"; [`crate::store::NewPunch::dedupe_key`]): the
/// device's own record key with who and when, when the format has one, else
/// who, when and where. A record key is never a key alone: Hikvision
/// `serialNo`, Dahua `RecNo` and RecPush `RecordID` are per-device counters
/// that restart after a reset or a firmware update, and Dahua uploads carry
/// no device id, so two terminals' records with one `RecNo` would collide
/// (issue 11, defect 3).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DedupeKey {
    /// (device_id, event_id, identity, time).
    Event {
        /// The terminal, when known.
        device_id: Option<String>,
        /// Its record key.
        event_id: String,
        /// Who.
        identity: Identity,
        /// When.
        at: DateTime<Utc>,
    },
    /// (identity, time, device_id).
    Punch {
        /// Who.
        identity: Identity,
        /// When.
        at: DateTime<Utc>,
        /// The terminal, when known.
        device_id: Option<String>,
    },
}

impl DecodedPunch {
    /// The key re-sent copies of this punch share.
    pub fn dedupe_key(&self) -> DedupeKey {
        match &self.event_id {
            Some(event_id) => DedupeKey::Event {
                device_id: self.device_id.clone(),
                event_id: event_id.clone(),
                identity: self.identity.clone(),
                at: self.at,
            },
            None => DedupeKey::Punch {
                identity: self.identity.clone(),
                at: self.at,
                device_id: self.device_id.clone(),
            },
        }
    }

    /// How far the device clock is from the arrival time (punch time minus
    /// arrival; positive means the device runs ahead), for live punches of
    /// formats that carry a device time. `None` for replays (late by
    /// nature) and for punches stamped on arrival.
    pub fn clock_skew(&self, received_at: DateTime<Utc>) -> Option<Duration> {
        (!self.replay && self.at != received_at).then(|| self.at - received_at)
    }
}

/// A well-formed event that is not a punch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    /// 1-based line, frame or event number inside a multi-record body.
    pub line: Option<usize>,
    /// Why it is not a punch, e.g. `heartbeat`.
    pub reason: String,
}

/// A record of a multi-record body that could not be read; the other
/// records were kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line, frame or event number.
    pub line: usize,
    /// The record as received (lossily decoded, capped), for quarantine.
    pub text: String,
    /// Why.
    pub error: DecodeError,
}

/// What one payload contained.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    /// The punches, in payload order.
    pub punches: Vec<DecodedPunch>,
    /// Events that are not punches.
    pub ignored: Vec<Ignored>,
    /// Records that could not be read (multi-record bodies: ATTLOG and card
    /// lines, serial frames, Dahua parts, events and records, Hikvision
    /// search results).
    pub line_errors: Vec<LineError>,
    /// Things worth a log line that did not stop decoding (e.g. Dahua `UTC`
    /// disagreeing with `LocaleTime`).
    pub warnings: Vec<String>,
}

impl Decoded {
    pub(super) fn ignore(&mut self, reason: impl Into<String>) {
        self.ignored.push(Ignored {
            line: None,
            reason: reason.into(),
        });
    }

    /// A multi-record body in which nothing but errors was found is an
    /// error as a whole (its first error), so garbage is quarantined.
    pub(super) fn or_first_error(mut self) -> Result<Decoded, DecodeError> {
        if self.punches.is_empty() && self.ignored.is_empty() && !self.line_errors.is_empty() {
            let first = self.line_errors.swap_remove(0);
            return Err(DecodeError::Line {
                line: first.line,
                error: Box::new(first.error),
            });
        }
        Ok(self)
    }
}

/// Why a payload could not be decoded. Messages are lowercase and name the
/// wire field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The payload is not JSON where JSON is expected.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// A required field is absent or empty.
    #[error("field {field:?}: missing")]
    Missing {
        /// Wire name (dotted path) of the field.
        field: String,
    },
    /// A field holds a value the decoder cannot read.
    #[error("field {field:?}: {value:?} {why}")]
    Invalid {
        /// Wire name (dotted path) of the field.
        field: String,
        /// The value as received (capped).
        value: String,
        /// What is wrong, e.g. `is not YYYY-MM-DD HH:MM:SS`.
        why: String,
    },
    /// A serial frame's checksum does not match its data.
    #[error("frame {frame:?}: checksum {found:02X} but the data XOR is {computed:02X}")]
    Checksum {
        /// The frame's ASCII payload.
        frame: String,
        /// Checksum the frame carries.
        found: u8,
        /// Checksum computed from the data.
        computed: u8,
    },
    /// A time before 2000-01-01 or after 2100-12-31: the terminal's clock
    /// was never set (it counts from 1970 or from boot) or is far off.
    #[error("field {field:?}: {value:?}: terminal clock not set (outside 2000-01-01 … 2100-12-31)")]
    ClockNotSet {
        /// Wire name (dotted path) of the field.
        field: String,
        /// The value as received (capped).
        value: String,
    },
    /// The bytes do not have the shape this decoder reads.
    #[error("{0}")]
    Unrecognised(String),
    /// The only records of a multi-record body failed; the first one's
    /// error.
    #[error("line {line}: {error}")]
    Line {
        /// 1-based line (or frame) number.
        line: usize,
        /// Why.
        error: Box<DecodeError>,
    },
}
