use tower_layer::Layer;

use super::PropagateDeadline;
use crate::DeadlineHeader;

/// Applies [`PropagateDeadline`] to a client. See the [module documentation](super).
#[derive(Debug, Clone)]
pub struct PropagateDeadlineLayer {
    header: DeadlineHeader,
}

impl PropagateDeadlineLayer {
    /// Writes the remaining budget into `header`.
    pub fn new(header: DeadlineHeader) -> Self {
        Self { header }
    }
}

impl<S> Layer<S> for PropagateDeadlineLayer {
    type Service = PropagateDeadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PropagateDeadline::new(inner, self.header.clone())
    }
}
