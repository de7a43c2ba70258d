//! A million distinct keys through one limit: the tracked keys stay under the cap, and the
//! resident size is reported (not asserted: the machine is shared).

use std::convert::Infallible;

use http::{HeaderName, Request, Response};
use palisade_ratelimit::{FakeClock, KeyBy, Quota, RateLimitLayer, Tier, WhenFull};
use tower::{Layer, Service, ServiceExt, service_fn};

fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[tokio::test]
async fn a_million_keys_stay_under_the_cap() {
    const CAP: usize = 100_000;
    for policy in [
        WhenFull::EvictLeastRecent,
        WhenFull::RejectNew,
        WhenFull::AdmitUntracked,
    ] {
        let limits = RateLimitLayer::builder()
            .tier(Tier::new(
                "client",
                Quota::per_minute(10),
                KeyBy::header(HeaderName::from_static("x-client")),
            ))
            .capacity(CAP)
            .when_full(policy)
            .clock(FakeClock::new())
            .build()
            .unwrap();
        let mut service = limits.layer(service_fn(|_: Request<()>| async {
            Ok::<_, Infallible>(Response::new(()))
        }));
        let before = resident_kib();
        let mut refused = 0u32;
        for i in 0..1_000_000u32 {
            let request = Request::get("/")
                .header("x-client", i.to_string())
                .body(())
                .unwrap();
            let response = service.ready().await.unwrap().call(request).await.unwrap();
            if response.status() == 429 {
                refused += 1;
            }
        }
        let (tracked, capacity) = limits.tracked_keys("client").unwrap();
        assert!(tracked <= capacity, "{tracked} > {capacity}");
        assert!(capacity < CAP + 64);
        let after = resident_kib();
        println!(
            "{policy:?}: 1,000,000 keys -> {tracked} tracked (cap {capacity}), {refused} refused, \
             resident {before:?} -> {after:?} KiB"
        );
        match policy {
            WhenFull::EvictLeastRecent | WhenFull::AdmitUntracked => assert_eq!(refused, 0),
            WhenFull::RejectNew => assert!(refused > 800_000, "{refused}"),
        }
    }
}
