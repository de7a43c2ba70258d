//! Model-checks the half-open permit accounting with loom, over every interleaving of two
//! callers: never more probes in flight than allowed, and a cancelled probe always gives its
//! place back.
//!
//! ```text
//! RUSTFLAGS="--cfg palisade_loom" cargo test -p palisade-breaker --lib --release loom
//! ```

use std::time::Duration;

use loom::sync::Arc;
use loom::sync::atomic::AtomicUsize;
use palisade_core::Outcome;

use super::{BreakerState, Core};
use crate::sync::Ordering;
use crate::{BreakerBuilder, Window};

const WAIT: u64 = 1_000_000_000;

/// A core tripped at time 0 whose wait is over at `WAIT`, with `probes` probe places.
fn half_open_ready(probes: u32) -> Core {
    let builder = BreakerBuilder::default()
        .window(Window::count(2))
        .failure_rate(None)
        .consecutive_failures(1)
        .wait(Duration::from_nanos(WAIT))
        .half_open_probes(probes)
        .seed(1);
    let core = Core::new(&builder);
    let (permit, _) = core.acquire(&|| 0);
    core.complete(permit.unwrap(), Outcome::Failure, &|| 0);
    assert_eq!(core.state(), BreakerState::Open);
    core
}

#[test]
fn one_probe_place_between_two_callers() {
    loom::model(|| {
        let core = Arc::new(half_open_ready(1));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = [Outcome::Ignored, Outcome::Success]
            .into_iter()
            .map(|outcome| {
                let core = core.clone();
                let in_flight = in_flight.clone();
                loom::thread::spawn(move || {
                    let (admitted, _) = core.acquire(&|| WAIT);
                    if let Ok(permit) = admitted {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        assert!(now <= 1, "{now} probes in flight, 1 allowed");
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        core.complete(permit, outcome, &|| WAIT);
                        return outcome == Outcome::Success;
                    }
                    false
                })
            })
            .collect();
        let probed: Vec<bool> = callers.into_iter().map(|c| c.join().unwrap()).collect();
        if probed.contains(&true) {
            assert_eq!(
                core.state(),
                BreakerState::Closed,
                "the successful probe closed it"
            );
        } else {
            // Only the cancelled caller got through, or nobody did: the place is free again.
            assert_eq!(core.state(), BreakerState::HalfOpen);
            let (again, _) = core.acquire(&|| WAIT);
            assert!(again.is_ok(), "a cancelled probe gave its place back");
        }
    });
}

#[test]
fn a_stale_permit_cannot_release_a_new_place() {
    loom::model(|| {
        let core = Arc::new(half_open_ready(1));
        let (first, _) = core.acquire(&|| WAIT);
        let first = first.unwrap();
        // One caller cancels its probe while another opens the breaker again and, once the
        // next wait is over, takes the one place of the new half-open.
        let cancelling = {
            let core = core.clone();
            loom::thread::spawn(move || core.cancel(first))
        };
        let reopening = {
            let core = core.clone();
            loom::thread::spawn(move || {
                core.set(BreakerState::Open, WAIT);
                core.acquire(&|| 3 * WAIT).0.ok()
            })
        };
        cancelling.join().unwrap();
        let second = reopening
            .join()
            .unwrap()
            .expect("the new half-open has a free place");
        assert_eq!(core.state(), BreakerState::HalfOpen);
        // Whenever the old permit was cancelled, it did not free the new generation's place.
        let (third, _) = core.acquire(&|| 3 * WAIT);
        assert!(
            third.is_err(),
            "the only place is taken by the second probe"
        );
        core.cancel(second);
        let (fourth, _) = core.acquire(&|| 3 * WAIT);
        assert!(fourth.is_ok(), "and given back when it is cancelled");
    });
}
