//! CORS per policy (the Fetch standard's CORS protocol): preflights are answered at the edge,
//! before authentication (browsers send no credentials on a preflight), and actual responses
//! get the `Access-Control-Allow-*` headers for allowed origins.
//!
//! A request from an origin that is not allowed is still served (CORS protects browsers'
//! users, not servers: curl ignores it); it just gets no CORS headers, so a browser hides the
//! response from the calling script. A preflight asking for something not allowed is answered
//! 403 with a problem body saying what, which is easier to debug than a silent 204.

use crate::settings::CorsSettings;
use gatehouse_common::body::ProxyBody;
use gatehouse_common::ctx::RequestCtx;
use http::header::{self, HeaderName, HeaderValue};
use http::request::Parts;
use http::{HeaderMap, Method, Response, StatusCode};

use crate::reply::problem;

/// Which origins may read responses.
#[derive(Debug, Clone)]
enum Origins {
    Any,
    /// ASCII-lowercased; compared case-insensitively (scheme and host are).
    List(Vec<String>),
}

/// One policy's compiled CORS settings; header values are built once, at load.
#[derive(Debug, Clone)]
pub struct Cors {
    origins: Origins,
    /// Empty: any method.
    methods: Vec<Method>,
    allow_methods: Option<HeaderValue>,
    /// Lower-case names.
    allow_headers: Vec<HeaderName>,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: Option<HeaderValue>,
}

/// What the response of an actual (non-preflight) request gets.
#[derive(Debug, Clone)]
pub struct CorsResponse {
    /// `None`: no `Origin`, or one not allowed.
    allow_origin: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    vary: bool,
}

fn join<T: AsRef<str>>(items: &[T]) -> Option<HeaderValue> {
    let s = items
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<_>>()
        .join(", ");
    (!s.is_empty())
        .then(|| HeaderValue::from_str(&s).ok())
        .flatten()
}

impl Cors {
    /// Compiles `s`; `policy_methods` is the default of `allow_methods`. The error names the
    /// key at fault (relative to the `cors` key).
    pub fn new(
        s: &CorsSettings,
        policy_methods: &[Method],
    ) -> Result<Cors, (&'static str, String)> {
        if s.allow_origins.is_empty() {
            return Err(("allow_origins", "name at least one origin, or \"*\"".into()));
        }
        let origins = if s.allow_origins.iter().any(|o| o == "*") {
            if s.allow_origins.len() > 1 {
                return Err((
                    "allow_origins",
                    "\"*\" cannot be combined with origins".into(),
                ));
            }
            if s.allow_credentials {
                return Err((
                    "allow_credentials",
                    "browsers refuse credentials with origin \"*\"; list the origins".into(),
                ));
            }
            Origins::Any
        } else {
            for o in &s.allow_origins {
                let ok = o.parse::<http::Uri>().ok().is_some_and(|u| {
                    matches!(u.scheme_str(), Some("http" | "https"))
                        && u.host().is_some()
                        && u.path() == "/"
                        && !o.ends_with('/')
                });
                if !ok {
                    return Err((
                        "allow_origins",
                        format!("`{o}` is not an origin (scheme://host[:port], no path)"),
                    ));
                }
            }
            Origins::List(
                s.allow_origins
                    .iter()
                    .map(|o| o.to_ascii_lowercase())
                    .collect(),
            )
        };
        let methods = if s.allow_methods.is_empty() {
            policy_methods.to_vec()
        } else {
            s.allow_methods
                .iter()
                .map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| ("allow_methods", "not a valid HTTP method".to_owned()))?
        };
        let names = |list: &[String], key: &'static str| {
            list.iter()
                .map(|h| HeaderName::try_from(h.as_str()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| (key, "not a valid header name".to_owned()))
        };
        let allow_headers = names(&s.allow_headers, "allow_headers")?;
        let expose = names(&s.expose_headers, "expose_headers")?;
        let method_names: Vec<&str> = methods.iter().map(Method::as_str).collect();
        Ok(Cors {
            origins,
            allow_methods: join(&method_names),
            methods,
            allow_headers,
            expose_headers: join(&expose),
            credentials: s.allow_credentials,
            max_age: s.max_age.map(|d| HeaderValue::from(d.get().as_secs())),
        })
    }

    /// The `Access-Control-Allow-Origin` value for `origin`, if it is allowed.
    fn allow_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        match &self.origins {
            Origins::Any => Some(HeaderValue::from_static("*")),
            Origins::List(list) => {
                let o = origin.to_str().ok()?;
                list.iter()
                    .any(|a| a.eq_ignore_ascii_case(o))
                    .then(|| origin.clone())
            }
        }
    }

    /// A preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    pub fn is_preflight(parts: &Parts) -> bool {
        parts.method == Method::OPTIONS
            && parts.headers.contains_key(header::ORIGIN)
            && parts
                .headers
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Answers a preflight: 204 with the allowance, or 403 saying what is not allowed.
    pub fn preflight(&self, ctx: &RequestCtx, parts: &Parts) -> Response<ProxyBody> {
        let refuse = |detail: String| {
            problem(
                ctx,
                StatusCode::FORBIDDEN,
                "cors-refused",
                "CORS request refused",
                detail,
            )
        };
        let h = &parts.headers;
        let Some(origin) = h.get(header::ORIGIN) else {
            return refuse("no Origin".into());
        };
        let Some(allow_origin) = self.allow_origin(origin) else {
            return refuse(format!(
                "origin {} is not allowed",
                String::from_utf8_lossy(origin.as_bytes())
            ));
        };
        let method = h
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|v| Method::from_bytes(v.as_bytes()).ok());
        let Some(method) = method else {
            return refuse("Access-Control-Request-Method is not a method".into());
        };
        if !self.methods.is_empty() && !self.methods.contains(&method) {
            return refuse(format!("method {method} is not allowed"));
        }
        let mut requested = Vec::new();
        for v in h.get_all(header::ACCESS_CONTROL_REQUEST_HEADERS) {
            let Ok(v) = v.to_str() else {
                return refuse("Access-Control-Request-Headers is not ASCII".into());
            };
            for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                let lower = name.to_ascii_lowercase();
                if !self.allow_headers.iter().any(|a| a.as_str() == lower) {
                    return refuse(format!("request header {lower} is not allowed"));
                }
                requested.push(lower);
            }
        }

        let mut res = Response::new(gatehouse_common::body::empty());
        *res.status_mut() = StatusCode::NO_CONTENT;
        let out = res.headers_mut();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            // Any method allowed: echo the one asked for (`*` is not honoured with credentials).
            self.allow_methods
                .clone()
                .or_else(|| HeaderValue::from_str(method.as_str()).ok())
                .unwrap_or(HeaderValue::from_static("GET")),
        );
        if let Some(v) = join(&requested) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
        }
        if self.credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(v) = &self.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, v.clone());
        }
        self.vary(out);
        out.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        res
    }

    fn vary(&self, out: &mut HeaderMap) {
        if matches!(self.origins, Origins::List(_)) {
            out.append(header::VARY, HeaderValue::from_static("Origin"));
        }
    }

    /// For an actual (non-preflight) request: what its response gets. `Vary: Origin` goes on
    /// every response whose CORS headers depend on the origin, so caches keep them apart.
    pub fn for_request(&self, parts: &Parts) -> CorsResponse {
        CorsResponse {
            allow_origin: parts
                .headers
                .get(header::ORIGIN)
                .and_then(|o| self.allow_origin(o)),
            expose_headers: self.expose_headers.clone(),
            credentials: self.credentials,
            vary: matches!(self.origins, Origins::List(_)),
        }
    }
}

impl CorsResponse {
    pub fn apply(&self, out: &mut HeaderMap) {
        if self.vary {
            out.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        let Some(origin) = &self.allow_origin else {
            return;
        };
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        if let Some(v) = &self.expose_headers {
            out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v.clone());
        }
        if self.credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
    }
}
