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

/// A layer configuration that does not make sense; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    field: &'static str,
    reason: String,
}

impl BuildError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }

    /// The configuration field that is wrong.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for BuildError {}
