//! Header hygiene for a proxy hop (RFC 9110 §7.6.1), the `X-Forwarded-*` / `Via` headers, and
//! the one parser of each header value several phases read (`host[:port]`, `Cookie`).

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Headers that describe one connection, never the message, so a proxy must not forward them.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes hop-by-hop headers and every header named in `Connection`.
///
/// `TE: trailers` survives on requests: gRPC over HTTP/2 requires it end to end, and it is the
/// only value HTTP/2 allows (RFC 9113 §8.2.2).
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_te_trailers: bool) {
    // Most messages carry none: one pass over the names (standard ones compare as integers)
    // costs less than a hashed lookup of each hop-by-hop name. A name that `Connection` lists
    // matters only when `Connection` itself is present.
    if !headers.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    // Names listed in Connection are hop-by-hop too; collect them before removing Connection.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let te_trailers = keep_te_trailers
        && headers
            .get_all(header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP.iter() {
        headers.remove(name);
    }
    if te_trailers {
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// What this hop knows about the downstream connection, for the forwarding headers.
#[derive(Debug, Clone, Copy)]
pub struct Forwarded<'a> {
    pub client_ip: IpAddr,
    /// `https` when the downstream connection used TLS.
    pub proto: &'static str,
    /// The authority the client asked for (Host or `:authority`).
    pub host: Option<&'a str>,
    /// The `Via` protocol token: `1.1`, `2` or `3`.
    pub via_version: &'static str,
}

/// Appends the client address to `X-Forwarded-For`, sets `X-Forwarded-Proto` and
/// `X-Forwarded-Host` (when the client did not come through a proxy that already set them),
/// and appends this hop to `Via`.
pub fn set_forwarded(headers: &mut HeaderMap, fwd: &Forwarded<'_>) {
    let prev = headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|prev| !prev.trim().is_empty());
    let mut xff = String::with_capacity(prev.map_or(0, |p| p.len() + 2) + 15);
    if let Some(prev) = prev {
        xff.push_str(prev);
        xff.push_str(", ");
    }
    push_ip(&mut xff, fwd.client_ip);
    if let Ok(v) = HeaderValue::try_from(xff) {
        headers.insert(X_FORWARDED_FOR, v);
    }
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(fwd.proto));
    }
    if !headers.contains_key(&X_FORWARDED_HOST)
        && let Some(host) = fwd.host
        && let Ok(v) = HeaderValue::try_from(host)
    {
        headers.insert(X_FORWARDED_HOST, v);
    }
    append_via(headers, fwd.via_version);
}

/// Writes an address as `Display` does; IPv4 by hand, since `fmt` costs more than the rest of
/// this header's work on every request.
fn push_ip(s: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    s.push('.');
                }
                if o >= 100 {
                    s.push(char::from(b'0' + o / 100));
                }
                if o >= 10 {
                    s.push(char::from(b'0' + o / 10 % 10));
                }
                s.push(char::from(b'0' + o % 10));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write as _;
            let _ = write!(s, "{v6}");
        }
    }
}

/// Appends `<version> gatehouse` to `Via` (RFC 9110 §7.6.3); used on requests and responses.
pub fn append_via(headers: &mut HeaderMap, version: &'static str) {
    let hop = match version {
        "2" => "2 gatehouse",
        "3" => "3 gatehouse",
        "1.0" => "1.0 gatehouse",
        _ => "1.1 gatehouse",
    };
    headers.append(header::VIA, HeaderValue::from_static(hop));
}

/// The `Via` token for an HTTP version.
pub fn via_version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        http::Version::HTTP_10 => "1.0",
        _ => "1.1",
    }
}

/// Sum of header name and value lengths, the measure used for the header size limit
/// (the same measure as HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE, less its 32-byte overhead).
pub fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum()
}

/// True for gRPC requests (`content-type: application/grpc[+proto|+json|...]`): their errors are
/// answered with `grpc-status` instead of a problem body.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.as_bytes().starts_with(b"application/grpc"))
        .unwrap_or(false)
}

/// Splits an authority (`Host`, `:authority`) into host and port. IPv6 literals keep their
/// brackets (`[::1]:8080` → `[::1]`, `8080`); a bare IPv6 address has no port to split off
/// (`::1` stays whole), so it is never cut at its last colon.
pub fn split_host_port(authority: &str) -> (&str, Option<&str>) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(i) => (&authority[..=i], authority[i + 1..].strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.split_once(':') {
        Some((host, port)) if !port.contains(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

/// The host of an authority, without its port (see [`split_host_port`]).
pub fn host_of(authority: &str) -> &str {
    split_host_port(authority).0
}

/// `name=value` pairs of every `Cookie` header (RFC 6265 §4.2): pairs split on `;`, names and
/// values trimmed, a value's surrounding double quotes removed. Routing, sticky splits and
/// consistent hashing all read cookies through this, so a quoted value means the same to each.
pub fn cookies(h: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.trim(), unquote(v.trim())))
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        let cases = [
            ("example.com", ("example.com", None)),
            ("example.com:8080", ("example.com", Some("8080"))),
            ("127.0.0.1:80", ("127.0.0.1", Some("80"))),
            ("[::1]:8080", ("[::1]", Some("8080"))),
            ("[::1]", ("[::1]", None)),
            ("[fe80::1%25eth0]:443", ("[fe80::1%25eth0]", Some("443"))),
            ("::1", ("::1", None)),
            ("2001:db8::1", ("2001:db8::1", None)),
            ("", ("", None)),
            ("[::1", ("[::1", None)),
        ];
        for (input, want) in cases {
            assert_eq!(split_host_port(input), want, "{input}");
            assert_eq!(host_of(input), want.0, "{input}");
        }
    }

    #[test]
    fn cookie_pairs() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; b=\"two words\";c = 3 ;novalue; d=\"half"),
        );
        h.append(header::COOKIE, HeaderValue::from_static("e=\"\""));
        let got: Vec<_> = cookies(&h).collect();
        assert_eq!(
            got,
            [
                ("a", "1"),
                ("b", "two words"),
                ("c", "3"),
                ("d", "\"half"),
                ("e", "")
            ]
        );
    }

    #[test]
    fn connection_named_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("x-foo, close"));
        h.insert("x-foo", HeaderValue::from_static("1"));
        h.insert("x-bar", HeaderValue::from_static("2"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("gzip, trailers"));
        strip_hop_by_hop(&mut h, true);
        assert!(h.get("x-foo").is_none());
        assert!(h.get(header::CONNECTION).is_none());
        assert!(h.get("keep-alive").is_none());
        assert_eq!(h.get("x-bar").map(|v| v.as_bytes()), Some(&b"2"[..]));
        assert_eq!(
            h.get(header::TE).map(|v| v.as_bytes()),
            Some(&b"trailers"[..])
        );
        strip_hop_by_hop(&mut h, false);
        assert!(h.get(header::TE).is_none());
    }

    #[test]
    fn forwarded_headers_append() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_FOR, HeaderValue::from_static("10.0.0.1"));
        let fwd = Forwarded {
            client_ip: "127.0.0.1".parse().expect("ip"),
            proto: "https",
            host: Some("api.example.com"),
            via_version: "2",
        };
        set_forwarded(&mut h, &fwd);
        assert_eq!(h[&X_FORWARDED_FOR], "10.0.0.1, 127.0.0.1");
        assert_eq!(h[&X_FORWARDED_PROTO], "https");
        assert_eq!(h[&X_FORWARDED_HOST], "api.example.com");
        assert_eq!(h[header::VIA], "2 gatehouse");
    }

    /// The hand-written address formatting agrees with `Display`.
    #[test]
    fn addresses_print_as_display_does() {
        for ip in [
            "0.0.0.0",
            "255.255.255.255",
            "10.0.100.9",
            "1.20.3.40",
            "127.0.0.1",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.1",
        ] {
            let ip: IpAddr = ip.parse().expect("address");
            let mut s = String::new();
            push_ip(&mut s, ip);
            assert_eq!(s, ip.to_string());
        }
    }

    /// Without hop-by-hop headers nothing changes; with them, exactly those go.
    #[test]
    fn only_hop_by_hop_headers_are_stripped() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        let before = h.clone();
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h, before);
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("x-keep, close"),
        );
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut h, true);
        let names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["host", "te"]);
    }
}
