//! `google.api.http` rules read from the descriptor pool into [`Binding`]s, each checked
//! against the request and response messages at load, so a request never meets a rule that
//! names a missing field. The [`Router`] picks the binding of a request.
//!
//! A method without a rule gets no REST binding (it stays reachable over gRPC) unless the
//! router is built with `default_bindings`, which adds `POST /<package>.<Service>/<Method>`
//! with `body: "*"` to each such method, as Envoy's `auto_mapping` does. The rule's
//! `additional_bindings` are read one level deep (the spec forbids nesting them).

mod router;

use gatehouse_common::config::did_you_mean_hint;
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, ServiceDescriptor,
};

use crate::transcode::path_template::PathTemplate;

pub use router::{Matched, NoMatch, Router};

/// The method option that carries the rules.
const HTTP_EXTENSION: &str = "google.api.http";

/// One HTTP form of a gRPC method: a rule or one of its `additional_bindings`.
#[derive(Debug, Clone)]
pub struct Binding {
    /// The gRPC method called (its input and output types, its streaming kinds).
    pub method: MethodDescriptor,
    /// The HTTP method: GET, PUT, POST, DELETE, PATCH or a `custom` kind.
    pub verb: http::Method,
    pub template: PathTemplate,
    /// Where the request body goes.
    pub body: Body,
    /// The field of the response message sent as the HTTP body instead of the whole message.
    pub response_body: Option<FieldDescriptor>,
}

/// The `body` of a rule.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body: fields come from the path and the query.
    None,
    /// `"*"`: the body is the whole request message; every field not bound by the path is in
    /// it, so query parameters bind nothing (do not apply them).
    Whole,
    /// A top-level field of the request message (any type: a message, a repeated field...).
    Field(FieldDescriptor),
}

impl Binding {
    /// The field paths the path and the body bind, to pass as `bound` to
    /// [`apply_query`](crate::transcode::fields::apply_query): query parameters never
    /// override them.
    pub fn bound_fields(&self) -> Vec<String> {
        let mut bound: Vec<String> = self.template.variables().map(str::to_owned).collect();
        if let Body::Field(field) = &self.body {
            bound.push(field.name().to_owned());
        }
        bound
    }
}

/// A rule that cannot be served. `Display` is the message; [`RuleError::hint`] a "did you
/// mean" to show beside it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error(
        "unknown gRPC service `{name}`; the descriptors define {}",
        list(known)
    )]
    UnknownService {
        name: String,
        /// Every service of the pool, sorted.
        known: Vec<String>,
        hint: Option<String>,
    },
    #[error("{method}: rule `{rule}`: {message}")]
    Invalid {
        /// The method's full name.
        method: String,
        /// The rule as `VERB /template`.
        rule: String,
        message: String,
        hint: Option<String>,
    },
    #[error("`{verb} {template}` is bound twice: by {first} and by {second}")]
    Duplicate {
        verb: String,
        template: String,
        first: String,
        second: String,
    },
}

impl RuleError {
    /// A suggestion such as "did you mean `order_id`?".
    pub fn hint(&self) -> Option<&str> {
        match self {
            RuleError::UnknownService { hint, .. } | RuleError::Invalid { hint, .. } => {
                hint.as_deref()
            }
            RuleError::Duplicate { .. } => None,
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no service".to_owned()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The bindings of every method of `service` (a full name such as `shop.orders.v1.Orders`),
/// in declaration order, each rule before its additional bindings.
pub fn service_bindings(
    pool: &DescriptorPool,
    service: &str,
    default_bindings: bool,
) -> Result<Vec<Binding>, RuleError> {
    let service = find_service(pool, service)?;
    let extension = pool.get_extension_by_name(HTTP_EXTENSION);
    let mut bindings = Vec::new();
    for method in service.methods() {
        let rule = extension.as_ref().and_then(|ext| http_rule(&method, ext));
        match rule {
            Some(rule) => {
                bindings.push(binding(&method, &rule)?);
                bindings.extend(additional_bindings(&method, &rule)?);
            }
            None if default_bindings => bindings.push(default_binding(&method)?),
            None => {}
        }
    }
    Ok(bindings)
}

/// A rule's `additional_bindings`, which may not have their own.
fn additional_bindings(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
) -> Result<Vec<Binding>, RuleError> {
    let Some(additional) = rule.get_field_by_name("additional_bindings") else {
        return Ok(Vec::new());
    };
    let mut bindings = Vec::new();
    for extra in additional.as_list().unwrap_or_default() {
        let Some(extra) = extra.as_message() else {
            continue;
        };
        let binding = binding(method, extra)?;
        let nested = extra
            .get_field_by_name("additional_bindings")
            .is_some_and(|v| v.as_list().is_some_and(|l| !l.is_empty()));
        if nested {
            let message = "an additional binding cannot have additional bindings".to_owned();
            let path = binding.template.as_str();
            return Err(invalid(method, &binding.verb, path, message, None));
        }
        bindings.push(binding);
    }
    Ok(bindings)
}

fn find_service(pool: &DescriptorPool, name: &str) -> Result<ServiceDescriptor, RuleError> {
    if let Some(service) = pool.get_service_by_name(name) {
        return Ok(service);
    }
    let mut known: Vec<String> = pool.services().map(|s| s.full_name().to_owned()).collect();
    known.sort();
    let hint = did_you_mean_hint(name, known.iter().map(String::as_str));
    Err(RuleError::UnknownService {
        name: name.to_owned(),
        known,
        hint,
    })
}

/// The method's `google.api.http` option, if it has one.
fn http_rule(method: &MethodDescriptor, extension: &ExtensionDescriptor) -> Option<DynamicMessage> {
    let options = method.options();
    if !options.has_extension(extension) {
        return None;
    }
    options.get_extension(extension).as_message().cloned()
}

/// One rule (without its additional bindings), checked against the method's messages.
fn binding(method: &MethodDescriptor, rule: &DynamicMessage) -> Result<Binding, RuleError> {
    let (verb, path) = pattern(method, rule)?;
    let fail = |message: String, hint: Option<String>| invalid(method, &verb, &path, message, hint);

    let template = PathTemplate::parse(&path).map_err(|e| fail(e, None))?;
    let input = method.input();
    for variable in template.variables() {
        path_field(&input, variable).map_err(|(message, hint)| fail(message, hint))?;
    }
    let body = match string_field(rule, "body").as_str() {
        "" => Body::None,
        "*" => Body::Whole,
        name => Body::Field(
            top_field(&input, name, "body").map_err(|(message, hint)| fail(message, hint))?,
        ),
    };
    let response_body = match string_field(rule, "response_body").as_str() {
        "" => None,
        name => Some(
            top_field(&method.output(), name, "response_body")
                .map_err(|(message, hint)| fail(message, hint))?,
        ),
    };
    Ok(Binding {
        method: method.clone(),
        verb,
        template,
        body,
        response_body,
    })
}

/// The HTTP method and path template text of a rule.
fn pattern(
    method: &MethodDescriptor,
    rule: &DynamicMessage,
) -> Result<(http::Method, String), RuleError> {
    let simple = [
        ("get", http::Method::GET),
        ("put", http::Method::PUT),
        ("post", http::Method::POST),
        ("delete", http::Method::DELETE),
        ("patch", http::Method::PATCH),
    ];
    if let Some((name, verb)) = simple.into_iter().find(|(n, _)| rule.has_field_by_name(n)) {
        return Ok((verb, string_field(rule, name)));
    }
    let custom = rule
        .get_field_by_name("custom")
        .filter(|_| rule.has_field_by_name("custom"))
        .and_then(|v| v.as_message().cloned());
    let Some(custom) = custom else {
        return Err(RuleError::Invalid {
            method: method.full_name().to_owned(),
            rule: String::new(),
            message: "the rule has no pattern (get, put, post, delete, patch or custom)".to_owned(),
            hint: None,
        });
    };
    let (kind, path) = (string_field(&custom, "kind"), string_field(&custom, "path"));
    match http::Method::from_bytes(kind.as_bytes()) {
        Ok(verb) if !kind.is_empty() => Ok((verb, path)),
        _ => Err(RuleError::Invalid {
            method: method.full_name().to_owned(),
            rule: format!("{kind} {path}"),
            message: format!("custom kind `{kind}` is not an HTTP method"),
            hint: None,
        }),
    }
}

/// A string field of a rule; empty when unset, as proto3 reads it.
fn string_field(message: &DynamicMessage, name: &str) -> String {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `POST /<package>.<Service>/<Method>` with the whole message as body.
fn default_binding(method: &MethodDescriptor) -> Result<Binding, RuleError> {
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    let template = PathTemplate::parse(&path)
        .map_err(|e| invalid(method, &http::Method::POST, &path, e, None))?;
    Ok(Binding {
        method: method.clone(),
        verb: http::Method::POST,
        template,
        body: Body::Whole,
        response_body: None,
    })
}

fn invalid(
    method: &MethodDescriptor,
    verb: &http::Method,
    path: &str,
    message: String,
    hint: Option<String>,
) -> RuleError {
    RuleError::Invalid {
        method: method.full_name().to_owned(),
        rule: format!("{verb} {path}"),
        message,
        hint,
    }
}

type FieldProblem = (String, Option<String>);

/// The leaf of a path variable: singular messages down to a singular scalar or enum.
fn path_field(message: &MessageDescriptor, path: &str) -> Result<FieldDescriptor, FieldProblem> {
    let mut current = message.clone();
    let mut names = path.split('.').peekable();
    while let Some(name) = names.next() {
        let field = field_of(&current, name, &format!("path variable `{path}`"))?;
        let last = names.peek().is_none();
        match field.kind() {
            Kind::Message(inner) if !last && !field.is_list() && !field.is_map() => {
                current = inner;
            }
            _ if !last => {
                return Err((
                    format!(
                        "path variable `{path}`: `{name}` of {} is not a singular message",
                        current.full_name()
                    ),
                    None,
                ));
            }
            Kind::Message(_) => {
                return Err((
                    format!(
                        "path variable `{path}`: `{name}` is a message; a path variable binds a \
                         scalar or enum field"
                    ),
                    None,
                ));
            }
            _ if field.is_list() => {
                return Err((
                    format!(
                        "path variable `{path}`: `{name}` is repeated; a path variable binds a \
                         singular field"
                    ),
                    None,
                ));
            }
            _ => return Ok(field),
        }
    }
    Err((format!("path variable `{path}` is empty"), None))
}

/// A top-level field named by `body` or `response_body`.
fn top_field(
    message: &MessageDescriptor,
    name: &str,
    what: &str,
) -> Result<FieldDescriptor, FieldProblem> {
    if name.contains('.') {
        return Err((
            format!(
                "{what} `{name}` must name a top-level field of {}",
                message.full_name()
            ),
            None,
        ));
    }
    field_of(message, name, &format!("{what} `{name}`"))
}

fn field_of(
    message: &MessageDescriptor,
    name: &str,
    what: &str,
) -> Result<FieldDescriptor, FieldProblem> {
    message.get_field_by_name(name).ok_or_else(|| {
        let names: Vec<String> = message.fields().map(|f| f.name().to_owned()).collect();
        (
            format!("{what}: {} has no field `{name}`", message.full_name()),
            did_you_mean_hint(name, names.iter().map(String::as_str)),
        )
    })
}

#[cfg(test)]
mod tests;
