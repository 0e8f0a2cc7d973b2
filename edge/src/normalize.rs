//! Path normalization before policy matching, so `/api/public/../admin` is matched (and
//! forwarded) as `/admin`: unreserved percent-escapes decoded, `.`/`..` resolved, `//`
//! collapsed; encoded `/`, `\` and NUL refused.

use std::fmt;

/// Why a path was refused (answered 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// `%2F` or `%5C`: an encoded separator would mean one thing here and another upstream.
    EncodedSlash,
    /// `%00` or a raw control character.
    Nul,
    /// Not starting with `/`.
    NotAbsolute,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::BadEscape => "malformed percent-escape in the path",
            PathError::EncodedSlash => "encoded path separator (%2F or %5C) in the path",
            PathError::Nul => "NUL or control character in the path",
            PathError::NotAbsolute => "the path must start with /",
        })
    }
}

impl std::error::Error for PathError {}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes escapes of unreserved characters (others kept, upper-cased) and refuses encoded
/// separators and NUL.
fn decode_unreserved(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b < 0x20 || b == 0x7f {
            return Err(PathError::Nul);
        }
        if b != b'%' {
            out.push(b as char);
            i += 1;
            continue;
        }
        let (Some(h), Some(l)) = (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(PathError::BadEscape);
        };
        let v = h << 4 | l;
        match v {
            b'/' | b'\\' => return Err(PathError::EncodedSlash),
            0 => return Err(PathError::Nul),
            v if unreserved(v) => out.push(v as char),
            v => out.push_str(&format!("%{v:02X}")),
        }
        i += 3;
    }
    Ok(out)
}

/// The normalized form of `path` (no query). A trailing slash is kept; `..` above the root
/// stays at the root (RFC 3986 §5.2.4).
pub fn normalize(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = decode_unreserved(path)?;
    let mut segments: Vec<&str> = Vec::new();
    let parts: Vec<&str> = decoded.split('/').skip(1).collect();
    let mut trailing = false;
    for (i, seg) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        match *seg {
            "" | "." => trailing = last,
            ".." => {
                segments.pop();
                trailing = last;
            }
            s => {
                segments.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_table() {
        let ok = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("/api/public/../admin", "/api/admin"),
            ("/api/public/../../admin", "/admin"),
            ("/api/public/%2e%2e/admin", "/api/admin"),
            ("/api/public/%2E%2E/%2e%2e/admin", "/admin"),
            ("//admin", "/admin"),
            ("/api//public///x", "/api/public/x"),
            ("/./a/./b/.", "/a/b/"),
            ("/../../etc", "/etc"),
            ("/%61dmin", "/admin"),
            ("/a%20b", "/a%20b"),
            ("/a%7eb", "/a~b"),
            ("/a%c3%a9", "/a%C3%A9"),
        ];
        for (input, want) in ok {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input}");
        }
        let bad = [
            ("/a%2Fb", PathError::EncodedSlash),
            ("/a%2fb", PathError::EncodedSlash),
            ("/a%5cb", PathError::EncodedSlash),
            ("/a%00b", PathError::Nul),
            ("/a%zz", PathError::BadEscape),
            ("/a%2", PathError::BadEscape),
            ("a/b", PathError::NotAbsolute),
        ];
        for (input, want) in bad {
            assert_eq!(normalize(input), Err(want), "{input}");
        }
    }
}
