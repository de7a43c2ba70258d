//! A tier whose key requests lack says so once and puts them in one shared bucket, instead of
//! leaving the service silently unlimited (issue 16, item 3). Its own test binary: `tracing`'s
//! per-callsite interest cache is process-wide.

use axum::Router;
use axum::routing::get;
use palisade_core::{ClientIpLayer, TrustedProxies};
use palisade_ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
use palisade_test_support::{CapturedLogs, Client, TestServer};

/// A peer-address extension no server inserts.
#[derive(Clone, Copy)]
struct NotThere(std::net::IpAddr);

#[tokio::test]
async fn a_tier_whose_key_is_missing_says_so_once_and_still_limits() {
    let logs = CapturedLogs::start();
    let limits = RateLimitLayer::builder()
        .tier(Tier::new("ip", Quota::per_second(1), KeyBy::client_ip()))
        .build()
        .unwrap();
    // The mistake: this `ClientIpLayer` is told to read the peer from an extension the
    // server never inserts, so no request gets a `ClientIp`.
    let app = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .layer(limits)
        .layer(
            ClientIpLayer::new(TrustedProxies::none())
                .peer(|ext| ext.get::<NotThere>().map(|peer| peer.0)),
        );
    let server = TestServer::spawn(app).await;
    let client = Client::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            client
                .get(&server.url("/orders"), &[])
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [200, 429, 429],
        "keyless requests share one bucket"
    );
    let text = logs.contents();
    assert_eq!(
        text.matches("ClientIpLayer found no peer address").count(),
        1,
        "the client-IP layer says so once too: {text}"
    );
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
