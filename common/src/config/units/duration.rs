//! `Duration`: `250ms`, `5s`, `1m30s`, `1h`, `365d` in config files.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::{ParseUnitError, leading_number, leading_unit};

/// A config duration: `250ms`, `5s`, `1m`, `1h`, `1m30s`, `365d`, `0s` (units `d`, `h`, `m`,
/// `s`, `ms`, `us`, `ns`, largest first, each at most once; a day is 24h). A bare number is refused: `30`
/// could be seconds or milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

const UNITS: [(&str, u128); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];
const EXAMPLES: &str = "250ms, 5s, 1m";
const NEEDS_UNIT: &str = "durations need a unit: 250ms, 5s, 1m";
const NEGATIVE: &str = "durations cannot be negative";

impl Duration {
    /// The zero duration, `0s`.
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    /// A duration of whole milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Duration(std::time::Duration::from_millis(millis))
    }

    /// The std duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }
}

impl From<std::time::Duration> for Duration {
    fn from(duration: std::time::Duration) -> Self {
        Duration(duration)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(duration: Duration) -> Self {
        duration.0
    }
}

impl FromStr for Duration {
    type Err = ParseUnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |why: &str| ParseUnitError::new("duration", text, why);
        let trimmed = text.trim();
        if trimmed.starts_with('-') {
            return Err(error(NEGATIVE));
        }
        if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error(NEEDS_UNIT));
        }
        let mut rest = trimmed;
        let (mut nanos, mut next_unit) = (0u128, 0);
        while !rest.is_empty() || next_unit == 0 {
            let (number, after) = leading_number(rest, "1500ms, not 1.5s")
                .map_err(|why| error(&format!("{why}, e.g. {EXAMPLES}")))?;
            let (unit, after) = leading_unit(after);
            let unit = if unit == "µs" { "us" } else { unit };
            let Some(index) = UNITS.iter().position(|(name, _)| *name == unit) else {
                let why = match unit {
                    "" => format!("missing unit after {number}, e.g. {EXAMPLES}"),
                    _ => format!("unknown unit `{unit}`, expected d, h, m, s, ms, us or ns"),
                };
                return Err(error(&why));
            };
            if index < next_unit {
                return Err(error(
                    "units go from largest to smallest, each once, e.g. 1m30s",
                ));
            }
            nanos = number
                .checked_mul(UNITS[index].1)
                .and_then(|n| n.checked_add(nanos))
                .ok_or_else(|| error("too large"))?;
            (rest, next_unit) = (after.trim_start(), index + 1);
        }
        let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| error("too large"))?;
        let subsec = (nanos % 1_000_000_000) as u32;
        Ok(Duration(std::time::Duration::new(secs, subsec)))
    }
}

impl fmt::Display for Duration {
    /// The canonical form, largest unit first: `1m30s`, `250ms`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut nanos = self.0.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in UNITS {
            if nanos >= size {
                write!(f, "{}{unit}", nanos / size)?;
                nanos %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(DurationVisitor)
    }
}

struct DurationVisitor;

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a duration with a unit, such as {EXAMPLES}")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Duration, E> {
        Err(E::custom(format!(
            "invalid duration `{number}`: {NEEDS_UNIT}"
        )))
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Duration, E> {
        let why = if number < 0 { NEGATIVE } else { NEEDS_UNIT };
        Err(E::custom(format!("invalid duration `{number}`: {why}")))
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Duration, E> {
        let why = if number < 0.0 { NEGATIVE } else { NEEDS_UNIT };
        Err(E::custom(format!("invalid duration `{number}`: {why}")))
    }
}
