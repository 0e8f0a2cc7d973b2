//! Choosing a server-streaming call's output format from the request's `Accept` header.

use http::HeaderValue;

use super::Format;

/// The formats in the gateway's order of preference, used to break ties.
const FORMATS: [Format; 3] = [Format::JsonArray, Format::Ndjson, Format::Sse];

/// The format a server-streaming call answers in, by RFC 9110 content negotiation.
///
/// Each format gets the weight (`q`) of the most specific media range that matches it
/// (`application/json` over `application/*` over `*/*`; parameters other than `q` are ignored);
/// the highest weight wins, then the more specific match (so `text/event-stream, */*` is SSE),
/// then the order JSON array, NDJSON, SSE. No header, an empty one, or one that is not ASCII text
/// (which RFC 9110 lets a server disregard) means the JSON array. `None` when every format has
/// weight 0 — `text/html`, or `application/json;q=0` — and the caller answers 406.
pub fn negotiate(accept: Option<&HeaderValue>) -> Option<Format> {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return Some(Format::JsonArray);
    };
    let ranges: Vec<Range<'_>> = accept.split(',').filter_map(Range::parse).collect();
    if ranges.is_empty() {
        return Some(Format::JsonArray);
    }
    let mut best: Option<(Format, u16, u8)> = None;
    for format in FORMATS {
        let (ty, subtype) = format.media_type();
        // The most specific range matching this format decides its weight.
        let Some((q, specificity)) = ranges
            .iter()
            .filter_map(|r| r.matches(ty, subtype).map(|s| (r.q, s)))
            .max_by_key(|&(_, s)| s)
        else {
            continue;
        };
        let better = match best {
            None => true,
            Some((_, best_q, best_s)) => (q, specificity) > (best_q, best_s),
        };
        if q > 0 && better {
            best = Some((format, q, specificity));
        }
    }
    best.map(|(format, _, _)| format)
}

/// One media range of an `Accept` header, lowercased, with its weight in thousandths.
struct Range<'a> {
    ty: &'a str,
    subtype: &'a str,
    q: u16,
}

impl<'a> Range<'a> {
    /// `None` for an element that is not a media range or whose `q` is not a number in 0..=1:
    /// it is skipped rather than failing the whole header.
    fn parse(element: &'a str) -> Option<Range<'a>> {
        let mut parts = element.split(';');
        let (ty, subtype) = parts.next()?.trim().split_once('/')?;
        let (ty, subtype) = (ty.trim(), subtype.trim());
        if ty.is_empty() || subtype.is_empty() {
            return None;
        }
        let mut q = 1000;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("q") {
                let value: f32 = value.trim().parse().ok()?;
                if !(0.0..=1.0).contains(&value) {
                    return None;
                }
                // At most three decimals are meaningful (RFC 9110's qvalue).
                q = (value * 1000.0).round() as u16;
            }
        }
        Some(Range { ty, subtype, q })
    }

    /// How specifically this range matches `ty/subtype`: 3 exact, 2 `ty/*`, 1 `*/*`.
    fn matches(&self, ty: &str, subtype: &str) -> Option<u8> {
        if self.ty == "*" && self.subtype == "*" {
            Some(1)
        } else if !self.ty.eq_ignore_ascii_case(ty) {
            None
        } else if self.subtype == "*" {
            Some(2)
        } else if self.subtype.eq_ignore_ascii_case(subtype) {
            Some(3)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Format::{JsonArray, Ndjson, Sse};

    #[test]
    fn negotiates() {
        let cases = [
            ("", Some(JsonArray)),
            ("*/*", Some(JsonArray)),
            ("application/json", Some(JsonArray)),
            ("application/x-ndjson", Some(Ndjson)),
            ("text/event-stream", Some(Sse)),
            ("Text/Event-Stream", Some(Sse)),
            ("application/json; charset=utf-8", Some(JsonArray)),
            ("application/*", Some(JsonArray)),
            ("text/*", Some(Sse)),
            // Weights.
            ("application/json;q=0.5, application/x-ndjson", Some(Ndjson)),
            ("application/json;q=0.5, text/event-stream;q=0.9", Some(Sse)),
            (
                "application/json; q=0.001, application/x-ndjson;q=0",
                Some(JsonArray),
            ),
            ("*/*;q=0.1, application/x-ndjson", Some(Ndjson)),
            ("application/x-ndjson;q=0.2, */*;q=0.8", Some(JsonArray)),
            ("application/x-ndjson, application/*;q=0", Some(Ndjson)),
            // Equal weights: the more specific match, then the gateway's order.
            ("text/event-stream, */*", Some(Sse)),
            ("text/event-stream, application/json", Some(JsonArray)),
            ("text/event-stream, application/x-ndjson", Some(Ndjson)),
            (
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                Some(JsonArray),
            ),
            // Nothing acceptable: 406.
            ("text/html", None),
            ("application/json;q=0", None),
            ("application/xml, text/plain", None),
            ("*/*;q=0", None),
            ("application/json;q=0, */*", Some(Ndjson)),
            // Broken elements are skipped; a header with none left is like no header.
            ("application/json;q=2, text/event-stream", Some(Sse)),
            ("application/json;q=high, text/event-stream", Some(Sse)),
            ("json, text/event-stream", Some(Sse)),
            ("garbage", Some(JsonArray)),
            (" , ", Some(JsonArray)),
        ];
        for (accept, want) in cases {
            let value = HeaderValue::from_str(accept).expect("test header");
            assert_eq!(negotiate(Some(&value)), want, "{accept:?}");
        }
        assert_eq!(negotiate(None), Some(JsonArray), "no header");
        let not_ascii = HeaderValue::from_bytes(b"application/\xe9").expect("obs-text is allowed");
        assert_eq!(negotiate(Some(&not_ascii)), Some(JsonArray), "not ASCII");
    }
}
