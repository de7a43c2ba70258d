//! The breaker over real HTTP and gRPC on 127.0.0.1: server mode answering 503 / UNAVAILABLE,
//! client mode in front of a hyper client and a tonic channel, and keyed breakers per upstream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use palisade_breaker::{
    Breaker, BreakerLayer, BreakerOpen, BreakerRegistry, BreakerState, HttpBreakerLayer,
    KeyedBreakerLayer, Window,
};
use palisade_core::{GrpcClassifier, HttpClassifier};
use palisade_test_support::grpc::hello::HelloRequest;
use palisade_test_support::grpc::hello::greeter_client::GreeterClient;
use palisade_test_support::{Client, TestServer, grpc};
use tonic::Code;
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

#[tokio::test]
async fn server_mode_answers_503_problem_with_retry_after() {
    let breaker = breaker("work");
    let status = Arc::new(AtomicU16::new(500));
    let hits = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/work",
            get({
                let status = status.clone();
                let hits = hits.clone();
                move || {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let status = status.load(Ordering::SeqCst);
                    async move { StatusCode::from_u16(status).unwrap() }
                }
            }),
        )
        .layer(HttpBreakerLayer::new(breaker.clone()));
    let server = TestServer::spawn(app).await;
    let client = Client::new();
    for _ in 0..4 {
        let reply = client.get(&server.url("/work"), &[]).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    status.store(200, Ordering::SeqCst);
    let reply = client.get(&server.url("/work"), &[]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_eq!(reply.json()["status"], 503);
    assert_eq!(hits.load(Ordering::SeqCst), 4, "the handler was not called");

    breaker.reset();
    assert_eq!(
        client.get(&server.url("/work"), &[]).await.status,
        StatusCode::OK
    );
}

/// Issue 17: `BreakerLayer` counted only errors by default, so an upstream answering 503 left
/// it closed until `.classify_with(HttpClassifier)`. With every default (window of 100 calls,
/// half failing, once 20 were made), twenty 503s open it.
#[tokio::test]
async fn an_upstream_answering_503_opens_a_breaker_with_default_settings() {
    let status = Arc::new(AtomicU16::new(503));
    let hits = Arc::new(AtomicUsize::new(0));
    let server = upstream(status.clone(), hits.clone()).await;
    let breaker = Breaker::builder().build().unwrap();
    let client = BreakerLayer::new(breaker.clone()).layer(Client::new().hyper());
    let request = || {
        Request::get(server.url("/work"))
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    for _ in 0..20 {
        let response = client.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let refused = client.clone().oneshot(request()).await.unwrap_err();
    assert!(refused.is::<BreakerOpen>());
    assert_eq!(hits.load(Ordering::SeqCst), 20);
    // A refusal is never counted as a failure of anything outside: it is marked as refused
    // before it was sent.
    assert!(palisade_core::refused_locally(&refused));
}

#[tokio::test]
async fn client_mode_in_front_of_a_real_hyper_client() {
    let status = Arc::new(AtomicU16::new(503));
    let hits = Arc::new(AtomicUsize::new(0));
    let server = upstream(status.clone(), hits.clone()).await;
    let breaker = breaker("upstream");
    let client = BreakerLayer::new(breaker.clone())
        .classify_with(HttpClassifier::default())
        .layer(Client::new().hyper());
    let request = || {
        Request::get(server.url("/work"))
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    for _ in 0..4 {
        let response = client.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
    let err = client.clone().oneshot(request()).await.unwrap_err();
    let open = err
        .downcast_ref::<BreakerOpen>()
        .expect("refused by the breaker");
    assert!(open.remaining().is_some());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        4,
        "no call reached the upstream"
    );

    // 4xx answers never trip it.
    breaker.reset();
    status.store(404, Ordering::SeqCst);
    for _ in 0..10 {
        client.clone().oneshot(request()).await.unwrap();
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test]
async fn keyed_breakers_isolate_upstreams() {
    let failing = upstream(Arc::new(AtomicU16::new(502)), Arc::default()).await;
    let healthy = upstream(Arc::new(AtomicU16::new(200)), Arc::default()).await;
    let registry = BreakerRegistry::new(
        Breaker::builder()
            .name("upstream")
            .minimum_calls(3)
            .wait(Duration::from_secs(30)),
        16,
    )
    .unwrap();
    let client = KeyedBreakerLayer::by_authority(registry.clone())
        .classify_with(HttpClassifier::default())
        .layer(Client::new().hyper());
    let get = |server: &TestServer| {
        Request::get(server.url("/work"))
            .body(Full::<Bytes>::default())
            .unwrap()
    };
    for _ in 0..3 {
        let _ = client.clone().oneshot(get(&failing)).await;
        client.clone().oneshot(get(&healthy)).await.unwrap();
    }
    let refused = client.clone().oneshot(get(&failing)).await.unwrap_err();
    assert!(refused.is::<BreakerOpen>());
    assert_eq!(
        client
            .clone()
            .oneshot(get(&healthy))
            .await
            .unwrap()
            .status(),
        StatusCode::OK,
        "the healthy upstream has its own breaker"
    );
    let states: Vec<_> = registry
        .breakers()
        .into_iter()
        .map(|(key, breaker)| (key, breaker.state()))
        .collect();
    assert_eq!(states.len(), 2);
    assert!(states.contains(&(failing.addr().to_string(), BreakerState::Open)));
    assert!(states.contains(&(healthy.addr().to_string(), BreakerState::Closed)));
}

/// A full registry evicts a closed breaker unused since it was queued: one looked up again
/// gets a second chance (issue 16, item 11: insertion is now a clock step, not a copy and scan
/// of the whole map).
#[test]
fn a_full_registry_evicts_an_unused_breaker_first() {
    let registry = BreakerRegistry::new(Breaker::builder().name("r"), 3).unwrap();
    let a = registry.get("a");
    let b = registry.get("b");
    let c = registry.get("c");
    // `a` is used again; `b` and `c` are not.
    registry.get("a");
    let d = registry.get("d");
    assert!(registry.holds(&a), "used since: kept");
    assert!(!registry.holds(&b), "the oldest unused one goes");
    assert!(registry.holds(&c) && registry.holds(&d));
    assert_eq!(registry.len(), 3);
    // Many more keys than room: the count stays at the maximum.
    for i in 0..1_000 {
        registry.get(&format!("k{i}"));
    }
    assert_eq!(registry.len(), 3);
}

#[tokio::test]
async fn a_full_registry_evicts_closed_breakers_and_keeps_open_ones() {
    let registry = BreakerRegistry::new(Breaker::builder().name("r"), 2).unwrap();
    let a = registry.get("a");
    a.force_open();
    let _b = registry.get("b");
    let c = registry.get("c");
    assert_eq!(registry.len(), 2);
    assert!(registry.holds(&a), "the open breaker is kept");
    assert!(registry.holds(&c));
    c.force_open();
    let d = registry.get("d");
    assert!(
        !registry.holds(&d),
        "no closed breaker to evict: the overflow"
    );
    assert_eq!(d.name(), "r:(overflow)");
    assert_eq!(registry.get(&"k".repeat(300)).name(), "r:(overflow)");
    assert_eq!(
        registry.get("a").state(),
        BreakerState::ForcedOpen,
        "state kept"
    );
}

fn hello(name: &str, count: u32) -> tonic::Request<HelloRequest> {
    tonic::Request::new(HelloRequest {
        name: name.into(),
        count,
    })
}

#[tokio::test]
async fn server_mode_in_front_of_tonic_judges_grpc_statuses() {
    let breaker = breaker("greeter");
    let addr = grpc::serve_greeter_behind(
        HttpBreakerLayer::new(breaker.clone()).classify_with(GrpcClassifier::default()),
    )
    .await;
    let mut client = GreeterClient::new(grpc::channel(addr).await);
    // NOT_FOUND is the caller's problem: never counted against the server.
    for _ in 0..6 {
        let status = client.say_hello(hello("fail:5", 0)).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.snapshot().failures, 0);
    // Streamed answers whose status arrives in trailers are judged at the end of the body.
    for _ in 0..2 {
        let mut stream = client
            .say_hello_stream(hello("fail:14", 2))
            .await
            .unwrap()
            .into_inner();
        let mut replies = 0;
        let end = loop {
            match stream.message().await {
                Ok(Some(_)) => replies += 1,
                Ok(None) => break None,
                Err(status) => break Some(status.code()),
            }
        };
        assert_eq!((replies, end), (2, Some(Code::Unavailable)));
    }
    assert_eq!(
        breaker.snapshot().failures,
        2,
        "two streamed failures counted"
    );
    for _ in 0..3 {
        let status = client.say_hello(hello("fail:14", 0)).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable);
    }
    assert_eq!(breaker.state(), BreakerState::Closed, "5 of 11 failed");
    let status = client.say_hello(hello("fail:14", 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(breaker.state(), BreakerState::Open, "6 of 12: 50 %");
    let status = client.say_hello(hello("ada", 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "refused by the breaker");
    assert!(
        status.message().contains("not taking requests"),
        "{status:?}"
    );
    assert!(status.metadata().get("retry-after").is_some());
    assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());
}

#[cfg(feature = "tonic")]
#[tokio::test]
async fn client_mode_on_a_tonic_channel_is_unavailable_when_open() {
    let addr = grpc::serve_greeter().await;
    let breaker = breaker("greeter-client");
    let channel = tower::ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker.clone()).classify_with(GrpcClassifier::default()))
        .service(grpc::channel(addr).await);
    let mut client = GreeterClient::new(channel);
    for _ in 0..4 {
        let status = client.say_hello(hello("fail:13", 0)).await.unwrap_err();
        assert_eq!(status.code(), Code::Internal);
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let status = client.say_hello(hello("ada", 0)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}
