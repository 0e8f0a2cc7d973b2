//! The route table shared by the tiers: named routes that match on host, path, method,
//! headers, query, cookies and the caller's identity; their actions (proxy, weighted split,
//! redirect, direct response, plus mirroring) and header/path transformations.
//!
//! **Specificity.** When several routes match, the most specific wins, compared in order:
//! 1. the path kind: exact `path` > `path_template` > `path_prefix` > `path_regex` > the
//!    catch-all `path_prefix: /` (also what a route without a path condition has), so that a
//!    default route does not hide the regex routes;
//! 2. within a kind: the longer prefix (bytes); for templates, more literal segments, then
//!    literals further left (`/users/{id}` beats `/{kind}/{id}`);
//! 3. more conditions: host, methods, each header, query parameter, cookie and scope, subject;
//! 4. the host: exact > `*.suffix` (longer first) > any;
//! 5. file order.
//!
//! The compiled [`Table`] finds the winner without scanning the routes (see its module).

mod action;
mod build;
mod matcher;
mod mirror;
mod path;
mod table;
mod transform;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

pub use crate::template::{ValueTemplate, Vars};
pub use action::{Action, DirectResponse, Redirect, RedirectTo, RequestUrl, Split};
pub use build::build;
pub use matcher::{HostMatch, MatchError, Matcher, RouteRequest, Specificity, ValueMatch};
pub use mirror::{MAX_BODY as MIRROR_MAX_BODY, MAX_IN_FLIGHT as MIRROR_MAX_IN_FLIGHT, Mirror};
pub use path::{PathPattern, Segment, Template};
pub use table::Table;
pub use transform::{HeaderTransform, PathRewrite, Rewrite};

use crate::settings::RouteSettings;
use crate::upstream::call::CallOptions;
use crate::upstream::retry::RetrySettings;

/// A compiled route (its match lives in the [`Table`], at the same index).
#[derive(Debug)]
pub struct Route {
    pub name: Arc<str>,
    /// Its request series, kept here so a request does not look them up by label.
    pub stats: Arc<crate::metrics::RouteStats>,
    pub action: Action,
    pub mirror: Option<Mirror>,
    pub rewrite: Rewrite,
    pub request_headers: HeaderTransform,
    pub response_headers: HeaderTransform,
    /// Route overrides of the service's retry policy and overall timeout.
    pub retry: Option<RetrySettings>,
    pub timeout: Option<Duration>,
    /// The settings it was built from (for `/routes`).
    pub settings: RouteSettings,
}

impl Route {
    /// The per-route overrides for [`crate::upstream::service::Upstream::call`].
    pub fn call_options(&self) -> CallOptions<'_> {
        CallOptions {
            retry: self.retry.as_ref(),
            timeout: self.timeout,
        }
    }

    /// Whether a transform uses `{subject}`.
    pub fn uses_subject(&self) -> bool {
        self.request_headers.uses_subject() || self.response_headers.uses_subject()
    }
}

/// The routes of a plan and their compiled table.
#[derive(Debug, Default)]
pub struct RouteTable {
    /// In file order.
    pub routes: Vec<Route>,
    pub table: Table,
}

/// A route chosen for a request, with the values its path captured.
#[derive(Debug)]
pub struct Matched<'a> {
    pub route: &'a Route,
    /// In the order of the route's capture names.
    pub captures: Vec<Option<String>>,
}

impl RouteTable {
    /// The most specific route for `req`.
    pub fn find(&self, req: &RouteRequest<'_>) -> Option<Matched<'_>> {
        let i = self.table.find(req)?;
        let captures = self
            .table
            .matcher(i)
            .map(|m| m.path.captures(req.path))
            .unwrap_or_default();
        Some(Matched {
            route: &self.routes[i],
            captures,
        })
    }

    /// Routes, most specific first.
    pub fn ranked(&self) -> impl Iterator<Item = &Route> {
        self.table.ranked().iter().map(|&i| &self.routes[i])
    }
}
