//! A panic in the gateway's stack (issue 16, item 1): its own test binary, since it replaces the
//! process's panic hook and captures the logs.

use http::StatusCode;
use palisade_examples::gateway::{self, Config};
use palisade_test_support::{Client, TestServer};

/// Issue 16, item 1: a panic anywhere in the stack answers 500 with a problem that says
/// nothing of it (it dropped the connection), and the log gets its text escaped (a `\n` in
/// it forged a log line).
#[tokio::test]
async fn a_panicking_handler_is_a_500_problem_and_an_escaped_log_line() {
    let logs = palisade_test_support::CapturedLogs::start();
    gateway::panics::install_hook();
    let extra = axum::Router::new().route("/boom", axum::routing::get(boom));
    let server =
        TestServer::spawn(gateway::app_with_routes(&Config::default(), extra).unwrap()).await;
    let client = Client::new();
    let reply = client.get(&server.url("/boom"), &[]).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert!(!reply.text().contains("FORGED"), "{}", reply.text());
    // The server goes on serving.
    assert_eq!(
        client.get(&server.url("/healthz"), &[]).await.status,
        StatusCode::OK
    );
    let text = logs.contents();
    assert!(text.contains("panicked"), "{text}");
    assert!(text.contains("\\nFORGED"), "escaped: {text}");
    assert!(
        !text.lines().any(|line| line.starts_with("FORGED")),
        "no forged line: {text}"
    );
}

/// A handler that panics with client-like text: a non-ASCII character and a forged log line.
async fn boom() -> &'static str {
    let text = std::hint::black_box("cty=xxxxxxxxxxx\u{e9}\nFORGED level=INFO all is well");
    panic!("{text}")
}
