//! The gateway's handlers.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use palisade::breaker::{BreakerOpen, BreakerState};
use palisade::json::ValidatedJson;
use palisade::json::garde::Validate;
use palisade::problem::types;
use palisade::timeout::Elapsed;
use palisade::{Deadline, Identity, Problem, TrustedProxies};
use serde::Deserialize;
use tower::ServiceExt as _;

use super::outbound::OutboundClient;
use super::problems::{ProblemQuery, problem};
use super::upstream::{DELAY_HEADER, ERROR_RATE_HEADER};

/// The largest upstream answer `/v1/upstream` passes on.
pub const MAX_UPSTREAM_BODY: usize = 64 * 1024;

/// The longest `/v1/slow` accepts.
pub const MAX_SLOW_MS: u64 = 60_000;

/// What the handlers share, behind one `Arc` ([`Shared`]): axum clones the state for every
/// request, and a clone is then one reference count, not a copy of the outbound client stack.
pub type Shared = std::sync::Arc<AppState>;

/// What the handlers share (as [`Shared`]).
pub struct AppState {
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// The outbound client and where it goes, when an upstream is configured.
    pub upstream: Option<UpstreamState>,
}

/// The upstream `/v1/upstream` calls.
#[derive(Clone)]
pub struct UpstreamState {
    /// The client stack (breaker, per-attempt timeout, deadline propagation).
    pub client: OutboundClient,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The breaker's handle, for `/readyz`.
    pub breaker: palisade::breaker::Breaker,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("trusted_proxies", &self.trusted_proxies)
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl std::fmt::Debug for UpstreamState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamState")
            .field("base_url", &self.base_url)
            .field("breaker", &self.breaker)
            .finish_non_exhaustive()
    }
}

/// `GET /healthz`: always `{"status":"ok"}`.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /v1/hello`: greets the caller's principal and shows its resolved address.
pub async fn hello(
    State(state): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Extension(identity): Extension<Identity>,
    headers: http::HeaderMap,
) -> Json<serde_json::Value> {
    let client = state.trusted_proxies.resolve(peer.ip(), &headers);
    Json(serde_json::json!({
        "message": format!("hello, {}", identity.subject()),
        "client_ip": client.to_string(),
    }))
}

/// The body of `POST /v1/echo`. Members it does not name are refused (`422`), though it has
/// no `deny_unknown_fields`: `ValidatedJson` sees to that.
#[derive(Debug, Deserialize, Validate)]
pub struct EchoRequest {
    /// What to echo: 1 to 1,000 characters.
    #[garde(length(chars, min = 1, max = 1000))]
    pub message: String,
    /// Up to 16 tags of 1 to 32 characters each.
    #[serde(default)]
    #[garde(length(max = 16), inner(length(chars, min = 1, max = 32)))]
    pub tags: Vec<String>,
}

/// `POST /v1/echo`: answers the message and tags it was sent, and who sent them.
pub async fn echo(
    Extension(identity): Extension<Identity>,
    ValidatedJson(request): ValidatedJson<EchoRequest>,
) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "message": request.message,
        "tags": request.tags,
        "principal": identity.subject(),
    }))
}

/// The query of `/v1/slow`.
#[derive(Debug, Deserialize)]
pub struct SlowParams {
    ms: u64,
}

/// `GET /v1/slow?ms=N`: answers after `N` milliseconds, to show the timeout.
pub async fn slow(ProblemQuery(params): ProblemQuery<SlowParams>) -> Response {
    if params.ms > MAX_SLOW_MS {
        return problem(
            Problem::new(StatusCode::BAD_REQUEST)
                .with_detail(format!("`ms` must be at most {MAX_SLOW_MS}")),
        );
    }
    tokio::time::sleep(Duration::from_millis(params.ms)).await;
    Json(serde_json::json!({ "slept_ms": params.ms })).into_response()
}

/// `GET /readyz`: ready, and the state of each circuit breaker (`degraded` when one is not
/// closed: the gateway still serves, but a dependency is failing).
pub async fn readyz(State(state): State<Shared>) -> Json<serde_json::Value> {
    let breaker = state
        .upstream
        .as_ref()
        .map(|upstream| upstream.breaker.snapshot());
    let degraded = breaker.is_some_and(|s| s.state != BreakerState::Closed);
    let breakers = match breaker {
        Some(snapshot) => serde_json::json!({
            "upstream": {
                "state": snapshot.state.as_str(),
                "calls": snapshot.calls,
                "failure_rate": snapshot.failure_rate(),
                "open_for_ms": snapshot.open_for.map(|d| d.as_millis()),
            }
        }),
        None => serde_json::json!({}),
    };
    Json(serde_json::json!({
        "status": if degraded { "degraded" } else { "ready" },
        "breakers": breakers,
    }))
}

/// `GET /v1/upstream`: calls the demo upstream through the outbound stack and passes its
/// answer on; every way that can fail is its own problem response.
pub async fn upstream(
    State(state): State<Shared>,
    deadline: Option<Extension<Deadline>>,
    trace: Option<Extension<palisade::trace::TraceContext>>,
    headers: HeaderMap,
) -> Response {
    let Some(upstream) = state.upstream.as_ref() else {
        return problem(
            Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                .with_detail("this gateway has no upstream configured"),
        );
    };
    let mut request = http::Request::get(format!("{}/work", upstream.base_url))
        .body(Full::<Bytes>::default())
        .unwrap_or_default();
    // The demo's knobs, and nothing else of the caller's, go upstream.
    for name in [ERROR_RATE_HEADER, DELAY_HEADER] {
        if let Some(value) = headers.get(name) {
            request.headers_mut().insert(name, value.clone());
        }
    }
    // The caller's deadline goes with the call: the client stack writes it as `grpc-timeout`.
    if let Some(Extension(deadline)) = deadline {
        deadline.insert_earliest(request.extensions_mut());
    }
    // So is the trace: the client stack writes it as `traceparent`, this request's span the
    // parent.
    if let Some(Extension(trace)) = trace {
        request.extensions_mut().insert(trace);
    }
    match upstream.client.clone().oneshot(request).await {
        Ok(response) if response.status().is_success() => {
            match Limited::new(response.into_body(), MAX_UPSTREAM_BODY)
                .collect()
                .await
            {
                Ok(body) => match serde_json::from_slice::<serde_json::Value>(&body.to_bytes()) {
                    Ok(json) => Json(serde_json::json!({ "upstream": json })).into_response(),
                    Err(_) => bad_gateway("the upstream's answer is not JSON"),
                },
                Err(_) => bad_gateway("the upstream's answer could not be read whole"),
            }
        }
        // The upstream ran out of the time it was handed (the deadline went with the call).
        Ok(response) if response.status() == StatusCode::GATEWAY_TIMEOUT => upstream_timeout(),
        Ok(response) => bad_gateway(if response.status().is_server_error() {
            "the upstream failed"
        } else {
            "the upstream refused the call"
        }),
        Err(err) => {
            if let Some(open) = err.downcast_ref::<BreakerOpen>() {
                let mut response = problem(
                    Problem::new(StatusCode::SERVICE_UNAVAILABLE)
                        .with_type(types::UNAVAILABLE)
                        .with_title("Upstream unavailable")
                        .with_detail(
                            "the upstream keeps failing, so calls to it are paused; retry \
                             after the time Retry-After gives",
                        ),
                );
                let wait = open.remaining().unwrap_or(Duration::from_secs(1));
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                response
                    .headers_mut()
                    .insert(http::header::RETRY_AFTER, seconds.into());
                response
            } else if err.is::<Elapsed>() {
                upstream_timeout()
            } else {
                tracing::debug!(%err, "upstream call failed");
                bad_gateway("the upstream could not be reached")
            }
        }
    }
}

fn upstream_timeout() -> Response {
    problem(
        Problem::new(StatusCode::GATEWAY_TIMEOUT)
            .with_type(types::TIMEOUT)
            .with_detail("the upstream did not answer in time"),
    )
}

fn bad_gateway(detail: &'static str) -> Response {
    problem(Problem::new(StatusCode::BAD_GATEWAY).with_detail(detail))
}

/// Any path no route matches.
pub async fn not_found() -> Response {
    problem(Problem::new(StatusCode::NOT_FOUND).with_detail("no route matches this path"))
}
