//! REST ↔ gRPC transcoding at run time (docs/transcoding.md): `.proto` files compiled when the
//! config loads, `google.api.http` bindings read from them, JSON ↔ protobuf by the proto3 JSON
//! mapping, streaming by `Accept`, and the reverse direction (gRPC clients calling a REST
//! service), all through the handler seam and the forward step.

pub mod descriptors;
pub mod fields;
pub mod frame;
pub mod path_template;
mod percent;
pub mod rules;
pub mod status;
pub mod stream;

#[cfg(test)]
mod testing;
