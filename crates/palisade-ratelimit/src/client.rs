//! The client side: a limiter for outbound calls that waits for a permit.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use palisade_core::BuildError;
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_layer::Layer;
use tower_service::Service;

use crate::quota::Quota;
use crate::tier_metrics::ClientMetrics;

/// Waited longer than allowed for a permit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimited {
    /// How long a permit was still away.
    pub wait: Duration,
}

impl fmt::Display for RateLimited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the outbound rate limit has no permit for {:?}, longer than the longest wait",
            self.wait
        )
    }
}

impl std::error::Error for RateLimited {}

/// The error of a [`ClientRateLimit`] service: no permit in time, or the inner service's.
#[derive(Debug)]
pub enum ClientError<E> {
    /// No permit within the longest wait.
    Limited(RateLimited),
    /// The inner service failed.
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for ClientError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Limited(limited) => limited.fmt(f),
            Self::Inner(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for ClientError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Limited(limited) => Some(limited),
            Self::Inner(error) => Some(error),
        }
    }
}

/// Limits outbound calls to a quota, waiting for a permit up to a longest wait, then failing
/// with [`RateLimited`]. Clones share the quota; a permit is taken when the call starts (not in
/// `poll_ready`), so a `Buffer` in front or many clones cannot hold permits they do not use.
///
/// Each call reserves the next free slot of the quota's schedule (GCRA) when it starts, and
/// sleeps until its own slot: waiters are served in the order they came, each wakes alone (no
/// thundering herd), and admitted calls keep to the quota however many wait. A call whose slot
/// is further away than the longest wait fails at once, without waiting, so no call waits
/// longer than `max_wait` from its start: the schedule keeps 2 ms of it for the timer's 1 ms
/// granularity and a busy runtime's lateness, so slots are reserved at most `max_wait - 2 ms`
/// ahead (a `max_wait` under 2 ms means "never wait"). Waits are timer waits: a lone caller
/// of a quota finer than a millisecond waits for the next tick. A waiting call that is dropped
/// does not give its slot back: the quota is never exceeded, at the price of one unused slot.
///
/// ```
/// use std::time::Duration;
/// use palisade::ratelimit::{ClientRateLimitLayer, Quota};
///
/// let layer = ClientRateLimitLayer::new(Quota::per_second(50))
///     .max_wait(Duration::from_millis(200))
///     .build()
///     .unwrap();
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct ClientRateLimitLayer {
    schedule: Arc<Schedule>,
}

impl fmt::Debug for ClientRateLimitLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRateLimitLayer")
            .field("quota", &self.schedule.quota)
            .field("max_wait", &self.schedule.max_wait)
            .finish()
    }
}

/// Builds a [`ClientRateLimitLayer`].
#[derive(Debug)]
#[must_use]
pub struct ClientRateLimitBuilder {
    quota: Quota,
    max_wait: Duration,
    name: String,
}

impl ClientRateLimitLayer {
    /// Calls at `quota`, waiting up to 1 s for a permit by default.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(quota: Quota) -> ClientRateLimitBuilder {
        ClientRateLimitBuilder {
            quota,
            max_wait: Duration::from_secs(1),
            name: "client".to_owned(),
        }
    }
}

impl ClientRateLimitBuilder {
    /// The longest a call waits for a permit before failing (0: never wait).
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// The limiter's name in metrics (`limiter` label; `client` by default): with feature
    /// `metrics`, `palisade_ratelimit_client_calls_total{limiter,outcome}` counts calls sent at
    /// once (`immediate`), after a wait (`delayed`) and refused (`refused`), and
    /// `palisade_ratelimit_client_wait_seconds{limiter}` records each wait.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Checks the quota and builds the layer.
    ///
    /// # Errors
    ///
    /// [`BuildError`] for an invalid quota.
    pub fn build(self) -> Result<ClientRateLimitLayer, BuildError> {
        self.quota.check()?;
        Ok(ClientRateLimitLayer {
            schedule: Arc::new(Schedule {
                metrics: ClientMetrics::new(&self.name),
                ..Schedule::new(self.quota, self.max_wait)
            }),
        })
    }
}

/// How much later than its deadline a waiter may run: tokio's timer ticks every millisecond,
/// and a busy runtime polls a woken task up to about a tick later still (measured: the longest
/// wait of 200 callers on two saturated threads came within 0.4 ms of the bound).
const TIMER_SLACK: Duration = Duration::from_millis(2);

/// The quota's schedule: the theoretical arrival time of GCRA, handed out a slot at a time.
#[derive(Debug)]
struct Schedule {
    quota: Quota,
    max_wait: Duration,
    origin: Instant,
    /// The emission interval, in nanoseconds.
    interval: u64,
    /// How far ahead of the schedule a burst may run, in nanoseconds.
    tolerance: u64,
    /// The most a reserved slot may lie ahead of its call, in nanoseconds.
    longest: u64,
    /// The theoretical arrival time, in nanoseconds since `origin`.
    tat: AtomicU64,
    metrics: ClientMetrics,
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

impl Schedule {
    fn new(quota: Quota, max_wait: Duration) -> Self {
        let interval = nanos(quota.emission_interval()).max(1);
        Self {
            quota,
            max_wait,
            origin: Instant::now(),
            interval,
            tolerance: interval.saturating_mul(u64::from(quota.burst().saturating_sub(1))),
            // A wake-up may come a tick late: plan for it, so the wait seen stays within.
            longest: nanos(max_wait.saturating_sub(TIMER_SLACK)),
            tat: AtomicU64::new(0),
            metrics: ClientMetrics::new("client"),
        }
    }

    /// Reserves the next slot for a call at `now`: how long until it, or, when that is longer
    /// than the longest wait, how long it would have been (nothing is reserved then).
    fn reserve(&self, now: Instant) -> Result<Duration, Duration> {
        let now = nanos(now.saturating_duration_since(self.origin));
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let start = tat.max(now);
            let wait = start.saturating_sub(self.tolerance).saturating_sub(now);
            if wait > self.longest {
                return Err(Duration::from_nanos(wait));
            }
            match self.tat.compare_exchange_weak(
                tat,
                start.saturating_add(self.interval),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(Duration::from_nanos(wait)),
                Err(current) => tat = current,
            }
        }
    }
}

impl<S> Layer<S> for ClientRateLimitLayer {
    type Service = ClientRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientRateLimit {
            inner,
            schedule: self.schedule.clone(),
        }
    }
}

/// The service of [`ClientRateLimitLayer`].
#[derive(Clone)]
pub struct ClientRateLimit<S> {
    inner: S,
    schedule: Arc<Schedule>,
}

impl<S: fmt::Debug> fmt::Debug for ClientRateLimit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRateLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S> ClientRateLimit<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for ClientRateLimit<S>
where
    S: Service<Req> + Clone,
{
    type Response = S::Response;
    type Error = ClientError<S::Error>;
    type Future = ClientFuture<S, Req>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(ClientError::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let now = Instant::now();
        let reserved = self.schedule.reserve(now);
        self.schedule.metrics.called(reserved.ok());
        let state = match reserved {
            Ok(wait) if wait.is_zero() => State::Calling {
                future: self.inner.call(request),
            },
            Ok(wait) => {
                // The ready service is the one `poll_ready` readied; a clone takes its place.
                let clone = self.inner.clone();
                let service = std::mem::replace(&mut self.inner, clone);
                State::Waiting {
                    sleep: Box::pin(tokio::time::sleep_until(now + wait)),
                    call: Some((service, request)),
                }
            }
            Err(wait) => State::Limited {
                error: Some(RateLimited { wait }),
            },
        };
        ClientFuture { state }
    }
}

pin_project! {
    /// The response future of [`ClientRateLimit`].
    pub struct ClientFuture<S, Req>
    where
        S: Service<Req>,
    {
        #[pin]
        state: State<S, Req>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, Req>
    where
        S: Service<Req>,
    {
        Waiting {
            sleep: Pin<Box<Sleep>>,
            call: Option<(S, Req)>,
        },
        Calling {
            #[pin]
            future: S::Future,
        },
        Limited {
            error: Option<RateLimited>,
        },
    }
}

impl<S, Req> fmt::Debug for ClientFuture<S, Req>
where
    S: Service<Req>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFuture").finish_non_exhaustive()
    }
}

impl<S, Req> Future for ClientFuture<S, Req>
where
    S: Service<Req>,
{
    type Output = Result<S::Response, ClientError<S::Error>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let next = match self.as_mut().project().state.project() {
                StateProj::Calling { future } => {
                    return future.poll(cx).map_err(ClientError::Inner);
                }
                StateProj::Limited { error } => {
                    let error = error.take().expect("ClientFuture polled after completion");
                    return Poll::Ready(Err(ClientError::Limited(error)));
                }
                StateProj::Waiting { sleep, call } => {
                    std::task::ready!(sleep.as_mut().poll(cx));
                    let (mut service, request) =
                        call.take().expect("ClientFuture polled after completion");
                    State::Calling {
                        future: service.call(request),
                    }
                }
            };
            self.as_mut().project().state.set(next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schedule alone, on a paused clock: waits are the slots' distances, refusals leave
    /// the schedule as it was.
    #[tokio::test(start_paused = true)]
    async fn slots_are_handed_out_in_order() {
        let schedule = Schedule::new(
            Quota::per_second(100).with_burst(2),
            Duration::from_millis(31),
        );
        let now = Instant::now();
        let waits: Vec<_> = (0..6)
            .map(|_| {
                schedule
                    .reserve(now)
                    .map(|w| w.as_millis())
                    .map_err(|w| w.as_millis())
            })
            .collect();
        // Two at once (the burst), then one every 10 ms, up to 29 ms (31 ms less the slack);
        // a refusal reserves nothing.
        assert_eq!(waits, [Ok(0), Ok(0), Ok(10), Ok(20), Err(30), Err(30)]);
        tokio::time::advance(Duration::from_millis(20)).await;
        assert_eq!(
            schedule.reserve(Instant::now()),
            Ok(Duration::from_millis(10))
        );
    }
}
