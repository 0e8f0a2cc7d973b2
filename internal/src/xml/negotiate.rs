//! Content negotiation between JSON and XML answers by `Accept` (RFC 9110 §12.5.1), and
//! whether a request body is XML.

use http::HeaderValue;

/// The format of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> HeaderValue {
        match self {
            Format::Json => HeaderValue::from_static("application/json"),
            Format::Xml => HeaderValue::from_static("application/xml"),
        }
    }
}

/// The client accepts none of the formats the route offers (a 406).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("none of the media types in Accept can be served; this route answers {offered}")]
pub struct NotAcceptable {
    /// The media types the route offers, comma-separated.
    pub offered: &'static str,
}

/// The format to answer in, given the request's `Accept` and whether the route offers XML.
///
/// Each format takes the `q` of the most specific range that matches it (exact type, then
/// `type/*`, then `*/*`; q=0 refuses). JSON is `application/json`; XML is `application/xml`
/// or `text/xml` (so `text/*` matches it too). The higher `q` wins; on a tie JSON does, unless
/// XML's range is the more specific (`application/xml, */*` → XML; `*/*` → JSON). No `Accept`,
/// an empty one, one that is not visible ASCII or one without any well-formed range → JSON; a
/// range with a malformed `q` is skipped. Neither format acceptable → [`NotAcceptable`].
/// Parameters other than `q` are ignored. Allocates nothing.
pub fn negotiate(accept: Option<&HeaderValue>, xml: bool) -> Result<Format, NotAcceptable> {
    let Some(text) = accept.and_then(|v| v.to_str().ok()) else {
        return Ok(Format::Json);
    };
    let mut json_best = Match::NONE;
    let mut application_xml = Match::NONE;
    let mut text_xml = Match::NONE;
    let mut any = false;
    for range in text.split(',').filter_map(Range::parse) {
        any = true;
        json_best = json_best.narrower(range.matches("application", "json"));
        application_xml = application_xml.narrower(range.matches("application", "xml"));
        text_xml = text_xml.narrower(range.matches("text", "xml"));
    }
    if !any {
        return Ok(Format::Json);
    }
    // XML is served as either type: the better accepted of the two.
    let xml_best = match xml {
        false => Match::NONE,
        true if (text_xml.q, text_xml.specificity)
            > (application_xml.q, application_xml.specificity) =>
        {
            text_xml
        }
        true => application_xml,
    };
    let offered = if xml {
        "application/json, application/xml"
    } else {
        "application/json"
    };
    match (json_best.q, xml_best.q) {
        (0, 0) => Err(NotAcceptable { offered }),
        (j, x) if x > j || (x == j && xml_best.specificity > json_best.specificity) => {
            Ok(Format::Xml)
        }
        _ => Ok(Format::Json),
    }
}

/// Whether a request's `Content-Type` is XML: `application/xml`, `text/xml` or
/// `application/*+xml`, parameters ignored.
pub fn is_xml_content_type(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or_default().trim();
    let Some((ty, sub)) = essence.split_once('/') else {
        return false;
    };
    let xml_sub = sub.eq_ignore_ascii_case("xml");
    let suffix = sub.len() > 4
        && sub
            .get(sub.len() - 4..)
            .is_some_and(|s| s.eq_ignore_ascii_case("+xml"));
    (ty.eq_ignore_ascii_case("application") && (xml_sub || suffix))
        || (ty.eq_ignore_ascii_case("text") && xml_sub)
}

/// How well one media type is accepted: the most specific matching range and its `q`.
#[derive(Debug, Clone, Copy)]
struct Match {
    /// 0 none, 1 `*/*`, 2 `type/*`, 3 `type/subtype`.
    specificity: u8,
    /// Thousandths, 0..=1000.
    q: u16,
}

impl Match {
    const NONE: Match = Match {
        specificity: 0,
        q: 0,
    };

    /// Of two ranges matching one media type, the one that decides its `q`: the more specific,
    /// and of two equally specific the higher `q`.
    fn narrower(self, other: Match) -> Match {
        if (other.specificity, other.q) > (self.specificity, self.q) {
            other
        } else {
            self
        }
    }
}

/// One media range of an `Accept`.
struct Range<'a> {
    ty: &'a str,
    sub: &'a str,
    q: u16,
}

impl<'a> Range<'a> {
    fn parse(text: &'a str) -> Option<Range<'a>> {
        let mut parts = text.split(';');
        let (ty, sub) = parts.next()?.trim().split_once('/')?;
        let (ty, sub) = (ty.trim(), sub.trim());
        if ty.is_empty() || sub.is_empty() || (ty == "*" && sub != "*") {
            return None;
        }
        let mut q = 1000;
        for param in parts {
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q = parse_q(value.trim())?;
                break;
            }
        }
        Some(Range { ty, sub, q })
    }

    /// How this range matches `ty/sub`.
    fn matches(&self, ty: &str, sub: &str) -> Match {
        let specificity = if self.ty == "*" {
            1
        } else if !self.ty.eq_ignore_ascii_case(ty) {
            0
        } else if self.sub == "*" {
            2
        } else if self.sub.eq_ignore_ascii_case(sub) {
            3
        } else {
            0
        };
        Match {
            specificity,
            q: if specificity == 0 { 0 } else { self.q },
        }
    }
}

/// RFC 9110's `qvalue`: `0`, `0.` and up to three digits, or `1`, `1.` and up to three zeros.
fn parse_q(text: &str) -> Option<u16> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}
