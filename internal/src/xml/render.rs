//! JSON → XML: the answer side of the mapping in the module doc.

use std::fmt::Write;

use serde_json::Value;

use super::name::{is_xml_char, is_xml_name};

const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
const XSI: &str = r#" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance""#;

/// `value` as an XML document whose root element is `root` (checked by
/// [`super::XmlSettings::validate`]; a name that is not an XML name is written as `<member
/// name="…">` like any member). One pass, into one string.
pub fn to_xml(value: &Value, root: &str) -> String {
    let mut out = String::with_capacity(DECLARATION.len() + 128);
    out.push_str(DECLARATION);
    element(&mut out, root, value, true);
    out
}

fn element(out: &mut String, name: &str, value: &Value, root: bool) {
    let tag = if is_xml_name(name) { name } else { "member" };
    out.push('<');
    out.push_str(tag);
    if tag != name {
        out.push_str(" name=\"");
        escape(out, name, true);
        out.push('"');
    }
    if root {
        out.push_str(XSI);
    }
    match value {
        Value::Null => {
            out.push_str(r#" xsi:nil="true"/>"#);
            return;
        }
        Value::Bool(b) => {
            out.push('>');
            out.push_str(if *b { "true" } else { "false" });
        }
        Value::Number(n) => {
            out.push('>');
            // Writing to a String cannot fail.
            let _ = write!(out, "{n}");
        }
        Value::String(s) => {
            out.push('>');
            escape(out, s, false);
        }
        Value::Array(items) => {
            out.push('>');
            for item in items {
                element(out, "item", item, false);
            }
        }
        Value::Object(map) => {
            out.push('>');
            for (key, member) in map {
                element(out, key, member, false);
            }
        }
    }
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
}

/// Appends `text` escaped for element content or (with `attribute`) a double-quoted attribute
/// value; runs that need nothing are copied whole.
fn escape(out: &mut String, text: &str, attribute: bool) {
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let replacement = match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&apos;",
            // A literal CR is read back as a line end; tab and newline in an attribute as spaces.
            '\r' => "&#xD;",
            '\t' if attribute => "&#x9;",
            '\n' if attribute => "&#xA;",
            c if !is_xml_char(c) => "\u{FFFD}",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        out.push_str(replacement);
        start = i + c.len_utf8();
    }
    out.push_str(&text[start..]);
}
