//! The demo's upstream: an in-process HTTP service on its own loopback port that the gateway
//! calls from `/v1/upstream`, failing and dawdling as the flags say, so the outbound layers
//! (breaker, per-attempt timeout, deadline propagation) have something to protect against.
//!
//! `GET /work` answers `{"work":"done"}` after the configured delay, or `503` at the configured
//! error rate. On this demo only, a caller may override both per request with
//! `x-demo-error-rate: 0.0..=1.0` and `x-demo-delay-ms: 0..=10000` (the gateway forwards them).
//! It honours the caller's `grpc-timeout`, as a Palisade service would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use palisade::jitter::JitterRng;
use palisade::timeout::{DeadlineHeader, HttpTimeoutLayer};

/// The header that overrides the error rate, on this demo only.
pub const ERROR_RATE_HEADER: &str = "x-demo-error-rate";
/// The header that overrides the delay (milliseconds), on this demo only.
pub const DELAY_HEADER: &str = "x-demo-delay-ms";
/// The longest delay a header may ask for.
pub const MAX_DEMO_DELAY: Duration = Duration::from_secs(10);

/// How the upstream behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Behaviour {
    /// The fraction of calls answered `503`, from 0 to 1.
    pub error_rate: f64,
    /// How long each call takes.
    pub delay: Duration,
    /// The first calls answered `503` whatever the rate (to show a retry succeeding).
    pub fail_first: u32,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self {
            error_rate: 0.0,
            delay: Duration::from_millis(20),
            fail_first: 0,
        }
    }
}

#[derive(Clone)]
struct Upstream {
    behaviour: Behaviour,
    rng: Arc<Mutex<JitterRng>>,
    calls: Arc<std::sync::atomic::AtomicU32>,
}

/// Serves the upstream on a fresh loopback port until the runtime ends; returns its address.
///
/// # Errors
///
/// When no loopback port can be bound.
pub async fn spawn(behaviour: Behaviour) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let timeout = HttpTimeoutLayer::builder(Duration::from_secs(30))
        .inbound_deadline(DeadlineHeader::grpc_timeout(), Duration::from_secs(30))
        .build()
        .map_err(std::io::Error::other)?;
    let app = Router::new()
        .route("/work", get(work))
        .with_state(Upstream {
            behaviour,
            rng: Arc::new(Mutex::new(JitterRng::from_entropy())),
            calls: Arc::default(),
        })
        .layer(timeout);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "the demo upstream stopped");
        }
    });
    Ok(addr)
}

async fn work(State(upstream): State<Upstream>, headers: HeaderMap) -> Response {
    let behaviour = overridden(upstream.behaviour, &headers);
    let call = upstream
        .calls
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(behaviour.delay).await;
    if call < behaviour.fail_first {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the demo upstream failed on purpose",
        )
            .into_response();
    }
    let roll = upstream
        .rng
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .unit();
    if roll < behaviour.error_rate {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the demo upstream failed on purpose",
        )
            .into_response();
    }
    axum::Json(serde_json::json!({ "work": "done" })).into_response()
}

/// The behaviour with the demo headers applied; values out of range are ignored.
fn overridden(mut behaviour: Behaviour, headers: &HeaderMap) -> Behaviour {
    let number = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|n| n.is_finite())
    };
    if let Some(rate) = number(ERROR_RATE_HEADER).filter(|r| (0.0..=1.0).contains(r)) {
        behaviour.error_rate = rate;
    }
    if let Some(ms) = number(DELAY_HEADER).filter(|ms| *ms >= 0.0) {
        behaviour.delay = Duration::from_secs_f64(ms / 1000.0).min(MAX_DEMO_DELAY);
    }
    behaviour
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_headers_are_bounded() {
        let base = Behaviour::default();
        let mut headers = HeaderMap::new();
        headers.insert(ERROR_RATE_HEADER, "0.25".parse().unwrap());
        headers.insert(DELAY_HEADER, "99999999".parse().unwrap());
        let got = overridden(base, &headers);
        assert!((got.error_rate - 0.25).abs() < f64::EPSILON);
        assert_eq!(got.delay, MAX_DEMO_DELAY);
        for bad in ["-1", "2", "NaN", "inf", "x"] {
            let mut headers = HeaderMap::new();
            headers.insert(ERROR_RATE_HEADER, bad.parse().unwrap());
            assert_eq!(overridden(base, &headers), base, "rate {bad}");
        }
        for bad in ["-1", "NaN", "inf", "x"] {
            let mut headers = HeaderMap::new();
            headers.insert(DELAY_HEADER, bad.parse().unwrap());
            assert_eq!(overridden(base, &headers), base, "delay {bad}");
        }
    }
}
