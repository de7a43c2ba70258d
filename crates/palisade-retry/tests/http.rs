//! Retries over real HTTP on 127.0.0.1, through a hyper client: a server that answers `503`
//! with `Retry-After: 1` and then `200`, and a streamed `POST` body replayed byte for byte.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use bytes::Bytes;
use http::Request;
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use palisade_retry::{Backoff, HttpRetryLayer, Jitter};
use palisade_test_support::TestServer;
use tower::{Layer, ServiceExt};

fn backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(20))
        .jitter(Jitter::None)
        .max_attempts(3)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_503_with_retry_after_is_waited_for_then_retried() {
    let calls: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let seen = calls.clone();
    let server = TestServer::spawn(Router::new().route(
        "/report",
        get(move || {
            let mut calls = seen.lock().unwrap();
            calls.push(Instant::now());
            let first = calls.len() == 1;
            async move {
                if first {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        [("retry-after", "1")],
                        "busy",
                    )
                        .into_response()
                } else {
                    (StatusCode::OK, "the report").into_response()
                }
            }
        }),
    ))
    .await;
    let client = HttpRetryLayer::new(backoff()).layer(
        Client::builder(TokioExecutor::new())
            .build_http::<palisade_retry::ReplayBody<Full<Bytes>>>(),
    );
    let response = client
        .oneshot(
            Request::get(server.url("/report"))
                .body(Full::<Bytes>::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "the report");
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 2);
    assert!(
        calls[1] - calls[0] >= Duration::from_secs(1),
        "the server's Retry-After was honoured: {:?}",
        calls[1] - calls[0]
    );
}

#[tokio::test]
async fn a_streamed_post_body_is_replayed_byte_for_byte() {
    let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let seen = bodies.clone();
    let server = TestServer::spawn(Router::new().route(
        "/orders",
        post(move |body: Body| {
            let seen = seen.clone();
            async move {
                let bytes = body.collect().await.unwrap().to_bytes();
                let mut seen = seen.lock().unwrap();
                seen.push(bytes);
                if seen.len() == 1 {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::CREATED
                }
            }
        }),
    ))
    .await;

    // The body arrives in pieces, as from a file or another connection.
    let chunks: Vec<Bytes> = (0..50u8)
        .map(|i| Bytes::from(vec![b'a' + i % 26; 1000]))
        .collect();
    let expected: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    tokio::spawn(async move {
        for chunk in chunks {
            tx.send(Ok(Frame::data(chunk))).await.unwrap();
            tokio::task::yield_now().await;
        }
    });
    let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    let client = HttpRetryLayer::new(backoff())
        .replay_limit(1 << 20)
        .layer(Client::builder(TokioExecutor::new()).build_http());
    let request = Request::post(server.url("/orders"))
        .header("idempotency-key", "order-7")
        .body(body)
        .unwrap();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 2, "a first attempt and one retry");
    assert_eq!(
        bodies[0],
        expected.as_slice(),
        "the first attempt sent it all"
    );
    assert_eq!(
        bodies[1],
        expected.as_slice(),
        "the retry sent the same bytes"
    );
}
