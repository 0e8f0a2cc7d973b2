//! The one error type of config loading: where in which file, and what is wrong.

use std::path::PathBuf;

/// A configuration file that could not be read, parsed, deserialized or validated.
///
/// Displays on one line, e.g.
/// ``gatehouse.yaml:12:7: at `routes[2].service`: unknown service `user` (did you mean `users`?)``
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file was read but its content is wrong.
    #[error("{}:{line}:{column}: {}{message}{}", file.display(), at(key_path), paren(hint))]
    Invalid {
        /// The file, as it was named to `load` or `parse`.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Where in the document, e.g. `routes[2].match.path_prefix`; empty for
        /// document-level errors.
        key_path: String,
        /// What is wrong, on one line.
        message: String,
        /// A suggestion such as "did you mean `timeout`?".
        hint: Option<String>,
    },
    /// The file could not be read.
    #[error("cannot read config file {}", file.display())]
    Io {
        /// The file, as it was named to `load`.
        file: PathBuf,
        /// Why reading failed.
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    /// Builds an [`ConfigError::Invalid`]; newlines in `message` are folded so the
    /// error stays on one line.
    pub fn invalid(
        file: impl Into<PathBuf>,
        (line, column): (usize, usize),
        key_path: impl Into<String>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Self {
        ConfigError::Invalid {
            file: file.into(),
            line,
            column,
            key_path: key_path.into(),
            message: one_line(message.into()),
            hint: hint.map(one_line),
        }
    }

    /// The key path of an `Invalid` error; `None` for `Io`.
    pub fn key_path(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key_path, .. } => Some(key_path),
            ConfigError::Io { .. } => None,
        }
    }
}

fn one_line(text: String) -> String {
    if text.contains(['\n', '\r']) {
        text.split(['\n', '\r'])
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        text
    }
}

/// `at `KEY`: ` before the message, nothing for document-level errors.
fn at(key_path: &str) -> String {
    if key_path.is_empty() {
        String::new()
    } else {
        format!("at `{key_path}`: ")
    }
}

/// ` (HINT)` after the message, if there is a hint.
fn paren(hint: &Option<String>) -> String {
    hint.as_ref()
        .map(|hint| format!(" ({hint})"))
        .unwrap_or_default()
}
