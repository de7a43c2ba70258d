//! The Redis backend's throughput beside a bare `EVALSHA` of the same GCRA script through the
//! same client, at 1, 16 and 64 concurrent callers over one multiplexed connection to a real
//! `redis-server` started here. Each iteration is one check; the time is the wall time of all
//! callers' checks, so checks per second = iterations / time.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderName, Request, Response};
use palisade::ratelimit::redis::{GCRA_SCRIPT, RedisStore};
use palisade::ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
use palisade_test_support::redis::RedisServer;
use tower::{Layer, ServiceExt, service_fn};

fn redis(c: &mut Criterion) {
    let server = RedisServer::spawn();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Never refuses: every row measures an admitted check.
    let quota = Quota::new(1000, Duration::from_millis(1)).with_burst(u32::MAX);
    let store = runtime
        .block_on(RedisStore::connect(&server.url()))
        .unwrap();
    let layer = RateLimitLayer::builder()
        .tier(
            Tier::new(
                "client",
                quota,
                KeyBy::header(HeaderName::from_static("x-client")),
            )
            .redis(store),
        )
        .build()
        .unwrap();
    let service = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let client = redis::Client::open(server.url()).unwrap();
    let manager = runtime
        .block_on(redis::aio::ConnectionManager::new(client))
        .unwrap();
    let script = Arc::new(redis::Script::new(GCRA_SCRIPT));

    let mut group = c.benchmark_group("ratelimit-redis");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for callers in [1u64, 16, 64] {
        group.bench_function(format!("bare-evalsha/{callers}"), |b| {
            b.iter_custom(|iterations| {
                let (manager, script) = (manager.clone(), script.clone());
                runtime.block_on(run(callers, iterations, move |i| {
                    let (mut connection, script) = (manager.clone(), script.clone());
                    async move {
                        let mut invocation = script.key(format!("bench:bare:{}", i % 1000));
                        invocation
                            .arg(1000)
                            .arg(u64::from(u32::MAX) * 1000)
                            .arg(1)
                            .arg(1);
                        let _: (i64, i64, i64) =
                            invocation.invoke_async(&mut connection).await.unwrap();
                    }
                }))
            });
        });
        group.bench_function(format!("palisade/{callers}"), |b| {
            b.iter_custom(|iterations| {
                let service = service.clone();
                runtime.block_on(run(callers, iterations, move |i| {
                    let service = service.clone();
                    async move {
                        let request = Request::get("/")
                            .header("x-client", (i % 1000).to_string())
                            .body(())
                            .unwrap();
                        let response = service.oneshot(request).await.unwrap();
                        assert_eq!(response.status(), 200);
                    }
                }))
            });
        });
    }
    group.finish();
    drop(server);
}

/// `iterations` calls of `check`, spread over `callers` concurrent tasks; the wall time.
async fn run<F, Fut>(callers: u64, iterations: u64, check: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let check = check.clone();
            tokio::spawn(async move {
                let mut i = caller;
                while i < iterations {
                    check(i).await;
                    i += callers;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    start.elapsed()
}

criterion_group!(benches, redis);
criterion_main!(benches);
