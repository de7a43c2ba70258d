//! Every layer in front of a real tonic server, called by a real tonic client over 127.0.0.1:
//! each rejection reaches the client as the gRPC status the mapping table names (issue 11), and
//! a plain HTTP caller of the same server still gets problem+json.
#![cfg(all(feature = "timeout", feature = "apikey"))]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use palisade::apikey::format::generate;
use palisade::apikey::{ApiKeyLayer, KeyDigest, KeyEntry, KeySet, KeyStore};
use palisade::require_scopes;
use palisade::timeout::{DeadlineHeader, HttpTimeoutLayer};
use palisade_test_support::grpc::hello::HelloRequest;
use palisade_test_support::grpc::hello::greeter_client::GreeterClient;
use palisade_test_support::grpc::{self, frame};
use tonic::Code;
use tonic::metadata::MetadataValue;
use tower::ServiceBuilder;

struct Keys {
    caller: String,
    no_scope: String,
    unknown: String,
}

/// The Greeter behind a 500 ms timeout (callers may ask for less with `grpc-timeout`), API
/// keys, and the scope `greeter:call`.
async fn server() -> (SocketAddr, Keys) {
    let keys = Keys {
        caller: generate("pal_live").unwrap(),
        no_scope: generate("pal_live").unwrap(),
        unknown: generate("pal_live").unwrap(),
    };
    let store = KeyStore::new(
        KeySet::from_entries([
            KeyEntry::new(KeyDigest::of(&keys.caller), "frontend")
                .unwrap()
                .with_scopes(["greeter:call"])
                .unwrap(),
            KeyEntry::new(KeyDigest::of(&keys.no_scope), "reporting").unwrap(),
        ])
        .unwrap(),
    );
    let timeout = HttpTimeoutLayer::builder(Duration::from_millis(500))
        .inbound_deadline(DeadlineHeader::grpc_timeout(), Duration::from_millis(500))
        .build()
        .unwrap();
    let addr = grpc::serve_greeter_behind(
        ServiceBuilder::new()
            .layer(timeout)
            .layer(ApiKeyLayer::new(store))
            .layer(require_scopes(["greeter:call"])),
    )
    .await;
    (addr, keys)
}

type H2 = Client<HttpConnector, tonic::body::Body>;

/// tonic's generated client over a plain HTTP/2 transport. tonic's own `Channel` enforces a
/// request's `grpc-timeout` on the client side too (answering `CANCELLED` before the server
/// can), so the deadline cases use this transport to see what the server answers.
fn client(addr: SocketAddr) -> GreeterClient<H2> {
    let h2 = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    GreeterClient::with_origin(h2, format!("http://{addr}").parse().unwrap())
}

fn hello(name: &str, key: Option<&str>) -> tonic::Request<HelloRequest> {
    let mut request = tonic::Request::new(HelloRequest {
        name: name.into(),
        count: 0,
    });
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("x-api-key", MetadataValue::try_from(key).unwrap());
    }
    request
}

#[tokio::test]
async fn each_rejection_is_the_mapped_grpc_status() {
    let (addr, keys) = server().await;
    let mut client = client(addr);

    let ok = client.say_hello(hello("ada", Some(&keys.caller))).await;
    assert_eq!(ok.unwrap().into_inner().message, "hello, ada");

    let mut short = hello("sleep:5000", Some(&keys.caller));
    short.set_timeout(Duration::from_millis(50));
    let mut malformed = hello("ada", Some(&keys.caller));
    malformed
        .metadata_mut()
        .insert("grpc-timeout", MetadataValue::from_static("soon"));

    let cases = [
        ("missing key", hello("ada", None), Code::Unauthenticated),
        (
            "unknown key",
            hello("ada", Some(&keys.unknown)),
            Code::Unauthenticated,
        ),
        (
            "malformed key",
            hello("ada", Some("not a key")),
            Code::Unauthenticated,
        ),
        (
            "scope refused",
            hello("ada", Some(&keys.no_scope)),
            Code::PermissionDenied,
        ),
        (
            "server timeout",
            hello("sleep:5000", Some(&keys.caller)),
            Code::DeadlineExceeded,
        ),
        ("caller's short grpc-timeout", short, Code::DeadlineExceeded),
        ("malformed grpc-timeout", malformed, Code::InvalidArgument),
    ];
    for (name, request, code) in cases {
        let status = client.say_hello(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{name}: {status:?}");
        // The message is the problem's detail in general words, decoded by tonic.
        assert!(!status.message().is_empty(), "{name}");
        assert!(
            !status.message().contains("protocol error"),
            "{name}: {status:?}"
        );
        for secret in [&keys.caller, &keys.no_scope, &keys.unknown] {
            assert!(!status.message().contains(secret.as_str()), "{name}");
        }
        if code == Code::Unauthenticated {
            assert!(
                status.metadata().get("www-authenticate").is_some(),
                "{name}: the challenge is kept"
            );
        }
    }
}

#[tokio::test]
async fn tonic_channel_callers_get_the_status_too() {
    let (addr, keys) = server().await;
    let mut client = GreeterClient::new(grpc::channel(addr).await);
    let status = client.say_hello(hello("ada", None)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("API key"), "{status:?}");
    let status = client
        .say_hello(hello("sleep:5000", Some(&keys.caller)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    let ok = client.say_hello(hello("ada", Some(&keys.caller))).await;
    assert_eq!(ok.unwrap().into_inner().message, "hello, ada");
}

#[tokio::test]
async fn a_trailers_only_rejection_on_the_wire() {
    let (addr, _) = server().await;
    let h2: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = Request::post(format!("http://{addr}/helloworld.Greeter/SayHello"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(frame(&HelloRequest {
            name: "ada".into(),
            count: 0,
        })))
        .unwrap();
    let response = h2.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/grpc");
    assert_eq!(response.headers()["grpc-status"], "16");
    let message = palisade::grpc::decode_message(response.headers()["grpc-message"].as_bytes());
    assert!(message.contains("API key"), "{message}");
    assert!(response.headers().contains_key("www-authenticate"));
    let body = response.into_body().collect().await.unwrap();
    assert!(body.trailers().is_none());
    assert!(body.to_bytes().is_empty(), "no body");
}

#[tokio::test]
async fn plain_http_callers_still_get_problem_json() {
    let (addr, _) = server().await;
    let h2: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    for (content_type, timeout) in [("application/json", None), ("text/plain", Some("soon"))] {
        let mut request = Request::post(format!("http://{addr}/helloworld.Greeter/SayHello"))
            .header("content-type", content_type);
        if let Some(value) = timeout {
            request = request.header("grpc-timeout", value);
        }
        let response = h2
            .request(request.body(Full::new(Bytes::from_static(b"{}"))).unwrap())
            .await
            .unwrap();
        let expected = if timeout.is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(response.status(), expected, "{content_type}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        assert!(!response.headers().contains_key("grpc-status"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["status"], expected.as_u16());
    }
}
