//! The demo gateway over real HTTP on 127.0.0.1.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use palisade::TrustedProxies;
use palisade::apikey::{KeyDigest, KeySet};
use palisade_examples::gateway::{self, Config, DEMO_KEY};
use palisade_test_support::{Client, TestServer};

const KEY: (&str, &str) = ("x-api-key", DEMO_KEY);

async fn start(config: Config) -> TestServer {
    TestServer::spawn(gateway::app(&config).unwrap()).await
}

fn fast() -> Config {
    Config {
        timeout: Duration::from_millis(500),
        ..Config::default()
    }
}

#[tokio::test]
async fn healthz_and_hello() {
    let server = start(Config::default()).await;
    let client = Client::new();
    let health = client.get(&server.url("/healthz"), &[]).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json()["status"], "ok");
    assert!(
        health.header("x-request-id").is_some(),
        "request ids are propagated"
    );

    let hello = client
        .get(
            &server.url("/v1/hello"),
            &[("x-forwarded-for", "6.6.6.6"), KEY],
        )
        .await;
    assert_eq!(hello.status, StatusCode::OK);
    assert_eq!(hello.json()["message"], "hello, demo");
    // No trusted proxy configured: the spoofed header is ignored.
    assert_eq!(hello.json()["client_ip"], "127.0.0.1");
}

#[tokio::test]
async fn hello_believes_a_trusted_proxy() {
    let server = start(Config {
        trusted_proxies: TrustedProxies::new(["127.0.0.0/8"]).unwrap(),
        ..Config::default()
    })
    .await;
    let hello = Client::new()
        .get(
            &server.url("/v1/hello"),
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.5"), KEY],
        )
        .await;
    assert_eq!(hello.json()["client_ip"], "203.0.113.5");
}

#[tokio::test]
async fn slow_answers_504_problem_after_the_timeout() {
    let server = start(fast()).await;
    let reply = Client::new()
        .get(&server.url("/v1/slow?ms=5000"), &[KEY])
        .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.json()["status"], 504);

    let quick = Client::new()
        .get(&server.url("/v1/slow?ms=1"), &[KEY])
        .await;
    assert_eq!(quick.status, StatusCode::OK);
    assert_eq!(quick.json()["slept_ms"], 1);
}

#[tokio::test]
async fn a_caller_deadline_shortens_the_timeout() {
    let server = start(Config::default()).await;
    let reply = Client::new()
        .get(
            &server.url("/v1/slow?ms=1500"),
            &[("grpc-timeout", "50m"), KEY],
        )
        .await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn bad_input_gets_problem_json() {
    let server = start(Config::default()).await;
    let client = Client::new();
    let post = |body: &'static str, content_type: &'static str| {
        Request::post(server.url("/v1/echo"))
            .header("content-type", content_type)
            .header(KEY.0, KEY.1)
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };
    let cases = [
        (
            "missing ms",
            client.get(&server.url("/v1/slow"), &[KEY]).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "ms not a number",
            client.get(&server.url("/v1/slow?ms=abc"), &[KEY]).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "ms too large",
            client.get(&server.url("/v1/slow?ms=999999"), &[KEY]).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad grpc-timeout",
            client
                .get(&server.url("/v1/slow?ms=1"), &[("grpc-timeout", "x"), KEY])
                .await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "no API key",
            client.get(&server.url("/v1/hello"), &[]).await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "wrong API key",
            client
                .get(&server.url("/v1/hello"), &[("x-api-key", "pal_demo_nope")])
                .await,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown route",
            client.get(&server.url("/nope"), &[]).await,
            StatusCode::NOT_FOUND,
        ),
        (
            "syntax error",
            client.send(post("{", "application/json")).await,
            StatusCode::BAD_REQUEST,
        ),
        (
            "not JSON media type",
            client.send(post("{}", "text/plain")).await,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ];
    for (name, reply, status) in cases {
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{name}"
        );
        assert_eq!(reply.json()["status"], status.as_u16(), "{name}");
    }
}

#[tokio::test]
async fn echo_returns_the_message_and_tags() {
    let server = start(Config::default()).await;
    let reply = Client::new()
        .send(
            Request::post(server.url("/v1/echo"))
                .header("content-type", "application/json")
                .header(KEY.0, KEY.1)
                .body(Full::new(Bytes::from_static(
                    br#"{"message":"hi \u00e9","tags":["a","b"]}"#,
                )))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.json(),
        serde_json::json!({"message": "hi \u{e9}", "tags": ["a", "b"], "principal": "demo"})
    );
}

#[tokio::test]
async fn an_oversized_body_is_413() {
    let server = start(Config::default()).await;
    let body = format!("[{}1]", "1,".repeat(gateway::MAX_BODY_BYTES));
    let reply = Client::new()
        .send(
            Request::post(server.url("/v1/echo"))
                .header("content-type", "application/json")
                .header(KEY.0, KEY.1)
                .body(Full::new(Bytes::from(body)))
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
}

#[test]
fn the_embedded_key_set_holds_the_demo_key_digest() {
    let set = KeySet::parse(gateway::DEMO_KEYS).unwrap();
    let entry = set
        .find(&KeyDigest::of(DEMO_KEY))
        .expect("the demo key is accepted");
    assert_eq!(entry.principal(), "demo");
    assert!(
        !gateway::DEMO_KEYS.contains(DEMO_KEY),
        "only the digest is embedded"
    );
}

#[tokio::test]
async fn healthz_needs_no_key_and_scopes_are_enforced() {
    let reader = palisade::apikey::format::generate("pal_live").unwrap();
    let config = Config::default();
    config.keys.as_ref().unwrap().replace(
        KeySet::parse(&format!(
            "{}\n{} principal=reader scopes=hello:read",
            gateway::DEMO_KEYS,
            KeyDigest::of(&reader)
        ))
        .unwrap(),
    );
    let server = start(config).await;
    let client = Client::new();
    assert_eq!(
        client.get(&server.url("/healthz"), &[]).await.status,
        StatusCode::OK
    );
    let hello = client
        .get(&server.url("/v1/hello"), &[("x-api-key", &reader)])
        .await;
    assert_eq!(hello.json()["message"], "hello, reader");
    let echo = client
        .send(
            Request::post(server.url("/v1/echo"))
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {reader}"))
                .body(Full::new(Bytes::from_static(b"{}")))
                .unwrap(),
        )
        .await;
    assert_eq!(echo.status, StatusCode::FORBIDDEN);
    assert_eq!(echo.json()["required_scopes"][0], "echo:write");
}

/// Issue 10: `POST /healthz` answered 405 with an empty body.
#[tokio::test]
async fn a_wrong_method_is_a_405_problem_that_keeps_allow() {
    let server = start(Config::default()).await;
    let client = Client::new();
    for (method, path, allow) in [
        ("POST", "/healthz", "GET,HEAD"),
        ("DELETE", "/v1/echo", "POST"),
        ("PUT", "/v1/slow", "GET,HEAD"),
    ] {
        let reply = client
            .send(
                Request::builder()
                    .method(method)
                    .uri(server.url(path))
                    .header(KEY.0, KEY.1)
                    .body(Full::default())
                    .unwrap(),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(reply.json()["status"], 405);
        assert!(reply.json()["detail"].as_str().unwrap().contains("Allow"));
    }
}

/// Issue 10: a 400 for invalid JSON held the request's field name in full (a 60 KB name, and a
/// key pasted into it, came back entire).
#[tokio::test]
async fn rejections_never_carry_the_request_text_back() {
    let server = start(Config::default()).await;
    let client = Client::new();
    let secret = "pal_live_SecretSecretSecretSecretSecret12_abcdef";
    let long_name = format!("{secret}{}", "n".repeat(60_000));
    let post = |body: String| {
        Request::post(server.url("/v1/echo"))
            .header("content-type", "application/json")
            .header(KEY.0, KEY.1)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let cases = [
        (
            "field name then a syntax error",
            post(format!(r#"{{"{long_name}": tru}}"#)),
            StatusCode::BAD_REQUEST,
        ),
        (
            "unterminated value after a long name",
            post(format!(r#"{{"{long_name}": "{secret}"#)),
            StatusCode::BAD_REQUEST,
        ),
        (
            "trailing data",
            post(format!(r#"{{"a": 1}} {secret}"#)),
            StatusCode::BAD_REQUEST,
        ),
        (
            "nested too deep",
            post(format!("{}{secret}", "[".repeat(200))),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a bad query value",
            Request::get(server.url(&format!("/v1/slow?ms={secret}")))
                .header(KEY.0, KEY.1)
                .body(Full::default())
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "an unknown query parameter name only",
            Request::get(server.url(&format!("/v1/slow?{secret}=1")))
                .header(KEY.0, KEY.1)
                .body(Full::default())
                .unwrap(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "a key in an unknown path",
            Request::get(server.url(&format!("/v1/{secret}")))
                .header(KEY.0, KEY.1)
                .body(Full::default())
                .unwrap(),
            StatusCode::NOT_FOUND,
        ),
        (
            "a key as the API key",
            Request::get(server.url("/v1/hello"))
                .header("x-api-key", secret)
                .body(Full::default())
                .unwrap(),
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (name, request, status) in cases {
        let reply = client.send(request).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{name}"
        );
        let text = reply.text();
        assert!(!text.contains("SecretSecret"), "{name}: echoed: {text}");
        assert!(text.len() < 1024, "{name}: {} bytes", text.len());
    }
}

/// `/v1/echo` behind the JSON layer and `ValidatedJson`: each way a body can be wrong is its
/// own status, reason and pointer, and never repeats what was sent.
#[tokio::test]
async fn json_bodies_are_strict_and_rejections_point_at_the_place() {
    let server = start(Config::default()).await;
    let client = Client::new();
    let cases: &[(&str, StatusCode, &str, &str)] = &[
        (
            r#"{"message":"hi","message":"SECRET"}"#,
            StatusCode::BAD_REQUEST,
            "duplicate_key",
            "/message",
        ),
        (
            r#"{"message":"hi","tags":["a",SECRET]}"#,
            StatusCode::BAD_REQUEST,
            "unexpected",
            "/tags/1",
        ),
        (
            r#"{"message":"hi","is_admin":"SECRET"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_field",
            "/is_admin",
        ),
        (
            r#"{"message":["SECRET"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong_type",
            "/message",
        ),
        (
            r#"{"tags":["SECRET"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing_field",
            "",
        ),
        (
            r#"{"message":"hi","tags":["SECRET-but-longer-than-32-characters"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "/tags/0",
        ),
        (
            r#"{"message":""}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "/message",
        ),
    ];
    for (body, status, reason, pointer) in cases {
        let reply = client
            .send(
                Request::post(server.url("/v1/echo"))
                    .header("content-type", "application/json")
                    .header(KEY.0, KEY.1)
                    .body(Full::new(Bytes::from(body.to_string())))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, *status, "{body}: {}", reply.text());
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        let problem = reply.json();
        assert_eq!(problem["reason"], *reason, "{body}: {problem}");
        assert_eq!(problem["pointer"], *pointer, "{body}: {problem}");
        assert!(!reply.text().contains("SECRET"), "{body}: {problem}");
        assert!(!reply.text().contains("EchoRequest"), "{body}: {problem}");
    }
}

/// A gateway whose `/v1/upstream` calls a demo upstream behaving as `behaviour`.
async fn with_upstream(
    behaviour: palisade_examples::gateway::upstream::Behaviour,
    attempt_timeout: Duration,
) -> (TestServer, palisade::breaker::Breaker) {
    let addr = palisade_examples::gateway::upstream::spawn(behaviour)
        .await
        .unwrap();
    let breaker =
        palisade_examples::gateway::outbound::Outbound::demo_breaker(Duration::from_secs(30));
    let config = Config {
        outbound: Some(palisade_examples::gateway::outbound::Outbound {
            base_url: format!("http://{addr}"),
            attempt_timeout,
            breaker: breaker.clone(),
            retry: palisade_examples::gateway::outbound::Outbound::demo_retry(),
        }),
        ..Config::default()
    };
    (start(config).await, breaker)
}

#[tokio::test]
async fn the_upstream_route_passes_answers_on_and_readyz_reports_the_breaker() {
    let (server, breaker) = with_upstream(
        palisade_examples::gateway::upstream::Behaviour::default(),
        Duration::from_secs(1),
    )
    .await;
    let client = Client::new();
    let reply = client.get(&server.url("/v1/upstream"), &[KEY]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["upstream"]["work"], "done");
    let ready = client.get(&server.url("/readyz"), &[]).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(ready.json()["breakers"]["upstream"]["state"], "closed");
    assert_eq!(breaker.snapshot().calls, 1);
    assert_eq!(
        client.get(&server.url("/v1/upstream"), &[]).await.status,
        StatusCode::UNAUTHORIZED,
        "behind the API key like every /v1 route"
    );
}

#[tokio::test]
async fn a_failing_upstream_trips_the_breaker_and_calls_fail_fast() {
    let (server, breaker) = with_upstream(
        palisade_examples::gateway::upstream::Behaviour {
            error_rate: 1.0,
            delay: Duration::ZERO,
            fail_first: 0,
        },
        Duration::from_secs(1),
    )
    .await;
    let client = Client::new();
    // Each request tries up to 3 times; after 5 failed attempts the breaker opens.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let reply = client.get(&server.url("/v1/upstream"), &[KEY]).await;
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
        statuses.push(reply.status);
        if reply.status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
    }
    assert_eq!(statuses[0], StatusCode::BAD_GATEWAY, "{statuses:?}");
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    assert_eq!(breaker.state(), palisade::breaker::BreakerState::Open);
    let reply = client.get(&server.url("/v1/upstream"), &[KEY]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    let retry_after: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let ready = client.get(&server.url("/readyz"), &[]).await;
    assert_eq!(ready.json()["status"], "degraded");
    assert_eq!(ready.json()["breakers"]["upstream"]["state"], "open");
}

#[tokio::test]
async fn a_failed_attempt_is_retried_and_the_caller_never_sees_it() {
    let (server, breaker) = with_upstream(
        palisade_examples::gateway::upstream::Behaviour {
            fail_first: 2,
            ..palisade_examples::gateway::upstream::Behaviour::default()
        },
        Duration::from_secs(1),
    )
    .await;
    let reply = Client::new().get(&server.url("/v1/upstream"), &[KEY]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let snapshot = breaker.snapshot();
    assert_eq!(
        (snapshot.calls, snapshot.failures),
        (3, 2),
        "two failed attempts, then the answer"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_cut_by_the_attempt_timeout_and_demo_headers_steer_it() {
    let (server, breaker) = with_upstream(
        palisade_examples::gateway::upstream::Behaviour::default(),
        Duration::from_millis(200),
    )
    .await;
    let client = Client::new();
    let slow = client
        .get(
            &server.url("/v1/upstream"),
            &[KEY, ("x-demo-delay-ms", "3000")],
        )
        .await;
    assert_eq!(slow.status, StatusCode::GATEWAY_TIMEOUT, "{}", slow.text());
    assert_eq!(
        breaker.snapshot().failures,
        3,
        "each of the 3 attempts timed out, and counted against the upstream"
    );
    // The caller's own short deadline reaches the upstream as grpc-timeout, which cuts it too.
    let short = client
        .get(
            &server.url("/v1/upstream"),
            &[KEY, ("grpc-timeout", "100m"), ("x-demo-delay-ms", "3000")],
        )
        .await;
    assert_eq!(short.status, StatusCode::GATEWAY_TIMEOUT);
}

/// `/v1` with JWTs from the demo issuer (discovery and JWKS over real HTTP) beside API keys.
#[tokio::test]
async fn v1_accepts_a_jwt_from_the_issuer_or_an_api_key() {
    use palisade_examples::gateway::idp::DemoIdp;
    let idp = DemoIdp::spawn().await.unwrap();
    let (jwt, _source) = gateway::jwt::layer(idp.issuer(), gateway::idp::DEMO_AUDIENCE).unwrap();
    let server = start(Config {
        jwt: Some(jwt),
        ..Config::default()
    })
    .await;
    let client = Client::new();
    let url = server.url("/v1/hello");
    let token = idp
        .token("ada", &["hello:read"], Duration::from_secs(60))
        .unwrap();
    let bearer = format!("Bearer {token}");
    let reply = client.get(&url, &[("authorization", &bearer)]).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["message"], "hello, ada");
    // The API key still works on the same route.
    assert_eq!(client.get(&url, &[KEY]).await.status, StatusCode::OK);
    // A token without the route's scope: 403 with the scope it needs.
    let echo = client
        .send(
            Request::post(server.url("/v1/echo"))
                .header("authorization", &bearer)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(br#"{"message":"hi"}"#)))
                .unwrap(),
        )
        .await;
    assert_eq!(echo.status, StatusCode::FORBIDDEN);
    assert!(
        echo.header("www-authenticate")
            .unwrap()
            .contains("insufficient_scope")
    );
    // Another subject's claims under this token's signature: 401, never echoing the token.
    let other = idp
        .token("admin", &["hello:read"], Duration::from_secs(60))
        .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    let reply = client
        .get(&url, &[("authorization", &format!("Bearer {forged}"))])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    assert_eq!(reply.json()["reason"], "bad_signature");
    assert!(!reply.text().contains(&forged));
    let reply = client.get(&url, &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert!(
        reply.json()["detail"]
            .as_str()
            .unwrap()
            .contains("bearer token or an API key")
    );
}

/// A burst from one address is cut off by the per-IP limit (before authentication, so even
/// requests without a key count), with `Retry-After` and `RateLimit` headers; `/healthz` and
/// other addresses are not affected.
#[tokio::test]
async fn a_burst_from_one_address_is_rate_limited() {
    // 40 a minute: nothing comes back within the test, whatever the machine's speed.
    let mut config = Config::default();
    config.limits.per_ip = palisade::ratelimit::Quota::per_minute(40);
    let server = start(config).await;
    let client = Client::new();
    let url = server.url("/v1/hello");
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..200 {
        let reply = client.get(&url, &[KEY]).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS && refused.is_none() {
            refused = Some(reply.clone());
        }
        statuses.push(reply.status);
    }
    let admitted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert!((40..=42).contains(&admitted), "{admitted} of 200 admitted");
    let refused = refused.expect("the burst was cut off");
    assert!(refused.header("retry-after").is_some());
    assert!(
        refused
            .header("ratelimit")
            .unwrap()
            .starts_with("\"ip\";r=0")
    );
    assert_eq!(refused.json()["limit"], "ip");
    assert_eq!(
        client.get(&server.url("/healthz"), &[]).await.status,
        StatusCode::OK
    );
    // Requests without a key count too: the credential check comes after.
    assert_eq!(
        client.get(&url, &[]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

/// `POST /v1/echo` has its own, tighter limit per caller (burst 10).
#[tokio::test]
async fn echo_has_a_tighter_limit_per_caller() {
    let server = start(Config::default()).await;
    let client = Client::new();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let reply = client
            .send(
                Request::post(server.url("/v1/echo"))
                    .header("content-type", "application/json")
                    .header(KEY.0, KEY.1)
                    .body(Full::new(Bytes::from_static(br#"{"message":"hi"}"#)))
                    .unwrap(),
            )
            .await;
        statuses.push(reply.status.as_u16());
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(reply.json()["limit"], "echo");
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    // The caller's other routes are not held back by the echo limit.
    assert_eq!(
        client.get(&server.url("/v1/hello"), &[KEY]).await.status,
        StatusCode::OK
    );
}

/// Issue 16, item 4: the gateway always ran the demo issuer and trusted its published key, also
/// with `--api-keys`; a token signed with that key, for any `sub` and scopes, got 200. Demo
/// credentials now exist only while nothing real is configured.
#[tokio::test]
async fn demo_credentials_are_refused_once_real_ones_are_configured() {
    use palisade_examples::gateway::flags::Flags;
    use palisade_examples::gateway::idp::{DEMO_AUDIENCE, DemoIdp};
    use palisade_test_support::jwt::{JwksServer, TestKey, now};

    let dir = tempfile::tempdir().unwrap();
    let real_key = palisade::apikey::format::generate("pal_live").unwrap();
    let file = dir.path().join("keys.txt");
    std::fs::write(
        &file,
        format!(
            "{} principal=ops scopes=hello:read\n",
            KeyDigest::of(&real_key)
        ),
    )
    .unwrap();
    let client = Client::new();
    let forged = |issuer: &str| {
        DemoIdp::offline(issuer)
            .unwrap()
            .token(
                "admin",
                &["hello:read", "echo:write"],
                Duration::from_secs(600),
            )
            .unwrap()
    };
    let started = |args: &[&str]| {
        let flags =
            Flags::parse_args(std::iter::once("gateway").chain(args.iter().copied())).unwrap();
        flags.settings().unwrap()
    };

    // A key file only: the demo key and the demo issuer's tokens are refused, whatever their
    // issuer (the attacker scanned loopback ports for the demo issuer's).
    let mut settings = started(&["--api-keys", file.to_str().unwrap()]);
    let (jwt, demo_idp) = gateway::jwt::configure(&settings).await.unwrap();
    assert!(jwt.is_none() && demo_idp.is_none(), "no demo issuer runs");
    settings.config.jwt = jwt;
    let server = start(settings.config.clone()).await;
    let url = server.url("/v1/hello");
    assert_eq!(
        client.get(&url, &[KEY]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let real = client.get(&url, &[("x-api-key", &real_key)]).await;
    assert_eq!(real.status, StatusCode::OK, "{}", real.text());
    for port in [1, 8080, server.addr().port()] {
        let token = forged(&format!("http://127.0.0.1:{port}"));
        let reply = client
            .get(&url, &[("authorization", &format!("Bearer {token}"))])
            .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
    }

    // A real issuer only: its tokens are accepted; the demo key and demo tokens are not.
    let issuer_key = TestKey::ec256("real-1");
    let issuer = JwksServer::spawn(&[&issuer_key]).await;
    let mut settings = started(&["--oidc-issuer", &issuer.issuer()]);
    let (jwt, demo_idp) = gateway::jwt::configure(&settings).await.unwrap();
    assert!(jwt.is_some() && demo_idp.is_none());
    settings.config.jwt = jwt;
    let server = start(settings.config.clone()).await;
    let url = server.url("/v1/hello");
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("real-1".into());
    header.typ = Some("at+jwt".into());
    let token = issuer_key.sign_with(
        &header,
        &serde_json::json!({
            "iss": issuer.issuer(), "sub": "ops", "aud": DEMO_AUDIENCE,
            "scope": "hello:read", "exp": now() + 600,
        }),
    );
    let reply = client
        .get(&url, &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        client.get(&url, &[KEY]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let token = forged(&issuer.issuer());
    let reply = client
        .get(&url, &[("authorization", &format!("Bearer {token}"))])
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.text());
}

/// Issue 16, item 5: limits per caller keyed the subject alone: once a JWT with `sub: demo`
/// had used up `POST /v1/echo`, the API key whose principal is `demo` got 429 too.
#[tokio::test]
async fn a_jwt_and_an_api_key_with_one_subject_are_two_callers() {
    use palisade_examples::gateway::idp::DemoIdp;
    let idp = DemoIdp::spawn().await.unwrap();
    let (jwt, _source) = gateway::jwt::layer(idp.issuer(), gateway::idp::DEMO_AUDIENCE).unwrap();
    let server = start(Config {
        jwt: Some(jwt),
        ..Config::default()
    })
    .await;
    let client = Client::new();
    let token = idp
        .token("demo", &["echo:write"], Duration::from_secs(600))
        .unwrap();
    let bearer = format!("Bearer {token}");
    let echo = |credential: (&'static str, String)| {
        Request::post(server.url("/v1/echo"))
            .header(credential.0, credential.1)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(br#"{"message":"hi"}"#)))
            .unwrap()
    };
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let reply = client.send(echo(("authorization", bearer.clone()))).await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429));
    let reply = client.send(echo(("x-api-key", DEMO_KEY.to_owned()))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

/// Issue 16, item 6: the outer per-IP layer overwrote the inner per-caller layer's fields:
/// echo's 429 said `"ip";r=31`, and admitted responses never showed the caller tiers.
#[tokio::test]
async fn rate_limit_fields_of_both_layers_reach_the_client() {
    let server = start(Config::default()).await;
    let client = Client::new();
    let echo = || {
        Request::post(server.url("/v1/echo"))
            .header(KEY.0, KEY.1)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(br#"{"message":"hi"}"#)))
            .unwrap()
    };
    let admitted = client.send(echo()).await;
    assert_eq!(admitted.status, StatusCode::OK);
    let fields = admitted.header("ratelimit").unwrap();
    for tier in ["\"caller\"", "\"echo\"", "\"ip\""] {
        assert!(fields.contains(tier), "{tier} missing from {fields}");
    }
    let mut refused = None;
    for _ in 0..12 {
        let reply = client.send(echo()).await;
        if reply.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("echo's burst of 10 runs out");
    assert_eq!(refused.json()["limit"], "echo");
    let fields = refused.header("ratelimit").unwrap();
    assert!(fields.starts_with("\"echo\";r=0"), "{fields}");
    assert!(!fields.contains("\"ip\""), "{fields}");
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"echo\";q=30;w=60")
    );
}

/// Issue 17: `--config FILE` sets what the flags set, from TOML read by `palisade::config`; a
/// flag given as well wins, and a key the gateway cannot honour is refused, named.
#[tokio::test]
async fn a_config_file_sets_the_limits_and_keys_and_flags_win() {
    use palisade_examples::gateway::flags::Flags;
    let dir = tempfile::tempdir().unwrap();
    let key = palisade::apikey::format::generate("pal_live").unwrap();
    std::fs::write(
        dir.path().join("keys.txt"),
        format!("{} principal=ops scopes=hello:read\n", KeyDigest::of(&key)),
    )
    .unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        r#"
[server]
timeout = "3s"

[server.rate_limit.ip]
quota = "2/s burst 2"

[server.api_keys]
key_file = "keys.txt"   # beside this file

[client]
attempt_timeout = "250ms"

[client.retry]
max_attempts = 2
"#,
    )
    .unwrap();
    let settings = |args: &[&str]| {
        Flags::parse_args(
            ["gateway", "--config", path.to_str().unwrap()]
                .into_iter()
                .chain(args.iter().copied()),
        )
        .unwrap()
        .settings()
    };
    let client = Client::new();

    let from_file = settings(&[]).unwrap();
    assert_eq!(from_file.config.timeout, Duration::from_secs(3));
    assert_eq!(from_file.upstream_timeout, Duration::from_millis(250));
    assert!(from_file.retry.is_some() && from_file.breaker.is_none());
    assert!(
        !from_file.demo,
        "a key file in the configuration ends the demo"
    );
    // 2/s burst 2: the third request within half a second is refused. A machine so loaded
    // that three loopback requests take longer gets another try on a new server, never a
    // looser assertion.
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let server = start(from_file.config.clone()).await;
        let url = server.url("/v1/hello");
        let started = std::time::Instant::now();
        statuses.clear();
        for _ in 0..3 {
            let reply = client.get(&url, &[("x-api-key", &key)]).await;
            statuses.push(reply.status.as_u16());
        }
        if started.elapsed() < Duration::from_millis(400) {
            break;
        }
    }
    assert_eq!(
        statuses,
        [200, 200, 429],
        "the file's 2/s burst 2 per address"
    );
    // The demo key is not a credential beside the file's key file.
    let server = start(from_file.config).await;
    assert_eq!(
        client.get(&server.url("/v1/hello"), &[KEY]).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A flag given as well wins over the file.
    let flagged = settings(&["--rate-limit-ip", "100/s burst 100", "--timeout", "1s"]).unwrap();
    assert_eq!(flagged.config.timeout, Duration::from_secs(1));
    let server = start(flagged.config).await;
    let url = server.url("/v1/hello");
    for _ in 0..5 {
        let reply = client.get(&url, &[("x-api-key", &key)]).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(
        client.get(&url, &[KEY]).await.status,
        StatusCode::UNAUTHORIZED,
        "the demo key is refused beside a key file"
    );

    // What cannot be honoured is refused with the key (and its line, when known).
    for (text, named) in [
        (
            "[server]\ntimeout = \"soon\"\n",
            "`server.timeout` (line 2)",
        ),
        ("[server]\nbogus = 1\n", "bogus"),
        (
            "[server.rate_limit.route]\nquota = \"1/s\"\n",
            "`server.rate_limit.route`",
        ),
        (
            "[server.rate_limit.ip]\nquota = \"1/s\"\nshadow = true\n",
            "`server.rate_limit.ip.shadow`",
        ),
        (
            "[server.jwt]\nissuer = \"https://a.example\"\naudiences = [\"x\", \"y\"]\n",
            "`server.jwt.audiences`",
        ),
        (
            "[server.jwt]\nissuer = \"https://a.example\"\n",
            "`server.jwt.audiences`",
        ),
        (
            "[server.jwt]\nissuer = \"https://a.example\"\naudiences = [\"x\"]\n\
             [client.retry]\nmax_attempts = 0\n",
            "client.retry",
        ),
        // A file without credentials never falls back to the demo's (review of issue 17).
        (
            "[server.rate_limit.ip]\nquota = \"1/s\"\n",
            "names no credentials",
        ),
    ] {
        std::fs::write(&path, text).unwrap();
        let err = settings(&[]).unwrap_err().to_string();
        assert!(err.starts_with("invalid --config "), "{err}");
        assert!(err.contains(named), "{text:?}: {err}");
    }
    let missing = Flags::parse_args(["gateway", "--config", "/nonexistent/gateway.toml"])
        .unwrap()
        .settings()
        .unwrap_err()
        .to_string();
    assert!(missing.contains("cannot read it"), "{missing}");
}

/// Issue 17: a caller's W3C `traceparent` is continued on the outbound call (same trace, the
/// gateway's span as the parent); a malformed one, or none, starts a new trace.
#[tokio::test]
async fn the_callers_trace_goes_upstream_with_the_gateways_span_as_parent() {
    use palisade_examples::gateway::outbound::Outbound;
    use palisade_test_support::RecordingUpstream;
    let upstream = RecordingUpstream::spawn("/work").await;
    let server = start(Config {
        outbound: Some(Outbound {
            base_url: format!("http://{}", upstream.server.addr()),
            attempt_timeout: Duration::from_secs(1),
            breaker: Outbound::demo_breaker(Duration::from_secs(30)),
            retry: Outbound::demo_retry(),
        }),
        ..Config::default()
    })
    .await;
    let client = Client::new();
    let url = server.url("/v1/upstream");
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for traceparent in [
        Some(caller),
        Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
        None,
    ] {
        let mut headers = vec![KEY];
        headers.extend(traceparent.map(|value| ("traceparent", value)));
        let reply = client.get(&url, &headers).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    }
    let sent = upstream.header_of_each_call("traceparent");
    let fields: Vec<Vec<&str>> = sent.iter().map(|v| v.split('-').collect()).collect();
    assert_eq!(fields.len(), 3, "{sent:?}");
    assert!(
        fields.iter().all(|f| f.len() == 4 && f[0] == "00"),
        "{sent:?}"
    );
    assert_eq!(
        fields[0][1], "4bf92f3577b34da6a3ce929d0e0e4736",
        "the caller's trace"
    );
    assert_ne!(
        fields[0][2], "00f067aa0ba902b7",
        "the gateway's span is the parent"
    );
    assert_eq!(fields[0][3], "01", "the caller's sampling decision");
    assert_ne!(
        fields[1][1], "4bf92f3577b34da6a3ce929d0e0e4736",
        "uppercase hex is not a valid traceparent: a new trace"
    );
    assert_ne!(
        fields[2][1], fields[1][1],
        "each request without one starts its own"
    );
}
