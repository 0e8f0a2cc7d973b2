//! The order a request takes through a Gatehouse binary — read this first.
//!
//! The three binaries share the proxy core; each adds its own part through its
//! [`crate::tier::Tier`]: request phases (a [`crate::filter::Filter`]: the edge's
//! authentication and limits, the sidecar's peer policy) and route handlers (the internal
//! gateway's). `docs/architecture.md` is the map of the crates.
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
//! 5. **identity hygiene** ([`crate::identity`]): `x-gatehouse-*` request headers are
//!    removed unless the mTLS peer is one of the listener's `trusted_gateways` — before
//!    routing, so identity conditions cannot be spoofed. Then the tier's filter (the edge:
//!    path normalization, authentication, authorization, rate limiting, validation; the
//!    sidecar: peer policy), which may answer the request itself; it may also translate the
//!    request body from a protocol routes do not speak (the edge's gRPC-Web), and the answer
//!    back in step 9.
//! 6. **route** ([`crate::plan::Plan::route`]): the compiled table ([`crate::routing`]) picks
//!    the most specific route (host, path, method, headers, query, cookies, identity); 404.
//! 7. **action** ([`crate::proxy`]): a redirect or direct response answers here; a split picks
//!    its service; a mirror copies the request to its shadow in a task of its own; a
//!    **handler** ([`crate::handler`]) the tier offers takes the request, bounded by the route's
//!    deadline. Mirror copies and handlers' own calls are child requests sent through
//!    [`crate::forward::Forward`]: the parent's id, trace (new span), identity and deadline.
//! 8. **transform and forward** ([`crate::proxy`]): path and host rewrites, hop-by-hop headers
//!    removed (RFC 9110 §7.6.1), `X-Forwarded-*`/`Via`/`x-request-id`/`traceparent` set, the
//!    route's request headers applied; the resilient upstream client
//!    ([`crate::upstream::service::Upstream::call`]) with the route's timeout and retry policy;
//!    failures become typed [`crate::error::ProxyError`]s. The route's response headers are
//!    applied to the answer.
//! 9. **respond** ([`crate::respond`]): errors to problem+json or gRPC status, in one place;
//!    then the filter's response phases (`response_body`, `on_response`) on every answer.
//! 10. **observe** ([`crate::body::ObservedBody`]): when the response body ends, metrics and the
//!     access-log line are written once.
