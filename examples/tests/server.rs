//! The gateway's server over real sockets on 127.0.0.1: slow clients and bounded shutdown
//! (issue 10). Timers are generous: each test asserts what happens and in which order, never
//! how fast.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use palisade_examples::gateway::{self, Config, DEMO_KEY, ServerConfig};
use palisade_test_support::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// Longer than any of these tests should wait for anything: a hang guard, not a measurement.
const PATIENCE: Duration = Duration::from_secs(20);

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    /// Notified when a request reaches the router.
    reached: Arc<Notify>,
}

async fn start(config: Config, server: ServerConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let reached = Arc::new(Notify::new());
    let signal = reached.clone();
    let app = gateway::app(&config)
        .unwrap()
        .layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                signal.notify_one();
                next.run(request)
            },
        ));
    let server = tokio::spawn(gateway::serve(listener, app, server, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        server,
        reached,
    }
}

impl Running {
    fn shut_down(&mut self) {
        self.stop.take().unwrap().send(()).unwrap();
    }
}

/// Reads until the server closes the connection; `false` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match timeout(limit, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

async fn raw(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

fn header_timeout(header_timeout: Duration) -> ServerConfig {
    ServerConfig {
        header_timeout,
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn connections_that_do_not_send_their_headers_in_time_are_closed() {
    let running = start(
        Config::default(),
        header_timeout(Duration::from_millis(300)),
    )
    .await;
    let cases: [(&str, &[u8]); 4] = [
        (
            "part of the headers (HTTP/1 already recognised)",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a",
        ),
        ("fewer bytes than tell HTTP/1 from HTTP/2", b"GET / HT"),
        ("nothing at all", b""),
        ("half of the HTTP/2 preface", b"PRI * HTTP/2.0\r\n"),
    ];
    for (name, bytes) in cases {
        let mut stream = raw(running.addr, bytes).await;
        assert!(
            closed_within(&mut stream, PATIENCE).await,
            "{name}: still open"
        );
    }
}

#[tokio::test]
async fn a_client_trickling_header_bytes_is_closed_too() {
    let running = start(
        Config::default(),
        header_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut stream = raw(running.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    let trickle = async {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if stream.write_all(b"X-A: b\r\n").await.is_err() {
                return;
            }
        }
    };
    timeout(PATIENCE, trickle)
        .await
        .expect("the server closed the connection while headers still trickled in");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_header_timeout() {
    let running = start(
        Config::default(),
        header_timeout(Duration::from_millis(300)),
    )
    .await;
    let mut stream = raw(running.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "the request is served"
    );
    assert!(closed_within(&mut stream, PATIENCE).await);
}

/// Issue 10: on SIGTERM one half-sent request held the process for as long as the client
/// stayed connected.
#[tokio::test]
async fn shutdown_closes_half_sent_and_idle_connections_at_once_and_lets_requests_finish() {
    // A header timeout far longer than the test, so only shutdown can close anything.
    let mut running = start(
        Config {
            timeout: Duration::from_secs(60),
            ..Config::default()
        },
        header_timeout(Duration::from_secs(3600)),
    )
    .await;
    let mut half_sent = raw(
        running.addr,
        b"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
    )
    .await;
    let mut idle = raw(running.addr, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    running.reached.notified().await;
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let url = format!("http://{}/v1/slow?ms=3000", running.addr);
    let in_flight =
        tokio::spawn(async move { Client::new().get(&url, &[("x-api-key", DEMO_KEY)]).await });
    running.reached.notified().await;
    running.shut_down();

    assert!(
        closed_within(&mut half_sent, PATIENCE).await,
        "the half-sent request's connection is closed"
    );
    assert!(closed_within(&mut idle, PATIENCE).await, "the idle one too");
    assert!(
        !in_flight.is_finished(),
        "both closed while the request in flight still ran"
    );
    assert!(
        TcpStream::connect(running.addr).await.is_err(),
        "no new connection is accepted"
    );
    let reply = timeout(PATIENCE, in_flight).await.unwrap().unwrap();
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "the request in flight finished"
    );
    assert_eq!(reply.json()["slept_ms"], 3000);
    timeout(PATIENCE, running.server)
        .await
        .expect("the server returned")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn requests_still_running_after_the_grace_period_are_cut_off() {
    let mut running = start(
        Config {
            timeout: Duration::from_secs(120),
            ..Config::default()
        },
        ServerConfig {
            shutdown_grace: Duration::from_millis(300),
            ..ServerConfig::default()
        },
    )
    .await;
    let client = Client::new().hyper();
    let request = Request::get(format!("http://{}/v1/slow?ms=60000", running.addr))
        .header("x-api-key", DEMO_KEY)
        .body(Full::<Bytes>::default())
        .unwrap();
    let in_flight = tokio::spawn(async move {
        match client.request(request).await {
            Ok(response) => response.into_body().collect().await.map(|_| ()).is_ok(),
            Err(_) => false,
        }
    });
    running.reached.notified().await;
    running.shut_down();
    timeout(PATIENCE, running.server)
        .await
        .expect("the server returned after the grace period, not after the request")
        .unwrap()
        .unwrap();
    let completed = timeout(PATIENCE, in_flight).await.unwrap().unwrap();
    assert!(!completed, "the unfinished request's connection was closed");
}

#[tokio::test]
async fn http2_requests_are_served_and_counted_in_flight() {
    let mut running = start(Config::default(), ServerConfig::default()).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let url = format!("http://{}/v1/slow?ms=500", running.addr);
    let request = Request::get(&url)
        .header("x-api-key", DEMO_KEY)
        .body(Full::default())
        .unwrap();
    let in_flight = tokio::spawn(async move {
        let response = client.request(request).await.unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    });
    running.reached.notified().await;
    running.shut_down();
    let (status, body) = timeout(PATIENCE, in_flight).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK, "{body:?}");
    timeout(PATIENCE, running.server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
