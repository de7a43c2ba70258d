//! Helpers shared by Palisade's criterion benches; the benches themselves live in `benches/`,
//! and `README.md` beside this file records how to run them and the numbers measured.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use std::convert::Infallible;

use tower::service_fn;
use tower_service::Service;

/// One `poll_ready`, `call` and poll of a response that completes at once. Polling by hand
/// keeps executor costs out of the numbers; enter a Tokio runtime first if the service builds
/// timers.
///
/// # Panics
///
/// If the service is not ready at once, fails, or its response is pending: the benches use
/// always-ready services.
pub fn call_ready<S, R>(service: &mut S, request: R)
where
    S: Service<R>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let mut response = pin!(service.call(request));
    match response.as_mut().poll(&mut cx) {
        Poll::Ready(Ok(response)) => {
            black_box(response);
        }
        Poll::Ready(Err(err)) => panic!("the service failed: {err:?}"),
        Poll::Pending => panic!("an always-ready service answers at once"),
    }
}

/// One `poll_ready`, `call` and poll of a response that fails at once: the rejection path of
/// a layer (an open breaker, say), polled by hand like [`call_ready`].
///
/// # Panics
///
/// If the service is not ready at once, or the call does not fail at once.
pub fn call_rejected<S, R>(service: &mut S, request: R)
where
    S: Service<R>,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(service.poll_ready(&mut cx), Poll::Ready(Ok(()))));
    let mut response = pin!(service.call(request));
    match response.as_mut().poll(&mut cx) {
        Poll::Ready(Err(err)) => {
            black_box(err);
        }
        Poll::Ready(Ok(_)) => panic!("the call went through"),
        Poll::Pending => panic!("a rejection answers at once"),
    }
}

/// The inner service of every group: answers `Res::default()` at once, whatever the request.
pub fn always_ready<Req, Res: Default>() -> impl Service<
    Req,
    Response = Res,
    Error = Infallible,
    Future = std::future::Ready<Result<Res, Infallible>>,
> + Clone {
    service_fn(|_request: Req| std::future::ready(Ok(Res::default())))
}
