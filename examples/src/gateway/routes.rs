//! The gateway's handlers.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use palisade::{Identity, Problem, TrustedProxies};
use serde::Deserialize;

use super::problems::{ProblemJson, ProblemQuery, problem};

/// The longest `/v1/slow` accepts.
pub const MAX_SLOW_MS: u64 = 60_000;

/// What the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// Proxies whose forwarding headers are believed.
    pub trusted_proxies: TrustedProxies,
}

/// `GET /healthz`: always `{"status":"ok"}`.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// `GET /v1/hello`: greets the caller's principal and shows its resolved address.
pub async fn hello(
    State(state): State<AppState>,
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

/// `POST /v1/echo`: answers the JSON body it was sent.
pub async fn echo(ProblemJson(value): ProblemJson<serde_json::Value>) -> Json<serde_json::Value> {
    Json(value)
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

/// Any path no route matches.
pub async fn not_found() -> Response {
    problem(Problem::new(StatusCode::NOT_FOUND).with_detail("no route matches this path"))
}
