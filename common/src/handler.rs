//! Route handlers: actions a binary offers beyond proxying (the internal gateway's aggregation,
//! transcoding, publishing), written as `tower::Service`s and built once per route at load.
//!
//! A route names one with `handler: {<kind>: <args>}`. The binary's [`crate::tier::Tier`]
//! lists the kinds it offers; the plan asks the kind to validate its args and build the
//! route's service, so a bad argument is refused at load with file, line and column like any
//! other key. A handler makes upstream calls of its own through the request's
//! [`Forward`] step: children of the request, with its id, trace, identity and deadline.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use http::Response;
use serde::de::DeserializeOwned;

use crate::body::ProxyBody;
use crate::config::{ConfigError, Source, did_you_mean_hint};
use crate::error::ProxyError;
use crate::forward::Forward;
use crate::identity;
use crate::template::{ValueTemplate, Vars};
use crate::upstream::service::Upstream;

/// What a handler is called with: the request after the tier's phases and routing.
#[derive(Debug)]
pub struct HandlerRequest {
    pub parts: http::request::Parts,
    /// The request body, within the request's body limit; read it only if the handler needs it.
    pub body: ProxyBody,
    /// The route's path captures, in the order of [`HandlerBuild::captures`].
    pub captures: Vec<Option<String>>,
    /// The route's name.
    pub route: Arc<str>,
    /// The host the client asked for, lower-case, without its port.
    pub host: Option<String>,
    /// Sends this request's child requests.
    pub forward: Forward,
}

impl HandlerRequest {
    /// The values a route template may use (`{id}`, `{request_id}`, `{subject}`...).
    pub fn vars(&self) -> Vars<'_> {
        Vars {
            captures: &self.captures,
            request_id: self.forward.request_id(),
            subject: self
                .parts
                .headers
                .get(identity::X_SUBJECT)
                .and_then(|v| v.to_str().ok()),
            route: &self.route,
            host: self.host.as_deref(),
            path: self.parts.uri.path(),
        }
    }
}

/// Put in a handler's response extensions: the parts of a composite answer that failed
/// (`reviews,stock`), for the parent's access-log line (`failed_parts`).
#[derive(Debug, Clone)]
pub struct FailedParts(pub Arc<str>);

/// A route's handler: one service per route, cloned per request.
pub type HandlerService =
    tower::util::BoxCloneSyncService<HandlerRequest, Response<ProxyBody>, ProxyError>;

/// A kind of handler a binary offers (`aggregate`, `transcode`, `publish`...).
pub trait HandlerKind: Send + Sync + Debug + 'static {
    /// The key a route names it by, under `handler`.
    fn name(&self) -> &'static str;

    /// Validates a route's arguments and builds its service: everything that can be decided
    /// per route (templates, service references, limits) is decided here, not per request.
    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError>;
}

/// The handler kinds of a plan, by name.
#[derive(Debug, Clone, Default)]
pub struct Handlers(Vec<Arc<dyn HandlerKind>>);

impl Handlers {
    pub fn new(kinds: impl IntoIterator<Item = Arc<dyn HandlerKind>>) -> Self {
        Handlers(kinds.into_iter().collect())
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn HandlerKind>> {
        self.0.iter().find(|k| k.name() == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|k| k.name())
    }
}

/// What [`HandlerKind::build`] is given for one route.
#[derive(Debug)]
pub struct HandlerBuild<'a> {
    /// The route's name.
    pub route: &'a str,
    /// The key path of the arguments (`routes[3].handler.envelope`), for errors.
    pub key: String,
    pub args: &'a serde_yaml::Value,
    /// The names of the route's path captures.
    pub captures: &'a [String],
    /// The route's overall timeout, if it sets one.
    pub timeout: Option<std::time::Duration>,
    pub source: &'a Source,
    pub services: &'a HashMap<String, Arc<Upstream>>,
}

impl HandlerBuild<'_> {
    /// The arguments as `T`; a type or an unknown key is refused at its own key path.
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        serde_path_to_error::deserialize(self.args.clone()).map_err(|e| {
            let path = e.path().to_string();
            let message = e.inner().to_string();
            let hint = crate::config::hint_for_unknown(&message);
            let key = match path.as_str() {
                "." | "" => self.key.clone(),
                p => format!("{}.{p}", self.key),
            };
            self.source.error_at_hint(&key, message, hint)
        })
    }

    /// An error at `key` under the arguments.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        self.source
            .error_at(&format!("{}.{key}", self.key), message)
    }

    /// The service named `name` (given at `key` under the arguments), or an error with a
    /// "did you mean".
    pub fn service(&self, key: &str, name: &str) -> Result<Arc<Upstream>, ConfigError> {
        self.services.get(name).cloned().ok_or_else(|| {
            self.source.error_at_hint(
                &format!("{}.{key}", self.key),
                format!("unknown service `{name}`"),
                did_you_mean_hint(name, self.services.keys().map(String::as_str)),
            )
        })
    }

    /// A value template (`/items/{id}`) over the route's captures, given at `key`.
    pub fn template(&self, key: &str, text: &str) -> Result<ValueTemplate, ConfigError> {
        ValueTemplate::parse(text, self.captures).map_err(|m| self.error(key, m))
    }
}
