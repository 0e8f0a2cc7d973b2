//! Fault injection set at run time through `POST /_chaos` on the admin listener: added latency
//! before answering, and a share of requests answered 503 (gRPC: `UNAVAILABLE`).

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Largest latency `POST /_chaos` accepts: 60 000 ms.
pub const MAX_LATENCY_MS: u64 = 60_000;

/// The faults in force. Default: none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ChaosSettings {
    /// Share of requests answered with a failure, 0.0 to 1.0.
    pub error_rate: f64,
    /// Delay added before every answer, in milliseconds.
    pub latency_ms: u64,
}

/// A `POST /_chaos` body. A field left out keeps its current value; zeros reset.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosUpdate {
    pub error_rate: Option<f64>,
    pub latency_ms: Option<u64>,
}

/// Why a `POST /_chaos` body was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    #[error("body is not a chaos object: {0}")]
    Json(#[from] serde_json::Error),
    #[error("error_rate must be between 0.0 and 1.0, got {0}")]
    ErrorRate(f64),
    #[error("latency_ms must be at most {MAX_LATENCY_MS}, got {0}")]
    Latency(u64),
}

/// The chaos switch of one service, shared by its main and admin listeners.
#[derive(Debug, Default)]
pub struct Chaos {
    settings: Mutex<ChaosSettings>,
}

impl Chaos {
    /// The settings in force.
    pub fn settings(&self) -> ChaosSettings {
        *self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Applies a JSON update (see [`ChaosUpdate`]) and returns the settings now in force.
    pub fn update_json(&self, body: &[u8]) -> Result<ChaosSettings, ChaosError> {
        let update: ChaosUpdate = serde_json::from_slice(body)?;
        self.update(update)
    }

    /// Applies an update after checking its ranges; nothing changes when it is refused.
    pub fn update(&self, update: ChaosUpdate) -> Result<ChaosSettings, ChaosError> {
        if let Some(rate) = update.error_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(ChaosError::ErrorRate(rate));
        }
        if let Some(ms) = update.latency_ms
            && ms > MAX_LATENCY_MS
        {
            return Err(ChaosError::Latency(ms));
        }
        let mut settings = self.settings.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rate) = update.error_rate {
            settings.error_rate = rate;
        }
        if let Some(ms) = update.latency_ms {
            settings.latency_ms = ms;
        }
        Ok(*settings)
    }

    /// Waits the configured latency, then says whether this request must fail.
    pub async fn inject(&self) -> bool {
        let ChaosSettings {
            error_rate,
            latency_ms,
        } = self.settings();
        if latency_ms > 0 {
            tokio::time::sleep(Duration::from_millis(latency_ms)).await;
        }
        // random() is in [0, 1): a rate of 1.0 always fails, 0.0 never does.
        error_rate > 0.0 && rand::random::<f64>() < error_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_partial_and_refuses_out_of_range() {
        let chaos = Chaos::default();
        let s = chaos.update_json(br#"{"error_rate":0.5,"latency_ms":20}"#);
        assert_eq!(
            s.ok(),
            Some(ChaosSettings {
                error_rate: 0.5,
                latency_ms: 20
            })
        );
        let s = chaos.update_json(br#"{"latency_ms":0}"#);
        assert_eq!(
            s.ok(),
            Some(ChaosSettings {
                error_rate: 0.5,
                latency_ms: 0
            })
        );
        for bad in [
            &br#"{"error_rate":1.5}"#[..],
            br#"{"latency_ms":-1}"#,
            b"nope",
            br#"{"x":1}"#,
        ] {
            assert!(chaos.update_json(bad).is_err());
        }
        assert_eq!(chaos.settings().error_rate, 0.5);
    }
}
