//! The edge's request phases, in order: gRPC-Web recognised → URI size and smuggling checks →
//! path normalization → HTTPS redirect → identity-header stripping → policy match → CORS
//! preflight → the policy's size limits → method → authenticate → authorize → rate limits →
//! body checks → identity forwarding → gRPC-Web translated. Each refusal is answered here;
//! nothing refused reaches routing.

use std::net::IpAddr;
use std::sync::Arc;

use gatehouse_common::body::ProxyBody;
use gatehouse_common::ctx::RequestCtx;
use gatehouse_common::filter::{BodyCheck, BodyLimit, Filter, FilterFuture};
use gatehouse_common::headers::header_bytes;
use http::header::{self, HeaderValue};
use http::request::Parts;
use http::{StatusCode, Uri};

use crate::api_key::ApiKeys;
use crate::authz;
use crate::cors::{Cors, CorsResponse};
use crate::grpc_web::GrpcWeb;
use crate::identity::{self, Identity};
use crate::jwt::JwtVerifier;
use crate::normalize::normalize;
use crate::policy::{self, LimitKey, Policy, RateLimit};
use crate::ratelimit::{Checked, Decision, Quota, ceil_secs};
use crate::redirect::HttpsRedirect;
use crate::reply::{self, problem};
use crate::schema::JsonSchema;

/// Query parameter carrying a JWT, where a policy allows it.
pub const TOKEN_QUERY_PARAM: &str = "access_token";

/// The edge filter built from one version of the `edge` section.
#[derive(Debug)]
pub struct EdgeFilter {
    pub policies: Vec<Policy>,
    pub jwt: Arc<JwtVerifier>,
    pub api_keys: ApiKeys,
    pub global_limit: Option<RateLimit>,
    pub trusted_proxies: Vec<IpAddr>,
    /// The largest of the edge's and the policies' URI limits: checked before anything else
    /// (each policy's own once it is matched).
    pub max_uri_bytes: u64,
    pub https_redirect: Option<HttpsRedirect>,
    /// `Strict-Transport-Security`, on responses over TLS.
    pub hsts: Option<HeaderValue>,
    /// `Alt-Svc` for TCP responses of listeners that also serve HTTP/3.
    pub alt_svc: Arc<crate::h3::AltSvc>,
}

/// Rate-limit outcomes of a request, for the response headers.
#[derive(Debug, Clone, Default)]
pub struct RateInfo(pub Vec<(Quota, Decision)>);

impl RateInfo {
    fn policy_header(&self) -> String {
        self.0
            .iter()
            .map(|(q, _)| {
                format!(
                    "\"{}\";q={};w={}",
                    q.name,
                    q.quota,
                    ceil_secs(q.window).max(1)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn state_header(&self) -> String {
        self.0
            .iter()
            .map(|(q, d)| format!("\"{}\";r={};t={}", q.name, d.remaining, ceil_secs(d.reset)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn apply(&self, headers: &mut http::HeaderMap) {
        if self.0.is_empty() {
            return;
        }
        for (name, value) in [
            ("ratelimit-policy", self.policy_header()),
            ("ratelimit", self.state_header()),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(name, v);
            }
        }
    }
}

/// Query parameters except those named in `drop` (credentials are not forwarded).
fn query_without(query: &str, drop: &[&str]) -> String {
    query
        .split('&')
        .filter(|kv| {
            let k = kv.split('=').next().unwrap_or_default();
            !drop.contains(&k)
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

fn uri_too_long(ctx: &RequestCtx, max: u64) -> Refusal {
    problem(
        ctx,
        StatusCode::URI_TOO_LONG,
        "uri-too-long",
        "URI too long",
        format!("the request target exceeds {max} bytes"),
    )
}

/// A refusal answered to the client.
type Refusal = http::Response<gatehouse_common::body::ProxyBody>;

impl EdgeFilter {
    /// The client address, believing `X-Forwarded-For` only from trusted proxies.
    fn client_ip(&self, ctx: &RequestCtx, parts: &Parts) -> IpAddr {
        let peer = ctx.client_addr.ip();
        if !self.trusted_proxies.contains(&peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusted_proxies.contains(ip))
            .unwrap_or(peer)
    }

    fn limit_key(
        &self,
        limit: &RateLimit,
        ctx: &RequestCtx,
        parts: &Parts,
        id: Option<&Identity>,
        api_key: bool,
    ) -> String {
        let ip = || format!("ip:{}", self.client_ip(ctx, parts));
        match &limit.key {
            LimitKey::ClientIp => ip(),
            LimitKey::Subject => id.map_or_else(ip, |i| format!("sub:{}", i.subject)),
            LimitKey::ApiKey => id
                .filter(|_| api_key)
                .and_then(|i| i.client_id.clone())
                .map_or_else(ip, |c| format!("key:{c}")),
            LimitKey::Header(h) => format!(
                "hdr:{}",
                String::from_utf8_lossy(
                    parts
                        .headers
                        .get(h)
                        .map(HeaderValue::as_bytes)
                        .unwrap_or_default()
                )
            ),
        }
    }

    /// Authenticates per the policy: `Ok(None)` for `auth: none`; the bool says whether an
    /// API key (rather than a JWT) was used.
    async fn authenticate(
        &self,
        ctx: &RequestCtx,
        parts: &Parts,
        policy: &Policy,
    ) -> Result<Option<(Identity, bool)>, Refusal> {
        if !policy.auth.required() {
            return Ok(None);
        }
        let query = parts.uri.query();
        if policy.auth.api_key {
            let presented = parts
                .headers
                .get(&self.api_keys.header)
                .and_then(|v| v.to_str().ok())
                .or_else(|| {
                    self.api_keys
                        .query_param
                        .as_deref()
                        .and_then(|p| query_param(query, p))
                });
            if let Some(key) = presented {
                return match self.api_keys.identify(key) {
                    Some(id) => Ok(Some((id, true))),
                    None => {
                        tracing::info!(policy = %policy.name, "unknown API key");
                        Err(reply::unauthorized(ctx, Some("unknown API key")))
                    }
                };
            }
        }
        if policy.auth.jwt {
            let bearer = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    let (scheme, token) = v.split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                });
            let in_query = query_param(query, TOKEN_QUERY_PARAM);
            let token = match (bearer, in_query) {
                (Some(t), _) => Some(t),
                (None, Some(t)) if policy.token_in_query => Some(t),
                (None, Some(_)) => {
                    return Err(reply::unauthorized(
                        ctx,
                        Some("token in query string not allowed"),
                    ));
                }
                (None, None) => None,
            };
            if let Some(token) = token {
                return match self.jwt.verify(token).await {
                    Ok(claims) => Ok(Some((Identity::from_claims(claims), false))),
                    Err(err) => {
                        tracing::info!(policy = %policy.name, reason = %err, "JWT refused");
                        Err(reply::unauthorized(ctx, Some(&err.to_string())))
                    }
                };
            }
        }
        Err(reply::unauthorized(ctx, None))
    }

    /// The policy's own URI, header and body limits (the body's is enforced by the proxy
    /// while streaming, from [`BodyLimit`]).
    fn check_sizes(
        &self,
        ctx: &mut RequestCtx,
        parts: &Parts,
        policy: &Policy,
        target_len: usize,
    ) -> Option<Refusal> {
        if target_len as u64 > policy.max_uri_bytes {
            return Some(uri_too_long(ctx, policy.max_uri_bytes));
        }
        if let Some(max) = policy.max_header_bytes
            && header_bytes(&parts.headers) > max
        {
            return Some(problem(
                ctx,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers-too-large",
                "Request headers too large",
                format!("the request headers exceed {max} bytes"),
            ));
        }
        if let Some(max) = policy.max_body_bytes {
            ctx.extensions.insert(BodyLimit(max));
        }
        None
    }

    async fn run(&self, ctx: &mut RequestCtx, parts: &mut Parts) -> Result<(), Refusal> {
        // First, so that every answer, refusals included, is in the caller's content type.
        if let Some(web) = GrpcWeb::detect(&parts.headers) {
            ctx.extensions.insert(web);
        }
        let target_len = parts.uri.path_and_query().map_or(0, |p| p.as_str().len());
        if target_len as u64 > self.max_uri_bytes {
            return Err(uri_too_long(ctx, self.max_uri_bytes));
        }
        if parts.headers.contains_key(header::TRANSFER_ENCODING)
            && parts.headers.contains_key(header::CONTENT_LENGTH)
        {
            return Err(problem(
                ctx,
                StatusCode::BAD_REQUEST,
                "ambiguous-length",
                "Bad request",
                "both Content-Length and Transfer-Encoding",
            ));
        }
        let path = normalize(parts.uri.path()).map_err(|e| {
            problem(
                ctx,
                StatusCode::BAD_REQUEST,
                "bad-path",
                "Bad request",
                e.to_string(),
            )
        })?;
        if let Some(r) = &self.https_redirect
            && r.applies(ctx, &path)
        {
            return Err(r.response(ctx, parts));
        }
        identity::strip(&mut parts.headers);

        let Some(policy) = policy::find(&self.policies, &path, &parts.method) else {
            return Err(problem(
                ctx,
                StatusCode::NOT_FOUND,
                "no-policy",
                "Not found",
                "no edge policy allows this path",
            ));
        };
        if let Some(cors) = &policy.cors {
            // Before authentication: browsers send no credentials on a preflight.
            if Cors::is_preflight(parts) {
                return Err(cors.preflight(ctx, parts));
            }
            // Refusals below carry the CORS headers too, so scripts can read them.
            ctx.extensions.insert(cors.for_request(parts));
        }
        if let Some(refusal) = self.check_sizes(ctx, parts, policy, target_len) {
            return Err(refusal);
        }
        if !policy.allows(&parts.method) {
            let mut res = problem(
                ctx,
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                format!("{} is not allowed here", parts.method),
            );
            let allow: Vec<&str> = policy.methods.iter().map(|m| m.as_str()).collect();
            if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                res.headers_mut().insert(header::ALLOW, v);
            }
            return Err(res);
        }
        let auth = self.authenticate(ctx, parts, policy).await?;
        let id = auth.as_ref().map(|(i, _)| i);
        if let Some(id) = id
            && let Err(why) = authz::authorize(&policy.authorize, id)
        {
            tracing::info!(policy = %policy.name, subject = %id.subject, reason = %why, "forbidden");
            return Err(reply::forbidden(ctx, &why));
        }

        let used_api_key = auth.as_ref().is_some_and(|(_, k)| *k);
        let mut info = RateInfo::default();
        for limit in self.global_limit.iter().chain(policy.rate_limit.iter()) {
            let key = self.limit_key(limit, ctx, parts, id, used_api_key);
            let d = match limit.limiter.check(&key).await {
                Checked::Decided(d) => d,
                Checked::StoreUnavailable => {
                    let mut res = problem(
                        ctx,
                        StatusCode::SERVICE_UNAVAILABLE,
                        "rate-limit-unavailable",
                        "Service unavailable",
                        format!(
                            "rate limit {} cannot be checked now",
                            limit.limiter.quota().name
                        ),
                    );
                    res.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                    return Err(res);
                }
            };
            info.0.push((limit.limiter.quota().clone(), d));
            if !d.allowed {
                let mut res = problem(
                    ctx,
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate-limited",
                    "Too many requests",
                    format!("rate limit {} exceeded", limit.limiter.quota().name),
                );
                let h = res.headers_mut();
                h.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(ceil_secs(d.retry_after).max(1)),
                );
                info.apply(h);
                ctx.extensions.insert(info);
                return Err(res);
            }
        }
        if !info.0.is_empty() {
            ctx.extensions.insert(info);
        }

        if let Some(schema) = &policy.json_schema
            && JsonSchema::applies_to(&parts.method)
        {
            if !JsonSchema::is_json(parts) {
                return Err(problem(
                    ctx,
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "Unsupported media type",
                    "this endpoint takes application/json",
                ));
            }
            ctx.extensions.insert(BodyCheck(schema.clone()));
        }

        if !policy.forward_authorization {
            parts.headers.remove(header::AUTHORIZATION);
        }
        parts.headers.remove(&self.api_keys.header);
        if let Some(id) = id {
            identity::forward(&mut parts.headers, id, &policy.forward_claims);
        }
        // Forward the normalized path, without credentials in the query.
        let mut drop = vec![TOKEN_QUERY_PARAM];
        if let Some(p) = self.api_keys.query_param.as_deref() {
            drop.push(p);
        }
        let query = parts
            .uri
            .query()
            .map(|q| query_without(q, &drop))
            .filter(|q| !q.is_empty());
        let target = match &query {
            Some(q) => format!("{path}?{q}"),
            None => path.clone(),
        };
        if parts.uri.path_and_query().map(|p| p.as_str()) != Some(target.as_str()) {
            let mut uri = parts.uri.clone().into_parts();
            uri.path_and_query = target.parse().ok();
            if let Ok(u) = Uri::from_parts(uri) {
                parts.uri = u;
            }
        }
        ctx.path = path;
        if policy.grpc_web
            && let Some(web) = ctx.extensions.get_mut::<GrpcWeb>()
        {
            // The request is rewritten in `request_body`, once the body limit is set up.
            web.translate = true;
        }
        Ok(())
    }
}

impl Filter for EdgeFilter {
    fn on_request<'a>(&'a self, ctx: &'a mut RequestCtx, parts: &'a mut Parts) -> FilterFuture<'a> {
        Box::pin(self.run(ctx, parts))
    }

    fn request_body(&self, ctx: &mut RequestCtx, parts: &mut Parts, body: ProxyBody) -> ProxyBody {
        match ctx.extensions.get::<GrpcWeb>() {
            Some(web) if web.translate => web.request(parts, body),
            _ => body,
        }
    }

    fn response_body(
        &self,
        ctx: &RequestCtx,
        res: &mut http::response::Parts,
        body: ProxyBody,
    ) -> ProxyBody {
        match ctx.extensions.get::<GrpcWeb>() {
            Some(web) => web.response(res, body),
            None => body,
        }
    }

    fn on_response(&self, ctx: &RequestCtx, res: &mut http::response::Parts) {
        if let Some(info) = ctx.extensions.get::<RateInfo>() {
            info.apply(&mut res.headers);
        }
        if let Some(cors) = ctx.extensions.get::<CorsResponse>() {
            cors.apply(&mut res.headers);
        }
        if ctx.tls
            && let Some(v) = &self.hsts
        {
            res.headers
                .insert(http::header::STRICT_TRANSPORT_SECURITY, v.clone());
        }
        if ctx.tls
            && ctx.version != http::Version::HTTP_3
            && let Some(v) = self.alt_svc.get(&ctx.listener)
        {
            res.headers.insert(http::header::ALT_SVC, v);
        }
    }

    fn is_ready(&self) -> bool {
        self.jwt.is_ready()
    }

    fn public_errors(&self) -> bool {
        true
    }
}
