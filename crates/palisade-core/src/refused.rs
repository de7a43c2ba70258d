//! [`RefusedLocally`]: the mark of a call a layer refused before sending it.

use std::any::Any;
use std::error::Error;
use std::fmt;

/// The source of the error of a call a Palisade layer refused before sending it: an open
/// circuit breaker, say. Retrying such a call at once would only be refused again, and counting
/// it against the callee would be counting our own refusal, so the default classifiers
/// ([`ErrorClassifier`](crate::ErrorClassifier), [`HttpClassifier`](crate::HttpClassifier),
/// [`GrpcClassifier`](crate::GrpcClassifier) and the retry layers') call it
/// [`Outcome::Ignored`](crate::Outcome::Ignored): never retried, never counted.
///
/// A layer's error type names the refusal (`BreakerOpen`) and has this as its source; find it
/// with [`refused_locally`]. With the `tonic` feature its own source is an `UNAVAILABLE`
/// status, which tonic finds in an error's source chain.
///
/// ```
/// use palisade::{RefusedLocally, refused_locally};
///
/// #[derive(Debug)]
/// struct Full;
/// impl std::fmt::Display for Full {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("the bulkhead is full")
///     }
/// }
/// impl std::error::Error for Full {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&RefusedLocally)
///     }
/// }
///
/// let error: tower::BoxError = Box::new(Full);
/// assert!(refused_locally(&error));
/// let other: tower::BoxError = "connection reset".into();
/// assert!(!refused_locally(&other));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefusedLocally;

impl fmt::Display for RefusedLocally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the call was refused before it was sent")
    }
}

#[cfg(feature = "tonic")]
static UNAVAILABLE: std::sync::LazyLock<tonic::Status> = std::sync::LazyLock::new(|| {
    tonic::Status::unavailable("the call was refused before it was sent")
});

impl Error for RefusedLocally {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        #[cfg(feature = "tonic")]
        return Some(&*UNAVAILABLE);
        #[cfg(not(feature = "tonic"))]
        None
    }
}

/// Whether `error` is, or carries in its source chain, [`RefusedLocally`]: `error` may be
/// the mark itself or a boxed error (`tower::BoxError`, the error type of Palisade's client
/// layers); other error types are not looked into.
pub fn refused_locally<E: 'static>(error: &E) -> bool {
    let any: &dyn Any = error;
    if any.is::<RefusedLocally>() {
        return true;
    }
    let mut current: Option<&(dyn Error + 'static)> =
        match any.downcast_ref::<Box<dyn Error + Send + Sync>>() {
            Some(boxed) => Some(&**boxed),
            None => return false,
        };
    // Bounded: a source chain is finite, but not trusted to be short.
    for _ in 0..32 {
        let Some(error) = current else {
            return false;
        };
        if error.is::<RefusedLocally>() {
            return true;
        }
        current = error.source();
    }
    false
}
