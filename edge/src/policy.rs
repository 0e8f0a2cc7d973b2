//! Compiled edge policies: coarse path prefixes mapped to auth, authorization and limits.

use std::sync::Arc;

use crate::settings::AuthorizeSettings;
use http::{HeaderName, Method};

use crate::cors::Cors;
use crate::ratelimit::Limiter;
use crate::schema::JsonSchema;

/// Which credentials a policy accepts (both false: `auth: none`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthMethods {
    pub jwt: bool,
    pub api_key: bool,
}

impl AuthMethods {
    pub fn required(self) -> bool {
        self.jwt || self.api_key
    }
}

/// What a rate-limit bucket is keyed by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    ClientIp,
    ApiKey,
    Subject,
    Header(HeaderName),
}

/// A limiter and its key.
#[derive(Debug, Clone)]
pub struct RateLimit {
    pub limiter: Limiter,
    pub key: LimitKey,
}

/// One edge route.
#[derive(Debug)]
pub struct Policy {
    pub name: String,
    /// Normalized, without a trailing slash (`/` for everything).
    pub prefix: String,
    /// Empty: any method.
    pub methods: Vec<Method>,
    pub auth: AuthMethods,
    pub authorize: AuthorizeSettings,
    pub rate_limit: Option<RateLimit>,
    pub forward_authorization: bool,
    pub token_in_query: bool,
    pub forward_claims: Vec<String>,
    /// Longest request target (resolved: the policy's or the edge's).
    pub max_uri_bytes: u64,
    /// Header bytes, when lower than the listeners' limit.
    pub max_header_bytes: Option<usize>,
    /// Body bytes, when the policy sets its own.
    pub max_body_bytes: Option<u64>,
    pub json_schema: Option<Arc<JsonSchema>>,
    pub cors: Option<Cors>,
    /// gRPC-Web calls are translated to gRPC ([`crate::grpc_web`]).
    pub grpc_web: bool,
}

impl Policy {
    /// Whether `path` (normalized) is this prefix or below it, segment-wise.
    pub fn matches(&self, path: &str) -> bool {
        self.prefix == "/"
            || path
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    pub fn allows(&self, method: &Method) -> bool {
        self.methods.is_empty()
            || self.methods.contains(method)
            || (method == Method::HEAD && self.methods.contains(&Method::GET))
    }
}

/// The policy with the longest prefix matching `path`. Among policies with that same prefix, the
/// first that allows `method` (one path may have a reading and a writing policy with different
/// scopes); when none does, the first of them (which answers 405). A shorter prefix never takes
/// over because a longer one refuses the method: that would loosen the longer one's rules.
pub fn find<'a>(policies: &'a [Policy], path: &str, method: &Method) -> Option<&'a Policy> {
    let longest = policies
        .iter()
        .filter(|p| p.matches(path))
        .map(|p| p.prefix.len())
        .max()?;
    let mut same = policies
        .iter()
        .filter(|p| p.prefix.len() == longest && p.matches(path));
    let first = same.clone().next();
    same.find(|p| p.allows(method)).or(first)
}
