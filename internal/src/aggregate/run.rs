//! Running an aggregate for one request: parts in parallel as soon as the parts they need have
//! answered, each a child request through the forward step, then the answer by the contract.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use gatehouse_common::body::{ProxyBody, full};
use gatehouse_common::error::ProxyError;
use gatehouse_common::forward::{Forward, ForwardRequest};
use gatehouse_common::handler::{FailedParts, HandlerRequest};
use gatehouse_common::metrics::{PartLabels, status_class};
use gatehouse_common::routing::Vars;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::{Part, Plan};
use crate::cache::X_PARTIAL;
use crate::fetch::{is_json, read_limited};

/// Time kept back from the route's deadline to build and send the answer: a part without a
/// timeout of its own fails as timed out this much before the route would.
const MARGIN_MAX: Duration = Duration::from_millis(50);

/// How one part ended.
#[derive(Debug)]
enum Outcome {
    Answered {
        value: Value,
        /// Its freshness lifetime in seconds, when it gave a usable one.
        max_age: Option<u64>,
    },
    Failed(Failure),
}

/// A part's failure: the status it counts as, what a client may be told, and the whole story.
#[derive(Debug)]
struct Failure {
    status: StatusCode,
    title: String,
    reason: String,
}

impl Failure {
    fn new(status: StatusCode, title: impl Into<String>, reason: impl Into<String>) -> Self {
        Failure {
            status,
            title: title.into(),
            reason: reason.into(),
        }
    }

    /// What the forward step's error means for a part.
    fn from_error(err: &ProxyError) -> Self {
        let (status, title) = match err {
            ProxyError::UpstreamTimeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "timed out"),
            ProxyError::UpstreamConnect { .. } => (StatusCode::BAD_GATEWAY, "could not be reached"),
            ProxyError::UpstreamProtocol { .. } => (StatusCode::BAD_GATEWAY, "failed mid-answer"),
            ProxyError::NoEndpoints { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "has no endpoint available")
            }
            ProxyError::Overloaded { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "is overloaded (circuit open)",
            ),
            _ => (StatusCode::BAD_GATEWAY, "failed"),
        };
        Failure::new(status, title, gatehouse_common::error::chain(err))
    }
}

impl Plan {
    pub(super) async fn serve(
        &self,
        req: HandlerRequest,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // The request's body is not needed: parts are GETs. Only what templates use is kept
        // (the body is not `Sync`, so it must not live across the parts' awaits).
        let vars = req.vars();
        let subject = vars.subject.map(str::to_owned);
        let HandlerRequest {
            parts,
            body,
            captures,
            route,
            host,
            forward,
        } = req;
        drop(body);
        let vars = Vars {
            captures: &captures,
            request_id: forward.request_id(),
            subject: subject.as_deref(),
            route: &route,
            host: host.as_deref(),
            path: parts.uri.path(),
        };
        let format = self.answer.format(&parts)?;
        let produce = || async {
            let outcomes = self.run(&vars, &forward).await?;
            self.merge(outcomes)
        };
        self.answer
            .serve(&parts, vars.host, &forward, format, produce)
            .await
    }

    /// Runs the parts; stops early (dropping the others) when a required part fails.
    async fn run(&self, vars: &Vars<'_>, forward: &Forward) -> Result<Vec<Outcome>, ProxyError> {
        let n = self.parts.len();
        let mut outcomes: Vec<Option<Outcome>> = (0..n).map(|_| None).collect();
        // Each answered part's JSON, for the templates of the parts that wait for it.
        let mut answers: Vec<Option<Value>> = vec![None; n];
        let mut started = vec![false; n];
        let mut running = FuturesUnordered::new();
        // A part without a timeout of its own must fail before the route's deadline does, or
        // one slow optional part would turn the whole answer into a 504.
        let budget = forward.remaining().map(|left| left - margin(left));
        loop {
            let mut progress = true;
            while progress {
                progress = false;
                for i in 0..n {
                    if started[i] || self.parts[i].deps.iter().any(|d| outcomes[*d].is_none()) {
                        continue;
                    }
                    started[i] = true;
                    progress = true;
                    let part = &self.parts[i];
                    match self.prepare(part, vars, &answers, &outcomes) {
                        Ok(uri) => {
                            let timeout = match (part.timeout, budget) {
                                (Some(t), Some(b)) => Some(t.min(b)),
                                (t, b) => t.or(b),
                            };
                            let call = self.call(part, uri, timeout, forward.clone());
                            running.push(async move { (i, call.await) });
                        }
                        Err(failure) => {
                            self.record(part, Some(&failure), Duration::ZERO, forward);
                            if part.required {
                                return Err(failed(part, failure));
                            }
                            outcomes[i] = Some(Outcome::Failed(failure));
                        }
                    }
                }
            }
            let Some((i, outcome)) = running.next().await else {
                break;
            };
            let part = &self.parts[i];
            let outcome = match outcome {
                Outcome::Answered { value, max_age } => {
                    if part.needed {
                        answers[i] = Some(value.clone());
                    }
                    Outcome::Answered {
                        value: part.finish(value),
                        max_age,
                    }
                }
                Outcome::Failed(failure) if part.required => return Err(failed(part, failure)),
                failed @ Outcome::Failed(_) => failed,
            };
            outcomes[i] = Some(outcome);
        }
        Ok(outcomes.into_iter().flatten().collect())
    }

    /// The part's URI, or why it cannot be asked (a part it needs failed or lacks the value).
    fn prepare(
        &self,
        part: &Part,
        vars: &Vars<'_>,
        answers: &[Option<Value>],
        outcomes: &[Option<Outcome>],
    ) -> Result<String, Failure> {
        if let Some(d) = part.deps.iter().find(|d| answers[**d].is_none()) {
            let dep = &self.parts[*d].name;
            return Err(Failure::new(
                StatusCode::FAILED_DEPENDENCY,
                format!("skipped: part `{dep}` failed"),
                format!("skipped: part `{dep}` it needs failed"),
            ));
        }
        debug_assert!(part.deps.iter().all(|d| outcomes[*d].is_some()));
        let skipped = |m: super::template::Missing| {
            let dep = &self.parts[m.part].name;
            let text = format!("skipped: part `{dep}` has no value at `{}`", m.pointer);
            Failure::new(StatusCode::FAILED_DEPENDENCY, text.clone(), text)
        };
        let mut uri = part.path.render(vars, answers).map_err(skipped)?;
        for (n, (name, value)) in part.query.iter().enumerate() {
            uri.push(if n == 0 { '?' } else { '&' });
            uri.push_str(name);
            uri.push('=');
            uri.push_str(&value.render(vars, answers).map_err(skipped)?);
        }
        Ok(uri)
    }

    /// Asks one part, in a span of its own, and counts it.
    async fn call(
        &self,
        part: &Part,
        uri: String,
        timeout: Option<Duration>,
        forward: Forward,
    ) -> Outcome {
        let span = tracing::info_span!("aggregate_part", route = %self.route, part = %part.name);
        let start = Instant::now();
        let outcome = ask(part, uri, timeout, &forward).instrument(span).await;
        let failure = match &outcome {
            Outcome::Answered { .. } => None,
            Outcome::Failed(f) => Some(f),
        };
        self.record(part, failure, start.elapsed(), &forward);
        outcome
    }

    /// Counts a part's outcome (by route, part and status class) and logs a failure with the
    /// request id: the client saw only the part's name and a title.
    fn record(&self, part: &Part, failure: Option<&Failure>, took: Duration, forward: &Forward) {
        let status = failure.map_or(StatusCode::OK, |f| f.status);
        if let Some(f) = failure {
            tracing::warn!(
                request_id = forward.request_id(),
                route = %self.route,
                part = %part.name,
                required = part.required,
                status = f.status.as_u16(),
                reason = %f.reason,
                "aggregate part failed"
            );
        }
        let labels = PartLabels {
            route: self.route.clone(),
            part: part.name.clone(),
            status_class: status_class(status.as_u16()),
        };
        let metrics = forward.metrics();
        metrics.parts.get_or_create(&labels).inc();
        metrics
            .part_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// The answer from every part's outcome (no required part failed): each under its name,
    /// shaped by the route, then the failures under `errors` (never shaped away).
    fn merge(&self, outcomes: Vec<Outcome>) -> Result<Response<ProxyBody>, ProxyError> {
        let mut body = Map::new();
        let mut errors = Vec::new();
        let mut failed: Vec<&str> = Vec::new();
        let mut max_age: Option<u64> = Some(u64::MAX);
        for (part, outcome) in self.parts.iter().zip(outcomes) {
            match outcome {
                Outcome::Answered { value, max_age: m } => {
                    max_age = max_age.zip(m).map(|(a, b)| a.min(b));
                    body.insert(part.name.to_string(), value);
                }
                Outcome::Failed(f) => {
                    errors.push(json!({
                        "part": &*part.name,
                        "status": f.status.as_u16(),
                        "title": f.title,
                    }));
                    failed.push(&part.name);
                    body.insert(part.name.to_string(), part.fallback.clone());
                }
            }
        }
        let partial = !failed.is_empty();
        let mut body = Value::Object(body);
        if let Some(shape) = &self.shape {
            body = shape.apply(body);
        }
        if partial && let Value::Object(members) = &mut body {
            members.insert("errors".into(), Value::Array(errors));
        }
        let bytes = serde_json::to_vec(&body).map_err(|e| ProxyError::BadUpstreamResponse {
            service: format!("aggregate (route {})", self.route),
            reason: format!("the answer could not be encoded: {e}"),
        })?;
        let mut res = Response::new(full(Bytes::from(bytes)));
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if partial {
            failed.sort_unstable();
            let names = failed.join(",");
            if let Ok(v) = HeaderValue::try_from(names.as_str()) {
                h.insert(X_PARTIAL, v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res.extensions_mut().insert(FailedParts(Arc::from(names)));
        } else {
            let cc = match max_age {
                Some(secs) => HeaderValue::try_from(format!("max-age={secs}")),
                None => Ok(HeaderValue::from_static("no-store")),
            };
            if let Ok(v) = cc {
                res.headers_mut().insert(header::CACHE_CONTROL, v);
            }
        }
        Ok(res)
    }
}

/// The share of the time left that is kept back for building the answer.
fn margin(left: Duration) -> Duration {
    (left / 10).min(MARGIN_MAX)
}

/// The error a failed required part ends the request with.
fn failed(part: &Part, f: Failure) -> ProxyError {
    let status = match f.status.as_u16() {
        400..=499 if f.status != StatusCode::FAILED_DEPENDENCY => f.status,
        504 => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    ProxyError::PartFailed {
        part: part.name.to_string(),
        status,
        public: f.title,
        reason: f.reason,
    }
}

/// One child request and its answer read as JSON.
async fn ask(part: &Part, uri: String, timeout: Option<Duration>, forward: &Forward) -> Outcome {
    let child = match Request::builder()
        .method(Method::GET)
        .uri(&uri)
        .header(header::ACCEPT, "application/json")
        .body(gatehouse_common::body::empty())
    {
        Ok(c) => c,
        Err(e) => {
            return Outcome::Failed(Failure::new(
                StatusCode::BAD_GATEWAY,
                "failed",
                format!("`{uri}` is not a valid URI: {e}"),
            ));
        }
    };
    let mut fr = ForwardRequest::new(part.service.clone(), child, "aggregate");
    fr.timeout = timeout;
    let res = match forward.send(fr).await {
        Ok(res) => res,
        Err(e) => return Outcome::Failed(Failure::from_error(&e)),
    };
    let status = res.status();
    let service = &part.service.name;
    if !status.is_success() {
        return Outcome::Failed(Failure::new(
            status,
            format!("answered {}", status.as_u16()),
            format!("service `{service}` answered {status}"),
        ));
    }
    let (head, body) = res.into_parts();
    if !is_json(head.headers.get(header::CONTENT_TYPE)) {
        return Outcome::Failed(Failure::new(
            StatusCode::BAD_GATEWAY,
            "answer is not JSON",
            format!(
                "service `{service}` answered {:?}, not JSON",
                head.headers.get(header::CONTENT_TYPE)
            ),
        ));
    }
    let data = match read_limited(body, part.max_body).await {
        Ok(Some(data)) => data,
        Ok(None) => {
            return Outcome::Failed(Failure::new(
                StatusCode::BAD_GATEWAY,
                "answer too large",
                format!(
                    "service `{service}` answered more than {} bytes",
                    part.max_body
                ),
            ));
        }
        Err(e) => {
            return Outcome::Failed(Failure::new(
                StatusCode::BAD_GATEWAY,
                "failed mid-answer",
                format!("service `{service}`'s answer could not be read: {e}"),
            ));
        }
    };
    match serde_json::from_slice::<Value>(&data) {
        Ok(value) => Outcome::Answered {
            value,
            max_age: max_age(head.headers.get(header::CACHE_CONTROL)),
        },
        Err(e) => Outcome::Failed(Failure::new(
            StatusCode::BAD_GATEWAY,
            "answer is not JSON",
            format!("service `{service}`'s answer is not valid JSON: {e}"),
        )),
    }
}

/// A part answer's freshness for a shared cache: `s-maxage` or `max-age`; none when it says
/// `no-store`, `no-cache` or `private`, or gives neither.
fn max_age(cc: Option<&HeaderValue>) -> Option<u64> {
    let cc = cc?.to_str().ok()?;
    let (mut max, mut shared) = (None, None);
    for directive in cc.split(',') {
        let directive = directive.trim();
        let (name, value) = directive.split_once('=').unwrap_or((directive, ""));
        let value = value.trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" | "private" => return None,
            "max-age" => max = value.parse().ok(),
            "s-maxage" => shared = value.parse().ok(),
            _ => {}
        }
    }
    shared.or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_of_a_part() {
        let cases = [
            (Some("max-age=5"), Some(5)),
            (Some("public, max-age=60, s-maxage=10"), Some(10)),
            (Some("max-age=5, private"), None),
            (Some("no-store"), None),
            (Some("no-cache, max-age=5"), None),
            (Some("max-age=abc"), None),
            (None, None),
        ];
        for (cc, want) in cases {
            let v = cc.map(HeaderValue::from_static);
            assert_eq!(max_age(v.as_ref()), want, "{cc:?}");
        }
    }

    #[test]
    fn the_margin_is_a_tenth_at_most_50ms() {
        assert_eq!(
            margin(Duration::from_millis(100)),
            Duration::from_millis(10)
        );
        assert_eq!(margin(Duration::from_secs(10)), MARGIN_MAX);
    }
}
