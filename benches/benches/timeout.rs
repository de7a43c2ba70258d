//! Per-call overhead of a timeout around an always-ready service: bare, tower's `Timeout`,
//! tower-http's `TimeoutLayer`, and Palisade's generic `Timeout` and `HttpTimeout`.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Empty;
use palisade::timeout::{HttpTimeoutLayer, TimeoutLayer};
use tower::{Layer, Service, service_fn};

type Req = Request<()>;
type Res = Response<Empty<Bytes>>;

fn ready() -> impl Service<
    Req,
    Response = Res,
    Error = Infallible,
    Future = std::future::Ready<Result<Res, Infallible>>,
> + Clone {
    service_fn(|_req: Req| std::future::ready(Ok(Response::new(Empty::new()))))
}

/// One `poll_ready`, `call` and poll of the response, all of which complete at once. Polling by
/// hand keeps executor costs out of the numbers; the runtime is entered so timers can be built.
fn one_call<S, E>(service: &mut S)
where
    S: Service<Req, Error = E>,
    E: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let mut response = pin!(service.call(Request::new(())));
    match response.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => {
            black_box(response);
        }
        _ => panic!("an always-ready service answers at once"),
    }
}

fn timeout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let limit = Duration::from_secs(30);
    let _runtime = rt.enter();
    let mut group = c.benchmark_group("timeout");

    let mut bare = ready();
    group.bench_function("bare", |b| b.iter(|| one_call(&mut bare)));
    let mut tower_timeout = tower::timeout::TimeoutLayer::new(limit).layer(ready());
    group.bench_function("tower::timeout::Timeout", |b| {
        b.iter(|| one_call(&mut tower_timeout));
    });
    let mut tower_http = tower_http::timeout::TimeoutLayer::with_status_code(
        http::StatusCode::REQUEST_TIMEOUT,
        limit,
    )
    .layer(ready());
    group.bench_function("tower_http::timeout::Timeout", |b| {
        b.iter(|| one_call(&mut tower_http));
    });
    let mut ours = TimeoutLayer::new(limit).layer(ready());
    group.bench_function("palisade::Timeout", |b| {
        b.iter(|| one_call(&mut ours));
    });
    let mut ours_http = HttpTimeoutLayer::new(limit).layer(ready());
    group.bench_function("palisade::HttpTimeout", |b| {
        b.iter(|| one_call(&mut ours_http));
    });
    group.finish();
}

criterion_group!(benches, timeout);
criterion_main!(benches);
