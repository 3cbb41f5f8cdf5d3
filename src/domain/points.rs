//! [`Points`]: a small fixed-point decimal for deductions, bonuses and
//! absence days.
//!
//! Policies use halves and tenths (0.5 points for a wrong record in rule set
//! D, 0.5 absence days), and sums of such values must be exact: a month of
//! 0.1-point deductions has to add up to what HR adds up by hand. A binary
//! float cannot promise that, so points are stored as whole hundredths in an
//! `i64`. Two decimal places are enough for every rule in the seed; a policy
//! value with more is rejected when the policy is validated.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A decimal with two fractional digits, stored as hundredths.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Points(i64);

impl Points {
    /// Zero points.
    pub const ZERO: Points = Points(0);
    /// Scale of the fixed-point representation (hundredths).
    pub const SCALE: i64 = 100;

    /// Whole points.
    pub const fn whole(n: i64) -> Points {
        Points(n * Self::SCALE)
    }

    /// From a count of hundredths.
    pub const fn from_hundredths(h: i64) -> Points {
        Points(h)
    }

    /// The count of hundredths.
    pub const fn hundredths(self) -> i64 {
        self.0
    }

    /// Half a point (or half a day).
    pub const HALF: Points = Points(50);
    /// One point (or one day).
    pub const ONE: Points = Points(100);

    /// True when the value is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The smaller of two values.
    pub fn min(self, other: Points) -> Points {
        Points(self.0.min(other.0))
    }

    /// The larger of two values.
    pub fn max(self, other: Points) -> Points {
        Points(self.0.max(other.0))
    }

    /// Converts a float read from a TOML or JSON file. Fails when the value
    /// has more than two decimal places or is not finite.
    pub fn from_f64_exact(v: f64) -> Result<Points, PointsError> {
        if !v.is_finite() || v.abs() > 1e12 {
            return Err(PointsError(v.to_string()));
        }
        let h = (v * 100.0).round();
        if ((h / 100.0) - v).abs() > 1e-9 {
            return Err(PointsError(v.to_string()));
        }
        Ok(Points(h as i64))
    }

    /// The value as a float, for JSON output.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }
}

/// A value that is not a decimal with at most two fractional digits.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0:?} is not a decimal with at most two places (e.g. 1, 0.5, 0.25)")]
pub struct PointsError(pub String);

impl FromStr for Points {
    type Err = PointsError;
    fn from_str(s: &str) -> Result<Points, PointsError> {
        let err = || PointsError(s.to_string());
        let t = s.trim();
        let (neg, t) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let (int, frac) = match t.split_once('.') {
            Some((i, f)) => (i, f),
            None => (t, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(err());
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        if frac.len() > 2 || int.len() > 12 {
            return Err(err());
        }
        let i: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| err())?
        };
        let mut f: i64 = if frac.is_empty() {
            0
        } else {
            frac.parse().map_err(|_| err())?
        };
        if frac.len() == 1 {
            f *= 10;
        }
        let v = i * 100 + f;
        Ok(Points(if neg { -v } else { v }))
    }
}

impl fmt::Display for Points {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        let (i, r) = (a / 100, a % 100);
        if r == 0 {
            write!(f, "{sign}{i}")
        } else if r % 10 == 0 {
            write!(f, "{sign}{i}.{}", r / 10)
        } else {
            write!(f, "{sign}{i}.{r:02}")
        }
    }
}

impl Add for Points {
    type Output = Points;
    fn add(self, o: Points) -> Points {
        Points(self.0 + o.0)
    }
}

impl AddAssign for Points {
    fn add_assign(&mut self, o: Points) {
        self.0 += o.0;
    }
}

impl Sub for Points {
    type Output = Points;
    fn sub(self, o: Points) -> Points {
        Points(self.0 - o.0)
    }
}

impl Neg for Points {
    type Output = Points;
    fn neg(self) -> Points {
        Points(-self.0)
    }
}

impl Sum for Points {
    fn sum<I: Iterator<Item = Points>>(iter: I) -> Points {
        iter.fold(Points::ZERO, Add::add)
    }
}

/// Serialised as a JSON number: an integer when whole (`1`), else a decimal
/// (`0.5`), so `"points":1` reads as the contract shows it.
impl Serialize for Points {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % Self::SCALE == 0 {
            s.serialize_i64(self.0 / Self::SCALE)
        } else {
            s.serialize_f64(self.as_f64())
        }
    }
}

impl<'de> Deserialize<'de> for Points {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Points, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Points;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number with at most two decimal places")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Points, E> {
                v.checked_mul(Points::SCALE)
                    .map(Points)
                    .ok_or_else(|| E::custom("number too large"))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Points, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(|v| v.checked_mul(Points::SCALE))
                    .map(Points)
                    .ok_or_else(|| E::custom("number too large"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Points, E> {
                Points::from_f64_exact(v).map_err(E::custom)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Points, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (s, h, back) in [
            ("1", 100, "1"),
            ("0.5", 50, "0.5"),
            ("0.1", 10, "0.1"),
            ("2.25", 225, "2.25"),
            ("-3", -300, "-3"),
            (".5", 50, "0.5"),
        ] {
            let p: Points = s.parse().unwrap();
            assert_eq!(p.hundredths(), h, "{s}");
            assert_eq!(p.to_string(), back);
        }
        for bad in ["", "1.234", "x", "1.2.3", "--1", "."] {
            assert!(bad.parse::<Points>().is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn tenths_add_up_exactly() {
        let p: Points = (0..10).map(|_| Points::from_hundredths(10)).sum();
        assert_eq!(p, Points::ONE);
    }

    #[test]
    fn json_is_integer_when_whole() {
        assert_eq!(serde_json::to_string(&Points::whole(1)).unwrap(), "1");
        assert_eq!(serde_json::to_string(&Points::HALF).unwrap(), "0.5");
        let p: Points = serde_json::from_str("0.1").unwrap();
        assert_eq!(p.hundredths(), 10);
        assert!(Points::from_f64_exact(0.125).is_err());
    }
}
