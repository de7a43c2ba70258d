//! The rate-limit layer over real HTTP on 127.0.0.1 with a hand-moved clock: exact
//! admit/refuse sequences, `Retry-After` and `RateLimit` values, tiers, routes, costs, shadow
//! and penalty modes, run-time quota changes, a gRPC client, and the client-side limiter.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use http::{Method, Request, StatusCode};
use palisade_core::problem::types;
use palisade_core::{
    ClientIpLayer, HttpClassifier, Identity, IdentitySource, Outcome, TrustedProxies,
};
use palisade_ratelimit::{
    ClientError, ClientRateLimitLayer, FakeClock, KeyBy, Keyless, Quota, RateLimitLayer, Tier,
};
use palisade_test_support::{Client, Reply, TestServer};
use tower::{Layer, ServiceExt, service_fn};

/// Every request carries `X-Forwarded-For: <client>` from the trusted loopback proxy, and an
/// `Identity` for `x-user`, so tests pick the client IP and the caller.
fn app(limits: RateLimitLayer) -> Router {
    Router::new()
        .route("/orders", get(|| async { "orders" }))
        .route("/export", post(|| async { "exported" }))
        .route(
            "/flaky",
            get(|request: Request<axum::body::Body>| async move {
                if request.headers().contains_key("x-fail") {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/login",
            post(|request: Request<axum::body::Body>| async move {
                if request.headers().contains_key("x-good-password") {
                    StatusCode::OK
                } else {
                    StatusCode::UNAUTHORIZED
                }
            }),
        )
        .layer(limits)
        .layer(axum::middleware::from_fn(
            |mut request: Request<axum::body::Body>, next: axum::middleware::Next| async move {
                if let Some(user) = request
                    .headers()
                    .get("x-user")
                    .and_then(|v| v.to_str().ok())
                {
                    let identity = Identity::new(user.to_owned(), IdentitySource::ApiKey);
                    request.extensions_mut().insert(identity);
                }
                next.run(request).await
            },
        ))
        // Finds axum's `ConnectInfo` itself (palisade-core's `axum` feature).
        .layer(ClientIpLayer::new(
            TrustedProxies::new(["127.0.0.1/32"]).unwrap(),
        ))
}

async fn get_as(server: &TestServer, path: &str, ip: &str, user: Option<&str>) -> Reply {
    let mut headers = vec![("x-forwarded-for", ip)];
    if let Some(user) = user {
        headers.push(("x-user", user));
    }
    Client::new().get(&server.url(path), &headers).await
}

async fn post_as(server: &TestServer, path: &str, ip: &str, extra: &[(&str, &str)]) -> Reply {
    let mut request = Request::post(server.url(path)).header("x-forwarded-for", ip);
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    Client::new()
        .send(request.body(http_body_util::Full::default()).unwrap())
        .await
}

fn statuses(replies: &[Reply]) -> Vec<u16> {
    replies.iter().map(|r| r.status.as_u16()).collect()
}

#[tokio::test]
async fn per_ip_sequence_with_retry_after_and_headers() {
    let clock = FakeClock::new();
    let limits = RateLimitLayer::builder()
        .tier(Tier::new(
            "ip",
            Quota::per_second(2).with_burst(3),
            KeyBy::client_ip(),
        ))
        .headers_on_success(true)
        .clock(clock.clone())
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    let mut replies = Vec::new();
    for _ in 0..4 {
        replies.push(get_as(&server, "/orders", "203.0.113.1", None).await);
    }
    assert_eq!(statuses(&replies), [200, 200, 200, 429]);
    let remaining: Vec<Option<&str>> = replies.iter().map(|r| r.header("ratelimit")).collect();
    assert_eq!(
        remaining,
        [
            Some("\"ip\";r=2;t=1"),
            Some("\"ip\";r=1;t=1"),
            Some("\"ip\";r=0;t=2"),
            Some("\"ip\";r=0;t=2")
        ]
    );
    let refused = &replies[3];
    assert_eq!(
        refused.header("retry-after"),
        Some("1"),
        "500 ms rounds up to 1 s"
    );
    assert_eq!(refused.header("ratelimit-policy"), Some("\"ip\";q=2;w=1"));
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(refused.json()["type"], types::RATE_LIMITED);
    assert_eq!(refused.json()["limit"], "ip");
    // Another client is untouched; after the wait the first is admitted again.
    assert_eq!(
        get_as(&server, "/orders", "203.0.113.2", None).await.status,
        200
    );
    clock.advance(Duration::from_millis(500));
    assert_eq!(
        get_as(&server, "/orders", "203.0.113.1", None).await.status,
        200
    );
    assert_eq!(
        get_as(&server, "/orders", "203.0.113.1", None).await.status,
        429
    );
}

#[tokio::test]
async fn tiers_routes_and_costs() {
    let clock = FakeClock::new();
    let limits = RateLimitLayer::builder()
        .tier(Tier::new("ip", Quota::per_second(100), KeyBy::client_ip()))
        .tier(Tier::new("user", Quota::per_minute(5), KeyBy::identity()).keyless(Keyless::Pass))
        .tier(
            Tier::new("export", Quota::per_minute(10), KeyBy::identity())
                .route(Some(Method::POST), "/export")
                .cost(5),
        )
        .clock(clock)
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    // No identity: the user tier lets anonymous callers pass, as it was told to.
    for _ in 0..8 {
        assert_eq!(
            get_as(&server, "/orders", "198.51.100.1", None)
                .await
                .status,
            200
        );
    }
    // ada: 5 per minute whatever her address.
    let mut replies = Vec::new();
    for i in 0..6 {
        replies.push(
            get_as(
                &server,
                "/orders",
                &format!("198.51.100.{}", 10 + i),
                Some("ada"),
            )
            .await,
        );
    }
    assert_eq!(statuses(&replies), [200, 200, 200, 200, 200, 429]);
    assert_eq!(replies[5].json()["limit"], "user");
    // Exports cost 5 of 10: two, then refused; GETs do not count there.
    let export = |user: &'static str| {
        let server = &server;
        async move {
            let request = Request::post(server.url("/export"))
                .header("x-forwarded-for", "198.51.100.50")
                .header("x-user", user)
                .body(http_body_util::Full::default())
                .unwrap();
            Client::new().send(request).await
        }
    };
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(export("bob").await);
    }
    assert_eq!(statuses(&replies), [200, 200, 429]);
    assert_eq!(replies[2].json()["limit"], "export");
}

#[tokio::test]
async fn shadow_mode_never_refuses() {
    let limits = RateLimitLayer::builder()
        .tier(Tier::new("ip", Quota::per_minute(1), KeyBy::client_ip()).shadow(true))
        .clock(FakeClock::new())
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    for _ in 0..5 {
        assert_eq!(
            get_as(&server, "/orders", "192.0.2.1", None).await.status,
            200
        );
    }
}

#[tokio::test]
async fn penalty_mode_counts_only_failures() {
    let clock = FakeClock::new();
    let limits = RateLimitLayer::builder()
        .tier(
            Tier::new("login-failures", Quota::per_minute(3), KeyBy::client_ip())
                .route(Some(Method::POST), "/login")
                .penalty(|status| {
                    if status == StatusCode::UNAUTHORIZED {
                        Outcome::Failure
                    } else {
                        Outcome::Success
                    }
                }),
        )
        .clock(clock.clone())
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    // Good logins never count.
    for _ in 0..10 {
        let reply = post_as(&server, "/login", "192.0.2.7", &[("x-good-password", "1")]).await;
        assert_eq!(reply.status, 200);
    }
    // Three failures, then even a good password is refused until the quota recovers.
    let mut replies = Vec::new();
    for _ in 0..3 {
        replies.push(post_as(&server, "/login", "192.0.2.7", &[]).await);
    }
    assert_eq!(statuses(&replies), [401, 401, 401]);
    let refused = post_as(&server, "/login", "192.0.2.7", &[("x-good-password", "1")]).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("20"));
    // Another address is not slowed.
    assert_eq!(
        post_as(&server, "/login", "192.0.2.8", &[("x-good-password", "1")])
            .await
            .status,
        200
    );
    clock.advance(Duration::from_secs(20));
    assert_eq!(
        post_as(&server, "/login", "192.0.2.7", &[("x-good-password", "1")])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn a_request_refused_by_a_later_tier_spends_nothing_earlier() {
    let limits = RateLimitLayer::builder()
        .tier(Tier::new("global", Quota::per_minute(3), KeyBy::global()))
        .tier(Tier::new("ip", Quota::per_minute(1), KeyBy::client_ip()))
        .clock(FakeClock::new())
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    // One noisy address is refused by its own tier, and does not drain the global one.
    let mut replies = Vec::new();
    for _ in 0..5 {
        replies.push(get_as(&server, "/orders", "203.0.113.50", None).await);
    }
    assert_eq!(statuses(&replies), [200, 429, 429, 429, 429]);
    assert_eq!(replies[1].json()["limit"], "ip");
    let others: Vec<Reply> =
        get_each(&server, ["203.0.113.51", "203.0.113.52", "203.0.113.53"]).await;
    assert_eq!(statuses(&others), [200, 200, 429]);
    assert_eq!(others[2].json()["limit"], "global");
}

async fn get_each<const N: usize>(server: &TestServer, ips: [&str; N]) -> Vec<Reply> {
    let mut replies = Vec::new();
    for ip in ips {
        replies.push(get_as(server, "/orders", ip, None).await);
    }
    replies
}

#[tokio::test]
async fn a_get_limit_counts_head_too() {
    let limits = RateLimitLayer::builder()
        .tier(
            Tier::new("orders", Quota::per_minute(1), KeyBy::client_ip())
                .route(Some(Method::GET), "/orders"),
        )
        .clock(FakeClock::new())
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    let head = |ip: &'static str| {
        let server = &server;
        async move {
            let request = Request::head(server.url("/orders"))
                .header("x-forwarded-for", ip)
                .body(http_body_util::Full::default())
                .unwrap();
            Client::new().send(request).await
        }
    };
    assert_eq!(head("192.0.2.20").await.status, 200);
    assert_eq!(
        get_as(&server, "/orders", "192.0.2.20", None).await.status,
        429
    );
    assert_eq!(
        get_as(&server, "/orders", "192.0.2.21", None).await.status,
        200
    );
    assert_eq!(head("192.0.2.21").await.status, 429);
}

#[tokio::test]
async fn penalty_mode_takes_a_classifier() {
    let limits = RateLimitLayer::builder()
        .tier(
            Tier::new("upstream-errors", Quota::per_minute(2), KeyBy::client_ip())
                .penalty_classified(HttpClassifier::default()),
        )
        .clock(FakeClock::new())
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    let flaky = |fail: bool| {
        let server = &server;
        async move {
            let mut headers = vec![("x-forwarded-for", "192.0.2.9")];
            if fail {
                headers.push(("x-fail", "1"));
            }
            Client::new().get(&server.url("/flaky"), &headers).await
        }
    };
    // Successes and 4xx never count under `HttpClassifier`.
    for _ in 0..5 {
        assert_eq!(flaky(false).await.status, 200);
    }
    let mut replies = Vec::new();
    for _ in 0..2 {
        replies.push(flaky(true).await);
    }
    assert_eq!(statuses(&replies), [503, 503]);
    let refused = flaky(false).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["limit"], "upstream-errors");
}

#[tokio::test]
async fn a_quota_changes_at_run_time_without_losing_state() {
    let clock = FakeClock::new();
    let limits = RateLimitLayer::builder()
        .tier(Tier::new("ip", Quota::per_minute(2), KeyBy::client_ip()))
        .clock(clock.clone())
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits.clone())).await;
    assert_eq!(
        get_as(&server, "/orders", "192.0.2.9", None).await.status,
        200
    );
    assert_eq!(
        get_as(&server, "/orders", "192.0.2.9", None).await.status,
        200
    );
    assert_eq!(
        get_as(&server, "/orders", "192.0.2.9", None).await.status,
        429
    );
    limits.set_quota("ip", Quota::per_minute(3)).unwrap();
    // The two requests made still count: one more fits a burst of 3.
    assert_eq!(
        get_as(&server, "/orders", "192.0.2.9", None).await.status,
        200
    );
    assert_eq!(
        get_as(&server, "/orders", "192.0.2.9", None).await.status,
        429
    );
    assert!(limits.set_quota("nope", Quota::per_second(1)).is_err());
    assert!(limits.set_quota("ip", Quota::per_second(0)).is_err());
}

#[tokio::test]
async fn settings_are_checked() {
    let bad = [
        RateLimitLayer::builder().build(),
        RateLimitLayer::builder()
            .tier(Tier::new("a b", Quota::per_second(1), KeyBy::global()))
            .build(),
        RateLimitLayer::builder()
            .tier(Tier::new("a", Quota::per_second(1), KeyBy::global()))
            .tier(Tier::new("a", Quota::per_second(1), KeyBy::global()))
            .build(),
        RateLimitLayer::builder()
            .tier(Tier::new("a", Quota::per_second(5), KeyBy::global()).cost(6))
            .build(),
        RateLimitLayer::builder()
            .tier(Tier::new("a", Quota::per_second(1), KeyBy::global()))
            .capacity(10)
            .build(),
    ];
    for result in bad {
        assert!(result.is_err());
    }
    let mut many = RateLimitLayer::builder();
    for i in 0..65 {
        many = many.tier(Tier::new(
            format!("t{i}"),
            Quota::per_second(1),
            KeyBy::global(),
        ));
    }
    assert!(many.build().is_err(), "at most 64 tiers");
    // A new quota must still fit the tier's cost.
    let layer = RateLimitLayer::builder()
        .tier(Tier::new("export", Quota::per_second(10), KeyBy::global()).cost(5))
        .build()
        .unwrap();
    assert!(layer.set_quota("export", Quota::per_second(3)).is_err());
    assert!(layer.set_quota("export", Quota::per_second(5)).is_ok());
    assert!(layer.set_quota("nope", Quota::per_second(5)).is_err());
}

#[tokio::test]
async fn a_grpc_caller_gets_resource_exhausted() {
    use palisade_test_support::grpc::{
        self, hello::HelloRequest, hello::greeter_client::GreeterClient,
    };
    let limits = RateLimitLayer::builder()
        .tier(Tier::new("global", Quota::per_minute(1), KeyBy::global()))
        .clock(FakeClock::new())
        .build()
        .unwrap();
    let addr = grpc::serve_greeter_behind(limits).await;
    let mut client = GreeterClient::new(grpc::channel(addr).await);
    let hello = || HelloRequest {
        name: "ada".into(),
        count: 0,
    };
    assert!(client.say_hello(hello()).await.is_ok());
    let status = client.say_hello(hello()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());
}

/// Issue 16, item 3: under tonic the peer is in `TcpConnectInfo`, which `ClientIpLayer` did not
/// read, so a per-IP tier never applied. The tier refuses keyless requests here, so only a
/// found peer can give the answers below.
#[cfg(feature = "tonic")]
#[tokio::test]
async fn a_per_ip_limit_holds_on_a_tonic_server() {
    use palisade_test_support::grpc::{
        self, hello::HelloRequest, hello::greeter_client::GreeterClient,
    };
    let limits = RateLimitLayer::builder()
        .tier(Tier::new("ip", Quota::per_minute(2), KeyBy::client_ip()).keyless(Keyless::Refuse))
        .clock(FakeClock::new())
        .build()
        .unwrap();
    let stack = tower::ServiceBuilder::new()
        .layer(ClientIpLayer::new(TrustedProxies::none()))
        .layer(limits);
    let addr = grpc::serve_greeter_behind(stack).await;
    let mut client = GreeterClient::new(grpc::channel(addr).await);
    let hello = || HelloRequest {
        name: "ada".into(),
        count: 0,
    };
    assert!(client.say_hello(hello()).await.is_ok());
    assert!(client.say_hello(hello()).await.is_ok());
    let status = client.say_hello(hello()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
}

#[tokio::test]
async fn the_client_limiter_waits_then_gives_up() {
    let layer = ClientRateLimitLayer::new(Quota::per_second(10).with_burst(1))
        .max_wait(Duration::from_millis(500))
        .build()
        .unwrap();
    let service = layer.layer(service_fn(|n: u32| async move { Ok::<_, Infallible>(n) }));
    // The first passes at once; the second waits about 100 ms for its permit.
    assert_eq!(service.clone().oneshot(1).await.unwrap(), 1);
    assert_eq!(service.clone().oneshot(2).await.unwrap(), 2);
    // Clones share the quota: ten at once cannot all pass within 500 ms.
    let tight = ClientRateLimitLayer::new(Quota::per_second(10).with_burst(1))
        .max_wait(Duration::from_millis(150))
        .build()
        .unwrap()
        .layer(service_fn(|n: u32| async move { Ok::<_, Infallible>(n) }));
    let results = futures_join(tight, 10).await;
    let limited = results
        .iter()
        .filter(|r| matches!(r, Err(ClientError::Limited(_))))
        .count();
    assert!(limited >= 7, "{limited} of 10 limited");
    // Behind a `Buffer` (one worker calling for every handle) the quota is still one.
    let buffered = tower::buffer::Buffer::new(
        ClientRateLimitLayer::new(Quota::per_second(10).with_burst(1))
            .max_wait(Duration::from_millis(150))
            .build()
            .unwrap()
            .layer(service_fn(echo)),
        16,
    );
    // Ten callers at once, on local tasks (the `Send` proof through `Buffer` defeats the
    // compiler's higher-ranked reasoning in `tokio::spawn`; the limiter runs either way).
    let local = tokio::task::LocalSet::new();
    let results = local
        .run_until(async {
            let tasks: Vec<_> = (0..10u32)
                .map(|i| {
                    let service = buffered.clone();
                    tokio::task::spawn_local(async move { service.oneshot(i).await })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.unwrap());
            }
            results
        })
        .await;
    let (mut passed, mut limited) = (0, 0);
    for result in results {
        match result {
            Ok(_) => passed += 1,
            Err(error) => {
                let error = error.downcast::<ClientError<Infallible>>().unwrap();
                assert!(matches!(*error, ClientError::Limited(_)));
                limited += 1;
            }
        }
    }
    assert!(
        (1..=3).contains(&passed),
        "{passed} passed, {limited} limited"
    );
}

async fn echo(n: u32) -> Result<u32, Infallible> {
    Ok(n)
}

async fn futures_join<S>(service: S, n: u32) -> Vec<Result<u32, ClientError<Infallible>>>
where
    S: tower::Service<u32, Response = u32, Error = ClientError<Infallible>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let mut tasks = Vec::new();
    for i in 0..n {
        let service = service.clone();
        tasks.push(tokio::spawn(async move { service.oneshot(i).await }));
    }
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// Issue 16, item 3: a keyed tier whose key a request lacks was silently unlimited. By default
/// such requests share one bucket of the tier; `Keyless::Refuse` answers 503 and
/// `Keyless::Pass` lets them through, both only when asked for.
#[tokio::test]
async fn requests_without_a_key_share_a_bucket_unless_told_otherwise() {
    let clock = FakeClock::new();
    let limits = RateLimitLayer::builder()
        .tier(Tier::new("user", Quota::per_minute(3), KeyBy::identity()))
        .tier(
            Tier::new(
                "tenant",
                Quota::per_minute(100),
                KeyBy::header("x-tenant".parse().unwrap()),
            )
            .route(Some(Method::POST), "/export")
            .keyless(Keyless::Refuse),
        )
        .clock(clock)
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    // Anonymous callers from any address share one bucket of three.
    let mut replies = Vec::new();
    for i in 0..4 {
        replies.push(get_as(&server, "/orders", &format!("198.51.100.{i}"), None).await);
    }
    assert_eq!(statuses(&replies), [200, 200, 200, 429]);
    assert_eq!(replies[3].json()["limit"], "user");
    // A caller with an identity has a bucket of its own.
    assert_eq!(
        get_as(&server, "/orders", "198.51.100.9", Some("ada"))
            .await
            .status,
        200
    );
    // A tier told to refuse keyless requests answers 503 with a problem naming it.
    let refused = post_as(&server, "/export", "198.51.100.1", &[("x-user", "ada")]).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text()
    );
    assert_eq!(refused.json()["limit"], "tenant");
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    let admitted = post_as(
        &server,
        "/export",
        "198.51.100.1",
        &[("x-user", "bob"), ("x-tenant", "acme")],
    )
    .await;
    assert_eq!(admitted.status, StatusCode::OK);
}

/// Issue 16, item 2: one IPv6 /64 had 2^64 per-IP buckets (1,000 addresses of one /64 at 41
/// requests each were all admitted against `20/s burst 40`). 200 addresses of one /64 now share
/// one bucket; another /64 has its own; `client_network` sets other prefixes.
#[tokio::test]
async fn ipv6_clients_are_keyed_by_their_64() {
    let clock = FakeClock::new();
    let limits = RateLimitLayer::builder()
        .tier(Tier::new(
            "ip",
            Quota::per_second(20).with_burst(40),
            KeyBy::client_ip(),
        ))
        .clock(clock.clone())
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    let mut admitted = 0;
    for i in 0..200u32 {
        let address = format!(
            "2001:db8:1:2:{:x}:{:x}::{:x}",
            (i * 7919) % 0x1_0000,
            i,
            i + 1
        );
        if get_as(&server, "/orders", &address, None).await.status == StatusCode::OK {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 40, "one /64, one bucket of 40");
    assert_eq!(
        get_as(&server, "/orders", "2001:db8:1:3::1", None)
            .await
            .status,
        200,
        "the next /64 is another client"
    );
    // IPv4 stays per address.
    assert_eq!(
        get_as(&server, "/orders", "192.0.2.1", None).await.status,
        200
    );
    assert_eq!(
        get_as(&server, "/orders", "192.0.2.2", None).await.status,
        200
    );

    // Wider networks when asked: a /24 and a /48 each count as one client.
    let limits = RateLimitLayer::builder()
        .tier(Tier::new(
            "site",
            Quota::per_minute(2),
            KeyBy::client_network(24, 48),
        ))
        .clock(clock)
        .build()
        .unwrap();
    let server = TestServer::spawn(app(limits)).await;
    let mut replies = Vec::new();
    for address in ["192.0.2.1", "192.0.2.200", "192.0.2.77", "192.0.3.1"] {
        replies.push(get_as(&server, "/orders", address, None).await);
    }
    for address in [
        "2001:db8:5:1::1",
        "2001:db8:5:ffff::1",
        "2001:db8:5:42::1",
        "2001:db8:6::1",
    ] {
        replies.push(get_as(&server, "/orders", address, None).await);
    }
    assert_eq!(statuses(&replies), [200, 200, 429, 200, 200, 200, 429, 200]);
}

#[test]
fn network_prefixes_out_of_range_are_refused_at_build() {
    for (v4, v6) in [(0, 64), (33, 64), (32, 0), (32, 129)] {
        let built = RateLimitLayer::builder()
            .tier(Tier::new(
                "ip",
                Quota::per_second(1),
                KeyBy::client_network(v4, v6),
            ))
            .build();
        assert_eq!(built.unwrap_err().field(), "key", "/{v4} /{v6}");
    }
}

/// Issue 16, item 6: with a per-IP layer outside and a per-caller layer inside, the outer one
/// overwrote the inner one's fields: the caller tier's `429` said `"ip";r=31`, and admitted
/// responses never showed the caller tier. Now a refusal keeps the refusing tier's fields and
/// admitted responses carry both layers'.
#[tokio::test]
async fn stacked_layers_combine_their_fields_and_keep_a_refusal_s_own() {
    let clock = FakeClock::new();
    let per_ip = RateLimitLayer::builder()
        .tier(Tier::new(
            "ip",
            Quota::per_second(20).with_burst(40),
            KeyBy::client_ip(),
        ))
        .headers_on_success(true)
        .clock(clock.clone())
        .build()
        .unwrap();
    let per_user = RateLimitLayer::builder()
        .tier(Tier::new("user", Quota::per_minute(2), KeyBy::identity()))
        .headers_on_success(true)
        .clock(clock)
        .build()
        .unwrap();
    // Outermost first: the client address, the per-IP layer, the identity, the per-user layer.
    let router = Router::new()
        .route("/orders", get(|| async { "orders" }))
        .layer(per_user)
        .layer(axum::middleware::from_fn(
            |mut request: Request<axum::body::Body>, next: axum::middleware::Next| async move {
                request
                    .extensions_mut()
                    .insert(Identity::new("ada", IdentitySource::ApiKey));
                next.run(request).await
            },
        ))
        .layer(per_ip)
        .layer(ClientIpLayer::new(
            TrustedProxies::new(["127.0.0.1/32"]).unwrap(),
        ));
    let server = TestServer::spawn(router).await;
    let first = get_as(&server, "/orders", "203.0.113.5", Some("ada")).await;
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some("\"user\";q=2;w=60, \"ip\";q=20;w=1")
    );
    assert_eq!(
        first.header("ratelimit"),
        Some("\"user\";r=1;t=30, \"ip\";r=39;t=1")
    );
    assert_eq!(
        get_as(&server, "/orders", "203.0.113.5", Some("ada"))
            .await
            .status,
        200
    );
    let refused = get_as(&server, "/orders", "203.0.113.5", Some("ada")).await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.json()["limit"], "user");
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"user\";q=2;w=60")
    );
    assert_eq!(refused.header("ratelimit"), Some("\"user\";r=0;t=60"));
}

/// Review of issue 17: a tier's route template (`/users/{id}`) equals axum's matched route,
/// which exists inside the router. Inside it the tier counts; around the router it can never
/// apply (and says so once in the log), and a route that is not a path is refused at build.
#[tokio::test]
async fn a_route_template_counts_inside_the_router_and_never_around_it() {
    let limits = || {
        RateLimitLayer::builder()
            .tier(
                Tier::new("users", Quota::per_minute(1), KeyBy::global())
                    .route(Some(Method::GET), "/users/{id}"),
            )
            .build()
            .unwrap()
    };
    let users = || Router::new().route("/users/{id}", get(|| async { "user" }));
    let client = Client::new();

    let inside = TestServer::spawn(users().layer(limits())).await;
    let first = client.get(&inside.url("/users/7"), &[]).await;
    let second = client.get(&inside.url("/users/8"), &[]).await;
    assert_eq!(
        (first.status, second.status),
        (StatusCode::OK, StatusCode::TOO_MANY_REQUESTS)
    );

    let around = TestServer::spawn_hyper(limits().layer(users())).await;
    for id in 0..3 {
        let reply = client.get(&around.url(&format!("/users/{id}")), &[]).await;
        assert_eq!(
            reply.status, 200,
            "around the router, the template never matches"
        );
    }

    let error = RateLimitLayer::builder()
        .tier(Tier::new("users", Quota::per_minute(1), KeyBy::global()).route(None, "users"))
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "route");
}
