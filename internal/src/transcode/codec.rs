//! JSON ↔ protobuf for transcoded calls: prost-reflect's proto3 JSON mapping, with the route's
//! output options and a binding's `body` / `response_body` selections.

use bytes::Bytes;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, MessageDescriptor, ReflectMessage,
    SerializeOptions,
};
use serde::{Deserialize, Serialize};

use super::rules::Body;

/// How messages are written as JSON (a route's `json:`). Reading always takes both spellings
/// of a field name, int64 as string or number, and enums by name or number (the mapping's rule).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JsonSettings {
    /// Fields at their default value are written too (`"quantity": 0`, `"items": []`), so
    /// clients see the same keys in every answer (grpc-gateway's default; Envoy omits them).
    pub emit_defaults: bool,
    /// Field names as in the `.proto` (`product_id`) instead of lowerCamelCase (`productId`).
    pub proto_names: bool,
    /// Enum values as numbers instead of names.
    pub enum_numbers: bool,
}

impl Default for JsonSettings {
    fn default() -> Self {
        JsonSettings {
            emit_defaults: true,
            proto_names: false,
            enum_numbers: false,
        }
    }
}

impl JsonSettings {
    fn options(&self) -> SerializeOptions {
        SerializeOptions::new()
            .skip_default_fields(!self.emit_defaults)
            .use_proto_field_name(self.proto_names)
            .use_enum_numbers(self.enum_numbers)
    }
}

/// Unknown fields in a request are refused: a misspelt field silently ignored is a bug the
/// client never sees.
const READ: DeserializeOptions = DeserializeOptions::new();

/// One request message from a JSON body, per the binding's `body` rule (`*`: the whole
/// message; a field: that field's value). An empty body is the empty message.
pub fn from_json(
    input: &MessageDescriptor,
    body: &Body,
    bytes: &[u8],
) -> Result<DynamicMessage, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(input.clone()));
    }
    match body {
        Body::None => Ok(DynamicMessage::new(input.clone())),
        Body::Whole => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let msg = DynamicMessage::deserialize_with_options(input.clone(), &mut de, &READ)
                .map_err(|e| format!("invalid JSON body: {e}"))?;
            de.end().map_err(|e| format!("invalid JSON body: {e}"))?;
            Ok(msg)
        }
        Body::Field(_) => {
            let value: serde_json::Value =
                serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON body: {e}"))?;
            from_value(input, body, value)
        }
    }
}

/// One request message from an already parsed JSON value (an element of a client stream).
fn from_value(
    input: &MessageDescriptor,
    body: &Body,
    value: serde_json::Value,
) -> Result<DynamicMessage, String> {
    let value = match body {
        Body::None => return Ok(DynamicMessage::new(input.clone())),
        Body::Whole => value,
        // The field's value under the field's own name: the mapping then checks its type.
        Body::Field(field) => under_field(field, value),
    };
    DynamicMessage::deserialize_with_options(input.clone(), value, &READ)
        .map_err(|e| format!("invalid JSON body: {e}"))
}

/// The messages of a client stream: an NDJSON body (`application/x-ndjson`, one message per
/// line) or a JSON array.
pub fn stream_from_json(
    input: &MessageDescriptor,
    body: &Body,
    headers: &http::HeaderMap,
    bytes: &[u8],
) -> Result<Vec<DynamicMessage>, String> {
    let ndjson = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-ndjson"))
        });
    if ndjson {
        return bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(i, line)| {
                from_json(input, body, line).map_err(|e| format!("line {}: {e}", i + 1))
            })
            .collect();
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("invalid JSON body: {e}"))?;
    let serde_json::Value::Array(items) = value else {
        return Err("a client stream takes a JSON array or NDJSON (application/x-ndjson)".into());
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| from_value(input, body, item).map_err(|e| format!("element {i}: {e}")))
        .collect()
}

/// A response message as JSON; with `response_body`, only that field's value.
pub fn to_json(
    output: &MessageDescriptor,
    response_body: Option<&FieldDescriptor>,
    bytes: &[u8],
    settings: &JsonSettings,
) -> Result<Bytes, String> {
    let msg = DynamicMessage::decode(output.clone(), bytes)
        .map_err(|e| format!("not a {}: {e}", output.full_name()))?;
    match response_body {
        Some(field) => field_json(&msg, field, settings),
        None => message_json(&msg, settings),
    }
}

/// A message as JSON, by the route's settings.
pub fn message_json(msg: &DynamicMessage, settings: &JsonSettings) -> Result<Bytes, String> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::new(&mut out);
    msg.serialize_with_options(&mut ser, &settings.options())
        .map_err(|e| e.to_string())?;
    Ok(Bytes::from(out))
}

/// One field of a message as JSON (a `response_body`, a request `body` field): its value as the
/// mapping writes it inside the message, written even at its default value (the body must be
/// there).
pub fn field_json(
    msg: &DynamicMessage,
    field: &FieldDescriptor,
    settings: &JsonSettings,
) -> Result<Bytes, String> {
    // Only that field is serialized, not the whole message.
    let mut only = DynamicMessage::new(msg.descriptor());
    only.set_field(field, msg.get_field(field).into_owned());
    let options = settings.options().skip_default_fields(false);
    let value = only
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| e.to_string())?;
    let key = match settings.proto_names {
        true => field.name(),
        false => field.json_name(),
    };
    let part = value.get(key).unwrap_or(&serde_json::Value::Null);
    serde_json::to_vec(part)
        .map(Bytes::from)
        .map_err(|e| e.to_string())
}

/// `{"<field's JSON name>": value}`: a field's value as the message the mapping reads it in.
pub fn under_field(field: &FieldDescriptor, value: serde_json::Value) -> serde_json::Value {
    let mut object = serde_json::Map::new();
    object.insert(field.json_name().to_owned(), value);
    serde_json::Value::Object(object)
}
