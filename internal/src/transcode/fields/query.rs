//! Query strings ↔ message fields: `a.b=1&tags=x&tags=y` sets fields of the request
//! message (REST → gRPC), and a message's set fields become such a query (gRPC → REST).

use prost_reflect::{DynamicMessage, Kind, ReflectMessage, Value};

use super::{FieldError, resolve, set_resolved, text};
use crate::transcode::percent::{self, Mode};

/// Sets fields of `msg` from `query` (the raw query string, without `?`): keys and values are
/// percent-decoded with `+` as a space, keys are field paths by proto or JSON names, a
/// repeated field takes one element per occurrence.
///
/// A parameter naming a field in `bound` (or below one: field paths by proto name, those the
/// path template and the body already set) is ignored, as grpc-gateway does: the path wins, so
/// `?order_id=2` cannot override `/orders/1`. A parameter naming no field is an error
/// ([`FieldError::UnknownParameter`]) unless `ignore_unknown`; one naming a message or a map
/// is always an error.
pub fn apply_query(
    msg: &mut DynamicMessage,
    query: &str,
    bound: &[impl AsRef<str>],
    ignore_unknown: bool,
) -> Result<(), FieldError> {
    let descriptor = msg.descriptor();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |raw: &str| {
            percent::decode(raw, Mode::Query).map_err(|source| FieldError::BadEncoding {
                text: raw.to_owned(),
                source,
            })
        };
        let key = decode(raw_key)?;
        let fields = match resolve(&descriptor, &key) {
            Ok(fields) => fields,
            Err(FieldError::UnknownField { .. }) if ignore_unknown => continue,
            Err(FieldError::UnknownField { .. }) => return Err(FieldError::UnknownParameter(key)),
            Err(e) => return Err(e),
        };
        let canonical = fields
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(".");
        if is_under(&canonical, bound) {
            continue;
        }
        set_resolved(msg, &fields, &key, &decode(raw_value)?)?;
    }
    Ok(())
}

/// The set fields of `msg` as a query string, for a REST request built from a message:
/// scalars and repeated scalars whose value is not the default (or that are set, for fields
/// with presence), nested messages as `a.b=`, keys by JSON name (`pageSize`, as Google's REST
/// APIs name parameters), values percent-encoded. Fields in `exclude` (proto-name paths, and
/// everything below them) are left out: those the path and the body carry. Maps and repeated
/// messages have no query form and are left out too.
pub fn to_query(msg: &DynamicMessage, exclude: &[impl AsRef<str>]) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    collect(msg, "", "", exclude, &mut pairs);
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent::encode(k, false),
                percent::encode(v, false)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn collect(
    msg: &DynamicMessage,
    json_prefix: &str,
    proto_prefix: &str,
    exclude: &[impl AsRef<str>],
    pairs: &mut Vec<(String, String)>,
) {
    for field in msg.descriptor().fields() {
        if !msg.has_field(&field) || field.is_map() {
            continue;
        }
        let proto_path = format!("{proto_prefix}{}", field.name());
        if is_under(&proto_path, exclude) {
            continue;
        }
        let key = format!("{json_prefix}{}", field.json_name());
        let value = msg.get_field(&field);
        match (&*value, field.kind()) {
            (Value::List(items), _) => {
                // Elements with no text form (messages) give `None` and are left out.
                pairs.extend(
                    items
                        .iter()
                        .filter_map(|item| text::format(&field, item))
                        .map(|text| (key.clone(), text)),
                );
            }
            (Value::Message(inner), Kind::Message(descriptor))
                if !text::has_text_form(&descriptor) =>
            {
                collect(
                    inner,
                    &format!("{key}."),
                    &format!("{proto_path}."),
                    exclude,
                    pairs,
                );
            }
            (value, _) => pairs.extend(text::format(&field, value).map(|text| (key, text))),
        }
    }
}

/// Whether `path` is one of `roots` or below one.
fn is_under(path: &str, roots: &[impl AsRef<str>]) -> bool {
    roots.iter().any(|root| {
        let root = root.as_ref();
        path == root
            || (path.len() > root.len()
                && path.starts_with(root)
                && path.as_bytes()[root.len()] == b'.')
    })
}
