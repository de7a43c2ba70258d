use palisade_core::RefusedLocally;
use std::fmt;
use std::time::Duration;

use crate::BreakerState;
use crate::core::Rejected;

/// The error of a call a breaker refused: it is open (or half-open with every probe place
/// taken), so the call was not made.
///
/// [`BreakerService`](crate::BreakerService) returns it as a [`BoxError`](crate::BoxError);
/// tell it from the inner service's errors with `err.is::<BreakerOpen>()` or
/// `err.downcast_ref::<BreakerOpen>()`. With the `tonic` feature, a tonic client whose channel
/// is wrapped in the breaker reports it as `UNAVAILABLE`.
///
/// It does not carry the breaker's name, which would cost every rejection a reference count:
/// the layer's `debug` event names the breaker, and the caller knows which upstream it called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerOpen {
    state: BreakerState,
    remaining: Option<Duration>,
}

impl From<Rejected> for BreakerOpen {
    fn from(rejected: Rejected) -> Self {
        let (state, remaining) = match rejected {
            Rejected::Open { remaining } => {
                (BreakerState::Open, Some(Duration::from_nanos(remaining)))
            }
            Rejected::HalfOpenFull => (BreakerState::HalfOpen, None),
            Rejected::Forced => (BreakerState::ForcedOpen, None),
        };
        Self { state, remaining }
    }
}

impl BreakerOpen {
    /// The state that refused the call: open, half-open (probes busy) or forced open.
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// How long the breaker stays open; `None` when that is not known (half-open with its
    /// probes busy, or forced open).
    pub fn remaining(&self) -> Option<Duration> {
        self.remaining
    }
}

impl fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "circuit breaker {}", self.state)?;
        if let Some(remaining) = self.remaining {
            write!(f, " for another {} ms", remaining.as_millis())?;
        }
        Ok(())
    }
}

impl std::error::Error for BreakerOpen {
    /// [`RefusedLocally`]: the call was never sent, so the retry layers do not retry it and
    /// classifiers do not count it. With the `tonic` feature, its own source is a
    /// `tonic::Status` (`UNAVAILABLE`), which tonic finds in an error's source chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&RefusedLocally)
    }
}

#[cfg(feature = "tonic")]
impl From<BreakerOpen> for tonic::Status {
    fn from(open: BreakerOpen) -> Self {
        let mut status = tonic::Status::unavailable(open.to_string());
        if let Some(remaining) = open.remaining
            && let Ok(value) = u64::try_from(remaining.as_millis())
                .unwrap_or(u64::MAX)
                .to_string()
                .parse()
        {
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", value);
        }
        status
    }
}
