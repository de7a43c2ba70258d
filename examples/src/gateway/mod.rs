//! The demo gateway: an axum service behind Palisade's layers.
//!
//! Routes: `GET /healthz` and `GET /readyz` (open; `/readyz` reports the breaker), and behind an
//! API key `GET /v1/hello`, `POST /v1/echo` (strict JSON, scope `echo:write`), `GET /v1/slow?ms=N`,
//! which shows the timeout layer answering `504`, and `GET /v1/upstream`, which calls the demo
//! upstream through a circuit breaker and a per-attempt timeout.
//! Every error the gateway produces is a problem+json response.
//!
//! One module per concern, so each layer's part is found in seconds:
//!
//! | module | what it wires |
//! |---|---|
//! | [`flags`] | every command-line flag and environment variable, in one place |
//! | [`config_file`] | `--config FILE`: the same settings from TOML, under the flags |
//! | [`server`] | the HTTP server: header-read timeout, bounded graceful shutdown |
//! | [`timeout`] | `palisade-timeout`: the total timeout and the caller's `grpc-timeout` |
//! | [`apikey`] | `palisade-apikey`: the key store, the embedded demo key, reload on SIGHUP |
//! | [`json`] | `palisade-json`: strict JSON bodies on `/v1`, within size and nesting limits |
//! | [`jwt`] | `palisade-jwt`: JWTs on `/v1` beside API keys, keys by OIDC discovery |
//! | [`idp`] | the demo's OIDC issuer: discovery, a JWKS, the demo token |
//! | [`ratelimit`] | `palisade-ratelimit`: per IP before auth, per caller after, tighter on one route; Redis |
//! | [`outbound`] | the client to the upstream: `palisade-breaker`, per-attempt timeout, deadline propagation |
//! | [`upstream`] | the demo's in-process upstream, failing and slow on demand |
//! | [`logging`] | request spans that never hold a query string or a raw path |
//! | [`panics`] | a panic anywhere answers `500` with a problem and is logged escaped |
//! | [`problems`] | problem+json for query rejections and bare error statuses (405, ...) |
//! | [`routes`] | the handlers |
//! | [`metrics`] | `/metrics` on its own listener (`--metrics-addr`) |
//! | [`trace`] | W3C `traceparent` in and out; OpenTelemetry export (feature `otel`) |

pub mod apikey;
pub mod config_file;
pub mod flags;
pub mod idp;
pub mod json;
pub mod jwt;
pub mod logging;
pub mod metrics;
pub mod outbound;
pub mod panics;
pub mod problems;
pub mod ratelimit;
pub mod routes;
pub mod server;
pub mod timeout;
pub mod trace;
pub mod upstream;

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use http::HeaderName;
use palisade::apikey::{ApiKeyLayer, KeyStore};
use palisade::{TrustedProxies, require_scopes};
use tower::ServiceBuilder;
use tower_http::ServiceBuilderExt as _;

pub use apikey::{DEMO_KEY, DEMO_KEYS};
pub use server::{ServerConfig, serve};

/// The largest request body accepted by default.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The deepest JSON nesting accepted by default.
pub const MAX_JSON_DEPTH: u32 = 32;

/// What the gateway's routes and layers need; every field has an embedded default.
#[derive(Debug, Clone)]
pub struct Config {
    /// The timeout of every request (and the most a caller's `grpc-timeout` may ask for).
    pub timeout: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// The API keys `/v1/*` accepts (none: API keys are not accepted); replace its set to
    /// rotate keys live.
    pub keys: Option<KeyStore>,
    /// The upstream `/v1/upstream` calls (none: it answers `503`).
    pub outbound: Option<outbound::Outbound>,
    /// The largest request body.
    pub max_body: usize,
    /// The deepest JSON nesting.
    pub max_json_depth: u32,
    /// JWTs accepted on `/v1` beside API keys (none: API keys only).
    pub jwt: Option<palisade::jwt::JwtLayer>,
    /// The rate limits.
    pub limits: ratelimit::Limits,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(2),
            trusted_proxies: TrustedProxies::none(),
            keys: Some(apikey::demo_store()),
            outbound: None,
            max_body: MAX_BODY_BYTES,
            max_json_depth: MAX_JSON_DEPTH,
            jwt: None,
            limits: ratelimit::Limits::default(),
        }
    }
}

/// Builds the gateway's router with its layers.
///
/// # Errors
///
/// When the configuration is invalid (a zero timeout, body size or JSON depth, no credential
/// source).
pub fn app(config: &Config) -> Result<Router, palisade::BuildError> {
    app_with_routes(config, Router::new())
}

/// [`app`], with `extra` routes of your own beside `/healthz`, `/readyz` and `/v1`, behind the
/// outer layers (panics, request ids, logs, the total timeout, the client address).
///
/// # Errors
///
/// As [`app`].
pub fn app_with_routes(
    config: &Config,
    extra: Router<routes::Shared>,
) -> Result<Router, palisade::BuildError> {
    let timeout = timeout::layer(config.timeout)?;
    let json = json::layer(config.max_body, config.max_json_depth)?;
    // Every `/v1` route needs an API key or a JWT, then a body that is strict JSON; `/v1/echo`
    // also the `echo:write` scope.
    let v1 = Router::new()
        .route(
            "/hello",
            get(routes::hello).route_layer(require_scopes(["hello:read"])),
        )
        .route(
            "/echo",
            post(routes::echo).route_layer(require_scopes(["echo:write"])),
        )
        .route("/slow", get(routes::slow))
        .route("/upstream", get(routes::upstream))
        .layer(json)
        .layer(ratelimit::per_caller(&config.limits)?);
    let v1 = match (&config.keys, &config.jwt) {
        (Some(keys), Some(jwt)) => v1.layer(palisade::AnyCredentialLayer::new(
            ApiKeyLayer::new(keys.clone()),
            jwt.clone(),
        )),
        (Some(keys), None) => v1.layer(ApiKeyLayer::new(keys.clone())),
        (None, Some(jwt)) => v1.layer(jwt.clone()),
        (None, None) => {
            return Err(palisade::BuildError::new(
                "credentials",
                "/v1 needs API keys or a JWT issuer",
            ));
        }
    };
    // Before authentication, so every attempt counts, refused credentials included.
    let v1 = v1.layer(ratelimit::per_ip(&config.limits)?);
    let request_id = HeaderName::from_static("x-request-id");
    Ok(Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz))
        .nest("/v1", v1)
        .merge(extra)
        .fallback(routes::not_found)
        // Other extractors answer 413 past this; `problems` renders it as problem+json.
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body))
        // Inside the router, so the matched route is known: the span records it.
        .layer(axum::middleware::from_fn(logging::record_route))
        // The client address, resolved once through the trusted proxies, for every layer.
        .layer(ratelimit::client_ip(config.trusted_proxies.clone()))
        .with_state(std::sync::Arc::new(routes::AppState {
            trusted_proxies: config.trusted_proxies.clone(),
            upstream: config
                .outbound
                .as_ref()
                .map(|outbound| routes::UpstreamState {
                    client: outbound.client(),
                    base_url: outbound.base_url.clone(),
                    breaker: outbound.breaker.clone(),
                }),
        }))
        // Outermost first: panics caught, request id, secrets kept out of logs, trace span, bare
        // error statuses as problems, then the total timeout.
        .layer(
            ServiceBuilder::new()
                .layer(panics::layer())
                .set_x_request_id(tower_http::request_id::MakeRequestUuid)
                .sensitive_headers([
                    http::header::AUTHORIZATION,
                    HeaderName::from_static("x-api-key"),
                ])
                .layer(trace::layer())
                .layer(logging::trace_layer())
                .layer(axum::middleware::from_fn(trace::enter))
                .propagate_request_id(request_id)
                .layer(axum::middleware::map_response(
                    problems::bare_errors_as_problems,
                ))
                .layer(timeout),
        ))
}
