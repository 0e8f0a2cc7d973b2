//! JSON ↔ XML by one fixed mapping, and the choice between them by `Accept`: the pieces a
//! route uses to answer XML clients from JSON services and to take their XML request bodies.
//!
//! **JSON → XML** ([`to_xml`], answers): `<?xml version="1.0" encoding="UTF-8"?>`, then the
//! document as one element named by the route's `root` (default `response`), which declares
//! `xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"` (always, once):
//!
//! - an object member → a child element named by the member, in the map's order;
//! - an array → one `<item>` child per element (`tags: [a, b]` →
//!   `<tags><item>a</item><item>b</item></tags>`; a top-level array → `<root><item>…`);
//! - a string → its text; a number → its text as JSON writes it; a bool → `true`/`false`;
//! - `null` → an empty element with `xsi:nil="true"`;
//! - a member name that is not an XML name (empty, starting with a digit, `-` or `.`,
//!   containing a space, `@`, `:`..., or starting with `xml` in any case) →
//!   `<member name="the original name">`, so no key is lost or mangled;
//! - text and attributes escape `& < > " '` as entities and `\r` as `&#xD;` (tab and newline
//!   too in attributes), so they read back as written; a character XML 1.0 cannot carry (a
//!   control character other than tab, newline and CR; U+FFFE, U+FFFF) becomes U+FFFD.
//!   Everything else, non-ASCII included, is written as UTF-8.
//!
//! **XML → JSON** ([`from_xml`], request bodies), the inverse; the root element's name is
//! dropped and its content is the document:
//!
//! - an element with child elements → an object; a child name seen more than once → an array
//!   of those children in order; children all named `item` → an array (one `<item>` too);
//! - **text is always a string**: `<quantity>2</quantity>` → `"2"`, never a guessed number or
//!   bool (`"1001"` stays a string id; a round trip of strings is exact); the service decides;
//! - an empty element (`<a/>`, `<a></a>`) → `""`; `xsi:nil="true"` → `null`;
//! - whitespace between child elements is layout and dropped; the text of a text-only element
//!   is kept exactly (XML's line-end normalization aside: `\r\n` → `\n`); CDATA is text;
//! - `<member name="x">` → a member named `x`; element names are taken as written, prefix and
//!   all (no namespace processing); `xmlns`, `xml:*` and `xsi:*` attributes are accepted,
//!   any other attribute is refused (data lives in elements only, none is dropped silently);
//! - refused as [`XmlError`] (a 400 for the client): input that is not UTF-8 or not
//!   well-formed, any `<!DOCTYPE` (so no DTD, external entity or entity expansion: XXE and
//!   "billion laughs" cannot happen), entities other than the five predefined ones and
//!   character references, nesting deeper than the caller's limit, text mixed with elements,
//!   content outside the root. No input panics.
//!
//! Caveats of the mapping: a single child can't be told from a one-element list unless it is
//! an `<item>`; `{}`, `[]` and `""` all render as an empty element and read back as `""`; an
//! object whose only member is named `item` reads back as an array.
//!
//! **Negotiation** ([`negotiate`]): which of JSON and XML a client's `Accept` prefers.

mod name;
mod negotiate;
mod parse;
mod render;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use name::is_xml_name;
pub use negotiate::{Format, NotAcceptable, is_xml_content_type, negotiate};
pub use parse::{XmlError, from_xml};
pub use render::to_xml;

/// A route's `xml` keys: whether and how it speaks XML besides JSON.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct XmlSettings {
    /// The name of the root element of XML answers. Must be an XML name (no `:`, not starting
    /// with `xml`). Default `response`.
    pub root: String,
    /// Whether the route also takes an XML request body and forwards it to the service as
    /// JSON (by [`from_xml`]). Default false: the body is forwarded as sent.
    pub accept_xml_body: bool,
}

impl Default for XmlSettings {
    fn default() -> Self {
        XmlSettings {
            root: "response".into(),
            accept_xml_body: false,
        }
    }
}

impl XmlSettings {
    /// Checks the settings at load; the error names the key at fault, relative to these
    /// settings (the caller prefixes its own key path).
    pub fn validate(&self) -> Result<(), XmlSettingsError> {
        if !is_xml_name(&self.root) {
            return Err(XmlSettingsError {
                key: "root",
                message: format!(
                    "`{}` is not an XML element name (a letter or `_` first, then letters, \
                     digits, `-`, `_` or `.`; no `:`; not starting with `xml`)",
                    self.root
                ),
            });
        }
        Ok(())
    }
}

/// An [`XmlSettings`] key refused at load.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct XmlSettingsError {
    pub key: &'static str,
    pub message: String,
}
