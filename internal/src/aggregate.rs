//! The `aggregate` route handler: one request, several service calls, one JSON answer — the
//! Aggregator and Backend-for-Frontend patterns, with a failure contract the same for every
//! route (docs/orchestration.md).
//!
//! ```yaml
//! routes:
//!   - name: web-product
//!     match: { path_template: /api/web/products/{id}, methods: [GET, HEAD] }
//!     timeout: 2s
//!     handler:
//!       aggregate:
//!         parts:
//!           - { name: product, service: catalog, path: "/products/{id}", required: true }
//!           - { name: stock, service: inventory, path: "/stock/{id}", required: false,
//!               timeout: 300ms, fallback: { available: 0, in_stock: false } }
//!           - name: related
//!             service: catalog
//!             path: /products
//!             query: { category: "{product:/category}" }
//!             required: false
//! ```
//!
//! Parts run in parallel; a part whose templates use `{part:/pointer}` waits for that earlier
//! part and takes the value from its answer. Each answer goes under the part's name:
//! `{"product": {…}, "stock": {…}, "related": {…}}`.
//!
//! The contract (the same for every aggregate):
//! - every part succeeds → 200;
//! - an optional part fails (≥ 500, another non-2xx, timeout, refused, breaker open, too large,
//!   not JSON, or skipped because a part it needs failed) → 200 with its key `null` (or its
//!   `fallback`), `x-gatehouse-partial: <failed names, sorted>`, `Cache-Control: no-store`, and
//!   `"errors": [{"part", "status", "title"}]` in the body;
//! - a required part answers 404 → 404; another 4xx → that status; fails otherwise → 502
//!   (`aggregate-part-failed`), or 504 when it ran out of time (`aggregate-part-timeout`);
//!   problem+json naming the part, and the answer goes out as soon as that is known;
//! - never later than the route's deadline: parts without a `timeout` get what is left of it,
//!   less a margin to build the answer.

mod run;
pub(crate) mod template;

use std::sync::Arc;
use std::time::Duration;

use gatehouse_common::config::{ByteSize, ConfigError, Duration as ConfigDuration};
use gatehouse_common::handler::{HandlerBuild, HandlerKind, HandlerRequest, HandlerService};
use gatehouse_common::upstream::service::Upstream;
use serde::Deserialize;
use serde_json::Value;

use crate::answer::Answer;
use crate::cache::{CacheSettings, Store};
use crate::proxy::build_shape;
use crate::shape::{Shape, ShapeSettings};
use crate::xml::XmlSettings;
use template::PartTemplate;

/// The `aggregate` kind.
#[derive(Debug)]
pub struct Aggregate {
    /// `internal.max_handler_body_bytes`: a part's default `max_body`.
    pub max_body_bytes: u64,
    /// The response cache every route shares.
    pub store: Arc<Store>,
}

/// A route's `handler.aggregate` arguments.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The calls to make, at least one.
    parts: Vec<PartArgs>,
    /// Shaping of the merged answer (before `errors` is added).
    #[serde(default)]
    shape: Option<ShapeSettings>,
    #[serde(default)]
    cache: Option<CacheSettings>,
    #[serde(default)]
    xml: Option<XmlSettings>,
}

/// One part.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartArgs {
    /// The key of its answer in the response, and its name in errors, logs and metrics.
    name: String,
    /// The service to call (a name under `services`).
    service: String,
    /// The path to request: the route's `{captures}`, built-ins, `{part:/pointer}`.
    path: String,
    /// Query parameters, values as templates like `path`'s.
    #[serde(default)]
    query: std::collections::BTreeMap<String, String>,
    /// Whether the whole answer fails with this part. Default true.
    #[serde(default = "yes")]
    required: bool,
    /// This part's own timeout, within the route's deadline.
    #[serde(default)]
    timeout: Option<ConfigDuration>,
    /// What an optional part's key holds when it fails. Default null.
    #[serde(default)]
    fallback: Option<Value>,
    /// The most read of its answer. Default `internal.max_handler_body_bytes`.
    #[serde(default)]
    max_body: Option<ByteSize>,
    /// A JSON pointer: only this member of the answer is kept (`/products`); missing → null.
    #[serde(default)]
    select: Option<String>,
    /// Shaping of this part's answer (after `select`).
    #[serde(default)]
    shape: Option<ShapeSettings>,
}

fn yes() -> bool {
    true
}

/// One route's compiled aggregate.
#[derive(Debug)]
struct Plan {
    route: Arc<str>,
    parts: Vec<Part>,
    shape: Option<Shape>,
    answer: Answer,
}

/// One compiled part.
#[derive(Debug)]
struct Part {
    name: Arc<str>,
    service: Arc<Upstream>,
    path: PartTemplate,
    /// Parameter names already percent-encoded.
    query: Vec<(String, PartTemplate)>,
    required: bool,
    fallback: Value,
    timeout: Option<Duration>,
    max_body: u64,
    /// Earlier parts it waits for, sorted, without repeats.
    deps: Vec<usize>,
    select: Option<String>,
    shape: Option<Shape>,
    /// Whether a later part takes values from its answer (then the raw answer is kept).
    needed: bool,
}

impl Part {
    /// The answer as the response holds it: `select`ed, then shaped.
    fn finish(&self, value: Value) -> Value {
        let value = match &self.select {
            Some(pointer) => value.pointer(pointer).cloned().unwrap_or(Value::Null),
            None => value,
        };
        match &self.shape {
            Some(shape) => shape.apply(value),
            None => value,
        }
    }
}

impl HandlerKind for Aggregate {
    fn name(&self) -> &'static str {
        "aggregate"
    }

    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        let args: Args = cx.args()?;
        if args.parts.is_empty() {
            return Err(cx.error("parts", "list at least one part"));
        }
        let mut parts: Vec<Part> = Vec::with_capacity(args.parts.len());
        for (i, p) in args.parts.into_iter().enumerate() {
            let key = |k: &str| format!("parts[{i}].{k}");
            if !valid_name(&p.name) {
                return Err(cx.error(
                    &key("name"),
                    "letters, digits, `_` and `-` only, and not `errors` (the key failures are \
                     listed under)",
                ));
            }
            if parts.iter().any(|q| *q.name == *p.name) {
                return Err(cx.error(&key("name"), format!("`{}` is used twice", p.name)));
            }
            if !p.path.starts_with('/') {
                return Err(cx.error(&key("path"), "must start with `/`"));
            }
            if p.required && p.fallback.is_some() {
                return Err(cx.error(
                    &key("fallback"),
                    "only an optional part (`required: false`) has a fallback",
                ));
            }
            let earlier: Vec<&str> = parts.iter().map(|q| &*q.name).collect();
            let path = PartTemplate::parse(&p.path, cx.captures, &earlier)
                .map_err(|m| cx.error(&key("path"), m))?;
            let mut query = Vec::with_capacity(p.query.len());
            for (name, value) in &p.query {
                let t = PartTemplate::parse(value, cx.captures, &earlier)
                    .map_err(|m| cx.error(&key(&format!("query.{name}")), m))?;
                query.push((crate::fetch::encode_segment(name), t));
            }
            let mut deps: Vec<usize> = path
                .deps()
                .chain(query.iter().flat_map(|(_, t)| t.deps()))
                .collect();
            deps.sort_unstable();
            deps.dedup();
            let timeout = p.timeout.map(|t| t.get());
            if let (Some(t), Some(route)) = (timeout, cx.timeout)
                && t > route
            {
                return Err(cx.error(
                    &key("timeout"),
                    format!("{t:?} is longer than the route's timeout ({route:?})"),
                ));
            }
            if let Some(sel) = &p.select
                && !sel.starts_with('/')
            {
                return Err(cx.error(&key("select"), "a JSON pointer: it starts with `/`"));
            }
            let shape = build_shape(cx, &key("shape"), p.shape.as_ref())?;
            let max_body = p.max_body.map_or(self.max_body_bytes, |b| b.get());
            if max_body == 0 {
                return Err(cx.error(&key("max_body"), "must be at least 1 byte"));
            }
            parts.push(Part {
                name: Arc::from(p.name),
                service: cx.service(&key("service"), &p.service)?,
                path,
                query,
                required: p.required,
                fallback: p.fallback.unwrap_or(Value::Null),
                timeout,
                max_body,
                deps,
                select: p.select,
                shape,
                needed: false,
            });
        }
        for i in 0..parts.len() {
            parts[i].needed = parts.iter().any(|q| q.deps.contains(&i));
        }
        let plan = Arc::new(Plan {
            route: Arc::from(cx.route),
            parts,
            shape: build_shape(cx, "shape", args.shape.as_ref())?,
            answer: Answer::build(
                cx,
                args.cache.as_ref(),
                args.xml.as_ref(),
                &self.store,
                self.max_body_bytes,
            )?,
        });
        let service = tower::service_fn(move |req: HandlerRequest| {
            let plan = plan.clone();
            async move { plan.serve(req).await }
        });
        Ok(HandlerService::new(service))
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "errors"
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
