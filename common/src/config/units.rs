//! Human-friendly config units: durations (`1m30s`) and byte sizes (`10MiB`).

mod byte_size;
mod duration;

pub use byte_size::ByteSize;
pub use duration::Duration;

/// Why a duration or byte size string was refused; the message names the value and
/// shows the expected form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseUnitError(String);

impl ParseUnitError {
    fn new(what: &str, text: &str, why: impl std::fmt::Display) -> Self {
        ParseUnitError(format!("invalid {what} `{text}`: {why}"))
    }
}

/// Splits `12ms…` into the number and the text after it (spaces between them skipped).
/// `Err` carries the reason, without the "invalid …" prefix.
fn leading_number<'a>(text: &'a str, smaller: &str) -> Result<(u128, &'a str), String> {
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    if digits == 0 {
        return Err("expected a number".into());
    }
    let rest = &text[digits..];
    if rest.starts_with(['.', ',']) {
        return Err(format!(
            "fractions are not supported: use a smaller unit ({smaller})"
        ));
    }
    let number = text[..digits]
        .parse::<u128>()
        .map_err(|_| "the number is too large")?;
    Ok((number, rest.trim_start()))
}

/// Splits a unit (letters, `µ` included) off the front of `text`.
fn leading_unit(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_alphabetic() && c != 'µ')
        .unwrap_or(text.len());
    text.split_at(end)
}
