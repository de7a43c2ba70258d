//! Palisade without axum: a plain hyper server whose accept loop hands each connection the
//! server stack, and a hyper-util client behind the client stack, calling it.
//!
//! ```text
//! cargo run --example hyper     # serves on 127.0.0.1:0, calls it, prints each answer
//! ```
//!
//! Server stack, outermost first: the client address (the accept loop puts the peer's
//! `SocketAddr` in each request's extensions, where `ClientIpLayer` looks first), a 2 s
//! timeout, 20 requests a second per address, an API key, the `orders:write` scope and a strict
//! JSON body, in front of a `tower::service_fn` handler that reads the caller's `Identity` and
//! the checked body. Client stack: retries of idempotent requests, a breaker, a timeout per
//! attempt, the deadline sent along.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use palisade::apikey::{ApiKeyLayer, KeySet, KeyStore};
use palisade::breaker::Breaker;
use palisade::json::JsonLayer;
use palisade::ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
use palisade::retry::{Backoff, HttpRetryLayer, ReplayBody};
use palisade::timeout::DeadlineHeader;
use palisade::{BoxError, Identity, ServiceBuilderExt as _, TrustedProxies};
use tower::{ServiceBuilder, ServiceExt as _};

/// The demo key (public: only for this example) and its key-file line.
const DEMO_KEY: &str = "pal_demo_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM";
const DEMO_KEYS: &str = "sha256:62ec36c714dc42161581dd5a82c698b6a7e7c14459cc95e5a24ea65cdd38228b principal=demo scopes=orders:write";

/// The handler: a plain tower service. The layers before it checked the key, the scope and the
/// body, so both are here.
async fn create_order(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let caller = request
        .extensions()
        .get::<Identity>()
        .map_or("nobody", Identity::subject)
        .to_owned();
    let body = request.into_body().collect().await?.to_bytes();
    let order: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(format!(
        "{} x {} for {caller}",
        order["quantity"], order["item"]
    ))));
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// Serves `listener` with hyper alone: one task per connection, the peer's address in every
/// request's extensions.
async fn serve(listener: tokio::net::TcpListener) -> Result<(), BoxError> {
    let stack = ServiceBuilder::new()
        .client_ip(TrustedProxies::none())
        .http_timeout(Duration::from_secs(2))
        .rate_limits(
            RateLimitLayer::builder()
                .tier(Tier::new(
                    "ip",
                    Quota::per_second(20).with_burst(40),
                    KeyBy::client_ip(),
                ))
                .build()?,
        )
        .layer(ApiKeyLayer::new(KeyStore::new(KeySet::parse(DEMO_KEYS)?)))
        .layer(palisade::require_scopes(["orders:write"]))
        .strict_json(JsonLayer::new())
        .service_fn(create_order);
    loop {
        // A failed accept (too many open files, a connection reset before it was taken) loses
        // that connection, not the server.
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                eprintln!("accept: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // The stack, cloned per connection (one reference count per layer's state), and the
        // peer put where `ClientIpLayer` finds it.
        let service = stack.clone().map_request(move |mut request: Request<_>| {
            request.extensions_mut().insert::<SocketAddr>(peer);
            request
        });
        tokio::spawn(async move {
            let served = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
            if let Err(err) = served {
                eprintln!("connection from {peer}: {err}");
            }
        });
    }
}

/// Calls the server through the client stack.
async fn calls(addr: SocketAddr) -> Result<(), BoxError> {
    let transport = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<ReplayBody<Full<Bytes>>>();
    let client = ServiceBuilder::new()
        .http_retry(HttpRetryLayer::new(
            Backoff::exponential(Duration::from_millis(50))
                .max_attempts(3)
                .build()?,
        ))
        .http_breaker(Breaker::builder().name("orders").build()?)
        .attempt_timeout(Duration::from_secs(1))
        .propagate_deadline(DeadlineHeader::grpc_timeout())
        .service(transport.map_err(BoxError::from));
    let calls: [(&str, Option<&str>, &str, &str); 4] = [
        (
            "an order with the key",
            Some(DEMO_KEY),
            "application/json",
            r#"{"item":"tea","quantity":2}"#,
        ),
        (
            "an order without a key",
            None,
            "application/json",
            r#"{"item":"tea","quantity":2}"#,
        ),
        (
            "a key named twice in the body",
            Some(DEMO_KEY),
            "application/json",
            r#"{"item":"tea","item":"gin"}"#,
        ),
        (
            "a body that is not JSON",
            Some(DEMO_KEY),
            "text/plain",
            "two teas",
        ),
    ];
    for (what, key, content_type, body) in calls {
        let mut request =
            Request::post(format!("http://{addr}/orders")).header("content-type", content_type);
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = client
            .clone()
            .oneshot(request.body(Full::new(Bytes::from(body)))?)
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        let shown = if status.is_success() {
            String::from_utf8_lossy(&body).into_owned()
        } else {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|problem| problem["title"].as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        println!("{what:<32} {} {shown}", status.as_u16());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(serve(listener));
    println!("hyper on {addr}, behind the server stack\n");
    let result = calls(addr).await;
    if server.is_finished() {
        // The server stopped early: its own error says why the calls failed.
        return server.await?;
    }
    server.abort();
    result
}
