//! Response shaping: one JSON document made into the shape a client or an API version wants
//! (a BFF's flat view of an aggregate, `v2`'s field names), by a few fixed steps set per route.
//!
//! ```yaml
//! shape:
//!   move: { /product/id: /id, /product/name: /name, /reviews/average_rating: /rating }
//!   rename: { name: title }
//!   drop: [internal_notes, /meta/trace]
//!   keep: [id, title, rating]
//!   wrap: data
//! ```
//!
//! The steps run in this fixed order, each on the result of the one before (so `drop` and
//! `keep` name members as `rename` left them), whatever order the keys are written in:
//!
//! 1. `move` — `{from: to}` pairs of JSON pointers, run one after another in the config's
//!    order. Each takes the value at `from` out and puts it at `to`, replacing what was there
//!    and building the path: missing members become objects, a step into an array uses the
//!    element at that index when it exists, anything else in the way (a scalar, `null`) is
//!    replaced by an object. Moving `/product/name` to `/name` flattens. **A missing `from`
//!    puts `null` at `to`**: a BFF field whose source part failed is null, not absent. Taking
//!    an array element removes it and the later ones shift down (RFC 6902's `move`).
//! 2. `rename` — `{old: new}` top-level member names; a missing `old` does nothing, an existing
//!    `new` is replaced. Renames do not chain: a name may not be both an `old` and a `new`.
//! 3. `drop` — a plain name removes that top-level member; a string starting with `/` is a
//!    JSON pointer and removes the value there, at any depth (an array element shifts the rest).
//! 4. `keep` — only these top-level members stay; missing ones are not added. Members keep the
//!    document's order (serde_json's map, which in this workspace is sorted by name).
//! 5. `wrap` — a document that is not an object (an array, a scalar, `null`) becomes
//!    `{<wrap>: document}`; an object is left as it is.
//!
//! **Arrays**: when the document is an array, steps 1–4 shape each element that is an object,
//! as a record of a list (catalog's products), with pointers relative to the element; `wrap`
//! then applies to the whole. Elements that are not objects, and documents that are neither
//! objects nor arrays, pass steps 1–4 unchanged. Nested arrays are not walked into.
//!
//! Pointers follow RFC 6901 (`~0` is `~`, `~1` is `/`; `0` or `12` index arrays, `01` and `-`
//! do not). They are parsed when the route is built; applying a shape parses nothing and moves
//! values rather than copying them (a `move` allocates only the new member's name).

mod pairs;
mod pointer;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use pointer::Pointer;

/// A route's `shape` keys, as written; every key is optional and an empty shape changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShapeSettings {
    /// `move: {from: to}`: JSON pointer pairs in the config's order. Default none.
    #[serde(rename = "move", with = "pairs", skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<(String, String)>,
    /// `rename: {old: new}`: top-level member names. Default none.
    #[serde(with = "pairs", skip_serializing_if = "Vec::is_empty")]
    pub rename: Vec<(String, String)>,
    /// `drop: [name or /pointer]`. Default none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub drop: Vec<String>,
    /// `keep: [name]`: the top-level members that stay. Default: all stay (`keep: []` keeps
    /// none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep: Option<Vec<String>>,
    /// `wrap: key`: the member a non-object document is put under. Default: not wrapped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrap: Option<String>,
}

impl ShapeSettings {
    /// Whether these settings change nothing (no key set).
    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
            && self.rename.is_empty()
            && self.drop.is_empty()
            && self.keep.is_none()
            && self.wrap.is_none()
    }
}

/// A shape setting refused at build: the key at fault relative to the shape (`move./a/b`,
/// `drop[2]`) and why. The caller puts its own key path in front.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct ShapeError {
    pub key: String,
    pub message: String,
}

/// A built shape: pointers parsed, names sorted for lookup. Cheap to share; [`Shape::apply`]
/// is the per-response part.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    moves: Vec<(Pointer, Pointer)>,
    rename: Vec<(String, String)>,
    drop_names: Vec<String>,
    drop_pointers: Vec<Pointer>,
    /// Sorted and deduplicated, for binary search.
    keep: Option<Vec<String>>,
    wrap: Option<String>,
}

impl Shape {
    /// Checks `settings` and builds the shape; the error names the key at fault.
    pub fn build(settings: &ShapeSettings) -> Result<Shape, ShapeError> {
        let err = |key: String, message: &str| ShapeError {
            key,
            message: message.to_string(),
        };
        let mut moves = Vec::with_capacity(settings.moves.len());
        for (from, to) in &settings.moves {
            let key = || format!("move.{from}");
            let from_ptr = Pointer::parse(from).map_err(|m| err(key(), m))?;
            let to_ptr =
                Pointer::parse(to).map_err(|m| err(key(), &format!("`to` ({to}): {m}")))?;
            if to_ptr.starts_with(&from_ptr) {
                return Err(err(key(), "`to` must not be `from` or inside it"));
            }
            moves.push((from_ptr, to_ptr));
        }
        for (i, (old, new)) in settings.rename.iter().enumerate() {
            let key = || format!("rename.{old}");
            for name in [old, new] {
                member_name(name, "rename").map_err(|m| err(key(), m))?;
            }
            if settings.rename[..i].iter().any(|(_, n)| n == new) {
                return Err(err(key(), &format!("two members are renamed to `{new}`")));
            }
            if settings.rename.iter().any(|(o, _)| o == new) {
                return Err(err(
                    key(),
                    &format!("`{new}` is both renamed and a new name (renames do not chain)"),
                ));
            }
        }
        let mut drop_names = Vec::new();
        let mut drop_pointers = Vec::new();
        for (i, entry) in settings.drop.iter().enumerate() {
            let key = || format!("drop[{i}]");
            if entry.starts_with('/') {
                drop_pointers.push(Pointer::parse(entry).map_err(|m| err(key(), m))?);
            } else if entry.is_empty() {
                return Err(err(key(), "must not be empty"));
            } else {
                drop_names.push(entry.clone());
            }
        }
        let keep = match &settings.keep {
            None => None,
            Some(names) => {
                for (i, name) in names.iter().enumerate() {
                    member_name(name, "keep").map_err(|m| err(format!("keep[{i}]"), m))?;
                }
                let mut names = names.clone();
                names.sort_unstable();
                names.dedup();
                Some(names)
            }
        };
        if settings.wrap.as_deref() == Some("") {
            return Err(err("wrap".into(), "must not be empty"));
        }
        Ok(Shape {
            moves,
            rename: settings.rename.clone(),
            drop_names,
            drop_pointers,
            keep,
            wrap: settings.wrap.clone(),
        })
    }

    /// Whether applying this shape changes nothing.
    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
            && self.rename.is_empty()
            && self.drop_names.is_empty()
            && self.drop_pointers.is_empty()
            && self.keep.is_none()
            && self.wrap.is_none()
    }

    /// `doc` shaped: the steps of the module doc, in their order.
    pub fn apply(&self, mut doc: Value) -> Value {
        match &mut doc {
            Value::Array(items) => items.iter_mut().for_each(|item| self.record(item)),
            other => self.record(other),
        }
        match &self.wrap {
            Some(key) if !doc.is_object() => {
                let mut map = Map::new();
                map.insert(key.clone(), doc);
                Value::Object(map)
            }
            _ => doc,
        }
    }

    /// Steps 1–4 on one record; anything but an object passes unchanged.
    fn record(&self, doc: &mut Value) {
        if !doc.is_object() {
            return;
        }
        for (from, to) in &self.moves {
            let value = from.take(doc).unwrap_or(Value::Null);
            to.put(doc, value);
        }
        let Value::Object(map) = doc else { return };
        for (old, new) in &self.rename {
            if let Some(value) = map.remove(old) {
                map.insert(new.clone(), value);
            }
        }
        for name in &self.drop_names {
            map.remove(name);
        }
        for pointer in &self.drop_pointers {
            pointer.take(doc);
        }
        if let (Some(keep), Value::Object(map)) = (&self.keep, doc) {
            map.retain(|name, _| keep.binary_search(name).is_ok());
        }
    }
}

/// Checks a top-level member name given under `key` (`rename`, `keep`).
fn member_name(name: &str, key: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("a member name must not be empty");
    }
    if name.starts_with('/') {
        return Err(match key {
            "keep" => {
                "`keep` takes top-level member names, not pointers (`move` the value up first)"
            }
            _ => "`rename` takes top-level member names, not pointers (use `move`)",
        });
    }
    Ok(())
}
