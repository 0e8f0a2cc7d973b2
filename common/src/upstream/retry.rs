//! Retry policy: which failures are retried, how many times, with what back-off, and the retry
//! budget that keeps retries from multiplying load on a struggling service.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::window::Window;
use crate::config::{ByteSize, Duration as ConfigDuration};

/// Failure kinds a policy can retry on (names as in Envoy's `retry_on`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RetryOn {
    /// The TCP/TLS connection could not be made.
    ConnectFailure,
    /// The HTTP/2 server refused the stream (REFUSED_STREAM): it never saw the request.
    RefusedStream,
    /// The connection or stream was reset before a response head arrived.
    Reset,
    /// Any 5xx response (and a per-try timeout).
    #[serde(rename = "5xx")]
    FiveXx,
    /// 502, 503 and 504 (and a per-try timeout).
    GatewayError,
    /// Statuses listed in `retriable_status_codes`.
    RetriableStatusCodes,
}

/// gRPC status codes a policy can retry on (`grpc-status` in a trailers-only response).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum GrpcRetryOn {
    Cancelled,
    DeadlineExceeded,
    ResourceExhausted,
    Unavailable,
    Internal,
}

impl GrpcRetryOn {
    fn code(self) -> u32 {
        match self {
            GrpcRetryOn::Cancelled => 1,
            GrpcRetryOn::DeadlineExceeded => 4,
            GrpcRetryOn::ResourceExhausted => 8,
            GrpcRetryOn::Internal => 13,
            GrpcRetryOn::Unavailable => 14,
        }
    }
}

/// A retry policy, per service (and overridable per route).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Failure kinds to retry. Default `[connect-failure, refused-stream]`: the two where the
    /// upstream certainly did not process the request.
    pub retry_on: Vec<RetryOn>,
    /// Statuses for `retriable-status-codes`. Default none.
    pub retriable_status_codes: Vec<u16>,
    /// gRPC statuses to retry. Default none.
    pub grpc_retry_on: Vec<GrpcRetryOn>,
    /// Attempts in all, the first included. Default 3; 1 disables retries.
    pub max_attempts: u32,
    /// Deadline of each attempt (within the overall request timeout). Default: none, only the
    /// overall timeout applies.
    pub per_try_timeout: Option<ConfigDuration>,
    /// First back-off; doubles per retry up to `backoff_max`, with full jitter. Default 25ms.
    pub backoff_base: ConfigDuration,
    /// Default 250ms.
    pub backoff_max: ConfigDuration,
    /// Retry POST, PATCH and other non-idempotent methods too. Default false (RFC 9110 §9.2.2).
    pub retry_non_idempotent: bool,
    /// Largest request body kept for replay; a larger body is never retried. Default 64KiB.
    pub max_replay_body: ByteSize,
    /// The retry budget.
    pub budget: BudgetSettings,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            retry_on: vec![RetryOn::ConnectFailure, RetryOn::RefusedStream],
            retriable_status_codes: Vec::new(),
            grpc_retry_on: Vec::new(),
            max_attempts: 3,
            per_try_timeout: None,
            backoff_base: ConfigDuration::from_millis(25),
            backoff_max: ConfigDuration::from_millis(250),
            retry_non_idempotent: false,
            max_replay_body: ByteSize::new(64 * 1024),
            budget: BudgetSettings::default(),
        }
    }
}

/// Retries may add at most `ratio` on top of requests over `window`, but at least
/// `min_per_second` are always allowed (Envoy's `retry_budget`, Linkerd's `retryBudget`).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetSettings {
    /// Default 0.2 (20%).
    pub ratio: f64,
    /// Default 10.
    pub min_per_second: u32,
    /// Default 10s.
    pub window: ConfigDuration,
}

impl Default for BudgetSettings {
    fn default() -> Self {
        BudgetSettings {
            ratio: 0.2,
            min_per_second: 10,
            window: ConfigDuration::from_secs(10),
        }
    }
}

impl RetrySettings {
    /// Whether a response status calls for a retry.
    pub fn retry_status(&self, status: http::StatusCode, grpc_status: Option<u32>) -> bool {
        let code = status.as_u16();
        let by_status = self.retry_on.iter().any(|r| match r {
            RetryOn::FiveXx => status.is_server_error(),
            RetryOn::GatewayError => matches!(code, 502..=504),
            RetryOn::RetriableStatusCodes => self.retriable_status_codes.contains(&code),
            _ => false,
        });
        let by_grpc = grpc_status
            .map(|g| self.grpc_retry_on.iter().any(|r| r.code() == g))
            .unwrap_or(false);
        by_status || by_grpc
    }

    /// Whether a per-try timeout is retried (it counts as a gateway error).
    pub fn retry_timeout(&self) -> bool {
        self.retry_on
            .iter()
            .any(|r| matches!(r, RetryOn::FiveXx | RetryOn::GatewayError))
    }

    pub fn retries(&self, kind: RetryOn) -> bool {
        self.retry_on.contains(&kind)
    }

    /// Whether `method` may be retried at all.
    pub fn method_allowed(&self, method: &http::Method) -> bool {
        self.retry_non_idempotent || is_idempotent(method)
    }

    /// Full-jitter exponential back-off before retry number `n` (1-based).
    pub fn backoff(&self, n: u32) -> Duration {
        let base = self.backoff_base.get();
        let cap = self
            .backoff_max
            .get()
            .min(base.saturating_mul(1u32 << n.saturating_sub(1).min(16)));
        if cap.is_zero() {
            return cap;
        }
        Duration::from_nanos(rand::random_range(0..=cap.as_nanos() as u64))
    }
}

/// RFC 9110 §9.2.2 idempotent methods.
pub fn is_idempotent(m: &http::Method) -> bool {
    matches!(
        *m,
        http::Method::GET
            | http::Method::HEAD
            | http::Method::OPTIONS
            | http::Method::TRACE
            | http::Method::PUT
            | http::Method::DELETE
    )
}

/// The sliding-window budget of one service.
#[derive(Debug)]
pub struct RetryBudget {
    settings: BudgetSettings,
    window: Window,
}

impl RetryBudget {
    pub fn new(settings: BudgetSettings) -> Self {
        RetryBudget {
            window: Window::new(settings.window.get()),
            settings,
        }
    }

    /// Counts an original request (a deposit).
    pub fn deposit(&self) {
        self.window.add(1, 0);
    }

    /// Takes one retry from the budget; false when the budget is spent.
    pub fn withdraw(&self) -> bool {
        let (requests, retries) = self.window.totals();
        let window_secs = self.settings.window.get().as_secs_f64().max(0.001);
        let floor = f64::from(self.settings.min_per_second) * window_secs;
        let allowed = floor.max(self.settings.ratio * requests as f64);
        if (retries as f64) < allowed {
            self.window.add(0, 1);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The budget tests run on Tokio's paused clock: the window slides only when a test
    // advances it, never because the machine was slow.

    #[tokio::test(start_paused = true)]
    async fn budget_caps_retries_at_ratio_above_floor() {
        let b = RetryBudget::new(BudgetSettings {
            ratio: 0.2,
            min_per_second: 0,
            window: ConfigDuration::from_secs(10),
        });
        for _ in 0..100 {
            b.deposit();
        }
        let granted = (0..100).filter(|_| b.withdraw()).count();
        assert_eq!(granted, 20);
    }

    #[tokio::test(start_paused = true)]
    async fn floor_allows_retries_at_low_traffic() {
        let b = RetryBudget::new(BudgetSettings {
            ratio: 0.2,
            min_per_second: 1,
            window: ConfigDuration::from_secs(5),
        });
        b.deposit();
        assert_eq!((0..10).filter(|_| b.withdraw()).count(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn spent_budget_comes_back_as_the_window_slides() {
        let b = RetryBudget::new(BudgetSettings {
            ratio: 0.2,
            min_per_second: 0,
            window: ConfigDuration::from_secs(10),
        });
        let withdraw_all = || (0..100).filter(|_| b.withdraw()).count();
        for _ in 0..100 {
            b.deposit();
        }
        assert_eq!(withdraw_all(), 20);
        tokio::time::advance(Duration::from_secs(5)).await;
        for _ in 0..100 {
            b.deposit();
        }
        // 200 requests in the window allow 40 retries; 20 are spent.
        assert_eq!(withdraw_all(), 20);
        tokio::time::advance(Duration::from_secs(5)).await;
        for _ in 0..50 {
            b.deposit();
        }
        // The first 100 requests and their 20 retries have left the window: 150 requests
        // allow 30 retries, of which the 20 taken 5s ago are still counted.
        assert_eq!(withdraw_all(), 10);
    }

    #[test]
    fn statuses_and_methods() {
        let mut p = RetrySettings {
            retry_on: vec![RetryOn::GatewayError, RetryOn::RetriableStatusCodes],
            retriable_status_codes: vec![409],
            grpc_retry_on: vec![GrpcRetryOn::Unavailable],
            ..Default::default()
        };
        assert!(p.retry_status(http::StatusCode::BAD_GATEWAY, None));
        assert!(!p.retry_status(http::StatusCode::INTERNAL_SERVER_ERROR, None));
        assert!(p.retry_status(http::StatusCode::CONFLICT, None));
        assert!(p.retry_status(http::StatusCode::OK, Some(14)));
        assert!(!p.method_allowed(&http::Method::POST));
        p.retry_non_idempotent = true;
        assert!(p.method_allowed(&http::Method::POST));
        for n in 1..10 {
            assert!(p.backoff(n) <= Duration::from_millis(250));
        }
    }
}
