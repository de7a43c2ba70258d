use std::fmt;

/// The error of a call that did not complete before its timeout or deadline.
///
/// [`Timeout`](crate::Timeout) and [`PropagateDeadline`](crate::PropagateDeadline) return it as a
/// [`BoxError`](crate::BoxError); tell it from the inner service's errors with
/// `err.is::<Elapsed>()`.
///
/// With the `tonic` feature, a tonic client whose channel is wrapped in these layers reports it
/// as `DEADLINE_EXCEEDED` (tonic looks for a `tonic::Status` in an error's source chain, and this
/// error's source is one), and `tonic::Status::from(Elapsed)` converts it directly.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Elapsed {
    _private: (),
}

impl Elapsed {
    /// A new `Elapsed`.
    pub fn new() -> Self {
        Self::default()
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("request timed out")
    }
}

#[cfg(not(feature = "tonic"))]
impl std::error::Error for Elapsed {}

#[cfg(feature = "tonic")]
static DEADLINE_EXCEEDED: std::sync::LazyLock<tonic::Status> =
    std::sync::LazyLock::new(|| tonic::Status::deadline_exceeded("request timed out"));

#[cfg(feature = "tonic")]
impl std::error::Error for Elapsed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*DEADLINE_EXCEEDED)
    }
}

#[cfg(feature = "tonic")]
impl From<Elapsed> for tonic::Status {
    fn from(_: Elapsed) -> Self {
        tonic::Status::deadline_exceeded("request timed out")
    }
}
