//! Config loading shared by every binary: YAML into serde structs, `${VAR}` substitution,
//! units, secrets, and errors that name file, line, column and key path.
//!
//! Two layers (see ARCHITECTURE.md, "Configuration"): [`load()`] deserializes the raw
//! `deny_unknown_fields` structs; the validation layer then checks references, regexes
//! and ranges, reporting through [`Source::error_at`] so its errors point into the file
//! too.

mod env;
mod error;
mod load;
mod locate;
mod secret;
mod source;
mod suggest;
mod syntax;
mod units;
mod yaml_error;

#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use load::{Loaded, load, load_with_env, parse, parse_with_env, section};
pub use secret::{REDACTED, Secret};
pub use source::Source;
pub(crate) use suggest::hint_for_unknown;
pub use suggest::{did_you_mean, did_you_mean_hint};
pub use units::{ByteSize, Duration, ParseUnitError};
