//! The client-side rate limiter under concurrent callers, on the real clock (issue 16, item 7):
//! the longest wait from a call's start to its admission, against `max_wait`, and the calls
//! admitted per second, against the quota. Not a criterion group: the quantities are a
//! distribution and a rate, so it prints one table row per caller count.
//!
//! `cargo bench -p palisade-benches --bench ratelimit_client`
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "counts and times printed as rates and percentiles"
)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use palisade::ratelimit::{ClientError, ClientRateLimitLayer, Quota};
use tower::{Layer, ServiceExt, service_fn};

const QUOTA_PER_SECOND: u32 = 10_000;
const MAX_WAIT: Duration = Duration::from_millis(10);
const LENGTH: Duration = Duration::from_secs(2);

async fn run(callers: usize) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let record = waits.clone();
    let service = ClientRateLimitLayer::new(Quota::per_second(QUOTA_PER_SECOND).with_burst(1))
        .max_wait(MAX_WAIT)
        .build()
        .expect("a valid quota")
        .layer(service_fn(move |started: Instant| {
            let wait = started.elapsed();
            record.lock().expect("not poisoned").push(wait);
            async move { Ok::<_, Infallible>(()) }
        }));
    let limited = Arc::new(AtomicUsize::new(0));
    let over = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let service = service.clone();
            let limited = limited.clone();
            tokio::spawn(async move {
                while start.elapsed() < LENGTH {
                    match service.clone().oneshot(Instant::now()).await {
                        Ok(()) => {}
                        Err(ClientError::Limited(limit)) => {
                            // As a caller should: back off until a slot could be in reach.
                            limited.fetch_add(1, Ordering::Relaxed);
                            let back_off = limit.wait.saturating_sub(MAX_WAIT);
                            tokio::time::sleep(back_off.max(Duration::from_millis(1))).await;
                        }
                        Err(ClientError::Inner(never)) => match never {},
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("a caller task");
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut waits = waits.lock().expect("not poisoned").clone();
    waits.sort();
    let admitted = waits.len();
    let percentile = |p: f64| {
        waits
            .get(((admitted as f64 * p) as usize).min(admitted.saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    for wait in &waits {
        if *wait > MAX_WAIT {
            over.fetch_add(1, Ordering::Relaxed);
        }
    }
    println!(
        "| {callers} | {:.0} | {:.2}x | {} | {:.2?} | {:.2?} | {:.2?} | {} |",
        admitted as f64 / elapsed,
        admitted as f64 / elapsed / f64::from(QUOTA_PER_SECOND),
        limited.load(Ordering::Relaxed),
        percentile(0.5),
        percentile(0.99),
        waits.last().copied().unwrap_or_default(),
        over.load(Ordering::Relaxed),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    println!(
        "quota {QUOTA_PER_SECOND}/s burst 1, max_wait {MAX_WAIT:?}, {LENGTH:?} per row, real clock"
    );
    println!(
        "| callers | admitted/s | of quota | limited | p50 wait | p99 wait | longest wait | waits over max_wait |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for callers in [1, 16, 200] {
        runtime.block_on(run(callers));
    }
}
