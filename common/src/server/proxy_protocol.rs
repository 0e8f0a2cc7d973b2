//! The PROXY protocol (v1 text, v2 binary) on a listener behind a TCP load balancer: the
//! balancer's header names the client, which then becomes the connection's client address.
//!
//! Read before anything else on the connection (TLS included), byte-exact: nothing after the
//! header is consumed, so the TLS handshake or HTTP preface that follows is untouched. Only
//! peers in `trusted` may send one; every connection from them must.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 signature (12 bytes).
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included (the spec's bound).
const V1_MAX: usize = 107;

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `::1/128`, a bare address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Parses `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IP address or network (e.g. 10.0.0.0/8)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        // `::ffff:10.0.0.0/104` is 10.0.0.0/8: peers are compared in their IPv4 form.
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            return match prefix.checked_sub(96) {
                Some(p4) => Ok(IpNet {
                    addr: IpAddr::V4(v4),
                    prefix: p4,
                }),
                None => Err(format!(
                    "`{s}`: an IPv4-mapped network needs a prefix of at least 96 (or write it as IPv4)"
                )),
            };
        }
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is in this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u128::from(u32::from(n)), 32, self.prefix)
                    == masked(u128::from(u32::from(a)), 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), 128, self.prefix) == masked(u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u8, prefix: u8) -> u128 {
    let host = u32::from(width - prefix);
    if host >= 128 {
        0
    } else {
        (bits >> host) << host
    }
}

/// Why a connection was closed before HTTP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("no PROXY protocol header within {0:?}")]
    Timeout(Duration),
    #[error("the connection closed before the PROXY protocol header ended")]
    Closed,
    #[error("not a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
}

/// Reads one PROXY header from `io` within `timeout`. `Ok(Some(addr))`: the client's address;
/// `Ok(None)`: a header that names no client (v2 `LOCAL`, v1 `UNKNOWN`, a non-IP family: the
/// balancer's own connection, e.g. a health check), so the peer address stands.
pub async fn read_header<I: AsyncRead + Unpin>(
    io: &mut I,
    timeout: Duration,
) -> Result<Option<SocketAddr>, HeaderError> {
    tokio::time::timeout(timeout, read(io))
        .await
        .map_err(|_| HeaderError::Timeout(timeout))?
}

async fn read<I: AsyncRead + Unpin>(io: &mut I) -> Result<Option<SocketAddr>, HeaderError> {
    let mut start = [0u8; 5];
    fill(io, &mut start).await?;
    if &start == b"PROXY" {
        read_v1(io).await
    } else if start == V2_SIGNATURE[..5] {
        read_v2(io).await
    } else {
        Err(HeaderError::Missing)
    }
}

async fn fill<I: AsyncRead + Unpin>(io: &mut I, buf: &mut [u8]) -> Result<(), HeaderError> {
    io.read_exact(buf)
        .await
        .map(drop)
        .map_err(|_| HeaderError::Closed)
}

/// The rest of a v1 line, byte by byte (a read past its CRLF would take the client's bytes).
async fn read_v1<I: AsyncRead + Unpin>(io: &mut I) -> Result<Option<SocketAddr>, HeaderError> {
    let mut line = Vec::with_capacity(V1_MAX);
    line.extend_from_slice(b"PROXY");
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\r\n") {
        if line.len() >= V1_MAX {
            return Err(HeaderError::Malformed("v1 line longer than 107 bytes"));
        }
        fill(io, &mut byte).await?;
        line.push(byte[0]);
    }
    parse_v1(&line[..line.len() - 2])
}

/// `PROXY TCP4|TCP6 SRC DST SPORT DPORT` or `PROXY UNKNOWN ...`, without the CRLF.
pub fn parse_v1(line: &[u8]) -> Result<Option<SocketAddr>, HeaderError> {
    let line = std::str::from_utf8(line).map_err(|_| HeaderError::Malformed("v1 not ASCII"))?;
    let mut parts = line.split(' ');
    if parts.next() != Some("PROXY") {
        return Err(HeaderError::Missing);
    }
    let family = parts.next().ok_or(HeaderError::Malformed("v1 family"))?;
    if family == "UNKNOWN" {
        return Ok(None);
    }
    let fields: Vec<&str> = parts.collect();
    let [src, dst, sport, dport] = fields[..] else {
        return Err(HeaderError::Malformed(
            "v1 needs four fields after the family",
        ));
    };
    let v4 = match family {
        "TCP4" => true,
        "TCP6" => false,
        _ => {
            return Err(HeaderError::Malformed(
                "v1 family is not TCP4, TCP6 or UNKNOWN",
            ));
        }
    };
    let ip = |s: &str| -> Result<IpAddr, HeaderError> {
        let ip = if v4 {
            s.parse::<Ipv4Addr>().map(IpAddr::V4).ok()
        } else {
            s.parse::<Ipv6Addr>().map(IpAddr::V6).ok()
        };
        ip.ok_or(HeaderError::Malformed("v1 address not of its family"))
    };
    // Decimal digits only (`u16::from_str` would take a `+`).
    let port = |s: &str| -> Result<u16, HeaderError> {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
            .ok_or(HeaderError::Malformed("v1 port"))
    };
    let (client, _server) = (ip(src)?, ip(dst)?);
    let (client_port, _server_port) = (port(sport)?, port(dport)?);
    // A balancer with a dual-stack frontend names IPv4 clients as ::ffff:a.b.c.d.
    Ok(Some(SocketAddr::new(client.to_canonical(), client_port)))
}

async fn read_v2<I: AsyncRead + Unpin>(io: &mut I) -> Result<Option<SocketAddr>, HeaderError> {
    let mut rest = [0u8; 11];
    fill(io, &mut rest).await?;
    if rest[..7] != V2_SIGNATURE[5..] {
        return Err(HeaderError::Missing);
    }
    let (ver_cmd, family) = (rest[7], rest[8]);
    let len = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
    // Up to 64 KiB (TLVs such as a client certificate can be large), from a trusted peer only.
    let mut block = vec![0u8; len];
    fill(io, &mut block).await?;
    parse_v2(ver_cmd, family, &block)
}

/// The v2 header after its signature: version/command, family/transport, the address block.
pub fn parse_v2(ver_cmd: u8, family: u8, block: &[u8]) -> Result<Option<SocketAddr>, HeaderError> {
    if ver_cmd >> 4 != 2 {
        return Err(HeaderError::Malformed("v2 version is not 2"));
    }
    match ver_cmd & 0x0f {
        0 => return Ok(None), // LOCAL: the balancer's own connection.
        1 => {}
        _ => return Err(HeaderError::Malformed("v2 command is not LOCAL or PROXY")),
    }
    let short = HeaderError::Malformed("v2 address block too short for its family");
    // The high nibble is the address family, the low one the transport: the spec's seven
    // values only, and a stream transport, as this is a TCP listener.
    match family {
        0x11 => {
            let b: &[u8; 12] = block
                .get(..12)
                .and_then(|b| b.try_into().ok())
                .ok_or(short)?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Ok(Some(SocketAddr::new(
                ip.into(),
                u16::from_be_bytes([b[8], b[9]]),
            )))
        }
        0x21 => {
            let b: &[u8; 36] = block
                .get(..36)
                .and_then(|b| b.try_into().ok())
                .ok_or(short)?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[..16]);
            let port = u16::from_be_bytes([b[32], b[33]]);
            // A balancer with a dual-stack frontend names IPv4 clients as ::ffff:a.b.c.d.
            let ip = IpAddr::V6(Ipv6Addr::from(ip)).to_canonical();
            Ok(Some(SocketAddr::new(ip, port)))
        }
        // UNSPEC, or a Unix socket: no IP client to name.
        0x00 | 0x31 => Ok(None),
        0x12 | 0x22 | 0x32 => Err(HeaderError::Malformed(
            "v2 datagram transport on a TCP listener",
        )),
        _ => Err(HeaderError::Malformed("v2 address family or transport")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(cmd: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut out = V2_SIGNATURE.to_vec();
        out.extend([0x20 | cmd, family]);
        out.extend((block.len() as u16).to_be_bytes());
        out.extend_from_slice(block);
        out
    }

    type Read = Result<Option<SocketAddr>, HeaderError>;

    async fn read_all(bytes: &[u8]) -> (Read, Vec<u8>) {
        let mut io = bytes;
        let r = read_header(&mut io, Duration::from_secs(1)).await;
        (r, io.to_vec())
    }

    /// A v1 TCP4 line of exactly `len` bytes, CRLF included (the source port padded with
    /// leading zeros).
    fn v1_of_len(len: usize) -> Vec<u8> {
        let (head, tail) = ("PROXY TCP4 1.2.3.4 5.6.7.8 ", " 2\r\n");
        let zeros = len - head.len() - tail.len() - 1;
        format!("{head}{}1{tail}", "0".repeat(zeros)).into_bytes()
    }

    /// What the balancer sent ↔ the client address, and what is left for TLS/HTTP.
    #[tokio::test]
    async fn headers_and_what_follows_them() {
        let v4 = [203, 0, 113, 7, 10, 0, 0, 1, 0x15, 0xb3, 0x20, 0xfb];
        let mut mapped = vec![0u8; 36];
        mapped[..16].copy_from_slice(
            &"::ffff:203.0.113.7"
                .parse::<Ipv6Addr>()
                .expect("ip")
                .octets(),
        );
        mapped[32..34].copy_from_slice(&443u16.to_be_bytes());
        let mut v6 = vec![0u8; 36];
        v6[..16].copy_from_slice(&"2001:db8::7".parse::<Ipv6Addr>().expect("ip").octets());
        v6[32..34].copy_from_slice(&443u16.to_be_bytes());
        type Want = Result<Option<&'static str>, HeaderError>;
        let cases: Vec<(&str, Vec<u8>, Want)> = vec![
            (
                "v1 tcp4",
                b"PROXY TCP4 203.0.113.7 10.0.0.1 5555 8443\r\n".to_vec(),
                Ok(Some("203.0.113.7:5555")),
            ),
            (
                "v1 tcp6",
                b"PROXY TCP6 2001:db8::7 ::1 443 8443\r\n".to_vec(),
                Ok(Some("[2001:db8::7]:443")),
            ),
            ("v1 unknown", b"PROXY UNKNOWN\r\n".to_vec(), Ok(None)),
            (
                "v2 UDP",
                v2(1, 0x12, &v4),
                Err(HeaderError::Malformed(
                    "v2 datagram transport on a TCP listener",
                )),
            ),
            (
                "v2 bad transport",
                v2(1, 0x13, &v4),
                Err(HeaderError::Malformed("v2 address family or transport")),
            ),
            (
                "v2 bad family",
                v2(1, 0x41, &v4),
                Err(HeaderError::Malformed("v2 address family or transport")),
            ),
            ("v2 unspec", v2(1, 0x00, &[]), Ok(None)),
            ("v2 unix", v2(1, 0x31, &[0u8; 216]), Ok(None)),
            (
                "v2 mapped",
                v2(1, 0x21, &mapped),
                Ok(Some("203.0.113.7:443")),
            ),
            (
                "v1 mapped",
                b"PROXY TCP6 ::ffff:203.0.113.7 ::1 443 8443\r\n".to_vec(),
                Ok(Some("203.0.113.7:443")),
            ),
            (
                "v1 bad dst",
                b"PROXY TCP4 1.2.3.4 garbage 1 2\r\n".to_vec(),
                Err(HeaderError::Malformed("v1 address not of its family")),
            ),
            (
                "v1 plus port",
                b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n".to_vec(),
                Err(HeaderError::Malformed("v1 port")),
            ),
            ("v1 107 bytes", v1_of_len(107), Ok(Some("1.2.3.4:1"))),
            (
                "v1 108 bytes",
                v1_of_len(108),
                Err(HeaderError::Malformed("v1 line longer than 107 bytes")),
            ),
            ("v2 tcp4", v2(1, 0x11, &v4), Ok(Some("203.0.113.7:5555"))),
            ("v2 tcp6", v2(1, 0x21, &v6), Ok(Some("[2001:db8::7]:443"))),
            ("v2 local", v2(0, 0x00, &[]), Ok(None)),
            (
                "v2 tcp4 + TLV",
                v2(1, 0x11, &[&v4[..], &[0x04, 0x00, 0x01, 0xaa]].concat()),
                Ok(Some("203.0.113.7:5555")),
            ),
            (
                "no header",
                b"GET / HTTP/1.1\r\n\r\n".to_vec(),
                Err(HeaderError::Missing),
            ),
            (
                "tls first",
                vec![0x16, 0x03, 0x01, 0x00, 0xa5, 0x01],
                Err(HeaderError::Missing),
            ),
            (
                "v1 bad ip",
                b"PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n".to_vec(),
                Err(HeaderError::Malformed("v1 address not of its family")),
            ),
            (
                "v1 too long",
                [&b"PROXY TCP4 "[..], &[b'1'; 120][..]].concat(),
                Err(HeaderError::Malformed("v1 line longer than 107 bytes")),
            ),
            (
                "v1 cut short",
                b"PROXY TCP4 1.2.3.4".to_vec(),
                Err(HeaderError::Closed),
            ),
            (
                "v2 short block",
                v2(1, 0x11, &v4[..6]),
                Err(HeaderError::Malformed(
                    "v2 address block too short for its family",
                )),
            ),
            (
                "v2 bad command",
                v2(2, 0x11, &v4),
                Err(HeaderError::Malformed("v2 command is not LOCAL or PROXY")),
            ),
        ];
        for (name, mut bytes, want) in cases {
            let tail = b"\x16\x03\x01rest";
            bytes.extend_from_slice(tail);
            let (got, left) = read_all(&bytes).await;
            let want = want.map(|o| o.map(|s| s.parse::<SocketAddr>().expect("addr")));
            assert_eq!(got, want, "{name}");
            if got.is_ok() {
                assert_eq!(
                    left, tail,
                    "{name}: the bytes after the header are untouched"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out() {
        let (_client, mut server) = tokio::io::duplex(64);
        let r = read_header(&mut server, Duration::from_secs(2)).await;
        assert_eq!(r, Err(HeaderError::Timeout(Duration::from_secs(2))));
    }

    #[test]
    fn networks() {
        let cases = [
            ("10.0.0.0/8", "10.200.1.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("172.16.0.0/12", "172.31.255.1", true),
            ("172.16.0.0/12", "172.32.0.1", false),
            ("127.0.0.1", "127.0.0.1", true),
            ("127.0.0.1", "127.0.0.2", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("10.0.0.0/8", "::ffff:10.1.2.3", true),
            ("fd00::/8", "fd12::1", true),
            ("fd00::/8", "10.0.0.1", false),
            ("::1/128", "::1", true),
            ("::1/128", "::2", false),
            ("::/0", "2001:db8::1", true),
            ("::ffff:10.0.0.0/104", "10.9.9.9", true),
            ("::ffff:10.0.0.5", "::ffff:10.0.0.5", true),
            ("10.0.0.5/32", "10.0.0.6", false),
        ];
        for (net, ip, want) in cases {
            let n = IpNet::parse(net).expect("net");
            assert_eq!(n.contains(ip.parse().expect("ip")), want, "{net} {ip}");
        }
        for bad in [
            "10.0.0.0/33",
            "nope",
            "::/129",
            "10.0.0.0/x",
            "::ffff:10.0.0.0/64",
        ] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }
}
