//! The `publish` route handler: a request becomes a message on a JetStream subject, and the
//! client gets 202 with its job only once the broker has acknowledged storing it.
//!
//! ```yaml
//! handler:
//!   publish:
//!     subject: orders.requests
//!     idempotency_key: required          # or optional
//!     location: /api/jobs/{job_id}
//!     bucket: JOBS                       # the `accepted` state is written there
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatehouse_common::config::{ByteSize, ConfigError};
use gatehouse_common::error::ProxyError;
use gatehouse_common::handler::{HandlerBuild, HandlerKind, HandlerRequest, HandlerService};
use gatehouse_common::metrics::PublishSeries;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use serde::Deserialize;

use super::broker::{Broker, unavailable};
use super::headers;
use super::job::{self, JobState, Status};
use super::settings::is_name;
use crate::fetch::read_limited;

/// The `publish` kind.
#[derive(Debug)]
pub struct Publish {
    pub broker: Arc<Broker>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The NATS subject the request is published on; a stream must capture it.
    subject: String,
    /// Whether the client must send `Idempotency-Key`. Default `required`.
    #[serde(default)]
    idempotency_key: KeyRule,
    /// The job's URL, with `{job_id}`: the 202's `Location`.
    location: String,
    /// The key-value bucket where the job's `accepted` state is written. Default: none.
    #[serde(default)]
    bucket: Option<String>,
    /// How long the broker may take to acknowledge. Default 2s.
    #[serde(default)]
    ack_timeout: Option<gatehouse_common::config::Duration>,
    /// The largest body published. Default 256KiB (NATS refuses messages above its
    /// `max_payload`, 1MiB by default, headers included).
    #[serde(default)]
    max_body_bytes: Option<ByteSize>,
    /// Whether the body must be JSON (400 otherwise). Default true.
    #[serde(default = "yes")]
    json: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum KeyRule {
    #[default]
    Required,
    Optional,
}

/// The most of an `Idempotency-Key` kept (longer keys are refused).
const MAX_KEY_LEN: usize = 255;

struct Route {
    broker: Arc<Broker>,
    route: Arc<str>,
    subject: String,
    key_rule: KeyRule,
    /// `location` split around `{job_id}`.
    location: (String, String),
    bucket: Option<String>,
    ack_timeout: Duration,
    max_body_bytes: u64,
    json: bool,
    /// Its metric series, resolved on the first request (the registry is not known at build).
    series: std::sync::OnceLock<PublishSeries>,
}

impl HandlerKind for Publish {
    fn name(&self) -> &'static str {
        "publish"
    }

    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        let args: Args = cx.args()?;
        if !is_subject(&args.subject) {
            return Err(cx.error(
                "subject",
                "must be a NATS subject to publish on: dot-separated tokens, no spaces, no `*` or `>`",
            ));
        }
        let location = match args.location.split_once("{job_id}") {
            Some((before, after)) if before.starts_with('/') && !after.contains("{job_id}") => {
                (before.to_owned(), after.to_owned())
            }
            _ => {
                return Err(cx.error(
                    "location",
                    "must be a path starting with `/` holding `{job_id}` once (`/api/jobs/{job_id}`)",
                ));
            }
        };
        if let Some(bucket) = &args.bucket
            && !is_name(bucket)
        {
            return Err(cx.error(
                "bucket",
                "letters, digits, `-` and `_` only (a bucket name)",
            ));
        }
        let max_body_bytes = args.max_body_bytes.map_or(256 * 1024, |b| b.get());
        if max_body_bytes == 0 {
            return Err(cx.error("max_body_bytes", "must be at least 1 byte"));
        }
        let route = Arc::new(Route {
            broker: self.broker.clone(),
            route: Arc::from(cx.route),
            subject: args.subject,
            key_rule: args.idempotency_key,
            location,
            bucket: args.bucket,
            ack_timeout: args.ack_timeout.map_or(Duration::from_secs(2), |d| d.get()),
            max_body_bytes,
            json: args.json,
            series: std::sync::OnceLock::new(),
        });
        Ok(HandlerService::new(tower::service_fn(
            move |req: HandlerRequest| {
                let route = route.clone();
                async move { route.serve(req).await }
            },
        )))
    }
}

/// A subject one can publish on (no wildcards).
fn is_subject(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty() && t != "*" && t != ">" && !t.bytes().any(|b| b.is_ascii_whitespace())
        })
}

impl Route {
    async fn serve(
        &self,
        req: HandlerRequest,
    ) -> Result<Response<gatehouse_common::body::ProxyBody>, ProxyError> {
        let key = idempotency_key(&req.parts.headers, self.key_rule)?;
        let caller = req.vars().subject.map(str::to_owned);
        let series = self
            .series
            .get_or_init(|| req.forward.metrics().events.publish_series(&self.route));
        // Refuse before reading the body when the broker is not there.
        let js = self.broker.jetstream().inspect_err(|_| {
            series.refused.inc();
        })?;
        let body = read_limited(req.body, self.max_body_bytes)
            .await
            .map_err(|source| ProxyError::ClientBody { source })?
            .ok_or(ProxyError::BodyTooLarge {
                limit: self.max_body_bytes,
            })?;
        if self.json && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
            return Err(ProxyError::BadRequest {
                reason: "the body must be a JSON document".into(),
            });
        }
        let job_id = job::job_id(&self.subject, caller.as_deref(), key);
        let message =
            headers::message_headers(&req.parts.headers, &req.forward, &job_id, &self.route);

        let started = Instant::now();
        let published = tokio::time::timeout(self.ack_timeout, async {
            js.publish_with_headers(self.subject.clone(), message, body)
                .await?
                .await
        })
        .await;
        let ack = match published {
            Ok(Ok(ack)) => ack,
            Ok(Err(e)) => {
                series.failed.inc();
                tracing::warn!(subject = %self.subject, %job_id, error = %e, "publish refused by the event broker");
                return Err(unavailable(
                    true,
                    format!("publish on `{}`: {e}", self.subject),
                ));
            }
            Err(_) => {
                series.timeout.inc();
                tracing::warn!(subject = %self.subject, %job_id, after = ?self.ack_timeout, "no acknowledgement from the event broker");
                return Err(unavailable(
                    true,
                    format!(
                        "no acknowledgement for `{}` within {:?}",
                        self.subject, self.ack_timeout
                    ),
                ));
            }
        };
        series.ack.observe(started.elapsed().as_secs_f64());
        match ack.duplicate {
            true => series.duplicate.inc(),
            false => series.stored.inc(),
        };
        tracing::info!(%job_id, stream = %ack.stream, sequence = ack.sequence, duplicate = ack.duplicate, "request published");

        let status = match &self.bucket {
            Some(bucket) => self.record(bucket, &job_id, caller, ack.duplicate).await,
            None => Status::Accepted,
        };
        let body = serde_json::json!({ "job_id": job_id, "status": status });
        let location = format!("{}{job_id}{}", self.location.0, self.location.1);
        let mut res = Response::new(gatehouse_common::body::full(Bytes::from(body.to_string())));
        *res.status_mut() = StatusCode::ACCEPTED;
        let h = res.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Ok(v) = HeaderValue::try_from(location) {
            h.insert(header::LOCATION, v);
        }
        Ok(res)
    }

    /// Writes the `accepted` state of a new job (unless the worker was quicker), or reads the
    /// state of a repeated one. The message is stored either way, so a failure here is logged
    /// and the client still gets its 202: the worker writes the state when it runs the job.
    async fn record(
        &self,
        bucket: &str,
        job_id: &str,
        owner: Option<String>,
        duplicate: bool,
    ) -> Status {
        let work = async {
            if duplicate {
                return job::read(&self.broker, bucket, job_id)
                    .await
                    .map(|s| s.map_or(Status::Accepted, |s| s.status));
            }
            let store = self.broker.bucket(bucket).await?;
            let state = JobState {
                job_id: job_id.to_owned(),
                status: Status::Accepted,
                owner,
                result: None,
                error: None,
            };
            let value = Bytes::from(serde_json::to_vec(&state).unwrap_or_default());
            match store.create(job_id, value).await {
                Ok(_) => Ok(Status::Accepted),
                Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
                    job::read(&self.broker, bucket, job_id)
                        .await
                        .map(|s| s.map_or(Status::Accepted, |s| s.status))
                }
                Err(e) => Err(unavailable(true, e.to_string())),
            }
        };
        match tokio::time::timeout(self.ack_timeout, work).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                tracing::warn!(%job_id, %bucket, error = %e, "job state not written; the worker will write it");
                Status::Accepted
            }
            Err(_) => {
                tracing::warn!(%job_id, %bucket, "job state not written in time; the worker will write it");
                Status::Accepted
            }
        }
    }
}

/// The client's `Idempotency-Key`, checked against the route's rule.
fn idempotency_key(headers: &http::HeaderMap, rule: KeyRule) -> Result<Option<&str>, ProxyError> {
    let bad = |reason: &str| ProxyError::BadRequest {
        reason: reason.to_owned(),
    };
    let mut values = headers.get_all("idempotency-key").iter();
    let Some(value) = values.next() else {
        return match rule {
            KeyRule::Required => Err(bad(
                "this route requires an `Idempotency-Key` header: a unique value per operation \
                 (the same value again answers the same job)",
            )),
            KeyRule::Optional => Ok(None),
        };
    };
    if values.next().is_some() {
        return Err(bad("send one `Idempotency-Key` header, not several"));
    }
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .ok_or_else(|| bad("`Idempotency-Key` must be 1 to 255 visible ASCII characters"))?;
    Ok(Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        let with = |values: &[&str]| {
            let mut h = http::HeaderMap::new();
            for v in values {
                h.append("idempotency-key", HeaderValue::from_str(v).expect("header"));
            }
            h
        };
        let none = with(&[]);
        assert!(matches!(
            idempotency_key(&none, KeyRule::Required),
            Err(ProxyError::BadRequest { .. })
        ));
        assert_eq!(
            idempotency_key(&none, KeyRule::Optional).expect("optional"),
            None
        );
        assert_eq!(
            idempotency_key(&with(&[" k-1 "]), KeyRule::Required).expect("a key"),
            Some("k-1")
        );
        for bad in [with(&["a", "b"]), with(&[""]), with(&[&"x".repeat(256)])] {
            assert!(idempotency_key(&bad, KeyRule::Optional).is_err(), "{bad:?}");
        }
        let mut h = http::HeaderMap::new();
        h.insert(
            "idempotency-key",
            HeaderValue::from_bytes(b"caf\xc3\xa9").expect("header"),
        );
        assert!(idempotency_key(&h, KeyRule::Required).is_err());
    }

    #[test]
    fn subjects_to_publish_on() {
        for ok in ["orders.requests", "a", "a.b-c.d_e"] {
            assert!(is_subject(ok), "{ok}");
        }
        for bad in ["", "orders.*", "orders.>", "a..b", ".a", "a b"] {
            assert!(!is_subject(bad), "{bad}");
        }
    }
}
