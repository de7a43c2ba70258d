//! Rate limiting per request, keyed by client IP, beside `tower_governor` (same quota, keyed by
//! peer IP, no headers on allowed responses in either) and raw `governor` `check_key`. Every
//! row gets the same request carrying the address in its extensions (`ConnectInfo` for
//! `tower_governor`, the resolved `ClientIp` for Palisade); the quota never refuses, so every
//! row measures the admit path. One key, 100,000 keys in turn, and two threads with distinct
//! keys.
//!
//! With `--features metrics` the layers count every decision into an installed Prometheus
//! recorder: the difference between the two runs is what recording costs per request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use palisade::ClientIp;
use palisade::ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
use palisade_benches::{always_ready, call_ready};
use tower::Layer;

type Req = Request<String>;
type Res = Response<axum::body::Body>;

/// One permit per microsecond and a burst no bench exhausts: never refuses.
fn quota() -> Quota {
    Quota::new(1000, Duration::from_millis(1)).with_burst(u32::MAX)
}

fn ip(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i))
}

fn request(i: u32) -> Req {
    let mut request = Request::new(String::new());
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(SocketAddr::new(ip(i), 4000)));
    request.extensions_mut().insert(ClientIp(ip(i)));
    request
}

fn ratelimit(c: &mut Criterion) {
    #[cfg(feature = "metrics")]
    let _recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("no other recorder");
    for keys in [1u32, 100_000] {
        let mut group = c.benchmark_group(format!("ratelimit/{keys}-keys"));
        let mut next = 0u32;
        let mut pick = move || {
            next = (next + 1) % keys;
            next
        };
        let mut bare = always_ready::<Req, Res>();
        group.bench_function("bare", |b| {
            b.iter(|| call_ready(&mut bare, request(pick())));
        });

        let config = tower_governor::governor::GovernorConfigBuilder::default()
            .period(Duration::from_micros(1))
            .burst_size(u32::MAX)
            .finish()
            .unwrap();
        let mut governed =
            tower_governor::GovernorLayer::new(config).layer(always_ready::<Req, Res>());
        group.bench_function("tower_governor", |b| {
            b.iter(|| call_ready(&mut governed, request(pick())));
        });

        let raw = governor::RateLimiter::keyed(
            governor::Quota::with_period(Duration::from_micros(1))
                .unwrap()
                .allow_burst(NonZeroU32::MAX),
        );
        group.bench_function("governor::check_key", |b| {
            b.iter(|| {
                let request = request(pick());
                let ip = request.extensions().get::<ClientIp>().unwrap().ip();
                assert!(raw.check_key(&ip).is_ok());
                std::hint::black_box(request);
            });
        });

        let mut ours = RateLimitLayer::builder()
            .tier(Tier::new("ip", quota(), KeyBy::client_ip()))
            .capacity(200_000)
            .build()
            .unwrap()
            .layer(always_ready::<Req, Res>());
        group.bench_function("palisade::RateLimit", |b| {
            b.iter(|| call_ready(&mut ours, request(pick())));
        });
        group.finish();
    }

    // Two threads, distinct keys, one shared layer: time per call on each thread.
    let mut group = c.benchmark_group("ratelimit/2-threads");
    let layer = RateLimitLayer::builder()
        .tier(Tier::new("ip", quota(), KeyBy::client_ip()))
        .capacity(200_000)
        .build()
        .unwrap();
    group.bench_function("palisade::RateLimit", |b| {
        b.iter_custom(|iterations| {
            two_threads(iterations, |offset| {
                let mut service = layer.clone().layer(always_ready::<Req, Res>());
                Box::new(move |i: u64| {
                    call_ready(&mut service, request(offset + (i % 50_000) as u32));
                })
            })
        });
    });
    let config = Arc::new(
        tower_governor::governor::GovernorConfigBuilder::default()
            .period(Duration::from_micros(1))
            .burst_size(u32::MAX)
            .finish()
            .unwrap(),
    );
    group.bench_function("tower_governor", |b| {
        b.iter_custom(|iterations| {
            two_threads(iterations, |offset| {
                let mut service = tower_governor::GovernorLayer::new(config.clone())
                    .layer(always_ready::<Req, Res>());
                Box::new(move |i: u64| {
                    call_ready(&mut service, request(offset + (i % 50_000) as u32));
                })
            })
        });
    });
    group.finish();
}

type Worker = Box<dyn FnMut(u64) + Send>;

/// Runs `iterations` calls on each of two threads; the wall time of the slower.
fn two_threads(iterations: u64, make: impl Fn(u32) -> Worker) -> Duration {
    let workers: Vec<Worker> = vec![make(0), make(1_000_000)];
    let barrier = Arc::new(std::sync::Barrier::new(2));
    let handles: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let start = Instant::now();
                for i in 0..iterations {
                    worker(i);
                }
                start.elapsed()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap_or_default()
}

criterion_group!(benches, ratelimit);
criterion_main!(benches);
