//! The `grpc_to_rest` route handler, the reverse direction: gRPC clients call a REST service.
//! A method's `google.api.http` binding read the other way builds the HTTP request from the
//! message (path, query, body); the JSON answer becomes the response message
//! (docs/transcoding.md).
//!
//! ```yaml
//! routes:
//!   - name: catalog-grpc
//!     match: { path_prefix: /shop.catalog.v1.Catalog/ }
//!     handler:
//!       grpc_to_rest: { service: catalog, grpc_services: [shop.catalog.v1.Catalog] }
//! ```

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gatehouse_common::body::{ProxyBody, empty, full};
use gatehouse_common::config::ConfigError;
use gatehouse_common::error::ProxyError;
use gatehouse_common::forward::ForwardRequest;
use gatehouse_common::handler::{HandlerBuild, HandlerKind, HandlerRequest, HandlerService};
use gatehouse_common::upstream::service::Upstream;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use prost::Message;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage};
use serde::Deserialize;

use super::codec::{self, JsonSettings};
use super::fields;
use super::frame::{self, Frames};
use super::rules::{Binding, Body, Router};
use super::status::{self, Status};
use crate::fetch::read_limited;

/// The `grpc_to_rest` kind: built with the pool the config's descriptors compiled to.
#[derive(Debug)]
pub struct GrpcToRest {
    pub pool: Arc<DescriptorPool>,
    /// `internal.max_handler_body_bytes`: the most read of a message or of the REST answer.
    pub max_body_bytes: u64,
}

/// A route's `handler.grpc_to_rest` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The REST service to call (a name under `services`).
    service: String,
    /// The gRPC services (full names) this route serves from their bindings.
    grpc_services: Vec<String>,
    /// How request bodies sent to the service are written.
    #[serde(default)]
    json: JsonSettings,
}

impl HandlerKind for GrpcToRest {
    fn name(&self) -> &'static str {
        "grpc_to_rest"
    }

    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        let args: Args = cx.args()?;
        if args.grpc_services.is_empty() {
            return Err(cx.error("grpc_services", "name at least one gRPC service"));
        }
        let router = Router::new(&self.pool, &args.grpc_services, false)
            .map_err(|e| super::rule_error(cx, &e))?;
        // Each method's first binding is the one it is called by (additional ones are other
        // ways in for REST clients, not other ways out).
        let mut methods: HashMap<String, Binding> = HashMap::new();
        for b in router.bindings() {
            let path = format!(
                "/{}/{}",
                b.method.parent_service().full_name(),
                b.method.name()
            );
            methods.entry(path).or_insert_with(|| b.clone());
        }
        let route = Arc::new(Route {
            upstream: cx.service("service", &args.service)?,
            methods,
            json: args.json,
            max_body: self.max_body_bytes,
        });
        let service = tower::service_fn(move |req: HandlerRequest| {
            let route = route.clone();
            async move { route.serve(req).await }
        });
        Ok(HandlerService::new(service))
    }
}

/// One route's compiled methods, by gRPC path (`/pkg.Service/Method`).
#[derive(Debug)]
struct Route {
    upstream: Arc<Upstream>,
    methods: HashMap<String, Binding>,
    json: JsonSettings,
    max_body: u64,
}

impl Route {
    async fn serve(&self, req: HandlerRequest) -> Result<Response<ProxyBody>, ProxyError> {
        let HandlerRequest {
            parts,
            body,
            forward,
            ..
        } = req;
        let Some(binding) = self.methods.get(parts.uri.path()) else {
            return Err(refused(12, format!("no method {} here", parts.uri.path())));
        };
        if binding.method.is_client_streaming() {
            return Err(refused(
                12,
                "a client stream cannot be sent to a REST service".to_owned(),
            ));
        }
        let msg = self.request_message(binding, body).await?;
        let request = self.http_request(binding, &msg)?;
        let res = forward
            .send(ForwardRequest::new(
                self.upstream.clone(),
                request,
                "grpc_to_rest",
            ))
            .await?;
        let request_id = HeaderValue::from_str(forward.request_id())
            .unwrap_or_else(|_| HeaderValue::from_static("-"));
        self.answer(binding, res, &request_id).await
    }

    /// The one request message of a unary or server-streaming call.
    async fn request_message(
        &self,
        binding: &Binding,
        body: ProxyBody,
    ) -> Result<DynamicMessage, ProxyError> {
        let mut frames = Frames::new(body, usize::try_from(self.max_body).unwrap_or(usize::MAX));
        let first = frames
            .next()
            .await
            .map_err(|e| refused(3, format!("the request could not be read: {e}")))?;
        let bytes = first.unwrap_or_default();
        DynamicMessage::decode(binding.method.input(), bytes.as_ref()).map_err(|e| {
            refused(
                3,
                format!("not a {}: {e}", binding.method.input().full_name()),
            )
        })
    }

    /// The REST request the binding describes: its verb; the path's variables from the
    /// message; the body (`*`: the message, or one field); every other set field in the query.
    fn http_request(
        &self,
        binding: &Binding,
        msg: &DynamicMessage,
    ) -> Result<Request<ProxyBody>, ProxyError> {
        let path = binding
            .template
            .expand(|field| fields::get_path(msg, field))
            .map_err(|e| refused(3, format!("the request cannot fill the path: {e}")))?;
        let mut exclude: Vec<String> = binding.template.variables().map(str::to_owned).collect();
        let body = match &binding.body {
            Body::None => None,
            Body::Whole => Some(codec::message_json(msg, &self.json).map_err(|e| refused(13, e))?),
            Body::Field(f) => {
                exclude.push(f.name().to_owned());
                Some(codec::field_json(msg, f, &self.json).map_err(|e| refused(13, e))?)
            }
        };
        let query = match binding.body {
            Body::Whole => String::new(),
            _ => fields::to_query(msg, &exclude),
        };
        let uri = match query.is_empty() {
            true => path,
            false => format!("{path}?{query}"),
        };
        let mut builder = Request::builder()
            .method(binding.verb.clone())
            .uri(uri)
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        builder
            .body(body.map_or_else(empty, full))
            .map_err(|e| refused(3, format!("the request cannot form a URI: {e}")))
    }

    /// The REST answer as the gRPC one: a 2xx JSON body becomes the response message (unknown
    /// fields ignored; for a server stream, a JSON array becomes one message per element); any
    /// other status becomes the gRPC code of the reverse table, with the body's detail as the
    /// message.
    async fn answer(
        &self,
        binding: &Binding,
        res: Response<ProxyBody>,
        request_id: &HeaderValue,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let (head, body) = res.into_parts();
        let unusable = |reason: String| ProxyError::BadUpstreamResponse {
            service: self.upstream.name.to_string(),
            reason,
        };
        let bytes = read_limited(body, self.max_body)
            .await
            .map_err(|e| unusable(e.to_string()))?
            .ok_or_else(|| unusable(format!("answered more than {} bytes", self.max_body)))?;
        if !head.status.is_success() {
            let status = Status::new(
                status::grpc_code_for_http(head.status),
                error_message(head.status, &bytes),
            );
            return Ok(trailers_only(&status, request_id));
        }
        let value: serde_json::Value = match bytes.iter().all(u8::is_ascii_whitespace) {
            true => serde_json::Value::Object(Default::default()),
            false => {
                serde_json::from_slice(&bytes).map_err(|e| ProxyError::BadUpstreamResponse {
                    service: self.upstream.name.to_string(),
                    reason: format!("answered {} with a body that is not JSON: {e}", head.status),
                })?
            }
        };
        let output = binding.method.output();
        let values = match (binding.method.is_server_streaming(), value) {
            (true, serde_json::Value::Array(items)) if binding.response_body.is_none() => items,
            (_, value) => vec![value],
        };
        let read = DeserializeOptions::new().deny_unknown_fields(false);
        let mut payload = BytesMut::new();
        for value in values {
            let value = match &binding.response_body {
                None => value,
                Some(f) => codec::under_field(f, value),
            };
            let msg = DynamicMessage::deserialize_with_options(output.clone(), value, &read)
                .map_err(|e| ProxyError::BadUpstreamResponse {
                    service: self.upstream.name.to_string(),
                    reason: format!("the answer is not a {}: {e}", output.full_name()),
                })?;
            frame::encode_into(&msg.encode_to_vec(), &mut payload).map_err(|e| {
                ProxyError::BadUpstreamResponse {
                    service: self.upstream.name.to_string(),
                    reason: e.to_string(),
                }
            })?;
        }
        Ok(grpc_ok(payload.freeze(), request_id))
    }
}

/// A message for the client from a REST error answer: a problem's `detail`, a `message` or
/// `error` member, else the status's reason.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["detail", "message", "error"]
                .iter()
                .find_map(|k| v.get(*k).and_then(|m| m.as_str()).map(str::to_owned))
        });
    from_json.unwrap_or_else(|| {
        format!(
            "the service answered {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .trim_end()
        .to_owned()
    })
}

/// A gRPC answer with no message: the status in the head (a trailers-only response).
fn trailers_only(status: &Status, request_id: &HeaderValue) -> Response<ProxyBody> {
    let mut res = Response::new(empty());
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.extend(status.to_trailers());
    h.insert(
        gatehouse_common::trace_context::X_REQUEST_ID,
        request_id.clone(),
    );
    res
}

/// A successful gRPC answer: the messages, then `grpc-status: 0` as a trailer.
fn grpc_ok(payload: Bytes, request_id: &HeaderValue) -> Response<ProxyBody> {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let frames = futures_util::stream::iter([
        Ok::<_, gatehouse_common::BoxError>(http_body::Frame::data(payload)),
        Ok(http_body::Frame::trailers(trailers)),
    ]);
    let body = http_body_util::StreamBody::new(frames).boxed_unsync();
    let mut res = Response::new(body);
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert(
        gatehouse_common::trace_context::X_REQUEST_ID,
        request_id.clone(),
    );
    res
}

/// The gateway refuses the call with a gRPC code (the client is a gRPC client: trailers-only).
fn refused(code: i32, message: String) -> ProxyError {
    let http = match code {
        3 => StatusCode::BAD_REQUEST,
        12 => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ProxyError::GrpcRefused {
        http,
        code,
        message,
    }
}
