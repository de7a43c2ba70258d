//! Client side with a real tonic client and server on 127.0.0.1 (feature `tonic`): a timeout or
//! a passed deadline reaches the caller as `DEADLINE_EXCEEDED`, not `UNKNOWN`.
#![cfg(feature = "tonic")]

use std::time::Duration;

use palisade_core::Deadline;
use palisade_test_support::grpc::{
    self, hello::HelloRequest, hello::greeter_client::GreeterClient,
};
use palisade_timeout::{DeadlineHeader, Elapsed, PropagateDeadlineLayer, TimeoutLayer};
use tonic::Code;
use tower::ServiceBuilder;

fn hello(name: &str) -> tonic::Request<HelloRequest> {
    tonic::Request::new(HelloRequest {
        name: name.into(),
        count: 0,
    })
}

#[tokio::test]
async fn a_client_timeout_is_deadline_exceeded() {
    let addr = grpc::serve_greeter().await;
    let channel = ServiceBuilder::new()
        .layer(TimeoutLayer::new(Duration::from_millis(200)))
        .service(grpc::channel(addr).await);
    let mut client = GreeterClient::new(channel);

    let quick = client.say_hello(hello("quick")).await.unwrap();
    assert_eq!(quick.into_inner().message, "hello, quick");

    let status = client.say_hello(hello("sleep:5000")).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(status.message(), "request timed out");
}

#[tokio::test]
async fn a_propagated_deadline_is_sent_and_enforced() {
    let addr = grpc::serve_greeter().await;
    let channel = ServiceBuilder::new()
        .layer(PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()))
        .service(grpc::channel(addr).await);
    let mut client = GreeterClient::new(channel);

    // Plenty of time: the call goes through with the budget in `grpc-timeout`.
    let mut request = hello("quick");
    Deadline::after(Duration::from_secs(30)).insert_earliest(request.extensions_mut());
    assert!(client.say_hello(request).await.is_ok());

    // The deadline passes while the server works.
    let mut request = hello("sleep:5000");
    Deadline::after(Duration::from_millis(200)).insert_earliest(request.extensions_mut());
    let status = client.say_hello(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    // Already passed: never sent, still DEADLINE_EXCEEDED.
    let mut request = hello("quick");
    Deadline::after(Duration::ZERO).insert_earliest(request.extensions_mut());
    let status = client.say_hello(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    // tonic's own `set_timeout` is shorter than the deadline: it is kept, and enforced here.
    let mut request = hello("sleep:5000");
    request.set_timeout(Duration::from_millis(100));
    Deadline::after(Duration::from_secs(30)).insert_earliest(request.extensions_mut());
    let status = client.say_hello(request).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[test]
fn elapsed_converts_into_a_status() {
    let status = tonic::Status::from(Elapsed::new());
    assert_eq!(status.code(), Code::DeadlineExceeded);
    let boxed: palisade_timeout::BoxError = Elapsed::new().into();
    assert!(boxed.is::<Elapsed>(), "still told apart by downcasting");
    assert_eq!(
        tonic::Status::from_error(boxed).code(),
        Code::DeadlineExceeded
    );
}
