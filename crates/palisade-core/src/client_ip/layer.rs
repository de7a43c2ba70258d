//! [`ClientIpLayer`]: resolves the client address once and puts the [`ClientIp`] in the
//! request's extensions, so every layer after it (rate limits, logs, handlers) reads one answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Extensions, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::{ClientIp, TrustedProxies};

type Peer = Arc<dyn Fn(&Extensions) -> Option<IpAddr> + Send + Sync>;

/// Puts the request's [`ClientIp`] (resolved by [`TrustedProxies::resolve`]) in its
/// extensions. The peer address is read from the extensions: a `SocketAddr` by default (what a
/// hyper server loop inserts), or wherever [`peer`](Self::peer) says (axum's
/// `ConnectInfo<SocketAddr>`). A request without a peer address gets no `ClientIp`, and layers
/// keyed by it do not count it.
///
/// ```
/// use std::net::SocketAddr;
/// use palisade_core::{ClientIpLayer, TrustedProxies};
///
/// // axum: `.into_make_service_with_connect_info::<SocketAddr>()` inserts `ConnectInfo`.
/// let layer = ClientIpLayer::new(TrustedProxies::new(["10.0.0.0/8"]).unwrap())
///     .peer(|ext| ext.get::<SocketAddr>().map(|addr| addr.ip()));
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct ClientIpLayer {
    trusted: TrustedProxies,
    peer: Peer,
}

impl std::fmt::Debug for ClientIpLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIpLayer")
            .field("trusted", &self.trusted)
            .finish_non_exhaustive()
    }
}

impl ClientIpLayer {
    /// Resolves through `trusted` proxies, the peer read from a `SocketAddr` extension.
    pub fn new(trusted: TrustedProxies) -> Self {
        Self {
            trusted,
            peer: Arc::new(|ext: &Extensions| ext.get::<SocketAddr>().map(SocketAddr::ip)),
        }
    }

    /// Where the peer address is read from.
    #[must_use]
    pub fn peer(
        mut self,
        peer: impl Fn(&Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.peer = Arc::new(peer);
        self
    }
}

impl<S> Layer<S> for ClientIpLayer {
    type Service = ClientIpService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientIpService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`ClientIpLayer`].
#[derive(Clone, Debug)]
pub struct ClientIpService<S> {
    inner: S,
    layer: ClientIpLayer,
}

impl<S, B> Service<Request<B>> for ClientIpService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if let Some(peer) = (self.layer.peer)(request.extensions()) {
            let ip: ClientIp = self.layer.trusted.resolve(peer, request.headers());
            request.extensions_mut().insert(ip);
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_resolved_address_goes_into_the_extensions() {
        let layer = ClientIpLayer::new(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
        let mut service = layer.layer(tower::service_fn(|request: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(request.extensions().get::<ClientIp>().copied())
        }));
        let call = |peer: Option<&str>, xff: Option<&str>| {
            let mut request = Request::new(());
            if let Some(peer) = peer {
                request
                    .extensions_mut()
                    .insert(peer.parse::<SocketAddr>().unwrap());
            }
            if let Some(xff) = xff {
                request
                    .headers_mut()
                    .insert("x-forwarded-for", xff.parse().unwrap());
            }
            request
        };
        let mut run = |request| {
            let future = service.call(request);
            futures_lite(future)
        };
        assert_eq!(
            run(call(Some("10.1.2.3:4000"), Some("203.0.113.7"))).map(ClientIp::ip),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            run(call(Some("198.51.100.1:4000"), Some("203.0.113.7"))).map(ClientIp::ip),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(run(call(None, Some("203.0.113.7"))), None);
    }

    /// Polls a future that is ready at once.
    fn futures_lite<F: std::future::Future<Output = Result<T, std::convert::Infallible>>, T>(
        future: F,
    ) -> T {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(value)) => value,
            _ => panic!("not ready"),
        }
    }
}
