//! The breaker's states, driven through `BreakerLayer` with paused time: every test is
//! deterministic and none sleeps for real.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use palisade_breaker::{Breaker, BreakerBuilder, BreakerLayer, BreakerOpen, BreakerState, Window};
use palisade_core::{ErrorClassifier, Outcome};
use tokio::sync::Semaphore;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

/// How a test call behaves.
#[derive(Clone, Copy, Debug)]
enum Call {
    Ok,
    Fail,
    /// Succeeds after this long.
    Slow(Duration),
}

#[derive(Debug)]
struct Failed;

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("upstream failed")
    }
}

impl std::error::Error for Failed {}

fn client(
    breaker: &Breaker,
) -> impl Service<Call, Response = (), Error = BoxError, Future: Send> + Clone + use<> {
    let upstream = service_fn(|call: Call| async move {
        match call {
            Call::Ok => Ok(()),
            Call::Fail => Err(Failed),
            Call::Slow(delay) => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
        }
    });
    BreakerLayer::new(breaker.clone())
        .classify_with(ErrorClassifier)
        .layer(upstream)
}

async fn run(breaker: &Breaker, calls: &[Call]) -> Vec<Result<(), BoxError>> {
    let mut results = Vec::new();
    for call in calls {
        results.push(client(breaker).oneshot(*call).await);
    }
    results
}

fn refused(result: &Result<(), BoxError>) -> Option<&BreakerOpen> {
    result
        .as_ref()
        .err()
        .and_then(|e| e.downcast_ref::<BreakerOpen>())
}

fn builder() -> BreakerBuilder {
    Breaker::builder()
        .window(Window::count(10))
        .minimum_calls(4)
        .failure_rate(0.5)
        .wait(Duration::from_secs(10))
        .half_open_probes(2)
        .seed(1)
}

#[tokio::test(start_paused = true)]
async fn trips_on_the_failure_rate() {
    let breaker = builder().build().unwrap();
    run(&breaker, &[Call::Ok, Call::Fail, Call::Ok]).await;
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "1 of 3: under the rate"
    );
    run(&breaker, &[Call::Fail]).await;
    assert_eq!(breaker.state(), BreakerState::Open, "2 of 4 = 50 %");

    let results = run(&breaker, &[Call::Ok]).await;
    let open = refused(&results[0]).expect("refused while open");
    assert_eq!(open.state(), BreakerState::Open);
    assert_eq!(open.remaining(), Some(Duration::from_secs(10)));
    assert_eq!(breaker.snapshot().open_for, Some(Duration::from_secs(10)));
}

#[tokio::test(start_paused = true)]
async fn the_minimum_calls_gate_holds_until_enough_calls() {
    let breaker = builder().minimum_calls(6).build().unwrap();
    run(&breaker, &[Call::Fail; 5]).await;
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "100 % of 5, but 6 needed"
    );
    assert!((breaker.snapshot().failure_rate() - 1.0).abs() < f64::EPSILON);
    run(&breaker, &[Call::Ok]).await;
    assert_eq!(
        breaker.state(),
        BreakerState::Open,
        "5 of 6 once the gate opens, even on a success"
    );
}

/// Issue 16, item 10: `Window::count(10)` with the default minimum of 20 calls stayed closed
/// after 1,000 failures in a row, since the window never held 20. The minimum is at most the
/// window's size, as resilience4j has it.
#[tokio::test(start_paused = true)]
async fn a_count_window_smaller_than_the_minimum_still_trips() {
    let breaker = Breaker::builder()
        .window(Window::count(10))
        .failure_rate(0.5)
        .wait(Duration::from_secs(10))
        .build()
        .unwrap();
    let results = run(&breaker, &[Call::Fail; 9]).await;
    assert!(results.iter().all(|r| refused(r).is_none()));
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "nine calls: not judged yet"
    );
    run(&breaker, &[Call::Fail]).await;
    assert_eq!(
        breaker.state(),
        BreakerState::Open,
        "the tenth fills the window"
    );
    // A time window keeps the configured minimum.
    let timed = Breaker::builder()
        .window(Window::time(Duration::from_secs(10), 10))
        .minimum_calls(20)
        .failure_rate(0.5)
        .build()
        .unwrap();
    run(&timed, &[Call::Fail; 19]).await;
    assert_eq!(timed.state(), BreakerState::Closed);
    run(&timed, &[Call::Fail]).await;
    assert_eq!(timed.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn trips_on_consecutive_failures_regardless_of_the_rate() {
    let breaker = builder()
        .failure_rate(None)
        .consecutive_failures(3)
        .build()
        .unwrap();
    run(
        &breaker,
        &[Call::Fail, Call::Fail, Call::Ok, Call::Fail, Call::Fail],
    )
    .await;
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "a success reset the run"
    );
    run(&breaker, &[Call::Fail]).await;
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn trips_on_slow_calls() {
    let breaker = builder()
        .failure_rate(None)
        .slow_calls(Duration::from_millis(100), 0.5)
        .build()
        .unwrap();
    let slow = Call::Slow(Duration::from_millis(250));
    let quick = Call::Slow(Duration::from_millis(20));
    run(&breaker, &[quick, slow, quick]).await;
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.snapshot().slow_calls, 1);
    run(&breaker, &[slow]).await;
    assert_eq!(breaker.state(), BreakerState::Open, "2 of 4 slow");
}

#[tokio::test(start_paused = true)]
async fn a_time_window_forgets_old_failures() {
    let breaker = builder()
        .window(Window::time(Duration::from_secs(10), 5))
        .build()
        .unwrap();
    run(&breaker, &[Call::Fail, Call::Fail, Call::Fail]).await;
    tokio::time::advance(Duration::from_secs(11)).await;
    run(&breaker, &[Call::Ok, Call::Ok, Call::Ok, Call::Fail]).await;
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "the first failures left the window: 1 of 4"
    );
    run(&breaker, &[Call::Fail]).await;
    assert_eq!(breaker.state(), BreakerState::Closed, "2 of 5");
    run(&breaker, &[Call::Fail]).await;
    assert_eq!(breaker.state(), BreakerState::Open, "3 of 6");
}

/// A client whose calls wait until the test lets them go.
fn gated(
    breaker: &Breaker,
    gate: &Arc<Semaphore>,
) -> impl Service<(), Response = (), Error = BoxError, Future: Send> + Clone + use<> {
    let gate = gate.clone();
    let upstream = service_fn(move |()| {
        let gate = gate.clone();
        async move {
            gate.acquire().await.unwrap().forget();
            Ok::<_, Failed>(())
        }
    });
    BreakerLayer::new(breaker.clone())
        .classify_with(ErrorClassifier)
        .layer(upstream)
}

async fn trip(breaker: &Breaker) {
    run(breaker, &[Call::Fail; 4]).await;
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_the_probes() {
    let breaker = builder().build().unwrap();
    trip(&breaker).await;
    tokio::time::advance(Duration::from_secs(10)).await;

    let gate = Arc::new(Semaphore::new(0));
    let client = gated(&breaker, &gate);
    let probes: Vec<_> = (0..2)
        .map(|_| tokio::spawn(client.clone().oneshot(())))
        .collect();
    tokio::task::yield_now().await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // Two probes are in flight: a third and fourth are refused at once.
    for _ in 0..2 {
        let err = client.clone().oneshot(()).await.unwrap_err();
        let open = err.downcast_ref::<BreakerOpen>().unwrap();
        assert_eq!(open.state(), BreakerState::HalfOpen);
        assert_eq!(open.remaining(), None);
    }
    gate.add_permits(2);
    for probe in probes {
        probe.await.unwrap().unwrap();
    }
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "both probes succeeded"
    );
    assert_eq!(breaker.snapshot().calls, 0, "closing starts a fresh window");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_gives_its_place_back_and_is_not_counted() {
    let breaker = builder().half_open_probes(1).build().unwrap();
    trip(&breaker).await;
    tokio::time::advance(Duration::from_secs(10)).await;

    let gate = Arc::new(Semaphore::new(0));
    let client = gated(&breaker, &gate);
    let probe = tokio::spawn(client.clone().oneshot(()));
    tokio::task::yield_now().await;
    assert!(refused(&client.clone().oneshot(()).await).is_some());
    // The caller gives up on the probe: its future is dropped mid-call.
    probe.abort();
    assert!(probe.await.unwrap_err().is_cancelled());
    assert_eq!(
        breaker.state(),
        BreakerState::HalfOpen,
        "a cancelled probe decides nothing"
    );
    gate.add_permits(1);
    client.clone().oneshot(()).await.unwrap();
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "the next probe got the place"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_reopens_and_the_wait_grows_capped() {
    let breaker = builder()
        .half_open_probes(1)
        .wait(Duration::from_secs(1))
        .wait_growth(2.0, Duration::from_secs(5))
        .build()
        .unwrap();
    trip(&breaker).await;
    let mut waits = vec![breaker.snapshot().open_for.unwrap()];
    for _ in 0..4 {
        tokio::time::advance(waits[waits.len() - 1]).await;
        run(&breaker, &[Call::Fail]).await;
        assert_eq!(breaker.state(), BreakerState::Open);
        waits.push(breaker.snapshot().open_for.unwrap());
    }
    let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
    assert_eq!(secs, [1, 2, 4, 5, 5], "doubling, capped at 5 s");

    // A successful probe closes it; the next trip starts from the first wait again.
    tokio::time::advance(Duration::from_secs(5)).await;
    run(&breaker, &[Call::Ok]).await;
    assert_eq!(breaker.state(), BreakerState::Closed);
    trip(&breaker).await;
    assert_eq!(breaker.snapshot().open_for, Some(Duration::from_secs(1)));
}

#[tokio::test(start_paused = true)]
async fn jitter_is_seeded_and_bounded() {
    let waits = |seed| async move {
        let breaker = builder().jitter(0.5).seed(seed).build().unwrap();
        trip(&breaker).await;
        breaker.snapshot().open_for.unwrap()
    };
    let first = waits(11).await;
    assert_eq!(first, waits(11).await, "the same seed, the same wait");
    assert!(first >= Duration::from_secs(5) && first <= Duration::from_secs(15));
    let spread: std::collections::HashSet<_> =
        futures_set((0..8).map(|seed| async move { waits(seed).await.as_millis() })).await;
    assert!(spread.len() > 4, "seeds spread the waits: {spread:?}");
}

async fn futures_set<F: std::future::Future<Output = u128>>(
    futures: impl Iterator<Item = F>,
) -> std::collections::HashSet<u128> {
    let mut out = std::collections::HashSet::new();
    for future in futures {
        out.insert(future.await);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn half_open_has_a_maximum_duration() {
    let breaker = builder()
        .half_open_probes(1)
        .half_open_max(Duration::from_secs(3))
        .build()
        .unwrap();
    trip(&breaker).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    let gate = Arc::new(Semaphore::new(0));
    let hung = tokio::spawn(gated(&breaker, &gate).oneshot(()));
    tokio::task::yield_now().await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    tokio::time::advance(Duration::from_secs(3)).await;
    let results = run(&breaker, &[Call::Ok]).await;
    assert_eq!(
        refused(&results[0]).map(BreakerOpen::state),
        Some(BreakerState::Open),
        "the hung probe kept half-open too long: open again"
    );
    // The hung probe finishing late changes nothing.
    gate.add_permits(1);
    hung.await.unwrap().unwrap();
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn forced_states_and_reset() {
    let breaker = builder().build().unwrap();
    breaker.force_open();
    let results = run(&breaker, &[Call::Ok]).await;
    let open = refused(&results[0]).unwrap();
    assert_eq!(open.state(), BreakerState::ForcedOpen);
    assert_eq!(open.remaining(), None);
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(
        refused(&run(&breaker, &[Call::Ok]).await[0]).is_some(),
        "until reset"
    );

    breaker.disable();
    let results = run(&breaker, &[Call::Fail; 20]).await;
    assert!(
        results.iter().all(|r| refused(r).is_none()),
        "all let through"
    );
    assert_eq!(
        breaker.state(),
        BreakerState::Disabled,
        "and nothing counted"
    );

    breaker.reset();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.snapshot().calls, 0);
    run(&breaker, &[Call::Ok]).await;
    assert_eq!(breaker.snapshot().calls, 1);
}

#[tokio::test(start_paused = true)]
async fn a_call_from_before_a_trip_does_not_count_after_it() {
    let breaker = builder().half_open_probes(1).build().unwrap();
    let gate = Arc::new(Semaphore::new(0));
    // Admitted while closed, still running when the breaker trips.
    let straggler = tokio::spawn(gated(&breaker, &gate).oneshot(()));
    tokio::task::yield_now().await;
    trip(&breaker).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    let probe = tokio::spawn(gated(&breaker, &gate).oneshot(()));
    tokio::task::yield_now().await;
    // The straggler ends first: it must not be taken for the probe.
    gate.add_permits(1);
    straggler.await.unwrap().unwrap();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    gate.add_permits(1);
    probe.await.unwrap().unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn hooks_run_outside_the_lock_and_see_every_change() {
    use BreakerState::{Closed, ForcedOpen, HalfOpen, Open};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handle: Arc<OnceLock<Breaker>> = Arc::new(OnceLock::new());
    let breaker = {
        let seen = seen.clone();
        let handle = handle.clone();
        builder()
            .half_open_probes(1)
            .on_state_change(move |change| {
                // Reading the breaker here would deadlock if hooks ran under its lock.
                let now = handle.get().map(|b| b.snapshot().state);
                seen.lock()
                    .unwrap()
                    .push((change.from, change.to, change.open_for, now));
            })
            .build()
            .unwrap()
    };
    handle.set(breaker.clone()).unwrap();
    trip(&breaker).await;
    tokio::time::advance(Duration::from_secs(10)).await;
    run(&breaker, &[Call::Ok]).await;
    breaker.force_open();
    breaker.reset();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (Closed, Open, Some(Duration::from_secs(10)), Some(Open)),
            (Open, HalfOpen, None, Some(HalfOpen)),
            (HalfOpen, Closed, None, Some(Closed)),
            (Closed, ForcedOpen, None, Some(ForcedOpen)),
            (ForcedOpen, Closed, None, Some(Closed)),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_custom_classifier_decides_what_fails() {
    let breaker = builder().build().unwrap();
    // Count "not found" answers as fine, but a 'retry later' answer as a failure.
    let upstream = service_fn(|code: u16| async move { Ok::<_, Failed>(code) });
    let client = BreakerLayer::new(breaker.clone())
        .classify_with(|result: Result<&u16, &Failed>| match result {
            Ok(503) | Err(_) => Outcome::Failure,
            Ok(_) => Outcome::Success,
        })
        .layer(upstream);
    for code in [404, 404, 404, 404] {
        client.clone().oneshot(code).await.unwrap();
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
    for code in [503, 503, 503, 503] {
        let _ = client.clone().oneshot(code).await;
    }
    assert_eq!(breaker.state(), BreakerState::Open);
}

#[tokio::test(start_paused = true)]
async fn builder_errors_name_the_setting() {
    let cases: Vec<(BreakerBuilder, &str)> = vec![
        (Breaker::builder().window(Window::count(0)), "window"),
        (
            Breaker::builder().window(Window::time(Duration::from_micros(10), 4)),
            "window",
        ),
        (
            Breaker::builder().window(Window::time(Duration::from_secs(1), 0)),
            "window",
        ),
        (Breaker::builder().failure_rate(1.5), "failure_rate"),
        (Breaker::builder().failure_rate(f64::NAN), "failure_rate"),
        (Breaker::builder().failure_rate(0.0), "failure_rate"),
        (Breaker::builder().failure_rate(None), "failure_rate"),
        (
            Breaker::builder().slow_calls(Duration::ZERO, 0.5),
            "slow_calls",
        ),
        (
            Breaker::builder().consecutive_failures(0),
            "consecutive_failures",
        ),
        (Breaker::builder().minimum_calls(0), "minimum_calls"),
        (Breaker::builder().wait(Duration::ZERO), "wait"),
        (
            Breaker::builder().wait_growth(0.5, Duration::from_secs(60)),
            "wait_growth",
        ),
        (
            Breaker::builder().wait_growth(f64::INFINITY, Duration::from_secs(60)),
            "wait_growth",
        ),
        (
            Breaker::builder().wait_growth(2.0, Duration::from_secs(1)),
            "wait_growth",
        ),
        (Breaker::builder().jitter(1.5), "jitter"),
        (Breaker::builder().half_open_probes(0), "half_open_probes"),
        (
            Breaker::builder().half_open_max(Duration::ZERO),
            "half_open_max",
        ),
    ];
    for (builder, field) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.field(), field, "{err}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_permit_used_by_hand() {
    let breaker = builder().build().unwrap();
    let calls = AtomicUsize::new(0);
    for _ in 0..4 {
        let permit = breaker.try_acquire().unwrap();
        calls.fetch_add(1, Ordering::Relaxed);
        permit.complete(Outcome::Failure);
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    assert_eq!(calls.load(Ordering::Relaxed), 4);
    assert!(breaker.try_acquire().is_err());
}
