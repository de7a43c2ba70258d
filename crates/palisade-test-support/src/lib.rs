//! Test fixtures shared by Palisade's crates (not published).
//!
//! - [`TestServer`]: an axum router, or any tower service through plain hyper, served over real
//!   HTTP on `127.0.0.1:0`.
//! - [`Client`]: a plain hyper client for talking to it, returning [`Reply`]s.
//! - [`CapturedLogs`]: every `tracing` event of a test, as text, to assert that a secret never
//!   appears in the logs.
//! - [`grpc`]: gRPC's Greeter served by tonic, for tests with a real gRPC client.
//! - [`jwt`]: signing keys and a real JWKS / OIDC discovery server.
//! - [`redis`]: real `redis-server` processes, standalone or a three-node cluster.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;

pub mod grpc;
pub mod jwt;
pub mod redis;

/// An axum router served on a fresh loopback port; shut down when dropped.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Serves `router` on `127.0.0.1:0`, with the peer address available as
    /// `ConnectInfo<SocketAddr>`.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn spawn(router: axum::Router) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .expect("test server");
        });
        Self {
            addr,
            shutdown: Some(tx),
            task,
        }
    }

    /// Serves any tower service with plain hyper (HTTP/1.1, no axum) on `127.0.0.1:0`, for
    /// layers whose users write bare hyper handlers.
    ///
    /// # Panics
    ///
    /// If no loopback port can be bound.
    pub async fn spawn_hyper<S, B>(service: S) -> Self
    where
        S: tower_service::Service<Request<hyper::body::Incoming>, Response = http::Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        B: http_body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (tx, mut rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(_) => continue,
                    },
                    _ = &mut rx => return,
                };
                let service = hyper_util::service::TowerToHyperService::new(service.clone());
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            shutdown: Some(tx),
            task,
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server to end.
    ///
    /// # Panics
    ///
    /// If the server task panicked.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        (&mut self.task).await.expect("server task");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An upstream that answers `GET {path}` with `{"work":"done"}` and keeps the request headers
/// of every call, to check what a client stack sent.
#[derive(Debug)]
pub struct RecordingUpstream {
    /// The server.
    pub server: TestServer,
    seen: std::sync::Arc<std::sync::Mutex<Vec<http::HeaderMap>>>,
}

impl RecordingUpstream {
    /// Spawns it on `127.0.0.1:0`.
    ///
    /// # Panics
    ///
    /// A call after a handler panicked while recording.
    pub async fn spawn(path: &str) -> Self {
        let seen: std::sync::Arc<std::sync::Mutex<Vec<http::HeaderMap>>> =
            std::sync::Arc::default();
        let kept = seen.clone();
        let router = axum::Router::new().route(
            path,
            axum::routing::get(move |headers: http::HeaderMap| {
                kept.lock().expect("not poisoned").push(headers);
                async { axum::Json(serde_json::json!({ "work": "done" })) }
            }),
        );
        Self {
            server: TestServer::spawn(router).await,
            seen,
        }
    }

    /// The value of header `name` in each call so far (empty when a call lacked it).
    ///
    /// # Panics
    ///
    /// If a handler panicked while recording.
    pub fn header_of_each_call(&self, name: &str) -> Vec<String> {
        self.seen
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|headers| {
                headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }
}

/// A response read to the end.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// If the body is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A hyper HTTP/1 client.
#[derive(Debug, Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A new client.
    pub fn new() -> Self {
        Self {
            inner: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The underlying hyper client, to wrap it in layers under test.
    pub fn hyper(&self) -> hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>> {
        self.inner.clone()
    }

    /// Sends `request` and reads the whole response.
    ///
    /// # Panics
    ///
    /// On a transport error.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Reply {
        let response = self.inner.request(request).await.expect("HTTP request");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("response body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// `GET url` with extra headers.
    ///
    /// # Panics
    ///
    /// On a malformed URL or header, or a transport error.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Reply {
        let mut builder = Request::get(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(Full::default()).expect("request"))
            .await
    }
}

/// Captures the `tracing` output of the current thread while alive (TRACE level, all targets).
///
/// Tests using it should run on a current-thread runtime so every event lands in the capture,
/// and in a test binary of their own: `tracing` caches each callsite's interest process-wide.
#[derive(Debug)]
pub struct CapturedLogs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct BufferWriter(Arc<Mutex<Vec<u8>>>);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl CapturedLogs {
    /// Starts capturing.
    pub fn start() -> Self {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = BufferWriter(buffer.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        // Callsites first hit before this subscriber existed may have cached "never".
        tracing::callsite::rebuild_interest_cache();
        Self {
            buffer,
            _guard: guard,
        }
    }

    /// Everything logged so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(
            &self
                .buffer
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}
