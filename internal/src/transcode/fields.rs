//! Fields of a dynamic message set from text (path variables, query parameters) and read back
//! as text (the gRPC → REST direction), converted as the proto3 JSON mapping converts scalars
//! given as strings.
//!
//! A field path is dotted (`inner.child.name`); each element may be the proto field name or
//! its JSON name (`page_size` or `pageSize`). Every element but the last must be a singular
//! message field (created when unset). The last is a scalar or enum, singular or repeated
//! (text appends one element), or one of the well-known types written as a string in JSON:
//! the wrappers (`google.protobuf.Int64Value`...), `Timestamp` (RFC 3339), `Duration`
//! (`1.5s`) and `FieldMask` (`a,b.c`). Maps and other messages are refused: they have no
//! text form.

mod query;
mod text;

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

use crate::transcode::percent::DecodeError;

pub use query::{apply_query, to_query};

/// A field that could not be set from text. `Display` is meant for the client (a 400 body):
/// it names the field as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// A query parameter that names no field (and the route does not ignore those).
    #[error("unknown query parameter `{0}`")]
    UnknownParameter(String),
    /// A path element that names no field of its message.
    #[error("`{path}`: {message} has no field `{name}`")]
    UnknownField {
        path: String,
        /// The message's full name.
        message: String,
        name: String,
    },
    /// A path element below a field that is not a singular message.
    #[error("`{path}`: `{name}` is not a singular message field, it has no field `{below}`")]
    NotAMessage {
        path: String,
        name: String,
        below: String,
    },
    /// The path ends at a message (or a map): only its scalar fields can be given as text.
    #[error("`{path}` is a {what}; a text value can only set a scalar field")]
    NotScalar { path: String, what: &'static str },
    /// The text is not a value of the field's type.
    #[error("invalid value `{value}` for `{path}` ({kind}): {reason}")]
    InvalidValue {
        path: String,
        value: String,
        /// The field's type (`int64`, `gatehouse.v1.Color`...).
        kind: String,
        reason: String,
    },
    /// A query string that is not valid percent-encoded UTF-8.
    #[error("query parameter `{text}`: {source}")]
    BadEncoding {
        text: String,
        #[source]
        source: DecodeError,
    },
}

/// Sets the field at `path` of `msg` from `text` (a repeated field gets one more element).
pub fn set_path(msg: &mut DynamicMessage, path: &str, text: &str) -> Result<(), FieldError> {
    let fields = resolve(&msg.descriptor(), path)?;
    set_resolved(msg, &fields, path, text)
}

/// The text of the scalar at `path` (proto or JSON names), as a path variable or query value
/// carries it: unset scalars read as their default (`0`, `""`), as proto3 has it. `None` when
/// the path names no field, or a field with no text form (a message, a map, a repeated
/// field), or an unset well-known-type field (an unset wrapper is not its default).
pub fn get_path(msg: &DynamicMessage, path: &str) -> Option<String> {
    let fields = resolve(&msg.descriptor(), path).ok()?;
    let (leaf, parents) = fields.split_last()?;
    leaf_text(msg, parents, leaf)
}

/// [`get_path`] below `msg`: unset parents read as their default (borrowed when set).
fn leaf_text(
    msg: &DynamicMessage,
    parents: &[FieldDescriptor],
    leaf: &FieldDescriptor,
) -> Option<String> {
    if let Some((first, rest)) = parents.split_first() {
        return leaf_text(msg.get_field(first).as_message()?, rest, leaf);
    }
    if leaf.is_list() || leaf.is_map() {
        return None;
    }
    if let Kind::Message(inner) = leaf.kind()
        && (!text::has_text_form(&inner) || !msg.has_field(leaf))
    {
        return None;
    }
    text::format(leaf, &msg.get_field(leaf))
}

/// The fields along `path` in `message`, each element by proto or JSON name; every one but the
/// last is a singular message field. The last is not checked (see [`check_leaf`]).
fn resolve(message: &MessageDescriptor, path: &str) -> Result<Vec<FieldDescriptor>, FieldError> {
    let mut fields: Vec<FieldDescriptor> = Vec::new();
    let mut current = message.clone();
    for name in path.split('.') {
        if let Some(parent) = fields.last() {
            match parent.kind() {
                Kind::Message(inner) if !parent.is_list() && !parent.is_map() => current = inner,
                _ => {
                    return Err(FieldError::NotAMessage {
                        path: path.to_owned(),
                        name: parent.name().to_owned(),
                        below: name.to_owned(),
                    });
                }
            }
        }
        let field = current
            .get_field_by_name(name)
            .or_else(|| current.get_field_by_json_name(name))
            .ok_or_else(|| FieldError::UnknownField {
                path: path.to_owned(),
                message: current.full_name().to_owned(),
                name: name.to_owned(),
            })?;
        fields.push(field);
    }
    Ok(fields)
}

/// Refuses a leaf that text cannot set: a map, or a message without a text form.
fn check_leaf(leaf: &FieldDescriptor, path: &str) -> Result<(), FieldError> {
    let what = if leaf.is_map() {
        "map"
    } else {
        match leaf.kind() {
            Kind::Message(inner) if !text::has_text_form(&inner) => "message",
            _ => return Ok(()),
        }
    };
    Err(FieldError::NotScalar {
        path: path.to_owned(),
        what,
    })
}

/// Sets the leaf of resolved `fields` from `text`, creating the parent messages.
fn set_resolved(
    msg: &mut DynamicMessage,
    fields: &[FieldDescriptor],
    path: &str,
    text: &str,
) -> Result<(), FieldError> {
    let Some((leaf, parents)) = fields.split_last() else {
        return Ok(());
    };
    check_leaf(leaf, path)?;
    let invalid = |reason: String| FieldError::InvalidValue {
        path: path.to_owned(),
        value: text.to_owned(),
        kind: text::kind_name(leaf),
        reason,
    };
    let value = text::parse(leaf, text).map_err(invalid)?;
    let mut current = msg;
    for field in parents {
        current = match current.get_field_mut(field) {
            Value::Message(inner) => inner,
            _ => return Err(invalid("a parent is not a message".to_owned())),
        };
    }
    if leaf.is_list() {
        match current.get_field_mut(leaf) {
            Value::List(items) => items.push(value),
            _ => return Err(invalid("the field is not a list".to_owned())),
        }
        Ok(())
    } else {
        current
            .try_set_field(leaf, value)
            .map_err(|e| invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
