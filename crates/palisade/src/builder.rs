//! `ServiceBuilder` methods for Palisade's layers.

#[cfg(feature = "timeout")]
use std::time::Duration;

use tower::ServiceBuilder;
use tower_layer::Stack;

mod sealed {
    pub trait Sealed {}
}

impl<L> sealed::Sealed for ServiceBuilder<L> {}

/// Palisade's layers as [`ServiceBuilder`] methods.
///
/// Sealed: implemented for `ServiceBuilder` only, so methods can be added without breaking
/// anyone.
///
/// ```
/// # #[cfg(feature = "timeout")] {
/// use std::time::Duration;
/// use palisade::ServiceBuilderExt;
/// use palisade::timeout::DeadlineHeader;
/// use tower::ServiceBuilder;
///
/// let server = ServiceBuilder::new().http_timeout(Duration::from_secs(2));
/// let client = ServiceBuilder::new().propagate_deadline(DeadlineHeader::grpc_timeout());
/// # let _ = (server, client);
/// # }
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed + Sized {
    /// Adds [`ApiKeyLayer::new`](palisade_apikey::ApiKeyLayer::new) over `store`.
    #[cfg(feature = "apikey")]
    fn api_key(
        self,
        store: palisade_apikey::KeyStore,
    ) -> ServiceBuilder<Stack<palisade_apikey::ApiKeyLayer, L>>;

    /// Adds [`require_scopes`](palisade_core::require_scopes).
    fn require_scopes<I, S>(
        self,
        scopes: I,
    ) -> ServiceBuilder<Stack<palisade_core::RequireScopesLayer, L>>
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>;

    /// Adds [`HttpTimeoutLayer::new`](palisade_timeout::HttpTimeoutLayer::new): late requests
    /// are answered `504` with a problem body.
    #[cfg(feature = "timeout")]
    fn http_timeout(
        self,
        timeout: Duration,
    ) -> ServiceBuilder<Stack<palisade_timeout::HttpTimeoutLayer, L>>;

    /// Adds a configured [`HttpTimeoutLayer`](palisade_timeout::HttpTimeoutLayer).
    #[cfg(feature = "timeout")]
    fn http_timeout_layer(
        self,
        layer: palisade_timeout::HttpTimeoutLayer,
    ) -> ServiceBuilder<Stack<palisade_timeout::HttpTimeoutLayer, L>>;

    /// Adds [`PropagateDeadlineLayer`](palisade_timeout::PropagateDeadlineLayer) to a client.
    #[cfg(feature = "timeout")]
    fn propagate_deadline(
        self,
        header: palisade_timeout::DeadlineHeader,
    ) -> ServiceBuilder<Stack<palisade_timeout::PropagateDeadlineLayer, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    #[cfg(feature = "apikey")]
    fn api_key(
        self,
        store: palisade_apikey::KeyStore,
    ) -> ServiceBuilder<Stack<palisade_apikey::ApiKeyLayer, L>> {
        self.layer(palisade_apikey::ApiKeyLayer::new(store))
    }

    fn require_scopes<I, S>(
        self,
        scopes: I,
    ) -> ServiceBuilder<Stack<palisade_core::RequireScopesLayer, L>>
    where
        I: IntoIterator<Item = S>,
        S: Into<Box<str>>,
    {
        self.layer(palisade_core::require_scopes(scopes))
    }

    #[cfg(feature = "timeout")]
    fn http_timeout(
        self,
        timeout: Duration,
    ) -> ServiceBuilder<Stack<palisade_timeout::HttpTimeoutLayer, L>> {
        self.layer(palisade_timeout::HttpTimeoutLayer::new(timeout))
    }

    #[cfg(feature = "timeout")]
    fn http_timeout_layer(
        self,
        layer: palisade_timeout::HttpTimeoutLayer,
    ) -> ServiceBuilder<Stack<palisade_timeout::HttpTimeoutLayer, L>> {
        self.layer(layer)
    }

    #[cfg(feature = "timeout")]
    fn propagate_deadline(
        self,
        header: palisade_timeout::DeadlineHeader,
    ) -> ServiceBuilder<Stack<palisade_timeout::PropagateDeadlineLayer, L>> {
        self.layer(palisade_timeout::PropagateDeadlineLayer::new(header))
    }
}
