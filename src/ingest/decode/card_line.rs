//! `card-line`: serial card readers and Wiegand→RS232 converters that write
//! one card number per line (`devices.md` §5).
//!
//! Presets: [`CardPreset::Hex`], 6 hex characters (26-bit data) or 8 (34-bit)
//! ended by CR (e.g. `0C8707\r`); [`CardPreset::Decimal`], 10 decimal digits
//! ended by CR LF (e.g. `0000820999\r\n`), where keypad keys arrive as single
//! bytes without a line end and so sit in front of the next card number
//! (they are ignored; `A`/`B` stand for `*`/`#` on some converters);
//! [`CardPreset::ArduinoWiegand`], the Arduino Wiegand library's example
//! output `Wiegand HEX = 7D3257, DECIMAL = 8204887, Type W26` (4- and 8-bit
//! reads are keypad keys, ignored). Lines end with CR, LF or both. Nothing on the line
//! carries a time or a direction: the punch time is the arrival time, the
//! direction comes from which reader fired (configuration). The identity is
//! the card in [`super::canonical_card`] form, so both presets give the same
//! alias for the same card. Readers repeat while a card is held: callers run
//! a [`super::Debounce`].

use serde::Deserialize;

use super::value::{cap, invalid};
use super::{
    DecodeContext, DecodeError, Decoded, DecodedPunch, Identity, Ignored, LineError, PunchKind,
    Verify, canonical_card,
};

/// How the reader writes the card number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CardPreset {
    /// 6 or 8 hex characters.
    #[default]
    Hex,
    /// 10 decimal digits, possibly after keypad keys (digits, `*`, `#`, or
    /// the letters `A`/`B` that some converters send for `*`/`#`).
    Decimal,
    /// The Arduino Wiegand library's example sketch output, one line per
    /// read: `Wiegand HEX = 7D3257, DECIMAL = 8204887, Type W26`. The
    /// `DECIMAL` value is the card (checked against `HEX`); reads of 4 or 8
    /// bits (`Type W4`, `Type W8`) are keypad keys.
    ArduinoWiegand,
}

/// Options of the `card-line` decoder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardLineOptions {
    /// The reader's output format.
    pub preset: CardPreset,
}

/// A keypad key as a converter writes it: a digit, `*`, `#`, or `A`/`B`
/// for `*`/`#`.
fn keypad_key(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'*' | b'#' | b'A' | b'B' | b'a' | b'b')
}

/// One line of the Arduino Wiegand library example: the card, or `None`
/// for a keypad key (4 or 8 bits).
fn arduino_line(line: &str) -> Result<Option<String>, DecodeError> {
    let bad = || {
        invalid(
            "card",
            line,
            "is not \"Wiegand HEX = …, DECIMAL = …, Type W…\"",
        )
    };
    let mut hex = None;
    let mut dec = None;
    let mut bits = None;
    for part in line.split(',') {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_uppercase(), v.trim()),
            None => {
                let p = part.trim();
                match p.get(..6) {
                    Some(t) if t.eq_ignore_ascii_case("type w") => {
                        ("TYPE".to_string(), p.get(6..).unwrap_or(""))
                    }
                    _ => return Err(bad()),
                }
            }
        };
        match k.as_str() {
            "WIEGAND HEX" => hex = Some(v),
            "DECIMAL" => dec = Some(v),
            "TYPE" => bits = v.parse::<u32>().ok(),
            _ => return Err(bad()),
        }
    }
    let (Some(hex), Some(dec), Some(bits)) = (hex, dec, bits) else {
        return Err(bad());
    };
    let (Some(h), Some(d)) = (canonical_card(hex, 16), canonical_card(dec, 10)) else {
        return Err(bad());
    };
    if h != d {
        return Err(invalid("card", line, "HEX and DECIMAL differ"));
    }
    Ok((bits > 8).then_some(d))
}

/// The canonical card of one line, and how many keypad keys preceded it.
fn card(line: &str, preset: CardPreset) -> Result<(String, usize), DecodeError> {
    match preset {
        CardPreset::ArduinoWiegand => match arduino_line(line)? {
            Some(c) => Ok((c, 0)),
            None => Err(invalid("card", line, "is a keypad key")),
        },
        CardPreset::Hex => {
            if !matches!(line.len(), 6 | 8) {
                return Err(invalid("card", line, "is not 6 or 8 hex characters"));
            }
            canonical_card(line, 16)
                .map(|c| (c, 0))
                .ok_or_else(|| invalid("card", line, "is not 6 or 8 hex characters"))
        }
        CardPreset::Decimal => {
            let keys = line.len().saturating_sub(10);
            let well_formed = line.is_ascii()
                && line.len() >= 10
                && line[keys..].bytes().all(|b| b.is_ascii_digit())
                && line[..keys].bytes().all(keypad_key);
            if !well_formed {
                return Err(invalid("card", line, "is not 10 decimal digits"));
            }
            canonical_card(&line[keys..], 10)
                .map(|c| (c, keys))
                .ok_or_else(|| invalid("card", line, "is not 10 decimal digits"))
        }
    }
}

/// Decodes one or more card lines read at `cx.received_at`.
pub fn decode(
    bytes: &[u8],
    cx: &DecodeContext,
    o: &CardLineOptions,
) -> Result<Decoded, DecodeError> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Decoded::default();
    for (i, line) in text.split(['\r', '\n']).enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        let keypad = match o.preset {
            CardPreset::Decimal => line.len() < 10 && line.bytes().all(keypad_key),
            CardPreset::ArduinoWiegand => matches!(arduino_line(line), Ok(None)),
            CardPreset::Hex => false,
        };
        if keypad {
            out.ignored.push(Ignored {
                line: Some(n),
                reason: "keypad keys".into(),
            });
            continue;
        }
        match card(line, o.preset) {
            Ok((alias, keys)) => {
                if keys > 0 {
                    out.ignored.push(Ignored {
                        line: Some(n),
                        reason: format!("{keys} keypad key(s) before the card"),
                    });
                }
                out.punches.push(DecodedPunch {
                    identity: Identity::Alias(alias),
                    at: cx.received_at,
                    device_local: None,
                    device_id: cx.device_id.map(str::to_string),
                    event_id: None,
                    kind: PunchKind::Unspecified,
                    verify: Verify::Card,
                    replay: false,
                })
            }
            Err(error) => out.line_errors.push(LineError {
                line: n,
                text: cap(line),
                error,
            }),
        }
    }
    out.or_first_error()
}

/// Composed payloads for the fuzz corpus.
#[cfg(test)]
pub(crate) const SAMPLES: &[&[u8]] = &[
    b"0C8707\r",
    b"0000820999\r\n",
    b"5#0000820999\r\n0012345678\r\n",
    b"Wiegand Hex = 7D3257, DECIMAL = 8204887, Type W26\r\n",
];

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    const HEX: CardLineOptions = CardLineOptions {
        preset: CardPreset::Hex,
    };
    const DEC: CardLineOptions = CardLineOptions {
        preset: CardPreset::Decimal,
    };

    #[test]
    fn both_presets_give_one_alias_at_arrival_time() {
        let c = cx(IST).with_device("gate-reader");
        let h = decode(SAMPLES[0], &c, &HEX).unwrap();
        let d = decode(SAMPLES[1], &c, &DEC).unwrap();
        assert_eq!(one(&h).identity, Identity::Alias("820999".into()));
        assert_eq!(one(&h), one(&d));
        assert_eq!(one(&h).at, c.received_at);
        assert_eq!(one(&h).device_id.as_deref(), Some("gate-reader"));
        let p34 = decode(b"00BC614E\r", &c, &HEX).unwrap();
        assert_eq!(one(&p34).identity, Identity::Alias("12345678".into()));
    }

    #[test]
    fn keypad_keys_before_a_decimal_card_are_ignored() {
        let d = decode(b"50000820999\r\n", &cx(IST), &DEC).unwrap();
        assert_eq!(one(&d).identity, Identity::Alias("820999".into()));
        assert_eq!(d.ignored[0].reason, "1 keypad key(s) before the card");
        let d = decode(b"5\r\n", &cx(IST), &DEC).unwrap();
        assert!(d.punches.is_empty());
        assert_eq!(d.ignored[0].reason, "keypad keys");
    }

    /// Issue 11 (16): keypad keys sent as letters (`A`/`B` for `*`/`#`).
    #[test]
    fn keypad_letters_are_keys() {
        let d = decode(b"A\r\nB0000820999\r\n12AB\r\n", &cx(IST), &DEC).unwrap();
        assert_eq!(one(&d).identity, Identity::Alias("820999".into()));
        assert_eq!(
            d.ignored
                .iter()
                .map(|i| i.reason.as_str())
                .collect::<Vec<_>>(),
            [
                "keypad keys",
                "1 keypad key(s) before the card",
                "keypad keys"
            ]
        );
        assert!(d.line_errors.is_empty());
    }

    /// Issue 11 (16): the Arduino Wiegand library line. The W26 sample is
    /// the one a PAM module's source parses (`Wiegand Hex = 7D3257,
    /// DECIMAL = 8204887, Type W26`, public code index), the others follow
    /// the library example's `Serial.print` calls.
    #[test]
    fn arduino_wiegand_library_lines() {
        let o = CardLineOptions {
            preset: CardPreset::ArduinoWiegand,
        };
        let c = cx(IST).with_device("door-uno");
        let d = decode(
            b"Wiegand Hex = 7D3257, DECIMAL = 8204887, Type W26\r\nWiegand HEX = B, DECIMAL = 11, Type W4\r\nWiegand HEX = C8707, DECIMAL = 820999, Type W26\r\n",
            &c,
            &o,
        )
        .unwrap();
        assert_eq!(d.punches.len(), 2, "{d:?}");
        assert_eq!(d.punches[0].identity, Identity::Alias("8204887".into()));
        assert_eq!(d.punches[0].at, c.received_at);
        // The same card as the hex converter's `0C8707`.
        assert_eq!(
            d.punches[1],
            one(&decode(SAMPLES[0], &c, &HEX).unwrap()).clone()
        );
        assert_eq!(d.ignored[0].reason, "keypad keys");
        let e = decode(
            b"Wiegand HEX = 7D3258, DECIMAL = 8204887, Type W26\r\n",
            &c,
            &o,
        )
        .unwrap_err();
        assert!(e.to_string().contains("HEX and DECIMAL differ"), "{e}");
        assert!(decode(b"Wiegand HEX = 7D3257\r\n", &c, &o).is_err());
    }

    #[test]
    fn several_lines_and_a_bad_one() {
        let d = decode(b"0C8707\r0C87G7\r00BC614E\r", &cx(IST), &HEX).unwrap();
        assert_eq!(d.punches.len(), 2);
        assert_eq!(d.line_errors.len(), 1);
        assert_eq!(d.line_errors[0].line, 2);
        assert_eq!(
            d.line_errors[0].error.to_string(),
            "field \"card\": \"0C87G7\" is not 6 or 8 hex characters"
        );
        let e = decode(b"12345\r", &cx(IST), &HEX).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: field \"card\": \"12345\" is not 6 or 8 hex characters"
        );
        let e = decode(b"00008209x9\r\n", &cx(IST), &DEC).unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1: field \"card\": \"00008209x9\" is not 10 decimal digits"
        );
    }
}
