use palisade_core::HttpClassifier;
use tower_layer::Layer;

use super::BreakerService;
use crate::Breaker;

/// Guards a service with a [`Breaker`]; see [`BreakerService`].
///
/// Calls are judged by a [`Classify`](palisade_core::Classify): by default [`HttpClassifier`]
/// (a `5xx` response, a timeout or a transport error fails; a `4xx` says nothing of the
/// callee's health), for the HTTP clients most breakers guard; for gRPC,
/// [`GrpcClassifier`](palisade_core::GrpcClassifier); for a service that is not HTTP,
/// [`ErrorClassifier`](palisade_core::ErrorClassifier) (an error fails, any response
/// succeeds); or any closure `Fn(Result<&Response, &Error>) -> Outcome`. A call refused by a
/// breaker further in ([`RefusedLocally`](palisade_core::RefusedLocally)) is never counted.
#[derive(Clone, Debug)]
pub struct BreakerLayer<C = HttpClassifier> {
    breaker: Breaker,
    classifier: C,
}

impl BreakerLayer {
    /// Guards with `breaker`, judging calls with [`HttpClassifier`]; for a service whose
    /// responses are not `http::Response`s, add `.classify_with(ErrorClassifier)`.
    pub fn new(breaker: Breaker) -> Self {
        Self {
            breaker,
            classifier: HttpClassifier::default(),
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
