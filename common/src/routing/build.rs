//! Validation of the `routes` section into a [`RouteTable`]: every error names its key path
//! (`routes[3].match.path_regex`), and unknown services get a "did you mean".

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http::header::HeaderValue;

use super::action::{Action, DirectResponse, Redirect, RedirectTo, Split};
use super::matcher::Matcher;
use super::mirror::Mirror;
use super::transform::{HeaderTransform, Rewrite};
use super::{Route, RouteTable, Table};
use crate::config::{ConfigError, Source, did_you_mean, did_you_mean_hint};
use crate::handler::{HandlerBuild, Handlers};
use crate::settings::{ProxySettings, RouteSettings};
use crate::template::ValueTemplate;
use crate::tls::SpiffeId;
use crate::upstream::balance::{BalancerKind, BalancerSettings};
use crate::upstream::service::Upstream;

/// Builds the route table of `s`; also checks the listeners' `trusted_gateways`. Routes with a
/// `handler` are built by the kind of that name in `handlers` (the binary's).
pub fn build(
    s: &ProxySettings,
    src: &Source,
    services: &HashMap<String, Arc<Upstream>>,
    handlers: &Handlers,
) -> Result<RouteTable, ConfigError> {
    check_trusted_gateways(s, src)?;
    let mut names = HashSet::new();
    let mut routes = Vec::with_capacity(s.routes.len());
    let mut matchers = Vec::with_capacity(s.routes.len());
    for (i, r) in s.routes.iter().enumerate() {
        let at = |key: &str| format!("routes[{i}].{key}");
        if !names.insert(r.name.as_str()) {
            return Err(src.error_at(&at("name"), format!("duplicate route name `{}`", r.name)));
        }
        for (j, l) in r.matches.listeners.iter().enumerate() {
            if !s.listeners.iter().any(|x| x.name == *l) {
                let hint = crate::config::did_you_mean_hint(
                    l,
                    s.listeners.iter().map(|x| x.name.as_str()),
                );
                return Err(src.error_at_hint(
                    &at(&format!("match.listeners[{j}]")),
                    format!("no listener is named `{l}`"),
                    hint,
                ));
            }
        }
        let matcher = Matcher::compile(&r.matches)
            .map_err(|e| src.error_at(&at(&format!("match.{}", e.key)), e.message))?;
        let cx = RouteBuild {
            src,
            at: &at,
            services,
            handlers,
        };
        routes.push(route(r, &matcher, &cx)?);
        matchers.push(matcher);
    }
    Ok(RouteTable {
        routes,
        table: Table::new(matchers),
    })
}

/// What building one route needs besides its settings.
struct RouteBuild<'a> {
    src: &'a Source,
    at: &'a dyn Fn(&str) -> String,
    services: &'a HashMap<String, Arc<Upstream>>,
    handlers: &'a Handlers,
}

fn route(r: &RouteSettings, matcher: &Matcher, cx: &RouteBuild<'_>) -> Result<Route, ConfigError> {
    let (src, at, services) = (cx.src, cx.at, cx.services);
    let service = |name: &str, key: &str| {
        services.get(name).cloned().ok_or_else(|| {
            let hint = did_you_mean(name, services.keys().map(String::as_str));
            src.error_at_hint(
                &at(key),
                format!("unknown service `{name}`"),
                hint.map(|h| format!("did you mean `{h}`?")),
            )
        })
    };
    let actions: Vec<&str> = [
        ("service", r.service.is_some()),
        ("split", r.split.is_some()),
        ("redirect", r.redirect.is_some()),
        ("direct_response", r.direct_response.is_some()),
        ("handler", r.handler.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, on)| on.then_some(k))
    .collect();
    match actions.as_slice() {
        [] => {
            let key = at("name");
            return Err(src.error_at(
                key.strip_suffix(".name").unwrap_or(&key),
                "a route needs an action: `service`, `split`, `redirect`, `direct_response` or \
                 `handler`",
            ));
        }
        [_] => {}
        [first, second, ..] => {
            return Err(src.error_at(
                &at(second),
                format!("a route has one action: `{first}` is given too"),
            ));
        }
    }
    let proxies = r.service.is_some() || r.split.is_some();
    let captures = matcher.path.capture_names();
    let action = if let Some(name) = &r.service {
        Action::Proxy(service(name, "service")?)
    } else if let Some(targets) = &r.split {
        if targets.is_empty() {
            return Err(src.error_at(&at("split"), "needs at least one `{service, weight}`"));
        }
        let mut list = Vec::with_capacity(targets.len());
        for (j, t) in targets.iter().enumerate() {
            list.push((
                service(&t.service, &format!("split[{j}].service"))?,
                t.weight,
            ));
        }
        if targets.iter().all(|t| t.weight == 0) {
            return Err(src.error_at(&at("split"), "the weights add up to 0"));
        }
        let sticky = match &r.sticky {
            None => None,
            Some(h) => match BalancerSettings::from_parts(BalancerKind::ConsistentHash, Some(h)) {
                Ok(BalancerSettings::ConsistentHash(key)) => Some(key),
                _ => {
                    return Err(src.error_at(
                        &at("sticky"),
                        "`sticky` needs exactly one of `header` or `cookie`",
                    ));
                }
            },
        };
        Action::Split(Split::new(list, sticky))
    } else if let Some(rd) = &r.redirect {
        Action::Redirect(redirect(rd, &captures, src, at)?)
    } else if let Some(d) = &r.direct_response {
        if !(200..=599).contains(&d.status) {
            return Err(src.error_at(&at("direct_response.status"), "must be 200 to 599"));
        }
        let content_type = match (&d.content_type, &d.body) {
            (Some(ct), _) => Some(HeaderValue::try_from(ct.as_str()).map_err(|_| {
                src.error_at(&at("direct_response.content_type"), "invalid header value")
            })?),
            (None, Some(_)) => Some(HeaderValue::from_static("text/plain; charset=utf-8")),
            (None, None) => None,
        };
        Action::DirectResponse(DirectResponse {
            status: StatusCode::from_u16(d.status).unwrap_or(StatusCode::OK),
            body: Bytes::from(d.body.clone().unwrap_or_default()),
            content_type,
        })
    } else if let Some(h) = &r.handler {
        handler(r, h, &captures, cx)?
    } else {
        unreachable!("one action is given")
    };
    if r.sticky.is_some() && r.split.is_none() {
        return Err(src.error_at(&at("sticky"), "`sticky` is used only with `split`"));
    }
    for (key, given) in [
        ("mirror", r.mirror.is_some()),
        ("rewrite", r.rewrite.is_some()),
        ("request_headers", r.request_headers.is_some()),
        ("retry", r.retry.is_some()),
        ("timeout", r.timeout.is_some() && r.handler.is_none()),
    ] {
        if given && !proxies {
            return Err(src.error_at(
                &at(key),
                format!("`{key}` applies only to routes that proxy (`service` or `split`)"),
            ));
        }
    }
    let mirror = match &r.mirror {
        None => None,
        Some(m) => {
            if !(0.0..=100.0).contains(&m.percent) {
                return Err(src.error_at(&at("mirror.percent"), "must be between 0 and 100"));
            }
            Some(Mirror::new(
                service(&m.service, "mirror.service")?,
                m.percent,
            ))
        }
    };
    let rewrite = match &r.rewrite {
        None => Rewrite::default(),
        Some(rw) => Rewrite::compile(rw, &matcher.path)
            .map_err(|(k, m)| src.error_at(&at(&format!("rewrite.{k}")), m))?,
    };
    let headers = |key: &str, s: &Option<crate::settings::HeaderTransformSettings>| match s {
        None => Ok(HeaderTransform::default()),
        Some(s) => HeaderTransform::compile(s, &captures)
            .map_err(|(k, m)| src.error_at(&at(&format!("{key}.{k}")), m)),
    };
    if let Some(retry) = &r.retry
        && retry.max_attempts == 0
    {
        return Err(src.error_at(
            &at("retry.max_attempts"),
            "must be at least 1 (1 disables retries)",
        ));
    }
    let name: Arc<str> = Arc::from(r.name.as_str());
    Ok(Route {
        stats: Arc::new(crate::metrics::RouteStats::new(name.clone())),
        name,
        action,
        mirror,
        rewrite,
        request_headers: headers("request_headers", &r.request_headers)?,
        response_headers: headers("response_headers", &r.response_headers)?,
        retry: r.retry.clone(),
        timeout: r.timeout.map(|t| t.get()),
        settings: r.clone(),
    })
}

/// A `handler: {<kind>: <args>}` action, built by the binary's kind of that name.
fn handler(
    r: &RouteSettings,
    h: &std::collections::BTreeMap<String, serde_yaml::Value>,
    captures: &[String],
    cx: &RouteBuild<'_>,
) -> Result<Action, ConfigError> {
    let (src, at) = (cx.src, cx.at);
    let mut kinds = h.iter();
    let (Some((name, args)), None) = (kinds.next(), kinds.next()) else {
        return Err(src.error_at(
            &at("handler"),
            "`handler` names exactly one kind: `handler: {<kind>: <args>}`",
        ));
    };
    let key = at(&format!("handler.{name}"));
    let Some(kind) = cx.handlers.get(name) else {
        let offered: Vec<&str> = cx.handlers.names().collect();
        let message = match offered.as_slice() {
            [] => format!("unknown handler `{name}`: this binary offers no route handlers"),
            list => format!(
                "unknown handler `{name}`: this binary offers `{}`",
                list.join("`, `")
            ),
        };
        return Err(src.error_at_hint(&key, message, did_you_mean_hint(name, offered)));
    };
    let service = kind.build(&HandlerBuild {
        route: &r.name,
        key,
        args,
        captures,
        timeout: r.timeout.map(|t| t.get()),
        source: src,
        services: cx.services,
    })?;
    Ok(Action::Handler {
        kind: kind.name(),
        service,
    })
}

fn redirect(
    rd: &crate::settings::RedirectSettings,
    captures: &[String],
    src: &Source,
    at: &dyn Fn(&str) -> String,
) -> Result<Redirect, ConfigError> {
    let status = rd.status.unwrap_or(301);
    if ![301, 302, 303, 307, 308].contains(&status) {
        return Err(src.error_at(
            &at("redirect.status"),
            format!("{status} is not a redirect status: use 301, 302, 303, 307 or 308"),
        ));
    }
    let template = |key: &str, t: &str| {
        ValueTemplate::parse(t, captures)
            .map_err(|m| src.error_at(&at(&format!("redirect.{key}")), m))
    };
    let to = match &rd.location {
        Some(loc) => {
            if rd.scheme.is_some() || rd.host.is_some() || rd.port.is_some() || rd.path.is_some() {
                return Err(src.error_at(
                    &at("redirect.location"),
                    "use either `location` or `scheme`/`host`/`port`/`path`, not both",
                ));
            }
            RedirectTo::Location(template("location", loc)?)
        }
        None => {
            if rd.scheme.is_none() && rd.host.is_none() && rd.port.is_none() && rd.path.is_none() {
                return Err(src.error_at(
                    &at("redirect"),
                    "give `location`, or at least one of `scheme`, `host`, `port` and `path`",
                ));
            }
            if let Some(s) = &rd.scheme
                && s != "http"
                && s != "https"
            {
                return Err(src.error_at(&at("redirect.scheme"), "must be `http` or `https`"));
            }
            let path = match &rd.path {
                Some(p) if !p.starts_with('/') => {
                    return Err(src.error_at(&at("redirect.path"), "must start with `/`"));
                }
                Some(p) => Some(template("path", p)?),
                None => None,
            };
            RedirectTo::Parts {
                scheme: rd.scheme.clone(),
                host: rd.host.clone(),
                port: rd.port,
                path,
                strip_query: rd.strip_query,
            }
        }
    };
    Ok(Redirect {
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY),
        to,
    })
}

/// Trusted gateways are SPIFFE IDs, and only an mTLS listener learns its peer's.
fn check_trusted_gateways(s: &ProxySettings, src: &Source) -> Result<(), ConfigError> {
    for (i, l) in s.listeners.iter().enumerate() {
        if l.trusted_gateways.is_empty() {
            continue;
        }
        if l.tls.as_ref().is_none_or(|t| t.client_ca.is_none()) {
            return Err(src.error_at(
                &format!("listeners[{i}].trusted_gateways"),
                "needs an mTLS listener (`tls.client_ca`): only then is the peer's identity known",
            ));
        }
        for (j, id) in l.trusted_gateways.iter().enumerate() {
            if let Err(e) = SpiffeId::parse(id) {
                return Err(src.error_at(
                    &format!("listeners[{i}].trusted_gateways[{j}]"),
                    format!("`{id}` is not a SPIFFE ID: {e}"),
                ));
            }
        }
    }
    Ok(())
}
