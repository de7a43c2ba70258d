//! [`ClientIpLayer`]: resolves the client address once and puts the [`ClientIp`] in the
//! request's extensions, so every layer after it (rate limits, logs, handlers) reads one answer.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::{Extensions, Request};
use tower_layer::Layer;
use tower_service::Service;

use super::{ClientIp, TrustedProxies};

type Peer = Arc<dyn Fn(&Extensions) -> Option<IpAddr> + Send + Sync>;

/// Where the connection's peer address is found by default, in the order tried: a bare
/// `SocketAddr` (what a hyper server loop inserts), axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`; what `into_make_service_with_connect_info::<SocketAddr>()` inserts) and tonic's
/// `TcpConnectInfo` (feature `tonic`; what `tonic::transport::Server` inserts for plain TCP).
pub fn default_peer(extensions: &Extensions) -> Option<IpAddr> {
    if let Some(addr) = extensions.get::<SocketAddr>() {
        return Some(addr.ip());
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    #[cfg(feature = "tonic")]
    if let Some(addr) = extensions
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(tonic::transport::server::TcpConnectInfo::remote_addr)
    {
        return Some(addr.ip());
    }
    None
}

/// Puts the request's [`ClientIp`] (resolved by [`TrustedProxies::resolve`]) in its
/// extensions.
///
/// The peer address is found wherever the server put it ([`default_peer`]): a hyper server
/// loop's `SocketAddr`, axum's `ConnectInfo<SocketAddr>` (feature `axum`) or tonic's
/// `TcpConnectInfo` (feature `tonic`); [`peer`](Self::peer) reads it from anywhere else (a TLS
/// acceptor's own type, a Unix-socket proxy protocol). A request on which no peer address is
/// found gets no `ClientIp`: the layer logs an error once (`palisade_client_ip_missing_total`
/// counts them with `metrics`), and rate limits keyed by the address put such requests in one
/// shared bucket rather than letting them through unlimited.
///
/// ```
/// use std::net::SocketAddr;
/// use palisade::{ClientIp, ClientIpLayer, TrustedProxies};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // Behind a load balancer at 10.0.0.0/8 that appends to `X-Forwarded-For`.
/// let layer = ClientIpLayer::new(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
/// let service = layer.layer(service_fn(|request: http::Request<()>| async move {
///     Ok::<_, std::convert::Infallible>(request.extensions().get::<ClientIp>().copied())
/// }));
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert("10.1.2.3:40000".parse::<SocketAddr>().unwrap());
/// request.headers_mut().insert("x-forwarded-for", "203.0.113.7".parse().unwrap());
/// let client = service.oneshot(request).await.unwrap();
/// assert_eq!(client.unwrap().to_string(), "203.0.113.7");
/// # }
/// ```
#[derive(Clone)]
pub struct ClientIpLayer {
    shared: Arc<Shared>,
}

struct Shared {
    trusted: TrustedProxies,
    peer: Peer,
    /// Whether a request without a peer address was reported.
    missing_reported: AtomicBool,
}

impl std::fmt::Debug for ClientIpLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIpLayer")
            .field("trusted", &self.shared.trusted)
            .finish_non_exhaustive()
    }
}

impl ClientIpLayer {
    /// Resolves through `trusted` proxies, the peer found by [`default_peer`].
    pub fn new(trusted: TrustedProxies) -> Self {
        Self::with_peer(trusted, Arc::new(default_peer))
    }

    fn with_peer(trusted: TrustedProxies, peer: Peer) -> Self {
        Self {
            shared: Arc::new(Shared {
                trusted,
                peer,
                missing_reported: AtomicBool::new(false),
            }),
        }
    }

    /// Reads the peer address with `peer` instead of [`default_peer`] (which `peer` may call
    /// first).
    #[must_use]
    pub fn peer(
        self,
        peer: impl Fn(&Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        Self::with_peer(self.shared.trusted.clone(), Arc::new(peer))
    }

    /// The proxies this layer trusts.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.shared.trusted
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

impl<S> ClientIpService<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
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
        let shared = &*self.layer.shared;
        match (shared.peer)(request.extensions()) {
            Some(peer) => {
                let ip: ClientIp = shared.trusted.resolve(peer, request.headers());
                request.extensions_mut().insert(ip);
            }
            None => missing_peer(shared),
        }
        self.inner.call(request)
    }
}

/// No peer address on a request: the server put it where this layer does not look. Said once
/// (and counted every time), since every layer keyed by the address depends on it.
#[cold]
fn missing_peer(shared: &Shared) {
    #[cfg(feature = "metrics")]
    metrics::counter!("palisade_client_ip_missing_total").increment(1);
    if !shared.missing_reported.swap(true, Ordering::Relaxed) {
        tracing::error!(
            "ClientIpLayer found no peer address on a request (said once): serve with \
             axum's into_make_service_with_connect_info::<SocketAddr>() and palisade's `axum` \
             feature, tonic's Server and the `tonic` feature, or insert the SocketAddr in a \
             hyper loop; else tell the layer where it is with ClientIpLayer::peer"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(layer: &ClientIpLayer, request: Request<()>) -> Option<ClientIp> {
        let mut service = layer.layer(tower::service_fn(|request: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(request.extensions().get::<ClientIp>().copied())
        }));
        let future = service.call(request);
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(value)) => value,
            _ => panic!("not ready"),
        }
    }

    fn request(peer: Option<&str>, xff: Option<&str>) -> Request<()> {
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
    }

    #[test]
    fn the_resolved_address_goes_into_the_extensions() {
        let layer = ClientIpLayer::new(TrustedProxies::new(["10.0.0.0/8"]).unwrap());
        assert_eq!(
            resolve(&layer, request(Some("10.1.2.3:4000"), Some("203.0.113.7"))).map(ClientIp::ip),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            resolve(
                &layer,
                request(Some("198.51.100.1:4000"), Some("203.0.113.7"))
            )
            .map(ClientIp::ip),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(resolve(&layer, request(None, Some("203.0.113.7"))), None);
    }

    /// Issue 16, item 3: the layer read a bare `SocketAddr` only, so under axum and tonic no
    /// `ClientIp` was ever set and per-IP limits never applied.
    #[test]
    #[cfg_attr(
        not(any(feature = "axum", feature = "tonic")),
        allow(unused_variables, reason = "the peer goes where the features put it")
    )]
    fn the_peer_is_found_where_axum_and_tonic_put_it() {
        let layer = ClientIpLayer::new(TrustedProxies::none());
        let peer: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        #[cfg(feature = "axum")]
        {
            let mut request = Request::new(());
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            assert_eq!(resolve(&layer, request), Some(ClientIp(peer.ip())));
        }
        #[cfg(feature = "tonic")]
        {
            let mut request = Request::new(());
            request
                .extensions_mut()
                .insert(tonic::transport::server::TcpConnectInfo {
                    local_addr: None,
                    remote_addr: Some(peer),
                });
            assert_eq!(resolve(&layer, request), Some(ClientIp(peer.ip())));
        }
        let custom = layer.peer(|_| Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            resolve(&custom, request(Some("198.51.100.9:1"), None)).map(ClientIp::ip),
            Some("192.0.2.1".parse().unwrap())
        );
    }
}
