//! One field value ↔ its text, by the proto3 JSON rules for values given as strings: integers
//! in range (exponent forms allowed when integral), `NaN`/`Infinity`, `true`/`false`, bytes as
//! base64 of either alphabet, enums by name or number, and the well-known types JSON writes as
//! strings.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

/// Padding optional on input, as proto3 JSON parsers accept.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

/// The wrappers: messages whose JSON form is the JSON form of their `value` field.
const WRAPPERS: [&str; 9] = [
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

const TIMESTAMP: &str = "google.protobuf.Timestamp";
const DURATION: &str = "google.protobuf.Duration";
const FIELD_MASK: &str = "google.protobuf.FieldMask";

/// Whether `message` is a well-known type given as one string (so a path or query can set it).
pub(super) fn has_text_form(message: &MessageDescriptor) -> bool {
    let name = message.full_name();
    WRAPPERS.contains(&name) || [TIMESTAMP, DURATION, FIELD_MASK].contains(&name)
}

/// The field's type as error messages name it: `int64`, `gatehouse.v1.Color`...
pub(super) fn kind_name(field: &FieldDescriptor) -> String {
    match field.kind() {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        kind => format!("{kind:?}").to_lowercase(),
    }
}

/// The value of one element of `field` (one more element of a repeated field) from `text`;
/// the error is the reason, for [`super::FieldError::InvalidValue`].
pub(super) fn parse(field: &FieldDescriptor, text: &str) -> Result<Value, String> {
    match field.kind() {
        Kind::Message(message) => message_from_text(&message, text),
        kind => scalar(&kind, text),
    }
}

fn scalar(kind: &Kind, text: &str) -> Result<Value, String> {
    Ok(match kind {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(integer(text, "int32")?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(integer(text, "int64")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(integer(text, "uint32")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(integer(text, "uint64")?),
        Kind::Float => {
            let value = float(text)?;
            if value.is_finite() && value.abs() > f64::from(f32::MAX) {
                return Err("out of range for float".to_owned());
            }
            // Narrowing is the point: a float field holds the nearest f32.
            Value::F32(value as f32)
        }
        Kind::Double => Value::F64(float(text)?),
        Kind::Bool => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err("expected `true` or `false`".to_owned()),
        },
        Kind::String => Value::String(text.to_owned()),
        Kind::Bytes => Value::Bytes(bytes(text)?.into()),
        Kind::Enum(e) => match e.get_value_by_name(text) {
            Some(value) => Value::EnumNumber(value.number()),
            // Proto3 enums are open: a number the descriptor does not list is kept.
            None => match text.parse::<i32>() {
                Ok(number) => Value::EnumNumber(number),
                Err(_) => {
                    let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
                    return Err(format!("expected a number or one of {}", names.join(", ")));
                }
            },
        },
        Kind::Message(m) => return Err(format!("{} has no text form", m.full_name())),
    })
}

/// An integer of type `T`: decimal, or (as proto3 JSON allows) a number with a fraction or
/// exponent that is integral and exact in a double (`1e3`, `5.0`).
fn integer<T: TryFrom<i128>>(text: &str, name: &str) -> Result<T, String> {
    let wide: i128 = match text.parse::<i128>() {
        Ok(wide) => wide,
        Err(_) => {
            let numeric = !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
            let float: f64 = match text.parse() {
                Ok(float) if numeric => float,
                _ => return Err("not an integer".to_owned()),
            };
            if float.fract() != 0.0 || !float.is_finite() {
                return Err("not an integer".to_owned());
            }
            // 2^53: above it a double is not exact; the cast below is lossless within it.
            if float.abs() > 9_007_199_254_740_992.0 {
                return Err(format!("out of range for {name}"));
            }
            float as i128
        }
    };
    T::try_from(wide).map_err(|_| format!("out of range for {name}"))
}

/// A double: decimal or exponent form, or `NaN`, `Infinity`, `-Infinity` (and not Rust's
/// other spellings such as `inf`).
fn float(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => return Ok(f64::NAN),
        "Infinity" => return Ok(f64::INFINITY),
        "-Infinity" => return Ok(f64::NEG_INFINITY),
        _ => {}
    }
    let numeric = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
    match text.parse::<f64>() {
        Ok(value) if numeric && value.is_finite() => Ok(value),
        Ok(_) if numeric => Err("out of range for double".to_owned()),
        _ => Err("not a number".to_owned()),
    }
}

/// Base64, standard or URL-safe alphabet, padded or not. A space reads as `+`: a standard
/// `+` left unescaped in a query string arrives as a space, and base64 has no spaces.
fn bytes(text: &str) -> Result<Vec<u8>, String> {
    let text = text.replace(' ', "+");
    let engine = if text.contains(['-', '_']) {
        &URL_SAFE
    } else {
        &STANDARD
    };
    engine
        .decode(text.as_bytes())
        .map_err(|e| format!("not base64: {e}"))
}

/// A well-known type from its JSON string form.
fn message_from_text(message: &MessageDescriptor, text: &str) -> Result<Value, String> {
    let name = message.full_name();
    if WRAPPERS.contains(&name) {
        let Some(inner) = message.get_field_by_name("value") else {
            return Err(format!("{name} has no `value` field"));
        };
        let mut wrapper = DynamicMessage::new(message.clone());
        wrapper
            .try_set_field(&inner, scalar(&inner.kind(), text)?)
            .map_err(|e| e.to_string())?;
        return Ok(Value::Message(wrapper));
    }
    if name == FIELD_MASK {
        return field_mask(message, text);
    }
    if name == TIMESTAMP || name == DURATION {
        // prost-reflect's JSON parser checks RFC 3339 / `1.5s` and the ranges.
        let json = serde_json::Value::String(text.to_owned());
        return DynamicMessage::deserialize(message.clone(), json)
            .map(Value::Message)
            .map_err(|e| e.to_string());
    }
    Err(format!("{name} has no text form"))
}

/// `a,b.c`: paths by proto name (`update_time`) or JSON name (`updateTime`), stored by proto
/// name as `FieldMask` holds them. (prost-reflect's JSON parser refuses proto names.)
fn field_mask(message: &MessageDescriptor, text: &str) -> Result<Value, String> {
    let Some(paths_field) = message.get_field_by_name("paths") else {
        return Err(format!("{} has no `paths` field", message.full_name()));
    };
    let paths = text
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|p| Value::String(snake_case(p)))
        .collect();
    let mut mask = DynamicMessage::new(message.clone());
    mask.try_set_field(&paths_field, Value::List(paths))
        .map_err(|e| e.to_string())?;
    Ok(Value::Message(mask))
}

/// `updateTime.nanos` → `update_time.nanos`; proto names pass unchanged.
fn snake_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The text of one element of `field` (the reverse of [`parse`]); `None` for values with no
/// text form (messages other than the well-known types, lists, maps).
pub(super) fn format(field: &FieldDescriptor, value: &Value) -> Option<String> {
    Some(match value {
        Value::Bool(b) => b.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::U32(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::F32(x) => float_text(f64::from(*x), x.to_string()),
        Value::F64(x) => float_text(*x, x.to_string()),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => base64::engine::general_purpose::STANDARD.encode(b),
        Value::EnumNumber(n) => match field.kind() {
            Kind::Enum(e) => e
                .get_value(*n)
                .map_or_else(|| n.to_string(), |v| v.name().to_owned()),
            _ => n.to_string(),
        },
        Value::Message(m) => message_text(m)?,
        Value::List(_) | Value::Map(_) => return None,
    })
}

/// `NaN` and `Infinity` as proto3 JSON spells them; finite values in Rust's shortest form.
fn float_text(value: f64, shortest: String) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        shortest
    }
}

/// A well-known type's string: the wrapped value's text, or what the JSON mapping writes.
fn message_text(message: &DynamicMessage) -> Option<String> {
    let descriptor = message.descriptor();
    let name = descriptor.full_name();
    if WRAPPERS.contains(&name) {
        let inner = descriptor.get_field_by_name("value")?;
        return format(&inner, &message.get_field(&inner));
    }
    if ![TIMESTAMP, DURATION, FIELD_MASK].contains(&name) {
        return None;
    }
    match serde_json::to_value(message).ok()? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}
