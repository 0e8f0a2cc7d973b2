//! Picks the binding for an HTTP request: the most specific template that matches the path
//! with the request's method, or why none does (404 or 405 with the allowed methods).

use prost_reflect::DescriptorPool;

use super::{Binding, RuleError, service_bindings};
use crate::transcode::path_template::Specificity;

/// Every binding of a set of services, built once per load.
///
/// `find` tries the templates from the most specific down, so the cost per request is one
/// template match per binding tried (a split of the path and a `Vec` of variables), linear in
/// the number of bindings: fine for the tens a gateway serves per route.
#[derive(Debug, Clone)]
pub struct Router {
    /// In declaration order (services as listed, methods as declared).
    bindings: Vec<Binding>,
    /// Indices into `bindings`, most specific template first (stable: ties keep declaration
    /// order, so the first declared wins).
    order: Vec<usize>,
}

/// A binding chosen for a request, with the values its path variables took.
#[derive(Debug, Clone)]
pub struct Matched<'a> {
    pub binding: &'a Binding,
    /// `(field path, decoded value)` in template order.
    pub vars: Vec<(String, String)>,
}

/// Why no binding takes a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoMatch {
    /// No template matches the path: 404.
    NotFound,
    /// Templates match the path, with other methods (sorted): 405 with `Allow`. HEAD is not
    /// GET here: a rule for GET does not answer HEAD.
    MethodNotAllowed(Vec<http::Method>),
}

impl Router {
    /// The bindings of `services` (full names); with `default_bindings`, each method without a
    /// rule gets `POST /<package>.<Service>/<Method>`. Refuses an unknown service, a rule
    /// naming a field its messages lack, and two bindings with the same method and template
    /// shape (one of them could never be reached).
    pub fn new<S: AsRef<str>>(
        pool: &DescriptorPool,
        services: impl IntoIterator<Item = S>,
        default_bindings: bool,
    ) -> Result<Self, RuleError> {
        let mut bindings: Vec<Binding> = Vec::new();
        for service in services {
            for binding in service_bindings(pool, service.as_ref(), default_bindings)? {
                if let Some(first) = bindings
                    .iter()
                    .find(|b| b.verb == binding.verb && b.template.same_shape(&binding.template))
                {
                    return Err(RuleError::Duplicate {
                        verb: binding.verb.to_string(),
                        template: binding.template.to_string(),
                        first: first.method.full_name().to_owned(),
                        second: binding.method.full_name().to_owned(),
                    });
                }
                bindings.push(binding);
            }
        }
        let specificity: Vec<Specificity> =
            bindings.iter().map(|b| b.template.specificity()).collect();
        let mut order: Vec<usize> = (0..bindings.len()).collect();
        order.sort_by(|a, b| specificity[*b].cmp(&specificity[*a]));
        Ok(Router { bindings, order })
    }

    /// Every binding, in declaration order.
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The binding for `method` and `path` (the URI path, without the query).
    pub fn find(&self, method: &http::Method, path: &str) -> Result<Matched<'_>, NoMatch> {
        let mut allowed: Vec<http::Method> = Vec::new();
        for binding in self.order.iter().map(|i| &self.bindings[*i]) {
            if binding.verb != *method {
                if !allowed.contains(&binding.verb) && binding.template.matches(path).is_some() {
                    allowed.push(binding.verb.clone());
                }
                continue;
            }
            if let Some(vars) = binding.template.matches(path) {
                return Ok(Matched { binding, vars });
            }
        }
        if allowed.is_empty() {
            Err(NoMatch::NotFound)
        } else {
            allowed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            Err(NoMatch::MethodNotAllowed(allowed))
        }
    }
}
