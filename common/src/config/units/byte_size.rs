//! `ByteSize`: `512`, `64KiB`, `10MiB`, `1GB` in config files.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::{ParseUnitError, leading_number, leading_unit};
use crate::config::suggest::did_you_mean;

/// A config size in bytes: `512` or `512B`, `64KiB`, `10MiB`, `1GiB`, `1TiB` (powers of
/// 1024) or `KB`, `MB`, `GB`, `TB` (powers of 1000). A bare number means bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

/// Units in the order `Display` prefers them; bytes last.
const UNITS: [(&str, u64); 9] = [
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("B", 1),
];

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    /// A size of `n` KiB.
    pub const fn kib(n: u64) -> Self {
        ByteSize(n << 10)
    }

    /// A size of `n` MiB.
    pub const fn mib(n: u64) -> Self {
        ByteSize(n << 20)
    }

    /// The number of bytes.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The number of bytes as `usize`, saturating on 32-bit targets.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl FromStr for ByteSize {
    type Err = ParseUnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |why: &str| ParseUnitError::new("byte size", text, why);
        let trimmed = text.trim();
        if trimmed.starts_with('-') {
            return Err(error("byte sizes cannot be negative"));
        }
        let (number, rest) = leading_number(trimmed, "1536KiB, not 1.5MiB")
            .map_err(|why| error(&format!("{why}, e.g. 512, 64KiB, 10MiB")))?;
        let (unit, rest) = leading_unit(rest);
        if !rest.is_empty() {
            return Err(error("expected one number and one unit, e.g. 64KiB"));
        }
        let unit = if unit.is_empty() { "B" } else { unit };
        let Some((_, size)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            let mut why =
                format!("unknown unit `{unit}`, expected B, KiB, MiB, GiB, TiB, KB, MB, GB or TB");
            if let Some(close) = did_you_mean(unit, UNITS.iter().map(|(name, _)| *name)) {
                why = format!("unknown unit `{unit}` (did you mean `{close}`?)");
            }
            return Err(error(&why));
        };
        u64::try_from(number)
            .ok()
            .and_then(|number| number.checked_mul(*size))
            .map(ByteSize)
            .ok_or_else(|| error("too large: the maximum is 16EiB minus one byte"))
    }
}

impl fmt::Display for ByteSize {
    /// The canonical form: the largest unit that divides the size, `0B` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, size) = UNITS
            .iter()
            .find(|(_, size)| self.0 != 0 && self.0.is_multiple_of(*size))
            .unwrap_or(&("B", 1));
        write!(f, "{}{unit}", self.0 / size)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ByteSizeVisitor)
    }
}

struct ByteSizeVisitor;

impl Visitor<'_> for ByteSizeVisitor {
    type Value = ByteSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte size such as 512, 64KiB or 10MiB")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<ByteSize, E> {
        text.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, bytes: u64) -> Result<ByteSize, E> {
        Ok(ByteSize(bytes))
    }

    fn visit_i64<E: de::Error>(self, bytes: i64) -> Result<ByteSize, E> {
        u64::try_from(bytes).map(ByteSize).map_err(|_| {
            E::custom(format!(
                "invalid byte size `{bytes}`: byte sizes cannot be negative"
            ))
        })
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<ByteSize, E> {
        Err(E::custom(format!(
            "invalid byte size `{number}`: byte sizes are whole numbers"
        )))
    }
}
