//! Circuit breakers around an always-ready service: Palisade's beside `failsafe` (wrapped as a
//! tower service the way a user would) and `tower-resilience`'s circuit breaker, in the closed
//! state (the cost every call pays), in the open state (the cost of a rejection), and with two
//! threads calling clones of one breaker at once.

use std::sync::{Arc, Barrier};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::ErrorClassifier;
use palisade::breaker::{Breaker, BreakerLayer, Window};
use palisade_benches::{always_ready, call_ready, call_rejected};
use tower::{Layer, Service, service_fn};

type Req = ();

/// `failsafe`'s futures-aware breaker as a tower service: what a user writes to use it in a
/// tower stack.
#[derive(Clone)]
struct Failsafe<S, B> {
    inner: S,
    breaker: B,
}

impl<S, B> Service<Req> for Failsafe<S, B>
where
    S: Service<Req>,
    B: failsafe::futures::CircuitBreaker,
{
    type Response = S::Response;
    type Error = failsafe::Error<S::Error>;
    type Future = failsafe::futures::ResponseFuture<
        S::Future,
        B::FailurePolicy,
        B::Instrument,
        failsafe::Any,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(failsafe::Error::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        self.breaker.call(self.inner.call(request))
    }
}

/// `failsafe` as it comes: its default policy (a success rate over a time window, or 5
/// consecutive failures), the closest to Palisade's window and rate.
fn failsafe_default() -> impl failsafe::futures::CircuitBreaker + Clone {
    failsafe::Config::new().build()
}

/// `failsafe` with only a consecutive-failures policy: no window at all.
fn failsafe_consecutive() -> impl failsafe::futures::CircuitBreaker + Clone {
    let policy = failsafe::failure_policy::consecutive_failures(
        5,
        failsafe::backoff::constant(Duration::from_secs(3600)),
    );
    failsafe::Config::new().failure_policy(policy).build()
}

fn palisade(slow: bool) -> Breaker {
    let mut builder = Breaker::builder()
        .window(Window::count(100))
        .minimum_calls(5)
        .consecutive_failures(5)
        .wait(Duration::from_secs(3600));
    if slow {
        builder = builder.slow_calls(Duration::from_secs(1), 0.5);
    }
    builder.build().unwrap()
}

fn resilience_layer() -> tower_resilience_circuitbreaker::CircuitBreakerLayer {
    tower_resilience_circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .minimum_number_of_calls(5)
        .wait_duration_in_open(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// A service that always fails, to trip each breaker.
fn failing() -> impl Service<
    Req,
    Response = (),
    Error = std::io::Error,
    Future = std::future::Ready<Result<(), std::io::Error>>,
> + Clone {
    service_fn(|()| std::future::ready(Err(std::io::Error::other("down"))))
}

fn trip<S: Service<Req>>(service: &mut S) {
    for _ in 0..10 {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let _ = service.poll_ready(&mut cx);
        let future = service.call(());
        let mut future = std::pin::pin!(future);
        let _ = future.as_mut().poll(&mut cx);
    }
}

/// One call, polled until it is done: under contention a lock may make the call wait, and the
/// time spent waiting is what this measures.
fn call_spinning<S>(service: &mut S)
where
    S: Service<Req>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(std::task::Waker::noop());
    while service.poll_ready(&mut cx).is_pending() {}
    let mut future = std::pin::pin!(service.call(()));
    loop {
        if let Poll::Ready(result) = future.as_mut().poll(&mut cx) {
            std::hint::black_box(result.expect("the call succeeds"));
            return;
        }
    }
}

/// Two threads, each calling its own clone `iters` times; the time per call of one thread.
fn contended<S>(service: &S, iters: u64) -> Duration
where
    S: Service<Req> + Clone + Send + 'static,
    S::Error: std::fmt::Debug,
{
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let mut service = service.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for _ in 0..iters {
                    call_spinning(&mut service);
                }
                start.elapsed()
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .max()
        .unwrap_or_default()
}

fn breaker(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let mut group = c.benchmark_group("breaker");

    // Closed: every call goes through and is counted.
    let mut bare = always_ready::<Req, ()>();
    group.bench_function("closed/bare", |b| b.iter(|| call_ready(&mut bare, ())));
    let mut ours = BreakerLayer::new(palisade(false))
        .classify_with(ErrorClassifier)
        .layer(always_ready::<Req, ()>());
    group.bench_function("closed/palisade", |b| b.iter(|| call_ready(&mut ours, ())));
    let mut ours_slow = BreakerLayer::new(palisade(true))
        .classify_with(ErrorClassifier)
        .layer(always_ready::<Req, ()>());
    group.bench_function("closed/palisade-slow-calls", |b| {
        b.iter(|| call_ready(&mut ours_slow, ()));
    });
    let mut failsafe = Failsafe {
        inner: always_ready::<Req, ()>(),
        breaker: failsafe_default(),
    };
    group.bench_function("closed/failsafe", |b| {
        b.iter(|| call_ready(&mut failsafe, ()));
    });
    let mut failsafe_simple = Failsafe {
        inner: always_ready::<Req, ()>(),
        breaker: failsafe_consecutive(),
    };
    group.bench_function("closed/failsafe-consecutive-only", |b| {
        b.iter(|| call_ready(&mut failsafe_simple, ()));
    });
    let mut resilience = resilience_layer().layer(always_ready::<Req, ()>());
    group.bench_function("closed/tower-resilience", |b| {
        b.iter(|| call_ready(&mut resilience, ()));
    });

    // Open: every call is refused at once.
    let mut ours_open = BreakerLayer::new(palisade(false))
        .classify_with(ErrorClassifier)
        .layer(failing());
    trip(&mut ours_open);
    group.bench_function("open/palisade", |b| {
        b.iter(|| call_rejected(&mut ours_open, ()));
    });
    let mut failsafe_open = Failsafe {
        inner: failing(),
        breaker: failsafe_default(),
    };
    trip(&mut failsafe_open);
    group.bench_function("open/failsafe", |b| {
        b.iter(|| call_rejected(&mut failsafe_open, ()));
    });
    let mut resilience_open = resilience_layer().layer(failing());
    trip(&mut resilience_open);
    group.bench_function("open/tower-resilience", |b| {
        b.iter(|| call_rejected(&mut resilience_open, ()));
    });

    // Two threads on one breaker.
    let shared_bare = always_ready::<Req, ()>();
    group.bench_function("contended-2-threads/bare", |b| {
        b.iter_custom(|iters| contended(&shared_bare, iters));
    });
    let shared = BreakerLayer::new(palisade(false))
        .classify_with(ErrorClassifier)
        .layer(always_ready::<Req, ()>());
    group.bench_function("contended-2-threads/palisade", |b| {
        b.iter_custom(|iters| contended(&shared, iters));
    });
    let shared_failsafe = Failsafe {
        inner: always_ready::<Req, ()>(),
        breaker: failsafe_default(),
    };
    group.bench_function("contended-2-threads/failsafe", |b| {
        b.iter_custom(|iters| contended(&shared_failsafe, iters));
    });
    let shared_resilience = resilience_layer().layer(always_ready::<Req, ()>());
    group.bench_function("contended-2-threads/tower-resilience", |b| {
        b.iter_custom(|iters| contended(&shared_resilience, iters));
    });
    group.finish();
}

/// A breaker registry already full of `count` breakers, handed a new key on every call: each
/// insertion evicts one (issue 16, item 11: insertion cloned the whole map, so it cost more
/// with every key). The cost should not grow with `count`.
fn registry(c: &mut Criterion) {
    let mut group = c.benchmark_group("breaker-registry-new-key");
    for count in [1_000usize, 100_000] {
        let registry =
            palisade::breaker::BreakerRegistry::new(Breaker::builder().name("bench"), count)
                .unwrap();
        for i in 0..count {
            registry.get(&format!("upstream-{i}"));
        }
        let mut next = count;
        group.bench_function(format!("{count}"), |b| {
            b.iter(|| {
                next += 1;
                registry.get(&format!("upstream-{next}"))
            });
        });
        // A known key, for scale.
        group.bench_function(format!("{count}/known-key"), |b| {
            b.iter(|| registry.get("upstream-999"));
        });
    }
    group.finish();
}

criterion_group!(benches, breaker, registry);
criterion_main!(benches);
