//! XML → JSON: the request side of the mapping in the module doc, with its refusals.

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde_json::{Map, Value};

use super::name::is_xml_char;

/// Why an XML body was refused; the message is written for the client (a 400 problem).
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("the body is not UTF-8 (byte {position}); only UTF-8 XML is accepted")]
    NotUtf8 { position: usize },
    #[error("the XML declares encoding `{0}`; only UTF-8 is accepted")]
    Encoding(String),
    #[error("the body is not well-formed XML (near byte {position}): {source}")]
    Malformed {
        position: u64,
        #[source]
        source: quick_xml::Error,
    },
    #[error("the XML declaration must come first")]
    LateDeclaration,
    #[error("a DOCTYPE is not accepted (no DTDs, no entity declarations)")]
    Doctype,
    #[error(
        "unknown entity `&{0};`: only `&lt;` `&gt;` `&amp;` `&apos;` `&quot;` and character references are accepted"
    )]
    UnknownEntity(String),
    #[error("`&{0};` is not a character XML allows")]
    BadCharRef(String),
    #[error("elements are nested more than {max} deep")]
    TooDeep { max: usize },
    #[error("`<{0}>` mixes text with child elements")]
    MixedContent(String),
    #[error("attribute `{attribute}` on `<{element}>` is not accepted: data goes in elements")]
    Attribute { element: String, attribute: String },
    #[error("`xsi:nil` on `<{0}>` must be `true` or `false`")]
    BadNil(String),
    #[error("`<{0}>` is `xsi:nil=\"true\"` but has content")]
    NilWithContent(String),
    #[error("the body has no root element")]
    NoRoot,
    #[error("`<{0}>` is not closed")]
    Unclosed(String),
    #[error("there is content outside the root element")]
    OutsideRoot,
}

/// `bytes` (a UTF-8 XML document, a BOM allowed) as JSON: the root element's content, by the
/// module doc's mapping. `max_depth` counts elements, the root being 1.
pub fn from_xml(bytes: &[u8], max_depth: usize) -> Result<Value, XmlError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| XmlError::NotUtf8 {
        position: e.valid_up_to(),
    })?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Open> = Vec::new();
    let mut root: Option<Value> = None;
    let mut first = true;
    loop {
        let event = reader.read_event().map_err(|source| XmlError::Malformed {
            position: reader.error_position(),
            source,
        })?;
        let malformed = |source: quick_xml::Error| XmlError::Malformed {
            position: reader.buffer_position(),
            source,
        };
        match event {
            Event::Decl(decl) => {
                if !first {
                    return Err(XmlError::LateDeclaration);
                }
                if let Some(encoding) = decl.encoding() {
                    let encoding = encoding.map_err(|e| malformed(e.into()))?;
                    if !encoding.eq_ignore_ascii_case("utf-8") {
                        return Err(XmlError::Encoding(encoding.into_owned()));
                    }
                }
            }
            Event::DocType(_) => return Err(XmlError::Doctype),
            Event::Start(start) => {
                let open = open(&start, &stack, root.is_some(), max_depth, malformed)?;
                stack.push(open);
            }
            Event::Empty(start) => {
                let open = open(&start, &stack, root.is_some(), max_depth, malformed)?;
                close(open, &mut stack, &mut root);
            }
            Event::End(_) => {
                // The reader checks that end tags match their start tags.
                if let Some(open) = stack.pop() {
                    close(open, &mut stack, &mut root);
                }
            }
            Event::Text(t) => text_in(&mut stack, &t.xml10_content())?,
            Event::CData(t) => text_in(&mut stack, &t.xml10_content())?,
            Event::GeneralRef(r) => {
                let c = if r.is_char_ref() {
                    match r.resolve_char_ref() {
                        Ok(Some(c)) if is_xml_char(c) => c,
                        _ => return Err(XmlError::BadCharRef(r.to_string())),
                    }
                } else {
                    let known = quick_xml::escape::resolve_predefined_entity(&r);
                    match known.and_then(|s| s.chars().next()) {
                        Some(c) => c,
                        None => return Err(XmlError::UnknownEntity(r.to_string())),
                    }
                };
                text_in(&mut stack, c.encode_utf8(&mut [0; 4]))?;
            }
            Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
        first = false;
    }
    if let Some(open) = stack.pop() {
        return Err(XmlError::Unclosed(open.tag));
    }
    root.ok_or(XmlError::NoRoot)
}

/// An element being read.
struct Open {
    /// The element's name, for errors.
    tag: String,
    /// The member name it stands for: its tag, or `name` of a `<member name="…">`.
    key: String,
    nil: bool,
    /// Its text so far; emptied (it was whitespace) once a child arrives.
    text: String,
    children: Vec<(String, Value)>,
}

/// Starts an element, checking where it stands and its attributes.
fn open(
    start: &BytesStart<'_>,
    stack: &[Open],
    after_root: bool,
    max_depth: usize,
    malformed: impl Fn(quick_xml::Error) -> XmlError,
) -> Result<Open, XmlError> {
    if after_root {
        return Err(XmlError::OutsideRoot);
    }
    if stack.len() >= max_depth {
        return Err(XmlError::TooDeep { max: max_depth });
    }
    if let Some(parent) = stack.last() {
        if parent.nil {
            return Err(XmlError::NilWithContent(parent.tag.clone()));
        }
        if !is_blank(&parent.text) {
            return Err(XmlError::MixedContent(parent.tag.clone()));
        }
    }
    let name = start.name();
    let tag: &str = name.as_ref();
    let mut key = None;
    let mut nil = false;
    for attr in start.attributes() {
        let attr = attr.map_err(|e| malformed(e.into()))?;
        let attr_name: &str = attr.key.as_ref();
        let value = attr
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(&malformed)?;
        match attr_name {
            "xsi:nil" => {
                nil = match value.trim() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(XmlError::BadNil(tag.into())),
                }
            }
            "name" if tag == "member" => key = Some(value.into_owned()),
            n if n == "xmlns" || ["xmlns:", "xml:", "xsi:"].iter().any(|p| n.starts_with(p)) => {}
            other => {
                return Err(XmlError::Attribute {
                    element: tag.into(),
                    attribute: other.into(),
                });
            }
        }
    }
    Ok(Open {
        tag: tag.into(),
        key: key.unwrap_or_else(|| tag.into()),
        nil,
        text: String::new(),
        children: Vec::new(),
    })
}

/// Adds text to the open element; text outside the root may only be whitespace.
fn text_in(stack: &mut [Open], text: &str) -> Result<(), XmlError> {
    let Some(open) = stack.last_mut() else {
        return if is_blank(text) {
            Ok(())
        } else {
            Err(XmlError::OutsideRoot)
        };
    };
    if is_blank(text) && (open.nil || !open.children.is_empty()) {
        return Ok(());
    }
    if open.nil {
        return Err(XmlError::NilWithContent(open.tag.clone()));
    }
    if !open.children.is_empty() {
        return Err(XmlError::MixedContent(open.tag.clone()));
    }
    open.text.push_str(text);
    Ok(())
}

/// Ends an element: its value goes to its parent, or becomes the document.
fn close(open: Open, stack: &mut [Open], root: &mut Option<Value>) {
    let value = if open.nil {
        Value::Null
    } else if open.children.is_empty() {
        Value::String(open.text)
    } else if open.children.iter().all(|(key, _)| key == "item") {
        Value::Array(open.children.into_iter().map(|(_, v)| v).collect())
    } else {
        object(open.children)
    };
    match stack.last_mut() {
        Some(parent) => {
            // Whitespace before the first child was layout.
            parent.text.clear();
            parent.children.push((open.key, value));
        }
        None => *root = Some(value),
    }
}

/// Children as an object; a name seen again makes that member an array, in document order.
fn object(children: Vec<(String, Value)>) -> Value {
    let mut map = Map::new();
    let mut repeated: Vec<String> = Vec::new();
    for (key, value) in children {
        match map.get_mut(&key) {
            None => {
                map.insert(key, value);
            }
            Some(existing) => {
                if repeated.contains(&key) {
                    if let Value::Array(items) = existing {
                        items.push(value);
                    }
                } else {
                    *existing = Value::Array(vec![existing.take(), value]);
                    repeated.push(key);
                }
            }
        }
    }
    Value::Object(map)
}

/// Whether `text` is only XML whitespace.
fn is_blank(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}
