//! The generic `Timeout`, driven with paused time.

use std::time::Duration;

use palisade_timeout::{Elapsed, TimeoutLayer};
use tower::{Layer, ServiceExt, service_fn};

#[derive(Debug)]
struct InnerError;

impl std::fmt::Display for InnerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("inner failed")
    }
}

impl std::error::Error for InnerError {}

fn after(
    delay: Duration,
    fail: bool,
) -> impl tower::Service<(), Response = &'static str, Error = InnerError, Future: Send> + Clone {
    service_fn(move |()| async move {
        tokio::time::sleep(delay).await;
        if fail { Err(InnerError) } else { Ok("done") }
    })
}

#[tokio::test(start_paused = true)]
async fn a_slow_call_fails_with_elapsed() {
    let service =
        TimeoutLayer::new(Duration::from_millis(100)).layer(after(Duration::from_secs(1), false));
    let err = service.oneshot(()).await.unwrap_err();
    assert!(err.is::<Elapsed>(), "{err}");
    assert_eq!(err.to_string(), "request timed out");
}

#[tokio::test(start_paused = true)]
async fn an_inner_error_is_not_elapsed() {
    let service =
        TimeoutLayer::new(Duration::from_secs(1)).layer(after(Duration::from_millis(10), true));
    let err = service.oneshot(()).await.unwrap_err();
    assert!(!err.is::<Elapsed>());
    assert!(err.is::<InnerError>());
}

#[tokio::test(start_paused = true)]
async fn a_fast_call_passes() {
    let service =
        TimeoutLayer::new(Duration::from_secs(1)).layer(after(Duration::from_millis(999), false));
    assert_eq!(service.oneshot(()).await.unwrap(), "done");
}

#[tokio::test(start_paused = true)]
async fn a_response_ready_when_the_timer_fires_wins() {
    // Both complete at the same instant: the response is polled first.
    let service = TimeoutLayer::new(Duration::from_millis(100))
        .layer(after(Duration::from_millis(100), false));
    assert_eq!(service.oneshot(()).await.unwrap(), "done");
}

#[tokio::test(start_paused = true)]
async fn readiness_errors_are_boxed_not_elapsed() {
    use std::task::{Context, Poll};

    #[derive(Clone)]
    struct NeverReady;
    impl tower::Service<()> for NeverReady {
        type Response = ();
        type Error = InnerError;
        type Future = std::future::Ready<Result<(), InnerError>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), InnerError>> {
            Poll::Ready(Err(InnerError))
        }
        fn call(&mut self, (): ()) -> Self::Future {
            std::future::ready(Ok(()))
        }
    }
    let err = TimeoutLayer::new(Duration::from_secs(1))
        .layer(NeverReady)
        .oneshot(())
        .await
        .unwrap_err();
    assert!(err.is::<InnerError>());
}
