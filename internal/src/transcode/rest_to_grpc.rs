//! The `rest_to_grpc` route handler: REST clients call a gRPC service through its methods'
//! `google.api.http` bindings; JSON in and out by the proto3 JSON mapping, server streams in
//! the format `Accept` asks for (docs/transcoding.md).
//!
//! ```yaml
//! routes:
//!   - name: orders-rest
//!     match: { path_prefix: /api/v1/orders }
//!     handler:
//!       rest_to_grpc: { service: orders, grpc_services: [shop.orders.v1.Orders] }
//! ```

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use gatehouse_common::body::{ProxyBody, full};
use gatehouse_common::config::ConfigError;
use gatehouse_common::error::ProxyError;
use gatehouse_common::forward::{Forward, ForwardRequest};
use gatehouse_common::handler::{HandlerBuild, HandlerKind, HandlerRequest, HandlerService};
use gatehouse_common::upstream::service::Upstream;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use serde::Deserialize;

use super::codec::{self, JsonSettings};
use super::frame::{self, Frames};
use super::rules::{Binding, Body, NoMatch, Router};
use super::status::{self, Status};
use super::stream::{self, Format};
use crate::fetch::read_limited;

/// The `rest_to_grpc` kind: built with the pool the config's descriptors compiled to.
#[derive(Debug)]
pub struct RestToGrpc {
    pub pool: Arc<DescriptorPool>,
    /// `internal.max_handler_body_bytes`: the most read of a request body or one message.
    pub max_body_bytes: u64,
}

/// A route's `handler.rest_to_grpc` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The service to call (a name under `services`); it must speak gRPC (HTTP/2).
    service: String,
    /// The gRPC services (full names) whose bindings this route serves.
    grpc_services: Vec<String>,
    /// Query parameters that name no field are ignored instead of refused with 400.
    #[serde(default)]
    ignore_unknown_query: bool,
    /// Methods without a `google.api.http` option are reachable at `POST /pkg.Service/Method`
    /// with the whole body as the request (Envoy's `auto_mapping`).
    #[serde(default)]
    default_bindings: bool,
    #[serde(default)]
    json: JsonSettings,
}

impl HandlerKind for RestToGrpc {
    fn name(&self) -> &'static str {
        "rest_to_grpc"
    }

    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        let args: Args = cx.args()?;
        if args.grpc_services.is_empty() {
            return Err(cx.error("grpc_services", "name at least one gRPC service"));
        }
        let router = Router::new(&self.pool, &args.grpc_services, args.default_bindings)
            .map_err(|e| super::rule_error(cx, &e))?;
        let route = Arc::new(Route {
            upstream: cx.service("service", &args.service)?,
            router,
            ignore_unknown_query: args.ignore_unknown_query,
            json: args.json,
            pool: self.pool.clone(),
            max_body: self.max_body_bytes,
        });
        let service = tower::service_fn(move |req: HandlerRequest| {
            let route = route.clone();
            async move { route.serve(req).await }
        });
        Ok(HandlerService::new(service))
    }
}

/// One route's compiled bindings.
#[derive(Debug)]
struct Route {
    upstream: Arc<Upstream>,
    router: Router,
    ignore_unknown_query: bool,
    json: JsonSettings,
    pool: Arc<DescriptorPool>,
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
        let matched = match self.router.find(&parts.method, parts.uri.path()) {
            Ok(m) => m,
            Err(NoMatch::NotFound) => {
                return Err(refused(
                    StatusCode::NOT_FOUND,
                    status::NOT_FOUND,
                    format!(
                        "no method is bound to {} {}",
                        parts.method,
                        parts.uri.path()
                    ),
                ));
            }
            Err(NoMatch::MethodNotAllowed(allowed)) => {
                // RFC 9110 §15.5.6: a 405 names the methods that are allowed.
                let allowed: Vec<&str> = allowed.iter().map(Method::as_str).collect();
                let message = format!(
                    "{} is not bound to {}; allowed: {}",
                    parts.uri.path(),
                    parts.method,
                    allowed.join(", ")
                );
                let request_id = HeaderValue::from_str(forward.request_id())
                    .unwrap_or_else(|_| HeaderValue::from_static("-"));
                let mut res = gatehouse_common::respond::grpc_status_problem(
                    StatusCode::METHOD_NOT_ALLOWED,
                    status::UNIMPLEMENTED,
                    &message,
                    &[],
                    &request_id,
                    Some(parts.uri.path()),
                );
                if let Ok(v) = HeaderValue::from_str(&allowed.join(", ")) {
                    res.headers_mut().insert(header::ALLOW, v);
                }
                return Ok(res);
            }
        };
        let binding = matched.binding;
        let method = &binding.method;
        // The answer's format is settled before any work: a 406 costs the service nothing.
        let format = match method.is_server_streaming() {
            true => Some(stream::negotiate(parts.headers.get(header::ACCEPT)).ok_or(
                ProxyError::NotAcceptable {
                    offered: "application/json, application/x-ndjson, text/event-stream",
                },
            )?),
            false => None,
        };
        let bytes = read_limited(body, self.max_body)
            .await
            .map_err(|source| ProxyError::ClientBody { source })?
            .ok_or(ProxyError::BodyTooLarge {
                limit: self.max_body,
            })?;
        let messages = self.requests(
            binding,
            &matched.vars,
            parts.uri.query(),
            &parts.headers,
            &bytes,
        )?;
        let mut payload = bytes::BytesMut::new();
        for m in &messages {
            frame::encode_into(&m.encode_to_vec(), &mut payload)
                .map_err(|e| invalid(e.to_string()))?;
        }
        let res = self.call(method, payload.freeze(), &forward).await?;
        let request_id = forward.request_id().to_owned();
        let path = parts.uri.path().to_owned();
        self.answer(binding, format, res, &request_id, &path).await
    }

    /// The request messages: the body (one message, or a JSON array / NDJSON of them for a
    /// client stream), then the path's variables and the query on each.
    fn requests(
        &self,
        binding: &Binding,
        vars: &[(String, String)],
        query: Option<&str>,
        headers: &http::HeaderMap,
        body: &Bytes,
    ) -> Result<Vec<DynamicMessage>, ProxyError> {
        let input = binding.method.input();
        let mut messages = match (&binding.body, binding.method.is_client_streaming()) {
            (Body::None, _) => vec![DynamicMessage::new(input)],
            (body_rule, false) => vec![codec::from_json(&input, body_rule, body).map_err(invalid)?],
            (body_rule, true) => {
                codec::stream_from_json(&input, body_rule, headers, body).map_err(invalid)?
            }
        };
        let bound = binding.bound_fields();
        for msg in &mut messages {
            for (field, value) in vars {
                super::fields::set_path(msg, field, value).map_err(|e| invalid(e.to_string()))?;
            }
            if let Some(q) = query.filter(|q| !q.is_empty()) {
                if matches!(binding.body, Body::Whole) && !self.ignore_unknown_query {
                    // With `body: "*"` every field comes from the body (google.api.http).
                    return Err(invalid(format!(
                        "`{}` takes its fields from the body, not the query",
                        binding.template.as_str()
                    )));
                }
                if !matches!(binding.body, Body::Whole) {
                    super::fields::apply_query(msg, q, &bound, self.ignore_unknown_query)
                        .map_err(|e| invalid(e.to_string()))?;
                }
            }
        }
        Ok(messages)
    }

    /// Sends the call: `POST /pkg.Service/Method` over the forward step, so balancing,
    /// breakers, mTLS, trace context, identity and the deadline (`grpc-timeout`) apply.
    async fn call(
        &self,
        method: &MethodDescriptor,
        payload: Bytes,
        forward: &Forward,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
        let request = Request::post(path)
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers")
            .body(full(payload))
            .map_err(|e| ProxyError::BadRequest {
                reason: format!("cannot form the gRPC call: {e}"),
            })?;
        forward
            .send(ForwardRequest::new(
                self.upstream.clone(),
                request,
                "rest_to_grpc",
            ))
            .await
    }

    /// Turns the gRPC answer into the REST one.
    async fn answer(
        &self,
        binding: &Binding,
        format: Option<Format>,
        res: Response<ProxyBody>,
        request_id: &str,
        path: &str,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let (head, body) = res.into_parts();
        let is_grpc = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/grpc"));
        // Trailers-only: the status is in the head and there is no message.
        if let Some(status) = Status::from_metadata(&head.headers) {
            return Ok(match (status.code, format) {
                (status::OK, Some(format)) => {
                    stream_response(format, futures_util::stream::empty().boxed())
                }
                (status::OK, None) => self.status_response(&no_message(), request_id, path),
                _ => self.status_response(&status, request_id, path),
            });
        }
        if head.status != StatusCode::OK || !is_grpc {
            return Err(ProxyError::BadUpstreamResponse {
                service: self.upstream.name.to_string(),
                reason: format!(
                    "answered HTTP {} ({}), not gRPC",
                    head.status,
                    head.headers
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("no content-type")
                ),
            });
        }
        let frames = Frames::new(body, self.max_message());
        match format {
            None => self.unary(binding, frames, request_id, path).await,
            Some(format) => {
                self.server_stream(binding, format, frames, request_id, path)
                    .await
            }
        }
    }

    async fn unary(
        &self,
        binding: &Binding,
        mut frames: Frames,
        request_id: &str,
        path: &str,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let mut first = None;
        loop {
            match frames.next().await {
                Ok(Some(m)) if first.is_none() => first = Some(m),
                Ok(Some(_)) => {
                    let s = Status::new(status::INTERNAL, "the service sent more than one message");
                    return Ok(self.status_response(&s, request_id, path));
                }
                Ok(None) => break,
                Err(e) => return Err(self.broken(e)),
            }
        }
        let status = trailer_status(&frames);
        if status.code != status::OK {
            return Ok(self.status_response(&status, request_id, path));
        }
        let Some(bytes) = first else {
            return Ok(self.status_response(&no_message(), request_id, path));
        };
        let json = codec::to_json(
            &binding.method.output(),
            binding.response_body.as_ref(),
            &bytes,
            &self.json,
        )
        .map_err(|reason| ProxyError::BadUpstreamResponse {
            service: self.upstream.name.to_string(),
            reason,
        })?;
        let mut res = Response::new(full(json));
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(res)
    }

    /// A server stream: the first message (or the end) is awaited so that a call failing
    /// before any message gets its own HTTP status; after it, messages are written as they
    /// arrive and an error ends the stream with an error element.
    async fn server_stream(
        &self,
        binding: &Binding,
        format: Format,
        mut frames: Frames,
        request_id: &str,
        path: &str,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let first = match frames.next().await {
            Ok(first) => first,
            Err(e) => return Err(self.broken(e)),
        };
        let Some(first) = first else {
            let status = trailer_status(&frames);
            if status.code != status::OK {
                return Ok(self.status_response(&status, request_id, path));
            }
            return Ok(stream_response(
                format,
                futures_util::stream::empty().boxed(),
            ));
        };
        let output = binding.method.output();
        let response_body = binding.response_body.clone();
        let json = self.json.clone();
        let pool = self.pool.clone();
        let state = Some((frames, Some(first)));
        let items = futures_util::stream::unfold(state, move |state| {
            let output = output.clone();
            let response_body = response_body.clone();
            let json = json.clone();
            let pool = pool.clone();
            async move {
                let (mut frames, pending) = state?;
                let next = match pending {
                    Some(m) => Ok(Some(m)),
                    None => frames.next().await,
                };
                match next {
                    Ok(Some(bytes)) => {
                        let item = codec::to_json(&output, response_body.as_ref(), &bytes, &json)
                            .map_err(|reason| {
                                let s = Status::new(
                                    status::INTERNAL,
                                    format!("a message could not be read: {reason}"),
                                );
                                s.to_json(&pool)
                            });
                        let done = item.is_err();
                        Some((item, (!done).then_some((frames, None))))
                    }
                    Ok(None) => {
                        let status = trailer_status(&frames);
                        match status.code {
                            status::OK => None,
                            _ => Some((Err(status.to_json(&pool)), None)),
                        }
                    }
                    Err(e) => Some((Err(e.status().to_json(&pool)), None)),
                }
            }
        });
        Ok(stream_response(format, items.boxed()))
    }

    /// A gRPC status as the REST answer: the HTTP status from the table, the problem document
    /// with the `google.rpc.Status` members.
    fn status_response(
        &self,
        status: &Status,
        request_id: &str,
        path: &str,
    ) -> Response<ProxyBody> {
        // The details as the mapping writes them (`Any` resolved through the pool).
        let details = serde_json::from_slice::<serde_json::Value>(&status.to_json(&self.pool))
            .ok()
            .and_then(
                |mut v| match v.get_mut("details").map(serde_json::Value::take) {
                    Some(serde_json::Value::Array(items)) => Some(items),
                    _ => None,
                },
            )
            .unwrap_or_default();
        let request_id =
            HeaderValue::from_str(request_id).unwrap_or_else(|_| HeaderValue::from_static("-"));
        gatehouse_common::respond::grpc_status_problem(
            super::status::http_status(status.code),
            status.code,
            &status.message,
            &details,
            &request_id,
            Some(path),
        )
    }

    /// The most read of one message: `internal.max_handler_body_bytes`.
    fn max_message(&self) -> usize {
        usize::try_from(self.max_body).unwrap_or(usize::MAX)
    }

    fn broken(&self, e: frame::FrameError) -> ProxyError {
        ProxyError::BadUpstreamResponse {
            service: self.upstream.name.to_string(),
            reason: e.to_string(),
        }
    }
}

/// A 200 whose body writes `items` in `format` as they come.
fn stream_response(
    format: Format,
    items: futures_util::stream::BoxStream<'static, Result<Bytes, Bytes>>,
) -> Response<ProxyBody> {
    let mut res = Response::new(stream::streamed_body(format, items));
    format.set_headers(res.headers_mut());
    res
}

/// The status that ended a call: its trailers', or [`Status::missing`] without one.
fn trailer_status(frames: &Frames) -> Status {
    frames
        .trailers()
        .and_then(Status::from_metadata)
        .unwrap_or_else(Status::missing)
}

/// A unary call that ended OK without its one message broke the protocol.
fn no_message() -> Status {
    Status::new(
        status::INTERNAL,
        "the service answered OK without a message",
    )
}

/// The gateway refuses the request with a gRPC code (the body carries it).
fn refused(http: StatusCode, code: i32, message: String) -> ProxyError {
    ProxyError::GrpcRefused {
        http,
        code,
        message,
    }
}

/// A request the JSON mapping refuses: 400, INVALID_ARGUMENT.
fn invalid(message: impl Into<String>) -> ProxyError {
    refused(
        StatusCode::BAD_REQUEST,
        status::INVALID_ARGUMENT,
        message.into(),
    )
}
