//! Redis lease mode with many live leases (issue 16, item 8): new keys per second (each a Redis
//! call that writes a lease) and the latency of a lease hit (a request spent from a lease held
//! in process), at 1,000 and at 100,000 live leases, through the whole `RateLimitLayer`
//! against a real `redis-server` started here. Not a criterion group: the point is how the two
//! numbers move with the number of leases, so it prints one row per count.
//!
//! `cargo bench -p palisade-benches --bench ratelimit_redis_leases`
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "counts and times printed as rates and percentiles"
)]

use std::convert::Infallible;
use std::time::Instant;

use http::{HeaderName, Request, Response};
use palisade::ratelimit::redis::RedisStore;
use palisade::ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
use palisade_test_support::redis::RedisServer;
use tower::{Layer, Service, ServiceExt, service_fn};

const CALLERS: usize = 16;

fn main() {
    let server = RedisServer::spawn();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "| live leases | new keys/s ({CALLERS} callers) | lease hits meanwhile | hit p50 | p99 | max |"
    );
    println!("|---|---|---|---|---|---|");
    for (round, live) in [1_000usize, 100_000].into_iter().enumerate() {
        runtime.block_on(row(&server, round, live));
    }
}

async fn row(server: &RedisServer, round: usize, live: usize) {
    // A lease of 60,000 permits lives 60 s (one permit a millisecond): every lease written
    // here is live for the whole row.
    let quota = Quota::per_second(1000).with_burst(100_000);
    let store = RedisStore::connect(&server.url())
        .await
        .expect("redis")
        .prefix(&format!("bench:leases:{round}"))
        .lease(60_000);
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
        .expect("a valid tier");
    let service = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    // `live` keys, each holding a lease.
    spread(0, live, service.clone()).await;
    // 2,000 new keys from 16 callers, while one caller spends from
    // the leases held. A full store drops its oldest leases: the hits go to keys that stay.
    let fresh = 2_000;
    // The store holds at most 100,000 leases: adding past it drops the oldest.
    let held_from = (live + fresh).saturating_sub(100_000);
    let start = Instant::now();
    let adding = tokio::spawn(spread(live, fresh, service.clone()));
    let mut service = service;
    let mut hits = Vec::with_capacity(100_000);
    let mut i = 0;
    while !adding.is_finished() || hits.len() < 1_000 {
        let key = held_from + (i * 7919) % (live - held_from);
        i += 1;
        let began = Instant::now();
        let response = service
            .ready()
            .await
            .expect("infallible")
            .call(request(key))
            .await
            .expect("infallible");
        hits.push(began.elapsed());
        assert_eq!(response.status(), 200);
    }
    adding.await.expect("the adding task");
    let per_second = fresh as f64 / start.elapsed().as_secs_f64();
    hits.sort();
    let at = |p: f64| hits[((hits.len() as f64 * p) as usize).min(hits.len() - 1)];
    println!(
        "| {live} | {per_second:.0} | {} | {:.2?} | {:.2?} | {:.2?} |",
        hits.len(),
        at(0.5),
        at(0.99),
        hits[hits.len() - 1]
    );
}

fn request(key: usize) -> Request<()> {
    Request::get("/")
        .header("x-client", key.to_string())
        .body(())
        .expect("a request")
}

/// Checks of the keys `first..first + count` over `CALLERS` concurrent tasks.
async fn spread<S>(first: usize, count: usize, service: S)
where
    S: Service<Request<()>, Response = Response<palisade::ResponseBody<()>>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    let tasks: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let service = service.clone();
            tokio::spawn(async move {
                let mut i = caller;
                while i < count {
                    let response = service.clone().oneshot(request(first + i)).await;
                    assert_eq!(response.expect("infallible").status(), 200);
                    i += CALLERS;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a task");
    }
}
