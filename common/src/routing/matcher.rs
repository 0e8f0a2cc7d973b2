//! A route's conditions compiled from [`RouteMatchSettings`], and the request view they test.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::cmp::Reverse;

use http::Method;
use http::header::{HeaderMap, HeaderName};
use regex::Regex;

use super::path::{PathPattern, regex_error};
use crate::identity::{X_SCOPES, X_SUBJECT};
use crate::settings::{RouteMatchSettings, ValueMatchSettings};

/// What routing looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteRequest<'a> {
    /// Name of the listener the request arrived on.
    pub listener: &'a str,
    pub method: &'a Method,
    /// Lower-case, without the port.
    pub host: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
}

/// Which hosts a route accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    /// Lower-case host.
    Exact(String),
    /// `*.example.com` is kept as `.example.com`: any host ending in it (not the bare domain).
    Suffix(String),
}

/// A condition on one value.
#[derive(Debug, Clone)]
pub enum ValueMatch {
    Present,
    Absent,
    Exact(String),
    /// Anchored at both ends.
    Regex(Regex),
}

impl ValueMatch {
    fn test<'v>(&self, mut values: impl Iterator<Item = &'v [u8]>) -> bool {
        match self {
            ValueMatch::Present => values.next().is_some(),
            ValueMatch::Absent => values.next().is_none(),
            ValueMatch::Exact(want) => values.any(|v| v == want.as_bytes()),
            ValueMatch::Regex(re) => {
                values.any(|v| std::str::from_utf8(v).is_ok_and(|v| re.is_match(v)))
            }
        }
    }
}

/// A compiled route match.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub path: PathPattern,
    pub host: HostMatch,
    methods: Vec<Method>,
    headers: Vec<(HeaderName, ValueMatch)>,
    query: Vec<(String, ValueMatch)>,
    cookies: Vec<(String, ValueMatch)>,
    scopes: Vec<String>,
    subject: Option<String>,
    listeners: Vec<String>,
}

/// Why a match does not compile: the key under `match` and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchError {
    /// Relative to the route's `match`, e.g. `path_regex` or `headers[1].regex`.
    pub key: String,
    pub message: String,
}

fn err(key: impl Into<String>, message: impl Into<String>) -> MatchError {
    MatchError {
        key: key.into(),
        message: message.into(),
    }
}

/// The specificity of a route, compared field by field; greater wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    /// exact 4 > template 3 > prefix 2 > regex 1 > the catch-all prefix `/` 0.
    pub kind: u8,
    /// prefix: its length in bytes; template: literal segments, then literals further left.
    pub path: (u64, u64),
    /// How many conditions besides the path (host, methods, each header, query parameter,
    /// cookie and scope, subject).
    pub conditions: u32,
    /// exact host > longer `*.suffix` > any.
    pub host: u64,
}

impl Matcher {
    /// Compiles `m`; errors name the key under `match`.
    pub fn compile(m: &RouteMatchSettings) -> Result<Matcher, MatchError> {
        let paths = [
            ("path", &m.path),
            ("path_prefix", &m.path_prefix),
            ("path_template", &m.path_template),
            ("path_regex", &m.path_regex),
        ];
        let given: Vec<_> = paths.iter().filter(|(_, v)| v.is_some()).collect();
        if given.len() > 1 {
            return Err(err(
                given[1].0,
                format!(
                    "use only one of `path`, `path_prefix`, `path_template` and `path_regex` (`{}` is given too)",
                    given[0].0
                ),
            ));
        }
        let path = match given.first() {
            None => PathPattern::Prefix(String::new()),
            Some((key, Some(v))) => match *key {
                "path" => PathPattern::exact(v),
                "path_prefix" => PathPattern::prefix(v),
                "path_template" => PathPattern::template(v),
                _ => PathPattern::regex(v),
            }
            .map_err(|msg| err(*key, msg))?,
            Some((_, None)) => PathPattern::Prefix(String::new()),
        };
        let host = match &m.host {
            None => HostMatch::Any,
            Some(h) => host_match(h).map_err(|msg| err("host", msg))?,
        };
        let mut methods = Vec::with_capacity(m.methods.len());
        for (i, name) in m.methods.iter().enumerate() {
            let method = Method::from_bytes(name.to_ascii_uppercase().as_bytes())
                .map_err(|_| err(format!("methods[{i}]"), format!("invalid method `{name}`")))?;
            methods.push(method);
        }
        let mut headers = Vec::with_capacity(m.headers.len());
        for (i, h) in m.headers.iter().enumerate() {
            let key = format!("headers[{i}]");
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|_| {
                err(
                    format!("{key}.name"),
                    format!("invalid header name `{}`", h.name),
                )
            })?;
            headers.push((name, value_match(h, &key)?));
        }
        let named = |list: &[ValueMatchSettings], what: &str| {
            list.iter()
                .enumerate()
                .map(|(i, v)| {
                    let key = format!("{what}[{i}]");
                    if v.name.is_empty() {
                        return Err(err(format!("{key}.name"), "must not be empty"));
                    }
                    Ok((v.name.clone(), value_match(v, &key)?))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let query = named(&m.query, "query")?;
        let cookies = named(&m.cookies, "cookies")?;
        for (i, s) in m.scopes.iter().enumerate() {
            if s.is_empty() || s.contains([' ', ',']) {
                return Err(err(
                    format!("scopes[{i}]"),
                    "a scope is one word, without spaces or commas",
                ));
            }
        }
        Ok(Matcher {
            path,
            host,
            methods,
            headers,
            query,
            cookies,
            scopes: m.scopes.clone(),
            subject: m.subject.clone(),
            listeners: m.listeners.clone(),
        })
    }

    /// The route's rank key (see [`Specificity`]).
    pub fn specificity(&self) -> Specificity {
        let (kind, path) = match &self.path {
            PathPattern::Exact(_) => (4, (0, 0)),
            PathPattern::Template(t) => {
                let (count, mask) = t.weight();
                (3, (u64::from(count), mask))
            }
            // A catch-all must not hide the regex routes.
            PathPattern::Prefix(p) if p.is_empty() => (0, (0, 0)),
            PathPattern::Prefix(p) => (2, (p.len() as u64, 0)),
            PathPattern::Regex(_) => (1, (0, 0)),
        };
        let host = match &self.host {
            HostMatch::Any => 0,
            HostMatch::Suffix(s) => s.len() as u64,
            HostMatch::Exact(_) => u64::MAX,
        };
        let conditions = u32::from(self.host != HostMatch::Any)
            + u32::from(!self.methods.is_empty())
            + (self.headers.len() + self.query.len() + self.cookies.len() + self.scopes.len())
                as u32
            + u32::from(self.subject.is_some())
            + u32::from(!self.listeners.is_empty());
        Specificity {
            kind,
            path,
            conditions,
            host,
        }
    }

    /// Sort key: most specific first, then `order` (file order).
    pub fn rank_key(&self, order: usize) -> (Reverse<Specificity>, usize) {
        (Reverse(self.specificity()), order)
    }

    /// Every condition, path and host included (the table checks path and host through its
    /// index; tests compare it against this).
    pub fn matches(&self, req: &RouteRequest<'_>) -> bool {
        self.host_matches(req.host)
            && self.path.matches(req.path)
            && self.conditions(req, &Lazy::default())
    }

    fn host_matches(&self, host: Option<&str>) -> bool {
        match (&self.host, host) {
            (HostMatch::Any, _) => true,
            (HostMatch::Exact(want), Some(h)) => want == h,
            (HostMatch::Suffix(s), Some(h)) => h.len() > s.len() && h.ends_with(s.as_str()),
            _ => false,
        }
    }

    /// The conditions besides host and literal paths (a regex path is tested here).
    pub(crate) fn conditions<'r>(&self, req: &RouteRequest<'r>, lazy: &Lazy<'r>) -> bool {
        if let PathPattern::Regex(re) = &self.path
            && !re.is_match(req.path)
        {
            return false;
        }
        if !self.methods.is_empty() && !self.methods.contains(req.method) {
            return false;
        }
        for (name, m) in &self.headers {
            if !m.test(req.headers.get_all(name).iter().map(|v| v.as_bytes())) {
                return false;
            }
        }
        if !self.query.is_empty() {
            let q = lazy.query(req.query);
            for (name, m) in &self.query {
                let values = q
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.as_bytes());
                if !m.test(values) {
                    return false;
                }
            }
        }
        if !self.cookies.is_empty() {
            let c = lazy.cookies(req.headers);
            for (name, m) in &self.cookies {
                let values = c
                    .iter()
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| v.as_bytes());
                if !m.test(values) {
                    return false;
                }
            }
        }
        if !self.scopes.is_empty() {
            let held = lazy.scopes(req.headers);
            if !self.scopes.iter().all(|s| held.contains(&s.as_str())) {
                return false;
            }
        }
        if let Some(want) = &self.subject {
            let got = req.headers.get(X_SUBJECT).map(|v| v.as_bytes());
            if got != Some(want.as_bytes()) {
                return false;
            }
        }
        if !self.listeners.is_empty() && !self.listeners.iter().any(|l| l == req.listener) {
            return false;
        }
        true
    }
}

/// Parts of the request parsed on first use, once per lookup.
#[derive(Debug, Default)]
pub(crate) struct Lazy<'r> {
    query: OnceCell<Vec<(Cow<'r, str>, Cow<'r, str>)>>,
    cookies: OnceCell<Vec<(&'r str, &'r str)>>,
    scopes: OnceCell<Vec<&'r str>>,
}

impl<'r> Lazy<'r> {
    fn query(&self, q: Option<&'r str>) -> &[(Cow<'r, str>, Cow<'r, str>)] {
        self.query.get_or_init(|| parse_query(q.unwrap_or("")))
    }

    fn cookies(&self, h: &'r HeaderMap) -> &[(&'r str, &'r str)] {
        self.cookies
            .get_or_init(|| crate::headers::cookies(h).collect())
    }

    fn scopes(&self, h: &'r HeaderMap) -> &[&'r str] {
        self.scopes.get_or_init(|| {
            h.get_all(X_SCOPES)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split([' ', ',']))
                .filter(|s| !s.is_empty())
                .collect()
        })
    }
}

/// Query pairs, percent-decoded (`+` is a space, as in forms).
fn parse_query(q: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn value_match(v: &ValueMatchSettings, key: &str) -> Result<ValueMatch, MatchError> {
    match (&v.exact, &v.regex, v.present) {
        (None, None, None | Some(true)) => Ok(ValueMatch::Present),
        (None, None, Some(false)) => Ok(ValueMatch::Absent),
        (Some(e), None, None) => Ok(ValueMatch::Exact(e.clone())),
        (None, Some(r), None) => Regex::new(&format!("^(?:{r})$"))
            .map(ValueMatch::Regex)
            .map_err(|e| err(format!("{key}.regex"), regex_error(&e))),
        _ => Err(err(key, "use only one of `exact`, `regex` and `present`")),
    }
}

fn host_match(h: &str) -> Result<HostMatch, String> {
    let h = h.to_ascii_lowercase();
    if h == "*" {
        return Ok(HostMatch::Any);
    }
    let valid = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '[' | ']' | ':')
            })
    };
    if let Some(suffix) = h.strip_prefix("*.") {
        if !valid(suffix) || suffix.contains('*') {
            return Err(format!("invalid host pattern `{h}`: use `*.example.com`"));
        }
        return Ok(HostMatch::Suffix(format!(".{suffix}")));
    }
    if !valid(&h) || (h.contains(':') && !h.starts_with('[')) {
        return Err(format!(
            "invalid host `{h}`: an exact name, or `*.example.com` (the port is not part of it)"
        ));
    }
    Ok(HostMatch::Exact(h))
}
