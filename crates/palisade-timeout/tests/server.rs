//! The HTTP server timeout and deadline propagation, driven with paused time.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::{Extension, Router};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use palisade_core::Deadline;
use palisade_timeout::{DeadlineHeader, Elapsed, HttpTimeoutLayer, PropagateDeadlineLayer};
use tower::{Layer, ServiceExt, service_fn};

/// Answers after `delay` with the budget left in its deadline, in milliseconds.
fn sleepy(delay: Duration) -> Router {
    Router::new().route(
        "/",
        get(move |Extension(deadline): Extension<Deadline>| async move {
            let left = deadline.remaining().as_millis();
            tokio::time::sleep(delay).await;
            left.to_string()
        }),
    )
}

async fn call(app: Router, headers: &[(&str, &str)]) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::get("/");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_late_request_gets_a_504_problem() {
    let app = sleepy(Duration::from_secs(10)).layer(HttpTimeoutLayer::new(Duration::from_secs(2)));
    let (status, headers, body) = call(app, &[]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(headers["content-type"], "application/problem+json");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], 504);
    assert_eq!(json["title"], "Request timed out");
    assert_eq!(json["type"], palisade_core::problem::types::TIMEOUT);
    assert!(headers.get("connection").is_none());
}

#[tokio::test(start_paused = true)]
async fn the_status_is_configurable() {
    for (status, closes) in [
        (StatusCode::REQUEST_TIMEOUT, true),
        (StatusCode::SERVICE_UNAVAILABLE, false),
        (StatusCode::GATEWAY_TIMEOUT, false),
    ] {
        let layer = HttpTimeoutLayer::builder(Duration::from_millis(50))
            .status(status)
            .build()
            .unwrap();
        let (got, headers, body) = call(sleepy(Duration::from_secs(1)).layer(layer), &[]).await;
        assert_eq!(got, status);
        assert_eq!(headers.get("connection").is_some(), closes, "{status}");
        assert!(body.contains(&format!("\"status\":{}", status.as_u16())));
    }
}

#[tokio::test(start_paused = true)]
async fn a_fast_request_passes_and_sees_its_deadline() {
    let app =
        sleepy(Duration::from_millis(10)).layer(HttpTimeoutLayer::new(Duration::from_secs(2)));
    let (status, _, body) = call(app, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "2000");
}

#[tokio::test(start_paused = true)]
async fn the_late_handler_is_dropped() {
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                tokio::time::sleep(Duration::from_secs(5)).await;
                flag.store(true, Ordering::SeqCst);
                "late"
            }),
        )
        .layer(HttpTimeoutLayer::new(Duration::from_secs(1)));
    let (status, _, _) = call(app, &[]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!finished.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn nested_timeouts_keep_the_earliest_deadline() {
    let cases = [
        (
            "outer earlier",
            Duration::from_secs(1),
            Duration::from_secs(5),
            "1000",
        ),
        (
            "inner earlier",
            Duration::from_secs(5),
            Duration::from_secs(1),
            "1000",
        ),
        (
            "equal",
            Duration::from_secs(3),
            Duration::from_secs(3),
            "3000",
        ),
    ];
    for (name, outer, inner, expected) in cases {
        let app = sleepy(Duration::ZERO)
            .layer(HttpTimeoutLayer::new(inner))
            .layer(HttpTimeoutLayer::new(outer));
        let (status, _, body) = call(app, &[]).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(body, expected, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn per_route_timeouts_work_with_route_layer() {
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "ok"
            })
            .route_layer(HttpTimeoutLayer::new(Duration::from_millis(100))),
        )
        .route(
            "/other",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(500)).await;
                "ok"
            }),
        )
        .layer(HttpTimeoutLayer::new(Duration::from_secs(2)));
    let slow = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(slow.status(), StatusCode::GATEWAY_TIMEOUT);
    let other = app
        .oneshot(Request::get("/other").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
}

fn with_grpc(cap: Duration) -> HttpTimeoutLayer {
    HttpTimeoutLayer::builder(Duration::from_secs(2))
        .inbound_deadline(DeadlineHeader::grpc_timeout(), cap)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn inbound_deadline_header_table() {
    struct Case {
        name: &'static str,
        cap: Duration,
        headers: &'static [(&'static str, &'static str)],
        status: StatusCode,
        body_contains: &'static str,
    }
    let cases = [
        Case {
            name: "no header: the layer's timeout",
            cap: Duration::from_secs(30),
            headers: &[],
            status: StatusCode::OK,
            body_contains: "2000",
        },
        Case {
            name: "shorter budget honoured, answered one tick early",
            cap: Duration::from_secs(2),
            headers: &[("grpc-timeout", "150m")],
            status: StatusCode::OK,
            body_contains: "149",
        },
        Case {
            name: "longer budget capped",
            cap: Duration::from_secs(10),
            headers: &[("grpc-timeout", "1H")],
            status: StatusCode::OK,
            body_contains: "10000",
        },
        Case {
            name: "longer budget allowed up to the cap",
            cap: Duration::from_secs(30),
            headers: &[("grpc-timeout", "20S")],
            status: StatusCode::OK,
            body_contains: "19999",
        },
        Case {
            name: "a budget of one tick is answered at once",
            cap: Duration::from_secs(2),
            headers: &[("grpc-timeout", "1m")],
            status: StatusCode::GATEWAY_TIMEOUT,
            body_contains: "Request timed out",
        },
        Case {
            name: "zero budget answered at once",
            cap: Duration::from_secs(2),
            headers: &[("grpc-timeout", "0m")],
            status: StatusCode::GATEWAY_TIMEOUT,
            body_contains: "Request timed out",
        },
        Case {
            name: "malformed header",
            cap: Duration::from_secs(2),
            headers: &[("grpc-timeout", "soon")],
            status: StatusCode::BAD_REQUEST,
            body_contains: "grpc-timeout",
        },
        Case {
            name: "repeated header",
            cap: Duration::from_secs(2),
            headers: &[("grpc-timeout", "1S"), ("grpc-timeout", "2S")],
            status: StatusCode::BAD_REQUEST,
            body_contains: "at most once",
        },
    ];
    for case in cases {
        let app = sleepy(Duration::ZERO).layer(with_grpc(case.cap));
        let (status, headers, body) = call(app, case.headers).await;
        assert_eq!(status, case.status, "{}", case.name);
        assert!(body.contains(case.body_contains), "{}: {body}", case.name);
        if status != StatusCode::OK {
            assert_eq!(
                headers["content-type"], "application/problem+json",
                "{}",
                case.name
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_with_no_time_left_never_reaches_the_handler() {
    let reached = Arc::new(AtomicBool::new(false));
    let flag = reached.clone();
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                flag.store(true, Ordering::SeqCst);
                "reached"
            }),
        )
        .layer(with_grpc(Duration::from_secs(1)));
    let (status, _, _) = call(app, &[("grpc-timeout", "0n")]).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert!(!reached.load(Ordering::SeqCst));
}

#[test]
fn builder_errors_name_the_field() {
    let cases = [
        (HttpTimeoutLayer::builder(Duration::ZERO), "timeout"),
        (
            HttpTimeoutLayer::builder(Duration::from_secs(1))
                .status(StatusCode::INTERNAL_SERVER_ERROR),
            "status",
        ),
        (
            HttpTimeoutLayer::builder(Duration::from_secs(1)).status(StatusCode::OK),
            "status",
        ),
        (
            HttpTimeoutLayer::builder(Duration::from_secs(1))
                .inbound_deadline(DeadlineHeader::grpc_timeout(), Duration::ZERO),
            "inbound_deadline.cap",
        ),
    ];
    for (builder, field) in cases {
        let err = builder.build().unwrap_err();
        assert_eq!(err.field(), field);
        assert!(
            err.to_string().starts_with(&format!("invalid `{field}`")),
            "{err}"
        );
    }
}

// ---- outbound propagation ----

fn echo_header() -> impl tower::Service<
    Request<()>,
    Response = Response<Option<String>>,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone {
    service_fn(|req: Request<()>| async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok(Response::new(
            req.headers()
                .get("grpc-timeout")
                .map(|v| v.to_str().unwrap().to_owned()),
        ))
    })
}

#[tokio::test(start_paused = true)]
async fn propagation_writes_the_time_left() {
    let client = PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(echo_header());
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert("grpc-timeout", "99H".parse().unwrap());
    Deadline::after(Duration::from_secs(3)).insert_earliest(request.extensions_mut());
    tokio::time::advance(Duration::from_secs(1)).await;
    let sent = client.oneshot(request).await.unwrap().into_body();
    // 2 s left, written in microseconds; the caller's own value was replaced.
    assert_eq!(sent.as_deref(), Some("2000000u"));
}

#[tokio::test(start_paused = true)]
async fn a_shorter_budget_the_caller_wrote_is_kept_and_enforced() {
    // tonic's `Request::set_timeout(30ms)` writes `grpc-timeout: 30000u`.
    let client = PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(echo_header());
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert("grpc-timeout", "30000u".parse().unwrap());
    Deadline::after(Duration::from_secs(3)).insert_earliest(request.extensions_mut());
    let err = client.oneshot(request).await.unwrap_err();
    assert!(
        err.is::<Elapsed>(),
        "the 50 ms upstream misses the caller's 30 ms"
    );

    let client = PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(echo_header());
    let mut request = Request::new(());
    request
        .headers_mut()
        .insert("grpc-timeout", "400m".parse().unwrap());
    Deadline::after(Duration::from_secs(3)).insert_earliest(request.extensions_mut());
    let sent = client.oneshot(request).await.unwrap().into_body();
    assert_eq!(sent.as_deref(), Some("400m"), "kept as the caller wrote it");
}

#[derive(Debug)]
struct Refused;

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

impl std::error::Error for Refused {}

/// A client stack that enforces the header itself (tonic's `Channel`) fails when the budget it
/// was handed runs out: that is the deadline failing the call, so it is `Elapsed`. An error
/// before then is the callee's own.
#[tokio::test(start_paused = true)]
async fn an_error_once_the_handed_down_budget_ran_out_is_elapsed() {
    let enforcing = service_fn(|req: Request<()>| async move {
        let budget = DeadlineHeader::grpc_timeout()
            .read(req.headers())
            .unwrap()
            .unwrap();
        tokio::time::sleep(budget).await;
        Err::<(), _>(Refused)
    });
    let client = PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(enforcing);
    let mut request = Request::new(());
    Deadline::after(Duration::from_millis(200)).insert_earliest(request.extensions_mut());
    let err = client.oneshot(request).await.unwrap_err();
    assert!(err.is::<Elapsed>(), "{err}");

    let early = service_fn(|_: Request<()>| async { Err::<(), _>(Refused) });
    let client = PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(early);
    let mut request = Request::new(());
    Deadline::after(Duration::from_millis(200)).insert_earliest(request.extensions_mut());
    let err = client.oneshot(request).await.unwrap_err();
    assert!(err.is::<Refused>(), "the callee's own error: {err}");
}

#[tokio::test(start_paused = true)]
async fn propagation_without_a_deadline_passes_through() {
    let client = PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(echo_header());
    let sent = client.oneshot(Request::new(())).await.unwrap().into_body();
    assert_eq!(sent, None);
}

#[tokio::test(start_paused = true)]
async fn propagation_enforces_the_deadline() {
    let client = PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(echo_header());
    let mut request = Request::new(());
    Deadline::after(Duration::from_millis(20)).insert_earliest(request.extensions_mut());
    let err = client.oneshot(request).await.unwrap_err();
    assert!(err.is::<Elapsed>());
}

#[tokio::test(start_paused = true)]
async fn an_expired_request_is_not_sent() {
    let sent = Arc::new(AtomicBool::new(false));
    let flag = sent.clone();
    let upstream = service_fn(move |_: Request<()>| {
        flag.store(true, Ordering::SeqCst);
        async { Ok::<_, std::convert::Infallible>(()) }
    });
    let client = PropagateDeadlineLayer::new(DeadlineHeader::grpc_timeout()).layer(upstream);
    let mut request = Request::new(());
    Deadline::after(Duration::from_millis(5)).insert_earliest(request.extensions_mut());
    tokio::time::advance(Duration::from_millis(10)).await;
    let err = client.oneshot(request).await.unwrap_err();
    assert!(err.is::<Elapsed>());
    assert!(!sent.load(Ordering::SeqCst));
}
