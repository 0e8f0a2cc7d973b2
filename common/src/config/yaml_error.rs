//! Turns yaml_serde / libyaml errors into `ConfigError`s: position, key path, clean
//! message and hint.

use std::fmt::Write as _;

use serde_path_to_error::Segment;

use crate::config::error::ConfigError;
use crate::config::source::Source;
use crate::config::suggest;

/// Turns a serde / libyaml error into a `ConfigError` with position, key path and hint.
pub(crate) fn translate(
    source: &Source,
    error: &serde_path_to_error::Error<serde_yaml::Error>,
) -> ConfigError {
    let key_path = key_path(error.path());
    let mut at = match error.inner().location() {
        Some(location) => (location.line(), location.column()),
        None => source.text_position(&key_path),
    };
    let mut message = clean_message(&error.inner().to_string(), at, &key_path);
    if let Some(opened) = opened_at(&message) {
        message = clean_message(&message, opened, &key_path);
        at = opened;
    }
    let hint = suggest::hint_for_unknown(&message)
        .or_else(|| tab_hint(&source.text, at.0))
        .or_else(|| {
            let unclosed = message.contains("end of stream") && message.contains("quoted");
            unclosed.then(|| "is a quote left unclosed?".to_owned())
        });
    source.error_in_text(at, &key_path, message, hint)
}

/// libyaml reports an unclosed quote or bracket at the end of the file, with where it was
/// opened as context ("…, while scanning a quoted scalar at line L column C"): that is
/// where to look.
fn opened_at(message: &str) -> Option<(usize, usize)> {
    if !message.contains("end of stream") {
        return None;
    }
    let (_, tail) = message.rsplit_once(" at line ")?;
    let (line, column) = tail.split_once(" column ")?;
    let digits = column
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(column.len());
    Some((line.parse().ok()?, column[..digits].parse().ok()?))
}

/// `routes[2].match.path_prefix` from serde_path_to_error's segments.
fn key_path(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Seq { index } => {
                let _ = write!(out, "[{index}]");
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => break,
        }
    }
    out
}

/// Drops what the error already says elsewhere: yaml_serde's " at line L column C" (for
/// the reported position) and its own "path: " prefix.
fn clean_message(message: &str, (line, column): (usize, usize), key_path: &str) -> String {
    let message = message.replace(&format!(" at line {line} column {column}"), "");
    match message.split_once(": ") {
        Some((prefix, rest))
            if !prefix.contains(char::is_whitespace)
                && key_path.starts_with(prefix.trim_end_matches('?').trim_end_matches('.')) =>
        {
            rest.to_owned()
        }
        _ => message,
    }
}

/// A hint when `line` is indented with tabs, which YAML refuses.
fn tab_hint(text: &str, line: usize) -> Option<String> {
    let text = text.lines().nth(line.checked_sub(1)?)?;
    let indent = &text[..text.len() - text.trim_start().len()];
    indent
        .contains('\t')
        .then(|| "YAML indentation must use spaces, not tabs".to_owned())
}
