//! A server stack and a client stack built from one TOML document, over real HTTP on
//! 127.0.0.1 (issue 17).
#![cfg(feature = "config")]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::routing::get;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use palisade::apikey::{KeyDigest, format::generate};
use palisade::config::Config;
use palisade_test_support::{Client, TestServer};
use tower::ServiceExt;

#[tokio::test]
async fn a_server_and_a_client_stack_from_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate("pal_live").unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(
        &keys,
        format!("{} principal=billing\n", KeyDigest::of(&key)),
    )
    .unwrap();
    let text = format!(
        r#"
[server]
timeout = "2s"
trusted_proxies = []

[server.rate_limit.ip]
quota = "1/min burst 2"

[server.rate_limit.caller]
quota = "100/min"

[server.api_keys]
key_file = {keys:?}

[client]
attempt_timeout = "1s"

[client.retry]
max_attempts = 3
backoff = {{ constant = {{ delay = "1ms" }} }}
"#
    );
    let config = Config::from_toml(&text).unwrap();
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(config.server.stack().unwrap());
    let server = TestServer::spawn(app).await;
    let client = Client::new();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = client.get(&server.url("/"), &[("x-api-key", &key)]).await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 429], "per IP: 1/min burst 2");

    // The client stack: an upstream that fails twice with 503, then answers.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let upstream = TestServer::spawn(Router::new().route(
        "/work",
        get(move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 2 {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }
        }),
    ))
    .await;
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<palisade::retry::ReplayBody<Full<Bytes>>>();
    let stack = config
        .client
        .stack()
        .unwrap()
        .service(hyper.map_err(palisade::BoxError::from));
    let request = Request::get(upstream.url("/work"))
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = stack.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two retries");
}

#[tokio::test]
async fn a_relative_key_file_is_read_beside_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let key = generate("pal_live").unwrap();
    std::fs::create_dir(dir.path().join("etc")).unwrap();
    std::fs::write(
        dir.path().join("etc/keys.txt"),
        format!("{} principal=billing\n", KeyDigest::of(&key)),
    )
    .unwrap();
    let path = dir.path().join("etc/palisade.toml");
    std::fs::write(&path, "[server.api_keys]\nkey_file = \"keys.txt\"\n").unwrap();
    // The working directory is not the file's: the key file is still found beside it.
    let config = Config::from_file(&path).unwrap();
    assert_eq!(
        config.server.api_keys.as_ref().unwrap().key_file,
        dir.path().join("etc/keys.txt")
    );
    let app = Router::new()
        .route("/", get(|| async { "ok" }))
        .layer(config.server.stack().unwrap());
    let server = TestServer::spawn(app).await;
    let client = Client::new();
    let good = client.get(&server.url("/"), &[("x-api-key", &key)]).await;
    assert_eq!(good.status, StatusCode::OK);
    let none = client.get(&server.url("/"), &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);

    // A file that cannot be read is named; one that does not parse names the line.
    let missing = Config::from_file(dir.path().join("absent.toml")).unwrap_err();
    assert!(missing.message().contains("absent.toml"), "{missing}");
    std::fs::write(&path, "[server]\ntimeout = \"2s\"\nbogus = 1\n").unwrap();
    let bad = Config::from_file(&path).unwrap_err();
    assert_eq!(bad.key(), "server.bogus");
    assert_eq!(bad.line(), Some(3), "{bad}");
}
