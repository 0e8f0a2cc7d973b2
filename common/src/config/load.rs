//! Reading a YAML config into serde structs, with errors that point into the file.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::config::error::ConfigError;
use crate::config::source::Source;
use crate::config::syntax::AnyYaml;
use crate::config::{env, locate, yaml_error};

/// A deserialized config and the text it came from (for the validation layer's errors).
#[derive(Debug, Clone)]
pub struct Loaded<T> {
    /// The raw config, as serde built it.
    pub value: T,
    /// Where it came from; see [`Source::error_at`].
    pub source: Source,
}

/// Reads and deserializes the YAML file at `path`, substituting `${VAR}` from the process
/// environment.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<Loaded<T>, ConfigError> {
    load_with_env(path, process_env)
}

/// Like [`load`], reading variables through `lookup` instead of the process environment.
pub fn load_with_env<T: DeserializeOwned>(
    path: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Loaded<T>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: path.to_owned(),
        source,
    })?;
    parse_text(path.to_owned(), &text, &lookup)
}

/// Deserializes YAML `text`, naming it `file_name` in errors, substituting `${VAR}` from
/// the process environment.
pub fn parse<T: DeserializeOwned>(file_name: &str, text: &str) -> Result<Loaded<T>, ConfigError> {
    parse_with_env(file_name, text, process_env)
}

/// Like [`parse`], reading variables through `lookup` instead of the process environment.
pub fn parse_with_env<T: DeserializeOwned>(
    file_name: &str,
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Loaded<T>, ConfigError> {
    parse_text(PathBuf::from(file_name), text, &lookup)
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn parse_text<T: DeserializeOwned>(
    file: PathBuf,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded<T>, ConfigError> {
    let substituted = env::substitute(text, lookup).map_err(|error| {
        ConfigError::invalid(
            file.clone(),
            (error.line, error.column),
            "",
            error.message,
            error.hint,
        )
    })?;
    let source = Source::substituted(file, substituted.text, substituted.shifts);
    // Syntax first, whole file, with libyaml's wording: a type error found before it
    // could be a symptom (a bad indent turns `250ms` into `250ms request`).
    let syntax = serde_yaml::Deserializer::from_str(&source.text);
    if let Err(error) = serde_path_to_error::deserialize::<_, AnyYaml>(syntax) {
        return Err(yaml_error::translate(&source, &error));
    }
    match locate::tree(&source.text) {
        Ok(None) => {
            let message = "the file is empty: expected a YAML mapping";
            return Err(source.error_in_text((1, 1), "", message, None));
        }
        Ok(Some(root)) => {
            if let Some((key_path, at, first_line)) = locate::duplicate(&root, "") {
                let message = format!("duplicate key (first defined on line {first_line})");
                return Err(source.error_in_text(at, &key_path, message, None));
            }
        }
        // libyaml accepted what yaml-rust2 refuses: no duplicate check then.
        Err(_) => {}
    }
    let deserializer = serde_yaml::Deserializer::from_str(&source.text);
    match serde_path_to_error::deserialize(deserializer) {
        Ok(value) => Ok(Loaded { value, source }),
        Err(error) => Err(yaml_error::translate(&source, &error)),
    }
}

/// Reads one top-level section of `source` into `T`: a binary's own section (`edge`,
/// `internal`, `sidecar`), declared in that binary's crate. Errors point into the file like
/// every other key's (`edge.policies[0].path_prefix`), since the section is read from the
/// text, not from a re-serialized value. `None` when the file does not set the key.
pub fn section<T: DeserializeOwned>(
    source: &Source,
    key: &'static str,
) -> Result<Option<T>, ConfigError> {
    let deserializer = serde_yaml::Deserializer::from_str(&source.text);
    let mut track = serde_path_to_error::Track::new();
    let seed = OnlyKey::<T> {
        key,
        wanted: std::marker::PhantomData,
    };
    let result = serde::de::DeserializeSeed::deserialize(
        seed,
        serde_path_to_error::Deserializer::new(deserializer, &mut track),
    );
    result.map_err(|error| {
        yaml_error::translate(
            source,
            &serde_path_to_error::Error::new(track.path(), error),
        )
    })
}

/// Deserializes the value of one key of the top-level mapping, skipping the others.
struct OnlyKey<T> {
    key: &'static str,
    wanted: std::marker::PhantomData<T>,
}

impl<'de, T: serde::Deserialize<'de>> serde::de::DeserializeSeed<'de> for OnlyKey<T> {
    type Value = Option<T>;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Option<T>, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for OnlyKey<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a mapping with an optional `{}` key", self.key)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key::<String>()? {
            if name == self.key {
                found = map.next_value::<Option<T>>()?;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}
