//! Header- and path-level transformations of a route: prefix strip/replace, template
//! rewrite, host rewrite, and header add/set/remove with templated values.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

use super::path::PathPattern;
use crate::settings::{HeaderTransformSettings, RewriteSettings};
use crate::template::{ValueTemplate, Vars};

/// Header changes, applied in the order remove, set, add.
#[derive(Debug, Clone, Default)]
pub struct HeaderTransform {
    remove: Vec<HeaderName>,
    set: Vec<(HeaderName, ValueTemplate)>,
    add: Vec<(HeaderName, ValueTemplate)>,
}

impl HeaderTransform {
    /// Compiles `s`; errors name the key under the transform (`set.x-user`).
    pub fn compile(
        s: &HeaderTransformSettings,
        captures: &[String],
    ) -> Result<Self, (String, String)> {
        let name = |key: String, n: &str| {
            HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| (key, format!("invalid header name `{n}`")))
        };
        let values = |what: &str, map: &std::collections::BTreeMap<String, String>| {
            map.iter()
                .map(|(k, v)| {
                    let key = format!("{what}.{k}");
                    let n = name(key.clone(), k)?;
                    let t = ValueTemplate::parse(v, captures).map_err(|m| (key.clone(), m))?;
                    if let Some(lit) = t.literal()
                        && HeaderValue::try_from(lit).is_err()
                    {
                        return Err((key, format!("invalid header value `{lit}`")));
                    }
                    Ok((n, t))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let remove = s
            .remove
            .iter()
            .enumerate()
            .map(|(i, n)| name(format!("remove[{i}]"), n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(HeaderTransform {
            remove,
            set: values("set", &s.set)?,
            add: values("add", &s.add)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.set.is_empty() && self.add.is_empty()
    }

    /// Whether a value uses `{subject}`.
    pub fn uses_subject(&self) -> bool {
        self.set
            .iter()
            .chain(&self.add)
            .any(|(_, t)| t.uses_subject())
    }

    /// Applies the changes; a value that renders into an invalid header value is skipped.
    pub fn apply(&self, h: &mut HeaderMap, vars: &Vars<'_>) {
        for n in &self.remove {
            h.remove(n);
        }
        for (n, t) in &self.set {
            if let Some(v) = render(t, vars) {
                h.insert(n.clone(), v);
            }
        }
        for (n, t) in &self.add {
            if let Some(v) = render(t, vars) {
                h.append(n.clone(), v);
            }
        }
    }
}

fn render(t: &ValueTemplate, vars: &Vars<'_>) -> Option<HeaderValue> {
    let text = t.render(vars);
    match HeaderValue::try_from(text) {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::debug!(
                route = vars.route,
                "a header template rendered an invalid value; skipped"
            );
            None
        }
    }
}

/// How the path sent upstream is derived from the request's.
#[derive(Debug, Clone, Default)]
pub enum PathRewrite {
    #[default]
    None,
    /// The matched `path_prefix` (normalised, `prefix_len` bytes) is replaced by `with`
    /// (normalised without trailing `/`; `""` strips it).
    Prefix {
        prefix_len: usize,
        with: String,
    },
    Template(ValueTemplate),
}

/// A route's rewrites.
#[derive(Debug, Clone, Default)]
pub struct Rewrite {
    pub path: PathRewrite,
    /// The `Host` sent upstream.
    pub host: Option<HeaderValue>,
}

impl Rewrite {
    /// Compiles `s` for a route matching `path`; errors name the key under `rewrite`.
    pub fn compile(s: &RewriteSettings, path: &PathPattern) -> Result<Self, (String, String)> {
        let given = [
            ("strip_prefix", s.strip_prefix),
            ("prefix", s.prefix.is_some()),
            ("path", s.path.is_some()),
        ];
        let set: Vec<_> = given.iter().filter(|(_, on)| *on).collect();
        if set.len() > 1 {
            return Err((
                set[1].0.into(),
                format!(
                    "use only one of `strip_prefix`, `prefix` and `path` (`{}` is given too)",
                    set[0].0
                ),
            ));
        }
        let path_rewrite = match (s.strip_prefix, &s.prefix, &s.path) {
            (true, _, _) | (_, Some(_), _) => {
                let key = if s.strip_prefix {
                    "strip_prefix"
                } else {
                    "prefix"
                };
                let PathPattern::Prefix(p) = path else {
                    return Err((key.into(), format!("`{key}` needs `match.path_prefix`")));
                };
                let with = match &s.prefix {
                    Some(w) if !w.starts_with('/') => {
                        return Err(("prefix".into(), "must start with `/`".into()));
                    }
                    Some(w) => w.trim_end_matches('/').to_owned(),
                    None => String::new(),
                };
                PathRewrite::Prefix {
                    prefix_len: p.len(),
                    with,
                }
            }
            (_, _, Some(t)) => {
                if !t.starts_with('/') {
                    return Err(("path".into(), "must start with `/`".into()));
                }
                let t = ValueTemplate::parse(t, &path.capture_names())
                    .map_err(|m| ("path".into(), m))?;
                PathRewrite::Template(t)
            }
            _ => PathRewrite::None,
        };
        let host = match &s.host {
            Some(h) => Some(
                HeaderValue::try_from(h.as_str())
                    .map_err(|_| ("host".to_owned(), format!("invalid host `{h}`")))?,
            ),
            None => None,
        };
        Ok(Rewrite {
            path: path_rewrite,
            host,
        })
    }

    /// The new path for `path`, or `None` to keep it.
    pub fn path(&self, path: &str, vars: &Vars<'_>) -> Option<String> {
        match &self.path {
            PathRewrite::None => None,
            PathRewrite::Prefix { prefix_len, with } => {
                let rest = path.get(*prefix_len..).unwrap_or("");
                let mut out = String::with_capacity(with.len() + rest.len() + 1);
                out.push_str(with);
                out.push_str(rest);
                if !out.starts_with('/') {
                    out.insert(0, '/');
                }
                Some(out)
            }
            PathRewrite::Template(t) => Some(t.render(vars)),
        }
    }
}
