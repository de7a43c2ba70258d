//! Issue 10: a key sent as `?api_key=...` was logged four times through the request URI at the
//! demo's default log level. Whatever the client sends, and wherever it puts a credential, the
//! gateway's logs hold none of it.
//!
//! In a test binary of its own: `tracing` caches each callsite's interest process-wide.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use palisade_examples::gateway::{self, Config, DEMO_KEY, ServerConfig};
use palisade_test_support::{CapturedLogs, Client};

#[tokio::test(flavor = "current_thread")]
async fn no_credential_reaches_the_logs() {
    let logs = CapturedLogs::start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = Config {
        timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let server = tokio::spawn(gateway::serve(
        listener,
        gateway::app(&config).unwrap(),
        ServerConfig::default(),
        async {
            let _ = stopped.await;
        },
    ));
    // A key that is not the demo key, and the demo key itself, each placed where a careless
    // client would put it.
    let secret = "pal_live_LeakedLeakedLeakedLeakedLeaked12_abcdef";
    let client = Client::new();
    let url = |path: &str| format!("http://{addr}{path}");
    let requests = [
        Request::get(url(&format!("/v1/hello?api_key={secret}"))),
        Request::get(url(&format!("/v1/hello?api_key={DEMO_KEY}"))),
        Request::get(url(&format!("/v1/slow?ms=1000&token={DEMO_KEY}")))
            .header("x-api-key", DEMO_KEY),
        Request::get(url(&format!("/{secret}"))),
        Request::get(url(&format!("/v1/{DEMO_KEY}"))).header("x-api-key", DEMO_KEY),
        Request::get(url("/v1/hello")).header("authorization", format!("Bearer {secret}")),
        Request::get(url("/v1/hello")).header("authorization", format!("Basic {secret}")),
        Request::get(url("/v1/hello"))
            .header("x-api-key", DEMO_KEY)
            .header("x-request-id", secret),
        Request::get(url("/v1/hello"))
            .header("x-api-key", DEMO_KEY)
            .header("x-forwarded-for", secret)
            .header("forwarded", format!("for=\"{secret}\"")),
        Request::post(url("/v1/echo"))
            .header("x-api-key", DEMO_KEY)
            .header("content-type", "application/json"),
    ];
    for (i, request) in requests.into_iter().enumerate() {
        let body = if i == 9 {
            Bytes::from(format!(r#"{{"{secret}": tru"#))
        } else {
            Bytes::new()
        };
        let reply = client.send(request.body(Full::new(body)).unwrap()).await;
        assert!(reply.status.as_u16() >= 200, "request {i}");
    }
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();

    let text = logs.contents();
    assert!(
        text.contains("route=/v1/hello") && text.contains("route=/v1/slow"),
        "requests are logged, by route: {text}"
    );
    assert!(text.contains("route=unmatched"), "{text}");
    assert!(text.contains("status=504"), "the timeout is logged: {text}");
    for needle in [
        secret,
        "LeakedLeaked",
        DEMO_KEY,
        DEMO_KEY.get(9..40).unwrap(),
        "api_key",
        "token=",
    ] {
        assert!(!text.contains(needle), "{needle:?} was logged:\n{text}");
    }
}
