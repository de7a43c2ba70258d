//! The gateway's HTTP server: what protects it before a request exists and after it stops
//! accepting, where no tower layer can act.
//!
//! - **Slow headers.** An HTTP/1 connection must deliver each request's headers within
//!   [`ServerConfig::header_timeout`] (hyper's header-read timeout, which also closes a
//!   keep-alive connection left idle that long), and a new connection of either version must
//!   start its first request within it (this covers the bytes hyper reads to tell HTTP/1 from
//!   HTTP/2, which its own timer does not). Slower connections are closed.
//! - **Bounded shutdown.** When `shutdown` completes the listener closes at once; connections
//!   that are idle, or hold only part of a request, are closed; requests in flight have
//!   [`ServerConfig::shutdown_grace`] to finish, after which their connections are closed too,
//!   and [`serve`] returns.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::Service as _;

/// How the server treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// How long a client may take to send a request's headers (and, on a new connection, to
    /// start its first request).
    pub header_timeout: Duration,
    /// After shutdown begins, how long requests in flight may run before their connections are
    /// closed.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then shuts down within the grace
/// period (see the [module documentation](self)). Each request carries its peer address as
/// `ConnectInfo<SocketAddr>`.
///
/// # Errors
///
/// None yet: accept errors are logged and the server carries on. The `Result` leaves room for
/// listener errors that must stop it.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout);
    let builder = Arc::new(builder);
    let (stop, stopping) = watch::channel(());
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(connection(
                        builder.clone(),
                        stream,
                        peer,
                        app.clone(),
                        stopping.clone(),
                        config.header_timeout,
                    ));
                }
                Err(err) => {
                    // Most accept errors concern one connection; a full file table clears
                    // as connections close, so wait a moment rather than spin.
                    tracing::warn!(%err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    tracing::info!(
        connections = connections.len(),
        grace = ?config.shutdown_grace,
        "shutting down: not accepting; idle and half-sent connections closed; requests in \
         flight may finish"
    );
    let _ = stop.send(());
    let drained = tokio::time::timeout(config.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "shutdown grace period over: closing connections with unfinished requests"
        );
        connections.shutdown().await;
    }
    Ok(())
}

/// What the server knows of one connection's requests.
#[derive(Debug, Default)]
struct Activity {
    /// Requests whose response (body included) is not yet finished.
    in_flight: AtomicUsize,
    /// Whether a request has arrived at all.
    started: AtomicBool,
}

/// One request in flight, until its response body is dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        activity.started.store(true, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        Self(activity.clone())
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its request counted in flight until hyper drops it, after
    /// the last byte is written or the connection is gone.
    struct Counted {
        #[pin]
        body: Body,
        _in_flight: InFlight,
    }
}

impl http_body::Body for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn connection(
    builder: Arc<Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    mut stopping: watch::Receiver<()>,
    header_timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut request: http::Request<Incoming>| {
            let guard = InFlight::enter(&activity);
            request.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                let response = app.call(request.map(Body::new)).await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| Counted {
                    body,
                    _in_flight: guard,
                }))
            }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let first_request = tokio::time::sleep(header_timeout);
    tokio::pin!(first_request);
    let mut stopped = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%err, "connection ended with an error");
                }
                return;
            }
            () = &mut first_request, if !activity.started.load(Ordering::Relaxed) => {
                tracing::debug!("no request within the header timeout: closing the connection");
                return;
            }
            _ = stopping.changed(), if !stopped => {
                stopped = true;
                connection.as_mut().graceful_shutdown();
                if activity.in_flight.load(Ordering::Acquire) == 0 {
                    // Idle, or only part of a request: nothing in flight to wait for.
                    return;
                }
            }
        }
    }
}
