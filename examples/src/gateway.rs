//! The demo gateway: an axum service behind Palisade's layers.
//!
//! Routes: `GET /healthz` (open), and behind an API key `GET /v1/hello`, `POST /v1/echo` (JSON,
//! scope `echo:write`) and `GET /v1/slow?ms=N`, which shows the timeout layer answering `504`.
//! Every error is a problem+json response.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, State};
use axum::http::{HeaderName, StatusCode, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use palisade::apikey::{ApiKeyLayer, KeySet, KeyStore};
use palisade::timeout::{DeadlineHeader, HttpTimeoutLayer};
use palisade::{Identity, Problem, TrustedProxies, require_scopes};
use serde::Deserialize;
use tower::ServiceBuilder;
use tower_http::ServiceBuilderExt as _;
use tower_http::trace::TraceLayer;

/// The longest `/v1/slow` accepts.
pub const MAX_SLOW_MS: u64 = 60_000;
/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The demo API key, accepted when no key file is given. It is public: never use it, or the
/// embedded key set below, outside the demo.
pub const DEMO_KEY: &str = "pal_demo_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM";

/// The embedded key set: only the digest of [`DEMO_KEY`], as `palisade apikey new --prefix
/// pal_demo --principal demo --scopes hello:read,echo:write` printed it.
pub const DEMO_KEYS: &str = "\
# The demo key (printed at start-up). Replace with --api-keys FILE.
sha256:62ec36c714dc42161581dd5a82c698b6a7e7c14459cc95e5a24ea65cdd38228b principal=demo scopes=hello:read,echo:write
";

/// What the gateway needs to know; every field has an embedded default.
#[derive(Debug, Clone)]
pub struct Config {
    /// The timeout of every request (and the most a caller's `grpc-timeout` may ask for).
    pub timeout: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// The API keys `/v1/*` accepts; replace its set to rotate keys live.
    pub keys: KeyStore,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            trusted_proxies: TrustedProxies::none(),
            keys: KeyStore::new(KeySet::parse(DEMO_KEYS).expect("the embedded key set parses")),
        }
    }
}

#[derive(Clone)]
struct AppState {
    trusted_proxies: TrustedProxies,
}

/// Builds the gateway's router with its layers.
///
/// # Errors
///
/// When the configuration is invalid (a zero timeout).
pub fn app(config: &Config) -> Result<Router, palisade::timeout::BuildError> {
    let timeout = HttpTimeoutLayer::builder(config.timeout)
        .inbound_deadline(DeadlineHeader::grpc_timeout(), config.timeout)
        .build()?;
    let request_id = HeaderName::from_static("x-request-id");
    // Every `/v1` route needs an API key; `/v1/echo` also the `echo:write` scope.
    let v1 = Router::new()
        .route(
            "/hello",
            get(hello).route_layer(require_scopes(["hello:read"])),
        )
        .route(
            "/echo",
            post(echo).route_layer(require_scopes(["echo:write"])),
        )
        .route("/slow", get(slow))
        .layer(ApiKeyLayer::new(config.keys.clone()));
    Ok(Router::new()
        .route("/healthz", get(healthz))
        .nest("/v1", v1)
        .fallback(not_found)
        // Extractors answer 413 past this; `ProblemJson` renders it as problem+json.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(AppState {
            trusted_proxies: config.trusted_proxies.clone(),
        })
        // Outermost first: request id, secrets kept out of logs, trace span, then the total
        // timeout, as DESIGN.md's request flow says.
        .layer(
            ServiceBuilder::new()
                .set_x_request_id(tower_http::request_id::MakeRequestUuid)
                .sensitive_headers([
                    http::header::AUTHORIZATION,
                    HeaderName::from_static("x-api-key"),
                ])
                .layer(TraceLayer::new_for_http())
                .propagate_request_id(request_id)
                .layer(timeout),
        ))
}

/// Serves `app` on `listener` until `shutdown` completes, then lets in-flight requests finish.
///
/// # Errors
///
/// An I/O error from the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn hello(
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

async fn echo(ProblemJson(value): ProblemJson<serde_json::Value>) -> Json<serde_json::Value> {
    Json(value)
}

#[derive(Deserialize)]
struct SlowParams {
    ms: u64,
}

async fn slow(ProblemQuery(params): ProblemQuery<SlowParams>) -> Response {
    if params.ms > MAX_SLOW_MS {
        return problem(
            Problem::new(StatusCode::BAD_REQUEST)
                .with_detail(format!("`ms` must be at most {MAX_SLOW_MS}")),
        );
    }
    tokio::time::sleep(Duration::from_millis(params.ms)).await;
    Json(serde_json::json!({ "slept_ms": params.ms })).into_response()
}

async fn not_found() -> Response {
    problem(Problem::new(StatusCode::NOT_FOUND).with_detail("no route matches this path"))
}

fn problem(problem: Problem) -> Response {
    problem.into_response_with(axum::body::Body::from)
}

/// axum's `Json`, with rejections as problem+json.
struct ProblemJson<T>(T);

impl<S, T> FromRequest<S> for ProblemJson<T>
where
    S: Send + Sync,
    Json<T>: FromRequest<S, Rejection = JsonRejection>,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(problem(
                Problem::new(rejection.status()).with_detail(rejection.body_text()),
            )),
        }
    }
}

/// axum's `Query`, with rejections as problem+json.
struct ProblemQuery<T>(T);

impl<S, T> FromRequestParts<S> for ProblemQuery<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_problem(&rejection)),
        }
    }
}

fn query_problem(rejection: &QueryRejection) -> Response {
    problem(Problem::new(StatusCode::BAD_REQUEST).with_detail(rejection.body_text()))
}
