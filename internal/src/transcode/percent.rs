//! Percent-encoding as path templates and query strings need it: full decoding, decoding that
//! keeps reserved characters escaped (multi-segment template variables), `+` as a space in
//! queries, and encoding that leaves only unreserved characters (and maybe `/`) as they are.

use std::fmt::Write;

/// Text that is not valid percent-encoded UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("`%` not followed by two hex digits")]
    BadEscape,
    #[error("not valid UTF-8 once decoded")]
    NotUtf8,
}

/// How [`decode`] treats what it decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every `%XX` is decoded: a single path segment.
    Full,
    /// RFC 6570 reserved characters (`%2F` above all) stay escaped, as the `google.api.http`
    /// spec asks for multi-segment variables: their `/` must stay distinguishable from an
    /// escaped one.
    KeepReserved,
    /// Every `%XX`, and `+` is a space: `application/x-www-form-urlencoded` query strings.
    Query,
}

/// RFC 6570 reserved characters (gen-delims and sub-delims).
const RESERVED: &[u8] = b":/?#[]@!$&'()*+,;=";

/// Decodes `raw` by `mode`.
pub fn decode(raw: &str, mode: Mode) -> Result<String, DecodeError> {
    if !raw.contains('%') && (mode != Mode::Query || !raw.contains('+')) {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let high = bytes.get(i + 1).and_then(|b| hex(*b));
                let low = bytes.get(i + 2).and_then(|b| hex(*b));
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(DecodeError::BadEscape);
                };
                let byte = high << 4 | low;
                if mode == Mode::KeepReserved && RESERVED.contains(&byte) {
                    out.extend_from_slice(&bytes[i..i + 3]);
                } else {
                    out.push(byte);
                }
                i += 3;
            }
            b'+' if mode == Mode::Query => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `text` with everything but `[-_.~0-9a-zA-Z]` (and `/` when `keep_slash`) percent-encoded:
/// safe in a path segment and in a query value alike.
pub fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        let cases: &[(&str, Mode, Result<&str, DecodeError>)] = &[
            ("plain", Mode::Full, Ok("plain")),
            ("a%20b", Mode::Full, Ok("a b")),
            ("a%2Fb", Mode::Full, Ok("a/b")),
            ("a%2fb", Mode::KeepReserved, Ok("a%2fb")),
            ("a%2Fb%20c", Mode::KeepReserved, Ok("a%2Fb c")),
            ("a%3Ab", Mode::KeepReserved, Ok("a%3Ab")),
            ("caf%C3%A9", Mode::KeepReserved, Ok("café")),
            ("a+b", Mode::Full, Ok("a+b")),
            ("a+b%2B", Mode::Query, Ok("a b+")),
            ("100%", Mode::Full, Err(DecodeError::BadEscape)),
            ("%4", Mode::Full, Err(DecodeError::BadEscape)),
            ("%zz", Mode::Query, Err(DecodeError::BadEscape)),
            ("%FF", Mode::Full, Err(DecodeError::NotUtf8)),
        ];
        for (raw, mode, want) in cases {
            let got = decode(raw, *mode);
            assert_eq!(got.as_deref(), want.as_deref(), "{raw} {mode:?}");
        }
    }

    #[test]
    fn encode_table() {
        let cases: &[(&str, bool, &str)] = &[
            ("abc-_.~09", false, "abc-_.~09"),
            ("a b/c", false, "a%20b%2Fc"),
            ("a b/c", true, "a%20b/c"),
            ("café:?", false, "caf%C3%A9%3A%3F"),
            ("", false, ""),
        ];
        for (text, keep_slash, want) in cases {
            assert_eq!(encode(text, *keep_slash), *want, "{text}");
        }
    }
}
