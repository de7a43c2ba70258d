//! The demo gateway over real HTTP on 127.0.0.1.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use palisade::TrustedProxies;
use palisade::apikey::{KeyDigest, KeySet};
use palisade_examples::gateway::{self, Config, DEMO_KEY};
use palisade_test_support::{Client, TestServer};

const KEY: (&str, &str) = ("x-api-key", DEMO_KEY);

async fn start(config: Config) -> TestServer {
    TestServer::spawn(gateway::app(&config).unwrap()).await
}

fn fast() -> Config {
    Config {
        timeout: Duration::from_millis(500),
        ..Config::default()
    }
}

#[tokio::test]
async fn healthz_and_hello() {
    let server = start(Config::default()).await;
    let client = Client::new();
    let health = client.get(&server.url("/healthz"), &[]).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    assert!(
        health.header("x-request-id").is_some(),
        "request ids are propagated"
    );

    let hello = client
        .get(
            &server.url("/v1/hello"),
            &[("x-forwarded-for", "6.6.6.6"), KEY],
        )
        .await;
    assert_eq!(hello.status, StatusCode::OK);
    assert_eq!(hello.json()["message"], "hello, demo");
    // No trusted proxy configured: the spoofed header is ignored.
    assert_eq!(hello.json()["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn hello_believes_a_trusted_proxy() {
    let server = start(Config {
        trusted_proxies: TrustedProxies::new(["127.0.0.0/8"]).unwrap(),
        ..Config::default()
    })
    .await;
    let hello = Client::new()
        .get(
            &server.url("/v1/hello"),
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.5"), KEY],
        )
        .await;
    assert_eq!(hello.json()["client_ip"], "203.0.113.5");
}

#[tokio::test]
async fn slow_answers_504_problem_after_the_timeout() {
    let server = start(fast()).await;
    let reply = Client::new()
        .get(&server.url("/v1/slow?ms=5000"), &[KEY])
        .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.json()["status"], 504);

    let quick = Client::new()
        .get(&server.url("/v1/slow?ms=1"), &[KEY])
        .await;
    assert_eq!(quick.status, StatusCode::OK);
    assert_eq!(quick.json()["slept_ms"], 1);
}

#[tokio::test]
async fn a_caller_deadline_shortens_the_timeout() {
    let server = start(Config::default()).await;
    let reply = Client::new()
        .get(
            &server.url("/v1/slow?ms=1500"),
            &[("grpc-timeout", "50m"), KEY],
        )
        .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn bad_input_gets_problem_json() {
    let server = start(Config::default()).await;
    let client = Client::new();
    let post = |body: &'static str, content_type: &'static str| {
        Request::post(server.url("/v1/echo"))
            .header("content-type", content_type)
            .header(KEY.0, KEY.1)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };
    let cases = [
        (
            "missing ms",
            client.get(&server.url("/v1/slow"), &[KEY]).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "ms not a number",
            client.get(&server.url("/v1/slow?ms=abc"), &[KEY]).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "ms too large",
            client.get(&server.url("/v1/slow?ms=999999"), &[KEY]).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad grpc-timeout",
            client
                .get(&server.url("/v1/slow?ms=1"), &[("grpc-timeout", "x"), KEY])
                .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "no API key",
            client.get(&server.url("/v1/hello"), &[]).await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong API key",
            client
                .get(&server.url("/v1/hello"), &[("x-api-key", "pal_demo_nope")])
                .await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown route",
            client.get(&server.url("/nope"), &[]).await,
            StatusCode::NOT_FOUND,
        ),
        (
            "syntax error",
            client.send(post("{", "application/json")).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON media type",
            client.send(post("{}", "text/plain")).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (name, reply, status) in cases {
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{name}"
        );
        assert_eq!(reply.json()["status"], status.as_u16(), "{name}");
    }
}

#[tokio::test]
async fn echo_returns_the_json() {
    let server = start(Config::default()).await;
    let reply = Client::new()
        .send(
            Request::post(server.url("/v1/echo"))
                .header("content-type", "application/json")
                .header(KEY.0, KEY.1)
                .body(Full::new(Bytes::from_static(br#"{"a":[1,2,{"b":null}]}"#)))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), serde_json::json!({"a": [1, 2, {"b": null}]}));
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let server = start(Config::default()).await;
    let body = format!("[{}1]", "1,".repeat(gateway::MAX_BODY_BYTES));
    let reply = Client::new()
        .send(
            Request::post(server.url("/v1/echo"))
                .header("content-type", "application/json")
                .header(KEY.0, KEY.1)
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // Shut down only once the request has reached the server, so the test does not depend
    // on how fast this machine connects.
    let reached = std::sync::Arc::new(tokio::sync::Notify::new());
    let signal = reached.clone();
    let app = gateway::app(&Config::default())
        .unwrap()
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                signal.notify_one();
                next.run(request)
            },
        ));
    let server = tokio::spawn(gateway::serve(listener, app, async {
        let _ = stopped.await;
    }));
    let in_flight = tokio::spawn(async move {
        Client::new()
            .get(&format!("http://{addr}/v1/slow?ms=300"), &[KEY])
            .await
    });
    reached.notified().await;
    stop.send(()).unwrap();
    let reply = in_flight.await.unwrap();
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the in-flight request finished"
    );
    assert_eq!(reply.json()["slept_ms"], 300);
    server.await.unwrap().unwrap();
}

#[test]
fn the_embedded_key_set_holds_the_demo_key_digest() {
    let set = KeySet::parse(gateway::DEMO_KEYS).unwrap();
    let entry = set
        .find(&KeyDigest::of(DEMO_KEY))
        .expect("the demo key is accepted");
    assert_eq!(entry.principal(), "demo");
    assert!(
        !gateway::DEMO_KEYS.contains(DEMO_KEY),
        "only the digest is embedded"
    );
}

#[tokio::test]
async fn healthz_needs_no_key_and_scopes_are_enforced() {
    let reader = palisade::apikey::format::generate("pal_live").unwrap();
    let config = Config::default();
    config.keys.replace(
        KeySet::parse(&format!(
            "{}\n{} principal=reader scopes=hello:read",
            gateway::DEMO_KEYS,
            KeyDigest::of(&reader)
        ))
        .unwrap(),
    );
    let server = start(config).await;
    let client = Client::new();
    assert_eq!(
        client.get(&server.url("/healthz"), &[]).await.status,
        StatusCode::OK
    );
    let hello = client
        .get(&server.url("/v1/hello"), &[("x-api-key", &reader)])
        .await;
    assert_eq!(hello.json()["message"], "hello, reader");
    let echo = client
        .send(
            Request::post(server.url("/v1/echo"))
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {reader}"))
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await;
    assert_eq!(echo.status, StatusCode::FORBIDDEN);
    assert_eq!(echo.json()["required_scopes"][0], "echo:write");
}
