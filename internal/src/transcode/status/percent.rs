//! The percent-encoding of `grpc-message` (gRPC's PROTOCOL-HTTP2 spec): UTF-8, with every byte
//! outside printable ASCII, and `%` itself, written as `%XX`.

/// `message` as a `grpc-message` value: only printable ASCII but `%` is kept as is.
pub fn encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &b in message.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(hex_digit(b >> 4));
            out.push(hex_digit(b & 0x0f));
        }
    }
    out
}

/// A `grpc-message` value decoded. The spec asks receivers never to fail on a bad value, so a `%`
/// not followed by two hex digits is kept literally and bytes that are not UTF-8 become U+FFFD.
pub fn decode(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        if b == b'%'
            && let Some(&[hi, lo]) = value.get(i + 1..i + 3)
            && let (Some(hi), Some(lo)) = (hex_value(hi), hex_value(lo))
        {
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    match String::from_utf8(out) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

fn hex_digit(n: u8) -> char {
    char::from(b"0123456789ABCDEF"[usize::from(n & 0x0f)])
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_all_but_printable_ascii() {
        let cases = [
            ("", ""),
            ("not found", "not found"),
            ("100%", "100%25"),
            ("a\tb\r\nc", "a%09b%0D%0Ac"),
            ("café", "caf%C3%A9"),
            ("→ ok", "%E2%86%92 ok"),
            (
                "~!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}",
                "~!\"#$&'()*+,-./:;<=>?@[\\]^_`{|}",
            ),
            ("\u{7f}", "%7F"),
        ];
        for (message, want) in cases {
            assert_eq!(encode(message), want, "{message:?}");
            assert_eq!(decode(want.as_bytes()), message, "back from {want:?}");
        }
    }

    #[test]
    fn decodes_leniently() {
        let cases: [(&[u8], &str); 9] = [
            (b"caf%c3%a9", "café"),   // lowercase hex
            (b"100%", "100%"),        // `%` at the end
            (b"100%2", "100%2"),      // one digit only
            (b"%zz%41", "%zzA"),      // not hex, then hex
            (b"%%41", "%A"),          // a literal `%` before an escape
            (b"%FF", "\u{fffd}"),     // not UTF-8
            (b"caf\xc3\xa9", "café"), // raw UTF-8 (obs-text) kept
            (b"a%20b", "a b"),        // an encoded space
            (b"%E2%86", "\u{fffd}"),  // a truncated UTF-8 sequence
        ];
        for (value, want) in cases {
            assert_eq!(decode(value), want, "{:?}", String::from_utf8_lossy(value));
        }
    }
}
