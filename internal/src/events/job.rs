//! Jobs: the id a published request gets, its state in a key-value bucket (the contract
//! between the gateway and the service that does the work), and the `job_status` handler.
//!
//! ```yaml
//! handler:
//!   job_status: { bucket: JOBS }          # job id from the route's `{job_id}` capture
//! ```

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gatehouse_common::config::ConfigError;
use gatehouse_common::error::ProxyError;
use gatehouse_common::handler::{HandlerBuild, HandlerKind, HandlerRequest, HandlerService};
use gatehouse_common::routing::ValueTemplate;
use http::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::broker::{Broker, unavailable};
use super::settings::is_name;
use crate::fetch::json_response;

/// A job's state as stored under its id in the bucket: the gateway writes `accepted`, the
/// service doing the work overwrites it with `completed` or `failed` (docs/events.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobState {
    pub job_id: String,
    pub status: Status,
    /// The subject that created the job; only it may read it. `None`: an anonymous route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Accepted,
    Completed,
    Failed,
}

impl JobState {
    /// What a client is shown: the state without its owner.
    pub fn public(&self) -> Value {
        serde_json::json!({
            "job_id": self.job_id,
            "status": self.status,
            "result": self.result,
            "error": self.error,
        })
    }
}

/// The job id of a request: with an idempotency key, the same for the same (route subject,
/// caller, key), so a repeated request names the same job and the broker drops the copy; one
/// caller's key never names another caller's job. Without a key, random. 32 hex digits.
pub fn job_id(topic: &str, caller: Option<&str>, key: Option<&str>) -> String {
    let mut bytes = [0u8; 16];
    match key {
        Some(key) => {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            for part in [topic, caller.unwrap_or(""), key] {
                ctx.update(part.as_bytes());
                ctx.update(&[0]);
            }
            bytes.copy_from_slice(&ctx.finish().as_ref()[..16]);
        }
        None => {
            use ring::rand::SecureRandom;
            // A failing system RNG is not survivable anyway; the id stays unique by time.
            if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos();
                bytes.copy_from_slice(&now.to_be_bytes());
            }
        }
    }
    let mut out = String::with_capacity(32);
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Whether `id` has the shape of a job id (anything else is a 404 without asking the broker).
pub fn is_job_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The `job_status` kind.
#[derive(Debug)]
pub struct JobStatus {
    pub broker: Arc<Broker>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    /// The key-value bucket of job states.
    bucket: String,
    /// The job id, from the route's captures. Default `{job_id}`.
    #[serde(default = "default_job_id")]
    job_id: String,
    /// How long the broker may take to answer. Default 2s.
    #[serde(default)]
    timeout: Option<gatehouse_common::config::Duration>,
}

fn default_job_id() -> String {
    "{job_id}".into()
}

struct Route {
    broker: Arc<Broker>,
    bucket: String,
    job_id: ValueTemplate,
    timeout: Duration,
}

impl HandlerKind for JobStatus {
    fn name(&self) -> &'static str {
        "job_status"
    }

    fn build(&self, cx: &HandlerBuild<'_>) -> Result<HandlerService, ConfigError> {
        let args: Args = cx.args()?;
        if !is_name(&args.bucket) {
            return Err(cx.error(
                "bucket",
                "letters, digits, `-` and `_` only (a bucket name)",
            ));
        }
        let route = Arc::new(Route {
            broker: self.broker.clone(),
            bucket: args.bucket,
            job_id: cx.template("job_id", &args.job_id)?,
            timeout: args.timeout.map_or(Duration::from_secs(2), |d| d.get()),
        });
        Ok(HandlerService::new(tower::service_fn(
            move |req: HandlerRequest| {
                let route = route.clone();
                async move { route.serve(req).await }
            },
        )))
    }
}

impl Route {
    async fn serve(
        &self,
        req: HandlerRequest,
    ) -> Result<Response<gatehouse_common::body::ProxyBody>, ProxyError> {
        let id = self.job_id.render(&req.vars());
        let caller = req.vars().subject.map(str::to_owned);
        let state =
            match tokio::time::timeout(self.timeout, read(&self.broker, &self.bucket, &id)).await {
                Ok(state) => state?,
                Err(_) => return Err(unavailable(true, "the job state was not read in time")),
            };
        let state = state
            .filter(|s| s.owner.is_none() || s.owner == caller)
            .ok_or_else(|| ProxyError::NotFound {
                what: format!("job {id}"),
            })?;
        let mut res = json_response(Bytes::from(state.public().to_string()));
        res.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        Ok(res)
    }
}

/// The state of job `id` in `bucket`; `None` when there is none (or `id` is no job id).
pub async fn read(broker: &Broker, bucket: &str, id: &str) -> Result<Option<JobState>, ProxyError> {
    if !is_job_id(id) {
        return Ok(None);
    }
    let store = broker.bucket(bucket).await?;
    let Some(value) = store
        .get(id)
        .await
        .map_err(|e| unavailable(true, format!("reading job {id}: {e}")))?
    else {
        return Ok(None);
    };
    serde_json::from_slice(&value)
        .map(Some)
        .map_err(|e| ProxyError::BadUpstreamResponse {
            service: format!("bucket {bucket}"),
            reason: format!("job {id} has a state that is not a job state: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_per_caller_and_key() {
        let a = job_id("orders.requests", Some("alice"), Some("k1"));
        assert_eq!(a, job_id("orders.requests", Some("alice"), Some("k1")));
        assert!(is_job_id(&a), "{a}");
        assert_ne!(a, job_id("orders.requests", Some("bob"), Some("k1")));
        assert_ne!(a, job_id("orders.requests", Some("alice"), Some("k2")));
        assert_ne!(a, job_id("other", Some("alice"), Some("k1")));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(
            job_id("t", Some("ab"), Some("c")),
            job_id("t", Some("a"), Some("bc"))
        );
        let (r1, r2) = (job_id("t", None, None), job_id("t", None, None));
        assert!(is_job_id(&r1) && r1 != r2);
    }

    #[test]
    fn only_job_ids_are_looked_up() {
        for id in [
            "",
            "x",
            "../../etc",
            &"A".repeat(32),
            &"0".repeat(33),
            "orders.>",
        ] {
            assert!(!is_job_id(id), "{id}");
        }
        assert!(is_job_id(&"0f".repeat(16)));
    }

    #[test]
    fn the_public_state_hides_the_owner() {
        let state: JobState = serde_json::from_str(
            r#"{"job_id":"j","status":"completed","owner":"alice","result":{"orderId":"o1"}}"#,
        )
        .expect("a job state");
        assert_eq!(
            state.public(),
            serde_json::json!({"job_id":"j","status":"completed","result":{"orderId":"o1"},"error":null})
        );
    }
}
