//! `GrpcRetryLayer` on a real tonic channel to a real tonic server on 127.0.0.1 (issue 17): no
//! glue between the two, `UNAVAILABLE` retried with `grpc-previous-rpc-attempts`, other codes
//! and exhausted attempts answered as they are.
#![cfg(feature = "tonic")]

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use palisade_core::{Problem, Protocol, ResponseBody};
use palisade_retry::{Backoff, GrpcRetryLayer, Jitter};
use palisade_test_support::grpc::{
    self, hello::HelloRequest, hello::greeter_client::GreeterClient,
};
use tower::ServiceBuilder;

/// In front of the Greeter: answers the first `fail` calls `UNAVAILABLE` (trailers-only, as a
/// server shedding load does), and records each call's `grpc-previous-rpc-attempts`.
#[derive(Clone)]
struct FlakyFirst<S> {
    inner: S,
    fail: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl<S, B, R> tower::Service<Request<B>> for FlakyFirst<S>
where
    S: tower::Service<Request<B>, Response = Response<R>> + Send + 'static,
    S::Future: Send + 'static,
    R: Send + 'static,
{
    type Response = Response<ResponseBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let previous = request
            .headers()
            .get("grpc-previous-rpc-attempts")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.seen.lock().unwrap().push(previous);
        let refuse = self
            .fail
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            let response =
                Problem::new(StatusCode::SERVICE_UNAVAILABLE).into_response_for(Protocol::Grpc);
            return Box::pin(async move { Ok(response) });
        }
        let future = self.inner.call(request);
        Box::pin(async move { Ok(future.await?.map(ResponseBody::inner)) })
    }
}

async fn server(fail: usize) -> (std::net::SocketAddr, Arc<Mutex<Vec<Option<String>>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let layer = {
        let seen = seen.clone();
        let fail = Arc::new(AtomicUsize::new(fail));
        tower::layer::layer_fn(move |inner| FlakyFirst {
            inner,
            fail: fail.clone(),
            seen: seen.clone(),
        })
    };
    (grpc::serve_greeter_behind(layer).await, seen)
}

fn backoff() -> Backoff {
    Backoff::exponential(Duration::from_millis(5))
        .jitter(Jitter::None)
        .max_attempts(3)
        .build()
        .unwrap()
}

fn hello(name: &str) -> HelloRequest {
    HelloRequest {
        name: name.into(),
        count: 0,
    }
}

#[tokio::test]
async fn unavailable_is_retried_on_a_plain_channel() {
    let (addr, seen) = server(2).await;
    let channel = grpc::channel(addr).await;
    let stack = ServiceBuilder::new()
        .layer(GrpcRetryLayer::new(backoff()))
        .service(channel);
    let mut client = GreeterClient::new(stack);
    let reply = client.say_hello(hello("ada")).await.unwrap();
    assert_eq!(reply.into_inner().message, "hello, ada");
    assert_eq!(
        *seen.lock().unwrap(),
        [None, Some("1".to_owned()), Some("2".to_owned())],
        "each retry says how many attempts came before"
    );
}

#[tokio::test]
async fn other_codes_and_spent_attempts_come_back_as_they_are() {
    let (addr, seen) = server(10).await;
    let mut client = GreeterClient::new(
        ServiceBuilder::new()
            .layer(GrpcRetryLayer::new(backoff()))
            .service(grpc::channel(addr).await),
    );
    let status = client.say_hello(hello("ada")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "three attempts, then the answer"
    );

    let (addr, seen) = server(0).await;
    let mut client = GreeterClient::new(
        ServiceBuilder::new()
            .layer(GrpcRetryLayer::new(backoff()))
            .service(grpc::channel(addr).await),
    );
    let status = client.say_hello(hello("fail:3")).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "INVALID_ARGUMENT is not retried"
    );
}
