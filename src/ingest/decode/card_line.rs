//! `card-line`: serial card readers and Wiegand→RS232 converters that write
//! one card number per line (`devices.md` §5).
//!
//! Presets: [`CardPreset::Hex`], 6 hex characters (26-bit data) or 8 (34-bit)
//! ended by CR (e.g. `0C8707\r`); [`CardPreset::Decimal`], 10 decimal digits
//! ended by CR LF (e.g. `0000820999\r\n`), where keypad keys arrive as single
//! bytes without a line end and so sit in front of the next card number
//! (they are ignored). Lines end with CR, LF or both. Nothing on the line
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
    /// 10 decimal digits, possibly after keypad keys.
    Decimal,
}

/// Options of the `card-line` decoder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CardLineOptions {
    /// The reader's output format.
    pub preset: CardPreset,
}

/// The canonical card of one line, and how many keypad keys preceded it.
fn card(line: &str, preset: CardPreset) -> Result<(String, usize), DecodeError> {
    match preset {
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
                && line[..keys]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
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
        if o.preset == CardPreset::Decimal
            && line.len() < 10
            && line
                .chars()
                .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
        {
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
