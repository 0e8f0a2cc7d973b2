//! The `edge` section: settings only `gatehouse-edge` reads (authentication, authorization,
//! rate limits, validation), declared in the edge crate and parsed by its extension
//! (`gatehouse_common::config::section`). `docs/edge.md` documents every key with examples.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use gatehouse_common::config::{ByteSize, Duration, Secret};

/// Settings of the edge tier. A request is served only when a policy allows it: a path that
/// matches no policy is answered 404.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct EdgeSettings {
    /// JWT issuers. Default: none (policies with `auth: jwt` are then refused).
    #[serde(default)]
    pub jwt: JwtSettings,
    /// API keys. Default: none.
    #[serde(default)]
    pub api_keys: ApiKeySettings,
    /// Named token-bucket limits, referenced by `policies[].rate_limit` and
    /// `global_rate_limit`. Default: none.
    #[serde(default)]
    pub rate_limits: BTreeMap<String, RateLimitSettings>,
    /// A limit applied to every request before the policy's own. Default: none.
    #[serde(default)]
    pub global_rate_limit: Option<String>,
    /// The Redis server that `shared: redis` limits count in, so that every edge replica
    /// draws from one bucket. Default: none (then no limit may be shared).
    #[serde(default)]
    pub redis: Option<RedisSettings>,
    /// Peers whose `X-Forwarded-For` is believed when keying limits by client IP (the
    /// right-most address not in this list is the client). Default: none.
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    /// Longest request target (path and query) accepted; longer → 414. Default 8KiB.
    #[serde(default = "default_max_uri")]
    pub max_uri_bytes: ByteSize,
    /// Coarse routes to policies; the longest matching `path_prefix` wins (among policies with
    /// that prefix, the first whose `methods` allow the request's).
    #[serde(default)]
    pub policies: Vec<PolicySettings>,
    /// Plain-HTTP listeners that answer every request with a 308 to HTTPS. Default: none.
    #[serde(default)]
    pub https_redirect: Option<HttpsRedirectSettings>,
    /// `Strict-Transport-Security` on every response over TLS. Default: none (a header
    /// browsers remember for `max_age` is an operator's decision, not a default).
    #[serde(default)]
    pub hsts: Option<HstsSettings>,
}

/// `https_redirect`: which plain listeners redirect, and where to.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpsRedirectSettings {
    /// Names of plain (no `tls`) listeners whose requests are all redirected.
    pub listeners: Vec<String>,
    /// Port of the `Location` (`https://HOST:PORT/PATH?QUERY`; omitted when 443).
    #[serde(default = "default_https_port")]
    pub https_port: u16,
    /// Let `/.well-known/acme-challenge/...` through to the policies and routes instead of
    /// redirecting it (HTTP-01 challenges must be answered over plain HTTP). Default false.
    #[serde(default)]
    pub pass_acme_challenge: bool,
}

fn default_https_port() -> u16 {
    443
}

/// `Strict-Transport-Security` (RFC 6797).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HstsSettings {
    /// How long browsers keep to HTTPS. Default 365d.
    #[serde(default = "default_hsts_max_age")]
    pub max_age: Duration,
    #[serde(default)]
    pub include_subdomains: bool,
    #[serde(default)]
    pub preload: bool,
}

fn default_hsts_max_age() -> Duration {
    Duration::from_secs(365 * 24 * 3600)
}

/// Cross-origin access for browsers, answered at the edge (preflights never reach upstreams).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    /// Allowed origins (`https://app.example.com`), or `"*"` for any.
    pub allow_origins: Vec<String>,
    /// Methods a preflight may ask for. Default: the policy's `methods` (any when empty).
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Request headers a preflight may ask for (case-insensitive). Default: none beyond the
    /// CORS-safelisted ones.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Response headers scripts may read. Default: none beyond the safelisted ones.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Allow cookies and `Authorization` (`Access-Control-Allow-Credentials: true`); not
    /// with `"*"`. Default false.
    #[serde(default)]
    pub allow_credentials: bool,
    /// How long browsers cache a preflight answer. Default: none (browser default, 5s).
    #[serde(default)]
    pub max_age: Option<Duration>,
}

fn default_max_uri() -> ByteSize {
    ByteSize::kib(8)
}

/// JWT validation shared by all issuers.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Clock skew allowed on `exp`, `nbf` and `iat`. Default 30s.
    #[serde(default = "default_leeway")]
    pub leeway: Duration,
    #[serde(default)]
    pub issuers: Vec<IssuerSettings>,
}

impl Default for JwtSettings {
    fn default() -> Self {
        JwtSettings {
            leeway: default_leeway(),
            issuers: Vec::new(),
        }
    }
}

fn default_leeway() -> Duration {
    Duration::from_secs(30)
}

/// One trusted token issuer and where its keys come from (exactly one of `jwks_file`,
/// `jwks_url`, or only `hs256_secret`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IssuerSettings {
    /// Expected `iss`.
    pub issuer: String,
    /// Accepted `aud` values; the token must name at least one.
    pub audiences: Vec<String>,
    /// A JWK Set file, read at start and on every reload.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A JWK Set URL (`http://` or `https://`), fetched before the edge is ready.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// How often `jwks_url` is refetched; a shorter `Cache-Control: max-age` wins.
    /// Default 5m.
    #[serde(default = "default_refresh")]
    pub refresh_interval: Duration,
    /// At most one refetch per this interval when tokens name an unknown `kid`. Default 30s.
    #[serde(default = "default_min_refetch")]
    pub min_refetch_interval: Duration,
    /// Shared secret for HS256/384/512 tokens of this issuer. Default: none, HS* refused.
    #[serde(default)]
    pub hs256_secret: Option<Secret>,
}

fn default_refresh() -> Duration {
    Duration::from_secs(300)
}

fn default_min_refetch() -> Duration {
    Duration::from_secs(30)
}

/// API keys: where clients send them and the known keys.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySettings {
    /// Request header carrying the key. Default `x-api-key`.
    #[serde(default = "default_api_key_header")]
    pub header: String,
    /// Query parameter carrying the key. Default: none (keys in URLs end up in logs).
    #[serde(default)]
    pub query_param: Option<String>,
    #[serde(default)]
    pub keys: Vec<ApiKeyEntry>,
}

impl Default for ApiKeySettings {
    fn default() -> Self {
        ApiKeySettings {
            header: default_api_key_header(),
            query_param: None,
            keys: Vec::new(),
        }
    }
}

fn default_api_key_header() -> String {
    "x-api-key".to_owned()
}

/// One API key, stored as the hex SHA-256 of the key.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyEntry {
    /// Forwarded as `x-gatehouse-client-id`, and the subject `api-key:<name>`.
    pub name: String,
    /// Lower-case hex SHA-256 of the key (64 characters).
    pub sha256: String,
    /// Scopes granted to the key. Default: none.
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A token bucket: `quota` requests per `window`, up to `burst` at once.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    /// Tokens added per `window`.
    pub quota: u64,
    /// Default 1s.
    #[serde(default = "default_window")]
    pub window: Duration,
    /// Bucket size. Default: `quota`.
    #[serde(default)]
    pub burst: Option<u64>,
    /// What one bucket counts: `client_ip` (default), `api_key`, `subject`, or
    /// `header:<name>` (requests without the header share one bucket).
    #[serde(default = "default_limit_key")]
    pub key: String,
    /// Buckets kept at most; idle ones are evicted first. Default 1000000.
    #[serde(default = "default_max_keys")]
    pub max_keys: u64,
    /// `redis`: the bucket lives in `edge.redis`, shared by every replica. Default: in this
    /// process only.
    #[serde(default)]
    pub shared: Option<SharedStore>,
    /// What a shared limit does when Redis does not answer within `edge.redis.timeout`:
    /// `local` (default) limits in this process with the quota and burst divided by
    /// `edge.redis.replicas`; `deny` answers 503. Only for shared limits.
    #[serde(default)]
    pub on_store_failure: Option<OnStoreFailure>,
}

/// Where a shared limit's buckets live.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SharedStore {
    Redis,
}

/// See [`RateLimitSettings::on_store_failure`].
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreFailure {
    /// Fail open, to a local bucket with this replica's share of the quota.
    #[default]
    Local,
    /// 503: no request passes uncounted.
    Deny,
}

/// `edge.redis`: the store of shared limits.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// `redis://host:port[/db]`, or `rediss://` for TLS. No password here: use `password`.
    /// Empty (`${REDIS_URL:-}` unset): shared limits count in this process alone.
    pub url: String,
    /// The ACL user (`AUTH user password`). Default: none (`AUTH password`, or no AUTH).
    #[serde(default)]
    pub username: Option<String>,
    /// `${VAR}`; never logged, redacted in `/config`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// For `rediss://`: the CA to trust (default: the system's roots) and a client
    /// certificate to present.
    #[serde(default)]
    pub tls: Option<RedisTls>,
    /// How long one check may wait for Redis before `on_store_failure` decides. Default 25ms.
    #[serde(default = "default_redis_timeout")]
    pub timeout: Duration,
    /// Edge replicas sharing these limits: each takes `1/replicas` of a quota while Redis is
    /// unreachable. Default 1.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// Prefix of every key written. Default `gatehouse:rl:`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

/// TLS to Redis.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisTls {
    #[serde(default)]
    pub ca: Option<PathBuf>,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
}

fn default_redis_timeout() -> Duration {
    Duration::from(std::time::Duration::from_millis(25))
}

fn default_replicas() -> u32 {
    1
}

fn default_key_prefix() -> String {
    "gatehouse:rl:".to_owned()
}

fn default_window() -> Duration {
    Duration::from_secs(1)
}

fn default_limit_key() -> String {
    "client_ip".to_owned()
}

fn default_max_keys() -> u64 {
    1_000_000
}

/// How a policy authenticates: `none`, `jwt`, `api_key`, or `{any_of: [jwt, api_key]}`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum AuthSettings {
    One(AuthMethod),
    AnyOf(AnyOfAuth),
}

/// One authentication method.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    None,
    Jwt,
    ApiKey,
}

/// `{any_of: [...]}`: the first credential present decides.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AnyOfAuth {
    pub any_of: Vec<AuthMethod>,
}

/// One coarse edge route.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PolicySettings {
    /// Unique name; the rate-limit header and metrics use it.
    pub name: String,
    /// Matches this path and everything below it (segment-wise: `/api` does not match
    /// `/apis`), after normalization.
    pub path_prefix: String,
    /// Allowed methods; others → 405. Default: any.
    #[serde(default)]
    pub methods: Vec<String>,
    pub auth: AuthSettings,
    /// Checks on the authenticated identity; failure → 403. Default: none.
    #[serde(default)]
    pub authorize: AuthorizeSettings,
    /// Name of an entry of `rate_limits`. Default: none.
    #[serde(default)]
    pub rate_limit: Option<String>,
    /// Forward the client's `Authorization` header. Default false (dropped).
    #[serde(default)]
    pub forward_authorization: bool,
    /// Accept the JWT in the `access_token` query parameter. Default false.
    #[serde(default)]
    pub token_in_query: bool,
    /// Claims forwarded as `x-gatehouse-claim-<name>`. Default: none.
    #[serde(default)]
    pub forward_claims: Vec<String>,
    /// Longest request target here; longer → 414. Default: `edge.max_uri_bytes`.
    #[serde(default)]
    pub max_uri_bytes: Option<ByteSize>,
    /// Most request-header bytes here; more → 431. At most `limits.max_request_header_bytes`
    /// (what the listeners read at all). Default: that limit.
    #[serde(default)]
    pub max_header_bytes: Option<ByteSize>,
    /// Largest request body here, above or below `limits.max_request_body_bytes`; larger →
    /// 413. Default: that limit.
    #[serde(default)]
    pub max_body_bytes: Option<ByteSize>,
    /// A JSON Schema file the bodies of POST, PUT and PATCH requests must satisfy: such a
    /// body is read whole (up to the body limit) and checked before it is forwarded; a
    /// non-JSON content type → 415, invalid JSON or a schema violation → 400 naming the first
    /// error. Default: none (bodies stream unread).
    #[serde(default)]
    pub json_schema: Option<PathBuf>,
    /// Cross-origin access. Default: none (no CORS headers; preflights are ordinary
    /// `OPTIONS` requests, subject to `methods` and `auth`).
    #[serde(default)]
    pub cors: Option<CorsSettings>,
    /// Translate gRPC-Web calls (`application/grpc-web[+proto]`, `application/grpc-web-text`)
    /// to gRPC upstream and their answers back (`docs/edge.md`, "gRPC-Web"); with `cors`, the
    /// gRPC-Web request headers are allowed and `grpc-status`/`grpc-message` exposed.
    /// Default false: gRPC-Web requests are forwarded as they came.
    #[serde(default)]
    pub grpc_web: bool,
}

/// Authorization rules; all that are set must hold.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeSettings {
    /// Scopes the identity must hold: every one of `all_of`, at least one of `any_of`.
    #[serde(default)]
    pub scopes: ScopeRule,
    /// At least one of these roles, read at a claim path.
    #[serde(default)]
    pub roles: Option<RoleRule>,
    /// Claim path → required value (for an array claim: must contain it).
    #[serde(default)]
    pub claims: BTreeMap<String, serde_json::Value>,
}

/// Required scopes.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ScopeRule {
    #[serde(default)]
    pub all_of: Vec<String>,
    #[serde(default)]
    pub any_of: Vec<String>,
}

/// Roles read from a dotted claim path such as `realm_access.roles`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleRule {
    pub claim: String,
    pub any_of: Vec<String>,
}
