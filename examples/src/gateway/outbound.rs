//! The gateway's outbound client to its upstream, outermost first (the order of Polly's standard
//! pipeline): retries (`palisade-retry`) → circuit breaker (`palisade-breaker`) →
//! per-attempt timeout and deadline propagation (`palisade-timeout`) → W3C `traceparent`
//! (`palisade::trace`) → the hyper client.
//!
//! - Retries: jittered exponential backoff, at most 3 attempts, a shared budget (20 % of
//!   requests plus 10 a second), `Retry-After` honoured, never past the request's deadline (the
//!   gateway's own timeout, or the caller's shorter `grpc-timeout`). A call the breaker refused
//!   is not retried (the retry layer's default): the next attempt would be refused too.
//! - The breaker judges each attempt by its default, `HttpClassifier` (5xx, timeouts and
//!   transport errors fail, 4xx do not), so a failing upstream trips it and further calls fail
//!   fast with `BreakerOpen` until it probes again; `/readyz` reports its state.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use palisade::breaker::{Breaker, BreakerLayer, Window};
use palisade::retry::{Backoff, HttpRetryLayer, Jitter, RetryBudget};
use palisade::timeout::{DeadlineHeader, PropagateDeadlineLayer, TimeoutLayer};
use palisade::trace::PropagateTraceLayer;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, ServiceBuilder, ServiceExt as _};

/// The outbound client: cheap to clone, shared by every request.
pub type OutboundClient = BoxCloneSyncService<Request<Full<Bytes>>, Response<Incoming>, BoxError>;

/// The outbound settings.
#[derive(Clone, Debug)]
pub struct Outbound {
    /// Where `/v1/upstream` sends its calls (`http://127.0.0.1:PORT`).
    pub base_url: String,
    /// The most one attempt may take.
    pub attempt_timeout: Duration,
    /// The breaker in front of the upstream.
    pub breaker: Breaker,
    /// The retries (their budget shared by every call to the upstream): the demo's, or
    /// `[client.retry]` of a `--config` file.
    pub retry: HttpRetryLayer,
}

impl Outbound {
    /// The demo's breaker: trips at half of the last 20 calls failing (once 5 were made) or 5
    /// failures in a row, stays open `wait` (doubling on repeated trips, up to a minute, with
    /// 10 % jitter), then lets 2 probes through.
    ///
    /// # Panics
    ///
    /// Never for a `wait` of at least 1 ms and at most a minute: the settings are valid.
    pub fn demo_breaker(wait: Duration) -> Breaker {
        Breaker::builder()
            .name("upstream")
            .window(Window::count(20))
            .minimum_calls(5)
            .failure_rate(0.5)
            .consecutive_failures(5)
            .wait(wait)
            .wait_growth(2.0, wait.max(Duration::from_secs(60)))
            .jitter(0.1)
            .half_open_probes(2)
            .half_open_max(Duration::from_secs(30))
            .build()
            .expect("the demo breaker's settings are valid")
    }

    /// The demo's retry schedule: 50 ms doubling, capped at 1 s, full jitter, 3 attempts.
    ///
    /// # Panics
    ///
    /// Never: the settings are valid.
    pub fn demo_backoff() -> Backoff {
        Backoff::exponential(Duration::from_millis(50))
            .cap(Duration::from_secs(1))
            .jitter(Jitter::Full)
            .max_attempts(3)
            .build()
            .expect("the demo backoff is valid")
    }

    /// The demo's retries: [`demo_backoff`](Self::demo_backoff), the default budget, a
    /// `Retry-After` of at most 2 s honoured.
    pub fn demo_retry() -> HttpRetryLayer {
        HttpRetryLayer::new(Self::demo_backoff())
            .budget(RetryBudget::default())
            .retry_after_cap(Duration::from_secs(2))
    }

    /// Builds the client stack.
    pub fn client(&self) -> OutboundClient {
        let transport = Client::builder(TokioExecutor::new()).build_http();
        let stack = ServiceBuilder::new()
            .layer(self.retry.clone())
            .layer(BreakerLayer::new(self.breaker.clone()))
            .layer(TimeoutLayer::new(self.attempt_timeout))
            .layer(PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()))
            .layer(PropagateTraceLayer::new())
            .service(transport.map_err(BoxError::from));
        BoxCloneSyncService::new(stack)
    }
}
