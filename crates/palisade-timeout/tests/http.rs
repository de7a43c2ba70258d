//! Real HTTP on 127.0.0.1: the 504 answer and deadline propagation between two servers.

use std::time::Duration;

use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use palisade_core::Deadline;
use palisade_test_support::{Client, TestServer};
use palisade_timeout::{DeadlineHeader, HttpTimeoutLayer, PropagateDeadlineLayer};
use tower::{Layer, ServiceExt};

#[tokio::test]
async fn a_slow_route_answers_504_problem_json_over_http() {
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/fast", get(|| async { "fast" }))
        .layer(HttpTimeoutLayer::new(Duration::from_millis(500)));
    let server = TestServer::spawn(app).await;
    let client = Client::new();

    let slow = client.get(&server.url("/slow"), &[]).await;
    assert_eq!(slow.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        slow.header("content-type"),
        Some("application/problem+json")
    );
    let json = slow.json();
    assert_eq!(json["status"], 504);
    assert_eq!(json["title"], "Request timed out");
    assert!(json.get("detail").is_some());

    let fast = client.get(&server.url("/fast"), &[]).await;
    assert_eq!(fast.status, StatusCode::OK);
    assert_eq!(fast.text(), "fast");
}

/// The upstream honours `grpc-timeout` (capped at 30 s) and reports the budget it received.
fn upstream() -> Router {
    Router::new()
        .route(
            "/budget",
            get(
                |headers: HeaderMap, Extension(deadline): Extension<Deadline>| async move {
                    let received = headers
                        .get("grpc-timeout")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    format!("{received} {}", deadline.remaining().as_millis())
                },
            ),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .layer(
            HttpTimeoutLayer::builder(Duration::from_secs(30))
                .inbound_deadline(DeadlineHeader::grpc_timeout(), Duration::from_secs(30))
                .build()
                .unwrap(),
        )
}

/// The front server gives each request `timeout` and calls the upstream with what is left.
fn front(upstream_url: String, timeout: Duration) -> Router {
    let client =
        PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(Client::new().hyper());
    Router::new()
        .route(
            "/{path}",
            get(
                move |axum::extract::Path(path): axum::extract::Path<String>,
                      Extension(deadline): Extension<Deadline>| async move {
                    let base = &upstream_url;
                    let mut request = Request::get(format!("{base}/{path}"))
                        .body(Full::<Bytes>::default())
                        .unwrap();
                    request.extensions_mut().insert(deadline);
                    match ServiceExt::oneshot(client, request).await {
                        Ok(response) => {
                            let status = response.status();
                            let body = response.into_body().collect().await.unwrap().to_bytes();
                            (status, String::from_utf8_lossy(&body).into_owned())
                        }
                        Err(err) if err.is::<palisade_timeout::Elapsed>() => {
                            (StatusCode::GATEWAY_TIMEOUT, "upstream deadline".to_owned())
                        }
                        Err(err) => (StatusCode::BAD_GATEWAY, err.to_string()),
                    }
                },
            ),
        )
        .layer(HttpTimeoutLayer::new(timeout))
}

#[tokio::test]
async fn the_deadline_travels_to_the_upstream() {
    let upstream = TestServer::spawn(upstream()).await;
    let front = TestServer::spawn(front(upstream.url(""), Duration::from_secs(2))).await;

    let reply = Client::new().get(&front.url("/budget"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let text = reply.text();
    let (header, upstream_left) = text.split_once(' ').unwrap();
    let sent = DeadlineHeader::grpc_timeout()
        .parse(header.as_bytes())
        .unwrap();
    assert!(
        sent > Duration::ZERO && sent <= Duration::from_secs(2),
        "sent {sent:?}"
    );
    let upstream_left: u64 = upstream_left.parse().unwrap();
    assert!(
        upstream_left <= 2000,
        "the upstream's deadline follows ours, not its 30 s default: {upstream_left}"
    );
}

#[tokio::test]
async fn a_short_front_deadline_cuts_a_slow_upstream() {
    let upstream = TestServer::spawn(upstream()).await;
    let front = TestServer::spawn(front(upstream.url(""), Duration::from_millis(200))).await;

    let reply = Client::new().get(&front.url("/slow"), &[]).await;
    // Whichever fires first, the answer is a 504 well before the upstream's 30 s.
    assert_eq!(
        reply.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        reply.text()
    );
}
