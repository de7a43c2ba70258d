//! The retry loop, shared by the generic and the HTTP layers: call, judge, wait, call again.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use palisade_core::{Classify, Deadline, Outcome};
use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep};
use tower_service::Service;

use crate::RetryBudget;
use crate::backoff::{MakeSchedule, NextDelay};
use crate::config::Shared;

/// How a request is sent again: a copy kept from the first attempt ([`CloneTemplate`] for
/// the generic layer, [`HttpTemplate`] for HTTP).
///
/// [`CloneTemplate`]: crate::CloneTemplate
/// [`HttpTemplate`]: crate::HttpTemplate
pub trait Template<Req> {
    /// A fresh request for the next attempt, after `previous` attempts; `None` when it cannot
    /// be made again (its body was larger than the replay buffer).
    fn attempt(&self, previous: u32) -> Option<Req>;

    /// The request's deadline, if it has one.
    fn deadline(&self) -> Option<Deadline>;
}

/// What a response says about when to retry: [`RetryAfterHint`](crate::RetryAfterHint) for
/// HTTP, [`NoHint`] otherwise.
pub trait Hint<Res> {
    /// The wait the response asks for, if any.
    fn retry_after(&self, response: &Res) -> Option<Duration>;
}

/// No hints: the generic layer.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHint;

impl<Res> Hint<Res> for NoHint {
    fn retry_after(&self, _: &Res) -> Option<Duration> {
        None
    }
}

/// Why the loop stopped retrying a call that could have been retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GaveUp {
    /// The schedule is over: attempts used up, or its waits would pass `max_elapsed`.
    Schedule,
    Deadline,
    Budget,
    RetryAfterTooLong,
    NotReplayable,
}

impl GaveUp {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Deadline => "deadline",
            Self::Budget => "budget",
            Self::RetryAfterTooLong => "retry_after",
            Self::NotReplayable => "body_too_large",
        }
    }
}

pin_project! {
    /// The response future of the retry layers: the first attempt, and as many retries as the
    /// schedule, the budget, the deadline and `Retry-After` allow.
    pub struct ResponseFuture<S, Req, T, C, H, M>
    where
        S: Service<Req>,
        M: MakeSchedule,
    {
        #[pin]
        state: State<S::Future, Req>,
        service: S,
        template: Option<T>,
        classifier: C,
        hint: H,
        shared: Option<Arc<Shared<M>>>,
        // Boxed: made on the first failure only, so a call that succeeds carries no schedule.
        schedule: Option<Box<M::Schedule>>,
        attempts: u32,
        // When the attempt under way started (feature `metrics`; else never set).
        started: Option<Instant>,
        // The span of the retry under way (none for the first attempt: no span on the hot
        // path).
        span: Option<tracing::Span>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, Req> {
        Calling { #[pin] future: F },
        // Boxed: only a retry pays for the timer, and the future stays small for every call.
        Sleeping { sleep: Pin<Box<Sleep>>, next: Option<Req>, token: Token },
        Readying { next: Option<Req>, token: Token },
    }
}

/// A retry taken from the budget for a request not yet sent: given back if the call is
/// dropped before it is, so only retries actually sent spend the budget.
struct Token(Option<RetryBudget>);

impl Token {
    /// The retry is being sent: the budget keeps it.
    fn spend(&mut self) {
        self.0 = None;
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if let Some(budget) = self.0.take() {
            budget.refund();
        }
    }
}

impl<S, Req, T, C, H, M> std::fmt::Debug for ResponseFuture<S, Req, T, C, H, M>
where
    S: Service<Req>,
    M: MakeSchedule,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl<S, Req, T, C, H, M> ResponseFuture<S, Req, T, C, H, M>
where
    S: Service<Req>,
    M: MakeSchedule,
{
    /// The first attempt is already under way; `template` is `None` for a request that is never
    /// retried (then nothing else is kept).
    pub(crate) fn new(
        future: S::Future,
        service: S,
        template: Option<T>,
        classifier: C,
        hint: H,
        shared: Option<Arc<Shared<M>>>,
    ) -> Self {
        Self {
            state: State::Calling { future },
            service,
            template,
            classifier,
            hint,
            shared,
            schedule: None,
            attempts: 1,
            #[cfg(feature = "metrics")]
            started: Some(Instant::now()),
            #[cfg(not(feature = "metrics"))]
            started: None,
            span: None,
        }
    }
}

/// `palisade_retry_attempt_seconds{attempt}`: one attempt, from its call to its answer
/// (`first`, or `retry`).
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
fn record_attempt_time(started: Option<Instant>, attempts: u32) {
    #[cfg(feature = "metrics")]
    if let Some(started) = started {
        metrics::histogram!(
            "palisade_retry_attempt_seconds",
            "attempt" => if attempts > 1 { "retry" } else { "first" }
        )
        .record(started.elapsed().as_secs_f64());
    }
}

impl<S, Req, T, C, H, M> Future for ResponseFuture<S, Req, T, C, H, M>
where
    S: Service<Req>,
    T: Template<Req>,
    C: Classify<S::Response, S::Error>,
    H: Hint<S::Response>,
    M: MakeSchedule,
{
    type Output = Result<S::Response, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let entered = this.span.as_ref().map(tracing::Span::enter);
                    let result = ready!(future.poll(cx));
                    drop(entered);
                    record_attempt_time(this.started.take(), *this.attempts);
                    let (Some(template), Some(shared)) =
                        (this.template.as_ref(), this.shared.as_ref())
                    else {
                        return Poll::Ready(result);
                    };
                    if this.classifier.classify(result.as_ref()) != Outcome::Failure {
                        return Poll::Ready(result);
                    }
                    let hinted = result.as_ref().ok().and_then(|r| this.hint.retry_after(r));
                    let schedule = this
                        .schedule
                        .get_or_insert_with(|| Box::new(shared.schedule.make_schedule()));
                    let decision = decide(
                        shared,
                        schedule,
                        *this.attempts,
                        hinted,
                        template.deadline(),
                    );
                    let delay = match decision {
                        Ok(delay) => delay,
                        Err(reason) => {
                            crate::record_gave_up(reason, *this.attempts);
                            return Poll::Ready(result);
                        }
                    };
                    let Some(next) = template.attempt(*this.attempts) else {
                        crate::record_gave_up(GaveUp::NotReplayable, *this.attempts);
                        return Poll::Ready(result);
                    };
                    // Last: a retry that will not be sent (too late, not replayable) must not
                    // spend the budget.
                    let token = match &shared.budget {
                        Some(budget) if !budget.withdraw() => {
                            crate::record_gave_up(GaveUp::Budget, *this.attempts);
                            return Poll::Ready(result);
                        }
                        budget => Token(budget.clone()),
                    };
                    tracing::debug!(
                        attempt = *this.attempts + 1,
                        delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        "retrying"
                    );
                    crate::record_retry();
                    // The failed result is dropped here: its connection goes back to the pool.
                    drop(result);
                    this.state.set(State::Sleeping {
                        sleep: Box::pin(tokio::time::sleep(delay)),
                        next: Some(next),
                        token,
                    });
                }
                StateProj::Sleeping { sleep, next, token } => {
                    ready!(sleep.as_mut().poll(cx));
                    let next = next.take();
                    let token = Token(token.0.take());
                    this.state.set(State::Readying { next, token });
                }
                StateProj::Readying { next, token } => {
                    if let Err(err) = ready!(this.service.poll_ready(cx)) {
                        return Poll::Ready(Err(err));
                    }
                    let request = next
                        .take()
                        .expect("a retry's request is made before it waits");
                    token.spend();
                    *this.attempts += 1;
                    crate::record_attempt();
                    #[cfg(feature = "metrics")]
                    {
                        *this.started = Some(Instant::now());
                    }
                    let span =
                        tracing::debug_span!("palisade.retry.attempt", attempt = *this.attempts);
                    let entered = span.enter();
                    let future = this.service.call(request);
                    drop(entered);
                    *this.span = Some(span);
                    this.state.set(State::Calling { future });
                }
            }
        }
    }
}

/// The wait before the next attempt, or why there is none.
fn decide<M: MakeSchedule>(
    shared: &Shared<M>,
    schedule: &mut M::Schedule,
    attempts: u32,
    hinted: Option<Duration>,
    deadline: Option<Deadline>,
) -> Result<Duration, GaveUp> {
    if attempts >= shared.max_attempts {
        return Err(GaveUp::Schedule);
    }
    let Some(backoff) = schedule.next_delay() else {
        return Err(GaveUp::Schedule);
    };
    let delay = match hinted {
        Some(asked) if asked > shared.retry_after_cap => return Err(GaveUp::RetryAfterTooLong),
        Some(asked) => asked.max(backoff),
        None => backoff,
    };
    if let Some(deadline) = deadline {
        let now = Instant::now();
        // No sleep past the deadline, and no attempt that would start with no time left.
        if deadline.remaining_from(now) <= delay + shared.min_attempt_time {
            return Err(GaveUp::Deadline);
        }
    }
    Ok(delay)
}
