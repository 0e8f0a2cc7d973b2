//! The text a config was parsed from, kept to point later errors at the right line.

use std::path::PathBuf;

use crate::config::env::{Shift, original_column};
use crate::config::error::ConfigError;
use crate::config::locate;

/// A config file's name and text (after environment substitution).
///
/// The validation layer keeps it beside the raw config and reports through
/// [`Source::error_at`], so its errors carry line and column like the parser's.
#[derive(Debug, Clone)]
pub struct Source {
    /// The file, as it was named to `load` or `parse`.
    pub file: PathBuf,
    /// The text after environment substitution; it has the same lines as the file.
    pub text: String,
    /// Where substitution moved columns, to report columns of the file itself.
    shifts: Vec<Shift>,
}

impl Source {
    /// A source whose text is the file's own (no substitution happened).
    pub fn new(file: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Source {
            file: file.into(),
            text: text.into(),
            shifts: Vec::new(),
        }
    }

    pub(crate) fn substituted(file: PathBuf, text: String, shifts: Vec<Shift>) -> Self {
        Source { file, text, shifts }
    }

    /// The 1-based line and column of `key_path` (e.g. `routes[2].service`), or of its
    /// nearest existing parent when the path does not exist; `(1, 1)` if the text does not
    /// parse. A map entry is located at its key, a sequence item at its first token.
    pub fn position(&self, key_path: &str) -> (usize, usize) {
        self.in_file(self.text_position(key_path))
    }

    /// Like [`Source::position`], in columns of the substituted text.
    pub(crate) fn text_position(&self, key_path: &str) -> (usize, usize) {
        match locate::tree(&self.text) {
            Ok(Some(root)) => locate::locate(&root, key_path),
            Ok(None) | Err(_) => (1, 1),
        }
    }

    /// An error at `key_path`, for checks made after deserialization.
    pub fn error_at(&self, key_path: &str, message: impl Into<String>) -> ConfigError {
        self.error_at_hint(key_path, message, None)
    }

    /// Like [`Source::error_at`], with a hint such as "did you mean `users`?" (see
    /// [`did_you_mean_hint`](crate::config::did_you_mean_hint)).
    pub fn error_at_hint(
        &self,
        key_path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ConfigError {
        let at = self.position(key_path);
        self.error(at, key_path, message, hint)
    }

    /// An error at a position of the substituted text, mapped back to the file's columns.
    pub(crate) fn error_in_text(
        &self,
        at: (usize, usize),
        key_path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ConfigError {
        self.error(self.in_file(at), key_path, message, hint)
    }

    fn error(
        &self,
        at: (usize, usize),
        key_path: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> ConfigError {
        ConfigError::invalid(self.file.clone(), at, key_path, message, hint)
    }

    fn in_file(&self, (line, column): (usize, usize)) -> (usize, usize) {
        (line, original_column(&self.shifts, line, column))
    }
}
