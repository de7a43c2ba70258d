//! The gateway's `/metrics` (issue 17), over real HTTP on 127.0.0.1: after some traffic it shows
//! the rate limits' admitted and refused counts, the breaker's state and a JWT verification
//! histogram. A test binary of its own: the Prometheus recorder is global to the process, so no
//! other test's traffic is counted here.

use std::time::Duration;

use palisade_examples::gateway::idp::{DEMO_AUDIENCE, DemoIdp};
use palisade_examples::gateway::outbound::Outbound;
use palisade_examples::gateway::{self, Config, DEMO_KEY};
use palisade_test_support::{Client, TestServer};

/// The value of the series written exactly `series` (name and labels), as written.
fn value<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(str::trim)
}

#[tokio::test]
async fn metrics_show_each_layers_decisions_the_breaker_and_jwt_latency() {
    let handle = gateway::metrics::install().unwrap();
    let metrics = gateway::metrics::serve("127.0.0.1:0".parse().unwrap(), handle)
        .await
        .unwrap();

    let idp = DemoIdp::spawn().await.unwrap();
    let (jwt, _source) = gateway::jwt::layer(idp.issuer(), DEMO_AUDIENCE).unwrap();
    let upstream = gateway::upstream::spawn(gateway::upstream::Behaviour::default())
        .await
        .unwrap();
    let mut config = Config {
        jwt: Some(jwt),
        outbound: Some(Outbound {
            base_url: format!("http://{upstream}"),
            attempt_timeout: Duration::from_secs(1),
            breaker: Outbound::demo_breaker(Duration::from_secs(30)),
            retry: Outbound::demo_retry(),
        }),
        ..Config::default()
    };
    // 8 a minute per address: the tenth request is refused, however slow the machine.
    config.limits.per_ip = palisade::ratelimit::Quota::per_minute(8);
    let server = TestServer::spawn(gateway::app(&config).unwrap()).await;
    let client = Client::new();
    let token = idp
        .token("demo", &["hello:read"], Duration::from_secs(600))
        .unwrap();
    let bearer = format!("Bearer {token}");

    let mut statuses = Vec::new();
    for _ in 0..3 {
        let reply = client
            .get(&server.url("/v1/hello"), &[("authorization", &bearer)])
            .await;
        statuses.push(reply.status.as_u16());
    }
    for _ in 0..2 {
        let reply = client
            .get(&server.url("/v1/upstream"), &[("x-api-key", DEMO_KEY)])
            .await;
        statuses.push(reply.status.as_u16());
    }
    for _ in 0..5 {
        let reply = client
            .get(&server.url("/v1/hello"), &[("x-api-key", DEMO_KEY)])
            .await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 200, 200, 200, 429, 429],
        "8 admitted per address, then refused"
    );

    let reply = client.get(&format!("http://{metrics}/metrics"), &[]).await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4"))
    );
    let text = reply.text();
    let series = |name: &str| value(&text, name).unwrap_or_else(|| panic!("no {name} in:\n{text}"));
    assert_eq!(
        series(r#"palisade_ratelimit_requests_total{tier="ip",outcome="admitted"}"#),
        "8"
    );
    assert_eq!(
        series(r#"palisade_ratelimit_requests_total{tier="ip",outcome="refused"}"#),
        "2"
    );
    assert_eq!(
        series(r#"palisade_ratelimit_requests_total{tier="caller",outcome="admitted"}"#),
        "8",
        "every request the address tier admitted had a credential"
    );
    assert_eq!(
        series(r#"palisade_breaker_state{breaker="upstream"}"#),
        "0",
        "closed"
    );
    assert_eq!(
        series(r#"palisade_breaker_calls_total{breaker="upstream",outcome="success"}"#),
        "2"
    );
    assert_eq!(
        series(r#"palisade_jwt_requests_total{outcome="accepted"}"#),
        "3"
    );
    assert_eq!(
        series(r#"palisade_apikey_requests_total{outcome="accepted"}"#),
        "5"
    );
    // One token three times: checked after the first key fetch, checked and cached, then
    // served from the cache.
    assert_eq!(series("palisade_jwt_verify_seconds_count"), "2");
    let sum: f64 = series("palisade_jwt_verify_seconds_sum").parse().unwrap();
    assert!(sum > 0.0, "{sum}");
    assert_eq!(
        series(r#"palisade_jwt_verify_seconds_bucket{le="+Inf"}"#),
        "2",
        "a Prometheus histogram with buckets, not a summary"
    );
    assert_eq!(series(r#"palisade_jwt_cache_total{outcome="hit"}"#), "1");
    assert_eq!(
        series(r#"palisade_jwt_jwks_fetches_total{trigger="no_keys",outcome="ok"}"#),
        "1"
    );
    assert_eq!(
        series(r#"palisade_jwt_jwks_fetch_seconds_count{outcome="ok"}"#),
        "1"
    );
    assert_eq!(
        series(r#"palisade_retry_attempt_seconds_count{attempt="first"}"#),
        "2"
    );
    // `/v1/hello` requires `hello:read`; `/v1/upstream` no scope.
    assert_eq!(
        series(r#"palisade_scope_requests_total{outcome="allowed"}"#),
        "6"
    );

    // Not on the public port.
    let public = client.get(&server.url("/metrics"), &[]).await;
    assert_eq!(public.status, http::StatusCode::NOT_FOUND);
}
