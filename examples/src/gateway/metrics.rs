//! `/metrics`: Prometheus text on a listener of its own (`--metrics-addr`, default
//! `127.0.0.1:9464`; `off` disables it), through `metrics-exporter-prometheus`.
//!
//! Every Palisade layer the gateway runs counts what it admits and refuses
//! (`palisade_ratelimit_requests_total{tier,outcome}`, `palisade_apikey_requests_total`,
//! `palisade_jwt_requests_total`, `palisade_json_requests_total`, ...), records the latencies
//! that matter as histograms (`palisade_jwt_verify_seconds`, `palisade_jwt_jwks_fetch_seconds`,
//! `palisade_ratelimit_redis_seconds`, `palisade_retry_attempt_seconds`) and sets gauges
//! (`palisade_breaker_state`, `palisade_ratelimit_keys`, `palisade_retry_budget_balance`). The
//! listener is separate so the metrics are never on the public port; keep it on loopback or a
//! private network.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets for every `*_seconds` metric: 100 µs to 10 s.
const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// How often histograms drop what has aged out of their window.
const UPKEEP: Duration = Duration::from_secs(5);

/// The process's Prometheus recorder, installed on first use (the layers register their
/// metrics on their first request, so install it before serving).
///
/// # Errors
///
/// A message when another recorder is already installed.
pub fn install() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &BUCKETS)
                .map_err(|err| err.to_string())?;
            builder
                .install_recorder()
                .map_err(|err| format!("cannot install the metrics recorder: {err}"))
        })
        .clone()
}

/// `GET /metrics`, rendering `handle`.
pub fn router(handle: PrometheusHandle) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    )
}

/// Serves `/metrics` on `addr` until the process ends, and keeps the histograms' windows
/// moving. Returns the address bound.
///
/// # Errors
///
/// The bind error.
pub async fn serve(addr: SocketAddr, handle: PrometheusHandle) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let app = router(handle);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "the metrics listener failed");
        }
    });
    Ok(bound)
}

/// `--metrics-addr`: an address, or `off` (`None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsAddr(pub Option<SocketAddr>);

impl MetricsAddr {
    /// Parses an address with a port, or `off`.
    ///
    /// # Errors
    ///
    /// A message for anything else.
    pub fn parse(value: &str) -> Result<Self, String> {
        if value.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        value
            .parse()
            .map(|addr| Self(Some(addr)))
            .map_err(|_| "an address with a port (127.0.0.1:9464), or `off`".to_owned())
    }
}
