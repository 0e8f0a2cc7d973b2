//! mTLS handshakes per second on one core: full handshakes (no resumption) between our mesh
//! client and server configs, in memory on one thread, with the SPIFFE verifiers on both sides.
//!
//! `cargo bench -p gatehouse-common --bench handshake` (seconds per version:
//! `HANDSHAKE_BENCH_SECS`, default 3). Prints both sides together (the rate a core sustains
//! doing both ends) and the server side alone (what one core of a listener can accept).

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_certs::Kind;
use gatehouse_certs::test_util::TestPki;
use gatehouse_common::tls::client::IdentityResolver;
use gatehouse_common::tls::server::{CertResolver, build_server_config};
use gatehouse_common::tls::verify::{SpiffeClientVerifier, SpiffeServerVerifier};
use gatehouse_common::tls::{ALPN_H2_H1, Policy, SpiffeId, provider};
use rustls::client::Resumption;
use rustls::pki_types::ServerName;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

fn main() {
    let secs: u64 = std::env::var("HANDSHAKE_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let pki = TestPki::new("gatehouse.local");
    let key = |kind, name| {
        let c = pki.workload(kind, name);
        CertifiedKey::from_der(c.cert_der_chain(), c.key_der(), &provider()).expect("key")
    };
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca_der()).expect("root");
    let allow = vec!["spiffe://gatehouse.local/gateway/edge".to_owned()];
    let policy = Policy::new("gatehouse.local", Some(&allow)).expect("policy");
    let server = build_server_config(
        CertResolver::fixed(vec![key(Kind::Gateway, "internal")]).expect("resolver"),
        Some(Arc::new(
            SpiffeClientVerifier::new(roots.clone(), policy).expect("verifier"),
        )),
        ALPN_H2_H1,
    )
    .expect("server config");
    let expected = SpiffeId::parse("spiffe://gatehouse.local/gateway/internal").expect("id");
    for (label, version) in [
        ("TLS 1.3", &rustls::version::TLS13),
        ("TLS 1.2", &rustls::version::TLS12),
    ] {
        let mut client = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[version])
            .expect("version")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SpiffeServerVerifier::new(
                roots.clone(),
                expected.clone(),
            )))
            .with_client_cert_resolver(Arc::new(IdentityResolver::fixed(key(
                Kind::Gateway,
                "edge",
            ))));
        client.resumption = Resumption::disabled();
        client.alpn_protocols = vec![b"h2".to_vec()];
        let client = Arc::new(client);
        // Warm-up.
        run(&client, &server, Duration::from_millis(300));
        let (n, total, server_time) = run(&client, &server, Duration::from_secs(secs));
        println!(
            "mTLS {label} (ECDSA P-256, full handshake, SPIFFE checks both sides): \
             {:.0} handshakes/s on one core for both ends; server side alone {:.0}/s \
             ({n} handshakes in {:.2}s)",
            n as f64 / total.as_secs_f64(),
            n as f64 / server_time.as_secs_f64(),
            total.as_secs_f64(),
        );
    }
}

/// Handshakes for `length`: (count, wall time, time spent in the server's code).
fn run(
    client: &Arc<ClientConfig>,
    server: &Arc<ServerConfig>,
    length: Duration,
) -> (u64, Duration, Duration) {
    let start = Instant::now();
    let mut n = 0u64;
    let mut server_time = Duration::ZERO;
    let name = ServerName::try_from("internal.mesh").expect("name");
    let mut buf = Vec::with_capacity(16 * 1024);
    while start.elapsed() < length {
        let mut c = ClientConnection::new(client.clone(), name.clone()).expect("client");
        let t = Instant::now();
        let mut s = ServerConnection::new(server.clone()).expect("server");
        server_time += t.elapsed();
        while c.is_handshaking() || s.is_handshaking() {
            buf.clear();
            while c.wants_write() {
                c.write_tls(&mut buf).expect("client write");
            }
            let t = Instant::now();
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).expect("server read");
            }
            s.process_new_packets().expect("server handshake");
            buf.clear();
            while s.wants_write() {
                s.write_tls(&mut buf).expect("server write");
            }
            server_time += t.elapsed();
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).expect("client read");
            }
            c.process_new_packets().expect("client handshake");
        }
        assert!(s.peer_certificates().is_some(), "the client authenticated");
        n += 1;
    }
    (n, start.elapsed(), server_time)
}
