//! Validates the `edge` section into an [`EdgeFilter`]; errors point at the offending key.
//!
//! JWKS fetchers and rate limiters are kept across reloads while their settings are
//! unchanged, so a reload neither refetches keys nor forgets buckets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use gatehouse_common::config::{ConfigError, Source, did_you_mean_hint};
use gatehouse_common::runtime::Extension;
use gatehouse_common::settings::ProxySettings;
use gatehouse_common::tier::{Tier, TierBuild, TierPlan};
use http::{HeaderName, Method, Uri};
use jsonwebtoken::DecodingKey;

use crate::api_key::{ApiKeys, parse_hash};
use crate::cors::Cors;
use crate::filter::EdgeFilter;
use crate::h3::AltSvc;
use crate::jwt::keys::KeySet;
use crate::jwt::remote::RemoteKeys;
use crate::jwt::{Issuer, JwtVerifier, KeySource};
use crate::normalize::normalize;
use crate::policy::{AuthMethods, LimitKey, Policy, RateLimit};
use crate::ratelimit::{Limiter, LocalLimiter, Quota, RateLimitMetrics, RedisStore, SharedLimiter};
use crate::redirect::{HttpsRedirect, hsts_value};
use crate::schema::JsonSchema;
use crate::settings::{
    AuthMethod, AuthSettings, EdgeSettings, IssuerSettings, RateLimitSettings, SharedStore,
};

/// The fastest shared limit: one token per microsecond (Redis's script keeps time in
/// microseconds as doubles near 1.7e15, which resolve 0.25 µs).
const MAX_SHARED_PER_SECOND: f64 = 1_000_000.0;

/// A limiter a plan uses, kept for the next reload while some plan still does.
#[derive(Debug)]
enum KeptLimiter {
    Local(Weak<LocalLimiter>),
    Shared(Weak<SharedLimiter>),
}

impl KeptLimiter {
    fn alive(&self) -> bool {
        match self {
            KeptLimiter::Local(w) => w.strong_count() > 0,
            KeptLimiter::Shared(w) => w.strong_count() > 0,
        }
    }
}

/// The edge's [`Extension`]: builds the filter on start and on every reload.
#[derive(Debug, Default)]
pub struct EdgeExtension {
    remotes: Mutex<HashMap<(String, u128, u128), Weak<RemoteKeys>>>,
    /// Per limit name, the limiters of every plan alive: the serving one, and one being built
    /// (a refused reload's dies with it, so the serving one is still found after).
    limiters: Mutex<HashMap<String, Vec<(RateLimitSettings, KeptLimiter)>>>,
    /// The Redis stores of shared limits the plans alive use, kept while `edge.redis` is
    /// unchanged.
    stores: Mutex<Vec<Weak<RedisStore>>>,
    /// Shared limits' series, registered with the binary's metrics once serving.
    pub rate_limit_metrics: RateLimitMetrics,
    /// HTTP/3 endpoints to advertise, filled by [`crate::h3::start`].
    pub alt_svc: Arc<AltSvc>,
}

impl EdgeExtension {
    fn remote(&self, url: Uri, s: &IssuerSettings) -> Arc<RemoteKeys> {
        let key = (
            url.to_string(),
            s.refresh_interval.get().as_nanos(),
            s.min_refetch_interval.get().as_nanos(),
        );
        let mut map = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = map.get(&key).and_then(Weak::upgrade) {
            return r;
        }
        let r = RemoteKeys::new(url, s.refresh_interval.get(), s.min_refetch_interval.get());
        // `validate` runs without a runtime: nothing to fetch then.
        if tokio::runtime::Handle::try_current().is_ok() {
            r.spawn_refresher();
        }
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(key, Arc::downgrade(&r));
        r
    }

    /// The limiter of `name`: the running one when its settings (and store) did not change.
    fn limiter(
        &self,
        name: &str,
        s: &RateLimitSettings,
        store: Option<&Arc<RedisStore>>,
    ) -> Limiter {
        let mut map = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, kept| {
            kept.retain(|(_, k)| k.alive());
            !kept.is_empty()
        });
        let kept_here = map.entry(name.to_owned()).or_default();
        for (_, kept) in kept_here.iter().filter(|(old, _)| old == s) {
            match (kept, store) {
                (KeptLimiter::Local(w), None) => {
                    if let Some(l) = w.upgrade() {
                        return Limiter::Local(l);
                    }
                }
                (KeptLimiter::Shared(w), Some(store)) => {
                    if let Some(l) = w.upgrade().filter(|l| Arc::ptr_eq(l.store(), store)) {
                        return Limiter::Shared(l);
                    }
                }
                _ => {}
            }
        }
        let quota = Quota {
            name: name.to_owned(),
            quota: s.quota,
            window: s.window.get(),
            burst: s.burst.unwrap_or(s.quota),
        };
        let (limiter, kept) = match store {
            None => {
                let l = Arc::new(LocalLimiter::new(quota, s.max_keys));
                let kept = KeptLimiter::Local(Arc::downgrade(&l));
                (Limiter::Local(l), kept)
            }
            Some(store) => {
                let l = Arc::new(SharedLimiter::new(
                    quota,
                    store.clone(),
                    s.max_keys,
                    s.on_store_failure.unwrap_or_default(),
                    &self.rate_limit_metrics,
                ));
                let kept = KeptLimiter::Shared(Arc::downgrade(&l));
                (Limiter::Shared(l), kept)
            }
        };
        kept_here.push((s.clone(), kept));
        limiter
    }

    /// The store of `edge.redis`: the running one when its settings did not change.
    fn store(
        &self,
        edge: &EdgeSettings,
        source: &Source,
    ) -> Result<Option<Arc<RedisStore>>, ConfigError> {
        let Some(s) = &edge.redis else {
            return Ok(None);
        };
        if s.url.trim().is_empty() {
            tracing::warn!(
                "edge.redis.url is empty: `shared: redis` limits count in this process only, \
                 with their whole quota"
            );
            return Ok(None);
        }
        let mut kept = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        kept.retain(|w| w.strong_count() > 0);
        if let Some(store) = kept
            .iter()
            .filter_map(Weak::upgrade)
            .find(|st| st.settings() == s)
        {
            return Ok(Some(store));
        }
        let store = RedisStore::new(s, &self.rate_limit_metrics)
            .map_err(|(key, e)| source.error_at(&format!("edge.redis.{key}"), e))?;
        // Checked, but not kept nor connected, when no limit uses it.
        if !edge.rate_limits.values().any(|l| l.shared.is_some()) {
            return Ok(None);
        }
        let store = Arc::new(store);
        // Outside a runtime (a unit test building a plan) there is nothing to connect with.
        if tokio::runtime::Handle::try_current().is_ok() {
            store.warm_up();
        }
        kept.push(Arc::downgrade(&store));
        Ok(Some(store))
    }

    fn issuers(&self, edge: &EdgeSettings, source: &Source) -> Result<Vec<Issuer>, ConfigError> {
        let mut out = Vec::new();
        for (i, s) in edge.jwt.issuers.iter().enumerate() {
            let at = |k: &str| format!("edge.jwt.issuers[{i}].{k}");
            if s.audiences.is_empty() {
                return Err(source.error_at(&at("audiences"), "at least one audience is required"));
            }
            let keys = match (&s.jwks_file, &s.jwks_url) {
                (Some(_), Some(_)) => {
                    return Err(
                        source.error_at(&at("jwks_url"), "set jwks_file or jwks_url, not both")
                    );
                }
                (Some(file), None) => {
                    let text = std::fs::read(file).map_err(|e| {
                        source.error_at(
                            &at("jwks_file"),
                            format!("cannot read {}: {e}", file.display()),
                        )
                    })?;
                    let (set, skipped) = KeySet::parse(&text)
                        .map_err(|e| source.error_at(&at("jwks_file"), e.to_string()))?;
                    if set.is_empty() {
                        return Err(source.error_at(&at("jwks_file"), "no usable signing key"));
                    }
                    if !skipped.is_empty() {
                        tracing::warn!(file = %file.display(), ?skipped, "JWKS keys skipped");
                    }
                    KeySource::Static(Arc::new(set))
                }
                (None, Some(url)) => {
                    let uri: Uri = url
                        .parse()
                        .ok()
                        .filter(|u: &Uri| {
                            matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
                        })
                        .ok_or_else(|| {
                            source.error_at(&at("jwks_url"), "expected an http:// or https:// URL")
                        })?;
                    KeySource::Remote(self.remote(uri, s))
                }
                (None, None) if s.hs256_secret.is_some() => {
                    KeySource::Static(Arc::new(KeySet::default()))
                }
                (None, None) => {
                    return Err(source.error_at(
                        &format!("edge.jwt.issuers[{i}]"),
                        "one of jwks_file, jwks_url or hs256_secret is required",
                    ));
                }
            };
            let hmac = match &s.hs256_secret {
                Some(secret) if secret.expose().len() < 32 => {
                    return Err(source.error_at(&at("hs256_secret"), "use at least 32 bytes"));
                }
                Some(secret) => Some(DecodingKey::from_secret(secret.expose().as_bytes())),
                None => None,
            };
            out.push(Issuer {
                issuer: s.issuer.clone(),
                audiences: s.audiences.clone(),
                keys,
                hmac,
            });
        }
        Ok(out)
    }

    fn rate_limit(
        &self,
        edge: &EdgeSettings,
        source: &Source,
        name: &str,
        at: &str,
        store: Option<&Arc<RedisStore>>,
    ) -> Result<RateLimit, ConfigError> {
        let Some(s) = edge.rate_limits.get(name) else {
            let hint = did_you_mean_hint(name, edge.rate_limits.keys().map(String::as_str));
            return Err(source.error_at_hint(at, format!("no rate limit named `{name}`"), hint));
        };
        let here = format!("edge.rate_limits.{name}");
        if s.quota == 0 || s.burst == Some(0) || s.window.get().is_zero() {
            return Err(source.error_at(&here, "quota, burst and window must be positive"));
        }
        let key = match s.key.as_str() {
            "client_ip" => LimitKey::ClientIp,
            "api_key" => LimitKey::ApiKey,
            "subject" => LimitKey::Subject,
            other => match other.strip_prefix("header:").map(HeaderName::try_from) {
                Some(Ok(h)) => LimitKey::Header(h),
                _ => {
                    return Err(source.error_at(
                        &format!("{here}.key"),
                        "expected client_ip, api_key, subject or header:<name>",
                    ));
                }
            },
        };
        let store = match (s.shared, store) {
            (None, _) => {
                if s.on_store_failure.is_some() {
                    return Err(source.error_at(
                        &format!("{here}.on_store_failure"),
                        "only a shared limit has a store to fail (add `shared: redis`)",
                    ));
                }
                None
            }
            (Some(SharedStore::Redis), Some(store)) => {
                let per_second = s.quota as f64 / s.window.get().as_secs_f64();
                if per_second > MAX_SHARED_PER_SECOND {
                    return Err(source.error_at(
                        &format!("{here}.quota"),
                        format!(
                            "a shared limit counts at most {MAX_SHARED_PER_SECOND} per second \
                             per key (this one: {per_second})"
                        ),
                    ));
                }
                Some(store)
            }
            // `url: "${REDIS_URL:-}"` unset: one process, counting alone (said once per load).
            (Some(SharedStore::Redis), None) if edge.redis.is_some() => None,
            (Some(SharedStore::Redis), None) => {
                return Err(source.error_at(
                    &format!("{here}.shared"),
                    "`shared: redis` needs `edge.redis` (url, password, ...)",
                ));
            }
        };
        let limiter = self.limiter(name, s, store);
        Ok(RateLimit { limiter, key })
    }
}

fn auth_methods(auth: &AuthSettings) -> Result<AuthMethods, &'static str> {
    let one = |m: &AuthMethod| AuthMethods {
        jwt: *m == AuthMethod::Jwt,
        api_key: *m == AuthMethod::ApiKey,
    };
    match auth {
        AuthSettings::One(m) => Ok(one(m)),
        AuthSettings::AnyOf(a) if a.any_of.is_empty() => Err("any_of needs at least one method"),
        AuthSettings::AnyOf(a) if a.any_of.contains(&AuthMethod::None) => {
            Err("`none` cannot be combined in any_of")
        }
        AuthSettings::AnyOf(a) => {
            Ok(a.any_of
                .iter()
                .fold(AuthMethods::default(), |acc, m| AuthMethods {
                    jwt: acc.jwt || one(m).jwt,
                    api_key: acc.api_key || one(m).api_key,
                }))
        }
    }
}

/// Builds the filter of one `edge` section (`settings` for the listeners and limits it
/// refers to).
pub fn build_filter(
    ext: &EdgeExtension,
    settings: &ProxySettings,
    edge: &EdgeSettings,
    source: &Source,
) -> Result<EdgeFilter, ConfigError> {
    let issuers = ext.issuers(edge, source)?;
    let header = HeaderName::try_from(edge.api_keys.header.as_str())
        .map_err(|_| source.error_at("edge.api_keys.header", "not a valid header name"))?;
    let mut api_keys = ApiKeys::new(header, edge.api_keys.query_param.clone());
    for (i, k) in edge.api_keys.keys.iter().enumerate() {
        let hash = parse_hash(&k.sha256).ok_or_else(|| {
            source.error_at(
                &format!("edge.api_keys.keys[{i}].sha256"),
                "expected 64 hex digits (sha256 of the key)",
            )
        })?;
        api_keys.insert(hash, k.name.clone(), k.scopes.clone());
    }
    let store = ext.store(edge, source)?;
    // Every limit is checked, not only those a policy names.
    for name in edge.rate_limits.keys() {
        ext.rate_limit(edge, source, name, "", store.as_ref())?;
    }
    let global_limit = match &edge.global_rate_limit {
        Some(name) => {
            Some(ext.rate_limit(edge, source, name, "edge.global_rate_limit", store.as_ref())?)
        }
        None => None,
    };
    let mut policies: Vec<Policy> = Vec::new();
    for (i, p) in edge.policies.iter().enumerate() {
        let at = |k: &str| format!("edge.policies[{i}].{k}");
        if policies.iter().any(|q| q.name == p.name) {
            return Err(source.error_at(&at("name"), format!("duplicate policy `{}`", p.name)));
        }
        let prefix = normalize(&p.path_prefix)
            .map_err(|e| source.error_at(&at("path_prefix"), e.to_string()))?;
        let prefix = match prefix.trim_end_matches('/') {
            "" => "/".to_owned(),
            s => s.to_owned(),
        };
        let methods = p
            .methods
            .iter()
            .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| source.error_at(&at("methods"), "not a valid HTTP method"))?;
        let auth = auth_methods(&p.auth).map_err(|e| source.error_at(&at("auth"), e))?;
        if auth.jwt && issuers.is_empty() {
            return Err(source.error_at(&at("auth"), "jwt needs edge.jwt.issuers"));
        }
        if auth.api_key && api_keys.is_empty() {
            return Err(source.error_at(&at("auth"), "api_key needs edge.api_keys.keys"));
        }
        if !auth.required() && p.authorize != Default::default() {
            return Err(source.error_at(&at("authorize"), "authorize needs an auth method"));
        }
        let rate_limit = match &p.rate_limit {
            Some(name) => {
                Some(ext.rate_limit(edge, source, name, &at("rate_limit"), store.as_ref())?)
            }
            None => None,
        };
        let listener_headers = settings.limits.max_request_header_bytes.get();
        let max_header_bytes = match p.max_header_bytes.map(|b| b.get()) {
            Some(b) if b > listener_headers => {
                return Err(source.error_at(
                    &at("max_header_bytes"),
                    format!(
                        "cannot exceed limits.max_request_header_bytes ({listener_headers} \
                         bytes), the most the listeners read; raise that instead"
                    ),
                ));
            }
            Some(b) if b < 1024 => {
                return Err(source.error_at(&at("max_header_bytes"), "must be at least 1KiB"));
            }
            Some(b) => Some(usize::try_from(b).unwrap_or(usize::MAX)),
            None => None,
        };
        let json_schema = match &p.json_schema {
            Some(file) => Some(Arc::new(
                JsonSchema::load(file).map_err(|e| source.error_at(&at("json_schema"), e))?,
            )),
            None => None,
        };
        if p.grpc_web {
            if !methods.is_empty() && !methods.contains(&Method::POST) {
                return Err(source.error_at(
                    &at("methods"),
                    "grpc_web needs POST: every gRPC-Web call is a POST",
                ));
            }
            if json_schema.is_some() {
                return Err(source.error_at(
                    &at("json_schema"),
                    "a json_schema policy refuses every non-JSON body, so no gRPC-Web call \
                     could pass; use one or the other",
                ));
            }
        }
        let cors = match &p.cors {
            Some(c) => {
                // gRPC-Web clients send and read headers of their own: allowed by default.
                let c = match p.grpc_web {
                    true => &crate::grpc_web::cors_settings(c),
                    false => c,
                };
                Some(
                    Cors::new(c, &methods)
                        .map_err(|(key, e)| source.error_at(&at(&format!("cors.{key}")), e))?,
                )
            }
            None => None,
        };
        policies.push(Policy {
            name: p.name.clone(),
            prefix,
            methods,
            auth,
            authorize: p.authorize.clone(),
            rate_limit,
            forward_authorization: p.forward_authorization,
            token_in_query: p.token_in_query,
            forward_claims: p.forward_claims.clone(),
            max_uri_bytes: p.max_uri_bytes.unwrap_or(edge.max_uri_bytes).get(),
            max_header_bytes,
            max_body_bytes: p.max_body_bytes.map(|b| b.get()),
            json_schema,
            cors,
            grpc_web: p.grpc_web,
        });
    }
    let https_redirect = match &edge.https_redirect {
        Some(r) => {
            for (i, name) in r.listeners.iter().enumerate() {
                let at = format!("edge.https_redirect.listeners[{i}]");
                match settings.listeners.iter().find(|l| l.name == *name) {
                    None => {
                        let hint = did_you_mean_hint(
                            name,
                            settings.listeners.iter().map(|l| l.name.as_str()),
                        );
                        return Err(source.error_at_hint(
                            &at,
                            format!("no listener named `{name}`"),
                            hint,
                        ));
                    }
                    Some(l) if l.tls.is_some() => {
                        return Err(source.error_at(
                            &at,
                            format!("listener `{name}` serves TLS; only plain listeners redirect"),
                        ));
                    }
                    Some(_) => {}
                }
            }
            if r.https_port == 0 {
                return Err(source.error_at("edge.https_redirect.https_port", "must not be 0"));
            }
            Some(HttpsRedirect::new(r))
        }
        None => None,
    };
    let max_uri_bytes = policies
        .iter()
        .map(|p| p.max_uri_bytes)
        .chain([edge.max_uri_bytes.get()])
        .max()
        .unwrap_or_default();
    Ok(EdgeFilter {
        policies,
        jwt: Arc::new(JwtVerifier {
            issuers,
            leeway_secs: edge.jwt.leeway.get().as_secs(),
        }),
        api_keys,
        global_limit,
        trusted_proxies: edge.trusted_proxies.clone(),
        max_uri_bytes,
        https_redirect,
        hsts: edge.hsts.as_ref().map(hsts_value),
        alt_svc: ext.alt_svc.clone(),
    })
}

impl Tier for EdgeExtension {
    fn section(&self) -> Option<&'static str> {
        Some("edge")
    }

    fn build(&self, cx: &TierBuild<'_>) -> Result<TierPlan, ConfigError> {
        // Deny unless a policy allows: an edge without policies would forward everything
        // unauthenticated, so it refuses to start instead of warning.
        let Some(edge) = gatehouse_common::config::section::<EdgeSettings>(cx.source, "edge")?
        else {
            return Err(cx.source.error_at(
                "",
                "gatehouse-edge needs an `edge` section with `policies` (deny unless a policy \
                 allows); to forward everything without checks, say so explicitly: \
                 `edge: { policies: [{ name: open, path_prefix: /, auth: none }] }`",
            ));
        };
        let filter = build_filter(self, cx.settings, &edge, cx.source)?;
        Ok(TierPlan {
            filter: Some(Arc::new(filter)),
            section: serde_json::to_value(&edge).ok().map(|v| ("edge", v)),
            ..TierPlan::default()
        })
    }
}

impl Extension for EdgeExtension {
    fn started<'a>(
        &'a self,
        running: &'a gatehouse_common::runtime::Running,
    ) -> gatehouse_common::runtime::StartedFuture<'a> {
        running
            .shared()
            .metrics
            .register(|r| self.rate_limit_metrics.register(r));
        Box::pin(async move { crate::h3::start(running, &self.alt_svc).await.map(|_| ()) })
    }
}
