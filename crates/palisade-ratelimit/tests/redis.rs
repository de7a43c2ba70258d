//! The Redis backend against real `redis-server` processes started here: a quota shared by two
//! instances, an outage under each failure policy, recovery after a restart, lease mode's
//! bound, one round trip per check, and a real three-node Redis Cluster.
#![cfg(feature = "redis-cluster")]

use std::convert::Infallible;
use std::time::Duration;

use http::{HeaderName, Request, Response, StatusCode};
use palisade_ratelimit::redis::{FailurePolicy, RedisStore};
use palisade_ratelimit::{KeyBy, Quota, RateLimitLayer, Tier};
use palisade_test_support::redis::{RedisCluster, RedisServer};
use tower::{Layer, Service, ServiceExt, service_fn};

type Svc = palisade_ratelimit::RateLimit<
    tower::util::ServiceFn<fn(Request<()>) -> std::future::Ready<Result<Response<()>, Infallible>>>,
>;

fn ok(_: Request<()>) -> std::future::Ready<Result<Response<()>, Infallible>> {
    std::future::ready(Ok(Response::new(())))
}

fn instance(store: RedisStore, quota: Quota) -> Svc {
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
    layer.layer(service_fn(ok as fn(_) -> _))
}

async fn call(service: &mut Svc, client: &str) -> StatusCode {
    let request = Request::get("/")
        .header("x-client", client)
        .body(())
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    response.status()
}

fn evalsha_calls(server: &RedisServer) -> u64 {
    let stats = server.cli(&["INFO", "commandstats"]).unwrap_or_default();
    stats
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .and_then(|l| l.split("calls=").nth(1))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn two_instances_share_one_quota_with_one_round_trip_per_check() {
    let server = RedisServer::spawn();
    let quota = Quota::per_minute(5);
    let mut a = instance(RedisStore::connect(&server.url()).await.unwrap(), quota);
    let mut b = instance(RedisStore::connect(&server.url()).await.unwrap(), quota);
    let mut admitted = 0;
    for i in 0..10 {
        let service = if i % 2 == 0 { &mut a } else { &mut b };
        if call(service, "ada").await == StatusCode::OK {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 5, "one quota across both instances");
    // Each check was one EVALSHA; the very first found the script not loaded yet (NOSCRIPT),
    // loaded it and ran again: 10 checks, 11 calls.
    assert_eq!(evalsha_calls(&server), 11);
    // Another key has its own quota; the key expires once recovered.
    assert_eq!(call(&mut a, "grace").await, StatusCode::OK);
    let ttl: i64 = server
        .cli(&["PTTL", &keys(&server)[0]])
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_001, "{ttl}");
}

fn keys(server: &RedisServer) -> Vec<String> {
    server
        .cli(&["KEYS", "palisade:rl:*"])
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn an_outage_follows_the_failure_policy_and_a_restart_recovers() {
    let mut server = RedisServer::spawn();
    let quota = Quota::per_minute(100);
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .timeout(Duration::from_millis(200));
    let mut open = instance(store.clone(), quota);
    let mut closed = instance(store.on_failure(FailurePolicy::FailClosed), quota);
    assert_eq!(call(&mut open, "ada").await, StatusCode::OK);
    server.kill();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        assert_eq!(call(&mut open, "ada").await, StatusCode::OK, "fail open");
        assert_eq!(
            call(&mut closed, "ada").await,
            StatusCode::SERVICE_UNAVAILABLE,
            "fail closed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no request is stuck"
        );
    }
    server.restart();
    let mut recovered = false;
    for _ in 0..50 {
        if call(&mut closed, "ada").await == StatusCode::OK {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "the connection came back after the restart");
}

#[tokio::test]
async fn lease_mode_cuts_round_trips_within_its_bound() {
    let server = RedisServer::spawn();
    let quota = Quota::per_minute(20);
    let batch = 5;
    let lease = |store: RedisStore| store.lease(batch);
    let mut a = instance(
        lease(RedisStore::connect(&server.url()).await.unwrap()),
        quota,
    );
    let mut b = instance(
        lease(RedisStore::connect(&server.url()).await.unwrap()),
        quota,
    );
    let mut admitted = 0u32;
    for i in 0..60 {
        let service = if i % 2 == 0 { &mut a } else { &mut b };
        if call(service, "ada").await == StatusCode::OK {
            admitted += 1;
        }
    }
    // Leased permits are taken from Redis before they are spent: within one window, never
    // more than the quota plus what two instances may hold unspent.
    assert!(admitted <= 20 + 2 * (batch - 1), "{admitted}");
    assert!(admitted >= 15, "{admitted}");
    let calls = evalsha_calls(&server);
    assert!(calls < 60, "{calls} round trips for 60 checks");
}

#[tokio::test]
async fn leases_are_held_per_tier() {
    // Two tiers on one key over one leasing store: the generous tier's leases must never pay
    // for the tight tier's requests.
    let server = RedisServer::spawn();
    let store = RedisStore::connect(&server.url()).await.unwrap().lease(5);
    let header = || KeyBy::header(HeaderName::from_static("x-client"));
    let layer = RateLimitLayer::builder()
        .tier(Tier::new("tight", Quota::per_minute(10), header()).redis(store.clone()))
        .tier(Tier::new("loose", Quota::per_minute(1000), header()).redis(store))
        .build()
        .unwrap();
    let mut service: Svc = layer.layer(service_fn(ok as fn(_) -> _));
    let mut admitted = 0u32;
    for _ in 0..40 {
        if call(&mut service, "ada").await == StatusCode::OK {
            admitted += 1;
        }
    }
    assert!((10..=14).contains(&admitted), "{admitted} admitted of 40");
}

#[tokio::test]
async fn a_real_cluster_spreads_keys_and_shares_each_quota() {
    let cluster = RedisCluster::spawn();
    let urls = cluster.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let quota = Quota::per_minute(3);
    let mut a = instance(RedisStore::connect_cluster(&urls).await.unwrap(), quota);
    let mut b = instance(RedisStore::connect_cluster(&urls).await.unwrap(), quota);
    for client in 0..60 {
        let client = format!("client-{client}");
        let mut admitted = 0;
        for i in 0..6 {
            let service = if i % 2 == 0 { &mut a } else { &mut b };
            if call(service, &client).await == StatusCode::OK {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 3, "{client}");
    }
    for node in cluster.nodes() {
        let size: u64 = node.cli(&["DBSIZE"]).unwrap().trim().parse().unwrap();
        assert!(size > 0, "every node holds some keys");
    }
}
