//! Layers that meet on the client side, over real HTTP on 127.0.0.1: retry outside a breaker.
#![cfg(all(feature = "retry", feature = "breaker"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use palisade::breaker::{Breaker, BreakerLayer, BreakerOpen, Window};
use palisade_test_support::TestServer;
use tower::{Layer, ServiceExt};

fn breaker(name: &'static str) -> Breaker {
    Breaker::builder()
        .name(name)
        .window(Window::count(20))
        .minimum_calls(4)
        .failure_rate(0.5)
        .wait(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A server whose `/work` answers the status in `status`, counting the calls that reach it.
async fn upstream(status: Arc<AtomicU16>, hits: Arc<AtomicUsize>) -> TestServer {
    TestServer::spawn(Router::new().route(
        "/work",
        get(move || {
            let status = status.load(Ordering::SeqCst);
            hits.fetch_add(1, Ordering::SeqCst);
            async move { StatusCode::from_u16(status).unwrap() }
        }),
    ))
    .await
}

/// A retry layer outside the breaker never retries its refusal (issue 17: the gateway needed a
/// classifier of its own for that).
#[tokio::test]
async fn a_retry_outside_never_retries_the_breaker_s_refusal() {
    let status = Arc::new(AtomicU16::new(503));
    let hits = Arc::new(AtomicUsize::new(0));
    let server = upstream(status.clone(), hits.clone()).await;
    let breaker = breaker("upstream");
    breaker.force_open();
    let breaker_layer = BreakerLayer::new(breaker.clone());
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    let inner = tower::service_fn(
        move |request: Request<palisade::retry::ReplayBody<Full<Bytes>>>| {
            counted.fetch_add(1, Ordering::SeqCst);
            let client = breaker_layer.layer(
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<palisade::retry::ReplayBody<Full<Bytes>>>(),
            );
            async move { client.oneshot(request).await }
        },
    );
    let backoff = palisade::retry::Backoff::constant(Duration::from_millis(1))
        .max_attempts(3)
        .build()
        .unwrap();
    let client = palisade::retry::HttpRetryLayer::new(backoff).layer(inner);
    let request = Request::get(server.url("/work"))
        .body(Full::<Bytes>::default())
        .unwrap();
    let refused = client.oneshot(request).await.unwrap_err();
    assert!(refused.is::<BreakerOpen>() || palisade::refused_locally(&refused));
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "not retried");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
