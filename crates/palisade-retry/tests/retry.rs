//! The retry layers with paused time and fixed schedules: what is retried, when, how often,
//! and when retrying stops. Deterministic: no test sleeps for real.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use palisade_core::{Deadline, Outcome};
use palisade_retry::{Backoff, HttpRetryLayer, Jitter, ReplayBody, RetryBudget, RetryLayer};
use tokio::time::Instant;
use tower::{Layer, Service, ServiceExt, service_fn};

type Body = ReplayBody<Full<Bytes>>;

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection refused")
    }
}

impl std::error::Error for Refused {}

/// One answer of the fake upstream.
type Answer = Result<Response<()>, Refused>;

/// What the fake upstream answers, call after call; and when each call came.
#[derive(Clone)]
struct Script {
    answers: Arc<Mutex<VecDeque<Answer>>>,
    calls: Arc<Mutex<Vec<Instant>>>,
}

#[allow(clippy::unnecessary_wraps, reason = "an answer may be an error")]
fn status(code: u16) -> Answer {
    Ok(Response::builder().status(code).body(()).unwrap())
}

#[allow(clippy::unnecessary_wraps, reason = "an answer may be an error")]
fn with_header(code: u16, name: &str, value: &str) -> Answer {
    Ok(Response::builder()
        .status(code)
        .header(name, value)
        .body(())
        .unwrap())
}

impl Script {
    fn new(answers: impl IntoIterator<Item = Answer>) -> Self {
        Self {
            answers: Arc::new(Mutex::new(answers.into_iter().collect())),
            calls: Arc::default(),
        }
    }

    fn service(
        &self,
    ) -> impl Service<Request<Body>, Response = Response<()>, Error = Refused, Future: Send>
    + Clone
    + use<> {
        let script = self.clone();
        service_fn(move |_: Request<Body>| {
            script.calls.lock().unwrap().push(Instant::now());
            let answer = script
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| status(200));
            async move { answer }
        })
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// The time between consecutive calls.
    fn gaps(&self) -> Vec<Duration> {
        let calls = self.calls.lock().unwrap();
        calls.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

fn fixed(base_ms: u64, attempts: u32) -> Backoff {
    Backoff::exponential(Duration::from_millis(base_ms))
        .jitter(Jitter::None)
        .max_attempts(attempts)
        .build()
        .unwrap()
}

fn get() -> Request<Full<Bytes>> {
    Request::get("http://upstream/items")
        .body(Full::default())
        .unwrap()
}

fn request(method: Method, key: bool) -> Request<Full<Bytes>> {
    let mut builder = Request::builder()
        .method(method)
        .uri("http://upstream/items");
    if key {
        builder = builder.header("idempotency-key", "order-42");
    }
    builder.body(Full::new(Bytes::from_static(b"{}"))).unwrap()
}

#[tokio::test(start_paused = true)]
async fn retries_on_the_schedule_until_an_answer() {
    let script = Script::new([status(503), status(502), status(504)]);
    let client = HttpRetryLayer::new(fixed(100, 5)).layer(script.service());
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(script.calls(), 4);
    let ms: Vec<u128> = script.gaps().iter().map(Duration::as_millis).collect();
    assert_eq!(ms, [100, 200, 400], "exponential, no jitter");
}

#[tokio::test(start_paused = true)]
async fn gives_up_after_max_attempts_with_the_last_answer() {
    let script = Script::new([status(503), status(503), status(429), status(503)]);
    let client = HttpRetryLayer::new(fixed(10, 3)).layer(script.service());
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the third answer"
    );
    assert_eq!(script.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn what_is_retried_and_what_is_not() {
    let cases: [(Answer, usize); 9] = [
        (Err(Refused), 2),
        (status(502), 2),
        (status(503), 2),
        (status(504), 2),
        (status(429), 2),
        (status(500), 1),
        (status(404), 1),
        (status(400), 1),
        (status(409), 1),
    ];
    for (answer, calls) in cases {
        let label = format!("{answer:?}");
        let script = Script::new([answer]);
        let client = HttpRetryLayer::new(fixed(10, 3)).layer(script.service());
        let _ = client.oneshot(get()).await;
        assert_eq!(script.calls(), calls, "{label}");
    }
}

#[tokio::test(start_paused = true)]
async fn only_idempotent_requests_or_those_with_a_key_are_retried() {
    let cases = [
        (Method::GET, false, 2),
        (Method::HEAD, false, 2),
        (Method::PUT, false, 2),
        (Method::DELETE, false, 2),
        (Method::OPTIONS, false, 2),
        (Method::POST, false, 1),
        (Method::PATCH, false, 1),
        (Method::POST, true, 2),
        (Method::PATCH, true, 2),
    ];
    for (method, key, calls) in cases {
        let script = Script::new([status(503)]);
        let client = HttpRetryLayer::new(fixed(10, 3)).layer(script.service());
        client.oneshot(request(method.clone(), key)).await.unwrap();
        assert_eq!(script.calls(), calls, "{method} with key: {key}");
    }
    let script = Script::new([status(503)]);
    let client = HttpRetryLayer::new(fixed(10, 3))
        .retry_any_method()
        .layer(script.service());
    client.oneshot(request(Method::POST, false)).await.unwrap();
    assert_eq!(script.calls(), 2, "configured to retry any method");
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_up_to_the_cap() {
    // Seconds: the server's wait replaces the shorter backoff.
    let script = Script::new([with_header(503, "retry-after", "2")]);
    let client = HttpRetryLayer::new(fixed(10, 3)).layer(script.service());
    client.oneshot(get()).await.unwrap();
    assert_eq!(script.gaps(), [Duration::from_secs(2)]);

    // An HTTP-date, read against the response's own Date.
    let script = Script::new([Ok(Response::builder()
        .status(429)
        .header("date", "Sun, 06 Nov 1994 08:49:37 GMT")
        .header("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT")
        .body(())
        .unwrap())]);
    let client = HttpRetryLayer::new(fixed(10, 3)).layer(script.service());
    client.oneshot(get()).await.unwrap();
    assert_eq!(script.gaps(), [Duration::from_secs(3)]);

    // More than the cap: the answer is returned as it is.
    let script = Script::new([with_header(503, "retry-after", "120")]);
    let client = HttpRetryLayer::new(fixed(10, 3))
        .retry_after_cap(Duration::from_secs(30))
        .layer(script.service());
    let response = client.oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(script.calls(), 1);

    // Ignored where it does not apply (a 502), and when malformed.
    for answer in [
        with_header(502, "retry-after", "5"),
        with_header(503, "retry-after", "soon"),
    ] {
        let script = Script::new([answer]);
        let client = HttpRetryLayer::new(fixed(10, 3)).layer(script.service());
        client.oneshot(get()).await.unwrap();
        assert_eq!(script.gaps(), [Duration::from_millis(10)]);
    }
}

#[tokio::test(start_paused = true)]
async fn no_wait_runs_past_the_deadline() {
    let script = Script::new([status(503), status(503), status(503)]);
    let client = HttpRetryLayer::new(fixed(100, 10)).layer(script.service());
    let mut request = get();
    Deadline::after(Duration::from_millis(250)).insert_earliest(request.extensions_mut());
    let started = Instant::now();
    let response = client.oneshot(request).await.unwrap();
    // Calls at 0 and 100 ms; the next wait (200 ms) would end at 300 ms, past 250 ms.
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(script.calls(), 2);
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(100),
        "returned at once"
    );

    // And an attempt needs time left to start.
    let script = Script::new([status(503)]);
    let client = HttpRetryLayer::new(fixed(100, 10))
        .min_attempt_time(Duration::from_millis(200))
        .layer(script.service());
    let mut request = get();
    Deadline::after(Duration::from_millis(250)).insert_earliest(request.extensions_mut());
    client.oneshot(request).await.unwrap();
    assert_eq!(
        script.calls(),
        1,
        "100 ms wait + 200 ms needed > 250 ms left"
    );
}

#[tokio::test(start_paused = true)]
async fn a_failure_storm_stays_within_the_budget() {
    // Every call fails; each of 500 requests would retry 3 times without a budget.
    let failing = Script::new(std::iter::repeat_with(|| status(503)).take(10_000));
    let budget = RetryBudget::new(0.1, 0, 5).unwrap();
    let client = HttpRetryLayer::new(fixed(1, 4))
        .budget(budget.clone())
        .layer(failing.service());
    for _ in 0..500 {
        client.clone().oneshot(get()).await.unwrap();
    }
    let retries = failing.calls() - 500;
    assert!(
        retries <= 50 + 5,
        "{retries} retries for 500 requests at 10 %"
    );
    assert!(retries >= 45, "the budget is used: {retries}");

    // Without a budget, the same storm triples the load.
    let failing = Script::new(std::iter::repeat_with(|| status(503)).take(10_000));
    let client = HttpRetryLayer::new(fixed(1, 4))
        .without_budget()
        .layer(failing.service());
    for _ in 0..500 {
        client.clone().oneshot(get()).await.unwrap();
    }
    assert_eq!(failing.calls(), 2_000);
}

#[tokio::test(start_paused = true)]
async fn a_body_is_replayed_and_a_large_one_is_sent_once() {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let upstream = service_fn(move |request: Request<Body>| {
        let seen = seen.clone();
        async move {
            let body = http_body_util::BodyExt::collect(request.into_body())
                .await
                .unwrap()
                .to_bytes();
            let mut seen = seen.lock().unwrap();
            seen.push(body);
            let code = if seen.len() == 1 { 503 } else { 200 };
            Ok::<_, Refused>(Response::builder().status(code).body(()).unwrap())
        }
    });
    let client = HttpRetryLayer::new(fixed(10, 3))
        .replay_limit(16)
        .layer(upstream);
    let small = Request::put("http://upstream/a")
        .body(Full::new(Bytes::from_static(b"small body")))
        .unwrap();
    assert_eq!(client.clone().oneshot(small).await.unwrap().status(), 200);
    assert_eq!(
        bodies.lock().unwrap().as_slice(),
        [
            Bytes::from_static(b"small body"),
            Bytes::from_static(b"small body")
        ]
    );

    bodies.lock().unwrap().clear();
    let large = Request::put("http://upstream/a")
        .body(Full::new(Bytes::from(vec![b'x'; 100])))
        .unwrap();
    let response = client.oneshot(large).await.unwrap();
    assert_eq!(
        response.status(),
        503,
        "not retried: larger than the replay buffer"
    );
    assert_eq!(bodies.lock().unwrap().len(), 1);
    assert_eq!(bodies.lock().unwrap()[0].len(), 100, "sent whole");
}

/// Issue 16, item 9: the budget was spent before the loop found the body could not be
/// replayed: ten 100 KiB `PUT`s against a failing upstream made no retry and emptied it. Now a
/// retry is taken from the budget only when it will be sent, and given back if the call is
/// dropped while it waits.
#[tokio::test(start_paused = true)]
async fn only_retries_actually_sent_spend_the_budget() {
    // No share of requests, a floor of five retries (whole at the start; the clock is paused,
    // so it does not refill).
    let budget = RetryBudget::new(0.0, 5, 5).unwrap();
    // An upstream that reads each body, as a real one does, and fails.
    let calls = Arc::new(Mutex::new(0usize));
    let counted = calls.clone();
    let failing = service_fn(move |request: Request<Body>| {
        let counted = counted.clone();
        async move {
            http_body_util::BodyExt::collect(request.into_body())
                .await
                .unwrap();
            *counted.lock().unwrap() += 1;
            Ok::<_, Refused>(Response::builder().status(503).body(()).unwrap())
        }
    });
    let client = HttpRetryLayer::new(fixed(10, 3))
        .budget(budget.clone())
        .layer(failing);
    for _ in 0..10 {
        let put = Request::put("http://upstream/a")
            .body(Full::new(Bytes::from(vec![b'x'; 100 * 1024])))
            .unwrap();
        assert_eq!(client.clone().oneshot(put).await.unwrap().status(), 503);
    }
    assert_eq!(
        *calls.lock().unwrap(),
        10,
        "bodies larger than the replay buffer are sent once"
    );
    // A retry whose call is dropped while it waits is given back.
    let mut waiting = Box::pin(client.clone().oneshot(get()));
    assert!(futures_poll_once(waiting.as_mut()).is_pending());
    drop(waiting);
    // Nothing was sent again, so all five are still there (the old code left none).
    let left = (0..20).filter(|_| budget.withdraw()).count();
    assert_eq!(left, 5);
}

/// Polls a future once.
fn futures_poll_once<F: std::future::Future>(
    future: std::pin::Pin<&mut F>,
) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    future.poll(&mut cx)
}

#[tokio::test(start_paused = true)]
async fn the_generic_layer_retries_any_clonable_request() {
    let attempts = Arc::new(Mutex::new(0));
    let counter = attempts.clone();
    let flaky = service_fn(move |n: u32| {
        let mut attempts = counter.lock().unwrap();
        *attempts += 1;
        let fail = *attempts < 3;
        async move { if fail { Err(Refused) } else { Ok(n * 2) } }
    });
    let client = RetryLayer::new(fixed(10, 5)).layer(flaky);
    assert_eq!(client.oneshot(21).await.unwrap(), 42);
    assert_eq!(*attempts.lock().unwrap(), 3);

    // A classifier can retry on a value too.
    let answers = Arc::new(Mutex::new(vec![7u32, 0, 0]));
    let next = answers.clone();
    let busy = service_fn(move |()| {
        let answer = next.lock().unwrap().pop().unwrap_or(1);
        async move { Ok::<_, Refused>(answer) }
    });
    let client = RetryLayer::new(fixed(10, 5))
        .classify_with(|result: Result<&u32, &Refused>| match result {
            Ok(0) | Err(_) => Outcome::Failure,
            Ok(_) => Outcome::Success,
        })
        .layer(busy);
    assert_eq!(client.oneshot(()).await.unwrap(), 7);
}

#[tokio::test(start_paused = true)]
async fn jittered_delays_stay_under_their_caps() {
    let script = Script::new(std::iter::repeat_with(|| status(503)).take(5));
    let backoff = Backoff::exponential(Duration::from_millis(100))
        .cap(Duration::from_millis(300))
        .jitter(Jitter::Full)
        .max_attempts(6)
        .build()
        .unwrap();
    let client = HttpRetryLayer::new(backoff)
        .without_budget()
        .layer(script.service());
    client.oneshot(get()).await.unwrap();
    let caps = [100, 200, 300, 300, 300].map(Duration::from_millis);
    for (gap, cap) in script.gaps().iter().zip(caps) {
        assert!(*gap <= cap, "{gap:?} over {cap:?}");
    }
}
