//! REST ↔ gRPC transcoding at run time (docs/transcoding.md): `.proto` files compiled when the
//! config loads, `google.api.http` bindings read from them, JSON ↔ protobuf by the proto3 JSON
//! mapping, streaming by `Accept`, and the reverse direction (gRPC clients calling a REST
//! service), all through the handler seam and the forward step.

pub mod codec;
pub mod descriptors;
pub mod fields;
pub mod frame;
pub mod grpc_to_rest;
pub mod openapi;
pub mod path_template;
mod percent;
pub mod rest_to_grpc;
pub mod rules;
pub mod status;
pub mod stream;

#[cfg(test)]
mod testing;

/// A route's bindings that do not load, at its `grpc_services` key (with a "did you mean").
fn rule_error(
    cx: &gatehouse_common::handler::HandlerBuild<'_>,
    e: &rules::RuleError,
) -> gatehouse_common::config::ConfigError {
    cx.source.error_at_hint(
        &format!("{}.grpc_services", cx.key),
        e.to_string(),
        e.hint().map(str::to_owned),
    )
}
