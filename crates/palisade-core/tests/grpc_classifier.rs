//! `GrpcClassifier` on what a real tonic server sends over 127.0.0.1: trailers-only answers
//! (the status in the headers) and streamed answers (the status in the trailers after the
//! messages).

use std::net::SocketAddr;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use palisade_core::{Classify, GrpcClassifier, Outcome};
use palisade_test_support::grpc::{self, frame, hello::HelloRequest};

/// Calls `method` and judges the response as a breaker would: at once, or at the end of the
/// body when the classifier defers.
async fn judge(addr: SocketAddr, method: &str, name: &str, count: u32) -> (Outcome, Outcome) {
    let h2: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = Request::post(format!("http://{addr}/helloworld.Greeter/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(frame(&HelloRequest {
            name: name.into(),
            count,
        })))
        .unwrap();
    let response = h2.request(request).await.unwrap();
    let classifier = GrpcClassifier::default();
    let first = classifier.classify(Ok::<_, &()>(&response));
    let body = response.into_body().collect().await.unwrap();
    let at_end = if first == Outcome::Deferred {
        Classify::<http::Response<()>, ()>::classify_trailers(&classifier, body.trailers())
    } else {
        first
    };
    (first, at_end)
}

#[tokio::test]
async fn trailers_only_and_streamed_answers_from_tonic() {
    let addr = grpc::serve_greeter().await;
    let cases = [
        // (method, name, replies, judged at once, judged at the end)
        ("SayHello", "fail:14", 0, Outcome::Failure, Outcome::Failure),
        ("SayHello", "fail:4", 0, Outcome::Failure, Outcome::Failure),
        ("SayHello", "fail:8", 0, Outcome::Failure, Outcome::Failure),
        ("SayHello", "fail:3", 0, Outcome::Success, Outcome::Success),
        ("SayHello", "fail:5", 0, Outcome::Success, Outcome::Success),
        ("SayHello", "fail:1", 0, Outcome::Ignored, Outcome::Ignored),
        ("SayHello", "ada", 0, Outcome::Deferred, Outcome::Success),
        (
            "SayHelloStream",
            "ada",
            3,
            Outcome::Deferred,
            Outcome::Success,
        ),
        (
            "SayHelloStream",
            "fail:14",
            2,
            Outcome::Deferred,
            Outcome::Failure,
        ),
        (
            "SayHelloStream",
            "fail:13",
            1,
            Outcome::Deferred,
            Outcome::Failure,
        ),
        (
            "SayHelloStream",
            "fail:5",
            2,
            Outcome::Deferred,
            Outcome::Success,
        ),
    ];
    for (method, name, count, first, end) in cases {
        assert_eq!(
            judge(addr, method, name, count).await,
            (first, end),
            "{method} {name} x{count}"
        );
    }
}
