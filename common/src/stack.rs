//! The order a request takes through a Gatehouse binary — read this first.
//!
//! Today the three binaries share the proxy core; their own layers (authentication and rate
//! limits at the edge, rich routing at the internal gateway, peer authorization in the sidecar)
//! slot into the marked places as their issues land.
//!
//! 1. **accept** ([`crate::server`]): TCP, then TLS when the listener has it (handshake deadline);
//!    the peer's SPIFFE ID is read from its certificate on mTLS listeners.
//! 2. **HTTP server** ([`crate::server::serve_http`]): HTTP/1.1 or HTTP/2 from the preface;
//!    header-read timeout (slowloris), idle timeout, stream and header-size caps. Draining and
//!    idle close go through hyper's graceful shutdown so in-flight requests finish.
//! 3. **context** ([`crate::proxy::handle`]): request id (kept or made), W3C trace context (a new
//!    span id for this hop), the plan snapshot the request will use to its end.
//! 4. **limits** ([`crate::proxy`]): header bytes (431) and declared body size (413) before any
//!    other work; the body is also counted while it streams.
//!    *(edge: path normalization, authentication, authorization, rate limiting go here)*
//! 5. **route** ([`crate::plan::Plan::route`]): longest path prefix, host-specific first; 404.
//!    *(internal: the full route table and its actions replace this)*
//! 6. **forward** ([`crate::proxy`]): hop-by-hop headers removed (RFC 9110 §7.6.1),
//!    `X-Forwarded-*`/`Via`/`x-request-id`/`traceparent` set, pooled client with request timeout;
//!    failures become typed [`crate::error::ProxyError`]s.
//! 7. **respond** ([`crate::respond`]): errors to problem+json or gRPC status, in one place.
//! 8. **observe** ([`crate::body::ObservedBody`]): when the response body ends, metrics and the
//!    access-log line are written once.
