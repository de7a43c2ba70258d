//! What cloning each layer's service costs, beside tower-http's services: axum clones a route's
//! whole stack for every request (and tower's `Buffer` and hyper's connection services clone
//! too), so a clone is on the request path. Each row clones a service around a zero-sized inner
//! service and drops the clone; every Palisade service should cost one reference count (an
//! `Arc` increment and decrement), with no `Vec`, `String` or map copied.
//!
//! The peers: tower-http's `Timeout` (two plain values, no reference count) and
//! `AddAuthorization` with a bearer token (one `HeaderValue`, one reference count).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response, StatusCode};
use palisade_benches::{always_ready, for_each_service};
use tower::Layer;

type Req = Request<String>;
type Res = Response<String>;

/// Clones `service` and drops the clone.
fn clone_drop<S: Clone>(service: &S) {
    black_box(black_box(service).clone());
}

fn clone(c: &mut Criterion) {
    let mut group = c.benchmark_group("clone");
    let inner = always_ready::<Req, Res>();

    let tower_http_timeout = tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        Duration::from_secs(30),
    )
    .layer(inner.clone());
    group.bench_function("tower_http::timeout::Timeout", |b| {
        b.iter(|| clone_drop(&tower_http_timeout));
    });
    let tower_http_bearer =
        tower_http::auth::AddAuthorizationLayer::bearer("a-token").layer(inner.clone());
    group.bench_function("tower_http::auth::AddAuthorization", |b| {
        b.iter(|| clone_drop(&tower_http_bearer));
    });

    macro_rules! bench {
        ($name:literal, $service:expr) => {{
            let service = $service;
            group.bench_function(concat!("palisade::", $name), |b| {
                b.iter(|| clone_drop(&service));
            });
        }};
    }
    for_each_service!(inner, bench);
    group.finish();
}

criterion_group!(benches, clone);
criterion_main!(benches);
