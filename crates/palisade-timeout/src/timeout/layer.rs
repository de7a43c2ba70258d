use std::time::Duration;

use tower_layer::Layer;

use super::Timeout;

/// Applies [`Timeout`] to a service. See the [module documentation](super).
#[derive(Debug, Clone, Copy)]
pub struct TimeoutLayer {
    timeout: Duration,
}

impl TimeoutLayer {
    /// A layer that fails calls taking longer than `timeout`. A zero timeout fails every call
    /// whose response is not ready on its first poll.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout::new(inner, self.timeout)
    }
}
