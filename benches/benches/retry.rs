//! The no-retry path: what a retry layer costs a call that succeeds at once. Palisade's generic
//! and HTTP layers beside `tower::retry` with a policy that keeps a copy of the request but
//! never retries, and `tower-resilience`'s retry.
//!
//! Every row builds the same request (a `GET` with four headers, cloned from a template) and
//! calls an always-ready service, so each row minus `bare` is what its layer adds.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Method, Request, Response};
use http_body_util::Full;
use palisade::retry::{Backoff, HttpRetryLayer, ReplayBody, RetryLayer};
use palisade_benches::{always_ready, call_ready};
use tower::Layer;

type Req = Request<Full<Bytes>>;
type Res = Response<()>;

/// `tower::retry`'s policy that keeps a copy of each request, as a retrying policy must, and
/// never retries.
#[derive(Clone)]
struct KeepCopyNeverRetry;

impl<E> tower::retry::Policy<Req, Res, E> for KeepCopyNeverRetry {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, _: &mut Result<Res, E>) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

/// The same, with tower's `TpsBudget` as a tower user would add it: a deposit for each
/// answered request, and a shared handle in every future.
#[derive(Clone)]
struct KeepCopyWithBudget(std::sync::Arc<tower::retry::budget::TpsBudget>);

impl<E> tower::retry::Policy<Req, Res, E> for KeepCopyWithBudget {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        use tower::retry::budget::Budget as _;
        if result.is_ok() {
            self.0.deposit();
        }
        None
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

fn template(method: Method) -> Req {
    Request::builder()
        .method(method)
        .uri("http://billing.internal:8080/v1/invoices?page=2")
        .header("accept", "application/json")
        .header("user-agent", "palisade-bench/0.1")
        .header("x-request-id", "7d8c1d2e-4c9b-4d7e-9c55-0f6a9f0b1c2d")
        .header(
            "authorization",
            "Bearer pal_live_2Oa6KmWtP4kcChKu1OwMScNvaRtSsij9_1CnNwM",
        )
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn retry(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let get = template(Method::GET);
    let post = template(Method::POST);
    let backoff = Backoff::exponential(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut group = c.benchmark_group("retry");

    let mut bare = always_ready::<Req, Res>();
    group.bench_function("no-retry/bare", |b| {
        b.iter(|| call_ready(&mut bare, get.clone()));
    });

    let mut tower_retry =
        tower::retry::RetryLayer::new(KeepCopyNeverRetry).layer(always_ready::<Req, Res>());
    group.bench_function("no-retry/tower-retry-keeping-a-copy", |b| {
        b.iter(|| call_ready(&mut tower_retry, get.clone()));
    });

    let mut tower_budgeted =
        tower::retry::RetryLayer::new(KeepCopyWithBudget(std::sync::Arc::new(
            tower::retry::budget::TpsBudget::new(Duration::from_secs(10), 10, 0.2),
        )))
        .layer(always_ready::<Req, Res>());
    group.bench_function("no-retry/tower-retry-keeping-a-copy-with-budget", |b| {
        b.iter(|| call_ready(&mut tower_budgeted, get.clone()));
    });

    let mut resilience = tower_resilience_retry::RetryLayer::<Req, Res, Infallible>::builder()
        .max_attempts(3)
        .exponential_backoff(Duration::from_millis(50))
        .build()
        .layer(always_ready::<Req, Res>());
    group.bench_function("no-retry/tower-resilience", |b| {
        b.iter(|| call_ready(&mut resilience, get.clone()));
    });

    let mut ours = RetryLayer::new(backoff).layer(always_ready::<Req, Res>());
    group.bench_function("no-retry/palisade-generic", |b| {
        b.iter(|| call_ready(&mut ours, get.clone()));
    });

    let mut ours_unbudgeted = RetryLayer::new(backoff)
        .without_budget()
        .layer(always_ready::<Req, Res>());
    group.bench_function("no-retry/palisade-generic-without-budget", |b| {
        b.iter(|| call_ready(&mut ours_unbudgeted, get.clone()));
    });

    let mut ours_http =
        HttpRetryLayer::new(backoff).layer(always_ready::<Request<ReplayBody<Full<Bytes>>>, Res>());
    group.bench_function("no-retry/palisade-http-get", |b| {
        b.iter(|| call_ready(&mut ours_http, get.clone()));
    });
    group.bench_function("no-retry/palisade-http-post-never-retried", |b| {
        b.iter(|| call_ready(&mut ours_http, post.clone()));
    });
    group.finish();
}

criterion_group!(benches, retry);
criterion_main!(benches);
