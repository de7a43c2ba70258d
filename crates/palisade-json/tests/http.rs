//! `JsonLayer` over real HTTP on 127.0.0.1, in front of a plain hyper handler (no axum): every
//! outcome, raw-socket attacks (chunked past the limit, a half-sent body), and a real tonic
//! client meeting the layer by mistake.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use palisade_core::problem::types;
use palisade_json::{JsonLayer, Limits, Validated};
use palisade_test_support::grpc::{
    self, hello::HelloRequest, hello::greeter_client::GreeterClient,
};
use palisade_test_support::{Client, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::{Layer, service_fn};

/// Echoes the body it got, saying whether the layer marked it checked.
async fn echo(request: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    let checked = request.extensions().get::<Validated>().is_some();
    let body = request.into_body().collect().await?.to_bytes();
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        "x-checked",
        if checked { "yes" } else { "no" }.parse().unwrap(),
    );
    Ok(response)
}

async fn server(layer: JsonLayer) -> TestServer {
    TestServer::spawn_hyper(layer.layer(service_fn(echo))).await
}

fn post(
    server: &TestServer,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::post(server.url("/orders"));
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    builder.body(Full::new(body.into())).unwrap()
}

fn assert_problem(
    reply: &palisade_test_support::Reply,
    status: StatusCode,
    type_uri: &str,
) -> serde_json::Value {
    assert_eq!(reply.status, status, "{}", reply.text());
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    let problem = reply.json();
    assert_eq!(problem["status"], status.as_u16());
    assert_eq!(problem["type"], type_uri, "{problem}");
    problem
}

#[tokio::test]
async fn strict_json_reaches_the_handler_byte_for_byte() {
    let server = server(JsonLayer::new()).await;
    let client = Client::new();
    let body = "{\"order\": {\"id\": 7, \"items\": [1, 2.5, \"\\u00e9\"]}}\n";
    for content_type in [
        "application/json",
        "application/json; charset=utf-8",
        "Application/Merge-Patch+JSON",
    ] {
        let reply = client.send(post(&server, Some(content_type), body)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{content_type}: {}",
            reply.text()
        );
        assert_eq!(reply.text(), body);
        assert_eq!(reply.header("x-checked"), Some("yes"));
    }
}

#[tokio::test]
async fn a_request_without_body_or_content_type_passes_unchecked() {
    let server = server(JsonLayer::new()).await;
    let reply = Client::new().get(&server.url("/orders"), &[]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("x-checked"), Some("no"));
    assert!(reply.body.is_empty());
}

#[tokio::test]
async fn other_media_types_are_415() {
    let server = server(JsonLayer::new()).await;
    let client = Client::new();
    for content_type in [
        Some("text/plain"),
        Some("application/json; charset=latin1"),
        Some("application/jsonx"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let reply = client.send(post(&server, content_type, "{}")).await;
        let problem = assert_problem(
            &reply,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            types::UNSUPPORTED_MEDIA_TYPE,
        );
        assert_eq!(problem["accept"], "application/json", "{content_type:?}");
    }
}

#[tokio::test]
async fn rejections_name_rule_pointer_and_offset_but_never_the_body() {
    let server = server(JsonLayer::new()).await;
    let client = Client::new();
    let cases: &[(&str, &str, &str, u64)] = &[
        (
            r#"{"a":{"token":"SECRET-1","\u0074oken":"SECRET-2"}}"#,
            "duplicate_key",
            "/a/token",
            25,
        ),
        (r#"{"a":[1,2,{"b":SECRET}]}"#, "unexpected", "/a/2/b", 15),
        (r#"{"a":1} {"SECRET":2}"#, "trailing_data", "", 8),
        ("\u{feff}{\"SECRET\":1}", "byte_order_mark", "", 0),
        (
            r#"{"n":123456789012345678901234567890}"#,
            "lossy_number",
            "/n",
            5,
        ),
        (r#"["\ud800SECRET"]"#, "lone_surrogate", "/0", 2),
        ("", "empty", "", 0),
    ];
    for (body, reason, pointer, offset) in cases {
        let reply = client
            .send(post(&server, Some("application/json"), *body))
            .await;
        let problem = assert_problem(&reply, StatusCode::BAD_REQUEST, types::INVALID_JSON);
        assert_eq!(problem["reason"], *reason, "{body}: {problem}");
        assert_eq!(problem["pointer"], *pointer, "{body}: {problem}");
        assert_eq!(problem["offset"], *offset, "{body}: {problem}");
        assert!(!reply.text().contains("SECRET"), "{body}: {problem}");
    }
    // Invalid UTF-8 is refused before the grammar.
    let reply = client
        .send(post(
            &server,
            Some("application/json"),
            Bytes::from_static(b"{\"a\":\"\xff\"}"),
        ))
        .await;
    let problem = assert_problem(&reply, StatusCode::BAD_REQUEST, types::INVALID_JSON);
    assert_eq!(problem["reason"], "not_utf8");
    assert_eq!(problem["offset"], 6);
}

#[tokio::test]
async fn limits_are_enforced_over_http() {
    let limits = Limits::default()
        .max_depth(4)
        .max_keys(3)
        .max_string_bytes(8);
    let server = server(JsonLayer::builder().limits(limits).build().unwrap()).await;
    let client = Client::new();
    for (body, reason) in [
        ("[[[[[1]]]]]", "too_deep"),
        (r#"{"a":1,"b":2,"c":3,"d":4}"#, "too_many_keys"),
        (r#"["123456789"]"#, "string_too_long"),
    ] {
        let reply = client
            .send(post(&server, Some("application/json"), body))
            .await;
        let problem = assert_problem(&reply, StatusCode::BAD_REQUEST, types::INVALID_JSON);
        assert_eq!(problem["reason"], reason, "{body}");
    }
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_413_before_reading() {
    let server = server(JsonLayer::builder().max_body(64).build().unwrap()).await;
    let body = format!("[{}1]", "1,".repeat(100));
    let reply = Client::new()
        .send(post(&server, Some("application/json"), body))
        .await;
    let problem = assert_problem(&reply, StatusCode::PAYLOAD_TOO_LARGE, types::BODY_TOO_LARGE);
    assert_eq!(problem["max_bytes"], 64);
}

/// Writes `request` on a fresh connection, then reads the response head and body up to the
/// server closing or 5 s passing.
async fn raw(server: &TestServer, request: &[u8], then_shut_write: bool) -> String {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    stream.write_all(request).await.unwrap();
    if then_shut_write {
        stream.shutdown().await.unwrap();
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                response.extend_from_slice(&buf[..n]);
                if response.windows(4).any(|w| w == b"\r\n\r\n")
                    && String::from_utf8_lossy(&response).contains("\"status\"")
                {
                    break;
                }
            }
        }
    }
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn a_chunked_body_streaming_past_the_limit_is_413() {
    let server = server(JsonLayer::builder().max_body(100).build().unwrap()).await;
    let mut request = b"POST /orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
        transfer-encoding: chunked\r\n\r\n"
        .to_vec();
    for _ in 0..10 {
        request.extend_from_slice(b"10\r\n1111111111111111\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let response = raw(&server, &request, false).await;
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    assert!(response.contains(types::BODY_TOO_LARGE), "{response}");
}

#[tokio::test]
async fn a_half_sent_body_is_400_not_a_hang_or_a_partial_document() {
    let server = server(JsonLayer::new()).await;
    let request = b"POST /orders HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
        content-length: 100\r\n\r\n{\"a\":1}";
    let response = raw(&server, request, true).await;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(response.contains("could not be read whole"), "{response}");
}

#[tokio::test]
async fn a_64_kib_string_of_quotes_is_rejected_precisely() {
    let server = server(JsonLayer::new()).await;
    let body = format!("[\"{}\"]", "\\\"".repeat(32 * 1024));
    let reply = Client::new()
        .send(post(&server, Some("application/json"), body.clone()))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = format!("[\"{}]", "\"".repeat(64 * 1024));
    let reply = Client::new()
        .send(post(&server, Some("application/json"), body))
        .await;
    let problem = assert_problem(&reply, StatusCode::BAD_REQUEST, types::INVALID_JSON);
    assert_eq!(problem["offset"], 3);
    assert_eq!(problem["reason"], "unexpected");
}

#[tokio::test]
async fn a_grpc_client_gets_a_grpc_status_not_a_problem_body() {
    let addr = grpc::serve_greeter_behind(JsonLayer::new()).await;
    let mut client = GreeterClient::new(grpc::channel(addr).await);
    let status = client
        .say_hello(HelloRequest {
            name: "ada".into(),
            count: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("must be JSON"), "{status:?}");
}
