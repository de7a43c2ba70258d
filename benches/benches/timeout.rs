//! Per-call overhead of a timeout around an always-ready service: bare, tower's `Timeout`,
//! tower-http's `TimeoutLayer`, and Palisade's generic `Timeout` and `HttpTimeout`.

use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use http_body_util::Empty;
use palisade::timeout::{HttpTimeoutLayer, TimeoutLayer};
use palisade_benches::{always_ready, call_ready};
use tower::{Layer, Service};

type Req = Request<()>;
type Res = Response<Empty<Bytes>>;

fn one_call<S, E>(service: &mut S)
where
    S: Service<Req, Error = E>,
    E: std::fmt::Debug,
{
    call_ready(service, Request::new(()));
}

fn timeout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let limit = Duration::from_secs(30);
    // Timers need a runtime context; the calls are polled by hand (see `call_ready`).
    let _runtime = rt.enter();
    let mut group = c.benchmark_group("timeout");

    let mut bare = always_ready::<Req, Res>();
    group.bench_function("bare", |b| b.iter(|| one_call(&mut bare)));
    let mut tower_timeout =
        tower::timeout::TimeoutLayer::new(limit).layer(always_ready::<Req, Res>());
    group.bench_function("tower::timeout::Timeout", |b| {
        b.iter(|| one_call(&mut tower_timeout));
    });
    let mut tower_http = tower_http::timeout::TimeoutLayer::with_status_code(
        http::StatusCode::REQUEST_TIMEOUT,
        limit,
    )
    .layer(always_ready::<Req, Res>());
    group.bench_function("tower_http::timeout::Timeout", |b| {
        b.iter(|| one_call(&mut tower_http));
    });
    let mut ours = TimeoutLayer::new(limit).layer(always_ready::<Req, Res>());
    group.bench_function("palisade::Timeout", |b| {
        b.iter(|| one_call(&mut ours));
    });
    let mut ours_http = HttpTimeoutLayer::new(limit).layer(always_ready::<Req, Res>());
    group.bench_function("palisade::HttpTimeout", |b| {
        b.iter(|| one_call(&mut ours_http));
    });
    group.finish();
}

criterion_group!(benches, timeout);
criterion_main!(benches);
