//! The client-side limiter under concurrent callers (issue 16, item 7), on tokio's paused clock
//! so the numbers are exact: no call waits longer than `max_wait` from its start, waiters go in
//! the order they came, and admitted calls keep to the quota. `benches/benches/ratelimit_client.rs`
//! measures the same on the real clock.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "counts and times printed as rates and percentiles"
)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use palisade_ratelimit::{ClientError, ClientRateLimitLayer, Quota};
use tokio::time::Instant;
use tower::{Layer, ServiceExt, service_fn};

/// What a run of callers saw.
#[derive(Debug)]
struct Row {
    callers: usize,
    admitted: usize,
    limited: usize,
    longest_wait: Duration,
    /// The calls admitted per second.
    rate: f64,
}

/// `callers` tasks call for `length` of (paused) time through one limiter of `quota`; a
/// refused caller backs off 1 ms and calls again.
async fn run(quota: Quota, max_wait: Duration, callers: usize, length: Duration) -> Row {
    let admissions = Arc::new(Mutex::new(Vec::new()));
    let record = admissions.clone();
    let service = ClientRateLimitLayer::new(quota)
        .max_wait(max_wait)
        .build()
        .unwrap()
        .layer(service_fn(move |started: Instant| {
            let record = record.clone();
            async move {
                let now = Instant::now();
                record.lock().unwrap().push((started, now));
                Ok::<_, Infallible>(())
            }
        }));
    let start = Instant::now();
    let end = start + length;
    let limited = Arc::new(Mutex::new(0usize));
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let service = service.clone();
            let limited = limited.clone();
            tokio::spawn(async move {
                while Instant::now() < end {
                    match service.clone().oneshot(Instant::now()).await {
                        Ok(()) => {}
                        Err(ClientError::Limited(limit)) => {
                            assert!(limit.wait > max_wait.saturating_sub(Duration::from_millis(2)));
                            *limited.lock().unwrap() += 1;
                            // As a caller should: back off until a slot could be in reach.
                            let back_off = limit.wait.saturating_sub(max_wait);
                            tokio::time::sleep(back_off.max(Duration::from_millis(1))).await;
                        }
                        Err(ClientError::Inner(never)) => match never {},
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let admissions = admissions.lock().unwrap();
    let longest_wait = admissions
        .iter()
        .map(|(started, admitted)| *admitted - *started)
        .max()
        .unwrap_or_default();
    // The quota, checked on the admission times themselves: in any window of `w`, at most
    // burst + w / interval calls.
    let mut times: Vec<Instant> = admissions.iter().map(|(_, admitted)| *admitted).collect();
    times.sort();
    let interval = quota.emission_interval();
    let burst = quota.burst() as usize;
    for (i, at) in times.iter().enumerate() {
        let window = Duration::from_millis(100);
        let within = times[i..].iter().take_while(|t| **t - *at < window).count();
        let allowed = burst + (window.as_nanos() / interval.as_nanos()) as usize;
        assert!(
            within <= allowed,
            "{within} calls within {window:?}, more than {allowed}"
        );
    }
    let elapsed = (Instant::now() - start).as_secs_f64();
    Row {
        callers,
        admitted: admissions.len(),
        limited: *limited.lock().unwrap(),
        longest_wait,
        rate: admissions.len() as f64 / elapsed,
    }
}

#[tokio::test(start_paused = true)]
async fn waits_stay_within_max_wait_and_throughput_stays_near_the_quota() {
    let quota = Quota::per_second(10_000).with_burst(1);
    let max_wait = Duration::from_millis(10);
    println!("| callers | admitted | limited | longest wait | admitted/s (quota 10,000/s) |");
    println!("|---|---|---|---|---|");
    for callers in [1, 16, 200] {
        let row = run(quota, max_wait, callers, Duration::from_secs(1)).await;
        println!(
            "| {} | {} | {} | {:?} | {:.0} |",
            row.callers, row.admitted, row.limited, row.longest_wait, row.rate
        );
        assert!(row.longest_wait <= max_wait, "{row:?}");
        // One caller at a time waits for each slot in turn; more callers keep every slot used.
        if callers >= 16 {
            assert!(row.rate >= 9_500.0 && row.rate <= 10_100.0, "{row:?}");
        }
    }
}

/// Callers are served in the order they came: each reserves the next slot when it calls.
#[tokio::test(start_paused = true)]
async fn waiters_are_served_in_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let record = order.clone();
    let service = ClientRateLimitLayer::new(Quota::per_second(100).with_burst(1))
        .max_wait(Duration::from_secs(1))
        .build()
        .unwrap()
        .layer(service_fn(move |n: usize| {
            record.lock().unwrap().push(n);
            async move { Ok::<_, Infallible>(()) }
        }));
    let mut tasks = Vec::new();
    for n in 0..20 {
        tasks.push(tokio::spawn(service.clone().oneshot(n)));
        // Each task starts (and reserves) before the next is spawned.
        tokio::task::yield_now().await;
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
}
