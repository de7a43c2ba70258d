use std::fmt;

/// The error of a call that did not complete before its timeout or deadline.
///
/// [`Timeout`](crate::Timeout) and [`PropagateDeadline`](crate::PropagateDeadline) return it as a
/// [`BoxError`](crate::BoxError); tell it from the inner service's errors with
/// `err.is::<Elapsed>()`.
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

impl std::error::Error for Elapsed {}
