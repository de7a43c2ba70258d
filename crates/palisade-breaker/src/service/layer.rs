use palisade_core::ErrorClassifier;
use tower_layer::Layer;

use super::BreakerService;
use crate::Breaker;

/// Guards a service with a [`Breaker`]; see [`BreakerService`].
///
/// Calls are judged by a [`Classify`](palisade_core::Classify): by default
/// [`ErrorClassifier`] (an error fails, a response succeeds); for an HTTP client,
/// [`HttpClassifier`](palisade_core::HttpClassifier) (5xx fails too); for gRPC,
/// [`GrpcClassifier`](palisade_core::GrpcClassifier); or any closure
/// `Fn(Result<&Response, &Error>) -> Outcome`.
#[derive(Clone, Debug)]
pub struct BreakerLayer<C = ErrorClassifier> {
    breaker: Breaker,
    classifier: C,
}

impl BreakerLayer {
    /// Guards with `breaker`, judging calls with [`ErrorClassifier`].
    pub fn new(breaker: Breaker) -> Self {
        Self {
            breaker,
            classifier: ErrorClassifier,
        }
    }
}

impl<C> BreakerLayer<C> {
    /// Judges calls with `classifier` instead.
    pub fn classify_with<C2>(self, classifier: C2) -> BreakerLayer<C2> {
        BreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }
}

impl<S, C: Clone> Layer<S> for BreakerLayer<C> {
    type Service = BreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService::new(inner, self.breaker.clone(), self.classifier.clone())
    }
}
