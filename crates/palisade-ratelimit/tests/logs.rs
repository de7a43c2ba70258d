//! A tier whose key requests lack says so once, instead of leaving the service silently
//! unlimited. Its own test binary: `tracing`'s per-callsite interest cache is process-wide.

use axum::Router;
use axum::routing::get;
use palisade_core::{ClientIpLayer, TrustedProxies};
use palisade_ratelimit::{Key, Quota, RateLimitLayer, Tier};
use palisade_test_support::{CapturedLogs, Client, TestServer};

#[tokio::test]
async fn a_tier_whose_key_is_missing_warns_once() {
    let logs = CapturedLogs::start();
    let limits = RateLimitLayer::builder()
        .tier(Tier::new("ip", Quota::per_second(1), Key::client_ip()))
        .build()
        .unwrap();
    // The mistake: under axum the peer is `ConnectInfo`, and this `ClientIpLayer` reads a plain
    // `SocketAddr` (its default), so no request gets a `ClientIp`.
    let app = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .layer(limits)
        .layer(ClientIpLayer::new(TrustedProxies::none()));
    let server = TestServer::spawn(app).await;
    let client = Client::new();
    for _ in 0..3 {
        let reply = client.get(&server.url("/orders"), &[]).await;
        assert_eq!(
            reply.status,
            http::StatusCode::OK,
            "an uncounted request passes"
        );
    }
    let text = logs.contents();
    assert_eq!(
        text.matches("lacked this rate limit's key").count(),
        1,
        "said once per tier: {text}"
    );
    assert!(
        text.contains("tier=\"ip\"") || text.contains("tier=ip"),
        "{text}"
    );
    assert!(
        text.contains("ClientIpLayer"),
        "says what to install: {text}"
    );
}
